//! The same plugins written in Rust, Python, JavaScript and C, run through the real binary:
//! on the same 100,000 random events each language's `threshold`, `split`, `stats`
//! (aggregator) and `sequence` (pattern) must emit exactly what the Rust one emits, and a
//! plugin that raises, throws, panics or aborts must lose only the event it failed on, to the
//! dead-letter sink, with that language's own message.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use common::{Lcg, Workspace};
use serde_json::{Value, json};

/// (language, suffix of its example plugins).
const LANGUAGES: [(&str, &str); 4] = [("rust", ""), ("python", "-py"), ("js", "-js"), ("c", "-c")];

const EVENTS: u64 = 100_000;
const MIN: f64 = 500.0;
const WITHIN_MS: i64 = 3_000;
const STEPS: [&str; 3] = ["a", "b", "c"];

/// What the generator put in one event, for the expected figures.
struct Facts {
    user: String,
    time: i64,
    kind: &'static str,
    /// The amount when it is a number.
    amount: Option<f64>,
    /// The length of `items` when it is an array.
    items: Option<usize>,
}

/// Random events, one JSON line each, with every shape the plugins must agree on: ints,
/// floats, negative numbers, numbers as strings, bools, nulls, missing fields, arrays of
/// mixed items, non-arrays, and one line in 500 that is not a map at all.
fn random_events(count: u64, seed: u64) -> (String, Vec<Option<Facts>>) {
    let mut rng = Lcg(seed);
    let mut text = String::new();
    let mut facts = Vec::new();
    for i in 0..count {
        if rng.below(500) == 0 {
            text.push_str(if rng.below(2) == 0 {
                "[1,2,3]\n"
            } else {
                "\"just text\"\n"
            });
            facts.push(None);
            continue;
        }
        let user = format!("u{}", rng.below(100));
        let time = 1_000_000 + i as i64 * 7;
        let kind = ["a", "b", "c", "x"][rng.below(4) as usize];
        let mut event = serde_json::Map::new();
        event.insert("seq".into(), json!(i));
        event.insert("user".into(), json!(user));
        event.insert("ts".into(), json!(time));
        event.insert("kind".into(), json!(kind));
        let amount = match rng.below(20) {
            0..=10 => {
                let v = rng.below(1_000);
                event.insert("amount".into(), json!(v));
                Some(v as f64)
            }
            11 => {
                let v = -(rng.below(100) as i64);
                event.insert("amount".into(), json!(v));
                Some(v as f64)
            }
            12..=14 => {
                let v = rng.below(100_000) as f64 / 100.0;
                event.insert("amount".into(), json!(v));
                Some(v)
            }
            15 => {
                event.insert("amount".into(), json!("600"));
                None
            }
            16 => {
                event.insert("amount".into(), json!(true));
                None
            }
            17 => {
                event.insert("amount".into(), Value::Null);
                None
            }
            _ => None,
        };
        let items = match rng.below(6) {
            0 => None,
            1 => {
                event.insert("items".into(), json!("not a list"));
                None
            }
            n => {
                let len = (n - 2) as usize;
                let list: Vec<Value> = (0..len)
                    .map(|j| match rng.below(4) {
                        0 => json!(rng.below(100)),
                        1 => json!(format!("s{j}")),
                        2 => json!({"n": j, "deep": [1, {"x": null}]}),
                        _ => json!(1.5),
                    })
                    .collect();
                event.insert("items".into(), Value::Array(list));
                Some(len)
            }
        };
        writeln!(text, "{}", Value::Object(event)).expect("write to a string");
        facts.push(Some(Facts {
            user,
            time,
            kind,
            amount,
            items,
        }));
    }
    (text, facts)
}

/// Matches of the `sequence` pattern, computed here: per user, each `a` starts a partial
/// match that takes the next `b`, then the next `c`, all within `WITHIN_MS` of the `a`.
fn expected_sequences(facts: &[Option<Facts>]) -> usize {
    let mut partial: HashMap<&str, Vec<(i64, usize)>> = HashMap::new();
    let mut found = 0;
    for f in facts.iter().flatten() {
        let open = partial.entry(&f.user).or_default();
        open.retain(|&(start, _)| start + WITHIN_MS > f.time);
        open.retain_mut(|(_, done)| {
            if STEPS[*done] != f.kind {
                return true;
            }
            *done += 1;
            if *done == STEPS.len() {
                found += 1;
                return false;
            }
            true
        });
        if f.kind == STEPS[0] {
            open.push((f.time, 1));
        }
    }
    found
}

