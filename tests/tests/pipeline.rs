//! `weir run` and `weir validate`, driven as an operator would: real pipeline files, real
//! plugins, real files, signals and HTTP.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Workspace, component, http_get, http_post, seqs};
use serde_json::Value;

#[test]
fn issue_example_pipeline_runs_as_written_and_exits_when_drained() {
    let ws = Workspace::new();
    std::fs::write(
        ws.path("events.jsonl"),
        "{\"amount\":10}\n{\"amount\":60}\n{\"amount\":51,\"id\":\"x\"}\n",
    )
    .unwrap();
    ws.pipeline(
        r#"
[server]
enabled = false
[plugins]
dir = "{plugins}"
[sources.in]
type = "file"
path = "events.jsonl"
format = "json"
[stages.big]
type = "handler"
plugin = "threshold"
inputs = ["in"]
config = { field = "amount", min = 50 }
[sinks.out]
type = "file"
path = "out.jsonl"
inputs = ["big"]
"#,
    );
    let done = ws.run(Duration::from_secs(60));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(
        std::fs::read_to_string(ws.path("out.jsonl")).unwrap(),
        "{\"amount\":60}\n{\"amount\":51,\"id\":\"x\"}\n"
    );
    let summary = done.summary();
    assert_eq!(summary["big"]["filtered"], 1);
    assert_eq!(summary["out"]["events_out"], 2);
}

#[test]
fn million_generated_events_reach_the_file_sink_complete_through_threshold() {
    let ws = Workspace::new();
    ws.pipeline(
        r#"
[server]
enabled = false
[plugins]
dir = "{plugins}"
[sources.gen]
type = "generator"
count = 1000000
template = { seq = "{{seq}}", amount = "{{int(0,100)}}" }
[stages.upper_half]
type = "handler"
plugin = "threshold"
inputs = ["gen"]
config = { field = "seq", min = 499999 }
[sinks.out]
type = "file"
path = "out.jsonl"
inputs = ["upper_half"]
"#,
    );
    let done = ws.run(Duration::from_secs(300));
    assert_eq!(done.code, 0, "{}", done.stderr);
    let seqs = seqs(&ws.lines("out.jsonl"), "/seq");
    assert_eq!(seqs.len(), 500_000, "every kept event exactly once");
    let expected: Vec<u64> = (500_000..1_000_000).collect();
    assert_eq!(
        seqs, expected,
        "all kept sequence numbers, in order, none missing or repeated"
    );
    assert_eq!(done.summary()["upper_half"]["filtered"], 500_000);
}

#[test]
fn per_key_order_holds_with_four_workers() {
    let ws = Workspace::new();
    ws.pipeline(
        r#"
[server]
enabled = false
[plugins]
dir = "{plugins}"
[flow]
batch_size = 64
[sources.gen]
type = "generator"
count = 100000
key = "user-{{int(0,31)}}"
template = { seq = "{{seq}}" }
[stages.tag]
type = "handler"
plugin = "enrich"
parallelism = 4
inputs = ["gen"]
config = { field = "tagged", value = true }
[sinks.out]
type = "file"
path = "out.jsonl"
envelope = true
inputs = ["tag"]
"#,
    );
    let done = ws.run(Duration::from_secs(120));
    assert_eq!(done.code, 0, "{}", done.stderr);
    let lines = ws.lines("out.jsonl");
    assert_eq!(lines.len(), 100_000);
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    let mut interleaved = false;
    let mut previous_key = String::new();
    for (i, line) in lines.iter().enumerate() {
        let key = line["key"].as_str().expect("key").to_owned();
        let seq = line["payload"]["seq"].as_u64().expect("seq");
        assert_eq!(line["payload"]["tagged"], true);
        if let Some(before) = last.insert(key.clone(), seq) {
            assert!(
                before < seq,
                "line {i}: key {key} went from seq {before} back to {seq}"
            );
        }
        if i > 0 && key != previous_key && seq < 100_000 {
            interleaved = true;
        }
        previous_key = key;
    }
    assert!(interleaved);
    assert_eq!(last.len(), 32, "every key seen");
    let all: HashSet<u64> = seqs(&lines, "/payload/seq").into_iter().collect();
    assert_eq!(all.len(), 100_000, "no event lost or doubled");
}

