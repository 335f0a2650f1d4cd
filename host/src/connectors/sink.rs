//! The loop every sink shares: take a batch, write it (retrying with backoff), then settle
//! its acknowledgements; after the last retry the batch goes to the dead-letter sink.

use std::time::{Duration, Instant};

use crate::delivery::{DeadLetterReason, dead_letter_event};
use crate::event::{Batch, Event, now_ms};
use crate::metrics::ComponentMetrics;
use crate::pipeline::{Inlet, InputChannel};

/// Attempts per batch before it is dead-lettered.
const WRITE_ATTEMPTS: u32 = 5;
/// First retry delay; doubled each attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// A destination that writes whole batches.
pub trait BatchWriter: Send + 'static {
    /// Writes every event of the batch, or fails as a whole. Called on a blocking thread,
    /// so it may do blocking I/O.
    ///
    /// # Errors
    /// A message naming what failed.
    fn write(&mut self, events: &[Event]) -> Result<(), String>;
}

/// Everything a sink task needs from the pipeline.
pub struct SinkContext {
    /// The sink's name.
    pub name: String,
    /// Its input.
    pub input: InputChannel,
    /// The dead-letter inlet, unless this sink is the dead-letter sink.
    pub dead_letter: Option<Inlet>,
    /// Its metric handles.
    pub metrics: ComponentMetrics,
    /// A delay per batch, to model a slow destination.
    pub delay: Option<Duration>,
    /// Where a sink reports that it cannot reach its destination.
    pub health: crate::health::Health,
}

/// Runs `writer` until its input closes.
pub async fn run<W: BatchWriter>(mut writer: W, ctx: SinkContext) {
    while let Some(batch) = ctx.input.recv().await {
        let started = Instant::now();
        ctx.metrics.events_in.inc_by(batch.len() as u64);
        if let Some(delay) = ctx.delay {
            tokio::time::sleep(delay).await;
        }
        let (back, written) = write_with_retries(writer, batch, &ctx.name).await;
        writer = back.0;
        let batch = back.1;
        match written {
            Ok(()) => {
                ctx.metrics.events_out.inc_by(batch.len() as u64);
                if let Some(oldest) = batch.events.iter().map(|e| e.time).min() {
                    let age_ms = now_ms().saturating_sub(oldest).max(0);
                    ctx.metrics.end_to_end.observe(age_ms as f64 / 1e3);
                }
                batch.settle();
            }
            Err(error) => {
                ctx.metrics.failed.sink_error.inc_by(batch.len() as u64);
                dead_letter(batch, &ctx, &error).await;
            }
        }
        ctx.metrics
            .batch_seconds
            .observe(started.elapsed().as_secs_f64());
        ctx.metrics
            .channel_fill
            .set(ctx.input.queued().await as i64);
    }
}

async fn write_with_retries<W: BatchWriter>(
    writer: W,
    batch: Batch,
    name: &str,
) -> ((W, Batch), Result<(), String>) {
    let mut state = (writer, batch);
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        let (writer, batch) = state;
        let joined = tokio::task::spawn_blocking(move || {
            let mut writer = writer;
            let result = writer.write(&batch.events);
            (writer, batch, result)
        })
        .await;
        let (writer, batch, result) = match joined {
            Ok(done) => done,
            // The writer panicked: nothing of it is left to retry with.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        match result {
            Ok(()) => return ((writer, batch), Ok(())),
            Err(error) if attempt >= WRITE_ATTEMPTS => return ((writer, batch), Err(error)),
            Err(error) => {
                tracing::warn!(sink = %name, attempt, error = %error, "write failed, retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
                state = (writer, batch);
            }
        }
    }
}

async fn dead_letter(batch: Batch, ctx: &SinkContext, error: &str) {
    let Some(inlet) = &ctx.dead_letter else {
        // The dead-letter sink itself failed: the batch stays unacknowledged, so its
        // source positions are read again after a restart.
        tracing::error!(sink = %ctx.name, error = %error, events = batch.len(), "write failed after retries; events left unacknowledged");
        return;
    };
    tracing::error!(sink = %ctx.name, error = %error, events = batch.len(), "write failed after retries; events sent to the dead-letter sink");
    let Batch { events, acks } = batch;
    let dead = events
        .into_iter()
        .map(|e| dead_letter_event(e, &ctx.name, None, DeadLetterReason::SinkError, error))
        .collect();
    if inlet.send(Batch::new(dead, acks)).await.is_err() {
        tracing::error!(sink = %ctx.name, "the dead-letter sink stopped; events left unacknowledged");
    }
}
