//! The Kafka source: a consumer group member polled on a thread of its own.
//!
//! The poll thread never stops polling, so the group never evicts it: when the pipeline is
//! full it pauses its partitions and goes on polling, and resumes them once the backlog is
//! sent. Records are batched per partition; each batch is tied to its partition's
//! acknowledgement tracker, and only the offset after the highest contiguous handled record
//! is committed, on an interval, on revoke, and on shutdown. On a revoke, the revoked
//! partitions' records not yet sent are dropped, their batches in flight get `revoke_grace`
//! to finish, and what is handled is committed before the partitions go.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rdkafka::client::ClientContext;
use rdkafka::config::{FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Statistics, TopicPartitionList};
use tokio::sync::mpsc;

use super::client::{WeirClientContext, consumer_config};
use super::metrics::KafkaSourceMetrics;
use super::partitions::{PartitionId, PartitionTable, ReadyBatch, commit_list, ids};
use super::transaction::{TransactionError, TransactionLink, Transactions};
use crate::config::{EdgeFormat, KafkaSourceConfig, StartPosition};
use crate::connectors::codec::decode_with;
use crate::connectors::source::deliver;
use crate::connectors::{SourceContext, SourceError};
use crate::delivery::{AckToken, LogLimiter};
use crate::event::{Event, Header, Origin, now_ms};
use crate::format::json_to_msgpack_into;

/// Longest single wait in `poll`, so shutdown and commits are never late by more.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// Longest wait for room in the pipeline while a backlog waits; it ends as soon as room
/// frees up, so the backlog goes on at once.
const BACKLOG_WAIT: Duration = Duration::from_millis(10);
/// How long a backlog may last before the partitions are paused and polling resumes.
/// Well under the smallest `max.poll.interval.ms` librdkafka takes (its session timeout).
const PAUSE_AFTER: Duration = Duration::from_millis(500);

/// A batch on its way from the poll thread to the pipeline.
struct Outgoing {
    /// Where its records were read.
    partition: PartitionId,
    events: Vec<Event>,
    malformed: Vec<(Event, String)>,
    token: AckToken,
}

/// Runs the source until shutdown; `transactions` is set in exactly-once mode.
pub async fn run(
    config: KafkaSourceConfig,
    ctx: SourceContext,
    metrics: KafkaSourceMetrics,
    transactions: Option<TransactionLink>,
) -> Result<(), SourceError> {
    let (tx, mut rx) = mpsc::channel::<Outgoing>(2);
    let runtime = tokio::runtime::Handle::current();
    let settings = PollSettings {
        name: ctx.name.clone(),
        format: config.format,
        batch_size: ctx.batch_size,
        linger: ctx.linger,
        commit_interval: config.commit_interval.0,
        shutdown: ctx.shutdown.clone(),
        origin_id: ctx.origin_id,
    };
    let context = SourceClient {
        base: WeirClientContext::new(&ctx.name, ctx.health.clone()),
        table: Arc::default(),
        start: config.start,
        revoke_grace: config.revoke_grace.0,
        runtime: runtime.clone(),
        metrics,
        transactions: Mutex::new(None),
        paused: Mutex::new(false),
        origin_id: ctx.origin_id,
        assignments: Arc::clone(&ctx.assignments),
    };
    let consumer =
        BaseConsumer::from_config_and_context(&consumer_config(&ctx.name, &config), context)
            .map_err(|e| SourceError::read(&ctx.name, e))?;
    let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(|e| {
        SourceError::read(&ctx.name, format!("cannot subscribe to {topics:?}: {e}"))
    })?;
    let name = ctx.name.clone();
    let poller = std::thread::Builder::new()
        .name(format!("kafka-{name}"))
        .spawn(move || {
            if let Some(link) = transactions {
                let Some(txn) = link.wait(&runtime, &settings.shutdown) else {
                    return Err(SourceError::read(
                        &settings.name,
                        "the transactional sink stopped",
                    ));
                };
                *lock(&consumer.context().transactions) = Some(txn);
            }
            poll_loop(&consumer, &tx, &settings)
        })
        .map_err(|e| SourceError::read(&name, e))?;

    let mut log_limit = LogLimiter::default();
    let mut forwarded = Ok(());
    let mut arena = Arena::default();
    while let Some(mut out) = rx.recv().await {
        if config.format == EdgeFormat::Json {
            // Here rather than on the poll thread, which then only copies: parsing is the
            // costliest step of a record, and this way it runs beside the polling.
            transcode_json(&mut arena, &mut out);
        }
        forwarded = deliver(&ctx, &mut log_limit, out.events, out.malformed, out.token).await;
        if forwarded.is_err() {
            break;
        }
    }
    // Let go of the readers so the pipeline drains while the poll thread waits for it.
    drop(rx);
    drop(ctx);
    let polled = tokio::task::spawn_blocking(move || poller.join())
        .await
        .map_err(|e| SourceError::read(&name, e))?
        .map_err(|_| SourceError::read(&name, "the poll thread panicked"))?;
    polled.and(forwarded)
}

