//! The Kafka connector end to end: the real `weir` binary against a real Kafka-protocol
//! broker started by `scripts/kafka-broker.sh`, with topics made through the admin API.

mod common;

use std::time::{Duration, Instant};

use common::kafka::{
    Reader, brokers, check_per_key_order, create_topic, expected, produce, unique,
};
use common::{Workspace, http_get};

/// A pipeline reading `input` through `threshold` (min 50) into `output`; `extra` is
/// appended (more sections, or keys of the last table).
fn pipeline(brokers: &str, input: &str, group: &str, output: &str, extra: &str) -> String {
    format!(
        r#"
[server]
bind = "127.0.0.1:0"
[plugins]
dir = "{{plugins}}"
[sources.in]
type = "kafka"
brokers = "{brokers}"
topics = ["{input}"]
group = "{group}"
commit_interval = "200ms"
options = {{ "session.timeout.ms" = 2000, "heartbeat.interval.ms" = 500 }}
[stages.big]
type = "handler"
plugin = "threshold"
inputs = ["in"]
parallelism = 2
config = {{ field = "amount", min = 50 }}
[sinks.out]
type = "kafka"
brokers = "{brokers}"
topic = "{output}"
inputs = ["big"]
{extra}
"#
    )
}

/// One Kafka test at a time: each runs weir, a broker and a reader at full speed, and
/// two at once on a small machine stretch the timings they measure.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Topics {
    brokers: String,
    input: String,
    output: String,
    group: String,
}

fn topics(partitions: i32) -> Topics {
    let brokers = brokers();
    let input = unique("in");
    let output = unique("out");
    create_topic(&brokers, &input, partitions);
    create_topic(&brokers, &output, partitions);
    Topics {
        brokers,
        input,
        output,
        group: unique("group"),
    }
}

#[test]
fn keyed_events_pass_a_wasm_stage_complete_and_in_key_order() {
    let _serial = serial();
    const EVENTS: u64 = 200_000;
    let t = topics(4);
    produce(&t.brokers, &t.input, 0..EVENTS, 64);
    let ws = Workspace::new();
    ws.pipeline(&pipeline(&t.brokers, &t.input, &t.group, &t.output, ""));
    let mut weir = ws.start();
    let want = expected(0..EVENTS);
    let mut reader = Reader::new(&t.brokers, &t.output, true);
    let started = Instant::now();
    let complete = reader.read_until(Duration::from_secs(30), |r| r.len() >= want.len());
    let elapsed = started.elapsed();
    reader.read_rest(Duration::from_secs(1));
    assert!(
        complete,
        "{} of {} records arrived:\n{}",
        reader.records.len(),
        want.len(),
        weir.log()
    );
    let duplicates = check_per_key_order(&reader.records);
    assert_eq!(duplicates, 0, "a clean run writes each event once");
    let mut got = reader.seqs();
    got.sort_unstable();
    assert_eq!(got, want);
    eprintln!("{} events in, {} out in {elapsed:?}", EVENTS, want.len());
    let address = weir.address();
    let (status, body) = http_get(&address, "/readyz");
    assert_eq!(status, 200, "{body}");
    let (_, metrics) = http_get(&address, "/metrics");
    assert!(
        metrics.contains("weir_kafka_commits_total{component=\"in\",kind=\"ok\"}"),
        "{metrics}"
    );
    weir.signal("TERM");
    let done = weir.finish(Duration::from_secs(30));
    assert_eq!(done.code, 0, "{}", done.stderr);
}

/// Reads until at least `at_least` records are out, then kills `weir` without warning.
fn kill_when(weir: &mut common::Running, reader: &mut Reader, at_least: usize) -> f64 {
    // The rate is taken from the first record out, so the group join does not dilute it.
    assert!(
        reader.read_until(Duration::from_secs(60), |r| !r.is_empty()),
        "no record out:\n{}",
        weir.log()
    );
    let (started, first) = (Instant::now(), reader.records.len());
    assert!(
        reader.read_until(Duration::from_secs(60), |r| r.len() >= at_least),
        "only {} records before the kill:\n{}",
        reader.records.len(),
        weir.log()
    );
    let rate = (reader.records.len() - first) as f64 / started.elapsed().as_secs_f64();
    weir.signal("KILL");
    rate
}

