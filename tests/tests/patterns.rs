//! Pattern stages through the real binary: the `login-burst` plugin and the same pattern
//! declared in the pipeline file, over a keyed stream in event-time order, and checkpointed
//! state that makes a kill -9 change no match.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::{Duration, Instant};

use common::{Lcg, Workspace};
use serde_json::Value;

const USERS: u64 = 500;
const WITHIN_MS: i64 = 60_000;
const FAILURES: usize = 3;

/// Login events, two in three failures, up to 1.5 s out of order; returns them in file
/// order.
fn logins(count: u64, seed: u64) -> Vec<(u64, String, String, i64)> {
    let mut rng = Lcg(seed);
    (0..count)
        .map(|i| {
            let user = format!("u{}", rng.below(USERS));
            let outcome = if rng.below(3) == 0 { "success" } else { "fail" };
            let ts = 1_000_000 + (i as i64) * 20 - rng.below(1_500) as i64;
            (i, user, outcome.to_owned(), ts)
        })
        .collect()
}

fn write_logins(ws: &Workspace, events: &[(u64, String, String, i64)]) {
    let file = std::fs::File::create(ws.path("logins.jsonl")).expect("file");
    let mut out = std::io::BufWriter::new(file);
    for (id, user, outcome, ts) in events {
        writeln!(
            out,
            r#"{{"id":{id},"user":"{user}","outcome":"{outcome}","ts":{ts}}}"#
        )
        .expect("write");
    }
    out.flush().expect("flush");
}

/// What the plugin must find: per user, in event-time order (file order on ties), at least
/// `FAILURES` failures within `WITHIN_MS` before a success.
fn expected(events: &[(u64, String, String, i64)]) -> BTreeSet<(String, i64, i64, u64)> {
    let mut sorted: Vec<_> = events.iter().collect();
    sorted.sort_by_key(|(id, _, _, ts)| (*ts, *id));
    let mut failures: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    let mut found = BTreeSet::new();
    for (_, user, outcome, ts) in sorted {
        let recent = failures.entry(user).or_default();
        recent.retain(|&t| ts - t <= WITHIN_MS);
        if outcome == "fail" {
            recent.push(*ts);
            if recent.len() > FAILURES {
                recent.remove(0);
            }
        } else {
            if recent.len() >= FAILURES {
                found.insert((user.clone(), recent[0], *ts, recent.len() as u64));
            }
            recent.clear();
        }
    }
    found
}

/// The matcher of the `bursts` stage: the plugin.
fn plugin_matcher() -> String {
    format!(
        "pattern = {{ plugin = \"login-burst\", config = {{ failures = {FAILURES}, within_ms = {WITHIN_MS} }} }}"
    )
}

/// The same pattern declared: three failures in a row, the success right after, all within
/// the minute (the plugin's bound is inclusive, `within` is not).
fn declared_matcher() -> String {
    format!(
        r#"within = "{}ms"
[[stages.bursts.steps]]
name = "fails"
where = "outcome == 'fail'"
times = {FAILURES}
loop = "consecutive"
[[stages.bursts.steps]]
name = "success"
after = "next"
where = "outcome == 'success'""#,
        WITHIN_MS + 1
    )
}

fn pipeline(ws: &Workspace, name: &str) {
    pipeline_with(ws, name, &plugin_matcher());
}

fn pipeline_with(ws: &Workspace, name: &str, matcher: &str) {
    ws.pipeline(&format!(
        r#"
[server]
enabled = false
[plugins]
dir = "{{plugins}}"
[state]
dir = "state-{name}"
checkpoint_interval = "100ms"
stage_checkpoint_interval = "200ms"
[sources.logins]
type = "file"
path = "logins.jsonl"
format = "json"
[stages.bursts]
type = "pattern"
inputs = ["logins"]
group_by = ["user"]
time_field = "ts"
out_of_orderness = "1500ms"
parallelism = 2
{matcher}
[sinks.out]
type = "file"
path = "{name}.jsonl"
inputs = ["bursts"]
"#
    ));
}

