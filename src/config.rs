//! The TOML configuration (SPEC sections 9 and 10): serde structs, `DEFAULT_*` values, validation
//! that names the bad field, the AMI secret's three sources, and the diff a SIGHUP reload applies.
//!
//! Invariants: every table denies unknown keys; every key has a default except that `run` needs an
//! `[ami]` table; a loaded [`Config`] has passed [`Config::validate`]; the AMI secret is held as a
//! [`Secret`] and never appears in `Debug`, `Display` or an error message.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::callbacks::CallbacksConfig;
use crate::callbacks::number::NumbersConfig;
use crate::callbacks::sla::{Calendar, CalendarConfig};
use crate::calls::config::TrackerConfig;
use crate::secret::Secret;

/// Where `run` and `check-config` look without `--config`.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/missedcalld/missedcalld.toml";
/// AMI host: the PBX on the same machine.
pub const DEFAULT_AMI_HOST: &str = "127.0.0.1";
/// AMI port (Asterisk's `manager.conf` default).
pub const DEFAULT_AMI_PORT: u16 = 5038;
/// AMI user name (the read-only user of `asterisk-conf-examples/manager.conf`).
pub const DEFAULT_AMI_USERNAME: &str = "missedcalls";
/// Login method: MD5 challenge, so the secret never crosses the wire.
pub const DEFAULT_AMI_AUTH: AuthKind = AuthKind::Md5;
/// Seconds between our `Ping`s (AMI has no idle timeout: a dead peer is only noticed this way).
pub const DEFAULT_PING_INTERVAL_SECS: f64 = 20.0;
/// Seconds to wait for a `Ping` reply before reconnecting.
pub const DEFAULT_PING_TIMEOUT_SECS: f64 = 10.0;
/// Seconds to wait for the TCP connection and the banner.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: f64 = 10.0;
/// First reconnect delay in seconds (doubles, with jitter, up to the maximum).
pub const DEFAULT_RECONNECT_MIN_SECS: f64 = 1.0;
/// Longest reconnect delay in seconds.
pub const DEFAULT_RECONNECT_MAX_SECS: f64 = 30.0;
/// A connection up this many seconds resets the reconnect delay to the minimum.
pub const DEFAULT_STABLE_AFTER_SECS: f64 = 60.0;
/// Larger AMI messages are skipped with one warning (SPEC section 3).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// The SQLite file (systemd `StateDirectory=missedcalld`).
pub const DEFAULT_STORE_PATH: &str = "/var/lib/missedcalld/missedcalld.sqlite";
/// Most finished calls committed in one transaction.
pub const DEFAULT_STORE_BATCH_MAX: usize = crate::store::DEFAULT_BATCH_MAX;
/// Longest time a finished call waits for its transaction, in milliseconds.
pub const DEFAULT_STORE_BATCH_MAX_DELAY_MS: u64 =
    crate::store::DEFAULT_BATCH_MAX_DELAY.as_millis() as u64;
/// Log filter (tracing `EnvFilter` syntax); `RUST_LOG` overrides it.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// Name of the systemd credential holding the AMI secret (`LoadCredential=ami-secret:...`).
pub const CREDENTIAL_NAME: &str = "ami-secret";

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
        /// The parser's explanation.
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

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// AMI connection; required by `run`, ignored by `replay`.
    pub ami: Option<AmiSection>,
    /// Where the SQLite file lives.
    pub store: StoreSection,
    /// Working hours, holidays and time zone (SLA deadlines, report heat map).
    pub calendar: CalendarConfig,
    /// Callback task rules.
    pub callbacks: CallbacksConfig,
    /// Caller number normalization.
    pub numbers: NumbersConfig,
    /// How the tracker recognises inbound, outbound and after-hours calls.
    pub calls: TrackerConfig,
    /// Log level and format.
    pub log: LogSection,
    /// Notifications: language, digest, webhook / Telegram / exec sinks.
    pub notify: crate::notify::NotifyConfig,
    /// The AMI secret, resolved from its source by [`Config::load`]; `None` when no source is
    /// configured and no systemd credential directory is set.
    #[serde(skip)]
    pub ami_secret: Option<ResolvedSecret>,
}

