//! The pattern stage: holds each key's matcher state and timer, buffers events until the
//! watermark passes them, and feeds them to the matcher (declared or plugin) in event-time
//! order, firing each key's timer when event time reaches it.
//!
//! Its checkpoint holds the states, timers, buffered events and the source positions they
//! reflect, like the window stage's, so a restart passes over what it holds already.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use weir_plugin_sdk::msgpack;

use super::buffer::EventBuffer;
use super::keyed::{KeyedMatcher, Step, TIMEOUT_PORT};
use crate::config::PatternStageConfig;
use crate::delivery::{DeadLetterReason, dead_letter_event};
use crate::event::Event;
use crate::operators::replay::{
    Refusals, Replay, SavedClocks, SavedPositions, check_snapshot, event_time,
};
use crate::operators::window::{GroupKey, Scalar, SourceOrder};
use crate::operators::{Operator, Processed, Stateful};

const SNAPSHOT_VERSION: u32 = 3;

/// A key has events in the batch being gathered.
const IN_BATCH: u8 = 1;
/// A key's timer is among those about to fire.
const IN_DUE: u8 = 2;

struct KeyState<S> {
    key: GroupKey,
    state: S,
    /// Whether it waits in the batch or the due timers being gathered (`IN_*` bits).
    queued: u8,
    /// Its index among the keys of the call being made.
    slot: u32,
    timer: Option<i64>,
    /// Its events waiting in the buffer.
    buffered: usize,
}

#[derive(Serialize, Deserialize)]
struct Held {
    payload: Vec<u8>,
    key: Option<Vec<u8>>,
    time: i64,
    headers: Vec<(String, Vec<u8>)>,
}

#[derive(Serialize, Deserialize)]
struct PatternSnapshot<S> {
    version: u32,
    workers: u32,
    /// What the states belong to (the plugin, or the declared pattern's definition).
    matcher: String,
    watermark: i64,
    arrivals: u64,
    keys: Vec<(GroupKey, S, Option<i64>)>,
    /// Events waiting for the watermark: (time, arrival, key, event).
    buffered: Vec<(i64, u64, GroupKey, Held)>,
    positions: SavedPositions,
    clocks: SavedClocks,
}

/// One worker of a pattern stage.
pub struct PatternOperator<M: KeyedMatcher> {
    stage: String,
    matcher: M,
    group_by: Vec<String>,
    time_field: Option<String>,
    refusals: Refusals,
    max_keys: usize,
    /// Keys by value; a key of one field is held in the table itself, so finding it reads
    /// no memory of its own.
    ids: HashMap<SmallVec<[Scalar; 1]>, usize, foldhash::fast::RandomState>,
    keys: Vec<KeyState<M::State>>,
    free: Vec<usize>,
    timers: BTreeSet<(i64, usize)>,
    buffer: EventBuffer,
    arrivals: u64,
    replay: Replay,
    watermark: i64,
    /// The latest event time fed to the matcher.
    fed_until: i64,
    workers: usize,
    key: GroupKey,
    /// The matcher's outputs never name a key field: the key goes in front unread.
    key_fields_absent: bool,
}

