//! Acknowledgement tokens and the per-source tracker.
//!
//! A source makes one [`AckToken`] per batch it reads. Every component that splits or
//! copies the batch [`shares`](AckToken::share) the token; every holder must
//! [`settle`](AckToken::settle) its claim once its events are written, dropped on purpose
//! or dead-lettered. When the last claim goes, the tracker hears whether all were settled.
//! A claim dropped unsettled (a task cut off mid-batch, a sink that failed) marks the batch
//! unhandled, so its position is never acknowledged and a restart reads it again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;

/// What became of one source batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// The batch's sequence number within its source.
    pub seq: u64,
    /// Whether every claim was settled.
    pub handled: bool,
}

struct Shared {
    seq: u64,
    unsettled: AtomicBool,
    done: mpsc::UnboundedSender<Completion>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The tracker may be gone (its source stopped waiting); then nobody needs to know.
        let _ = self.done.send(Completion {
            seq: self.seq,
            handled: !self.unsettled.load(Ordering::Acquire),
        });
    }
}

/// One claim on a source batch's acknowledgement.
pub struct AckToken {
    shared: Arc<Shared>,
    settled: bool,
}

impl std::fmt::Debug for AckToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckToken")
            .field("seq", &self.shared.seq)
            .field("settled", &self.settled)
            .finish()
    }
}

impl AckToken {
    /// A new claim on the same batch, for a copy or a part of its events.
    pub fn share(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            settled: false,
        }
    }

    /// A token of batch `seq` whose completion goes to `done` as it happens, for sources
    /// that acknowledge each batch on its own rather than a position (JetStream acks
    /// messages, in any order).
    pub fn standalone(seq: u64, done: mpsc::UnboundedSender<Completion>) -> Self {
        Self {
            shared: Arc::new(Shared {
                seq,
                unsettled: AtomicBool::new(false),
                done,
            }),
            settled: false,
        }
    }

    /// Gives up this claim, its events handled.
    pub fn settle(mut self) {
        self.settled = true;
    }
}

impl Drop for AckToken {
    fn drop(&mut self) {
        if !self.settled {
            self.shared.unsettled.store(true, Ordering::Release);
        }
    }
}

/// Tracks a source's batches in flight and the furthest position up to which every batch
/// was handled. Positions are the source's own (byte offsets, sequence numbers).
pub struct AckTracker<P> {
    next_seq: u64,
    pending: BTreeMap<u64, (P, Option<bool>)>,
    acknowledged: Option<P>,
    unhandled: u64,
    blocked_at: Option<u64>,
    in_flight: usize,
    tx: mpsc::UnboundedSender<Completion>,
    rx: mpsc::UnboundedReceiver<Completion>,
}

impl<P: Clone> Default for AckTracker<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Clone> AckTracker<P> {
    /// An empty tracker.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            next_seq: 0,
            pending: BTreeMap::new(),
            acknowledged: None,
            unhandled: 0,
            blocked_at: None,
            in_flight: 0,
            tx,
            rx,
        }
    }

    /// A token for the next batch; `position` is where the source resumes once this batch
    /// and all before it are handled.
    pub fn token(&mut self, position: P) -> AckToken {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.insert(seq, (position, None));
        self.in_flight += 1;
        AckToken {
            shared: Arc::new(Shared {
                seq,
                unsettled: AtomicBool::new(false),
                done: self.tx.clone(),
            }),
            settled: false,
        }
    }

    /// Batches handed out and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Batches whose events were not all handled; after the first, the position stays.
    pub fn unhandled(&self) -> u64 {
        self.unhandled
    }

    /// The furthest position up to which every batch was handled.
    pub fn acknowledged(&self) -> Option<&P> {
        self.acknowledged.as_ref()
    }

    /// Takes in completions that have arrived, without waiting.
    pub fn poll(&mut self) {
        while let Ok(completion) = self.rx.try_recv() {
            self.complete(completion);
        }
    }

    /// Waits for the next completion and takes it in (with any others that arrived).
    pub async fn next(&mut self) {
        if let Some(completion) = self.rx.recv().await {
            self.complete(completion);
        }
        self.poll();
    }

    /// Waits until no batch is in flight.
    pub async fn drained(&mut self) {
        self.poll();
        while self.in_flight() > 0 {
            self.next().await;
        }
    }

    fn complete(&mut self, completion: Completion) {
        if let Some(entry) = self.pending.get_mut(&completion.seq) {
            entry.1 = Some(completion.handled);
            self.in_flight -= 1;
            if !completion.handled {
                self.unhandled += 1;
            }
        }
        if !completion.handled {
            self.blocked_at = Some(
                self.blocked_at
                    .map_or(completion.seq, |b| b.min(completion.seq)),
            );
        }
        let limit = self.blocked_at.unwrap_or(u64::MAX);
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() >= limit || entry.get().1 != Some(true) {
                break;
            }
            let (position, _) = entry.remove();
            self.acknowledged = Some(position);
        }
        if self.blocked_at.is_some() {
            // An unhandled batch holds the position before it for good: a restart must
            // read it again. Batches completed after it can never move the position, so
            // they are forgotten to keep this map bounded.
            self.pending
                .retain(|seq, (_, done)| *seq < limit || done.is_none());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn position_advances_only_over_contiguous_handled_batches() {
        let mut tracker = AckTracker::new();
        let a = tracker.token(10u64);
        let b = tracker.token(20u64);
        let c = tracker.token(30u64);
        let b2 = b.share();
        c.settle();
        b.settle();
        tracker.poll();
        assert_eq!(tracker.acknowledged(), None, "a is still in flight");
        a.settle();
        tracker.next().await;
        assert_eq!(tracker.acknowledged(), Some(&10), "b still has a claim");
        b2.settle();
        tracker.drained().await;
        assert_eq!(tracker.acknowledged(), Some(&30));
        assert_eq!(tracker.in_flight(), 0);
    }

    #[tokio::test]
    async fn an_unsettled_claim_holds_the_position_back() {
        let mut tracker = AckTracker::new();
        let a = tracker.token(1u64);
        let b = tracker.token(2u64);
        let a2 = a.share();
        a.settle();
        drop(a2);
        b.settle();
        tracker.drained().await;
        assert_eq!(tracker.acknowledged(), None);
        assert_eq!(tracker.unhandled(), 1);
    }
}
