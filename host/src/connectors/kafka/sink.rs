//! The Kafka sink: an idempotent producer with `acks=all`. Several batches are in delivery
//! at once (`max_in_flight`), each acknowledged upstream only when every one of its records
//! has a delivery report; records that fail are sent again, then dead-lettered. Ordering per
//! partition holds because batches are enqueued in order and the idempotent producer keeps
//! that order through its own retries.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rdkafka::client::ClientContext;
use rdkafka::config::{FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use tokio::sync::{Notify, Semaphore};
use weir_plugin_sdk::msgpack;

use super::client::{WeirClientContext, producer_config};
use super::transaction::TransactionLink;
use crate::config::{EdgeFormat, KafkaSinkConfig};
use crate::connectors::SinkContext;
use crate::delivery::{DeadLetterReason, dead_letter_event};
use crate::event::{Batch, Event, now_ms};
use crate::format::msgpack_to_json;
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

/// Delivery reports of one batch's records, counted down as librdkafka reports them.
struct BatchDelivery {
    remaining: AtomicUsize,
    failed: Mutex<Vec<(usize, String)>>,
    done: Notify,
}

impl BatchDelivery {
    fn new(records: usize) -> Arc<Self> {
        Arc::new(Self {
            remaining: AtomicUsize::new(records),
            failed: Mutex::new(Vec::new()),
            done: Notify::new(),
        })
    }

    fn report(&self, index: usize, result: Result<(), String>) {
        if let Err(error) = result {
            self.failed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((index, error));
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Stores a permit when nobody waits yet, so the report is never missed.
            self.done.notify_one();
        }
    }

    /// Waits for every report; the failed records' indices and errors, in order.
    async fn wait(&self) -> Vec<(usize, String)> {
        while self.remaining.load(Ordering::Acquire) > 0 {
            self.done.notified().await;
        }
        let mut failed = std::mem::take(
            &mut *self
                .failed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        failed.sort_unstable_by_key(|(index, _)| *index);
        failed
    }
}

/// What each record carries to its delivery report: its batch and its place in it.
pub struct Pending {
    batch: Arc<BatchDelivery>,
    index: usize,
}

/// The sink producer's context: logs and health as every Weir client, and delivery
/// reports counted into their batch (no future per record).
pub struct DeliveryContext {
    base: WeirClientContext,
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.base.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.base.error(error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Box<Pending>) {
        let outcome = result.as_ref().map(drop).map_err(|(e, _)| e.to_string());
        pending.batch.report(pending.index, outcome);
    }
}

/// Runs the sink until its input closes. `transactions` is set when this sink is the
/// transactional half of an exactly-once pipeline.
pub async fn run(
    config: KafkaSinkConfig,
    ctx: SinkContext,
    transactions: Option<TransactionLink>,
    produce_errors: Counter,
) {
    let context = DeliveryContext {
        base: WeirClientContext::new(&ctx.name, ctx.health.clone()),
    };
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
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    let ctx = Arc::new(ctx);
    while let Some(batch) = ctx.input.recv().await {
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
            break;
        };
        let started = std::time::Instant::now();
        ctx.metrics.events_in.inc_by(batch.len() as u64);
        if let Some(delay) = ctx.delay {
            tokio::time::sleep(delay).await;
        }
        let delivery = sink.enqueue(&batch.events, 0..batch.len()).await;
        let sink = Arc::clone(&sink);
        let ctx = Arc::clone(&ctx);
        tokio::spawn(async move {
            sink.finish(batch, delivery, &ctx).await;
            ctx.metrics
                .batch_seconds
                .observe(started.elapsed().as_secs_f64());
            drop(permit);
        });
    }
    let _ = in_flight
        .acquire_many(config.max_in_flight.max(1) as u32)
        .await;
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
    /// is full; their reports are counted into the returned batch.
    async fn enqueue(
        &self,
        events: &[Event],
        indices: impl ExactSizeIterator<Item = usize>,
    ) -> Arc<BatchDelivery> {
        let delivery = BatchDelivery::new(indices.len());
        let mut value = Vec::new();
        for index in indices {
            self.send(&events[index], index, &delivery, &mut value)
                .await;
        }
        delivery
    }

    async fn send(
        &self,
        event: &Event,
        index: usize,
        delivery: &Arc<BatchDelivery>,
        value: &mut Vec<u8>,
    ) {
        let payload: &[u8] = match self.format {
            EdgeFormat::Json => {
                value.clear();
                let json = msgpack_to_json(&event.payload).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(&event.payload).into_owned())
                });
                // Writing JSON into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *value, &json);
                value
            }
            EdgeFormat::Msgpack | EdgeFormat::Raw => &event.payload,
        };
        let key = self.key(event);
        let pending = Box::new(Pending {
            batch: Arc::clone(delivery),
            index,
        });
        let mut record = BaseRecord::with_opaque_to(&self.topic, pending)
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
                    delivery.report(index, Err(error.to_string()));
                    return;
                }
            }
        }
    }

    fn key(&self, event: &Event) -> Option<Bytes> {
        let Some(field) = &self.key_field else {
            return event.key.clone();
        };
        match msgpack::lookup(&event.payload, field) {
            Ok(Some(msgpack::Value::Str(s) | msgpack::Value::Bin(s))) => {
                Some(Bytes::copy_from_slice(s))
            }
            Ok(Some(msgpack::Value::Int(n))) => Some(Bytes::from(n.to_string())),
            Ok(Some(msgpack::Value::UInt(n))) => Some(Bytes::from(n.to_string())),
            Ok(Some(msgpack::Value::Bool(b))) => Some(Bytes::from(b.to_string())),
            Ok(Some(msgpack::Value::Float(x))) => Some(Bytes::from(x.to_string())),
            // A missing or structured field leaves the event's own key.
            _ => event.key.clone(),
        }
    }

    /// Waits for every delivery report of `batch`; sends failed records again, then
    /// dead-letters them; acknowledges the batch once every record is delivered or
    /// dead-lettered.
    async fn finish(&self, batch: Batch, delivery: Arc<BatchDelivery>, ctx: &SinkContext) {
        let mut failed = delivery.wait().await;
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
            failed = self
                .enqueue(&batch.events, indices.into_iter())
                .await
                .wait()
                .await;
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
