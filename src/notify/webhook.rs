//! Webhook sink: `POST` of the JSON payload with `Idempotency-Key`, optional
//! `X-Missedcalld-Signature: sha256=<hex>` (HMAC-SHA256 of the body, as GitHub signs its
//! webhooks) and custom headers. 2xx = delivered; 408, 429, 5xx, refused or timed out = retry
//! (honouring `Retry-After`); any other status = failed at once.
//!
//! The HTTP client is reqwest with rustls (no OpenSSL on the PBX host).

use std::time::Duration;

use hmac::{KeyInit, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use sha2::Sha256;

use super::config::{WebhookConfig, redact_url};
use super::outbox::Attempt;
use crate::secret::Secret;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Missedcalld-Signature";

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// How an HTTP status maps to an attempt outcome.
pub fn classify_status(status: u16, retry_after: Option<Duration>, detail: &str) -> Attempt {
    let reason = if detail.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {detail}")
    };
    match status {
        200..=299 => Attempt::Delivered,
        408 | 429 | 500..=599 => Attempt::Retry {
            reason,
            retry_after,
        },
        _ => Attempt::Refused { reason },
    }
}

/// Reads `Retry-After`: delta seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// Why a request got no answer, in words an admin can act on. Never includes the URL (it may
/// carry a token): `target` is the redacted one.
pub fn describe_error(err: &reqwest::Error, target: &str) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.raw_os_error() {
                Some(1) | Some(13) => {
                    return format!(
                        "cannot connect to {target}: {io} (blocked on this host: under systemd, \
                         IPAddressAllow= of missedcalld.service must include the receiver; \
                         docs/notifications.md)"
                    );
                }
                _ if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return format!("cannot connect to {target}: connection refused");
                }
                _ => {}
            }
        }
        source = e.source();
    }
    if err.is_timeout() {
        format!("{target}: no answer within the time limit")
    } else if err.is_connect() {
        let inner = std::error::Error::source(err)
            .map(|s| s.to_string())
            .unwrap_or_default();
        format!("cannot connect to {target}: {inner}")
    } else {
        format!("{target}: {}", err_text(err))
    }
}

/// An error's text with its causes, never the URL.
fn err_text(err: &reqwest::Error) -> String {
    let mut s = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = source {
        if !s.is_empty() {
            s.push_str(": ");
        }
        s.push_str(&e.to_string());
        source = e.source();
    }
    if s.is_empty() {
        "request failed".to_string()
    } else {
        s
    }
}

/// True when the error says the receiver could not be reached at all (for the log line).
pub fn is_connect_error(err: &reqwest::Error) -> bool {
    err.is_connect()
}

/// One configured webhook.
#[derive(Debug, Clone)]
pub struct Webhook {
    client: reqwest::Client,
    url: String,
    /// The URL without user info or query, for logs.
    pub shown: String,
    secret: Option<Secret>,
    headers: HeaderMap,
}

impl Webhook {
    /// Builds the client (rustls, the sink's time limit, no redirects: a redirect to another
    /// host must not receive the signature and headers).
    pub fn new(cfg: &WebhookConfig) -> anyhow::Result<Webhook> {
        let mut headers = HeaderMap::new();
        for (name, value) in &cfg.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| anyhow::anyhow!("header name {name:?} is invalid"))?;
            let mut v = HeaderValue::from_str(value.expose())
                .map_err(|_| anyhow::anyhow!("the value of header {name:?} is invalid"))?;
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(cfg.timeout_secs))
            .connect_timeout(Duration::from_secs_f64(cfg.timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("missedcalld/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Webhook {
            client,
            url: cfg.url.clone(),
            shown: redact_url(&cfg.url),
            secret: cfg.secret.clone(),
            headers,
        })
    }

    /// Sends one payload; `Err` carries the transport error for the connect log line.
    pub async fn send(&self, id: &str, body: &str) -> (Attempt, Option<reqwest::Error>) {
        let mut req = self
            .client
            .post(&self.url)
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", id)
            .body(body.to_string());
        if let Some(secret) = &self.secret {
            req = req.header(
                SIGNATURE_HEADER,
                signature(secret.expose().as_bytes(), body.as_bytes()),
            );
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                (classify_status(status, retry_after, ""), None)
            }
            Err(err) => {
                let err = err.without_url();
                let reason = describe_error(&err, &self.shown);
                (
                    Attempt::Retry {
                        reason,
                        retry_after: None,
                    },
                    Some(err),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_githubs_example() {
        // docs.github.com "Validating webhook deliveries": secret "It's a Secret to Everybody",
        // payload "Hello, World!".
        assert_eq!(
            signature(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn statuses_and_retry_after() {
        assert_eq!(classify_status(204, None, ""), Attempt::Delivered);
        for s in [408, 429, 500, 503] {
            assert!(
                matches!(classify_status(s, None, ""), Attempt::Retry { .. }),
                "{s}"
            );
        }
        for s in [400, 401, 404, 410] {
            assert!(
                matches!(classify_status(s, None, ""), Attempt::Refused { .. }),
                "{s}"
            );
        }
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
