//! Handler instances: one batch in, kept, replaced, fanned-out, dropped and failed events out.

use super::bindings::handler::Handler;
use super::columns::{BatchEncoder, EmitBounds, EmittedEvents, Inherited, bit};
use super::error::{CallError, CallErrorKind, Fault};
use super::instance::{InstanceCore, check_failures};
use super::kind::PluginKind;
use super::limits::PluginLimits;
use super::loader::{LoadedPlugin, WorldPre};
use crate::event::Event;

/// What a handler made of a batch.
#[derive(Debug, Default)]
pub struct HandlerOutput {
    /// Events to pass on, in input order: for each input, itself if kept, then its outputs.
    pub events: Vec<Event>,
    /// Inputs that failed, in input order.
    pub failures: Vec<EventFailure>,
    /// Inputs neither kept, replaced nor failed.
    pub dropped: usize,
}

/// One input event that failed, and why.
#[derive(Debug, Clone)]
pub struct EventFailure {
    /// Index of the event in the batch.
    pub index: usize,
    /// The error, naming plugin, version and export.
    pub error: CallError,
}

/// A live handler instance, made once per worker and reused for every batch.
pub struct HandlerInstance {
    core: InstanceCore,
    bindings: Handler,
    encoder: BatchEncoder,
}

impl HandlerInstance {
    /// Instantiates `plugin` and runs its `init` with `config` (a JSON object).
    ///
    /// # Errors
    /// A [`CallError`] when the plugin is not a handler, faults while starting, or rejects
    /// the configuration.
    pub fn new(
        plugin: &LoadedPlugin,
        limits: PluginLimits,
        config: &str,
    ) -> Result<Self, CallError> {
        let (core, bindings) = InstanceCore::start(
            plugin,
            limits,
            PluginKind::Handler,
            config,
            |pre| match pre {
                WorldPre::Handler(pre) => Some(pre),
                _ => None,
            },
            |pre, store| pre.instantiate(store),
            |b: &Handler, store, config| b.weir_plugin_event_handler().call_init(store, config),
        )?;
        Ok(Self {
            core,
            bindings,
            encoder: BatchEncoder::default(),
        })
    }

    /// Whether a fault has made this instance unusable; replace it with a new one.
    pub fn is_poisoned(&self) -> bool {
        self.core.is_poisoned()
    }

    /// The instance's linear memory in bytes: what its language's runtime and heap take.
    pub fn memory_bytes(&self) -> usize {
        self.core.memory_bytes()
    }

    /// Runs `process` over `events`.
    ///
    /// # Errors
    /// A [`CallError`] when the whole batch failed: a fault (the instance is then poisoned)
    /// or an error the plugin returned for the batch. Per-event failures are not errors; they
    /// are in [`HandlerOutput::failures`].
    pub fn process(&mut self, events: &[Event]) -> Result<HandlerOutput, CallError> {
        let Self {
            core,
            bindings,
            encoder,
        } = self;
        let batch = encoder.encode(events).map_err(|e| {
            core.error(
                "process",
                CallErrorKind::Fault(Fault::Contract {
                    reason: e.to_string(),
                }),
            )
        })?;
        let api = bindings.weir_plugin_event_handler();
        let outcomes = core.call("process", |store| api.call_process(store, batch))?;

        let n = events.len();
        if outcomes.keep.len() > n.div_ceil(8) {
            return Err(core.fault(
                "process",
                Fault::Contract {
                    reason: format!(
                        "keep bitmap of {} bytes for {n} events",
                        outcomes.keep.len()
                    ),
                },
            ));
        }
        if let Err(reason) = check_failures(&outcomes.failures, n) {
            return Err(core.fault("process", Fault::Contract { reason }));
        }
        let limits = *core.limits();
        let emitted = EmittedEvents::new(
            outcomes.outputs,
            EmitBounds {
                sources: n,
                max_bytes: limits.max_output_bytes,
                max_per_source: limits.max_outputs_per_event,
            },
        )
        .map_err(|reason| core.fault("process", Fault::Contract { reason }))?;

        let mut failed = vec![false; if outcomes.failures.is_empty() { 0 } else { n }];
        let mut failures = Vec::with_capacity(outcomes.failures.len());
        for failure in outcomes.failures {
            let index = failure.index as usize;
            if !failed[index] {
                failed[index] = true;
                failures.push(EventFailure {
                    index,
                    error: core.error(
                        "process",
                        CallErrorKind::Reported(super::instance::reported(failure.error)),
                    ),
                });
            }
        }
        failures.sort_by_key(|f| f.index);

        let mut out = HandlerOutput {
            events: Vec::with_capacity(n),
            failures,
            dropped: 0,
        };
        let mut next = 0usize;
        for (i, input) in events.iter().enumerate() {
            let first = next;
            while next < emitted.len() && emitted.source(next) as usize == i {
                next += 1;
            }
            if failed.get(i).copied().unwrap_or(false) {
                continue;
            }
            let kept = bit(&outcomes.keep, i);
            if kept {
                out.events.push(input.clone());
            }
            for j in first..next {
                out.events.push(emitted.event(
                    j,
                    Inherited {
                        key: &input.key,
                        time: input.time,
                        headers: &input.headers,
                        redelivery: &input.redelivery,
                        origin: input.origin,
                    },
                ));
            }
            if !kept && first == next {
                out.dropped += 1;
            }
        }
        Ok(out)
    }
}
