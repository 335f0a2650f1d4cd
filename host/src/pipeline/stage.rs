//! Running a stage: its workers, the dispatcher that routes events to them by key, and the
//! loop that hands each batch's results to the next components.

use std::hash::{BuildHasher, Hasher};
use std::time::Instant;

use tokio::sync::mpsc;

use super::edge::{Inlet, InputChannel, Output};
use crate::delivery::{DeadLetterReason, Dedup};
use crate::event::{Batch, Event};
use crate::metrics::ComponentMetrics;
use crate::operators::{Operator, Processed};

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
        } = self;
        let make_worker = |operator| Worker {
            name: name.clone(),
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
            let mut worker = make_worker(operator);
            while let Some(batch) = input.recv().await {
                metrics.channel_fill.set(input.queued().await as i64);
                worker.handle(batch).await;
            }
            return;
        }
        let mut senders = Vec::with_capacity(workers.len());
        let mut tasks = Vec::with_capacity(workers.len());
        for operator in workers {
            let (tx, mut rx) = mpsc::channel::<Batch>(channel_capacity.max(1));
            senders.push(tx);
            let mut worker = make_worker(operator);
            tasks.push(tokio::spawn(async move {
                while let Some(batch) = rx.recv().await {
                    worker.handle(batch).await;
                }
            }));
        }
        drop(outputs);
        drop(dead_letter);
        let mut dispatcher = Dispatcher::new(senders.len());
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
}

impl Dispatcher {
    fn new(workers: usize) -> Self {
        Self {
            workers,
            hasher: std::hash::RandomState::new(),
            turn: 0,
            parts: vec![Vec::new(); workers],
        }
    }

    fn split(&mut self, mut batch: Batch) -> Vec<(usize, Batch)> {
        self.turn = (self.turn + 1) % self.workers;
        for event in batch.events.drain(..) {
            let worker = match &event.key {
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
}

impl Worker {
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
        self.metrics.filtered.inc_by(self.processed.dropped);
        for (port, output) in self.outputs.iter().enumerate() {
            let events = std::mem::take(&mut self.processed.ports[port]);
            if events.is_empty() {
                continue;
            }
            if output.is_empty() {
                // A route output nobody reads: the events end here, on purpose.
                self.metrics.filtered.inc_by(events.len() as u64);
                continue;
            }
            self.metrics.events_out.inc_by(events.len() as u64);
            if output.send(batch.derive(events)).await.is_err() {
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
        if !dead.is_empty() {
            let mut events = Vec::with_capacity(dead.len());
            for (reason, event) in dead {
                let counter = match reason {
                    DeadLetterReason::PluginFault => &self.metrics.failed.plugin_fault,
                    DeadLetterReason::Quarantined => &self.metrics.failed.quarantined,
                    DeadLetterReason::Malformed => &self.metrics.failed.malformed,
                    DeadLetterReason::SinkError => &self.metrics.failed.sink_error,
                    DeadLetterReason::PluginError => &self.metrics.failed.plugin_error,
                };
                counter.inc();
                events.push(event);
            }
            match &self.dead_letter {
                Some(inlet) => {
                    if inlet.send(batch.derive(events)).await.is_err() {
                        tracing::error!(stage = %self.name, "the dead-letter sink stopped; events stay unacknowledged");
                    }
                }
                None => {
                    tracing::warn!(stage = %self.name, events = events.len(), "events failed and no [dead_letter] sink is set; they are dropped");
                }
            }
        }
        batch.settle();
        self.metrics
            .batch_seconds
            .observe(started.elapsed().as_secs_f64());
    }
}