/// How to log in to AMI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthKind {
    /// `Action: Login` with `Secret:` in clear text (fine on 127.0.0.1).
    Plain,
    /// `Action: Challenge` then `Login` with `Key: md5(challenge + secret)`.
    Md5,
}

/// `[ami]`: the Asterisk Manager Interface connection.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmiSection {
    /// Host name or address of the PBX.
    pub host: String,
    /// TCP port, 1..65535.
    #[serde(deserialize_with = "de_port")]
    pub port: u16,
    /// `manager.conf` user.
    pub username: String,
    /// The secret itself (first choice).
    #[serde(deserialize_with = "de_secret")]
    pub secret: Option<Secret>,
    /// A file holding the secret (second choice); a trailing newline is ignored.
    pub secret_file: Option<PathBuf>,
    /// `plain` or `md5`.
    pub auth: AuthKind,
    /// Seconds between keep-alive `Ping`s.
    pub ping_interval_secs: f64,
    /// Seconds without a `Ping` reply before reconnecting.
    pub ping_timeout_secs: f64,
    /// Seconds allowed for TCP connect + banner.
    pub connect_timeout_secs: f64,
    /// First reconnect delay.
    pub reconnect_min_secs: f64,
    /// Longest reconnect delay.
    pub reconnect_max_secs: f64,
    /// Seconds a connection must stay up before the reconnect delay starts over.
    pub stable_after_secs: f64,
    /// Larger messages are skipped with one warning.
    pub max_message_bytes: usize,
}

impl Default for AmiSection {
    fn default() -> Self {
        AmiSection {
            host: DEFAULT_AMI_HOST.to_string(),
            port: DEFAULT_AMI_PORT,
            username: DEFAULT_AMI_USERNAME.to_string(),
            secret: None,
            secret_file: None,
            auth: DEFAULT_AMI_AUTH,
            ping_interval_secs: DEFAULT_PING_INTERVAL_SECS,
            ping_timeout_secs: DEFAULT_PING_TIMEOUT_SECS,
            connect_timeout_secs: DEFAULT_CONNECT_TIMEOUT_SECS,
            reconnect_min_secs: DEFAULT_RECONNECT_MIN_SECS,
            reconnect_max_secs: DEFAULT_RECONNECT_MAX_SECS,
            stable_after_secs: DEFAULT_STABLE_AFTER_SECS,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

impl fmt::Debug for AmiSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmiSection")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("secret_file", &self.secret_file)
            .field("auth", &self.auth)
            .field("ping_interval_secs", &self.ping_interval_secs)
            .field("ping_timeout_secs", &self.ping_timeout_secs)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("reconnect_min_secs", &self.reconnect_min_secs)
            .field("reconnect_max_secs", &self.reconnect_max_secs)
            .field("stable_after_secs", &self.stable_after_secs)
            .field("max_message_bytes", &self.max_message_bytes)
            .finish()
    }
}

fn de_port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let n = i64::deserialize(d)?;
    u16::try_from(n)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| serde::de::Error::custom(format!("must be 1..65535, got {n}")))
}

fn de_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Secret::new))
}

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

/// The AMI secret and its source.
#[derive(Debug, Clone)]
pub struct ResolvedSecret {
    /// The secret (Debug prints `***`).
    pub secret: Secret,
    /// Where it was read.
    pub source: SecretSource,
}

impl PartialEq for ResolvedSecret {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.secret.expose() == other.secret.expose()
    }
}

impl AmiSection {
    /// Reads the secret in the documented order: `secret`, then `secret_file`, then
    /// `<credentials_dir>/ami-secret`. `Ok(None)` when none of them is configured.
    pub fn resolve_secret(
        &self,
        credentials_dir: Option<&Path>,
    ) -> Result<Option<ResolvedSecret>, ConfigError> {
        let (raw, source, field) = if let Some(s) = &self.secret {
            (s.expose().to_string(), SecretSource::Inline, "ami.secret")
        } else if let Some(path) = &self.secret_file {
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
        Ok(Some(ResolvedSecret {
            secret: Secret::new(trimmed.to_string()),
            source,
        }))
    }

    /// Keep-alive interval.
    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs_f64(self.ping_interval_secs)
    }

