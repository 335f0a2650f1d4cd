//! Write Weir plugins in Rust.
//!
//! A plugin is a WebAssembly component implementing one world of the `weir:plugin`
//! contract. With this crate an author implements one small trait and exports it with one
//! macro; the packed batch layout of the contract stays out of sight.
//!
//! | world        | trait          | export macro            |
//! |--------------|----------------|-------------------------|
//! | `handler`    | [`Handler`]    | [`export_handler!`]     |
//! | `aggregator` | [`Aggregator`] | [`export_aggregator!`]  |
//! | `pattern`    | [`Pattern`]    | [`export_pattern!`]     |
//!
//! ```ignore
//! use weir_plugin_sdk::{export_handler, Config, Emit, Error, Event, Handler};
//!
//! struct Threshold { field: String, min: f64 }
//!
//! impl Handler for Threshold {
//!     fn init(config: &Config) -> Result<Self, Error> {
//!         Ok(Self { field: config.str("field")?.to_owned(), min: config.f64("min")? })
//!     }
//!     fn handle(&mut self, event: &Event<'_>, out: &mut Emit<'_>) -> Result<(), Error> {
//!         if event.field(&self.field)?.and_then(|v| v.as_f64()).is_some_and(|v| v > self.min) {
//!             out.keep();
//!         }
//!         Ok(())
//!     }
//! }
//!
//! export_handler!(Threshold);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` and a `cdylib` crate type.

pub mod aggregator;
#[doc(hidden)]
pub mod bindings;
mod config;
mod error;
mod event;
pub mod handler;
pub mod host;
pub mod msgpack;
mod output;
pub mod pattern;
mod state;

pub use aggregator::Aggregator;
pub use config::Config;
pub use error::{Error, ErrorCode};
pub use event::{Batch, Event};
pub use handler::{Emit, Handler, Outcomes};
pub use output::Output;
pub use pattern::{Matches, Pattern};
/// A configuration value, as [`Config::get`] returns it.
pub use serde_json::Value as ConfigValue;

/// Exports a [`Handler`] as the plugin's `handler` world. Use once per plugin crate.
#[macro_export]
macro_rules! export_handler {
    ($handler:ty) => {
        const _: () = {
            ::std::thread_local! {
                static STATE: ::std::cell::RefCell<::std::option::Option<$handler>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            struct Export;
            impl $crate::bindings::handler::exports::weir::plugin::event_handler::Guest for Export {
                fn init(
                    config: ::std::string::String,
                ) -> ::std::result::Result<(), $crate::bindings::types::Error> {
                    STATE.with(|slot| $crate::handler::init::<$handler>(slot, config))
                }
                fn process(
                    events: $crate::bindings::types::Batch,
                ) -> ::std::result::Result<
                    $crate::bindings::handler::exports::weir::plugin::event_handler::Outcomes,
                    $crate::bindings::types::Error,
                > {
                    STATE.with(|slot| $crate::handler::process::<$handler>(slot, events))
                }
            }
            $crate::bindings::handler::__export_handler_world!(Export with_types_in $crate::bindings::handler);
        };
    };
}

/// Exports an [`Aggregator`] as the plugin's `aggregator` world. Use once per plugin crate.
#[macro_export]
macro_rules! export_aggregator {
    ($aggregator:ty) => {
        const _: () = {
            ::std::thread_local! {
                static STATE: ::std::cell::RefCell<::std::option::Option<$aggregator>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            struct Export;
            impl $crate::bindings::aggregator::exports::weir::plugin::windowed_aggregator::Guest for Export {
                fn init(
                    config: ::std::string::String,
                ) -> ::std::result::Result<(), $crate::bindings::types::Error> {
                    STATE.with(|slot| $crate::aggregator::init::<$aggregator>(slot, config))
                }
                fn create() -> ::std::result::Result<::std::vec::Vec<u8>, $crate::bindings::types::Error> {
                    STATE.with(|slot| $crate::aggregator::create::<$aggregator>(slot))
                }
                fn add(
                    accumulators: $crate::bindings::types::Column,
                    events: $crate::bindings::types::Batch,
                    targets: ::std::vec::Vec<u32>,
                ) -> ::std::result::Result<
                    $crate::bindings::aggregator::exports::weir::plugin::windowed_aggregator::Folded,
                    $crate::bindings::types::Error,
                > {
                    STATE.with(|slot| $crate::aggregator::add::<$aggregator>(slot, accumulators, events, targets))
                }
                fn merge(
                    left: $crate::bindings::types::Column,
                    right: $crate::bindings::types::Column,
                ) -> ::std::result::Result<$crate::bindings::types::Column, $crate::bindings::types::Error> {
                    STATE.with(|slot| $crate::aggregator::merge::<$aggregator>(slot, left, right))
                }
                fn finish(
                    accumulators: $crate::bindings::types::Column,
                ) -> ::std::result::Result<$crate::bindings::types::Column, $crate::bindings::types::Error> {
                    STATE.with(|slot| $crate::aggregator::finish::<$aggregator>(slot, accumulators))
                }
            }
            $crate::bindings::aggregator::__export_aggregator_world!(Export with_types_in $crate::bindings::aggregator);
        };
    };
}

/// Exports a [`Pattern`] as the plugin's `pattern` world. Use once per plugin crate.
#[macro_export]
macro_rules! export_pattern {
    ($pattern:ty) => {
        const _: () = {
            ::std::thread_local! {
                static STATE: ::std::cell::RefCell<::std::option::Option<$pattern>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            struct Export;
            impl $crate::bindings::pattern::exports::weir::plugin::pattern_matcher::Guest for Export {
                fn init(
                    config: ::std::string::String,
                ) -> ::std::result::Result<(), $crate::bindings::types::Error> {
                    STATE.with(|slot| $crate::pattern::init::<$pattern>(slot, config))
                }
                fn create() -> ::std::result::Result<::std::vec::Vec<u8>, $crate::bindings::types::Error> {
                    STATE.with(|slot| $crate::pattern::create::<$pattern>(slot))
                }
                fn process(
                    states: $crate::bindings::types::Column,
                    events: $crate::bindings::types::Batch,
                    targets: ::std::vec::Vec<u32>,
                ) -> ::std::result::Result<
                    $crate::bindings::pattern::exports::weir::plugin::pattern_matcher::Progress,
                    $crate::bindings::types::Error,
                > {
                    STATE.with(|slot| $crate::pattern::process::<$pattern>(slot, states, events, targets))
                }
                fn on_timer(
                    states: $crate::bindings::types::Column,
                    now: i64,
                ) -> ::std::result::Result<
                    $crate::bindings::pattern::exports::weir::plugin::pattern_matcher::Progress,
                    $crate::bindings::types::Error,
                > {
                    STATE.with(|slot| $crate::pattern::on_timer::<$pattern>(slot, states, now))
                }
            }
            $crate::bindings::pattern::__export_pattern_world!(Export with_types_in $crate::bindings::pattern);
        };
    };
}
