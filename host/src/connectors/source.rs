//! What every source shares: where its batches go, the dead-letter path for input it cannot
//! decode, acknowledgement tracking with periodic checkpoints, and the shutdown signal.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::delivery::{
    AckToken, AckTracker, CheckpointStore, DeadLetterReason, LogLimiter, dead_letter_event,
};
use crate::event::{Batch, Event};
use crate::metrics::ComponentMetrics;
use crate::pipeline::{Inlet, Output};

/// Everything a source task needs from the pipeline.
pub struct SourceContext {
    /// The source's name.
    pub name: String,
    /// Its index among the pipeline's sources, which its events' [`Origin`]s carry.
    ///
    /// [`Origin`]: crate::event::Origin
    pub origin_id: u16,
    /// Where a partitioned source says which partitions it reads.
    pub assignments: std::sync::Arc<crate::event::Assignments>,
    /// Its readers.
    pub output: Output,
    /// The dead-letter sink's inlet, if there is one.
    pub dead_letter: Option<Inlet>,
    /// Its metric handles.
    pub metrics: ComponentMetrics,
    /// Events per batch.
    pub batch_size: usize,
    /// Longest wait to fill a batch.
    pub linger: Duration,
    /// Cancelled on shutdown: stop reading, let what was read drain.
    pub shutdown: CancellationToken,
    /// Where positions are saved.
    pub checkpoints: CheckpointStore,
    /// How often acknowledged positions are saved.
    pub checkpoint_interval: Duration,
    /// Where a source reports that it cannot reach its system.
    pub health: crate::health::Health,
}

/// Why a source stopped early.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Reading failed.
    #[error("source {source_name}: {reason}")]
    Read {
        /// The source.
        source_name: String,
        /// What failed.
        reason: String,
    },
}

impl SourceError {
    /// A read error of `source`.
    pub fn read(source: &str, reason: impl std::fmt::Display) -> Self {
        Self::Read {
            source_name: source.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// Hands out batches and tracks their acknowledgement, saving positions as they advance.
pub struct Emitter<P> {
    ctx: SourceContext,
    tracker: AckTracker<P>,
    saved: Option<P>,
    last_save: Instant,
    checkpointed: bool,
    log_limit: LogLimiter,
}

impl<P: Clone + PartialEq + Serialize + Send + 'static> Emitter<P> {
    /// An emitter; `checkpointed` sources save their acknowledged position.
    pub fn new(ctx: SourceContext, checkpointed: bool) -> Self {
        Self {
            ctx,
            tracker: AckTracker::new(),
            saved: None,
            last_save: Instant::now(),
            checkpointed,
            log_limit: LogLimiter::default(),
        }
    }

    /// The context.
    pub fn ctx(&self) -> &SourceContext {
        &self.ctx
    }

    /// Sends `events` (and `malformed` records, with their reasons, to the dead-letter
    /// sink), tied to `position`: where to resume once they are all handled.
    ///
    /// # Errors
    /// When the pipeline has stopped taking events (a reader is gone).
    pub async fn emit(
        &mut self,
        events: Vec<Event>,
        malformed: Vec<(Event, String)>,
        position: P,
    ) -> Result<(), SourceError> {
        self.tracker.poll();
        self.maybe_checkpoint(false).await;
        if events.is_empty() && malformed.is_empty() {
            return Ok(());
        }
        let token = self.tracker.token(position);
        deliver(&self.ctx, &mut self.log_limit, events, malformed, token).await
    }

    /// Called when the source has nothing more to read: lets go of its readers so the
    /// pipeline drains, waits for every batch to be acknowledged, and saves the position.
    pub async fn finish(mut self) {
        self.ctx.output = Output::default();
        self.ctx.dead_letter = None;
        self.tracker.drained().await;
        self.maybe_checkpoint(true).await;
        if self.tracker.unhandled() > 0 {
            tracing::warn!(
                source = %self.ctx.name,
                batches = self.tracker.unhandled(),
                "some batches were not fully handled; their position was not acknowledged and will be read again"
            );
        }
    }

    async fn maybe_checkpoint(&mut self, now: bool) {
        let Some(position) = self.tracker.acknowledged() else {
            return;
        };
        if self.saved.as_ref() == Some(position)
            || (!now && self.last_save.elapsed() < self.ctx.checkpoint_interval)
        {
            return;
        }
        let position = position.clone();
        self.last_save = Instant::now();
        self.saved = Some(position.clone());
        self.ctx.metrics.acknowledged.inc();
        if !self.checkpointed {
            return;
        }
        let store = self.ctx.checkpoints.clone();
        let name = self.ctx.name.clone();
        let saved = tokio::task::spawn_blocking(move || store.save(&name, &position)).await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(source = %self.ctx.name, error = %e, "cannot save the source position")
            }
            Err(e) => {
                tracing::error!(source = %self.ctx.name, error = %e, "checkpoint task failed")
            }
        }
    }
}

/// Sends `events` into the pipeline and `malformed` records (with their reasons) to the
/// dead-letter sink, both tied to `token`, counting them.
///
/// # Errors
/// When the pipeline has stopped taking events (a reader is gone).
pub async fn deliver(
    ctx: &SourceContext,
    log_limit: &mut LogLimiter,
    events: Vec<Event>,
    malformed: Vec<(Event, String)>,
    token: AckToken,
) -> Result<(), SourceError> {
    ctx.metrics
        .events_in
        .inc_by((events.len() + malformed.len()) as u64);
    if !malformed.is_empty() {
        ctx.metrics.failed.malformed.inc_by(malformed.len() as u64);
        let dead: Vec<Event> = malformed
            .into_iter()
            .map(|(event, reason)| {
                if let Some(held_back) = log_limit.allow() {
                    tracing::warn!(source = %ctx.name, error = %reason, held_back, "malformed input, sent to the dead-letter sink");
                }
                dead_letter_event(event, &ctx.name, None, DeadLetterReason::Malformed, &reason)
            })
            .collect();
        // Without a dead-letter sink, logging and counting is all there is to do.
        if let Some(inlet) = &ctx.dead_letter {
            let batch = Batch::new(dead, vec![token.share()]);
            inlet
                .send(batch)
                .await
                .map_err(|_| SourceError::read(&ctx.name, "the dead-letter sink stopped"))?;
        }
    }
    ctx.metrics.events_out.inc_by(events.len() as u64);
    ctx.output
        .send(Batch::new(events, vec![token]))
        .await
        .map_err(|_| SourceError::read(&ctx.name, "a reader stopped"))
}
