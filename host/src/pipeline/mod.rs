//! Builds the component graph from a validated pipeline file and runs it: one task per
//! source and sink, one per stage worker, joined by bounded channels.
//!
//! Shutdown needs no broadcast past the sources: cancelling stops the sources, which let go
//! of their outputs; each stage ends when its input closes and each sink when its input
//! closes, so everything read is drained and acknowledged before the tasks end.

mod checkpointer;
mod edge;
mod stage;

pub use edge::{Closed, Inlet, InputChannel, Output, channel};
pub use stage::{Partitioner, StageCheckpoints, StageRunner};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{
    HandlerStageConfig, LoadedConfig, OverloadPolicy, PipelineConfig, SinkConfig, SourceConfig,
    StageConfig,
};
use crate::connectors::{IngestHandle, SinkContext, SourceContext, sink_task, source_task};
use crate::delivery::CheckpointStore;
use crate::event::Event;
use crate::expr::Condition;
use crate::metrics::{ComponentMetrics, Metrics};
use crate::operators::pattern::spec::Pattern;
use crate::operators::pattern::{DeclaredMatcher, KeyedMatcher, PatternOperator, PluginMatcher};
use crate::operators::window::{
    CustomAggregations, PluginAggregation, PluginAggregations, Scalar, SourceOrder, worker_of,
};
use crate::operators::{FilterOperator, HandlerOperator, Operator, RouteOperator, WindowOperator};
use crate::plugins::{PluginKind, PluginLimits, PluginRegistry, PluginUser};

/// A pipeline that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The checkpoint store cannot be opened.
    #[error("state: {0}")]
    State(String),
    /// A stage's plugin could not start (e.g. it rejected its config).
    #[error("stage {stage}: {reason}")]
    Stage {
        /// The stage.
        stage: String,
        /// Why.
        reason: String,
    },
}

/// What `/api/v1/pipeline` shows of one component.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentInfo {
    /// `source`, `stage` or `sink`.
    pub role: &'static str,
    /// Its `type`.
    pub kind: String,
    /// What it reads from.
    pub inputs: Vec<String>,
    /// Plugin name, for handler stages (its serving version is in `/api/v1/plugins`).
    pub plugin: Option<String>,
    /// Workers.
    pub parallelism: usize,
    #[serde(skip)]
    metrics: Option<ComponentMetrics>,
}

impl ComponentInfo {
    /// Counters as they are now.
    pub fn counters(&self) -> serde_json::Value {
        let Some(m) = &self.metrics else {
            return serde_json::Value::Null;
        };
        serde_json::json!({
            "events_in": m.events_in.get(),
            "events_out": m.events_out.get(),
            "filtered": m.filtered.get(),
            "deduplicated": m.deduplicated.get(),
            "shed": m.shed.get(),
            "late_dropped": m.late_dropped.get(),
            "failed": m.failed.total(),
            "channel_fill": m.channel_fill.get(),
        })
    }
}

/// A running pipeline.
pub struct RunningPipeline {
    tasks: TaskTracker,
    /// Every component by name, for the admin API.
    pub components: BTreeMap<String, ComponentInfo>,
    /// Whether every source ends by itself.
    pub finite: bool,
    /// Handles of http sources, by source name, for the HTTP side.
    pub ingest: HashMap<String, IngestHandle>,
}

impl RunningPipeline {
    /// Waits until every task has ended.
    pub async fn wait(&self) {
        self.tasks.wait().await;
    }
}

