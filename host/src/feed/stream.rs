//! One client's event stream: what it missed (from the history, after its
//! `Last-Event-ID`), then live events as they are published, each as an SSE message,
//! with heartbeats while nothing comes, notices of what it skipped, and gzip if it asked.
//!
//! A client without a filter or gzip that takes a published batch whole sends the batch's
//! shared buffer: a thousand clients cost a thousand references, not a thousand copies.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::time::Instant;

use super::clients::Membership;
use super::tap::{FeedEvent, Published, Resume};
use crate::config::SlowClients;
use crate::event::now_ms;
use crate::expr::Condition;

/// Bytes gathered into one chunk before it goes out. The server queues up to 16 chunks for a
/// client that reads slowly, so this bounds what such a client holds.
const CHUNK_BYTES: usize = 16 * 1024;

/// How a stream treats its client.
pub struct StreamSettings {
    /// Its filter.
    pub filter: Option<Condition>,
    /// Where it resumes (its `Last-Event-ID`).
    pub resume: Resume,
    /// Sent after this long without a message.
    pub heartbeat: Duration,
    /// What to do when it falls behind...
    pub slow_clients: SlowClients,
    /// ...by more than this many events.
    pub client_buffer: u64,
}

/// A client's stream of SSE messages.
pub struct FeedStream {
    membership: Membership,
    receiver: broadcast::Receiver<Published>,
    backlog: VecDeque<Arc<FeedEvent>>,
    /// The last event number given or passed over.
    position: u64,
    /// Chunks ready to go, in order.
    ready: VecDeque<Bytes>,
    /// Messages being gathered into the next chunk of this client's own.
    text: Vec<u8>,
    gzip: Option<GzEncoder<Vec<u8>>>,
    settings: StreamSettings,
    /// When it was last sent anything: heartbeats count from here.
    last_sent: Instant,
    ended: bool,
}

impl FeedStream {
    /// The stream of `membership`'s client, which watches from now on (or, with a
    /// `Last-Event-ID`, from the event after it).
    pub fn new(mut membership: Membership, settings: StreamSettings) -> Self {
        let after = match settings.resume {
            Resume::After(n) => Some(n),
            Resume::Now | Resume::Unknown => None,
        };
        let watch = membership.watch(after);
        let mut position = watch.latest;
        // What it missed that nobody can send it any more: a count, or null when unknown.
        let gap = match settings.resume {
            Resume::Now => None,
            Resume::Unknown => Some(serde_json::Value::Null),
            // An id this run has not given: not one of its events.
            Resume::After(n) if n > watch.latest => Some(serde_json::Value::Null),
            Resume::After(n) => {
                let first = watch.backlog.first().map_or(watch.latest + 1, |e| e.id);
                position = first - 1;
                (first > n + 1).then(|| (first - n - 1).into())
            }
        };
        let gzip = membership
            .client
            .gzip
            .then(|| GzEncoder::new(Vec::new(), Compression::fast()));
        let mut stream = Self {
            membership,
            receiver: watch.receiver,
            backlog: watch.backlog.into(),
            position,
            ready: VecDeque::new(),
            text: Vec::new(),
            gzip,
            settings,
            last_sent: Instant::now(),
            ended: false,
        };
        // Opens the response at once, so the client knows it is connected.
        stream.text.extend_from_slice(b": connected\n\n");
        if let Some(missing) = gap {
            stream.notice("gap", &serde_json::json!({ "missing": missing }));
        }
        stream
            .membership
            .client
            .position
            .store(stream.position, Ordering::Relaxed);
        stream
    }

    /// The stream as a response body.
    pub fn into_body(self) -> Body {
        Body::from_stream(futures_util::stream::unfold(
            self,
            |mut stream| async move {
                let chunk = stream.next_chunk().await?;
                Some((Ok::<_, Infallible>(chunk), stream))
            },
        ))
    }

    fn notice(&mut self, event: &str, data: &serde_json::Value) {
        self.text
            .extend_from_slice(format!("event: {event}\ndata: {data}\n\n").as_bytes());
    }

    fn skipped(&mut self, count: u64) {
        if count == 0 {
            return;
        }
        self.membership
            .client
            .skipped
            .fetch_add(count, Ordering::Relaxed);
        self.notice("skipped", &serde_json::json!({ "skipped": count }));
    }

    /// Adds a published batch: its shared buffer when the client takes it whole as it
    /// is, its events one by one otherwise.
    fn take_batch(&mut self, batch: &Published) {
        let (Some(first), Some(last)) = (batch.events.first(), batch.events.last()) else {
            return;
        };
        let whole =
            self.settings.filter.is_none() && self.gzip.is_none() && first.id == self.position + 1;
        if !whole {
            self.take(&batch.events);
            return;
        }
        if !self.text.is_empty() {
            let own = self.encode();
            self.ready.push_back(own);
        }
        let client = &self.membership.client;
        self.ready
            .push_back(batch.messages(client.tap.name()).clone());
        self.position = last.id;
        client
            .sent
            .fetch_add(batch.events.len() as u64, Ordering::Relaxed);
        client.position.store(self.position, Ordering::Relaxed);
    }

