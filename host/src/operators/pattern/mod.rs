//! The pattern stage: a keyed stream fed in event-time order to a `pattern` plugin, whose
//! per-key state and timers the host holds, checkpoints and carries over reloads.

mod matcher;
mod operator;

pub use matcher::PluginMatcher;
pub use operator::PatternOperator;
