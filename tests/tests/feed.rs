//! The live event feed through the real binary: resume with `Last-Event-ID`, filters,
//! gzip, history, limits and the token, slow clients skipped or dropped while the others
//! go on, and a load of 1,000 clients.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use common::sse::{Item, Sse, event_time};
use common::{Running, Workspace, http_get, http_request};
use serde_json::Value;

/// The tests run one at a time: each loads the machine, and the slow-client tests measure
/// who keeps up.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn start(feed: &str, rate: u64, padding: usize) -> (Workspace, Running, String) {
    let ws = Workspace::new();
    let pad = "x".repeat(padding);
    ws.pipeline(&format!(
        r#"
[server]
bind = "127.0.0.1:0"
admin_token = "s3cret"
[server.feed]
{feed}
[sources.gen]
type = "generator"
rate = {rate}
template = {{ n = "{{{{seq}}}}", user = "{{{{int(0,9)}}}}", pad = "{pad}" }}
[stages.pass]
type = "filter"
inputs = ["gen"]
condition = "n >= 0"
[sinks.out]
type = "null"
inputs = ["pass"]
"#
    ));
    let mut running = ws.start();
    let address = running.address();
    running.wait_for("pipeline running", Duration::from_secs(30));
    (ws, running, address)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn json(data: &str) -> Value {
    serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"))
}

/// Reads `n` events, asserting their ids follow one another; returns (id, `n` field).
async fn read_events(sse: &mut Sse, n: usize) -> Vec<(u64, u64)> {
    let mut events = Vec::new();
    while events.len() < n {
        match tokio::time::timeout(Duration::from_secs(20), sse.next()).await {
            Ok(Some(Item::Event { id, data })) => {
                let seq = json(&data)["payload"]["n"].as_u64().expect("n");
                events.push((id, seq));
            }
            Ok(Some(Item::Comment(_))) => {}
            other => panic!("expected an event, got {other:?}"),
        }
    }
    for pair in events.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1, "ids follow one another");
        assert_eq!(pair[1].1, pair[0].1 + 1, "so do the events");
    }
    events
}

#[test]
fn resume_filter_gzip_history_and_bad_requests() {
    let _turn = one_at_a_time();
    let (_ws, _running, address) = start("history = 1000000", 2_000, 0);
    let rt = runtime();
    rt.block_on(async {
        let mut first = Sse::connect(&address, "/api/v1/events/stream?stage=pass", "").await;
        assert_eq!(first.status, 200, "{}", first.head);
        assert!(first.head.contains("text/event-stream"));
        let seen = read_events(&mut first, 300).await;
        drop(first);
        let (last_id, last_n) = *seen.last().expect("events");
        // Events go by while the client is away; the history holds them.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let mut again = Sse::connect(
            &address,
            "/api/v1/events/stream?stage=pass",
            &format!("Last-Event-ID: {last_id}\r\n"),
        )
        .await;
        let resumed = read_events(&mut again, 4_000).await;
        assert_eq!(
            resumed[0],
            (last_id + 1, last_n + 1),
            "resumed right after the last event it had"
        );
        drop(again);

        // An id of another run: what it missed cannot be known, and it is told so.
        let mut stale = Sse::connect(
            &address,
            "/api/v1/events/stream?stage=pass",
            "Last-Event-ID: 12-345\r\n",
        )
        .await;
        let notice = loop {
            match tokio::time::timeout(Duration::from_secs(10), stale.next()).await {
                Ok(Some(Item::Comment(_))) => continue,
                other => break other,
            }
        };
        assert_eq!(
            notice,
            Ok(Some(Item::Notice {
                name: "gap".into(),
                data: r#"{"missing":null}"#.into()
            }))
        );
        read_events(&mut stale, 10).await;

        let mut filtered = Sse::connect(
            &address,
            "/api/v1/events/stream?stage=pass&filter=user%20%3D%3D%203",
            "",
        )
        .await;
        let mut users = Vec::new();
        while users.len() < 50 {
            match tokio::time::timeout(Duration::from_secs(20), filtered.next()).await {
                Ok(Some(Item::Event { data, .. })) => {
                    users.push(json(&data)["payload"]["user"].as_u64().expect("user"));
                }
                Ok(Some(_)) => {}
                other => panic!("the filtered stream ended: {other:?}"),
            }
        }
        assert!(
            users.iter().all(|&u| u == 3),
            "only what the filter lets through: {users:?}"
        );

        let gzip = Sse::connect(
            &address,
            "/api/v1/events/stream?stage=pass",
            "Accept-Encoding: gzip\r\n",
        )
        .await;
        assert!(
            gzip.head
                .to_ascii_lowercase()
                .contains("content-encoding: gzip"),
            "{}",
            gzip.head
        );
        let compressed = gzip.body(Duration::from_secs(1)).await;
        let mut text = String::new();
        // The stream is cut mid-way: what was flushed decodes, then the input ends.
        let _ = flate2::read::GzDecoder::new(&compressed[..]).read_to_string(&mut text);
        let ids = text.lines().filter(|l| l.starts_with("id: ")).count();
        assert!(
            ids > 100,
            "gzip carries the messages ({ids} in {} bytes)",
            compressed.len()
        );
    });

    let (status, body) = http_get(&address, "/api/v1/events/history?stage=pass&limit=50");
    assert_eq!(status, 200, "{body}");
    let history = json(&body);
    let ids: Vec<u64> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids.len(), 50);
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1));
    let (status, body) = http_get(
        &address,
        "/api/v1/events/history?stage=pass&since=10&limit=5",
    );
    assert_eq!(status, 200);
    let paged: Vec<u64> = json(&body)["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(paged, [11, 12, 13, 14, 15], "since pages forward");

    let (status, body) = http_get(&address, "/api/v1/events/stream?stage=pass&filter=((");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("filter"), "{body}");
    let (status, body) = http_get(&address, "/api/v1/events/stream?stage=nope");
    assert_eq!(status, 404);
    assert!(body.contains("pass"), "names the outputs there are: {body}");
}

