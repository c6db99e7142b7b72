//! The TOML configuration (SPEC sections 9 and 10): one serde struct per section, `DEFAULT_*`
//! values beside each, validation that names the bad field, and the diff a SIGHUP reload applies.
//!
//! - `ami` (this module's `ami.rs`): `[ami]` is the AMI client's own [`ClientConfig`]; here
//!   are its range checks and the secret's three sources.
//! - `error.rs`: [`ConfigError`] and the TOML position turned into a dotted key.
//!
//! Invariants: every table denies unknown keys; every key has a default except that `run` needs an
//! `[ami]` table; a loaded [`Config`] has passed [`Config::validate`]; the AMI secret is held as a
//! [`Secret`](crate::secret::Secret) and never appears in `Debug`, `Display` or an error message.

mod ami;
mod error;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use self::ami::{CREDENTIAL_NAME, SecretSource};
pub use self::error::ConfigError;
use self::error::{invalid, parse_error};
pub use crate::ami::{AuthMethod, ClientConfig};
use crate::callbacks::CallbacksConfig;
use crate::callbacks::number::NumbersConfig;
use crate::callbacks::sla::{Calendar, CalendarConfig};
use crate::calls::config::TrackerConfig;

/// Where `run` and `check-config` look without `--config`.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/missedcalld/missedcalld.toml";
/// The SQLite file (systemd `StateDirectory=missedcalld`).
pub const DEFAULT_STORE_PATH: &str = "/var/lib/missedcalld/missedcalld.sqlite";
/// Most finished calls committed in one transaction.
pub const DEFAULT_STORE_BATCH_MAX: usize = crate::store::DEFAULT_BATCH_MAX;
/// Longest time a finished call waits for its transaction, in milliseconds.
pub const DEFAULT_STORE_BATCH_MAX_DELAY_MS: u64 =
    crate::store::DEFAULT_BATCH_MAX_DELAY.as_millis() as u64;
/// Log filter (tracing `EnvFilter` syntax); `RUST_LOG` overrides it.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// AMI connection; required by `run`, ignored by `replay`.
    pub ami: Option<ClientConfig>,
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
    /// Notification targets (parsed and validated; not delivered in this version).
    pub notify: NotifySection,
    /// Where [`Config::load`] found the AMI secret (now in `ami.secret`); `None` when no
    /// source is configured and no systemd credential directory is set.
    #[serde(skip)]
    pub ami_secret_source: Option<SecretSource>,
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

/// `[notify]`: where missed calls and overdue tasks would be announced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySection {
    /// `[[notify.webhook]]` entries.
    pub webhook: Vec<WebhookSection>,
}

/// One `[[notify.webhook]]`: an HTTP POST of a JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// `http://` or `https://` URL.
    pub url: String,
}

