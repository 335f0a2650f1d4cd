//! The `aggregator` world: custom windowed aggregates whose accumulators the host holds.

use std::cell::RefCell;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How an accumulator is named in decode errors.
const ACC: &str = "accumulator";

use crate::bindings::aggregator::exports::weir::plugin::windowed_aggregator::Folded;
use crate::bindings::types;
use crate::config::Config;
use crate::error::Error;
use crate::event::{Batch, Event};
use crate::state::{self, decode, encode, pack, values, with};

/// A windowed aggregate. The accumulator is a serde type; the SDK stores it as MessagePack
/// (fields by name, so a later version may add fields with `#[serde(default)]` and still read
/// state written by this one). Export the type with [`crate::export_aggregator!`].
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use weir_plugin_sdk::{Aggregator, Config, Error, Event};
///
/// /// Counts events.
/// struct Count;
///
/// #[derive(Serialize, Deserialize, Default)]
/// struct Acc { n: u64 }
///
/// impl Aggregator for Count {
///     type Acc = Acc;
///     type Output = Acc;
///     fn init(_config: &Config) -> Result<Self, Error> { Ok(Count) }
///     fn create(&self) -> Acc { Acc::default() }
///     fn add(&self, acc: &mut Acc, _event: &Event<'_>) -> Result<(), Error> { acc.n += 1; Ok(()) }
///     fn merge(&self, acc: &mut Acc, other: Acc) { acc.n += other.n }
///     fn finish(&self, acc: &Acc) -> Acc { Acc { n: acc.n } }
/// }
/// ```
pub trait Aggregator: Sized + 'static {
    /// The accumulator.
    type Acc: Serialize + DeserializeOwned;
    /// The result of a window, encoded as a MessagePack map.
    type Output: Serialize;

    /// Builds the aggregator from the stage's configuration.
    ///
    /// # Errors
    /// An `invalid-config` [`Error`] naming the key at fault.
    fn init(config: &Config) -> Result<Self, Error>;

    /// The empty accumulator.
    fn create(&self) -> Self::Acc;

    /// Folds one event in.
    ///
    /// # Errors
    /// An [`Error`] fails this event only; the accumulator must be left as it was.
    fn add(&self, acc: &mut Self::Acc, event: &Event<'_>) -> Result<(), Error>;

    /// Folds `other` into `acc`.
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc);

    /// The window's result.
    fn finish(&self, acc: &Self::Acc) -> Self::Output;
}

#[doc(hidden)]
pub fn init<A: Aggregator>(slot: &RefCell<Option<A>>, config: String) -> Result<(), types::Error> {
    state::init(slot, &config, A::init)
}

#[doc(hidden)]
pub fn create<A: Aggregator>(slot: &RefCell<Option<A>>) -> Result<Vec<u8>, types::Error> {
    with(slot, |a| encode(&a.create()))
}

#[doc(hidden)]
pub fn add<A: Aggregator>(
    slot: &RefCell<Option<A>>,
    accumulators: types::Column,
    events: types::Batch,
    targets: Vec<u32>,
) -> Result<Folded, types::Error> {
    with(slot, |a| {
        let raw = values(&accumulators);
        let mut decoded: Vec<Option<A::Acc>> = (0..raw.len()).map(|_| None).collect();
        let mut failures = Vec::new();
        let batch = Batch::new(&events);
        for (event, &target) in batch.events().zip(&targets) {
            let t = target as usize;
            let Some(bytes) = raw.get(t) else {
                return Err(Error::internal(format!(
                    "event targets accumulator {t} of {}",
                    raw.len()
                )));
            };
            if decoded[t].is_none() {
                decoded[t] = Some(decode(bytes, ACC)?);
            }
            if let Some(acc) = decoded[t].as_mut()
                && let Err(error) = a.add(acc, &event)
            {
                failures.push(types::Failure {
                    index: event.index() as u32,
                    error: error.into(),
                });
            }
        }
        let mut encoded = Vec::with_capacity(raw.len());
        for (bytes, acc) in raw.iter().zip(&decoded) {
            encoded.push(match acc {
                Some(acc) => encode(acc)?,
                None => bytes.to_vec(),
            });
        }
        Ok(Folded {
            accumulators: pack(encoded.iter().map(Vec::as_slice)),
            failures,
        })
    })
}

#[doc(hidden)]
pub fn merge<A: Aggregator>(
    slot: &RefCell<Option<A>>,
    left: types::Column,
    right: types::Column,
) -> Result<types::Column, types::Error> {
    with(slot, |a| {
        let mut merged = Vec::new();
        for (l, r) in values(&left).into_iter().zip(values(&right)) {
            let mut acc: A::Acc = decode(l, ACC)?;
            a.merge(&mut acc, decode(r, ACC)?);
            merged.push(encode(&acc)?);
        }
        Ok(pack(merged.iter().map(Vec::as_slice)))
    })
}

#[doc(hidden)]
pub fn finish<A: Aggregator>(
    slot: &RefCell<Option<A>>,
    accumulators: types::Column,
) -> Result<types::Column, types::Error> {
    with(slot, |a| {
        let mut results = Vec::new();
        for bytes in values(&accumulators) {
            results.push(encode(&a.finish(&decode(bytes, ACC)?))?);
        }
        Ok(pack(results.iter().map(Vec::as_slice)))
    })
}
