//! The outbox model and its policies, pure: which sink and recipient gets which event
//! ([`Routes`]), when a failed delivery is tried again ([`retry_delay`]), and when a held one
//! may go ([`due_at`]). No I/O, no clock: time is passed in.

use std::collections::BTreeMap;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::EventKind;
use super::config::{self, NotifyConfig};
use crate::callbacks::sla::Calendar;
use crate::time::EventTime;

/// First retry delay; doubles per attempt up to [`MAX_RETRY`].
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Longest delay between two attempts.
pub const MAX_RETRY: Duration = Duration::from_secs(300);
/// A `Retry-After` longer than this is cut to it (a receiver cannot park us for days).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Which kind of sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    /// `[[notify.webhook]]`.
    Webhook,
    /// `[[notify.telegram]]`.
    Telegram,
    /// `[[notify.exec]]`.
    Exec,
}

/// Who of a sink gets an event.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Recipients {
    /// Webhook and exec: the sink itself.
    Sink,
    /// Telegram: manager chats get everything; an agent's chat gets the missed calls that rang
    /// the agent and the agent's tasks gone overdue.
    Chats {
        managers: Vec<i64>,
        agents: BTreeMap<String, i64>,
    },
}

/// One configured sink as the outbox sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Stable key stored in `outbox.sink`: kind and a hash of what identifies its target.
    pub key: String,
    /// For people: a URL without secrets, `telegram`, or the program.
    pub target: String,
    /// Webhook, Telegram or exec.
    pub kind: SinkKind,
    /// Hold while the calendar is closed.
    pub quiet_outside_hours: bool,
    events: Vec<EventKind>,
    recipients: Recipients,
}

/// One row to write: a sink and a recipient (`""` unless Telegram).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `outbox.sink`.
    pub sink: String,
    /// `outbox.target`.
    pub target: String,
    /// `outbox.recipient`.
    pub recipient: String,
}

/// What the event is about, for routing.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A missed call and the agents it rang.
    MissedCall {
        /// Extensions rung, in order (duplicates allowed).
        agents: &'a [&'a str],
    },
    /// An overdue task and its assignee.
    TaskOverdue {
        /// The task's assignee extension.
        assignee: Option<&'a str>,
    },
    /// The daily digest: managers only.
    DailyDigest,
}

impl Subject<'_> {
    fn kind(&self) -> EventKind {
        match self {
            Subject::MissedCall { .. } => EventKind::MissedCall,
            Subject::TaskOverdue { .. } => EventKind::TaskOverdue,
            Subject::DailyDigest => EventKind::DailyDigest,
        }
    }
}

fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..4])
}

/// The routes of every configured sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes(Vec<Route>);

impl Routes {
    /// Routes for `cfg`'s sinks (none: no notification rows are written at all).
    pub fn new(cfg: &NotifyConfig) -> Routes {
        let events = |e: &Option<Vec<EventKind>>| -> Vec<EventKind> {
            EventKind::ALL
                .into_iter()
                .filter(|k| config::wants(e, *k))
                .collect()
        };
        let mut out = Vec::new();
        for w in &cfg.webhook {
            out.push(Route {
                key: format!("webhook:{}", short_hash(&[&w.url])),
                target: config::redact_url(&w.url),
                kind: SinkKind::Webhook,
                quiet_outside_hours: w.quiet_outside_hours,
                events: events(&w.events),
                recipients: Recipients::Sink,
            });
        }
        for t in &cfg.telegram {
            // The bot's numeric id (before ':') names the bot without exposing the token.
            let bot = t
                .resolved_token
                .as_ref()
                .and_then(|s| s.expose().split_once(':').map(|(id, _)| id.to_string()))
                .unwrap_or_default();
            out.push(Route {
                key: format!("telegram:{}", short_hash(&[&t.api_url, &bot])),
                target: format!("telegram bot {bot}"),
                kind: SinkKind::Telegram,
                quiet_outside_hours: t.quiet_outside_hours,
                events: events(&t.events),
                recipients: Recipients::Chats {
                    managers: t.chat_ids.clone(),
                    agents: t.agents.clone(),
                },
            });
        }
        for e in &cfg.exec {
            let argv: Vec<&str> = e.command.iter().map(String::as_str).collect();
            out.push(Route {
                key: format!("exec:{}", short_hash(&argv)),
                target: e.command.first().cloned().unwrap_or_default(),
                kind: SinkKind::Exec,
                quiet_outside_hours: e.quiet_outside_hours,
                events: events(&e.events),
                recipients: Recipients::Sink,
            });
        }
        Routes(out)
    }

