//! The NATS side of the end-to-end tests: the server `scripts/nats-server.sh` runs (or one a
//! test starts and stops itself), streams, a publisher of keyed test events, and a reader
//! of a whole stream.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use serde_json::Value;

/// The server's URL: `$WEIR_NATS_URL` (set by scripts/test.sh), else the one
/// `scripts/nats-server.sh start` starts (or finds running).
pub fn server() -> String {
    weir_e2e::broker_address("WEIR_NATS_URL", "nats-server.sh")
}

/// A server of a test's own, on a fixed port and store, to stop and start again.
pub struct OwnServer {
    pub url: String,
    port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnServer {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut server = Self {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            store: tempfile::tempdir().expect("store dir"),
            child: None,
        };
        server.up();
        server
    }

    /// Starts the server (again), on the same port and store.
    pub fn up(&mut self) {
        let child = Command::new(weir_e2e::script_output("nats-server.sh", "install"))
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server the way an operator does (SIGTERM), and waits for it to go.
    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A stream or consumer name no other test or run uses (no dots).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    )
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn context(url: &str) -> jetstream::Context {
    let client = async_nats::connect(url).await.expect("connect to nats");
    jetstream::new(client)
}

/// Makes file-backed stream `name` over `subjects`, with a two-minute duplicate window.
pub fn create_stream(url: &str, name: &str, subjects: &[String]) {
    runtime().block_on(async {
        context(url)
            .await
            .create_stream(stream::Config {
                name: name.to_owned(),
                subjects: subjects.to_vec(),
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .expect("stream made");
    });
}

/// The test event `seq`: key `k{seq % keys}`, amount `(seq * 7919) % 100`.
pub fn event(seq: u64, keys: u64) -> (String, Value) {
    let key = format!("k{}", seq % keys);
    let value = serde_json::json!({"seq": seq, "key": key, "amount": (seq * 7919) % 100});
    (key, value)
}

/// Publishes events `range` to `{prefix}.{key}` and waits for every publish ack.
pub fn publish(url: &str, prefix: &str, range: std::ops::Range<u64>, keys: u64) {
    runtime().block_on(async {
        let js = context(url).await;
        let mut acks = Vec::with_capacity(4096);
        for seq in range {
            let (key, value) = event(seq, keys);
            acks.push(
                js.publish(format!("{prefix}.{key}"), value.to_string().into())
                    .await
                    .expect("publish"),
            );
            if acks.len() == 4096 {
                for ack in acks.drain(..) {
                    ack.await.expect("publish ack");
                }
            }
        }
        for ack in acks {
            ack.await.expect("publish ack");
        }
    });
}

/// Publishes raw `payload` to `subject` and waits for its ack.
pub fn publish_raw(url: &str, subject: &str, payload: &[u8]) {
    runtime().block_on(async {
        context(url)
            .await
            .publish(subject.to_owned(), payload.to_vec().into())
            .await
            .expect("publish")
            .await
            .expect("publish ack");
    });
}

/// One message of a stream.
#[derive(Debug, Clone)]
pub struct Stored {
    pub subject: String,
    pub value: Value,
    pub headers: BTreeMap<String, String>,
}

/// Messages in `stream` now.
pub fn stored(url: &str, stream: &str) -> u64 {
    runtime().block_on(async {
        let js = context(url).await;
        let mut s = js.get_stream(stream).await.expect("stream");
        s.info().await.expect("info").state.messages
    })
}

/// The durable `consumer`'s counts on `stream`, for failure messages.
pub fn consumer_state(url: &str, stream: &str, consumer: &str) -> String {
    runtime().block_on(async {
        let js = context(url).await;
        let stored = match js.get_stream(stream).await {
            Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
            Err(e) => return format!("stream {stream}: {e}"),
        };
        let consumer: Result<consumer::PullConsumer, _> =
            js.get_consumer_from_stream(consumer, stream).await;
        match consumer {
            Ok(mut c) => match c.info().await {
                Ok(i) => format!(
                    "{stream} holds {stored}; consumer: pending {}, ack pending {}, redelivered {}, delivered {}, ack floor {}, waiting pulls {}",
                    i.num_pending,
                    i.num_ack_pending,
                    i.num_redelivered,
                    i.delivered.stream_sequence,
                    i.ack_floor.stream_sequence,
                    i.num_waiting
                ),
                Err(e) => format!("consumer {consumer:?}: {e}", consumer = c.cached_info().name),
            },
            Err(e) => format!("consumer: {e}"),
        }
    })
}

/// Waits until `stream` holds at least `n` messages; false on timeout.
pub fn wait_stored(url: &str, stream: &str, n: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if stored(url, stream) >= n {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Every message of `stream`, in stream order.
pub fn read_all(url: &str, stream: &str) -> Vec<Stored> {
    runtime().block_on(async {
        let js = context(url).await;
        let s = js.get_stream(stream).await.expect("stream");
        let reader = s
            .create_consumer(consumer::pull::Config {
                ack_policy: consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .expect("reader");
        let mut out = Vec::new();
        loop {
            let mut batch = reader
                .fetch()
                .max_messages(1000)
                .expires(Duration::from_millis(500))
                .messages()
                .await
                .expect("fetch");
            let before = out.len();
            while let Some(m) = batch.next().await {
                let m = m.expect("message");
                let headers = m
                    .headers
                    .as_ref()
                    .map(|h| {
                        h.iter()
                            .map(|(k, v)| {
                                let name: &str = k.as_ref();
                                (name.to_owned(), v[0].as_str().to_owned())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Stored {
                    subject: m.subject.to_string(),
                    value: serde_json::from_slice(&m.payload).unwrap_or(Value::Null),
                    headers,
                });
            }
            if out.len() == before {
                return out;
            }
        }
    })
}

/// The `seq` of every stored message, sorted.
pub fn seqs(messages: &[Stored]) -> Vec<u64> {
    let mut seqs: Vec<u64> = messages
        .iter()
        .filter_map(|m| m.value["seq"].as_u64())
        .collect();
    seqs.sort_unstable();
    seqs
}

/// Checks that per subject, sequence numbers only grow; returns how many repeat.
pub fn check_per_subject_order(messages: &[Stored]) -> usize {
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    let mut repeats = 0;
    for m in messages {
        let seq = m.value["seq"].as_u64().expect("seq");
        match last.get(m.subject.as_str()) {
            Some(&prev) if seq == prev => repeats += 1,
            Some(&prev) => assert!(seq > prev, "subject {}: {seq} after {prev}", m.subject),
            None => {}
        }
        last.insert(&m.subject, seq);
    }
    repeats
}

/// Sequence numbers of `range` that pass the `threshold` stage (amount above 50).
pub fn expected(range: std::ops::Range<u64>) -> Vec<u64> {
    range.filter(|s| (s * 7919) % 100 > 50).collect()
}

/// Reads a JSON-lines file, if it exists.
pub fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
