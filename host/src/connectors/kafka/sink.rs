//! The Kafka sink: an idempotent producer with `acks=all`. Several batches are in delivery
//! at once (`max_in_flight`), each acknowledged upstream only when every one of its records
//! has a delivery report; records that fail are sent again, then dead-lettered. Ordering per
//! partition holds because batches are enqueued in order and the idempotent producer keeps
//! that order through its own retries.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use weir_plugin_sdk::msgpack;

use super::client::{WeirClientContext, producer_config};
use super::delivery::{DeliveryContext, Slot};
use super::transaction::TransactionLink;
use crate::config::{EdgeFormat, KafkaSinkConfig};
use crate::connectors::SinkContext;
use crate::connectors::codec::write_payload_json;
use crate::delivery::{DeadLetterReason, dead_letter_event};
use crate::event::{Batch, Event, now_ms};
use crate::health::Health;

/// Attempts per record before it is dead-lettered.
const SEND_ATTEMPTS: u32 = 3;
/// Wait before enqueueing again when librdkafka's queue is full.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(2);
/// Time allowed for starting transactions, and for the final flush.
const PRODUCER_TIMEOUT: Duration = Duration::from_secs(30);

/// The producer of a Kafka sink: delivery reports are counted per batch by its context.
pub type KafkaProducer = ThreadedProducer<DeliveryContext>;
type Producer_ = KafkaProducer;

/// Runs the sink until its input closes. `transactions` is set when this sink is the
/// transactional half of an exactly-once pipeline.
pub async fn run(
    config: KafkaSinkConfig,
    ctx: SinkContext,
    transactions: Option<TransactionLink>,
    produce_errors: Counter,
) {
    let (context, mut free_slots) = DeliveryContext::new(
        WeirClientContext::new(&ctx.name, ctx.health.clone()),
        config.max_in_flight.max(1),
    );
    let producer = match Producer_::from_config_and_context(
        &producer_config(&ctx.name, &config),
        context,
    ) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            // Validation checked the settings; this is librdkafka refusing to start.
            tracing::error!(sink = %ctx.name, error = %e, "cannot create the Kafka producer; events stay unacknowledged");
            return;
        }
    };
    if let Some(link) = &transactions {
        if !start_transactions(&producer, &ctx.name, &ctx.health).await {
            return;
        }
        link.publish(Arc::clone(&producer));
    }
    let sink = Arc::new(KafkaSink {
        producer,
        topic: config.topic.clone(),
        format: config.format,
        key_field: config.key_field.clone(),
        transactional: transactions.is_some(),
        produce_errors,
    });
    let ctx = Arc::new(ctx);
    while let Some(batch) = ctx.input.recv().await {
        let Some(slot) = free_slots.take().await else {
            break;
        };
        let started = std::time::Instant::now();
        ctx.metrics.events_in.inc_by(batch.len() as u64);
        if let Some(delay) = ctx.delay {
            tokio::time::sleep(delay).await;
        }
        sink.enqueue(&slot, &batch.events, 0..batch.len()).await;
        let sink = Arc::clone(&sink);
        let ctx = Arc::clone(&ctx);
        tokio::spawn(async move {
            sink.finish(batch, &slot, &ctx).await;
            ctx.metrics
                .batch_seconds
                .observe(started.elapsed().as_secs_f64());
        });
    }
    free_slots.all_back().await;
    let producer = Arc::clone(&sink.producer);
    let _ = tokio::task::spawn_blocking(move || producer.flush(PRODUCER_TIMEOUT)).await;
}

/// Initialises transactions (fencing and aborting what a previous instance with the same
/// id left open) and begins the first, retrying while the brokers are unreachable.
async fn start_transactions(producer: &Arc<Producer_>, name: &str, health: &Health) -> bool {
    let mut backoff = Duration::from_millis(200);
    loop {
        let p = Arc::clone(producer);
        let started = tokio::task::spawn_blocking(move || {
            p.init_transactions(PRODUCER_TIMEOUT)?;
            p.begin_transaction()
        })
        .await;
        match started {
            Ok(Ok(())) => {
                health.recovered(name);
                return true;
            }
            Ok(Err(e)) if is_fatal(&e) => {
                tracing::error!(sink = %name, error = %e, "cannot start transactions");
                return false;
            }
            Ok(Err(e)) => {
                health.problem(name, &format!("cannot start transactions: {e}"));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                tracing::error!(sink = %name, error = %e, "transaction start task failed");
                return false;
            }
        }
    }
}

fn is_fatal(error: &KafkaError) -> bool {
    matches!(error, KafkaError::Transaction(e) if e.is_fatal())
}

struct KafkaSink {
    producer: Arc<Producer_>,
    topic: String,
    format: EdgeFormat,
    key_field: Option<String>,
    transactional: bool,
    produce_errors: Counter,
}

impl KafkaSink {
    /// Hands the events at `indices` to the producer's queue, in order, waiting while it
    /// is full; their reports are counted into `slot`.
    async fn enqueue(
        &self,
        slot: &Slot,
        events: &[Event],
        indices: impl ExactSizeIterator<Item = usize>,
    ) {
        self.producer.context().expect(slot, indices.len());
        let mut value = Vec::new();
        for index in indices {
            self.send(slot, &events[index], index, &mut value).await;
        }
    }

