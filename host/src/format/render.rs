//! MessagePack payload to JSON text in one pass, for the sinks that write JSON.
//!
//! The text is exactly what [`super::msgpack_to_json`] then serde_json writes: the same
//! numbers, escapes and refusals. A map with a repeated key, which the value tree folds into
//! one entry, is handed to the tree so that stays so; such maps are rare, and checking for
//! them costs a comparison of each key with the map's earlier ones.

use std::cell::RefCell;

use weir_plugin_sdk::msgpack::{self, Value};

use super::{
    FormatError, MAX_DEPTH, MAX_KEY_TEXT, key_too_long, msgpack_to_json, nested_too_deeply,
};
/// Maps with more entries than this go to the value tree: comparing each key with every
/// earlier one would cost more than the tree.
const MAX_COMPARED_KEYS: u32 = 64;

/// Why the one-pass rendering stopped.
enum Stop {
    /// The payload is not MessagePack with a JSON form.
    Refused(FormatError),
    /// The value tree must render it (a repeated or a very wide map).
    UseTree,
}

impl From<FormatError> for Stop {
    fn from(e: FormatError) -> Self {
        Self::Refused(e)
    }
}

thread_local! {
    /// The rendered keys of the maps being written, as ranges of the output: kept per
    /// thread so a payload costs no allocation for them.
    static KEYS: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
}

/// Appends the JSON text of the MessagePack `payload` to `out`; on an error, `out` is as
/// it was.
///
/// # Errors
/// [`FormatError::Msgpack`] for bytes that are not exactly one MessagePack value;
/// [`FormatError::Extension`] for extension types.
pub fn msgpack_to_json_into(payload: &[u8], out: &mut Vec<u8>) -> Result<(), FormatError> {
    let start = out.len();
    let rendered = KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        keys.clear();
        render(payload, out, &mut keys, 0)
    });
    let stop = match rendered {
        Ok(used) if used == payload.len() => return Ok(()),
        Ok(used) => Stop::Refused(FormatError::Msgpack(format!(
            "{} bytes after the value",
            payload.len() - used
        ))),
        Err(stop) => stop,
    };
    out.truncate(start);
    match stop {
        Stop::Refused(e) => Err(e),
        Stop::UseTree => {
            let value = msgpack_to_json(payload)?;
            // Writing JSON into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, &value);
            Ok(())
        }
    }
}

fn bad(e: msgpack::DecodeError) -> Stop {
    Stop::Refused(FormatError::Msgpack(e.to_string()))
}

/// Writes the value at the start of `buf`; returns the bytes it took.
fn render(
    buf: &[u8],
    out: &mut Vec<u8>,
    keys: &mut Vec<(usize, usize)>,
    depth: usize,
) -> Result<usize, Stop> {
    if depth > MAX_DEPTH {
        return Err(Stop::Refused(nested_too_deeply()));
    }
    let (value, mut used) = msgpack::read(buf).map_err(bad)?;
    // Writing JSON into a Vec cannot fail.
    match value {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => {
            let _ = serde_json::to_writer(&mut *out, &i);
        }
        Value::UInt(u) => {
            let _ = serde_json::to_writer(&mut *out, &u);
        }
        // serde_json writes NaN and the infinities as null, as the value tree does.
        Value::Float(f) => {
            let _ = serde_json::to_writer(&mut *out, &f);
        }
        Value::Str(bytes) => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| FormatError::Msgpack("a string is not UTF-8".into()))?;
            let _ = serde_json::to_writer(&mut *out, text);
        }
        Value::Bin(bytes) => {
            out.push(b'[');
            for (i, b) in bytes.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, b);
            }
            out.push(b']');
        }
        Value::Array { len, .. } => {
            out.push(b'[');
            for i in 0..len {
                if i > 0 {
                    out.push(b',');
                }
                used += render(rest(buf, used)?, out, keys, depth + 1)?;
            }
            out.push(b']');
        }
        Value::Map { len, .. } => {
            if len > MAX_COMPARED_KEYS {
                return Err(Stop::UseTree);
            }
            out.push(b'{');
            let first_key = keys.len();
            for i in 0..len {
                if i > 0 {
                    out.push(b',');
                }
                let key_start = out.len();
                used += render_key(rest(buf, used)?, out, keys, depth + 1)?;
                let key = &out[key_start..];
                if keys[first_key..]
                    .iter()
                    .any(|&(from, to)| &out[from..to] == key)
                {
                    return Err(Stop::UseTree);
                }
                keys.push((key_start, out.len()));
                out.push(b':');
                used += render(rest(buf, used)?, out, keys, depth + 1)?;
            }
            keys.truncate(first_key);
            out.push(b'}');
        }
        Value::Ext(kind, _) => return Err(Stop::Refused(FormatError::Extension(kind))),
    }
    Ok(used)
}

