//! The JetStream source: a durable pull consumer with explicit acks.
//!
//! Pulls are renewed only as the reader takes messages, and the reader stops taking them
//! while the pipeline is full: that is the backpressure. Each batch's messages are acked
//! once every event made from them is handled; a message whose event a stage failed is
//! nak'ed with a delay instead, and delivered again, until its last delivery, when the
//! stage dead-letters the event. Batches in flight longer than a third of `ack_wait` are
//! marked in progress, so the server does not deliver them again meanwhile.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::message::{AckKind, Acker};
use async_nats::jetstream::stream::{self, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Context};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::client::{connect, event_headers};
use super::core_source::fill;
use super::metrics::JetStreamSourceMetrics;
use super::{
    HEADER_DELIVERED, HEADER_SEQUENCE, HEADER_STREAM, HEADER_SUBJECT, payload, with_header,
};
use crate::config::{DeliverFrom, JetStreamSourceConfig, Retention, Storage, StreamSettings};
use crate::connectors::source::deliver;
use crate::connectors::{SourceContext, SourceError};
use crate::delivery::{AckToken, Completion, LogLimiter, Redelivery, RedeliveryRequest};
use crate::event::Event;
use crate::health::Health;

/// How often consumer pending counts are read for the metrics.
const INFO_INTERVAL: Duration = Duration::from_secs(5);
/// Longest wait between tries to bind the stream and consumer.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A batch sent into the pipeline: its messages' ackers by stream sequence.
struct InFlight {
    ackers: Vec<(u64, Acker)>,
    sent: Instant,
    progressed: Instant,
}

