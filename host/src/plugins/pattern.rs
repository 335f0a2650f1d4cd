//! Pattern instances: host-held per-key matcher state, fed events and timer ticks in batches.

use bytes::Bytes;

use super::aggregator::{pack, unpack};
use super::bindings::pattern::Pattern;
use super::bindings::pattern::exports::weir::plugin::pattern_matcher::Progress as WitProgress;
use super::columns::{BatchEncoder, EmitBounds, EmittedEvents, Inherited};
use super::error::{CallError, CallErrorKind, Fault};
use super::handler::EventFailure;
use super::instance::{InstanceCore, check_failures, reported};
use super::kind::PluginKind;
use super::limits::PluginLimits;
use super::loader::{LoadedPlugin, WorldPre};
use crate::event::Event;

/// A match a pattern emitted.
#[derive(Debug, Clone)]
pub struct Match {
    /// Index of the state (key) that produced it.
    pub state: usize,
    /// The match event.
    pub event: Event,
}

/// States after events or a timer were applied.
#[derive(Debug, Default)]
pub struct Progress {
    /// New state per key, in the order given.
    pub states: Vec<Vec<u8>>,
    /// Per key, the event time at which it wants its timer.
    pub timers: Vec<Option<i64>>,
    /// Matches, in key order.
    pub matches: Vec<Match>,
    /// Events that could not be applied.
    pub failures: Vec<EventFailure>,
}

/// Key and time a match takes when the plugin does not set them: per state.
pub struct StateContext<'a> {
    /// Key of each state.
    pub keys: &'a [Option<Bytes>],
    /// Event time to stamp on matches of each state (its latest event, or the timer time).
    pub times: &'a [i64],
}

/// A live pattern instance.
pub struct PatternInstance {
    core: InstanceCore,
    bindings: Pattern,
    encoder: BatchEncoder,
    empty: Option<Vec<u8>>,
}

impl PatternInstance {
    /// Instantiates `plugin` and runs its `init` with `config` (a JSON object).
    ///
    /// # Errors
    /// A [`CallError`] when the plugin is not a pattern, faults while starting, or rejects
    /// the configuration.
    pub fn new(
        plugin: &LoadedPlugin,
        limits: PluginLimits,
        config: &str,
    ) -> Result<Self, CallError> {
        let (core, bindings) = InstanceCore::start(
            plugin,
            limits,
            PluginKind::Pattern,
            config,
            |pre| match pre {
                WorldPre::Pattern(pre) => Some(pre),
                _ => None,
            },
            |pre, store| pre.instantiate(store),
            |b: &Pattern, store, config| b.weir_plugin_pattern_matcher().call_init(store, config),
        )?;
        Ok(Self {
            core,
            bindings,
            encoder: BatchEncoder::default(),
            empty: None,
        })
    }

    /// Whether a fault has made this instance unusable.
    pub fn is_poisoned(&self) -> bool {
        self.core.is_poisoned()
    }

    /// The state of a key that has seen nothing (asked once, then reused).
    ///
    /// # Errors
    /// The plugin's [`CallError`].
    pub fn create(&mut self) -> Result<Vec<u8>, CallError> {
        let api = self.bindings.weir_plugin_pattern_matcher();
        self.core
            .empty_state(&mut self.empty, |store| api.call_create(store))
    }

    /// Applies event `i` to `states[targets[i]]`.
    ///
    /// # Errors
    /// The plugin's [`CallError`] for the whole call.
    pub fn process(
        &mut self,
        states: &[Vec<u8>],
        context: &StateContext<'_>,
        events: &[Event],
        targets: &[u32],
    ) -> Result<Progress, CallError> {
        let Self {
            core,
            bindings,
            encoder,
            ..
        } = self;
        let column = pack(core, "process", states)?;
        let batch = encoder.encode(events).map_err(|e| {
            core.error(
                "process",
                CallErrorKind::Fault(Fault::Contract {
                    reason: e.to_string(),
                }),
            )
        })?;
        let api = bindings.weir_plugin_pattern_matcher();
        let progress = core.call("process", |store| {
            api.call_process(store, &column, batch, targets)
        })?;
        convert(
            core,
            "process",
            progress,
            states.len(),
            events.len(),
            context,
        )
    }

    /// Tells `states` that event time reached `now`.
    ///
    /// # Errors
    /// The plugin's [`CallError`].
    pub fn on_timer(
        &mut self,
        states: &[Vec<u8>],
        context: &StateContext<'_>,
        now: i64,
    ) -> Result<Progress, CallError> {
        let Self { core, bindings, .. } = self;
        let column = pack(core, "on-timer", states)?;
        let api = bindings.weir_plugin_pattern_matcher();
        let progress = core.call("on-timer", |store| api.call_on_timer(store, &column, now))?;
        convert(core, "on-timer", progress, states.len(), 0, context)
    }
}

fn convert(
    core: &mut InstanceCore,
    export: &'static str,
    progress: WitProgress,
    count: usize,
    events: usize,
    context: &StateContext<'_>,
) -> Result<Progress, CallError> {
    let states = unpack(core, export, &progress.states, count)?;
    if progress.timers.len() != count {
        let reason = format!("{} timers for {count} states", progress.timers.len());
        return Err(core.fault(export, Fault::Contract { reason }));
    }
    if let Err(reason) = check_failures(&progress.failures, events) {
        return Err(core.fault(export, Fault::Contract { reason }));
    }
    let limits = *core.limits();
    let emitted = EmittedEvents::new(
        progress.matches,
        EmitBounds {
            sources: count,
            max_bytes: limits.max_output_bytes,
            max_per_source: limits.max_outputs_per_event,
        },
    )
    .map_err(|reason| core.fault(export, Fault::Contract { reason }))?;
    let no_key = None;
    let matches = (0..emitted.len())
        .map(|j| {
            let state = emitted.source(j) as usize;
            let event = emitted.event(
                j,
                Inherited {
                    key: context.keys.get(state).unwrap_or(&no_key),
                    time: context.times.get(state).copied().unwrap_or_default(),
                    headers: &[],
                    redelivery: &None,
                    origin: None,
                },
            );
            Match { state, event }
        })
        .collect();
    let failures = progress
        .failures
        .into_iter()
        .map(|f| EventFailure {
            index: f.index as usize,
            error: core.error(export, CallErrorKind::Reported(reported(f.error))),
        })
        .collect();
    Ok(Progress {
        states,
        timers: progress.timers,
        matches,
        failures,
    })
}