struct PollSettings {
    name: String,
    format: EdgeFormat,
    batch_size: usize,
    linger: Duration,
    commit_interval: Duration,
    shutdown: tokio_util::sync::CancellationToken,
    origin_id: u16,
}

fn poll_loop(
    consumer: &BaseConsumer<SourceClient>,
    tx: &mpsc::Sender<Outgoing>,
    settings: &PollSettings,
) -> Result<(), SourceError> {
    let context = consumer.context();
    let mut last_commit = Instant::now();
    let mut errors = LogLimiter::default();
    let mut backlog_since: Option<Instant> = None;
    let mut arena = Arena::default();
    let mut origins = OriginCache::default();
    while !settings.shutdown.is_cancelled() && !tx.is_closed() {
        if last_commit.elapsed() >= settings.commit_interval {
            last_commit = Instant::now();
            context.commit(consumer, &settings.name)?;
        }
        let backlog = send_ready(&mut context.table(), tx);
        if backlog {
            // A short backlog is waited out without polling (librdkafka keeps prefetching
            // into its bounded queue); only one that lasts pauses the partitions, so that
            // polling can go on without taking records. Pausing drops librdkafka's
            // prefetched records, so doing it on every full channel would fetch them again
            // and again.
            let since = *backlog_since.get_or_insert_with(Instant::now);
            if since.elapsed() < PAUSE_AFTER {
                wait_for_room(&context.runtime, tx);
                continue;
            }
        } else {
            backlog_since = None;
        }
        context.set_paused(consumer, backlog);
        let wait = if backlog {
            // Paused, nothing comes: wait for room instead, then poll at once to serve the
            // group and its callbacks.
            wait_for_room(&context.runtime, tx);
            Duration::ZERO
        } else {
            POLL_WAIT.min(settings.linger)
        };
        // Up to a batch of what is already fetched, without waiting after the first. The
        // table is locked per record, never across `poll`: rebalance and commit callbacks
        // run inside it and take the lock themselves.
        let mut wait = wait;
        for _ in 0..settings.batch_size {
            match consumer.poll(wait) {
                Some(Ok(message)) => {
                    context.base.reachable();
                    // Each call checks the name is UTF-8 again: once per record is enough.
                    let topic = message.topic();
                    let origin = origins.get(topic, message.partition());
                    let read = Read {
                        message: &message,
                        topic,
                        origin,
                    };
                    push(&mut context.table(), &mut arena, &read, settings);
                }
                Some(Err(e)) => {
                    report(&context.base, settings, &mut errors, &e);
                    break;
                }
                None => break,
            }
            wait = Duration::ZERO;
        }
        context.table().flush_lingering(Some(settings.linger));
    }
    // Shutdown: what was read and not sent is read again next time; what was sent is
    // waited for, then committed.
    context.table().ready.clear();
    context.drain_all(Some(consumer));
    context.commit(consumer, &settings.name)?;
    Ok(())
}

/// A consumer's errors come from `poll`, not from the client's error callback.
fn report(
    client: &WeirClientContext,
    settings: &PollSettings,
    errors: &mut LogLimiter,
    error: &KafkaError,
) {
    match error.rdkafka_error_code() {
        // Reported through readiness (logged once there); librdkafka reconnects by itself.
        Some(RDKafkaErrorCode::AllBrokersDown) => {
            client.unreachable(&error.to_string());
            return;
        }
        Some(RDKafkaErrorCode::BrokerTransportFailure) => {
            tracing::debug!(source = %settings.name, error = %error, "kafka consumer error");
            return;
        }
        _ => {}
    }
    if let Some(held_back) = errors.allow() {
        tracing::warn!(source = %settings.name, error = %error, held_back, "kafka consumer error");
    }
}

