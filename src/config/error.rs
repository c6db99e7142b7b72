//! [`ConfigError`]: every way a configuration can be refused, each naming the dotted key, and
//! the TOML error position turned into that key.
//!
//! Section validators keep their own typed errors (`CalendarError`, `NumbersConfigError`,
//! `TrackerConfigError`); the `From` impls here read the key out of the variant, never out of
//! the message text. Nothing here prints the AMI secret, whatever type it was written as.

use std::path::{Path, PathBuf};

use crate::callbacks::number::NumbersConfigError;
use crate::callbacks::sla::CalendarError;
use crate::calls::config::TrackerConfigError;

/// Everything `check-config`, `run`, `replay` and a SIGHUP reload can fail on.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The configuration file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax or type error, or an unknown key; `field` is the dotted key at the error.
    #[error("{path}: {field}: {message} (line {line}, column {column})")]
    Parse {
        /// The configuration file.
        path: PathBuf,
        /// Dotted key, e.g. `ami.port` or `ami.foo` for an unknown key in `[ami]`.
        field: String,
        /// The parser's explanation (never the secret's value).
        message: String,
        /// 1-based line of the offending text.
        line: usize,
        /// 1-based column of the offending text.
        column: usize,
    },
    /// A value parsed but is not acceptable.
    #[error("{field}: {reason}")]
    Invalid {
        /// Dotted key, e.g. `calendar.hours.mon`.
        field: String,
        /// What is wrong with it, quoting the value (never a secret).
        reason: String,
    },
    /// The AMI secret could not be read from its file or credential.
    #[error("{field}: cannot read {}: {source}", path.display())]
    SecretFile {
        /// `ami.secret_file`, or `ami.secret` for the systemd credential.
        field: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl ConfigError {
    /// The dotted key the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Parse { field, .. }
            | ConfigError::Invalid { field, .. }
            | ConfigError::SecretFile { field, .. } => Some(field),
        }
    }
}

/// A value error naming `field`.
pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

impl From<CalendarError> for ConfigError {
    fn from(e: CalendarError) -> Self {
        match e {
            CalendarError::UnknownTimezone { value } => invalid(
                "calendar.timezone",
                format!("unknown IANA timezone {value:?}"),
            ),
            CalendarError::BadHours { day, value, reason } => invalid(
                format!("calendar.hours.{day}"),
                format!("{value:?}: {reason}"),
            ),
            CalendarError::NoWorkingDay => invalid(
                "calendar.hours",
                "every weekday is closed; at least one needs hours",
            ),
        }
    }
}

impl From<NumbersConfigError> for ConfigError {
    fn from(e: NumbersConfigError) -> Self {
        match e {
            NumbersConfigError::NotDigits { field, value } => invalid(
                format!("numbers.{field}"),
                format!("{value:?} must contain digits only"),
            ),
        }
    }
}

impl From<TrackerConfigError> for ConfigError {
    fn from(e: TrackerConfigError) -> Self {
        invalid(format!("calls.{}", e.field), e.reason)
    }
}

/// Keys whose value is never repeated in an error, whatever the parser says about it.
fn is_secret_key(field: &str) -> bool {
    field == "ami.secret"
}

/// Names the dotted key at the error position: the key on that line, prefixed by the nearest
/// table header above it (TOML errors carry a byte span, not a key path).
pub(crate) fn parse_error(src: &str, origin: &Path, err: &toml::de::Error) -> ConfigError {
    let offset = err.span().map(|s| s.start).unwrap_or(0).min(src.len());
    let line_start = src[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = src[..offset].matches('\n').count() + 1;
    let column = src[line_start..offset].chars().count() + 1;
    let line_text = src[line_start..].split('\n').next().unwrap_or("").trim();
    let table = |text: &str| -> Option<String> {
        let t = text.strip_prefix('[')?;
        let t = t.strip_prefix('[').unwrap_or(t);
        let end = t.find(']')?;
        Some(t[..end].trim().to_string())
    };
    let field = if let Some(name) = table(line_text) {
        name
    } else {
        let key = line_text
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"').to_string())
            .unwrap_or_default();
        let header = src[..line_start]
            .lines()
            .rev()
            .find_map(|l| table(l.trim()));
        match (header, key.is_empty()) {
            (Some(h), false) => format!("{h}.{key}"),
            (Some(h), true) => h,
            (None, false) => key,
            (None, true) => "(top level)".to_string(),
        }
    };
    // Whatever the parser says about the secret (a type or syntax error) might quote it.
    let message = if is_secret_key(&field) {
        "must be a non-empty quoted string on one line (the value is not shown)".to_string()
    } else {
        err.message().trim().to_string()
    };
    ConfigError::Parse {
        path: origin.to_path_buf(),
        field,
        message,
        line,
        column,
    }
}
