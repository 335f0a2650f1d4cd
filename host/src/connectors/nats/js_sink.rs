//! The JetStream sink: publishes each event with a `Nats-Msg-Id`, so that the stream's
//! duplicate window drops what a restart sends again, and acknowledges a batch once every
//! publish ack is in. `max_in_flight` batches await their acks at once; failed messages
//! are published again, then dead-lettered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, Context};
use tokio::sync::Semaphore;
use weir_plugin_sdk::msgpack;

use super::core_sink::{Outgoing, observe_age, prepare, start};
use super::metrics::PublishMetrics;
use super::{HEADER_SEQUENCE, HEADER_STREAM, dead_letter_some};
use crate::config::JetStreamSinkConfig;
use crate::connectors::SinkContext;
use crate::event::{Batch, Event};

/// Attempts per message before it is dead-lettered.
const ATTEMPTS: u32 = 3;

/// Runs the sink until its input closes.
pub async fn run(config: JetStreamSinkConfig, ctx: SinkContext, metrics: PublishMetrics) {
    let Some((client, template)) =
        start(&ctx, &config.servers, &config.auth, &config.subject).await
    else {
        return;
    };
    let js = jetstream::new(client.clone());
    let sink = Arc::new(Publisher {
        js,
        metrics,
        msg_id_field: config.msg_id_field.clone(),
    });
    let ctx = Arc::new(ctx);
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    while let Some(batch) = ctx.input.recv().await {
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
            break;
        };
        ctx.metrics.events_in.inc_by(batch.len() as u64);
        if let Some(delay) = ctx.delay {
            tokio::time::sleep(delay).await;
        }
        let started = Instant::now();
        let (mut messages, unroutable) = prepare(&template, config.format, &batch.events);
        sink.add_ids(&batch.events, &mut messages);
        // Published here, in order; only the acks are awaited apart.
        let acks = sink.publish(&messages).await;
        let sink = Arc::clone(&sink);
        let ctx = Arc::clone(&ctx);
        tokio::spawn(async move {
            sink.finish(batch, messages, acks, unroutable, &ctx).await;
            ctx.metrics
                .batch_seconds
                .observe(started.elapsed().as_secs_f64());
            drop(permit);
        });
    }
    let _ = in_flight
        .acquire_many(config.max_in_flight.max(1) as u32)
        .await;
}

type AckFuture = Result<jetstream::context::PublishAckFuture, String>;

struct Publisher {
    js: Context,
    metrics: PublishMetrics,
    msg_id_field: Option<String>,
}

impl Publisher {
    /// Sets each message's `Nats-Msg-Id`: the `msg_id_field` of the payload, or the stream
    /// and sequence of the JetStream message the event came from, with `:N` for the N-th
    /// further event made from the same message.
    fn add_ids(&self, events: &[Event], messages: &mut [Outgoing]) {
        let mut previous: Option<(String, u32)> = None;
        for m in messages {
            let event = &events[m.index];
            let id = match &self.msg_id_field {
                Some(field) => field_id(&event.payload, field),
                None => origin_id(event).map(|origin| match &mut previous {
                    Some((last, n)) if *last == origin => {
                        *n += 1;
                        format!("{origin}:{n}")
                    }
                    _ => {
                        previous = Some((origin.clone(), 0));
                        origin
                    }
                }),
            };
            if let Some(id) = id {
                m.headers.insert("Nats-Msg-Id", id.as_str());
            }
        }
    }

    async fn publish(&self, messages: &[Outgoing]) -> Vec<AckFuture> {
        let mut acks = Vec::with_capacity(messages.len());
        for m in messages {
            acks.push(
                self.js
                    .publish_with_headers(m.subject.clone(), m.headers.clone(), m.payload.clone())
                    .await
                    .map_err(|e| e.to_string()),
            );
        }
        acks
    }

    /// Awaits the acks; publishes the failed messages again, then dead-letters them, and
    /// acknowledges the batch.
    async fn finish(
        &self,
        batch: Batch,
        messages: Vec<Outgoing>,
        acks: Vec<AckFuture>,
        unroutable: Vec<(Event, String)>,
        ctx: &SinkContext,
    ) {
        let started = Instant::now();
        let mut failed = collect(acks, &messages).await;
        let mut attempt = 1;
        while !failed.is_empty() && attempt < ATTEMPTS {
            self.metrics.errors.inc_by(failed.len() as u64);
            tracing::warn!(sink = %ctx.name, error = %failed[0].1, messages = failed.len(), attempt, "publish failed, retrying");
            tokio::time::sleep(Duration::from_millis(200) * 2_u32.pow(attempt)).await;
            let again: Vec<&Outgoing> = failed.iter().map(|(i, _)| &messages[*i]).collect();
            let mut acks = Vec::with_capacity(again.len());
            for m in &again {
                acks.push(
                    self.js
                        .publish_with_headers(
                            m.subject.clone(),
                            m.headers.clone(),
                            m.payload.clone(),
                        )
                        .await
                        .map_err(|e| e.to_string()),
                );
            }
            let positions: Vec<usize> = failed.iter().map(|(i, _)| *i).collect();
            failed = collect_at(acks, &positions).await;
            attempt += 1;
        }
        self.metrics
            .seconds
            .observe(started.elapsed().as_secs_f64());
        let published = messages.len() - failed.len();
        if published > 0 {
            ctx.health.recovered(&ctx.name);
            ctx.metrics.events_out.inc_by(published as u64);
            observe_age(ctx, &batch);
        }
        let mut dead = unroutable;
        if !failed.is_empty() {
            self.metrics.errors.inc_by(failed.len() as u64);
            ctx.health.problem(
                &ctx.name,
                &format!("JetStream publish failing: {}", failed[0].1),
            );
            dead.extend(
                failed
                    .into_iter()
                    .map(|(i, e)| (batch.events[messages[i].index].clone(), e)),
            );
        }
        dead_letter_some(ctx, &batch, dead).await;
        batch.settle();
    }
}

/// The failures among `acks` of `messages`, as (position in `messages`, error).
async fn collect(acks: Vec<AckFuture>, messages: &[Outgoing]) -> Vec<(usize, String)> {
    let positions: Vec<usize> = (0..messages.len()).collect();
    collect_at(acks, &positions).await
}

/// Awaits every ack at once: each ack's timeout starts when it is first polled, so acks
/// awaited one after another would wait one timeout each when a connection drops them.
async fn collect_at(acks: Vec<AckFuture>, positions: &[usize]) -> Vec<(usize, String)> {
    let results = futures_util::future::join_all(acks.into_iter().map(|ack| async move {
        match ack {
            Ok(future) => future.await.map(drop).map_err(|e| e.to_string()),
            Err(e) => Err(e),
        }
    }))
    .await;
    results
        .into_iter()
        .zip(positions)
        .filter_map(|(result, position)| result.err().map(|e| (*position, e)))
        .collect()
}

fn field_id(payload: &[u8], field: &str) -> Option<String> {
    match msgpack::lookup(payload, field) {
        Ok(Some(msgpack::Value::Str(s))) => Some(String::from_utf8_lossy(s).into_owned()),
        Ok(Some(msgpack::Value::Int(n))) => Some(n.to_string()),
        Ok(Some(msgpack::Value::UInt(n))) => Some(n.to_string()),
        _ => None,
    }
}

fn origin_id(event: &Event) -> Option<String> {
    let header = |name: &str| {
        event
            .headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| String::from_utf8_lossy(&h.value).into_owned())
    };
    Some(format!(
        "{}:{}",
        header(HEADER_STREAM)?,
        header(HEADER_SEQUENCE)?
    ))
}
