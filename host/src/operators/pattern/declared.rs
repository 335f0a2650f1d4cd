//! The matcher of a pattern declared in the pipeline file: one automaton run per key, and
//! the match events it reports.

use std::sync::Arc;

use bytes::Bytes;
use weir_plugin_sdk::msgpack;

use super::keyed::{KeyedMatcher, Step};
use super::nfa::{Found, KeyRun, Outcome};
use super::spec::Pattern;
use crate::event::Event;
use crate::plugins::CallError;

/// A declared pattern as a stage's matcher.
pub struct DeclaredMatcher {
    pattern: Arc<Pattern>,
    identity: String,
    timeouts: bool,
    found: Vec<Found>,
    evicted: u64,
}

impl DeclaredMatcher {
    /// Matches `pattern`; `identity` names its definition (a checkpoint made for another
    /// definition starts its keys over); `timeouts` sends ended partial matches out.
    pub fn new(pattern: Arc<Pattern>, identity: String, timeouts: bool) -> Self {
        Self {
            pattern,
            identity,
            timeouts,
            found: Vec::new(),
            evicted: 0,
        }
    }

    /// Each key's next deadline: when its oldest partial match runs out of time.
    fn timers(&self, states: &[KeyRun]) -> Vec<Option<i64>> {
        states
            .iter()
            .map(|s| s.next_deadline(&self.pattern))
            .collect()
    }

    fn emit(&mut self, key: usize, step: &mut Step) {
        for found in self.found.drain(..) {
            if found.outcome == Outcome::Evicted {
                self.evicted += 1;
                // Said at the 1st, 2nd, 4th, 8th... eviction: the running count, rarely.
                if self.evicted.is_power_of_two() {
                    tracing::warn!(
                        evicted = self.evicted,
                        max_partial_matches = self.pattern.max_partial_matches,
                        "a key holds max_partial_matches partial matches: the oldest are dropped (set timeouts = true to receive them on STAGE.timeout, or raise the bound)"
                    );
                }
            }
            let port = match found.outcome {
                Outcome::Matched => 0,
                Outcome::TimedOut | Outcome::Evicted if self.timeouts => 2,
                Outcome::TimedOut | Outcome::Evicted => continue,
            };
            let payload = match_payload(&self.pattern, &found);
            step.outputs
                .push((key, port, Event::new(payload, found.at)));
        }
    }
}

/// A match as one event: `{start, end, steps: {NAME: [event, ...]}}`, with `timed_out_at`
/// or `evicted_at` for a partial match that ended without matching.
pub fn match_payload(pattern: &Pattern, found: &Found) -> Bytes {
    let mut out = Vec::with_capacity(64 + found.events.iter().map(|e| e.2.len()).sum::<usize>());
    let start = found.events.first().map_or(found.at, |e| e.1);
    let end = found.events.last().map_or(found.at, |e| e.1);
    let ended = match found.outcome {
        Outcome::Matched => None,
        Outcome::TimedOut => Some("timed_out_at"),
        Outcome::Evicted => Some("evicted_at"),
    };
    msgpack::write_map_len(&mut out, 3 + u32::from(ended.is_some()));
    msgpack::write_str(&mut out, "start");
    msgpack::write_int(&mut out, start);
    msgpack::write_str(&mut out, "end");
    msgpack::write_int(&mut out, end);
    if let Some(name) = ended {
        msgpack::write_str(&mut out, name);
        msgpack::write_int(&mut out, found.at);
    }
    // Names in the order their first events came.
    let mut names: Vec<usize> = Vec::new();
    for (slot, _, _) in &found.events {
        if !names.contains(slot) {
            names.push(*slot);
        }
    }
    msgpack::write_str(&mut out, "steps");
    msgpack::write_map_len(&mut out, names.len() as u32);
    for slot in names {
        msgpack::write_str(&mut out, &pattern.names[slot]);
        let events: Vec<&Bytes> = found
            .events
            .iter()
            .filter(|e| e.0 == slot)
            .map(|e| &e.2)
            .collect();
        msgpack::write_array_len(&mut out, events.len() as u32);
        for payload in events {
            if msgpack::skip(payload).is_ok_and(|n| n == payload.len()) {
                out.extend_from_slice(payload);
            } else {
                msgpack::write_bin(&mut out, payload);
            }
        }
    }
    Bytes::from(out)
}

impl KeyedMatcher for DeclaredMatcher {
    type State = KeyRun;

    fn label(&self) -> Option<&str> {
        None
    }

    fn identity(&self) -> String {
        self.identity.clone()
    }

    fn accepts(&self, saved: &str) -> Result<bool, String> {
        Ok(saved == self.identity)
    }

    fn output_fields(&self) -> Option<&'static [&'static str]> {
        Some(&["start", "end", "steps", "timed_out_at", "evicted_at"])
    }

    fn catches_up(&self) -> bool {
        // `KeyRun::on_event` advances to the event's time before it takes the event.
        true
    }

    fn reset(&self, state: &mut KeyRun) {
        state.clear();
    }

    fn is_idle(&self, state: &KeyRun) -> bool {
        state.is_empty()
    }

    fn process(
        &mut self,
        states: &mut [KeyRun],
        _times: &[i64],
        events: &[Event],
        targets: &[u32],
    ) -> Result<Step, CallError> {
        let mut step = Step::default();
        for (event, &target) in events.iter().zip(targets) {
            let key = target as usize;
            states[key].on_event(&self.pattern, &event.payload, event.time, &mut self.found);
            self.emit(key, &mut step);
        }
        step.timers = self.timers(states);
        Ok(step)
    }

    fn on_timer(&mut self, states: &mut [KeyRun], now: i64) -> Result<Step, CallError> {
        let mut step = Step::default();
        for (key, state) in states.iter_mut().enumerate() {
            state.advance(&self.pattern, now, &mut self.found);
            self.emit(key, &mut step);
        }
        step.timers = self.timers(states);
        Ok(step)
    }
}
