//! What each plugin instance's store holds: its identity, the locked-down WASI context, the
//! memory limiter, and the host interface the plugin imports (log, counters, clock).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::{host, types};
use super::guest_output::{GuestOutput, RecentLines};

/// Log records a plugin may write per second before the rest of that second's are dropped.
/// A plugin that logs per event would otherwise flood the host's log at millions of lines
/// per second.
pub const LOG_RECORDS_PER_SECOND: u32 = 100;

/// Distinct counter names one plugin may create. Each becomes a metrics series, and series
/// must stay bounded; names past this are ignored (and said so once).
pub const MAX_COUNTERS_PER_PLUGIN: usize = 64;

/// Who a plugin is: shown on every log line, error and metric it causes.
#[derive(Debug)]
pub struct PluginIdentity {
    /// Plugin name (the file stem).
    pub name: String,
    /// Version: a short digest of the component's bytes.
    pub version: String,
    /// Counters the plugin keeps through `counter-add`, shared by its instances.
    pub counters: PluginCounters,
}

/// Counters a plugin keeps through the host interface.
#[derive(Debug, Default)]
pub struct PluginCounters {
    values: Mutex<HashMap<String, u64>>,
}

impl PluginCounters {
    /// Current values, sorted by name.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        let mut list: Vec<_> = values.iter().map(|(k, v)| (k.clone(), *v)).collect();
        list.sort();
        list
    }

    /// Adds `delta` to `name`; returns false when the name is new and the bound is reached.
    fn add(&self, name: String, delta: u64) -> bool {
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        let full = values.len() >= MAX_COUNTERS_PER_PLUGIN;
        match values.get_mut(&name) {
            Some(value) => *value = value.saturating_add(delta),
            None if full => return false,
            None => {
                values.insert(name, delta);
            }
        }
        true
    }
}

/// The data of one instance's store.
pub(crate) struct PluginState {
    identity: Arc<PluginIdentity>,
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    /// The plugin's last lines on stderr, quoted in fault reports.
    pub(crate) stderr: RecentLines,
    log_window: Instant,
    logs_in_window: u32,
    warned_counter_bound: bool,
}

impl PluginState {
    /// State for a new instance: no files, sockets, environment or arguments; stdout and
    /// stderr go to the host's log.
    pub(crate) fn new(identity: Arc<PluginIdentity>, memory_limit: usize) -> Self {
        let stderr = GuestOutput::new(identity.clone(), "stderr");
        let recent_stderr = stderr.recent();
        let wasi = WasiCtxBuilder::new()
            .stdout(GuestOutput::new(identity.clone(), "stdout"))
            .stderr(stderr)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            identity,
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_limit),
            stderr: recent_stderr,
            log_window: Instant::now(),
            logs_in_window: 0,
            warned_counter_bound: false,
        }
    }

    /// Whether a log record may be written now (see [`LOG_RECORDS_PER_SECOND`]).
    fn admit_log(&mut self) -> bool {
        if self.log_window.elapsed().as_secs() >= 1 {
            let dropped = self.logs_in_window.saturating_sub(LOG_RECORDS_PER_SECOND);
            if dropped > 0 {
                tracing::warn!(plugin = %self.identity.name, version = %self.identity.version, dropped, "plugin log records dropped by rate limit");
            }
            self.log_window = Instant::now();
            self.logs_in_window = 0;
        }
        self.logs_in_window = self.logs_in_window.saturating_add(1);
        self.logs_in_window <= LOG_RECORDS_PER_SECOND
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for PluginState {}

impl host::Host for PluginState {
    fn log(&mut self, level: host::Level, message: String, fields: Vec<(String, String)>) {
        if !self.admit_log() {
            return;
        }
        let plugin = self.identity.name.as_str();
        let version = self.identity.version.as_str();
        let fields = FieldList(&fields);
        match level {
            host::Level::Trace => tracing::trace!(plugin, version, fields = %fields, "{message}"),
            host::Level::Debug => tracing::debug!(plugin, version, fields = %fields, "{message}"),
            host::Level::Info => tracing::info!(plugin, version, fields = %fields, "{message}"),
            host::Level::Warn => tracing::warn!(plugin, version, fields = %fields, "{message}"),
            host::Level::Error => tracing::error!(plugin, version, fields = %fields, "{message}"),
        }
    }

    fn counter_add(&mut self, name: String, delta: u64) {
        if !self.identity.counters.add(name, delta) && !self.warned_counter_bound {
            self.warned_counter_bound = true;
            tracing::warn!(plugin = %self.identity.name, limit = MAX_COUNTERS_PER_PLUGIN, "plugin counter names past the limit are ignored");
        }
    }

    fn now_ms(&mut self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// Formats a plugin's log fields as `k=v k=v`.
struct FieldList<'a>(&'a [(String, String)]);

impl std::fmt::Display for FieldList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{key}={value}")?;
        }
        Ok(())
    }
}

/// Caps an instance's linear memory and remembers a refused growth, so that the trap it
/// causes can be reported as a memory-limit fault rather than a generic one.
pub(crate) struct MemoryLimiter {
    limit: usize,
    /// The size of the last refused growth, in bytes.
    pub(crate) refused: Option<usize>,
    /// Linear memory granted so far, all memories of the instance together (their creation
    /// counts as growth from zero).
    granted: usize,
}

impl MemoryLimiter {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            refused: None,
            granted: 0,
        }
    }

    /// The instance's linear memory in bytes.
    pub(crate) fn granted(&self) -> usize {
        self.granted
    }

    /// The limit in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.refused = Some(desired);
            // Trapping (rather than returning false) stops the guest at once: most guest
            // allocators would abort on a failed grow anyway, with a less useful message.
            return Err(wasmtime::format_err!(
                "memory limit of {} bytes reached (wanted {desired})",
                self.limit
            ));
        }
        self.granted += desired.saturating_sub(current);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= super::engine::MAX_TABLE_ELEMENTS)
    }
}
