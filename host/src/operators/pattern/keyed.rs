//! What the pattern stage asks of a matcher, declared or plugin: per-key state it can
//! hold and checkpoint, fed events in event-time order and told when event time moves.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::event::Event;
use crate::plugins::CallError;

/// Output port of timed-out (and evicted) partial matches.
pub const TIMEOUT_PORT: &str = "timeout";

/// What a call made of its keys.
#[derive(Debug, Default)]
pub struct Step {
    /// Per key (in the order given), the event time at which it wants to be called again.
    pub timers: Vec<Option<i64>>,
    /// Output events: (key index, port, event); port 0 holds matches, port 2 timeouts.
    pub outputs: Vec<(usize, usize, Event)>,
    /// Events the matcher refused: (index in the batch, why).
    pub failures: Vec<(usize, String)>,
}

/// A matcher with per-key state.
pub trait KeyedMatcher: Send + 'static {
    /// One key's state.
    type State: Default + Send + Serialize + DeserializeOwned;

    /// `plugin@version` for a plugin; none for a declared pattern.
    fn label(&self) -> Option<&str>;

    /// What the state belongs to, kept in checkpoints.
    fn identity(&self) -> String;

    /// Whether a checkpoint made for `saved` can be restored into this matcher: `Ok(true)`
    /// keeps its states, `Ok(false)` starts every key over.
    ///
    /// # Errors
    /// Why the checkpoint cannot be used at all.
    fn accepts(&self, saved: &str) -> Result<bool, String>;

    /// Whether feeding a key an event first brings it up to the event's time, as a timer
    /// call would: then a timer due before an event of the same call need not cut the
    /// call short.
    fn catches_up(&self) -> bool {
        false
    }

    /// Makes `state`, of a key forgotten, the state of a new key; what it allocated may be
    /// kept for the new key.
    fn reset(&self, state: &mut Self::State) {
        *state = Self::State::default();
    }

    /// The top-level fields its output events may hold, when it knows them: the stage
    /// then adds the key's fields without reading the output first.
    fn output_fields(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// Whether a key with this state may be forgotten.
    fn is_idle(&self, state: &Self::State) -> bool;

    /// Applies `events[i]` (in event-time order) to `states[targets[i]]`; `times[k]` is the
    /// latest event time of key `k` in the batch.
    ///
    /// # Errors
    /// A plugin's [`CallError`]; the states are then unchanged.
    fn process(
        &mut self,
        states: &mut [Self::State],
        times: &[i64],
        events: &[Event],
        targets: &[u32],
    ) -> Result<Step, CallError>;

    /// Event time reached `now` for `states` (whose timers are due).
    ///
    /// # Errors
    /// A plugin's [`CallError`]; the states are then unchanged.
    fn on_timer(&mut self, states: &mut [Self::State], now: i64) -> Result<Step, CallError>;
}
