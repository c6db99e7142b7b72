//! `[ami]`: the section is [`ClientConfig`] itself; here are its range checks and the secret's
//! three sources (`secret`, then `secret_file`, then the systemd credential `ami-secret`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{ConfigError, invalid};
use crate::ami::ClientConfig;
use crate::secret::Secret;

/// Name of the systemd credential holding the AMI secret (`LoadCredential=ami-secret:...`).
pub const CREDENTIAL_NAME: &str = "ami-secret";

/// Where the AMI secret came from (shown by `check-config`, never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `ami.secret` in the file.
    Inline,
    /// `ami.secret_file`.
    File(PathBuf),
    /// `$CREDENTIALS_DIRECTORY/ami-secret` (systemd `LoadCredential`).
    Credential(PathBuf),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Inline => f.write_str("ami.secret"),
            SecretSource::File(p) => write!(f, "secret_file {}", p.display()),
            SecretSource::Credential(p) => write!(f, "credential {}", p.display()),
        }
    }
}

/// Fills `ami.secret` from its source in the documented order and says which one it was;
/// `Ok(None)` (secret left empty) when none is configured.
pub fn resolve_secret(
    ami: &mut ClientConfig,
    credentials_dir: Option<&Path>,
) -> Result<Option<SecretSource>, ConfigError> {
    if !ami.secret.is_empty() {
        return Ok(Some(SecretSource::Inline));
    }
    let (raw, source, field) = if let Some(path) = &ami.secret_file {
        (
            read_secret_file("ami.secret_file", path)?,
            SecretSource::File(path.clone()),
            "ami.secret_file",
        )
    } else if let Some(dir) = credentials_dir {
        let path = dir.join(CREDENTIAL_NAME);
        (
            read_secret_file("ami.secret", &path)?,
            SecretSource::Credential(path),
            "ami.secret",
        )
    } else {
        return Ok(None);
    };
    let trimmed = raw.strip_suffix('\n').unwrap_or(&raw);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(invalid(field, format!("the secret from {source} is empty")));
    }
    if trimmed.contains(['\r', '\n']) {
        return Err(invalid(
            field,
            format!("the secret from {source} contains a line break"),
        ));
    }
    ami.secret = Secret::new(trimmed);
    Ok(Some(source))
}

fn read_secret_file(field: &str, path: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::SecretFile {
        field: field.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes)
        .map_err(|_| invalid(field, format!("{} is not UTF-8 text", path.display())))
}

/// Checks what serde cannot; the error names the key.
pub fn validate(ami: &ClientConfig) -> Result<(), ConfigError> {
    if ami.host.trim().is_empty() || ami.host.contains(char::is_whitespace) {
        return Err(invalid(
            "ami.host",
            format!("{:?} is not a host name or address", ami.host),
        ));
    }
    if ami.username.is_empty() || ami.username.contains(['\r', '\n']) {
        return Err(invalid(
            "ami.username",
            format!("{:?} must be non-empty, on one line", ami.username),
        ));
    }
    if let Some(p) = &ami.secret_file
        && p.as_os_str().is_empty()
    {
        return Err(invalid("ami.secret_file", "is empty"));
    }
    let hour = Duration::from_secs(3600);
    let min = Duration::from_millis(10);
    let ranges = [
        ("ami.ping_interval_secs", ami.ping_interval, min, hour),
        ("ami.ping_timeout_secs", ami.ping_timeout, min, hour),
        ("ami.connect_timeout_secs", ami.connect_timeout, min, hour),
        ("ami.reconnect_min_secs", ami.backoff_min, min, hour),
        ("ami.reconnect_max_secs", ami.backoff_max, min, hour),
        (
            "ami.stable_after_secs",
            ami.stable_after,
            Duration::ZERO,
            Duration::from_secs(86400),
        ),
    ];
    for (field, v, lo, hi) in ranges {
        if !(lo..=hi).contains(&v) {
            return Err(invalid(
                field,
                format!(
                    "must be {}..{} seconds, got {}",
                    lo.as_secs_f64(),
                    hi.as_secs_f64(),
                    v.as_secs_f64()
                ),
            ));
        }
    }
    if ami.backoff_max < ami.backoff_min {
        return Err(invalid(
            "ami.reconnect_max_secs",
            format!(
                "{} is below ami.reconnect_min_secs ({})",
                ami.backoff_max.as_secs_f64(),
                ami.backoff_min.as_secs_f64()
            ),
        ));
    }
    if !(1024..=16 * 1024 * 1024).contains(&ami.max_message_bytes) {
        return Err(invalid(
            "ami.max_message_bytes",
            format!("must be 1024..16777216, got {}", ami.max_message_bytes),
        ));
    }
    Ok(())
}
