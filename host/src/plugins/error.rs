//! Errors of loading plugins and of calling them.
//!
//! Load errors say which file and what is wrong with it. Call errors keep three things
//! apart: a *fault* (trap, deadline, memory limit, broken output) means the instance can no
//! longer be trusted and is replaced; an error the plugin *returned* is a value and leaves the
//! instance serving; a *host* error is the host's own problem.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Why a file could not be loaded as a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The plugin file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file does not start with the WebAssembly magic bytes.
    #[error("{}: not a WebAssembly file (it lacks the \\0asm header)", path.display())]
    NotWasm {
        /// The plugin file.
        path: PathBuf,
    },
    /// The file is a core module, which cannot carry the WIT contract.
    #[error(
        "{}: a core WebAssembly module, not a component (build for wasm32-wasip2, or wrap it with `wasm-tools component new`)",
        path.display()
    )]
    CoreModule {
        /// The plugin file.
        path: PathBuf,
    },
    /// The component is malformed or truncated, or failed to compile.
    #[error("{}: invalid component: {reason}", path.display())]
    Invalid {
        /// The plugin file.
        path: PathBuf,
        /// The validator's or compiler's message.
        reason: String,
    },
    /// The component exports none of the plugin interfaces this host knows.
    #[error(
        "{}: exports no weir:plugin world (expected one of {expected}); it exports: {found}",
        path.display()
    )]
    NoWorld {
        /// The plugin file.
        path: PathBuf,
        /// The interfaces the host looks for.
        expected: String,
        /// What the component exports instead.
        found: String,
    },
    /// The component exports more than one plugin interface.
    #[error(
        "{}: exports several plugin worlds ({found}); a plugin is exactly one of handler, aggregator, pattern",
        path.display()
    )]
    ManyWorlds {
        /// The plugin file.
        path: PathBuf,
        /// The plugin interfaces it exports.
        found: String,
    },
    /// The component imports something the host does not provide.
    #[error(
        "{}: cannot be linked: {reason} (plugins may import only weir:plugin/host and WASI)",
        path.display()
    )]
    Link {
        /// The plugin file.
        path: PathBuf,
        /// The linker's message, naming the import.
        reason: String,
    },
    /// The plugin was found but is of another kind than the caller needs.
    #[error("{}: is a {found} plugin, but a {expected} plugin is needed here", path.display())]
    WrongKind {
        /// The plugin file.
        path: PathBuf,
        /// The kind the caller asked for.
        expected: super::PluginKind,
        /// The kind the component is.
        found: super::PluginKind,
    },
}

/// The category of an error a plugin returned, as in the contract's `error-code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The configuration is missing a key or has a bad value.
    InvalidConfig,
    /// An input event cannot be handled.
    InvalidInput,
    /// Held state was written by an incompatible version.
    UnsupportedState,
    /// Anything else.
    Internal,
}

impl ErrorCode {
    /// The contract's name for this code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidConfig => "invalid-config",
            Self::InvalidInput => "invalid-input",
            Self::UnsupportedState => "unsupported-state",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error a plugin returned as a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedError {
    /// Its category.
    pub code: ErrorCode,
    /// The plugin's message.
    pub message: String,
}

impl fmt::Display for ReportedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// A fault: the plugin misbehaved and its instance must not serve again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The call ran past its CPU deadline and was interrupted.
    Deadline {
        /// The deadline that was exceeded.
        timeout: Duration,
    },
    /// The instance tried to grow its memory past the limit.
    MemoryLimit {
        /// The limit in bytes.
        limit: usize,
        /// The size it asked for, in bytes.
        requested: usize,
    },
    /// The guest's stack overflowed (runaway recursion).
    StackOverflow,
    /// The guest trapped (a panic, `unreachable`, an out-of-bounds access).
    Trap {
        /// The trap and the wasm backtrace.
        message: String,
    },
    /// The plugin returned output that breaks the contract (bad offsets, too much data).
    Contract {
        /// What is wrong with it.
        reason: String,
    },
}

impl Fault {
    /// A short, bounded label for metrics and summaries.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Deadline { .. } => "deadline",
            Self::MemoryLimit { .. } => "memory",
            Self::StackOverflow => "stack_overflow",
            Self::Trap { .. } => "trap",
            Self::Contract { .. } => "contract",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Deadline { timeout } => {
                write!(
                    f,
                    "ran past its deadline of {} ms and was stopped",
                    timeout.as_millis()
                )
            }
            Self::MemoryLimit { limit, requested } => write!(
                f,
                "tried to grow its memory to {} MiB, past its limit of {} MiB, and was stopped",
                requested >> 20,
                limit >> 20
            ),
            Self::StackOverflow => f.write_str("overflowed its stack (runaway recursion)"),
            Self::Trap { message } => write!(f, "trapped: {message}"),
            Self::Contract { reason } => write!(f, "broke the contract: {reason}"),
        }
    }
}

/// What went wrong in a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallErrorKind {
    /// The plugin misbehaved; the instance is poisoned.
    Fault(Fault),
    /// The plugin returned an error value.
    Reported(ReportedError),
    /// The instance faulted earlier and may not be called again.
    Poisoned,
    /// The event was not tried: the plugin had just faulted on this many events in a row.
    NotRetried {
        /// Faults in a row before this event.
        in_a_row: usize,
    },
}

/// A failed call, naming the plugin, its version and the export.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin} (version {version}) {export}: {kind}")]
pub struct CallError {
    /// Plugin name.
    pub plugin: String,
    /// Plugin version (content digest).
    pub version: String,
    /// The export that was called (`init`, `process`, ...).
    pub export: &'static str,
    /// What happened.
    pub kind: CallErrorKind,
}

impl CallError {
    /// The fault, if the plugin misbehaved.
    pub fn fault(&self) -> Option<&Fault> {
        match &self.kind {
            CallErrorKind::Fault(fault) => Some(fault),
            _ => None,
        }
    }
}

impl fmt::Display for CallErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fault(fault) => fault.fmt(f),
            Self::Reported(err) => write!(f, "returned an error: {err}"),
            Self::Poisoned => f.write_str("instance faulted earlier and was not replaced"),
            Self::NotRetried { in_a_row } => write!(
                f,
                "not tried: the plugin faulted on {in_a_row} events in a row just before"
            ),
        }
    }
}
