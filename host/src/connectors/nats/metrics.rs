//! NATS and JetStream metrics: consumer pending and ack-pending (the lag), redeliveries,
//! naks, and publish latency and errors.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::metrics::ComponentLabel;

fn publish_histogram() -> Histogram {
    // 50 µs to ~1.6 s by factors of 2: one publish ack round trip.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// The NATS metric families, registered once with the rest.
#[derive(Clone, Debug)]
pub struct NatsFamilies {
    pending: Family<ComponentLabel, Gauge>,
    ack_pending: Family<ComponentLabel, Gauge>,
    redeliveries: Family<ComponentLabel, Counter>,
    naks: Family<ComponentLabel, Counter>,
    publish_seconds: Family<ComponentLabel, Histogram, fn() -> Histogram>,
    publish_errors: Family<ComponentLabel, Counter>,
}

impl NatsFamilies {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let families = Self {
            pending: Family::default(),
            ack_pending: Family::default(),
            redeliveries: Family::default(),
            naks: Family::default(),
            publish_seconds: Family::new_with_constructor(publish_histogram as fn() -> _),
            publish_errors: Family::default(),
        };
        registry.register(
            "weir_jetstream_consumer_pending",
            "Messages in the stream not yet delivered to a JetStream source's consumer",
            families.pending.clone(),
        );
        registry.register(
            "weir_jetstream_consumer_ack_pending",
            "Messages delivered to a JetStream source's consumer and not yet acknowledged",
            families.ack_pending.clone(),
        );
        registry.register(
            "weir_jetstream_redeliveries",
            "Messages a JetStream source received again (delivery count above one)",
            families.redeliveries.clone(),
        );
        registry.register(
            "weir_jetstream_naks",
            "Messages a JetStream source nak'ed for redelivery",
            families.naks.clone(),
        );
        registry.register(
            "weir_nats_publish_seconds",
            "Time from publishing a batch to its last publish ack (JetStream) or flush (core NATS)",
            families.publish_seconds.clone(),
        );
        registry.register(
            "weir_nats_publish_errors",
            "Messages whose publish failed (each attempt counted)",
            families.publish_errors.clone(),
        );
        families
    }

    /// The handles of JetStream source `name`.
    pub fn source(&self, name: &str) -> JetStreamSourceMetrics {
        let label = ComponentLabel {
            component: name.to_owned(),
        };
        JetStreamSourceMetrics {
            pending: self.pending.get_or_create(&label).clone(),
            ack_pending: self.ack_pending.get_or_create(&label).clone(),
            redeliveries: self.redeliveries.get_or_create(&label).clone(),
            naks: self.naks.get_or_create(&label).clone(),
        }
    }

    /// The handles of NATS or JetStream sink `name`.
    pub fn sink(&self, name: &str) -> PublishMetrics {
        let label = ComponentLabel {
            component: name.to_owned(),
        };
        PublishMetrics {
            seconds: self.publish_seconds.get_or_create(&label).clone(),
            errors: self.publish_errors.get_or_create(&label).clone(),
        }
    }
}

/// The metric handles of one JetStream source.
#[derive(Clone, Debug)]
pub struct JetStreamSourceMetrics {
    /// Messages not yet delivered.
    pub pending: Gauge,
    /// Messages delivered and not acknowledged.
    pub ack_pending: Gauge,
    /// Messages received more than once.
    pub redeliveries: Counter,
    /// Messages nak'ed.
    pub naks: Counter,
}

/// The metric handles of one NATS or JetStream sink.
#[derive(Clone, Debug)]
pub struct PublishMetrics {
    /// Batch publish latency.
    pub seconds: Histogram,
    /// Failed publishes.
    pub errors: Counter,
}
