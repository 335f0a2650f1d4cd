//! Checkpoints of one stateful stage worker, written off the event path.
//!
//! A checkpoint may only be written once every result the state no longer holds has
//! reached its readers: a window that fired and was forgotten must not be forgotten by a
//! checkpoint while its result could still be lost. So each batch the worker sends carries
//! an extra claim from here, and a checkpoint waits for the claims of everything sent
//! before it. Once written, the acknowledgements of the events folded into it are settled,
//! which lets their sources move on.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::delivery::{AckToken, Completion};
use crate::state::CheckpointStore;

struct Job {
    state: Vec<u8>,
    /// Output claims issued before the snapshot: all must be settled first.
    outputs_before: u64,
    /// Claims on the source batches folded into `state`.
    held: Vec<AckToken>,
    /// The worker's final checkpoint: the writer ends after it.
    last: bool,
}

/// Writes one worker's checkpoints in order, each after the outputs before it. A
/// checkpoint not yet started when the next one comes is replaced by it (their held claims
/// together), so a slow sink never piles up copies of the state.
pub struct Checkpointer {
    next: Arc<Mutex<Option<Job>>>,
    wake: Arc<Notify>,
    done: mpsc::UnboundedSender<Completion>,
    issued: u64,
    task: JoinHandle<()>,
}

impl Checkpointer {
    /// Starts the writer of `name` (`STAGE/WORKER`) into `store`.
    pub fn start(name: String, store: Arc<CheckpointStore>) -> Self {
        let next = Arc::new(Mutex::new(None));
        let wake = Arc::new(Notify::new());
        let (done, done_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(write_loop(
            name,
            store,
            Arc::clone(&next),
            Arc::clone(&wake),
            done_rx,
        ));
        Self {
            next,
            wake,
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
        self.queue(state, held, false);
    }

    fn queue(&self, state: Vec<u8>, mut held: Vec<AckToken>, last: bool) {
        let mut next = lock(&self.next);
        if let Some(waiting) = next.take() {
            // Not started yet: the newer state holds everything it did.
            held.extend(waiting.held);
        }
        *next = Some(Job {
            state,
            outputs_before: self.issued,
            held,
            last,
        });
        drop(next);
        self.wake.notify_one();
    }

    /// Writes `state` as the last checkpoint and waits until it is written (or given up).
    pub async fn finish(self, state: Vec<u8>, held: Vec<AckToken>) {
        self.queue(state, held, true);
        let Self { done, task, .. } = self;
        drop(done);
        let _ = task.await;
    }
}

fn lock(next: &Mutex<Option<Job>>) -> std::sync::MutexGuard<'_, Option<Job>> {
    next.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn write_loop(
    name: String,
    store: Arc<CheckpointStore>,
    next: Arc<Mutex<Option<Job>>>,
    wake: Arc<Notify>,
    mut done: mpsc::UnboundedReceiver<Completion>,
) {
    // Output claims settle in any order: those below `low` are all done.
    let mut low = 0u64;
    let mut settled_above = BTreeSet::new();
    let mut poisoned = false;
    loop {
        let Some(job) = lock(&next).take() else {
            wake.notified().await;
            continue;
        };
        let last = job.last;
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
            if last {
                return;
            }
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
        if last {
            return;
        }
    }
}
