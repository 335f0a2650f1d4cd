// Shared by the stamp-* builds, which differ only in `BUILD` (and `TRAP_IN_INIT`).

use weir_plugin_sdk::msgpack;
use weir_plugin_sdk::{Config, Emit, Error, Event, Handler, export_handler, host};

/// Sets `build` to which build this is and `started` to the host clock at `init`: a reload
/// starts new instances, so per key `started` may only grow. With `label` in its config it
/// also sets `label`, so a test can see which config an instance started with.
struct Stamp {
    build: Vec<u8>,
    started: Vec<u8>,
    label: Option<Vec<u8>>,
}

impl Handler for Stamp {
    fn init(config: &Config) -> Result<Self, Error> {
        if TRAP_IN_INIT {
            panic!("this build traps in init");
        }
        let mut build = Vec::new();
        msgpack::write_str(&mut build, BUILD);
        let mut started = Vec::new();
        msgpack::write_int(&mut started, host::now_ms());
        let label = config.opt_str("label")?.map(|label| {
            let mut bytes = Vec::new();
            msgpack::write_str(&mut bytes, label);
            bytes
        });
        Ok(Self {
            build,
            started,
            label,
        })
    }

    fn handle(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), Error> {
        let stamped = msgpack::set_field(event.payload(), "build", &self.build)?;
        let mut stamped = msgpack::set_field(&stamped, "started", &self.started)?;
        if let Some(label) = &self.label {
            stamped = msgpack::set_field(&stamped, "label", label)?;
        }
        out.emit(&stamped);
        Ok(())
    }
}

export_handler!(Stamp);