    /// No sink at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every route.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.0.iter()
    }

    /// The route with stored key `key`.
    pub fn get(&self, key: &str) -> Option<&Route> {
        self.0.iter().find(|r| r.key == key)
    }

    /// The rows to write for one event: one per sink that takes it, and per Telegram chat.
    pub fn deliveries(&self, subject: Subject<'_>) -> Vec<Delivery> {
        let kind = subject.kind();
        let mut out = Vec::new();
        for r in self.0.iter().filter(|r| r.events.contains(&kind)) {
            let row = |recipient: String| Delivery {
                sink: r.key.clone(),
                target: r.target.clone(),
                recipient,
            };
            match &r.recipients {
                Recipients::Sink => out.push(row(String::new())),
                Recipients::Chats { managers, agents } => {
                    let mut chats: Vec<i64> = managers.clone();
                    let concerned: Vec<&str> = match subject {
                        Subject::MissedCall { agents } => agents.to_vec(),
                        Subject::TaskOverdue { assignee } => assignee.into_iter().collect(),
                        Subject::DailyDigest => Vec::new(),
                    };
                    for a in concerned {
                        if let Some(chat) = agents.get(a) {
                            chats.push(*chat);
                        }
                    }
                    let mut seen = Vec::new();
                    for c in chats {
                        if !seen.contains(&c) {
                            seen.push(c);
                            out.push(row(c.to_string()));
                        }
                    }
                }
            }
        }
        out
    }
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// The receiver took it.
    Delivered,
    /// Try again later; `retry_after` when the receiver said when.
    Retry {
        /// What went wrong (no secrets).
        reason: String,
        /// `Retry-After` / Telegram `retry_after`.
        retry_after: Option<Duration>,
    },
    /// The receiver refused it for good (e.g. HTTP 400): failed at once.
    Refused {
        /// What the receiver said.
        reason: String,
    },
}

/// What to write back after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Mark delivered.
    Delivered,
    /// Keep pending until `at`.
    RetryAt {
        /// Next attempt.
        at: EventTime,
        /// Last error.
        reason: String,
    },
    /// Mark failed (refused, or retried past the give-up time).
    Failed {
        /// Why.
        reason: String,
    },
}

/// The delay before attempt `attempts + 1` after `attempts` failures: 1 s doubling to 5 min,
/// times a jitter factor in [0.8, 1.2) from `jitter` in [0, 1); a receiver's `retry_after`
/// wins when longer (capped at [`MAX_RETRY_AFTER`]).
pub fn retry_delay(attempts: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
    let exp = attempts.saturating_sub(1).min(20);
    let base = FIRST_RETRY
        .saturating_mul(1u32 << exp)
        .min(MAX_RETRY)
        .as_secs_f64();
    let jittered = Duration::from_secs_f64(base * (0.8 + 0.4 * jitter.clamp(0.0, 1.0)));
    match retry_after {
        Some(ra) => ra.min(MAX_RETRY_AFTER).max(jittered.min(ra)),
        None => jittered,
    }
}

/// Decides what an attempt means for the row: `attempts` counts this one, `first_attempt` is
/// when the first attempt was made.
pub fn next_after(
    attempt: Attempt,
    attempts: u32,
    first_attempt: EventTime,
    now: EventTime,
    give_up_after: Duration,
    jitter: f64,
) -> Next {
    match attempt {
        Attempt::Delivered => Next::Delivered,
        Attempt::Refused { reason } => Next::Failed { reason },
        Attempt::Retry {
            reason,
            retry_after,
        } => {
            let delay = retry_delay(attempts, retry_after, jitter);
            let at = now.plus(delay);
            let give_up = first_attempt.plus(give_up_after);
            if now >= give_up {
                return Next::Failed {
                    reason: format!("{reason}; given up after {attempts} attempts"),
                };
            }
            // The last try lands exactly at the give-up time.
            let at = at.min(give_up);
            Next::RetryAt { at, reason }
        }
    }
}