impl<M: KeyedMatcher> PatternOperator<M> {
    /// A worker of stage `stage`, one of `workers`, with its `matcher`; `snapshot` is the
    /// worker's last checkpoint, if there is one.
    ///
    /// # Errors
    /// A checkpoint that does not fit this stage.
    pub fn new(
        stage: &str,
        config: &PatternStageConfig,
        workers: usize,
        order: &SourceOrder,
        late_dropped: Counter,
        matcher: M,
        snapshot: Option<&[u8]>,
    ) -> Result<Self, String> {
        let key_fields_absent = matcher.output_fields().is_some_and(|fields| {
            config
                .group_by
                .iter()
                .all(|g| !fields.contains(&g.as_str()))
        });
        let mut operator = Self {
            key_fields_absent,
            stage: stage.to_owned(),
            matcher,
            group_by: config.group_by.clone(),
            time_field: config.time_field.clone(),
            refusals: Refusals {
                stage: stage.to_owned(),
                policy: config.late,
                dropped: late_dropped,
            },
            max_keys: config.max_keys,
            ids: HashMap::default(),
            keys: Vec::new(),
            free: Vec::new(),
            timers: BTreeSet::new(),
            buffer: EventBuffer::default(),
            arrivals: 0,
            replay: Replay::new(order, config.out_of_orderness.0, config.idle_timeout.0),
            watermark: i64::MIN,
            fed_until: i64::MIN,
            workers,
            key: Vec::new(),
        };
        if let Some(bytes) = snapshot {
            operator.restore(bytes)?;
        }
        Ok(operator)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let version: (u32, u32) = postcard::take_from_bytes(bytes)
            .map(|(v, _)| v)
            .map_err(|e| format!("checkpoint unreadable: {e}"))?;
        check_snapshot((version.0, SNAPSHOT_VERSION), (version.1, self.workers))?;
        let snapshot: PatternSnapshot<M::State> =
            postcard::from_bytes(bytes).map_err(|e| format!("checkpoint unreadable: {e}"))?;
        let keep = self.matcher.accepts(&snapshot.matcher)?;
        if !keep {
            tracing::warn!(stage = %self.stage, keys = snapshot.keys.len(), "the pattern changed since the checkpoint: its partial matches are dropped, and matching starts over from the events that follow");
        }
        self.watermark = snapshot.watermark;
        self.arrivals = snapshot.arrivals;
        for (key, state, timer) in snapshot.keys.into_iter().filter(|_| keep) {
            let id = self.id(&key);
            self.keys[id].state = state;
            self.set_timer(id, timer);
        }
        for (time, arrival, key, held) in snapshot.buffered {
            let id = self.id(&key);
            let event = Event {
                key: held.key.map(Bytes::from),
                headers: held
                    .headers
                    .into_iter()
                    .map(|(name, value)| crate::event::Header {
                        name,
                        value: Bytes::from(value),
                    })
                    .collect(),
                ..Event::new(held.payload, held.time)
            };
            self.keys[id].buffered += 1;
            self.buffer.insert(time, arrival, id, event);
        }
        self.replay.restore(snapshot.positions, snapshot.clocks);
        Ok(())
    }

