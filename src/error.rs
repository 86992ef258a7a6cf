//! The library's errors. Every message names what was wrong and, for settings, the allowed range.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A setting outside its allowed range.
    #[error("invalid {field} = {value}: allowed {allowed}")]
    Invalid { field: String, value: String, allowed: String },
    /// Malformed or inconsistent data (CSV, params or batch files).
    #[error("{0}")]
    Data(String),
    /// JSON that does not parse or does not fit the expected shape.
    #[error("malformed JSON in {what}: {message}")]
    Json { what: String, message: String },
    /// A file that cannot be read or written.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// The GPU engine failed (no adapter, validation error, out of memory, device lost).
    #[error("GPU engine: {0}")]
    Gpu(String),
    /// The loss or the weights stopped being finite.
    #[error("diverged at step {step}: {what} is not finite (try a smaller learning rate or ρ)")]
    Diverged { step: u64, what: String },
}

impl Error {
    pub fn invalid(field: &str, value: impl std::fmt::Display, allowed: impl Into<String>) -> Self {
        Error::Invalid { field: field.to_string(), value: value.to_string(), allowed: allowed.into() }
    }

    pub fn json(what: &str, err: serde_json::Error) -> Self {
        Error::Json { what: what.to_string(), message: err.to_string() }
    }

    pub fn io(path: &str, err: std::io::Error) -> Self {
        Error::Io { path: path.to_string(), message: err.to_string() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
