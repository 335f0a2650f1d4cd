//! The pattern stage: a keyed stream matched in event-time order, by a pattern declared in
//! the pipeline file (the FlinkCEP vocabulary, run by a per-key automaton) or by a
//! `pattern` plugin whose per-key state and timers the host holds, checkpoints and carries
//! over reloads.

mod buffer;
mod declared;
mod keyed;
mod matcher;
pub mod nfa;
mod operator;
pub mod spec;

pub use declared::{DeclaredMatcher, match_payload};
pub use keyed::{KeyedMatcher, Step, TIMEOUT_PORT};
pub use matcher::PluginMatcher;
pub use operator::PatternOperator;
