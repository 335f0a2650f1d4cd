//! The error a plugin returns: a category and one line for the operator.

use std::fmt;

use crate::bindings::types;

/// What kind of problem a plugin reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The configuration is missing a key or has a bad value.
    InvalidConfig,
    /// An input event cannot be handled (bad encoding, missing field, wrong type).
    InvalidInput,
    /// Held state was written by an incompatible version of the plugin.
    UnsupportedState,
    /// Anything else.
    Internal,
}

/// An error returned to the host as a value (never a trap).
///
/// ```
/// use weir_plugin_sdk::Error;
/// let e = Error::invalid_input("field \"amount\" is not a number");
/// assert_eq!(e.to_string(), "invalid-input: field \"amount\" is not a number");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Its category.
    pub code: ErrorCode,
    /// One line naming the field or key at fault.
    pub message: String,
}

impl Error {
    /// An error of category `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The configuration is missing a key or has a bad value.
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidConfig, message)
    }

    /// An input event cannot be handled.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    /// Held state cannot be read by this version.
    pub fn unsupported_state(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnsupportedState, message)
    }

    /// Anything else.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = match self.code {
            ErrorCode::InvalidConfig => "invalid-config",
            ErrorCode::InvalidInput => "invalid-input",
            ErrorCode::UnsupportedState => "unsupported-state",
            ErrorCode::Internal => "internal",
        };
        write!(f, "{code}: {}", self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for types::Error {
    fn from(error: Error) -> Self {
        types::Error {
            code: match error.code {
                ErrorCode::InvalidConfig => types::ErrorCode::InvalidConfig,
                ErrorCode::InvalidInput => types::ErrorCode::InvalidInput,
                ErrorCode::UnsupportedState => types::ErrorCode::UnsupportedState,
                ErrorCode::Internal => types::ErrorCode::Internal,
            },
            message: error.message,
        }
    }
}

impl From<crate::msgpack::DecodeError> for Error {
    fn from(error: crate::msgpack::DecodeError) -> Self {
        Self::invalid_input(error.to_string())
    }
}
