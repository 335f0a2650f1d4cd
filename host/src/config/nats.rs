//! `type = "nats"` (core NATS) and `type = "jetstream"` sources and sinks.
//!
//! ```toml
//! [sources.orders]
//! type = "jetstream"
//! servers = "nats://127.0.0.1:4222"
//! stream = "ORDERS"
//! consumer = "weir-orders"       # durable pull consumer, made when missing
//! deliver = "all"                # "last", "new", { start_sequence = 42 }, { start_time = "..." }
//! max_deliver = 5                # then the message goes to the dead-letter sink
//! create_stream = { subjects = ["orders.>"], storage = "file", duplicate_window = "2m" }
//!
//! [sinks.big]
//! type = "jetstream"
//! servers = "nats://127.0.0.1:4222"
//! subject = "big.{region}"       # placeholders name payload fields
//! msg_id_field = "id"            # Nats-Msg-Id, so the stream drops repeats
//! inputs = ["threshold"]
//! ```

use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer};

use super::duration::Duration;
use super::model::{EdgeFormat, OverloadConfig};

/// How a connection proves who it is; at most one way.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsAuth {
    /// A token (`--auth` on the server).
    #[serde(default)]
    pub token: Option<String>,
    /// A user name, with `password`.
    #[serde(default)]
    pub user: Option<String>,
    /// The user's password.
    #[serde(default)]
    pub password: Option<String>,
    /// A `.creds` file (JWT and NKey seed), as NGS and operator-mode servers hand out.
    #[serde(default)]
    pub creds_file: Option<PathBuf>,
}

/// `type = "nats"` as a source: core NATS subjects, at most once (core NATS keeps nothing
/// for a subscriber that is not there).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSourceConfig {
    /// Server URLs, comma-separated.
    pub servers: String,
    /// Credentials.
    #[serde(default)]
    pub auth: NatsAuth,
    /// Subjects, with `*` and `>` wildcards.
    pub subjects: Vec<String>,
    /// A queue group: instances in the same group share the messages.
    #[serde(default)]
    pub queue_group: Option<String>,
    /// How payloads are read: `json`, `msgpack` or `raw`.
    #[serde(default)]
    pub format: EdgeFormat,
}

/// `type = "nats"` as a sink: core NATS publish, a batch acknowledged once the server has
/// taken it (a flush round trip).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSinkConfig {
    /// Server URLs, comma-separated.
    pub servers: String,
    /// Credentials.
    #[serde(default)]
    pub auth: NatsAuth,
    /// Subject, with `{field}` placeholders filled from the payload.
    pub subject: String,
    /// Stages or sources it writes.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// How payloads are written: `json`, `msgpack` or `raw`.
    #[serde(default)]
    pub format: EdgeFormat,
    /// Overload policy.
    #[serde(default)]
    pub overload: OverloadConfig,
}

/// Where a new durable consumer starts in its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliverFrom {
    /// The first message still kept.
    #[default]
    All,
    /// The last message.
    Last,
    /// Only messages stored after the consumer is made.
    New,
    /// This stream sequence on.
    StartSequence(u64),
    /// Messages stored at or after this time (milliseconds since the Unix epoch).
    StartTime(i64),
}

impl<'de> Deserialize<'de> for DeliverFrom {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let problem = |what: String| {
            serde::de::Error::custom(format!(
                "deliver {what} is not \"all\", \"last\", \"new\", {{ start_sequence = N }} or {{ start_time = \"2026-11-01T00:00:00Z\" }}"
            ))
        };
        match toml::Value::deserialize(deserializer)? {
            toml::Value::String(s) => match s.as_str() {
                "all" => Ok(Self::All),
                "last" => Ok(Self::Last),
                "new" => Ok(Self::New),
                _ => Err(problem(format!("{s:?}"))),
            },
            toml::Value::Table(t) if t.len() == 1 => match t.iter().next() {
                Some((k, toml::Value::Integer(n))) if k == "start_sequence" && *n >= 1 => {
                    Ok(Self::StartSequence(*n as u64))
                }
                Some((k, toml::Value::String(s))) if k == "start_time" => {
                    humantime::parse_rfc3339_weak(s)
                        .ok()
                        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                        .map(|d| Self::StartTime(d.as_millis() as i64))
                        .ok_or_else(|| problem(format!("start_time {s:?}")))
                }
                _ => Err(problem("table".into())),
            },
            other => Err(problem(other.type_str().to_owned())),
        }
    }
}

/// How a stream keeps messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retention {
    /// Up to the stream's limits.
    #[default]
    Limits,
    /// Until a consumer acknowledges them.
    WorkQueue,
    /// While some consumer has not acknowledged them.
    Interest,
}

/// Where a stream keeps messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// On disk.
    #[default]
    File,
    /// In memory.
    Memory,
}

/// A stream made when it does not exist yet (an existing stream is bound as it is).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSettings {
    /// Subjects the stream stores.
    pub subjects: Vec<String>,
    /// `limits`, `work_queue` or `interest`.
    #[serde(default)]
    pub retention: Retention,
    /// `file` or `memory`.
    #[serde(default)]
    pub storage: Storage,
    /// Oldest message kept.
    #[serde(default)]
    pub max_age: Option<Duration>,
    /// Most bytes kept.
    #[serde(default)]
    pub max_bytes: Option<i64>,
    /// Most messages kept.
    #[serde(default)]
    pub max_messages: Option<i64>,
    /// Window in which a repeated `Nats-Msg-Id` is dropped.
    #[serde(default)]
    pub duplicate_window: Option<Duration>,
    /// Replicas in a cluster.
    #[serde(default = "StreamSettings::default_replicas")]
    pub replicas: usize,
}

