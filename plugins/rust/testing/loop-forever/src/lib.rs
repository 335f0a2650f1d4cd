//! Hostile: `process` never returns. The host must stop it at its deadline.
//!
//! Config: none to loop on every event, or `{"field": "x", "equals": 1}` to loop only on
//! events whose numeric `field` equals `equals` and keep the others.

use weir_plugin_sdk::{Config, Emit, Error, Event, Handler, export_handler};

struct LoopForever {
    field: Option<String>,
    equals: f64,
}

impl Handler for LoopForever {
    fn init(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            field: config.opt_str("field")?.map(str::to_owned),
            equals: config.opt_f64("equals")?.unwrap_or(1.0),
        })
    }

    fn handle(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), Error> {
        if let Some(field) = &self.field
            && event.field(field)?.and_then(|v| v.as_f64()) != Some(self.equals)
        {
            out.keep();
            return Ok(());
        }
        let mut spins = 0u64;
        loop {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }
}

export_handler!(LoopForever);