/// Starts every component of `loaded`. `plugins` holds each plugin a stage names.
///
/// # Errors
/// A [`BuildError`] when a stage's plugin cannot start.
pub async fn start(
    loaded: &LoadedConfig,
    plugins: &PluginRegistry,
    metrics: &Metrics,
    shutdown: CancellationToken,
) -> Result<RunningPipeline, BuildError> {
    let config = &loaded.config;
    let flow = &config.flow;
    let tasks = TaskTracker::new();
    let mut components = BTreeMap::new();

    // Inputs first, so every producer can be handed the inlets of its readers.
    let mut stage_inputs = HashMap::new();
    let mut sink_inputs = HashMap::new();
    let mut inlets: HashMap<&str, Inlet> = HashMap::new();
    for name in config.stages.keys() {
        let shed = metrics.component(name).shed;
        let (inlet, input) = channel(flow.channel_capacity, OverloadPolicy::Block, None, shed);
        inlets.insert(name, inlet);
        stage_inputs.insert(name.as_str(), input);
    }
    for (name, sink) in &config.sinks {
        let overload = sink.overload();
        let shed = metrics.component(name).shed;
        let (inlet, input) = channel(
            flow.channel_capacity,
            overload.policy,
            overload.sample_rate,
            shed,
        );
        inlets.insert(name, inlet);
        sink_inputs.insert(name.as_str(), input);
    }
    // Exactly-once: the transactional kafka sink's producer carries the source's offsets.
    let transactions = config
        .sources
        .values()
        .any(|s| matches!(s, SourceConfig::Kafka(k) if k.exactly_once))
        .then(crate::connectors::TransactionLink::default);
    let dead_letter = config
        .dead_letter
        .as_ref()
        .and_then(|d| inlets.get(d.sink.as_str()).cloned());

    // Outputs: (producer, port) -> readers.
    let mut outputs: HashMap<(String, String), Output> = HashMap::new();
    let readers = config
        .stages
        .iter()
        .map(|(n, s)| (n, s.inputs()))
        .chain(config.sinks.iter().map(|(n, s)| (n, s.inputs())));
    for (reader, reads) in readers {
        for input in reads {
            let (producer, port) = input.split_once('.').unwrap_or((input, ""));
            if let Some(inlet) = inlets.get(reader.as_str()) {
                outputs
                    .entry((producer.to_owned(), port.to_owned()))
                    .or_default()
                    .push(inlet.clone());
            }
        }
    }
    drop(inlets);
    let feeds = metrics.feeds();
    let mut output_of = |producer: &str, port: &str| {
        let mut output = outputs
            .remove(&(producer.to_owned(), port.to_owned()))
            .unwrap_or_default();
        output.set_tap(feeds.tap(&crate::feed::output_name(producer, port)));
        output
    };

    for (name, sink) in &config.sinks {
        let Some(input) = sink_inputs.remove(name.as_str()) else {
            continue;
        };
        let component = metrics.component(name);
        let is_dead_letter = config.dead_letter.as_ref().is_some_and(|d| &d.sink == name);
        let ctx = SinkContext {
            name: name.clone(),
            input,
            dead_letter: if is_dead_letter {
                None
            } else {
                dead_letter.clone()
            },
            metrics: component.clone(),
            delay: sink.overload().delay.map(|d| d.0),
            health: metrics.health().clone(),
        };
        let link = match sink {
            SinkConfig::Kafka(k) if k.transactional_id.is_some() => transactions.clone(),
            _ => None,
        };
        components.insert(
            name.clone(),
            ComponentInfo {
                role: "sink",
                kind: sink_kind(sink).into(),
                inputs: sink.inputs().to_vec(),
                plugin: None,
                parallelism: 1,
                metrics: Some(component),
            },
        );
        let task = sink_task(sink, ctx, metrics, link);
        tasks.spawn(async move {
            let _ = task.await;
        });
    }

    let stateful = config
        .stages
        .values()
        .any(|s| matches!(s, StageConfig::Window(_) | StageConfig::Pattern(_)));
    let store = if stateful {
        let path = config.state.dir.join("checkpoints.redb");
        let store = tokio::task::spawn_blocking(move || crate::state::CheckpointStore::open(&path))
            .await
            .map_err(|e| BuildError::State(e.to_string()))?
            .map_err(BuildError::State)?;
        Some(Arc::new(store))
    } else {
        None
    };
    // Origins name sources, then window stages (whose results carry origins of their own).
    let assignments = Arc::new(crate::event::Assignments::default());
    let source_names: Arc<[String]> = config
        .sources
        .keys()
        .chain(
            config
                .stages
                .iter()
                .filter(|(_, s)| matches!(s, StageConfig::Window(_)))
                .map(|(n, _)| n),
        )
        .cloned()
        .collect();
    for (name, stage) in &config.stages {
        let Some(input) = stage_inputs.remove(name.as_str()) else {
            continue;
        };
        let component = metrics.component(name);
        let build = Build {
            name,
            stage,
            config,
            plugins,
            metrics,
            shutdown: &shutdown,
            store: store.as_deref(),
            sources: &source_names,
            assignments: &assignments,
        };
        let workers = build.operators().await?;
        let ports = workers.first().map(|w| w.ports()).unwrap_or_default();
        let stage_outputs = ports.iter().map(|port| output_of(name, port)).collect();
        let plugin = match stage {
            StageConfig::Handler(h) => Some(h.plugin.clone()),
            _ => None,
        };
        components.insert(
            name.clone(),
            ComponentInfo {
                role: "stage",
                kind: stage_kind(stage).into(),
                inputs: stage.inputs().to_vec(),
                plugin,
                parallelism: stage.parallelism(),
                metrics: Some(component.clone()),
            },
        );
        let runner = StageRunner {
            name: name.clone(),
            workers,
            outputs: stage_outputs,
            dead_letter: dead_letter.clone(),
            metrics: component,
            dedup: stage.dedup().map(|d| (d.field.clone(), d.window)),
            channel_capacity: flow.channel_capacity,
            partitioner: partitioner(stage),
            checkpoints: store.as_ref().map(|store| StageCheckpoints {
                store: Arc::clone(store),
                interval: config.state.stage_checkpoint_interval.0,
                shutdown: shutdown.clone(),
            }),
        };
        tasks.spawn(runner.run(input));
    }

    let checkpoints = CheckpointStore::new(&config.state.dir);
    let mut finite = true;
    let mut ingest = HashMap::new();
    for (origin_id, (name, source)) in config.sources.iter().enumerate() {
        finite &= crate::connectors::source_is_finite(source);
        let component = metrics.component(name);
        let ctx = SourceContext {
            name: name.clone(),
            origin_id: origin_id as u16,
            assignments: Arc::clone(&assignments),
            output: output_of(name, ""),
            dead_letter: dead_letter.clone(),
            metrics: component.clone(),
            batch_size: flow.batch_size,
            linger: flow.linger.0,
            shutdown: shutdown.clone(),
            checkpoints: checkpoints.clone(),
            checkpoint_interval: config.state.checkpoint_interval.0,
            health: metrics.health().clone(),
        };
        let link = match source {
            SourceConfig::Kafka(k) if k.exactly_once => transactions.clone(),
            _ => None,
        };
        components.insert(
            name.clone(),
            ComponentInfo {
                role: "source",
                kind: source_kind(source).into(),
                inputs: Vec::new(),
                plugin: None,
                parallelism: 1,
                metrics: Some(component),
            },
        );
        let (task, ingest_handle) = source_task(source.clone(), ctx, metrics, link);
        if let Some(handle) = ingest_handle {
            ingest.insert(name.clone(), handle);
        }
        let source_name = name.clone();
        let stop_all = shutdown.clone();
        tasks.spawn(async move {
            if let Err(e) = task.await {
                // A source that cannot go on takes the pipeline down cleanly, draining what
                // was read, rather than leaving a half-working service.
                tracing::error!(source = %source_name, error = %e, "source failed; stopping the pipeline");
                stop_all.cancel();
            }
        });
    }
    drop(dead_letter);
    tasks.close();
    Ok(RunningPipeline {
        tasks,
        components,
        finite,
        ingest,
    })
}