#[test]
fn malformed_input_and_a_trapping_event_are_dead_lettered_with_reasons() {
    let ws = Workspace::new();
    let mut input = String::new();
    for i in 0..1000 {
        match i {
            100 => input.push_str("{\"seq\":100, oops\n"),
            700 => input.push_str("{\"seq\":700,\"poison\":true}\n"),
            _ => input.push_str(&format!("{{\"seq\":{i}}}\n")),
        }
    }
    std::fs::write(ws.path("events.jsonl"), input).unwrap();
    ws.pipeline(
        r#"
[server]
enabled = false
[plugins]
dir = "{plugins}"
[dead_letter]
sink = "dlq"
[sources.in]
type = "file"
path = "events.jsonl"
[stages.risky]
type = "handler"
plugin = "panic"
inputs = ["in"]
[sinks.out]
type = "file"
path = "out.jsonl"
inputs = ["risky"]
[sinks.dlq]
type = "file"
path = "dlq.jsonl"
envelope = true
"#,
    );
    let done = ws.run(Duration::from_secs(120));
    assert_eq!(done.code, 0, "{}", done.stderr);
    let passed = seqs(&ws.lines("out.jsonl"), "/seq");
    let expected: Vec<u64> = (0..1000).filter(|i| *i != 100 && *i != 700).collect();
    assert_eq!(passed, expected, "every other event passes, in order");
    let dead = ws.lines("dlq.jsonl");
    assert_eq!(dead.len(), 2, "{dead:?}");
    let malformed = &dead
        .iter()
        .find(|d| d["headers"]["weir-dead-letter-kind"] == "malformed")
        .expect("malformed one");
    assert_eq!(malformed["payload"], "{\"seq\":100, oops");
    assert_eq!(malformed["headers"]["weir-dead-letter-stage"], "in");
    assert!(
        malformed["headers"]["weir-dead-letter-error"]
            .as_str()
            .unwrap()
            .contains("invalid JSON")
    );
    let trapped = dead
        .iter()
        .find(|d| d["headers"]["weir-dead-letter-kind"] == "plugin_fault")
        .expect("trapped one");
    assert_eq!(trapped["payload"]["seq"], 700);
    assert_eq!(trapped["headers"]["weir-dead-letter-stage"], "risky");
    assert!(
        trapped["headers"]["weir-dead-letter-plugin"]
            .as_str()
            .unwrap()
            .starts_with("panic@")
    );
    let error = trapped["headers"]["weir-dead-letter-error"]
        .as_str()
        .unwrap();
    assert!(error.contains("panic") && error.contains("trap"), "{error}");
}