    /// Keep-alive reply timeout.
    pub fn ping_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.ping_timeout_secs)
    }

    /// Connect + banner timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.connect_timeout_secs)
    }

    /// First reconnect delay.
    pub fn reconnect_min(&self) -> Duration {
        Duration::from_secs_f64(self.reconnect_min_secs)
    }

    /// Longest reconnect delay.
    pub fn reconnect_max(&self) -> Duration {
        Duration::from_secs_f64(self.reconnect_max_secs)
    }

    /// Uptime after which the reconnect delay starts over.
    pub fn stable_after(&self) -> Duration {
        Duration::from_secs_f64(self.stable_after_secs)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.host.trim().is_empty() || self.host.contains(char::is_whitespace) {
            return Err(invalid(
                "ami.host",
                format!("{:?} is not a host name or address", self.host),
            ));
        }
        if self.username.is_empty() || self.username.contains(['\r', '\n']) {
            return Err(invalid(
                "ami.username",
                format!("{:?} must be non-empty, on one line", self.username),
            ));
        }
        if let Some(s) = &self.secret {
            if s.expose().is_empty() {
                return Err(invalid("ami.secret", "is empty"));
            }
            if s.expose().contains(['\r', '\n']) {
                return Err(invalid("ami.secret", "contains a line break"));
            }
        }
        if let Some(p) = &self.secret_file
            && p.as_os_str().is_empty()
        {
            return Err(invalid("ami.secret_file", "is empty"));
        }
        let secs = [
            (
                "ami.ping_interval_secs",
                self.ping_interval_secs,
                0.01,
                3600.0,
            ),
            (
                "ami.ping_timeout_secs",
                self.ping_timeout_secs,
                0.01,
                3600.0,
            ),
            (
                "ami.connect_timeout_secs",
                self.connect_timeout_secs,
                0.01,
                3600.0,
            ),
            (
                "ami.reconnect_min_secs",
                self.reconnect_min_secs,
                0.01,
                3600.0,
            ),
            (
                "ami.reconnect_max_secs",
                self.reconnect_max_secs,
                0.01,
                3600.0,
            ),
            (
                "ami.stable_after_secs",
                self.stable_after_secs,
                0.0,
                86400.0,
            ),
        ];
        for (field, v, lo, hi) in secs {
            if !(lo..=hi).contains(&v) {
                return Err(invalid(
                    field,
                    format!("must be {lo}..{hi} seconds, got {v}"),
                ));
            }
        }
        if self.reconnect_max_secs < self.reconnect_min_secs {
            return Err(invalid(
                "ami.reconnect_max_secs",
                format!(
                    "{} is below ami.reconnect_min_secs ({})",
                    self.reconnect_max_secs, self.reconnect_min_secs
                ),
            ));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_message_bytes) {
            return Err(invalid(
                "ami.max_message_bytes",
                format!("must be 1024..16777216, got {}", self.max_message_bytes),
            ));
        }
        Ok(())
    }
}

/// Reads a secret file as UTF-8 text; the error names `field` and the file, never the content.
pub(crate) fn read_secret_file(field: &str, path: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::SecretFile {
        field: field.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes)
        .map_err(|_| invalid(field, format!("{} is not UTF-8 text", path.display())))
}

/// `[store]`: the SQLite file and how writes are batched.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// The database file; `--db` on the command line wins.
    pub path: PathBuf,
    /// Most finished calls per transaction.
    pub batch_max: usize,
    /// Longest wait of a finished call for its transaction, in milliseconds.
    pub batch_max_delay_ms: u64,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            path: PathBuf::from(DEFAULT_STORE_PATH),
            batch_max: DEFAULT_STORE_BATCH_MAX,
            batch_max_delay_ms: DEFAULT_STORE_BATCH_MAX_DELAY_MS,
        }
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Timestamps unless journald is capturing stderr (`JOURNAL_STREAM` set), which adds its own.
    #[default]
    Auto,
    /// Always with timestamps.
    Full,
    /// Never with timestamps.
    Journal,
}

/// `[log]`: level and format of the log lines on stderr.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// tracing filter, e.g. `info` or `info,missedcalld::ami=debug`; `RUST_LOG` wins.
    pub level: String,
    /// `auto`, `full` or `journal`.
    pub format: LogFormat,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: DEFAULT_LOG_LEVEL.to_string(),
            format: LogFormat::Auto,
        }
    }
}

