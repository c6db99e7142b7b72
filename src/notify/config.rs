//! `[notify]` (SPEC section 10): language, daily digest, and any number of webhook, Telegram and
//! exec sinks; validation that names the field; secrets (webhook `secret`, header values, bot
//! token) resolved from the file, a `*_file`, or `$CREDENTIALS_DIRECTORY`, held as [`Secret`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveTime;
use serde::{Deserialize, Deserializer};

use super::EventKind;
use crate::callbacks::sla::parse_clock;
use crate::config::ConfigError;
use crate::secret::Secret;

/// Default language of texts for people.
pub const DEFAULT_LANGUAGE: Language = Language::En;
/// A notification not delivered this long after its first attempt is given up as `failed`.
pub const DEFAULT_GIVE_UP_AFTER_HOURS: f64 = 24.0;
/// Default time limit of one webhook request, in seconds.
pub const DEFAULT_WEBHOOK_TIMEOUT_SECS: f64 = 5.0;
/// Default time limit of one Telegram request, in seconds.
pub const DEFAULT_TELEGRAM_TIMEOUT_SECS: f64 = 10.0;
/// Default time limit of one exec run, in seconds.
pub const DEFAULT_EXEC_TIMEOUT_SECS: f64 = 10.0;
/// The Bot API.
pub const DEFAULT_TELEGRAM_API_URL: &str = "https://api.telegram.org";
/// Name of the systemd credential holding the bot token.
pub const TELEGRAM_CREDENTIAL: &str = "telegram-token";

/// Language of texts for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// English.
    #[default]
    En,
    /// Russian.
    Ru,
}

/// `[notify]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// `en` or `ru`.
    pub language: Language,
    /// Local time of the daily digest (`"09:00"`); absent = no digest.
    #[serde(deserialize_with = "de_clock")]
    pub daily_digest_at: Option<NaiveTime>,
    /// Hours after the first attempt at which an undelivered notification becomes `failed`.
    pub give_up_after_hours: f64,
    /// `[[notify.webhook]]`.
    pub webhook: Vec<WebhookConfig>,
    /// `[[notify.telegram]]`.
    pub telegram: Vec<TelegramConfig>,
    /// `[[notify.exec]]`.
    pub exec: Vec<ExecConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            language: DEFAULT_LANGUAGE,
            daily_digest_at: None,
            give_up_after_hours: DEFAULT_GIVE_UP_AFTER_HOURS,
            webhook: Vec::new(),
            telegram: Vec::new(),
            exec: Vec::new(),
        }
    }
}

/// `[[notify.webhook]]`: an HTTP POST of the JSON payload.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Events sent here; default all.
    #[serde(default)]
    pub events: Option<Vec<EventKind>>,
    /// HMAC-SHA256 key for `X-Missedcalld-Signature`.
    #[serde(default, deserialize_with = "de_secret")]
    pub secret: Option<Secret>,
    /// File holding the key (relative: inside `$CREDENTIALS_DIRECTORY`).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Extra request headers; values are treated as secrets.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Seconds allowed for one request.
    #[serde(default = "webhook_timeout")]
    pub timeout_secs: f64,
    /// Hold deliveries while the calendar is closed.
    #[serde(default)]
    pub quiet_outside_hours: bool,
}

/// `[[notify.telegram]]`: Bot API `sendMessage`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// The bot token (first choice).
    #[serde(default, deserialize_with = "de_secret")]
    pub bot_token: Option<Secret>,
    /// File holding the token (relative: inside `$CREDENTIALS_DIRECTORY`).
    #[serde(default)]
    pub bot_token_file: Option<PathBuf>,
    /// Manager chats: every event.
    #[serde(default)]
    pub chat_ids: Vec<i64>,
    /// Agent extension -> chat: the missed calls that rang the agent, its tasks gone overdue.
    #[serde(default)]
    pub agents: BTreeMap<String, i64>,
    /// Bot API base URL.
    #[serde(default = "telegram_api_url")]
    pub api_url: String,
    /// Events sent here; default all.
    #[serde(default)]
    pub events: Option<Vec<EventKind>>,
    /// Seconds allowed for one request.
    #[serde(default = "telegram_timeout")]
    pub timeout_secs: f64,
    /// Hold deliveries while the calendar is closed.
    #[serde(default)]
    pub quiet_outside_hours: bool,
    /// The token resolved by [`NotifyConfig::resolve_secrets`].
    #[serde(skip)]
    pub resolved_token: Option<Secret>,
}

/// `[[notify.exec]]`: a command run as argv with `MC_*` variables.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// Program and arguments; never through a shell.
    pub command: Vec<String>,
    /// Seconds before the command is killed (and retried).
    #[serde(default = "exec_timeout")]
    pub timeout_secs: f64,
    /// Events sent here; default all.
    #[serde(default)]
    pub events: Option<Vec<EventKind>>,
    /// Hold deliveries while the calendar is closed.
    #[serde(default)]
    pub quiet_outside_hours: bool,
}

