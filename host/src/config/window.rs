//! `type = "window"` settings: the window shape, event time and lateness, and the named
//! aggregations, read into what the window engine takes.

use serde::{Deserialize, Deserializer};

use super::duration::Duration;
use crate::operators::window::{AggKind, AggSpec, WindowKind};

/// The window shape as written: `{ tumbling = "1m" }`, `{ sliding = "10m", every = "1m" }`,
/// `{ session = "30s" }`, `{ count = 100 }` or `{ global = true }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowShape(pub WindowKind);

const SHAPES: &str = "{ tumbling = \"1m\" }, { sliding = \"10m\", every = \"1m\" }, { session = \"30s\" }, { count = 100 } or { global = true }";

fn millis(text: &str) -> Result<i64, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("bad duration {text:?} ({e})"))?;
    match i64::try_from(d.as_millis()) {
        Ok(ms) if ms > 0 => Ok(ms),
        _ => Err(format!("duration {text:?} must be at least 1ms")),
    }
}

impl WindowShape {
    fn from_table(table: &toml::Table) -> Result<Self, String> {
        let text = |key: &str| match table.get(key) {
            Some(toml::Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(format!("{key} is a {}, not a duration", other.type_str())),
            None => Ok(None),
        };
        let known = ["tumbling", "sliding", "every", "session", "count", "global"];
        if let Some(global) = table.get("global") {
            return match (global, table.len()) {
                (toml::Value::Boolean(true), 1) => Ok(Self(WindowKind::Global)),
                _ => Err(format!(
                    "a global window is written {{ global = true }}, alone; or write {SHAPES}"
                )),
            };
        }
        if let Some(unknown) = table.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!(
                "window has an unknown key {unknown:?}; write {SHAPES}"
            ));
        }
        let kind = match (
            text("tumbling")?,
            text("sliding")?,
            text("session")?,
            table.get("count"),
        ) {
            (Some(size), None, None, None) if !table.contains_key("every") => {
                WindowKind::Tumbling {
                    size: millis(size)?,
                }
            }
            (None, Some(size), None, None) => {
                let every = text("every")?
                    .ok_or("a sliding window needs `every`, the distance between window starts")?;
                let (size, slide) = (millis(size)?, millis(every)?);
                if slide > size {
                    return Err(format!(
                        "a sliding window's `every` ({every}) is longer than the window: events between windows would be in none"
                    ));
                }
                WindowKind::Sliding { size, slide }
            }
            (None, None, Some(gap), None) if !table.contains_key("every") => {
                WindowKind::Session { gap: millis(gap)? }
            }
            (None, None, None, Some(toml::Value::Integer(n))) if !table.contains_key("every") => {
                match u64::try_from(*n) {
                    Ok(size) if size > 0 => WindowKind::Count { size },
                    _ => {
                        return Err(format!(
                            "a count window needs a count of at least 1, not {n}"
                        ));
                    }
                }
            }
            _ => return Err(format!("window is not one of {SHAPES}")),
        };
        Ok(Self(kind))
    }
}

impl<'de> Deserialize<'de> for WindowShape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match toml::Value::deserialize(deserializer)? {
            toml::Value::Table(t) => Self::from_table(&t).map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "window is a {}; write {SHAPES}",
                other.type_str()
            ))),
        }
    }
}

/// The aggregations as written, in their order: `n = "count"`, `total = { sum = "amount" }`,
/// `p95 = { percentile = 0.95, field = "latency" }`, `top = { top_k = 3, field = "page" }`,
/// `s = { plugin = "stats", config = { field = "amount" } }`; and the plugin aggregations
/// among them, which `AggKind::Custom(n)` numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregations(pub Vec<AggSpec>, pub Vec<PluginAggConfig>);

/// An aggregation computed by an `aggregator` plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginAggConfig {
    /// The plugin's name.
    pub plugin: String,
    /// Its `init` config.
    pub config: serde_json::Value,
    /// What to do when a new version cannot read the accumulators an older one left.
    pub state_upgrade: StateUpgrade,
}

