//! Hostile: `process` recurses without end. The host must turn the stack overflow into a
//! fault of this plugin.

use weir_plugin_sdk::{Config, Emit, Error, Event, Handler, export_handler};

struct DeepRecursion;

#[inline(never)]
#[allow(unconditional_recursion)] // the point of this plugin
fn descend(depth: u64) -> u64 {
    // black_box on both sides keeps the call from becoming a loop.
    std::hint::black_box(descend(std::hint::black_box(depth + 1))) + 1
}

impl Handler for DeepRecursion {
    fn init(_config: &Config) -> Result<Self, Error> {
        Ok(Self)
    }

    fn handle(&mut self, _event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), Error> {
        if descend(0) > 0 {
            out.keep();
        }
        Ok(())
    }
}

export_handler!(DeepRecursion);
