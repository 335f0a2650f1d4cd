//! Running a stage: its workers, the dispatcher that routes events to them by key, and the
//! loop that hands each batch's results to the next components.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::checkpointer::Checkpointer;
use super::edge::{Inlet, InputChannel, Output};
use crate::delivery::{AckToken, DeadLetterReason, Dedup};
use crate::event::{Batch, Event};
use crate::metrics::ComponentMetrics;
use crate::operators::{Operator, Processed};
use crate::state::CheckpointStore;

/// Picks the worker (of `n`) of an event, for stages keyed by payload fields.
pub type Partitioner = Arc<dyn Fn(&Event, usize) -> usize + Send + Sync>;

/// Where and how often a stateful stage checkpoints.
#[derive(Clone)]
pub struct StageCheckpoints {
    /// The pipeline's store.
    pub store: Arc<CheckpointStore>,
    /// Time between checkpoints.
    pub interval: Duration,
    /// Cancelled on shutdown: an input that closes then has not ended for good.
    pub shutdown: CancellationToken,
}

/// A stage ready to run.
pub struct StageRunner {
    /// Stage name.
    pub name: String,
    /// One operator per worker.
    pub workers: Vec<Box<dyn Operator>>,
    /// Its output per port.
    pub outputs: Vec<Output>,
    /// The dead-letter inlet.
    pub dead_letter: Option<Inlet>,
    /// Metric handles.
    pub metrics: ComponentMetrics,
    /// Dedup settings: field and window.
    pub dedup: Option<(String, usize)>,
    /// Capacity of each worker's channel.
    pub channel_capacity: usize,
    /// Routes events to workers by payload fields rather than by event key.
    pub partitioner: Option<Partitioner>,
    /// For stateful stages: their checkpoints.
    pub checkpoints: Option<StageCheckpoints>,
}

/// A worker's input: the stage's own channel, or its share from the dispatcher.
enum Feed<'a> {
    Shared(&'a InputChannel),
    Own(mpsc::Receiver<Batch>),
}

impl Feed<'_> {
    async fn recv(&mut self) -> Option<Batch> {
        match self {
            Self::Shared(input) => input.recv().await,
            Self::Own(rx) => rx.recv().await,
        }
    }
}

impl StageRunner {
    /// Runs until the input closes and every worker has finished.
    pub async fn run(self, input: InputChannel) {
        let Self {
            name,
            mut workers,
            outputs,
            dead_letter,
            metrics,
            dedup,
            channel_capacity,
            partitioner,
            checkpoints,
        } = self;
        let make_worker = |index: usize, mut operator: Box<dyn Operator>| Worker {
            name: name.clone(),
            stateful: match &checkpoints {
                Some(c) if operator.stateful().is_some() => Some(StatefulWorker {
                    checkpointer: Checkpointer::start(
                        format!("{name}/{index}"),
                        Arc::clone(&c.store),
                    ),
                    interval: c.interval,
                    shutdown: c.shutdown.clone(),
                    held: Vec::new(),
                }),
                _ => None,
            },
            operator,
            outputs: outputs.clone(),
            dead_letter: dead_letter.clone(),
            metrics: metrics.clone(),
            dedup: dedup
                .clone()
                .map(|(field, window)| Dedup::new(field, window)),
            processed: Processed::default(),
        };
        if workers.len() == 1 {
            let Some(operator) = workers.pop() else {
                return;
            };
            make_worker(0, operator)
                .run(Feed::Shared(&input), Some(&metrics))
                .await;
            return;
        }
        let mut senders = Vec::with_capacity(workers.len());
        let mut tasks = Vec::with_capacity(workers.len());
        for (index, operator) in workers.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel::<Batch>(channel_capacity.max(1));
            senders.push(tx);
            let worker = make_worker(index, operator);
            tasks.push(tokio::spawn(worker.run(Feed::Own(rx), None)));
        }
        drop(outputs);
        drop(dead_letter);
        let mut dispatcher = Dispatcher::new(senders.len(), partitioner);
        while let Some(batch) = input.recv().await {
            metrics.channel_fill.set(input.queued().await as i64);
            for (worker, part) in dispatcher.split(batch) {
                if senders[worker].send(part).await.is_err() {
                    tracing::error!(stage = %name, worker, "worker stopped; its events stay unacknowledged");
                }
            }
        }
        drop(senders);
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!(stage = %name, error = %e, "stage worker failed");
            }
        }
    }
}

