//! Delivery reports of the Kafka sink, counted per batch.
//!
//! A sink has a fixed number of batches in delivery at once, so each batch in delivery
//! takes one of that many slots, and every record carries its slot and its index in the
//! batch packed into librdkafka's per-message opaque: a record costs no allocation and no
//! reference count, and its report finds its batch by indexing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use tokio::sync::{Notify, mpsc};

use super::client::WeirClientContext;

/// Delivery reports of one batch's records, counted down as librdkafka reports them.
struct BatchDelivery {
    remaining: AtomicUsize,
    failed: Mutex<Vec<(usize, String)>>,
    done: Notify,
}

impl BatchDelivery {
    fn new() -> Self {
        Self {
            remaining: AtomicUsize::new(0),
            failed: Mutex::new(Vec::new()),
            done: Notify::new(),
        }
    }

    fn report(&self, index: usize, result: Result<(), String>) {
        if let Err(error) = result {
            self.failed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((index, error));
        }
        // Never below zero: a report the batch does not expect must not make it wait for
        // ever.
        let before = self
            .remaining
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        debug_assert!(before.is_ok(), "a delivery report its batch did not expect");
        if before == Ok(1) {
            // Stores a permit when nobody waits yet, so the report is never missed.
            self.done.notify_one();
        }
    }
}

/// A batch's place among the batches in delivery; it goes back to the sink's free slots
/// when dropped.
pub struct Slot {
    index: usize,
    free: mpsc::UnboundedSender<usize>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The receiver lives as long as the sink; after it, nobody needs the slot back.
        let _ = self.free.send(self.index);
    }
}

/// The sink producer's context: logs and health as every Weir client, and the delivery
/// reports of every batch in delivery.
pub struct DeliveryContext {
    base: WeirClientContext,
    batches: Box<[BatchDelivery]>,
}

/// Records per batch are counted in the low half of the opaque, the slot in the high half.
const INDEX_BITS: u32 = usize::BITS / 2;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;

impl DeliveryContext {
    /// A context over `base` with `slots` batches in delivery at most, and the free slots
    /// to take them from.
    pub fn new(base: WeirClientContext, slots: usize) -> (Self, FreeSlots) {
        let (tx, rx) = mpsc::unbounded_channel();
        for slot in 0..slots {
            // The receiver is right here.
            let _ = tx.send(slot);
        }
        let context = Self {
            base,
            batches: (0..slots).map(|_| BatchDelivery::new()).collect(),
        };
        (context, FreeSlots { tx, rx, slots })
    }

    /// Starts counting `records` reports into `slot`; earlier failures there are gone.
    pub fn expect(&self, slot: &Slot, records: usize) {
        let batch = &self.batches[slot.index];
        batch
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        batch.remaining.store(records, Ordering::Release);
    }

    /// The opaque a record at `index` of `slot`'s batch carries to its report.
    pub fn opaque(slot: &Slot, index: usize) -> usize {
        debug_assert!(
            index <= INDEX_MASK,
            "a batch holds fewer records than the index can count"
        );
        (slot.index << INDEX_BITS) | (index & INDEX_MASK)
    }

    /// Counts a report that librdkafka will never make (a record refused before queueing).
    pub fn refused(&self, slot: &Slot, index: usize, error: String) {
        self.batches[slot.index].report(index, Err(error));
    }

    /// Waits for every report expected in `slot`; the failed records' indices and errors,
    /// in order.
    pub async fn wait(&self, slot: &Slot) -> Vec<(usize, String)> {
        let batch = &self.batches[slot.index];
        while batch.remaining.load(Ordering::Acquire) > 0 {
            // A permit a previous batch of this slot left behind only costs a second look.
            batch.done.notified().await;
        }
        let mut failed =
            std::mem::take(&mut *batch.failed.lock().unwrap_or_else(PoisonError::into_inner));
        failed.sort_unstable_by_key(|(index, _)| *index);
        failed
    }
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.base.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.base.error(error, reason);
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        self.base.note_brokers(&statistics);
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let outcome = result.as_ref().map(drop).map_err(|(e, _)| e.to_string());
        // Opaques are only made by `opaque`, from slots of this context.
        if let Some(batch) = self.batches.get(opaque >> INDEX_BITS) {
            batch.report(opaque & INDEX_MASK, outcome);
        }
    }
}

/// The slots not in use: taking one waits while every batch slot is in delivery.
pub struct FreeSlots {
    tx: mpsc::UnboundedSender<usize>,
    rx: mpsc::UnboundedReceiver<usize>,
    slots: usize,
}

impl FreeSlots {
    /// The next free slot, once one is free.
    pub async fn take(&mut self) -> Option<Slot> {
        let index = self.rx.recv().await?;
        Some(Slot {
            index,
            free: self.tx.clone(),
        })
    }

    /// Waits until every slot is back, that is until every batch is delivered or given up.
    pub async fn all_back(&mut self) {
        for _ in 0..self.slots {
            if self.rx.recv().await.is_none() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Health;

    fn context(slots: usize) -> (DeliveryContext, FreeSlots) {
        DeliveryContext::new(WeirClientContext::new("out", Health::default()), slots)
    }

    #[tokio::test]
    async fn reports_find_their_batch_and_failures_come_back_in_order() {
        let (deliveries, mut free) = context(2);
        let a = free.take().await.expect("a slot");
        let b = free.take().await.expect("a second slot");
        deliveries.expect(&a, 3);
        deliveries.expect(&b, 1);
        // Reports arrive in any order and across batches.
        let report = |slot: &Slot, index: usize, outcome: Result<(), String>| {
            let opaque = DeliveryContext::opaque(slot, index);
            deliveries.batches[opaque >> INDEX_BITS].report(opaque & INDEX_MASK, outcome);
        };
        report(&a, 2, Err("two".into()));
        report(&b, 0, Ok(()));
        report(&a, 0, Err("zero".into()));
        deliveries.refused(&a, 1, "one".into());
        assert_eq!(
            deliveries.wait(&a).await,
            vec![(0, "zero".into()), (1, "one".into()), (2, "two".into())]
        );
        assert!(deliveries.wait(&b).await.is_empty());
    }

    #[tokio::test]
    async fn a_slot_is_free_again_once_its_batch_is_done_and_reused_clean() {
        let (deliveries, mut free) = context(1);
        let slot = free.take().await.expect("the slot");
        deliveries.expect(&slot, 1);
        deliveries.refused(&slot, 0, "lost".into());
        assert_eq!(deliveries.wait(&slot).await.len(), 1);
        drop(slot);
        let again = free.take().await.expect("the slot again");
        deliveries.expect(&again, 1);
        deliveries.batches[again.index].report(0, Ok(()));
        assert!(deliveries.wait(&again).await.is_empty());
        drop(again);
        free.all_back().await;
    }

    #[test]
    fn the_opaque_keeps_slot_and_index_apart() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let slot = Slot {
            index: 63,
            free: tx,
        };
        // The largest index: batches hold at most 65,536 events (`flow.batch_size`).
        let opaque = DeliveryContext::opaque(&slot, 65_535);
        assert_eq!(opaque >> INDEX_BITS, 63);
        assert_eq!(opaque & INDEX_MASK, 65_535);
    }
}
