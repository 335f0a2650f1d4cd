//! Kafka through librdkafka: a consumer-group source that commits only handled offsets, an
//! idempotent (optionally transactional) sink, and exactly-once between them.

mod client;
mod delivery;
mod metrics;
mod partitions;
pub mod sink;
pub mod source;
mod transaction;

pub use client::{check, consumer_config, producer_config};
pub use metrics::{KafkaFamilies, KafkaSourceMetrics};
pub use transaction::TransactionLink;
