//! {{name}}: for each key, an event with `kind == "start"` followed by one with
//! `kind == "end"` less than `within_ms` (default 60000) later emits
//! `{"start": t0, "end": t1}`. A newer start replaces a pending one.

use serde::{Deserialize, Serialize};
use weir_plugin_sdk::{Config, Error, Event, Matches, Pattern, export_pattern};

struct {{class}} {
    within_ms: i64,
}

/// The state the host keeps per key, and checkpoints: the time of the pending start.
#[derive(Serialize, Deserialize, Default)]
struct State {
    pending: Option<i64>,
}

#[derive(Serialize)]
struct Found {
    start: i64,
    end: i64,
}

impl {{class}} {
    // Events of one key arrive in event-time order, so a start this old can never match.
    fn expire(&self, state: &mut State, now: i64) {
        if state.pending.is_some_and(|t0| t0 + self.within_ms <= now) {
            state.pending = None;
        }
    }
}

impl Pattern for {{class}} {
    type State = State;

    fn init(config: &Config) -> Result<Self, Error> {
        let within_ms = config.opt_u64("within_ms")?.unwrap_or(60_000);
        let within_ms = i64::try_from(within_ms)
            .ok()
            .filter(|&w| w > 0)
            .ok_or_else(|| Error::invalid_config("\"within_ms\" must be a positive number"))?;
        Ok(Self { within_ms })
    }

    fn create(&self) -> State {
        State::default()
    }

    fn on_event(
        &self,
        state: &mut State,
        event: &Event<'_>,
        matches: &mut Matches<'_>,
    ) -> Result<(), Error> {
        let now = event.time();
        self.expire(state, now);
        match event.field("kind")?.and_then(|v| v.as_str()) {
            Some("start") => state.pending = Some(now),
            Some("end") => {
                if let Some(start) = state.pending.take() {
                    matches.emit_serialized(&Found { start, end: now })?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn on_timer(
        &self,
        state: &mut State,
        now: i64,
        _matches: &mut Matches<'_>,
    ) -> Result<(), Error> {
        self.expire(state, now);
        Ok(())
    }

    // The host calls `on_timer` when event time reaches this, so a key whose start never
    // ends does not hold its state forever.
    fn next_timer(&self, state: &State) -> Option<i64> {
        state.pending.map(|t0| t0 + self.within_ms)
    }
}

export_pattern!({{class}});
