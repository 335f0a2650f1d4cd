//! Keeps events whose numeric field `field` (a name or dotted path) is greater than `min`.
//!
//! Config: `{"field": "amount", "min": 50}`. An event whose payload is not a MessagePack map
//! fails with `invalid-input`; one whose field is missing or not a number is dropped. Kept
//! events pass through unchanged, so no payload is copied back to the host.

use weir_plugin_sdk::{Config, Emit, Error, Event, Handler, export_handler};

struct Threshold {
    field: String,
    min: f64,
}

impl Handler for Threshold {
    fn init(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            field: config.str("field")?.to_owned(),
            min: config.f64("min")?,
        })
    }

    fn handle(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), Error> {
        let value = event.field(&self.field)?.and_then(|v| v.as_f64());
        if value.is_some_and(|v| v > self.min) {
            out.keep();
        }
        Ok(())
    }
}

export_handler!(Threshold);
