//! Field values a window stage groups by and aggregates, owned so they outlive the event.

use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};
use weir_plugin_sdk::msgpack::{self, Value};

/// One field's value, owned. Floats compare and hash by their bits, so a value can be a
/// grouping key or a distinct/top-k item.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub enum Scalar {
    /// Missing or `nil`.
    #[default]
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer (unsigned values above `i64::MAX` are kept as floats).
    Int(i64),
    /// A float.
    Float(f64),
    /// A string (lossy when not UTF-8).
    Str(String),
    /// Anything else (binary, array, map, extension), as its MessagePack bytes.
    Raw(Vec<u8>),
}

impl PartialEq for Scalar {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Nil, Self::Nil) => true,
            (Self::Bool(a), Self::Bool(b)) => a == b,
            (Self::Int(a), Self::Int(b)) => a == b,
            (Self::Float(a), Self::Float(b)) => a.to_bits() == b.to_bits(),
            (Self::Str(a), Self::Str(b)) => a == b,
            (Self::Raw(a), Self::Raw(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Scalar {}

impl Hash for Scalar {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Self::Nil => {}
            Self::Bool(b) => b.hash(state),
            Self::Int(i) => i.hash(state),
            Self::Float(f) => f.to_bits().hash(state),
            Self::Str(s) => s.hash(state),
            Self::Raw(r) => r.hash(state),
        }
    }
}

impl PartialOrd for Scalar {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scalar {
    /// A total order: by kind (nil, bool, number, string, raw), numbers by value.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        fn rank(s: &Scalar) -> u8 {
            match s {
                Scalar::Nil => 0,
                Scalar::Bool(_) => 1,
                Scalar::Int(_) | Scalar::Float(_) => 2,
                Scalar::Str(_) => 3,
                Scalar::Raw(_) => 4,
            }
        }
        match (self, other) {
            (Self::Bool(a), Self::Bool(b)) => a.cmp(b),
            (Self::Int(a), Self::Int(b)) => a.cmp(b),
            (Self::Str(a), Self::Str(b)) => a.cmp(b),
            (Self::Raw(a), Self::Raw(b)) => a.cmp(b),
            (a @ (Self::Int(_) | Self::Float(_)), b @ (Self::Int(_) | Self::Float(_))) => {
                let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
                x.total_cmp(&y)
            }
            (a, b) => rank(a).cmp(&rank(b)),
        }
    }
}

impl Scalar {
    /// The value at `path` of a MessagePack map payload; `Nil` when missing or unreadable.
    pub fn lookup(payload: &[u8], path: &str) -> Self {
        match msgpack::lookup(payload, path) {
            Ok(Some(value)) => Self::from_value(value),
            _ => Self::Nil,
        }
    }

    fn from_value(value: Value<'_>) -> Self {
        match value {
            Value::Nil => Self::Nil,
            Value::Bool(b) => Self::Bool(b),
            Value::Int(i) => Self::Int(i),
            Value::UInt(u) => i64::try_from(u).map_or(Self::Float(u as f64), Self::Int),
            Value::Float(f) => Self::Float(f),
            Value::Str(s) => Self::Str(String::from_utf8_lossy(s).into_owned()),
            other => Self::Raw(encoded(other)),
        }
    }

    /// The value as a number, for numeric aggregations.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::Int(i) => Some(i as f64),
            Self::Float(f) => Some(f),
            _ => None,
        }
    }

    /// The value for an output payload.
    pub fn to_rmpv(&self) -> rmpv::Value {
        match self {
            Self::Nil => rmpv::Value::Nil,
            Self::Bool(b) => rmpv::Value::Boolean(*b),
            Self::Int(i) => rmpv::Value::from(*i),
            Self::Float(f) => rmpv::Value::F64(*f),
            Self::Str(s) => rmpv::Value::from(s.as_str()),
            Self::Raw(bytes) => {
                rmpv::decode::read_value(&mut &bytes[..]).unwrap_or(rmpv::Value::Nil)
            }
        }
    }
}

/// The MessagePack bytes of a container or binary value met by a lookup.
fn encoded(value: Value<'_>) -> Vec<u8> {
    let (header, body) = match value {
        Value::Bin(b) => {
            let mut out = Vec::with_capacity(b.len() + 5);
            msgpack::write_bin(&mut out, b);
            return out;
        }
        Value::Array { len, items } => {
            let mut out = Vec::new();
            msgpack::write_array_len(&mut out, len);
            (out, container_body(items, u64::from(len)))
        }
        Value::Map { len, entries } => {
            let mut out = Vec::new();
            msgpack::write_map_len(&mut out, len);
            (out, container_body(entries, u64::from(len) * 2))
        }
        _ => return Vec::new(),
    };
    let mut out = header;
    out.extend_from_slice(body);
    out
}

/// The bytes of `items` values at the start of `buf`.
fn container_body(buf: &[u8], items: u64) -> &[u8] {
    let mut at = 0;
    for _ in 0..items {
        match buf.get(at..).map(msgpack::skip) {
            Some(Ok(n)) => at += n,
            _ => return &buf[..at],
        }
    }
    &buf[..at]
}
