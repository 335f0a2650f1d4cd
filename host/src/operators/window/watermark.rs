//! The watermark of a stage fed by several inputs: each input's latest event time less the
//! allowed out-of-orderness (and 1 ms: events at the latest time are still on time), the
//! minimum over the inputs that are not idle.
//!
//! An input with no event for `idle_timeout` stops holding the watermark back. When every
//! input is idle, event time is taken to go on with the wall clock from the latest event,
//! so the last windows of a stream that went quiet still close.

use std::time::{Duration, Instant};

struct InputClock<I> {
    input: I,
    latest: i64,
    seen_at: Instant,
}

/// Tracks the event time of each input and derives the stage's watermark.
///
/// Inputs are source partitions: a handful to a few dozen, so they live in a vector, and
/// the input of the previous event is tried first (events come in runs of one partition).
pub struct WatermarkTracker<I> {
    out_of_orderness: i64,
    idle_timeout: Duration,
    inputs: Vec<InputClock<I>>,
    last: usize,
    watermark: i64,
    /// Restored from a checkpoint, and no event seen since: the sources may take a while
    /// to come back (a consumer group rejoining), which is not idleness.
    resuming: bool,
}

impl<I: PartialEq + Copy> WatermarkTracker<I> {
    /// A tracker with no input seen yet; its watermark is `i64::MIN`.
    pub fn new(out_of_orderness: Duration, idle_timeout: Duration) -> Self {
        Self {
            out_of_orderness: i64::try_from(out_of_orderness.as_millis()).unwrap_or(i64::MAX),
            idle_timeout,
            inputs: Vec::new(),
            last: 0,
            watermark: i64::MIN,
            resuming: false,
        }
    }

    /// Notes an event of `input` at event time `time`, seen at `now`; returns whether it
    /// moved its input's clock forward (only then can the watermark move).
    pub fn observe(&mut self, input: I, time: i64, now: Instant) -> bool {
        if self.resuming {
            // Idle time counts from the first event after the restart.
            self.resuming = false;
            self.inputs.iter_mut().for_each(|c| c.seen_at = now);
        }
        let at = match self.inputs.get(self.last) {
            Some(clock) if clock.input == input => self.last,
            _ => match self.inputs.iter().position(|c| c.input == input) {
                Some(at) => at,
                None => {
                    self.inputs.push(InputClock {
                        input,
                        latest: time,
                        seen_at: now,
                    });
                    self.last = self.inputs.len() - 1;
                    return true;
                }
            },
        };
        self.last = at;
        let clock = &mut self.inputs[at];
        clock.seen_at = now;
        if time > clock.latest {
            clock.latest = time;
            true
        } else {
            false
        }
    }

    /// Notes that `input` exists before any event of it came: until one does (or it idles
    /// out), it holds the watermark back.
    pub fn expect(&mut self, input: I, now: Instant) {
        if !self.inputs.iter().any(|c| c.input == input) {
            self.inputs.push(InputClock {
                input,
                latest: i64::MIN,
                seen_at: now,
            });
        }
    }

    /// Notes an event as [`observe`](Self::observe) does and returns the watermark.
    pub fn observe_and_watermark(&mut self, input: I, time: i64, now: Instant) -> i64 {
        if !self.observe(input, time, now) {
            return self.watermark;
        }
        if self.inputs.len() == 1 {
            self.watermark = self.watermark.max(self.bound(time));
            return self.watermark;
        }
        self.watermark(now)
    }

    /// The watermark an input's latest event time allows: every event at or before it has
    /// come. One less than the latest less the out-of-orderness, so that more events at the
    /// latest time (or exactly the out-of-orderness behind it) are still on time.
    fn bound(&self, latest: i64) -> i64 {
        if latest == i64::MIN {
            return i64::MIN;
        }
        latest
            .saturating_sub(self.out_of_orderness)
            .saturating_sub(1)
    }

