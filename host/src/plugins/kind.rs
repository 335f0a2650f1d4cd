//! The three plugin kinds and the exports that identify them.

use std::fmt;

/// The contract version this host speaks; exports carry it in their names.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginKind {
    /// `handler`: filter, map, filter-map, flat-map.
    Handler,
    /// `aggregator`: a custom windowed aggregate with host-held accumulators.
    Aggregator,
    /// `pattern`: a custom CEP matcher with host-held per-key state.
    Pattern,
}

impl PluginKind {
    /// Every kind, in a fixed order.
    pub const ALL: [PluginKind; 3] = [Self::Handler, Self::Aggregator, Self::Pattern];

    /// The world's name in `wit/`.
    pub fn world(self) -> &'static str {
        match self {
            Self::Handler => "handler",
            Self::Aggregator => "aggregator",
            Self::Pattern => "pattern",
        }
    }

    /// The fully qualified name of the interface a component of this kind exports.
    pub fn export_name(self) -> String {
        let interface = match self {
            Self::Handler => "event-handler",
            Self::Aggregator => "windowed-aggregator",
            Self::Pattern => "pattern-matcher",
        };
        format!("weir:plugin/{interface}@{CONTRACT_VERSION}")
    }

    /// The kind whose export is `name`, if any. Versions match as semver does for 0.x:
    /// `0.1.3` is served by a host of `0.1.0`, `0.2.0` is not.
    pub fn from_export(name: &str) -> Option<Self> {
        let (interface, version) = name.split_once('@')?;
        if compatible_series(version) != compatible_series(CONTRACT_VERSION) {
            return None;
        }
        Self::ALL
            .into_iter()
            .find(|kind| kind.export_name().split_once('@').map(|(i, _)| i) == Some(interface))
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.world())
    }
}

/// The part of a version that must match: `major` for 1.0 and later, `0.minor` before.
fn compatible_series(version: &str) -> (&str, &str) {
    let mut parts = version.split('.');
    let major = parts.next().unwrap_or_default();
    let minor = parts.next().unwrap_or_default();
    if major == "0" {
        (major, minor)
    } else {
        (major, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_match_by_interface_and_compatible_version() {
        assert_eq!(
            PluginKind::from_export("weir:plugin/event-handler@0.1.0"),
            Some(PluginKind::Handler)
        );
        assert_eq!(
            PluginKind::from_export("weir:plugin/pattern-matcher@0.1.7"),
            Some(PluginKind::Pattern)
        );
        assert_eq!(
            PluginKind::from_export("weir:plugin/event-handler@0.2.0"),
            None
        );
        assert_eq!(PluginKind::from_export("weir:plugin/event-handler"), None);
        assert_eq!(PluginKind::from_export("wasi:cli/run@0.2.0"), None);
    }
}
