//! A small, allocation-free MessagePack reader and writer for the hot path.
//!
//! Decoding a whole payload into a tree to read one field costs several times the work of
//! the field itself; [`lookup`] walks the encoded bytes instead, skipping what it does not
//! need, and never recurses (so a hostile, deeply nested payload cannot exhaust the stack).
//! For typed access to whole payloads use [`crate::Event::decode`] (serde).
//!
//! ```
//! use weir_plugin_sdk::msgpack::{self, Value};
//! let mut payload = Vec::new();
//! msgpack::write_map_len(&mut payload, 1);
//! msgpack::write_str(&mut payload, "user");
//! msgpack::write_map_len(&mut payload, 1);
//! msgpack::write_str(&mut payload, "age");
//! msgpack::write_uint(&mut payload, 42);
//! assert_eq!(msgpack::lookup(&payload, "user.age").unwrap(), Some(Value::UInt(42)));
//! assert_eq!(msgpack::lookup(&payload, "user.name").unwrap(), None);
//! ```

use std::fmt;

/// Why bytes could not be read as MessagePack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The value ends before its declared length.
    Truncated,
    /// A byte that starts no MessagePack value (0xc1).
    Reserved,
    /// The payload is not a map, where a map is needed.
    NotAMap,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "payload is truncated MessagePack",
            Self::Reserved => "payload is not valid MessagePack (reserved byte 0xc1)",
            Self::NotAMap => "payload is not a MessagePack map",
        })
    }
}

impl std::error::Error for DecodeError {}

/// One decoded value; strings, binaries and containers borrow the payload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// `nil`.
    Nil,
    /// `true` or `false`.
    Bool(bool),
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// A float (32-bit floats are widened).
    Float(f64),
    /// A string's bytes (UTF-8 unless the writer lied; see [`Value::as_str`]).
    Str(&'a [u8]),
    /// A binary string.
    Bin(&'a [u8]),
    /// An array of `len` items, encoded at the start of `items`.
    Array {
        /// Number of items.
        len: u32,
        /// Bytes from the first item on (may run past the array).
        items: &'a [u8],
    },
    /// A map of `len` entries, encoded at the start of `entries`.
    Map {
        /// Number of key/value pairs.
        len: u32,
        /// Bytes from the first key on (may run past the map).
        entries: &'a [u8],
    },
    /// An extension value.
    Ext(i8, &'a [u8]),
}

impl<'a> Value<'a> {
    /// The value as a number, if it is an integer or a float (booleans are not numbers).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::Int(i) => Some(i as f64),
            Self::UInt(u) => Some(u as f64),
            Self::Float(f) => Some(f),
            _ => None,
        }
    }

    /// The value as a string, if it is a valid UTF-8 string.
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            Self::Str(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }
}

fn take(buf: &[u8], at: usize, n: usize) -> Result<&[u8], DecodeError> {
    buf.get(at..at.checked_add(n).ok_or(DecodeError::Truncated)?)
        .ok_or(DecodeError::Truncated)
}

