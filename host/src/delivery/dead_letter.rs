//! Dead-letter events: the failed event itself, with headers saying where and why it failed.

use bytes::Bytes;

use crate::event::{Event, Header};

/// Header naming the component where the event failed.
pub const HEADER_STAGE: &str = "weir-dead-letter-stage";
/// Header naming the plugin and version, when a plugin was involved.
pub const HEADER_PLUGIN: &str = "weir-dead-letter-plugin";
/// Header with the kind of failure (bounded set, see [`DeadLetterReason`]).
pub const HEADER_KIND: &str = "weir-dead-letter-kind";
/// Header with the full error text.
pub const HEADER_ERROR: &str = "weir-dead-letter-error";

/// Why an event was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// Input a source could not decode.
    Malformed,
    /// An error the plugin returned for the event.
    PluginError,
    /// A trap, deadline, memory or contract fault while handling the event.
    PluginFault,
    /// A sink gave up on the event.
    SinkError,
    /// The stage's plugin was quarantined by its circuit breaker.
    Quarantined,
    /// Too late for every window it falls in.
    Late,
    /// A window stage's state was at its configured bound.
    StateFull,
}

impl DeadLetterReason {
    /// The label used in headers and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::PluginError => "plugin_error",
            Self::PluginFault => "plugin_fault",
            Self::SinkError => "sink_error",
            Self::Quarantined => "quarantined",
            Self::Late => "late",
            Self::StateFull => "state_full",
        }
    }
}

/// `event` with dead-letter headers added: `component`, `plugin` (`name@version`) when one
/// was involved, the reason's kind and the error text.
pub fn dead_letter_event(
    mut event: Event,
    component: &str,
    plugin: Option<&str>,
    reason: DeadLetterReason,
    error: &str,
) -> Event {
    let mut header = |name: &str, value: &str| {
        event.headers.push(Header {
            name: name.to_owned(),
            value: Bytes::copy_from_slice(value.as_bytes()),
        });
    };
    header(HEADER_STAGE, component);
    if let Some(plugin) = plugin {
        header(HEADER_PLUGIN, plugin);
    }
    header(HEADER_KIND, reason.as_str());
    header(HEADER_ERROR, error);
    event
}