/// Blocks until the pipeline has room for a batch, for [`BACKLOG_WAIT`] at most. A fixed
/// sleep instead would leave the pipeline idle whenever it drains faster than the sleep.
fn wait_for_room(runtime: &tokio::runtime::Handle, tx: &mpsc::Sender<Outgoing>) {
    // The slot is only looked for here; `send_ready` takes it, as the only sender.
    let _ = runtime.block_on(async { tokio::time::timeout(BACKLOG_WAIT, tx.reserve()).await });
}

/// Sends waiting batches while the pipeline has room; true when some are left waiting.
fn send_ready(table: &mut PartitionTable, tx: &mpsc::Sender<Outgoing>) -> bool {
    while !table.ready.is_empty() {
        let Ok(permit) = tx.try_reserve() else {
            return true;
        };
        let Some(batch) = table.ready.pop_front() else {
            break;
        };
        let ReadyBatch {
            partition,
            events,
            malformed,
            next_offset,
        } = batch;
        let Some(owner) = table.partitions.get_mut(&partition) else {
            continue;
        };
        let token = owner.tracker.token(next_offset);
        permit.send(Outgoing {
            partition,
            events,
            malformed,
            token,
        });
    }
    false
}

/// Records' keys and payloads are copied into shared chunks of this size: one allocation
/// per chunk rather than two per record. Small enough that the poll thread has moved on to
/// another chunk by the time the sink drops a chunk's records, so the two threads do not
/// take turns on one chunk's reference count.
const ARENA_CHUNK: usize = 16 * 1024;

/// A buffer records are copied into; each copy is its own `Bytes` over the shared chunk.
#[derive(Default)]
struct Arena(BytesMut);

impl Arena {
    /// Room for `len` more bytes in the current chunk, or a new chunk.
    fn room(&mut self, len: usize) {
        if self.0.capacity() < len {
            self.0 = BytesMut::with_capacity(ARENA_CHUNK.max(len));
        }
    }

    fn copy(&mut self, bytes: &[u8]) -> Bytes {
        self.room(bytes.len());
        self.0.extend_from_slice(bytes);
        self.0.split().freeze()
    }

    /// A JSON record as a MessagePack payload, written straight into the chunk.
    fn json(&mut self, text: &[u8]) -> Result<Bytes, String> {
        // MessagePack is rarely longer than its JSON, but a short float (`1.5`) takes 9
        // bytes; a value that outgrows the room only costs a copy, not a failure.
        self.room(text.len() + text.len() / 2 + 16);
        match json_to_msgpack_into(text, &mut self.0) {
            Ok(()) => Ok(self.0.split().freeze()),
            Err(e) => {
                self.0.clear();
                Err(e.to_string())
            }
        }
    }
}

/// The [`Origin::partition`] of the partition read last: records come in runs from one
/// partition, so most records skip hashing the topic name.
#[derive(Default)]
struct OriginCache {
    last: Option<(String, i32, u32)>,
}

impl OriginCache {
    fn get(&mut self, topic: &str, partition: i32) -> u32 {
        match &self.last {
            Some((t, p, id)) if *p == partition && t == topic => *id,
            _ => {
                let id = partition_id(topic, partition);
                self.last = Some((topic.to_owned(), partition, id));
                id
            }
        }
    }
}

/// A record just polled, with what is known of where it came from.
struct Read<'a> {
    message: &'a BorrowedMessage<'a>,
    topic: &'a str,
    origin: u32,
}

