//! What a stage runs its plugin with: the stage's own config and limits, with the gaps
//! filled from the plugin's `NAME.toml`, then from `[plugins]`. The two are kept apart so
//! that an edit of `NAME.toml` reaches running stages the way a new version does: it is
//! read again, checked with `init`, and published through the plugin's slot.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::kind::PluginKind;
use super::limits::PluginLimits;

/// `NAME.toml` beside `NAME.wasm`: defaults for every stage using the plugin.
///
/// ```toml
/// timeout = "50ms"
/// memory_mb = 64
/// [config]
/// field = "amount"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginDefaults {
    /// Config keys a stage's own `config` may override.
    #[serde(default)]
    pub config: toml::Table,
    /// CPU time per call, unless the stage sets one.
    #[serde(default)]
    pub timeout: Option<crate::config::Duration>,
    /// Memory cap in MiB, unless the stage sets one.
    #[serde(default)]
    pub memory_mb: Option<u64>,
}

impl PluginDefaults {
    /// The defaults of plugin `name` in `dir` (`NAME.toml`), if the file is there.
    ///
    /// # Errors
    /// `FILE:LINE: message` when the file cannot be read or is not valid.
    pub fn read(dir: &Path, name: &str) -> Result<Option<Self>, String> {
        let path = dir.join(format!("{name}.toml"));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        toml::from_str(&text).map(Some).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            match line {
                Some(line) => format!("{}:{line}: {}", path.display(), e.message().trim()),
                None => format!("{}: {}", path.display(), e.message().trim()),
            }
        })
    }
}

/// A stage's use of a plugin, as the pipeline file states it (before `NAME.toml`).
#[derive(Debug, Clone)]
pub struct PluginUser {
    /// The stage.
    pub stage: String,
    /// The world the stage needs.
    pub kind: PluginKind,
    /// The stage's own config for `init`.
    pub config: serde_json::Value,
    /// The stage's own CPU time per call, if it sets one.
    pub timeout: Option<Duration>,
    /// The stage's own memory cap in MiB, if it sets one.
    pub memory_mb: Option<u64>,
    /// Limits for what neither the stage nor `NAME.toml` sets (`[plugins]`).
    pub fallback: PluginLimits,
}

/// The config and limits an instance starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSettings {
    /// Config for `init`, as JSON.
    pub config: String,
    /// Its limits.
    pub limits: PluginLimits,
}

impl PluginUser {
    /// Stage `stage` using a plugin of `kind` with `config`, its limits from `fallback`.
    pub fn new(
        stage: impl Into<String>,
        kind: PluginKind,
        config: serde_json::Value,
        fallback: PluginLimits,
    ) -> Self {
        Self {
            stage: stage.into(),
            kind,
            config,
            timeout: None,
            memory_mb: None,
            fallback,
        }
    }

    /// What an instance for this stage starts with, given the plugin's `NAME.toml`: the
    /// stage's own keys and limits win, then the file's, then `[plugins]`.
    pub fn settings(&self, defaults: Option<&PluginDefaults>) -> PluginSettings {
        let mut config = self.config.clone();
        if let (Some(defaults), serde_json::Value::Object(own)) = (defaults, &mut config) {
            for (key, value) in &defaults.config {
                if !own.contains_key(key) {
                    let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
                    own.insert(key.clone(), value);
                }
            }
        }
        let timeout = self
            .timeout
            .or_else(|| defaults.and_then(|d| d.timeout).map(|d| d.0))
            .unwrap_or(self.fallback.call_timeout);
        let memory_bytes = self
            .memory_mb
            .or_else(|| defaults.and_then(|d| d.memory_mb))
            .map_or(self.fallback.memory_bytes, |mb| (mb as usize) << 20);
        PluginSettings {
            config: config.to_string(),
            limits: PluginLimits {
                call_timeout: timeout,
                memory_bytes,
                ..self.fallback
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(config: serde_json::Value) -> PluginUser {
        PluginUser::new("s", PluginKind::Handler, config, PluginLimits::default())
    }

    #[test]
    fn the_stage_wins_then_the_file_then_the_pipeline() {
        let defaults: PluginDefaults =
            toml::from_str("timeout = \"50ms\"\n[config]\nfield = \"a\"\nmin = 3\n").unwrap();
        let mut stage = user(serde_json::json!({"min": 5}));
        stage.memory_mb = Some(16);
        let settings = stage.settings(Some(&defaults));
        let config: serde_json::Value = serde_json::from_str(&settings.config).unwrap();
        assert_eq!(config, serde_json::json!({"field": "a", "min": 5}));
        assert_eq!(settings.limits.call_timeout, Duration::from_millis(50));
        assert_eq!(settings.limits.memory_bytes, 16 << 20);

        let bare = stage.settings(None);
        assert_eq!(bare.config, r#"{"min":5}"#);
        assert_eq!(
            bare.limits.call_timeout,
            PluginLimits::default().call_timeout
        );
    }

    #[test]
    fn a_bad_file_names_its_line() {
        let dir = std::env::temp_dir().join(format!("weir-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("p.toml"), "timeout = \"50ms\"\nlimit = 3\n").unwrap();
        let error = PluginDefaults::read(&dir, "p").unwrap_err();
        assert!(
            error.ends_with(
                "p.toml:2: unknown field `limit`, expected one of `config`, `timeout`, `memory_mb`"
            ),
            "{error}"
        );
        assert_eq!(PluginDefaults::read(&dir, "absent"), Ok(None));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
