//! Window stages through the real binary: results, late events, and checkpointed state
//! that makes a kill -9 change no result.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::{Duration, Instant};

use common::{Lcg, Workspace};
use serde_json::Value;

const EVENTS: u64 = 1_000_000;
const KEYS: u64 = 10_000;

/// One event per ms of event time, keys spread at random, times up to 800 ms out of order,
/// and one event in 500 from 20–50 s back: within the allowed lateness (an update) or
/// beyond it (late).
fn write_events(ws: &Workspace, seed: u64) {
    let mut rng = Lcg(seed);
    let file = std::fs::File::create(ws.path("events.jsonl")).expect("events file");
    let mut out = std::io::BufWriter::new(file);
    for i in 0..EVENTS {
        let base = 1_000_000 + i as i64;
        let ts = if rng.below(500) == 0 {
            base - 20_000 - rng.below(30_000) as i64
        } else {
            base - rng.below(800) as i64
        };
        let key = rng.below(KEYS);
        let amount = rng.below(1000);
        writeln!(
            out,
            r#"{{"id":{i},"k":"k{key}","amount":{amount},"ts":{ts}}}"#
        )
        .expect("write");
    }
    out.flush().expect("flush");
}

fn pipeline(ws: &Workspace, output: &str) {
    ws.pipeline(&format!(
        r#"
[server]
enabled = false
[state]
dir = "state-{output}"
checkpoint_interval = "100ms"
stage_checkpoint_interval = "250ms"
[sources.in]
type = "file"
path = "events.jsonl"
format = "json"
[stages.win]
type = "window"
inputs = ["in"]
group_by = ["k"]
window = {{ tumbling = "1m" }}
time_field = "ts"
out_of_orderness = "1s"
allowed_lateness = "30s"
parallelism = 2
aggregations = {{ n = "count", total = {{ sum = "amount" }}, mean = {{ avg = "amount" }}, top = {{ max = "amount" }} }}
[sinks.out]
type = "file"
path = "{output}.jsonl"
inputs = ["win"]
[stages.roll]
type = "window"
inputs = ["win"]
group_by = ["k"]
window = {{ tumbling = "5m" }}
time_field = "window_start"
late = "drop"
aggregations = {{ results = "count", events = {{ sum = "n" }} }}
[sinks.rolled]
type = "file"
path = "{output}-rolled.jsonl"
inputs = ["roll"]
[sinks.dead]
type = "file"
path = "{output}-late.jsonl"
[dead_letter]
sink = "dead"
"#
    ));
}

/// The last result written for each (key, window start): the final word on each window.
fn final_results(ws: &Workspace, name: &str) -> BTreeMap<(String, i64), Value> {
    let text = std::fs::read_to_string(ws.path(name)).unwrap_or_default();
    let mut results = BTreeMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
        let key = (
            v["k"].as_str().expect("key").to_owned(),
            v["window_start"].as_i64().expect("start"),
        );
        results.insert(key, v);
    }
    results
}

fn late_ids(ws: &Workspace, name: &str) -> BTreeSet<u64> {
    ws.lines(name)
        .iter()
        .map(|v| v["id"].as_u64().expect("late event keeps its payload"))
        .collect()
}

#[test]
fn kill_9_three_times_changes_no_window_result() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64);
    eprintln!("seed {seed}");
    let ws = Workspace::new();
    write_events(&ws, seed);
    let size = std::fs::metadata(ws.path("events.jsonl"))
        .expect("size")
        .len();

    pipeline(&ws, "reference");
    let started = Instant::now();
    let done = ws.run(Duration::from_secs(300));
    assert_eq!(done.code, 0, "{}", done.stderr);
    let uninterrupted = started.elapsed();
    let reference = final_results(&ws, "reference.jsonl");
    let reference_late = late_ids(&ws, "reference-late.jsonl");
    eprintln!(
        "uninterrupted: {} windows, {} late events, {uninterrupted:?}",
        reference.len(),
        reference_late.len()
    );
    assert!(reference.len() > 100_000, "{} windows", reference.len());
    assert!(!reference_late.is_empty(), "the data has late events");
    let updates = ws
        .lines("reference.jsonl")
        .iter()
        .filter(|v| v["firing"] == "update")
        .count();
    assert!(
        updates > 0,
        "events within the allowed lateness update fired windows"
    );
    let total: u64 = reference
        .values()
        .map(|v| v["n"].as_u64().expect("count"))
        .sum();
    assert_eq!(
        total + reference_late.len() as u64,
        EVENTS,
        "every event is in a window or late"
    );

    pipeline(&ws, "killed");
    let mut rng = Lcg(seed ^ 0x9e37_79b9);
    let kills = common::kill_three_times(&ws, "state-killed", "in", size, &mut rng);
    eprintln!("killed at source offsets {kills:?} of {size}");
    let done = ws.run(Duration::from_secs(300));
    assert_eq!(done.code, 0, "{}", done.stderr);

    let killed = final_results(&ws, "killed.jsonl");
    assert_eq!(killed.len(), reference.len(), "the same windows");
    for (window, result) in &reference {
        assert_eq!(killed.get(window), Some(result), "window {window:?}");
    }
    assert_eq!(late_ids(&ws, "killed-late.jsonl"), reference_late);
    // A window stage reading another's results: its results do not change either.
    let rolled = final_results(&ws, "reference-rolled.jsonl");
    assert!(rolled.len() > 10_000, "{} rolled windows", rolled.len());
    assert_eq!(final_results(&ws, "killed-rolled.jsonl"), rolled);
}