/// Splits batches among workers: keyed events by key hash, so one key always meets the
/// same worker and keeps its order; unkeyed events take turns by batch.
struct Dispatcher {
    workers: usize,
    hasher: std::hash::RandomState,
    turn: usize,
    parts: Vec<Vec<Event>>,
    partitioner: Option<Partitioner>,
}

impl Dispatcher {
    fn new(workers: usize, partitioner: Option<Partitioner>) -> Self {
        Self {
            workers,
            hasher: std::hash::RandomState::new(),
            turn: 0,
            parts: vec![Vec::new(); workers],
            partitioner,
        }
    }

    fn split(&mut self, mut batch: Batch) -> Vec<(usize, Batch)> {
        self.turn = (self.turn + 1) % self.workers;
        for event in batch.events.drain(..) {
            let worker = match &event.key {
                _ if self.partitioner.is_some() => self
                    .partitioner
                    .as_ref()
                    .map_or(0, |p| p(&event, self.workers)),
                Some(key) => {
                    let mut h = self.hasher.build_hasher();
                    h.write(key);
                    (h.finish() % self.workers as u64) as usize
                }
                None => self.turn,
            };
            self.parts[worker].push(event);
        }
        let parts: Vec<(usize, Batch)> = self
            .parts
            .iter_mut()
            .enumerate()
            .filter(|(_, events)| !events.is_empty())
            .map(|(i, events)| (i, batch.derive(std::mem::take(events))))
            .collect();
        batch.settle();
        parts
    }
}

struct Worker {
    name: String,
    operator: Box<dyn Operator>,
    outputs: Vec<Output>,
    dead_letter: Option<Inlet>,
    metrics: ComponentMetrics,
    dedup: Option<Dedup>,
    processed: Processed,
    stateful: Option<StatefulWorker>,
}

/// What a worker of a stateful stage keeps besides its operator.
struct StatefulWorker {
    checkpointer: Checkpointer,
    interval: Duration,
    shutdown: CancellationToken,
    /// Claims on the source batches folded in since the last checkpoint.
    held: Vec<AckToken>,
}

impl Worker {
    /// Handles batches until the input closes; `fill` reports the input's backlog.
    async fn run(mut self, mut feed: Feed<'_>, fill: Option<&ComponentMetrics>) {
        let Some(tick_every) = self
            .stateful
            .as_ref()
            .and(self.operator.stateful().map(|s| s.tick_every()))
        else {
            while let Some(batch) = feed.recv().await {
                if let (Some(m), Feed::Shared(input)) = (fill, &feed) {
                    m.channel_fill.set(input.queued().await as i64);
                }
                self.handle(batch).await;
            }
            return;
        };
        let interval = self.stateful.as_ref().map_or(tick_every, |s| s.interval);
        let mut ticks = tokio::time::interval(tick_every);
        let mut checkpoints = tokio::time::interval(interval);
        for timer in [&mut ticks, &mut checkpoints] {
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            timer.reset();
        }
        loop {
            tokio::select! {
                batch = feed.recv() => match batch {
                    Some(batch) => self.handle(batch).await,
                    None => break,
                },
                _ = ticks.tick() => {
                    if let Some(state) = self.operator.stateful() {
                        self.processed.reset(self.outputs.len());
                        state.tick(&mut self.processed);
                    }
                    self.deliver(None).await;
                }
                _ = checkpoints.tick() => {
                    if let Some((state, held)) = self.snapshot().await
                        && let Some(stateful) = &self.stateful
                    {
                        stateful.checkpointer.checkpoint(state, held);
                    }
                }
            }
        }
        let ended = self
            .stateful
            .as_ref()
            .is_some_and(|s| !s.shutdown.is_cancelled());
        if ended && let Some(state) = self.operator.stateful() {
            self.processed.reset(self.outputs.len());
            state.end_of_input(&mut self.processed);
            self.deliver(None).await;
        }
        let last = self.snapshot().await;
        let Self {
            stateful, outputs, ..
        } = self;
        drop(outputs);
        if let (Some(stateful), Some((state, held))) = (stateful, last) {
            stateful.checkpointer.finish(state, held).await;
        }
    }

