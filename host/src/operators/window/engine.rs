//! Keyed window state driven by event time: events are folded into the windows they fall
//! in, and windows fire as the watermark passes their end.
//!
//! The rules are Flink's: a window `[start, end)` fires once the watermark reaches
//! `end - 1`; it is kept `allowed_lateness` longer, and an event for it in that time fires
//! it again at once, as an update; an event whose every window is past that is late, and
//! left to the caller (a side output or the dead-letter sink).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::aggregate::{Accumulator, AggKind, AggSpec};
use super::assign::{MAX_EVENT_TIME, WindowKind};
use super::custom::CustomAggregations;
use super::value::Scalar;
use crate::event::Event;

/// A plugin aggregation's value to fill into a result: `out[at].values[position]`.
struct Finishing {
    at: usize,
    position: usize,
    agg: u16,
    accumulator: Vec<u8>,
}

/// Events (times windows) that wait for the plugin aggregations before they are folded
/// in regardless. Waiting is what makes plugins fast: a plugin decodes and encodes each
/// accumulator once per call, so the more events per accumulator a call brings, the less
/// each event costs. Results, merges and checkpoints fold in what waits first.
const CUSTOM_FLUSH_AT: usize = 65_536;

/// The values of a stage's `group_by` fields for one event.
pub type GroupKey = Vec<Scalar>;

/// Why a window result was emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firing {
    /// The watermark passed the window's end (or a count window filled): the result.
    Final,
    /// An early firing before the window closed; a later result replaces it.
    Early,
    /// An event within the allowed lateness changed an already fired window; this result
    /// replaces the earlier one.
    Update,
}

impl Firing {
    /// The word written into result events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Final => "final",
            Self::Early => "early",
            Self::Update => "update",
        }
    }
}

/// One window's result.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowResult {
    /// The `group_by` values.
    pub key: GroupKey,
    /// Window start (inclusive), ms.
    pub start: i64,
    /// Window end (exclusive), ms.
    pub end: i64,
    /// One value per aggregation, in configuration order.
    pub values: Vec<rmpv::Value>,
    /// Events folded into the window.
    pub events: u64,
    /// Why it was emitted.
    pub firing: Firing,
}

/// What became of an event handed to [`WindowEngine::add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Folded into at least one window.
    Accepted,
    /// Every window it falls in is past its allowed lateness.
    Late,
    /// Taking it would exceed a limit of the state; nothing was changed.
    Full(Limit),
    /// Its event time is further than [`MAX_EVENT_TIME`] from the epoch.
    OutOfRange,
}

/// A bound on a window stage's state, which it refuses events beyond rather than grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// At most this many keys with open windows.
    Keys(usize),
    /// At most this many open windows over all keys.
    Windows(usize),
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Keys(n) => write!(
                f,
                "window state is full: {n} keys hold open windows (max_keys)"
            ),
            Self::Windows(n) => write!(
                f,
                "window state is full: {n} windows are open (max_windows)"
            ),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Window {
    end: i64,
    accumulators: Vec<Accumulator>,
    events: u64,
    fired: bool,
    /// Changed since its last firing (for early firings).
    changed: bool,
    /// The earliest event time in it (count windows report it as their start).
    earliest: i64,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    Fire,
    Purge,
}

struct KeyState {
    key: GroupKey,
    /// Open windows by start. Session windows never overlap, so the start names one.
    windows: Windows,
}

/// A key's open windows, sorted by start. A key holds few at once (size / slide, plus
/// those the disorder keeps open), so a sorted vector beats a tree node per key.
#[derive(Default)]
struct Windows(Vec<(i64, Window)>);

impl Windows {
    fn position(&self, start: i64) -> Result<usize, usize> {
        self.0.binary_search_by_key(&start, |(s, _)| *s)
    }

    fn contains_key(&self, start: &i64) -> bool {
        self.position(*start).is_ok()
    }

    fn get_mut(&mut self, start: &i64) -> Option<&mut Window> {
        let at = self.position(*start).ok()?;
        Some(&mut self.0[at].1)
    }

    fn insert(&mut self, start: i64, window: Window) {
        match self.position(start) {
            Ok(at) => self.0[at].1 = window,
            Err(at) => self.0.insert(at, (start, window)),
        }
    }

