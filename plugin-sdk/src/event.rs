//! Per-event views over a batch: what an author's code sees of each input event.

use serde::de::DeserializeOwned;

use crate::bindings::types;
use crate::error::Error;
use crate::msgpack::{self, Value};

/// The events of one call, as packed by the host.
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    inner: &'a types::Batch,
}

impl<'a> Batch<'a> {
    /// A view over the contract's batch record.
    pub fn new(inner: &'a types::Batch) -> Self {
        Self { inner }
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.inner.payloads.ends.len()
    }

    /// Whether the batch has no events.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Event `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<Event<'a>> {
        (index < self.len()).then_some(Event {
            batch: self.inner,
            index,
        })
    }

    /// The events in order.
    pub fn events(&self) -> impl ExactSizeIterator<Item = Event<'a>> + 'a {
        let inner = self.inner;
        (0..self.len()).map(move |index| Event {
            batch: inner,
            index,
        })
    }

    /// The contract's record, for batch-level code that works on columns directly.
    pub fn raw(&self) -> &'a types::Batch {
        self.inner
    }
}

fn value(column: &types::Column, index: usize) -> &[u8] {
    let start = if index == 0 {
        0
    } else {
        column.ends.get(index - 1).copied().unwrap_or(0) as usize
    };
    let end = column.ends.get(index).copied().unwrap_or(0) as usize;
    column.data.get(start..end).unwrap_or_default()
}

/// One input event, borrowed from its batch.
#[derive(Clone, Copy)]
pub struct Event<'a> {
    batch: &'a types::Batch,
    index: usize,
}

impl<'a> Event<'a> {
    /// Position of the event in its batch.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The payload bytes (MessagePack by convention).
    pub fn payload(&self) -> &'a [u8] {
        value(&self.batch.payloads, self.index)
    }

    /// Event time in milliseconds since the Unix epoch.
    pub fn time(&self) -> i64 {
        self.batch.times.get(self.index).copied().unwrap_or(0)
    }

    /// The key, if the event has one (an empty key is `Some(&[])`).
    pub fn key(&self) -> Option<&'a [u8]> {
        let b = self.batch;
        if b.keys.ends.is_empty() {
            return None;
        }
        let present = b
            .key_present
            .get(self.index / 8)
            .is_some_and(|byte| byte & (1 << (self.index % 8)) != 0);
        present.then(|| value(&b.keys, self.index))
    }

    /// The headers as `(name, value)` pairs, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let b = self.batch;
        let (start, end) = if b.header_ends.is_empty() {
            (0, 0)
        } else {
            let start = if self.index == 0 {
                0
            } else {
                b.header_ends.get(self.index - 1).copied().unwrap_or(0) as usize
            };
            let end = b.header_ends.get(self.index).copied().unwrap_or(0) as usize;
            (start, end.max(start))
        };
        (start..end).map(move |h| {
            let name = std::str::from_utf8(value(&b.header_names, h)).unwrap_or_default();
            (name, value(&b.header_values, h))
        })
    }

    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The payload field at a dotted path (`amount`, `user.id`), without decoding the rest.
    ///
    /// # Errors
    /// [`Error`] with code `invalid-input` when the payload is not a MessagePack map.
    pub fn field(&self, path: &str) -> Result<Option<Value<'a>>, Error> {
        Ok(msgpack::lookup(self.payload(), path)?)
    }

    /// Decodes the whole payload into `T` (a serde type, struct fields by name).
    ///
    /// # Errors
    /// [`Error`] with code `invalid-input` naming what did not fit.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        rmp_serde::from_slice(self.payload())
            .map_err(|e| Error::invalid_input(format!("payload does not decode: {e}")))
    }
}
