//! Conversions between JSON and the MessagePack payloads used inside Weir.
//!
//! JSON objects keep their key order. MessagePack values with no JSON form are mapped the
//! obvious way: binary strings become arrays of byte values, non-string map keys become
//! their JSON text, extension values are refused.

mod render;
mod transcode;

pub use render::msgpack_to_json_into;
pub use transcode::{JsonError, Output};

use rmpv::Value as Msgpack;
use serde_json::Value as Json;

/// A payload that cannot be converted.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The bytes are not JSON.
    #[error("invalid JSON: {0}")]
    Json(#[from] JsonError),
    /// The bytes are not one complete MessagePack value.
    #[error("invalid MessagePack: {0}")]
    Msgpack(String),
    /// A MessagePack value has no JSON form.
    #[error("MessagePack extension type {0} has no JSON form")]
    Extension(i8),
}

/// Parses JSON text into a MessagePack payload.
///
/// # Errors
/// [`FormatError::Json`] for text that is not one JSON value.
pub fn json_to_msgpack(text: &[u8]) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::with_capacity(text.len());
    json_to_msgpack_into(text, &mut out)?;
    Ok(out)
}

/// [`json_to_msgpack`], appending to `out`; on an error, part of the value may have been
/// written.
///
/// # Errors
/// [`FormatError::Json`] for text that is not one JSON value.
pub fn json_to_msgpack_into<B: transcode::Output>(
    text: &[u8],
    out: &mut B,
) -> Result<(), FormatError> {
    transcode::transcode(text, out)?;
    Ok(())
}

/// Encodes a JSON value as MessagePack.
pub fn json_value_to_msgpack(value: &Json) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    // Writing into a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, &to_msgpack(value));
    out
}

fn to_msgpack(value: &Json) -> Msgpack {
    match value {
        Json::Null => Msgpack::Nil,
        Json::Bool(b) => Msgpack::Boolean(*b),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                Msgpack::from(u)
            } else if let Some(i) = n.as_i64() {
                Msgpack::from(i)
            } else {
                Msgpack::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Msgpack::from(s.as_str()),
        Json::Array(items) => Msgpack::Array(items.iter().map(to_msgpack).collect()),
        Json::Object(map) => Msgpack::Map(
            map.iter()
                .map(|(k, v)| (Msgpack::from(k.as_str()), to_msgpack(v)))
                .collect(),
        ),
    }
}

/// Decodes a MessagePack payload into a JSON value.
///
/// # Errors
/// [`FormatError::Msgpack`] for bytes that are not exactly one MessagePack value;
/// [`FormatError::Extension`] for extension types.
pub fn msgpack_to_json(bytes: &[u8]) -> Result<Json, FormatError> {
    let len = measure(bytes)?;
    if len < bytes.len() {
        return Err(FormatError::Msgpack(format!(
            "{} bytes after the value",
            bytes.len() - len
        )));
    }
    let value = rmpv::decode::read_value(&mut &bytes[..])
        .map_err(|e| FormatError::Msgpack(e.to_string()))?;
    to_json(value)
}

/// MessagePack nested deeper than this is refused on the way to JSON, by the value tree
/// and the renderer alike: well inside what rmpv's reader allows, so the two agree, and
/// neither can exhaust the stack.
const MAX_DEPTH: usize = 256;

/// A map key that is not a string is written as its JSON text; a longer text is refused.
/// Keys within such keys double their escapes at every level, so without a bound a payload
/// of a few dozen bytes could ask for terabytes.
const MAX_KEY_TEXT: usize = 64 * 1024;

fn nested_too_deeply() -> FormatError {
    FormatError::Msgpack(format!("nested more than {MAX_DEPTH} deep"))
}

fn key_too_long() -> FormatError {
    FormatError::Msgpack(format!(
        "a map key's JSON text is longer than {MAX_KEY_TEXT} bytes"
    ))
}

