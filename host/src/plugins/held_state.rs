//! Plugins whose state the host holds (aggregators, patterns): the serving version of one
//! stage's plugin, which follows reloads, replaces itself after a fault, and keeps the
//! previous version at hand for when a new one cannot read the state the old one left.

use std::sync::Arc;

use super::error::{CallError, CallErrorKind, ErrorCode};
use super::limits::PluginLimits;
use super::loader::LoadedPlugin;
use super::registry::{PluginSlot, Release};
use super::settings::{PluginSettings, PluginUser};
use super::{AggregatorInstance, PatternInstance};
use crate::config::StateUpgrade;

/// An instance of a plugin kind whose state the host holds.
pub trait HeldStateInstance: Sized {
    /// Instantiates `plugin`, runs `init` with `config`, and asks for its empty state.
    ///
    /// # Errors
    /// The plugin's [`CallError`].
    fn start(
        plugin: &LoadedPlugin,
        limits: PluginLimits,
        config: &str,
    ) -> Result<(Self, Vec<u8>), CallError>;

    /// Whether a fault has made it unusable.
    fn is_poisoned(&self) -> bool;
}

// Both kinds start the same way: instantiate, `init`, then ask for the empty state once.
macro_rules! held_state_instance {
    ($($kind:ty),+) => {$(
        impl HeldStateInstance for $kind {
            fn start(
                plugin: &LoadedPlugin,
                limits: PluginLimits,
                config: &str,
            ) -> Result<(Self, Vec<u8>), CallError> {
                let mut instance = Self::new(plugin, limits, config)?;
                let empty = instance.create()?;
                Ok((instance, empty))
            }

            fn is_poisoned(&self) -> bool {
                Self::is_poisoned(self)
            }
        }
    )+};
}

held_state_instance!(AggregatorInstance, PatternInstance);

/// One running version.
pub struct Version<I> {
    plugin: Arc<LoadedPlugin>,
    settings: PluginSettings,
    /// The instance.
    pub instance: I,
    /// Its empty state.
    pub empty: Vec<u8>,
    /// `name@version`.
    pub label: String,
}

impl<I> Version<I> {
    /// The plugin it is an instance of.
    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }
}

impl<I: HeldStateInstance> Version<I> {
    fn start(plugin: Arc<LoadedPlugin>, settings: PluginSettings) -> Result<Self, CallError> {
        let (instance, empty) = I::start(&plugin, settings.limits, &settings.config)?;
        Ok(Self {
            label: format!("{}@{}", plugin.name(), plugin.version()),
            plugin,
            settings,
            instance,
            empty,
        })
    }
}

/// Whether a call failed because the plugin cannot read the state it was given.
pub fn unreadable_state(error: &CallError) -> bool {
    matches!(&error.kind, CallErrorKind::Reported(r) if r.code == ErrorCode::UnsupportedState)
}

/// The plugin of one stage: the serving version and the one before it.
pub struct HeldStatePlugin<I> {
    /// The stage, for log lines.
    pub stage: String,
    slot: Arc<PluginSlot>,
    /// The slot's generation last taken (or refused).
    generation: u64,
    user: PluginUser,
    /// What to do when a new version cannot read the state.
    pub upgrade: StateUpgrade,
    /// The serving version.
    pub current: Version<I>,
    previous: Option<Version<I>>,
}

impl<I: HeldStateInstance> HeldStatePlugin<I> {
    /// Starts the release serving in `slot` for `user`.
    ///
    /// # Errors
    /// The plugin's [`CallError`]: another world, a fault, or a rejected config.
    pub fn new(
        slot: Arc<PluginSlot>,
        user: PluginUser,
        upgrade: StateUpgrade,
    ) -> Result<Self, CallError> {
        let (generation, release) = slot.current();
        let current = Self::start(&user, release)?;
        Ok(Self {
            stage: user.stage.clone(),
            slot,
            generation,
            user,
            upgrade,
            current,
            previous: None,
        })
    }

    /// Takes the newest version if one was published, or a fresh instance of the serving
    /// one if a fault spoiled it.
    pub fn ready(&mut self) {
        if self.slot.generation() != self.generation {
            let (generation, release) = self.slot.current();
            // Taken or refused, this generation is not tried again.
            self.generation = generation;
            match Self::start(&self.user, release) {
                Ok(version) => {
                    tracing::info!(stage = %self.stage, plugin = %version.label, "switched to the new plugin version; the state it holds carries over");
                    self.previous = Some(std::mem::replace(&mut self.current, version));
                }
                Err(error) => {
                    tracing::error!(stage = %self.stage, error = %error, "the new plugin version did not start here; the previous one keeps serving");
                }
            }
        }
        if self.current.instance.is_poisoned() {
            let plugin = Arc::clone(&self.current.plugin);
            match Version::start(plugin, self.current.settings.clone()) {
                Ok(version) => self.current = version,
                Err(error) => {
                    tracing::error!(stage = %self.stage, plugin = %self.current.label, error = %error, "the plugin instance could not be replaced");
                }
            }
        }
    }

    fn start(user: &PluginUser, release: Release) -> Result<Version<I>, CallError> {
        let settings = user.settings(release.defaults.as_deref());
        Version::start(release.plugin, settings)
    }

    /// Replaces empty (never folded) states with the serving version's empty state.
    pub fn fresh(&self, states: &mut [Vec<u8>]) {
        for state in states.iter_mut().filter(|s| s.is_empty()) {
            state.clone_from(&self.current.empty);
        }
    }

    /// Under `keep_old_version`, goes back to the previous version; returns whether it did.
    pub fn keep_old_version(&mut self) -> bool {
        let Some(previous) = self.previous.take() else {
            return false;
        };
        tracing::error!(stage = %self.stage, plugin = %self.current.label, keeps = %previous.label, "the new plugin version cannot read the state the previous one left; the previous version keeps serving this stage (state_upgrade = keep_old_version)");
        self.current = previous;
        true
    }
}
