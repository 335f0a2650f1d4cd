//! Pattern: one event of each of the kinds in `steps`, in that order, each the next of its
//! kind after the one before (relaxed contiguity: other events in between are skipped), all
//! within `within_ms` of the first, for the same key. The plugin form of the declared
//!
//! ```toml
//! within = "1m"
//! [[stages.s.steps]]
//! name = "a"
//! where = "kind == 'a'"
//! [[stages.s.steps]]
//! name = "b"
//! where = "kind == 'b'"   # followed_by
//! ```
//!
//! Config: `{"field": "kind", "steps": ["a", "b", "c"], "within_ms": 60000}`. Every event of
//! the first kind starts a partial match; a match is `{"start": t0, "end": t}`.

use serde::{Deserialize, Serialize};
use weir_plugin_sdk::{Config, Error, Event, Matches, Pattern, export_pattern};

#[derive(Deserialize)]
struct Settings {
    field: String,
    steps: Vec<String>,
    within_ms: i64,
}

struct Sequence {
    settings: Settings,
}

/// Partial matches: (start time, steps matched so far), oldest first.
#[derive(Serialize, Deserialize, Default)]
struct State {
    partial: Vec<(i64, u32)>,
}

#[derive(Serialize)]
struct Found {
    start: i64,
    end: i64,
}

impl Pattern for Sequence {
    type State = State;

    fn init(config: &Config) -> Result<Self, Error> {
        let settings: Settings = config.deserialize()?;
        if settings.steps.is_empty() || settings.within_ms <= 0 {
            return Err(Error::invalid_config(
                "\"steps\" must name at least one kind and \"within_ms\" be positive",
            ));
        }
        Ok(Self { settings })
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
        let within = self.settings.within_ms;
        state.partial.retain(|&(start, _)| start + within > now);
        let Some(kind) = event.field(&self.settings.field)?.and_then(|v| v.as_str()) else {
            return Ok(());
        };
        let steps = &self.settings.steps;
        let mut found = Vec::new();
        state.partial.retain_mut(|(start, done)| {
            if steps[*done as usize] != kind {
                return true;
            }
            *done += 1;
            if *done as usize == steps.len() {
                found.push(*start);
                return false;
            }
            true
        });
        if steps[0] == kind {
            if steps.len() == 1 {
                found.push(now);
            } else {
                state.partial.push((now, 1));
            }
        }
        for start in found {
            matches.emit_serialized(&Found { start, end: now })?;
        }
        Ok(())
    }

    fn on_timer(
        &self,
        state: &mut State,
        now: i64,
        _matches: &mut Matches<'_>,
    ) -> Result<(), Error> {
        let within = self.settings.within_ms;
        state.partial.retain(|&(start, _)| start + within > now);
        Ok(())
    }

    fn next_timer(&self, state: &State) -> Option<i64> {
        state
            .partial
            .iter()
            .map(|&(start, _)| start + self.settings.within_ms)
            .min()
    }
}

export_pattern!(Sequence);
