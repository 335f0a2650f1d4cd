//! Weir: a stream-processor host whose stage logic runs in sandboxed WebAssembly components.
//!
//! - [`cli`]: the `weir` command line.
//! - [`event`]: the event that flows through pipelines.
//! - [`plugins`]: the wasm runtime (engine, loading, compile cache, typed instances).
//! - [`format`]: conversions between JSON and the MessagePack payloads inside Weir.
//! - [`config`]: the pipeline file; [`pipeline`]: the running graph of components.
//! - [`connectors`]: sources and sinks; [`operators`]: built-in stages; [`expr`]: conditions.
//! - [`delivery`]: acknowledgements, checkpoints, dedup, dead letters.
//! - [`api`]: the HTTP side; [`feed`]: its live event feed; [`metrics`]: every exported metric.

pub mod api;
pub mod cli;
pub mod config;
pub mod connectors;
pub mod delivery;
pub mod event;
pub mod expr;
pub mod feed;
pub mod format;
pub mod health;
pub mod metrics;
pub mod operators;
pub mod pipeline;
pub mod plugins;
pub mod state;
