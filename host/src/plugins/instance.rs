//! What every plugin instance shares, whatever its world: a store with limits, the call
//! wrapper that arms the CPU deadline, and the sorting of failures into faults and
//! reported errors.

use std::sync::Arc;

use wasmtime::{Store, Trap, WasmBacktrace};

use super::bindings::types;
use super::engine::{PluginEngine, deadline_ticks};
use super::error::{CallError, CallErrorKind, ErrorCode, Fault, ReportedError};
use super::kind::PluginKind;
use super::limits::PluginLimits;
use super::loader::{LoadedPlugin, WorldPre};
use super::state::{PluginIdentity, PluginState};

/// Frames of the wasm backtrace quoted in a trap report.
const BACKTRACE_FRAMES: usize = 6;

/// A store plus the bookkeeping every instance needs.
pub(crate) struct InstanceCore {
    pub(crate) store: Store<PluginState>,
    identity: Arc<PluginIdentity>,
    limits: PluginLimits,
    deadline_ticks: u64,
    poisoned: bool,
}

impl InstanceCore {
    /// A fresh store for `identity` under `limits`.
    pub(crate) fn new(
        engine: &PluginEngine,
        identity: Arc<PluginIdentity>,
        limits: PluginLimits,
    ) -> Self {
        let mut store = Store::new(
            engine.engine(),
            PluginState::new(identity.clone(), limits.memory_bytes),
        );
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_trap();
        let deadline_ticks = deadline_ticks(limits.call_timeout);
        store.set_epoch_deadline(deadline_ticks);
        Self {
            store,
            identity,
            limits,
            deadline_ticks,
            poisoned: false,
        }
    }

    /// Instantiates `plugin` as a `kind` plugin and runs its `init` with `config`: the
    /// start-up every world shares. `pick` selects the world's pre-linked component.
    pub(crate) fn start<P, B>(
        plugin: &LoadedPlugin,
        limits: PluginLimits,
        kind: PluginKind,
        config: &str,
        pick: impl FnOnce(&WorldPre) -> Option<&P>,
        instantiate: impl FnOnce(&P, &mut Store<PluginState>) -> wasmtime::Result<B>,
        init: impl FnOnce(
            &B,
            &mut Store<PluginState>,
            &str,
        ) -> wasmtime::Result<Result<(), types::Error>>,
    ) -> Result<(Self, B), CallError> {
        let mut core = Self::new(&plugin.engine, plugin.identity.clone(), limits);
        let Some(pre) = pick(&plugin.pre) else {
            let reason = format!("is of kind {}, not {kind}", plugin.kind());
            return Err(core.fault("instantiate", Fault::Contract { reason }));
        };
        let bindings = core.instantiate(|store| instantiate(pre, store))?;
        core.call("init", |store| init(&bindings, store, config))?;
        Ok((core, bindings))
    }

    /// The empty state of an aggregator or pattern: asked of the plugin once, then reused
    /// (the contract lets it depend on the configuration only).
    pub(crate) fn empty_state(
        &mut self,
        cached: &mut Option<Vec<u8>>,
        create: impl FnOnce(&mut Store<PluginState>) -> wasmtime::Result<Result<Vec<u8>, types::Error>>,
    ) -> Result<Vec<u8>, CallError> {
        if let Some(empty) = cached {
            return Ok(empty.clone());
        }
        let empty = self.call("create", create)?;
        *cached = Some(empty.clone());
        Ok(empty)
    }