fn matches(ws: &Workspace, name: &str) -> (usize, BTreeSet<(String, i64, i64, u64)>) {
    let lines = ws.lines(name);
    let set = lines
        .iter()
        .map(|v: &Value| {
            let user = v["user"].as_str().expect("user").to_owned();
            if v.get("steps").is_some() {
                // A declared match: its span, and its events by step.
                let fails = v["steps"]["fails"].as_array().expect("fails");
                assert_eq!(v["steps"]["success"].as_array().map(Vec::len), Some(1));
                let first = v["start"].as_i64().expect("start");
                assert_eq!(fails[0]["ts"].as_i64(), Some(first));
                (
                    user,
                    first,
                    v["end"].as_i64().expect("end"),
                    fails.len() as u64,
                )
            } else {
                (
                    user,
                    v["first_failure"].as_i64().expect("first"),
                    v["success"].as_i64().expect("success"),
                    v["failures"].as_u64().expect("failures"),
                )
            }
        })
        .collect();
    (lines.len(), set)
}

/// The plugin finds every burst in event-time order, each once, and the same pattern
/// declared finds the same.
#[test]
fn the_declared_pattern_finds_what_the_plugin_finds() {
    let ws = Workspace::new();
    let events = logins(20_000, 7);
    write_logins(&ws, &events);
    pipeline(&ws, "plugin");
    let done = ws.run(Duration::from_secs(120));
    assert_eq!(done.code, 0, "{}", done.stderr);
    // With the partial matches that run out of time sent to a sink of their own.
    let timeouts = format!(
        "timeouts = true\n{}\n[sinks.timed_out]\ntype = \"file\"\npath = \"timed-out.jsonl\"\ninputs = [\"bursts.timeout\"]",
        declared_matcher()
    );
    pipeline_with(&ws, "declared", &timeouts);
    let done = ws.run(Duration::from_secs(120));
    assert_eq!(done.code, 0, "{}", done.stderr);
    let timed_out = ws.lines("timed-out.jsonl");
    assert!(timed_out.len() > 100, "{} timed out", timed_out.len());
    for t in &timed_out {
        // A partial match of failures alone, ended a minute after its first.
        let start = t["start"].as_i64().expect("start");
        assert_eq!(
            t["timed_out_at"].as_i64(),
            Some(start + WITHIN_MS + 1),
            "{t}"
        );
        let fails = t["steps"]["fails"].as_array().expect("fails");
        assert!(!fails.is_empty() && fails.len() <= FAILURES, "{t}");
        assert!(t["steps"].get("success").is_none(), "{t}");
    }
    let want = expected(&events);
    assert!(want.len() > 100, "{} bursts in the data", want.len());
    let (plugin_lines, by_plugin) = matches(&ws, "plugin.jsonl");
    let (declared_lines, declared) = matches(&ws, "declared.jsonl");
    assert_eq!(by_plugin, want);
    assert_eq!(
        declared, by_plugin,
        "the declared pattern and the plugin disagree"
    );
    assert_eq!((plugin_lines, declared_lines), (want.len(), want.len()));
}

/// Three kill -9 at random points of a 300,000-event run with `matcher`, then the run to
/// the end: the set of matches is the uninterrupted run's. Matches emitted after the last
/// checkpoint come again, identical, so the set is exact.
fn kill_9_three_times_with(matcher: &str, salt: u64) {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(11, |d| d.as_nanos() as u64);
    eprintln!("seed {seed}");
    let ws = Workspace::new();
    let events = logins(300_000, seed);
    write_logins(&ws, &events);
    let want = expected(&events);
    let size = std::fs::metadata(ws.path("logins.jsonl"))
        .expect("size")
        .len();
    pipeline_with(&ws, "killed", matcher);
    let mut rng = Lcg(seed ^ salt);
    let kills = common::kill_three_times(&ws, "state-killed", "logins", size, &mut rng);
    eprintln!(
        "killed at source offsets {kills:?} of {size}; {} bursts",
        want.len()
    );
    let done = ws.run(Duration::from_secs(300));
    assert_eq!(done.code, 0, "{}", done.stderr);
    let (lines, found) = matches(&ws, "killed.jsonl");
    eprintln!("{lines} match lines, {} distinct", found.len());
    assert_eq!(found, want);
}

