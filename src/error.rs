//! The library's errors. Every message names what was wrong and, for settings, the allowed range;
//! every message is one line (values and paths from the user are quoted with escapes).

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
    /// A file that cannot be read.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// A file that cannot be written (a failure of the machine, not of the input).
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
    /// The GPU engine failed (no adapter, validation error, out of memory, device lost).
    #[error("GPU engine: {0}")]
    Gpu(String),
    /// Work that was started and did not finish (a trial of an experiment).
    #[error("{what} failed: {message}")]
    Failed { what: String, message: String },
    /// The loss or the weights stopped being finite.
    #[error("diverged at step {step}: {what} is not finite (try a smaller learning rate or ρ)")]
    Diverged { step: u64, what: String },
}

/// What the user typed or a file held, fit for a one-line message: numbers as they are,
/// anything else quoted with escapes (a newline cannot split the message), at most 200 chars.
pub fn quoted(value: &str) -> String {
    let plain = !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || ".,+-_[] ".contains(c)) && value.trim() == value;
    let shown: String = if value.chars().count() > 200 { format!("{}…", value.chars().take(200).collect::<String>()) } else { value.to_string() };
    match value.parse::<f64>() {
        // 1e-320 prints as 320 digits: numbers that long are shown in exponent form.
        Ok(v) if plain && value.len() > 16 && v.is_finite() => format!("{v:e}"),
        Ok(_) if plain => shown,
        _ if plain && value.starts_with('[') => shown,
        _ => format!("{shown:?}"),
    }
}

/// A path for a message: as it is when it is plain, quoted with escapes otherwise.
pub fn path_shown(path: &str) -> String {
    if path.is_empty() {
        "\"\" (an empty path)".to_string()
    } else if path.chars().any(|c| c.is_control() || c == '"') || path.trim() != path {
        format!("{path:?}")
    } else {
        path.to_string()
    }
}

impl Error {
    pub fn invalid(field: &str, value: impl std::fmt::Display, allowed: impl Into<String>) -> Self {
        Error::Invalid { field: field.to_string(), value: quoted(&value.to_string()), allowed: one_line(&allowed.into()) }
    }

    pub fn json(what: &str, err: serde_json::Error) -> Self {
        Error::Json { what: path_shown(what), message: one_line(&err.to_string()) }
    }

    pub fn io(path: &str, err: std::io::Error) -> Self {
        Error::Io { path: path_shown(path), message: err.to_string() }
    }

    pub fn write(path: &str, err: std::io::Error) -> Self {
        Error::Write { path: path_shown(path), message: err.to_string() }
    }

    /// The process exit status this error ends a command with: 2 when the input is at fault
    /// (flags, files and their contents: nothing was done), 1 when the work itself failed
    /// (writing the output, the GPU, a diverged or failed run).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Invalid { .. } | Error::Data(_) | Error::Json { .. } | Error::Io { .. } => 2,
            Error::Write { .. } | Error::Gpu(_) | Error::Diverged { .. } | Error::Failed { .. } => 1,
        }
    }
}

/// Line breaks and other control characters as escapes, so a message stays one line.
pub fn one_line(text: &str) -> String {
    if text.chars().any(char::is_control) { text.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect() } else { text.to_string() }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
