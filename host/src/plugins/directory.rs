//! The plugin directory: `NAME.wasm` is plugin `NAME`. Plugins are loaded (through the
//! compile cache) when a pipeline first names them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::kind::PluginKind;
use super::loader::{LoadedPlugin, PluginLoader};
use crate::config::{Duration, PipelineConfig, PluginCatalog, StageConfig};

/// `NAME.toml` beside `NAME.wasm`: defaults for every stage using the plugin.
///
/// ```toml
/// timeout = "50ms"
/// memory_mb = 64
/// [config]
/// field = "amount"
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginDefaults {
    /// Config keys a stage's own `config` may override.
    #[serde(default)]
    pub config: toml::Table,
    /// CPU time per call, unless the stage sets one.
    #[serde(default)]
    pub timeout: Option<Duration>,
    /// Memory cap in MiB, unless the stage sets one.
    #[serde(default)]
    pub memory_mb: Option<u64>,
}

/// Plugins of one directory, loaded on demand and kept.
pub struct PluginDirectory {
    dir: PathBuf,
    loader: Arc<PluginLoader>,
    loaded: HashMap<String, Arc<LoadedPlugin>>,
}

impl PluginDirectory {
    /// The plugins in `dir`.
    pub fn new(dir: impl Into<PathBuf>, loader: PluginLoader) -> Self {
        Self {
            dir: dir.into(),
            loader: Arc::new(loader),
            loaded: HashMap::new(),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Names of the `.wasm` files in the directory, sorted.
    pub fn available(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let path = entry.path();
                (path.extension()? == "wasm")
                    .then(|| path.file_stem()?.to_str().map(str::to_owned))?
            })
            .collect();
        names.sort();
        names
    }

    /// Loads plugin `name` (once).
    ///
    /// # Errors
    /// A message for the user: not found (listing what there is), or why it does not load.
    pub fn load(&mut self, name: &str) -> Result<Arc<LoadedPlugin>, String> {
        if let Some(plugin) = self.loaded.get(name) {
            return Ok(Arc::clone(plugin));
        }
        let path = self.dir.join(format!("{name}.wasm"));
        if !path.is_file() {
            let have = self.available();
            let have = if !self.dir.is_dir() {
                "the directory does not exist: set [plugins] dir".to_owned()
            } else if have.is_empty() {
                "it holds no .wasm file".to_owned()
            } else {
                format!("have: {}", have.join(", "))
            };
            return Err(format!(
                "no plugin {name:?} in {} ({have})",
                self.dir.display()
            ));
        }
        let plugin = Arc::new(self.loader.load(&path).map_err(|e| e.to_string())?);
        self.loaded.insert(name.to_owned(), Arc::clone(&plugin));
        Ok(plugin)
    }

    /// The loader, for loading new versions later.
    pub fn loader(&self) -> &Arc<PluginLoader> {
        &self.loader
    }

    /// The defaults of plugin `name` from `NAME.toml`, if the file is there.
    ///
    /// # Errors
    /// `FILE:LINE: message` when the file cannot be read or is not valid.
    pub fn defaults(&self, name: &str) -> Result<Option<PluginDefaults>, String> {
        let path = self.dir.join(format!("{name}.toml"));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        toml::from_str(&text).map(Some).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            match line {
                Some(line) => format!("{}:{line}: {}", path.display(), e.message().trim()),
                None => format!("{}: {}", path.display(), e.message().trim()),
            }
        })
    }

    /// Fills each handler stage from its plugin's `NAME.toml`: config keys the stage does
    /// not set, and limits it does not set.
    ///
    /// # Errors
    /// Every `NAME.toml` that cannot be read, one line each.
    pub fn apply_defaults(&self, config: &mut PipelineConfig) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        for stage in config.stages.values_mut() {
            let StageConfig::Handler(h) = stage else {
                continue;
            };
            match self.defaults(&h.plugin) {
                Ok(None) => {}
                Ok(Some(defaults)) => {
                    for (key, value) in defaults.config {
                        h.config.entry(key).or_insert(value);
                    }
                    h.timeout = h.timeout.or(defaults.timeout);
                    h.memory_mb = h.memory_mb.or(defaults.memory_mb);
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Every plugin loaded so far, by name.
    pub fn loaded(&self) -> &HashMap<String, Arc<LoadedPlugin>> {
        &self.loaded
    }
}

impl PluginCatalog for PluginDirectory {
    fn kind(&mut self, name: &str) -> Result<PluginKind, String> {
        self.load(name).map(|p| p.kind())
    }
}
