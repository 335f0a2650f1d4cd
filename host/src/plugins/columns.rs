//! Packing events into the contract's columns and unpacking what plugins emit.
//!
//! Encoding reuses one set of buffers per instance, so a batch costs one copy of its bytes
//! (plus the canonical ABI's copy into the guest) and no allocation once warm. Decoding
//! checks every offset and count a plugin returns: a plugin can return anything, and a bad
//! offset must become a fault naming the plugin, never a panic in the host.

use bytes::Bytes;

use super::bindings::types::{Batch, Column, Emitted};
use crate::event::{Event, Header};

/// Reusable buffers for the batch handed to a plugin.
#[derive(Default)]
pub(crate) struct BatchEncoder {
    batch: Batch,
}

impl Default for Batch {
    fn default() -> Self {
        Self {
            payloads: empty_column(),
            times: Vec::new(),
            keys: empty_column(),
            key_present: Vec::new(),
            header_ends: Vec::new(),
            header_names: empty_column(),
            header_values: empty_column(),
        }
    }
}

fn empty_column() -> Column {
    Column {
        data: Vec::new(),
        ends: Vec::new(),
    }
}

/// A batch whose bytes do not fit the contract's 32-bit offsets.
#[derive(Debug, thiserror::Error)]
#[error("batch holds more than 4 GiB of {0}")]
pub struct BatchTooLarge(&'static str);

fn offset(len: usize, what: &'static str) -> Result<u32, BatchTooLarge> {
    u32::try_from(len).map_err(|_| BatchTooLarge(what))
}

impl BatchEncoder {
    /// Packs `events` into the reused buffers and returns the batch.
    pub(crate) fn encode(&mut self, events: &[Event]) -> Result<&Batch, BatchTooLarge> {
        let b = &mut self.batch;
        b.payloads.data.clear();
        b.payloads.ends.clear();
        b.times.clear();
        b.keys.data.clear();
        b.keys.ends.clear();
        b.key_present.clear();
        b.header_ends.clear();
        b.header_names.data.clear();
        b.header_names.ends.clear();
        b.header_values.data.clear();
        b.header_values.ends.clear();

        for event in events {
            b.payloads.data.extend_from_slice(&event.payload);
            b.payloads
                .ends
                .push(offset(b.payloads.data.len(), "payloads")?);
            b.times.push(event.time);
        }
        if events.iter().any(|e| e.key.is_some()) {
            b.key_present.resize(events.len().div_ceil(8), 0);
            for (i, event) in events.iter().enumerate() {
                if let Some(key) = &event.key {
                    b.keys.data.extend_from_slice(key);
                    b.key_present[i / 8] |= 1 << (i % 8);
                }
                b.keys.ends.push(offset(b.keys.data.len(), "keys")?);
            }
        }
        if events.iter().any(|e| !e.headers.is_empty()) {
            let mut count = 0usize;
            for event in events {
                for header in &event.headers {
                    push_value(&mut b.header_names, header.name.as_bytes(), "header names")?;
                    push_value(&mut b.header_values, &header.value, "header values")?;
                }
                count += event.headers.len();
                b.header_ends.push(offset(count, "headers")?);
            }
        }
        Ok(&self.batch)
    }
}

fn push_value(column: &mut Column, value: &[u8], what: &'static str) -> Result<(), BatchTooLarge> {
    column.data.extend_from_slice(value);
    column.ends.push(offset(column.data.len(), what)?);
    Ok(())
}

/// Checks that a column's offsets are in order and inside its data, and that it has `count`
/// values.
pub(crate) fn check_column(column: &Column, count: usize, what: &str) -> Result<(), String> {
    if column.ends.len() != count {
        return Err(format!(
            "{what}: {} offsets for {count} values",
            column.ends.len()
        ));
    }
    let mut previous = 0u32;
    for &end in &column.ends {
        if end < previous {
            return Err(format!(
                "{what}: offsets go backwards ({previous} then {end})"
            ));
        }
        previous = end;
    }
    if previous as usize > column.data.len() {
        return Err(format!(
            "{what}: offset {previous} is past the end of {} bytes",
            column.data.len()
        ));
    }
    Ok(())
}

/// Bounds on what one call may emit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EmitBounds {
    /// Events the call had as sources (inputs, or states).
    pub sources: usize,
    /// Bytes it may return in all.
    pub max_bytes: usize,
    /// Events one source may produce.
    pub max_per_source: usize,
}

/// Emitted events after validation: a column view that builds [`Event`]s on demand without
/// copying payloads (each is a slice of one shared buffer).
pub(crate) struct EmittedEvents {
    sources: Vec<u32>,
    payloads: Bytes,
    payload_ends: Vec<u32>,
    times: Vec<i64>,
    keys: Option<(Bytes, Vec<u32>, Vec<u8>)>,
    headers: Option<(Vec<u32>, Vec<Header>)>,
}

/// What an emitted event takes from its source when it does not set it.
pub(crate) struct Inherited<'a> {
    /// Key of the source.
    pub key: &'a Option<Bytes>,
    /// Event time of the source.
    pub time: i64,
    /// Headers of the source.
    pub headers: &'a [Header],
    /// How to have the source's message delivered again.
    pub redelivery: &'a Option<crate::delivery::Redelivery>,
    /// Where the source was read.
    pub origin: Option<crate::event::Origin>,
}