    fn remove(&mut self, start: &i64) -> Option<Window> {
        let at = self.position(*start).ok()?;
        Some(self.0.remove(at).1)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = (&i64, &Window)> {
        self.0.iter().map(|(s, w)| (s, w))
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (&i64, &mut Window)> {
        self.0.iter_mut().map(|(s, w)| (&*s, w))
    }

    /// Windows starting at or before `start`.
    fn up_to(&self, start: i64) -> impl Iterator<Item = (&i64, &Window)> {
        self.iter().take_while(move |(s, _)| **s <= start)
    }
}

/// What a checkpoint keeps of an engine: the watermark, the arrival counter and every
/// key's windows. Timers are made again from the windows.
#[derive(Deserialize)]
struct Snapshot {
    watermark: i64,
    arrivals: u64,
    keys: Vec<(GroupKey, Vec<(i64, Window)>)>,
}

/// The windows of every key of one stage worker.
pub struct WindowEngine {
    kind: WindowKind,
    aggs: Vec<AggSpec>,
    allowed_lateness: i64,
    ids: HashMap<GroupKey, usize, foldhash::fast::RandomState>,
    keys: Vec<KeyState>,
    /// Slots of `keys` whose key left (no windows).
    free: Vec<usize>,
    /// Timers by time: (key id, window start, window end, what to do).
    timers: BTreeMap<i64, Vec<(usize, i64, i64, TimerKind)>>,
    watermark: i64,
    arrivals: u64,
    open: usize,
    max_keys: usize,
    max_windows: usize,
    /// Early firing of a window every this many events in it.
    early_count: Option<u64>,
    /// Each window's result once, when it closes for good (after its allowed lateness):
    /// no early firings, no updates.
    emit_final: bool,
    scratch: Vec<(i64, i64)>,
    /// The distinct fields the aggregations read, and which one each reads.
    fields: Vec<String>,
    field_of: Vec<Option<usize>>,
    /// This event's value of each field.
    values: Vec<Scalar>,
    /// Plugin aggregations, folded a batch at a time.
    custom: Option<Box<dyn CustomAggregations>>,
    /// (position among `aggs`, custom number) of each plugin aggregation.
    custom_aggs: Vec<(usize, u16)>,
    /// Events waiting for the plugins, and the windows each goes into: (key id, start,
    /// index into `pending_events`).
    pending_events: Vec<Event>,
    pending: Vec<(usize, i64, u32)>,
    /// The event being added, as an index into `pending_events`.
    current: Option<u32>,
    /// Events a plugin could not fold in, with why.
    custom_failures: Vec<(Event, String)>,
    /// Results waiting for their plugin aggregations' values.
    finishing: Vec<Finishing>,
    spare: FlushBuffers,
}

/// What a flush of the plugin aggregations works in, kept between flushes.
#[derive(Default)]
struct FlushBuffers {
    pending: Vec<(usize, i64, u32)>,
    events: Vec<Event>,
    slots: Vec<(usize, i64)>,
    slot_of: HashMap<(usize, i64), u32, foldhash::fast::RandomState>,
    targets: Vec<u32>,
}

impl WindowEngine {
    /// An engine with no state.
    pub fn new(kind: WindowKind, aggs: Vec<AggSpec>, allowed_lateness: i64) -> Self {
        let custom_aggs = aggs
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a.kind {
                AggKind::Custom(n) => Some((i, n)),
                _ => None,
            })
            .collect();
        let mut fields: Vec<String> = Vec::new();
        let field_of = aggs
            .iter()
            .map(|agg| {
                let field = agg.field.as_ref()?;
                Some(fields.iter().position(|f| f == field).unwrap_or_else(|| {
                    fields.push(field.clone());
                    fields.len() - 1
                }))
            })
            .collect();
        Self {
            kind,
            aggs,
            allowed_lateness: allowed_lateness.max(0),
            ids: HashMap::default(),
            keys: Vec::new(),
            free: Vec::new(),
            timers: BTreeMap::new(),
            watermark: i64::MIN,
            arrivals: 0,
            open: 0,
            max_keys: usize::MAX,
            max_windows: usize::MAX,
            early_count: None,
            emit_final: false,
            scratch: Vec::new(),
            custom_aggs,
            fields,
            field_of,
            values: Vec::new(),
            custom: None,
            pending_events: Vec::new(),
            pending: Vec::new(),
            current: None,
            custom_failures: Vec::new(),
            finishing: Vec::new(),
            spare: FlushBuffers::default(),
        }
    }

    /// Has the plugin aggregations (`AggKind::Custom`) computed by `custom`.
    pub fn with_custom(mut self, custom: Box<dyn CustomAggregations>) -> Self {
        self.custom = Some(custom);
        self
    }

    /// Folds in `event` of `key` at event time `time`, as [`add`](Self::add) does; plugin
    /// aggregations take it with others, before any result that needs it, or at the next
    /// [`flush_custom`](Self::flush_custom).
    pub fn add_event(
        &mut self,
        key: &[Scalar],
        time: i64,
        event: &Event,
        out: &mut Vec<WindowResult>,
    ) -> Added {
        if self.custom_aggs.is_empty() {
            return self.add(key, time, &event.payload, out);
        }
        self.pending_events.push(event.clone());
        self.current = Some((self.pending_events.len() - 1) as u32);
        let added = self.add(key, time, &event.payload, out);
        self.current = None;
        if added != Added::Accepted {
            self.pending_events.pop();
        }
        if self.pending.len() >= CUSTOM_FLUSH_AT {
            self.flush_custom();
        }
        added
    }

    /// Events a plugin aggregation could not fold in since the last call, with why.
    pub fn take_custom_failures(&mut self) -> Vec<(Event, String)> {
        std::mem::take(&mut self.custom_failures)
    }

    /// Has the plugins fold in every event waiting for them.
    pub fn flush_custom(&mut self) {
        if self.pending.is_empty() {
            if self.current.is_none() {
                self.pending_events.clear();
            }
            return;
        }
        // The buffers go back, emptied, at the end: they are as large as a flush.
        let mut pending = std::mem::take(&mut self.spare.pending);
        let mut events = std::mem::take(&mut self.spare.events);
        std::mem::swap(&mut pending, &mut self.pending);
        std::mem::swap(&mut events, &mut self.pending_events);
        if let Some(current) = self.current {
            // The event being added may go into more windows after this flush.
            self.pending_events.push(events[current as usize].clone());
            self.current = Some(0);
        }
        let Some(custom) = self.custom.as_mut() else {
            return;
        };
        // Each window once, in the order first met; the events in arrival order.
        let spare = &mut self.spare;
        spare.slots.clear();
        spare.slot_of.clear();
        spare.targets.clear();
        for &(id, start, _) in &pending {
            let slot = *spare.slot_of.entry((id, start)).or_insert_with(|| {
                spare.slots.push((id, start));
                (spare.slots.len() - 1) as u32
            });
            spare.targets.push(slot);
        }
        // Events in one window each (tumbling, session, count) go as they are; events in
        // several (sliding) once per window.
        let in_order = pending.iter().enumerate().all(|(i, p)| p.2 as usize == i);
        let repeated: Vec<Event>;
        let batch: &[Event] = if in_order {
            // The event being added may be last with no window yet: it waits.
            &events[..pending.len()]
        } else {
            repeated = pending
                .iter()
                .map(|p| events[p.2 as usize].clone())
                .collect();
            &repeated
        };
        let (slots, targets) = (&spare.slots, &spare.targets);
        let mut failed = std::collections::BTreeMap::new();
        for &(position, number) in &self.custom_aggs {
            let mut accs: Vec<Vec<u8>> = slots
                .iter()
                .map(|&(id, start)| {
                    match self.keys[id]
                        .windows
                        .get_mut(&start)
                        .map(|w| &mut w.accumulators[position])
                    {
                        Some(Accumulator::Custom(bytes)) => std::mem::take(bytes),
                        _ => Vec::new(),
                    }
                })
                .collect();
            for (i, why) in custom.add(number, &mut accs, batch, targets) {
                failed.entry(pending[i].2).or_insert(why);
            }
            for (&(id, start), acc) in slots.iter().zip(accs) {
                if let Some(Accumulator::Custom(bytes)) = self.keys[id]
                    .windows
                    .get_mut(&start)
                    .map(|w| &mut w.accumulators[position])
                {
                    *bytes = acc;
                }
            }
        }
        for (event, why) in failed {
            self.custom_failures
                .push((events[event as usize].clone(), why));
        }
        pending.clear();
        events.clear();
        self.spare.pending = pending;
        self.spare.events = events;
    }

    /// Fills in the plugin aggregations' values of the results just made in `out`, one
    /// plugin call per aggregation.
    fn finish_custom(&mut self, out: &mut [WindowResult]) {
        if self.finishing.is_empty() {
            return;
        }
        let finishing = std::mem::take(&mut self.finishing);
        let Some(custom) = self.custom.as_mut() else {
            return;
        };
        for &(_, number) in &self.custom_aggs {
            let (places, accs): (Vec<(usize, usize)>, Vec<Vec<u8>>) = finishing
                .iter()
                .filter(|f| f.agg == number)
                .map(|f| ((f.at, f.position), f.accumulator.clone()))
                .unzip();
            if accs.is_empty() {
                continue;
            }
            let values = custom.finish(number, &accs);
            for ((at, position), value) in places.into_iter().zip(values) {
                if let Some(slot) = out.get_mut(at).and_then(|r| r.values.get_mut(position)) {
                    *slot = value;
                }
            }
        }
    }

    /// Notes that the current event went into window `start` of key `id`, for the plugin
    /// aggregations.
    fn note_pending(&mut self, id: usize, start: i64) {
        if let Some(event) = self.current {
            self.pending.push((id, start, event));
        }
    }

    /// Bounds the state: events that would make more than `max_keys` keys or more than
    /// `max_windows` open windows are refused with [`Added::Full`].
    pub fn with_limits(mut self, max_keys: usize, max_windows: usize) -> Self {
        self.max_keys = max_keys;
        self.max_windows = max_windows;
        self
    }

    /// Fires a window early each time `early_count` more events are in it, and, with
    /// `emit_final`, emits each window once when it closes for good instead of when the
    /// watermark passes its end and again with each late update.
    pub fn with_triggers(mut self, early_count: Option<u64>, emit_final: bool) -> Self {
        self.early_count = early_count.filter(|&n| n > 0);
        self.emit_final = emit_final;
        self
    }

    /// The aggregations, in configuration order.
    pub fn aggs(&self) -> &[AggSpec] {
        &self.aggs
    }

    /// The watermark the engine has seen.
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Windows held now, over all keys.
    pub fn open_windows(&self) -> usize {
        self.open
    }

    /// Keys with state.
    pub fn keys(&self) -> usize {
        self.ids.len()
    }

    /// The engine's whole state as bytes, for a checkpoint.
    pub fn snapshot(&self) -> Vec<u8> {
        // Written from borrows, read back into `Snapshot`: the same encoding, no copy.
        #[derive(Serialize)]
        struct SnapshotRef<'a> {
            watermark: i64,
            arrivals: u64,
            keys: Vec<(&'a GroupKey, &'a [(i64, Window)])>,
        }
        let keys = self
            .ids
            .values()
            .map(|&id| {
                let state = &self.keys[id];
                (&state.key, state.windows.0.as_slice())
            })
            .collect();
        let snapshot = SnapshotRef {
            watermark: self.watermark,
            arrivals: self.arrivals,
            keys,
        };
        postcard::to_allocvec(&snapshot).expect("window state serializes")
    }

