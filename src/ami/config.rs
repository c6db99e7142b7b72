//! The client's settings, which are also the `[ami]` table of the configuration file: one
//! struct, one set of defaults, for the daemon, the demo and anyone embedding the client.
//!
//! Keys ending in `_secs` are seconds (integer or fraction) held as [`Duration`]s. The secret is
//! a [`Secret`] (formatting prints `***`; a non-string or empty value is refused without
//! echoing it). Range checks that name the key live with the rest of the validation in
//! `config::ami`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::codec::DEFAULT_MAX_MESSAGE_BYTES;
use crate::secret::Secret;

/// AMI host: the PBX on the same machine.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// AMI port (Asterisk's `manager.conf` default).
pub const DEFAULT_PORT: u16 = 5038;
/// AMI user name (the read-only user of `asterisk-conf-examples/manager.conf`).
pub const DEFAULT_USERNAME: &str = "missedcalls";
/// Login method: MD5 challenge, so the secret never crosses the wire (Asterisk offers both).
pub const DEFAULT_AUTH: AuthMethod = AuthMethod::Md5;
/// Between our `Ping`s (AMI has no idle timeout: a dead peer is only noticed this way).
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(20);
/// Wait for a `Ping` reply (and any other reply) before reconnecting.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(10);
/// Wait for the TCP connection and the banner.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// First reconnect delay (doubles, with jitter, up to the maximum).
pub const DEFAULT_RECONNECT_MIN: Duration = Duration::from_secs(1);
/// Longest reconnect delay.
pub const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(30);
/// A connection up this long resets the reconnect delay to the minimum.
pub const DEFAULT_STABLE_AFTER: Duration = Duration::from_secs(60);
/// Default [`ClientConfig::read_pause`]: Asterisk writes each event on its own, so at a busy
/// PBX's thousands of events a second, reading as soon as data arrives means one wake-up of the
/// reader and the pipeline thread per event. Pausing 15 ms after a small read lets the kernel
/// gather the events of those 15 ms into one read (about 35 KiB at 5,000 events/s); a read of
/// [`super::client::PAUSE_BELOW_BYTES`] or more (a burst) is followed by the next one at once,
/// so the socket buffer never fills behind a pause. The pause is part of the live latency
/// budget (a missed call visible within 50 ms of its `Hangup`: p99 about 35 ms at 15 ms, 44 ms
/// at 20 ms, 21 ms at 10 ms, which costs about a third more CPU).
pub const DEFAULT_READ_PAUSE: Duration = Duration::from_millis(15);

/// How the client proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// `Action: Login` with `Secret:` in clear text (fine on localhost).
    Plain,
    /// `Action: Challenge` then `Login` with `Key: md5(challenge + secret)`.
    Md5,
}

impl AuthMethod {
    /// The config file's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Plain => "plain",
            AuthMethod::Md5 => "md5",
        }
    }
}

/// Everything the client needs; `[ami]` in the configuration file. [`Default`] and
/// [`ClientConfig::new`] give the documented defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// PBX host name or address.
    pub host: String,
    /// AMI port, 1..65535.
    #[serde(deserialize_with = "de_port")]
    pub port: u16,
    /// AMI user (`manager.conf` section).
    pub username: String,
    /// The user's secret. Empty in the file means "read it from `secret_file` or the systemd
    /// credential"; configuration loading fills it in before the client sees it.
    #[serde(deserialize_with = "de_secret")]
    pub secret: Secret,
    /// A file holding the secret (used by configuration loading only; the client ignores it).
    pub secret_file: Option<PathBuf>,
    /// Plain or MD5 challenge login.
    pub auth: AuthMethod,
    /// How often to send `Ping`.
    #[serde(rename = "ping_interval_secs", deserialize_with = "secs")]
    pub ping_interval: Duration,
    /// How long to wait for the `Pong` (and any other reply) before reconnecting.
    #[serde(rename = "ping_timeout_secs", deserialize_with = "secs")]
    pub ping_timeout: Duration,
    /// First reconnect delay.
    #[serde(rename = "reconnect_min_secs", deserialize_with = "secs")]
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    #[serde(rename = "reconnect_max_secs", deserialize_with = "secs")]
    pub backoff_max: Duration,
    /// A connection that stayed up this long resets the backoff.
    #[serde(rename = "stable_after_secs", deserialize_with = "secs")]
    pub stable_after: Duration,
    /// Cap on one message; larger ones are skipped with one warning.
    pub max_message_bytes: usize,
    /// TCP connect and banner timeout.
    #[serde(rename = "connect_timeout_secs", deserialize_with = "secs")]
    pub connect_timeout: Duration,
    /// After a read that found only a little data, wait this long before reading again (zero
    /// reads as soon as data arrives). Only a client started with
    /// [`super::client::spawn_dedicated`] pauses. Not a configuration key.
    #[serde(skip, default = "default_read_pause")]
    pub read_pause: Duration,
}

fn default_read_pause() -> Duration {
    DEFAULT_READ_PAUSE
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            host: DEFAULT_HOST.to_string(),
            port: DEFAULT_PORT,
            username: DEFAULT_USERNAME.to_string(),
            secret: Secret::default(),
            secret_file: None,
            auth: DEFAULT_AUTH,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_timeout: DEFAULT_PING_TIMEOUT,
            backoff_min: DEFAULT_RECONNECT_MIN,
            backoff_max: DEFAULT_RECONNECT_MAX,
            stable_after: DEFAULT_STABLE_AFTER,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_pause: DEFAULT_READ_PAUSE,
        }
    }
}

impl ClientConfig {
    /// The defaults with this peer and login.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        username: impl Into<String>,
        secret: Secret,
    ) -> Self {
        ClientConfig {
            host: host.into(),
            port,
            username: username.into(),
            secret,
            ..ClientConfig::default()
        }
    }
}

fn de_port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let n = i64::deserialize(d)?;
    u16::try_from(n)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| serde::de::Error::custom(format!("must be 1..65535, got {n}")))
}

/// Seconds (integer or fraction) as a [`Duration`]; negative, NaN or huge values are refused.
fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let v = f64::deserialize(d)?;
    Duration::try_from_secs_f64(v)
        .map_err(|_| serde::de::Error::custom(format!("{v} is not a number of seconds")))
}

/// A string secret; any other type, or an empty or multi-line string, is refused without
/// repeating the value (serde's own "invalid type" message would quote it).
fn de_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    const NOT_A_STRING: &str = "must be a quoted string (the value is not shown)";
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Secret;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a quoted string")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Secret, E> {
            if s.is_empty() {
                return Err(E::custom("is empty"));
            }
            if s.contains(['\r', '\n']) {
                return Err(E::custom("contains a line break"));
            }
            Ok(Secret::new(s))
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
            Err(serde::de::Error::custom(NOT_A_STRING))
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
            Err(serde::de::Error::custom(NOT_A_STRING))
        }
    }
    d.deserialize_any(V)
}
