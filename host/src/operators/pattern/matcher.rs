//! The plugin side of a pattern stage: a `pattern` plugin instance that follows reloads,
//! replaces itself after a fault, and handles a version that cannot read the per-key state
//! an older one left, as the stage's `state_upgrade` says.

use std::sync::Arc;

use super::keyed::{KeyedMatcher, Step};
use crate::config::StateUpgrade;
use crate::event::Event;
use crate::plugins::{
    CallError, HeldStatePlugin, PatternInstance, PluginSlot, PluginUser, Progress, StateContext,
    unreadable_state,
};

/// A stage's `pattern` plugin.
pub struct PluginMatcher(HeldStatePlugin<PatternInstance>);

impl PluginMatcher {
    /// Starts the release serving in `slot` for `user` (its stage, config and limits).
    ///
    /// # Errors
    /// The plugin's [`CallError`]: not a pattern, a fault, or a rejected config.
    pub fn new(
        slot: Arc<PluginSlot>,
        user: PluginUser,
        upgrade: StateUpgrade,
    ) -> Result<Self, CallError> {
        HeldStatePlugin::new(slot, user, upgrade).map(Self)
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &str {
        self.0.current.plugin().name()
    }

    /// The new version cannot read the state: back to the previous version, or empty
    /// what it cannot read. Returns whether to try again.
    fn upgrade_failed(&mut self, states: &mut [Vec<u8>], context: &StateContext<'_>) -> bool {
        match self.0.upgrade {
            StateUpgrade::KeepOldVersion => self.0.keep_old_version(),
            StateUpgrade::Reset => {
                let plugin = &mut self.0;
                let mut reset = 0;
                for (i, state) in states.iter_mut().enumerate() {
                    let one = StateContext {
                        keys: &context.keys[i..=i],
                        times: &context.times[i..=i],
                    };
                    // A timer call at the start of time reads the state; its outcome is
                    // thrown away.
                    let probe = plugin.current.instance.on_timer(
                        std::slice::from_ref(state),
                        &one,
                        i64::MIN,
                    );
                    if probe.is_err_and(|e| unreadable_state(&e)) {
                        state.clone_from(&plugin.current.empty);
                        reset += 1;
                    }
                }
                if reset > 0 {
                    tracing::warn!(stage = %plugin.stage, plugin = %plugin.current.label, keys = reset, "the pattern cannot read these keys' state; it starts over empty (state_upgrade = reset)");
                }
                reset > 0
            }
        }
    }

    /// Applies `events[i]` to `states[targets[i]]`.
    ///
    /// # Errors
    /// The plugin's [`CallError`] when the call fails for a reason other than old state.
    fn call_process(
        &mut self,
        states: &mut [Vec<u8>],
        context: &StateContext<'_>,
        events: &[Event],
        targets: &[u32],
    ) -> Result<Progress, CallError> {
        self.0.ready();
        let mut upgraded = false;
        loop {
            self.0.fresh(states);
            match self
                .0
                .current
                .instance
                .process(states, context, events, targets)
            {
                Err(error)
                    if unreadable_state(&error)
                        && !std::mem::replace(&mut upgraded, true)
                        && self.upgrade_failed(states, context) => {}
                result => return result,
            }
        }
    }

    /// Tells `states` that event time reached `now`.
    ///
    /// # Errors
    /// The plugin's [`CallError`] when the call fails for a reason other than old state.
    fn call_on_timer(
        &mut self,
        states: &mut [Vec<u8>],
        context: &StateContext<'_>,
        now: i64,
    ) -> Result<Progress, CallError> {
        self.0.ready();
        let mut upgraded = false;
        loop {
            self.0.fresh(states);
            match self.0.current.instance.on_timer(states, context, now) {
                Err(error)
                    if unreadable_state(&error)
                        && !std::mem::replace(&mut upgraded, true)
                        && self.upgrade_failed(states, context) => {}
                result => return result,
            }
        }
    }
}

/// The plugin's progress as the stage's step: new states in place, matches on port 0.
fn into_step(progress: Progress, states: &mut [Vec<u8>]) -> Step {
    let Progress {
        states: new,
        timers,
        matches,
        failures,
    } = progress;
    for (state, new) in states.iter_mut().zip(new) {
        *state = new;
    }
    Step {
        timers,
        outputs: matches.into_iter().map(|m| (m.state, 0, m.event)).collect(),
        failures: failures
            .into_iter()
            .map(|f| (f.index, f.error.to_string()))
            .collect(),
    }
}

impl KeyedMatcher for PluginMatcher {
    type State = Vec<u8>;

    fn label(&self) -> Option<&str> {
        Some(&self.0.current.label)
    }

    fn identity(&self) -> String {
        self.plugin().to_owned()
    }

    fn accepts(&self, saved: &str) -> Result<bool, String> {
        if saved == self.plugin() {
            Ok(true)
        } else {
            Err(format!(
                "checkpoint holds the state of plugin {saved:?}, the stage now runs {:?}",
                self.plugin()
            ))
        }
    }

    fn is_idle(&self, state: &Vec<u8>) -> bool {
        state.is_empty() || *state == self.0.current.empty
    }

    fn process(
        &mut self,
        states: &mut [Vec<u8>],
        times: &[i64],
        events: &[Event],
        targets: &[u32],
    ) -> Result<Step, CallError> {
        let keys = vec![None; states.len()];
        let context = StateContext { keys: &keys, times };
        let progress = self.call_process(states, &context, events, targets)?;
        Ok(into_step(progress, states))
    }

    fn on_timer(&mut self, states: &mut [Vec<u8>], now: i64) -> Result<Step, CallError> {
        let keys = vec![None; states.len()];
        let times = vec![now; states.len()];
        let context = StateContext {
            keys: &keys,
            times: &times,
        };
        let progress = self.call_on_timer(states, &context, now)?;
        Ok(into_step(progress, states))
    }
}
