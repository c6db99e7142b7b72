//! Actions we send to Asterisk: builders, ActionID generation and safe encoding.
//!
//! Values are sanitized when set (CR, LF and NUL become spaces, so a value can never inject a
//! header), and encoding refuses what Asterisk would reject anyway: a line over 1024 bytes or
//! more than 128 lines (AMI-FACTS 9). Secrets (`Secret`, the MD5 `Key`) are masked in `Debug`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, BytesMut};
use md5::{Digest, Md5};

use crate::secret::Secret;

/// Longest line Asterisk accepts from a client, line end included.
pub const MAX_LINE_BYTES: usize = 1024;
/// Most lines (headers) Asterisk accepts in one action.
pub const MAX_LINES: usize = 128;
/// Prefix of every ActionID we generate.
pub const ACTION_ID_PREFIX: &str = "missedcalld-";

static NEXT_ACTION_ID: AtomicU64 = AtomicU64::new(1);

/// Why an action could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// One header line would exceed [`MAX_LINE_BYTES`].
    #[error(
        "action {action}: header {key} makes a {len}-byte line, AMI accepts at most {MAX_LINE_BYTES}"
    )]
    LineTooLong {
        /// Action name.
        action: String,
        /// The offending header key.
        key: String,
        /// Line length including CRLF.
        len: usize,
    },
    /// The action has more than [`MAX_LINES`] lines.
    #[error("action {action} has {lines} lines, AMI accepts at most {MAX_LINES}")]
    TooManyLines {
        /// Action name.
        action: String,
        /// Number of lines (Action and ActionID included).
        lines: usize,
    },
}

/// A header value; secret ones are masked in `Debug`.
#[derive(Clone, PartialEq, Eq)]
enum Value {
    Plain(String),
    Secret(Secret),
}

impl Value {
    fn as_str(&self) -> &str {
        match self {
            Value::Plain(s) => s,
            Value::Secret(s) => s.expose(),
        }
    }
}

/// One AMI action: name, ActionID and ordered headers.
#[derive(Clone, PartialEq, Eq)]
pub struct Action {
    name: String,
    action_id: String,
    headers: Vec<(String, Value)>,
}

