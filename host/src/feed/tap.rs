//! Taps on component outputs: the events the live feed sends and the history it resumes
//! from. A tap records only while somebody watches its output (or read its history
//! lately): otherwise publishing is one atomic load per batch.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};

use crate::event::{Event, now_ms};

/// Batches a tap's broadcast holds for clients that have not taken them yet; a client
/// further behind is told how many events it missed.
const BROADCAST_BATCHES: usize = 1_024;

/// One event as the feed sends it.
pub struct FeedEvent {
    /// Its number on its tap in this run, from 1, increasing.
    pub id: u64,
    /// The run it was published in.
    pub run: u64,
    /// Event time, ms since the Unix epoch.
    pub time: i64,
    /// The payload (MessagePack).
    pub payload: Bytes,
    /// Its SSE message, made once by the first client that sends it.
    message: OnceLock<Bytes>,
}

impl FeedEvent {
    /// `{"id", "stage", "time", "payload"}`, the payload as JSON (`null`, with `"raw"`
    /// holding its text, when it is not MessagePack).
    pub fn json(&self, stage: &str) -> serde_json::Value {
        let mut value = serde_json::json!({ "id": self.id, "stage": stage, "time": self.time });
        match crate::format::msgpack_to_json(&self.payload) {
            Ok(payload) => value["payload"] = payload,
            Err(_) => {
                value["payload"] = serde_json::Value::Null;
                value["raw"] = String::from_utf8_lossy(&self.payload).into_owned().into();
            }
        }
        value
    }

    /// The SSE message: `id: RUN-N` and one `data:` line of [`FeedEvent::json`].
    pub fn message(&self, stage: &str) -> &Bytes {
        self.message.get_or_init(|| {
            let mut text = Vec::new();
            self.write_message(stage, &mut text);
            Bytes::from(text)
        })
    }

    /// Appends the SSE message to `out`, without keeping it.
    fn write_message(&self, stage: &str, out: &mut Vec<u8>) {
        if let Some(message) = self.message.get() {
            out.extend_from_slice(message);
            return;
        }
        out.extend_from_slice(format!("id: {}-{}\ndata: ", self.run, self.id).as_bytes());
        let _ = serde_json::to_writer(&mut *out, &self.json(stage));
        out.extend_from_slice(b"\n\n");
    }
}

/// Events published together, shared by every client.
pub struct Batch {
    /// The events, in number order.
    pub events: Vec<Arc<FeedEvent>>,
    /// Their SSE messages one after another, made once: every client that takes the whole
    /// batch as it is sends this same buffer.
    messages: OnceLock<Bytes>,
}

impl Batch {
    /// The SSE messages of all its events.
    pub fn messages(&self, stage: &str) -> &Bytes {
        self.messages.get_or_init(|| {
            let mut text = Vec::new();
            for event in &self.events {
                event.write_message(stage, &mut text);
            }
            Bytes::from(text)
        })
    }
}

/// A published batch, as clients receive it.
pub type Published = Arc<Batch>;

/// Where a client asks to resume from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// From the events published after it connects.
    Now,
    /// After this event of this run.
    After(u64),
    /// After an event of another run (or an id it cannot read): what it missed is unknown.
    Unknown,
}

impl Resume {
    /// Reads a `Last-Event-ID` (`RUN-N`, or `N` for this run) against this run.
    pub fn parse(id: &str, run: u64) -> Self {
        let id = id.trim();
        let (id_run, n) = match id.split_once('-') {
            Some((r, n)) => (r.parse().ok(), n),
            None => (Some(run), id),
        };
        match (id_run, n.parse()) {
            (Some(r), Ok(n)) if r == run => Self::After(n),
            _ => Self::Unknown,
        }
    }
}

/// A new client's start: its receiver, the recorded events it missed, and the newest
/// event number when it subscribed.
pub struct Watch {
    /// What is published from now on.
    pub receiver: broadcast::Receiver<Published>,
    /// Recorded events after the one it resumes from, oldest first.
    pub backlog: Vec<Arc<FeedEvent>>,
    /// The newest event number at that moment.
    pub latest: u64,
}

/// The tap on one output (`STAGE`, or `STAGE.PORT` for another port).
pub struct Tap {
    name: Arc<str>,
    /// This run (ms since the Unix epoch when the process started): event ids are
    /// `RUN-N`, so an id from an earlier run is never taken for one of this run.
    run: u64,
    recording: AtomicBool,
    /// Every event the output sent gets a number, recorded or not, so what a client
    /// missed while nobody recorded is still counted.
    latest: AtomicU64,
    capacity: usize,
    linger_ms: i64,
    history: Mutex<History>,
    sender: broadcast::Sender<Published>,
}

