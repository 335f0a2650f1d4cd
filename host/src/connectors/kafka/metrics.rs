//! Kafka connector metrics: consumer lag per partition, commit latency and failures, paused
//! partitions, rebalances, and produce errors.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::metrics::ComponentLabel;

/// Labels of per-partition gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    /// Source name.
    pub source: String,
    /// Topic.
    pub topic: String,
    /// Partition number.
    pub partition: String,
}

/// Labels of per-connector series with an outcome or kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectorLabels {
    /// Source or sink name.
    pub component: String,
    /// A fixed word (`assign`, `revoke`, `ok`, `failed`, ...).
    pub kind: String,
}

fn commit_histogram() -> Histogram {
    // 0.1 ms to ~6.5 s by factors of 2: a commit is one broker round trip, or a transaction.
    Histogram::new(exponential_buckets(0.000_1, 2.0, 17))
}

/// The Kafka metric families, registered once with the rest.
#[derive(Clone, Debug)]
pub struct KafkaFamilies {
    lag: Family<PartitionLabels, Gauge>,
    paused: Family<ComponentLabel, Gauge>,
    commits: Family<ConnectorLabels, Counter>,
    commit_seconds: Family<ComponentLabel, Histogram, fn() -> Histogram>,
    rebalances: Family<ConnectorLabels, Counter>,
    produce_errors: Family<ComponentLabel, Counter>,
}

impl KafkaFamilies {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let families = Self {
            lag: Family::default(),
            paused: Family::default(),
            commits: Family::default(),
            commit_seconds: Family::new_with_constructor(commit_histogram as fn() -> _),
            rebalances: Family::default(),
            produce_errors: Family::default(),
        };
        registry.register(
            "weir_kafka_consumer_lag",
            "Records between a partition's committed offset and its end, as the client last saw them",
            families.lag.clone(),
        );
        registry.register(
            "weir_kafka_paused_partitions",
            "Partitions a source has paused because the pipeline is full",
            families.paused.clone(),
        );
        registry.register(
            "weir_kafka_commits",
            "Offset (or transaction) commits by result",
            families.commits.clone(),
        );
        registry.register(
            "weir_kafka_commit_duration_seconds",
            "Time of one offset or transaction commit",
            families.commit_seconds.clone(),
        );
        registry.register(
            "weir_kafka_rebalances",
            "Partition assignments and revocations a source went through",
            families.rebalances.clone(),
        );
        registry.register(
            "weir_kafka_produce_errors",
            "Records whose delivery failed (before retries or the dead-letter sink)",
            families.produce_errors.clone(),
        );
        families
    }

    /// The handles of source `name`.
    pub fn source(&self, name: &str) -> KafkaSourceMetrics {
        let kind = |family: &Family<ConnectorLabels, Counter>, kind: &str| -> Counter {
            let guard = family.get_or_create(&ConnectorLabels {
                component: name.to_owned(),
                kind: kind.to_owned(),
            });
            guard.clone()
        };
        let label = ComponentLabel {
            component: name.to_owned(),
        };
        let paused = {
            let guard = self.paused.get_or_create(&label);
            guard.clone()
        };
        let commit_seconds = {
            let guard = self.commit_seconds.get_or_create(&label);
            guard.clone()
        };
        KafkaSourceMetrics {
            name: name.to_owned(),
            lag: self.lag.clone(),
            paused,
            commits_ok: kind(&self.commits, "ok"),
            commits_failed: kind(&self.commits, "failed"),
            commit_seconds,
            assigned: kind(&self.rebalances, "assign"),
            revoked: kind(&self.rebalances, "revoke"),
        }
    }

    /// The produce error counter of sink `name`.
    pub fn produce_errors(&self, name: &str) -> Counter {
        let guard = self.produce_errors.get_or_create(&ComponentLabel {
            component: name.to_owned(),
        });
        guard.clone()
    }
}

/// The metric handles of one Kafka source.
#[derive(Clone, Debug)]
pub struct KafkaSourceMetrics {
    name: String,
    lag: Family<PartitionLabels, Gauge>,
    /// Partitions paused now.
    pub paused: Gauge,
    /// Commits that succeeded.
    pub commits_ok: Counter,
    /// Commits that failed.
    pub commits_failed: Counter,
    /// Time per commit.
    pub commit_seconds: Histogram,
    /// Assignments received.
    pub assigned: Counter,
    /// Revocations received.
    pub revoked: Counter,
}

impl KafkaSourceMetrics {
    /// Sets the lag of one partition.
    pub fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        let guard = self.lag.get_or_create(&PartitionLabels {
            source: self.name.clone(),
            topic: topic.to_owned(),
            partition: partition.to_string(),
        });
        guard.set(lag);
    }
}
