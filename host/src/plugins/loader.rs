//! Loading a `.wasm` file into a plugin ready to instantiate: read, check, compile (through
//! the cache), identify its world and pre-link it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, InstancePre};

use super::bindings::{aggregator, handler, pattern};
use super::cache::{CacheOutcome, CompileCache};
use super::engine::PluginEngine;
use super::error::LoadError;
use super::kind::PluginKind;
use super::state::{PluginCounters, PluginIdentity, PluginState};

/// Hex digits of the content digest used as the plugin's version.
const VERSION_DIGITS: usize = 12;

/// A plugin that passed every check and can be instantiated cheaply.
pub struct LoadedPlugin {
    pub(crate) engine: PluginEngine,
    pub(crate) identity: Arc<PluginIdentity>,
    path: PathBuf,
    kind: PluginKind,
    size: usize,
    digest: String,
    compile_time: Duration,
    cache: CacheOutcome,
    exports: Vec<String>,
    imports: Vec<String>,
    pub(crate) pre: WorldPre,
}

/// The pre-linked instance of each world.
pub(crate) enum WorldPre {
    Handler(handler::HandlerPre<PluginState>),
    Aggregator(aggregator::AggregatorPre<PluginState>),
    Pattern(pattern::PatternPre<PluginState>),
}

impl LoadedPlugin {
    /// Plugin name: the file stem.
    pub fn name(&self) -> &str {
        &self.identity.name
    }

    /// Version: the first digits of the content digest.
    pub fn version(&self) -> &str {
        &self.identity.version
    }

    /// The full SHA-256 of the file, hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its world.
    pub fn kind(&self) -> PluginKind {
        self.kind
    }

    /// Size of the component in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Time spent compiling or loading the compiled artifact.
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }

    /// Whether the compiled artifact came from the cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }

    /// Names of the component's exports.
    pub fn exports(&self) -> &[String] {
        &self.exports
    }

    /// Names of the component's imports.
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// Counters the plugin keeps through the host interface.
    pub fn counters(&self) -> Vec<(String, u64)> {
        self.identity.counters.snapshot()
    }

    /// Checks that this plugin is of `kind`.
    ///
    /// # Errors
    /// [`LoadError::WrongKind`] naming both kinds.
    pub fn expect_kind(&self, kind: PluginKind) -> Result<(), LoadError> {
        if self.kind == kind {
            Ok(())
        } else {
            Err(LoadError::WrongKind {
                path: self.path.clone(),
                expected: kind,
                found: self.kind,
            })
        }
    }
}

/// Loads plugins onto one engine, through an optional compile cache.
#[derive(Clone)]
pub struct PluginLoader {
    engine: PluginEngine,
    cache: Option<CompileCache>,
}

impl PluginLoader {
    /// A loader on `engine`; `cache` of `None` compiles every time.
    pub fn new(engine: PluginEngine, cache: Option<CompileCache>) -> Self {
        Self { engine, cache }
    }

    /// The engine plugins are loaded onto.
    pub fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    /// Loads the plugin at `path`; its name is the file stem. This compiles, so call it off
    /// the async runtime (`spawn_blocking`).
    ///
    /// # Errors
    /// A [`LoadError`] naming the file and what is wrong with it.
    pub fn load(&self, path: &Path) -> Result<LoadedPlugin, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        let name = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.load_bytes(path, name, &bytes)
    }

    /// Loads a plugin from bytes already read; `path` is used in messages.
    ///
    /// # Errors
    /// As [`PluginLoader::load`].
    pub fn load_bytes(
        &self,
        path: &Path,
        name: String,
        bytes: &[u8],
    ) -> Result<LoadedPlugin, LoadError> {
        check_header(path, bytes)?;
        let digest = hex(&Sha256::digest(bytes));
        let engine = self.engine.engine();

        let started = Instant::now();
        let (component, cache) = match &self.cache {
            Some(cache) => cache.load_or_compile(engine, bytes, &digest),
            None => Component::new(engine, bytes).map(|c| (c, CacheOutcome::Off)),
        }
        .map_err(|e| LoadError::Invalid {
            path: path.to_owned(),
            reason: root_cause(&e),
        })?;
        let compile_time = started.elapsed();

        let component_type = component.component_type();
        let exports: Vec<String> = component_type
            .exports(engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let imports: Vec<String> = component_type
            .imports(engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let kind = identify(path, &component, engine, &exports)?;

        let instance_pre = self
            .engine
            .linker()
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link {
                path: path.to_owned(),
                reason: root_cause(&e),
            })?;
        let pre = typed_pre(kind, instance_pre).map_err(|e| LoadError::Invalid {
            path: path.to_owned(),
            reason: format!(
                "exports {} with functions that do not match the contract: {}",
                kind.export_name(),
                root_cause(&e)
            ),
        })?;

        let identity = Arc::new(PluginIdentity {
            name,
            version: digest[..VERSION_DIGITS].to_owned(),
            counters: PluginCounters::default(),
        });
        Ok(LoadedPlugin {
            engine: self.engine.clone(),
            identity,
            path: path.to_owned(),
            kind,
            size: bytes.len(),
            digest,
            compile_time,
            cache,
            exports,
            imports,
            pre,
        })
    }
}

fn check_header(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8] = b"\0asm";
    // The 4 bytes after the magic are a version and a layer: layer 1 is a component.
    const CORE_MODULE: [u8; 4] = [1, 0, 0, 0];
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(LoadError::NotWasm {
            path: path.to_owned(),
        });
    }
    if bytes[4..8] == CORE_MODULE {
        return Err(LoadError::CoreModule {
            path: path.to_owned(),
        });
    }
    Ok(())
}

fn identify(
    path: &Path,
    component: &Component,
    engine: &wasmtime::Engine,
    exports: &[String],
) -> Result<PluginKind, LoadError> {
    let kinds: Vec<PluginKind> = component
        .component_type()
        .exports(engine)
        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentInstance(_)))
        .filter_map(|(name, _)| PluginKind::from_export(name))
        .collect();
    match kinds.as_slice() {
        [kind] => Ok(*kind),
        [] => Err(LoadError::NoWorld {
            path: path.to_owned(),
            expected: PluginKind::ALL
                .iter()
                .map(|k| k.export_name())
                .collect::<Vec<_>>()
                .join(", "),
            found: if exports.is_empty() {
                "nothing".to_owned()
            } else {
                exports.join(", ")
            },
        }),
        many => Err(LoadError::ManyWorlds {
            path: path.to_owned(),
            found: many
                .iter()
                .map(|k| k.world())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

fn typed_pre(kind: PluginKind, pre: InstancePre<PluginState>) -> wasmtime::Result<WorldPre> {
    Ok(match kind {
        PluginKind::Handler => WorldPre::Handler(handler::HandlerPre::new(pre)?),
        PluginKind::Aggregator => WorldPre::Aggregator(aggregator::AggregatorPre::new(pre)?),
        PluginKind::Pattern => WorldPre::Pattern(pattern::PatternPre::new(pre)?),
    })
}

/// The innermost message of an error chain: for wasmparser and linker errors that is the
/// part that names the problem, without wasmtime's wrapping.
fn root_cause(error: &wasmtime::Error) -> String {
    let mut chain: Vec<String> = error.chain().map(|e| e.to_string()).collect();
    chain.dedup();
    chain.join(": ")
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
