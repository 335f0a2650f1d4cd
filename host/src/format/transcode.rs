//! JSON text to MessagePack in one pass, with no value tree and no serde layer in between.
//!
//! This is the Kafka and HTTP sources' per-record parse, so it is written for speed: strings
//! without escapes are copied in one piece, and container headers are written optimistically
//! as one byte and widened in place only for the rare container of 16 or more items.
//!
//! The output is exactly what encoding serde_json's value with rmp (smallest encodings,
//! string keys, floats as f64) writes, and the same texts are refused: numbers follow
//! serde_json's rules (an integer is a u64, or an i64 when negative, else a float; `-0` is
//! the float -0.0), strings must be UTF-8 with valid escapes, nesting stops at 127 levels.
//!
//! An object with a repeated key is folded by serde_json into one entry (the last value, in
//! the first one's place). Such objects, and objects of more than 64 keys, where comparing
//! each key with the earlier ones would cost more than the tree, are written through the
//! value tree instead, so that every reader of the payload sees the same one value.

use std::cell::RefCell;
use std::ops::DerefMut;

use bytes::{BufMut, BytesMut};

/// Nesting of arrays and objects refused, as by serde_json: 127 levels are the most.
const MAX_DEPTH: usize = 128;

/// Why a text is not one JSON value, and at which byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {at}")]
pub struct JsonError {
    /// What was wrong.
    pub what: &'static str,
    /// The byte offset into the text.
    pub at: usize,
}

/// Objects with more keys than this go through the value tree.
const MAX_COMPARED_KEYS: usize = 64;

/// Where MessagePack is written: a `Vec<u8>` or a `BytesMut`. Headers are patched in place,
/// hence the slice access.
pub trait Output: BufMut + DerefMut<Target = [u8]> {
    /// Drops what was written from `len` on.
    fn truncate_to(&mut self, len: usize);
}

impl Output for Vec<u8> {
    fn truncate_to(&mut self, len: usize) {
        self.truncate(len);
    }
}

impl Output for BytesMut {
    fn truncate_to(&mut self, len: usize) {
        self.truncate(len);
    }
}

/// What a parse keeps between values, kept per thread so that a record costs no
/// allocation for it.
#[derive(Default)]
struct Scratch {
    /// The keys of the objects being written, as ranges of the output.
    keys: Vec<(usize, usize)>,
    /// Unescaped text of a string that has escapes.
    unescaped: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Appends the MessagePack form of the JSON `text` to `out`. On an error, part of the value
/// may have been written; the caller truncates.
///
/// # Errors
/// [`JsonError`] when `text` is not exactly one JSON value (whitespace around it allowed).
pub fn transcode<B: Output>(text: &[u8], out: &mut B) -> Result<(), JsonError> {
    let start = out.len();
    let needs_tree = SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        scratch.keys.clear();
        let mut parser = Parser {
            text,
            at: 0,
            scratch: &mut scratch,
            needs_tree: false,
        };
        parser.value(out, 0)?;
        parser.skip_space();
        if parser.at != text.len() {
            return Err(parser.error("trailing characters"));
        }
        Ok(parser.needs_tree)
    })?;
    if needs_tree {
        // The text is valid JSON, checked above by the same rules serde_json has.
        let value: serde_json::Value = serde_json::from_slice(text).map_err(|_| JsonError {
            what: "JSON the value tree refuses",
            at: 0,
        })?;
        out.truncate_to(start);
        out.put_slice(&super::json_value_to_msgpack(&value));
    }
    Ok(())
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
    scratch: &'a mut Scratch,
    /// An object has a repeated key or too many to compare: write the value tree's form.
    needs_tree: bool,
}

