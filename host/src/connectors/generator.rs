//! `type = "generator"`: synthetic events from a template, at a rate or as fast as the
//! pipeline takes them, for demos and benchmarks.

use std::time::{Duration, Instant};

use bytes::Bytes;
use weir_plugin_sdk::msgpack;

use super::source::{Emitter, SourceContext, SourceError};
use crate::config::GeneratorConfig;
use crate::event::{Event, now_ms};

/// One value of the template.
#[derive(Debug, Clone)]
enum Node {
    /// A value encoded once, copied into every event.
    Fixed(Vec<u8>),
    /// A string with placeholders.
    Text(Vec<Part>),
    /// A lone placeholder: a number when the placeholder is numeric.
    Single(Part),
    /// A table.
    Map(Vec<(String, Node)>),
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Seq,
    Now,
    Int(i64, i64),
    Float(f64, f64),
    Choice(Vec<String>),
}

/// A compiled payload and key template.
#[derive(Debug, Clone)]
pub struct GeneratorTemplate {
    payload: Node,
    key: Option<Vec<Part>>,
}

impl GeneratorTemplate {
    /// Compiles the template and key of `config`.
    ///
    /// # Errors
    /// A message naming the bad placeholder and listing the good ones.
    pub fn new(config: &GeneratorConfig) -> Result<Self, String> {
        let payload = match &config.template {
            Some(table) => compile_table(table)?,
            None => Node::Map(vec![("seq".into(), Node::Single(Part::Seq))]),
        };
        let key = config.key.as_deref().map(parse_text).transpose()?;
        Ok(Self { payload, key })
    }

    /// Writes the payload of event number `seq` into `out`.
    pub fn payload(&self, seq: u64, now: i64, rng: &mut fastrand::Rng, out: &mut Vec<u8>) {
        write_node(&self.payload, seq, now, rng, out);
    }

    /// The key of event number `seq`, if the template has one.
    pub fn key(&self, seq: u64, now: i64, rng: &mut fastrand::Rng) -> Option<Bytes> {
        let parts = self.key.as_ref()?;
        let mut text = String::new();
        for part in parts {
            write_part_text(part, seq, now, rng, &mut text);
        }
        Some(Bytes::from(text))
    }
}

fn compile_table(table: &toml::Table) -> Result<Node, String> {
    let mut entries = Vec::with_capacity(table.len());
    for (key, value) in table {
        entries.push((key.clone(), compile_value(value)?));
    }
    Ok(Node::Map(entries))
}

fn compile_value(value: &toml::Value) -> Result<Node, String> {
    Ok(match value {
        toml::Value::Table(t) => compile_table(t)?,
        toml::Value::String(s) => {
            let parts = parse_text(s)?;
            match parts.as_slice() {
                [] => Node::Fixed(encoded_str("")),
                [Part::Literal(text)] => Node::Fixed(encoded_str(text)),
                [single] => Node::Single(single.clone()),
                _ => Node::Text(parts),
            }
        }
        other => {
            let json = serde_json::to_value(other).map_err(|e| e.to_string())?;
            Node::Fixed(crate::format::json_value_to_msgpack(&json))
        }
    })
}

fn encoded_str(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    msgpack::write_str(&mut out, text);
    out
}

const PLACEHOLDERS: &str =
    "{{seq}}, {{now}}, {{int(LOW,HIGH)}}, {{float(LOW,HIGH)}}, {{choice(a|b|c)}}";

fn parse_text(text: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(Part::Literal(rest[..start].to_owned()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("{text:?}: `{{{{` without `}}}}`"))?;
        parts.push(parse_placeholder(after[..end].trim())?);
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_owned()));
    }
    Ok(parts)
}

fn parse_placeholder(p: &str) -> Result<Part, String> {
    let bad = || format!("unknown placeholder {{{{{p}}}}}: have {PLACEHOLDERS}");
    if p == "seq" {
        return Ok(Part::Seq);
    }
    if p == "now" {
        return Ok(Part::Now);
    }
    let (name, args) = p
        .strip_suffix(')')
        .and_then(|s| s.split_once('('))
        .ok_or_else(bad)?;
    let range = |args: &str| -> Result<(String, String), String> {
        let (lo, hi) = args.split_once(',').ok_or_else(bad)?;
        Ok((lo.trim().to_owned(), hi.trim().to_owned()))
    };
    match name.trim() {
        "int" => {
            let (lo, hi) = range(args)?;
            let (lo, hi): (i64, i64) = (
                lo.parse().map_err(|_| bad())?,
                hi.parse().map_err(|_| bad())?,
            );
            if lo > hi {
                return Err(format!("{{{{{p}}}}}: LOW is above HIGH"));
            }
            Ok(Part::Int(lo, hi))
        }
        "float" => {
            let (lo, hi) = range(args)?;
            let (lo, hi): (f64, f64) = (
                lo.parse().map_err(|_| bad())?,
                hi.parse().map_err(|_| bad())?,
            );
            if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
                return Err(format!("{{{{{p}}}}}: LOW must be below HIGH"));
            }
            Ok(Part::Float(lo, hi))
        }
        "choice" => {
            let options: Vec<String> = args.split('|').map(|s| s.trim().to_owned()).collect();
            if options.iter().any(String::is_empty) {
                return Err(format!("{{{{{p}}}}}: every choice needs text"));
            }
            Ok(Part::Choice(options))
        }
        _ => Err(bad()),
    }
}

