//! Reading a pipeline file: environment interpolation, TOML parsing, and error reports that
//! name the file, line and key.

use std::fmt;
use std::path::{Path, PathBuf};

use super::model::PipelineConfig;

/// One problem found in a pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// Dotted key path (`stages.big.plugin`); empty for the file as a whole.
    pub key: String,
    /// What is wrong and what would be right.
    pub message: String,
}

/// A pipeline file that cannot be used, with every problem found in it.
#[derive(Debug, Clone)]
pub struct ConfigError {
    /// The file, as given.
    pub file: PathBuf,
    /// The problems, in file order where known.
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    /// One line per problem: `FILE:LINE: KEY: MESSAGE`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file.display())?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
            }
            if !p.key.is_empty() {
                write!(f, ": {}", p.key)?;
            }
            write!(f, ": {}", p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// A parsed pipeline file and the text it came from, for locating keys in later checks.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The configuration.
    pub config: PipelineConfig,
    /// The file, as given.
    pub file: PathBuf,
    text: String,
}

impl LoadedConfig {
    /// A problem at `key` (a dotted path), placed on the line where that key is written.
    pub fn problem(&self, key: &str, message: impl Into<String>) -> ConfigProblem {
        ConfigProblem {
            line: line_of_key(&self.text, key),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// Wraps problems into the error for this file, sorted by line.
    pub fn error(&self, mut problems: Vec<ConfigProblem>) -> ConfigError {
        problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        ConfigError {
            file: self.file.clone(),
            problems,
        }
    }
}

/// Reads and parses the pipeline file at `path`.
///
/// # Errors
/// A [`ConfigError`] when the file cannot be read, names an unset environment variable, or
/// is not a valid pipeline (bad TOML, unknown key, wrong type).
pub fn load_pipeline(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_owned(),
        problems: vec![ConfigProblem {
            line: None,
            key: String::new(),
            message: format!("cannot read the pipeline file: {e}"),
        }],
    })?;
    parse_pipeline(path, &text, |name| std::env::var(name).ok())
}