impl Parser<'_> {
    fn error(&self, what: &'static str) -> JsonError {
        JsonError { what, at: self.at }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    /// Skips whitespace and returns the next byte without taking it.
    fn next_token(&mut self) -> Result<u8, JsonError> {
        self.skip_space();
        self.peek().ok_or_else(|| self.error("unexpected end"))
    }

    fn value<B: Output>(&mut self, out: &mut B, depth: usize) -> Result<(), JsonError> {
        match self.next_token()? {
            b'{' => self.object(out, depth + 1),
            b'[' => self.array(out, depth + 1),
            b'"' => self.string(out),
            b't' => self.literal(b"true", 0xc3, out),
            b'f' => self.literal(b"false", 0xc2, out),
            b'n' => self.literal(b"null", 0xc0, out),
            b'-' | b'0'..=b'9' => self.number(out),
            _ => Err(self.error("expected a value")),
        }
    }

    fn literal<B: Output>(&mut self, word: &[u8], code: u8, out: &mut B) -> Result<(), JsonError> {
        if !self.text[self.at..].starts_with(word) {
            return Err(self.error("invalid literal"));
        }
        self.at += word.len();
        out.put_u8(code);
        Ok(())
    }

    // `array` and `object` share their shape on purpose: one generic loop over both, with a
    // closure for the element, measured about 7% slower on small records.
    fn array<B: Output>(&mut self, out: &mut B, depth: usize) -> Result<(), JsonError> {
        if depth >= MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.at += 1;
        let header = out.len();
        out.put_u8(0);
        let mut count = 0usize;
        if self.next_token()? == b']' {
            self.at += 1;
        } else {
            loop {
                self.value(out, depth)?;
                count += 1;
                match self.next_token()? {
                    b',' => self.at += 1,
                    b']' => {
                        self.at += 1;
                        break;
                    }
                    _ => return Err(self.error("expected ',' or ']'")),
                }
            }
        }
        patch_header(out, header, count, [0x90, 0xdc, 0xdd]);
        Ok(())
    }

    fn object<B: Output>(&mut self, out: &mut B, depth: usize) -> Result<(), JsonError> {
        if depth >= MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.at += 1;
        let header = out.len();
        out.put_u8(0);
        let mut count = 0usize;
        let first_key = self.scratch.keys.len();
        if self.next_token()? == b'}' {
            self.at += 1;
        } else {
            loop {
                if self.next_token()? != b'"' {
                    return Err(self.error("expected a string key"));
                }
                let key_start = out.len();
                self.string(out)?;
                if !self.needs_tree {
                    self.note_key(out, key_start, first_key);
                }
                if self.next_token()? != b':' {
                    return Err(self.error("expected ':'"));
                }
                self.at += 1;
                self.value(out, depth)?;
                count += 1;
                match self.next_token()? {
                    b',' => self.at += 1,
                    b'}' => {
                        self.at += 1;
                        break;
                    }
                    _ => return Err(self.error("expected ',' or '}'")),
                }
            }
        }
        self.scratch.keys.truncate(first_key);
        patch_header(out, header, count, [0x80, 0xde, 0xdf]);
        Ok(())
    }

    /// Takes note of the object key just written at `start..`; a key the object had before,
    /// or one too many to compare, sends the whole text to the value tree. The keys noted
    /// stay where they are in `out`: only the headers of containers opened after them move.
    fn note_key<B: Output>(&mut self, out: &B, start: usize, first_key: usize) {
        let keys = &mut self.scratch.keys;
        let key = &out[start..];
        let repeated = keys[first_key..]
            .iter()
            .any(|&(from, to)| to - from == key.len() && &out[from..to] == key);
        if repeated || keys.len() - first_key >= MAX_COMPARED_KEYS {
            self.needs_tree = true;
            return;
        }
        keys.push((start, out.len()));
    }

    /// A string, the opening quote next.
    fn string<B: Output>(&mut self, out: &mut B) -> Result<(), JsonError> {
        self.at += 1;
        let start = self.at;
        // Most strings have no escape: find the end and copy them in one piece.
        loop {
            match self.peek() {
                Some(b'"') => {
                    let raw = &self.text[start..self.at];
                    self.at += 1;
                    if std::str::from_utf8(raw).is_err() {
                        return Err(JsonError {
                            what: "invalid UTF-8 in a string",
                            at: start,
                        });
                    }
                    put_str(out, raw);
                    return Ok(());
                }
                Some(b'\\') => break,
                Some(0..=0x1f) => return Err(self.error("control character in a string")),
                Some(_) => self.at += 1,
                None => return Err(self.error("unterminated string")),
            }
        }
        let mut unescaped = std::mem::take(&mut self.scratch.unescaped);
        unescaped.clear();
        let result = self.escaped_string(start, &mut unescaped);
        if result.is_ok() {
            put_str(out, &unescaped);
        }
        self.scratch.unescaped = unescaped;
        result
    }

    /// The rest of a string from its first escape, `start` being its first byte.
    fn escaped_string(&mut self, start: usize, into: &mut Vec<u8>) -> Result<(), JsonError> {
        let mut piece = start;
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.take_piece(piece, into)?;
                    self.at += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.take_piece(piece, into)?;
                    self.at += 1;
                    self.escape(into)?;
                    piece = self.at;
                }
                Some(0..=0x1f) => return Err(self.error("control character in a string")),
                Some(_) => self.at += 1,
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    /// Appends the unescaped bytes from `piece` to here, checked as UTF-8. A piece ends at
    /// an ASCII quote or backslash, so it never splits a character.
    fn take_piece(&self, piece: usize, into: &mut Vec<u8>) -> Result<(), JsonError> {
        let raw = &self.text[piece..self.at];
        if std::str::from_utf8(raw).is_err() {
            return Err(JsonError {
                what: "invalid UTF-8 in a string",
                at: piece,
            });
        }
        into.extend_from_slice(raw);
        Ok(())
    }

    /// One escape, after its backslash.
    fn escape(&mut self, into: &mut Vec<u8>) -> Result<(), JsonError> {
        let c = self
            .peek()
            .ok_or_else(|| self.error("unterminated string"))?;
        self.at += 1;
        let byte = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let ch = self.unicode_escape()?;
                let mut buf = [0; 4];
                into.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                return Ok(());
            }
            _ => return Err(self.error("invalid escape")),
        };
        into.push(byte);
        Ok(())
    }

    /// A `\u` escape after its `u`, taking the second half of a surrogate pair too.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let first = self.hex4()?;
        let code = match first {
            0xd800..=0xdbff => {
                if !self.text[self.at..].starts_with(b"\\u") {
                    return Err(self.error("lone leading surrogate in a \\u escape"));
                }
                self.at += 2;
                let second = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&second) {
                    return Err(self.error("invalid trailing surrogate in a \\u escape"));
                }
                0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
            }
            0xdc00..=0xdfff => return Err(self.error("lone trailing surrogate in a \\u escape")),
            code => code,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .text
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.error("unterminated \\u escape"))?;
        let mut code = 0;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.error("invalid \\u escape")),
            };
            code = code << 4 | u32::from(v);
        }
        self.at += 4;
        Ok(code)
    }

    fn digits(&mut self) -> usize {
        let from = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        self.at - from
    }

    fn number<B: Output>(&mut self, out: &mut B) -> Result<(), JsonError> {
        let start = self.at;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let int_start = self.at;
        match self.digits() {
            0 => return Err(self.error("invalid number")),
            n if n > 1 && self.text[int_start] == b'0' => {
                return Err(JsonError {
                    what: "invalid number",
                    at: int_start + 1,
                });
            }
            _ => {}
        }
        let int_end = self.at;
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
            float = true;
        }
        if !float && let Some(magnitude) = decimal(&self.text[int_start..int_end]) {
            if !negative {
                put_uint(out, magnitude);
                return Ok(());
            }
            // As serde_json: -0 and magnitudes past i64 become floats.
            let value = (magnitude as i64).wrapping_neg();
            if value < 0 {
                put_sint(out, value);
                return Ok(());
            }
        }
        // The span is ASCII digits, signs, dots and exponents, hence UTF-8.
        let span = std::str::from_utf8(&self.text[start..self.at]).unwrap_or_default();
        match span.parse::<f64>() {
            Ok(f) if f.is_finite() => {
                out.put_u8(0xcb);
                out.put_f64(f);
                Ok(())
            }
            _ => Err(JsonError {
                what: "number out of range",
                at: start,
            }),
        }
    }
}