/// The stages that use each plugin, with what a new version must start with.
pub fn plugin_users(config: &PipelineConfig) -> HashMap<String, Vec<PluginUser>> {
    let mut users: HashMap<String, Vec<PluginUser>> = HashMap::new();
    for (name, stage) in &config.stages {
        match stage {
            StageConfig::Handler(h) => users
                .entry(h.plugin.clone())
                .or_default()
                .push(handler_user(config, name, h)),
            StageConfig::Pattern(p) => {
                if let Some(m) = &p.pattern {
                    users
                        .entry(m.plugin.clone())
                        .or_default()
                        .push(pattern_user(config, name, m));
                }
            }
            StageConfig::Window(w) => {
                for custom in &w.aggregations.1 {
                    users
                        .entry(custom.plugin.clone())
                        .or_default()
                        .push(aggregation_user(config, name, custom));
                }
            }
            _ => {}
        }
    }
    users
}

/// The limits `[plugins]` sets.
fn plugin_limits(config: &PipelineConfig) -> PluginLimits {
    PluginLimits {
        call_timeout: config.plugins.timeout.0,
        memory_bytes: (config.plugins.memory_mb as usize) << 20,
        ..PluginLimits::default()
    }
}

/// A handler stage's use of its plugin: its own config and limits over `[plugins]`.
fn handler_user(config: &PipelineConfig, name: &str, stage: &HandlerStageConfig) -> PluginUser {
    let own = serde_json::to_value(&stage.config).unwrap_or_default();
    let mut user = PluginUser::new(name, PluginKind::Handler, own, plugin_limits(config));
    user.timeout = stage.timeout.map(|t| t.0);
    user.memory_mb = stage.memory_mb;
    user
}