    /// The instance's linear memory in bytes.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.store.data().limiter.granted()
    }

    /// The limits this instance runs under.
    pub(crate) fn limits(&self) -> &PluginLimits {
        &self.limits
    }

    /// Whether a fault has made this instance unusable.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Runs `f` under the CPU deadline (instantiation, which may run guest start code).
    pub(crate) fn instantiate<R>(
        &mut self,
        f: impl FnOnce(&mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        self.call("instantiate", |store| f(store).map(Ok))
    }

    /// Calls an export under the CPU deadline and sorts out what went wrong, if anything.
    pub(crate) fn call<R>(
        &mut self,
        export: &'static str,
        f: impl FnOnce(&mut Store<PluginState>) -> wasmtime::Result<Result<R, types::Error>>,
    ) -> Result<R, CallError> {
        if self.poisoned {
            return Err(self.error(export, CallErrorKind::Poisoned));
        }
        self.store.set_epoch_deadline(self.deadline_ticks);
        self.store.data().stderr.clear();
        match f(&mut self.store) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.error(export, CallErrorKind::Reported(reported(error)))),
            Err(error) => {
                let fault = self.classify(&error);
                Err(self.fault(export, fault))
            }
        }
    }

    /// Records a fault (also one found in a call's output) and poisons the instance.
    pub(crate) fn fault(&mut self, export: &'static str, fault: Fault) -> CallError {
        self.poisoned = true;
        self.error(export, CallErrorKind::Fault(fault))
    }

    /// A call error naming this plugin.
    pub(crate) fn error(&self, export: &'static str, kind: CallErrorKind) -> CallError {
        CallError {
            plugin: self.identity.name.clone(),
            version: self.identity.version.clone(),
            export,
            kind,
        }
    }

    fn classify(&mut self, error: &wasmtime::Error) -> Fault {
        let state = self.store.data_mut();
        if let Some(requested) = state.limiter.refused.take() {
            return Fault::MemoryLimit {
                limit: state.limiter.limit(),
                requested,
            };
        }
        let stderr = state.stderr.take();
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Fault::Deadline {
                timeout: self.limits.call_timeout,
            },
            Some(Trap::StackOverflow) => Fault::StackOverflow,
            Some(trap) => {
                let mut message = trap.to_string();
                if let Some(stderr) = stderr {
                    message.push_str("; guest stderr: ");
                    message.push_str(&stderr);
                }
                if let Some(backtrace) = error.downcast_ref::<WasmBacktrace>() {
                    message.push_str("; wasm backtrace: ");
                    message.push_str(&describe_backtrace(backtrace));
                }
                Fault::Trap { message }
            }
            // Not a trap: the host could not lift what the guest returned (a bad pointer,
            // invalid UTF-8), which is the plugin breaking the ABI.
            None => Fault::Contract {
                reason: format!("{error:#}"),
            },
        }
    }
}

/// The innermost frames of the plugin's own code: the language runtime's panic and abort
/// machinery on top of the stack says nothing about where the plugin went wrong.
fn describe_backtrace(backtrace: &WasmBacktrace) -> String {
    const RUNTIME_PREFIXES: [&str; 6] = [
        "std::",
        "core::",
        "alloc::",
        "__rust",
        "abort",
        "panic_abort::",
    ];
    let frames: Vec<String> = backtrace
        .frames()
        .iter()
        .map(|frame| match frame.func_name() {
            Some(name) => format!("{:#}", rustc_demangle::demangle(name)),
            None => format!("func[{}]", frame.func_index()),
        })
        .filter(|name| !RUNTIME_PREFIXES.iter().any(|p| name.starts_with(p)))
        .map(|name| strip_hash(&name).to_owned())
        .take(BACKTRACE_FRAMES)
        .collect();
    frames.join(" <- ")
}

/// Drops the `::h0123456789abcdef` hash that legacy Rust mangling appends.
fn strip_hash(name: &str) -> &str {
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head
        }
        _ => name,
    }
}

/// Converts the contract's error record.
pub(crate) fn reported(error: types::Error) -> ReportedError {
    ReportedError {
        code: match error.code {
            types::ErrorCode::InvalidConfig => ErrorCode::InvalidConfig,
            types::ErrorCode::InvalidInput => ErrorCode::InvalidInput,
            types::ErrorCode::UnsupportedState => ErrorCode::UnsupportedState,
            types::ErrorCode::Internal => ErrorCode::Internal,
        },
        message: error.message,
    }
}

/// Checks the per-event failures of a call against the batch size.
pub(crate) fn check_failures(failures: &[types::Failure], events: usize) -> Result<(), String> {
    match failures.iter().find(|f| f.index as usize >= events) {
        Some(f) => Err(format!(
            "reported a failure of event {}, but the batch has {events}",
            f.index
        )),
        None => Ok(()),
    }
}
