//! The plugin runtime: a sandboxed wasmtime engine, loading and caching components, and
//! typed instances of each plugin world.
//!
//! - [`PluginEngine`]: the engine (component model, epoch deadlines, pooling allocator) and
//!   the linker that offers plugins the host interface and a WASI with nothing in it.
//! - [`PluginLoader`] turns a `.wasm` file into a [`LoadedPlugin`]: header check, compile
//!   through the [`CompileCache`], world identification, pre-linking.
//! - [`HandlerInstance`], [`AggregatorInstance`], [`PatternInstance`]: live instances that
//!   take batches, made once per worker and reused.
//! - [`SupervisedHandler`] replaces faulted instances and isolates the events that fault.
//!
//! ```no_run
//! use weir::plugins::{HandlerInstance, PluginEngine, PluginLimits, PluginLoader};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let loader = PluginLoader::new(PluginEngine::new()?, None);
//! let plugin = loader.load("target/plugins/threshold.wasm".as_ref())?;
//! let mut handler = HandlerInstance::new(&plugin, PluginLimits::default(), r#"{"field":"amount","min":50}"#)?;
//! let output = handler.process(&[])?;
//! assert!(output.events.is_empty());
//! # Ok(()) }
//! ```

mod aggregator;
mod bindings;
mod cache;
mod columns;
mod directory;
mod engine;
mod error;
mod guest_output;
mod handler;
mod held_state;
mod instance;
mod kind;
mod limits;
mod loader;
mod pattern;
mod registry;
mod reload;
mod settings;
mod state;
mod supervisor;

pub use aggregator::{AggregatorInstance, Folded};
pub use cache::{CacheOutcome, CompileCache};
pub use directory::PluginDirectory;
pub use engine::{EPOCH_TICK, EngineError, PluginEngine};
pub use error::{CallError, CallErrorKind, ErrorCode, Fault, LoadError, ReportedError};
pub use handler::{EventFailure, HandlerInstance, HandlerOutput};
pub use held_state::{HeldStateInstance, HeldStatePlugin, Version, unreadable_state};
pub use kind::{CONTRACT_VERSION, PluginKind};
pub use limits::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MAX_OUTPUTS_PER_EVENT,
    DEFAULT_MEMORY_LIMIT_BYTES, MAX_MEMORY_LIMIT_BYTES, PluginLimits,
};
pub use loader::{LoadedPlugin, PluginLoader};
pub use pattern::{Match, PatternInstance, Progress, StateContext};
pub use registry::{PluginHealth, PluginRegistry, PluginSlot, PluginStatus, Release};
pub use reload::{RELOAD_DEBOUNCE, ReloadOutcome, Reloader, watch};
pub use settings::{PluginDefaults, PluginSettings, PluginUser};
pub use state::{LOG_RECORDS_PER_SECOND, MAX_COUNTERS_PER_PLUGIN};
pub use supervisor::{MAX_CONSECUTIVE_FAULTS, SupervisedHandler};