/// Records a killed run may write again: those written since its last commit (at most one
/// 200 ms commit interval, doubled for the commit's own round trip and scheduling on a busy
/// machine) plus what was in flight past the commit point: the source's hand-off (2 batches)
/// and two channels of 8 batches of 512 events.
fn repeat_bound(rate: f64) -> usize {
    (rate * 0.4) as usize + 18 * 512
}

/// Kills the first run a quarter of the way through, restarts it, and checks that every
/// expected event arrives, keys in order; returns the first run's output rate, the
/// duplicates, and the running second instance.
fn kill_and_restart(
    ws: &Workspace,
    reader: &mut Reader,
    want: &[u64],
) -> (f64, usize, common::Running) {
    let mut first = ws.start();
    let rate = kill_when(&mut first, reader, want.len() / 4);
    let _ = first.finish(Duration::from_secs(10));
    let mut second = ws.start();
    let complete = reader.read_distinct(Duration::from_secs(120), want.len());
    reader.read_rest(Duration::from_secs(1));
    if !complete {
        // Where the restarted instance stands, to tell a stalled source from a stuck sink.
        let (_, metrics) = http_get(&second.address(), "/metrics");
        let counters = metrics
            .lines()
            .filter(|l| l.starts_with("weir_events_") || l.starts_with("weir_kafka_"))
            .filter(|l| !l.contains("_bucket"));
        counters.for_each(|l| eprintln!("{l}"));
    }
    assert!(
        complete,
        "{} of {} events arrived:\n{}",
        reader.distinct(),
        want.len(),
        second.log()
    );
    let duplicates = check_per_key_order(&reader.records);
    let mut got = reader.seqs();
    got.sort_unstable();
    got.dedup();
    assert_eq!(got, want, "every expected event arrives");
    (rate, duplicates, second)
}

#[test]
fn kill_9_and_restart_lose_nothing_and_duplicate_at_most_a_commit_interval() {
    let _serial = serial();
    const EVENTS: u64 = 200_000;
    let t = topics(4);
    produce(&t.brokers, &t.input, 0..EVENTS, 64);
    let ws = Workspace::new();
    ws.pipeline(&pipeline(&t.brokers, &t.input, &t.group, &t.output, ""));
    let want = expected(0..EVENTS);
    let mut reader = Reader::new(&t.brokers, &t.output, true);
    let (rate, duplicates, second) = kill_and_restart(&ws, &mut reader, &want);
    let bound = repeat_bound(rate);
    eprintln!("kill -9: {duplicates} duplicates at {rate:.0} records/s out (bound {bound})");
    assert!(
        duplicates <= bound,
        "{duplicates} duplicates, bound {bound}"
    );
    second.signal("TERM");
    assert_eq!(second.finish(Duration::from_secs(30)).code, 0);
}

fn exactly_once_pipeline(t: &Topics, transactional_id: &str) -> String {
    pipeline(
        &t.brokers,
        &t.input,
        &t.group,
        &t.output,
        // A transaction a killed instance left open is aborted by the next producer with
        // the same id; the timeout bounds it should the broker wait instead.
        &format!(
            "transactional_id = \"{transactional_id}\"\noptions = {{ \"transaction.timeout.ms\" = 10000 }}"
        ),
    )
    .replace(
        "commit_interval = \"200ms\"",
        "commit_interval = \"200ms\"\nexactly_once = true",
    )
}

#[test]
fn exactly_once_across_a_restart_writes_each_event_once() {
    let _serial = serial();
    const EVENTS: u64 = 100_000;
    let t = topics(4);
    produce(&t.brokers, &t.input, 0..EVENTS, 64);
    let ws = Workspace::new();
    ws.pipeline(&exactly_once_pipeline(&t, &unique("txn")));
    let want = expected(0..EVENTS);
    let mut reader = Reader::new(&t.brokers, &t.output, true);
    let mut first = ws.start();
    assert!(
        reader.read_until(Duration::from_secs(60), |r| r.len() >= want.len() / 4),
        "{}",
        first.log()
    );
    first.signal("TERM");
    let stopped = first.finish(Duration::from_secs(30));
    assert_eq!(stopped.code, 0, "{}", stopped.stderr);

    let mut second = ws.start();
    let complete = reader.read_distinct(Duration::from_secs(60), want.len());
    reader.read_rest(Duration::from_secs(2));
    assert!(
        complete,
        "{} of {}:\n{}",
        reader.distinct(),
        want.len(),
        second.log()
    );
    assert_eq!(check_per_key_order(&reader.records), 0, "exactly once");
    let mut got = reader.seqs();
    got.sort_unstable();
    assert_eq!(got, want);
    second.signal("TERM");
    assert_eq!(second.finish(Duration::from_secs(30)).code, 0);
}

