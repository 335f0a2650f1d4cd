//! Checkpoints of one stateful stage worker, written off the event path.
//!
//! A checkpoint may only be written once every result the state no longer holds has
//! reached its readers: a window that fired and was forgotten must not be forgotten by a
//! checkpoint while its result could still be lost. So each batch the worker sends carries
//! an extra claim from here, and a checkpoint waits for the claims of everything sent
//! before it. Once written, the acknowledgements of the events folded into it are settled,
//! which lets their sources move on.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::delivery::{AckToken, Completion};
use crate::state::CheckpointStore;

struct Job {
    state: Vec<u8>,
    /// Output claims issued before the snapshot: all must be settled first.
    outputs_before: u64,
    /// Claims on the source batches folded into `state`.
    held: Vec<AckToken>,
}

/// Writes one worker's checkpoints in order, each after the outputs before it.
pub struct Checkpointer {
    jobs: mpsc::UnboundedSender<Job>,
    done: mpsc::UnboundedSender<Completion>,
    issued: u64,
    task: JoinHandle<()>,
}

impl Checkpointer {
    /// Starts the writer of `name` (`STAGE/WORKER`) into `store`.
    pub fn start(name: String, store: Arc<CheckpointStore>) -> Self {
        let (jobs, job_rx) = mpsc::unbounded_channel();
        let (done, done_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(write_loop(name, store, job_rx, done_rx));
        Self {
            jobs,
            done,
            issued: 0,
            task,
        }
    }

    /// A claim for a batch the worker sends on.
    pub fn output_claim(&mut self) -> AckToken {
        let token = AckToken::standalone(self.issued, self.done.clone());
        self.issued += 1;
        token
    }

    /// Queues `state`, which holds the events of the `held` claims.
    pub fn checkpoint(&self, state: Vec<u8>, held: Vec<AckToken>) {
        let job = Job {
            state,
            outputs_before: self.issued,
            held,
        };
        // The writer ends only after this sender is dropped.
        let _ = self.jobs.send(job);
    }

    /// Waits until every queued checkpoint is written (or given up).
    pub async fn finish(self) {
        let Self {
            jobs, done, task, ..
        } = self;
        drop(jobs);
        drop(done);
        let _ = task.await;
    }
}

async fn write_loop(
    name: String,
    store: Arc<CheckpointStore>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    mut done: mpsc::UnboundedReceiver<Completion>,
) {
    // Output claims settle in any order: those below `low` are all done.
    let mut low = 0u64;
    let mut settled_above = BTreeSet::new();
    let mut poisoned = false;
    while let Some(job) = jobs.recv().await {
        while !poisoned && low < job.outputs_before {
            let Some(completion) = done.recv().await else {
                break;
            };
            if !completion.handled {
                poisoned = true;
                tracing::error!(checkpoint = %name, "a window result was not delivered; no further checkpoint is written, so a restart starts from the last one and emits it again");
            }
            settled_above.insert(completion.seq);
            while settled_above.remove(&low) {
                low += 1;
            }
        }
        if poisoned {
            // Dropped unsettled: the sources keep these positions to read them again.
            drop(job.held);
            continue;
        }
        let store = Arc::clone(&store);
        let key = name.clone();
        let written = tokio::task::spawn_blocking(move || store.put(&key, &job.state)).await;
        match written {
            Ok(Ok(())) => job.held.into_iter().for_each(AckToken::settle),
            Ok(Err(e)) => {
                poisoned = true;
                tracing::error!(checkpoint = %name, error = %e, "cannot write the checkpoint; no further one is written, so a restart starts from the last one");
            }
            Err(e) => {
                poisoned = true;
                tracing::error!(checkpoint = %name, error = %e, "checkpoint task failed");
            }
        }
    }
}
