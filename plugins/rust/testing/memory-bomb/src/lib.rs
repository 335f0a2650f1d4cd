//! Hostile: `process` allocates (and touches) memory until something stops it.
//!
//! Config: none to do it on every event, or `{"field": "x", "equals": 1}` to do it only on
//! events whose numeric `field` equals `equals` and keep the others.

use weir_plugin_sdk::{Config, Emit, Error, Event, Handler, export_handler};

struct MemoryBomb {
    hoard: Vec<Vec<u8>>,
    field: Option<String>,
    equals: f64,
}

impl Handler for MemoryBomb {
    fn init(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            hoard: Vec::new(),
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
        loop {
            self.hoard.push(std::hint::black_box(vec![0xa5; 1 << 20]));
        }
    }
}

export_handler!(MemoryBomb);