fn pipeline(lang: &str, suffix: &str) -> String {
    format!(
        r#"
[server]
enabled = false
[plugins]
dir = "{{plugins}}"
[state]
dir = "state-{lang}"
[dead_letter]
sink = "dlq"
[sources.in]
type = "file"
path = "events.jsonl"
format = "json"
[stages.threshold]
type = "handler"
plugin = "threshold{suffix}"
inputs = ["in"]
config = {{ field = "amount", min = {MIN} }}
[stages.split]
type = "handler"
plugin = "split{suffix}"
inputs = ["in"]
config = {{ field = "items" }}
[stages.stats]
type = "window"
inputs = ["in"]
group_by = ["user"]
window = {{ tumbling = "2s" }}
time_field = "ts"
aggregations = {{ s = {{ plugin = "stats{suffix}", config = {{ field = "amount" }} }} }}
[stages.sequence]
type = "pattern"
inputs = ["in"]
group_by = ["user"]
time_field = "ts"
pattern = {{ plugin = "sequence{suffix}", config = {{ field = "kind", steps = ["a", "b", "c"], within_ms = {WITHIN_MS} }} }}
[sinks.threshold_out]
type = "file"
path = "threshold-{lang}.jsonl"
inputs = ["threshold"]
[sinks.split_out]
type = "file"
path = "split-{lang}.jsonl"
inputs = ["split"]
[sinks.stats_out]
type = "file"
path = "stats-{lang}.jsonl"
inputs = ["stats"]
[sinks.sequence_out]
type = "file"
path = "sequence-{lang}.jsonl"
inputs = ["sequence"]
[sinks.dlq]
type = "file"
path = "dlq-{lang}.jsonl"
envelope = true
"#
    )
}

