//! Hostile: `process` never returns. The host must stop it at its deadline.

use weir_plugin_sdk::{Config, Emit, Error, Event, Handler, export_handler};

struct LoopForever;

impl Handler for LoopForever {
    fn init(_config: &Config) -> Result<Self, Error> {
        Ok(Self)
    }

    fn handle(&mut self, _event: &Event<'_>, _out: &mut Emit<'_>) -> Result<(), Error> {
        let mut spins = 0u64;
        loop {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }
}

export_handler!(LoopForever);
