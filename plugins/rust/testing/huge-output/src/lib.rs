//! Hostile: emits `count` (default 20,000) copies of a `size`-byte payload (default 16)
//! for every input. The host must refuse output past its limits.

use weir_plugin_sdk::{Config, Emit, Error, Event, Handler, export_handler};

struct HugeOutput {
    count: u64,
    payload: Vec<u8>,
}

impl Handler for HugeOutput {
    fn init(config: &Config) -> Result<Self, Error> {
        let size = config.opt_u64("size")?.unwrap_or(16) as usize;
        Ok(Self {
            count: config.opt_u64("count")?.unwrap_or(20_000),
            // A MessagePack binary string of `size` bytes.
            payload: [&[0xc6][..], &(size as u32).to_be_bytes(), &vec![b'x'; size]].concat(),
        })
    }

    fn handle(&mut self, _event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), Error> {
        for _ in 0..self.count {
            out.emit(&self.payload);
        }
        Ok(())
    }
}

export_handler!(HugeOutput);
