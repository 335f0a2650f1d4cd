//! Weir: a stream-processor host whose stage logic runs in sandboxed WebAssembly components.
//!
//! - [`cli`]: the `weir` command line.
//! - [`event`]: the event that flows through pipelines.
//! - [`plugins`]: the wasm runtime (engine, loading, compile cache, typed instances).
//! - [`format`]: conversions between JSON and the MessagePack payloads inside Weir.

pub mod cli;
pub mod event;
pub mod format;
pub mod plugins;