#[test]
fn exactly_once_kill_9_resumes_from_the_last_committed_transaction() {
    let _serial = serial();
    const EVENTS: u64 = 100_000;
    let t = topics(4);
    produce(&t.brokers, &t.input, 0..EVENTS, 64);
    let ws = Workspace::new();
    let id = unique("txn");
    ws.pipeline(&exactly_once_pipeline(&t, &id));
    let want = expected(0..EVENTS);
    let mut reader = Reader::new(&t.brokers, &t.output, true);
    let (rate, duplicates, second) = kill_and_restart(&ws, &mut reader, &want);
    // The only repeats are the records of the transaction the kill left open: the new
    // producer aborts it and the group resumes from the last committed transaction. A
    // broker that hides aborted records from read_committed readers shows none; the
    // test broker shows them, so here they are counted and bounded by one commit interval
    // of output.
    let bound = repeat_bound(rate);
    eprintln!(
        "exactly-once kill -9: {duplicates} records of the aborted transaction visible at {rate:.0} records/s (bound {bound})"
    );
    assert!(duplicates <= bound, "{duplicates} repeats, bound {bound}");
    second.signal("TERM");
    assert_eq!(second.finish(Duration::from_secs(30)).code, 0);
}

#[test]
fn two_instances_share_the_partitions_and_one_finishes_when_the_other_dies() {
    let _serial = serial();
    const EVENTS: u64 = 60_000;
    let t = topics(4);
    produce(&t.brokers, &t.input, 0..EVENTS, 64);
    // Slow sinks (one batch of 200 each 20 ms) keep the stream going long enough to kill
    // one instance halfway.
    let slow = "overload = { delay = \"20ms\" }";
    let config = pipeline(&t.brokers, &t.input, &t.group, &t.output, slow)
        .replace("[sources.in]", "[flow]\nbatch_size = 200\n[sources.in]");
    let want = expected(0..EVENTS);
    let (a_ws, b_ws) = (Workspace::new(), Workspace::new());
    a_ws.pipeline(&config);
    b_ws.pipeline(&config);
    let mut a = a_ws.start();
    a.wait_for("partitions assigned", Duration::from_secs(30));
    let mut b = b_ws.start();
    let line = b.wait_for("partitions assigned", Duration::from_secs(30));
    assert!(
        !line.contains("partitions=0"),
        "the second instance got partitions: {line}"
    );
    let mut reader = Reader::new(&t.brokers, &t.output, true);
    assert!(reader.read_until(Duration::from_secs(60), |r| r.len() >= want.len() / 4));
    a.signal("KILL");
    let _ = a.finish(Duration::from_secs(10));
    b.wait_for("partitions=4", Duration::from_secs(60));
    let complete = reader.read_distinct(Duration::from_secs(120), want.len());
    assert!(
        complete,
        "the survivor did not finish the stream:\n{}",
        b.log()
    );
    let mut got = reader.seqs();
    got.sort_unstable();
    got.dedup();
    assert_eq!(got, want);
    b.signal("TERM");
    assert_eq!(b.finish(Duration::from_secs(30)).code, 0);
}

fn metric(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"))
}

