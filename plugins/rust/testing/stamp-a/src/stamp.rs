// Shared by the stamp-* builds, which differ only in `BUILD` (and `TRAP_IN_INIT`).

use weir_plugin_sdk::msgpack;
use weir_plugin_sdk::{Config, Emit, Error, Event, Handler, export_handler, host};

/// Sets `build` to which build this is and `started` to the host clock at `init`: a reload
/// starts new instances, so per key `started` may only grow.
struct Stamp {
    build: Vec<u8>,
    started: Vec<u8>,
}

impl Handler for Stamp {
    fn init(_config: &Config) -> Result<Self, Error> {
        if TRAP_IN_INIT {
            panic!("this build traps in init");
        }
        let mut build = Vec::new();
        msgpack::write_str(&mut build, BUILD);
        let mut started = Vec::new();
        msgpack::write_int(&mut started, host::now_ms());
        Ok(Self { build, started })
    }

    fn handle(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), Error> {
        let stamped = msgpack::set_field(event.payload(), "build", &self.build)?;
        let stamped = msgpack::set_field(&stamped, "started", &self.started)?;
        out.emit(&stamped);
        Ok(())
    }
}

export_handler!(Stamp);