struct History {
    ring: VecDeque<Arc<FeedEvent>>,
    watchers: usize,
    /// Until when (ms) it records with nobody watching.
    keep_until_ms: i64,
    /// To the task that hands batches to the clients: waking a thousand clients is its
    /// work, not the pipeline's.
    forward: Option<mpsc::Sender<Published>>,
}

impl Tap {
    fn new(name: &str, run: u64, capacity: usize, linger_ms: i64) -> Self {
        Self {
            name: Arc::from(name),
            run,
            recording: AtomicBool::new(false),
            latest: AtomicU64::new(0),
            capacity,
            linger_ms,
            history: Mutex::new(History {
                ring: VecDeque::new(),
                watchers: 0,
                keep_until_ms: 0,
                forward: None,
            }),
            sender: broadcast::channel(BROADCAST_BATCHES).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The output's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This run's number, the first part of every event id.
    pub fn run(&self) -> u64 {
        self.run
    }

    /// The newest event's number (0 before the first).
    pub fn latest(&self) -> u64 {
        self.latest.load(Ordering::Acquire)
    }

    /// Clients watching it now.
    pub fn watchers(&self) -> usize {
        self.lock().watchers
    }

    /// Offers a batch the output sends: numbered always, kept only while it records.
    pub fn publish(&self, events: &[Event]) {
        let n = events.len() as u64;
        if n == 0 {
            return;
        }
        if !self.recording.load(Ordering::Relaxed) {
            self.latest.fetch_add(n, Ordering::AcqRel);
            return;
        }
        let mut history = self.lock();
        let first = self.latest.fetch_add(n, Ordering::AcqRel) + 1;
        let published: Vec<Arc<FeedEvent>> = events
            .iter()
            .zip(first..)
            .map(|(event, id)| {
                Arc::new(FeedEvent {
                    id,
                    run: self.run,
                    time: event.time,
                    // A copy: a slice would keep the whole buffer it was cut from alive.
                    payload: Bytes::copy_from_slice(&event.payload),
                    message: OnceLock::new(),
                })
            })
            .collect();
        history.ring.extend(published.iter().cloned());
        let excess = history.ring.len().saturating_sub(self.capacity);
        history.ring.drain(..excess);
        let batch = Arc::new(Batch {
            events: published,
            messages: OnceLock::new(),
        });
        // Queued under the lock, so clients see batches in number order. A batch the
        // forwarder has no room for is not sent: clients are told they skipped it.
        match &history.forward {
            Some(forward) => {
                let _ = forward.try_send(batch);
            }
            None => {
                let _ = self.sender.send(batch);
            }
        }
    }

    /// A new client, resuming after event `after` (none: from now on).
    pub fn watch(&self, after: Option<u64>) -> Watch {
        let mut history = self.lock();
        history.watchers += 1;
        self.recording.store(true, Ordering::Relaxed);
        if history.forward.is_none()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (forward, mut batches) = mpsc::channel::<Published>(BROADCAST_BATCHES);
            let sender = self.sender.clone();
            runtime.spawn(async move {
                while let Some(batch) = batches.recv().await {
                    let _ = sender.send(batch);
                }
            });
            history.forward = Some(forward);
        }
        let receiver = self.sender.subscribe();
        let latest = self.latest();
        let backlog = match after {
            Some(after) => since(&history.ring, after, usize::MAX),
            None => Vec::new(),
        };
        Watch {
            receiver,
            backlog,
            latest,
        }
    }

    /// A client left: with nobody watching, it records for `linger` more.
    pub fn unwatch(&self) {
        let mut history = self.lock();
        history.watchers = history.watchers.saturating_sub(1);
        history.keep_until_ms = now_ms().saturating_add(self.linger_ms);
    }

    /// Up to `limit` recorded events after number `after` (oldest first), or, without
    /// `after`, the newest `limit`. Reading the history starts (or extends) recording, so
    /// the next read finds events.
    pub fn history(&self, after: Option<u64>, limit: usize) -> Vec<Arc<FeedEvent>> {
        let mut history = self.lock();
        history.keep_until_ms = history
            .keep_until_ms
            .max(now_ms().saturating_add(self.linger_ms));
        self.recording.store(true, Ordering::Relaxed);
        match after {
            Some(after) => since(&history.ring, after, limit),
            None => {
                let from = history.ring.len().saturating_sub(limit);
                history.ring.range(from..).cloned().collect()
            }
        }
    }

    /// The oldest event number still held (the next one when none is).
    pub fn oldest(&self) -> u64 {
        let history = self.lock();
        history.ring.front().map_or(self.latest() + 1, |e| e.id)
    }

    /// Stops recording (and frees the history) once nobody has watched for `linger`.
    fn sweep(&self, now: i64) {
        let mut history = self.lock();
        if history.watchers == 0 && now >= history.keep_until_ms {
            self.recording.store(false, Ordering::Relaxed);
            history.ring = VecDeque::new();
        }
    }
}

fn since(ring: &VecDeque<Arc<FeedEvent>>, after: u64, limit: usize) -> Vec<Arc<FeedEvent>> {
    let start = ring.partition_point(|e| e.id <= after);
    ring.range(start..).take(limit).cloned().collect()
}

/// Every tap, by output name.
pub struct Feeds {
    run: u64,
    taps: Mutex<BTreeMap<String, Arc<Tap>>>,
    settings: Mutex<(usize, i64)>,
}

impl Default for Feeds {
    fn default() -> Self {
        Self {
            run: now_ms().max(0) as u64,
            taps: Mutex::default(),
            settings: Mutex::new((10_000, 600_000)),
        }
    }
}

impl Feeds {
    /// Sets the history each tap made from now on keeps, and how long it records after
    /// its last client.
    pub fn configure(&self, history: usize, linger_ms: i64) {
        *self.settings.lock().unwrap_or_else(|p| p.into_inner()) = (history, linger_ms);
    }