/// Parses pipeline text, taking `${NAME}` values from `env`; `${NAME:-DEFAULT}` falls back
/// to `DEFAULT` when `NAME` is unset, and `$${` writes a literal `${`.
///
/// # Errors
/// As [`load_pipeline`].
pub fn parse_pipeline(
    file: &Path,
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<LoadedConfig, ConfigError> {
    let error = |problems| ConfigError {
        file: file.to_owned(),
        problems,
    };
    let text = interpolate(text, env).map_err(error)?;
    match toml::from_str::<PipelineConfig>(&text) {
        Ok(config) => Ok(LoadedConfig {
            config,
            file: file.to_owned(),
            text,
        }),
        Err(e) => {
            let line = e.span().map(|span| line_at(&text, span.start));
            let key = e
                .span()
                .and_then(|span| key_at(&text, span.start))
                .unwrap_or_default();
            Err(error(vec![ConfigProblem {
                line,
                key,
                message: e.message().trim().to_owned(),
            }]))
        }
    }
}

fn interpolate(
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<ConfigProblem>> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        if rest[..at].ends_with('$') {
            out.push_str(&rest[..at - 1]);
            out.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let offset = text.len() - rest.len() + at;
        let Some(end) = after.find('}') else {
            problems.push(ConfigProblem {
                line: Some(line_at(text, offset)),
                key: String::new(),
                message: "`${` without a closing `}`: write ${NAME}, or $${ for a literal".into(),
            });
            rest = after;
            continue;
        };
        let (name, default) = match after[..end].split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (&after[..end], None),
        };
        match env(name).or_else(|| default.map(str::to_owned)) {
            Some(value) => out.push_str(&value),
            None => problems.push(ConfigProblem {
                line: Some(line_at(text, offset)),
                key: String::new(),
                message: format!(
                    "environment variable {name} is not set (write ${{{name}:-DEFAULT}} for a fallback)"
                ),
            }),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line where the dotted `key` is written (its last segment), or its nearest written
/// parent's line.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    use toml_edit::{Item, Value};
    let doc = toml_edit::Document::parse(text).ok()?;
    let mut best = None;
    let mut item = doc.as_item();
    for segment in key.split('.') {
        // `steps[2]`: the third element of an array (of tables).
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let found = match item {
            Item::Table(t) => t.get_key_value(name),
            Item::Value(Value::InlineTable(t)) => t.get_key_value(name),
            _ => None,
        };
        let Some((found_key, found)) = found else {
            break;
        };
        if let Some(span) = found_key.span().or_else(|| found.span()) {
            best = Some(line_at(text, span.start));
        }
        item = found;
        if let Some(index) = index {
            match item {
                Item::ArrayOfTables(tables) => {
                    let Some(table) = tables.get(index) else {
                        break;
                    };
                    if let Some(span) = table.span() {
                        best = Some(line_at(text, span.start));
                    }
                    // Keys inside are looked up in this table from here on.
                    return line_in_table(text, table, key, segment).or(best);
                }
                _ => break,
            }
        }
    }
    best
}

/// The line of the rest of `key` (after `segment`) inside an element of an array of tables.
fn line_in_table(text: &str, table: &toml_edit::Table, key: &str, segment: &str) -> Option<usize> {
    let rest = key.split_once(segment)?.1.strip_prefix('.')?;
    let (name, _) = rest.split_once(['.', '[']).unwrap_or((rest, ""));
    let (found_key, found) = table.get_key_value(name)?;
    let span = found_key.span().or_else(|| found.span())?;
    Some(line_at(text, span.start))
}

/// The dotted key path at `offset`: the last `[header]` at or before it, and the key
/// assigned on the line of `offset` when there is one.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |n| n + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |n| offset + n);
    let table = text[..line_end].lines().rev().find_map(|line| {
        let line = line.trim();
        let header = line.strip_prefix('[')?.strip_suffix(']')?;
        Some(header.trim_matches(['[', ']']).trim().to_owned())
    });
    let assigned = text[line_start..line_end]
        .split_once('=')
        .map(|(key, _)| key.trim())
        .filter(|key| {
            !key.is_empty() && !key.starts_with('[') && !key.contains(char::is_whitespace)
        });
    match (table, assigned) {
        (Some(table), Some(key)) => Some(format!("{table}.{key}")),
        (Some(table), None) => Some(table),
        (None, key) => key.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LoadedConfig, ConfigError> {
        parse_pipeline(Path::new("p.toml"), text, |n| {
            (n == "SECRET").then(|| "s3cret".to_owned())
        })
    }

    #[test]
    fn unknown_key_names_line_and_table() {
        let err = parse("[sources.in]\ntype = \"file\"\npth = \"x\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("p.toml:"), "{text}");
        assert!(text.contains("sources.in"), "{text}");
        assert!(text.contains("unknown field `pth`"), "{text}");
    }

    #[test]
    fn environment_values_are_interpolated_and_missing_ones_named() {
        let ok = parse("[state]\ndir = \"${SECRET}\"\n").unwrap();
        assert_eq!(ok.config.state.dir, PathBuf::from("s3cret"));
        let literal = parse("[state]\ndir = \"$${SECRET}\"\n").unwrap();
        assert_eq!(literal.config.state.dir, PathBuf::from("${SECRET}"));
        let err = parse("\n[state]\ndir = \"${NOPE}\"\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "p.toml:3: environment variable NOPE is not set (write ${NOPE:-DEFAULT} for a fallback)"
        );
        let fallback = parse("[state]\ndir = \"${NOPE:-here}\"\n").unwrap();
        assert_eq!(fallback.config.state.dir, PathBuf::from("here"));
    }

    struct Plugins;

    impl crate::config::PluginCatalog for Plugins {
        fn kind(&mut self, name: &str) -> Result<crate::plugins::PluginKind, String> {
            match name {
                "stats" => Ok(crate::plugins::PluginKind::Aggregator),
                "threshold" => Ok(crate::plugins::PluginKind::Handler),
                _ => Err(format!("no plugin {name:?}")),
            }
        }
    }

    #[test]
    fn window_triggers_and_plugins_that_cannot_work_are_refused() {
        let problems = |stage: &str| {
            let text = format!(
                "[sources.in]\ntype = \"stdin\"\n[sinks.out]\ntype = \"null\"\ninputs = [\"w\"]\n[stages.w]\ntype = \"window\"\ninputs = [\"in\"]\n{stage}\n"
            );
            match parse(&text).unwrap().validate(&mut Plugins) {
                Ok(()) => String::new(),
                Err(e) => e.to_string(),
            }
        };
        let n = "aggregations = { n = \"count\" }";
        assert!(
            problems(&format!("window = {{ global = true }}\n{n}"))
                .contains("fires only by its triggers")
        );
        assert_eq!(
            problems(&format!(
                "window = {{ global = true }}\nearly_count = 10\n{n}"
            )),
            ""
        );
        assert!(
            problems(&format!(
                "window = {{ tumbling = \"1m\" }}\nemit = \"final\"\nearly_every = \"1s\"\n{n}"
            ))
            .contains("final emits each window once")
        );
        assert!(
            problems(&format!("window = {{ count = 5 }}\nearly_count = 2\n{n}"))
                .contains("fires by its count")
        );
        let plugin = |name: &str| {
            problems(&format!(
                "window = {{ tumbling = \"1m\" }}\naggregations = {{ s = {{ plugin = \"{name}\" }} }}"
            ))
        };
        assert!(
            problems(&format!(
                "window = {{ tumbling = \"1m\" }}\nearly_every = \"0s\"\n{n}"
            ))
            .contains("early_every")
        );
        assert_eq!(plugin("stats"), "");
        assert!(
            plugin("threshold").contains("not aggregator"),
            "{}",
            plugin("threshold")
        );
        assert!(plugin("nope").contains("no plugin \"nope\""));
    }

    #[test]
    fn an_exactly_once_source_before_a_window_and_zero_intervals_are_refused() {
        let text = "[state]\nstage_checkpoint_interval = \"0s\"\n[sources.k]\ntype = \"kafka\"\nbrokers = \"127.0.0.1:9092\"\ntopics = [\"t\"]\ngroup = \"g\"\nexactly_once = true\n[stages.f]\ntype = \"filter\"\ninputs = [\"k\"]\ncondition = \"a > 1\"\n[stages.w]\ntype = \"window\"\ninputs = [\"f\"]\nwindow = { tumbling = \"1m\" }\naggregations = { n = \"count\" }\n[sinks.out]\ntype = \"null\"\ninputs = [\"w\"]\n";
        let error = parse(text)
            .unwrap()
            .validate(&mut Plugins)
            .unwrap_err()
            .to_string();
        assert!(error.contains("source \"k\" is exactly_once"), "{error}");
        assert!(
            error.contains("stage_checkpoint_interval must be more than zero"),
            "{error}"
        );
    }

    #[test]
    fn problems_are_placed_on_their_key() {
        let loaded =
            parse("[sinks.out]\ntype = \"null\"\n\n[stages.big]\ntype = \"filter\"\ncondition = \"a > 1\"\ninputs = [\"x\"]\n")
                .unwrap();
        let p = loaded.problem("stages.big.inputs", "no such input");
        assert_eq!(p.line, Some(7));
        let p = loaded.problem("stages.big", "whole stage");
        assert_eq!(p.line, Some(4));
    }
}
