//! Turns one event into one event per item of its array field `field` (default `items`).
//!
//! Each output's payload is the item itself; key, time and headers are the input's. An
//! event without the field, or whose field is not an array, is dropped; one whose payload is
//! not a MessagePack map fails with `invalid-input`.

use weir_plugin_sdk::msgpack::{self, Value};
use weir_plugin_sdk::{Config, Emit, Error, Event, Handler, export_handler};

struct Split {
    field: String,
}

impl Handler for Split {
    fn init(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            field: config.opt_str("field")?.unwrap_or("items").to_owned(),
        })
    }

    fn handle(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), Error> {
        let Some(Value::Array { len, items }) = event.field(&self.field)? else {
            return Ok(());
        };
        let mut rest = items;
        for _ in 0..len {
            let size = msgpack::skip(rest)?;
            out.emit(&rest[..size]);
            rest = &rest[size..];
        }
        Ok(())
    }
}

export_handler!(Split);