    /// Adds `events` (in number order) to the chunk being made.
    fn take(&mut self, events: &[Arc<FeedEvent>]) {
        let client = Arc::clone(&self.membership.client);
        let stage = client.tap.name();
        let mut sent = 0;
        for event in events {
            if event.id <= self.position {
                continue;
            }
            // Numbers not seen went past while this client was behind.
            self.skipped(event.id - self.position - 1);
            self.position = event.id;
            let wanted = self
                .settings
                .filter
                .as_ref()
                .is_none_or(|f| f.holds(&event.payload));
            if wanted {
                self.text.extend_from_slice(event.message(stage));
                sent += 1;
            }
        }
        client.sent.fetch_add(sent, Ordering::Relaxed);
        client.position.store(self.position, Ordering::Relaxed);
    }

    /// Whether more than its buffer allows was published after `batch`, which the client
    /// is about to take; if so, it skips to the newest events or is told it is dropped.
    fn fell_behind(&mut self, batch: &Published) -> bool {
        let tap = Arc::clone(&self.membership.client.tap);
        let end = batch.events.last().map_or(self.position, |e| e.id);
        if tap.latest().saturating_sub(end) <= self.settings.client_buffer {
            return false;
        }
        match self.settings.slow_clients {
            SlowClients::Skip => {
                // From the newest on: what was published before is counted as skipped,
                // and what comes after arrives.
                self.receiver = self.receiver.resubscribe();
                let latest = tap.latest();
                self.skipped(latest - self.position);
                self.position = latest;
                self.membership
                    .client
                    .position
                    .store(latest, Ordering::Relaxed);
            }
            SlowClients::Disconnect => self.drop_slow(),
        }
        true
    }

    fn drop_slow(&mut self) {
        let limit = self.settings.client_buffer;
        self.notice(
            "error",
            &serde_json::json!({ "error": format!("this client fell more than {limit} events behind and is disconnected (server.feed.slow_clients = \"disconnect\")") }),
        );
        self.ended = true;
    }

    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if let Some(chunk) = self.ready.pop_front() {
                self.last_sent = Instant::now();
                return Some(chunk);
            }
            if self.ended && self.text.is_empty() {
                return None;
            }
            self.membership
                .client
                .polled_at_ms
                .store(now_ms(), Ordering::Relaxed);
            while !self.backlog.is_empty() && self.text.len() < CHUNK_BYTES {
                let n = self.backlog.len().min(256);
                let events: Vec<Arc<FeedEvent>> = self.backlog.drain(..n).collect();
                self.take(&events);
            }
            if self.text.is_empty() && !self.ended {
                self.wait().await;
            }
            if !self.text.is_empty() {
                let own = self.encode();
                self.ready.push_back(own);
            }
        }
    }

    /// Waits for published events (or the heartbeat) and adds what came to the chunk.
    async fn wait(&mut self) {
        let client = Arc::clone(&self.membership.client);
        client.waiting.store(true, Ordering::Relaxed);
        // From the last thing sent: a client whose filter passes nothing still hears.
        let received = tokio::time::timeout_at(
            self.last_sent + self.settings.heartbeat,
            self.receiver.recv(),
        )
        .await;
        client.waiting.store(false, Ordering::Relaxed);
        client.polled_at_ms.store(now_ms(), Ordering::Relaxed);
        let mut next = match received {
            Err(_) => {
                self.text.extend_from_slice(b": heartbeat\n\n");
                return;
            }
            Ok(next) => next,
        };
        loop {
            match next {
                Ok(batch) => {
                    if !self.fell_behind(&batch) {
                        self.take_batch(&batch);
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    // The broadcast dropped batches it could not hold for this client: the
                    // numbers it skips are counted when the next batch comes.
                    if self.settings.slow_clients == SlowClients::Disconnect {
                        self.drop_slow();
                    }
                }
                Err(RecvError::Closed) => {
                    self.notice("end", &serde_json::json!({ "reason": "the output ended" }));
                    self.ended = true;
                }
            }
            if self.ended || self.text.len() >= CHUNK_BYTES || !self.ready.is_empty() {
                return;
            }
            next = match self.receiver.try_recv() {
                Ok(events) => Ok(events),
                Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
                Err(TryRecvError::Empty) => return,
            };
        }
    }

    fn encode(&mut self) -> Bytes {
        let text = std::mem::take(&mut self.text);
        let Some(gzip) = &mut self.gzip else {
            return Bytes::from(text);
        };
        // A sync flush after each chunk: the client can decode every message it has; at
        // the end, the gzip trailer.
        let ended = self.ended;
        let written = gzip.write_all(&text).and_then(|()| {
            if ended {
                gzip.try_finish()
            } else {
                gzip.flush()
            }
        });
        if written.is_err() {
            self.ended = true;
        }
        Bytes::from(std::mem::take(gzip.get_mut()))
    }
}
