//! Hot reload: a watcher on the plugin directory, and the steps a new version (or new
//! `NAME.toml` defaults) must pass before it may serve: load (compile through the cache),
//! same world as its stages, and `init` with the settings each stage would get. A version that fails any step never serves; the old
//! one keeps running and the failure is logged, counted and shown by the admin API.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify_debouncer_mini::notify::RecursiveMode;
use notify_debouncer_mini::{DebounceEventResult, new_debouncer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::handler::HandlerInstance;
use super::held_state::HeldStateInstance;
use super::kind::PluginKind;
use super::loader::PluginLoader;
use super::registry::{PluginRegistry, Release};
use super::settings::{PluginDefaults, PluginUser};
use super::{AggregatorInstance, PatternInstance};
use crate::metrics::ReloadMetrics;

/// Quiet time after the last change to a file before it is loaded: long enough to see a
/// `cp` through its writes, short enough for a reload well under 100 ms.
pub const RELOAD_DEBOUNCE: Duration = Duration::from_millis(20);

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The new release serves: a new version, new `NAME.toml` defaults, or both.
    Swapped {
        /// Its version.
        version: String,
    },
    /// The files hold the release already serving; nothing changed.
    Unchanged,
}

/// Loads, checks and publishes new plugin versions.
pub struct Reloader {
    dir: PathBuf,
    loader: Arc<PluginLoader>,
    registry: PluginRegistry,
    users: HashMap<String, Vec<PluginUser>>,
    metrics: Arc<crate::metrics::Metrics>,
    // Only one reload of a plugin at a time, so versions are published in file order.
    busy: tokio::sync::Mutex<()>,
    last_logged: Mutex<HashMap<String, String>>,
}

impl Reloader {
    /// A reloader for the plugins of `registry`, found in `dir`.
    pub fn new(
        dir: PathBuf,
        loader: Arc<PluginLoader>,
        registry: PluginRegistry,
        users: HashMap<String, Vec<PluginUser>>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        Self {
            dir,
            loader,
            registry,
            users,
            metrics,
            busy: tokio::sync::Mutex::new(()),
            last_logged: Mutex::new(HashMap::new()),
        }
    }

    /// The registry it publishes to.
    pub fn registry(&self) -> &PluginRegistry {
        &self.registry
    }

    /// Reads `NAME.wasm` and `NAME.toml` again and, if what they hold passes every check,
    /// makes it serve. A deleted `NAME.wasm` keeps the loaded version; a deleted
    /// `NAME.toml` takes its defaults away.
    ///
    /// # Errors
    /// Why the new release may not serve (the previous one keeps serving).
    pub async fn reload(&self, name: &str) -> Result<ReloadOutcome, String> {
        let Some(slot) = self.registry.slot(name).cloned() else {
            return Err(format!("no stage uses a plugin named {name:?}"));
        };
        let _one_at_a_time = self.busy.lock().await;
        let metrics: ReloadMetrics = self.metrics.reload(name);
        let started = Instant::now();
        let dir = self.dir.clone();
        let name_owned = name.to_owned();
        let loader = Arc::clone(&self.loader);
        let users = self.users.get(name).cloned().unwrap_or_default();
        let (_, serving) = slot.current();
        let checked = tokio::task::spawn_blocking(move || -> Result<Option<Release>, String> {
            let defaults = PluginDefaults::read(&dir, &name_owned)?.map(Arc::new);
            let path = dir.join(format!("{name_owned}.wasm"));
            let plugin = if path.exists() {
                let plugin = loader.load(&path).map_err(|e| e.to_string())?;
                if plugin.digest() == serving.plugin.digest() {
                    Arc::clone(&serving.plugin)
                } else {
                    Arc::new(plugin)
                }
            } else {
                Arc::clone(&serving.plugin)
            };
            if Arc::ptr_eq(&plugin, &serving.plugin) && defaults == serving.defaults {
                return Ok(None);
            }
            let release = Release { plugin, defaults };
            for user in &users {
                check_start(&release, user)?;
            }
            Ok(Some(release))
        })
        .await
        .map_err(|e| format!("reload task failed: {e}"))?;
        match checked {
            Ok(None) => Ok(ReloadOutcome::Unchanged),
            Ok(Some(release)) => {
                let version = release.plugin.version().to_owned();
                slot.publish(release);
                metrics.ok.inc();
                metrics.seconds.observe(started.elapsed().as_secs_f64());
                tracing::info!(plugin = %name, version = %version, ms = started.elapsed().as_millis() as u64, "plugin reloaded");
                Ok(ReloadOutcome::Swapped { version })
            }
            Err(error) => {
                slot.reject(&error);
                metrics.failed.inc();
                let mut logged = match self.last_logged.lock() {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                };
                // One line per distinct failure, not one per file event.
                if logged.get(name) != Some(&error) {
                    tracing::error!(plugin = %name, error = %error, "new version rejected; the previous version keeps serving");
                    logged.insert(name.to_owned(), error.clone());
                }
                Err(error)
            }
        }
    }
}

