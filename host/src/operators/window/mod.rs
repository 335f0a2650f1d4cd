//! The window stage and its engine: keyed event-time windows (tumbling, sliding, session,
//! count) with watermarks, allowed lateness and built-in aggregations, and the watermark
//! of several inputs.

mod aggregate;
mod assign;
mod custom;
mod engine;
mod operator;
mod value;
mod watermark;

pub use aggregate::{AggKind, AggSpec, PERCENTILE_RELATIVE_ERROR, StableHasher, stable_hash};
pub use assign::{GLOBAL_END, GLOBAL_START, MAX_EVENT_TIME, WindowKind};
pub use custom::{CustomAggregations, PluginAggregation, PluginAggregations};
pub use engine::{Added, Firing, GroupKey, Limit, WindowEngine, WindowResult};
pub use operator::{SourceOrder, WindowOperator, worker_of};
pub use value::Scalar;
pub use watermark::WatermarkTracker;
