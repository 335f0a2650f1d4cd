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
}

impl Event {
    /// An event with only a payload and an event time.
    pub fn new(payload: impl Into<Bytes>, time: i64) -> Self {
        Self {
            key: None,
            payload: payload.into(),
            headers: Vec::new(),
            time,
        }
    }
}