fn webhook_timeout() -> f64 {
    DEFAULT_WEBHOOK_TIMEOUT_SECS
}
fn telegram_timeout() -> f64 {
    DEFAULT_TELEGRAM_TIMEOUT_SECS
}
fn exec_timeout() -> f64 {
    DEFAULT_EXEC_TIMEOUT_SECS
}
fn telegram_api_url() -> String {
    DEFAULT_TELEGRAM_API_URL.to_string()
}

fn de_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Secret::new))
}

fn de_clock<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveTime>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => parse_clock(&s)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a time like \"09:00\""))),
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A sink's `events`, or all of them.
pub fn wants(events: &Option<Vec<EventKind>>, kind: EventKind) -> bool {
    events.as_ref().is_none_or(|e| e.contains(&kind))
}

fn check_timeout(field: String, secs: f64) -> Result<(), ConfigError> {
    if !(0.1..=600.0).contains(&secs) {
        return Err(invalid(
            field,
            format!("must be 0.1..600 seconds, got {secs}"),
        ));
    }
    Ok(())
}

impl NotifyConfig {
    /// True when at least one sink is configured.
    pub fn has_sinks(&self) -> bool {
        !(self.webhook.is_empty() && self.telegram.is_empty() && self.exec.is_empty())
    }

    /// How long an undelivered notification is retried.
    pub fn give_up_after(&self) -> Duration {
        Duration::from_secs_f64(self.give_up_after_hours * 3600.0)
    }

    /// Checks what serde cannot; the error names the field (never quoting a secret).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(0.01..=24.0 * 30.0).contains(&self.give_up_after_hours) {
            return Err(invalid(
                "notify.give_up_after_hours",
                format!("must be 0.01..720, got {}", self.give_up_after_hours),
            ));
        }
        for (i, w) in self.webhook.iter().enumerate() {
            let f = |k: &str| format!("notify.webhook[{i}].{k}");
            check_url(&w.url).map_err(|r| invalid(f("url"), r))?;
            check_timeout(f("timeout_secs"), w.timeout_secs)?;
            for (name, value) in &w.headers {
                let ok_name = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b));
                if !ok_name {
                    return Err(invalid(
                        f("headers"),
                        format!("{name:?} is not a header name"),
                    ));
                }
                if value.expose().contains(['\r', '\n', '\0']) {
                    return Err(invalid(
                        f("headers"),
                        format!("the value of {name:?} contains a line break"),
                    ));
                }
            }
            if let Some(s) = &w.secret
                && s.is_empty()
            {
                return Err(invalid(f("secret"), "is empty"));
            }
        }
        for (i, t) in self.telegram.iter().enumerate() {
            let f = |k: &str| format!("notify.telegram[{i}].{k}");
            check_url(&t.api_url).map_err(|r| invalid(f("api_url"), r))?;
            check_timeout(f("timeout_secs"), t.timeout_secs)?;
            if t.chat_ids.is_empty() && t.agents.is_empty() {
                return Err(invalid(
                    f("chat_ids"),
                    "no chat_ids and no agents: nobody to tell",
                ));
            }
            if let Some(bad) = t.chat_ids.iter().find(|c| **c == 0) {
                return Err(invalid(f("chat_ids"), format!("{bad} is not a chat id")));
            }
            for (ext, chat) in &t.agents {
                if ext.trim().is_empty() {
                    return Err(invalid(f("agents"), "an empty extension"));
                }
                if *chat == 0 {
                    return Err(invalid(
                        f("agents"),
                        format!("agent {ext:?}: 0 is not a chat id"),
                    ));
                }
            }
            if let Some(tok) = &t.bot_token {
                check_token(tok).map_err(|r| invalid(f("bot_token"), r))?;
            }
        }
        for (i, e) in self.exec.iter().enumerate() {
            let f = |k: &str| format!("notify.exec[{i}].{k}");
            check_timeout(f("timeout_secs"), e.timeout_secs)?;
            let Some(program) = e.command.first() else {
                return Err(invalid(f("command"), "is empty"));
            };
            check_program(program).map_err(|r| invalid(f("command"), r))?;
        }
        Ok(())
    }

    /// Reads the secrets from their files: webhook `secret_file`, the bot token from `bot_token`,
    /// `bot_token_file`, or `<credentials_dir>/telegram-token`. A relative file name is looked
    /// up in `credentials_dir` (systemd `LoadCredential`). A Telegram sink left without a token
    /// is an error unless `credentials_dir` is unknown (`check-config` outside the service).
    pub fn resolve_secrets(&mut self, credentials_dir: Option<&Path>) -> Result<(), ConfigError> {
        let place = |p: &Path| match credentials_dir {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p.to_path_buf(),
        };
        for (i, w) in self.webhook.iter_mut().enumerate() {
            if w.secret.is_none()
                && let Some(p) = &w.secret_file
            {
                let field = format!("notify.webhook[{i}].secret_file");
                w.secret = Some(read_secret(&field, &place(p))?);
            }
        }
        for (i, t) in self.telegram.iter_mut().enumerate() {
            let field = format!("notify.telegram[{i}].bot_token");
            t.resolved_token = if let Some(tok) = &t.bot_token {
                Some(tok.clone())
            } else if let Some(p) = &t.bot_token_file {
                Some(read_secret(&format!("{field}_file"), &place(p))?)
            } else if let Some(dir) = credentials_dir {
                Some(read_secret(&field, &dir.join(TELEGRAM_CREDENTIAL))?)
            } else {
                None
            };
            if let Some(tok) = &t.resolved_token {
                check_token(tok).map_err(|r| invalid(field, r))?;
            }
        }
        Ok(())
    }

    /// One part of the `check-config` / startup summary.
    pub fn summary(&self) -> Option<String> {
        if !self.has_sinks() {
            return None;
        }
        let missing = self
            .telegram
            .iter()
            .filter(|t| t.resolved_token.is_none())
            .count();
        let mut s = format!(
            "notify: {} webhook(s), {} telegram, {} exec; language {}",
            self.webhook.len(),
            self.telegram.len(),
            self.exec.len(),
            match self.language {
                Language::En => "en",
                Language::Ru => "ru",
            }
        );
        if let Some(t) = self.daily_digest_at {
            s.push_str(&format!("; daily digest at {}", t.format("%H:%M")));
        }
        if missing > 0 {
            s.push_str(&format!(
                "; bot token expected from $CREDENTIALS_DIRECTORY/{TELEGRAM_CREDENTIAL} (not set here)"
            ));
        }
        Some(s)
    }
}

