//! `type = "pattern"` settings: a keyed stream matched in event-time order, by declared
//! steps (the FlinkCEP vocabulary) or by a `pattern` plugin.

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
    /// A `pattern` plugin as the matcher (or declare `steps`).
    #[serde(default)]
    pub pattern: Option<PatternMatcher>,
    /// The declared pattern: its steps in order (or name a `pattern` plugin).
    #[serde(default)]
    pub steps: Vec<StepConfig>,
    /// How long a match may take, first event to last; partial matches older than this
    /// are dropped (to `STAGE.timeout` when `timeouts = true`).
    #[serde(default)]
    pub within: Option<Duration>,
    /// Where the next match may start after one is found: `no_skip`, `skip_to_next`,
    /// `skip_past_last_event`, `skip_to_first:STEP` or `skip_to_last:STEP`.
    #[serde(default = "no_skip")]
    pub after_match: String,
    /// Send partial matches that run out of time to the `STAGE.timeout` output.
    #[serde(default)]
    pub timeouts: bool,
    /// At most this many partial matches per key; beyond it the oldest are dropped.
    #[serde(default = "max_partial_matches")]
    pub max_partial_matches: usize,
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

/// How an event follows the one before it in a match.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StepRelation {
    /// Strict contiguity: the very next event of the key.
    Next,
    /// Relaxed contiguity: the next event that matches; others in between are skipped.
    #[default]
    FollowedBy,
    /// Non-deterministic relaxed contiguity: any later event that matches.
    FollowedByAny,
    /// The next event must not match.
    NotNext,
    /// No event may match between the steps around it (or, last, before `within` ends).
    NotFollowedBy,
}

/// Contiguity between the events of one looping step.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LoopContiguity {
    /// Each event right after the one before.
    Consecutive,
    /// The next matching event; others in between are skipped.
    #[default]
    Relaxed,
    /// Any later matching events (every combination).
    Any,
}

/// `times = N` or `times = [MIN, MAX]`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Times {
    /// Exactly this many.
    Exactly(u32),
    /// From the first to the second, inclusive.
    Range(u32, u32),
}

/// One part of an `all_of` step: a named condition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartConfig {
    /// Its name, by which later conditions and the match refer to its event.
    pub name: String,
    /// The condition its event meets.
    #[serde(rename = "where")]
    pub condition: String,
}

/// One step of a declared pattern.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// Its name: the key of its events in a match, and how later conditions refer to them
    /// (`amount > small.amount * 2`).
    pub name: String,
    /// How its first event follows the step before; the negations `not_next` and
    /// `not_followed_by` make this a step that must not occur.
    #[serde(default)]
    pub after: StepRelation,
    /// The condition its events meet (default: any event).
    #[serde(default, rename = "where")]
    pub condition: Option<String>,
    /// Disjunction: its event meets any of these conditions.
    #[serde(default)]
    pub any_of: Vec<String>,
    /// Conjunction: one event for each part, in any order.
    #[serde(default)]
    pub all_of: Vec<PartConfig>,
    /// How many events it takes.
    #[serde(default)]
    pub times: Option<Times>,
    /// One or more events.
    #[serde(default)]
    pub one_or_more: bool,
    /// This many events or more.
    #[serde(default)]
    pub times_or_more: Option<u32>,
    /// It may take no event at all.
    #[serde(default)]
    pub optional: bool,
    /// A looping step keeps taking the events it can rather than handing them on.
    #[serde(default)]
    pub greedy: bool,
    /// Contiguity between a looping step's events.
    #[serde(default, rename = "loop")]
    pub contiguity: LoopContiguity,
    /// A looping step takes no more events once one meets this condition.
    #[serde(default)]
    pub until: Option<String>,
}

fn no_skip() -> String {
    "no_skip".into()
}

fn max_partial_matches() -> usize {
    10_000
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