/// What a stage does when a reloaded plugin reports that it cannot read the state (the
/// accumulators) the previous version left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateUpgrade {
    /// The previous version goes on serving this stage, with its state, until a version
    /// that reads it is dropped in.
    #[default]
    KeepOldVersion,
    /// The new version serves; each accumulator it cannot read starts over empty.
    Reset,
}

const FORMS: &str = "\"count\", { plugin = \"NAME\", config = { ... } }, { count = \"FIELD\" }, { sum | avg | min | max | first | last | stddev | variance | distinct_count = \"FIELD\" }, { percentile = 0.95, field = \"FIELD\" } or { top_k = 3, field = \"FIELD\" }";

fn aggregation(
    name: &str,
    value: &toml::Value,
    plugins: &mut Vec<PluginAggConfig>,
) -> Result<AggSpec, String> {
    let spec = |kind, field: Option<&str>| AggSpec {
        name: name.to_owned(),
        kind,
        field: field.map(str::to_owned),
    };
    let table = match value {
        toml::Value::String(s) if s == "count" => return Ok(spec(AggKind::Count, None)),
        toml::Value::Table(t) => t,
        _ => return Err(format!("aggregation {name:?} is not one of {FORMS}")),
    };
    let field = |key: &str| match table.get(key) {
        Some(toml::Value::String(f)) if !f.is_empty() => Ok(f.as_str()),
        _ => Err(format!("aggregation {name:?} needs {key} = \"FIELD\"")),
    };
    let only = |keys: &[&str]| match table.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(extra) => Err(format!(
            "aggregation {name:?} has an unknown key {extra:?}; write {FORMS}"
        )),
        None => Ok(()),
    };
    if let Some(plugin) = table.get("plugin") {
        only(&["plugin", "config", "state_upgrade"])?;
        let state_upgrade = match table.get("state_upgrade").map(|v| v.as_str()) {
            None | Some(Some("keep_old_version")) => StateUpgrade::KeepOldVersion,
            Some(Some("reset")) => StateUpgrade::Reset,
            Some(_) => {
                return Err(format!(
                    "aggregation {name:?}: state_upgrade is \"keep_old_version\" or \"reset\""
                ));
            }
        };
        let Some(plugin) = plugin.as_str().filter(|p| !p.is_empty()) else {
            return Err(format!(
                "aggregation {name:?}: plugin is the name of an aggregator plugin"
            ));
        };
        let config = match table.get("config") {
            None => serde_json::Value::Object(serde_json::Map::new()),
            Some(toml::Value::Table(t)) => serde_json::to_value(t).map_err(|e| e.to_string())?,
            Some(_) => {
                return Err(format!(
                    "aggregation {name:?}: config is a table, like config = {{ field = \"amount\" }}"
                ));
            }
        };
        let n = u16::try_from(plugins.len()).map_err(|_| "too many plugin aggregations")?;
        plugins.push(PluginAggConfig {
            plugin: plugin.to_owned(),
            config,
            state_upgrade,
        });
        return Ok(AggSpec {
            name: name.to_owned(),
            kind: AggKind::Custom(n),
            field: None,
        });
    }
    let simple = [
        ("count", AggKind::Count),
        ("sum", AggKind::Sum),
        ("avg", AggKind::Avg),
        ("min", AggKind::Min),
        ("max", AggKind::Max),
        ("first", AggKind::First),
        ("last", AggKind::Last),
        ("stddev", AggKind::Stddev),
        ("variance", AggKind::Variance),
        ("distinct_count", AggKind::DistinctCount),
    ];
    if let Some((key, kind)) = simple.iter().find(|(key, _)| table.contains_key(*key)) {
        only(&[key])?;
        return Ok(spec(*kind, Some(field(key)?)));
    }
    if let Some(q) = table.get("percentile") {
        only(&["percentile", "field"])?;
        let q = match q {
            toml::Value::Float(q) if (0.0..=1.0).contains(q) => *q,
            toml::Value::Integer(q @ (0 | 1)) => *q as f64,
            _ => {
                return Err(format!(
                    "aggregation {name:?}: percentile is a quantile from 0 to 1, like 0.95"
                ));
            }
        };
        return Ok(spec(AggKind::Percentile(q), Some(field("field")?)));
    }
    if let Some(k) = table.get("top_k") {
        only(&["top_k", "field"])?;
        let k = match k {
            toml::Value::Integer(k) if *k >= 1 => *k as usize,
            _ => {
                return Err(format!(
                    "aggregation {name:?}: top_k is a count of at least 1"
                ));
            }
        };
        return Ok(spec(AggKind::TopK(k), Some(field("field")?)));
    }
    Err(format!("aggregation {name:?} is not one of {FORMS}"))
}