    /// The tap on output `name`, made on first use.
    pub fn tap(&self, name: &str) -> Arc<Tap> {
        let (history, linger) = *self.settings.lock().unwrap_or_else(|p| p.into_inner());
        let mut taps = self.taps.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            taps.entry(name.to_owned())
                .or_insert_with(|| Arc::new(Tap::new(name, self.run, history.max(1), linger))),
        )
    }

    /// The tap on output `name`, if the pipeline has that output.
    pub fn get(&self, name: &str) -> Option<Arc<Tap>> {
        let taps = self.taps.lock().unwrap_or_else(|p| p.into_inner());
        taps.get(name).cloned()
    }

    /// Every output's name.
    pub fn names(&self) -> Vec<String> {
        let taps = self.taps.lock().unwrap_or_else(|p| p.into_inner());
        taps.keys().cloned().collect()
    }

    /// Stops the taps nobody has watched for their linger.
    pub fn sweep(&self) {
        let now = now_ms();
        let taps: Vec<Arc<Tap>> = {
            let taps = self.taps.lock().unwrap_or_else(|p| p.into_inner());
            taps.values().cloned().collect()
        };
        for tap in taps {
            tap.sweep(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| Event::new(vec![i as u8], i as i64))
            .collect()
    }

    fn ids(events: &[Arc<FeedEvent>]) -> Vec<u64> {
        events.iter().map(|e| e.id).collect()
    }

    #[test]
    fn numbers_every_event_records_only_while_watched_and_bounds_its_history() {
        let tap = Tap::new("s", 7, 5, 0);
        tap.publish(&events(3));
        assert_eq!(tap.latest(), 3, "numbered though nobody watched");
        assert!(tap.history(Some(0), 10).is_empty(), "but not recorded");
        let mut watch = tap.watch(Some(0));
        assert!(watch.backlog.is_empty());
        assert_eq!(watch.latest, 3);
        tap.publish(&events(4));
        tap.publish(&events(4));
        let first = watch.receiver.try_recv().expect("a batch");
        assert_eq!(ids(&first.events), [4, 5, 6, 7]);
        assert_eq!(
            first.messages("s").len(),
            first
                .events
                .iter()
                .map(|e| e.message("s").len())
                .sum::<usize>()
        );
        assert_eq!(
            ids(&tap.history(None, 100)),
            [7, 8, 9, 10, 11],
            "the newest 5"
        );
        assert_eq!(ids(&tap.history(None, 2)), [10, 11]);
        assert_eq!(ids(&tap.history(Some(8), 1)), [9]);
        tap.unwatch();
        // Linger 0: the next sweep stops it, and its history goes.
        tap.sweep(now_ms());
        tap.publish(&events(2));
        assert_eq!(tap.latest(), 13);
        assert_eq!(tap.oldest(), 14);
    }

    #[test]
    fn a_message_is_the_event_as_json_with_its_run_and_number() {
        let tap = Tap::new("stage", 7, 10, 0);
        let _watch = tap.watch(None);
        let payload = crate::format::json_to_msgpack(br#"{"a":1}"#).expect("json");
        tap.publish(&[Event::new(payload, 42)]);
        let event = &tap.history(None, 1)[0];
        assert_eq!(
            std::str::from_utf8(event.message("stage")).expect("text"),
            "id: 7-1\ndata: {\"id\":1,\"stage\":\"stage\",\"time\":42,\"payload\":{\"a\":1}}\n\n"
        );
    }

    #[test]
    fn an_id_of_another_run_is_unknown() {
        assert_eq!(Resume::parse("7-12", 7), Resume::After(12));
        assert_eq!(Resume::parse("12", 7), Resume::After(12));
        assert_eq!(Resume::parse("6-12", 7), Resume::Unknown);
        assert_eq!(Resume::parse("x", 7), Resume::Unknown);
    }
}
