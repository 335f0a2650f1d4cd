//! The harness shared by the tests that run `weir run`: a workspace per test, a running
//! process whose stderr is read on a thread, and plain HTTP/1.0 calls.

#![allow(dead_code)]

pub mod kafka;
pub mod nats;
pub mod sse;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use weir_e2e::{plugin_dir, weir_binary};

/// A pipeline in its own temporary directory.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `pipeline.toml`, with `{plugins}` replaced by the plugin directory.
    pub fn pipeline(&self, text: &str) -> PathBuf {
        let text = text.replace("{plugins}", &plugin_dir().display().to_string());
        let path = self.path("pipeline.toml");
        std::fs::write(&path, text).expect("write pipeline");
        path
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(weir_binary());
        command
            .args(args)
            .current_dir(self.dir.path())
            .env(
                "WEIR_LOG",
                std::env::var("WEIR_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs `weir run pipeline.toml` to its end.
    pub fn run(&self, timeout: Duration) -> Finished {
        let child = self
            .command(&["run", "pipeline.toml"])
            .spawn()
            .expect("weir starts");
        Running::new(child).finish(timeout)
    }

    pub fn start(&self) -> Running {
        Running::new(
            self.command(&["run", "pipeline.toml"])
                .spawn()
                .expect("weir starts"),
        )
    }

    pub fn lines(&self, name: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(self.path(name)).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}")))
            .collect()
    }
}

/// A `weir run` process whose stderr is read on a thread.
pub struct Running {
    child: Child,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

pub struct Finished {
    pub code: i32,
    pub stderr: String,
}

impl Finished {
    pub fn summary(&self) -> Value {
        self.stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find_map(|v| v.get("summary").cloned())
            .unwrap_or_else(|| panic!("no summary in stderr:\n{}", self.stderr))
    }
}

impl Running {
    pub fn new(mut child: Child) -> Self {
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stdout.read_to_end(&mut sink);
        });
        Self {
            child,
            stderr: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `needle` and returns it.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no {needle:?} on stderr within {timeout:?}:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Everything written to stderr so far.
    pub fn log(&mut self) -> String {
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(100)) {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }

    /// The HTTP address, once the server listens.
    pub fn address(&mut self) -> String {
        let line = self.wait_for("http server listening", Duration::from_secs(30));
        let start = line.find("http://").expect("address in line") + "http://".len();
        let rest = &line[start..];
        rest[..rest.find('/').expect("path")].to_owned()
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn finish(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        let code = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "weir did not exit within {timeout:?}:\n{}",
                    self.drain().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.drain().join("\n");
        Finished { code, stderr }
    }

    fn drain(&mut self) -> Vec<String> {
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        std::mem::take(&mut self.seen)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.0 exchange: `method path` with `headers` (each ending `\r\n`) and `body`;
/// returns the status, the response head and the body.
pub fn http_request(
    address: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {address}\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("request head");
    stream.write_all(body).expect("request body");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let status = response[9..12].parse().expect("status code");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_owned(), body.to_owned())
}

pub fn http_get(address: &str, path: &str) -> (u16, String) {
    let (status, _, body) = http_request(address, "GET", path, "", b"");
    (status, body)
}

/// Counter `counter` (such as `events_in`) of component `name`, from `/api/v1/pipeline`;
/// 0 until the pipeline has started.
pub fn component_counter(address: &str, name: &str, counter: &str) -> u64 {
    let (status, body) = http_get(address, "/api/v1/pipeline");
    assert_eq!(status, 200, "{body}");
    let pipeline: Value = serde_json::from_str(&body).expect("json");
    pipeline["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .and_then(|c| c["counters"][counter].as_u64())
        .unwrap_or(0)
}

pub fn component(pipeline: &Value, name: &str) -> Value {
    pipeline["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no component {name} in {pipeline}"))
}

pub fn seqs(lines: &[Value], pointer: &str) -> Vec<u64> {
    lines
        .iter()
        .map(|l| {
            l.pointer(pointer)
                .and_then(Value::as_u64)
                .unwrap_or_else(|| panic!("no {pointer} in {l}"))
        })
        .collect()
}

pub fn http_post(address: &str, path: &str, body: &[u8]) -> (u16, String, String) {
    http_request(
        address,
        "POST",
        path,
        "Content-Type: application/x-ndjson\r\n",
        body,
    )
}

/// A small deterministic generator, seeded per run and printed, so a failure replays.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The acknowledged byte offset of file source `source`, saved in the state directory
/// `state`.
pub fn file_source_offset(ws: &Workspace, state: &str, source: &str) -> u64 {
    std::fs::read_to_string(ws.path(&format!("{state}/source-{source}.json")))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["offset"].as_u64())
        .unwrap_or(0)
}

/// Starts `weir run` three times and kills each with SIGKILL: once file source `source`
/// (of a `size`-byte file) has acknowledged between a tenth and nine tenths of what was
/// left, then after a random delay, so the kill falls anywhere in a checkpoint's cycle.
/// Returns the acknowledged offset after each kill.
pub fn kill_three_times(
    ws: &Workspace,
    state: &str,
    source: &str,
    size: u64,
    rng: &mut Lcg,
) -> Vec<u64> {
    let mut kills = Vec::new();
    for _ in 0..3 {
        let from = file_source_offset(ws, state, source);
        let target = from + (size - from) * (10 + rng.below(80)) / 100;
        let mut weir = ws.start();
        let deadline = Instant::now() + Duration::from_secs(120);
        while file_source_offset(ws, state, source) < target {
            assert!(Instant::now() < deadline, "no progress:\n{}", weir.log());
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        weir.signal("KILL");
        let _ = weir.finish(Duration::from_secs(10));
        kills.push(file_source_offset(ws, state, source));
    }
    kills
}