    fn id(&mut self, key: &[Scalar]) -> usize {
        if let Some(&id) = self.ids.get(key) {
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                // A forgotten key's slot, and what its state allocated.
                let slot = &mut self.keys[id];
                slot.key.clear();
                slot.key.extend_from_slice(key);
                self.matcher.reset(&mut slot.state);
                slot.queued = 0;
                slot.timer = None;
                slot.buffered = 0;
                id
            }
            None => {
                self.keys.push(KeyState {
                    key: key.to_vec(),
                    state: M::State::default(),
                    queued: 0,
                    slot: 0,
                    timer: None,
                    buffered: 0,
                });
                self.keys.len() - 1
            }
        };
        self.ids.insert(key.iter().cloned().collect(), id);
        id
    }

    fn set_timer(&mut self, id: usize, timer: Option<i64>) {
        if self.keys[id].timer == timer {
            return;
        }
        if let Some(old) = self.keys[id].timer.take() {
            self.timers.remove(&(old, id));
        }
        if let Some(at) = timer {
            self.timers.insert((at, id));
        }
        self.keys[id].timer = timer;
    }

    /// Frees a key whose state is empty again and that waits for nothing.
    fn maybe_release(&mut self, id: usize) {
        let key = &self.keys[id];
        let idle = key.timer.is_none() && key.buffered == 0 && self.matcher.is_idle(&key.state);
        if idle {
            self.ids.remove(&self.keys[id].key[..]);
            self.free.push(id);
        }
    }

    fn dead(&self, event: Event, reason: DeadLetterReason, why: &str, out: &mut Processed) {
        let why = format!("stage {}: {why}", self.stage);
        out.dead.push((
            reason,
            dead_letter_event(event, &self.stage, self.matcher.label(), reason, &why),
        ));
    }

    /// Feeds the matcher everything event time has reached: events in time order, and each
    /// key's timer after that key's events before it and before those at or after it. Only
    /// the order within a key matters, so the events of many keys go in one call and the
    /// timers of many keys in another; a call is cut short only where a key needs its
    /// timer between its own events.
    fn release(&mut self, out: &mut Processed) {
        let mut batch: Vec<(usize, Event)> = Vec::new();
        let mut due: Vec<usize> = Vec::new();
        let mut due_at = i64::MIN;
        loop {
            let watermark = self.watermark;
            let next_event = self
                .buffer
                .first()
                .map(|(t, _)| t)
                .filter(|&t| t <= watermark);
            let next_timer = self
                .timers
                .first()
                .map(|&(t, _)| t)
                .filter(|&t| t <= watermark);
            if watermark == i64::MAX && next_event.is_none() {
                // The input is over and every event is in: one last call for each key still
                // waiting, at the end of time. What it asks for then is dropped.
                self.feed(std::mem::take(&mut batch), out);
                let mut ids = std::mem::take(&mut due);
                while let Some((_, id)) = self.timers.pop_first() {
                    self.keys[id].timer = None;
                    ids.push(id);
                }
                if ids.is_empty() {
                    return;
                }
                self.fire(ids, i64::MAX, out);
                continue;
            }
            let timer_first = match (next_event, next_timer) {
                (None, None) => {
                    if batch.is_empty() && due.is_empty() {
                        return;
                    }
                    // What they do may set timers that are due already: look again.
                    self.feed(std::mem::take(&mut batch), out);
                    self.fire(std::mem::take(&mut due), due_at, out);
                    due_at = i64::MIN;
                    continue;
                }
                (Some(event), Some(timer)) => timer <= event,
                (None, Some(_)) => true,
                (Some(_), None) => false,
            };
            if timer_first {
                let Some((at, id)) = self.timers.pop_first() else {
                    continue;
                };
                self.keys[id].timer = None;
                if self.keys[id].queued & IN_BATCH != 0 {
                    // Its events before the timer first; what the matcher asks for after
                    // them replaces this timer, as any call's answer does. A matcher that
                    // catches up by itself takes its later events in the same call.
                    if !self.matcher.catches_up() {
                        self.feed(std::mem::take(&mut batch), out);
                    }
                    continue;
                }
                self.keys[id].queued |= IN_DUE;
                due.push(id);
                due_at = due_at.max(at);
            } else {
                let Some((_, id)) = self.buffer.first() else {
                    continue;
                };
                if self.keys[id].queued & IN_DUE != 0 {
                    // Its timer first; it may ask for another before this event, so look
                    // again before taking the event.
                    self.fire(std::mem::take(&mut due), due_at, out);
                    due_at = i64::MIN;
                    continue;
                }
                let Some((id, event)) = self.buffer.pop_first() else {
                    continue;
                };
                self.keys[id].buffered -= 1;
                self.fed_until = self.fed_until.max(event.time);
                self.keys[id].queued |= IN_BATCH;
                batch.push((id, event));
            }
        }
    }

    /// Tells the keys `ids`, whose timers are due, that event time reached `now`.
    fn fire(&mut self, ids: Vec<usize>, now: i64, out: &mut Processed) {
        if ids.is_empty() {
            return;
        }
        for &id in &ids {
            self.keys[id].queued &= !IN_DUE;
        }
        let mut states: Vec<M::State> = ids
            .iter()
            .map(|&id| std::mem::take(&mut self.keys[id].state))
            .collect();
        match self.matcher.on_timer(&mut states, now) {
            Ok(step) => {
                let nows = vec![now; ids.len()];
                self.apply(&ids, states, step, &[], &nows, out);
            }
            Err(error) => {
                tracing::error!(stage = %self.stage, error = %error, keys = ids.len(), "pattern timer call failed; these keys keep their state and are called again later");
                let again = self.later();
                for (&id, state) in ids.iter().zip(states) {
                    self.keys[id].state = state;
                    self.set_timer(id, again);
                    self.maybe_release(id);
                }
            }
        }
    }

    /// Feeds `batch` (events in time order, with their keys) in one call.
    fn feed(&mut self, batch: Vec<(usize, Event)>, out: &mut Processed) {
        if batch.is_empty() {
            return;
        }
        let mut ids: Vec<usize> = Vec::new();
        let mut targets: Vec<u32> = Vec::with_capacity(batch.len());
        let mut events: Vec<Event> = Vec::with_capacity(batch.len());
        for (id, event) in batch {
            let key = &mut self.keys[id];
            if key.queued & IN_BATCH != 0 {
                key.queued &= !IN_BATCH;
                key.slot = ids.len() as u32;
                ids.push(id);
            }
            targets.push(key.slot);
            events.push(event);
        }
        let mut states: Vec<M::State> = ids
            .iter()
            .map(|&id| std::mem::take(&mut self.keys[id].state))
            .collect();
        let mut times = vec![i64::MIN; ids.len()];
        for (event, &target) in events.iter().zip(&targets) {
            times[target as usize] = times[target as usize].max(event.time);
        }
        match self.matcher.process(&mut states, &times, &events, &targets) {
            Ok(step) => self.apply(&ids, states, step, &events, &times, out),
            Err(error) => {
                tracing::error!(stage = %self.stage, error = %error, events = events.len(), "pattern call failed; its events go to the dead-letter sink and the keys keep their state");
                let again = self.later();
                for (&id, state) in ids.iter().zip(states) {
                    self.keys[id].state = state;
                    // A timer taken to feed these events is not lost with them.
                    if self.keys[id].timer.is_none() {
                        self.set_timer(id, again);
                    }
                    self.maybe_release(id);
                }
                let reason = if error.fault().is_some() {
                    DeadLetterReason::PluginFault
                } else {
                    DeadLetterReason::PluginError
                };
                for mut event in events {
                    // Delivered again, it would meet state that went on without it.
                    event.redelivery = None;
                    self.dead(event, reason, &error.to_string(), out);
                }
            }
        }
    }

    /// The next time event time can reach: just past the watermark; none once the input
    /// has ended.
    fn later(&self) -> Option<i64> {
        (self.watermark < i64::MAX).then(|| self.watermark + 1)
    }

    /// Takes in what a call returned; `nows[i]` is the event time key `ids[i]` reached in it.
    fn apply(
        &mut self,
        ids: &[usize],
        states: Vec<M::State>,
        step: Step,
        events: &[Event],
        nows: &[i64],
        out: &mut Processed,
    ) {
        let Step {
            timers,
            outputs,
            failures,
        } = step;
        let later = self.later();
        for (((&id, state), timer), &now) in ids.iter().zip(states).zip(timers).zip(nows) {
            self.keys[id].state = state;
            // A timer asked for at or before the time just handled fires once event time
            // moves on again: asked for again and again, it would hold time in place.
            let timer = match timer {
                Some(t) if t <= now => later,
                other => other,
            };
            self.set_timer(id, timer);
        }
        for (state, port, mut event) in outputs {
            let (Some(&id), Some(port)) = (ids.get(state), out.ports.get_mut(port)) else {
                continue;
            };
            let key = &self.keys[id].key;
            event.payload = if self.key_fields_absent {
                key_in_front(&self.group_by, key, &event.payload)
            } else {
                with_key(&self.group_by, key, &event.payload)
            };
            port.push(event);
        }
        for (index, why) in failures {
            if let Some(event) = events.get(index) {
                let mut event = event.clone();
                event.redelivery = None;
                self.dead(event, DeadLetterReason::PluginError, &why, out);
            }
        }
        for &id in ids {
            self.maybe_release(id);
        }
    }
}

