//! Edge formats: bytes from outside into MessagePack payloads, and payloads back to bytes.

use bytes::Bytes;
use serde_json::{Map, Value as Json};

use crate::config::EdgeFormat;
use crate::event::Event;
use crate::format::{json_to_msgpack, msgpack_to_json, msgpack_to_json_into};

/// Turns one record read at the edge into a payload.
///
/// # Errors
/// The reason, for the dead-letter sink, when the record is not valid in `format`.
pub fn decode(format: EdgeFormat, record: &[u8]) -> Result<Bytes, String> {
    decode_with(format, record, Bytes::copy_from_slice)
}

/// [`decode`], with `keep` making the payload of a record kept as it is (msgpack, raw), so
/// a source can copy many records into one buffer instead of allocating each.
///
/// # Errors
/// The reason, for the dead-letter sink, when the record is not valid in `format`.
pub fn decode_with(
    format: EdgeFormat,
    record: &[u8],
    keep: impl FnOnce(&[u8]) -> Bytes,
) -> Result<Bytes, String> {
    match format {
        EdgeFormat::Json => json_to_msgpack(record)
            .map(Bytes::from)
            .map_err(|e| e.to_string()),
        EdgeFormat::Msgpack => match weir_plugin_sdk::msgpack::skip(record) {
            Ok(n) if n == record.len() => Ok(keep(record)),
            Ok(_) => Err("invalid MessagePack: bytes after the value".into()),
            Err(e) => Err(format!("invalid MessagePack: {e}")),
        },
        EdgeFormat::Raw => Ok(keep(record)),
    }
}

/// Appends `event` to `out` in `format`: a JSON line (just the payload, or with `envelope`
/// an object with key, time, headers and payload), a MessagePack value, or raw bytes and a
/// newline. A payload that is not MessagePack is written as a JSON string of its bytes, so
/// a sink never refuses what a source let through (such as malformed input dead-lettered).
pub fn encode(format: EdgeFormat, envelope: bool, event: &Event, out: &mut Vec<u8>) {
    match format {
        EdgeFormat::Json if envelope => {
            let value = envelope_json(event, payload_json(&event.payload));
            // Writing JSON into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, &value);
            out.push(b'\n');
        }
        EdgeFormat::Json => {
            write_payload_json(&event.payload, out);
            out.push(b'\n');
        }
        EdgeFormat::Msgpack => out.extend_from_slice(&event.payload),
        EdgeFormat::Raw => {
            out.extend_from_slice(&event.payload);
            out.push(b'\n');
        }
    }
}

/// Replaces the contents of `out` with every event of a batch, encoded as [`encode`] does.
pub fn encode_batch(format: EdgeFormat, envelope: bool, events: &[Event], out: &mut Vec<u8>) {
    out.clear();
    for event in events {
        encode(format, envelope, event, out);
    }
}

/// Appends a payload as JSON text: the JSON form of its MessagePack, or, for bytes that are
/// not MessagePack, a JSON string of them.
pub fn write_payload_json(payload: &[u8], out: &mut Vec<u8>) {
    if msgpack_to_json_into(payload, out).is_err() {
        // Writing JSON into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(payload));
    }
}

fn payload_json(payload: &[u8]) -> Json {
    msgpack_to_json(payload)
        .unwrap_or_else(|_| Json::String(String::from_utf8_lossy(payload).into_owned()))
}

/// The JSON envelope of an event: `{"key", "time", "headers", "payload"}`, the shape
/// `weir plugin run --envelope` reads and every JSON sink with `envelope = true` writes.
/// Keys and header values are shown as (lossy) UTF-8 text; a missing key is `null`.
pub fn envelope_json(event: &Event, payload: Json) -> Json {
    let text = |bytes: &[u8]| Json::String(String::from_utf8_lossy(bytes).into_owned());
    let headers: Map<String, Json> = event
        .headers
        .iter()
        .map(|h| (h.name.clone(), text(&h.value)))
        .collect();
    serde_json::json!({
        "key": event.key.as_deref().map_or(Json::Null, text),
        "time": event.time,
        "headers": headers,
        "payload": payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_and_bad_payloads_become_strings() {
        let payload = decode(EdgeFormat::Json, br#"{"a":1}"#).unwrap();
        let mut out = Vec::new();
        encode(EdgeFormat::Json, false, &Event::new(payload, 5), &mut out);
        assert_eq!(out, b"{\"a\":1}\n");
        assert!(decode(EdgeFormat::Json, b"{nope").is_err());
        out.clear();
        encode(
            EdgeFormat::Json,
            true,
            &Event::new(&b"{nope"[..], 5),
            &mut out,
        );
        assert_eq!(
            out,
            b"{\"key\":null,\"time\":5,\"headers\":{},\"payload\":\"{nope\"}\n"
        );
    }

    #[test]
    fn msgpack_must_be_exactly_one_value() {
        assert!(decode(EdgeFormat::Msgpack, &[0x01]).is_ok());
        assert!(decode(EdgeFormat::Msgpack, &[0x01, 0x02]).is_err());
        assert!(decode(EdgeFormat::Msgpack, &[0xd9]).is_err());
    }
}