/// The value of ASCII digits, or `None` past `u64::MAX`.
fn decimal(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Writes a container's header over the one byte reserved at `at`: `codes` are its fix,
/// 16-bit and 32-bit forms. The wider forms move the items to make room.
fn patch_header<B: Output>(out: &mut B, at: usize, count: usize, codes: [u8; 3]) {
    if count < 16 {
        out[at] = codes[0] | count as u8;
        return;
    }
    let (code, extra) = if count <= usize::from(u16::MAX) {
        (codes[1], 2)
    } else {
        (codes[2], 4)
    };
    let end = out.len();
    out.put_bytes(0, extra);
    out.copy_within(at + 1..end, at + 1 + extra);
    out[at] = code;
    if extra == 2 {
        out[at + 1..at + 3].copy_from_slice(&(count as u16).to_be_bytes());
    } else {
        out[at + 1..at + 5].copy_from_slice(&(count as u32).to_be_bytes());
    }
}

fn put_str<B: Output>(out: &mut B, s: &[u8]) {
    let len = s.len();
    if len < 32 {
        out.put_u8(0xa0 | len as u8);
    } else if len < 256 {
        out.put_u8(0xd9);
        out.put_u8(len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.put_u8(0xda);
        out.put_u16(len as u16);
    } else {
        out.put_u8(0xdb);
        out.put_u32(len as u32);
    }
    out.put_slice(s);
}

fn put_uint<B: Output>(out: &mut B, n: u64) {
    if n < 128 {
        out.put_u8(n as u8);
    } else if n < 256 {
        out.put_u8(0xcc);
        out.put_u8(n as u8);
    } else if n <= u64::from(u16::MAX) {
        out.put_u8(0xcd);
        out.put_u16(n as u16);
    } else if n <= u64::from(u32::MAX) {
        out.put_u8(0xce);
        out.put_u32(n as u32);
    } else {
        out.put_u8(0xcf);
        out.put_u64(n);
    }
}

/// A negative integer in its smallest form.
fn put_sint<B: Output>(out: &mut B, n: i64) {
    if n >= -32 {
        out.put_i8(n as i8);
    } else if n >= i64::from(i8::MIN) {
        out.put_u8(0xd0);
        out.put_i8(n as i8);
    } else if n >= i64::from(i16::MIN) {
        out.put_u8(0xd1);
        out.put_i16(n as i16);
    } else if n >= i64::from(i32::MIN) {
        out.put_u8(0xd2);
        out.put_i32(n as i32);
    } else {
        out.put_u8(0xd3);
        out.put_i64(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value as Json;

    /// What encoding serde_json's value with rmp writes: the reference.
    fn reference(text: &[u8]) -> Option<Vec<u8>> {
        let value: Json = serde_json::from_slice(text).ok()?;
        Some(crate::format::json_value_to_msgpack(&value))
    }

    fn fast(text: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        transcode(text, &mut out).ok().map(|()| out)
    }

    fn json() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<u64>().prop_map(Json::from),
            any::<i64>().prop_map(Json::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Json::from),
            any::<String>().prop_map(Json::String),
            "[a-z\"\\\\/\n\t\u{1}é😀]{0,40}".prop_map(Json::String),
        ];
        leaf.prop_recursive(4, 300, 20, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..20).prop_map(Json::Array),
                prop::collection::vec((any::<String>(), inner), 0..20)
                    .prop_map(|entries| Json::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn writes_what_the_value_tree_writes(value in json(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_vec_pretty(&value)
            } else {
                serde_json::to_vec(&value)
            }
            .expect("serialisable");
            prop_assert_eq!(fast(&text), reference(&text));
        }

        #[test]
        fn refuses_what_serde_json_refuses(
            value in json(),
            cut in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            // One byte of valid JSON replaced: often no longer JSON, sometimes still.
            let mut text = serde_json::to_vec(&value).expect("serialisable");
            let at = cut.index(text.len());
            text[at] = byte;
            prop_assert_eq!(fast(&text).is_some(), reference(&text).is_some(),
                "{}", String::from_utf8_lossy(&text));
        }
    }

    /// Object text whose keys come from a few letters, each spelled plainly or as a `\u`
    /// escape, so that repeated keys, also spelled differently, come up often.
    fn object_text() -> impl Strategy<Value = Vec<u8>> {
        let entry = ("[a-c]", any::<bool>(), json());
        prop::collection::vec(entry, 0..10).prop_map(|entries| {
            let mut text = b"{".to_vec();
            for (i, (key, escaped, value)) in entries.iter().enumerate() {
                if i > 0 {
                    text.push(b',');
                }
                if *escaped {
                    text.extend(format!("\"\\u{:04x}\"", u32::from(key.as_bytes()[0])).bytes());
                } else {
                    text.extend(serde_json::to_vec(key).expect("key"));
                }
                text.push(b':');
                text.extend(serde_json::to_vec(value).expect("value"));
            }
            text.push(b'}');
            text
        })
    }

    proptest! {
        #[test]
        fn repeated_keys_are_folded_as_the_value_tree_folds_them(
            inner in object_text(),
            outer in object_text(),
        ) {
            prop_assert_eq!(fast(&inner), reference(&inner), "{}", String::from_utf8_lossy(&inner));
            // The same object nested in another's value, and in an array.
            let mut nested = outer[..outer.len() - 1].to_vec();
            if nested.len() > 1 {
                nested.push(b',');
            }
            nested.extend(b"\"x\":[");
            nested.extend(&inner);
            nested.extend(b"]}");
            prop_assert_eq!(fast(&nested), reference(&nested), "{}", String::from_utf8_lossy(&nested));
        }
    }

    #[test]
    fn repeated_and_many_keys_give_the_value_trees_one_value() {
        let repeated = br#"{"amount":1,"id":"x","amount":1000}"#;
        assert_eq!(fast(repeated), reference(repeated));
        let folded = fast(repeated).expect("JSON");
        assert_eq!(
            crate::format::msgpack_to_json(&folded)
                .expect("MessagePack")
                .to_string(),
            r#"{"amount":1000,"id":"x"}"#
        );
        for n in [63, 64, 65, 200] {
            let wide: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{i}")).collect();
            let text = format!("{{{}}}", wide.join(","));
            assert_eq!(
                fast(text.as_bytes()),
                reference(text.as_bytes()),
                "{n} keys"
            );
            let text = format!("{{{},\"k0\":true}}", wide.join(","));
            assert_eq!(
                fast(text.as_bytes()),
                reference(text.as_bytes()),
                "{n} keys and a repeat"
            );
        }
        // A repeat after the object was folded still leaves invalid text refused.
        assert!(fast(br#"{"a":1,"a":2,}"#).is_none());
    }

    #[test]
    fn edge_cases_match_serde_json() {
        let texts: &[&[u8]] = &[
            b"0",
            b"-0",
            b"-1",
            b"-32",
            b"-33",
            b"-128",
            b"-129",
            b"-32768",
            b"-32769",
            b"-2147483648",
            b"-2147483649",
            b"-9223372036854775808",
            b"-9223372036854775809",
            b"127",
            b"128",
            b"255",
            b"256",
            b"65535",
            b"65536",
            b"4294967295",
            b"4294967296",
            b"18446744073709551615",
            b"18446744073709551616",
            b"1e300",
            b"1e400",
            b"-1e400",
            b"1e-400",
            b"0.1",
            b"1.5E+3",
            b"2e-3",
            b"01",
            b"-",
            b"1.",
            b".5",
            b"1e",
            b"+1",
            b" \t\n\r[1 , 2 ]\n",
            b"[1,]",
            b"{\"a\":1,}",
            b"{\"a\" 1}",
            b"{1:2}",
            b"[1 2]",
            b"\"\\u00e9\\ud83d\\ude00\"",
            b"\"\\ud83d\"",
            b"\"\\ude00\"",
            b"\"\\ud83dx\"",
            b"\"\\u12\"",
            b"\"\\x\"",
            b"\"a\x01b\"",
            b"\"\xff\"",
            b"\"\xc3\xa9\"",
            b"\"unterminated",
            b"tru",
            b"nul",
            b"true false",
            b"",
            b"   ",
            b"{}",
            b"[]",
            b"[[[[]]]]",
            b"{\"a\":{\"b\":{}}}",
        ];
        for text in texts {
            assert_eq!(
                fast(text),
                reference(text),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn wide_containers_and_long_strings_get_wide_headers() {
        for n in [15, 16, 255, 256, 65_535, 65_536] {
            let array = format!("[{}]", vec!["1"; n].join(","));
            assert_eq!(
                fast(array.as_bytes()),
                reference(array.as_bytes()),
                "array of {n}"
            );
            let object = format!(
                "{{{}}}",
                (0..n)
                    .map(|i| format!("\"k{i}\":[{i}]"))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            assert_eq!(
                fast(object.as_bytes()),
                reference(object.as_bytes()),
                "object of {n}"
            );
            let string = format!("\"{}\\n\"", "x".repeat(n));
            assert_eq!(
                fast(string.as_bytes()),
                reference(string.as_bytes()),
                "string of {n}"
            );
        }
    }

    #[test]
    fn nesting_stops_where_serde_json_stops() {
        for depth in [127, 128, 129, 100_000] {
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            assert_eq!(
                fast(text.as_bytes()),
                reference(text.as_bytes()),
                "depth {depth}"
            );
        }
    }

    #[test]
    fn errors_say_what_and_where() {
        let mut out = Vec::new();
        let e = transcode(br#"{"a":1 "b":2}"#, &mut out).expect_err("not JSON");
        assert_eq!(e.to_string(), "expected ',' or '}' at byte 7");
    }
}
