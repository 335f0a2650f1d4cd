//! The pipeline file's structure. Every table refuses unknown keys; every field that may be
//! left out says its default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::duration::Duration;

/// A whole pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// The HTTP side: health, metrics, admin.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where plugins live and the limits they run under.
    #[serde(default)]
    pub plugins: PluginsConfig,
    /// Where source positions are checkpointed.
    #[serde(default)]
    pub state: StateConfig,
    /// Where events that fail go. Without it, failures are logged and counted only.
    #[serde(default)]
    pub dead_letter: Option<DeadLetterConfig>,
    /// Batching, channel sizes and shutdown.
    #[serde(default)]
    pub flow: FlowConfig,
    /// Event sources by name.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    /// Stages by name.
    #[serde(default)]
    pub stages: BTreeMap<String, StageConfig>,
    /// Sinks by name.
    #[serde(default)]
    pub sinks: BTreeMap<String, SinkConfig>,
}

/// `[server]`: the HTTP side.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on; loopback by default so nothing is exposed unasked.
    #[serde(default = "ServerConfig::default_bind")]
    pub bind: SocketAddr,
    /// Set to false to run without the HTTP side.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Bearer token the admin endpoints (`/api/v1/plugins`, reload) require when set; use
    /// `${ENV}` to keep it out of the file.
    #[serde(default)]
    pub admin_token: Option<String>,
    /// The live event feed (`/api/v1/events/...`).
    #[serde(default)]
    pub feed: FeedConfig,
}

/// What the feed does with a client that reads slower than events come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SlowClients {
    /// Jump to the newest events and tell the client how many it missed.
    #[default]
    Skip,
    /// Close the client's connection.
    Disconnect,
}

/// `[server.feed]`: the live event feed and its history.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// Events kept per watched output, for `Last-Event-ID` resumes and `/history`.
    #[serde(default = "FeedConfig::default_history")]
    pub history: usize,
    /// How long an output keeps recording after its last client leaves (or its history was
    /// last read); a tap records nothing while nobody watches.
    #[serde(default = "FeedConfig::default_linger")]
    pub linger: Duration,
    /// Events a client may fall behind before `slow_clients` applies.
    #[serde(default = "FeedConfig::default_client_buffer")]
    pub client_buffer: u64,
    /// `skip` (default) or `disconnect`.
    #[serde(default)]
    pub slow_clients: SlowClients,
    /// A client whose connection takes nothing for this long is disconnected, whatever
    /// `slow_clients` says.
    #[serde(default = "FeedConfig::default_stall_timeout")]
    pub stall_timeout: Duration,
    /// Clients at once that get gzip (each has an encoder of its own); others get plain
    /// text.
    #[serde(default = "FeedConfig::default_max_gzip_clients")]
    pub max_gzip_clients: usize,
    /// A comment line sent this long after the last message, so proxies keep the stream.
    #[serde(default = "FeedConfig::default_heartbeat")]
    pub heartbeat: Duration,
    /// Clients at once, in all.
    #[serde(default = "FeedConfig::default_max_clients")]
    pub max_clients: usize,
    /// Clients at once from one IP address.
    #[serde(default = "FeedConfig::default_max_clients_per_ip")]
    pub max_clients_per_ip: usize,
    /// New feed requests per second from one IP address, on average...
    #[serde(default = "FeedConfig::default_requests_per_second")]
    pub requests_per_second: f64,
    /// ...and at once.
    #[serde(default = "FeedConfig::default_request_burst")]
    pub request_burst: f64,
    /// The feed needs the admin token too (`Authorization: Bearer` or `?token=`, since a
    /// browser's `EventSource` cannot set headers).
    #[serde(default)]
    pub require_token: bool,
}

impl FeedConfig {
    fn default_history() -> usize {
        10_000
    }
    fn default_linger() -> Duration {
        Duration::from_secs(600)
    }
    fn default_client_buffer() -> u64 {
        10_000
    }
    fn default_stall_timeout() -> Duration {
        Duration::from_secs(30)
    }
    fn default_max_gzip_clients() -> usize {
        64
    }
    fn default_heartbeat() -> Duration {
        Duration::from_secs(15)
    }
    fn default_max_clients() -> usize {
        4_096
    }
    fn default_max_clients_per_ip() -> usize {
        1_024
    }
    fn default_requests_per_second() -> f64 {
        50.0
    }
    fn default_request_burst() -> f64 {
        1_024.0
    }
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            history: Self::default_history(),
            linger: Self::default_linger(),
            client_buffer: Self::default_client_buffer(),
            slow_clients: SlowClients::default(),
            stall_timeout: Self::default_stall_timeout(),
            max_gzip_clients: Self::default_max_gzip_clients(),
            heartbeat: Self::default_heartbeat(),
            max_clients: Self::default_max_clients(),
            max_clients_per_ip: Self::default_max_clients_per_ip(),
            requests_per_second: Self::default_requests_per_second(),
            request_burst: Self::default_request_burst(),
            require_token: false,
        }
    }
}

