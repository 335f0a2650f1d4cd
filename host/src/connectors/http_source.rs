//! `type = "http"` as a source: events POSTed to `/ingest/NAME` on the HTTP side.
//!
//! The HTTP handler decodes the body and hands the events to this source's task through a
//! channel holding one request; when the pipeline is full the task is waiting to emit, the
//! channel stays full, and the next request is answered 429 instead of piling up.

use tokio::sync::{mpsc, oneshot};

use super::source::{Emitter, SourceContext, SourceError};
use crate::config::{EdgeFormat, HttpSourceConfig};
use crate::event::{Event, now_ms};
use crate::format::{json_to_msgpack, json_value_to_msgpack};

/// Events of one request, and where to say they are in.
pub struct IngestRequest {
    /// The decoded events.
    pub events: Vec<Event>,
    /// Answered once the events are in the pipeline.
    pub accepted: oneshot::Sender<()>,
}

/// What the HTTP side needs to feed an http source.
#[derive(Clone)]
pub struct IngestHandle {
    /// Into the source's task.
    pub requests: mpsc::Sender<IngestRequest>,
    /// How bodies are written.
    pub format: EdgeFormat,
    /// Largest body taken.
    pub max_body_bytes: usize,
}

/// A channel for an http source: the handle for the HTTP side and the receiving end.
pub fn ingest_channel(config: &HttpSourceConfig) -> (IngestHandle, mpsc::Receiver<IngestRequest>) {
    let (requests, rx) = mpsc::channel(1);
    (
        IngestHandle {
            requests,
            format: config.format,
            max_body_bytes: config.max_body_bytes,
        },
        rx,
    )
}

/// Decodes a request body into events.
///
/// # Errors
/// The reason, naming the line or item, for a body that is not valid in `format`.
pub fn decode_body(format: EdgeFormat, body: &[u8]) -> Result<Vec<Event>, String> {
    let now = now_ms();
    let mut events = Vec::new();
    match format {
        EdgeFormat::Json if body.trim_ascii_start().starts_with(b"[") => {
            let items: Vec<serde_json::Value> =
                serde_json::from_slice(body).map_err(|e| format!("invalid JSON array: {e}"))?;
            events.extend(
                items
                    .iter()
                    .map(|v| Event::new(json_value_to_msgpack(v), now)),
            );
        }
        EdgeFormat::Json => {
            for (i, line) in body.split(|&b| b == b'\n').enumerate() {
                if line.trim_ascii().is_empty() {
                    continue;
                }
                let payload = json_to_msgpack(line).map_err(|e| format!("line {}: {e}", i + 1))?;
                events.push(Event::new(payload, now));
            }
        }
        EdgeFormat::Msgpack => {
            let mut rest = body;
            while !rest.is_empty() {
                let n = weir_plugin_sdk::msgpack::skip(rest)
                    .map_err(|e| format!("item {}: invalid MessagePack: {e}", events.len() + 1))?;
                events.push(Event::new(rest[..n].to_vec(), now));
                rest = &rest[n..];
            }
        }
        EdgeFormat::Raw => {
            events.extend(
                body.split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(|l| Event::new(l.to_vec(), now)),
            );
        }
    }
    Ok(events)
}

/// Runs until shutdown, emitting each request's events.
///
/// # Errors
/// When the pipeline stops taking events.
pub async fn run(
    mut requests: mpsc::Receiver<IngestRequest>,
    ctx: SourceContext,
) -> Result<(), SourceError> {
    let shutdown = ctx.shutdown.clone();
    let mut emitter = Emitter::<u64>::new(ctx, false);
    let mut taken = 0u64;
    loop {
        let request = tokio::select! {
            request = requests.recv() => match request {
                Some(request) => request,
                None => break,
            },
            () = shutdown.cancelled() => break,
        };
        taken += request.events.len() as u64;
        emitter.emit(request.events, Vec::new(), taken).await?;
        // The client may have gone; the events are in either way.
        let _ = request.accepted.send(());
    }
    emitter.finish().await;
    Ok(())
}