#[test]
fn a_full_pipeline_pauses_partitions_and_stays_in_the_group() {
    let _serial = serial();
    const EVENTS: u64 = 1_200;
    let t = topics(4);
    produce(&t.brokers, &t.input, 0..EVENTS, 64);
    // One batch of 50 a second through the sink: about 12 s for the whole stream, four
    // times `max.poll.interval.ms`.
    let config = pipeline(
        &t.brokers,
        &t.input,
        &t.group,
        &t.output,
        "overload = { delay = \"1s\" }",
    )
    .replace(
        "[sources.in]",
        "[flow]\nbatch_size = 50\nchannel_capacity = 1\n[sources.in]",
    )
    .replace(
        "\"heartbeat.interval.ms\" = 500",
        "\"heartbeat.interval.ms\" = 500, \"max.poll.interval.ms\" = 3000",
    );
    let ws = Workspace::new();
    ws.pipeline(&config);
    let mut weir = ws.start();
    let address = weir.address();
    let want = expected(0..EVENTS);
    let mut reader = Reader::new(&t.brokers, &t.output, true);
    let mut paused: f64 = 0.0;
    for _ in 0..14 {
        reader.read_until(Duration::from_millis(500), |_| false);
        let (_, metrics) = http_get(&address, "/metrics");
        paused = paused.max(metric(
            &metrics,
            "weir_kafka_paused_partitions{component=\"in\"}",
        ));
    }
    assert!(paused >= 1.0, "partitions paused while the sink is slow");
    assert!(
        reader.records.len() < want.len(),
        "the stream is still going"
    );
    let complete = reader.read_until(Duration::from_secs(60), |r| r.len() >= want.len());
    assert!(complete, "{}", weir.log());
    let (_, metrics) = http_get(&address, "/metrics");
    let revoked = metric(
        &metrics,
        "weir_kafka_rebalances_total{component=\"in\",kind=\"revoke\"}",
    );
    let assigned = metric(
        &metrics,
        "weir_kafka_rebalances_total{component=\"in\",kind=\"assign\"}",
    );
    assert_eq!((assigned, revoked), (1.0, 0.0), "no rebalance while paused");
    assert_eq!(check_per_key_order(&reader.records), 0);
    weir.signal("TERM");
    assert_eq!(weir.finish(Duration::from_secs(30)).code, 0);
}

/// A broker of the test's own on `port`, to stop and start.
struct Broker(std::process::Child);

impl Broker {
    /// A broker keeping its data in memory: it loses everything when stopped.
    fn start(port: u16) -> Self {
        Self::spawn(port, "memory://tansu/", "tansu_cluster", &[])
    }

    /// A broker keeping topics, records and group offsets in the S3 test store, under
    /// `cluster`: stopped and started again on the same port, it carries on where it was.
    fn durable(port: u16, s3: &str, cluster: &str) -> Self {
        let env = [
            ("AWS_ENDPOINT", s3),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_ACCESS_KEY_ID", "weir"),
            ("AWS_SECRET_ACCESS_KEY", "weir"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ];
        Self::spawn(port, "s3://weir/", cluster, &env)
    }

    fn spawn(port: u16, storage: &str, cluster: &str, env: &[(&str, &str)]) -> Self {
        let child = std::process::Command::new(common::kafka::broker_binary())
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://127.0.0.1:{port}"),
                "--advertised-listener-url",
                &format!("tcp://127.0.0.1:{port}"),
                "--storage-engine",
                storage,
                "--cluster-id",
                cluster,
            ])
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("broker starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "broker listens on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self(child)
    }
}