fn write_node(node: &Node, seq: u64, now: i64, rng: &mut fastrand::Rng, out: &mut Vec<u8>) {
    match node {
        Node::Fixed(bytes) => out.extend_from_slice(bytes),
        Node::Map(entries) => {
            msgpack::write_map_len(out, entries.len() as u32);
            for (key, value) in entries {
                msgpack::write_str(out, key);
                write_node(value, seq, now, rng, out);
            }
        }
        Node::Single(part) => match part {
            Part::Seq => msgpack::write_uint(out, seq),
            Part::Now => msgpack::write_int(out, now),
            Part::Int(lo, hi) => msgpack::write_int(out, rng.i64(*lo..=*hi)),
            Part::Float(lo, hi) => msgpack::write_f64(out, lo + rng.f64() * (hi - lo)),
            Part::Choice(options) => msgpack::write_str(out, &options[rng.usize(..options.len())]),
            Part::Literal(text) => msgpack::write_str(out, text),
        },
        Node::Text(parts) => {
            let mut text = String::new();
            for part in parts {
                write_part_text(part, seq, now, rng, &mut text);
            }
            msgpack::write_str(out, &text);
        }
    }
}

fn write_part_text(part: &Part, seq: u64, now: i64, rng: &mut fastrand::Rng, text: &mut String) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = match part {
        Part::Literal(s) => write!(text, "{s}"),
        Part::Seq => write!(text, "{seq}"),
        Part::Now => write!(text, "{now}"),
        Part::Int(lo, hi) => write!(text, "{}", rng.i64(*lo..=*hi)),
        Part::Float(lo, hi) => write!(text, "{}", lo + rng.f64() * (hi - lo)),
        Part::Choice(options) => write!(text, "{}", options[rng.usize(..options.len())]),
    };
}

/// Runs a generator until its count is reached or shutdown.
///
/// # Errors
/// When the pipeline stops taking events.
pub async fn run(config: GeneratorConfig, ctx: SourceContext) -> Result<(), SourceError> {
    let template = GeneratorTemplate::new(&config).map_err(|e| SourceError::read(&ctx.name, e))?;
    let mut emitter = Emitter::<u64>::new(ctx, false);
    let mut rng = fastrand::Rng::new();
    let batch_size = emitter.ctx().batch_size as u64;
    let shutdown = emitter.ctx().shutdown.clone();
    let count = config.count.unwrap_or(u64::MAX);
    let started = Instant::now();
    let mut seq = 0u64;
    let mut payload = Vec::with_capacity(64 * batch_size as usize);
    while seq < count && !shutdown.is_cancelled() {
        let mut n = batch_size.min(count - seq);
        if let Some(rate) = config.rate {
            let due = (started.elapsed().as_secs_f64() * rate) as u64;
            if due <= seq {
                let wait = Duration::from_secs_f64(
                    ((seq + 1) as f64 / rate - started.elapsed().as_secs_f64()).max(0.0),
                );
                tokio::select! {
                    () = tokio::time::sleep(wait.min(emitter.ctx().linger.max(Duration::from_millis(1)))) => {}
                    () = shutdown.cancelled() => break,
                }
                continue;
            }
            n = n.min(due - seq);
        }
        let now = now_ms();
        // One buffer per batch, sliced per event: one allocation instead of one per event.
        payload.clear();
        let mut ends = Vec::with_capacity(n as usize);
        for s in seq..seq + n {
            template.payload(s, now, &mut rng, &mut payload);
            ends.push(payload.len());
        }
        let block = Bytes::copy_from_slice(&payload);
        let mut start = 0;
        let mut events = Vec::with_capacity(n as usize);
        for (s, end) in (seq..seq + n).zip(ends) {
            events.push(Event {
                key: template.key(s, now, &mut rng),
                payload: block.slice(start..end),
                headers: Vec::new(),
                time: now,
                redelivery: None,
                origin: None,
            });
            start = end;
        }
        seq += n;
        tokio::select! {
            sent = emitter.emit(events, Vec::new(), seq) => sent?,
            () = shutdown.cancelled() => break,
        }
    }
    emitter.finish().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::msgpack_to_json;

    fn config(template: &str, key: Option<&str>) -> GeneratorConfig {
        GeneratorConfig {
            count: Some(1),
            rate: None,
            template: Some(toml::from_str(template).unwrap()),
            key: key.map(str::to_owned),
        }
    }

    #[test]
    fn placeholders_fill_numbers_and_strings() {
        let t = GeneratorTemplate::new(&config(
            "seq = \"{{seq}}\"\namount = \"{{int(5,5)}}\"\nuser = \"u-{{int(7,7)}}\"\nfixed = 1.5\nc = \"{{choice(x)}}\"\n[nested]\nn = \"{{seq}}\"",
            Some("k{{seq}}"),
        ))
        .unwrap();
        let mut rng = fastrand::Rng::with_seed(1);
        let mut out = Vec::new();
        t.payload(42, 0, &mut rng, &mut out);
        let json = msgpack_to_json(&out).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"seq":42,"amount":5,"user":"u-7","fixed":1.5,"c":"x","nested":{"n":42}})
        );
        assert_eq!(t.key(42, 0, &mut rng).unwrap(), Bytes::from("k42"));
    }

    #[test]
    fn bad_placeholders_are_named() {
        let err = GeneratorTemplate::new(&config("a = \"{{nope}}\"", None)).unwrap_err();
        assert!(err.contains("unknown placeholder {{nope}}"), "{err}");
        let err = GeneratorTemplate::new(&config("a = \"{{int(9,1)}}\"", None)).unwrap_err();
        assert!(err.contains("LOW is above HIGH"), "{err}");
    }
}