#[test]
fn kill_9_three_times_changes_no_declared_match() {
    kill_9_three_times_with(&declared_matcher(), 0x2545_f491);
}

#[test]
fn kill_9_three_times_changes_no_match() {
    kill_9_three_times_with(&plugin_matcher(), 0x5bd1_e995);
}

/// `from` with a custom section appended: the same plugin, other bytes, a new version.
fn another_version(from: &std::path::Path, to: &std::path::Path) {
    let mut bytes = std::fs::read(from).expect("plugin");
    let name = b"weir-test-build";
    bytes.extend_from_slice(&[0, (1 + name.len() + 1) as u8, name.len() as u8]);
    bytes.extend_from_slice(name);
    bytes.push(b'2');
    let tmp = to.with_file_name(".login-burst.wasm.tmp");
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, to).expect("rename");
}

#[test]
fn a_reload_mid_stream_keeps_every_keys_state() {
    let ws = Workspace::new();
    let plugins = ws.path("plugins");
    std::fs::create_dir_all(&plugins).expect("plugin dir");
    let target = plugins.join("login-burst.wasm");
    std::fs::copy(weir_e2e::plugin("login-burst"), &target).expect("copy");
    let events = logins(40_000, 5);
    let want = expected(&events);
    let line = |(id, user, outcome, ts): &(u64, String, String, i64)| {
        format!("{{\"id\":{id},\"user\":\"{user}\",\"outcome\":\"{outcome}\",\"ts\":{ts}}}\n")
    };
    let (first, second) = events.split_at(events.len() / 2);
    std::fs::write(
        ws.path("logins.jsonl"),
        first.iter().map(line).collect::<String>(),
    )
    .expect("part 1");
    ws.pipeline(&format!(
        r#"
[server]
bind = "127.0.0.1:0"
[plugins]
dir = "plugins"
[state]
dir = "state"
stage_checkpoint_interval = "100ms"
[sources.logins]
type = "file"
path = "logins.jsonl"
format = "json"
follow = true
poll_interval = "20ms"
[stages.bursts]
type = "pattern"
inputs = ["logins"]
group_by = ["user"]
time_field = "ts"
out_of_orderness = "1500ms"
pattern = {{ plugin = "login-burst", config = {{ failures = {FAILURES}, within_ms = {WITHIN_MS} }} }}
[sinks.out]
type = "file"
path = "out.jsonl"
inputs = ["bursts"]
"#
    ));
    let mut weir = ws.start();
    let address = weir.address();
    let taken = || common::component_counter(&address, "bursts", "events_in");
    let wait = |what: &str, n: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while taken() < n {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait("the first half", first.len() as u64);
    std::thread::sleep(Duration::from_millis(300));
    another_version(&target, &target);
    weir.wait_for("plugin reloaded", Duration::from_secs(30));
    // The second half, then an event far ahead that moves event time past all of it.
    let mut rest: String = second.iter().map(line).collect();
    rest.push_str("{\"id\":0,\"user\":\"clock\",\"outcome\":\"none\",\"ts\":9000000000}\n");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(ws.path("logins.jsonl"))
        .expect("append");
    file.write_all(rest.as_bytes()).expect("part 2");
    drop(file);
    wait("the second half", events.len() as u64 + 1);
    weir.wait_for(
        "switched to the new plugin version",
        Duration::from_secs(30),
    );
    std::thread::sleep(Duration::from_millis(300));
    weir.signal("TERM");
    let done = weir.finish(Duration::from_secs(60));
    assert_eq!(done.code, 0, "{}", done.stderr);
    let (lines, found) = matches(&ws, "out.jsonl");
    assert_eq!(lines, want.len(), "each burst once");
    assert_eq!(found, want);
}
