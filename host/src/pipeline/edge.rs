//! The bounded channels between components, and what a sender does when one is full.
//!
//! Every component reads one bounded channel of batches. A sender into a stage always waits
//! for room, so a slow stage slows everything before it, up to the sources, which stop
//! reading. A sink's channel applies the sink's overload policy instead: `block` waits like
//! a stage; `drop_newest` sheds the batch that does not fit; `drop_oldest` sheds the oldest
//! waiting batch to make room; `sample` keeps one event in N of a batch that does not fit
//! and waits for room for those. Shed events are counted and their acknowledgements
//! settled: shedding is a decision, not a loss of track.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::{Mutex, mpsc};

use crate::config::OverloadPolicy;
use crate::event::Batch;
use crate::feed::Tap;

/// The receiving end of a component's input.
pub struct InputChannel {
    rx: Arc<Mutex<mpsc::Receiver<Batch>>>,
}

impl InputChannel {
    /// The next batch; `None` once every sender is gone and the channel is empty.
    pub async fn recv(&self) -> Option<Batch> {
        self.rx.lock().await.recv().await
    }

    /// Batches waiting.
    pub async fn queued(&self) -> usize {
        self.rx.lock().await.len()
    }
}

/// A sending handle into one component's input, applying that component's policy.
#[derive(Clone)]
pub struct Inlet {
    tx: mpsc::Sender<Batch>,
    policy: Policy,
    shed: Counter,
    // Only `drop_oldest` reaches into the receiver, to take out the oldest batch.
    rx: Arc<Mutex<mpsc::Receiver<Batch>>>,
}

#[derive(Clone, Copy)]
enum Policy {
    Block,
    DropNewest,
    DropOldest,
    Sample(u32),
}

/// A new channel of `capacity` batches: its input and the first inlet into it.
pub fn channel(
    capacity: usize,
    policy: OverloadPolicy,
    sample_rate: Option<u32>,
    shed: Counter,
) -> (Inlet, InputChannel) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let rx = Arc::new(Mutex::new(rx));
    let policy = match policy {
        OverloadPolicy::Block => Policy::Block,
        OverloadPolicy::DropNewest => Policy::DropNewest,
        OverloadPolicy::DropOldest => Policy::DropOldest,
        OverloadPolicy::Sample => Policy::Sample(sample_rate.unwrap_or(2).max(2)),
    };
    (
        Inlet {
            tx,
            policy,
            shed,
            rx: Arc::clone(&rx),
        },
        InputChannel { rx },
    )
}

/// The receiver is gone: the component stopped (only during shutdown).
#[derive(Debug)]
pub struct Closed;

impl Inlet {
    /// Sends `batch`, waiting or shedding as the policy says.
    ///
    /// # Errors
    /// [`Closed`] when the receiving component has stopped; the batch's claims are then
    /// dropped unsettled, so its source positions are not acknowledged.
    pub async fn send(&self, batch: Batch) -> Result<(), Closed> {
        if batch.is_empty() {
            batch.settle();
            return Ok(());
        }
        let batch = match self.policy {
            Policy::Block => batch,
            _ => match self.tx.try_send(batch) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Closed),
                Err(mpsc::error::TrySendError::Full(batch)) => match self.policy {
                    Policy::DropNewest => {
                        self.shed.inc_by(batch.len() as u64);
                        batch.settle();
                        return Ok(());
                    }
                    Policy::DropOldest => return self.replace_oldest(batch).await,
                    Policy::Sample(n) => self.sample(batch, n),
                    Policy::Block => batch,
                },
            },
        };
        self.tx.send(batch).await.map_err(|_| Closed)
    }

    fn sample(&self, mut batch: Batch, n: u32) -> Batch {
        let before = batch.events.len();
        let mut i = 0u32;
        batch.events.retain(|_| {
            i = i.wrapping_add(1);
            i % n == 1 % n
        });
        self.shed.inc_by((before - batch.events.len()) as u64);
        batch
    }

    async fn replace_oldest(&self, mut batch: Batch) -> Result<(), Closed> {
        loop {
            if let Ok(mut rx) = self.rx.try_lock()
                && let Ok(oldest) = rx.try_recv()
            {
                self.shed.inc_by(oldest.len() as u64);
                oldest.settle();
            }
            match self.tx.try_send(batch) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Closed),
                Err(mpsc::error::TrySendError::Full(back)) => {
                    batch = back;
                    // The receiver holds the lock while taking a batch; let it finish.
                    tokio::task::yield_now().await;
                }
            }
        }
    }

    /// Batches waiting in the channel.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// Where a component's output goes: one inlet per reader. Each reader gets the batch (the
