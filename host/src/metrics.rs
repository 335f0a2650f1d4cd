//! Every metric Weir exports, named and registered in one place (Prometheus text format).
//!
//! Names start `weir_`; counters end `_total` (added by the encoder), durations are
//! `_seconds` histograms. Labels are bounded: component and plugin names from the pipeline
//! file and fixed reason words, never keys or error text. Handles are fetched once per
//! component ([`Metrics::component`]) so the hot path does no lookup.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of per-component metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabel {
    /// Source, stage or sink name.
    pub component: String,
}

/// Labels of drop and failure counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Source, stage or sink name.
    pub component: String,
    /// A fixed word: `filtered`, `overload`, `dedup`, `malformed`, `plugin_error`, ...
    pub reason: String,
}

/// Labels of plugin fault counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FaultLabels {
    /// Stage name.
    pub stage: String,
    /// Plugin name.
    pub plugin: String,
    /// `deadline`, `memory`, `stack_overflow`, `trap` or `contract`.
    pub kind: String,
}

/// Labels of plugin call metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    /// Stage name.
    pub stage: String,
    /// Plugin name.
    pub plugin: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn end_to_end_histogram() -> Histogram {
    // 0.1 ms to ~10 s in steps of 1.5×, fine enough to read p99 against a 10 ms target.
    Histogram::new(exponential_buckets(0.000_1, 1.5, 30))
}

fn latency_histogram() -> Histogram {
    // 10 µs to ~2.6 s by factors of 4: a batch of 512 events through a plugin takes tens of
    // microseconds; a slow sink, seconds.
    Histogram::new(exponential_buckets(0.000_01, 4.0, 10))
}

/// The registry and the metric families of a running pipeline.
pub struct Metrics {
    registry: Registry,
    events_in: Family<ComponentLabel, Counter>,
    events_out: Family<ComponentLabel, Counter>,
    dropped: Family<ReasonLabels, Counter>,
    failed: Family<ReasonLabels, Counter>,
    batch_seconds: HistogramFamily<ComponentLabel>,
    channel_fill: Family<ComponentLabel, Gauge>,
    acknowledged: Family<ComponentLabel, Counter>,
    plugin_call_seconds: HistogramFamily<PluginLabels>,
    plugin_faults: Family<FaultLabels, Counter>,
    end_to_end_seconds: HistogramFamily<ComponentLabel>,
    reloads: Family<ReloadLabels, Counter>,
    reload_seconds: HistogramFamily<PluginNameLabel>,
    kafka: crate::connectors::KafkaFamilies,
    nats: crate::connectors::NatsFamilies,
    health: crate::health::Health,
    feeds: std::sync::Arc<crate::feed::Feeds>,
}

/// Labels of reload counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// Plugin name.
    pub plugin: String,
    /// `ok` or `failed`.
    pub result: String,
}

/// A plugin name label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginNameLabel {
    /// Plugin name.
    pub plugin: String,
}

