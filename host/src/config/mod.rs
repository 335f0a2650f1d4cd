//! The pipeline file: serde structs with their defaults, loading with environment
//! interpolation, and validation that names the file, line and key of every problem.
//!
//! ```toml
//! [plugins]
//! dir = "target/plugins"
//! [sources.in]
//! type = "file"
//! path = "events.jsonl"
//! format = "json"
//! [stages.big]
//! type = "handler"
//! plugin = "threshold"
//! inputs = ["in"]
//! config = { field = "amount", min = 50 }
//! [sinks.out]
//! type = "file"
//! path = "out.jsonl"
//! inputs = ["big"]
//! ```

mod duration;
mod kafka;
mod load;
mod model;
mod nats;
mod pattern;
mod validate;
mod window;

pub use duration::Duration;
pub use kafka::{
    KafkaOptionValue, KafkaOptions, KafkaSinkConfig, KafkaSourceConfig, StartPosition,
};
pub use load::{ConfigError, ConfigProblem, LoadedConfig, load_pipeline, parse_pipeline};
pub use model::*;
pub use nats::{
    DeliverFrom, FetchSettings, JetStreamSinkConfig, JetStreamSourceConfig, NatsAuth,
    NatsSinkConfig, NatsSourceConfig, Retention, Storage, StreamSettings,
};
pub use pattern::{
    LoopContiguity, PartConfig, PatternMatcher, PatternStageConfig, StateUpgradeName, StepConfig,
    StepRelation, Times,
};
pub use validate::{LATE_PORT, MAX_PARALLELISM, PluginCatalog, UNMATCHED_ROUTE};
pub use window::{
    Aggregations, EmitMode, LatePolicy, PluginAggConfig, StateUpgrade, WindowShape,
    WindowStageConfig,
};