/// A pattern stage's use of its plugin.
fn pattern_user(
    config: &PipelineConfig,
    name: &str,
    matcher: &crate::config::PatternMatcher,
) -> PluginUser {
    let own = serde_json::to_value(&matcher.config).unwrap_or_default();
    PluginUser::new(name, PluginKind::Pattern, own, plugin_limits(config))
}

/// A window stage's use of an aggregator plugin.
fn aggregation_user(
    config: &PipelineConfig,
    name: &str,
    custom: &crate::config::PluginAggConfig,
) -> PluginUser {
    let own = custom.config.clone();
    PluginUser::new(name, PluginKind::Aggregator, own, plugin_limits(config))
}

/// What every worker of a pattern stage starts from, whatever its matcher.
struct PatternWorker<'a> {
    stage: &'a str,
    config: &'a crate::config::PatternStageConfig,
    workers: usize,
    order: &'a SourceOrder,
    late_dropped: prometheus_client::metrics::counter::Counter,
    snapshot: Option<&'a [u8]>,
}

impl PatternWorker<'_> {
    /// The worker, matching with `matcher`, restored from its checkpoint if there is one.
    fn start<M: KeyedMatcher>(self, matcher: M) -> Result<Box<dyn Operator>, String> {
        let operator = PatternOperator::new(
            self.stage,
            self.config,
            self.workers,
            self.order,
            self.late_dropped,
            matcher,
            self.snapshot,
        )?;
        Ok(Box::new(operator))
    }
}

/// What a declared pattern's state belongs to: a digest of its definition, so a checkpoint
/// of another definition is not read as this one's partial matches.
fn declared_identity(p: &crate::config::PatternStageConfig) -> String {
    use sha2::{Digest, Sha256};
    let definition = format!("{:?}|{:?}|{}", p.steps, p.within, p.after_match);
    let digest = Sha256::digest(definition.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("steps:{hex}")
}

/// For each source (by index), whether its events reach `stage` in order: over exactly
/// one path, with no stage of more than one worker on it.
fn source_order(
    config: &PipelineConfig,
    stage: &str,
    names: &Arc<[String]>,
    assignments: &Arc<crate::event::Assignments>,
) -> SourceOrder {
    // (paths, all of them sequential) per source.
    fn walk(
        config: &PipelineConfig,
        node: &str,
        sequential: bool,
        depth: usize,
        found: &mut HashMap<String, (usize, bool)>,
    ) {
        let Some(stage) = config.stages.get(node) else {
            return;
        };
        // Validation refuses cycles; the bound only keeps a mistake from looping.
        if depth > config.stages.len() {
            return;
        }
        for input in stage.inputs() {
            let producer = input.split_once('.').map_or(input.as_str(), |(p, _)| p);
            let window = matches!(config.stages.get(producer), Some(StageConfig::Window(_)));
            if config.sources.contains_key(producer) || window {
                // A window stage's results carry its own positions, not its sources'.
                let entry = found.entry(producer.to_owned()).or_insert((0, true));
                entry.0 += 1;
                entry.1 &= sequential;
            } else if let Some(upstream) = config.stages.get(producer) {
                let sequential = sequential && upstream.parallelism() <= 1;
                walk(config, producer, sequential, depth + 1, found);
            }
        }
    }
    let mut found = HashMap::new();
    walk(config, stage, true, 0, &mut found);
    SourceOrder {
        names: Arc::clone(names),
        assignments: Arc::clone(assignments),
        feeds: names.iter().map(|n| found.contains_key(n)).collect(),
        ordered: names
            .iter()
            .map(|n| found.get(n).is_some_and(|&(paths, seq)| paths == 1 && seq))
            .collect(),
    }
}

/// Routes a window stage's events to workers by their `group_by` values.
fn partitioner(stage: &StageConfig) -> Option<Partitioner> {
    let fields = match stage {
        StageConfig::Window(w) => w.group_by.clone(),
        StageConfig::Pattern(p) => p.group_by.clone(),
        _ => return None,
    };
    Some(Arc::new(move |event: &Event, workers: usize| {
        let key: Vec<Scalar> = fields
            .iter()
            .map(|f| Scalar::lookup(&event.payload, f))
            .collect();
        worker_of(&key, workers)
    }))
}

/// What building one stage's operators needs.
struct Build<'a> {
    name: &'a str,
    stage: &'a StageConfig,
    config: &'a PipelineConfig,
    plugins: &'a PluginRegistry,
    metrics: &'a Metrics,
    shutdown: &'a CancellationToken,
    store: Option<&'a crate::state::CheckpointStore>,
    sources: &'a Arc<[String]>,
    assignments: &'a Arc<crate::event::Assignments>,
}

