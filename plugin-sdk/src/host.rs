//! What the host offers a plugin: a structured log, counters and the wall clock.
//!
//! These call into the host, so they work only inside a plugin running under Weir.

use crate::bindings::host;

/// Severity of a log record.
pub use crate::bindings::host::Level;

/// Writes a log record with `fields` shown beside the message. The host tags it with the
/// plugin's name and version and rate-limits it.
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    host::log(level, message, &fields);
}

/// Adds `delta` to the counter `name` (exported as `weir_plugin_counter_total`).
pub fn counter_add(name: &str, delta: u64) {
    host::counter_add(name, delta);
}

/// Wall-clock time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    host::now_ms()
}