fn push(table: &mut PartitionTable, arena: &mut Arena, read: &Read<'_>, settings: &PollSettings) {
    let Read {
        message,
        topic,
        origin,
    } = *read;
    let event = Event {
        key: message.key().map(|k| arena.copy(k)),
        payload: Bytes::new(),
        headers: message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| Header {
                        name: h.key.to_owned(),
                        value: h.value.map(Bytes::copy_from_slice).unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        time: message.timestamp().to_millis().unwrap_or_else(now_ms),
        redelivery: None,
        origin: Some(Origin {
            source: settings.origin_id,
            partition: origin,
            offset: message.offset().max(0) as u64,
        }),
    };
    let raw = message.payload().unwrap_or_default();
    let decoded = match settings.format {
        // Kept as read: `transcode_json` parses it off the poll thread.
        EdgeFormat::Json => Ok(arena.copy(raw)),
        format => decode_with(format, raw, |r| arena.copy(r)),
    };
    let record = match decoded {
        Ok(payload) => Ok(Event { payload, ..event }),
        Err(reason) => Err((
            Event {
                payload: Bytes::copy_from_slice(raw),
                ..event
            },
            format!(
                "{topic}/{}@{}: {reason}",
                message.partition(),
                message.offset()
            ),
        )),
    };
    table.push(
        (topic, message.partition()),
        message.offset(),
        record,
        settings.batch_size,
    );
}

/// Turns the JSON payloads of `out` into MessagePack; records that are not JSON move to its
/// malformed records, with the reason.
fn transcode_json(arena: &mut Arena, out: &mut Outgoing) {
    let (topic, partition) = &out.partition;
    let events = std::mem::take(&mut out.events);
    out.events.reserve(events.len());
    for mut event in events {
        match arena.json(&event.payload) {
            Ok(payload) => {
                event.payload = payload;
                out.events.push(event);
            }
            Err(reason) => {
                let offset = event.origin.map_or(0, |o| o.offset);
                out.malformed
                    .push((event, format!("{topic}/{partition}@{offset}: {reason}")));
            }
        }
    }
}

/// One number for a topic's partition, the same in every run, for [`Origin::partition`].
fn partition_id(topic: &str, partition: i32) -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = crate::operators::window::StableHasher.build_hasher();
    hasher.write(topic.as_bytes());
    hasher.write(&partition.to_le_bytes());
    hasher.finish() as u32
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The consumer's context: its partitions, and the rebalance and commit logic that must
/// run on the poll thread.
struct SourceClient {
    base: WeirClientContext,
    table: Arc<Mutex<PartitionTable>>,
    start: StartPosition,
    revoke_grace: Duration,
    runtime: tokio::runtime::Handle,
    metrics: KafkaSourceMetrics,
    transactions: Mutex<Option<Transactions>>,
    paused: Mutex<bool>,
    origin_id: u16,
    assignments: Arc<crate::event::Assignments>,
}

impl SourceClient {
    fn table(&self) -> MutexGuard<'_, PartitionTable> {
        lock(&self.table)
    }

    /// Pauses every owned partition while a backlog waits, and resumes them once it is
    /// sent; polling goes on either way.
    fn set_paused(&self, consumer: &BaseConsumer<Self>, pause: bool) {
        let mut paused = lock(&self.paused);
        if *paused == pause {
            return;
        }
        let owned = self.table().owned();
        let done = if pause {
            consumer.pause(&owned)
        } else {
            consumer.resume(&owned)
        };
        match done {
            Ok(()) => {
                *paused = pause;
                self.metrics
                    .paused
                    .set(if pause { owned.count() as i64 } else { 0 });
                tracing::debug!(source = %self.base.component, partitions = owned.count(), pause, "backpressure");
            }
            Err(e) => {
                tracing::warn!(source = %self.base.component, error = %e, "cannot pause or resume partitions")
            }
        }
    }

    /// Waits until every batch sent is handled, taking in completions as they come. With
    /// `serve`, the consumer is polled meanwhile to keep its group membership through a
    /// long drain; records it returns then are dropped, so this is only for shutdown, after
    /// which nothing past the last sent batch is committed.
    fn drain_all(&self, serve: Option<&BaseConsumer<Self>>) {
        while self.table().in_flight() > 0 {
            if let Some(consumer) = serve {
                let _ = consumer.poll(Duration::ZERO);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Commits every handled offset: plain offset commits, or in exactly-once mode the
    /// transaction, after draining so that no record of an uncommitted offset is in it.
    fn commit(&self, consumer: &BaseConsumer<Self>, name: &str) -> Result<(), SourceError> {
        let txn = lock(&self.transactions);
        let started = Instant::now();
        if let Some(txn) = txn.as_ref() {
            // No polling here: a record taken now would sit behind the offsets committed.
            self.drain_all(None);
            let offsets = self.table().commit_list();
            let Some(group) = consumer.group_metadata() else {
                return Ok(());
            };
            match txn.commit(&offsets, &group) {
                Ok(()) => {
                    self.table().committed(&offsets);
                    self.committed(started, offsets.count());
                }
                Err(TransactionError::Aborted(e)) => {
                    self.metrics.commits_failed.inc();
                    tracing::warn!(source = name, error = %e, "transaction aborted; reading again from the last committed offsets");
                    self.rewind(consumer);
                }
                Err(e) => return Err(SourceError::read(name, e)),
            }
            return Ok(());
        }
        drop(txn);
        let offsets = self.table().commit_list();
        if offsets.count() == 0 {
            return Ok(());
        }
        // Synchronous: an asynchronous commit's answer queues behind every record already
        // fetched, so the committed position would trail by seconds.
        match consumer.commit(&offsets, CommitMode::Sync) {
            Ok(()) => {
                self.table().committed(&offsets);
                self.committed(started, offsets.count());
            }
            Err(e) => {
                // Kept uncommitted: the next interval tries again.
                self.metrics.commits_failed.inc();
                tracing::warn!(source = name, error = %e, "offset commit failed; retrying at the next interval");
            }
        }
        Ok(())
    }

    fn committed(&self, started: Instant, partitions: usize) {
        self.base.reachable();
        self.metrics.commits_ok.inc();
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        tracing::debug!(source = %self.base.component, partitions, "committed");
    }

    /// After an aborted transaction: forget what was sent and seek every partition back to
    /// its last committed offset.
    fn rewind(&self, consumer: &BaseConsumer<Self>) {
        let mut table = self.table();
        table.ready.clear();
        let owned = table.owned();
        let ids = ids(&owned);
        let revoked = table.revoke(&ids);
        table.assign(ids, None);
        let mut positions = TopicPartitionList::new();
        for ((topic, partition), state) in revoked {
            if let Some(offset) = state.committed {
                let _ = positions.add_partition_offset(
                    &topic,
                    partition,
                    rdkafka::Offset::Offset(offset),
                );
            } else {
                let _ = positions.add_partition_offset(&topic, partition, rdkafka::Offset::Stored);
            }
        }
        drop(table);
        if let Err(e) = consumer.seek_partitions(positions, Duration::from_secs(10)) {
            tracing::error!(source = %self.base.component, error = %e, "cannot seek back after an aborted transaction");
        }
    }

    fn revoke(&self, consumer: &BaseConsumer<Self>, list: &TopicPartitionList) {
        self.metrics.revoked.inc();
        let revoked_ids = ids(list);
        if lock(&self.transactions).is_some() {
            // The transaction spans every partition: commit it whole before letting go.
            self.table()
                .ready
                .retain(|b| !revoked_ids.contains(&b.partition));
            if let Err(e) = self.commit(consumer, &self.base.component) {
                tracing::error!(source = %self.base.component, error = %e, "cannot commit the transaction before a revoke");
            }
            self.table().revoke(&revoked_ids);
            self.publish_assignment();
            return;
        }
        let mut revoked = self.table().revoke(&revoked_ids);
        self.publish_assignment();
        let started = Instant::now();
        let mut finished = true;
        for (_, partition) in &mut revoked {
            let left = self.revoke_grace.saturating_sub(started.elapsed());
            let drained = self
                .runtime
                .block_on(async { tokio::time::timeout(left, partition.tracker.drained()).await });
            finished &= drained.is_ok();
        }
        if !finished {
            tracing::warn!(source = %self.base.component, grace = ?self.revoke_grace, "revoked partitions still had events in flight; committing what is done (the rest is read again by the next owner)");
        }
        let offsets = commit_list(revoked.iter_mut().map(|(id, p)| (&*id, p)));
        if offsets.count() > 0 {
            let started = Instant::now();
            match consumer.commit(&offsets, CommitMode::Sync) {
                Ok(()) => self.committed(started, offsets.count()),
                Err(e) => {
                    self.metrics.commits_failed.inc();
                    tracing::warn!(source = %self.base.component, error = %e, "commit on revoke failed; the next owner reads those records again");
                }
            }
        }
        tracing::info!(source = %self.base.component, partitions = revoked.len(), "partitions revoked");
    }

    fn assign(&self, consumer: &BaseConsumer<Self>, list: &TopicPartitionList) {
        self.metrics.assigned.inc();
        // A group starting at a timestamp skips older records on partitions it has never
        // committed on; partitions with a committed offset resume from it.
        let skip_before = match self.start {
            StartPosition::Timestamp(t) => Some(t),
            _ => None,
        };
        let mut fresh = Vec::new();
        let mut resumed = Vec::new();
        if skip_before.is_some() {
            match consumer.committed_offsets(list.clone(), Duration::from_secs(10)) {
                Ok(committed) => {
                    for e in committed.elements() {
                        let id = (e.topic().to_owned(), e.partition());
                        if matches!(e.offset(), rdkafka::Offset::Offset(_)) {
                            resumed.push(id);
                        } else {
                            fresh.push(id);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(source = %self.base.component, error = %e, "cannot read committed offsets; starting every partition at the start time");
                    fresh = ids(list);
                }
            }
        } else {
            resumed = ids(list);
        }
        let mut table = self.table();
        table.assign(fresh, skip_before);
        table.assign(resumed, None);
        tracing::info!(source = %self.base.component, partitions = table.partitions.len(), "partitions assigned");
        drop(table);
        self.publish_assignment();
    }

    /// Tells the pipeline's stages which partitions this source reads now.
    fn publish_assignment(&self) {
        let partitions = self
            .table()
            .partitions
            .keys()
            .map(|(topic, partition)| partition_id(topic, *partition))
            .collect();
        self.assignments.set(self.origin_id, partitions);
    }
}

impl ClientContext for SourceClient {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.base.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.base.error(error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        self.base.note_brokers(&statistics);
        let table = self.table();
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if table.partitions.contains_key(&(topic.clone(), *partition)) {
                    self.metrics
                        .set_lag(topic, *partition, p.consumer_lag.max(0));
                }
            }
        }
    }
}

impl ConsumerContext for SourceClient {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        list: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let done = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.assign(consumer, list);
                let assigned = if cooperative {
                    consumer.incremental_assign(list)
                } else {
                    consumer.assign(list)
                };
                if *lock(&self.paused) {
                    // New partitions join the pause until the backlog is sent.
                    let _ = consumer.pause(list);
                }
                assigned
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.revoke(consumer, list);
                if cooperative {
                    consumer.incremental_unassign(list)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                let code: RDKafkaErrorCode = other.into();
                tracing::error!(source = %self.base.component, error = %code, "rebalance failed; letting every partition go");
                let mut table = self.table();
                let all = ids(&table.owned());
                table.revoke(&all);
                consumer.unassign()
            }
        };
        if let Err(e) = done {
            tracing::error!(source = %self.base.component, error = %e, "cannot apply the new assignment");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arena_hands_out_copies_and_transcoded_json_apart() {
        let mut arena = Arena::default();
        let key = arena.copy(b"k1");
        let payload = arena
            .json(br#"{"amount":1.5,"tags":["a"]}"#)
            .expect("valid JSON");
        assert_eq!(&key[..], b"k1");
        assert_eq!(
            crate::format::msgpack_to_json(&payload).expect("MessagePack"),
            serde_json::json!({"amount": 1.5, "tags": ["a"]})
        );
    }

    #[test]
    fn bad_json_leaves_nothing_behind_in_the_arena() {
        let mut arena = Arena::default();
        let error = arena
            .json(br#"{"amount":1, oops}"#)
            .expect_err("invalid JSON");
        assert!(
            error.contains("expected a string key at byte 13"),
            "{error}"
        );
        assert_eq!(&arena.copy(b"next")[..], b"next");
    }

    #[test]
    fn a_batch_of_json_is_transcoded_and_what_is_not_json_is_set_apart() {
        let mut read = Arena::default();
        let mut event = |payload: &[u8], offset: u64| Event {
            payload: read.copy(payload),
            origin: Some(Origin {
                source: 0,
                partition: 1,
                offset,
            }),
            ..Event::default()
        };
        let events = vec![
            event(br#"{"a":1}"#, 7),
            event(b"{oops", 8),
            event(b"[true]", 9),
        ];
        let mut out = Outgoing {
            partition: ("orders".into(), 3),
            events,
            malformed: Vec::new(),
            token: crate::delivery::AckTracker::new().token(10_i64),
        };
        transcode_json(&mut Arena::default(), &mut out);
        let values: Vec<_> = out
            .events
            .iter()
            .map(|e| crate::format::msgpack_to_json(&e.payload).expect("MessagePack"))
            .collect();
        assert_eq!(
            values,
            vec![serde_json::json!({"a": 1}), serde_json::json!([true])]
        );
        assert_eq!(out.malformed.len(), 1);
        let (bad, reason) = &out.malformed[0];
        assert_eq!(&bad.payload[..], b"{oops");
        assert!(reason.starts_with("orders/3@8: "), "{reason}");
    }

    #[test]
    fn json_longer_as_messagepack_than_its_room_still_converts() {
        let mut arena = Arena::default();
        // Short floats grow from 3 to 9 bytes each: past the room made for the text.
        let text = format!("[{}]", vec!["1.5"; 2000].join(","));
        let payload = arena.json(text.as_bytes()).expect("valid JSON");
        let value = crate::format::msgpack_to_json(&payload).expect("MessagePack");
        assert_eq!(value.as_array().map(Vec::len), Some(2000));
    }
}