impl Build<'_> {
    async fn operators(&self) -> Result<Vec<Box<dyn Operator>>, BuildError> {
        let Self {
            name,
            stage,
            config,
            plugins,
            metrics,
            shutdown,
            ..
        } = *self;
        match stage {
            StageConfig::Window(w) => return self.window_operators(w).await,
            StageConfig::Pattern(p) => return self.pattern_operators(p).await,
            _ => {}
        }
        operators(name, stage, config, plugins, metrics, shutdown).await
    }

    /// The state each worker checkpointed, refusing a checkpoint of more workers.
    fn saved_states(&self, n: usize) -> Result<Vec<Option<Vec<u8>>>, BuildError> {
        let error = |reason: String| BuildError::Stage {
            stage: self.name.to_owned(),
            reason,
        };
        let saved = |worker: usize| -> Result<Option<Vec<u8>>, BuildError> {
            match self.store {
                Some(store) => store.get(&format!("{}/{worker}", self.name)).map_err(error),
                None => Ok(None),
            }
        };
        if saved(n)?.is_some() {
            return Err(error(format!(
                "its checkpoint was written by more than {n} workers: set parallelism back, or remove the state directory to start over"
            )));
        }
        (0..n).map(saved).collect()
    }

    async fn pattern_operators(
        &self,
        p: &crate::config::PatternStageConfig,
    ) -> Result<Vec<Box<dyn Operator>>, BuildError> {
        let error = |reason: String| BuildError::Stage {
            stage: self.name.to_owned(),
            reason,
        };
        let n = p.parallelism.max(1);
        let late_dropped = self.metrics.component(self.name).late_dropped;
        let order = source_order(self.config, self.name, self.sources, self.assignments);
        let declared = match &p.pattern {
            Some(_) => None,
            None => {
                let pattern = Pattern::compile(p).map_err(|problems| {
                    let all: Vec<String> =
                        problems.iter().map(|(k, m)| format!("{k}: {m}")).collect();
                    error(all.join("; "))
                })?;
                Some((Arc::new(pattern), declared_identity(p)))
            }
        };
        let mut workers: Vec<Box<dyn Operator>> = Vec::with_capacity(n);
        for (worker, snapshot) in self.saved_states(n)?.into_iter().enumerate() {
            let worker_of = PatternWorker {
                stage: self.name,
                config: p,
                workers: n,
                order: &order,
                late_dropped: late_dropped.clone(),
                snapshot: snapshot.as_deref(),
            };
            let operator: Box<dyn Operator> = match (&p.pattern, &declared) {
                (Some(m), _) => {
                    let slot = self
                        .plugins
                        .slot(&m.plugin)
                        .cloned()
                        .ok_or_else(|| error(format!("plugin {:?} is not loaded", m.plugin)))?;
                    let user = pattern_user(self.config, self.name, m);
                    let upgrade = m.state_upgrade.into();
                    // `init` runs plugin code: off the runtime threads.
                    let matcher = tokio::task::spawn_blocking(move || {
                        PluginMatcher::new(slot, user, upgrade)
                    })
                    .await
                    .map_err(|e| error(e.to_string()))?
                    .map_err(|e| error(e.to_string()))?;
                    worker_of
                        .start(matcher)
                        .map_err(|e| error(format!("worker {worker}: {e}")))?
                }
                (None, Some((pattern, identity))) => {
                    let matcher =
                        DeclaredMatcher::new(Arc::clone(pattern), identity.clone(), p.timeouts);
                    worker_of
                        .start(matcher)
                        .map_err(|e| error(format!("worker {worker}: {e}")))?
                }
                (None, None) => unreachable!("a declared pattern was compiled above"),
            };
            if snapshot.is_some() {
                tracing::info!(stage = %self.name, worker, "pattern state restored from its checkpoint");
            }
            workers.push(operator);
        }
        Ok(workers)
    }

    /// Instances of the stage's plugin aggregations, for one worker.
    async fn plugin_aggregations(
        &self,
        w: &crate::config::WindowStageConfig,
    ) -> Result<Option<Box<dyn CustomAggregations>>, BuildError> {
        if w.aggregations.1.is_empty() {
            return Ok(None);
        }
        let mut all = Vec::with_capacity(w.aggregations.1.len());
        for custom in &w.aggregations.1 {
            let error = |reason: String| BuildError::Stage {
                stage: self.name.to_owned(),
                reason: format!("aggregator plugin {:?}: {reason}", custom.plugin),
            };
            let slot = self
                .plugins
                .slot(&custom.plugin)
                .cloned()
                .ok_or_else(|| error("not loaded".into()))?;
            let user = aggregation_user(self.config, self.name, custom);
            let upgrade = custom.state_upgrade;
            // `init` runs plugin code: off the runtime threads.
            let aggregation =
                tokio::task::spawn_blocking(move || PluginAggregation::new(slot, user, upgrade))
                    .await
                    .map_err(|e| error(e.to_string()))?
                    .map_err(|e| error(e.to_string()))?;
            all.push(aggregation);
        }
        Ok(Some(Box::new(PluginAggregations(all))))
    }

    async fn window_operators(
        &self,
        w: &crate::config::WindowStageConfig,
    ) -> Result<Vec<Box<dyn Operator>>, BuildError> {
        let error = |reason: String| BuildError::Stage {
            stage: self.name.to_owned(),
            reason,
        };
        let n = w.parallelism.max(1);
        let saved = self.saved_states(n)?;
        let late_dropped = self.metrics.component(self.name).late_dropped;
        let order = source_order(self.config, self.name, self.sources, self.assignments);
        for (source, ordered) in order.names.iter().zip(&order.ordered) {
            if !ordered && self.config.feeds(source, self.name) {
                tracing::warn!(stage = %self.name, source = %source, "events of this source can reach the window stage out of order (over several paths or through a parallel stage): after a restart, those its state holds already may be counted again");
            }
        }
        let mut workers: Vec<Box<dyn Operator>> = Vec::with_capacity(n);
        for (worker, snapshot) in saved.into_iter().enumerate() {
            let custom = self.plugin_aggregations(w).await?;
            let operator = WindowOperator::new(
                self.name,
                w,
                (worker, n),
                &order,
                late_dropped.clone(),
                custom,
                snapshot.as_deref(),
            )
            .map_err(|e| error(format!("worker {worker}: {e}")))?;
            if snapshot.is_some() {
                tracing::info!(stage = %self.name, worker, "window state restored from its checkpoint");
            }
            workers.push(Box::new(operator));
        }
        Ok(workers)
    }
}

