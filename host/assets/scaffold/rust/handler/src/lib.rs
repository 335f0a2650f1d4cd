//! {{name}}: keeps events whose numeric field `field` (default `amount`) is at least `min`
//! (default 0).
//!
//! Config: `{"field": "amount", "min": 10}`. An event without the field, or whose field is
//! not a number, is dropped; a payload that is not a MessagePack map fails with
//! `invalid-input` and goes to the dead-letter sink.

use weir_plugin_sdk::{Config, Emit, Error, Event, Handler, export_handler};

struct {{class}} {
    field: String,
    min: f64,
}

impl Handler for {{class}} {
    fn init(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            field: config.opt_str("field")?.unwrap_or("amount").to_owned(),
            min: config.opt_f64("min")?.unwrap_or(0.0),
        })
    }

    fn handle(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), Error> {
        // `field` reads one field without decoding the rest of the payload.
        let amount = event.field(&self.field)?.and_then(|v| v.as_f64());
        if amount.is_some_and(|v| v >= self.min) {
            // Passing the event through unchanged copies no payload back to the host.
            out.keep();
        }
        // To replace the event instead, emit new payloads (any number of them):
        //     out.emit_serialized(&serde_json::json!({"amount": amount, "big": true}))?;
        // Returning `Err(Error::invalid_input("..."))` dead-letters this event only.
        Ok(())
    }
}

export_handler!({{class}});
