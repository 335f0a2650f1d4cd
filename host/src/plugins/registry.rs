//! The live version of each plugin a pipeline uses, and what became of its reloads.
//!
//! Workers read a slot's generation (one atomic load) at each batch boundary; when it moved
//! they take the new version and start their own instance of it, so a swap is atomic per
//! worker and batches in flight finish on the version they started with.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use super::loader::LoadedPlugin;
use super::settings::PluginDefaults;

/// What serves: a version of the plugin, and the defaults of its `NAME.toml`.
#[derive(Clone)]
pub struct Release {
    /// The version.
    pub plugin: Arc<LoadedPlugin>,
    /// Its `NAME.toml`, if there is one.
    pub defaults: Option<Arc<PluginDefaults>>,
}

/// How a plugin stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginHealth {
    /// The current version serves; the last reload (if any) succeeded.
    Serving,
    /// The last reload failed; the previous version keeps serving.
    Failed,
    /// A stage's circuit breaker has quarantined it (see `quarantined_in`).
    Quarantined,
}

/// What the admin API shows of one plugin.
#[derive(Debug, Clone, Serialize)]
pub struct PluginStatus {
    /// Plugin name.
    pub name: String,
    /// Its world.
    pub kind: String,
    /// Version (short content hash) serving now.
    pub version: String,
    /// Full SHA-256 of the serving file.
    pub sha256: String,
    /// When the serving version was loaded (ms since the Unix epoch).
    pub loaded_at_ms: i64,
    /// Serving, or failed (with the old version still serving).
    pub state: PluginHealth,
    /// The last reload error, if the last reload failed.
    pub last_error: Option<String>,
    /// Successful reloads since start.
    pub reloads: u64,
    /// Failed reloads since start.
    pub failed_reloads: u64,
    /// Stages whose breaker has quarantined it.
    pub quarantined_in: Vec<String>,
}

/// The serving release of one plugin.
pub struct PluginSlot {
    current: RwLock<Release>,
    generation: AtomicU64,
    status: Mutex<PluginStatus>,
}

impl PluginSlot {
    fn new(release: Release) -> Self {
        let plugin = &release.plugin;
        let status = PluginStatus {
            name: plugin.name().to_owned(),
            kind: plugin.kind().to_string(),
            version: plugin.version().to_owned(),
            sha256: plugin.digest().to_owned(),
            loaded_at_ms: crate::event::now_ms(),
            state: PluginHealth::Serving,
            last_error: None,
            reloads: 0,
            failed_reloads: 0,
            quarantined_in: Vec::new(),
        };
        Self {
            current: RwLock::new(release),
            generation: AtomicU64::new(0),
            status: Mutex::new(status),
        }
    }

    /// Bumped by every successful reload (of the file or of its `NAME.toml`).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The serving release and its generation.
    pub fn current(&self) -> (u64, Release) {
        let guard = match self.current.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        (self.generation(), guard.clone())
    }

    /// Makes `release` serve.
    pub fn publish(&self, release: Release) {
        {
            let plugin = &release.plugin;
            let mut status = self.status();
            status.version = plugin.version().to_owned();
            status.sha256 = plugin.digest().to_owned();
            status.loaded_at_ms = crate::event::now_ms();
            status.state = PluginHealth::Serving;
            status.last_error = None;
            status.reloads += 1;
        }
        let mut current = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *current = release;
        // Bumped while the new version is in place, so a reader seeing the new generation
        // also sees the new version.
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Records a reload that failed; the serving version stays.
    pub fn reject(&self, error: &str) {
        let mut status = self.status();
        status.state = PluginHealth::Failed;
        status.last_error = Some(error.to_owned());
        status.failed_reloads += 1;
    }

    /// Marks it quarantined, or no longer, by `stage`'s breaker.
    pub fn set_quarantined(&self, stage: &str, quarantined: bool) {
        let mut status = self.status();
        status.quarantined_in.retain(|s| s != stage);
        if quarantined {
            status.quarantined_in.push(stage.to_owned());
        }
    }

    /// Its status now.
    pub fn snapshot(&self) -> PluginStatus {
        let mut status = self.status().clone();
        if !status.quarantined_in.is_empty() {
            status.state = PluginHealth::Quarantined;
        }
        status
    }

    fn status(&self) -> std::sync::MutexGuard<'_, PluginStatus> {
        match self.status.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Every plugin the pipeline uses, by name.
#[derive(Default, Clone)]
pub struct PluginRegistry {
    slots: BTreeMap<String, Arc<PluginSlot>>,
}

impl PluginRegistry {
    /// A registry serving `plugins`, none with a `NAME.toml`.
    pub fn new<'a>(plugins: impl IntoIterator<Item = (&'a String, &'a Arc<LoadedPlugin>)>) -> Self {
        Self::from_releases(plugins.into_iter().map(|(name, plugin)| {
            let release = Release {
                plugin: Arc::clone(plugin),
                defaults: None,
            };
            (name.clone(), release)
        }))
    }

    /// A registry serving `releases`, by plugin name.
    pub fn from_releases(releases: impl IntoIterator<Item = (String, Release)>) -> Self {
        Self {
            slots: releases
                .into_iter()
                .map(|(name, release)| (name, Arc::new(PluginSlot::new(release))))
                .collect(),
        }
    }

    /// The slot of plugin `name`.
    pub fn slot(&self, name: &str) -> Option<&Arc<PluginSlot>> {
        self.slots.get(name)
    }

    /// Names of the plugins.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.slots.keys().map(String::as_str)
    }

    /// Whether no stage uses a plugin.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Every plugin's status, by name.
    pub fn statuses(&self) -> Vec<PluginStatus> {
        self.slots.values().map(|s| s.snapshot()).collect()
    }
}