async fn operators(
    name: &str,
    stage: &StageConfig,
    config: &PipelineConfig,
    plugins: &PluginRegistry,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> Result<Vec<Box<dyn Operator>>, BuildError> {
    let error = |reason: String| BuildError::Stage {
        stage: name.to_owned(),
        reason,
    };
    let n = stage.parallelism().max(1);
    let mut workers: Vec<Box<dyn Operator>> = Vec::with_capacity(n);
    match stage {
        StageConfig::Handler(h) => {
            let slot = plugins
                .slot(&h.plugin)
                .cloned()
                .ok_or_else(|| error(format!("plugin {:?} is not loaded", h.plugin)))?;
            let user = handler_user(config, name, h);
            for _ in 0..n {
                let plugin = Arc::clone(&slot);
                let user = user.clone();
                let plugin_metrics = metrics.plugin(name, &h.plugin);
                let breaker = h.breaker.clone();
                let shutdown = shutdown.clone();
                // Instantiation and `init` run plugin code: keep them off the runtime threads.
                let operator = tokio::task::spawn_blocking(move || {
                    HandlerOperator::new(plugin, user, plugin_metrics, &breaker, shutdown)
                })
                .await
                .map_err(|e| error(e.to_string()))?
                .map_err(|e| error(e.to_string()))?;
                workers.push(Box::new(operator));
            }
        }
        StageConfig::Filter(f) => {
            let condition = Condition::parse(&f.condition).map_err(|e| error(e.to_string()))?;
            for _ in 0..n {
                workers.push(Box::new(FilterOperator::new(condition.clone())));
            }
        }
        StageConfig::Route(r) => {
            let mut routes = Vec::with_capacity(r.routes.len());
            for (route, condition) in &r.routes {
                let text = condition.as_str().unwrap_or_default();
                let condition = Condition::parse(text).map_err(|e| error(e.to_string()))?;
                routes.push((route.clone(), condition));
            }
            workers.push(Box::new(RouteOperator::new(routes)));
        }
        StageConfig::Window(_) | StageConfig::Pattern(_) => {
            unreachable!("stateful stages are built by Build")
        }
    }
    Ok(workers)
}

fn source_kind(config: &SourceConfig) -> &'static str {
    match config {
        SourceConfig::Generator(_) => "generator",
        SourceConfig::File(_) => "file",
        SourceConfig::Stdin(_) => "stdin",
        SourceConfig::Http(_) => "http",
        SourceConfig::Kafka(_) => "kafka",
        SourceConfig::Nats(_) => "nats",
        SourceConfig::Jetstream(_) => "jetstream",
    }
}