    /// The state to checkpoint, with the claims it holds, once what failed to fold in has
    /// gone on. Serializing a large state takes a while: other tasks move off this thread.
    async fn snapshot(&mut self) -> Option<(Vec<u8>, Vec<AckToken>)> {
        self.stateful.as_ref()?;
        let state = self.operator.stateful()?;
        // Events that fail while folding in go on before the state that leaves them out.
        self.processed.reset(self.outputs.len());
        state.flush(&mut self.processed);
        self.deliver(None).await;
        let state = self.operator.stateful()?;
        let bytes = if tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(|| state.snapshot())
        } else {
            state.snapshot()
        };
        let held = std::mem::take(&mut self.stateful.as_mut()?.held);
        Some((bytes, held))
    }

    /// A batch of `events` to send on: claims on `from`'s sources, and for a stateful
    /// stage one claim its next checkpoint waits for.
    fn outgoing(&mut self, from: Option<&Batch>, events: Vec<Event>) -> Batch {
        let mut batch = match from {
            Some(from) => from.derive(events),
            None => Batch::new(events, Vec::new()),
        };
        if let Some(stateful) = &mut self.stateful {
            batch.acks.push(stateful.checkpointer.output_claim());
        }
        batch
    }

    async fn handle(&mut self, mut batch: Batch) {
        let started = Instant::now();
        let mut events = std::mem::take(&mut batch.events);
        self.metrics.events_in.inc_by(events.len() as u64);
        if let Some(dedup) = &mut self.dedup {
            let before = events.len();
            events.retain(|e| !dedup.is_repeat(&e.payload));
            self.metrics
                .deduplicated
                .inc_by((before - events.len()) as u64);
        }
        self.processed.reset(self.outputs.len());
        let operator = &mut self.operator;
        let processed = &mut self.processed;
        if operator.blocking()
            && tokio::runtime::Handle::current().runtime_flavor()
                == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(|| operator.process(events, processed));
        } else {
            operator.process(events, processed);
        }
        self.deliver(Some(&batch)).await;
        match &mut self.stateful {
            // Folded into state: acknowledged once a checkpoint holds it.
            Some(stateful) => stateful.held.append(&mut batch.acks),
            None => batch.settle(),
        }
        self.metrics
            .batch_seconds
            .observe(started.elapsed().as_secs_f64());
    }

    /// Sends what `processed` holds to the outputs and the dead-letter sink.
    async fn deliver(&mut self, from: Option<&Batch>) {
        self.metrics.filtered.inc_by(self.processed.dropped);
        self.processed.dropped = 0;
        for port in 0..self.outputs.len() {
            let events = std::mem::take(&mut self.processed.ports[port]);
            if events.is_empty() {
                continue;
            }
            if self.outputs[port].is_empty() {
                // An output nobody reads: the events end here, on purpose.
                self.metrics.filtered.inc_by(events.len() as u64);
                continue;
            }
            self.metrics.events_out.inc_by(events.len() as u64);
            let batch = self.outgoing(from, events);
            if self.outputs[port].send(batch).await.is_err() {
                tracing::error!(stage = %self.name, "a reader stopped; events stay unacknowledged");
            }
        }
        let mut dead = std::mem::take(&mut self.processed.dead);
        // An event whose source message can be delivered again goes back rather than to
        // the dead-letter sink, until its message's last delivery.
        dead.retain(|(reason, event)| {
            let retry = matches!(
                reason,
                DeadLetterReason::PluginError | DeadLetterReason::PluginFault
            ) && event.redelivery.as_ref().is_some_and(|r| r.request());
            if retry {
                tracing::debug!(stage = %self.name, "failed event handed back to its source for redelivery");
            }
            !retry
        });
        if dead.is_empty() {
            return;
        }
        let mut events = Vec::with_capacity(dead.len());
        for (reason, event) in dead {
            let counter = match reason {
                DeadLetterReason::PluginFault => &self.metrics.failed.plugin_fault,
                DeadLetterReason::Quarantined => &self.metrics.failed.quarantined,
                DeadLetterReason::Malformed => &self.metrics.failed.malformed,
                DeadLetterReason::SinkError => &self.metrics.failed.sink_error,
                DeadLetterReason::PluginError => &self.metrics.failed.plugin_error,
                DeadLetterReason::Late => &self.metrics.failed.late,
                DeadLetterReason::StateFull => &self.metrics.failed.state_full,
            };
            counter.inc();
            events.push(event);
        }
        if self.dead_letter.is_none() {
            tracing::warn!(stage = %self.name, events = events.len(), "events failed and no [dead_letter] sink is set; they are dropped");
            return;
        }
        let batch = self.outgoing(from, events);
        if let Some(inlet) = &self.dead_letter
            && inlet.send(batch).await.is_err()
        {
            tracing::error!(stage = %self.name, "the dead-letter sink stopped; events stay unacknowledged");
        }
    }
}