impl<'de> Deserialize<'de> for Aggregations {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = toml::Table::deserialize(deserializer)?;
        if table.is_empty() {
            return Err(serde::de::Error::custom(
                "aggregations is empty; name at least one, like n = \"count\" or total = { sum = \"amount\" }",
            ));
        }
        let reserved = ["window_start", "window_end", "firing"];
        let mut plugins = Vec::new();
        let specs = table
            .iter()
            .map(|(name, value)| {
                if reserved.contains(&name.as_str()) {
                    return Err(format!(
                        "aggregation name {name:?} is taken by the window's own output fields"
                    ));
                }
                aggregation(name, value, &mut plugins)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(serde::de::Error::custom)?;
        Ok(Self(specs, plugins))
    }
}

/// What becomes of an event whose every window is past its allowed lateness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatePolicy {
    /// To the dead-letter sink, with the reason.
    #[default]
    DeadLetter,
    /// Dropped, and counted.
    Drop,
    /// To the stage's `late` output (`STAGE.late`).
    Output,
}

/// When results are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmitMode {
    /// When the watermark passes a window's end, then again (as an update) for each late
    /// event within the allowed lateness, plus any early firings.
    #[default]
    Updates,
    /// Once per window, when it closes for good (its end plus the allowed lateness), with
    /// every event it will ever hold.
    Final,
}

/// `type = "window"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowStageConfig {
    /// Sources or stages this stage reads from.
    pub inputs: Vec<String>,
    /// Payload fields (dotted paths) whose values make the key; none: one key for all.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// The window shape.
    pub window: WindowShape,
    /// A payload field holding the event time (ms since the epoch); else the event's time.
    #[serde(default)]
    pub time_field: Option<String>,
    /// Windows on processing time: each event is timed by the clock when the stage takes
    /// it, and nothing is ever late.
    #[serde(default)]
    pub processing_time: bool,
    /// How far behind the latest event time an event may come and still be on time.
    #[serde(default = "zero")]
    pub out_of_orderness: Duration,
    /// How long a fired window still takes late events, each firing it again as an update.
    #[serde(default = "zero")]
    pub allowed_lateness: Duration,
    /// With no event for this long, the watermark moves on to the latest event time, so an
    /// idle input does not hold windows open for ever.
    #[serde(default = "idle")]
    pub idle_timeout: Duration,
    /// Early results of open windows this often (off when not set).
    #[serde(default)]
    pub early_every: Option<Duration>,
    /// An early result of a window each time this many more events are in it.
    #[serde(default)]
    pub early_count: Option<u64>,
    /// `updates` (default) or `final`.
    #[serde(default)]
    pub emit: EmitMode,
    /// What becomes of events too late for every window they fall in.
    #[serde(default)]
    pub late: LatePolicy,
    /// The named results of each window.
    pub aggregations: Aggregations,
    /// At most this many keys with open windows per worker; events beyond go where `late`
    /// events go, with the reason.
    #[serde(default = "max_keys")]
    pub max_keys: usize,
    /// At most this many open windows per worker, likewise.
    #[serde(default = "max_windows")]
    pub max_windows: usize,
    /// A condition over each result (its key fields, `window_start`, `window_end`, the
    /// named results, `firing`); results it does not hold for are not emitted.
    #[serde(default)]
    pub having: Option<String>,
    /// Workers; events are split among them by their `group_by` values.
    #[serde(default = "one")]
    pub parallelism: usize,
}

fn one() -> usize {
    1
}

fn max_keys() -> usize {
    1_000_000
}

fn max_windows() -> usize {
    4_000_000
}

fn zero() -> Duration {
    Duration::from_millis(0)
}