/// Checks that `release` can serve `user`: the same world, and `init` accepts the config
/// it gives that stage.
fn check_start(release: &Release, user: &PluginUser) -> Result<(), String> {
    let plugin = &release.plugin;
    if plugin.kind() != user.kind {
        return Err(format!(
            "{}: is of the {} world, but stage {} needs {}",
            plugin.path().display(),
            plugin.kind(),
            user.stage,
            user.kind
        ));
    }
    let settings = user.settings(release.defaults.as_deref());
    let (limits, config) = (settings.limits, settings.config.as_str());
    let started = match user.kind {
        PluginKind::Handler => HandlerInstance::new(plugin, limits, config).map(drop),
        PluginKind::Aggregator => AggregatorInstance::start(plugin, limits, config).map(drop),
        PluginKind::Pattern => PatternInstance::start(plugin, limits, config).map(drop),
    };
    started.map_err(|e| format!("init for stage {}: {e}", user.stage))
}

/// The plugin a changed path belongs to, if any: `NAME.wasm` or its `NAME.toml`, not
/// hidden. Temp and partial files (`.NAME.wasm.tmp`, `NAME.wasm.part`, `NAME.wasm~`)
/// belong to none.
fn plugin_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    if file.starts_with('.') {
        return None;
    }
    file.strip_suffix(".wasm")
        .or_else(|| file.strip_suffix(".toml"))
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
}

/// Identity and shape of a file: inode, size and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    inode: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(Self {
            inode: meta.ino(),
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

/// Stamps of a plugin's two files.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PluginFiles {
    wasm: Option<FileStamp>,
    toml: Option<FileStamp>,
}

impl PluginFiles {
    fn of(dir: &Path, name: &str) -> Self {
        Self {
            wasm: FileStamp::of(&dir.join(format!("{name}.wasm"))),
            toml: FileStamp::of(&dir.join(format!("{name}.toml"))),
        }
    }
}

/// Watches the plugin directory until `shutdown`, reloading plugins whose files change.
///
/// # Errors
/// When the directory cannot be watched.
pub fn watch(reloader: Arc<Reloader>, shutdown: CancellationToken) -> Result<(), String> {
    let (tx, mut rx) = mpsc::unbounded_channel::<DebounceEventResult>();
    let mut debouncer = new_debouncer(RELOAD_DEBOUNCE, move |result| {
        // The receiver is gone only at shutdown.
        let _ = tx.send(result);
    })
    .map_err(|e| format!("cannot watch {}: {e}", reloader.dir.display()))?;
    debouncer
        .watcher()
        .watch(&reloader.dir, RecursiveMode::NonRecursive)
        .map_err(|e| format!("cannot watch {}: {e}", reloader.dir.display()))?;
    // What each plugin's files looked like when last considered. Reading a file is an
    // event too (inotify reports opens), so only a plugin whose `.wasm` or `.toml` moved in
    // identity, size or mtime is loaded again; this also folds repeated events for one
    // write into one reload.
    let mut seen: HashMap<String, PluginFiles> = reloader
        .registry
        .names()
        .map(|name| (name.to_owned(), PluginFiles::of(&reloader.dir, name)))
        .collect();
    tokio::spawn(async move {
        // Owned here so the watcher lives exactly as long as this task.
        let _debouncer = debouncer;
        loop {
            let events = tokio::select! {
                events = rx.recv() => match events {
                    Some(Ok(events)) => events,
                    Some(Err(e)) => {
                        tracing::error!(error = %e, "plugin directory watch error");
                        continue;
                    }
                    None => break,
                },
                () = shutdown.cancelled() => break,
            };
            let mut names: Vec<String> =
                events.iter().filter_map(|e| plugin_name(&e.path)).collect();
            names.sort();
            names.dedup();
            for name in names {
                if reloader.registry.slot(&name).is_none() {
                    tracing::debug!(plugin = %name, "plugin file changed; no stage uses it");
                    continue;
                }
                let now = PluginFiles::of(&reloader.dir, &name);
                let Some(before) = seen.insert(name.clone(), now.clone()) else {
                    continue;
                };
                if now == before {
                    continue;
                }
                if now.wasm.is_none() && before.wasm.is_some() {
                    tracing::warn!(plugin = %name, "plugin file deleted; the loaded version keeps serving");
                }
                if now.toml == before.toml && now.wasm.is_none() {
                    continue;
                }
                if now.toml.is_none() && before.toml.is_some() {
                    tracing::info!(plugin = %name, "plugin defaults file deleted; its stages go on without its defaults");
                }
                // Errors are recorded and logged by `reload`; a partial file is retried
                // on its next change.
                let _ = reloader.reload(&name).await;
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_wasm_files_are_plugins() {
        assert_eq!(
            plugin_name(Path::new("/p/threshold.wasm")).as_deref(),
            Some("threshold")
        );
        assert_eq!(plugin_name(Path::new("/p/.threshold.wasm.tmp")), None);
        assert_eq!(plugin_name(Path::new("/p/.threshold.wasm")), None);
        assert_eq!(plugin_name(Path::new("/p/threshold.wasm.part")), None);
        assert_eq!(plugin_name(Path::new("/p/threshold.wasm~")), None);
        assert_eq!(
            plugin_name(Path::new("/p/threshold.toml")).as_deref(),
            Some("threshold")
        );
        assert_eq!(plugin_name(Path::new("/p/.threshold.toml.swp")), None);
    }
}
