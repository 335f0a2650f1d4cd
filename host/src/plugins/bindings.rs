//! Host-side bindings generated from `wit/`, one module per world.
//!
//! The aggregator and pattern worlds reuse the handler world's `types` and `host` modules, so
//! one Rust type stands for each WIT type whatever the world.

#![allow(missing_docs)]

/// The `handler` world.
pub(crate) mod handler {
    wasmtime::component::bindgen!({ path: "../wit", world: "handler" });
}

/// The `aggregator` world.
pub(crate) mod aggregator {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "aggregator",
        with: {
            "weir:plugin/types": super::handler::weir::plugin::types,
            "weir:plugin/host": super::handler::weir::plugin::host,
        },
    });
}

/// The `pattern` world.
pub(crate) mod pattern {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "pattern",
        with: {
            "weir:plugin/types": super::handler::weir::plugin::types,
            "weir:plugin/host": super::handler::weir::plugin::host,
        },
    });
}

pub(crate) use handler::weir::plugin::host;
pub(crate) use handler::weir::plugin::types;