impl ServerConfig {
    fn default_bind() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 9464))
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: Self::default_bind(),
            enabled: true,
            admin_token: None,
            feed: FeedConfig::default(),
        }
    }
}

/// `[plugins]`: the plugin directory and the limits plugins run under.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Directory of `NAME.wasm` files, relative to the working directory.
    #[serde(default = "PluginsConfig::default_dir")]
    pub dir: PathBuf,
    /// CPU time one call may take before it is stopped.
    #[serde(default = "PluginsConfig::default_timeout")]
    pub timeout: Duration,
    /// Linear memory one instance may grow to, in MiB.
    #[serde(default = "PluginsConfig::default_memory_mb")]
    pub memory_mb: u64,
    /// Compile cache directory; `$WEIR_CACHE_DIR` or `~/.cache/weir/components` when unset.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Watch the directory and hot-reload plugins whose files change.
    #[serde(default = "default_true")]
    pub watch: bool,
}

impl PluginsConfig {
    fn default_dir() -> PathBuf {
        PathBuf::from("plugins")
    }
    const fn default_timeout() -> Duration {
        Duration::from_millis(100)
    }
    const fn default_memory_mb() -> u64 {
        128
    }
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            dir: Self::default_dir(),
            timeout: Self::default_timeout(),
            memory_mb: Self::default_memory_mb(),
            cache_dir: None,
            watch: true,
        }
    }
}

/// `[state]`: where checkpoints are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Data directory for source positions (created when missing).
    #[serde(default = "StateConfig::default_dir")]
    pub dir: PathBuf,
    /// How often acknowledged positions are written.
    #[serde(default = "StateConfig::default_interval")]
    pub checkpoint_interval: Duration,
    /// How often stateful stages (windows) write their state; what they fold in is
    /// acknowledged to its source only once a checkpoint holds it.
    #[serde(default = "StateConfig::default_stage_interval")]
    pub stage_checkpoint_interval: Duration,
}

impl StateConfig {
    fn default_dir() -> PathBuf {
        PathBuf::from("weir-state")
    }
    const fn default_interval() -> Duration {
        Duration::from_millis(200)
    }
    const fn default_stage_interval() -> Duration {
        Duration::from_millis(1000)
    }
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            dir: Self::default_dir(),
            checkpoint_interval: Self::default_interval(),
            stage_checkpoint_interval: Self::default_stage_interval(),
        }
    }
}

/// `[dead_letter]`: the sink failed events go to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// Name of a sink in `[sinks]`; it needs no `inputs`.
    pub sink: String,
}

/// `[flow]`: batching, channel sizes and shutdown.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowConfig {
    /// Events per batch a source makes (plugins are fastest at 256–1024).
    #[serde(default = "FlowConfig::default_batch_size")]
    pub batch_size: usize,
    /// How long a source waits to fill a batch before sending it partly full.
    #[serde(default = "FlowConfig::default_linger")]
    pub linger: Duration,
    /// Batches each channel between two components holds; a full channel slows the sender.
    #[serde(default = "FlowConfig::default_channel_capacity")]
    pub channel_capacity: usize,
    /// Time allowed on SIGTERM/SIGINT to drain in-flight events before exiting anyway.
    #[serde(default = "FlowConfig::default_shutdown_grace")]
    pub shutdown_grace: Duration,
}

impl FlowConfig {
    const fn default_batch_size() -> usize {
        512
    }
    const fn default_linger() -> Duration {
        Duration::from_millis(5)
    }
    const fn default_channel_capacity() -> usize {
        8
    }
    const fn default_shutdown_grace() -> Duration {
        Duration::from_secs(10)
    }
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            batch_size: Self::default_batch_size(),
            linger: Self::default_linger(),
            channel_capacity: Self::default_channel_capacity(),
            shutdown_grace: Self::default_shutdown_grace(),
        }
    }
}

/// How bytes at a pipeline's edge map to event payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeFormat {
    /// One JSON value per line, converted to MessagePack inside Weir.
    #[default]
    Json,
    /// MessagePack values, kept as they are.
    Msgpack,
    /// Bytes kept as they are (one line per event for line-based connectors).
    Raw,
}