fn be(buf: &[u8], at: usize, n: usize) -> Result<u64, DecodeError> {
    Ok(take(buf, at, n)?
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// Reads the value at the start of `buf`; returns it and the length of its header plus, for
/// scalars, strings and binaries, its body. Containers' items are not consumed.
pub fn read(buf: &[u8]) -> Result<(Value<'_>, usize), DecodeError> {
    let &marker = buf.first().ok_or(DecodeError::Truncated)?;
    let bytes = |len_size: usize| -> Result<(&[u8], usize), DecodeError> {
        let len = be(buf, 1, len_size)? as usize;
        Ok((take(buf, 1 + len_size, len)?, 1 + len_size + len))
    };
    let container = |len_size: usize| -> Result<(u32, usize), DecodeError> {
        Ok((be(buf, 1, len_size)? as u32, 1 + len_size))
    };
    let ext = |len_size: usize, fixed: Option<usize>| -> Result<(Value<'_>, usize), DecodeError> {
        let (len, head) = match fixed {
            Some(len) => (len, 1),
            None => (be(buf, 1, len_size)? as usize, 1 + len_size),
        };
        let kind = *buf.get(head).ok_or(DecodeError::Truncated)? as i8;
        Ok((Value::Ext(kind, take(buf, head + 1, len)?), head + 1 + len))
    };
    Ok(match marker {
        0x00..=0x7f => (Value::UInt(u64::from(marker)), 1),
        0x80..=0x8f => (
            Value::Map {
                len: u32::from(marker & 0x0f),
                entries: &buf[1..],
            },
            1,
        ),
        0x90..=0x9f => (
            Value::Array {
                len: u32::from(marker & 0x0f),
                items: &buf[1..],
            },
            1,
        ),
        0xa0..=0xbf => {
            let len = usize::from(marker & 0x1f);
            (Value::Str(take(buf, 1, len)?), 1 + len)
        }
        0xc0 => (Value::Nil, 1),
        0xc1 => return Err(DecodeError::Reserved),
        0xc2 => (Value::Bool(false), 1),
        0xc3 => (Value::Bool(true), 1),
        0xc4 => bytes(1).map(|(b, n)| (Value::Bin(b), n))?,
        0xc5 => bytes(2).map(|(b, n)| (Value::Bin(b), n))?,
        0xc6 => bytes(4).map(|(b, n)| (Value::Bin(b), n))?,
        0xc7 => ext(1, None)?,
        0xc8 => ext(2, None)?,
        0xc9 => ext(4, None)?,
        0xca => (
            Value::Float(f64::from(f32::from_bits(be(buf, 1, 4)? as u32))),
            5,
        ),
        0xcb => (Value::Float(f64::from_bits(be(buf, 1, 8)?)), 9),
        0xcc => (Value::UInt(be(buf, 1, 1)?), 2),
        0xcd => (Value::UInt(be(buf, 1, 2)?), 3),
        0xce => (Value::UInt(be(buf, 1, 4)?), 5),
        0xcf => (Value::UInt(be(buf, 1, 8)?), 9),
        0xd0 => (int(i64::from(be(buf, 1, 1)? as u8 as i8)), 2),
        0xd1 => (int(i64::from(be(buf, 1, 2)? as u16 as i16)), 3),
        0xd2 => (int(i64::from(be(buf, 1, 4)? as u32 as i32)), 5),
        0xd3 => (int(be(buf, 1, 8)? as i64), 9),
        0xd4 => ext(0, Some(1))?,
        0xd5 => ext(0, Some(2))?,
        0xd6 => ext(0, Some(4))?,
        0xd7 => ext(0, Some(8))?,
        0xd8 => ext(0, Some(16))?,
        0xd9 => bytes(1).map(|(b, n)| (Value::Str(b), n))?,
        0xda => bytes(2).map(|(b, n)| (Value::Str(b), n))?,
        0xdb => bytes(4).map(|(b, n)| (Value::Str(b), n))?,
        0xdc | 0xdd => {
            let (len, n) = container(if marker == 0xdc { 2 } else { 4 })?;
            (
                Value::Array {
                    len,
                    items: &buf[n..],
                },
                n,
            )
        }
        0xde | 0xdf => {
            let (len, n) = container(if marker == 0xde { 2 } else { 4 })?;
            (
                Value::Map {
                    len,
                    entries: &buf[n..],
                },
                n,
            )
        }
        0xe0..=0xff => (Value::Int(i64::from(marker as i8)), 1),
    })
}

/// Signed integers that are not negative are reported as [`Value::UInt`], so that one
/// number has one representation whatever width the writer chose.
fn int(i: i64) -> Value<'static> {
    if i >= 0 {
        Value::UInt(i as u64)
    } else {
        Value::Int(i)
    }
}

/// The encoded length of the whole value at the start of `buf`, containers included.
///
/// # Errors
/// [`DecodeError`] when the bytes are not complete MessagePack.
pub fn skip(buf: &[u8]) -> Result<usize, DecodeError> {
    let mut pos = 0usize;
    let mut pending = 1u64;
    while pending > 0 {
        let (value, n) = read(buf.get(pos..).ok_or(DecodeError::Truncated)?)?;
        pos += n;
        pending -= 1;
        match value {
            Value::Array { len, .. } => pending += u64::from(len),
            Value::Map { len, .. } => pending += 2 * u64::from(len),
            _ => {}
        }
    }
    Ok(pos)
}

/// Whether the map key at the start of `buf` is the string `want`, and the key's length.
/// Short string keys, nearly all keys in practice, are compared without decoding a value.
#[inline]
fn key_matches(buf: &[u8], want: &[u8]) -> Result<(bool, usize), DecodeError> {
    let (start, len) = match buf.first() {
        Some(&m @ 0xa0..=0xbf) => (1, usize::from(m & 0x1f)),
        Some(0xd9) => (2, usize::from(*buf.get(1).ok_or(DecodeError::Truncated)?)),
        _ => {
            let (key, n) = read(buf)?;
            return Ok((key == Value::Str(want), n));
        }
    };
    let key = take(buf, start, len)?;
    // Most keys that differ, differ in length or first byte: those are decided without a
    // call to `memcmp` (a plain byte loop in wasm).
    let matches = key.len() == want.len() && key.first() == want.first() && key == want;
    Ok((matches, start + len))
}

/// [`skip`] with the common scalars and short strings done inline, without the loop.
#[inline]
fn skip_value(buf: &[u8]) -> Result<usize, DecodeError> {
    let n = match buf.first() {
        Some(0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff) => 1,
        Some(0xcc | 0xd0) => 2,
        Some(0xcd | 0xd1) => 3,
        Some(0xca | 0xce | 0xd2) => 5,
        Some(0xcb | 0xcf | 0xd3) => 9,
        Some(&m @ 0xa0..=0xbf) => 1 + usize::from(m & 0x1f),
        Some(0xd9) => 2 + usize::from(*buf.get(1).ok_or(DecodeError::Truncated)?),
        _ => return skip(buf),
    };
    if n > buf.len() {
        return Err(DecodeError::Truncated);
    }
    Ok(n)
}

/// The value at a dotted `path` (`amount`, `user.id`) in a payload that is a map.
///
/// Returns `Ok(None)` when a key is missing or an intermediate value is not a map.
///
/// # Errors
/// [`DecodeError::NotAMap`] when the payload is not a map; other errors for malformed
/// bytes met on the way.
pub fn lookup<'a>(payload: &'a [u8], path: &str) -> Result<Option<Value<'a>>, DecodeError> {
    let mut current = payload;
    let mut rest = path;
    let mut root = true;
    loop {
        // Split by hand: `str::split` is a measurable share of a lookup in wasm.
        let (segment, more) = match rest.as_bytes().iter().position(|&b| b == b'.') {
            Some(dot) => (&rest[..dot], Some(&rest[dot + 1..])),
            None => (rest, None),
        };
        let (len, mut pos) = match map_header(current)? {
            Some(header) => header,
            None if root => return Err(DecodeError::NotAMap),
            None => return Ok(None),
        };
        root = false;
        let mut found = None;
        for _ in 0..len {
            let tail = current.get(pos..).ok_or(DecodeError::Truncated)?;
            let (matches, n) = key_matches(tail, segment.as_bytes())?;
            pos += n;
            if matches {
                found = Some(pos);
                break;
            }
            pos += skip_value(current.get(pos..).ok_or(DecodeError::Truncated)?)?;
        }
        let Some(at) = found else { return Ok(None) };
        current = current.get(at..).ok_or(DecodeError::Truncated)?;
        match more {
            Some(next) => rest = next,
            None => return read(current).map(|(value, _)| Some(value)),
        }
    }
}