/// The metric handles of one plugin's reloads.
#[derive(Clone, Debug)]
pub struct ReloadMetrics {
    /// Reloads that swapped in a new version.
    pub ok: Counter,
    /// Reloads rejected.
    pub failed: Counter,
    /// Time from noticing a change to serving the new version.
    pub seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let events_in = Family::default();
        let events_out = Family::default();
        let dropped = Family::default();
        let failed = Family::default();
        let batch_seconds = HistogramFamily::new_with_constructor(latency_histogram as fn() -> _);
        let channel_fill = Family::default();
        let acknowledged = Family::default();
        let plugin_call_seconds =
            HistogramFamily::new_with_constructor(latency_histogram as fn() -> _);
        let plugin_faults = Family::default();
        let end_to_end_seconds =
            HistogramFamily::new_with_constructor(end_to_end_histogram as fn() -> _);
        let reloads = Family::default();
        let reload_seconds = HistogramFamily::new_with_constructor(latency_histogram as fn() -> _);
        registry.register(
            "weir_plugin_reloads",
            "Plugin reloads by result",
            reloads.clone(),
        );
        registry.register(
            "weir_plugin_reload_duration_seconds",
            "Time to load, check and swap in a new plugin version",
            reload_seconds.clone(),
        );
        registry.register(
            "weir_events_in",
            "Events a component took in",
            events_in.clone(),
        );
        registry.register(
            "weir_events_out",
            "Events a component passed on or wrote",
            events_out.clone(),
        );
        registry.register(
            "weir_events_dropped",
            "Events dropped on purpose: filtered, deduplicated, or shed by an overload policy",
            dropped.clone(),
        );
        registry.register(
            "weir_events_failed",
            "Events that failed and went to the dead-letter sink (or were logged when there is none)",
            failed.clone(),
        );
        registry.register(
            "weir_batch_duration_seconds",
            "Time a component spent on one batch",
            batch_seconds.clone(),
        );
        registry.register(
            "weir_channel_fill_batches",
            "Batches waiting in a component's input channel",
            channel_fill.clone(),
        );
        registry.register(
            "weir_source_checkpoints",
            "Times a source's acknowledged position advanced (and was saved, for files)",
            acknowledged.clone(),
        );
        registry.register(
            "weir_plugin_call_duration_seconds",
            "Time of one plugin call on a batch",
            plugin_call_seconds.clone(),
        );
        registry.register(
            "weir_plugin_faults",
            "Events whose handling faulted a plugin, by fault kind (the instance was replaced)",
            plugin_faults.clone(),
        );
        registry.register(
            "weir_end_to_end_latency_seconds",
            "Time from an event's creation (its event time) to its write by a sink, per batch's oldest event",
            end_to_end_seconds.clone(),
        );
        let kafka = crate::connectors::KafkaFamilies::register(&mut registry);
        let nats = crate::connectors::NatsFamilies::register(&mut registry);
        Self {
            registry,
            kafka,
            nats,
            health: crate::health::Health::default(),
            feeds: std::sync::Arc::default(),
            events_in,
            events_out,
            dropped,
            failed,
            batch_seconds,
            channel_fill,
            acknowledged,
            plugin_call_seconds,
            plugin_faults,
            end_to_end_seconds,
            reloads,
            reload_seconds,
        }
    }

    /// The Kafka connector families.
    pub fn kafka(&self) -> &crate::connectors::KafkaFamilies {
        &self.kafka
    }

    /// The NATS and JetStream connector families.
    pub fn nats(&self) -> &crate::connectors::NatsFamilies {
        &self.nats
    }

    /// Readiness problems components report.
    pub fn health(&self) -> &crate::health::Health {
        &self.health
    }

    /// The taps on every component output, which the live feed reads.
    pub fn feeds(&self) -> &std::sync::Arc<crate::feed::Feeds> {
        &self.feeds
    }

    /// The reload handles of plugin `plugin`.
    pub fn reload(&self, plugin: &str) -> ReloadMetrics {
        let result = |result: &str| -> Counter {
            let guard = self.reloads.get_or_create(&ReloadLabels {
                plugin: plugin.to_owned(),
                result: result.to_owned(),
            });
            guard.clone()
        };
        let seconds = {
            let guard = self.reload_seconds.get_or_create(&PluginNameLabel {
                plugin: plugin.to_owned(),
            });
            guard.clone()
        };
        ReloadMetrics {
            ok: result("ok"),
            failed: result("failed"),
            seconds,
        }
    }

    /// The handles of one component.
    pub fn component(&self, name: &str) -> ComponentMetrics {
        let label = ComponentLabel {
            component: name.to_owned(),
        };
        let reason = |reason: &str| ReasonLabels {
            component: name.to_owned(),
            reason: reason.to_owned(),
        };
        // Each handle is taken in its own statement: `get_or_create` returns a read guard,
        // and a second call on the same family within one expression would deadlock.
        let counter = |family: &Family<ComponentLabel, Counter>| -> Counter {
            let guard = family.get_or_create(&label);
            guard.clone()
        };
        let dropped = |reason_word: &str| -> Counter {
            let guard = self.dropped.get_or_create(&reason(reason_word));
            guard.clone()
        };
        let failed = |reason_word: &str| -> Counter {
            let guard = self.failed.get_or_create(&reason(reason_word));
            guard.clone()
        };
        let batch_seconds = {
            let guard = self.batch_seconds.get_or_create(&label);
            guard.clone()
        };
        let end_to_end = {
            let guard = self.end_to_end_seconds.get_or_create(&label);
            guard.clone()
        };
        let channel_fill = {
            let guard = self.channel_fill.get_or_create(&label);
            guard.clone()
        };
        ComponentMetrics {
            events_in: counter(&self.events_in),
            events_out: counter(&self.events_out),
            filtered: dropped("filtered"),
            deduplicated: dropped("dedup"),
            shed: dropped("overload"),
            late_dropped: dropped("late"),
            failed: FailureCounters {
                malformed: failed("malformed"),
                plugin_error: failed("plugin_error"),
                plugin_fault: failed("plugin_fault"),
                sink_error: failed("sink_error"),
                quarantined: failed("quarantined"),
                late: failed("late"),
                state_full: failed("state_full"),
            },
            batch_seconds,
            end_to_end,
            channel_fill,
            acknowledged: counter(&self.acknowledged),
        }
    }

    /// The handles of one plugin in one stage.
    pub fn plugin(&self, stage: &str, plugin: &str) -> PluginMetrics {
        let label = PluginLabels {
            stage: stage.to_owned(),
            plugin: plugin.to_owned(),
        };
        let call_seconds = self.plugin_call_seconds.get_or_create(&label).clone();
        let fault = |kind: &str| -> Counter {
            let guard = self.plugin_faults.get_or_create(&FaultLabels {
                stage: stage.to_owned(),
                plugin: plugin.to_owned(),
                kind: kind.to_owned(),
            });
            guard.clone()
        };
        let faults = FaultCounters {
            deadline: fault("deadline"),
            memory: fault("memory"),
            stack_overflow: fault("stack_overflow"),
            trap: fault("trap"),
            contract: fault("contract"),
        };
        PluginMetrics {
            call_seconds,
            faults,
        }
    }

    /// Everything in Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Counters of failed events by reason.