/// A source, told apart by `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    /// Synthetic events for demos and benchmarks.
    Generator(GeneratorConfig),
    /// A file of JSON lines or MessagePack, read once or followed.
    File(FileSourceConfig),
    /// Standard input, read to its end.
    Stdin(StdinSourceConfig),
    /// Events POSTed to `/ingest/NAME` on the HTTP side.
    Http(HttpSourceConfig),
    /// A Kafka consumer group member.
    Kafka(super::kafka::KafkaSourceConfig),
    /// Core NATS subjects, optionally in a queue group.
    Nats(super::nats::NatsSourceConfig),
    /// A JetStream durable pull consumer.
    Jetstream(Box<super::nats::JetStreamSourceConfig>),
}

/// `type = "http"` as a source: `POST /ingest/NAME` with NDJSON, a JSON array, or
/// MessagePack values. Answers 202 once the events are in the pipeline, 429 with
/// `Retry-After` while the pipeline is full, 400 with the reason for bad input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSourceConfig {
    /// `json` (NDJSON or one JSON array) or `msgpack` (concatenated values).
    #[serde(default)]
    pub format: EdgeFormat,
    /// Largest request body taken, in bytes.
    #[serde(default = "HttpSourceConfig::default_max_body")]
    pub max_body_bytes: usize,
}

impl HttpSourceConfig {
    const fn default_max_body() -> usize {
        16 * 1024 * 1024
    }
}

/// `type = "generator"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorConfig {
    /// Events to make before the source ends; unset runs for ever.
    #[serde(default)]
    pub count: Option<u64>,
    /// Events per second; unset makes them as fast as downstream takes them.
    #[serde(default)]
    pub rate: Option<f64>,
    /// The payload: a table whose string values may hold placeholders: `{{seq}}`,
    /// `{{int(LOW,HIGH)}}`, `{{float(LOW,HIGH)}}`, `{{choice(a|b|c)}}`, `{{now}}`. A string
    /// that is only one numeric placeholder becomes a number.
    #[serde(default)]
    pub template: Option<toml::Table>,
    /// The event key, a string with the same placeholders; unset leaves events unkeyed.
    #[serde(default)]
    pub key: Option<String>,
}

/// `type = "file"` as a source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// The file to read.
    pub path: PathBuf,
    /// `json` (one value per line), `msgpack` (concatenated values) or `raw` (lines).
    #[serde(default)]
    pub format: EdgeFormat,
    /// Keep reading as the file grows, like `tail -F`, instead of ending at its end.
    #[serde(default)]
    pub follow: bool,
    /// How often a followed file is checked for new data.
    #[serde(default = "FileSourceConfig::default_poll")]
    pub poll_interval: Duration,
}

impl FileSourceConfig {
    const fn default_poll() -> Duration {
        Duration::from_millis(100)
    }
}

/// `type = "stdin"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdinSourceConfig {
    /// `json` or `raw` lines (`msgpack` for a binary stream).
    #[serde(default)]
    pub format: EdgeFormat,
}

impl PipelineConfig {
    /// Whether events of `source` (a source or stage) can reach stage `stage`.
    pub fn feeds(&self, source: &str, stage: &str) -> bool {
        let Some(node) = self.stages.get(stage) else {
            return false;
        };
        node.inputs().iter().any(|input| {
            let producer = input.split_once('.').map_or(input.as_str(), |(p, _)| p);
            producer == source || (producer != stage && self.feeds(source, producer))
        })
    }
}

/// A stage, told apart by `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StageConfig {
    /// A wasm handler plugin.
    Handler(HandlerStageConfig),
    /// Keeps the events a condition holds for.
    Filter(FilterStageConfig),
    /// Sends each event to the first route whose condition holds.
    Route(RouteStageConfig),
    /// Keyed windows with named aggregations, on event time.
    Window(super::WindowStageConfig),
    /// A `pattern` plugin over a keyed stream in event-time order.
    Pattern(super::PatternStageConfig),
}

impl StageConfig {
    /// The names this stage reads from.
    pub fn inputs(&self) -> &[String] {
        match self {
            Self::Handler(c) => &c.inputs,
            Self::Filter(c) => &c.inputs,
            Self::Route(c) => &c.inputs,
            Self::Window(c) => &c.inputs,
            Self::Pattern(c) => &c.inputs,
        }
    }

    /// Workers this stage runs with.
    pub fn parallelism(&self) -> usize {
        match self {
            Self::Handler(c) => c.parallelism,
            Self::Filter(c) => c.parallelism,
            Self::Route(_) => 1,
            Self::Window(c) => c.parallelism,
            Self::Pattern(c) => c.parallelism,
        }
    }

