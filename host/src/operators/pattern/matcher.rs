//! The plugin side of a pattern stage: a `pattern` plugin instance that follows reloads,
//! replaces itself after a fault, and handles a version that cannot read the per-key state
//! an older one left, as the stage's `state_upgrade` says.

use std::sync::Arc;

use crate::config::StateUpgrade;
use crate::event::Event;
use crate::plugins::{
    CallError, CallErrorKind, ErrorCode, LoadedPlugin, PatternInstance, PluginLimits, PluginSlot,
    Progress, StateContext,
};

/// One version of the plugin, running.
struct Version {
    plugin: Arc<LoadedPlugin>,
    instance: PatternInstance,
    /// The state of a key that has seen nothing.
    empty: Vec<u8>,
    label: String,
}

impl Version {
    fn start(
        plugin: Arc<LoadedPlugin>,
        limits: PluginLimits,
        config: &str,
    ) -> Result<Self, CallError> {
        let mut instance = PatternInstance::new(&plugin, limits, config)?;
        let empty = instance.create()?;
        Ok(Self {
            label: format!("{}@{}", plugin.name(), plugin.version()),
            plugin,
            instance,
            empty,
        })
    }
}

fn unreadable_state(error: &CallError) -> bool {
    matches!(&error.kind, CallErrorKind::Reported(r) if r.code == ErrorCode::UnsupportedState)
}

/// A stage's `pattern` plugin.
pub struct PluginMatcher {
    stage: String,
    slot: Arc<PluginSlot>,
    generation: u64,
    limits: PluginLimits,
    config: String,
    upgrade: StateUpgrade,
    current: Version,
    previous: Option<Version>,
}

impl PluginMatcher {
    /// Starts the version serving in `slot` with `config` (JSON).
    ///
    /// # Errors
    /// The plugin's [`CallError`]: not a pattern, a fault, or a rejected config.
    pub fn new(
        stage: &str,
        slot: Arc<PluginSlot>,
        limits: PluginLimits,
        config: String,
        upgrade: StateUpgrade,
    ) -> Result<Self, CallError> {
        let (generation, plugin) = slot.current();
        let current = Version::start(plugin, limits, &config)?;
        Ok(Self {
            stage: stage.to_owned(),
            slot,
            generation,
            limits,
            config,
            upgrade,
            current,
            previous: None,
        })
    }

    /// The serving version's `plugin@version`.
    pub fn label(&self) -> &str {
        &self.current.label
    }

    /// The state of a key that has seen nothing, under the serving version.
    pub fn empty(&self) -> &[u8] {
        &self.current.empty
    }

    fn ready(&mut self) {
        if self.slot.generation() != self.generation {
            let (generation, plugin) = self.slot.current();
            self.generation = generation;
            match Version::start(plugin, self.limits, &self.config) {
                Ok(version) => {
                    tracing::info!(stage = %self.stage, plugin = %version.label, "pattern switched to the new version; its per-key state carries over");
                    self.previous = Some(std::mem::replace(&mut self.current, version));
                }
                Err(error) => {
                    tracing::error!(stage = %self.stage, error = %error, "pattern version did not start here; the previous one keeps serving");
                }
            }
        }
        if self.current.instance.is_poisoned() {
            let plugin = Arc::clone(&self.current.plugin);
            match Version::start(plugin, self.limits, &self.config) {
                Ok(version) => self.current = version,
                Err(error) => {
                    tracing::error!(stage = %self.stage, plugin = %self.current.label, error = %error, "pattern instance could not be replaced");
                }
            }
        }
    }

    fn fresh(&self, states: &mut [Vec<u8>]) {
        for state in states.iter_mut().filter(|s| s.is_empty()) {
            state.clone_from(&self.current.empty);
        }
    }

    /// The new version cannot read the state: back to the previous version, or empty
    /// what it cannot read. Returns whether to try again.
    fn upgrade_failed(&mut self, states: &mut [Vec<u8>], context: &StateContext<'_>) -> bool {
        match self.upgrade {
            StateUpgrade::KeepOldVersion => {
                let Some(previous) = self.previous.take() else {
                    return false;
                };
                tracing::error!(stage = %self.stage, plugin = %self.current.label, keeps = %previous.label, "the new pattern version cannot read the state the previous one left; the previous version keeps serving this stage (state_upgrade = keep_old_version)");
                self.current = previous;
                true
            }
            StateUpgrade::Reset => {
                let mut reset = 0;
                for (i, state) in states.iter_mut().enumerate() {
                    let one = StateContext {
                        keys: &context.keys[i..=i],
                        times: &context.times[i..=i],
                    };
                    // A timer call at the start of time reads the state and changes nothing
                    // the host keeps.
                    let probe =
                        self.current
                            .instance
                            .on_timer(std::slice::from_ref(state), &one, i64::MIN);
                    if probe.is_err_and(|e| unreadable_state(&e)) {
                        state.clone_from(&self.current.empty);
                        reset += 1;
                    }
                }
                if reset > 0 {
                    tracing::warn!(stage = %self.stage, plugin = %self.current.label, keys = reset, "the pattern cannot read these keys' state; it starts over empty (state_upgrade = reset)");
                }
                reset > 0
            }
        }
    }

    /// Applies `events[i]` to `states[targets[i]]`.
    ///
    /// # Errors
    /// The plugin's [`CallError`] when the call fails for a reason other than old state.
    pub fn process(
        &mut self,
        states: &mut [Vec<u8>],
        context: &StateContext<'_>,
        events: &[Event],
        targets: &[u32],
    ) -> Result<Progress, CallError> {
        self.ready();
        loop {
            self.fresh(states);
            match self
                .current
                .instance
                .process(states, context, events, targets)
            {
                Err(error) if unreadable_state(&error) && self.upgrade_failed(states, context) => {}
                result => return result,
            }
        }
    }

    /// Tells `states` that event time reached `now`.
    ///
    /// # Errors
    /// The plugin's [`CallError`] when the call fails for a reason other than old state.
    pub fn on_timer(
        &mut self,
        states: &mut [Vec<u8>],
        context: &StateContext<'_>,
        now: i64,
    ) -> Result<Progress, CallError> {
        self.ready();
        loop {
            self.fresh(states);
            match self.current.instance.on_timer(states, context, now) {
                Err(error) if unreadable_state(&error) && self.upgrade_failed(states, context) => {}
                result => return result,
            }
        }
    }
}
