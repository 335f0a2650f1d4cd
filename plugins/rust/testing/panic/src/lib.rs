//! Hostile: panics (a trap) on events whose `poison` field is `true`; keeps the others.

use weir_plugin_sdk::msgpack::Value;
use weir_plugin_sdk::{Config, Emit, Error, Event, Handler, export_handler};

struct Panic;

impl Handler for Panic {
    fn init(_config: &Config) -> Result<Self, Error> {
        Ok(Self)
    }

    fn handle(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), Error> {
        if event.field("poison")? == Some(Value::Bool(true)) {
            panic!("poisoned event at time {}", event.time());
        }
        out.keep();
        Ok(())
    }
}

export_handler!(Panic);
