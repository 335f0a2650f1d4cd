//! `weir plugin test`: runs a plugin over test cases and shows a readable diff when what it
//! emits is not what a case expects.
//!
//! A case is one JSON object per line:
//!
//! ```json
//! {"name": "keeps big amounts", "config": {"min": 10},
//!  "input": [{"amount": 5}, {"amount": 12}], "expect": [{"amount": 12}],
//!  "expect_failures": []}
//! ```
//!
//! `input` holds payloads, or envelopes (`{"payload", "key", "time", "headers"}`) when the
//! case sets `"envelopes": true`; a bare payload's event time is its index in `input`, so
//! cases replay the same on any machine. `expect` holds the payloads the plugin must emit, in order:
//! for a handler its outputs, for an aggregator one result per key (keys in the order they
//! first appear), for a pattern its matches. `expect_failures` lists the indices of inputs
//! that must fail (and go to the dead-letter sink). Numbers compare by value, so `5` and
//! `5.0` are equal (integers exactly, however large). Blank lines and lines starting with
//! `//` are skipped.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::plugin_run::{Collected, Runner, Tally, event_from_json, plugin_limits};
use super::{CacheArgs, EXIT_EVENTS_FAILED, EXIT_OK, fail};
use crate::format::msgpack_to_json;
use crate::plugins::LoadedPlugin;

/// Arguments of `weir plugin test`.
#[derive(Debug, Args)]
pub(super) struct TestArgs {
    /// The plugin component.
    file: PathBuf,

    /// The test cases: JSON lines of {"name", "config", "input", "expect",
    /// "expect_failures", "envelopes"}.
    #[arg(long, value_name = "FILE")]
    cases: PathBuf,

    /// Events per call into the plugin. A handler or an aggregator must give the same answers
    /// at any size; a pattern's timers fire between calls, so its matches may come later.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    batch_size: u32,

    /// CPU time one call may take, in milliseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    timeout_ms: u64,

    /// Linear memory the plugin may use, in MiB.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=4096))]
    memory_mb: u64,

    #[command(flatten)]
    cache: CacheArgs,
}

/// One test case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    config: Map<String, Value>,
    #[serde(default)]
    envelopes: bool,
    input: Vec<Value>,
    expect: Vec<Value>,
    #[serde(default)]
    expect_failures: Vec<u64>,
}

/// What a plugin did with a case's input.
struct Outcome {
    outputs: Vec<Value>,
    /// (input index, the host's message), in index order.
    failures: Vec<(u64, String)>,
}

pub(super) fn run(args: &TestArgs) -> u8 {
    let text = match std::fs::read_to_string(&args.cases) {
        Ok(text) => text,
        Err(e) => return fail(format!("{}: cannot read: {e}", args.cases.display())),
    };
    let mut cases = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    for (number, line) in (1usize..).zip(text.lines()) {
        if line.trim().is_empty() || line.trim_start().starts_with("//") {
            continue;
        }
        match serde_json::from_str::<Case>(line) {
            Ok(case) => cases.push((number, case)),
            Err(e) => return fail(format!("{}:{number}: {e}", args.cases.display())),
        }
    }
    if cases.is_empty() {
        return fail(format!("{}: no test cases", args.cases.display()));
    }
    let plugin = match args.cache.loader().and_then(|loader| {
        loader
            .load(&args.file)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }) {
        Ok(plugin) => plugin,
        Err(e) => return fail(e),
    };
    let mut failed = 0;
    for (number, case) in &cases {
        let place = format!("{}:{number}", args.cases.display());
        match run_case(&plugin, args, case) {
            Ok(outcome) => match compare(case, &outcome) {
                None => println!("ok    {}", case.name),
                Some(report) => {
                    failed += 1;
                    println!("FAIL  {} ({place})\n{report}", case.name);
                }
            },
            Err(e) => {
                failed += 1;
                println!("FAIL  {} ({place})\n  {e}", case.name);
            }
        }
    }
    println!(
        "{} passed, {failed} failed: {} ({} plugin, version {})",
        cases.len() - failed,
        plugin.name(),
        plugin.kind().world(),
        plugin.version()
    );
    if failed == 0 {
        EXIT_OK
    } else {
        EXIT_EVENTS_FAILED
    }
}

