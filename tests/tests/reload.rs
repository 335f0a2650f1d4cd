//! Hot reload in a running `weir run`: plugin files replaced the way deploy tools do it,
//! while events flow.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Running, Workspace, http_get, http_post, http_request, seqs};
use serde_json::Value;
use weir_e2e::plugin;

/// Replaces `to` with the bytes of `from` the way `cp` does: truncate, then write in place.
fn copy_in_place(from: &Path, to: &Path) {
    std::fs::copy(from, to).expect("cp");
}

/// Replaces `to` the way `mv` (and most deploy tools) do: write a temp file, rename over.
fn rename_over(from: &Path, to: &Path) {
    let tmp = to.with_file_name(format!(
        ".{}.tmp",
        to.file_name().and_then(|n| n.to_str()).unwrap_or("x")
    ));
    std::fs::copy(from, &tmp).expect("write temp");
    std::fs::rename(&tmp, to).expect("mv");
}

fn plugin_status(address: &str, token: &str, name: &str) -> Value {
    let (status, body) = http_get_with_token(address, "/api/v1/plugins", token);
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).expect("json");
    list["plugins"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no plugin {name} in {list}"))
}

fn http_get_with_token(address: &str, path: &str, token: &str) -> (u16, String) {
    let (status, _, body) = http_request(
        address,
        "GET",
        path,
        &format!("Authorization: Bearer {token}\r\n"),
        b"",
    );
    (status, body)
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A workspace with its own plugin directory holding `stamp.wasm` (build a).
fn stamp_workspace() -> (Workspace, PathBuf) {
    let ws = Workspace::new();
    let plugins = ws.path("plugins");
    std::fs::create_dir_all(&plugins).expect("plugin dir");
    std::fs::copy(plugin("stamp-a"), plugins.join("stamp.wasm")).expect("copy stamp-a");
    (ws, plugins.join("stamp.wasm"))
}

#[test]
fn fifty_reloads_under_load_lose_and_double_nothing_and_only_move_forward() {
    let (ws, target) = stamp_workspace();
    ws.pipeline(
        r#"
[server]
bind = "127.0.0.1:0"
admin_token = "s3cret"
[plugins]
dir = "plugins"
[flow]
batch_size = 256
[sources.gen]
type = "generator"
rate = 100000.0
key = "k{{int(0,15)}}"
template = { seq = "{{seq}}" }
[stages.stamp]
type = "handler"
plugin = "stamp"
parallelism = 2
inputs = ["gen"]
[sinks.out]
type = "file"
path = "out.jsonl"
envelope = true
inputs = ["stamp"]
"#,
    );
    let mut running = ws.start();
    let address = running.address();
    running.wait_for("pipeline running", Duration::from_secs(30));
    let builds = [plugin("stamp-b"), plugin("stamp-a")];
    for i in 0..50 {
        let from = &builds[i % 2];
        if i % 2 == 0 {
            copy_in_place(from, &target);
        } else {
            rename_over(from, &target);
        }
        wait_until(
            &format!("reload {}", i + 1),
            Duration::from_secs(20),
            || plugin_status(&address, "s3cret", "stamp")["reloads"].as_u64() == Some(i as u64 + 1),
        );
        // Let each version serve a while, so reloads spread over the run.
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = plugin_status(&address, "s3cret", "stamp");
    assert_eq!(status["state"], "serving", "{status}");
    // The generator runs until stopped: SIGTERM drains what it made.
    running.signal("TERM");
    let done = running.finish(Duration::from_secs(120));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(done.stderr.contains("plugin reloaded"));

    let lines = ws.lines("out.jsonl");
    let all: Vec<u64> = seqs(&lines, "/payload/seq");
    let distinct: HashSet<u64> = all.iter().copied().collect();
    let total = distinct.len() as u64;
    assert!(total >= 50_000, "only {total} events in the run");
    assert_eq!(all.len() as u64, total, "no event doubled");
    assert_eq!(
        distinct.iter().max().copied(),
        Some(total - 1),
        "no event lost: sequence numbers 0..{total} all there"
    );
    // Per key, in sequence order, the instance start time never goes back: no event is
    // handled by an older version after a newer one served its key.
    let mut by_key: BTreeMap<String, Vec<(u64, i64, String)>> = BTreeMap::new();
    for line in &lines {
        by_key
            .entry(line["key"].as_str().unwrap().to_owned())
            .or_default()
            .push((
                line["payload"]["seq"].as_u64().unwrap(),
                line["payload"]["started"].as_i64().unwrap(),
                line["payload"]["build"].as_str().unwrap().to_owned(),
            ));
    }
    let mut versions_seen = 0;
    for (key, mut events) in by_key {
        events.sort();
        let mut changes = 0;
        for pair in events.windows(2) {
            assert!(
                pair[0].1 <= pair[1].1,
                "key {key}: seq {} ran on an older version than seq {}",
                pair[1].0,
                pair[0].0
            );
            if pair[0].2 != pair[1].2 {
                changes += 1;
            }
        }
        versions_seen = versions_seen.max(changes);
    }
    assert!(
        versions_seen >= 20,
        "stamps changed only {versions_seen} times for the busiest key"
    );
}

#[test]
fn a_version_that_fails_never_serves_and_a_later_good_one_does() {
    let (ws, target) = stamp_workspace();
    ws.pipeline(
        r#"
[server]
bind = "127.0.0.1:0"
admin_token = "s3cret"
[plugins]
dir = "plugins"
[flow]
batch_size = 16
[sources.gen]
type = "generator"
rate = 2000.0
template = { seq = "{{seq}}" }
[stages.stamp]
type = "handler"
plugin = "stamp"
inputs = ["gen"]
[sinks.out]
type = "file"
path = "out.jsonl"
inputs = ["stamp"]
"#,
    );
    let mut running: Running = ws.start();
    let address = running.address();
    running.wait_for("pipeline running", Duration::from_secs(30));
    let last_build = |ws: &Workspace| -> String {
        let lines = ws.lines("out.jsonl");
        lines
            .last()
            .map(|l| l["build"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    wait_until("first outputs", Duration::from_secs(10), || {
        last_build(&ws) == "a"
    });

    let truncated = ws.path("truncated.wasm");
    let good = std::fs::read(plugin("stamp-b")).unwrap();
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let bad_versions = [
        (plugin("stamp-bad-init"), "init"),
        (plugin("wrong-world"), "world"),
        (truncated, "truncated"),
    ];
    for (n, (file, why)) in bad_versions.iter().enumerate() {
        rename_over(file, &target);
        wait_until(&format!("{why} rejected"), Duration::from_secs(20), || {
            plugin_status(&address, "s3cret", "stamp")["failed_reloads"].as_u64()
                == Some(n as u64 + 1)
        });
        let status = plugin_status(&address, "s3cret", "stamp");
        assert_eq!(status["state"], "failed", "{status}");
        assert_eq!(status["reloads"], 0, "{status}");
        let error = status["last_error"].as_str().unwrap().to_lowercase();
        assert!(
            error.contains(why) || (*why == "truncated" && !error.is_empty()),
            "{why}: {error}"
        );
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(
            last_build(&ws),
            "a",
            "a rejected version ({why}) must never serve"
        );
    }

    // The CLI lists the same, and needs the token too.
    let listed = ws
        .command(&[
            "plugins",
            "--server",
            &format!("http://{address}"),
            "--token",
            "s3cret",
        ])
        .output()
        .expect("weir plugins");
    let table = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(listed.status.code(), Some(0), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("stamp "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("handler") && row.contains("failed"), "{row}");
    let refused = ws
        .command(&["plugins", "--server", &format!("http://{address}")])
        .output()
        .expect("weir plugins");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));

    // Without the token the admin API refuses.
    let (status, _) = http_get(&address, "/api/v1/plugins");
    assert_eq!(status, 401);
    let (status, _, _) = http_post(&address, "/api/v1/plugins/stamp/reload", b"");
    assert_eq!(status, 401);

    rename_over(&plugin("stamp-b"), &target);
    wait_until("good version serving", Duration::from_secs(20), || {
        last_build(&ws) == "b"
    });
    let status = plugin_status(&address, "s3cret", "stamp");
    assert_eq!(status["state"], "serving", "{status}");
    assert_eq!(status["reloads"], 1, "{status}");

    std::fs::remove_file(&target).unwrap();
    running.wait_for(
        "plugin file deleted; the loaded version keeps serving",
        Duration::from_secs(10),
    );
    let before = ws.lines("out.jsonl").len();
    wait_until("outputs after delete", Duration::from_secs(10), || {
        ws.lines("out.jsonl").len() > before + 100
    });
    assert_eq!(last_build(&ws), "b");
    running.signal("TERM");
    let done = running.finish(Duration::from_secs(30));
    assert_eq!(done.code, 0, "{}", done.stderr);
    // Rejections are logged once each, not once per file event.
    let rejected = done.stderr.matches("new version rejected").count();
    assert!(
        rejected <= 4,
        "{rejected} rejection lines:\n{}",
        done.stderr
    );
}

#[test]
fn breaker_quarantines_a_faulting_plugin_and_a_clean_trial_recovers_it() {
    let ws = Workspace::new();
    let plugins = ws.path("plugins");
    std::fs::create_dir_all(&plugins).expect("plugin dir");
    std::fs::copy(plugin("panic"), plugins.join("panic.wasm")).expect("copy panic");
    let input = ws.path("in.jsonl");
    std::fs::write(&input, "").expect("input");
    ws.pipeline(
        r#"
[server]
bind = "127.0.0.1:0"
[plugins]
dir = "plugins"
[flow]
batch_size = 10
[dead_letter]
sink = "dlq"
[sources.in]
type = "file"
path = "in.jsonl"
follow = true
poll_interval = "20ms"
[stages.risky]
type = "handler"
plugin = "panic"
inputs = ["in"]
breaker = { failures = 3, window = "1m", cool_down = "500ms", policy = "dead_letter" }
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
    let mut running = ws.start();
    let address = running.address();
    running.wait_for("pipeline running", Duration::from_secs(30));
    let append = |from: u64, to: u64, poison: bool| {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&input)
            .expect("open input");
        for seq in from..to {
            writeln!(file, "{{\"seq\":{seq},\"poison\":{poison}}}").expect("append");
        }
    };
    // Three poisoned events trip the breaker; what follows during the cool-down is
    // dead-lettered as quarantined without reaching the plugin.
    append(0, 3, true);
    running.wait_for(
        "plugin quarantined by its circuit breaker",
        Duration::from_secs(20),
    );
    let status = plugin_status(&address, "", "panic");
    assert_eq!(status["state"], "quarantined", "{status}");
    let (_, metrics) = http_get(&address, "/metrics");
    assert!(
        metrics
            .contains("weir_plugin_faults_total{stage=\"risky\",plugin=\"panic\",kind=\"trap\"} 3"),
        "{metrics}"
    );
    append(3, 13, false);
    wait_until(
        "quarantined events dead-lettered",
        Duration::from_secs(10),
        || ws.lines("dlq.jsonl").len() >= 13,
    );
    // After the cool-down a clean trial batch ends the quarantine.
    std::thread::sleep(Duration::from_millis(600));
    append(13, 23, false);
    running.wait_for(
        "trial batch clean; quarantine ends",
        Duration::from_secs(20),
    );
    wait_until("good events written", Duration::from_secs(10), || {
        ws.lines("out.jsonl").len() >= 10
    });
    assert_eq!(plugin_status(&address, "", "panic")["state"], "serving");
    running.signal("TERM");
    let done = running.finish(Duration::from_secs(30));
    assert_eq!(done.code, 0, "{}", done.stderr);

    let dead = ws.lines("dlq.jsonl");
    let kinds: Vec<&str> = dead
        .iter()
        .map(|d| d["headers"]["weir-dead-letter-kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[..3], ["plugin_fault"; 3], "{kinds:?}");
    assert_eq!(kinds[3..], ["quarantined"; 10], "{kinds:?}");
    assert_eq!(
        seqs(&ws.lines("out.jsonl"), "/seq"),
        (13..23).collect::<Vec<u64>>()
    );
}

#[test]
fn hostile_plugins_in_a_running_pipeline_fail_only_their_culprits() {
    let ws = Workspace::new();
    let mut input = String::new();
    for seq in 0..300u64 {
        let trait_ = match seq {
            50 => ",\"spin\":1",
            150 => ",\"bomb\":1",
            250 => ",\"poison\":true",
            _ => "",
        };
        input.push_str(&format!("{{\"seq\":{seq}{trait_}}}\n"));
    }
    std::fs::write(ws.path("events.jsonl"), input).expect("input");
    ws.pipeline(
        r#"
[server]
enabled = false
[plugins]
dir = "{plugins}"
timeout = "100ms"
memory_mb = 32
[dead_letter]
sink = "dlq"
[sources.in]
type = "file"
path = "events.jsonl"
[stages.spin]
type = "handler"
plugin = "loop-forever"
config = { field = "spin", equals = 1 }
inputs = ["in"]
[stages.bomb]
type = "handler"
plugin = "memory-bomb"
config = { field = "bomb", equals = 1 }
inputs = ["spin"]
[stages.trap]
type = "handler"
plugin = "panic"
inputs = ["bomb"]
[sinks.out]
type = "file"
path = "out.jsonl"
inputs = ["trap"]
[sinks.dlq]
type = "file"
path = "dlq.jsonl"
envelope = true
"#,
    );
    let done = ws.run(Duration::from_secs(120));
    assert_eq!(done.code, 0, "{}", done.stderr);
    let passed = seqs(&ws.lines("out.jsonl"), "/seq");
    let expected: Vec<u64> = (0..300).filter(|s| ![50, 150, 250].contains(s)).collect();
    assert_eq!(
        passed, expected,
        "everything but the culprits arrives, in order"
    );
    let dead = ws.lines("dlq.jsonl");
    let culprits: Vec<(u64, String, String)> = dead
        .iter()
        .map(|d| {
            (
                d["payload"]["seq"].as_u64().expect("seq"),
                d["headers"]["weir-dead-letter-stage"]
                    .as_str()
                    .expect("stage")
                    .to_owned(),
                d["headers"]["weir-dead-letter-error"]
                    .as_str()
                    .expect("error")
                    .to_lowercase(),
            )
        })
        .collect();
    assert_eq!(culprits.len(), 3, "{culprits:?}");
    assert_eq!((culprits[0].0, culprits[0].1.as_str()), (50, "spin"));
    assert!(culprits[0].2.contains("deadline"), "{}", culprits[0].2);
    assert_eq!((culprits[1].0, culprits[1].1.as_str()), (150, "bomb"));
    assert!(culprits[1].2.contains("memory"), "{}", culprits[1].2);
    assert_eq!((culprits[2].0, culprits[2].1.as_str()), (250, "trap"));
    assert!(culprits[2].2.contains("trap"), "{}", culprits[2].2);
}

/// Writes `text` to `to` the way deploy tools do: a temp file renamed over it.
fn write_over(to: &Path, text: &str) {
    let tmp = to.with_file_name(format!(
        ".{}.tmp",
        to.file_name().and_then(|n| n.to_str()).unwrap_or("x")
    ));
    std::fs::write(&tmp, text).expect("write temp");
    std::fs::rename(&tmp, to).expect("mv");
}

#[test]
fn an_edited_defaults_file_reaches_running_stages_and_a_bad_one_never_serves() {
    let (ws, target) = stamp_workspace();
    let defaults = target.with_file_name("stamp.toml");
    write_over(&defaults, "[config]\nlabel = \"one\"\n");
    ws.pipeline(
        r#"
[server]
bind = "127.0.0.1:0"
admin_token = "s3cret"
[plugins]
dir = "plugins"
[flow]
batch_size = 16
[sources.gen]
type = "generator"
rate = 2000.0
template = { seq = "{{seq}}" }
[stages.stamp]
type = "handler"
plugin = "stamp"
inputs = ["gen"]
[stages.own]
type = "handler"
plugin = "stamp"
config = { label = "own" }
inputs = ["gen"]
[sinks.out]
type = "file"
path = "out.jsonl"
inputs = ["stamp"]
[sinks.own_out]
type = "file"
path = "own.jsonl"
inputs = ["own"]
"#,
    );
    let mut running: Running = ws.start();
    let address = running.address();
    running.wait_for("pipeline running", Duration::from_secs(30));
    let last_label = |ws: &Workspace| -> Option<String> {
        let lines = ws.lines("out.jsonl");
        lines
            .last()
            .map(|l| l["label"].as_str().unwrap_or("(none)").to_owned())
    };
    wait_until("first outputs", Duration::from_secs(10), || {
        last_label(&ws).as_deref() == Some("one")
    });

    // A file that does not parse, and one whose config `init` refuses, never serve.
    let bad = [
        ("[config\nlabel = \"x\"\n", "stamp.toml:1"),
        ("[config]\nlabel = 7\n", "init for stage"),
    ];
    for (n, (text, why)) in bad.iter().enumerate() {
        write_over(&defaults, text);
        wait_until(&format!("{why} rejected"), Duration::from_secs(20), || {
            plugin_status(&address, "s3cret", "stamp")["failed_reloads"].as_u64()
                == Some(n as u64 + 1)
        });
        let status = plugin_status(&address, "s3cret", "stamp");
        assert_eq!(status["state"], "failed", "{status}");
        assert_eq!(status["reloads"], 0, "{status}");
        let error = status["last_error"].as_str().unwrap();
        assert!(error.contains(why), "{why}: {error}");
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(last_label(&ws).as_deref(), Some("one"), "{why} served");
    }

    write_over(&defaults, "[config]\nlabel = \"two\"\n");
    wait_until("new defaults serving", Duration::from_secs(20), || {
        last_label(&ws).as_deref() == Some("two")
    });
    let status = plugin_status(&address, "s3cret", "stamp");
    assert_eq!(status["state"], "serving", "{status}");
    assert_eq!(status["reloads"], 1, "{status}");

    // Without the file, the stage runs on its own config alone.
    std::fs::remove_file(&defaults).unwrap();
    wait_until("defaults gone", Duration::from_secs(20), || {
        last_label(&ws).as_deref() == Some("(none)")
    });
    running.signal("TERM");
    let done = running.finish(Duration::from_secs(30));
    assert_eq!(done.code, 0, "{}", done.stderr);

    // Every event once, and the labels move only forward: one, two, none.
    let lines = ws.lines("out.jsonl");
    let all = seqs(&lines, "/seq");
    let total = all.len() as u64;
    assert_eq!(
        all.iter().copied().collect::<HashSet<_>>().len() as u64,
        total,
        "no event doubled"
    );
    assert_eq!(all.iter().max().copied(), Some(total - 1), "no event lost");
    let mut labelled: Vec<(u64, usize)> = lines
        .iter()
        .map(|l| {
            let phase = match l["label"].as_str() {
                Some("one") => 0,
                Some("two") => 1,
                None => 2,
                Some(other) => panic!("label {other:?} served"),
            };
            (l["seq"].as_u64().unwrap(), phase)
        })
        .collect();
    labelled.sort();
    assert!(
        labelled.windows(2).all(|p| p[0].1 <= p[1].1),
        "labels went back"
    );
    // A stage's own key wins over the file, through every change.
    let own = ws.lines("own.jsonl");
    assert!(own.len() as u64 >= total / 2, "{} own outputs", own.len());
    assert!(own.iter().all(|l| l["label"] == "own"));
}