fn stage_kind(config: &StageConfig) -> &'static str {
    match config {
        StageConfig::Handler(_) => "handler",
        StageConfig::Filter(_) => "filter",
        StageConfig::Route(_) => "route",
        StageConfig::Window(_) => "window",
        StageConfig::Pattern(_) => "pattern",
    }
}

fn sink_kind(config: &SinkConfig) -> &'static str {
    match config {
        SinkConfig::Stdout(_) => "stdout",
        SinkConfig::File(_) => "file",
        SinkConfig::Null(_) => "null",
        SinkConfig::Http(_) => "http",
        SinkConfig::Kafka(_) => "kafka",
        SinkConfig::Nats(_) => "nats",
        SinkConfig::Jetstream(_) => "jetstream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_in_order_over_one_path_of_single_workers_only() {
        let text = r#"
[sources.a]
type = "stdin"
[sources.b]
type = "stdin"
[sources.c]
type = "stdin"
[stages.wide]
type = "filter"
inputs = ["b"]
condition = "x > 1"
parallelism = 2
[stages.left]
type = "filter"
inputs = ["c"]
condition = "x > 1"
[stages.right]
type = "filter"
inputs = ["c"]
condition = "x < 1"
[stages.w]
type = "window"
inputs = ["a", "wide", "left", "right"]
window = { tumbling = "1m" }
aggregations = { n = "count" }
[sinks.out]
type = "null"
inputs = ["w"]
"#;
        let loaded = crate::config::parse_pipeline(std::path::Path::new("p.toml"), text, |_| None)
            .expect("parses");
        let names: Arc<[String]> = loaded.config.sources.keys().cloned().collect();
        let order = source_order(&loaded.config, "w", &names, &Arc::default());
        assert_eq!(&*order.names, ["a", "b", "c"]);
        assert_eq!(
            order.ordered,
            [true, false, false],
            "b: parallel; c: two paths"
        );
        assert!(loaded.config.feeds("c", "w") && !loaded.config.feeds("w", "left"));
    }
}