impl EmittedEvents {
    /// Validates `emitted` against the contract and `bounds`.
    pub(crate) fn new(emitted: Emitted, bounds: EmitBounds) -> Result<Self, String> {
        let Emitted { sources, events } = emitted;
        let count = sources.len();
        let bytes = events.payloads.data.len()
            + events.keys.data.len()
            + events.header_names.data.len()
            + events.header_values.data.len();
        if bytes > bounds.max_bytes {
            return Err(format!(
                "returned {bytes} bytes of events, more than the limit of {}",
                bounds.max_bytes
            ));
        }
        check_column(&events.payloads, count, "emitted payloads")?;
        let mut run = 0usize;
        for (i, &source) in sources.iter().enumerate() {
            if source as usize >= bounds.sources {
                return Err(format!(
                    "emitted event {i} names source {source}, but there are {}",
                    bounds.sources
                ));
            }
            if i > 0 && source < sources[i - 1] {
                return Err(format!("emitted sources go backwards at event {i}"));
            }
            run = if i > 0 && source == sources[i - 1] {
                run + 1
            } else {
                1
            };
            if run > bounds.max_per_source {
                return Err(format!(
                    "source {source} produced more than {} events",
                    bounds.max_per_source
                ));
            }
        }
        if !events.times.is_empty() && events.times.len() != count {
            return Err(format!(
                "emitted times: {} for {count} events",
                events.times.len()
            ));
        }
        let keys = if events.keys.ends.is_empty() {
            None
        } else {
            check_column(&events.keys, count, "emitted keys")?;
            if events.key_present.len() < count.div_ceil(8) {
                return Err("emitted key-present bitmap is too short".into());
            }
            Some((
                Bytes::from(events.keys.data),
                events.keys.ends,
                events.key_present,
            ))
        };
        let headers = if events.header_ends.is_empty() {
            None
        } else {
            Some(decode_headers(
                &events.header_ends,
                &events.header_names,
                &events.header_values,
                count,
            )?)
        };
        Ok(Self {
            sources,
            payloads: Bytes::from(events.payloads.data),
            payload_ends: events.payloads.ends,
            times: events.times,
            keys,
            headers,
        })
    }

    /// Number of emitted events.
    pub(crate) fn len(&self) -> usize {
        self.sources.len()
    }

    /// The source index of event `i`.
    pub(crate) fn source(&self, i: usize) -> u32 {
        self.sources[i]
    }

    /// Builds event `i`, taking unset attributes from `inherited`.
    pub(crate) fn event(&self, i: usize, inherited: Inherited<'_>) -> Event {
        let start = if i == 0 {
            0
        } else {
            self.payload_ends[i - 1] as usize
        };
        let payload = self.payloads.slice(start..self.payload_ends[i] as usize);
        let key = match &self.keys {
            None => inherited.key.clone(),
            Some((data, ends, present)) => {
                if present[i / 8] & (1 << (i % 8)) == 0 {
                    None
                } else {
                    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
                    Some(data.slice(start..ends[i] as usize))
                }
            }
        };
        let time = self.times.get(i).copied().unwrap_or(inherited.time);
        let headers = match &self.headers {
            None => inherited.headers.to_vec(),
            Some((ends, all)) => {
                let start = if i == 0 { 0 } else { ends[i - 1] as usize };
                all[start..ends[i] as usize].to_vec()
            }
        };
        Event {
            key,
            payload,
            headers,
            time,
            redelivery: inherited.redelivery.clone(),
            origin: inherited.origin,
        }
    }
}

fn decode_headers(
    ends: &[u32],
    names: &Column,
    values: &Column,
    count: usize,
) -> Result<(Vec<u32>, Vec<Header>), String> {
    if ends.len() != count {
        return Err(format!(
            "emitted header-ends: {} for {count} events",
            ends.len()
        ));
    }
    if ends.windows(2).any(|w| w[1] < w[0]) {
        return Err("emitted header-ends go backwards".into());
    }
    let total = ends.last().copied().unwrap_or(0) as usize;
    check_column(names, total, "emitted header names")?;
    check_column(values, total, "emitted header values")?;
    let values_data = Bytes::copy_from_slice(&values.data);
    let mut headers = Vec::with_capacity(total);
    let mut name_start = 0usize;
    let mut value_start = 0usize;
    for (&name_end, &value_end) in names.ends.iter().zip(&values.ends) {
        let name = std::str::from_utf8(&names.data[name_start..name_end as usize])
            .map_err(|_| "an emitted header name is not UTF-8".to_string())?;
        headers.push(Header {
            name: name.to_owned(),
            value: values_data.slice(value_start..value_end as usize),
        });
        name_start = name_end as usize;
        value_start = value_end as usize;
    }
    Ok((ends.to_vec(), headers))
}

/// Whether bit `i` of an LSB-first bitmap is set; bits past its end are clear.
pub(crate) fn bit(bitmap: &[u8], i: usize) -> bool {
    bitmap
        .get(i / 8)
        .is_some_and(|byte| byte & (1 << (i % 8)) != 0)
}

/// Splits a column into its values, after [`check_column`] passed.
pub(crate) fn column_values(column: &Column) -> impl Iterator<Item = &[u8]> {
    let mut start = 0usize;
    column.ends.iter().map(move |&end| {
        let value = &column.data[start..end as usize];
        start = end as usize;
        value
    })
}

/// Packs byte strings into a column.
pub(crate) fn pack_column<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Column, BatchTooLarge> {
    let mut column = empty_column();
    for value in values {
        push_value(&mut column, value, "state")?;
    }
    Ok(column)
}
