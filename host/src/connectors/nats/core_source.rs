//! The core NATS source: subscriptions to subjects (in a queue group, when set, so several
//! instances share the messages). Core NATS keeps nothing for a subscriber that is away or
//! behind, so this source is at most once; JetStream is the durable one.

use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use tokio::time::Instant;

use super::client::{connect, event_headers};
use super::{HEADER_SUBJECT, payload, with_header};
use crate::config::NatsSourceConfig;
use crate::connectors::source::Emitter;
use crate::connectors::{SourceContext, SourceError};
use crate::event::{Event, now_ms};

/// Runs the source until shutdown.
pub async fn run(config: NatsSourceConfig, ctx: SourceContext) -> Result<(), SourceError> {
    let name = ctx.name.clone();
    let client = connect(&name, &config.servers, &config.auth, &ctx.health)
        .await
        .map_err(|e| SourceError::read(&name, e))?;
    let mut subscriptions = Vec::with_capacity(config.subjects.len());
    for subject in &config.subjects {
        let subscribed = match &config.queue_group {
            Some(group) => client.queue_subscribe(subject.clone(), group.clone()).await,
            None => client.subscribe(subject.clone()).await,
        };
        let subscription = subscribed.map_err(|e| {
            SourceError::read(&name, format!("cannot subscribe to {subject:?}: {e}"))
        })?;
        subscriptions.push(subscription);
    }
    let mut messages = futures_util::stream::select_all(subscriptions);
    let batch_size = ctx.batch_size;
    let linger = ctx.linger;
    let shutdown = ctx.shutdown.clone();
    let mut emitter = Emitter::<u64>::new(ctx, false);
    let mut received = 0_u64;
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => break,
            next = messages.next() => next,
        };
        let Some(first) = first else { break };
        let mut batch = Vec::with_capacity(batch_size);
        batch.push(first);
        fill(&mut messages, &mut batch, batch_size, linger).await;
        received += batch.len() as u64;
        let mut events = Vec::with_capacity(batch.len());
        let mut malformed = Vec::new();
        for message in batch {
            let mut headers = event_headers(message.headers.as_ref());
            with_header(&mut headers, HEADER_SUBJECT, message.subject.as_str());
            let event = Event {
                key: None,
                payload: bytes::Bytes::new(),
                headers,
                time: now_ms(),
                redelivery: None,
                origin: None,
            };
            match payload(config.format, &message.payload) {
                Ok(payload) => events.push(Event { payload, ..event }),
                Err(reason) => malformed.push((
                    Event {
                        payload: message.payload.clone(),
                        ..event
                    },
                    format!("{}: {reason}", message.subject),
                )),
            }
        }
        emitter.emit(events, malformed, received).await?;
    }
    drop(messages);
    emitter.finish().await;
    Ok(())
}

/// Adds what is ready at once, then what comes within `linger`, up to `batch_size`.
pub(super) async fn fill<S, T>(
    messages: &mut S,
    batch: &mut Vec<T>,
    batch_size: usize,
    linger: Duration,
) where
    S: futures_util::Stream<Item = T> + Unpin,
{
    while batch.len() < batch_size {
        match messages.next().now_or_never() {
            Some(Some(m)) => batch.push(m),
            Some(None) => return,
            None => break,
        }
    }
    let deadline = Instant::now() + linger;
    while batch.len() < batch_size {
        match tokio::time::timeout_at(deadline, messages.next()).await {
            Ok(Some(m)) => {
                batch.push(m);
                while batch.len() < batch_size {
                    match messages.next().now_or_never() {
                        Some(Some(m)) => batch.push(m),
                        _ => break,
                    }
                }
            }
            Ok(None) | Err(_) => return,
        }
    }
}
