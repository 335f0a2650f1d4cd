//! Hot reload: a watcher on the plugin directory, and the steps a new version must pass
//! before it may serve: load (compile through the cache), same world as its stages, and
//! `init` with each stage's config. A version that fails any step never serves; the old
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
use super::kind::PluginKind;
use super::limits::PluginLimits;
use super::loader::PluginLoader;
use super::registry::PluginRegistry;
use crate::metrics::ReloadMetrics;

/// Quiet time after the last change to a file before it is loaded: long enough to see a
/// `cp` through its writes, short enough for a reload well under 100 ms.
pub const RELOAD_DEBOUNCE: Duration = Duration::from_millis(20);

/// A stage that uses a plugin: what a new version must start with.
#[derive(Debug, Clone)]
pub struct PluginUser {
    /// The stage.
    pub stage: String,
    /// The world the stage needs.
    pub kind: PluginKind,
    /// The stage's config for `init`, as JSON.
    pub config: String,
    /// The stage's limits.
    pub limits: PluginLimits,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The new version serves.
    Swapped {
        /// Its version.
        version: String,
    },
    /// The file holds the version already serving; nothing changed.
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

    /// Loads `NAME.wasm` again and, if it passes every check, makes it serve.
    ///
    /// # Errors
    /// Why the new version may not serve (the previous one keeps serving).
    pub async fn reload(&self, name: &str) -> Result<ReloadOutcome, String> {
        let Some(slot) = self.registry.slot(name).cloned() else {
            return Err(format!("no stage uses a plugin named {name:?}"));
        };
        let _one_at_a_time = self.busy.lock().await;
        let metrics: ReloadMetrics = self.metrics.reload(name);
        let started = Instant::now();
        let path = self.dir.join(format!("{name}.wasm"));
        let loader = Arc::clone(&self.loader);
        let users = self.users.get(name).cloned().unwrap_or_default();
        let (_, serving) = slot.current();
        let checked = tokio::task::spawn_blocking(move || {
            let plugin = loader.load(&path).map_err(|e| e.to_string())?;
            if plugin.digest() == serving.digest() {
                return Ok(None);
            }
            for user in &users {
                if plugin.kind() != user.kind {
                    return Err(format!(
                        "{}: is of the {} world, but stage {} needs {}",
                        path.display(),
                        plugin.kind(),
                        user.stage,
                        user.kind
                    ));
                }
                // Only handlers have stages yet; other worlds are checked by kind alone.
                if user.kind == PluginKind::Handler {
                    HandlerInstance::new(&plugin, user.limits, &user.config)
                        .map_err(|e| format!("init for stage {}: {e}", user.stage))?;
                }
            }
            Ok(Some(plugin))
        })
        .await
        .map_err(|e| format!("reload task failed: {e}"))?;
        match checked {
            Ok(None) => Ok(ReloadOutcome::Unchanged),
            Ok(Some(plugin)) => {
                let version = plugin.version().to_owned();
                slot.publish(Arc::new(plugin));
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

/// The plugin a changed path is, if it is one: `NAME.wasm`, not hidden. Temp and partial
/// files (`.NAME.wasm.tmp`, `NAME.wasm.part`, `NAME.wasm~`) are not plugins.
fn plugin_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    if file.starts_with('.') {
        return None;
    }
    file.strip_suffix(".wasm")
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
    // What each plugin file looked like when last considered. Reading a file is an event
    // too (inotify reports opens), so only a file whose identity, size or mtime moved is
    // loaded again; this also folds repeated events for one write into one reload.
    let mut seen: HashMap<String, Option<FileStamp>> = reloader
        .registry
        .names()
        .map(|name| {
            (
                name.to_owned(),
                FileStamp::of(&reloader.dir.join(format!("{name}.wasm"))),
            )
        })
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
                let path = reloader.dir.join(format!("{name}.wasm"));
                let stamp = FileStamp::of(&path);
                if seen.get(&name) == Some(&stamp) {
                    continue;
                }
                seen.insert(name.clone(), stamp.clone());
                if stamp.is_none() {
                    tracing::warn!(plugin = %name, "plugin file deleted; the loaded version keeps serving");
                    continue;
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
        assert_eq!(plugin_name(Path::new("/p/threshold.toml")), None);
    }
}
