//! JetStream → JetStream throughput on the test server (`scripts/nats-server.sh`), in one run:
//!
//! - a bare async-nats program: a pull consumer's messages published to the output stream
//!   with `Nats-Msg-Id`, each input message acked once its publish ack is in, up to 4096
//!   publishes awaiting their ack at once, on one connection to consume and one to publish
//!   (what a careful hand-written copier does);
//! - Weir copying the stream with no stage (raw payloads, the same ids and acks).
//!
//! Each figure is events/s from the first message taken to the last one in the output
//! stream, the median of five rounds taking turns (`WEIR_BENCH_ROUNDS` sets another count),
//! with the CPU this process used per event beside it (the server's is apart).
//! `cargo bench -p weir --bench jetstream`.

// A bench binary with its own main: nothing here is public API.
#![allow(missing_docs)]

#[path = "support/measure.rs"]
mod measure;
mod support;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use measure::{measured, medians, pipeline_rate, print_round_ratios, print_row, rounds};
use support::prepare;

const EVENTS: u64 = 500_000;
/// Publishes the bare program lets await their ack at once.
const BARE_IN_FLIGHT: usize = 4096;

fn server() -> String {
    weir_e2e::broker_address("WEIR_NATS_URL", "nats-server.sh")
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}_{}", std::process::id(), fastrand::u64(..))
}

async fn context(url: &str) -> jetstream::Context {
    jetstream::new(async_nats::connect(url).await.expect("connect"))
}

async fn create_stream(url: &str, name: &str, subjects: &str) {
    context(url)
        .await
        .create_stream(stream::Config {
            name: name.to_owned(),
            subjects: vec![format!("{subjects}.>")],
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .expect("stream made");
}

/// Deletes the bench's streams, so runs do not fill the server's store.
async fn delete_streams(url: &str, names: &[String]) {
    let js = context(url).await;
    for name in names {
        let _ = js.delete_stream(name).await;
    }
}

async fn fill(url: &str, subjects: &str) {
    let js = context(url).await;
    let mut acks = VecDeque::new();
    for seq in 0..EVENTS {
        let key = seq % 64;
        let value = format!(
            r#"{{"seq":{seq},"key":"k{key}","amount":{}}}"#,
            (seq * 7919) % 100
        );
        acks.push_back(
            js.publish(format!("{subjects}.k{key}"), value.into())
                .await
                .expect("publish"),
        );
        if acks.len() >= BARE_IN_FLIGHT
            && let Some(ack) = acks.pop_front()
        {
            ack.await.expect("publish ack");
        }
    }
    for ack in acks {
        ack.await.expect("publish ack");
    }
}

async fn bare(url: &str, input: &str, out_subjects: &str) -> f64 {
    // One connection to consume and one to publish, as Weir's source and sink have.
    let (js, consuming) = (context(url).await, context(url).await);
    let consumer = consuming
        .get_stream(input)
        .await
        .expect("stream")
        .create_consumer(consumer::pull::Config {
            durable_name: Some(unique("bare")),
            ack_policy: consumer::AckPolicy::Explicit,
            // Weir's default; the server's (1,000) would stall a copier holding 4,096.
            max_ack_pending: 20_000,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(512)
        .messages()
        .await
        .expect("pull");
    let mut waiting = VecDeque::with_capacity(BARE_IN_FLIGHT);
    let mut started = None;
    let mut seen = 0;
    while seen < EVENTS {
        let message = messages
            .next()
            .await
            .expect("stream open")
            .expect("message");
        started.get_or_insert_with(Instant::now);
        seen += 1;
        let info = message.info().expect("metadata");
        let id = format!("{}:{}", info.stream, info.stream_sequence);
        let (message, acker) = message.split();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        let ack = js
            .publish_with_headers(format!("{out_subjects}.copy"), headers, message.payload)
            .await
            .expect("publish");
        waiting.push_back((ack, acker));
        if waiting.len() >= BARE_IN_FLIGHT
            && let Some((ack, acker)) = waiting.pop_front()
        {
            ack.await.expect("publish ack");
            acker.ack().await.expect("ack");
        }
    }
    for (ack, acker) in waiting {
        ack.await.expect("publish ack");
        acker.ack().await.expect("ack");
    }
    js.client().flush().await.expect("flush");
    EVENTS as f64 / started.expect("messages taken").elapsed().as_secs_f64()
}

fn weir_copy(url: &str, input: &str, out_subjects: &str) -> f64 {
    let (runtime, loaded, registry) = prepare(&format!(
        r#"
[server]
enabled = false
[plugins]
dir = "{{plugins}}"
[sources.in]
type = "jetstream"
servers = "{url}"
stream = "{input}"
consumer = "{consumer}"
format = "raw"
[sinks.out]
type = "jetstream"
servers = "{url}"
subject = "{out_subjects}.copy"
format = "raw"
inputs = ["in"]
"#,
        consumer = unique("weir"),
    ));
    pipeline_rate(&runtime, &loaded, &registry, EVENTS, EVENTS)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let url = server();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let input = unique("BENCH_IN");
    let in_subjects = unique("bench_in");
    runtime.block_on(create_stream(&url, &input, &in_subjects));
    runtime.block_on(fill(&url, &in_subjects));
    let rounds = rounds();
    let (mut bare_runs, mut weir_runs) = (Vec::new(), Vec::new());
    let mut streams = vec![input.clone()];
    for round in 1..=rounds {
        let (name, out) = (unique("BENCH_BARE"), unique("bench_bare"));
        runtime.block_on(create_stream(&url, &name, &out));
        streams.push(name);
        bare_runs.push(measured(EVENTS, || {
            runtime.block_on(bare(&url, &input, &out))
        }));
        let (name, out) = (unique("BENCH_WEIR"), unique("bench_weir"));
        runtime.block_on(create_stream(&url, &name, &out));
        streams.push(name);
        weir_runs.push(measured(EVENTS, || weir_copy(&url, &input, &out)));
        eprintln!("round {round} of {rounds} done");
    }
    runtime.block_on(delete_streams(&url, &streams));
    println!(
        "jetstream → jetstream, {EVENTS} events (median of {rounds}; CPU is this process's, server apart):"
    );
    print_round_ratios("weir copy (no stage):  ", &bare_runs, &weir_runs);
    let bare = medians(bare_runs);
    if let Some(bare) = bare {
        print_row("bare async-nats copy:  ", bare, None);
    }
    if let Some(result) = medians(weir_runs) {
        print_row("weir copy (no stage):  ", result, bare);
    }
}
