//! What the aggregator and pattern worlds share: the instance slot behind the export
//! macros, and the MessagePack codec of host-held state.

use std::cell::RefCell;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::types;
use crate::config::Config;
use crate::error::Error;

/// Builds the plugin from its configuration into the instance slot.
pub(crate) fn init<P>(
    slot: &RefCell<Option<P>>,
    config: &str,
    make: impl FnOnce(&Config) -> Result<P, Error>,
) -> Result<(), types::Error> {
    let config = Config::parse(config)?;
    *slot.borrow_mut() = Some(make(&config)?);
    Ok(())
}

/// Runs `f` on the configured plugin.
pub(crate) fn with<P, R>(
    slot: &RefCell<Option<P>>,
    f: impl FnOnce(&P) -> Result<R, Error>,
) -> Result<R, types::Error> {
    let guard = slot.borrow();
    let plugin = guard
        .as_ref()
        .ok_or_else(|| Error::internal("called before init"))?;
    Ok(f(plugin)?)
}

/// Encodes state as a MessagePack map (fields by name, so later versions can add fields).
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    rmp_serde::to_vec_named(value).map_err(|e| Error::internal(format!("cannot encode: {e}")))
}

/// Decodes state; `what` names it in the `unsupported-state` error.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Error> {
    rmp_serde::from_slice(bytes)
        .map_err(|e| Error::unsupported_state(format!("{what} does not decode: {e}")))
}

/// The values of a column.
pub(crate) fn values(column: &types::Column) -> Vec<&[u8]> {
    let mut start = 0usize;
    column
        .ends
        .iter()
        .map(|&end| {
            let value = column.data.get(start..end as usize).unwrap_or_default();
            start = end as usize;
            value
        })
        .collect()
}

/// Packs values into a column.
pub(crate) fn pack<'a>(values: impl Iterator<Item = &'a [u8]>) -> types::Column {
    let mut column = crate::output::empty();
    for value in values {
        column.data.extend_from_slice(value);
        column.ends.push(column.data.len() as u32);
    }
    column
}