/// A match's payload with the key's `group_by` fields in front, when it is a map that does
/// not name them already.
fn with_key(group_by: &[String], key: &[Scalar], payload: &[u8]) -> Bytes {
    let unchanged = || Bytes::copy_from_slice(payload);
    let Ok((msgpack::Value::Map { len, entries }, _)) = msgpack::read(payload) else {
        return unchanged();
    };
    // Which key fields the map names already; its entries are copied as they are.
    let mut named = vec![false; group_by.len()];
    let mut rest = entries;
    for _ in 0..len {
        let Ok((name, size)) = msgpack::read(rest) else {
            return unchanged();
        };
        if let msgpack::Value::Str(name) = name {
            for (field, seen) in group_by.iter().zip(named.iter_mut()) {
                *seen |= field.as_bytes() == name;
            }
        }
        let Ok(value) = msgpack::skip(&rest[size..]) else {
            return unchanged();
        };
        rest = &rest[size + value..];
    }
    let body = &entries[..entries.len() - rest.len()];
    let missing = named.iter().filter(|seen| !**seen).count() as u32;
    let mut out = Vec::with_capacity(payload.len() + 16 * group_by.len());
    msgpack::write_map_len(&mut out, len + missing);
    for ((field, value), seen) in group_by.iter().zip(key).zip(&named) {
        if !seen {
            msgpack::write_str(&mut out, field);
            write_scalar(&mut out, value);
        }
    }
    out.extend_from_slice(body);
    Bytes::from(out)
}

/// A match's payload (a map known not to name the key fields) with them in front.
fn key_in_front(group_by: &[String], key: &[Scalar], payload: &[u8]) -> Bytes {
    let Ok((msgpack::Value::Map { len, entries }, _)) = msgpack::read(payload) else {
        return with_key(group_by, key, payload);
    };
    let mut out = Vec::with_capacity(payload.len() + 16 * group_by.len() + 5);
    msgpack::write_map_len(&mut out, len + group_by.len() as u32);
    for (field, value) in group_by.iter().zip(key) {
        msgpack::write_str(&mut out, field);
        write_scalar(&mut out, value);
    }
    out.extend_from_slice(entries);
    Bytes::from(out)
}

