//! Telegram sink: Bot API `sendMessage` (`parse_mode = HTML`) to one chat per outbox row.
//! `ok: true` = delivered; 429 waits `parameters.retry_after`; 5xx, refused or timed out =
//! retry; other errors (chat not found, bot blocked) = failed at once with Telegram's
//! `description`. The token is part of the request path, so no error text ever carries the URL.

use std::time::Duration;

use serde_json::{Value, json};

use super::config::TelegramConfig;
use super::outbox::Attempt;
use super::webhook::{classify_status, describe_error};
use crate::secret::Secret;

/// One configured bot.
#[derive(Debug, Clone)]
pub struct Telegram {
    client: reqwest::Client,
    api_url: String,
    token: Secret,
    /// For logs: `telegram bot <id>`.
    pub shown: String,
}

impl Telegram {
    /// Builds the client; the token must have been resolved.
    pub fn new(cfg: &TelegramConfig) -> anyhow::Result<Telegram> {
        let token = cfg.resolved_token.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "bot_token: not set; give bot_token, bot_token_file or the systemd credential \
                 $CREDENTIALS_DIRECTORY/{}",
                super::config::TELEGRAM_CREDENTIAL
            )
        })?;
        let bot = token.expose().split(':').next().unwrap_or("").to_string();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(cfg.timeout_secs))
            .connect_timeout(Duration::from_secs_f64(cfg.timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Telegram {
            client,
            api_url: cfg.api_url.trim_end_matches('/').to_string(),
            token,
            shown: format!("telegram bot {bot}"),
        })
    }

    /// Sends `text` to `chat`.
    pub async fn send(&self, chat: &str, text: &str) -> (Attempt, Option<reqwest::Error>) {
        let chat_id: Value = chat
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(chat));
        let url = format!("{}/bot{}/sendMessage", self.api_url, self.token.expose());
        let body = json!({
            "chat_id": chat_id,
            "text": text,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": true},
        });
        let resp = match self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
        {
            Ok(r) => r,
            Err(err) => {
                let err = err.without_url();
                let reason = describe_error(&err, &self.shown);
                return (
                    Attempt::Retry {
                        reason,
                        retry_after: None,
                    },
                    Some(err),
                );
            }
        };
        let status = resp.status().as_u16();
        let answer: Value = resp
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        if answer["ok"] == Value::Bool(true) {
            return (Attempt::Delivered, None);
        }
        let retry_after = answer["parameters"]["retry_after"]
            .as_u64()
            .map(Duration::from_secs);
        let detail = answer["description"].as_str().unwrap_or("");
        let attempt = match classify_status(status, retry_after, detail) {
            // A 200 without `ok: true` is not a delivery.
            Attempt::Delivered => Attempt::Retry {
                reason: format!("HTTP {status} without ok: true"),
                retry_after: None,
            },
            other => other,
        };
        (attempt, None)
    }
}
