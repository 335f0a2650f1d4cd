//! The `pattern` world: custom CEP matchers over keyed streams with host-held state.

use std::cell::RefCell;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::pattern::exports::weir::plugin::pattern_matcher::Progress;
use crate::bindings::types;
use crate::config::Config;
use crate::error::Error;
use crate::event::{Batch, Event};
use crate::output::{EmittedBuilder, Inherit, Output};
use crate::state::{self, decode, encode, pack, values, with};

/// A matcher over one key's events. The state is a serde type held by the host (as
/// MessagePack, fields by name). Export the type with [`crate::export_pattern!`].
pub trait Pattern: Sized + 'static {
    /// Per-key state.
    type State: Serialize + DeserializeOwned;

    /// Builds the pattern from the stage's configuration.
    ///
    /// # Errors
    /// An `invalid-config` [`Error`] naming the key at fault.
    fn init(config: &Config) -> Result<Self, Error>;

    /// The state of a key that has seen nothing.
    fn create(&self) -> Self::State;

    /// Applies one event (events of a key arrive in event-time order).
    ///
    /// # Errors
    /// An [`Error`] fails this event only.
    fn on_event(
        &self,
        state: &mut Self::State,
        event: &Event<'_>,
        matches: &mut Matches<'_>,
    ) -> Result<(), Error>;

    /// Event time reached `now`, at or past [`Pattern::next_timer`]. The default does nothing.
    ///
    /// # Errors
    /// An [`Error`] fails the call.
    fn on_timer(
        &self,
        _state: &mut Self::State,
        _now: i64,
        _matches: &mut Matches<'_>,
    ) -> Result<(), Error> {
        Ok(())
    }

    /// When this state next wants [`Pattern::on_timer`]. The default is never.
    fn next_timer(&self, _state: &Self::State) -> Option<i64> {
        None
    }
}

/// Where a pattern emits its matches.
pub struct Matches<'a> {
    emitted: &'a mut EmittedBuilder,
    state: u32,
    time: i64,
}

impl Matches<'_> {
    /// Emits a match payload stamped with the time of the current event (or timer).
    pub fn emit(&mut self, payload: Vec<u8>) {
        self.emitted
            .push(self.state, Output::new(payload).time(self.time));
    }

    /// Emits a match with its own attributes (the key defaults to the state's key).
    pub fn emit_output(&mut self, output: Output) {
        let time = output.time.unwrap_or(self.time);
        self.emitted.push(self.state, output.time(time));
    }

    /// Emits `value` encoded as a MessagePack map.
    ///
    /// # Errors
    /// `internal` when `value` cannot be encoded.
    pub fn emit_serialized<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let payload = rmp_serde::to_vec_named(value)
            .map_err(|e| Error::internal(format!("cannot encode match: {e}")))?;
        self.emit(payload);
        Ok(())
    }
}

fn states<P: Pattern>(column: &types::Column) -> Result<Vec<P::State>, Error> {
    values(column)
        .into_iter()
        .map(|value| decode(value, "pattern state"))
        .collect()
}

fn progress<P: Pattern>(
    pattern: &P,
    states: &[P::State],
    emitted: EmittedBuilder,
    failures: Vec<types::Failure>,
) -> Result<Progress, Error> {
    let encoded = states.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
    let column = pack(encoded.iter().map(Vec::as_slice));
    let timers = states.iter().map(|s| pattern.next_timer(s)).collect();
    let none = |_| None;
    let zero = |_| 0;
    let no_headers = |_| Vec::new();
    Ok(Progress {
        states: column,
        timers,
        matches: emitted.finish(Inherit {
            key: &none,
            time: &zero,
            headers: &no_headers,
        }),
        failures,
    })
}

#[doc(hidden)]
pub fn init<P: Pattern>(slot: &RefCell<Option<P>>, config: String) -> Result<(), types::Error> {
    state::init(slot, &config, P::init)
}

#[doc(hidden)]
pub fn create<P: Pattern>(slot: &RefCell<Option<P>>) -> Result<Vec<u8>, types::Error> {
    with(slot, |p| encode(&p.create()))
}

#[doc(hidden)]
pub fn process<P: Pattern>(
    slot: &RefCell<Option<P>>,
    column: types::Column,
    events: types::Batch,
    targets: Vec<u32>,
) -> Result<Progress, types::Error> {
    with(slot, |p| {
        let mut states = states::<P>(&column)?;
        let batch = Batch::new(&events);
        // Matches must be emitted in state order; group event indexes by state first.
        let mut by_state: Vec<Vec<usize>> = vec![Vec::new(); states.len()];
        for (i, &t) in targets.iter().enumerate().take(batch.len()) {
            match by_state.get_mut(t as usize) {
                Some(list) => list.push(i),
                None => {
                    return Err(Error::internal(format!(
                        "event targets state {t} of {}",
                        states.len()
                    )));
                }
            }
        }
        let mut emitted = EmittedBuilder::default();
        let mut failures = Vec::new();
        for (s, indexes) in by_state.iter().enumerate() {
            for &i in indexes {
                let Some(event) = batch.get(i) else { continue };
                let mut matches = Matches {
                    emitted: &mut emitted,
                    state: s as u32,
                    time: event.time(),
                };
                if let Err(error) = p.on_event(&mut states[s], &event, &mut matches) {
                    failures.push(types::Failure {
                        index: i as u32,
                        error: error.into(),
                    });
                }
            }
        }
        progress(p, &states, emitted, failures)
    })
}

#[doc(hidden)]
pub fn on_timer<P: Pattern>(
    slot: &RefCell<Option<P>>,
    column: types::Column,
    now: i64,
) -> Result<Progress, types::Error> {
    with(slot, |p| {
        let mut states = states::<P>(&column)?;
        let mut emitted = EmittedBuilder::default();
        for (s, state) in states.iter_mut().enumerate() {
            let mut matches = Matches {
                emitted: &mut emitted,
                state: s as u32,
                time: now,
            };
            p.on_timer(state, now, &mut matches)?;
        }
        progress(p, &states, emitted, Vec::new())
    })
}
