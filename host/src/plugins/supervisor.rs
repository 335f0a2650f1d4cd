//! Keeps a handler serving through faults: a faulted instance is replaced by a fresh one,
//! and a batch that failed as a whole is retried event by event, so only the events that
//! cause the fault fail and every other event of the batch is handled.

use std::sync::Arc;

use super::error::{CallError, CallErrorKind};
use super::handler::{EventFailure, HandlerInstance, HandlerOutput};
use super::limits::PluginLimits;
use super::loader::LoadedPlugin;
use crate::event::Event;

/// Faults in a row, while retrying a batch event by event, after which the rest of that
/// batch fails without being tried. Each retry of a looping plugin costs a full deadline;
/// without this bound one batch of 1,024 events would hold the stage for 1,024 deadlines.
pub const MAX_CONSECUTIVE_FAULTS: usize = 3;

/// A handler that replaces its instance after a fault and isolates failing events.
pub struct SupervisedHandler {
    plugin: Arc<LoadedPlugin>,
    limits: PluginLimits,
    config: String,
    instance: Option<HandlerInstance>,
    faults: u64,
}

impl SupervisedHandler {
    /// Starts the first instance, so that a configuration the plugin rejects is reported
    /// before any event is handled.
    ///
    /// # Errors
    /// The [`CallError`] of instantiation or `init`.
    pub fn new(
        plugin: Arc<LoadedPlugin>,
        limits: PluginLimits,
        config: String,
    ) -> Result<Self, CallError> {
        let instance = HandlerInstance::new(&plugin, limits, &config)?;
        Ok(Self {
            plugin,
            limits,
            config,
            instance: Some(instance),
            faults: 0,
        })
    }

    /// Faults seen so far (each one replaced an instance).
    pub fn faults(&self) -> u64 {
        self.faults
    }

    /// Handles a batch. Events that fail, alone, are in [`HandlerOutput::failures`].
    ///
    /// # Errors
    /// Only when no working instance can be made (instantiation or `init` fails), in which
    /// case no event of the batch was handled.
    pub fn process(&mut self, events: &[Event]) -> Result<HandlerOutput, CallError> {
        let error = match self.instance()?.process(events) {
            Ok(output) => return Ok(output),
            Err(error) => error,
        };
        self.after_error(&error);
        if events.len() == 1 {
            return Ok(HandlerOutput {
                failures: vec![EventFailure { index: 0, error }],
                ..HandlerOutput::default()
            });
        }
        self.isolate(events)
    }

    fn isolate(&mut self, events: &[Event]) -> Result<HandlerOutput, CallError> {
        let mut output = HandlerOutput::default();
        let mut in_a_row = 0usize;
        for (index, event) in events.iter().enumerate() {
            if in_a_row >= MAX_CONSECUTIVE_FAULTS {
                output.failures.push(EventFailure {
                    index,
                    error: CallError {
                        plugin: self.plugin.name().to_owned(),
                        version: self.plugin.version().to_owned(),
                        export: "process",
                        kind: CallErrorKind::NotRetried { in_a_row },
                    },
                });
                continue;
            }
            match self.instance()?.process(std::slice::from_ref(event)) {
                Ok(single) => {
                    in_a_row = 0;
                    output.events.extend(single.events);
                    output.dropped += single.dropped;
                    output
                        .failures
                        .extend(single.failures.into_iter().map(|f| EventFailure {
                            index,
                            error: f.error,
                        }));
                }
                Err(error) => {
                    if error.fault().is_some() {
                        in_a_row += 1;
                    }
                    self.after_error(&error);
                    output.failures.push(EventFailure { index, error });
                }
            }
        }
        Ok(output)
    }

    fn after_error(&mut self, error: &CallError) {
        if let Some(fault) = error.fault() {
            self.faults += 1;
            self.instance = None;
            tracing::warn!(plugin = %error.plugin, version = %error.version, fault = fault.kind(), error = %error, "plugin fault, replacing its instance");
        }
    }

    fn instance(&mut self) -> Result<&mut HandlerInstance, CallError> {
        if self
            .instance
            .as_ref()
            .is_none_or(HandlerInstance::is_poisoned)
        {
            self.instance = None;
            let fresh = HandlerInstance::new(&self.plugin, self.limits, &self.config)?;
            return Ok(self.instance.insert(fresh));
        }
        match self.instance.as_mut() {
            Some(instance) => Ok(instance),
            None => unreachable!("an instance was just checked to be present"),
        }
    }
}
