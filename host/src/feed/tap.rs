//! Taps on component outputs: the events the live feed sends and the history it resumes
//! from. A tap records only while somebody watches its output (or read its history
//! lately): otherwise publishing is one atomic load per batch.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::event::{Event, now_ms};

/// Batches a tap's broadcast holds for clients that have not taken them yet; a client
/// further behind is told how many events it missed.
const BROADCAST_BATCHES: usize = 1_024;

/// One event as the feed sends it.
pub struct FeedEvent {
    /// Its number on its tap, from 1, increasing.
    pub id: u64,
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

    /// The SSE message: `id: N` and one `data:` line of [`FeedEvent::json`].
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
        out.extend_from_slice(format!("id: {}\ndata: ", self.id).as_bytes());
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

/// The tap on one output (`STAGE`, or `STAGE.PORT` for another port).
pub struct Tap {
    name: Arc<str>,
    recording: AtomicBool,
    watchers: AtomicUsize,
    /// Until when (ms) it records with nobody watching.
    keep_until_ms: AtomicI64,
    latest: AtomicU64,
    capacity: usize,
    linger_ms: i64,
    history: Mutex<History>,
    sender: broadcast::Sender<Published>,
}

struct History {
    ring: VecDeque<Arc<FeedEvent>>,
    next_id: u64,
}

impl Tap {
    fn new(name: &str, capacity: usize, linger_ms: i64) -> Self {
        Self {
            name: Arc::from(name),
            recording: AtomicBool::new(false),
            watchers: AtomicUsize::new(0),
            keep_until_ms: AtomicI64::new(0),
            latest: AtomicU64::new(0),
            capacity,
            linger_ms,
            history: Mutex::new(History {
                ring: VecDeque::new(),
                next_id: 1,
            }),
            sender: broadcast::channel(BROADCAST_BATCHES).0,
        }
    }

    /// The output's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The newest event's number (0 before the first).
    pub fn latest(&self) -> u64 {
        self.latest.load(Ordering::Acquire)
    }

    /// Clients watching it now.
    pub fn watchers(&self) -> usize {
        self.watchers.load(Ordering::Relaxed)
    }

    /// Offers a batch the output sends; kept only while it records.
    pub fn publish(&self, events: &[Event]) {
        if events.is_empty() || !self.recording.load(Ordering::Relaxed) {
            return;
        }
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let published: Vec<Arc<FeedEvent>> = events
            .iter()
            .map(|event| {
                let id = history.next_id;
                history.next_id += 1;
                Arc::new(FeedEvent {
                    id,
                    time: event.time,
                    payload: event.payload.clone(),
                    message: OnceLock::new(),
                })
            })
            .collect();
        history.ring.extend(published.iter().cloned());
        let excess = history.ring.len().saturating_sub(self.capacity);
        history.ring.drain(..excess);
        self.latest.store(history.next_id - 1, Ordering::Release);
        // Sent under the lock, so clients see batches in number order.
        let _ = self.sender.send(Arc::new(Batch {
            events: published,
            messages: OnceLock::new(),
        }));
    }

    /// A new client: the receiver of what is published from now on, and the history
    /// after event `after` (what it may have missed before it subscribed is in both).
    pub fn watch(&self, after: u64) -> (broadcast::Receiver<Published>, Vec<Arc<FeedEvent>>) {
        self.watchers.fetch_add(1, Ordering::AcqRel);
        self.recording.store(true, Ordering::Relaxed);
        let receiver = self.sender.subscribe();
        (receiver, self.since(after, usize::MAX))
    }

    /// A client left: with nobody watching, it records for `linger` more.
    pub fn unwatch(&self) {
        self.keep_until_ms
            .store(now_ms().saturating_add(self.linger_ms), Ordering::Relaxed);
        self.watchers.fetch_sub(1, Ordering::AcqRel);
    }

    /// Up to `limit` recorded events after number `after`, oldest first. Reading the
    /// history starts (or extends) recording, so the next read finds events.
    pub fn history(&self, after: u64, limit: usize) -> Vec<Arc<FeedEvent>> {
        self.keep_until_ms
            .fetch_max(now_ms().saturating_add(self.linger_ms), Ordering::Relaxed);
        self.recording.store(true, Ordering::Relaxed);
        self.since(after, limit)
    }

    /// The oldest event number still held (the next one when none is).
    pub fn oldest(&self) -> u64 {
        let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        history.ring.front().map_or(history.next_id, |e| e.id)
    }

    fn since(&self, after: u64, limit: usize) -> Vec<Arc<FeedEvent>> {
        let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let start = history.ring.partition_point(|e| e.id <= after);
        history.ring.range(start..).take(limit).cloned().collect()
    }

    /// Stops recording (and frees the history) once nobody has watched for `linger`.
    fn sweep(&self, now: i64) {
        let idle = self.watchers.load(Ordering::Acquire) == 0
            && now >= self.keep_until_ms.load(Ordering::Relaxed);
        if idle && self.recording.swap(false, Ordering::Relaxed) {
            let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
            history.ring = VecDeque::new();
        }
    }
}

/// Every tap, by output name.
#[derive(Default)]
pub struct Feeds {
    taps: Mutex<BTreeMap<String, Arc<Tap>>>,
    settings: Mutex<(usize, i64)>,
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
                .or_insert_with(|| Arc::new(Tap::new(name, history.max(1), linger))),
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

    #[test]
    fn records_nothing_until_watched_then_numbers_and_bounds_its_history() {
        let tap = Tap::new("s", 5, 0);
        tap.publish(&events(3));
        assert_eq!(tap.latest(), 0, "nobody watched: nothing recorded");
        let (mut receiver, backlog) = tap.watch(0);
        assert!(backlog.is_empty());
        tap.publish(&events(4));
        tap.publish(&events(4));
        let first = receiver.try_recv().expect("a batch");
        assert_eq!(
            first.events.iter().map(|e| e.id).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(
            first.messages("s").len(),
            first
                .events
                .iter()
                .map(|e| e.message("s").len())
                .sum::<usize>()
        );
        let held: Vec<u64> = tap.history(0, 100).iter().map(|e| e.id).collect();
        assert_eq!(held, [4, 5, 6, 7, 8], "the ring keeps the newest 5");
        assert_eq!(tap.history(6, 1)[0].id, 7);
        tap.unwatch();
        // Linger 0: the next sweep stops it, and its history goes.
        tap.keep_until_ms.store(0, Ordering::Relaxed);
        tap.sweep(now_ms());
        tap.publish(&events(2));
        assert_eq!(tap.latest(), 8);
        assert_eq!(tap.oldest(), 9);
    }

    #[test]
    fn a_message_is_the_event_as_json_with_its_number() {
        let tap = Tap::new("stage", 10, 0);
        let _watch = tap.watch(0);
        let payload = crate::format::json_to_msgpack(br#"{"a":1}"#).expect("json");
        tap.publish(&[Event::new(payload, 42)]);
        let event = &tap.history(0, 1)[0];
        assert_eq!(
            event.message("stage").as_ref(),
            b"id: 1\ndata: {\"id\":1,\"stage\":\"stage\",\"time\":42,\"payload\":{\"a\":1}}\n\n"
        );
    }
}