/// Checks the shape of an `http(s)://host[:port][/path]` URL without a URL library.
fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{url:?} contains whitespace"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Err(format!("{url:?} has an unclosed [IPv6] host")),
        }
    } else {
        match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    if let Some(p) = port
        && p.parse::<u16>().ok().filter(|p| *p != 0).is_none()
    {
        return Err(format!("{url:?} has an invalid port {p:?}"));
    }
    Ok(())
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
        if let Some(ami) = &mut cfg.ami {
            cfg.ami_secret_source = ami::resolve_secret(ami, credentials_dir)?;
        }
        Ok(cfg)
    }

    /// Checks what serde cannot; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(ami) = &self.ami {
            ami::validate(ami)?;
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
        Calendar::new(&self.calendar)?;
        self.numbers.validate()?;
        self.calls.validate()?;
        crate::logging::parse_filter(&self.log.level).map_err(|e| invalid("log.level", e))?;
        for (i, hook) in self.notify.webhook.iter().enumerate() {
            check_url(&hook.url).map_err(|r| invalid(format!("notify.webhook[{i}].url"), r))?;
        }
        Ok(())
    }

    /// Which parts a reload from `old` to `new` must rebuild.
    pub fn diff(old: &Config, new: &Config) -> ConfigChange {
        ConfigChange {
            ami_changed: old.ami != new.ami || old.ami_secret_source != new.ami_secret_source,
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
                let secret = match &self.ami_secret_source {
                    Some(source) => format!("secret from {source}"),
                    None => format!(
                        "secret expected from $CREDENTIALS_DIRECTORY/{CREDENTIAL_NAME} (not set here)"
                    ),
                };
                parts.push(format!(
                    "ami {}@{}:{} ({} login, {secret})",
                    ami.username,
                    ami.host,
                    ami.port,
                    ami.auth.as_str()
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
        if !self.notify.webhook.is_empty() {
            parts.push(format!(
                "{} webhook(s) (not delivered in this version)",
                self.notify.webhook.len()
            ));
        }
        parts.join("; ")
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
        let expected = ClientConfig {
            secret: crate::secret::Secret::new("s3cr3t"),
            ..ClientConfig::default()
        };
        assert_eq!(*ami, expected);
        assert_eq!(ami.auth, AuthMethod::Md5);
        assert_eq!(ami.secret.expose(), "s3cr3t");
        assert_eq!(c.ami_secret_source, Some(SecretSource::Inline));
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
        assert_eq!(c.ami.unwrap().secret.expose(), "from-file");
        assert_eq!(c.ami_secret_source, Some(SecretSource::File(file.clone())));

        let c = Config::from_toml_str("[ami]\n", Path::new("t"), Some(dir.path())).unwrap();
        assert_eq!(c.ami.unwrap().secret.expose(), "from-cred");
        assert!(matches!(
            c.ami_secret_source,
            Some(SecretSource::Credential(_))
        ));

        let src = format!(
            "[ami]\nsecret = \"inline\"\nsecret_file = {:?}\n",
            file.display().to_string()
        );
        let c = Config::from_toml_str(&src, Path::new("t"), Some(dir.path())).unwrap();
        assert_eq!(c.ami.unwrap().secret.expose(), "inline");

        let c = Config::from_toml_str("[ami]\n", Path::new("t"), None).unwrap();
        assert!(c.ami_secret_source.is_none());
        assert!(c.ami.unwrap().secret.is_empty());
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
            ("[log]\nlevel = \"warning\"\n", "log.level"),
            ("[log]\nlevel = \"infoo\"\n", "log.level"),
            ("[log]\nlevel = \"info,missedcalld=loud\"\n", "log.level"),
            (
                "[calendar.hours]\nmon = \"\"\ntue = \"\"\nwed = \"\"\nthu = \"\"\nfri = \"\"\nsat = \"\"\nsun = \"\"\n",
                "calendar.hours",
            ),
            (
                "[calls]\nexpire_after_secs = 5\n",
                "calls.expire_after_secs",
            ),
            ("[ami]\nping_interval_secs = -1\n", "ami.ping_interval_secs"),
            ("[ami]\nsecret = \"\"\n", "ami.secret"),
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
    fn a_secret_of_any_type_is_never_echoed() {
        for value in [
            "918273645",
            "9182736.45",
            "true",
            "[918273645]",
            "{ a = 918273645 }",
            "918273645 918273645",
            "\"918273645",
            "1982-07-30T09:18:27",
        ] {
            let src = format!("[ami]\nsecret = {value}\n");
            let e = parse(&src).unwrap_err();
            assert_eq!(e.field(), Some("ami.secret"), "{value}: {e}");
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("918273645"), "{value}: {shown}");
            assert!(!shown.contains("9182736"), "{value}: {shown}");
            assert!(!shown.contains("1982"), "{value}: {shown}");
        }
    }

    #[test]
    fn level_words_are_checked() {
        for ok in [
            "info",
            "WARN",
            "off",
            "warn,missedcalld::ami=debug",
            "missedcalld=trace",
        ] {
            assert!(parse(&format!("[log]\nlevel = {ok:?}\n")).is_ok(), "{ok}");
        }
        let e = parse("[log]\nlevel = \"warning\"\n").unwrap_err();
        assert!(e.to_string().contains("\"warning\""), "{e}");
    }

    #[test]
    fn webhook_urls() {
        assert!(check_url("http://127.0.0.1:8080/missed").is_ok());
        assert!(check_url("https://hooks.example.com/x?y=1").is_ok());
        assert!(check_url("http://[::1]:80/").is_ok());
        assert!(check_url("http://host:99999/").is_err());
        assert!(check_url("http://a b/").is_err());
        assert!(check_url("127.0.0.1/x").is_err());
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