fn read_secret(field: &str, path: &Path) -> Result<Secret, ConfigError> {
    let text = crate::config::read_secret_file(field, path)?;
    let t = text.trim_end_matches(['\n', '\r']);
    if t.is_empty() {
        return Err(invalid(field, format!("{} is empty", path.display())));
    }
    Ok(Secret::new(t))
}

/// A bot token looks like `123456:AA...`; the reason never quotes it.
fn check_token(tok: &Secret) -> Result<(), String> {
    let t = tok.expose();
    let ok = t.split_once(':').is_some_and(|(id, rest)| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
            && !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    if ok {
        Ok(())
    } else {
        Err("is not a bot token (digits, ':', then letters, digits, '_' or '-')".into())
    }
}

/// The program must exist and be executable: an absolute path, or a name found in `$PATH`.
fn check_program(program: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let path = Path::new(program);
    if program.contains('/') {
        if !path.exists() {
            return Err(format!("{program:?} does not exist"));
        }
        if !executable(path) {
            return Err(format!("{program:?} is not an executable file"));
        }
        return Ok(());
    }
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| executable(&d.join(program))))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(format!("{program:?} is not an executable found in $PATH"))
    }
}

/// Checks the shape of an `http(s)://host[:port][/path]` URL; the reason never quotes user info
/// or the query (they may carry credentials).
pub fn check_url(url: &str) -> Result<(), String> {
    let shown = redact_url(url);
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Err(format!("{shown:?} is not a URL"));
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{shown:?} is not an http:// or https:// URL"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{shown:?} has no host"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{shown:?} contains whitespace"));
    }
    Ok(())
}

/// The URL for logs and `outbox`: scheme, host, port and path only.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "{}://{}{port}{}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.path()
            )
        }
        Err(_) => url
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .rsplit('@')
            .next()
            .unwrap_or("")
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_redacted() {
        assert!(check_url("http://127.0.0.1:8080/missed").is_ok());
        assert!(check_url("https://hooks.example.com/x?y=1").is_ok());
        assert!(check_url("http://[::1]:80/").is_ok());
        assert!(check_url("http://host:99999/").is_err());
        assert!(check_url("ftp://x/").is_err());
        assert!(check_url("127.0.0.1/x").is_err());
        let e = check_url("ftp://user:pw@h/p?token=abc").unwrap_err();
        assert!(!e.contains("pw") && !e.contains("abc"), "{e}");
        assert_eq!(
            redact_url("https://u:p@h.example:8443/hook?k=v"),
            "https://h.example:8443/hook"
        );
    }

    #[test]
    fn tokens_and_programs() {
        assert!(check_token(&Secret::new("123:AAbb-_9")).is_ok());
        assert!(check_token(&Secret::new("abc")).is_err());
        assert!(check_program("sh").is_ok());
        assert!(check_program("/bin/sh").is_ok());
        assert!(check_program("/nonexistent/prog").is_err());
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = dir.path().join("not-executable");
        std::fs::write(&plain, "#!/bin/sh\n").expect("write");
        assert!(check_program(&plain.display().to_string()).is_err());
        assert!(check_program("no-such-program-anywhere").is_err());
    }
}