#[test]
fn limits_and_the_token() {
    let _turn = one_at_a_time();
    let (_ws, _running, address) = start("max_clients_per_ip = 2\nrequire_token = true", 500, 0);
    let rt = runtime();
    rt.block_on(async {
        let refused = Sse::connect(&address, "/api/v1/events/stream?stage=pass", "").await;
        assert_eq!(refused.status, 401, "the feed asks for the token");
        let wrong =
            Sse::connect(&address, "/api/v1/events/stream?stage=pass&token=guess", "").await;
        assert_eq!(wrong.status, 401, "and only the right one");
        let path = "/api/v1/events/stream?stage=pass&token=s3cret&filter=user%20%3E%3D%200";
        let mut a = Sse::connect(&address, path, "").await;
        let mut b = Sse::connect(
            &address,
            "/api/v1/events/stream?stage=pass",
            "Authorization: Bearer s3cret\r\n",
        )
        .await;
        assert_eq!((a.status, b.status), (200, 200));
        read_events(&mut a, 10).await;
        read_events(&mut b, 10).await;
        let third = Sse::connect(&address, path, "").await;
        assert_eq!(third.status, 503, "two per address: {}", third.head);

        let (status, _, _) = http_request(&address, "GET", "/api/v1/connections", "", b"");
        assert_eq!(status, 401, "connections is an admin endpoint");
        let (status, _, body) = http_request(
            &address,
            "GET",
            "/api/v1/connections",
            "Authorization: Bearer s3cret\r\n",
            b"",
        );
        assert_eq!(status, 200);
        let clients = json(&body)["clients"].as_array().expect("clients").clone();
        assert_eq!(clients.len(), 2, "{body}");
        assert!(clients.iter().any(|c| c["filter"] == "user >= 0"));
        assert!(
            clients
                .iter()
                .all(|c| c["stage"] == "pass" && c["sent"].as_u64() >= Some(10))
        );
        drop(a);
        // The place is freed once the server sees the client gone.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut again = Sse::connect(&address, path, "").await;
            if again.status == 200 {
                read_events(&mut again, 5).await;
                break;
            }
            assert!(Instant::now() < deadline, "the place was never freed");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

/// Reads for `time`; returns (events, skipped), asserting that every id it did not get
/// was reported as skipped.
async fn read_accounting(sse: &mut Sse, time: Duration) -> (u64, u64) {
    let deadline = tokio::time::Instant::now() + time;
    let (mut events, mut skipped, mut expected) = (0u64, 0u64, None::<u64>);
    // A stream with data waiting never times out: the clock is checked at each item too.
    while tokio::time::Instant::now() < deadline
        && let Ok(item) = tokio::time::timeout_at(deadline, sse.next()).await
    {
        match item {
            Some(Item::Event { id, .. }) => {
                if let Some(expected) = expected {
                    assert_eq!(id, expected, "an event went missing without a notice");
                }
                expected = Some(id + 1);
                events += 1;
            }
            Some(Item::Notice { name, data }) if name == "skipped" => {
                let n = json(&data)["skipped"].as_u64().expect("count");
                skipped += n;
                expected = expected.map(|e| e + n);
            }
            Some(other @ Item::Notice { .. }) => panic!("unexpected {other:?}"),
            Some(Item::Comment(_)) => {}
            None => break,
        }
    }
    (events, skipped)
}

fn slow_client(policy: &str) {
    let _turn = one_at_a_time();
    let (_ws, _running, address) = start(
        &format!("client_buffer = 2000\nslow_clients = \"{policy}\"\nheartbeat = \"1s\""),
        5_000,
        1_000,
    );
    let rt = runtime();
    rt.block_on(async {
        let path = "/api/v1/events/stream?stage=pass";
        let mut steady = Sse::connect(&address, path, "").await;
        let mut stalled = Sse::connect(&address, path, "").await;
        // The steady client reads everything, all along.
        let steady =
            tokio::spawn(
                async move { read_accounting(&mut steady, Duration::from_secs(14)).await },
            );
        read_events(&mut stalled, 10).await;
        // The stalled client reads nothing for 8 s: 40,000 events of 1 kB, more than its
        // socket holds.
        tokio::time::sleep(Duration::from_secs(8)).await;
        let (_, _, body) = http_request(
            &address,
            "GET",
            "/api/v1/connections",
            "Authorization: Bearer s3cret\r\n",
            b"",
        );
        let clients = json(&body)["clients"].as_array().expect("clients").len();
        if policy == "skip" {
            assert_eq!(clients, 2, "a skipped client stays: {body}");
            // Reading again, it first drains what its socket held, then jumps ahead.
            let (events, skipped) = read_accounting(&mut stalled, Duration::from_secs(4)).await;
            assert!(
                skipped > 10_000,
                "told it skipped what it could not take: {skipped}"
            );
            assert!(events > 0);
        } else {
            assert_eq!(clients, 1, "the stalled client was dropped: {body}");
            // What its socket held, then the end.
            let drained = tokio::time::timeout(Duration::from_secs(10), async {
                while stalled.next().await.is_some() {}
            })
            .await;
            assert!(drained.is_ok(), "its connection was closed");
        }
        let (events, skipped) = steady.await.expect("steady client");
        assert_eq!(skipped, 0, "the steady client is not held back");
        assert!(
            events > 50_000,
            "the steady client kept up: {events} events in 14 s"
        );
    });
}

#[test]
fn a_client_that_stops_reading_is_skipped_and_the_others_go_on() {
    slow_client("skip");
}

#[test]
fn a_client_that_stops_reading_is_dropped_and_the_others_go_on() {
    slow_client("disconnect");
}

/// What the stage has put out so far, from its counters, and when.
fn stage_out(address: &str) -> (u64, Instant) {
    let (_, body) = http_get(address, "/api/v1/pipeline");
    let out = common::component(&json(&body), "pass")["counters"]["events_out"]
        .as_u64()
        .expect("events_out");
    (out, Instant::now())
}

/// Events per second between two readings of [`stage_out`].
fn rate(from: (u64, Instant), to: (u64, Instant)) -> f64 {
    (to.0 - from.0) as f64 / to.1.duration_since(from.1).as_secs_f64()
}

/// 1,000 clients on one stage at 10,000 events/s for `WEIR_FEED_LOAD_SECONDS` (60 by
/// default): every event each client did not get was reported skipped; the server's
/// memory grows by at most 50 MB for them; the stage keeps its rate within 10 %.
#[test]
fn a_thousand_clients_at_ten_thousand_events_per_second() {
    const CLIENTS: usize = 1_000;
    let seconds: u64 = std::env::var("WEIR_FEED_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let _turn = one_at_a_time();
    let (_ws, running, address) = start("", 10_000, 0);
    std::thread::sleep(Duration::from_secs(2));
    let start_alone = stage_out(&address);
    std::thread::sleep(Duration::from_secs(5));
    let start_attached = stage_out(&address);
    let alone = rate(start_alone, start_attached);
    let rss_before = running.rss_kib();

    let rt = runtime();
    let stop = Instant::now() + Duration::from_secs(seconds);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let address = address.clone();
            rt.spawn(async move {
                let connecting = Instant::now();
                let mut sse = Sse::connect(&address, "/api/v1/events/stream?stage=pass", "").await;
                let connected_in = connecting.elapsed();
                assert_eq!(sse.status, 200, "{}", sse.head);
                let deadline = tokio::time::Instant::from_std(stop);
                let (mut events, mut skipped, mut expected) = (0u64, 0u64, None::<u64>);
                let mut missed = 0u64;
                let mut latencies = Vec::new();
                while tokio::time::Instant::now() < deadline
                    && let Ok(Some(item)) = tokio::time::timeout_at(deadline, sse.next()).await
                {
                    match item {
                        Item::Event { id, data } => {
                            if expected.is_some_and(|e| e != id) {
                                missed += 1;
                            }
                            expected = Some(id + 1);
                            events += 1;
                            if events % 16 == 0
                                && let Some(time) = event_time(&data)
                            {
                                latencies.push(now_ms() - time);
                            }
                        }
                        Item::Notice { name, data } if name == "skipped" => {
                            let n = json(&data)["skipped"].as_u64().unwrap_or(0);
                            skipped += n;
                            expected = expected.map(|e| e + n);
                        }
                        _ => {}
                    }
                }
                (events, skipped, missed, latencies, connected_in)
            })
        })
        .collect();
    // The memory while every client is attached, and the rate over the whole time.
    std::thread::sleep(Duration::from_secs(seconds / 2));
    let rss_with = running.rss_kib();
    std::thread::sleep(stop.saturating_duration_since(Instant::now()));
    let attached = rate(start_attached, stage_out(&address));
    let results: Vec<(u64, u64, u64, Vec<i64>, Duration)> = rt.block_on(async {
        let mut results = Vec::new();
        for client in clients {
            results.push(client.await.expect("client task"));
        }
        results
    });
    let events: u64 = results.iter().map(|r| r.0).sum();
    let skipped: u64 = results.iter().map(|r| r.1).sum();
    let missed: u64 = results.iter().map(|r| r.2).sum();
    let mut latencies: Vec<i64> = results.iter().flat_map(|r| r.3.iter().copied()).collect();
    latencies.sort_unstable();
    let p95 = latencies
        .get(latencies.len() * 95 / 100)
        .copied()
        .unwrap_or(-1);
    let p50 = latencies.get(latencies.len() / 2).copied().unwrap_or(-1);
    let growth_mb = (rss_with as f64 - rss_before as f64) / 1024.0;
    let slowest_connect = results.iter().map(|r| r.4).max().unwrap_or_default();
    let mut per_client: BTreeMap<&str, f64> = BTreeMap::new();
    per_client.insert("events", events as f64 / CLIENTS as f64);
    per_client.insert("skipped", skipped as f64 / CLIENTS as f64);
    println!(
        "feed load: {CLIENTS} clients, {seconds} s; stage {alone:.0} events/s alone, {attached:.0} with the clients ({:.3}×); per client {:.0} events, {:.0} skipped; delivery latency p50 {p50} ms, p95 {p95} ms; slowest connect {slowest_connect:?}; RSS {} MB -> {} MB ({growth_mb:.1} MB for the clients)",
        attached / alone,
        per_client["events"],
        per_client["skipped"],
        rss_before / 1024,
        rss_with / 1024,
    );
    assert_eq!(missed, 0, "events missed without a notice");
    let starved = results.iter().filter(|r| r.0 == 0).count();
    assert_eq!(starved, 0, "every client got events");
    assert!(
        growth_mb <= 50.0,
        "RSS grew {growth_mb:.1} MB for the clients"
    );
    assert!(
        attached >= alone * 0.9,
        "the stage slowed with the clients: {alone:.0} -> {attached:.0} events/s"
    );
}
