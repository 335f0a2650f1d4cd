//! `type = "kafka"` sources and sinks: what Weir sets itself, and `options` for any
//! librdkafka property (SASL, TLS, Event Hubs) passed through untouched.
//!
//! ```toml
//! [sources.orders]
//! type = "kafka"
//! brokers = "127.0.0.1:9092"
//! topics = ["orders"]            # "^orders-.*" is a regular expression
//! group = "weir-orders"
//! start = "earliest"             # or "latest", or "2026-11-01T00:00:00Z" for a new group
//! options = { "session.timeout.ms" = 10000 }
//!
//! [sinks.big]
//! type = "kafka"
//! brokers = "127.0.0.1:9092"
//! topic = "big-orders"
//! key_field = "customer"
//! inputs = ["threshold"]
//! ```

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer};

use super::duration::Duration;
use super::model::{EdgeFormat, OverloadConfig};

/// librdkafka properties, by name; numbers and booleans are written as librdkafka reads them.
pub type KafkaOptions = BTreeMap<String, KafkaOptionValue>;

/// One librdkafka property value.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaOptionValue(pub String);

impl<'de> Deserialize<'de> for KafkaOptionValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = match toml::Value::deserialize(deserializer)? {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(x) => x.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "a librdkafka property is a string, number or boolean, not {}",
                    other.type_str()
                )));
            }
        };
        Ok(Self(text))
    }
}

/// Where a consumer group that has no committed offset starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartPosition {
    /// The oldest record still kept.
    #[default]
    Earliest,
    /// Only records written after the group joins.
    Latest,
    /// The first record at or after this time (milliseconds since the Unix epoch).
    Timestamp(i64),
}

impl<'de> Deserialize<'de> for StartPosition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "earliest" => Ok(Self::Earliest),
            "latest" => Ok(Self::Latest),
            _ => humantime::parse_rfc3339_weak(&text)
                .ok()
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| Self::Timestamp(d.as_millis() as i64))
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "start {text:?} is not \"earliest\", \"latest\" or a time like \"2026-11-01T00:00:00Z\""
                    ))
                }),
        }
    }
}

/// `type = "kafka"` as a source: a consumer group member. Offsets are committed only for
/// records fully handled (written, filtered or dead-lettered), per partition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// Bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Topics to read; a name starting with `^` is a regular expression.
    pub topics: Vec<String>,
    /// Consumer group: instances with the same group share the partitions.
    pub group: String,
    /// Where a group with no committed offset starts.
    #[serde(default)]
    pub start: StartPosition,
    /// How record values are read: `json`, `msgpack` or `raw`.
    #[serde(default)]
    pub format: EdgeFormat,
    /// How often handled offsets are committed (and, in exactly-once mode, how often the
    /// transaction commits).
    #[serde(default = "KafkaSourceConfig::default_commit_interval")]
    pub commit_interval: Duration,
    /// On a rebalance, how long revoked partitions' events in flight may take to finish
    /// before the partitions are let go with what is done committed.
    #[serde(default = "KafkaSourceConfig::default_revoke_grace")]
    pub revoke_grace: Duration,
    /// Exactly-once Kafka to Kafka: offsets are committed inside the transaction of the
    /// pipeline's transactional kafka sink (the one with `transactional_id`).
    #[serde(default)]
    pub exactly_once: bool,
    /// Any librdkafka consumer property, e.g. `"security.protocol" = "SASL_SSL"`.
    #[serde(default)]
    pub options: KafkaOptions,
}

impl KafkaSourceConfig {
    const fn default_commit_interval() -> Duration {
        Duration::from_secs(1)
    }

    const fn default_revoke_grace() -> Duration {
        Duration::from_secs(10)
    }
}

/// `type = "kafka"` as a sink: an idempotent producer with `acks=all`; an event is
/// acknowledged upstream only on its delivery report.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// Bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// The topic written.
    pub topic: String,
    /// Stages or sources it writes.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// How payloads are written: `json`, `msgpack` or `raw`.
    #[serde(default)]
    pub format: EdgeFormat,
    /// A payload field (dotted path) whose value becomes the record key; unset keeps the
    /// event's own key.
    #[serde(default)]
    pub key_field: Option<String>,
    /// `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    #[serde(default)]
    pub compression: Option<String>,
    /// How long the producer waits to fill a batch (`linger.ms`).
    #[serde(default)]
    pub linger: Option<Duration>,
    /// Largest producer batch in bytes (`batch.size`).
    #[serde(default)]
    pub batch_bytes: Option<u64>,
    /// Weir batches being delivered at once; more hides broker latency. The default, 64,
    /// is 32,768 events at the default batch size: fewer leaves the producer idle while it
    /// waits for acknowledgements.
    #[serde(default = "KafkaSinkConfig::default_in_flight")]
    pub max_in_flight: usize,
    /// Makes the producer transactional for exactly-once with an `exactly_once` kafka
    /// source; unique per running instance and stable across its restarts.
    #[serde(default)]
    pub transactional_id: Option<String>,
    /// Any librdkafka producer property.
    #[serde(default)]
    pub options: KafkaOptions,
    /// Overload policy.
    #[serde(default)]
    pub overload: OverloadConfig,
}

impl KafkaSinkConfig {
    const fn default_in_flight() -> usize {
        64
    }
}
