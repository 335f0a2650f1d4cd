//! The plugin directory: `NAME.wasm` is plugin `NAME`, with its defaults in an optional
//! `NAME.toml`. Plugins are loaded (through the compile cache) when a pipeline first names
//! them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::kind::PluginKind;
use super::loader::{LoadedPlugin, PluginLoader};
use super::registry::{PluginRegistry, Release};
use super::settings::PluginDefaults;
use crate::config::PluginCatalog;

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

    /// A registry serving every plugin loaded so far, each with its `NAME.toml`.
    ///
    /// # Errors
    /// Every `NAME.toml` that cannot be read, one line each.
    pub fn registry(&self) -> Result<PluginRegistry, Vec<String>> {
        let mut releases = Vec::with_capacity(self.loaded.len());
        let mut errors = Vec::new();
        for (name, plugin) in &self.loaded {
            match PluginDefaults::read(&self.dir, name) {
                Ok(defaults) => releases.push((
                    name.clone(),
                    Release {
                        plugin: Arc::clone(plugin),
                        defaults: defaults.map(Arc::new),
                    },
                )),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(PluginRegistry::from_releases(releases))
        } else {
            errors.sort();
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