    async fn send(&self, slot: &Slot, event: &Event, index: usize, value: &mut Vec<u8>) {
        let payload: &[u8] = match self.format {
            EdgeFormat::Json => {
                value.clear();
                write_payload_json(&event.payload, value);
                value
            }
            EdgeFormat::Msgpack | EdgeFormat::Raw => &event.payload,
        };
        let key = self.key(event);
        let opaque = DeliveryContext::opaque(slot, index);
        let mut record = BaseRecord::with_opaque_to(&self.topic, opaque)
            .payload(payload)
            .timestamp(event.time);
        // librdkafka allocates a header list even for none: only make one when needed.
        if !event.headers.is_empty() {
            let mut headers = OwnedHeaders::new_with_capacity(event.headers.len());
            for h in &event.headers {
                headers = headers.insert(KafkaHeader {
                    key: &h.name,
                    value: Some(&h.value[..]),
                });
            }
            record = record.headers(headers);
        }
        if let Some(key) = &key {
            record = record.key(&key[..]);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(QUEUE_FULL_WAIT).await;
                }
                // Refused before it was queued (e.g. too large): a failure like any other.
                Err((error, _)) => {
                    self.producer
                        .context()
                        .refused(slot, index, error.to_string());
                    return;
                }
            }
        }
    }

    /// The record's key, borrowed from the event where it can be.
    fn key<'e>(&self, event: &'e Event) -> Option<Cow<'e, [u8]>> {
        let own = || event.key.as_deref().map(Cow::Borrowed);
        let Some(field) = &self.key_field else {
            return own();
        };
        match msgpack::lookup(&event.payload, field) {
            Ok(Some(msgpack::Value::Str(s) | msgpack::Value::Bin(s))) => Some(Cow::Borrowed(s)),
            Ok(Some(msgpack::Value::Int(n))) => Some(Cow::Owned(n.to_string().into_bytes())),
            Ok(Some(msgpack::Value::UInt(n))) => Some(Cow::Owned(n.to_string().into_bytes())),
            Ok(Some(msgpack::Value::Bool(b))) => Some(Cow::Owned(b.to_string().into_bytes())),
            Ok(Some(msgpack::Value::Float(x))) => Some(Cow::Owned(x.to_string().into_bytes())),
            // A missing or structured field leaves the event's own key.
            _ => own(),
        }
    }

    /// Waits for every delivery report of `batch`; sends failed records again, then
    /// dead-letters them; acknowledges the batch once every record is delivered or
    /// dead-lettered.
    async fn finish(&self, batch: Batch, slot: &Slot, ctx: &SinkContext) {
        let deliveries = self.producer.context();
        let mut failed = deliveries.wait(slot).await;
        if failed.is_empty() {
            self.delivered(&batch, ctx);
            batch.settle();
            return;
        }
        self.produce_errors.inc_by(failed.len() as u64);
        if self.transactional {
            // The transaction cannot commit now; the source aborts it and reads again, so
            // the batch is left unacknowledged rather than dead-lettered.
            tracing::warn!(sink = %ctx.name, error = %failed[0].1, records = failed.len(), "delivery failed inside a transaction");
            return;
        }
        for attempt in 2..=SEND_ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            let indices: Vec<usize> = failed.iter().map(|(index, _)| *index).collect();
            self.enqueue(slot, &batch.events, indices.into_iter()).await;
            failed = deliveries.wait(slot).await;
            if failed.is_empty() {
                break;
            }
            self.produce_errors.inc_by(failed.len() as u64);
        }
        self.delivered(&batch, ctx);
        if failed.is_empty() {
            batch.settle();
            return;
        }
        ctx.metrics.failed.sink_error.inc_by(failed.len() as u64);
        let Some(inlet) = &ctx.dead_letter else {
            tracing::error!(sink = %ctx.name, error = %failed[0].1, records = failed.len(), "delivery failed after retries; events left unacknowledged");
            return;
        };
        tracing::error!(sink = %ctx.name, error = %failed[0].1, records = failed.len(), "delivery failed after retries; events sent to the dead-letter sink");
        let Batch { events, acks } = batch;
        let dead = failed
            .into_iter()
            .map(|(index, error)| {
                dead_letter_event(
                    events[index].clone(),
                    &ctx.name,
                    None,
                    DeadLetterReason::SinkError,
                    &error,
                )
            })
            .collect();
        if inlet.send(Batch::new(dead, acks)).await.is_err() {
            tracing::error!(sink = %ctx.name, "the dead-letter sink stopped; events left unacknowledged");
        }
    }

    fn delivered(&self, batch: &Batch, ctx: &SinkContext) {
        ctx.health.recovered(&ctx.name);
        ctx.metrics.events_out.inc_by(batch.len() as u64);
        if let Some(oldest) = batch.events.iter().map(|e| e.time).min() {
            let age_ms = now_ms().saturating_sub(oldest).max(0);
            ctx.metrics.end_to_end.observe(age_ms as f64 / 1e3);
        }
    }
}