fn write_scalar(out: &mut Vec<u8>, value: &Scalar) {
    match value {
        Scalar::Nil => msgpack::write_nil(out),
        Scalar::Bool(b) => msgpack::write_bool(out, *b),
        Scalar::Int(i) => msgpack::write_int(out, *i),
        Scalar::Float(f) => msgpack::write_f64(out, *f),
        Scalar::Str(s) => msgpack::write_str(out, s),
        Scalar::Raw(bytes) => out.extend_from_slice(bytes),
    }
}

impl<M: KeyedMatcher> Operator for PatternOperator<M> {
    fn ports(&self) -> Vec<String> {
        vec![
            String::new(),
            crate::config::LATE_PORT.to_owned(),
            TIMEOUT_PORT.to_owned(),
        ]
    }

    fn blocking(&self) -> bool {
        true
    }

    fn process(&mut self, events: Vec<Event>, out: &mut Processed) {
        let now = Instant::now();
        self.replay.sync_partitions(now);
        for mut event in events {
            if self.replay.already_folded(event.origin) {
                continue;
            }
            let time = match event_time(self.time_field.as_deref(), &event) {
                Ok(time) => time,
                Err(why) => {
                    self.dead(event, DeadLetterReason::Malformed, &why, out);
                    continue;
                }
            };
            if self.watermark != i64::MIN && time <= self.watermark {
                let why = format!(
                    "event time {time} is behind the watermark {}: its place in the sequence has passed",
                    self.watermark
                );
                self.refusals
                    .refuse(event, DeadLetterReason::Late, &why, out);
                continue;
            }
            self.key.clear();
            for field in &self.group_by {
                self.key.push(Scalar::lookup(&event.payload, field));
            }
            let id = match self.ids.get(&self.key[..]) {
                Some(&id) => id,
                None if self.ids.len() >= self.max_keys => {
                    let why = format!(
                        "pattern state is full: {} keys hold state (max_keys)",
                        self.max_keys
                    );
                    self.refusals
                        .refuse(event, DeadLetterReason::StateFull, &why, out);
                    continue;
                }
                None => {
                    let key = std::mem::take(&mut self.key);
                    let id = self.id(&key);
                    self.key = key;
                    id
                }
            };
            let watermark = self.replay.observe(event.origin, time, now);
            event.time = time;
            self.arrivals += 1;
            self.keys[id].buffered += 1;
            self.buffer.insert(time, self.arrivals, id, event);
            self.watermark = self.watermark.max(watermark);
        }
        self.release(out);
    }

    fn stateful(&mut self) -> Option<&mut dyn Stateful> {
        Some(self)
    }
}

impl<M: KeyedMatcher> Stateful for PatternOperator<M> {
    fn tick(&mut self, out: &mut Processed) {
        let watermark = self.replay.watermark(Instant::now());
        if watermark > self.watermark {
            self.watermark = watermark;
            self.release(out);
        }
    }

    fn end_of_input(&mut self, out: &mut Processed) {
        // Every buffered event, then every timer: the stream is over. Timers asked for
        // from here on are dropped.
        let watermark = self.watermark;
        self.watermark = i64::MAX;
        self.release(out);
        // More input may come another day (a file appended to): it is not all late, but
        // what is before an event already fed is.
        self.watermark = watermark.max(self.fed_until);
    }

    fn flush(&mut self, _out: &mut Processed) {}

    fn snapshot(&mut self) -> Vec<u8> {
        let (positions, clocks) = self.replay.saved();
        let snapshot = PatternSnapshot {
            version: SNAPSHOT_VERSION,
            workers: self.workers as u32,
            matcher: self.matcher.identity(),
            watermark: self.watermark,
            arrivals: self.arrivals,
            keys: self
                .ids
                .values()
                .map(|&id| {
                    let k = &self.keys[id];
                    (k.key.clone(), &k.state, k.timer)
                })
                .collect(),
            buffered: self
                .buffer
                .iter()
                .map(|(time, arrival, id, event)| {
                    (
                        time,
                        arrival,
                        self.keys[id].key.clone(),
                        Held {
                            payload: event.payload.to_vec(),
                            key: event.key.as_ref().map(|k| k.to_vec()),
                            time: event.time,
                            headers: event
                                .headers
                                .iter()
                                .map(|h| (h.name.clone(), h.value.to_vec()))
                                .collect(),
                        },
                    )
                })
                .collect(),
            positions,
            clocks,
        };
        postcard::to_allocvec(&snapshot).expect("pattern stage state serializes")
    }

    fn tick_every(&self) -> std::time::Duration {
        std::time::Duration::from_millis(250)
    }
}