fn idle() -> Duration {
    Duration::from_secs(30)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WindowStageConfig, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn a_full_window_stage_reads_into_the_engines_terms() {
        let c = parse(
            r#"
inputs = ["in"]
group_by = ["user", "device.kind"]
window = { sliding = "10m", every = "1m" }
time_field = "ts"
out_of_orderness = "5s"
allowed_lateness = "1m"
late = "output"
aggregations = { n = "count", total = { sum = "amount" }, p95 = { percentile = 0.95, field = "latency" }, pages = { top_k = 3, field = "page" }, users = { distinct_count = "user" } }
"#,
        )
        .expect("parses");
        assert_eq!(
            c.window.0,
            WindowKind::Sliding {
                size: 600_000,
                slide: 60_000
            }
        );
        assert_eq!(c.group_by, ["user", "device.kind"]);
        assert_eq!(c.out_of_orderness.0.as_millis(), 5_000);
        assert_eq!(c.late, LatePolicy::Output);
        let names: Vec<&str> = c.aggregations.0.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            ["n", "total", "p95", "pages", "users"],
            "in the order written"
        );
        assert_eq!(c.aggregations.0[2].kind, AggKind::Percentile(0.95));
        assert_eq!(c.aggregations.0[2].field.as_deref(), Some("latency"));
        assert_eq!(c.aggregations.0[3].kind, AggKind::TopK(3));
        assert_eq!(c.aggregations.0[0].field, None);
        assert_eq!((c.max_keys, c.max_windows), (1_000_000, 4_000_000));
    }

    #[test]
    fn every_window_shape_reads() {
        let shape = |w: &str| {
            parse(&format!(
                "inputs = [\"in\"]\nwindow = {w}\naggregations = {{ n = \"count\" }}"
            ))
            .map(|c| c.window.0)
        };
        assert_eq!(
            shape(r#"{ tumbling = "1m" }"#),
            Ok(WindowKind::Tumbling { size: 60_000 })
        );
        assert_eq!(
            shape(r#"{ session = "30s" }"#),
            Ok(WindowKind::Session { gap: 30_000 })
        );
        assert_eq!(
            shape("{ count = 100 }"),
            Ok(WindowKind::Count { size: 100 })
        );
        assert_eq!(shape("{ global = true }"), Ok(WindowKind::Global));
        assert!(shape("{ global = false }").is_err_and(|e| e.contains("global = true")));
        assert!(shape(r#"{ global = true, tumbling = "1m" }"#).is_err_and(|e| e.contains("alone")));
    }

    #[test]
    fn mistakes_say_what_would_be_right() {
        let error = |w: &str, aggs: &str| {
            parse(&format!(
                "inputs = [\"in\"]\nwindow = {w}\naggregations = {aggs}"
            ))
            .expect_err("refused")
        };
        let n = "{ n = \"count\" }";
        assert!(error(r#"{ sliding = "1m" }"#, n).contains("needs `every`"));
        assert!(error(r#"{ sliding = "1m", every = "2m" }"#, n).contains("longer than the window"));
        assert!(error(r#"{ tumbling = "1m", session = "5s" }"#, n).contains("tumbling = \"1m\""));
        assert!(error(r#"{ tumbling = "soon" }"#, n).contains("bad duration"));
        assert!(error("{ count = 0 }", n).contains("at least 1"));
        assert!(error(r#""1m""#, n).contains("window is a string"));
        let tumbling = r#"{ tumbling = "1m" }"#;
        assert!(error(tumbling, "{}").contains("is empty"));
        assert!(
            error(tumbling, r#"{ x = { median = "v" } }"#)
                .contains("aggregation \"x\" is not one of")
        );
        assert!(
            error(tumbling, r#"{ x = { percentile = 95, field = "v" } }"#).contains("from 0 to 1")
        );
        assert!(error(tumbling, r#"{ x = { percentile = 0.5 } }"#).contains("needs field"));
        assert!(
            error(tumbling, r#"{ x = { sum = "v", field = "w" } }"#)
                .contains("unknown key \"field\"")
        );
        assert!(error(tumbling, r#"{ window_start = "count" }"#).contains("taken"));
    }
}
