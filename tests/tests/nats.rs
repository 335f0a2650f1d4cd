//! The NATS and JetStream connectors end to end: the real `weir` binary against a real
//! `nats-server` with JetStream (Debian's package, started by `scripts/nats-server.sh`, or
//! by a test that stops and starts its own).

mod common;

use std::time::{Duration, Instant};

use common::nats::{
    OwnServer, check_per_subject_order, consumer_state, create_stream, expected, lines, publish,
    publish_raw, read_all, seqs, server, stored, unique, wait_stored,
};
use common::{Workspace, http_get};

/// One test at a time: each runs weir and a server at full speed.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An input stream `IN_*` over `in_*.>` and an output stream `OUT_*` over `out_*.>`.
struct Streams {
    url: String,
    input: String,
    in_subjects: String,
    output: String,
    out_subjects: String,
    consumer: String,
}

fn streams(url: &str) -> Streams {
    let id = unique("t");
    let s = Streams {
        url: url.to_owned(),
        input: format!("IN_{id}"),
        in_subjects: format!("in_{id}"),
        output: format!("OUT_{id}"),
        out_subjects: format!("out_{id}"),
        consumer: format!("weir_{id}"),
    };
    create_stream(url, &s.input, &[format!("{}.>", s.in_subjects)]);
    create_stream(url, &s.output, &[format!("{}.>", s.out_subjects)]);
    s
}

/// JetStream `input` through `threshold` (min 50) to `out_*.{key}`; `extra` is appended.
fn pipeline(s: &Streams, extra: &str) -> String {
    format!(
        r#"
[server]
bind = "127.0.0.1:0"
[plugins]
dir = "{{plugins}}"
[sources.in]
type = "jetstream"
servers = "{url}"
stream = "{input}"
consumer = "{consumer}"
ack_wait = "2s"
[stages.big]
type = "handler"
plugin = "threshold"
inputs = ["in"]
config = {{ field = "amount", min = 50 }}
[sinks.out]
type = "jetstream"
servers = "{url}"
subject = "{out}.{{key}}"
inputs = ["big"]
{extra}
"#,
        url = s.url,
        input = s.input,
        consumer = s.consumer,
        out = s.out_subjects,
    )
}

/// Asserts the output stream holds exactly `want`, each once, and with `ordered` in order
/// per subject. (Messages a killed instance held come again after `ack_wait`, behind
/// later ones, so runs with a kill or two instances keep no order.)
fn assert_exactly(s: &Streams, want: &[u64], ordered: bool, weir: &mut common::Running) {
    let out = read_all(&s.url, &s.output);
    if ordered {
        assert_eq!(
            check_per_subject_order(&out),
            0,
            "the output stream holds repeats"
        );
    }
    let got = seqs(&out);
    assert_eq!(
        got.len(),
        want.len(),
        "output holds {} of {} events:\n{}",
        got.len(),
        want.len(),
        weir.log()
    );
    assert_eq!(got, want);
}

#[test]
fn jetstream_events_pass_a_wasm_stage_complete_and_in_subject_order() {
    let _serial = serial();
    const EVENTS: u64 = 200_000;
    let s = streams(&server());
    publish(&s.url, &s.in_subjects, 0..EVENTS, 64);
    let ws = Workspace::new();
    ws.pipeline(&pipeline(&s, ""));
    let mut weir = ws.start();
    let want = expected(0..EVENTS);
    let started = Instant::now();
    let complete = wait_stored(
        &s.url,
        &s.output,
        want.len() as u64,
        Duration::from_secs(60),
    );
    let elapsed = started.elapsed();
    assert!(complete, "output incomplete:\n{}", weir.log());
    assert_exactly(&s, &want, true, &mut weir);
    eprintln!("{EVENTS} events in, {} out in {elapsed:?}", want.len());
    let address = weir.address();
    let (status, body) = http_get(&address, "/readyz");
    assert_eq!(status, 200, "{body}");
    let (_, metrics) = http_get(&address, "/metrics");
    assert!(
        metrics.contains("weir_nats_publish_seconds_count{component=\"out\"}"),
        "{metrics}"
    );
    weir.signal("TERM");
    let done = weir.finish(Duration::from_secs(30));
    assert_eq!(done.code, 0, "{}", done.stderr);
}

