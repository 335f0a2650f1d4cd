//! At-least-once delivery: acknowledgement tokens that follow events from their source
//! position to every sink, the tracker that turns completions into a safe position to
//! resume from, position checkpoints, dedup, and dead-letter events.

mod ack;
mod checkpoint;
mod dead_letter;
mod dedup;
mod log_limit;
mod redelivery;

pub use ack::{AckToken, AckTracker, Completion};
pub use checkpoint::{CheckpointError, CheckpointStore};
pub use dead_letter::{DeadLetterReason, dead_letter_event};
pub use dedup::Dedup;
pub use log_limit::{LOG_LINES_PER_SECOND, LogLimiter};
pub use redelivery::{Redelivery, RedeliveryRequest};
