//! The event: what flows between sources, stages and sinks.
//!
//! Payloads are [`Bytes`], so passing an event along (or keeping it unchanged through a
//! filter) copies no payload.

use bytes::Bytes;

/// One header of an event: a name and an opaque value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name; UTF-8 so that it maps onto every broker's header model.
    pub name: String,
    /// Header value.
    pub value: Bytes,
}

/// An event: optional key, payload, headers and event time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// Partitioning key; `None` is distinct from an empty key, as in Kafka.
    pub key: Option<Bytes>,
    /// The body: MessagePack by convention inside Weir.
    pub payload: Bytes,
    /// Headers in arrival order; names may repeat.
    pub headers: Vec<Header>,
    /// Event time in milliseconds since the Unix epoch.
    pub time: i64,
    /// For an event from a message its broker can deliver again: the way to ask for that
    /// when a stage fails the event. Events made from it keep it.
    pub redelivery: Option<crate::delivery::Redelivery>,
    /// Where in its source the event was read; events made from it keep it. Stateful
    /// stages record how far they have folded each source partition, so that after a
    /// restart they pass over what their restored state already holds.
    pub origin: Option<Origin>,
}

/// A position in one partition of one source, increasing along the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The source, by its index in the pipeline's sources (sorted by name).
    pub source: u16,
    /// The partition within the source (0 when it has one).
    pub partition: u32,
    /// The record's position: byte offset after it, Kafka offset or stream sequence.
    pub offset: u64,
}

impl Event {
    /// An event with only a payload and an event time.
    pub fn new(payload: impl Into<Bytes>, time: i64) -> Self {
        Self {
            key: None,
            payload: payload.into(),
            headers: Vec::new(),
            time,
            redelivery: None,
            origin: None,
        }
    }
}

/// Events travelling together between pipeline components, with the acknowledgements of the
/// source positions they came from.
#[derive(Debug, Default)]
pub struct Batch {
    /// The events, in order.
    pub events: Vec<Event>,
    /// One token per source batch these events derive from; settled once the events are
    /// written, dropped on purpose, or dead-lettered.
    pub acks: Vec<crate::delivery::AckToken>,
}

impl Batch {
    /// A batch of `events` tied to `acks`.
    pub fn new(events: Vec<Event>, acks: Vec<crate::delivery::AckToken>) -> Self {
        Self { events, acks }
    }

    /// A batch holding `events` and a new claim on each of this batch's acknowledgements.
    pub fn derive(&self, events: Vec<Event>) -> Self {
        Self {
            events,
            acks: self
                .acks
                .iter()
                .map(crate::delivery::AckToken::share)
                .collect(),
        }
    }

    /// Marks every event of the batch handled.
    pub fn settle(self) {
        self.acks
            .into_iter()
            .for_each(crate::delivery::AckToken::settle);
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether it holds no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// Milliseconds since the Unix epoch now: the event time of events made inside Weir.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The partitions each source reads now, so that a stage timing events by their source
/// partition knows of partitions it has not yet had an event from (a partition whose
/// backlog comes later must still hold event time back).
#[derive(Debug, Default)]
pub struct Assignments {
    version: std::sync::atomic::AtomicU64,
    by_source: std::sync::RwLock<std::collections::BTreeMap<u16, Vec<u32>>>,
}

impl Assignments {
    /// Source `source` now reads `partitions`.
    pub fn set(&self, source: u16, partitions: Vec<u32>) {
        let mut by_source = self
            .by_source
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        by_source.insert(source, partitions);
        self.version
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// Changes so far: a reader compares it with the last it saw.
    pub fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Every (source, partition) read now.
    pub fn all(&self) -> Vec<(u16, u32)> {
        let by_source = self
            .by_source
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        by_source
            .iter()
            .flat_map(|(&s, ps)| ps.iter().map(move |&p| (s, p)))
            .collect()
    }
}