/// events are cheap to copy: payloads are shared) with its own claims on the acks.
#[derive(Clone, Default)]
pub struct Output {
    inlets: Vec<Inlet>,
    tap: Option<Arc<Tap>>,
}

impl Output {
    /// Lets the live feed see what this output sends.
    pub fn set_tap(&mut self, tap: Arc<Tap>) {
        self.tap = Some(tap);
    }

    /// Adds a reader.
    pub fn push(&mut self, inlet: Inlet) {
        self.inlets.push(inlet);
    }

    /// Whether nothing reads this output.
    pub fn is_empty(&self) -> bool {
        self.inlets.is_empty()
    }

    /// Sends `batch` to every reader.
    ///
    /// # Errors
    /// [`Closed`] when a reader has stopped.
    pub async fn send(&self, batch: Batch) -> Result<(), Closed> {
        if let Some(tap) = &self.tap {
            tap.publish(&batch.events);
        }
        let Some((last, rest)) = self.inlets.split_last() else {
            batch.settle();
            return Ok(());
        };
        for inlet in rest {
            inlet.send(batch.derive(batch.events.clone())).await?;
        }
        last.send(batch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::AckTracker;
    use crate::event::Event;

    fn batch(tracker: &mut AckTracker<u64>, n: usize) -> Batch {
        let token = tracker.token(n as u64);
        Batch::new(
            (0..n).map(|i| Event::new(vec![i as u8], 0)).collect(),
            vec![token],
        )
    }

    #[tokio::test]
    async fn drop_newest_sheds_what_does_not_fit_and_settles_it() {
        let shed = Counter::default();
        let (inlet, input) = channel(1, OverloadPolicy::DropNewest, None, shed.clone());
        let mut tracker = AckTracker::new();
        inlet.send(batch(&mut tracker, 3)).await.unwrap();
        inlet.send(batch(&mut tracker, 4)).await.unwrap();
        assert_eq!(shed.get(), 4);
        input.recv().await.unwrap().settle();
        tracker.drained().await;
        assert_eq!(tracker.unhandled(), 0);
    }

    #[tokio::test]
    async fn drop_oldest_keeps_the_newest() {
        let shed = Counter::default();
        let (inlet, input) = channel(1, OverloadPolicy::DropOldest, None, shed.clone());
        let mut tracker = AckTracker::new();
        inlet.send(batch(&mut tracker, 3)).await.unwrap();
        inlet.send(batch(&mut tracker, 4)).await.unwrap();
        assert_eq!(shed.get(), 3);
        assert_eq!(input.recv().await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn sample_keeps_one_in_n_while_full() {
        let shed = Counter::default();
        let (inlet, input) = channel(1, OverloadPolicy::Sample, Some(4), shed.clone());
        let mut tracker = AckTracker::new();
        inlet.send(batch(&mut tracker, 8)).await.unwrap();
        let waiting = tokio::spawn({
            let inlet = inlet.clone();
            let b = batch(&mut tracker, 8);
            async move { inlet.send(b).await.unwrap() }
        });
        // Let the sender find the channel full before anything is taken out.
        tokio::task::yield_now().await;
        assert_eq!(input.recv().await.unwrap().len(), 8);
        waiting.await.unwrap();
        assert_eq!(input.recv().await.unwrap().len(), 2);
        assert_eq!(shed.get(), 6);
    }
}