#[test]
fn kill_9_then_restart_leaves_each_event_once_in_the_output_stream() {
    let _serial = serial();
    const EVENTS: u64 = 100_000;
    let s = streams(&server());
    publish(&s.url, &s.in_subjects, 0..EVENTS, 64);
    let want = expected(0..EVENTS);
    let ws = Workspace::new();
    ws.pipeline(&pipeline(&s, ""));
    let mut first = ws.start();
    assert!(
        wait_stored(
            &s.url,
            &s.output,
            want.len() as u64 / 3,
            Duration::from_secs(60)
        ),
        "no progress before the kill:\n{}",
        first.log()
    );
    first.signal("KILL");
    let _ = first.finish(Duration::from_secs(10));
    let at_kill = stored(&s.url, &s.output);
    let mut second = ws.start();
    // The killed run's unacked messages come again after ack_wait (2 s).
    assert!(
        wait_stored(
            &s.url,
            &s.output,
            want.len() as u64,
            Duration::from_secs(90)
        ),
        "output incomplete after the restart:\n{}",
        second.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_exactly(&s, &want, false, &mut second);
    let address = second.address();
    let (_, metrics) = http_get(&address, "/metrics");
    let redelivered = metric(
        &metrics,
        "weir_jetstream_redeliveries_total{component=\"in\"}",
    );
    eprintln!(
        "{at_kill} of {} out at the kill; {redelivered} messages delivered again, repeats removed by Nats-Msg-Id",
        want.len()
    );
    assert!(
        redelivered > 0.0,
        "the restart should see redeliveries:\n{metrics}"
    );
    second.signal("TERM");
    assert_eq!(second.finish(Duration::from_secs(30)).code, 0);
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_failing_event_is_nakd_redelivered_then_dead_lettered_with_its_delivery_count() {
    let _serial = serial();
    let s = streams(&server());
    // 300 events; the 151st is a JSON array, which threshold refuses (not a map).
    publish(&s.url, &s.in_subjects, 0..150, 8);
    publish_raw(&s.url, &format!("{}.bad", s.in_subjects), b"[1,2,3]");
    publish(&s.url, &s.in_subjects, 150..299, 8);
    let ws = Workspace::new();
    let dlq = ws.path("dead.jsonl");
    ws.pipeline(
        &pipeline(
            &s,
            &format!(
                r#"
[dead_letter]
sink = "dlq"
[sinks.dlq]
type = "file"
path = "{}"
envelope = true
"#,
                dlq.display()
            ),
        )
        .replace(
            "ack_wait = \"2s\"",
            "ack_wait = \"2s\"\nmax_deliver = 3\nnak_delay = \"200ms\"",
        ),
    );
    let mut weir = ws.start();
    let want = expected(0..299);
    assert!(
        wait_stored(
            &s.url,
            &s.output,
            want.len() as u64,
            Duration::from_secs(30)
        ),
        "output incomplete:\n{}",
        weir.log()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while lines(&dlq).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let dead = lines(&dlq);
    assert_eq!(
        dead.len(),
        1,
        "exactly the culprit is dead-lettered: {dead:?}"
    );
    let headers = &dead[0]["headers"];
    assert_eq!(dead[0]["payload"], serde_json::json!([1, 2, 3]));
    assert_eq!(headers["weir-nats-delivered"], "3", "{headers}");
    assert_eq!(
        headers["weir-dead-letter-kind"], "plugin_error",
        "{headers}"
    );
    assert_exactly(&s, &want, true, &mut weir);
    let address = weir.address();
    let (_, metrics) = http_get(&address, "/metrics");
    assert_eq!(
        metric(&metrics, "weir_jetstream_naks_total{component=\"in\"}"),
        2.0,
        "two naks before the last delivery:\n{metrics}"
    );
    weir.signal("TERM");
    assert_eq!(weir.finish(Duration::from_secs(30)).code, 0);
}

/// A pipeline writing everything a new consumer with `deliver` gets to `out.jsonl`.
fn replay(s: &Streams, ws: &Workspace, deliver: &str) -> Vec<u64> {
    ws.pipeline(&format!(
        r#"
[sources.in]
type = "jetstream"
servers = "{url}"
stream = "{input}"
consumer = "{consumer}"
deliver = {deliver}
[sinks.out]
type = "file"
path = "out.jsonl"
inputs = ["in"]
"#,
        url = s.url,
        input = s.input,
        consumer = unique("replay"),
    ));
    let weir = ws.start();
    // Done once nothing more comes for a second.
    let mut last = (0, Instant::now());
    while last.1.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(100));
        let n = lines(&ws.path("out.jsonl")).len();
        if n != last.0 {
            last = (n, Instant::now());
        }
    }
    weir.signal("TERM");
    let done = weir.finish(Duration::from_secs(30));
    assert_eq!(done.code, 0, "{}", done.stderr);
    let mut got: Vec<u64> = lines(&ws.path("out.jsonl"))
        .iter()
        .filter_map(|v| v["seq"].as_u64())
        .collect();
    got.sort_unstable();
    got
}

#[test]
fn replay_from_a_start_sequence_and_from_a_start_time() {
    let _serial = serial();
    let s = streams(&server());
    publish(&s.url, &s.in_subjects, 0..1000, 8);
    std::thread::sleep(Duration::from_millis(1100));
    let cut = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    std::thread::sleep(Duration::from_millis(1100));
    publish(&s.url, &s.in_subjects, 1000..1500, 8);
    // Stream sequences start at 1: sequence 400 holds event 399.
    let from_sequence = replay(&s, &Workspace::new(), "{ start_sequence = 400 }");
    assert_eq!(from_sequence, (399..1500).collect::<Vec<_>>());
    let from_time = replay(
        &s,
        &Workspace::new(),
        &format!("{{ start_time = \"{cut}\" }}"),
    );
    assert_eq!(from_time, (1000..1500).collect::<Vec<_>>());
}

#[test]
fn two_instances_share_one_durable_consumer_and_one_killed_loses_nothing() {
    let _serial = serial();
    const EVENTS: u64 = 100_000;
    let s = streams(&server());
    publish(&s.url, &s.in_subjects, 0..EVENTS, 64);
    let want = expected(0..EVENTS);
    let (a, b) = (Workspace::new(), Workspace::new());
    let text = pipeline(&s, "");
    a.pipeline(&text);
    b.pipeline(&text);
    let mut first = a.start();
    let mut second = b.start();
    let (first_at, second_at) = (first.address(), second.address());
    assert!(
        wait_stored(
            &s.url,
            &s.output,
            want.len() as u64 / 3,
            Duration::from_secs(60)
        ),
        "no progress:\n{}",
        first.log()
    );
    let taken = |address: &str| {
        let (_, metrics) = http_get(address, "/metrics");
        metric(&metrics, "weir_events_in_total{component=\"in\"}")
    };
    let (by_first, by_second) = (taken(&first_at), taken(&second_at));
    eprintln!("before the kill: first took {by_first}, second {by_second}");
    assert!(by_first > 0.0 && by_second > 0.0, "both share the consumer");
    first.signal("KILL");
    let _ = first.finish(Duration::from_secs(10));
    assert!(
        wait_stored(
            &s.url,
            &s.output,
            want.len() as u64,
            Duration::from_secs(90)
        ),
        "the survivor did not finish the stream:\n{}",
        second.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_exactly(&s, &want, false, &mut second);
    second.signal("TERM");
    assert_eq!(second.finish(Duration::from_secs(30)).code, 0);
}

#[test]
fn a_server_restart_mid_run_loses_nothing() {
    let _serial = serial();
    const EVENTS: u64 = 60_000;
    let mut own = OwnServer::start();
    let s = streams(&own.url);
    publish(&s.url, &s.in_subjects, 0..EVENTS, 64);
    let want = expected(0..EVENTS);
    let ws = Workspace::new();
    ws.pipeline(&pipeline(&s, "").replace("[sinks.out]", "[sinks.out]\nmax_in_flight = 2"));
    let mut weir = ws.start();
    let address = weir.address();
    assert!(
        wait_stored(
            &s.url,
            &s.output,
            want.len() as u64 / 4,
            Duration::from_secs(60)
        ),
        "no progress:\n{}",
        weir.log()
    );
    own.down();
    // Not ready while the server is away.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut saw_not_ready = false;
    while Instant::now() < deadline && !saw_not_ready {
        saw_not_ready = http_get(&address, "/readyz").0 == 503;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(saw_not_ready, "readyz stayed 200 with the server down");
    own.up();
    assert!(
        wait_stored(
            &s.url,
            &s.output,
            want.len() as u64,
            Duration::from_secs(90)
        ),
        "output incomplete after the server came back ({}):\n{}",
        consumer_state(&s.url, &s.input, &s.consumer),
        weir.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_exactly(&s, &want, false, &mut weir);
    let deadline = Instant::now() + Duration::from_secs(10);
    while http_get(&address, "/readyz").0 != 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(http_get(&address, "/readyz").0, 200, "ready again");
    assert!(weir.log().contains("lost the NATS connection"));
    weir.signal("TERM");
    assert_eq!(weir.finish(Duration::from_secs(30)).code, 0);
}

#[test]
fn core_nats_queue_group_shares_messages_and_the_subject_template_routes_them() {
    let _serial = serial();
    let url = server();
    let id = unique("core");
    let text = format!(
        r#"
[server]
bind = "127.0.0.1:0"
[sources.in]
type = "nats"
servers = "{url}"
subjects = ["{id}.in.>"]
queue_group = "workers"
[sinks.out]
type = "nats"
servers = "{url}"
subject = "{id}.out.{{key}}"
inputs = ["in"]
"#
    );
    let (a, b) = (Workspace::new(), Workspace::new());
    a.pipeline(&text);
    b.pipeline(&text);
    let mut first = a.start();
    let mut second = b.start();
    let (first_at, second_at) = (first.address(), second.address());
    for weir in [&first_at, &second_at] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while http_get(weir, "/readyz").0 != 200 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    const EVENTS: u64 = 10_000;
    let received = common::nats::runtime().block_on(async {
        let client = async_nats::connect(&url).await.expect("connect");
        let mut out = client
            .subscribe(format!("{id}.out.>"))
            .await
            .expect("subscribe");
        client.flush().await.expect("flush");
        for seq in 0..EVENTS {
            let (key, value) = common::nats::event(seq, 8);
            client
                .publish(format!("{id}.in.{key}"), value.to_string().into())
                .await
                .expect("publish");
        }
        client.flush().await.expect("flush");
        let mut got = Vec::new();
        use futures_util::StreamExt;
        while got.len() < EVENTS as usize {
            match tokio::time::timeout(Duration::from_secs(10), out.next()).await {
                Ok(Some(m)) => {
                    let v: serde_json::Value = serde_json::from_slice(&m.payload).expect("json");
                    assert_eq!(
                        m.subject.as_str(),
                        format!("{id}.out.{}", v["key"].as_str().expect("key"))
                    );
                    got.push(v["seq"].as_u64().expect("seq"));
                }
                _ => break,
            }
        }
        got
    });
    let mut sorted = received.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..EVENTS).collect::<Vec<_>>(),
        "each message once, through one of the two:\n{}",
        first.log()
    );
    let taken = |address: &str| {
        let (_, metrics) = http_get(address, "/metrics");
        metric(&metrics, "weir_events_in_total{component=\"in\"}")
    };
    let (by_first, by_second) = (taken(&first_at), taken(&second_at));
    assert_eq!(by_first + by_second, EVENTS as f64);
    assert!(
        by_first > 0.0 && by_second > 0.0,
        "{by_first} / {by_second}"
    );
    for weir in [first, second] {
        weir.signal("TERM");
        assert_eq!(weir.finish(Duration::from_secs(30)).code, 0);
    }
}
