//! The core NATS sink: each event published on its subject (from the template), headers
//! kept; a batch is acknowledged once a flush round trip shows the server has it all.

use std::time::{Duration, Instant};

use async_nats::Client;
use bytes::Bytes;

use super::client::{connect, nats_headers};
use super::metrics::PublishMetrics;
use super::{SubjectTemplate, dead_letter_some};
use crate::config::{EdgeFormat, NatsAuth, NatsSinkConfig};
use crate::connectors::SinkContext;
use crate::connectors::codec::encode;
use crate::event::{Batch, Event, now_ms};

/// Attempts per batch before it is dead-lettered.
const ATTEMPTS: u32 = 5;
/// Longest wait for a flush; a server that is away makes it wait for the reconnect.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the sink until its input closes.
pub async fn run(config: NatsSinkConfig, ctx: SinkContext, metrics: PublishMetrics) {
    let Some((client, template)) =
        start(&ctx, &config.servers, &config.auth, &config.subject).await
    else {
        return;
    };
    while let Some(batch) = ctx.input.recv().await {
        ctx.metrics.events_in.inc_by(batch.len() as u64);
        if let Some(delay) = ctx.delay {
            tokio::time::sleep(delay).await;
        }
        let started = Instant::now();
        let (messages, unroutable) = prepare(&template, config.format, &batch.events);
        let mut attempt = 1;
        let published = loop {
            match publish(&client, &messages).await {
                Ok(()) => break Ok(()),
                Err(e) if attempt >= ATTEMPTS => break Err(e),
                Err(e) => {
                    metrics.errors.inc_by(messages.len() as u64);
                    tracing::warn!(sink = %ctx.name, attempt, error = %e, "publish failed, retrying");
                    tokio::time::sleep(Duration::from_millis(100) * 2_u32.pow(attempt)).await;
                    attempt += 1;
                }
            }
        };
        metrics.seconds.observe(started.elapsed().as_secs_f64());
        let mut failed = unroutable;
        match published {
            Ok(()) => {
                ctx.health.recovered(&ctx.name);
                ctx.metrics.events_out.inc_by(messages.len() as u64);
                observe_age(&ctx, &batch);
            }
            Err(e) => {
                metrics.errors.inc_by(messages.len() as u64);
                failed.extend(
                    messages
                        .iter()
                        .map(|m| (batch.events[m.index].clone(), e.clone())),
                );
            }
        }
        dead_letter_some(&ctx, &batch, failed).await;
        batch.settle();
        ctx.metrics
            .batch_seconds
            .observe(started.elapsed().as_secs_f64());
    }
    let _ = tokio::time::timeout(FLUSH_TIMEOUT, client.flush()).await;
}

/// Connects a sink and parses its subject template; `None` (said in the log) when either
/// fails, in which case its events stay unacknowledged.
pub(super) async fn start(
    ctx: &SinkContext,
    servers: &str,
    auth: &NatsAuth,
    subject: &str,
) -> Option<(Client, SubjectTemplate)> {
    let client = match connect(&ctx.name, servers, auth, &ctx.health).await {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(sink = %ctx.name, error = %e, "cannot start the NATS sink; events stay unacknowledged");
            return None;
        }
    };
    match SubjectTemplate::parse(subject) {
        Ok(template) => Some((client, template)),
        Err(e) => {
            tracing::error!(sink = %ctx.name, error = %e, "bad subject; events stay unacknowledged");
            None
        }
    }
}

/// One message ready to publish, and the event it is made from.
pub(super) struct Outgoing {
    pub index: usize,
    pub subject: String,
    pub headers: async_nats::HeaderMap,
    pub payload: Bytes,
}

/// Messages for `events`, and the events whose subject cannot be made, with the reason.
pub(super) fn prepare(
    template: &SubjectTemplate,
    format: EdgeFormat,
    events: &[Event],
) -> (Vec<Outgoing>, Vec<(Event, String)>) {
    let mut messages = Vec::with_capacity(events.len());
    let mut unroutable = Vec::new();
    for (index, event) in events.iter().enumerate() {
        match template.render(&event.payload) {
            Ok(subject) => messages.push(Outgoing {
                index,
                subject: subject.into_owned(),
                headers: nats_headers(&event.headers),
                payload: body(format, event),
            }),
            Err(reason) => unroutable.push((event.clone(), reason)),
        }
    }
    (messages, unroutable)
}

/// The message body for `event` in `format` (without the newline line formats add).
pub(super) fn body(format: EdgeFormat, event: &Event) -> Bytes {
    match format {
        EdgeFormat::Msgpack | EdgeFormat::Raw => event.payload.clone(),
        EdgeFormat::Json => {
            let mut out = Vec::with_capacity(event.payload.len() * 2);
            encode(EdgeFormat::Json, false, event, &mut out);
            if out.last() == Some(&b'\n') {
                out.pop();
            }
            Bytes::from(out)
        }
    }
}

async fn publish(client: &Client, messages: &[Outgoing]) -> Result<(), String> {
    for m in messages {
        client
            .publish_with_headers(m.subject.clone(), m.headers.clone(), m.payload.clone())
            .await
            .map_err(|e| e.to_string())?;
    }
    match tokio::time::timeout(FLUSH_TIMEOUT, client.flush()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("flush failed: {e}")),
        Err(_) => Err(format!("no flush answer within {FLUSH_TIMEOUT:?}")),
    }
}

pub(super) fn observe_age(ctx: &SinkContext, batch: &Batch) {
    if let Some(oldest) = batch.events.iter().map(|e| e.time).min() {
        let age_ms = now_ms().saturating_sub(oldest).max(0);
        ctx.metrics.end_to_end.observe(age_ms as f64 / 1e3);
    }
}