    /// Its dedup settings, if any.
    pub fn dedup(&self) -> Option<&DedupConfig> {
        match self {
            Self::Handler(c) => c.dedup.as_ref(),
            Self::Filter(c) => c.dedup.as_ref(),
            Self::Route(_) | Self::Window(_) | Self::Pattern(_) => None,
        }
    }
}

/// `type = "handler"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerStageConfig {
    /// Plugin name: the stem of a `.wasm` file in the plugin directory.
    pub plugin: String,
    /// Configuration handed to the plugin's `init`, as JSON.
    #[serde(default)]
    pub config: toml::Table,
    /// Sources or stages this stage reads from.
    pub inputs: Vec<String>,
    /// Workers, each with its own instance; events are routed by key so per-key order holds.
    #[serde(default = "one")]
    pub parallelism: usize,
    /// Drop repeats of an event id before the plugin sees them.
    #[serde(default)]
    pub dedup: Option<DedupConfig>,
    /// When to quarantine the plugin after faults, and what to do meanwhile.
    #[serde(default)]
    pub breaker: BreakerConfig,
    /// CPU time per call for this stage; else the plugin's `NAME.toml`, else `[plugins]`.
    #[serde(default)]
    pub timeout: Option<Duration>,
    /// Memory cap per instance in MiB for this stage; else `NAME.toml`, else `[plugins]`.
    #[serde(default)]
    pub memory_mb: Option<u64>,
}

/// What a quarantined plugin stage does with the events it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarantinePolicy {
    /// Send them to the dead-letter sink, marked `quarantined`.
    #[default]
    DeadLetter,
    /// Pass them on unchanged, as if the stage were not there.
    Skip,
    /// Stop the pipeline (drain, acknowledge, exit); the events in hand are dead-lettered.
    Stop,
}

/// `breaker = { failures = 20, window = "10s", cool_down = "30s", policy = "dead_letter" }`:
/// after `failures` faults (traps, deadlines, memory) within `window` the plugin is
/// quarantined for `cool_down`, then one batch is tried; a clean one, or a new version
/// dropped in, ends the quarantine.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Faults that trip the breaker.
    #[serde(default = "BreakerConfig::default_failures")]
    pub failures: u32,
    /// The window they are counted in.
    #[serde(default = "BreakerConfig::default_window")]
    pub window: Duration,
    /// How long the quarantine lasts before a trial batch.
    #[serde(default = "BreakerConfig::default_cool_down")]
    pub cool_down: Duration,
    /// What happens to events while quarantined.
    #[serde(default)]
    pub policy: QuarantinePolicy,
}

impl BreakerConfig {
    const fn default_failures() -> u32 {
        20
    }
    const fn default_window() -> Duration {
        Duration::from_secs(10)
    }
    const fn default_cool_down() -> Duration {
        Duration::from_secs(30)
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: Self::default_failures(),
            window: Self::default_window(),
            cool_down: Self::default_cool_down(),
            policy: QuarantinePolicy::default(),
        }
    }
}

/// `type = "filter"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterStageConfig {
    /// The condition over payload fields, e.g. `amount > 50 && user.country == "NL"`.
    pub condition: String,
    /// Sources or stages this stage reads from.
    pub inputs: Vec<String>,
    /// Workers; events are routed by key so per-key order holds.
    #[serde(default = "one")]
    pub parallelism: usize,
    /// Drop repeats of an event id.
    #[serde(default)]
    pub dedup: Option<DedupConfig>,
}

/// `type = "route"`: outputs are named `STAGE.ROUTE`, plus `STAGE.unmatched`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteStageConfig {
    /// Route name to condition, tried in the order written; the first that holds wins.
    pub routes: toml::Table,
    /// Sources or stages this stage reads from.
    pub inputs: Vec<String>,
}

/// Drops events whose id was seen within the last `window` ids.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupConfig {
    /// Payload field (dotted path) holding the event id.
    pub field: String,
    /// Ids remembered; older ones are forgotten first.
    #[serde(default = "DedupConfig::default_window")]
    pub window: usize,
}

impl DedupConfig {
    const fn default_window() -> usize {
        100_000
    }
}

/// What a sink does when it cannot keep up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverloadPolicy {
    /// Wait for room: slows everything before it, up to the sources.
    #[default]
    Block,
    /// Drop the oldest waiting batch to make room.
    DropOldest,
    /// Drop the batch that does not fit.
    DropNewest,
    /// Keep one event in `sample_rate` while full.
    Sample,
}