fn run_case(plugin: &Arc<LoadedPlugin>, args: &TestArgs, case: &Case) -> Result<Outcome, String> {
    let config = Value::Object(case.config.clone()).to_string();
    let limits = plugin_limits(args.timeout_ms, args.memory_mb);
    let mut runner = Runner::new(plugin, limits, &config).map_err(|e| format!("init: {e}"))?;
    let events = case
        .input
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let mut event = event_from_json(value.clone(), case.envelopes)
                .map_err(|e| format!("input {i}: {e}"))?;
            if !case.envelopes {
                event.time = i as i64;
            }
            Ok::<_, String>(event)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut collected = Collected::default();
    let mut tally = Tally::default();
    let size = args.batch_size as usize;
    for (n, chunk) in events.chunks(size).enumerate() {
        let first = (n * size) as u64;
        let lines: Vec<u64> = (first..first + chunk.len() as u64).collect();
        runner.feed(chunk, &lines, &mut collected, &mut tally)?;
    }
    runner.finish(&mut collected, &mut tally)?;
    let outputs = collected
        .events
        .iter()
        .map(|event| {
            msgpack_to_json(&event.payload).map_err(|e| format!("output is not MessagePack: {e}"))
        })
        .collect::<Result<Vec<Value>, _>>()?;
    let mut failures: Vec<(u64, String)> = collected
        .failures
        .into_iter()
        .map(|f| (f.line, f.error))
        .collect();
    failures.sort_by_key(|(index, _)| *index);
    Ok(Outcome { outputs, failures })
}

/// `None` when the outcome is what the case expects, else a report of the differences.
fn compare(case: &Case, outcome: &Outcome) -> Option<String> {
    let mut report = String::new();
    let same_outputs = case.expect.len() == outcome.outputs.len()
        && case
            .expect
            .iter()
            .zip(&outcome.outputs)
            .all(|(a, b)| same(a, b));
    if !same_outputs {
        report.push_str("  outputs differ (- expected, + actual):\n");
        report.push_str(&diff(&case.expect, &outcome.outputs));
    }
    let mut expected: Vec<u64> = case.expect_failures.clone();
    expected.sort_unstable();
    expected.dedup();
    let actual: Vec<u64> = outcome.failures.iter().map(|(i, _)| *i).collect();
    if expected != actual {
        report.push_str(&format!(
            "  failed inputs differ: expected {expected:?}, got {actual:?}\n"
        ));
        for (index, message) in &outcome.failures {
            if !expected.contains(index) {
                report.push_str(&format!("    input {index}: {message}\n"));
            }
        }
    }
    (!report.is_empty()).then_some(report)
}

/// A line diff of the two lists, one value per line. An actual value equal to the expected
/// one in the same place is shown as written in the case, so there `5` against `5.0` is no
/// difference in the diff either.
fn diff(expected: &[Value], actual: &[Value]) -> String {
    let expected_text: String = expected.iter().map(|v| format!("{v}\n")).collect();
    let actual_text: String = actual
        .iter()
        .enumerate()
        .map(|(i, v)| match expected.get(i) {
            Some(e) if same(e, v) => format!("{e}\n"),
            _ => format!("{v}\n"),
        })
        .collect();
    let diff = similar::TextDiff::from_lines(&expected_text, &actual_text);
    let mut out = String::new();
    for change in diff.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => "-",
            similar::ChangeTag::Insert => "+",
            similar::ChangeTag::Equal => " ",
        };
        out.push_str(&format!("  {sign} {}", change.value()));
        if change.missing_newline() {
            out.push('\n');
        }
    }
    out
}

/// JSON equality with numbers compared by value: integers exactly, an integer and a float
/// when the float is that integer.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => same_number(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn same_number(x: &serde_json::Number, y: &serde_json::Number) -> bool {
    let int = |n: &serde_json::Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (int(x), int(y), x.as_f64(), y.as_f64()) {
        (Some(i), Some(j), _, _) => i == j,
        (Some(i), None, _, Some(f)) | (None, Some(i), Some(f), _) => {
            f.fract() == 0.0 && f.abs() < 1e38 && f as i128 == i
        }
        (None, None, Some(f), Some(g)) => f == g,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value() {
        assert!(same(
            &json!(9_007_199_254_740_993u64),
            &json!(9_007_199_254_740_993u64)
        ));
        assert!(!same(
            &json!(9_007_199_254_740_993u64),
            &json!(9_007_199_254_740_992u64)
        ));
        assert!(!same(
            &json!(9_007_199_254_740_993u64),
            &json!(9_007_199_254_740_992.0)
        ));
        assert!(same(&json!(-3), &json!(-3.0)));
        assert!(same(&json!({"a": [1, 2.0]}), &json!({"a": [1.0, 2]})));
        assert!(!same(&json!({"a": 1}), &json!({"a": 1.5})));
        assert!(!same(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }

    #[test]
    fn the_diff_marks_what_is_missing_and_what_is_extra() {
        let text = diff(
            &[json!({"a": 1}), json!({"b": 2})],
            &[json!({"a": 1.0}), json!({"c": 3})],
        );
        assert_eq!(text, "    {\"a\":1}\n  - {\"b\":2}\n  + {\"c\":3}\n");
    }
}
