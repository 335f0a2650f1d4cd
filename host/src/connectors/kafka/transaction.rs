//! Exactly-once Kafka to Kafka: the transactional producer an `exactly_once` source and the
//! pipeline's transactional sink share.
//!
//! The sink writes every record inside the open transaction and acknowledges a batch on its
//! delivery reports. At each commit point the source stops sending, waits until every batch
//! it sent is handled (so every record derived from the consumed offsets is in the
//! transaction), then sends those offsets into the transaction and commits it. A crash
//! leaves the transaction open; the next producer with the same `transactional.id` aborts it
//! and the group resumes from the offsets of the last committed transaction.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::TopicPartitionList;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use tokio::sync::watch;

use super::sink::KafkaProducer;

/// Time allowed for one transactional call to the broker.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// The producer of a pipeline's transactional sink, once the sink has started it.
#[derive(Clone)]
pub struct TransactionLink {
    producer: watch::Sender<Option<Arc<KafkaProducer>>>,
}

impl Default for TransactionLink {
    fn default() -> Self {
        Self {
            producer: watch::Sender::new(None),
        }
    }
}

/// Why a transaction could not commit.
#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    /// The transaction was aborted; its records never become visible, and the source must
    /// read again from the last committed offsets.
    #[error("transaction aborted: {0}")]
    Aborted(KafkaError),
    /// The producer cannot go on (fenced by a newer instance with the same id).
    #[error("transactional producer failed: {0}")]
    Fatal(KafkaError),
}

impl TransactionLink {
    /// Called by the sink once its producer has initialised transactions and begun the
    /// first one.
    pub fn publish(&self, producer: Arc<KafkaProducer>) {
        self.producer.send_replace(Some(producer));
    }

    /// Waits (blocking) for the sink's producer; `None` on shutdown.
    pub fn wait(
        &self,
        runtime: &tokio::runtime::Handle,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Option<Transactions> {
        let mut rx = self.producer.subscribe();
        runtime.block_on(async {
            tokio::select! {
                producer = rx.wait_for(Option::is_some) => {
                    producer.ok()?.clone().map(|producer| Transactions { producer })
                }
                () = shutdown.cancelled() => None,
            }
        })
    }
}

/// Transaction control, for the source.
pub struct Transactions {
    producer: Arc<KafkaProducer>,
}

impl Transactions {
    /// Sends `offsets` into the open transaction, commits it, and begins the next. Blocks.
    ///
    /// # Errors
    /// [`TransactionError::Aborted`] after aborting a transaction that could not commit
    /// (the next one is begun), [`TransactionError::Fatal`] when the producer is unusable.
    pub fn commit(
        &self,
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), TransactionError> {
        let committed = (|| {
            if offsets.count() > 0 {
                self.producer
                    .send_offsets_to_transaction(offsets, group, TXN_TIMEOUT)?;
            }
            self.producer.commit_transaction(TXN_TIMEOUT)
        })();
        match committed {
            Ok(()) => self.begin(),
            Err(e) if requires_abort(&e) => {
                self.producer
                    .abort_transaction(TXN_TIMEOUT)
                    .map_err(TransactionError::Fatal)?;
                self.begin()?;
                Err(TransactionError::Aborted(e))
            }
            Err(e) => Err(TransactionError::Fatal(e)),
        }
    }

    fn begin(&self) -> Result<(), TransactionError> {
        self.producer
            .begin_transaction()
            .map_err(TransactionError::Fatal)
    }
}

fn requires_abort(error: &KafkaError) -> bool {
    match error {
        KafkaError::Transaction(e) => e.txn_requires_abort() || e.is_retriable(),
        _ => false,
    }
}