/// What a reload changes: each flag says one running part must be rebuilt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConfigChange {
    /// `[ami]` or the resolved secret changed: reconnect.
    pub ami_changed: bool,
    /// `[store]` changed: reopen the database.
    pub store_changed: bool,
    /// `[calls]` changed: new tracker settings.
    pub tracker_changed: bool,
    /// `[calendar]`, `[callbacks]` or `[numbers]` changed: new task rules in the store.
    pub callbacks_changed: bool,
    /// `[log]` changed: new filter.
    pub log_changed: bool,
    /// `[notify]` changed.
    pub notify_changed: bool,
}

impl ConfigChange {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        *self == ConfigChange::default()
    }
}

impl fmt::Display for ConfigChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<&str> = [
            (self.ami_changed, "ami"),
            (self.store_changed, "store"),
            (self.tracker_changed, "calls"),
            (self.callbacks_changed, "calendar/callbacks/numbers"),
            (self.log_changed, "log"),
            (self.notify_changed, "notify"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect();
        if parts.is_empty() {
            f.write_str("nothing")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

impl Config {
    /// Reads, parses and validates `path`, and resolves the AMI secret (using
    /// `$CREDENTIALS_DIRECTORY` from the environment).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let src = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let creds = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
        Config::from_toml_str(&src, path, creds.as_deref())
    }

    /// Parses and validates TOML text; `origin` only names the file in errors.
    pub fn from_toml_str(
        src: &str,
        origin: &Path,
        credentials_dir: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(src).map_err(|e| parse_error(src, origin, &e))?;
        cfg.validate()?;
        if let Some(ami) = &cfg.ami {
            cfg.ami_secret = ami.resolve_secret(credentials_dir)?;
        }
        cfg.notify.resolve_secrets(credentials_dir)?;
        Ok(cfg)
    }

    /// Checks what serde cannot; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(ami) = &self.ami {
            ami.validate()?;
        }
        if self.store.path.as_os_str().is_empty() {
            return Err(invalid("store.path", "is empty"));
        }
        if self.store.batch_max == 0 {
            return Err(invalid("store.batch_max", "must be at least 1"));
        }
        if self.store.batch_max_delay_ms > 60_000 {
            return Err(invalid(
                "store.batch_max_delay_ms",
                format!(
                    "must be at most 60000, got {}",
                    self.store.batch_max_delay_ms
                ),
            ));
        }
        Calendar::new(&self.calendar).map_err(|e| split_field_error(&e.to_string(), "calendar"))?;
        self.numbers
            .validate()
            .map_err(|e| split_field_error(&e.to_string(), "numbers"))?;
        self.calls
            .validate()
            .map_err(|msg| split_field_error(&msg, "calls"))?;
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.log.level) {
            return Err(invalid(
                "log.level",
                format!("{:?} is not a log filter: {e}", self.log.level),
            ));
        }
        self.notify.validate()?;
        Ok(())
    }

    /// Which parts a reload from `old` to `new` must rebuild.
    pub fn diff(old: &Config, new: &Config) -> ConfigChange {
        ConfigChange {
            ami_changed: old.ami != new.ami || old.ami_secret != new.ami_secret,
            store_changed: old.store != new.store,
            tracker_changed: old.calls != new.calls,
            callbacks_changed: old.calendar != new.calendar
                || old.callbacks != new.callbacks
                || old.numbers != new.numbers,
            log_changed: old.log != new.log,
            notify_changed: old.notify != new.notify,
        }
    }

    /// One line for `check-config` and the startup log: what the daemon would do.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        match &self.ami {
            Some(ami) => {
                let secret = match &self.ami_secret {
                    Some(r) => format!("secret from {}", r.source),
                    None => format!(
                        "secret expected from $CREDENTIALS_DIRECTORY/{CREDENTIAL_NAME} (not set here)"
                    ),
                };
                parts.push(format!(
                    "ami {}@{}:{} ({} login, {secret})",
                    ami.username,
                    ami.host,
                    ami.port,
                    match ami.auth {
                        AuthKind::Plain => "plain",
                        AuthKind::Md5 => "md5",
                    }
                ));
            }
            None => parts.push("no [ami] (replay only)".to_string()),
        }
        parts.push(format!("store {}", self.store.path.display()));
        parts.push(format!(
            "timezone {}; callbacks within {} min ({}), off-hours due {}",
            self.calendar.timezone,
            self.callbacks.sla_minutes,
            self.callbacks.complete_on.as_str(),
            self.callbacks.offhours_deadline.format("%H:%M")
        ));
        parts.push(format!("log {}", self.log.level));
        if let Some(n) = self.notify.summary() {
            parts.push(n);
        }
        parts.join("; ")
    }
}

