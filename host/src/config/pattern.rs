//! `type = "pattern"` settings: a keyed stream fed to a `pattern` plugin in event-time order.

use serde::Deserialize;

use super::duration::Duration;
use super::window::{LatePolicy, StateUpgrade};

/// The matcher of a pattern stage: `{ plugin = "NAME", config = {...} }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternMatcher {
    /// The `pattern` plugin.
    pub plugin: String,
    /// Its `init` config.
    #[serde(default = "empty_table")]
    pub config: toml::Table,
    /// What to do when a new version cannot read the per-key state an older one left.
    #[serde(default)]
    pub state_upgrade: StateUpgradeName,
}

fn empty_table() -> toml::Table {
    toml::Table::new()
}

/// `state_upgrade` as written.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StateUpgradeName {
    /// See [`StateUpgrade::KeepOldVersion`].
    #[default]
    KeepOldVersion,
    /// See [`StateUpgrade::Reset`].
    Reset,
}

impl From<StateUpgradeName> for StateUpgrade {
    fn from(name: StateUpgradeName) -> Self {
        match name {
            StateUpgradeName::KeepOldVersion => Self::KeepOldVersion,
            StateUpgradeName::Reset => Self::Reset,
        }
    }
}

/// `type = "pattern"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternStageConfig {
    /// Sources or stages this stage reads from.
    pub inputs: Vec<String>,
    /// Payload fields (dotted paths) whose values make the key; none: one key for all.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// The matcher.
    pub pattern: PatternMatcher,
    /// A payload field holding the event time (ms since the epoch); else the event's time.
    #[serde(default)]
    pub time_field: Option<String>,
    /// How far behind the latest event time an event may come: events are held this long
    /// and fed to the matcher in event-time order.
    #[serde(default = "zero")]
    pub out_of_orderness: Duration,
    /// With no event for this long, an input stops holding event time back.
    #[serde(default = "idle")]
    pub idle_timeout: Duration,
    /// What becomes of events behind the watermark.
    #[serde(default)]
    pub late: LatePolicy,
    /// At most this many keys with state per worker; events beyond go where late ones go.
    #[serde(default = "max_keys")]
    pub max_keys: usize,
    /// Workers; events are split among them by their `group_by` values.
    #[serde(default = "one")]
    pub parallelism: usize,
}

fn zero() -> Duration {
    Duration::from_millis(0)
}

fn idle() -> Duration {
    Duration::from_secs(30)
}

fn max_keys() -> usize {
    1_000_000
}

fn one() -> usize {
    1
}