#[derive(Clone, Debug)]
pub struct FailureCounters {
    /// Input that could not be decoded.
    pub malformed: Counter,
    /// Errors a plugin returned.
    pub plugin_error: Counter,
    /// Plugin faults (trap, deadline, memory).
    pub plugin_fault: Counter,
    /// Sink failures after retries.
    pub sink_error: Counter,
    /// Events a quarantined plugin stage dead-lettered.
    pub quarantined: Counter,
    /// Events too late for their windows that a window stage dead-lettered.
    pub late: Counter,
    /// Events a window stage refused because its state was at its bound.
    pub state_full: Counter,
}

impl FailureCounters {
    /// Sum over every reason.
    pub fn total(&self) -> u64 {
        self.malformed.get()
            + self.plugin_error.get()
            + self.plugin_fault.get()
            + self.sink_error.get()
            + self.late.get()
            + self.state_full.get()
    }
}

/// The metric handles of one component, cloned into its tasks.
#[derive(Clone, Debug)]
pub struct ComponentMetrics {
    /// Events taken in.
    pub events_in: Counter,
    /// Events passed on or written.
    pub events_out: Counter,
    /// Events a condition or plugin dropped.
    pub filtered: Counter,
    /// Repeats dropped by dedup.
    pub deduplicated: Counter,
    /// Events shed by an overload policy.
    pub shed: Counter,
    /// Events a window stage dropped as too late (its `late = "drop"` policy).
    pub late_dropped: Counter,
    /// Failed events by reason.
    pub failed: FailureCounters,
    /// Time per batch.
    pub batch_seconds: Histogram,
    /// Sinks: age of each batch's oldest event when written.
    pub end_to_end: Histogram,
    /// Batches waiting in the input channel.
    pub channel_fill: Gauge,
    /// Times the source's acknowledged position advanced.
    pub acknowledged: Counter,
}

/// The metric handles of one plugin in one stage.
#[derive(Clone, Debug)]
pub struct PluginMetrics {
    /// Time per call.
    pub call_seconds: Histogram,
    /// Faults by kind.
    pub faults: FaultCounters,
}

/// Fault counters of one plugin in one stage, by kind.
#[derive(Clone, Debug)]
pub struct FaultCounters {
    /// Calls stopped at their deadline.
    pub deadline: Counter,
    /// Instances that hit their memory cap.
    pub memory: Counter,
    /// Stack overflows.
    pub stack_overflow: Counter,
    /// Traps (panics, unreachable, bad memory access).
    pub trap: Counter,
    /// Outputs that broke the contract.
    pub contract: Counter,
}

impl FaultCounters {
    /// The counter of fault kind `kind` (as [`crate::plugins::Fault::kind`] names it).
    pub fn of(&self, kind: &str) -> &Counter {
        match kind {
            "deadline" => &self.deadline,
            "memory" => &self.memory,
            "stack_overflow" => &self.stack_overflow,
            "contract" => &self.contract,
            _ => &self.trap,
        }
    }
}