/// The entry count and header length of the map at the start of `buf`, or `None` when the
/// value there is not a map.
#[inline]
fn map_header(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    Ok(match buf.first() {
        Some(&m @ 0x80..=0x8f) => Some((u32::from(m & 0x0f), 1)),
        Some(0xde) => Some((be(buf, 1, 2)? as u32, 3)),
        Some(0xdf) => Some((be(buf, 1, 4)? as u32, 5)),
        // Not a map; malformed bytes are still reported as such.
        Some(_) => {
            read(buf)?;
            None
        }
        None => return Err(DecodeError::Truncated),
    })
}

/// A copy of the map `payload` with `key` set to the already encoded `value`: replaced in
/// place when present, appended otherwise.
///
/// # Errors
/// [`DecodeError::NotAMap`] when the payload is not a map.
pub fn set_field(payload: &[u8], key: &str, value: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let (len, head) = match read(payload)? {
        (Value::Map { len, .. }, n) => (len, n),
        _ => return Err(DecodeError::NotAMap),
    };
    let mut pos = head;
    for _ in 0..len {
        let key_start = pos;
        let (found, n) = read(&payload[pos..])?;
        pos += n;
        let value_len = skip(payload.get(pos..).ok_or(DecodeError::Truncated)?)?;
        if found == Value::Str(key.as_bytes()) {
            let mut out = Vec::with_capacity(payload.len() + value.len());
            out.extend_from_slice(&payload[..pos]);
            out.extend_from_slice(value);
            out.extend_from_slice(&payload[pos + value_len..]);
            return Ok(out);
        }
        let _ = key_start;
        pos += value_len;
    }
    let mut out = Vec::with_capacity(payload.len() + key.len() + value.len() + 8);
    write_map_len(&mut out, len + 1);
    out.extend_from_slice(&payload[head..pos]);
    write_str(&mut out, key);
    out.extend_from_slice(value);
    Ok(out)
}