/// Lines as written, sorted: windows and matches of different keys may come out in any order.
fn sorted_lines(ws: &Workspace, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(ws.path(name)).unwrap_or_default();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// Dead letters by the stage that sent them.
fn dead_letters_by_stage(ws: &Workspace, lang: &str) -> BTreeMap<String, usize> {
    let mut by_stage = BTreeMap::new();
    for letter in ws.lines(&format!("dlq-{lang}.jsonl")) {
        let stage = letter["headers"]["weir-dead-letter-stage"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        *by_stage.entry(stage).or_insert(0) += 1;
    }
    by_stage
}

#[test]
fn every_language_emits_what_rust_emits_on_the_same_random_events() {
    let ws = Workspace::new();
    let (text, facts) = random_events(EVENTS, 20_261_126);
    std::fs::write(ws.path("events.jsonl"), text).expect("events");
    for (lang, suffix) in LANGUAGES {
        ws.pipeline(&pipeline(lang, suffix));
        let started = std::time::Instant::now();
        let done = ws.run(Duration::from_secs(600));
        assert_eq!(done.code, 0, "{lang}: {}", done.stderr);
        eprintln!(
            "{lang}: {EVENTS} events through 4 stages in {:?}",
            started.elapsed()
        );
    }

    // Rust's outputs against figures computed here.
    let maps = facts.iter().flatten().count();
    let kept = ws.lines("threshold-rust.jsonl");
    let want_kept: Vec<u64> = facts
        .iter()
        .enumerate()
        .filter(|(_, f)| f.as_ref().and_then(|f| f.amount).is_some_and(|a| a > MIN))
        .map(|(i, _)| i as u64)
        .collect();
    let got_kept: Vec<u64> = kept
        .iter()
        .map(|v| v["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(
        got_kept, want_kept,
        "threshold keeps exactly the numbers over {MIN}, in order"
    );
    let items: usize = facts.iter().flatten().filter_map(|f| f.items).sum();
    assert_eq!(
        ws.lines("split-rust.jsonl").len(),
        items,
        "one output per item"
    );
    let counted: u64 = ws
        .lines("stats-rust.jsonl")
        .iter()
        .map(|w| w["s"]["count"].as_u64().expect("count"))
        .sum();
    assert_eq!(
        counted, maps as u64,
        "every map event counted in one window"
    );
    let sequences = expected_sequences(&facts);
    assert!(sequences > 1_000, "{sequences} sequences in the data");
    assert_eq!(ws.lines("sequence-rust.jsonl").len(), sequences);
    let rust_dead = dead_letters_by_stage(&ws, "rust");
    assert_eq!(
        rust_dead.get("threshold").copied().unwrap_or(0),
        EVENTS as usize - maps,
        "threshold fails the payloads that are not maps: {rust_dead:?}"
    );

    // Every other language against Rust, line for line.
    for (lang, _) in &LANGUAGES[1..] {
        for stage in ["threshold", "split"] {
            let rust = ws.lines(&format!("{stage}-rust.jsonl"));
            let other = ws.lines(&format!("{stage}-{lang}.jsonl"));
            assert_eq!(other.len(), rust.len(), "{lang} {stage}: number of outputs");
            if let Some(i) = (0..rust.len()).find(|&i| rust[i] != other[i]) {
                panic!(
                    "{lang} {stage}: output {i} is {} where Rust's is {}",
                    other[i], rust[i]
                );
            }
        }
        for stage in ["stats", "sequence"] {
            let rust = sorted_lines(&ws, &format!("{stage}-rust.jsonl"));
            let other = sorted_lines(&ws, &format!("{stage}-{lang}.jsonl"));
            assert_eq!(other.len(), rust.len(), "{lang} {stage}: number of outputs");
            if let Some(i) = (0..rust.len()).find(|&i| rust[i] != other[i]) {
                panic!(
                    "{lang} {stage}: line {i} is {} where Rust's is {}",
                    other[i], rust[i]
                );
            }
        }
        assert_eq!(
            dead_letters_by_stage(&ws, lang),
            rust_dead,
            "{lang}: dead letters"
        );
    }
    eprintln!(
        "identical in 4 languages: {} kept, {items} split items, {} windows, {sequences} \
         matches, dead letters {rust_dead:?}",
        want_kept.len(),
        ws.lines("stats-rust.jsonl").len()
    );
}

/// What each language's failing plugin says when it fails.
const FAILURE_WORDS: [(&str, &str); 4] = [
    ("rust", "panicked at"),
    ("python", "RuntimeError: poisoned event"),
    ("js", "internal: Error: poisoned event"),
    ("c", "trapped: wasm trap"),
];

#[test]
fn a_failing_plugin_in_any_language_dead_letters_its_event_and_the_stage_goes_on() {
    let ws = Workspace::new();
    let poisoned = [3u64, 250, 251, 999, 1_500];
    let mut input = String::new();
    for i in 0..2_000u64 {
        let poison = poisoned.contains(&i);
        writeln!(input, r#"{{"seq":{i},"poison":{poison}}}"#).expect("write to a string");
    }
    std::fs::write(ws.path("events.jsonl"), input).expect("events");
    for (lang, suffix) in LANGUAGES {
        ws.pipeline(&format!(
            r#"
[server]
enabled = false
[plugins]
dir = "{{plugins}}"
[state]
dir = "state-{lang}"
[dead_letter]
sink = "dlq"
[sources.in]
type = "file"
path = "events.jsonl"
[stages.risky]
type = "handler"
plugin = "panic{suffix}"
inputs = ["in"]
[sinks.out]
type = "file"
path = "out-{lang}.jsonl"
inputs = ["risky"]
[sinks.dlq]
type = "file"
path = "dlq-{lang}.jsonl"
envelope = true
"#
        ));
        let done = ws.run(Duration::from_secs(300));
        assert_eq!(done.code, 0, "{lang}: {}", done.stderr);
        let passed: Vec<u64> = ws
            .lines(&format!("out-{lang}.jsonl"))
            .iter()
            .map(|v| v["seq"].as_u64().expect("seq"))
            .collect();
        let want: Vec<u64> = (0..2_000).filter(|i| !poisoned.contains(i)).collect();
        assert!(
            passed == want,
            "{lang}: every other event passes, in order: {} passed, {} expected",
            passed.len(),
            want.len()
        );
        let dead = ws.lines(&format!("dlq-{lang}.jsonl"));
        let mut seqs: Vec<u64> = dead
            .iter()
            .map(|d| d["payload"]["seq"].as_u64().expect("seq"))
            .collect();
        seqs.sort_unstable();
        assert_eq!(
            seqs, poisoned,
            "{lang}: the poisoned events are dead-lettered"
        );
        let word = FAILURE_WORDS
            .iter()
            .find(|(l, _)| *l == lang)
            .map(|(_, w)| *w)
            .expect("a word per language");
        for letter in &dead {
            let headers = &letter["headers"];
            assert_eq!(
                headers["weir-dead-letter-stage"], "risky",
                "{lang}: {letter}"
            );
            let plugin = headers["weir-dead-letter-plugin"]
                .as_str()
                .unwrap_or_default();
            assert!(
                plugin.starts_with(&format!("panic{suffix}@")),
                "{lang}: {letter}"
            );
            let error = headers["weir-dead-letter-error"]
                .as_str()
                .unwrap_or_default();
            assert!(
                error.contains("poisoned event") && error.contains(word),
                "{lang}: the message names the failure in the language's words: {error}"
            );
        }
        eprintln!(
            "{lang}: {}",
            dead[0]["headers"]["weir-dead-letter-error"]
                .as_str()
                .unwrap_or_default()
        );
    }
}
