//! The window stage's engine: keyed event-time windows (tumbling, sliding, session,
//! count) with watermarks, allowed lateness and built-in aggregations, and the watermark
//! of several inputs.

mod aggregate;
mod assign;
mod engine;
mod value;
mod watermark;

pub use aggregate::{AggKind, AggSpec, PERCENTILE_RELATIVE_ERROR};
pub use assign::{MAX_EVENT_TIME, WindowKind};
pub use engine::{Added, Firing, GroupKey, Limit, WindowEngine, WindowResult};
pub use value::Scalar;
pub use watermark::WatermarkTracker;