impl StreamSettings {
    const fn default_replicas() -> usize {
        1
    }
}

/// How much one pull asks for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchSettings {
    /// Messages per pull (the source's batch size when unset).
    #[serde(default)]
    pub max_messages: Option<usize>,
    /// Bytes per pull; unset leaves it to the server.
    #[serde(default)]
    pub max_bytes: Option<usize>,
    /// How long a pull waits on the server for messages.
    #[serde(default = "FetchSettings::default_expires")]
    pub expires: Duration,
}

impl FetchSettings {
    const fn default_expires() -> Duration {
        Duration::from_secs(1)
    }
}

impl Default for FetchSettings {
    fn default() -> Self {
        Self {
            max_messages: None,
            max_bytes: None,
            expires: Self::default_expires(),
        }
    }
}

/// `type = "jetstream"` as a source: a durable pull consumer with explicit acks. A message
/// is acked once every event made from it is handled; one a stage fails is nak'ed with
/// `nak_delay` and redelivered, and after `max_deliver` deliveries dead-lettered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JetStreamSourceConfig {
    /// Server URLs, comma-separated.
    pub servers: String,
    /// Credentials.
    #[serde(default)]
    pub auth: NatsAuth,
    /// The stream.
    pub stream: String,
    /// The durable consumer's name; instances bound to one consumer share its messages.
    pub consumer: String,
    /// Made when the stream does not exist; without it a missing stream is an error.
    #[serde(default)]
    pub create_stream: Option<StreamSettings>,
    /// Only messages of this subject (for a consumer Weir makes).
    #[serde(default)]
    pub filter_subject: Option<String>,
    /// Where a consumer Weir makes starts.
    #[serde(default)]
    pub deliver: DeliverFrom,
    /// How long the server waits for an ack before delivering again.
    #[serde(default = "JetStreamSourceConfig::default_ack_wait")]
    pub ack_wait: Duration,
    /// Deliveries of one message before it is dead-lettered.
    #[serde(default = "JetStreamSourceConfig::default_max_deliver")]
    pub max_deliver: i64,
    /// Delay asked for with a nak, before the message is delivered again.
    #[serde(default = "JetStreamSourceConfig::default_nak_delay")]
    pub nak_delay: Duration,
    /// Unacknowledged messages the server lets this consumer have out at once.
    #[serde(default = "JetStreamSourceConfig::default_max_ack_pending")]
    pub max_ack_pending: i64,
    /// Pull sizes.
    #[serde(default)]
    pub fetch: FetchSettings,
    /// How payloads are read: `json`, `msgpack` or `raw`.
    #[serde(default)]
    pub format: EdgeFormat,
}

impl JetStreamSourceConfig {
    const fn default_ack_wait() -> Duration {
        Duration::from_secs(30)
    }
    const fn default_max_deliver() -> i64 {
        5
    }
    const fn default_nak_delay() -> Duration {
        Duration::from_secs(1)
    }
    const fn default_max_ack_pending() -> i64 {
        20_000
    }
}

/// `type = "jetstream"` as a sink: publishes with publish acks, `Nats-Msg-Id` set so the
/// stream's duplicate window drops repeats.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JetStreamSinkConfig {
    /// Server URLs, comma-separated.
    pub servers: String,
    /// Credentials.
    #[serde(default)]
    pub auth: NatsAuth,
    /// Subject, with `{field}` placeholders filled from the payload.
    pub subject: String,
    /// Payload field whose value is the `Nats-Msg-Id`; unset, events from a JetStream
    /// source get `STREAM:SEQUENCE[:N]` of the message they came from.
    #[serde(default)]
    pub msg_id_field: Option<String>,
    /// Batches whose publish acks are awaited at once.
    #[serde(default = "JetStreamSinkConfig::default_in_flight")]
    pub max_in_flight: usize,
    /// Stages or sources it writes.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// How payloads are written: `json`, `msgpack` or `raw`.
    #[serde(default)]
    pub format: EdgeFormat,
    /// Overload policy.
    #[serde(default)]
    pub overload: OverloadConfig,
}

impl JetStreamSinkConfig {
    const fn default_in_flight() -> usize {
        16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        deliver: DeliverFrom,
    }

    fn deliver(text: &str) -> Result<DeliverFrom, String> {
        toml::from_str::<Holder>(&format!("deliver = {text}"))
            .map(|h| h.deliver)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn deliver_policies_read_as_written() {
        assert_eq!(deliver("\"all\""), Ok(DeliverFrom::All));
        assert_eq!(deliver("\"new\""), Ok(DeliverFrom::New));
        assert_eq!(
            deliver("{ start_sequence = 42 }"),
            Ok(DeliverFrom::StartSequence(42))
        );
        assert_eq!(
            deliver("{ start_time = \"1970-01-01T00:00:01Z\" }"),
            Ok(DeliverFrom::StartTime(1000))
        );
        let bad = deliver("{ start_sequence = 0 }").expect_err("sequences start at 1");
        assert!(bad.contains("start_sequence"), "{bad}");
        assert!(deliver("\"first\"").is_err());
    }
}