    /// Replaces the engine's state with a [`snapshot`](Self::snapshot) of an engine of the
    /// same configuration.
    ///
    /// # Errors
    /// Bytes that are not such a snapshot, or windows whose aggregations are not this
    /// engine's (the configuration changed).
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let snapshot: Snapshot =
            postcard::from_bytes(bytes).map_err(|e| format!("window state: {e}"))?;
        if let Some((_, w)) = snapshot
            .keys
            .iter()
            .flat_map(|(_, ws)| ws)
            .find(|(_, w)| w.accumulators.len() != self.aggs.len())
        {
            return Err(format!(
                "window state holds {} aggregations per window, the stage has {}",
                w.accumulators.len(),
                self.aggs.len()
            ));
        }
        let (max_keys, max_windows) = (self.max_keys, self.max_windows);
        let custom = self.custom.take();
        let (early_count, emit_final) = (self.early_count, self.emit_final);
        *self = Self::new(
            self.kind,
            std::mem::take(&mut self.aggs),
            self.allowed_lateness,
        )
        .with_limits(max_keys, max_windows)
        .with_triggers(early_count, emit_final);
        self.custom = custom;
        self.watermark = snapshot.watermark;
        self.arrivals = snapshot.arrivals;
        for (key, windows) in snapshot.keys {
            let id = self.id(&key);
            for (start, window) in windows {
                let (end, fired) = (window.end, window.fired);
                self.keys[id].windows.insert(start, window);
                self.open += 1;
                if matches!(self.kind, WindowKind::Count { .. }) {
                    continue;
                }
                let (at, what) = if fired {
                    (
                        (end - 1).saturating_add(self.allowed_lateness),
                        TimerKind::Purge,
                    )
                } else {
                    (end - 1, TimerKind::Fire)
                };
                self.timers
                    .entry(at)
                    .or_default()
                    .push((id, start, end, what));
            }
        }
        Ok(())
    }

    /// Folds in one event of `key` at event time `time` with `payload` (a MessagePack
    /// map). Results that fire at once (a count window filled, an update of a fired
    /// window) go to `out`.
    pub fn add(
        &mut self,
        key: &[Scalar],
        time: i64,
        payload: &[u8],
        out: &mut Vec<WindowResult>,
    ) -> Added {
        let added = self.fold_in(key, time, payload, out);
        self.finish_custom(out);
        added
    }

    fn fold_in(
        &mut self,
        key: &[Scalar],
        time: i64,
        payload: &[u8],
        out: &mut Vec<WindowResult>,
    ) -> Added {
        if !(-MAX_EVENT_TIME..=MAX_EVENT_TIME).contains(&time) {
            return Added::OutOfRange;
        }
        // The key is looked up and the windows assigned once, for the limits and the fold.
        let existing = self.ids.get(key).copied();
        let mut windows = std::mem::take(&mut self.scratch);
        self.kind.assign(time, &mut windows);
        let added = self.fold_into(key, existing, &windows, time, payload, out);
        self.scratch = windows;
        added
    }

    fn fold_into(
        &mut self,
        key: &[Scalar],
        existing: Option<usize>,
        windows: &[(i64, i64)],
        time: i64,
        payload: &[u8],
        out: &mut Vec<WindowResult>,
    ) -> Added {
        if let Some(limit) = self.over_limit(existing, windows, time) {
            return Added::Full(limit);
        }
        self.arrivals += 1;
        let order = self.arrivals;
        self.values.clear();
        for field in &self.fields {
            self.values.push(Scalar::lookup(payload, field));
        }
        match self.kind {
            WindowKind::Count { size } => {
                let id = existing.unwrap_or_else(|| self.id(key));
                self.add_to_count_window(id, size, time, order, out);
                Added::Accepted
            }
            WindowKind::Session { gap } => {
                if self.past_lateness(time.saturating_add(gap)) {
                    return Added::Late;
                }
                let id = existing.unwrap_or_else(|| self.id(key));
                self.add_to_session(id, time, gap, order, out);
                Added::Accepted
            }
            _ => {
                let mut accepted = false;
                let mut id = existing;
                for &(start, end) in windows {
                    if self.past_lateness(end) {
                        continue;
                    }
                    let id = *id.get_or_insert_with(|| self.id(key));
                    accepted = true;
                    self.add_to_window(id, start, end, time, order, out);
                }
                if accepted {
                    Added::Accepted
                } else {
                    Added::Late
                }
            }
        }
    }

    /// Moves the watermark to `watermark` (never back): windows it passes fire, and
    /// windows past their allowed lateness are dropped.
    pub fn advance(&mut self, watermark: i64, out: &mut Vec<WindowResult>) {
        if watermark <= self.watermark {
            return;
        }
        if self
            .timers
            .first_key_value()
            .is_some_and(|(&at, _)| at <= watermark)
        {
            self.flush_custom();
        }
        self.watermark = watermark;
        while let Some(entry) = self.timers.first_entry() {
            if *entry.key() > watermark {
                break;
            }
            for (id, start, end, what) in entry.remove() {
                self.on_timer(id, start, end, what, out);
            }
        }
        self.finish_custom(out);
    }

    /// Sets the watermark back to `watermark` once no window is open (after
    /// [`close_all`](Self::close_all)), for input that comes later.
    pub fn rewind_watermark(&mut self, watermark: i64) {
        if self.open == 0 {
            self.watermark = watermark;
        }
    }

    /// The input has ended: every window still open fires, count windows that did not
    /// fill included, and the state is left empty.
    pub fn close_all(&mut self, out: &mut Vec<WindowResult>) {
        self.advance(i64::MAX, out);
        if !matches!(self.kind, WindowKind::Count { .. }) {
            return;
        }
        self.flush_custom();
        for id in 0..self.keys.len() {
            let Some(mut window) = self.keys[id].windows.remove(&0) else {
                continue;
            };
            self.open -= 1;
            out.push(result(
                &self.aggs,
                &mut self.finishing,
                out.len(),
                &self.keys[id].key,
                window.earliest,
                &mut window,
                Firing::Final,
            ));
            self.release(id);
        }
        self.finish_custom(out);
    }

    /// Emits the current result of every window that changed since it last fired, as an
    /// early firing.
    pub fn fire_early(&mut self, out: &mut Vec<WindowResult>) {
        if self.emit_final {
            return;
        }
        self.flush_custom();
        for state in &mut self.keys {
            for (&start, window) in state.windows.iter_mut() {
                if window.changed && !window.fired {
                    window.changed = false;
                    // Count windows are kept under start 0; they span their events' times.
                    let start = match self.kind {
                        WindowKind::Count { .. } => window.earliest,
                        _ => start,
                    };
                    out.push(result(
                        &self.aggs,
                        &mut self.finishing,
                        out.len(),
                        &state.key,
                        start,
                        window,
                        Firing::Early,
                    ));
                }
            }
        }
        self.finish_custom(out);
    }

    /// The limit taking an event at `time` would break, if any: `existing` is its key's
    /// slot, `windows` the time windows it falls in. An event too late for every window it
    /// falls in breaks none: it is reported late.
    fn over_limit(
        &self,
        existing: Option<usize>,
        windows: &[(i64, i64)],
        time: i64,
    ) -> Option<Limit> {
        if self.max_keys == usize::MAX && self.max_windows == usize::MAX {
            return None;
        }
        let held = existing.map(|id| &self.keys[id].windows);
        let new = match self.kind {
            WindowKind::Count { .. } => usize::from(held.is_none_or(Windows::is_empty)),
            WindowKind::Session { gap } => {
                let end = time.saturating_add(gap);
                if self.past_lateness(end) {
                    return None;
                }
                let joins = held.is_some_and(|w| w.up_to(end).any(|(_, w)| w.end >= time));
                usize::from(!joins)
            }
            _ => {
                let (mut open, mut new) = (false, 0);
                for &(start, end) in windows {
                    if !self.past_lateness(end) {
                        open = true;
                        new += usize::from(!held.is_some_and(|w| w.contains_key(&start)));
                    }
                }
                if !open {
                    return None;
                }
                new
            }
        };
        if existing.is_none() && self.ids.len() >= self.max_keys {
            return Some(Limit::Keys(self.max_keys));
        }
        (self.open.saturating_add(new) > self.max_windows)
            .then_some(Limit::Windows(self.max_windows))
    }

    fn id(&mut self, key: &[Scalar]) -> usize {
        if let Some(&id) = self.ids.get(key) {
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.keys[id].key = key.to_vec();
                id
            }
            None => {
                self.keys.push(KeyState {
                    key: key.to_vec(),
                    windows: Windows::default(),
                });
                self.keys.len() - 1
            }
        };
        self.ids.insert(key.to_vec(), id);
        id
    }

    /// Whether a window ending at `end` is past firing and allowed lateness.
    fn past_lateness(&self, end: i64) -> bool {
        self.watermark != i64::MIN
            && (end - 1).saturating_add(self.allowed_lateness) <= self.watermark
    }

    fn new_window(&self, end: i64) -> Window {
        Window {
            end,
            accumulators: self.aggs.iter().map(|a| Accumulator::new(a.kind)).collect(),
            events: 0,
            fired: false,
            changed: false,
            earliest: i64::MAX,
        }
    }

    fn fold(
        aggs: &[AggSpec],
        field_of: &[Option<usize>],
        values: &[Scalar],
        window: &mut Window,
        time: i64,
        order: u64,
    ) {
        const PRESENT: Scalar = Scalar::Bool(true);
        for ((agg, acc), field) in aggs.iter().zip(&mut window.accumulators).zip(field_of) {
            let value = field.map_or(&PRESENT, |f| &values[f]);
            acc.add(agg.kind, value, time, order);
        }
        window.events += 1;
        window.changed = true;
    }

    fn add_to_window(
        &mut self,
        id: usize,
        start: i64,
        end: i64,
        time: i64,
        order: u64,
        out: &mut Vec<WindowResult>,
    ) {
        if !self.keys[id].windows.contains_key(&start) {
            let window = self.new_window(end);
            self.keys[id].windows.insert(start, window);
            self.open += 1;
            self.schedule(id, start, end);
        }
        let window = self.keys[id]
            .windows
            .get_mut(&start)
            .expect("inserted above");
        Self::fold(
            &self.aggs,
            &self.field_of,
            &self.values,
            window,
            time,
            order,
        );
        self.note_pending(id, start);
        let passed = self.watermark != i64::MIN && end - 1 <= self.watermark;
        if passed && self.emit_final {
            // Emitted once, when it closes.
            let window = self.keys[id]
                .windows
                .get_mut(&start)
                .expect("inserted above");
            window.fired = true;
            window.changed = false;
        } else if passed {
            // The watermark passed this window already: an update, at once.
            self.emit(id, start, Firing::Update, out);
        } else {
            self.early_by_count(id, start, out);
        }
    }

    /// An early firing of window `start` of key `id` when its count trigger is due.
    fn early_by_count(&mut self, id: usize, start: i64, out: &mut Vec<WindowResult>) {
        let Some(every) = self.early_count else {
            return;
        };
        if self.emit_final {
            return;
        }
        let due = self.keys[id]
            .windows
            .get_mut(&start)
            .is_some_and(|w| !w.fired && w.events % every == 0);
        if due {
            self.emit(id, start, Firing::Early, out);
        }
    }

    /// Emits the result of window `start` of key `id` (which must be open) as `firing`,
    /// folding in first what waits for the plugin aggregations.
    fn emit(&mut self, id: usize, start: i64, firing: Firing, out: &mut Vec<WindowResult>) {
        self.flush_custom();
        let state = &mut self.keys[id];
        let window = state.windows.get_mut(&start).expect("an open window");
        if firing != Firing::Early {
            window.fired = true;
        }
        window.changed = false;
        out.push(result(
            &self.aggs,
            &mut self.finishing,
            out.len(),
            &state.key,
            start,
            window,
            firing,
        ));
    }

    fn add_to_session(
        &mut self,
        id: usize,
        time: i64,
        gap: i64,
        order: u64,
        out: &mut Vec<WindowResult>,
    ) {
        let (mut start, mut end) = (time, time.saturating_add(gap));
        let mut merged = self.new_window(end);
        if !self.pending.is_empty()
            && self.keys[id]
                .windows
                .up_to(end)
                .any(|(_, w)| w.end >= start)
        {
            // Sessions about to merge must hold every event first.
            self.flush_custom();
        }
        let state = &mut self.keys[id];
        // Sessions that touch or overlap the new one join it.
        let joining: Vec<i64> = state
            .windows
            .up_to(end)
            .filter(|(_, w)| w.end >= start)
            .map(|(&s, _)| s)
            .collect();
        // One session whose bounds the event leaves as they are keeps its timer.
        let mut joined = None;
        let many = joining.len() > 1;
        for s in joining {
            let window = state.windows.remove(&s).expect("listed above");
            joined = Some((s, window.end));
            self.open -= 1;
            start = start.min(s);
            end = end.max(window.end);
            for ((agg, acc), other) in self
                .aggs
                .iter()
                .zip(&mut merged.accumulators)
                .zip(&window.accumulators)
            {
                match (agg.kind, acc, other, &mut self.custom) {
                    (
                        AggKind::Custom(n),
                        Accumulator::Custom(left),
                        Accumulator::Custom(right),
                        Some(custom),
                    ) => custom.merge(n, left, right),
                    (kind, acc, other, _) => acc.merge(kind, other),
                }
            }
            merged.events += window.events;
        }
        merged.end = end;
        Self::fold(
            &self.aggs,
            &self.field_of,
            &self.values,
            &mut merged,
            time,
            order,
        );
        // A session that grew past a fired one is a new window: it fires when the
        // watermark passes its own end, or at once (as an update) if it already has.
        let passed = self.watermark != i64::MIN && end - 1 <= self.watermark;
        if passed {
            merged.fired = true;
            merged.changed = false;
        }
        state.windows.insert(start, merged);
        self.open += 1;
        self.note_pending(id, start);
        if !passed {
            self.early_by_count(id, start, out);
        } else if !self.emit_final {
            self.emit(id, start, Firing::Update, out);
        }
        if many || joined != Some((start, end)) {
            self.schedule(id, start, end);
        }
    }

    fn add_to_count_window(
        &mut self,
        id: usize,
        size: u64,
        time: i64,
        order: u64,
        out: &mut Vec<WindowResult>,
    ) {
        // A count window spans its events' times: from the earliest to one past the latest.
        // It is kept under start 0 while it fills, and reported with its real bounds.
        if self.keys[id].windows.is_empty() {
            let mut window = self.new_window(time.saturating_add(1));
            window.earliest = time;
            self.keys[id].windows.insert(0, window);
            self.open += 1;
        }
        let window = self.keys[id]
            .windows
            .get_mut(&0)
            .expect("one open count window");
        window.end = window.end.max(time.saturating_add(1));
        window.earliest = window.earliest.min(time);
        Self::fold(
            &self.aggs,
            &self.field_of,
            &self.values,
            window,
            time,
            order,
        );
        let full = window.events >= size;
        self.note_pending(id, 0);
        if full {
            self.flush_custom();
            let state = &mut self.keys[id];
            let mut window = state.windows.remove(&0).expect("present");
            self.open -= 1;
            out.push(result(
                &self.aggs,
                &mut self.finishing,
                out.len(),
                &state.key,
                window.earliest,
                &mut window,
                Firing::Final,
            ));
            self.release(id);
        }
    }

    /// Frees the slot of key `id`, which holds no window any more, for another key: keys
    /// come and go, and the engine must not grow with every key ever seen.
    fn release(&mut self, id: usize) {
        let key = std::mem::take(&mut self.keys[id].key);
        self.ids.remove(&key);
        self.free.push(id);
    }

    fn schedule(&mut self, id: usize, start: i64, end: i64) {
        let at = end - 1;
        if self.watermark != i64::MIN && at <= self.watermark {
            // Already fired on arrival; only the purge is left.
            self.timers
                .entry(at.saturating_add(self.allowed_lateness))
                .or_default()
                .push((id, start, end, TimerKind::Purge));
        } else {
            self.timers
                .entry(at)
                .or_default()
                .push((id, start, end, TimerKind::Fire));
        }
    }

    fn on_timer(
        &mut self,
        id: usize,
        start: i64,
        end: i64,
        what: TimerKind,
        out: &mut Vec<WindowResult>,
    ) {
        let state = &mut self.keys[id];
        // A session that merged since has other bounds: its own timer serves it.
        let Some(window) = state.windows.get_mut(&start).filter(|w| w.end == end) else {
            return;
        };
        // Emitting final results only, a window with allowed lateness is emitted when it
        // closes for good, with every late event in it.
        let closes = what == TimerKind::Purge || self.allowed_lateness == 0;
        let emit = if self.emit_final {
            closes
        } else {
            what == TimerKind::Fire && !window.fired
        };
        if what == TimerKind::Fire {
            window.fired = true;
        }
        if emit {
            window.changed = false;
            out.push(result(
                &self.aggs,
                &mut self.finishing,
                out.len(),
                &state.key,
                start,
                window,
                Firing::Final,
            ));
        }
        if closes {
            state.windows.remove(&start);
            self.open -= 1;
            if state.windows.is_empty() {
                self.release(id);
            }
        } else {
            self.timers
                .entry((end - 1).saturating_add(self.allowed_lateness))
                .or_default()
                .push((id, start, end, TimerKind::Purge));
        }
    }
}

fn result(
    aggs: &[AggSpec],
    finishing: &mut Vec<Finishing>,
    at: usize,
    key: &GroupKey,
    start: i64,
    window: &mut Window,
    firing: Firing,
) -> WindowResult {
    WindowResult {
        key: key.clone(),
        start,
        end: window.end,
        values: aggs
            .iter()
            .zip(&mut window.accumulators)
            .enumerate()
            .map(|(position, (agg, acc))| match (agg.kind, acc) {
                (AggKind::Custom(n), Accumulator::Custom(bytes)) => {
                    // Finished with the others of this call, in one plugin call.
                    finishing.push(Finishing {
                        at,
                        position,
                        agg: n,
                        accumulator: bytes.clone(),
                    });
                    rmpv::Value::Nil
                }
                (kind, acc) => acc.result(kind),
            })
            .collect(),
        events: window.events,
        firing,
    }
}