/// Turns a `"section.key: reason"` message from a section's own validator into an error.
fn split_field_error(msg: &str, section: &str) -> ConfigError {
    match msg.split_once(": ") {
        Some((field, reason)) if field.starts_with(section) => invalid(field, reason),
        _ => invalid(section, msg),
    }
}

/// Names the dotted key at the error position: the key on that line, prefixed by the nearest
/// table header above it (TOML errors carry a byte span, not a key path).
fn parse_error(src: &str, origin: &Path, err: &toml::de::Error) -> ConfigError {
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
    ConfigError::Parse {
        path: origin.to_path_buf(),
        field,
        message: err.message().trim().to_string(),
        line,
        column,
    }
}

/// `missedcalld check-config`: prints `OK: <path>` and a summary (exit 0) or the error naming
/// the field (exit 1).
pub fn check_config(path: &Path, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    match Config::load(path) {
        Ok(cfg) => {
            let _ = writeln!(out, "OK: {}", path.display());
            let _ = writeln!(out, "{}", cfg.summary());
            ExitCode::SUCCESS
        }
        Err(e @ (ConfigError::Invalid { .. } | ConfigError::SecretFile { .. })) => {
            let _ = writeln!(
                err,
                "missedcalld: invalid configuration: {}: {e}",
                path.display()
            );
            ExitCode::from(1)
        }
        Err(e) => {
            let _ = writeln!(err, "missedcalld: invalid configuration: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(src, Path::new("t.toml"), None)
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert!(c.ami.is_none());
        assert_eq!(c.store.path, PathBuf::from(DEFAULT_STORE_PATH));
        assert_eq!(c.log.level, DEFAULT_LOG_LEVEL);
        assert_eq!(c.calls, TrackerConfig::default());
    }

    #[test]
    fn ami_defaults_and_inline_secret() {
        let c = parse("[ami]\nsecret = \"s3cr3t\"\n").unwrap();
        let ami = c.ami.as_ref().unwrap();
        assert_eq!(ami.host, DEFAULT_AMI_HOST);
        assert_eq!(ami.port, DEFAULT_AMI_PORT);
        assert_eq!(ami.auth, AuthKind::Md5);
        let r = c.ami_secret.unwrap();
        assert_eq!(r.secret.expose(), "s3cr3t");
        assert_eq!(r.source, SecretSource::Inline);
        assert!(!format!("{ami:?}").contains("s3cr3t"));
    }

    #[test]
    fn unknown_key_names_section_and_key() {
        let e = parse("[ami]\nhost = \"x\"\nfoo = 1\n").unwrap_err();
        assert_eq!(e.field(), Some("ami.foo"), "{e}");
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = parse("[bogus]\nx = 1\n").unwrap_err();
        assert_eq!(e.field(), Some("bogus"), "{e}");
    }

    #[test]
    fn port_out_of_range_names_the_port() {
        for bad in ["0", "70000", "-1"] {
            let e = parse(&format!("[ami]\nport = {bad}\n")).unwrap_err();
            assert_eq!(e.field(), Some("ami.port"), "{e}");
            assert!(e.to_string().contains("1..65535"), "{e}");
        }
        let e = parse("[ami]\nport = \"x\"\n").unwrap_err();
        assert_eq!(e.field(), Some("ami.port"), "{e}");
    }

    #[test]
    fn secret_precedence_and_trimming() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s");
        std::fs::write(&file, "from-file\r\n").unwrap();
        std::fs::write(dir.path().join(CREDENTIAL_NAME), "from-cred\n").unwrap();
        let src = format!("[ami]\nsecret_file = {:?}\n", file.display().to_string());
        let c = Config::from_toml_str(&src, Path::new("t"), Some(dir.path())).unwrap();
        let r = c.ami_secret.unwrap();
        assert_eq!(r.secret.expose(), "from-file");
        assert_eq!(r.source, SecretSource::File(file.clone()));

        let c = Config::from_toml_str("[ami]\n", Path::new("t"), Some(dir.path())).unwrap();
        let r = c.ami_secret.unwrap();
        assert_eq!(r.secret.expose(), "from-cred");
        assert!(matches!(r.source, SecretSource::Credential(_)));

        let src = format!(
            "[ami]\nsecret = \"inline\"\nsecret_file = {:?}\n",
            file.display().to_string()
        );
        let c = Config::from_toml_str(&src, Path::new("t"), Some(dir.path())).unwrap();
        assert_eq!(c.ami_secret.unwrap().secret.expose(), "inline");

        let c = Config::from_toml_str("[ami]\n", Path::new("t"), None).unwrap();
        assert!(c.ami_secret.is_none());
    }

    #[test]
    fn missing_or_empty_secret_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let src = format!(
            "[ami]\nsecret_file = {:?}\n",
            dir.path().join("nope").display().to_string()
        );
        let e = parse(&src).unwrap_err();
        assert_eq!(e.field(), Some("ami.secret_file"), "{e}");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let src = format!("[ami]\nsecret_file = {:?}\n", empty.display().to_string());
        let e = parse(&src).unwrap_err();
        assert_eq!(e.field(), Some("ami.secret_file"), "{e}");
        assert!(e.to_string().contains("empty"), "{e}");
    }

    #[test]
    fn value_errors_name_their_field() {
        let cases = [
            ("[ami]\nsecret=\"x\"\nhost = \"\"\n", "ami.host"),
            (
                "[ami]\nsecret=\"x\"\nreconnect_min_secs = 10\nreconnect_max_secs = 5\n",
                "ami.reconnect_max_secs",
            ),
            (
                "[ami]\nsecret=\"x\"\nmax_message_bytes = 10\n",
                "ami.max_message_bytes",
            ),
            ("[ami]\nsecret=\"x\"\nauth = \"sha\"\n", "ami.auth"),
            ("[log]\nlevel = \"info,[[[\"\n", "log.level"),
            (
                "[[notify.webhook]]\nurl = \"ftp://x\"\n",
                "notify.webhook[0].url",
            ),
            (
                "[[notify.webhook]]\nurl = \"http://\"\n",
                "notify.webhook[0].url",
            ),
            (
                "[calls]\ninternal_max_length = 0\n",
                "calls.internal_max_length",
            ),
            ("[store]\npath = \"\"\n", "store.path"),
            ("[calendar.hours]\nmon = \"9-18\"\n", "calendar.hours.mon"),
            (
                "[calendar]\ntimezone = \"Mars/Base\"\n",
                "calendar.timezone",
            ),
            (
                "[callbacks]\noffhours_deadline = \"25:00\"\n",
                "callbacks.offhours_deadline",
            ),
            (
                "[callbacks]\ncomplete_on = \"never\"\n",
                "callbacks.complete_on",
            ),
            (
                "[numbers]\nnational_prefix = \"x\"\n",
                "numbers.national_prefix",
            ),
        ];
        for (src, field) in cases {
            let e = parse(src).unwrap_err();
            assert_eq!(e.field(), Some(field), "{src}: {e}");
        }
    }

    #[test]
    fn diff_flags_only_what_changed() {
        let a = parse("[ami]\nsecret = \"a\"\n[log]\nlevel = \"info\"\n").unwrap();
        let same = parse("[ami]\nsecret = \"a\"\n[log]\nlevel = \"info\"\n").unwrap();
        assert!(Config::diff(&a, &same).is_empty());
        let b = parse("[ami]\nsecret = \"b\"\n[log]\nlevel = \"debug\"\n").unwrap();
        let d = Config::diff(&a, &b);
        assert!(d.ami_changed && d.log_changed);
        assert!(!d.store_changed && !d.tracker_changed && !d.callbacks_changed);
        let c = parse("[ami]\nsecret = \"a\"\n[calendar]\ntimezone = \"Europe/Moscow\"\n").unwrap();
        let d = Config::diff(&a, &c);
        assert!(d.callbacks_changed && !d.ami_changed);
        assert_eq!(d.to_string(), "calendar/callbacks/numbers");
    }
}
