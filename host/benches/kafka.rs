//! Kafka → Kafka throughput on the test broker (`scripts/kafka-broker.sh`), in one run:
//!
//! - a bare rdkafka consume-produce loop (the baseline a hand-written client reaches);
//! - Weir copying the topic with no stage;
//! - Weir with the wasm `threshold` stage in between.
//!
//! Each figure is events/s from the first record consumed to the last one delivered (the
//! group join is left out), the median of five rounds over the same input topic; the three
//! take turns in each round, so that a slow spell of the shared machine or broker falls on
//! all of them (`WEIR_BENCH_ROUNDS` sets another count). Each Weir run is also printed as
//! the median of its per-round ratios to the bare client, the steadier figure when the
//! machine is shared. `WEIR_LOG=info` shows the pipeline's log.
//! `cargo bench -p weir --bench kafka` (needs `scripts/build-plugins.sh` first).

// A bench binary with its own main: nothing here is public API.
#![allow(missing_docs)]

#[path = "support/measure.rs"]
mod measure;
mod support;

use std::time::{Duration, Instant};

use measure::{measured, medians, pipeline_rate, print_round_ratios, print_row, rounds};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use support::prepare;

const EVENTS: u64 = 1_000_000;
const PARTITIONS: i32 = 4;
/// The consumers' session timeout. The test broker takes about half of it to form a group
/// (left out of the timing), and under a full-speed run it can answer a heartbeat late: a
/// shorter timeout makes rounds that lose the group and read again, measuring the broker.
const SESSION_TIMEOUT_MS: u32 = 6000;

fn brokers() -> String {
    weir_e2e::broker_address("WEIR_KAFKA_BROKERS", "kafka-broker.sh")
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), fastrand::u64(..))
}

fn create_topic(runtime: &tokio::runtime::Runtime, brokers: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin");
    let made = runtime
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        ))
        .expect("create topic");
    for m in made {
        m.expect("topic created");
    }
}

fn producer(brokers: &str) -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .expect("producer")
}

fn send(producer: &ThreadedProducer<DefaultProducerContext>, record: BaseRecord<'_, [u8], [u8]>) {
    let mut record = record;
    while let Err((_, back)) = producer.send(record) {
        record = back;
        producer.poll(Duration::from_millis(1));
    }
}

fn fill(brokers: &str, topic: &str) {
    let p = producer(brokers);
    for seq in 0..EVENTS {
        let key = format!("k{}", seq % 64);
        let value = format!(
            r#"{{"seq":{seq},"key":"{key}","amount":{}}}"#,
            (seq * 7919) % 100
        );
        send(
            &p,
            BaseRecord::to(topic)
                .key(key.as_bytes())
                .payload(value.as_bytes()),
        );
    }
    p.flush(Duration::from_secs(120)).expect("input written");
}

/// A consume-produce loop on rdkafka alone, with the consumer settings Weir uses (so the
/// comparison is of the code around the client, not of librdkafka tuning).
fn bare(brokers: &str, input: &str, output: &str) -> f64 {
    let source: weir::config::KafkaSourceConfig = toml::from_str(&format!(
        "brokers = \"{brokers}\"\ntopics = [\"{input}\"]\ngroup = \"{}\"\noptions = {{ \"session.timeout.ms\" = {SESSION_TIMEOUT_MS} }}",
        unique("bare")
    ))
    .expect("source settings");
    let consumer: BaseConsumer = weir::connectors::kafka::consumer_config("bare", &source)
        .create()
        .expect("consumer");
    consumer.subscribe(&[input]).expect("subscribe");
    let p = producer(brokers);
    let mut seen = 0;
    let mut started = None;
    while seen < EVENTS {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            started.get_or_insert_with(Instant::now);
            let mut record = BaseRecord::to(output).payload(m.payload().unwrap_or_default());
            if let Some(key) = m.key() {
                record = record.key(key);
            }
            send(&p, record);
            seen += 1;
        }
    }
    p.flush(Duration::from_secs(120)).expect("output written");
    let started = started.expect("records consumed");
    EVENTS as f64 / started.elapsed().as_secs_f64()
}

fn weir_run(brokers: &str, input: &str, output: &str, stage: bool) -> f64 {
    // The copy reads and writes raw bytes; the stage run reads JSON (the plugin works on
    // MessagePack) and writes the MessagePack it gets.
    let (source_format, stage_section, feed, expected) = if stage {
        let passing = (0..EVENTS).filter(|s| (s * 7919) % 100 > 50).count() as u64;
        let section = "[stages.big]\ntype = \"handler\"\nplugin = \"threshold\"\ninputs = [\"in\"]\nconfig = { field = \"amount\", min = 50 }";
        ("json", section, "big", passing)
    } else {
        ("raw", "", "in", EVENTS)
    };
    let group = unique("weir");
    let (runtime, loaded, registry) = prepare(&format!(
        r#"
[server]
enabled = false
[plugins]
dir = "{{plugins}}"
[sources.in]
type = "kafka"
brokers = "{brokers}"
topics = ["{input}"]
group = "{group}"
format = "{source_format}"
options = {{ "session.timeout.ms" = {SESSION_TIMEOUT_MS} }}
{stage_section}
[sinks.out]
type = "kafka"
brokers = "{brokers}"
topic = "{output}"
format = "raw"
inputs = ["{feed}"]
"#
    ));
    pipeline_rate(&runtime, &loaded, &registry, EVENTS, expected)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let brokers = brokers();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let input = unique("bench-in");
    create_topic(&runtime, &brokers, &input);
    fill(&brokers, &input);
    // `WEIR_BENCH_RUNS=copy` (a comma list of bare, copy, stage) runs only those, e.g.
    // under a profiler.
    let runs = std::env::var("WEIR_BENCH_RUNS").unwrap_or_else(|_| "bare,copy,stage".into());
    let wanted = |name: &str| runs.split(',').any(|r| r == name);
    let mut results = (Vec::new(), Vec::new(), Vec::new());
    let rounds = rounds();
    for _ in 0..rounds {
        if wanted("bare") {
            let out = unique("bench-bare");
            create_topic(&runtime, &brokers, &out);
            results
                .0
                .push(measured(EVENTS, || bare(&brokers, &input, &out)));
        }
        if wanted("copy") {
            let out = unique("bench-copy");
            create_topic(&runtime, &brokers, &out);
            results
                .1
                .push(measured(EVENTS, || weir_run(&brokers, &input, &out, false)));
        }
        if wanted("stage") {
            let out = unique("bench-stage");
            create_topic(&runtime, &brokers, &out);
            results
                .2
                .push(measured(EVENTS, || weir_run(&brokers, &input, &out, true)));
        }
    }
    println!(
        "kafka → kafka, {EVENTS} events, {PARTITIONS} partitions (median of {rounds}; CPU is this process's, broker apart):"
    );
    let bare_runs = results.0.clone();
    let bare = medians(results.0);
    if let Some(bare) = bare {
        print_row("bare rdkafka consume-produce: ", bare, None);
    }
    for (name, runs) in [
        ("weir copy (no stage):        ", results.1),
        ("weir + wasm threshold:       ", results.2),
    ] {
        print_round_ratios(name, &bare_runs, &runs);
        if let Some(result) = medians(runs) {
            print_row(name, result, bare);
        }
    }
}
