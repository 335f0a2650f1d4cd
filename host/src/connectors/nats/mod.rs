//! NATS through async-nats: core NATS subjects (at most once, optionally shared through a
//! queue group) and JetStream durable pull consumers with explicit acks, redelivery and
//! replay; sinks publish on core NATS or to a stream with publish acks and `Nats-Msg-Id`.

mod client;
pub mod core_sink;
pub mod core_source;
pub mod js_sink;
pub mod js_source;
mod metrics;
mod subject;

pub use client::connect;
pub use metrics::{JetStreamSourceMetrics, NatsFamilies, PublishMetrics};
pub use subject::SubjectTemplate;

use bytes::Bytes;

use crate::config::EdgeFormat;
use crate::connectors::SinkContext;
use crate::connectors::codec::decode_with;
use crate::delivery::{DeadLetterReason, dead_letter_event};
use crate::event::{Batch, Event, Header};

/// The start of the headers a NATS source adds to each event.
pub const SOURCE_HEADER_PREFIX: &str = "weir-nats-";
/// Header with the subject a NATS message was published on.
pub const HEADER_SUBJECT: &str = "weir-nats-subject";
/// Header with a JetStream message's stream.
pub const HEADER_STREAM: &str = "weir-nats-stream";
/// Header with a JetStream message's stream sequence.
pub const HEADER_SEQUENCE: &str = "weir-nats-sequence";
/// Header with the number of times a JetStream message was delivered.
pub const HEADER_DELIVERED: &str = "weir-nats-delivered";

/// A message's payload as an event payload: decoded, or the reason it cannot be.
fn payload(format: EdgeFormat, raw: &Bytes) -> Result<Bytes, String> {
    decode_with(format, raw, |_| raw.clone())
}

/// `headers` plus one more.
fn with_header(headers: &mut Vec<Header>, name: &str, value: impl ToString) {
    headers.push(Header {
        name: name.to_owned(),
        value: Bytes::from(value.to_string()),
    });
}

/// Sends `failed` events of `batch` (each with its reason) to the dead-letter sink.
async fn dead_letter_some(ctx: &SinkContext, batch: &Batch, failed: Vec<(Event, String)>) {
    if failed.is_empty() {
        return;
    }
    ctx.metrics.failed.sink_error.inc_by(failed.len() as u64);
    let Some(inlet) = &ctx.dead_letter else {
        tracing::error!(sink = %ctx.name, error = %failed[0].1, events = failed.len(), "events cannot be published and no [dead_letter] sink is set; they are dropped");
        return;
    };
    tracing::error!(sink = %ctx.name, error = %failed[0].1, events = failed.len(), "events cannot be published; sent to the dead-letter sink");
    let dead = failed
        .into_iter()
        .map(|(event, reason)| {
            dead_letter_event(event, &ctx.name, None, DeadLetterReason::SinkError, &reason)
        })
        .collect();
    if inlet.send(batch.derive(dead)).await.is_err() {
        tracing::error!(sink = %ctx.name, "the dead-letter sink stopped; events left unacknowledged");
    }
}