/// When a row of a sink may be attempted: now, or for a quiet sink while the calendar is
/// closed, the calendar's next opening (`None`: never open, so not held).
pub fn due_at(quiet: bool, calendar: &Calendar, now: EventTime) -> EventTime {
    if !quiet || calendar.is_working_time(now) {
        return now;
    }
    calendar.next_opening(now).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::config::{ExecConfig, TelegramConfig, WebhookConfig};

    fn cfg() -> NotifyConfig {
        let mut c = NotifyConfig::default();
        c.webhook.push(WebhookConfig {
            url: "http://127.0.0.1:1/x?token=s".into(),
            events: Some(vec![EventKind::MissedCall]),
            secret: None,
            secret_file: None,
            headers: BTreeMap::new(),
            timeout_secs: 5.0,
            quiet_outside_hours: false,
        });
        c.telegram.push(TelegramConfig {
            bot_token: None,
            bot_token_file: None,
            chat_ids: vec![-100, 7],
            agents: BTreeMap::from([("101".into(), 11), ("102".into(), 12), ("103".into(), 7)]),
            api_url: "http://127.0.0.1:2".into(),
            events: None,
            timeout_secs: 5.0,
            quiet_outside_hours: true,
            resolved_token: Some(crate::secret::Secret::new("42:abc")),
        });
        c.exec.push(ExecConfig {
            command: vec!["/bin/true".into()],
            timeout_secs: 1.0,
            events: Some(vec![EventKind::TaskOverdue]),
            quiet_outside_hours: false,
        });
        c
    }

    fn recipients(d: &[Delivery]) -> Vec<String> {
        d.iter()
            .map(|d| format!("{}/{}", d.sink.split(':').next().unwrap_or(""), d.recipient))
            .collect()
    }

    #[test]
    fn routes_follow_events_and_agents() {
        let r = Routes::new(&cfg());
        let d = r.deliveries(Subject::MissedCall {
            agents: &["101", "103", "101", "999"],
        });
        assert_eq!(
            recipients(&d),
            ["webhook/", "telegram/-100", "telegram/7", "telegram/11"]
        );
        assert_eq!(d[0].target, "http://127.0.0.1:1/x");
        assert_eq!(
            r.iter().nth(1).map(|r| r.target.as_str()),
            Some("telegram bot 42")
        );
        let d = r.deliveries(Subject::TaskOverdue {
            assignee: Some("102"),
        });
        assert_eq!(
            recipients(&d),
            ["telegram/-100", "telegram/7", "telegram/12", "exec/"]
        );
        let d = r.deliveries(Subject::DailyDigest);
        assert_eq!(recipients(&d), ["telegram/-100", "telegram/7"]);
        // Keys are stable and independent of order.
        let mut reordered = cfg();
        reordered.webhook.push(reordered.webhook[0].clone());
        reordered.webhook[0].url = "http://other/".into();
        assert_eq!(
            Routes::new(&reordered).iter().nth(1).map(|r| r.key.clone()),
            r.iter().next().map(|r| r.key.clone())
        );
    }

    #[test]
    fn backoff_doubles_to_five_minutes_with_jitter() {
        let s = |n, j| retry_delay(n, None, j).as_secs_f64();
        assert_eq!(s(1, 0.5), 1.0);
        assert_eq!(s(2, 0.5), 2.0);
        assert_eq!(s(5, 0.5), 16.0);
        assert_eq!(s(9, 0.5), 256.0);
        assert_eq!(s(10, 0.5), 300.0);
        assert_eq!(s(60, 0.5), 300.0);
        assert!((s(3, 0.0) - 3.2).abs() < 1e-9 && (s(3, 0.999) - 4.8).abs() < 0.01);
        let ra = |n, secs| retry_delay(n, Some(Duration::from_secs(secs)), 0.5).as_secs();
        assert_eq!(ra(1, 30), 30);
        assert_eq!(ra(9, 2), 2);
        assert_eq!(ra(1, 86_400), 3600);
    }

    #[test]
    fn give_up_after_the_limit() {
        let t0 = EventTime(1_000_000);
        let day = Duration::from_secs(86_400);
        let retry = || Attempt::Retry {
            reason: "HTTP 503".into(),
            retry_after: None,
        };
        assert_eq!(
            next_after(retry(), 1, t0, t0, day, 0.5),
            Next::RetryAt {
                at: t0.plus(Duration::from_secs(1)),
                reason: "HTTP 503".into()
            }
        );
        let late = t0.plus(day);
        assert!(matches!(
            next_after(retry(), 40, t0, late, day, 0.5),
            Next::Failed { reason } if reason.contains("given up after 40 attempts")
        ));
        let almost = EventTime(late.0 - 10_000_000);
        assert_eq!(
            next_after(retry(), 40, t0, almost, day, 0.5),
            Next::RetryAt {
                at: late,
                reason: "HTTP 503".into()
            }
        );
        assert!(matches!(
            next_after(
                Attempt::Refused {
                    reason: "HTTP 400".into()
                },
                1,
                t0,
                t0,
                day,
                0.5
            ),
            Next::Failed { .. }
        ));
    }
}
