//! The configuration a stage hands to `init`: a JSON object with typed accessors whose
//! errors name the key and say what is expected.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::Error;

/// A plugin's configuration.
///
/// ```
/// use weir_plugin_sdk::Config;
/// let config = Config::parse(r#"{"field":"amount","min":"50"}"#).unwrap();
/// assert_eq!(config.str("field").unwrap(), "amount");
/// assert_eq!(config.f64("min").unwrap(), 50.0);
/// assert!(config.f64("max").is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Config {
    values: Map<String, Value>,
}

impl Config {
    /// Parses the JSON object the host passes to `init` (empty text is an empty object).
    ///
    /// # Errors
    /// `invalid-config` when the text is not a JSON object.
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        match serde_json::from_str(text) {
            Ok(Value::Object(values)) => Ok(Self { values }),
            Ok(_) => Err(Error::invalid_config("configuration is not a JSON object")),
            Err(e) => Err(Error::invalid_config(format!(
                "configuration is not valid JSON: {e}"
            ))),
        }
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// A required string.
    ///
    /// # Errors
    /// `invalid-config` naming the key when it is missing or not a string.
    pub fn str(&self, key: &str) -> Result<&str, Error> {
        self.opt_str(key)?.ok_or_else(|| missing(key, "a string"))
    }

    /// An optional string.
    ///
    /// # Errors
    /// `invalid-config` naming the key when it is present but not a string.
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>, Error> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong(key, "a string", other)),
        }
    }

    /// A required number; a string holding a number is accepted (command lines pass text).
    ///
    /// # Errors
    /// `invalid-config` naming the key when it is missing or not a number.
    pub fn f64(&self, key: &str) -> Result<f64, Error> {
        self.opt_f64(key)?.ok_or_else(|| missing(key, "a number"))
    }

    /// An optional number.
    ///
    /// # Errors
    /// `invalid-config` naming the key when it is present but not a number.
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>, Error> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| wrong(key, "a number", &Value::String(s.clone()))),
            Some(other) => Err(wrong(key, "a number", other)),
        }
    }

    /// An optional whole number, as [`Config::opt_f64`] but integral and non-negative.
    ///
    /// # Errors
    /// `invalid-config` naming the key when it is present but not a whole number.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, Error> {
        match self.opt_f64(key)? {
            None => Ok(None),
            Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 => Ok(Some(f as u64)),
            Some(f) => Err(Error::invalid_config(format!(
                "config key \"{key}\" must be a whole number of zero or more, not {f}"
            ))),
        }
    }

    /// The whole configuration as a serde type.
    ///
    /// # Errors
    /// `invalid-config` with serde's message, which names the field.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_value(Value::Object(self.values.clone()))
            .map_err(|e| Error::invalid_config(format!("configuration: {e}")))
    }
}

fn missing(key: &str, what: &str) -> Error {
    Error::invalid_config(format!("config key \"{key}\" is required ({what})"))
}

fn wrong(key: &str, what: &str, found: &Value) -> Error {
    Error::invalid_config(format!("config key \"{key}\" must be {what}, not {found}"))
}
