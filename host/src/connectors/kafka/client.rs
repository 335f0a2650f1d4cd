//! librdkafka client settings and the context every Kafka client of Weir shares: logs go to
//! `tracing` under the component's name, and broker reachability feeds readiness.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::config::{KafkaOptions, KafkaSinkConfig, KafkaSourceConfig, StartPosition};
use crate::health::Health;

/// How often librdkafka reports statistics: consumer lag comes from them, and broker
/// states, which tell readiness a broker is back even while no record moves.
const STATS_INTERVAL_MS: &str = "5000";
/// How long librdkafka postpones a fetch for a partition whose local queue is full.
const FETCH_QUEUE_BACKOFF_MS: &str = "10";

/// Consumer settings: Weir's own first, the user's `options` over them, and last the ones
/// the delivery guarantee rests on, which no option may change.
pub fn consumer_config(name: &str, c: &KafkaSourceConfig) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &c.brokers)
        .set("group.id", &c.group)
        .set("client.id", format!("weir-{name}"))
        .set(
            "auto.offset.reset",
            match c.start {
                StartPosition::Latest => "latest",
                StartPosition::Earliest | StartPosition::Timestamp(_) => "earliest",
            },
        )
        .set("isolation.level", "read_committed")
        .set("statistics.interval.ms", STATS_INTERVAL_MS)
        // Weir holds records back itself while the pipeline is full; librdkafka's default
        // of postponing a partition's next fetch by a second once its local queue is over
        // threshold then leaves the consumer idle long after room frees up.
        .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS)
        .set_log_level(RDKafkaLogLevel::Warning);
    apply(&mut config, &c.options);
    config
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    config
}

/// Producer settings: an idempotent producer with `acks=all` (transactional when the sink
/// has a `transactional_id`), the sink's batching and compression, then the user's options;
/// idempotence and `acks` stay as they are.
pub fn producer_config(name: &str, c: &KafkaSinkConfig) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &c.brokers)
        .set("client.id", format!("weir-{name}"))
        .set("statistics.interval.ms", STATS_INTERVAL_MS)
        .set_log_level(RDKafkaLogLevel::Warning);
    if let Some(compression) = &c.compression {
        config.set("compression.type", compression);
    }
    if let Some(linger) = c.linger {
        config.set("linger.ms", linger.0.as_millis().to_string());
    }
    if let Some(bytes) = c.batch_bytes {
        config.set("batch.size", bytes.to_string());
    }
    apply(&mut config, &c.options);
    if let Some(id) = &c.transactional_id {
        config.set("transactional.id", id);
    }
    config.set("enable.idempotence", "true").set("acks", "all");
    config
}

fn apply(config: &mut ClientConfig, options: &KafkaOptions) {
    for (key, value) in options {
        config.set(key, &value.0);
    }
    // Asking for librdkafka's `debug` contexts means wanting to see them.
    if options.contains_key("debug") {
        config.set_log_level(RDKafkaLogLevel::Debug);
    }
}

/// Checks every property name and value with librdkafka itself, without connecting.
///
/// # Errors
/// librdkafka's message for the first property it refuses.
pub fn check(config: &ClientConfig) -> Result<(), String> {
    config
        .create_native_config()
        .map(drop)
        .map_err(|e| match e {
            KafkaError::ClientConfig(_, message, key, value) => {
                format!("option {key:?} = {value:?}: {message}")
            }
            other => other.to_string(),
        })
}

/// The context of a Weir Kafka client: the component it belongs to, for logs and health.
pub struct WeirClientContext {
    /// Source or sink name.
    pub component: String,
    /// Where broker reachability is reported.
    pub health: Health,
    /// Set while a problem is reported, so that the per-record `reachable` is one load.
    pub troubled: AtomicBool,
    /// When the problem was reported, in µs since `created`: statistics count only
    /// brokers that came up after it.
    troubled_at: AtomicU64,
    created: Instant,
}

impl WeirClientContext {
    /// A context for `component`, reporting to `health`.
    pub fn new(component: &str, health: Health) -> Self {
        Self {
            component: component.to_owned(),
            health,
            troubled: AtomicBool::new(false),
            troubled_at: AtomicU64::new(0),
            created: Instant::now(),
        }
    }

    /// Reports every broker unreachable, until a record, a commit or the statistics show
    /// one back.
    pub fn unreachable(&self, reason: &str) {
        self.troubled_at
            .store(self.micros_since_created(), Ordering::Release);
        // Problem first, flag second: librdkafka may call this from its own threads, and a
        // `reachable` in between must still find the flag set after.
        self.health.problem(
            &self.component,
            &format!("no Kafka broker reachable: {reason}"),
        );
        self.troubled.store(true, Ordering::Release);
    }

    /// Marks the brokers reachable again when statistics show a broker connection up: the
    /// one sign of a broker's return while no record moves.
    pub fn note_brokers(&self, statistics: &rdkafka::Statistics) {
        if !self.troubled.load(Ordering::Acquire) {
            return;
        }
        let troubled_at = self.troubled_at.load(Ordering::Acquire);
        let now = self.micros_since_created();
        // librdkafka's internal pseudo-broker is always up; and a connection up for longer
        // than the problem has lasted is from a snapshot taken before it.
        let back = statistics.brokers.values().any(|b| {
            b.source != "internal"
                && b.state == "UP"
                && now.saturating_sub(u64::try_from(b.stateage).unwrap_or(u64::MAX)) > troubled_at
        });
        if back {
            self.reachable();
        }
    }

    fn micros_since_created(&self) -> u64 {
        u64::try_from(self.created.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Marks the brokers reachable again (after a fetch, a delivery or a commit).
    pub fn reachable(&self) {
        // A load first: the swap writes, and this runs once per record.
        if self.troubled.load(Ordering::Acquire) && self.troubled.swap(false, Ordering::AcqRel) {
            self.health.recovered(&self.component);
        }
    }
}

impl ClientContext for WeirClientContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let component = self.component.as_str();
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(component, facility, "kafka: {message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(component, facility, "kafka: {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(component, facility, "kafka: {message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(component, facility, "kafka: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown) => self.unreachable(reason),
            // Connection drops to one broker of several are retried by librdkafka; only
            // log them at debug to keep a flapping network from flooding the log.
            Some(RDKafkaErrorCode::BrokerTransportFailure) => {
                tracing::debug!(component = %self.component, "kafka: {reason}")
            }
            _ => tracing::warn!(component = %self.component, error = %error, "kafka: {reason}"),
        }
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        self.note_brokers(&statistics);
    }
}