#[test]
fn late_events_go_where_the_stage_says_and_are_counted() {
    let ws = Workspace::new();
    let lines = [
        r#"{"k":"a","v":1,"ts":1000}"#,
        r#"{"k":"a","v":2,"ts":61000}"#,
        // The watermark is now 61000: window [0, 60000) has fired.
        r#"{"k":"a","v":3,"ts":59000}"#,
        r#"{"k":"b","v":4,"ts":125000}"#,
        r#"{"k":"a","v":5,"ts":2000}"#,
    ];
    std::fs::write(ws.path("events.jsonl"), lines.join("\n") + "\n").expect("events");
    for (policy, routed) in [
        ("output", "late.jsonl"),
        ("dead_letter", "dead.jsonl"),
        ("drop", ""),
    ] {
        let late_sink = if policy == "output" {
            "[sinks.late]\ntype = \"file\"\npath = \"late.jsonl\"\ninputs = [\"win.late\"]"
        } else {
            ""
        };
        ws.pipeline(&format!(
            r#"
[server]
enabled = false
[state]
dir = "state-{policy}"
[sources.in]
type = "file"
path = "events.jsonl"
format = "json"
[stages.win]
type = "window"
inputs = ["in"]
group_by = ["k"]
window = {{ tumbling = "1m" }}
time_field = "ts"
late = "{policy}"
aggregations = {{ n = "count", total = {{ sum = "v" }} }}
having = "n > 0"
[sinks.out]
type = "file"
path = "out-{policy}.jsonl"
inputs = ["win"]
[sinks.dead]
type = "file"
path = "dead.jsonl"
[dead_letter]
sink = "dead"
{late_sink}
"#
        ));
        let _ = std::fs::remove_file(ws.path("dead.jsonl"));
        let done = ws.run(Duration::from_secs(60));
        assert_eq!(done.code, 0, "{}", done.stderr);
        let out = ws.lines(&format!("out-{policy}.jsonl"));
        let windows: Vec<(String, i64, i64, i64)> = out
            .iter()
            .map(|v| {
                (
                    v["k"].as_str().unwrap().to_owned(),
                    v["window_start"].as_i64().unwrap(),
                    v["n"].as_i64().unwrap(),
                    v["total"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            windows,
            [
                ("a".into(), 0, 1, 1),
                ("a".into(), 60_000, 1, 2),
                ("b".into(), 120_000, 1, 4)
            ],
            "{policy}"
        );
        assert!(
            out.iter()
                .all(|v| v["firing"] == "final" && v["window_end"].is_i64())
        );
        let summary = done.summary();
        if routed.is_empty() {
            assert_eq!(summary["win"]["late_dropped"], 2, "{}", done.stderr);
            assert!(!ws.path("dead.jsonl").exists() || ws.lines("dead.jsonl").is_empty());
        } else {
            let late: Vec<i64> = ws
                .lines(routed)
                .iter()
                .map(|v| v["v"].as_i64().unwrap())
                .collect();
            assert_eq!(late, [3, 5], "{policy}");
        }
        if policy == "dead_letter" {
            assert_eq!(summary["win"]["failed"], 2, "{}", done.stderr);
        }
    }
}

/// Checks that the plugin aggregation `s` (the `stats` example) agrees with the built-ins
/// `n`, `total`, `mean`, `lo` and `hi` of the same result.
fn assert_stats_match_builtins(result: &Value) {
    let s = &result["s"];
    assert_eq!(s["count"], result["n"], "{result}");
    assert_eq!(s["sum"].as_f64(), result["total"].as_f64(), "{result}");
    assert_eq!(s["mean"], result["mean"], "{result}");
    assert_eq!(s["min"].as_f64(), result["lo"].as_f64(), "{result}");
    assert_eq!(s["max"].as_f64(), result["hi"].as_f64(), "{result}");
}

const BUILTINS_AND_STATS: &str = r#"aggregations = { n = "count", total = { sum = "amount" }, mean = { avg = "amount" }, lo = { min = "amount" }, hi = { max = "amount" }, s = { plugin = "stats", config = { field = "amount" } } }"#;

#[test]
fn a_plugin_aggregator_gives_the_builtins_results_in_every_window_kind() {
    let ws = Workspace::new();
    let mut rng = Lcg(42);
    let mut text = String::new();
    for i in 0..100_000i64 {
        // Out of order by up to 2 s, one in 200 events 10–40 s late, gaps for sessions.
        let mut ts = 1_000_000 + i * 3 - rng.below(2_000) as i64;
        if rng.below(200) == 0 {
            ts -= 10_000 + rng.below(30_000) as i64;
        }
        if (i / 5_000) % 2 == 1 {
            ts += 20_000;
        }
        let key = rng.below(50);
        let amount = rng.below(1_000);
        text.push_str(&format!(r#"{{"k":"k{key}","amount":{amount},"ts":{ts}}}"#));
        text.push('\n');
    }
    std::fs::write(ws.path("events.jsonl"), text).expect("events");
    let stage = |name: &str, window: &str| {
        format!(
            r#"
[stages.{name}]
type = "window"
inputs = ["in"]
group_by = ["k"]
window = {window}
time_field = "ts"
out_of_orderness = "2s"
allowed_lateness = "20s"
late = "drop"
{BUILTINS_AND_STATS}
[sinks.{name}_out]
type = "file"
path = "{name}.jsonl"
inputs = ["{name}"]
"#
        )
    };
    ws.pipeline(&format!(
        r#"
[server]
enabled = false
[plugins]
dir = "{{plugins}}"
[state]
dir = "state"
[sources.in]
type = "file"
path = "events.jsonl"
format = "json"
{}{}{}{}"#,
        stage("tumbling", r#"{ tumbling = "10s" }"#),
        stage("sliding", r#"{ sliding = "10s", every = "5s" }"#),
        stage("session", r#"{ session = "1s" }"#),
        stage("count", "{ count = 100 }"),
    ));
    let done = ws.run(Duration::from_secs(300));
    assert_eq!(done.code, 0, "{}", done.stderr);
    for name in ["tumbling", "sliding", "session", "count"] {
        let results = ws.lines(&format!("{name}.jsonl"));
        assert!(results.len() > 100, "{name}: {} results", results.len());
        for result in &results {
            assert_stats_match_builtins(result);
        }
        let updates = results.iter().filter(|r| r["firing"] == "update").count();
        eprintln!("{name}: {} results, {updates} updates", results.len());
    }
}

/// `from` with a custom section appended: the same plugin, other bytes, a new version.
fn another_version(from: &std::path::Path, to: &std::path::Path) {
    let mut bytes = std::fs::read(from).expect("plugin");
    let name = b"weir-test-build";
    let payload = b"2";
    // Custom section: id 0, size, then the name (length-prefixed) and the payload.
    bytes.push(0);
    bytes.push((1 + name.len() + payload.len()) as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    let tmp = to.with_file_name(".stats.wasm.tmp");
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, to).expect("rename");
}

/// The windows of a run without a reload, and of a run in which the plugin file is replaced
/// (by `replace`) between two parts of the input, the second part starting mid-window.
struct ReloadRun {
    reference: BTreeMap<(String, i64), Value>,
    reloaded: BTreeMap<(String, i64), Value>,
    log: String,
}

/// The first part ends at this event time, in the middle of window `[1_100_000, 1_101_000)`.
const SPLIT: usize = 100_500;
const SPANNING: i64 = 1_100_000;

fn reload_mid_window(state_upgrade: &str, replace: impl FnOnce(&std::path::Path)) -> ReloadRun {
    let ws = Workspace::new();
    let plugins = ws.path("plugins");
    std::fs::create_dir_all(&plugins).expect("plugin dir");
    std::fs::copy(weir_e2e::plugin("stats"), plugins.join("stats.wasm")).expect("copy");
    let mut rng = Lcg(7);
    let events: Vec<String> = (0..200_000i64)
        .map(|i| {
            format!(
                r#"{{"k":"k{}","amount":{},"ts":{}}}"#,
                rng.below(100),
                rng.below(1_000),
                1_000_000 + i
            )
        })
        .collect();
    let body = |events: &[String]| events.iter().map(|e| format!("{e}\n")).collect::<String>();
    std::fs::write(ws.path("events.jsonl"), body(&events[..SPLIT])).expect("part 1");
    std::fs::write(ws.path("all.jsonl"), body(&events)).expect("all");
    let aggregations = BUILTINS_AND_STATS.replace(
        "config = { field = \"amount\" }",
        &format!("config = {{ field = \"amount\" }}, state_upgrade = \"{state_upgrade}\""),
    );
    let pipeline = |path: &str, follow: bool, out: &str| {
        format!(
            r#"
[server]
bind = "127.0.0.1:0"
[plugins]
dir = "plugins"
[state]
dir = "state-{out}"
stage_checkpoint_interval = "100ms"
[sources.in]
type = "file"
path = "{path}"
format = "json"
follow = {follow}
poll_interval = "20ms"
[stages.win]
type = "window"
inputs = ["in"]
group_by = ["k"]
window = {{ tumbling = "1s" }}
time_field = "ts"
{aggregations}
[sinks.out]
type = "file"
path = "{out}.jsonl"
inputs = ["win"]
"#
        )
    };
    ws.pipeline(&pipeline("all.jsonl", false, "reference"));
    let done = ws.run(Duration::from_secs(120));
    assert_eq!(done.code, 0, "{}", done.stderr);
    let reference = final_results(&ws, "reference.jsonl");

    ws.pipeline(&pipeline("events.jsonl", true, "reloaded"));
    let mut weir = ws.start();
    let address = weir.address();
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait("the first part", &|| {
        common::component_counter(&address, "win", "events_in") >= SPLIT as u64
    });
    // A checkpoint has the first version fold in everything it was given.
    std::thread::sleep(Duration::from_millis(500));
    replace(&plugins.join("stats.wasm"));
    weir.wait_for("plugin reloaded", Duration::from_secs(30));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(ws.path("events.jsonl"))
        .expect("append");
    file.write_all(body(&events[SPLIT..]).as_bytes())
        .expect("part 2");
    drop(file);
    wait("the second part", &|| {
        common::component_counter(&address, "win", "events_in") >= events.len() as u64
    });
    weir.wait_for(
        "switched to the new plugin version",
        Duration::from_secs(30),
    );
    weir.signal("TERM");
    let done = weir.finish(Duration::from_secs(60));
    assert_eq!(done.code, 0, "{}", done.stderr);
    let reloaded = final_results(&ws, "reloaded.jsonl");
    // Every window but the last fired: the watermark stops at the last event.
    assert!(
        reloaded.len() >= reference.len() - 100,
        "{} of {} windows",
        reloaded.len(),
        reference.len()
    );
    assert!(
        reloaded.keys().any(|(_, start)| *start == SPANNING),
        "the window the reload fell in fired"
    );
    ReloadRun {
        reference,
        reloaded,
        log: done.stderr,
    }
}

#[test]
fn a_reload_mid_window_keeps_the_plugins_accumulated_values() {
    let run = reload_mid_window("keep_old_version", |target| another_version(target, target));
    for (window, result) in &run.reloaded {
        assert_stats_match_builtins(result);
        assert_eq!(run.reference.get(window), Some(result), "window {window:?}");
    }
}

#[test]
fn a_version_that_cannot_read_the_state_leaves_the_old_one_serving_or_starts_over() {
    let v2 = |target: &std::path::Path| {
        let tmp = target.with_file_name(".stats.wasm.tmp");
        std::fs::copy(weir_e2e::plugin("stats-v2"), &tmp).expect("copy");
        std::fs::rename(&tmp, target).expect("rename");
    };
    // keep_old_version: the first version goes on, with its state: nothing changes.
    let kept = reload_mid_window("keep_old_version", v2);
    assert!(
        kept.log
            .contains("the previous version keeps serving this stage"),
        "{}",
        kept.log
    );
    for (window, result) in &kept.reloaded {
        assert!(result["s"].get("version").is_none(), "{result}");
        assert_eq!(
            kept.reference.get(window),
            Some(result),
            "window {window:?}"
        );
    }
    // reset: the new version serves; the window the reload fell in starts over, the ones
    // after it are whole.
    let reset = reload_mid_window("reset", v2);
    assert!(reset.log.contains("they start over empty"), "{}", reset.log);
    let mut restarted = 0;
    for ((key, start), result) in &reset.reloaded {
        let s = &result["s"];
        if *start < SPANNING {
            assert!(
                s.get("version").is_none(),
                "fired before the reload: {result}"
            );
            assert_stats_match_builtins(result);
        } else if *start == SPANNING {
            // Keys with events before the reload lost them; others had none to lose.
            assert_eq!(s["version"], 2, "{result}");
            assert!(s["count"].as_u64() <= result["n"].as_u64(), "{result}");
            restarted += usize::from(s["count"].as_u64() < result["n"].as_u64());
        } else {
            assert_eq!(s["version"], 2, "{result}");
            assert_eq!(s["count"], result["n"], "{key} {start}: {result}");
        }
    }
    assert!(restarted > 50, "{restarted} of 100 keys started over");
}
