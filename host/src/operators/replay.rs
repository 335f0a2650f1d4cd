//! What stateful stages (windows, patterns) share about their input: how far they have
//! folded each source partition, so that after a restart they pass over the events their
//! restored state holds; the event-time clock of each partition; the event time of an
//! event; and where events they refuse go.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;

use super::Processed;
use super::window::{Scalar, SourceOrder, WatermarkTracker};
use crate::config::LatePolicy;
use crate::delivery::{DeadLetterReason, dead_letter_event};
use crate::event::{Event, Origin};

/// The watermark input of events that carry no source position.
const NO_ORIGIN: (u16, u32) = (u16::MAX, u32::MAX);

/// A checkpoint's positions: (source, partition, last offset folded in).
pub type SavedPositions = Vec<(String, u32, u64)>;
/// A checkpoint's clocks: (source, partition, latest event time).
pub type SavedClocks = Vec<(String, u32, i64)>;

/// The input side of a stateful stage worker: positions folded and the watermark.
pub struct Replay {
    order: SourceOrder,
    /// Positions the restored state reflects: events at or before them are in it.
    restored: HashMap<(u16, u32), u64>,
    /// Positions folded in so far.
    folded: HashMap<(u16, u32), u64>,
    watermarks: WatermarkTracker<(u16, u32)>,
    /// The version of the sources' assignments last taken in.
    assignments_seen: u64,
    /// Events passed over because the state holds them already.
    pub replayed: u64,
}

impl Replay {
    /// Nothing folded yet; the watermark trails by `out_of_orderness` and lets inputs go
    /// after `idle_timeout`.
    pub fn new(order: &SourceOrder, out_of_orderness: Duration, idle_timeout: Duration) -> Self {
        Self {
            order: order.clone(),
            restored: HashMap::new(),
            folded: HashMap::new(),
            watermarks: WatermarkTracker::new(out_of_orderness, idle_timeout),
            assignments_seen: 0,
            replayed: 0,
        }
    }

    /// Takes in partitions the sources have been assigned since the last call: each holds
    /// the watermark back until its first event (or until it idles out).
    pub fn sync_partitions(&mut self, now: Instant) {
        let version = self.order.assignments.version();
        if version == self.assignments_seen {
            return;
        }
        self.assignments_seen = version;
        for input in self.order.assignments.all() {
            if self.order.feeds.get(input.0 as usize) == Some(&true) {
                self.watermarks.expect(input, now);
            }
        }
    }

    fn source_id(&self, name: &str) -> Option<u16> {
        self.order
            .names
            .iter()
            .position(|s| s == name)
            .map(|i| i as u16)
    }

    fn name(&self, id: u16) -> String {
        self.order
            .names
            .get(id as usize)
            .cloned()
            .unwrap_or_default()
    }

    /// Takes back the positions and clocks of a checkpoint.
    pub fn restore(&mut self, positions: SavedPositions, clocks: SavedClocks) {
        for (source, partition, offset) in positions {
            if let Some(id) = self.source_id(&source) {
                self.restored.insert((id, partition), offset);
                self.folded.insert((id, partition), offset);
            }
        }
        let now = Instant::now();
        for (source, partition, latest) in clocks {
            let input = if source.is_empty() {
                Some(NO_ORIGIN)
            } else {
                self.source_id(&source).map(|id| (id, partition))
            };
            if let Some(input) = input {
                self.watermarks.restore(input, latest, now);
            }
        }
    }

    /// The positions and clocks to checkpoint.
    pub fn saved(&self) -> (SavedPositions, SavedClocks) {
        let positions = self
            .folded
            .iter()
            .map(|(&(s, p), &offset)| (self.name(s), p, offset))
            .collect();
        let clocks = self
            .watermarks
            .clocks()
            .map(|((s, p), latest)| {
                if (s, p) == NO_ORIGIN {
                    (String::new(), 0, latest)
                } else {
                    (self.name(s), p, latest)
                }
            })
            .collect();
        (positions, clocks)
    }

    /// Whether the state already holds this event: read again after a restart (at or
    /// before the restored position) or within this run (behind what was folded; outputs
    /// of one input share its position, so an equal one is not a repeat). Only events of
    /// sources that arrive in their order can be told so.
    pub fn already_folded(&mut self, origin: Option<Origin>) -> bool {
        let Some(o) = origin.filter(|o| self.order.ordered.get(o.source as usize) == Some(&true))
        else {
            return false;
        };
        let at = (o.source, o.partition);
        if self.restored.get(&at).is_some_and(|&done| o.offset <= done) {
            self.replayed += 1;
            return true;
        }
        let folded = self.folded.entry(at).or_insert(o.offset);
        if o.offset < *folded {
            self.replayed += 1;
            return true;
        }
        *folded = o.offset;
        false
    }

    /// Notes an event of `origin`'s partition at `time`; returns the watermark.
    pub fn observe(&mut self, origin: Option<Origin>, time: i64, now: Instant) -> i64 {
        let input = origin.map_or(NO_ORIGIN, |o| (o.source, o.partition));
        self.watermarks.observe_and_watermark(input, time, now)
    }

    /// The watermark at `now`, with idle inputs let go.
    pub fn watermark(&mut self, now: Instant) -> i64 {
        self.watermarks.watermark(now)
    }
}

/// Whether a stage's checkpoint fits it: (format written, format read) and (workers that
/// wrote it, workers now). Keys are split among workers by hash, so state only fits a stage
/// with as many.
///
/// # Errors
/// What does not fit, and what to do.
pub fn check_snapshot(
    (written, read): (u32, u32),
    (wrote, now): (u32, usize),
) -> Result<(), String> {
    if written != read {
        return Err(format!(
            "checkpoint is of format {written}, this version reads {read}"
        ));
    }
    if wrote as usize != now {
        return Err(format!(
            "checkpoint was written by {wrote} workers and the stage now has {now}: set parallelism = {wrote} again, or remove the state directory to start over"
        ));
    }
    Ok(())
}

/// The event time of `event`: its `time_field` (ms since the epoch), else its own time.
///
/// # Errors
/// The field is missing or not a number.
pub fn event_time(time_field: Option<&str>, event: &Event) -> Result<i64, String> {
    let Some(field) = time_field else {
        return Ok(event.time);
    };
    match Scalar::lookup(&event.payload, field) {
        Scalar::Int(t) => Ok(t),
        Scalar::Float(t) if t.is_finite() => Ok(t as i64),
        Scalar::Nil => Err(format!("time field {field:?} is missing")),
        other => Err(format!(
            "time field {field:?} is {other:?}, not a number of ms since the epoch"
        )),
    }
}

/// Where a stateful stage's refused events (late, or beyond its state's bounds) go.
pub struct Refusals {
    /// The stage.
    pub stage: String,
    /// Its `late` policy.
    pub policy: LatePolicy,
    /// Counts what `drop` drops.
    pub dropped: Counter,
}

impl Refusals {
    /// Sends `event` where the policy says, with `why` for the dead-letter sink.
    pub fn refuse(&self, event: Event, reason: DeadLetterReason, why: &str, out: &mut Processed) {
        match self.policy {
            LatePolicy::Drop => {
                self.dropped.inc();
            }
            LatePolicy::Output => out.ports[1].push(event),
            LatePolicy::DeadLetter => out.dead.push((
                reason,
                dead_letter_event(event, &self.stage, None, reason, why),
            )),
        }
    }
}