/// Appends `nil`.
pub fn write_nil(out: &mut Vec<u8>) {
    out.push(0xc0);
}

/// Appends a boolean.
pub fn write_bool(out: &mut Vec<u8>, value: bool) {
    out.push(if value { 0xc3 } else { 0xc2 });
}

/// Appends a non-negative integer in its shortest form.
pub fn write_uint(out: &mut Vec<u8>, value: u64) {
    match value {
        0..=0x7f => out.push(value as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, value as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(value as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(value as u32).to_be_bytes());
        }
        _ => {
            out.push(0xcf);
            out.extend_from_slice(&value.to_be_bytes());
        }
    }
}

/// Appends an integer in its shortest form.
pub fn write_int(out: &mut Vec<u8>, value: i64) {
    if value >= 0 {
        return write_uint(out, value as u64);
    }
    match value {
        -32..=-1 => out.push(value as i8 as u8),
        -128..=-33 => out.extend_from_slice(&[0xd0, value as i8 as u8]),
        -32768..=-129 => {
            out.push(0xd1);
            out.extend_from_slice(&(value as i16).to_be_bytes());
        }
        -2_147_483_648..=-32769 => {
            out.push(0xd2);
            out.extend_from_slice(&(value as i32).to_be_bytes());
        }
        _ => {
            out.push(0xd3);
            out.extend_from_slice(&value.to_be_bytes());
        }
    }
}

/// Appends a 64-bit float.
pub fn write_f64(out: &mut Vec<u8>, value: f64) {
    out.push(0xcb);
    out.extend_from_slice(&value.to_bits().to_be_bytes());
}

