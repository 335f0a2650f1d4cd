//! Building the events a plugin emits, in the contract's packed layout.

use crate::bindings::types;

/// An event to emit, for when the payload alone is not enough. Attributes left unset are
/// inherited (for a handler: from the input event; for a pattern: the key of the state).
///
/// ```
/// use weir_plugin_sdk::Output;
/// let out = Output::new(b"\x80".to_vec()).key(b"user-1".to_vec()).time(1_700_000_000_000);
/// # let _ = out;
/// ```
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub(crate) payload: Vec<u8>,
    pub(crate) key: Option<Option<Vec<u8>>>,
    pub(crate) time: Option<i64>,
    pub(crate) headers: Option<Vec<(String, Vec<u8>)>>,
}

impl Output {
    /// An event with `payload` that inherits everything else.
    pub fn new(payload: Vec<u8>) -> Self {
        Self {
            payload,
            ..Self::default()
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: Vec<u8>) -> Self {
        self.key = Some(Some(key));
        self
    }

    /// Removes the key.
    pub fn no_key(mut self) -> Self {
        self.key = Some(None);
        self
    }

    /// Sets the event time (ms since the Unix epoch).
    pub fn time(mut self, time: i64) -> Self {
        self.time = Some(time);
        self
    }

    /// Replaces the headers.
    pub fn headers(mut self, headers: Vec<(String, Vec<u8>)>) -> Self {
        self.headers = Some(headers);
        self
    }
}

/// Headers of one event: name and value pairs.
pub(crate) type HeaderList = Vec<(String, Vec<u8>)>;

/// Accumulates emitted events as columns.
#[derive(Default)]
pub(crate) struct EmittedBuilder {
    sources: Vec<u32>,
    payloads: Vec<u8>,
    payload_ends: Vec<u32>,
    keys: Vec<(u32, Option<Vec<u8>>)>,
    times: Vec<(u32, i64)>,
    headers: Vec<(u32, HeaderList)>,
}

/// What an emitted event inherits from its source, when it sets some attributes but not all.
pub(crate) struct Inherit<'a> {
    pub key: &'a dyn Fn(u32) -> Option<Vec<u8>>,
    pub time: &'a dyn Fn(u32) -> i64,
    pub headers: &'a dyn Fn(u32) -> Vec<(String, Vec<u8>)>,
}

fn end(len: usize) -> u32 {
    // Guest memory is 32-bit: no buffer can be longer than u32::MAX.
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl EmittedBuilder {
    pub(crate) fn push_payload(&mut self, source: u32, payload: &[u8]) {
        self.sources.push(source);
        self.payloads.extend_from_slice(payload);
        self.payload_ends.push(end(self.payloads.len()));
    }

    pub(crate) fn push(&mut self, source: u32, output: Output) {
        let at = end(self.sources.len());
        self.push_payload(source, &output.payload);
        if let Some(key) = output.key {
            self.keys.push((at, key));
        }
        if let Some(time) = output.time {
            self.times.push((at, time));
        }
        if let Some(headers) = output.headers {
            self.headers.push((at, headers));
        }
    }

    /// Drops everything emitted for `source` (its event failed).
    pub(crate) fn retract(&mut self, source: u32) {
        while self.sources.last() == Some(&source) {
            self.sources.pop();
            self.payload_ends.pop();
            let at = end(self.sources.len());
            self.keys.retain(|(i, _)| *i < at);
            self.times.retain(|(i, _)| *i < at);
            self.headers.retain(|(i, _)| *i < at);
        }
        self.payloads
            .truncate(self.payload_ends.last().copied().unwrap_or(0) as usize);
    }

    pub(crate) fn finish(self, inherit: Inherit<'_>) -> types::Emitted {
        let n = self.sources.len();
        let mut batch = types::Batch {
            payloads: types::Column {
                data: self.payloads,
                ends: self.payload_ends,
            },
            times: Vec::new(),
            keys: empty(),
            key_present: Vec::new(),
            header_ends: Vec::new(),
            header_names: empty(),
            header_values: empty(),
        };
        if !self.times.is_empty() {
            batch.times = self.sources.iter().map(|&s| (inherit.time)(s)).collect();
            for (at, time) in self.times {
                batch.times[at as usize] = time;
            }
        }
        if !self.keys.is_empty() {
            let mut keys: Vec<Option<Vec<u8>>> =
                self.sources.iter().map(|&s| (inherit.key)(s)).collect();
            for (at, key) in self.keys {
                keys[at as usize] = key;
            }
            batch.key_present = vec![0; n.div_ceil(8)];
            for (i, key) in keys.iter().enumerate() {
                if let Some(key) = key {
                    batch.keys.data.extend_from_slice(key);
                    batch.key_present[i / 8] |= 1 << (i % 8);
                }
                batch.keys.ends.push(end(batch.keys.data.len()));
            }
        }
        if !self.headers.is_empty() {
            let mut all: Vec<Vec<(String, Vec<u8>)>> =
                self.sources.iter().map(|&s| (inherit.headers)(s)).collect();
            for (at, headers) in self.headers {
                all[at as usize] = headers;
            }
            let mut count = 0usize;
            for headers in all {
                for (name, value) in headers {
                    batch.header_names.data.extend_from_slice(name.as_bytes());
                    batch
                        .header_names
                        .ends
                        .push(end(batch.header_names.data.len()));
                    batch.header_values.data.extend_from_slice(&value);
                    batch
                        .header_values
                        .ends
                        .push(end(batch.header_values.data.len()));
                    count += 1;
                }
                batch.header_ends.push(end(count));
            }
        }
        types::Emitted {
            sources: self.sources,
            events: batch,
        }
    }
}

pub(crate) fn empty() -> types::Column {
    types::Column {
        data: Vec::new(),
        ends: Vec::new(),
    }
}
