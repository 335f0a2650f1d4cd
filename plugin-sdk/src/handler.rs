//! The `handler` world: filter, map, filter-map and flat-map.

use std::cell::RefCell;

use serde::Serialize;

use crate::bindings::handler::exports::weir::plugin::event_handler::Outcomes as WitOutcomes;
use crate::bindings::types;
use crate::config::Config;
use crate::error::Error;
use crate::event::{Batch, Event};
use crate::output::{EmittedBuilder, Inherit, Output};

/// An event handler. Implement [`Handler::handle`] for per-event logic, or override
/// [`Handler::handle_batch`] to work on the whole batch at once; then export the type with
/// [`crate::export_handler!`].
///
/// ```
/// use weir_plugin_sdk::{Config, Emit, Error, Event, Handler};
///
/// /// Keeps events whose `level` field is "error".
/// struct OnlyErrors;
///
/// impl Handler for OnlyErrors {
///     fn init(_config: &Config) -> Result<Self, Error> {
///         Ok(OnlyErrors)
///     }
///
///     fn handle(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), Error> {
///         if event.field("level")?.and_then(|v| v.as_str()) == Some("error") {
///             out.keep();
///         }
///         Ok(())
///     }
/// }
/// // In the plugin crate: weir_plugin_sdk::export_handler!(OnlyErrors);
/// ```
pub trait Handler: Sized + 'static {
    /// Builds the handler from the stage's configuration.
    ///
    /// # Errors
    /// An `invalid-config` [`Error`] naming the key at fault; the version does not serve.
    fn init(config: &Config) -> Result<Self, Error>;

    /// Handles one event: call [`Emit::keep`], [`Emit::emit`] (any number of times), or
    /// nothing to drop it.
    ///
    /// # Errors
    /// An [`Error`] fails this event only: the host dead-letters it with the message.
    fn handle(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), Error>;

    /// Handles a whole batch. The default calls [`Handler::handle`] for each event.
    ///
    /// # Errors
    /// An [`Error`] fails the whole batch (the host then retries event by event).
    fn handle_batch(&mut self, batch: &Batch<'_>, out: &mut Outcomes) -> Result<(), Error> {
        for event in batch.events() {
            let mut emit = out.emitter(event.index());
            if let Err(error) = self.handle(&event, &mut emit) {
                out.fail(event.index(), error);
            }
        }
        Ok(())
    }
}

/// The outcomes of a batch under construction.
pub struct Outcomes {
    keep: Vec<u8>,
    emitted: EmittedBuilder,
    failures: Vec<types::Failure>,
}

impl Outcomes {
    fn new(len: usize) -> Self {
        Self {
            keep: vec![0; len.div_ceil(8)],
            emitted: EmittedBuilder::default(),
            failures: Vec::new(),
        }
    }

    /// Passes input `index` through unchanged (no copy of its payload).
    pub fn keep(&mut self, index: usize) {
        if let Some(byte) = self.keep.get_mut(index / 8) {
            *byte |= 1 << (index % 8);
        }
    }

    /// Emits `payload` for input `index`, inheriting its key, time and headers. Emit in
    /// input order.
    pub fn emit(&mut self, index: usize, payload: &[u8]) {
        self.emitted.push_payload(index as u32, payload);
    }

    /// Emits a full [`Output`] for input `index`.
    pub fn emit_output(&mut self, index: usize, output: Output) {
        self.emitted.push(index as u32, output);
    }

    /// Fails input `index`: its outputs are withdrawn and the host dead-letters it.
    pub fn fail(&mut self, index: usize, error: Error) {
        if let Some(byte) = self.keep.get_mut(index / 8) {
            *byte &= !(1 << (index % 8));
        }
        self.emitted.retract(index as u32);
        self.failures.push(types::Failure {
            index: index as u32,
            error: error.into(),
        });
    }

    /// The per-event handle for input `index`.
    pub fn emitter(&mut self, index: usize) -> Emit<'_> {
        Emit {
            outcomes: self,
            index,
        }
    }

    fn finish(self, batch: &Batch<'_>) -> WitOutcomes {
        let key = |s: u32| {
            batch
                .get(s as usize)
                .and_then(|e| e.key())
                .map(<[u8]>::to_vec)
        };
        let time = |s: u32| batch.get(s as usize).map_or(0, |e| e.time());
        let headers = |s: u32| {
            batch.get(s as usize).map_or_else(Vec::new, |e| {
                e.headers()
                    .map(|(n, v)| (n.to_owned(), v.to_vec()))
                    .collect()
            })
        };
        WitOutcomes {
            keep: self.keep,
            outputs: self.emitted.finish(Inherit {
                key: &key,
                time: &time,
                headers: &headers,
            }),
            failures: self.failures,
        }
    }
}

/// What one event's handler may do with it.
pub struct Emit<'o> {
    outcomes: &'o mut Outcomes,
    index: usize,
}

impl Emit<'_> {
    /// Passes the event through unchanged.
    pub fn keep(&mut self) {
        self.outcomes.keep(self.index);
    }

    /// Emits a payload that inherits the event's key, time and headers.
    pub fn emit(&mut self, payload: &[u8]) {
        self.outcomes.emit(self.index, payload);
    }

    /// Emits an [`Output`] with its own key, time or headers.
    pub fn emit_output(&mut self, output: Output) {
        self.outcomes.emit_output(self.index, output);
    }

    /// Emits `value` encoded as a MessagePack map (struct fields by name).
    ///
    /// # Errors
    /// `internal` when `value` cannot be encoded.
    pub fn emit_serialized<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let payload = rmp_serde::to_vec_named(value)
            .map_err(|e| Error::internal(format!("cannot encode output: {e}")))?;
        self.emit(&payload);
        Ok(())
    }
}

#[doc(hidden)]
pub fn init<H: Handler>(slot: &RefCell<Option<H>>, config: String) -> Result<(), types::Error> {
    crate::state::init(slot, &config, H::init)
}

#[doc(hidden)]
pub fn process<H: Handler>(
    slot: &RefCell<Option<H>>,
    events: types::Batch,
) -> Result<WitOutcomes, types::Error> {
    let mut guard = slot.borrow_mut();
    let handler = guard
        .as_mut()
        .ok_or_else(|| Error::internal("process called before init"))?;
    let batch = Batch::new(&events);
    let mut outcomes = Outcomes::new(batch.len());
    handler.handle_batch(&batch, &mut outcomes)?;
    Ok(outcomes.finish(&batch))
}