/// Runs the source until shutdown.
pub async fn run(
    config: JetStreamSourceConfig,
    ctx: SourceContext,
    metrics: JetStreamSourceMetrics,
) -> Result<(), SourceError> {
    let name = ctx.name.clone();
    let client = connect(&name, &config.servers, &config.auth, &ctx.health)
        .await
        .map_err(|e| SourceError::read(&name, e))?;
    let js = jetstream::new(client.clone());
    let Some(consumer) = bind_until_bound(&js, &config, &ctx).await? else {
        return Ok(());
    };
    let max_deliver = match consumer.cached_info().config.max_deliver {
        n if n > 0 => n,
        _ => config.max_deliver,
    };
    let (register_tx, register_rx) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let (retry_tx, retry_rx) = mpsc::unbounded_channel();
    let acks = tokio::spawn(ack_loop(
        AckSettings {
            name: name.clone(),
            ack_wait: config.ack_wait.0,
            nak_delay: config.nak_delay.0,
            metrics: metrics.clone(),
        },
        consumer.clone(),
        register_rx,
        done_rx,
        retry_rx,
    ));
    let batch_size = config.fetch.max_messages.unwrap_or(ctx.batch_size);
    let expires = config.fetch.expires.0;
    let mut log_limit = LogLimiter::default();
    let mut errors = LogLimiter::default();
    let mut next_batch = 0_u64;
    let mut read = Ok(());
    'pulls: while !ctx.shutdown.is_cancelled() {
        let pulls = consumer
            .stream()
            .max_messages_per_batch(batch_size)
            .max_bytes_per_batch(config.fetch.max_bytes.unwrap_or(0))
            .expires(expires)
            .heartbeat(expires / 4)
            .messages();
        let mut pulls = std::pin::pin!(pulls);
        let mut messages = tokio::select! {
            () = ctx.shutdown.cancelled() => break,
            made = &mut pulls => match made {
                Ok(messages) => messages,
                Err(e) => {
                    if let Some(held_back) = errors.allow() {
                        tracing::warn!(source = %name, error = %e, held_back, "cannot pull from the consumer; retrying");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        loop {
            let first = tokio::select! {
                () = ctx.shutdown.cancelled() => break 'pulls,
                next = messages.next() => next,
            };
            let mut batch = match first {
                Some(Ok(m)) => vec![Ok(m)],
                Some(Err(e)) => {
                    use async_nats::jetstream::consumer::pull::MessagesErrorKind;
                    if let Some(held_back) = errors.allow() {
                        tracing::warn!(source = %name, error = %e, held_back, "pull failed");
                    }
                    if matches!(
                        e.kind(),
                        MessagesErrorKind::ConsumerDeleted | MessagesErrorKind::NoResponders
                    ) {
                        // Made again (or waited for) on the next round.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue 'pulls;
                    }
                    continue;
                }
                None => continue 'pulls,
            };
            fill(&mut messages, &mut batch, batch_size, ctx.linger).await;
            let seq = next_batch;
            next_batch += 1;
            let (events, malformed, ackers) =
                to_events(batch, seq, &config, max_deliver, &retry_tx, &metrics, &name);
            if ackers.is_empty() {
                continue;
            }
            let now = Instant::now();
            // Registered before the events go, so their completion always finds them.
            let _ = register_tx.send((
                seq,
                InFlight {
                    ackers,
                    sent: now,
                    progressed: now,
                },
            ));
            let token = AckToken::standalone(seq, done_tx.clone());
            if let Err(e) = deliver(&ctx, &mut log_limit, events, malformed, token).await {
                read = Err(e);
                break 'pulls;
            }
        }
    }
    // Let go of the readers so the pipeline drains; the ack loop ends once every batch in
    // flight is settled, then the acks are flushed.
    drop(ctx);
    drop(register_tx);
    drop(done_tx);
    drop(retry_tx);
    if let Err(e) = acks.await {
        tracing::error!(source = %name, error = %e, "the ack task failed");
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), client.flush()).await;
    read
}

/// Binds the stream and consumer, retrying while the server cannot be reached; `None` on
/// shutdown first.
async fn bind_until_bound(
    js: &Context,
    config: &JetStreamSourceConfig,
    ctx: &SourceContext,
) -> Result<Option<PullConsumer>, SourceError> {
    let mut backoff = Duration::from_millis(100);
    loop {
        let bound = tokio::select! {
            () = ctx.shutdown.cancelled() => return Ok(None),
            bound = bind(js, config) => bound,
        };
        match bound {
            Ok(consumer) => return Ok(Some(consumer)),
            Err(Bind::Fatal(e)) => return Err(SourceError::read(&ctx.name, e)),
            Err(Bind::Retry(e)) => {
                report(&ctx.health, &ctx.name, &e);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

fn report(health: &Health, name: &str, error: &str) {
    health.problem(name, error);
    tracing::warn!(source = %name, error, "cannot bind the JetStream consumer yet; retrying");
}

enum Bind {
    /// The server is not there yet, or not answering.
    Retry(String),
    /// A setting the server refuses: retrying would not help.
    Fatal(String),
}

async fn bind(js: &Context, config: &JetStreamSourceConfig) -> Result<PullConsumer, Bind> {
    use async_nats::jetstream::context::{CreateStreamErrorKind, GetStreamErrorKind};
    let stream = match &config.create_stream {
        Some(settings) => js
            .get_or_create_stream(stream_config(&config.stream, settings))
            .await
            .map_err(|e| match e.kind() {
                CreateStreamErrorKind::TimedOut | CreateStreamErrorKind::JetStreamUnavailable => {
                    Bind::Retry(format!("stream {:?}: {e}", config.stream))
                }
                _ => Bind::Fatal(format!("cannot make stream {:?}: {e}", config.stream)),
            })?,
        None => js
            .get_stream(&config.stream)
            .await
            .map_err(|e| match e.kind() {
                GetStreamErrorKind::Request => {
                    Bind::Retry(format!("stream {:?}: {e}", config.stream))
                }
                _ => Bind::Fatal(format!(
                    "stream {:?}: {e} (set create_stream to have it made)",
                    config.stream
                )),
            })?,
    };
    stream
        .get_or_create_consumer(&config.consumer, consumer_config(config))
        .await
        .map_err(|e| {
            let text = format!(
                "consumer {:?} on stream {:?}: {e}",
                config.consumer, config.stream
            );
            if text.contains("timed out") || text.contains("no responders") {
                Bind::Retry(text)
            } else {
                Bind::Fatal(text)
            }
        })
}

fn stream_config(name: &str, s: &StreamSettings) -> stream::Config {
    stream::Config {
        name: name.to_owned(),
        subjects: s.subjects.clone(),
        retention: match s.retention {
            Retention::Limits => RetentionPolicy::Limits,
            Retention::WorkQueue => RetentionPolicy::WorkQueue,
            Retention::Interest => RetentionPolicy::Interest,
        },
        storage: match s.storage {
            Storage::File => StorageType::File,
            Storage::Memory => StorageType::Memory,
        },
        max_age: s.max_age.map(|d| d.0).unwrap_or_default(),
        max_bytes: s.max_bytes.unwrap_or(-1),
        max_messages: s.max_messages.unwrap_or(-1),
        duplicate_window: s.duplicate_window.map(|d| d.0).unwrap_or_default(),
        num_replicas: s.replicas,
        ..Default::default()
    }
}

fn consumer_config(config: &JetStreamSourceConfig) -> pull::Config {
    pull::Config {
        durable_name: Some(config.consumer.clone()),
        ack_policy: AckPolicy::Explicit,
        ack_wait: config.ack_wait.0,
        max_deliver: config.max_deliver,
        max_ack_pending: config.max_ack_pending,
        filter_subject: config.filter_subject.clone().unwrap_or_default(),
        deliver_policy: match config.deliver {
            DeliverFrom::All => DeliverPolicy::All,
            DeliverFrom::Last => DeliverPolicy::Last,
            DeliverFrom::New => DeliverPolicy::New,
            DeliverFrom::StartSequence(start_sequence) => {
                DeliverPolicy::ByStartSequence { start_sequence }
            }
            DeliverFrom::StartTime(ms) => DeliverPolicy::ByStartTime {
                start_time: async_nats::datetime::from_nanos(i128::from(ms) * 1_000_000)
                    .unwrap_or_else(|_| async_nats::datetime::from_nanos(0).expect("epoch")),
            },
        },
        ..Default::default()
    }
}

type Pulled = Result<jetstream::Message, async_nats::jetstream::consumer::pull::MessagesError>;

/// Events of one pulled batch, the malformed ones, and every message's acker.
#[allow(clippy::type_complexity)]
fn to_events(
    batch: Vec<Pulled>,
    seq: u64,
    config: &JetStreamSourceConfig,
    max_deliver: i64,
    retry: &mpsc::UnboundedSender<RedeliveryRequest>,
    metrics: &JetStreamSourceMetrics,
    name: &str,
) -> (Vec<Event>, Vec<(Event, String)>, Vec<(u64, Acker)>) {
    let mut events = Vec::with_capacity(batch.len());
    let mut malformed = Vec::new();
    let mut ackers = Vec::with_capacity(batch.len());
    for pulled in batch {
        let message = match pulled {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(source = %name, error = %e, "pull status");
                continue;
            }
        };
        let Ok(info) = message.info() else {
            tracing::warn!(source = %name, subject = %message.subject, "a message without JetStream metadata; skipped");
            continue;
        };
        let (stream_seq, delivered) = (info.stream_sequence, info.delivered);
        let stream_name = info.stream.to_owned();
        let time = (info.published.unix_timestamp_nanos() / 1_000_000) as i64;
        if delivered > 1 {
            metrics.redeliveries.inc();
        }
        let (message, acker) = message.split();
        let mut headers = event_headers(message.headers.as_ref());
        with_header(&mut headers, HEADER_SUBJECT, message.subject.as_str());
        with_header(&mut headers, HEADER_STREAM, &stream_name);
        with_header(&mut headers, HEADER_SEQUENCE, stream_seq);
        with_header(&mut headers, HEADER_DELIVERED, delivered);
        let event = Event {
            key: None,
            payload: bytes::Bytes::new(),
            headers,
            time,
            redelivery: Some(Redelivery::new(
                seq,
                stream_seq,
                delivered,
                max_deliver,
                retry.clone(),
            )),
            // Messages are acknowledged one by one and redelivered out of sequence order,
            // so a sequence number does not say what came before.
            origin: None,
        };
        match payload(config.format, &message.payload) {
            Ok(payload) => events.push(Event { payload, ..event }),
            Err(reason) => malformed.push((
                Event {
                    payload: message.payload.clone(),
                    ..event
                },
                format!("{stream_name} #{stream_seq}: {reason}"),
            )),
        }
        ackers.push((stream_seq, acker));
    }
    (events, malformed, ackers)
}

struct AckSettings {
    name: String,
    ack_wait: Duration,
    nak_delay: Duration,
    metrics: JetStreamSourceMetrics,
}

/// Acks (or naks) each batch's messages as the batch completes, marks long batches in
/// progress, and reads the consumer's pending counts. Ends once the reader has stopped and
/// every batch it sent has completed.
async fn ack_loop(
    settings: AckSettings,
    mut consumer: PullConsumer,
    mut registered: mpsc::UnboundedReceiver<(u64, InFlight)>,
    mut done: mpsc::UnboundedReceiver<Completion>,
    mut retries: mpsc::UnboundedReceiver<RedeliveryRequest>,
) {
    let mut in_flight: HashMap<u64, InFlight> = HashMap::new();
    let mut failed: HashMap<u64, HashSet<u64>> = HashMap::new();
    let mut reader_done = false;
    let progress_after = settings.ack_wait / 3;
    let mut progress_tick = tokio::time::interval(progress_after.max(Duration::from_millis(100)));
    let mut info_tick = tokio::time::interval(INFO_INTERVAL);
    let mut errors = LogLimiter::default();
    while !(reader_done && in_flight.is_empty()) {
        tokio::select! {
            biased;
            batch = registered.recv(), if !reader_done => match batch {
                Some((seq, batch)) => { in_flight.insert(seq, batch); }
                None => reader_done = true,
            },
            Some(request) = retries.recv() => {
                failed.entry(request.batch).or_default().insert(request.message);
            }
            Some(completion) = done.recv() => {
                // What was sent before the completion is taken in first: the batch's
                // registration and the redelivery requests of its events.
                while let Ok((seq, batch)) = registered.try_recv() {
                    in_flight.insert(seq, batch);
                }
                while let Ok(request) = retries.try_recv() {
                    failed.entry(request.batch).or_default().insert(request.message);
                }
                let Some(batch) = in_flight.remove(&completion.seq) else { continue };
                let failed = failed.remove(&completion.seq).unwrap_or_default();
                settle(&settings, batch, completion.handled, &failed, &mut errors).await;
            }
            _ = progress_tick.tick() => {
                for batch in in_flight.values_mut() {
                    if batch.progressed.elapsed() >= progress_after {
                        batch.progressed = Instant::now();
                        for (_, acker) in &batch.ackers {
                            let _ = acker.ack_with(AckKind::Progress).await;
                        }
                        tracing::debug!(source = %settings.name, messages = batch.ackers.len(), waited = ?batch.sent.elapsed(), "batch marked in progress");
                    }
                }
            }
            _ = info_tick.tick() => {
                if let Ok(info) = tokio::time::timeout(Duration::from_secs(2), consumer.info()).await.map_err(drop).and_then(|i| i.map_err(drop)) {
                    settings.metrics.pending.set(info.num_pending as i64);
                    settings.metrics.ack_pending.set(info.num_ack_pending as i64);
                }
            }
        }
    }
}

/// Acks a completed batch's messages; naks those a stage handed back, or all of them when
/// the batch was not fully handled (so they come again rather than being lost).
async fn settle(
    settings: &AckSettings,
    batch: InFlight,
    handled: bool,
    failed: &HashSet<u64>,
    errors: &mut LogLimiter,
) {
    for (seq, acker) in batch.ackers {
        let again = !handled || failed.contains(&seq);
        let sent = if again {
            settings.metrics.naks.inc();
            acker.ack_with(AckKind::Nak(Some(settings.nak_delay))).await
        } else {
            acker.ack().await
        };
        if let Err(e) = sent
            && let Some(held_back) = errors.allow()
        {
            // The server delivers the message again after ack_wait.
            tracing::warn!(source = %settings.name, error = %e, held_back, "cannot ack; the message will come again");
        }
    }
}
