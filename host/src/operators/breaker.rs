//! The circuit breaker of a plugin stage: after too many faults in a window the plugin is
//! quarantined for a cool-down, then one batch is tried (half-open); a clean batch, or a
//! new version dropped in, closes it again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::BreakerConfig;

/// Whether a batch may go to the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Call the plugin.
    Try,
    /// Quarantined: apply the stage's quarantine policy instead.
    Refuse,
}

/// A change of state worth telling the operator about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing changed.
    None,
    /// The plugin was quarantined (again, when a half-open trial faulted).
    Tripped,
    /// A half-open trial was clean: the plugin serves again.
    Recovered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen,
}

/// Counts faults in a sliding window and decides when to quarantine.
#[derive(Debug)]
pub struct Breaker {
    failures: usize,
    window: Duration,
    cool_down: Duration,
    faults: VecDeque<Instant>,
    state: State,
}

impl Breaker {
    /// A closed breaker with `config`'s thresholds.
    pub fn new(config: &BreakerConfig) -> Self {
        Self {
            failures: config.failures.max(1) as usize,
            window: config.window.0,
            cool_down: config.cool_down.0,
            faults: VecDeque::new(),
            state: State::Closed,
        }
    }

    /// Whether the next batch may go to the plugin, at `now`.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            State::Open { until } if now < until => Admission::Refuse,
            State::Open { .. } => {
                self.state = State::HalfOpen;
                Admission::Try
            }
            State::Closed | State::HalfOpen => Admission::Try,
        }
    }

    /// Records the faults of a batch that was tried at `now`.
    pub fn record(&mut self, faults: usize, now: Instant) -> Transition {
        if self.state == State::HalfOpen {
            if faults > 0 {
                self.state = State::Open {
                    until: now + self.cool_down,
                };
                return Transition::Tripped;
            }
            self.state = State::Closed;
            self.faults.clear();
            return Transition::Recovered;
        }
        for _ in 0..faults {
            self.faults.push_back(now);
        }
        while self
            .faults
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            self.faults.pop_front();
        }
        if self.faults.len() >= self.failures {
            self.faults.clear();
            self.state = State::Open {
                until: now + self.cool_down,
            };
            return Transition::Tripped;
        }
        Transition::None
    }

    /// Closes the breaker: a new version starts with a clean record.
    pub fn reset(&mut self) {
        self.faults.clear();
        self.state = State::Closed;
    }

    /// Whether the plugin is quarantined (open or on trial).
    pub fn is_quarantined(&self) -> bool {
        self.state != State::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Duration as ConfigDuration;
    use crate::config::QuarantinePolicy;

    fn breaker() -> Breaker {
        Breaker::new(&BreakerConfig {
            failures: 3,
            window: ConfigDuration::from_secs(10),
            cool_down: ConfigDuration::from_secs(30),
            policy: QuarantinePolicy::DeadLetter,
        })
    }

    #[test]
    fn trips_on_the_threshold_within_the_window_only() {
        let t0 = Instant::now();
        let mut b = breaker();
        assert_eq!(b.record(2, t0), Transition::None);
        // The first two leave the window before the third arrives.
        assert_eq!(b.record(1, t0 + Duration::from_secs(11)), Transition::None);
        assert_eq!(b.admit(t0 + Duration::from_secs(11)), Admission::Try);
        assert_eq!(
            b.record(2, t0 + Duration::from_secs(12)),
            Transition::Tripped
        );
        assert_eq!(b.admit(t0 + Duration::from_secs(13)), Admission::Refuse);
    }

    #[test]
    fn half_open_trial_recovers_or_trips_again() {
        let t0 = Instant::now();
        let mut b = breaker();
        assert_eq!(b.record(3, t0), Transition::Tripped);
        let later = t0 + Duration::from_secs(31);
        assert_eq!(b.admit(later), Admission::Try);
        assert_eq!(b.record(1, later), Transition::Tripped);
        assert_eq!(b.admit(later + Duration::from_secs(1)), Admission::Refuse);
        let after = later + Duration::from_secs(31);
        assert_eq!(b.admit(after), Admission::Try);
        assert_eq!(b.record(0, after), Transition::Recovered);
        assert!(!b.is_quarantined());
    }

    #[test]
    fn reset_closes_it() {
        let mut b = breaker();
        b.record(3, Instant::now());
        assert!(b.is_quarantined());
        b.reset();
        assert_eq!(b.admit(Instant::now()), Admission::Try);
    }
}