impl Broker {
    /// Stops the broker as an operator would, letting it finish what it was writing.
    fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Drop kills what did not stop in time.
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_ready(address: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let (status, body) = http_get(address, "/readyz");
        if status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "readyz stayed {status} ({body}) for {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// [`pipeline`] with clients that notice a broker coming back within a second or so.
fn reconnecting_pipeline(
    brokers: &str,
    input: &str,
    group: &str,
    output: &str,
    extra: &str,
) -> String {
    pipeline(brokers, input, group, output, extra).replace(
        "\"heartbeat.interval.ms\" = 500",
        "\"heartbeat.interval.ms\" = 500, \"topic.metadata.refresh.interval.ms\" = 1000, \"reconnect.backoff.max.ms\" = 500",
    )
}

/// Waits until `/readyz` answers 503 with `reason` (such as `in: no Kafka broker reachable`).
fn wait_not_ready(address: &str, reason: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let (status, why) = http_get(address, "/readyz");
        if why.contains(reason) {
            assert_eq!(status, 503);
            return;
        }
        assert!(Instant::now() < deadline, "readyz said {status} {why}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn an_unreachable_broker_makes_weir_not_ready_until_it_comes_back() {
    let _serial = serial();
    let port = free_port();
    let brokers = format!("127.0.0.1:{port}");
    let (input, output, group) = (unique("in"), unique("out"), unique("group"));
    let ws = Workspace::new();
    ws.pipeline(&reconnecting_pipeline(
        &brokers, &input, &group, &output, "",
    ));
    let mut weir = ws.start();
    let address = weir.address();
    wait_not_ready(
        &address,
        "in: no Kafka broker reachable",
        Duration::from_secs(20),
    );

    let broker = Broker::start(port);
    create_topic(&brokers, &input, 2);
    create_topic(&brokers, &output, 2);
    produce(&brokers, &input, 0..2_000, 16);
    let want = expected(0..2_000);
    let mut reader = Reader::new(&brokers, &output, true);
    let complete = reader.read_until(Duration::from_secs(60), |r| r.len() >= want.len());
    assert!(
        complete,
        "{} of {}:\n{}",
        reader.records.len(),
        want.len(),
        weir.log()
    );
    wait_ready(&address, Duration::from_secs(20));
    let mut got = reader.seqs();
    got.sort_unstable();
    assert_eq!(got, want);

    drop(broker);
    weir.signal("TERM");
    let _ = weir.finish(Duration::from_secs(30));
}

#[test]
fn a_broker_stopped_and_started_mid_run_loses_nothing() {
    let _serial = serial();
    const EVENTS: u64 = 100_000;
    let s3 = common::kafka::s3_store();
    let port = free_port();
    let brokers = format!("127.0.0.1:{port}");
    let cluster = unique("cluster");
    let broker = Broker::durable(port, &s3, &cluster);
    let (input, output, group) = (unique("in"), unique("out"), unique("group"));
    create_topic(&brokers, &input, 4);
    create_topic(&brokers, &output, 4);
    produce(&brokers, &input, 0..EVENTS, 64);
    let want = expected(0..EVENTS);
    let ws = Workspace::new();
    // A slowed sink, so that the stop falls mid-stream and finds events in flight.
    let slow = "overload = { delay = \"20ms\" }";
    ws.pipeline(&reconnecting_pipeline(
        &brokers, &input, &group, &output, slow,
    ));
    let mut weir = ws.start();
    let address = weir.address();
    let mut reader = Reader::new(&brokers, &output, true);
    assert!(
        reader.read_distinct(Duration::from_secs(60), want.len() / 4),
        "{} of {} before the stop:\n{}",
        reader.distinct(),
        want.len(),
        weir.log()
    );

    // Stopped mid-stream: the source says so through readiness.
    let written_before = common::component_counter(&address, "out", "events_out");
    broker.stop();
    let stopped_at = reader.distinct();
    assert!(
        written_before < want.len() as u64,
        "the stream ended before the broker stopped"
    );
    // The sink or the source, whichever notices first.
    wait_not_ready(
        &address,
        "no Kafka broker reachable",
        Duration::from_secs(30),
    );
    // Still not ready more than one statistics interval (5 s) later: only a broker back
    // makes it ready.
    std::thread::sleep(Duration::from_secs(7));
    let (status, why) = http_get(&address, "/readyz");
    assert_eq!(status, 503, "ready while the broker is down: {why}");
    let broker = Broker::durable(port, &s3, &cluster);

    let complete = reader.read_distinct(Duration::from_secs(180), want.len());
    reader.read_rest(Duration::from_secs(1));
    assert!(
        complete,
        "{} of {} after the restart (stopped at {stopped_at}):\n{}",
        reader.distinct(),
        want.len(),
        weir.log()
    );
    wait_ready(&address, Duration::from_secs(30));
    // At least once, not in key order: the test broker, restarted, can acknowledge a batch
    // it does not keep (delivery reports with offsets the partition has passed); it arrives
    // when the source reads it again, after later records of its keys (see the README).
    let mut got = reader.seqs();
    let duplicates = got.len() - reader.distinct();
    got.sort_unstable();
    got.dedup();
    assert_eq!(got, want, "every expected event arrives");
    let log = weir.log();
    assert!(
        log.contains("no Kafka broker reachable"),
        "the outage is logged:\n{log}"
    );
    eprintln!(
        "broker restart: stopped at {stopped_at} of {} events out; {duplicates} duplicates",
        want.len()
    );
    weir.signal("TERM");
    assert_eq!(weir.finish(Duration::from_secs(30)).code, 0);
    drop(broker);
}

/// Per (key, window start) of 1,000 ms of `seq` as event time: (events, sum of amounts).
fn windows_of(
    range: std::ops::Range<u64>,
    keys: u64,
) -> std::collections::BTreeMap<(String, i64), (u64, u64)> {
    let mut out = std::collections::BTreeMap::new();
    for seq in range {
        let (key, value) = common::kafka::event(seq, keys);
        let entry = out
            .entry((key, (seq as i64 / 1_000) * 1_000))
            .or_insert((0, 0));
        entry.0 += 1;
        entry.1 += value["amount"].as_u64().expect("amount");
    }
    out
}

#[test]
fn a_window_stage_on_kafka_survives_kill_9_with_the_same_results() {
    let _serial = serial();
    const EVENTS: u64 = 60_000;
    const KEYS: u64 = 64;
    let t = topics(4);
    produce(&t.brokers, &t.input, 0..EVENTS, KEYS);
    // One event per key far ahead: every partition's event time passes every window.
    produce(
        &t.brokers,
        &t.input,
        EVENTS + 100_000..EVENTS + 100_000 + KEYS,
        KEYS,
    );
    let want = windows_of(0..EVENTS, KEYS);
    let ws = Workspace::new();
    ws.pipeline(&format!(
        r#"
[server]
bind = "127.0.0.1:0"
[state]
stage_checkpoint_interval = "200ms"
[sources.in]
type = "kafka"
brokers = "{brokers}"
topics = ["{input}"]
group = "{group}"
commit_interval = "200ms"
options = {{ "session.timeout.ms" = 2000, "heartbeat.interval.ms" = 500 }}
[stages.win]
type = "window"
inputs = ["in"]
group_by = ["key"]
time_field = "seq"
window = {{ tumbling = "1s" }}
parallelism = 2
aggregations = {{ n = "count", total = {{ sum = "amount" }} }}
[sinks.out]
type = "file"
path = "out.jsonl"
inputs = ["win"]
[sinks.dead]
type = "file"
path = "dead.jsonl"
envelope = true
[dead_letter]
sink = "dead"
"#,
        brokers = t.brokers,
        input = t.input,
        group = t.group,
    ));
    let results = || {
        let text = std::fs::read_to_string(ws.path("out.jsonl")).unwrap_or_default();
        let mut got = std::collections::BTreeMap::new();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let key = (
                v["key"].as_str().unwrap_or_default().to_owned(),
                v["window_start"].as_i64().unwrap_or_default(),
            );
            let value = (
                v["n"].as_u64().unwrap_or_default(),
                v["total"].as_u64().unwrap_or_default(),
            );
            // A window emitted again after a restart must say the same.
            if let Some(before) = got.insert(key.clone(), value) {
                assert_eq!(before, value, "window {key:?} emitted twice, differently");
            }
        }
        got
    };
    // Two kills while results come out.
    for at in [EVENTS / 1_000 / 4, EVENTS / 1_000 / 2] {
        let mut weir = ws.start();
        let deadline = Instant::now() + Duration::from_secs(120);
        while results().len() < (at * KEYS) as usize {
            let dead = std::fs::read_to_string(ws.path("dead.jsonl")).unwrap_or_default();
            assert!(
                Instant::now() < deadline,
                "no results; dead letters:\n{}\n{}",
                dead.lines().take(3).collect::<Vec<_>>().join("\n"),
                weir.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        weir.signal("KILL");
        let _ = weir.finish(Duration::from_secs(10));
    }
    let mut weir = ws.start();
    let deadline = Instant::now() + Duration::from_secs(180);
    while results().len() < want.len() {
        assert!(
            Instant::now() < deadline,
            "{} of {} windows:\n{}",
            results().len(),
            want.len(),
            weir.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The results may all be in before this run has even started.
    weir.wait_for("pipeline running", Duration::from_secs(60));
    weir.signal("TERM");
    assert_eq!(weir.finish(Duration::from_secs(30)).code, 0);
    let got = results();
    for (window, value) in &want {
        assert_eq!(got.get(window), Some(value), "window {window:?}");
    }
}