/// The length of the one MessagePack value at the start of `bytes`, checked with Weir's
/// own reader: rmpv would read the reserved byte 0xc1 as nil, where the specification, the
/// renderer and plugins refuse it. Refuses nesting past [`MAX_DEPTH`].
fn measure(bytes: &[u8]) -> Result<usize, FormatError> {
    use weir_plugin_sdk::msgpack::{self, DecodeError, Value};
    let bad = |e: DecodeError| FormatError::Msgpack(e.to_string());
    let mut at = 0;
    // Items still to read in each open container, innermost last.
    let mut open: Vec<u64> = Vec::new();
    loop {
        if open.len() > MAX_DEPTH {
            return Err(nested_too_deeply());
        }
        let rest = bytes.get(at..).ok_or(DecodeError::Truncated).map_err(bad)?;
        let (value, used) = msgpack::read(rest).map_err(bad)?;
        at += used;
        let items = match value {
            Value::Array { len, .. } => u64::from(len),
            Value::Map { len, .. } => 2 * u64::from(len),
            _ => 0,
        };
        if items > 0 {
            open.push(items);
            continue;
        }
        // A whole value read: it completes the containers it was the last item of.
        loop {
            match open.last_mut() {
                None => return Ok(at),
                Some(left) if *left > 1 => {
                    *left -= 1;
                    break;
                }
                Some(_) => {
                    open.pop();
                }
            }
        }
    }
}

fn to_json(value: Msgpack) -> Result<Json, FormatError> {
    Ok(match value {
        Msgpack::Nil => Json::Null,
        Msgpack::Boolean(b) => Json::Bool(b),
        Msgpack::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => Json::from(u),
            (None, Some(s)) => Json::from(s),
            (None, None) => Json::Null,
        },
        Msgpack::F32(f) => float(f64::from(f)),
        Msgpack::F64(f) => float(f),
        Msgpack::String(s) => Json::String(match s.into_str() {
            Some(s) => s,
            None => return Err(FormatError::Msgpack("a string is not UTF-8".into())),
        }),
        Msgpack::Binary(bytes) => Json::Array(bytes.into_iter().map(Json::from).collect()),
        Msgpack::Array(items) => {
            Json::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Msgpack::Map(entries) => {
            let mut map = serde_json::Map::with_capacity(entries.len());
            for (k, v) in entries {
                let key = match k {
                    Msgpack::String(s) => s.into_str().unwrap_or_default(),
                    other => {
                        let text = to_json(other)?.to_string();
                        if text.len() > MAX_KEY_TEXT {
                            return Err(key_too_long());
                        }
                        text
                    }
                };
                map.insert(key, to_json(v)?);
            }
            Json::Object(map)
        }
        Msgpack::Ext(kind, _) => return Err(FormatError::Extension(kind)),
    })
}

/// JSON has no NaN or infinity; like most encoders, write them as null.
fn float(f: f64) -> Json {
    serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_transcoding_writes_what_the_value_tree_wrote() {
        let docs: [&[u8]; 8] = [
            br#"{"seq":1,"key":"k1","amount":51}"#,
            br#"{"a":[1,-2,3.5,null,true,"x"],"b":{"c":{}}}"#,
            b"18446744073709551615",
            b"-9223372036854775808",
            b"1e300",
            br#""h\u00e9llo \ud83d\ude00""#,
            b"[]",
            br#"{"z":1,"a":2}"#,
        ];
        for doc in docs {
            let tree: Json = serde_json::from_slice(doc).unwrap();
            assert_eq!(
                json_to_msgpack(doc).unwrap(),
                json_value_to_msgpack(&tree),
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
        assert!(json_to_msgpack(b"{nope").is_err());
        assert!(json_to_msgpack(b"1 2").is_err());
    }

    #[test]
    fn json_round_trips_through_msgpack_keeping_key_order() {
        let text = br#"{"b":1,"a":[-2,3.5,"x",null,true],"c":{"d":18446744073709551615}}"#;
        let packed = json_to_msgpack(text).unwrap();
        let back = msgpack_to_json(&packed).unwrap();
        assert_eq!(back.to_string(), String::from_utf8_lossy(text));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut packed = json_to_msgpack(b"1").unwrap();
        packed.push(0xc0);
        assert!(matches!(
            msgpack_to_json(&packed),
            Err(FormatError::Msgpack(_))
        ));
    }

    #[test]
    fn the_reserved_byte_is_refused_by_the_tree_and_the_renderer() {
        for payload in [&[0xc1][..], &[0x92, 0x01, 0xc1], &[0x81, 0xa1, b'a', 0xc1]] {
            let err = msgpack_to_json(payload).unwrap_err().to_string();
            assert!(err.contains("0xc1"), "{err}");
            let mut out = Vec::new();
            assert!(msgpack_to_json_into(payload, &mut out).is_err());
            assert!(out.is_empty());
        }
    }

    #[test]
    fn malformed_json_is_an_error() {
        assert!(matches!(
            json_to_msgpack(b"{\"a\":"),
            Err(FormatError::Json(_))
        ));
    }
}
