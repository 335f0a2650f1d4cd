//! Sets `field` to `value` on every event (replacing it when present).
//!
//! Config: `{"field": "region", "value": "eu-west"}`; `value` may be a string, number,
//! boolean or null. Events whose payload is not a MessagePack map fail with `invalid-input`.

use weir_plugin_sdk::msgpack;
use weir_plugin_sdk::{Config, ConfigValue, Emit, Error, Event, Handler, export_handler};

struct Enrich {
    field: String,
    /// The value, encoded once at init.
    value: Vec<u8>,
}

fn encode(value: &ConfigValue) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    match value {
        ConfigValue::Null => msgpack::write_nil(&mut out),
        ConfigValue::Bool(b) => msgpack::write_bool(&mut out, *b),
        ConfigValue::String(s) => msgpack::write_str(&mut out, s),
        ConfigValue::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => msgpack::write_int(&mut out, i),
            (None, Some(u), _) => msgpack::write_uint(&mut out, u),
            (None, None, Some(f)) => msgpack::write_f64(&mut out, f),
            _ => {
                return Err(Error::invalid_config(
                    "config key \"value\" is not a representable number",
                ));
            }
        },
        _ => {
            return Err(Error::invalid_config(
                "config key \"value\" must be a string, number, boolean or null",
            ));
        }
    }
    Ok(out)
}

impl Handler for Enrich {
    fn init(config: &Config) -> Result<Self, Error> {
        let field = config.str("field")?.to_owned();
        let value = config.get("value").ok_or_else(|| {
            Error::invalid_config("config key \"value\" is required (the value to set)")
        })?;
        Ok(Self {
            field,
            value: encode(value)?,
        })
    }

    fn handle(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), Error> {
        out.emit(&msgpack::set_field(
            event.payload(),
            &self.field,
            &self.value,
        )?);
        Ok(())
    }
}

export_handler!(Enrich);