/// Appends a string.
pub fn write_str(out: &mut Vec<u8>, value: &str) {
    let len = value.len();
    match len {
        0..=31 => out.push(0xa0 | len as u8),
        32..=0xff => out.extend_from_slice(&[0xd9, len as u8]),
        0x100..=0xffff => {
            out.push(0xda);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdb);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(value.as_bytes());
}

/// Appends a binary string.
pub fn write_bin(out: &mut Vec<u8>, value: &[u8]) {
    let len = value.len();
    match len {
        0..=0xff => out.extend_from_slice(&[0xc4, len as u8]),
        0x100..=0xffff => {
            out.push(0xc5);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0xc6);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(value);
}

/// Appends an array header; `len` items must follow.
pub fn write_array_len(out: &mut Vec<u8>, len: u32) {
    match len {
        0..=15 => out.push(0x90 | len as u8),
        16..=0xffff => {
            out.push(0xdc);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdd);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

/// Appends a map header; `len` key/value pairs must follow.
pub fn write_map_len(out: &mut Vec<u8>, len: u32) {
    match len {
        0..=15 => out.push(0x80 | len as u8),
        16..=0xffff => {
            out.push(0xde);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdf);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_skip_agrees_with_the_general_one() {
        let mut values: Vec<Vec<u8>> = Vec::new();
        let mut push = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut v = Vec::new();
            f(&mut v);
            values.push(v);
        };
        for n in [
            0u64,
            5,
            127,
            128,
            255,
            256,
            65_535,
            65_536,
            u64::from(u32::MAX) + 1,
        ] {
            push(&|v| write_uint(v, n));
        }
        for n in [-1i64, -32, -33, -128, -129, -32_768, -40_000, i64::MIN] {
            push(&|v| write_int(v, n));
        }
        for text in ["", "a", &"x".repeat(31), &"y".repeat(32), &"z".repeat(300)] {
            push(&|v| write_str(v, text));
        }
        push(&|v| write_f64(v, 1.5));
        push(&|v| write_nil(v));
        push(&|v| write_bool(v, true));
        push(&|v| {
            write_map_len(v, 1);
            write_str(v, "k");
            write_array_len(v, 2);
            write_uint(v, 1);
            write_str(v, "two");
        });
        for value in &values {
            let mut padded = value.clone();
            padded.extend_from_slice(&[0xc0, 0xc0]);
            assert_eq!(
                skip_value(&padded).unwrap(),
                skip(&padded).unwrap(),
                "{value:x?}"
            );
            assert_eq!(skip_value(&padded).unwrap(), value.len());
            if value.len() > 1 {
                assert!(
                    skip_value(&value[..value.len() - 1]).is_err(),
                    "truncated {value:x?}"
                );
            }
        }
    }

    fn sample() -> Vec<u8> {
        // {"id": 7, "tags": ["a", {"x": 1}], "user": {"name": "ann", "score": -3.5}, "big": 300}
        let mut b = Vec::new();
        write_map_len(&mut b, 4);
        write_str(&mut b, "id");
        write_uint(&mut b, 7);
        write_str(&mut b, "tags");
        write_array_len(&mut b, 2);
        write_str(&mut b, "a");
        write_map_len(&mut b, 1);
        write_str(&mut b, "x");
        write_int(&mut b, 1);
        write_str(&mut b, "user");
        write_map_len(&mut b, 2);
        write_str(&mut b, "name");
        write_str(&mut b, "ann");
        write_str(&mut b, "score");
        write_f64(&mut b, -3.5);
        write_str(&mut b, "big");
        write_int(&mut b, 300);
        b
    }

    #[test]
    fn lookup_walks_nested_maps_and_skips_containers() {
        let b = sample();
        assert_eq!(lookup(&b, "id").unwrap(), Some(Value::UInt(7)));
        assert_eq!(lookup(&b, "user.score").unwrap(), Some(Value::Float(-3.5)));
        assert_eq!(
            lookup(&b, "user.name").unwrap().and_then(|v| v.as_str()),
            Some("ann")
        );
        assert_eq!(lookup(&b, "big").unwrap(), Some(Value::UInt(300)));
        assert_eq!(lookup(&b, "missing").unwrap(), None);
        assert_eq!(lookup(&b, "id.deeper").unwrap(), None);
    }

    #[test]
    fn non_map_payload_and_truncation_are_errors() {
        let mut b = Vec::new();
        write_array_len(&mut b, 0);
        assert_eq!(lookup(&b, "a"), Err(DecodeError::NotAMap));
        let full = sample();
        assert_eq!(
            lookup(&full[..full.len() - 3], "big"),
            Err(DecodeError::Truncated)
        );
        assert_eq!(lookup(&[0xc1], "a"), Err(DecodeError::Reserved));
    }

    #[test]
    fn skip_measures_whole_values() {
        let b = sample();
        assert_eq!(skip(&b).unwrap(), b.len());
    }

    #[test]
    fn integers_round_trip_at_every_width() {
        for v in [
            0i64,
            1,
            127,
            128,
            255,
            256,
            65535,
            65536,
            1 << 40,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            i64::MIN,
            i64::MAX,
        ] {
            let mut b = Vec::new();
            write_int(&mut b, v);
            let (value, n) = read(&b).unwrap();
            assert_eq!(n, b.len());
            assert_eq!(value.as_f64(), Some(v as f64), "{v}");
        }
    }

    #[test]
    fn set_field_replaces_or_appends() {
        let b = sample();
        let mut v = Vec::new();
        write_str(&mut v, "new");
        let replaced = set_field(&b, "id", &v).unwrap();
        assert_eq!(
            lookup(&replaced, "id").unwrap().and_then(|v| v.as_str()),
            Some("new")
        );
        assert_eq!(lookup(&replaced, "big").unwrap(), Some(Value::UInt(300)));
        let appended = set_field(&b, "extra", &v).unwrap();
        assert_eq!(
            lookup(&appended, "extra").unwrap().and_then(|v| v.as_str()),
            Some("new")
        );
        assert_eq!(skip(&appended).unwrap(), appended.len());
    }
}
