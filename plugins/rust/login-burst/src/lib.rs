//! Pattern: `failures` (default 3) failed logins followed by a successful one, all within
//! `within_ms` (default 60,000) of the first failure, for the same key (user).
//!
//! Events are maps with a string field `outcome` (`"fail"` or `"success"`; others are
//! ignored). A match is `{"failures": N, "first_failure": t0, "success": t}`. Failures older
//! than the bound are dropped by a timer, so state per user stays bounded by `failures`.

use serde::{Deserialize, Serialize};
use weir_plugin_sdk::{Config, Error, Event, Matches, Pattern, export_pattern};

struct LoginBurst {
    failures: usize,
    within_ms: i64,
}

/// Times of the most recent failures inside the bound, oldest first.
#[derive(Serialize, Deserialize, Default)]
struct State {
    failures: Vec<i64>,
}

#[derive(Serialize)]
struct Burst {
    failures: usize,
    first_failure: i64,
    success: i64,
}

impl LoginBurst {
    fn expire(&self, state: &mut State, now: i64) {
        state.failures.retain(|&t| now - t <= self.within_ms);
    }
}

impl Pattern for LoginBurst {
    type State = State;

    fn init(config: &Config) -> Result<Self, Error> {
        let failures = config.opt_u64("failures")?.unwrap_or(3);
        if failures == 0 {
            return Err(Error::invalid_config(
                "config key \"failures\" must be at least 1",
            ));
        }
        Ok(Self {
            failures: failures as usize,
            within_ms: config.opt_u64("within_ms")?.unwrap_or(60_000) as i64,
        })
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
        match event.field("outcome")?.and_then(|v| v.as_str()) {
            Some("fail") => {
                state.failures.push(now);
                if state.failures.len() > self.failures {
                    state.failures.remove(0);
                }
            }
            Some("success") => {
                if state.failures.len() >= self.failures {
                    matches.emit_serialized(&Burst {
                        failures: state.failures.len(),
                        first_failure: state.failures[0],
                        success: now,
                    })?;
                }
                state.failures.clear();
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

    fn next_timer(&self, state: &State) -> Option<i64> {
        state.failures.first().map(|t| t + self.within_ms + 1)
    }
}

export_pattern!(LoginBurst);