/// A sink, told apart by `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    /// Standard output, one event per line.
    Stdout(StdoutSinkConfig),
    /// A file of JSON lines (or MessagePack / raw), rotated by size or time.
    File(FileSinkConfig),
    /// Counts events and discards them.
    Null(NullSinkConfig),
    /// POSTs each batch to a URL.
    Http(HttpSinkConfig),
    /// Produces to a Kafka topic.
    Kafka(super::kafka::KafkaSinkConfig),
    /// Publishes on core NATS.
    Nats(super::nats::NatsSinkConfig),
    /// Publishes to a JetStream stream, with publish acks.
    Jetstream(super::nats::JetStreamSinkConfig),
}

/// `type = "http"` as a sink: one POST per batch (NDJSON, or MessagePack values), retried
/// with backoff on failure, then dead-lettered. Any 2xx answer acknowledges the batch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSinkConfig {
    /// Where to POST (`http://`; put secrets in `headers` through `${ENV}`).
    pub url: String,
    /// Stages or sources it writes.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// `json` (NDJSON body) or `msgpack`.
    #[serde(default)]
    pub format: EdgeFormat,
    /// Send `{"key", "time", "headers", "payload"}` per event instead of the payload alone.
    #[serde(default)]
    pub envelope: bool,
    /// Extra request headers, e.g. `{ Authorization = "Bearer ${TOKEN}" }`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Time allowed for one request, connection included.
    #[serde(default = "HttpSinkConfig::default_timeout")]
    pub timeout: Duration,
    /// Overload policy.
    #[serde(default)]
    pub overload: OverloadConfig,
}

impl HttpSinkConfig {
    const fn default_timeout() -> Duration {
        Duration::from_secs(10)
    }
}

impl SinkConfig {
    /// The names this sink reads from.
    pub fn inputs(&self) -> &[String] {
        match self {
            Self::Stdout(c) => &c.inputs,
            Self::File(c) => &c.inputs,
            Self::Null(c) => &c.inputs,
            Self::Http(c) => &c.inputs,
            Self::Kafka(c) => &c.inputs,
            Self::Nats(c) => &c.inputs,
            Self::Jetstream(c) => &c.inputs,
        }
    }

    /// How it behaves when it cannot keep up.
    pub fn overload(&self) -> &OverloadConfig {
        match self {
            Self::Stdout(c) => &c.overload,
            Self::File(c) => &c.overload,
            Self::Null(c) => &c.overload,
            Self::Http(c) => &c.overload,
            Self::Kafka(c) => &c.overload,
            Self::Nats(c) => &c.overload,
            Self::Jetstream(c) => &c.overload,
        }
    }
}

/// Overload settings shared by every sink.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverloadConfig {
    /// `block` (default), `drop_oldest`, `drop_newest` or `sample`.
    #[serde(default)]
    pub policy: OverloadPolicy,
    /// For `sample`: keep one event in this many while full.
    #[serde(default)]
    pub sample_rate: Option<u32>,
    /// Write delay per batch, to model a slow destination in tests and rehearsals.
    #[serde(default)]
    pub delay: Option<Duration>,
}

/// `type = "stdout"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {
    /// Stages or sources it writes.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// `json`, `msgpack` or `raw`.
    #[serde(default)]
    pub format: EdgeFormat,
    /// Write each event as `{"key", "time", "headers", "payload"}` instead of the payload
    /// alone (JSON only); dead-letter sinks want this to keep the failure headers.
    #[serde(default)]
    pub envelope: bool,
    /// Overload policy.
    #[serde(default)]
    pub overload: OverloadConfig,
}

/// `type = "file"` as a sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The file to append to; rotated files get a `.N` suffix.
    pub path: PathBuf,
    /// Stages or sources it writes.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// `json`, `msgpack` or `raw`.
    #[serde(default)]
    pub format: EdgeFormat,
    /// Write each event as `{"key", "time", "headers", "payload"}` instead of the payload
    /// alone (JSON only); dead-letter sinks want this to keep the failure headers.
    #[serde(default)]
    pub envelope: bool,
    /// Rotate once the file reaches this many bytes.
    #[serde(default)]
    pub rotate_bytes: Option<u64>,
    /// Rotate once the file is this old.
    #[serde(default)]
    pub rotate_interval: Option<Duration>,
    /// Overload policy.
    #[serde(default)]
    pub overload: OverloadConfig,
}

/// `type = "null"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NullSinkConfig {
    /// Stages or sources it takes.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Overload policy.
    #[serde(default)]
    pub overload: OverloadConfig,
}

const fn default_true() -> bool {
    true
}

const fn one() -> usize {
    1
}