#[test]
fn slow_sink_with_block_slows_the_source_and_memory_stays_bounded() {
    let ws = Workspace::new();
    ws.pipeline(
        r#"
[server]
bind = "127.0.0.1:0"
[plugins]
dir = "{plugins}"
[flow]
batch_size = 256
channel_capacity = 4
[sources.gen]
type = "generator"
template = { seq = "{{seq}}", text = "some padding to make events weigh something {{seq}}" }
[stages.pass]
type = "filter"
condition = "seq >= 0"
inputs = ["gen"]
[sinks.slow]
type = "null"
inputs = ["pass"]
overload = { policy = "block", delay = "20ms" }
"#,
    );
    let mut running = ws.start();
    let address = running.address();
    running.wait_for("pipeline running", Duration::from_secs(30));
    let started = Instant::now();
    let mut max_rss = 0;
    while started.elapsed() < Duration::from_secs(4) {
        max_rss = max_rss.max(running.rss_kib());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = http_get(&address, "/api/v1/pipeline");
    assert_eq!(status, 200);
    let pipeline: Value = serde_json::from_str(&body).unwrap();
    let generated = component(&pipeline, "gen")["counters"]["events_out"]
        .as_u64()
        .unwrap();
    let written = component(&pipeline, "slow")["counters"]["events_out"]
        .as_u64()
        .unwrap();
    // In flight at most: each channel's capacity plus the batch each component holds.
    let bound = (2 * (4 + 1) + 2) * 256;
    assert!(
        generated - written <= bound,
        "generated {generated}, written {written}: the source did not slow down"
    );
    // 20 ms per batch of 256 is at most ~12,800 events/s.
    assert!(
        generated < 4 * 20_000,
        "generated {generated} in ~4 s: not held back"
    );
    assert!(max_rss < 150 * 1024, "RSS reached {max_rss} KiB");
    let (status, metrics) = http_get(&address, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("weir_events_in_total{component=\"slow\"}"),
        "{metrics}"
    );
    running.signal("TERM");
    let done = running.finish(Duration::from_secs(30));
    assert_eq!(done.code, 0, "{}", done.stderr);
}

#[test]
fn drop_newest_counts_exactly_what_it_sheds() {
    let ws = Workspace::new();
    ws.pipeline(
        r#"
[server]
enabled = false
[flow]
batch_size = 100
channel_capacity = 2
[sources.gen]
type = "generator"
count = 50000
[sinks.slow]
type = "null"
inputs = ["gen"]
overload = { policy = "drop_newest", delay = "2ms" }
"#,
    );
    let done = ws.run(Duration::from_secs(120));
    assert_eq!(done.code, 0, "{}", done.stderr);
    let summary = done.summary();
    let sent = summary["gen"]["events_out"].as_u64().unwrap();
    let received = summary["slow"]["events_in"].as_u64().unwrap();
    let shed = summary["slow"]["shed"].as_u64().unwrap();
    assert_eq!(sent, 50_000);
    assert!(shed > 0, "the sink never fell behind: {summary}");
    assert_eq!(shed, sent - received, "{summary}");
}

#[test]
fn sigterm_mid_stream_then_restart_delivers_every_line_at_least_once() {
    let ws = Workspace::new();
    let total = 200_000u64;
    let mut input = String::new();
    for i in 0..total {
        input.push_str(&format!("{{\"seq\":{i}}}\n"));
    }
    std::fs::write(ws.path("events.jsonl"), input).unwrap();
    ws.pipeline(
        r#"
[server]
enabled = false
[flow]
batch_size = 500
[state]
dir = "state"
checkpoint_interval = "50ms"
[sources.in]
type = "file"
path = "events.jsonl"
[sinks.out]
type = "file"
path = "out.jsonl"
inputs = ["in"]
overload = { delay = "5ms" }
"#,
    );
    let mut first = ws.start();
    first.wait_for("pipeline running", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(800));
    first.signal("TERM");
    let done = first.finish(Duration::from_secs(30));
    assert_eq!(done.code, 0, "{}", done.stderr);
    let after_first = ws.lines("out.jsonl").len() as u64;
    assert!(
        after_first > 0 && after_first < total,
        "stopped mid-stream: {after_first} of {total}"
    );

    let done = ws.run(Duration::from_secs(120));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(
        done.stderr
            .contains("resuming from the acknowledged position"),
        "{}",
        done.stderr
    );
    let all = seqs(&ws.lines("out.jsonl"), "/seq");
    let distinct: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(distinct.len() as u64, total, "every line at least once");
    let duplicates = all.len() as u64 - total;
    assert!(
        duplicates <= 500,
        "{duplicates} duplicates: more than one batch"
    );
}

/// A workspace whose pipeline, in a fresh compile cache, compiles `plugin` while it starts:
/// signals sent after "loading the pipeline" land during start-up.
fn starting_pipeline(plugin: &str) -> Workspace {
    let ws = Workspace::new();
    std::fs::write(ws.path("events.jsonl"), "{\"amount\":60}\n").expect("write events");
    ws.pipeline(
        &r#"
[server]
enabled = false
[plugins]
dir = "{plugins}"
cache_dir = "fresh-cache"
[sources.in]
type = "file"
path = "events.jsonl"
follow = true
[stages.big]
type = "handler"
plugin = "PLUGIN"
inputs = ["in"]
config = { field = "amount", min = 50 }
[sinks.out]
type = "file"
path = "out.jsonl"
inputs = ["big"]
"#
        .replace("PLUGIN", plugin),
    );
    ws
}

#[test]
fn sigterm_while_starting_drains_and_exits_cleanly() {
    let ws = starting_pipeline("threshold");
    let mut weir = ws.start();
    weir.wait_for("loading the pipeline", Duration::from_secs(30));
    weir.signal("TERM");
    let done = weir.finish(Duration::from_secs(60));
    assert_eq!(done.code, 0, "{}", done.stderr);
    let at = |needle: &str| {
        done.stderr
            .find(needle)
            .unwrap_or_else(|| panic!("no {needle:?}:\n{}", done.stderr))
    };
    assert!(
        at("signal received") < at("pipeline running"),
        "the signal came during start-up and was kept:\n{}",
        done.stderr
    );
    done.summary();
}

#[test]
fn a_second_signal_during_start_up_exits_at_once() {
    // A Python component takes seconds to compile: both signals land during start-up.
    let ws = starting_pipeline("threshold-py");
    let mut weir = ws.start();
    weir.wait_for("loading the pipeline", Duration::from_secs(30));
    weir.signal("INT");
    weir.wait_for("signal received", Duration::from_secs(10));
    weir.signal("INT");
    let done = weir.finish(Duration::from_secs(10));
    assert_eq!(done.code, 130, "{}", done.stderr);
    assert!(done.stderr.contains("second signal"), "{}", done.stderr);
    assert!(
        !done.stderr.contains("pipeline running"),
        "both signals came during start-up:\n{}",
        done.stderr
    );
}

#[test]
fn invalid_pipeline_files_are_refused_with_file_line_and_fix() {
    let ws = Workspace::new();
    let base_source = "[sources.in]\ntype = \"file\"\npath = \"x.jsonl\"\n";
    let cases: &[(&str, String, &str)] = &[
        (
            "unknown key",
            format!("{base_source}pth = 1\n[sinks.out]\ntype = \"null\"\ninputs = [\"in\"]\n"),
            "pipeline.toml:1: sources.in: unknown field `pth`",
        ),
        (
            "missing input",
            format!("{base_source}[sinks.out]\ntype = \"null\"\ninputs = [\"nope\"]\n"),
            "pipeline.toml:6: sinks.out.inputs: no source or stage named \"nope\" (have: in)",
        ),
        (
            "cycle",
            format!(
                "{base_source}[stages.a]\ntype = \"filter\"\ncondition = \"x > 1\"\ninputs = [\"in\", \"b\"]\n[stages.b]\ntype = \"filter\"\ncondition = \"x > 1\"\ninputs = [\"a\"]\n[sinks.out]\ntype = \"null\"\ninputs = [\"b\"]\n"
            ),
            "inputs form a cycle",
        ),
        (
            "unknown plugin",
            format!(
                "[plugins]\ndir = \"{{plugins}}\"\n{base_source}[stages.h]\ntype = \"handler\"\nplugin = \"thresold\"\ninputs = [\"in\"]\n[sinks.out]\ntype = \"null\"\ninputs = [\"h\"]\n"
            ),
            "pipeline.toml:8: stages.h.plugin: no plugin \"thresold\" in",
        ),
        (
            "wrong plugin kind",
            format!(
                "[plugins]\ndir = \"{{plugins}}\"\n{base_source}[stages.h]\ntype = \"handler\"\nplugin = \"stats\"\ninputs = [\"in\"]\n[sinks.out]\ntype = \"null\"\ninputs = [\"h\"]\n"
            ),
            "pipeline.toml:8: stages.h.plugin: plugin \"stats\" is of the aggregator world, not handler",
        ),
        (
            "bad duration",
            format!(
                "[flow]\nlinger = \"5 parsecs\"\n{base_source}[sinks.out]\ntype = \"null\"\ninputs = [\"in\"]\n"
            ),
            "pipeline.toml:2: flow.linger: bad duration \"5 parsecs\"",
        ),
        (
            "bad condition",
            format!(
                "{base_source}[stages.f]\ntype = \"filter\"\ncondition = \"amount = 5\"\ninputs = [\"in\"]\n[sinks.out]\ntype = \"null\"\ninputs = [\"f\"]\n"
            ),
            "pipeline.toml:6: stages.f.condition: \"amount = 5\": column 8: `=` is not an operator",
        ),
        (
            "unknown type",
            "[sources.in]\ntype = \"kafak\"\n[sinks.out]\ntype = \"null\"\ninputs = [\"in\"]\n"
                .to_owned(),
            "unknown variant `kafak`, expected one of `generator`, `file`, `stdin`",
        ),
        (
            "unset secret",
            format!(
                "{base_source}[sinks.out]\ntype = \"file\"\npath = \"${{WEIR_TEST_UNSET_SECRET}}\"\ninputs = [\"in\"]\n"
            ),
            "pipeline.toml:6: environment variable WEIR_TEST_UNSET_SECRET is not set",
        ),
        (
            "bad condition in a pattern step",
            format!(
                "{base_source}[stages.p]\ntype = \"pattern\"\ninputs = [\"in\"]\n[[stages.p.steps]]\nname = \"a\"\nwhere = \"v > 1\"\n[[stages.p.steps]]\nname = \"b\"\nwhere = \"v > a.v *\"\n[sinks.out]\ntype = \"null\"\ninputs = [\"p\"]\n"
            ),
            "pipeline.toml:12: stages.p.steps[1].where: \"v > a.v *\": column 10: expected a value, found the end",
        ),
        (
            "absence without within",
            format!(
                "{base_source}[stages.p]\ntype = \"pattern\"\ninputs = [\"in\"]\n[[stages.p.steps]]\nname = \"order\"\n[[stages.p.steps]]\nname = \"payment\"\nafter = \"not_followed_by\"\nwhere = \"paid\"\n[sinks.out]\ntype = \"null\"\ninputs = [\"p\"]\n"
            ),
            "stages.p.within: a pattern that ends with `not_followed_by` (absence) needs `within`",
        ),
        (
            "source feeding nothing",
            format!(
                "{base_source}[sources.extra]\ntype = \"stdin\"\n[sinks.out]\ntype = \"null\"\ninputs = [\"in\"]\n"
            ),
            "pipeline.toml:4: sources.extra: extra feeds nothing",
        ),
    ];
    for (name, text, expected) in cases {
        ws.pipeline(text);
        let output = ws
            .command(&["validate", "pipeline.toml"])
            .output()
            .expect("weir runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{name}: expected {expected:?} in:\n{stderr}"
        );
        let run = ws
            .command(&["run", "pipeline.toml"])
            .output()
            .expect("weir runs");
        assert_eq!(run.status.code(), Some(2), "{name}: run must refuse it too");
    }
    ws.pipeline(&format!(
        "{base_source}[sinks.out]\ntype = \"null\"\ninputs = [\"in\"]\n"
    ));
    let ok = ws
        .command(&["validate", "pipeline.toml"])
        .output()
        .expect("weir runs");
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn http_source_accepts_ndjson_and_arrays_refuses_bad_input_and_pushes_back_when_full() {
    let ws = Workspace::new();
    ws.pipeline(
        r#"
[server]
bind = "127.0.0.1:0"
[flow]
batch_size = 10
channel_capacity = 1
[sources.api]
type = "http"
[sinks.out]
type = "file"
path = "out.jsonl"
inputs = ["api"]
overload = { delay = "300ms" }
"#,
    );
    let mut running = ws.start();
    let address = running.address();
    running.wait_for("pipeline running", Duration::from_secs(30));

    let (status, _, body) = http_post(
        &address,
        "/ingest/api",
        b"{\"n\":1}\n{\"n\":2}\n\n{\"n\":3}\n",
    );
    assert_eq!((status, body.trim()), (202, "{\"accepted\":3}"));
    let (status, _, body) = http_post(&address, "/ingest/api", b"[{\"n\":4},{\"n\":5}]");
    assert_eq!((status, body.trim()), (202, "{\"accepted\":2}"));
    let (status, _, body) = http_post(&address, "/ingest/api", b"{\"n\":6}\n{oops\n");
    assert_eq!(status, 400);
    assert!(body.starts_with("line 2: invalid JSON"), "{body}");
    let (status, _, _) = http_post(&address, "/ingest/nope", b"{}");
    assert_eq!(status, 404);

    // Many clients at once against a sink taking 300 ms per batch: some must be told to
    // come back, and every event accepted must arrive.
    let clients: Vec<_> = (0..12)
        .map(|c| {
            let address = address.clone();
            std::thread::spawn(move || {
                let body: String = (0..10)
                    .map(|i| format!("{{\"n\":{}}}\n", 1000 + c * 10 + i))
                    .collect();
                http_post(&address, "/ingest/api", body.as_bytes())
            })
        })
        .collect();
    let mut accepted = 5u64;
    let mut refused = 0;
    for client in clients {
        let (status, head, body) = client.join().expect("client");
        match status {
            202 => accepted += 10,
            429 => {
                refused += 1;
                assert!(
                    head.to_ascii_lowercase().contains("retry-after: 1"),
                    "{head}"
                );
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(refused > 0, "a full pipeline must answer 429");
    running.signal("TERM");
    let done = running.finish(Duration::from_secs(60));
    assert_eq!(done.code, 0, "{}", done.stderr);
    let written = ws.lines("out.jsonl");
    assert_eq!(
        written.len() as u64,
        accepted,
        "every accepted event written"
    );
    assert_eq!(seqs(&written[..5], "/n"), vec![1, 2, 3, 4, 5]);
}

/// A tiny HTTP server on loopback that fails its first request with 500 and keeps the
/// bodies of the requests it answered 200.
fn flaky_http_server() -> (String, mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let status = if n == 0 {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            if n > 0 {
                let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
            }
        }
    });
    (address, rx)
}

#[test]
fn http_sink_posts_batches_and_retries_a_failed_one() {
    let (server, bodies) = flaky_http_server();
    let ws = Workspace::new();
    ws.pipeline(&format!(
        r#"
[server]
enabled = false
[flow]
batch_size = 100
[sources.gen]
type = "generator"
count = 1000
[sinks.out]
type = "http"
url = "http://{server}/events"
headers = {{ Authorization = "Bearer t" }}
inputs = ["gen"]
"#
    ));
    let done = ws.run(Duration::from_secs(60));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(
        done.stderr.contains("write failed, retrying"),
        "{}",
        done.stderr
    );
    let mut seen = Vec::new();
    while let Ok(body) = bodies.recv_timeout(Duration::from_millis(200)) {
        for line in body.lines() {
            let value: Value = serde_json::from_str(line).expect("NDJSON body");
            seen.push(value["seq"].as_u64().expect("seq"));
        }
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..1000).collect::<Vec<u64>>(),
        "each event delivered once"
    );
}

#[test]
fn route_splits_by_condition_and_dedup_drops_repeats() {
    let ws = Workspace::new();
    let mut input = String::new();
    for i in 0..300u64 {
        // Every id appears three times in a row.
        input.push_str(&format!(
            "{{\"id\":{},\"amount\":{}}}\n",
            i / 3,
            (i / 3) % 200
        ));
    }
    std::fs::write(ws.path("events.jsonl"), input).unwrap();
    ws.pipeline(
        r#"
[server]
enabled = false
[sources.in]
type = "file"
path = "events.jsonl"
[stages.once]
type = "filter"
condition = "exists(id)"
dedup = { field = "id", window = 1000 }
inputs = ["in"]
[stages.split]
type = "route"
routes = { big = "amount >= 50", small = "amount < 10", any = "amount >= 0" }
inputs = ["once"]
[sinks.big]
type = "file"
path = "big.jsonl"
inputs = ["split.big"]
[sinks.small]
type = "file"
path = "small.jsonl"
inputs = ["split.small"]
[sinks.rest]
type = "file"
path = "rest.jsonl"
inputs = ["split.any", "split.unmatched"]
"#,
    );
    let done = ws.run(Duration::from_secs(60));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(done.summary()["once"]["deduplicated"], 200);
    let ids = |name: &str| seqs(&ws.lines(name), "/id");
    assert_eq!(ids("big.jsonl"), (50..100).collect::<Vec<u64>>());
    assert_eq!(ids("small.jsonl"), (0..10).collect::<Vec<u64>>());
    assert_eq!(ids("rest.jsonl"), (10..50).collect::<Vec<u64>>());
}

#[test]
fn followed_file_delivers_appended_lines_and_survives_rotation() {
    let ws = Workspace::new();
    let log = ws.path("app.log");
    std::fs::write(&log, "{\"n\":1}\n").unwrap();
    ws.pipeline(
        r#"
[server]
enabled = false
[sources.tail]
type = "file"
path = "app.log"
follow = true
poll_interval = "20ms"
[sinks.out]
type = "file"
path = "out.jsonl"
inputs = ["tail"]
"#,
    );
    let mut running = ws.start();
    running.wait_for("pipeline running", Duration::from_secs(30));
    let wait_for_lines = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while ws.lines("out.jsonl").len() < n {
            assert!(
                Instant::now() < deadline,
                "only {:?}",
                ws.lines("out.jsonl")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for_lines(1);
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(b"{\"n\":2}\n{\"n\":").unwrap();
    file.flush().unwrap();
    wait_for_lines(2);
    // The half-written line is not taken until its newline arrives.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(ws.lines("out.jsonl").len(), 2);
    file.write_all(b"3}\n").unwrap();
    wait_for_lines(3);
    // Rotate the way log shippers see it: rename, then a new file at the same path.
    std::fs::rename(&log, ws.path("app.log.1")).unwrap();
    std::fs::write(&log, "{\"n\":4}\n{\"n\":5}\n").unwrap();
    wait_for_lines(5);
    running.signal("TERM");
    let done = running.finish(Duration::from_secs(30));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(seqs(&ws.lines("out.jsonl"), "/n"), vec![1, 2, 3, 4, 5]);
}

#[test]
fn plugin_defaults_beside_the_wasm_fill_what_the_stage_leaves_out() {
    let ws = Workspace::new();
    let plugins = ws.path("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        weir_e2e::plugin("threshold"),
        plugins.join("threshold.wasm"),
    )
    .unwrap();
    std::fs::write(
        plugins.join("threshold.toml"),
        "timeout = \"50ms\"\n[config]\nfield = \"amount\"\nmin = 50\n",
    )
    .unwrap();
    std::fs::write(
        ws.path("events.jsonl"),
        "{\"amount\":20}\n{\"amount\":60}\n",
    )
    .unwrap();
    let pipeline = |stage_config: &str| {
        format!(
            "[server]\nenabled = false\n[plugins]\ndir = \"plugins\"\n[sources.in]\ntype = \"file\"\npath = \"events.jsonl\"\n[stages.t]\ntype = \"handler\"\nplugin = \"threshold\"\ninputs = [\"in\"]\n{stage_config}\n[sinks.out]\ntype = \"file\"\npath = \"out.jsonl\"\ninputs = [\"t\"]\n[state]\ndir = \"state-{}\"\n",
            stage_config.len()
        )
    };
    // Only the defaults: min = 50.
    ws.pipeline(&pipeline(""));
    let done = ws.run(Duration::from_secs(60));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(seqs(&ws.lines("out.jsonl"), "/amount"), vec![60]);
    // The stage overrides min, keeps the default field.
    std::fs::remove_file(ws.path("out.jsonl")).unwrap();
    ws.pipeline(&pipeline("config = { min = 10 }"));
    let done = ws.run(Duration::from_secs(60));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(seqs(&ws.lines("out.jsonl"), "/amount"), vec![20, 60]);
    // A bad defaults file is refused with its name and line.
    std::fs::write(
        plugins.join("threshold.toml"),
        "timeout = \"50ms\"\nmin = 5\n",
    )
    .unwrap();
    let output = ws.command(&["run", "pipeline.toml"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("threshold.toml:2: unknown field `min`"),
        "{stderr}"
    );
}

#[test]
fn the_quickstart_pipeline_is_valid() {
    let ws = Workspace::new();
    let quickstart =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart.toml");
    let out = ws
        .command(&["validate", &quickstart.display().to_string()])
        .env("WEIR_PLUGIN_DIR", weir_e2e::plugin_dir())
        .output()
        .expect("weir runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