/// Replaces bytes that would end a line or a string on the PBX side.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if matches!(c, '\r' | '\n' | '\0') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Keys also lose colons, which would move the key/value split.
fn sanitize_key(s: &str) -> String {
    s.chars()
        .map(|c| {
            if matches!(c, '\r' | '\n' | '\0' | ':') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// A fresh `missedcalld-<n>` ActionID, unique within this process.
pub fn next_action_id() -> String {
    format!(
        "{ACTION_ID_PREFIX}{}",
        NEXT_ACTION_ID.fetch_add(1, Ordering::Relaxed)
    )
}

/// The MD5 login key: lowercase hex of `md5(challenge + secret)` (AMI-FACTS 13).
pub fn md5_key(challenge: &str, secret: &Secret) -> String {
    let mut h = Md5::new();
    h.update(challenge.as_bytes());
    h.update(secret.expose().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl Action {
    /// A new action with a fresh ActionID and no headers.
    pub fn new(name: &str) -> Self {
        Action {
            name: sanitize_key(name),
            action_id: next_action_id(),
            headers: Vec::new(),
        }
    }

    /// Adds a header (sanitized: CR, LF and NUL become spaces; colons in the key too).
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.headers
            .push((sanitize_key(key), Value::Plain(sanitize(value))));
        self
    }

    fn with_secret(mut self, key: &str, value: &str) -> Self {
        self.headers.push((
            sanitize_key(key),
            Value::Secret(Secret::new(sanitize(value))),
        ));
        self
    }

    /// Replaces the generated ActionID (tests, or correlating with an external id).
    pub fn with_action_id(mut self, id: &str) -> Self {
        self.action_id = sanitize(id);
        self
    }

    /// `Action: Login` with a plain secret.
    pub fn login(username: &str, secret: &Secret) -> Self {
        Action::new("Login")
            .with("Username", username)
            .with_secret("Secret", secret.expose())
    }

    /// `Action: Login` with `AuthType: MD5` and `Key: hex(md5(challenge + secret))`.
    pub fn login_md5(username: &str, key_hex: &str) -> Self {
        Action::new("Login")
            .with("AuthType", "MD5")
            .with("Username", username)
            .with_secret("Key", key_hex)
    }

    /// `Action: Challenge` with `AuthType: MD5`; the reply carries `Challenge: <n>`.
    pub fn challenge() -> Self {
        Action::new("Challenge").with("AuthType", "MD5")
    }

    /// `Action: Ping`, our keep-alive (reply `Ping: Pong`).
    pub fn ping() -> Self {
        Action::new("Ping")
    }

    /// `Action: CoreShowChannels`, an EventList of `CoreShowChannel` items.
    pub fn core_show_channels() -> Self {
        Action::new("CoreShowChannels")
    }

    /// `Action: Logoff`.
    pub fn logoff() -> Self {
        Action::new("Logoff")
    }

    /// The action's name (`Login`, `Ping`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The ActionID Asterisk will echo in the reply and in list items.
    pub fn action_id(&self) -> &str {
        &self.action_id
    }

    /// The first value of `key` (ASCII case-insensitive), secrets included.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// Appends `Action: X\r\nActionID: id\r\nKey: V\r\n...\r\n` to `dst`.
    ///
    /// Nothing is written when the action breaks a limit of Asterisk's parser.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), ActionError> {
        let lines = self.headers.len() + 2;
        if lines > MAX_LINES {
            return Err(ActionError::TooManyLines {
                action: self.name.clone(),
                lines,
            });
        }
        let lines = [
            ("Action", self.name.as_str()),
            ("ActionID", self.action_id.as_str()),
        ]
        .into_iter()
        .chain(self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut total = 2;
        for (k, v) in lines.clone() {
            let len = k.len() + 2 + v.len() + 2;
            if len > MAX_LINE_BYTES {
                return Err(ActionError::LineTooLong {
                    action: self.name.clone(),
                    key: k.to_owned(),
                    len,
                });
            }
            total += len;
        }
        dst.reserve(total);
        for (k, v) in lines {
            dst.put_slice(k.as_bytes());
            dst.put_slice(b": ");
            dst.put_slice(v.as_bytes());
            dst.put_slice(b"\r\n");
        }
        dst.put_slice(b"\r\n");
        Ok(())
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        m.entry(&"Action", &self.name);
        m.entry(&"ActionID", &self.action_id);
        for (k, v) in &self.headers {
            match v {
                Value::Plain(s) => m.entry(k, s),
                Value::Secret(s) => m.entry(k, s),
            };
        }
        m.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(a: &Action) -> String {
        let mut b = BytesMut::new();
        a.encode(&mut b).expect("encodes");
        String::from_utf8(b.to_vec()).expect("utf-8")
    }

    #[test]
    fn login_encodes_in_order_and_hides_secret_in_debug() {
        let a = Action::login("missedcalls", &Secret::new("s3cr3t")).with_action_id("L1");
        assert_eq!(
            encoded(&a),
            "Action: Login\r\nActionID: L1\r\nUsername: missedcalls\r\nSecret: s3cr3t\r\n\r\n"
        );
        let dbg = format!("{a:?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert!(dbg.contains("***"), "{dbg}");
        let md5 = Action::login_md5("u", "0123abcd");
        assert!(!format!("{md5:?}").contains("0123abcd"));
    }

    #[test]
    fn action_ids_are_unique_and_prefixed() {
        let a = Action::ping();
        let b = Action::ping();
        assert!(a.action_id().starts_with(ACTION_ID_PREFIX));
        assert_ne!(a.action_id(), b.action_id());
    }

    #[test]
    fn values_cannot_inject_headers() {
        let a = Action::new("Ping")
            .with("Variable", "x\r\nAction: Originate\0")
            .with("Bad:Key\n", "v")
            .with_action_id("p");
        assert_eq!(
            encoded(&a),
            "Action: Ping\r\nActionID: p\r\nVariable: x  Action: Originate \r\nBad Key : v\r\n\r\n"
        );
    }

    #[test]
    fn limits_are_enforced() {
        let long = "x".repeat(1020);
        let err = Action::new("Ping")
            .with("K", &long)
            .encode(&mut BytesMut::new());
        assert_eq!(
            err,
            Err(ActionError::LineTooLong {
                action: "Ping".into(),
                key: "K".into(),
                len: 1025
            })
        );
        let ok = "x".repeat(1019);
        assert!(
            Action::new("Ping")
                .with("K", &ok)
                .encode(&mut BytesMut::new())
                .is_ok()
        );
        let mut a = Action::new("Ping");
        for i in 0..127 {
            a = a.with("V", &i.to_string());
        }
        let mut buf = BytesMut::new();
        assert_eq!(
            a.encode(&mut buf),
            Err(ActionError::TooManyLines {
                action: "Ping".into(),
                lines: 129
            })
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn md5_key_matches_known_digest() {
        // md5("1234" + "secret") computed independently with coreutils md5sum.
        assert_eq!(
            md5_key("1234", &Secret::new("secret")),
            "10b168cd4f742410888c3c110f7a7e71"
        );
    }
}
