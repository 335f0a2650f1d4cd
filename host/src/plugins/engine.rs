//! The one wasmtime [`Engine`] every plugin runs on, and its epoch ticker.
//!
//! The engine is configured once: component model, epoch interruption for per-call CPU
//! deadlines, the pooling allocator so a fresh instance costs microseconds, and Cranelift's
//! speed optimisations. One [`Linker`] is shared by all plugins; it provides the host
//! interface and a locked-down WASI.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings;
use super::limits::MAX_MEMORY_LIMIT_BYTES;
use super::state::PluginState;

/// How often the epoch advances. Deadlines are whole ticks, so this is their resolution.
/// Ticking costs nothing on the call path; a 1 ms tick cost ~5% of a core in wake-ups on an
/// idle host, 5 ms costs ~1% and still stops a 100 ms deadline within 5%.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Component instances the pool holds at once (stage workers, reload candidates, tools).
const POOL_COMPONENT_INSTANCES: u32 = 128;
/// Core instances in the pool; interpreted guests (Python, JS) bring a dozen each.
const POOL_CORE_INSTANCES: u32 = 2048;
/// Linear memories in the pool. Each slot reserves `MAX_MEMORY_LIMIT_BYTES` of address space
/// (not memory), so this also caps the host's virtual reservation.
const POOL_MEMORIES: u32 = 256;
/// Tables in the pool.
const POOL_TABLES: u32 = 512;
/// Core instances one component may contain (a CPython component has about twenty).
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 64;
/// Memories one component may contain.
const MAX_MEMORIES_PER_COMPONENT: u32 = 8;
/// Tables one component may contain.
const MAX_TABLES_PER_COMPONENT: u32 = 16;
/// Elements per table; CPython's indirect-call table holds tens of thousands of functions.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 200_000;
/// Size of one core instance's host-side state (globals, function references).
const MAX_CORE_INSTANCE_SIZE: usize = 4 << 20;
/// Size of one component instance's host-side state.
const MAX_COMPONENT_INSTANCE_SIZE: usize = 4 << 20;
/// Wasm stack per call. Deep recursion traps here instead of crashing the host.
const MAX_WASM_STACK: usize = 1 << 20;

/// Why the engine could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the plugin runtime: {0}")]
pub struct EngineError(String);

/// The shared engine and linker. Cheap to clone.
#[derive(Clone)]
pub struct PluginEngine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    engine: Engine,
    linker: Linker<PluginState>,
}

impl PluginEngine {
    /// Builds the engine, the linker and starts the epoch ticker.
    ///
    /// # Errors
    /// Fails when wasmtime rejects the configuration (for instance when the machine cannot
    /// reserve the pooled address space).
    pub fn new() -> Result<Self, EngineError> {
        let engine = Engine::new(&engine_config()).map_err(|e| EngineError(format!("{e:#}")))?;
        let linker = build_linker(&engine).map_err(|e| EngineError(format!("{e:#}")))?;
        start_epoch_ticker(&engine);
        Ok(Self {
            inner: Arc::new(EngineInner { engine, linker }),
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The linker with the host interface and WASI.
    pub(crate) fn linker(&self) -> &Linker<PluginState> {
        &self.inner.linker
    }
}

fn engine_config() -> Config {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(POOL_COMPONENT_INSTANCES)
        .total_core_instances(POOL_CORE_INSTANCES)
        .total_memories(POOL_MEMORIES)
        .total_tables(POOL_TABLES)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
        .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
        .table_elements(MAX_TABLE_ELEMENTS)
        .max_core_instance_size(MAX_CORE_INSTANCE_SIZE)
        .max_component_instance_size(MAX_COMPONENT_INSTANCE_SIZE)
        .max_memory_size(MAX_MEMORY_LIMIT_BYTES);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

fn build_linker(engine: &Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    bindings::host::add_to_linker::<PluginState, wasmtime::component::HasSelf<PluginState>>(
        &mut linker,
        |state| state,
    )?;
    Ok(linker)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a thread of its own. The thread holds
/// only a weak handle, so it ends once the last engine handle is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("weir-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(error) = spawned {
        // Without a ticker deadlines never fire; calls still complete, so keep serving.
        tracing::error!(%error, "cannot start the epoch ticker: plugin deadlines are off");
    }
}

/// The number of epoch ticks that make up `timeout`, at least one.
pub(crate) fn deadline_ticks(timeout: Duration) -> u64 {
    let ticks = timeout.as_micros().div_ceil(EPOCH_TICK.as_micros());
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}