    /// The latest event time of each input, for a checkpoint.
    pub fn clocks(&self) -> impl Iterator<Item = (I, i64)> + '_ {
        self.inputs.iter().map(|c| (c.input, c.latest))
    }

    /// Restores an input's latest event time from a checkpoint, as if seen at `now`, and
    /// the watermark it implies.
    pub fn restore(&mut self, input: I, latest: i64, now: Instant) {
        match self.inputs.iter_mut().find(|c| c.input == input) {
            Some(clock) => clock.latest = clock.latest.max(latest),
            None => self.inputs.push(InputClock {
                input,
                latest,
                seen_at: now,
            }),
        }
        self.resuming = true;
    }

    /// The watermark at `now`; it never goes back.
    pub fn watermark(&mut self, now: Instant) -> i64 {
        if self.resuming {
            // Every restored input holds it, idle or not.
            if let Some(slowest) = self.inputs.iter().map(|c| c.latest).min() {
                let candidate = self.bound(slowest);
                self.watermark = self.watermark.max(candidate);
            }
            return self.watermark;
        }
        let active = self
            .inputs
            .iter()
            .filter(|c| now.saturating_duration_since(c.seen_at) < self.idle_timeout)
            .map(|c| c.latest)
            .min();
        let candidate = match active {
            Some(latest) => self.bound(latest),
            None => match self.inputs.iter().max_by_key(|c| c.latest) {
                // All idle: event time goes on with the wall clock since the idle timeout.
                Some(c) => {
                    let idle_for = now.saturating_duration_since(c.seen_at) - self.idle_timeout;
                    self.bound(c.latest)
                        .saturating_add(i64::try_from(idle_for.as_millis()).unwrap_or(i64::MAX))
                }
                None => i64::MIN,
            },
        };
        self.watermark = self.watermark.max(candidate);
        self.watermark
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_slowest_active_input_holds_the_watermark() {
        let start = Instant::now();
        let mut w = WatermarkTracker::new(Duration::from_millis(500), 10 * SECOND);
        assert_eq!(w.watermark(start), i64::MIN);
        w.observe("a", 10_000, start);
        w.observe("b", 4_000, start);
        assert_eq!(w.watermark(start), 3_499);
        w.observe("b", 12_000, start);
        assert_eq!(w.watermark(start), 9_499);
        // An older event does not move an input's clock back, nor the watermark.
        w.observe("a", 1_000, start);
        assert_eq!(w.watermark(start), 9_499);
    }

    #[test]
    fn an_idle_input_stops_holding_it_back() {
        let start = Instant::now();
        let mut w = WatermarkTracker::new(Duration::ZERO, 10 * SECOND);
        w.observe("quiet", 1_000, start);
        w.observe("busy", 5_000, start);
        assert_eq!(w.watermark(start), 999);
        let later = start + 11 * SECOND;
        w.observe("busy", 20_000, later);
        assert_eq!(w.watermark(later), 19_999, "the quiet input is idle");
        // It comes back behind: the watermark does not go back.
        w.observe("quiet", 2_000, later);
        assert_eq!(w.watermark(later), 19_999);
    }

    #[test]
    fn an_input_known_before_its_first_event_holds_the_watermark() {
        let start = Instant::now();
        let mut w = WatermarkTracker::new(Duration::ZERO, 10 * SECOND);
        w.expect("late", start);
        assert_eq!(w.observe_and_watermark("early", 50_000, start), i64::MIN);
        assert_eq!(w.observe_and_watermark("late", 2_000, start), 1_999);
        // An input that never comes idles out.
        let mut w = WatermarkTracker::new(Duration::ZERO, 10 * SECOND);
        w.expect("never", start);
        let later = start + 11 * SECOND;
        assert_eq!(w.observe_and_watermark("early", 50_000, later), 49_999);
    }

    #[test]
    fn restored_inputs_are_not_idle_until_events_come_again() {
        let start = Instant::now();
        let mut w = WatermarkTracker::new(Duration::ZERO, 10 * SECOND);
        w.restore("a", 5_000, start);
        w.restore("b", 3_000, start);
        assert_eq!(w.watermark(start), 2_999);
        // Sources slow to come back after a restart do not make event time run on.
        assert_eq!(w.watermark(start + 60 * SECOND), 2_999);
        let back = start + 61 * SECOND;
        w.observe("a", 6_000, back);
        assert_eq!(
            w.watermark(back),
            2_999,
            "b is counted from now, not from the restore"
        );
        let later = back + 11 * SECOND;
        w.observe("a", 6_500, later);
        assert_eq!(w.watermark(later), 6_499, "then b is idle");
    }

    #[test]
    fn when_every_input_is_idle_event_time_follows_the_clock() {
        let start = Instant::now();
        let mut w = WatermarkTracker::new(Duration::from_millis(100), 10 * SECOND);
        w.observe(0, 50_000, start);
        assert_eq!(w.watermark(start + 5 * SECOND), 49_899);
        assert_eq!(w.watermark(start + 10 * SECOND), 49_899);
        assert_eq!(w.watermark(start + 13 * SECOND), 52_899);
    }
}
