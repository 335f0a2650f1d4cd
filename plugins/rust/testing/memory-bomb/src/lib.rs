//! Hostile: `process` allocates (and touches) memory until something stops it.

use weir_plugin_sdk::{Config, Emit, Error, Event, Handler, export_handler};

struct MemoryBomb {
    hoard: Vec<Vec<u8>>,
}

impl Handler for MemoryBomb {
    fn init(_config: &Config) -> Result<Self, Error> {
        Ok(Self { hoard: Vec::new() })
    }

    fn handle(&mut self, _event: &Event<'_>, _out: &mut Emit<'_>) -> Result<(), Error> {
        loop {
            self.hoard.push(std::hint::black_box(vec![0xa5; 1 << 20]));
        }
    }
}

export_handler!(MemoryBomb);