/// A map key as a JSON string: a string as itself (one that is not UTF-8 as the empty
/// string, as the value tree does), anything else as its JSON text.
fn render_key(
    buf: &[u8],
    out: &mut Vec<u8>,
    keys: &mut Vec<(usize, usize)>,
    depth: usize,
) -> Result<usize, Stop> {
    let (value, used) = msgpack::read(buf).map_err(bad)?;
    if let Value::Str(bytes) = value {
        let _ = serde_json::to_writer(&mut *out, std::str::from_utf8(bytes).unwrap_or(""));
        return Ok(used);
    }
    let mut text = Vec::new();
    let used = render(buf, &mut text, keys, depth)?;
    if text.len() > MAX_KEY_TEXT {
        return Err(Stop::Refused(key_too_long()));
    }
    let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(&text));
    Ok(used)
}

fn rest(buf: &[u8], at: usize) -> Result<&[u8], Stop> {
    buf.get(at..)
        .ok_or_else(|| bad(msgpack::DecodeError::Truncated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rmpv::Value as Msgpack;

    /// What the value tree then serde_json writes: the reference.
    fn reference(payload: &[u8]) -> Option<Vec<u8>> {
        let value = msgpack_to_json(payload).ok()?;
        Some(serde_json::to_vec(&value).expect("JSON"))
    }

    fn fast(payload: &[u8]) -> Option<Vec<u8>> {
        let mut out = b"before".to_vec();
        match msgpack_to_json_into(payload, &mut out) {
            Ok(()) => Some(out.split_off(6)),
            Err(_) => {
                assert_eq!(out, b"before", "an error leaves the output as it was");
                None
            }
        }
    }

    fn encode(value: &Msgpack) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, value).expect("encodes");
        out
    }

    fn msgpack() -> impl Strategy<Value = Msgpack> {
        let leaf = prop_oneof![
            Just(Msgpack::Nil),
            any::<bool>().prop_map(Msgpack::Boolean),
            any::<u64>().prop_map(Msgpack::from),
            any::<i64>().prop_map(Msgpack::from),
            any::<f64>().prop_map(Msgpack::F64),
            any::<f32>().prop_map(Msgpack::F32),
            any::<String>().prop_map(Msgpack::from),
            "[a-c\"\\\\\n\u{1}é😀]{0,8}".prop_map(Msgpack::from),
            prop::collection::vec(any::<u8>(), 0..8).prop_map(Msgpack::Binary),
            prop::collection::vec(any::<u8>(), 0..4).prop_map(|b| Msgpack::Ext(3, b)),
        ];
        leaf.prop_recursive(4, 200, 12, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..12).prop_map(Msgpack::Array),
                // Few distinct keys, so repeats and non-string keys come up often.
                prop::collection::vec((inner.clone(), inner), 0..12).prop_map(Msgpack::Map),
                prop::collection::vec(("[a-d]", any::<u8>()), 0..12).prop_map(|entries| {
                    Msgpack::Map(
                        entries
                            .into_iter()
                            .map(|(k, v)| (Msgpack::from(k), Msgpack::from(v)))
                            .collect(),
                    )
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn writes_what_the_value_tree_writes(value in msgpack()) {
            let payload = encode(&value);
            prop_assert_eq!(fast(&payload), reference(&payload));
        }

        #[test]
        fn refuses_what_the_value_tree_refuses(
            value in msgpack(),
            cut in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut payload = encode(&value);
            let at = cut.index(payload.len());
            payload[at] = byte;
            prop_assert_eq!(fast(&payload), reference(&payload));
            payload.truncate(at);
            prop_assert_eq!(fast(&payload), reference(&payload));
        }
    }

    #[test]
    fn wide_maps_repeated_keys_and_bad_strings_match_the_value_tree() {
        let wide = Msgpack::Map(
            (0..100)
                .map(|i| (Msgpack::from(format!("k{}", i % 70)), Msgpack::from(i)))
                .collect(),
        );
        let repeated = Msgpack::Map(vec![
            (Msgpack::from("a"), Msgpack::from(1)),
            (Msgpack::from("b"), Msgpack::from(2)),
            (Msgpack::from("a"), Msgpack::from(3)),
        ]);
        for value in [wide, repeated] {
            let payload = encode(&value);
            assert_eq!(fast(&payload), reference(&payload), "{value}");
        }
        // A map whose key is not UTF-8, and a string that is not.
        for payload in [&[0x81, 0xa1, 0xff, 0x01][..], &[0xa1, 0xff]] {
            assert_eq!(fast(payload), reference(payload), "{payload:x?}");
        }
        assert_eq!(
            fast(&encode(&Msgpack::Map(vec![
                (Msgpack::from("a"), Msgpack::from(1)),
                (Msgpack::from("a"), Msgpack::from(3)),
            ]))),
            Some(br#"{"a":3}"#.to_vec())
        );
    }

    #[test]
    fn deep_nesting_is_refused_without_exhausting_the_stack() {
        let mut payload = vec![0x91; 1_000_000];
        payload.push(0xc0);
        assert!(fast(&payload).is_none());
        let mut shallow = vec![0x91; 100];
        shallow.push(0xc0);
        assert_eq!(fast(&shallow), reference(&shallow));
    }

    #[test]
    fn nesting_stops_where_the_value_tree_stops() {
        // Arrays, and maps whose values nest (`{nil: ...}`), as deep as allowed and one more.
        for (opening, per_level) in [(&[0x91][..], 1), (&[0x81, 0xc0][..], 2)] {
            for levels in [MAX_DEPTH, MAX_DEPTH + 1] {
                let mut payload = opening.repeat(levels);
                payload.push(0xc0);
                let tree = reference(&payload);
                assert_eq!(tree.is_some(), levels == MAX_DEPTH, "{per_level} {levels}");
                assert_eq!(fast(&payload), tree, "{levels} levels");
            }
        }
    }

    #[test]
    fn keys_within_keys_cannot_blow_up() {
        // 81 bytes: a map whose key is a map whose key is ..., 40 deep. Each level escapes
        // the quotes and backslashes of the one inside, so the text would double each time.
        let mut payload = vec![0x81; 40];
        payload.extend([0xc0; 41]);
        let mut out = Vec::new();
        let err = msgpack_to_json_into(&payload, &mut out).unwrap_err();
        assert!(err.to_string().contains("map key's JSON text"), "{err}");
        assert!(out.is_empty());
        let err = msgpack_to_json(&payload).unwrap_err();
        assert!(err.to_string().contains("map key's JSON text"), "{err}");
        // A few levels are fine, and the same both ways.
        let mut few = vec![0x81; 3];
        few.extend([0xc0; 4]);
        assert_eq!(fast(&few), reference(&few));
        assert!(fast(&few).is_some());
    }
}
