//! The on-disk cache of compiled components.
//!
//! Compiling a component takes 40–90 ms (seconds for an interpreter-sized one); loading the
//! compiled artifact takes well under a millisecond. Entries are keyed by the SHA-256 of the
//! component and the engine's compatibility hash, so a new wasmtime, another CPU or other
//! engine settings never load a stale artifact.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Whether a load used the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a compiled artifact.
    Hit,
    /// Compiled, and the artifact stored for next time.
    Miss,
    /// Compiled; no cache is configured.
    Off,
}

impl CacheOutcome {
    /// A short word for output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Off => "off",
        }
    }
}

/// A directory of compiled components.
///
/// The directory must be writable only by the operator: artifacts are native code, loaded
/// without re-validation.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    /// A cache in `dir` (created on first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `$WEIR_CACHE_DIR`, else `$XDG_CACHE_HOME/weir/components`, else
    /// `~/.cache/weir/components`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("WEIR_CACHE_DIR") {
            return Some(PathBuf::from(dir));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?;
        Some(base.join("weir").join("components"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry(&self, engine: &Engine, digest: &str) -> PathBuf {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        self.dir
            .join(format!("{digest}-{:016x}.cwasm", hasher.finish()))
    }

    /// Loads the compiled form of `bytes` (whose SHA-256 is `digest`), compiling and storing
    /// it on a miss. A cache that cannot be read or written only costs a compile.
    ///
    /// # Errors
    /// Fails only when the component itself does not compile.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: &str,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let entry = self.entry(engine, digest);
        if entry.exists() {
            match deserialize(engine, &entry) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(error) => {
                    tracing::warn!(path = %entry.display(), error = %error, "compile cache entry unusable, recompiling");
                    let _ = std::fs::remove_file(&entry);
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(error) = self.store(&entry, &component) {
            tracing::warn!(dir = %self.dir.display(), error = %error, "cannot write the compile cache");
        }
        Ok((component, CacheOutcome::Miss))
    }

    fn store(&self, entry: &Path, component: &Component) -> std::io::Result<()> {
        let artifact = component
            .serialize()
            .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
        std::fs::create_dir_all(&self.dir)?;
        // Write then rename, so a concurrent reader never sees half an artifact.
        let mut temp = tempfile_in(&self.dir)?;
        std::io::Write::write_all(&mut temp.1, &artifact)?;
        temp.1.sync_all()?;
        std::fs::rename(&temp.0, entry)
    }
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = format!(
        ".tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    );
    let path = dir.join(name.replace(['(', ')'], ""));
    let file = std::fs::File::create(&path)?;
    Ok((path, file))
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the artifact was written by `CompileCache::store` from `Component::serialize`
    // on an engine with the same compatibility hash (it is in the file name), and wasmtime
    // re-checks the header and engine settings on load. The cache directory is the
    // operator's, as documented on `CompileCache`.
    unsafe { Component::deserialize_file(engine, path) }
}
