//! Per-instance limits: CPU time per call and linear memory.

use std::time::Duration;

/// How long one call into a plugin may run before it is interrupted, by default.
///
/// A call handles a whole batch (up to ~1024 events), so 100 ms allows ~100 µs per event,
/// two orders of magnitude above what a handler should need, while a runaway loop still
/// gives its batch back within a tenth of a second.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_millis(100);

/// Linear memory one instance may hold, by default.
///
/// Interpreted guests (CPython, a JavaScript engine) start at 20–40 MiB; 128 MiB leaves them
/// room for their heaps while a memory bomb is stopped long before it can hurt the host.
pub const DEFAULT_MEMORY_LIMIT_BYTES: usize = 128 << 20;

/// Upper bound for any configured memory limit: every pooled memory slot is reserved at this
/// size, so it also bounds the host's virtual address use.
pub const MAX_MEMORY_LIMIT_BYTES: usize = 4 << 30;

/// Most bytes a single call may hand back (payloads, keys, headers and state together).
///
/// A plugin can return as much as its memory limit allows; the host copies all of it out,
/// so this keeps one call from ballooning the host's own heap.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 64 << 20;

/// Most events one input event may turn into (flat-map fan-out).
pub const DEFAULT_MAX_OUTPUTS_PER_EVENT: usize = 10_000;

/// Limits applied to one plugin instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// CPU time per call, enforced with epoch interruption.
    pub call_timeout: Duration,
    /// Linear memory per instance, in bytes.
    pub memory_bytes: usize,
    /// Bytes one call may return.
    pub max_output_bytes: usize,
    /// Events one input event may produce.
    pub max_outputs_per_event: usize,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            call_timeout: DEFAULT_CALL_TIMEOUT,
            memory_bytes: DEFAULT_MEMORY_LIMIT_BYTES,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            max_outputs_per_event: DEFAULT_MAX_OUTPUTS_PER_EVENT,
        }
    }
}
