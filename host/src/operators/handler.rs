//! `type = "handler"`: a wasm handler plugin. Faults are isolated to the events that cause
//! them; those go to the dead-letter list with the plugin, version and reason. A reloaded
//! version is taken at the next batch boundary.

use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::breaker::{Admission, Breaker, Transition};
use super::{Operator, Processed};
use crate::config::{BreakerConfig, QuarantinePolicy};
use crate::delivery::{DeadLetterReason, dead_letter_event};
use crate::event::Event;
use crate::metrics::PluginMetrics;
use crate::plugins::{CallError, PluginSlot, PluginUser, Release, SupervisedHandler};

/// A stage running a handler plugin.
pub struct HandlerOperator {
    stage: String,
    plugin_label: String,
    slot: Arc<PluginSlot>,
    generation: u64,
    user: PluginUser,
    handler: SupervisedHandler,
    metrics: PluginMetrics,
    breaker: Breaker,
    policy: QuarantinePolicy,
    shutdown: CancellationToken,
}

impl HandlerOperator {
    /// Starts an instance of the release serving in `slot` for `user` (its stage, config
    /// and limits).
    ///
    /// # Errors
    /// The [`CallError`] of instantiation or `init` (e.g. the plugin rejects its config).
    pub fn new(
        slot: Arc<PluginSlot>,
        user: PluginUser,
        metrics: PluginMetrics,
        breaker: &BreakerConfig,
        shutdown: CancellationToken,
    ) -> Result<Self, CallError> {
        let (generation, release) = slot.current();
        let plugin_label = format!("{}@{}", release.plugin.name(), release.plugin.version());
        Ok(Self {
            stage: user.stage.clone(),
            plugin_label,
            handler: supervised(&user, release)?,
            slot,
            generation,
            user,
            metrics,
            breaker: Breaker::new(breaker),
            policy: breaker.policy,
            shutdown,
        })
    }

    /// Takes the newest version if one was published since the last batch.
    fn follow_reloads(&mut self) {
        if self.slot.generation() == self.generation {
            return;
        }
        let (generation, release) = self.slot.current();
        self.generation = generation;
        let label = format!("{}@{}", release.plugin.name(), release.plugin.version());
        // The reloader ran `init` with these settings already; failing here is unlikely,
        // and then the old release keeps serving this worker.
        match supervised(&self.user, release) {
            Ok(handler) => {
                self.handler = handler;
                if self.breaker.is_quarantined() {
                    self.slot.set_quarantined(&self.stage, false);
                    tracing::info!(stage = %self.stage, plugin = %label, "new version dropped in; quarantine ends");
                }
                self.breaker.reset();
                tracing::debug!(stage = %self.stage, plugin = %label, "worker switched to the new version");
                self.plugin_label = label;
            }
            Err(error) => {
                tracing::error!(stage = %self.stage, plugin = %label, error = %error, "new version did not start here; the previous one keeps serving");
            }
        }
    }
}

/// A supervised instance of `release` with the settings it gives `user`.
fn supervised(user: &PluginUser, release: Release) -> Result<SupervisedHandler, CallError> {
    let settings = user.settings(release.defaults.as_deref());
    SupervisedHandler::new(release.plugin, settings.limits, settings.config)
}

impl Operator for HandlerOperator {
    fn ports(&self) -> Vec<String> {
        vec![String::new()]
    }

    fn blocking(&self) -> bool {
        true
    }

    fn process(&mut self, events: Vec<Event>, out: &mut Processed) {
        self.follow_reloads();
        if self.breaker.admit(Instant::now()) == Admission::Refuse {
            self.quarantined(events, out);
            return;
        }
        let started = Instant::now();
        let result = self.handler.process(&events);
        self.metrics
            .call_seconds
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(output) => {
                out.dropped = output.dropped as u64;
                out.ports[0] = output.events;
                let faults = output
                    .failures
                    .iter()
                    .filter(|f| !matches!(f.error.kind, crate::plugins::CallErrorKind::Reported(_)))
                    .count();
                for fault in output.failures.iter().filter_map(|f| f.error.fault()) {
                    self.metrics.faults.of(fault.kind()).inc();
                }
                self.after_batch(faults);
                for failure in output.failures {
                    let Some(event) = events.get(failure.index) else {
                        continue;
                    };
                    out.dead.push(self.dead(event.clone(), &failure.error));
                }
            }
            Err(error) => {
                // No instance could be made: every event of the batch fails with the reason.
                tracing::error!(stage = %self.stage, error = %error, "plugin unusable; batch sent to the dead-letter sink");
                self.after_batch(events.len());
                out.dead
                    .extend(events.into_iter().map(|e| self.dead(e, &error)));
            }
        }
    }
}

impl HandlerOperator {
    fn after_batch(&mut self, faults: usize) {
        match self.breaker.record(faults, Instant::now()) {
            Transition::None => {}
            Transition::Tripped => {
                self.slot.set_quarantined(&self.stage, true);
                tracing::warn!(stage = %self.stage, plugin = %self.plugin_label, policy = ?self.policy, "plugin quarantined by its circuit breaker");
                if self.policy == QuarantinePolicy::Stop {
                    tracing::error!(stage = %self.stage, "quarantine policy is stop: stopping the pipeline");
                    self.shutdown.cancel();
                }
            }
            Transition::Recovered => {
                self.slot.set_quarantined(&self.stage, false);
                tracing::info!(stage = %self.stage, plugin = %self.plugin_label, "trial batch clean; quarantine ends");
            }
        }
    }

    /// What a quarantined stage does with a batch, by its policy.
    fn quarantined(&self, events: Vec<Event>, out: &mut Processed) {
        match self.policy {
            QuarantinePolicy::Skip => out.ports[0] = events,
            QuarantinePolicy::DeadLetter | QuarantinePolicy::Stop => {
                let reason = format!(
                    "plugin {} is quarantined by stage {}'s circuit breaker",
                    self.plugin_label, self.stage
                );
                out.dead.extend(events.into_iter().map(|e| {
                    let event = dead_letter_event(
                        e,
                        &self.stage,
                        Some(&self.plugin_label),
                        DeadLetterReason::Quarantined,
                        &reason,
                    );
                    (DeadLetterReason::Quarantined, event)
                }));
            }
        }
    }

    fn dead(&self, event: Event, error: &CallError) -> (DeadLetterReason, Event) {
        let reason = if error.fault().is_some() {
            DeadLetterReason::PluginFault
        } else {
            DeadLetterReason::PluginError
        };
        let event = dead_letter_event(
            event,
            &self.stage,
            Some(&self.plugin_label),
            reason,
            &error.to_string(),
        );
        (reason, event)
    }
}
