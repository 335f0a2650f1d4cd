//! `weir plugin check` and `weir plugin run`, driven as a user would, on real plugins.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use weir_e2e::{plugin, weir_binary};

/// What a finished `weir` process printed.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    /// The JSON lines on stderr that report failed events.
    fn failures(&self) -> Vec<Value> {
        self.json_lines()
            .into_iter()
            .filter(|v| v.get("line").is_some())
            .collect()
    }

    fn summary(&self) -> Value {
        self.json_lines()
            .into_iter()
            .find_map(|v| v.get("summary").cloned())
            .unwrap_or_else(|| panic!("no summary in stderr:\n{}", self.stderr))
    }

    fn json_lines(&self) -> Vec<Value> {
        self.stderr
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

fn weir(args: &[&str], stdin: &[u8]) -> Outcome {
    let mut child = Command::new(weir_binary())
        .args(args)
        .env("WEIR_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weir starts");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_vec();
    // Feed stdin from its own thread: writing it all before reading stdout would deadlock
    // once both pipes are full.
    let feeder = std::thread::spawn(move || {
        // A command that exits early closes its stdin; that is not the test's failure.
        let _ = input.write_all(&stdin);
    });
    let output = child.wait_with_output().expect("weir finishes");
    feeder.join().expect("stdin feeder");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A deterministic generator, so a failure reproduces.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Random events of every shape the threshold must tell apart.
fn random_events(n: usize) -> Vec<Value> {
    let mut rng = Lcg(0x5eed);
    (0..n)
        .map(|i| {
            let amount = match rng.next() % 10 {
                0 => json!(rng.next() as f64 / 1e7 - 100.0),
                1 => json!(-(rng.next() as i64 % 1000)),
                2 => json!(format!("{}", rng.next() % 100)),
                3 => json!(true),
                4 => Value::Null,
                5 => json!(50),
                _ => json!(rng.next() % 101),
            };
            match rng.next() % 20 {
                0 => json!([i, amount]),
                1 => json!({"seq": i, "other": amount}),
                2 => json!({"seq": i, "amount": {"nested": amount}}),
                _ => json!({"seq": i, "amount": amount, "user": format!("u{}", rng.next() % 50)}),
            }
        })
        .collect()
}

#[test]
fn threshold_in_rust_and_python_match_a_direct_computation_on_10000_events() {
    let events = random_events(10_000);
    let input: String = events.iter().map(|e| format!("{e}\n")).collect();
    let expected: Vec<String> = events
        .iter()
        .filter(|e| {
            let amount = &e["amount"];
            amount.is_number() && amount.as_f64().is_some_and(|a| a > 50.0)
        })
        .map(Value::to_string)
        .collect();
    let expected_failures: Vec<u64> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.is_object())
        .map(|(i, _)| i as u64 + 1)
        .collect();
    assert!(
        expected.len() > 1_000 && !expected_failures.is_empty(),
        "the sample exercises both sides"
    );

    let args = [
        "--config",
        "field=amount",
        "--config",
        "min=50",
        "--batch-size",
        "256",
    ];
    let mut outputs = Vec::new();
    for name in ["threshold", "threshold-py"] {
        let wasm = plugin(name);
        let mut full = vec!["plugin", "run", path(&wasm)];
        full.extend(args);
        let run = weir(&full, input.as_bytes());
        assert_eq!(
            run.code, 1,
            "{name}: non-map payloads fail, so exit 1\n{}",
            run.stderr
        );
        let lines: Vec<String> = run.stdout.lines().map(str::to_owned).collect();
        let first_difference = lines.iter().zip(&expected).position(|(a, b)| a != b);
        assert!(
            lines.len() == expected.len() && first_difference.is_none(),
            "{name} must keep exactly the events over the threshold, in order: {} lines for {} expected, first difference at {first_difference:?}: {:?} vs {:?}",
            lines.len(),
            expected.len(),
            first_difference.and_then(|i| lines.get(i)),
            first_difference.and_then(|i| expected.get(i)),
        );
        let failed: Vec<u64> = run
            .failures()
            .iter()
            .map(|f| f["line"].as_u64().unwrap())
            .collect();
        assert_eq!(failed, expected_failures, "{name}");
        for failure in run.failures() {
            assert_eq!(failure["kind"], "invalid-input");
            assert!(
                failure["error"]
                    .as_str()
                    .unwrap()
                    .contains("payload is not a MessagePack map")
            );
        }
        let summary = run.summary();
        assert_eq!(summary["in"], 10_000);
        assert_eq!(summary["out"], expected.len());
        assert_eq!(
            summary["dropped"].as_u64().unwrap()
                + summary["out"].as_u64().unwrap()
                + summary["failed"].as_u64().unwrap(),
            10_000
        );
        outputs.push(run.stdout);
    }
    assert_eq!(
        outputs[0], outputs[1],
        "Rust and Python outputs are identical"
    );
}

#[test]
fn readme_example_keeps_the_event_over_the_minimum() {
    let wasm = plugin("threshold");
    let run = weir(
        &[
            "plugin",
            "run",
            path(&wasm),
            "--config",
            "field=amount",
            "--config",
            "min=50",
        ],
        b"{\"amount\":10}\n{\"amount\":60}\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "{\"amount\":60}\n");
    let summary = run.summary();
    assert_eq!(
        (
            summary["in"].as_u64(),
            summary["out"].as_u64(),
            summary["dropped"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
}

#[test]
fn check_reports_the_world_of_every_example() {
    for (name, world) in [
        ("threshold", "handler"),
        ("threshold-py", "handler"),
        ("enrich", "handler"),
        ("split", "handler"),
        ("stats", "aggregator"),
        ("login-burst", "pattern"),
    ] {
        let wasm = plugin(name);
        let run = weir(&["plugin", "check", path(&wasm), "--json"], b"");
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        let report: Value = serde_json::from_str(&run.stdout).expect("one JSON object");
        assert_eq!(report["world"], world, "{name}");
        assert_eq!(report["name"], name);
        assert!(report["size_bytes"].as_u64().unwrap() > 1000);
        assert!(
            report["exports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e.as_str().unwrap().starts_with("weir:plugin/"))
        );
    }
}

#[test]
fn check_refuses_bad_files_with_one_line_naming_file_and_cause() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(plugin("threshold")).unwrap();
    let files = [
        (
            "text.wasm",
            b"hello, world".to_vec(),
            "not a WebAssembly file",
        ),
        (
            "core.wasm",
            b"\0asm\x01\0\0\0".to_vec(),
            "a core WebAssembly module, not a component",
        ),
        (
            "truncated.wasm",
            good[..good.len() / 3].to_vec(),
            "invalid component",
        ),
    ];
    let mut cases: Vec<(std::path::PathBuf, &str)> = Vec::new();
    for (name, bytes, cause) in &files {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        cases.push((p, cause));
    }
    cases.push((plugin("wrong-world"), "exports no weir:plugin world"));
    cases.push((dir.path().join("missing.wasm"), "cannot read"));
    for (file, cause) in cases {
        let run = weir(&["plugin", "check", path(&file)], b"");
        assert_eq!(run.code, 2, "{}: {}", file.display(), run.stderr);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {:?}", lines);
        assert!(
            lines[0].starts_with(&format!("error: {}: ", file.display())),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains(cause), "{}", lines[0]);
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn run_stops_an_infinite_loop_within_twice_its_deadline() {
    let wasm = plugin("loop-forever");
    let run = weir(
        &["plugin", "run", path(&wasm), "--timeout-ms", "300"],
        b"{\"a\":1}\n",
    );
    assert_eq!(run.code, 1);
    let failures = run.failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["kind"], "deadline");
    let error = failures[0]["error"].as_str().unwrap();
    assert!(
        error.contains("plugin loop-forever") && error.contains("deadline of 300 ms"),
        "{error}"
    );
    let call_ns = run.summary()["ns_per_event"].as_f64().unwrap();
    assert!(call_ns < 600e6, "stopped after {} ms", call_ns / 1e6);
}

#[test]
fn run_stops_a_memory_bomb_at_its_cap() {
    let wasm = plugin("memory-bomb");
    let run = weir(
        &["plugin", "run", path(&wasm), "--memory-mb", "48"],
        b"{}\n",
    );
    assert_eq!(run.code, 1);
    let failures = run.failures();
    assert_eq!(failures[0]["kind"], "memory");
    assert!(
        failures[0]["error"]
            .as_str()
            .unwrap()
            .contains("past its limit of 48 MiB"),
        "{}",
        failures[0]
    );
}

#[test]
fn run_reports_stack_overflow_and_oversized_output_as_faults() {
    for (name, kind) in [
        ("deep-recursion", "stack_overflow"),
        ("huge-output", "contract"),
    ] {
        let wasm = plugin(name);
        let run = weir(
            &["plugin", "run", path(&wasm), "--timeout-ms", "5000"],
            b"{}\n",
        );
        assert_eq!(run.code, 1, "{name}");
        assert_eq!(run.failures()[0]["kind"], kind, "{name}: {}", run.stderr);
    }
}

#[test]
fn run_fails_only_the_event_that_panics_and_goes_on() {
    let wasm = plugin("panic");
    let input = "{\"i\":1}\n{\"i\":2}\n{\"i\":3,\"poison\":true}\n{\"i\":4}\n{\"i\":5}\n";
    let run = weir(&["plugin", "run", path(&wasm)], input.as_bytes());
    assert_eq!(run.code, 1);
    let kept: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(kept, ["{\"i\":1}", "{\"i\":2}", "{\"i\":4}", "{\"i\":5}"]);
    let failures = run.failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["line"], 3);
    assert_eq!(failures[0]["kind"], "trap");
    assert!(
        failures[0]["error"]
            .as_str()
            .unwrap()
            .contains("poisoned event"),
        "{}",
        failures[0]
    );
}

#[test]
fn run_refuses_the_wrong_world_and_a_rejected_config_in_one_line() {
    let wrong = plugin("wrong-world");
    let run = weir(&["plugin", "run", path(&wrong)], b"{}\n");
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    let threshold = plugin("threshold");
    let run = weir(
        &[
            "plugin",
            "run",
            path(&threshold),
            "--config",
            "field=amount",
        ],
        b"{}\n",
    );
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr.trim(),
        format!(
            "error: plugin threshold (version {}) init: returned an error: invalid-config: config key \"min\" is required (a number)",
            &sha256_prefix(&threshold)
        )
    );
}

fn sha256_prefix(file: &Path) -> String {
    let run = weir(&["plugin", "check", path(file), "--json"], b"");
    let report: Value = serde_json::from_str(&run.stdout).expect("check --json prints JSON");
    report["version"]
        .as_str()
        .expect("version is a string")
        .to_owned()
}

#[test]
fn run_drives_aggregators_and_patterns_per_key() {
    let stats = plugin("stats");
    let input = [
        json!({"key": "a", "time": 1, "payload": {"v": 1}}),
        json!({"key": "b", "time": 2, "payload": {"v": 10}}),
        json!({"key": "a", "time": 3, "payload": {"v": 3}}),
    ];
    let lines: String = input.iter().map(|e| format!("{e}\n")).collect();
    let run = weir(
        &[
            "plugin",
            "run",
            path(&stats),
            "--envelope",
            "--config",
            "field=v",
        ],
        lines.as_bytes(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let results: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results[0]["key"], "a");
    assert_eq!(results[0]["payload"]["sum"], json!(4.0));
    assert_eq!(results[1]["key"], "b");
    assert_eq!(results[1]["payload"]["count"], 1);

    let burst = plugin("login-burst");
    let mut events = Vec::new();
    for (user, outcome, time) in [
        ("ann", "fail", 0),
        ("ann", "fail", 10_000),
        ("bo", "fail", 11_000),
        ("ann", "fail", 20_000),
        ("ann", "success", 30_000),
        ("bo", "success", 31_000),
        ("cy", "fail", 0),
        ("cy", "fail", 1_000),
        ("cy", "fail", 2_000),
        ("cy", "success", 90_000),
    ] {
        events.push(json!({"key": user, "time": time, "payload": {"outcome": outcome}}));
    }
    let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
    let run = weir(
        &[
            "plugin",
            "run",
            path(&burst),
            "--envelope",
            "--batch-size",
            "3",
        ],
        lines.as_bytes(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let matches: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        matches.len(),
        1,
        "only ann's burst is inside the minute: {matches:?}"
    );
    assert_eq!(matches[0]["key"], "ann");
    assert_eq!(
        matches[0]["payload"],
        json!({"failures": 3, "first_failure": 0, "success": 30000})
    );
}
