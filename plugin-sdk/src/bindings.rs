//! Guest-side bindings generated from `wit/`, one module per world. Authors do not use
//! these directly; the traits and `export_*!` macros of this crate wrap them.

#![allow(missing_docs, unsafe_code, clippy::all)]

/// The `handler` world.
pub mod handler {
    wit_bindgen::generate!({
        path: "../wit",
        world: "handler",
        pub_export_macro: true,
        export_macro_name: "__export_handler_world",
    });
}

/// The `aggregator` world.
pub mod aggregator {
    wit_bindgen::generate!({
        path: "../wit",
        world: "aggregator",
        pub_export_macro: true,
        export_macro_name: "__export_aggregator_world",
        with: {
            "weir:plugin/types@0.1.0": crate::bindings::handler::weir::plugin::types,
            "weir:plugin/host@0.1.0": crate::bindings::handler::weir::plugin::host,
        },
    });
}

/// The `pattern` world.
pub mod pattern {
    wit_bindgen::generate!({
        path: "../wit",
        world: "pattern",
        pub_export_macro: true,
        export_macro_name: "__export_pattern_world",
        with: {
            "weir:plugin/types@0.1.0": crate::bindings::handler::weir::plugin::types,
            "weir:plugin/host@0.1.0": crate::bindings::handler::weir::plugin::host,
        },
    });
}

pub use handler::weir::plugin::{host, types};
