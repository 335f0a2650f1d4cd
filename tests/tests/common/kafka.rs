//! The Kafka side of the end-to-end tests: the broker `scripts/kafka-broker.sh` runs,
//! topics made through the admin API, a producer of keyed test events, and a reader.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::Value;

/// The broker's `host:port`: `$WEIR_KAFKA_BROKERS` (set by scripts/test.sh), else the one
/// `scripts/kafka-broker.sh start` starts (or finds running).
pub fn brokers() -> String {
    weir_e2e::broker_address("WEIR_KAFKA_BROKERS", "kafka-broker.sh")
}

/// The S3-compatible store a durable broker keeps its data in: `$WEIR_S3_URL` (set by
/// scripts/test.sh), else the one `scripts/s3-store.sh start` starts (or finds running).
pub fn s3_store() -> String {
    weir_e2e::broker_address("WEIR_S3_URL", "s3-store.sh")
}

/// The broker binary, for tests that start and stop a broker of their own.
pub fn broker_binary() -> PathBuf {
    PathBuf::from(weir_e2e::script_output("kafka-broker.sh", "install"))
}

/// A name no other test or run uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    )
}

/// Creates `topic` with `partitions` partitions.
pub fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let results = runtime
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        ))
        .expect("create topics");
    for result in results {
        result.unwrap_or_else(|(t, e)| panic!("cannot create topic {t}: {e}"));
    }
}

/// Test event `seq`: key `k{seq % keys}`, an amount that passes `threshold` (min 50) for
/// about half of them (amount above 50).
pub fn event(seq: u64, keys: u64) -> (String, Value) {
    let key = format!("k{}", seq % keys);
    let amount = (seq * 7919) % 100;
    (
        key.clone(),
        serde_json::json!({ "seq": seq, "key": key, "amount": amount }),
    )
}

/// Whether test event `seq` passes `threshold` with `min = 50`.
pub fn passes(seq: u64) -> bool {
    (seq * 7919) % 100 > 50
}

/// Produces events `range` to `topic`, keyed, and waits until all are delivered.
pub fn produce(brokers: &str, topic: &str, range: std::ops::Range<u64>, keys: u64) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    for seq in range {
        let (key, value) = event(seq, keys);
        let payload = value.to_string();
        let mut record = BaseRecord::to(topic).key(&key).payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("all test events delivered");
}

/// One record read back.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: Value,
    pub headers: BTreeMap<String, String>,
}

/// A reader of a whole topic from its start, in its own group.
pub struct Reader {
    consumer: BaseConsumer,
    pub records: Vec<Record>,
    unique: std::collections::HashSet<u64>,
}

impl Reader {
    /// `read_committed` readers skip records of open and aborted transactions.
    pub fn new(brokers: &str, topic: &str, read_committed: bool) -> Self {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", unique("reader"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "2000")
            .set(
                "isolation.level",
                if read_committed {
                    "read_committed"
                } else {
                    "read_uncommitted"
                },
            )
            .create()
            .expect("reader");
        // Assigned, not subscribed: a reader outside any group rebalance reads each
        // offset once.
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("topic metadata");
        let partitions = metadata.topics()[0].partitions().len() as i32;
        assert!(partitions > 0, "topic {topic} has no partitions");
        let mut list = rdkafka::TopicPartitionList::new();
        for p in 0..partitions {
            list.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
                .expect("partition");
        }
        consumer.assign(&list).expect("assign");
        Self {
            consumer,
            records: Vec::new(),
            unique: std::collections::HashSet::new(),
        }
    }

    /// Reads until `done(records)` holds or `timeout` passes; returns whether it held.
    pub fn read_until(&mut self, timeout: Duration, done: impl Fn(&[Record]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if done(&self.records) {
                return true;
            }
            if let Some(Ok(m)) = self.consumer.poll(Duration::from_millis(100)) {
                let value = m
                    .payload()
                    .map(|p| serde_json::from_slice(p).unwrap_or(Value::Null))
                    .unwrap_or(Value::Null);
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(seq) = value["seq"].as_u64() {
                    self.unique.insert(seq);
                }
                self.records.push(Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    value,
                    headers,
                });
            }
        }
        done(&self.records)
    }

    /// Reads until `n` distinct events have arrived, or `timeout` passes.
    pub fn read_distinct(&mut self, timeout: Duration, n: usize) -> bool {
        let deadline = Instant::now() + timeout;
        while self.unique.len() < n && Instant::now() < deadline {
            self.read_until(Duration::from_millis(100), |_| false);
        }
        self.unique.len() >= n
    }

    /// Distinct events read.
    pub fn distinct(&self) -> usize {
        self.unique.len()
    }

    /// Reads whatever arrives within `quiet` of the last record.
    pub fn read_rest(&mut self, quiet: Duration) {
        let mut last = Instant::now();
        while last.elapsed() < quiet {
            let before = self.records.len();
            self.read_until(Duration::from_millis(200), |_| false);
            if self.records.len() > before {
                last = Instant::now();
            }
        }
    }

    /// Sequence numbers read, in arrival order.
    pub fn seqs(&self) -> Vec<u64> {
        self.records
            .iter()
            .filter_map(|r| r.value["seq"].as_u64())
            .collect()
    }
}

/// The expected output of `threshold` (min 50) over events `range`.
pub fn expected(range: std::ops::Range<u64>) -> Vec<u64> {
    range.filter(|s| passes(*s)).collect()
}

/// Checks that every key's records arrive in increasing `seq` order, and returns the
/// number of duplicates (records seen before).
pub fn check_per_key_order(records: &[Record]) -> usize {
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    let mut duplicates = 0;
    for r in records {
        let seq = r.value["seq"].as_u64().expect("seq");
        let key = r.key.clone().expect("records keep their key");
        if !seen.insert(seq) {
            duplicates += 1;
            continue;
        }
        if let Some(previous) = last.insert(key.clone(), seq) {
            assert!(
                previous < seq,
                "key {key}: seq {seq} (partition {} offset {}) arrived after {previous}",
                r.partition,
                r.offset
            );
        }
    }
    duplicates
}
