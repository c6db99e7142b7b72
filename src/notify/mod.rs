//! Notifications (SPEC section 7): who hears about a missed call, an overdue task and the day's
//! figures, and how it reaches them at least once.
//!
//! ```text
//!  store writer ──(same transaction)──▶ notifications + outbox rows ──▶ worker thread
//!                                                                        │ due rows, backoff,
//!                                                                        ▼ quiet hours, give-up
//!                                                    webhook (HTTP) · telegram (Bot API) · exec
//! ```
//! Invariants: the pure parts ([`outbox`] routing and retry policy, [`payload`], [`text`]) do no
//! I/O and read no clock; the worker runs on its own thread and runtime, so a slow or hanging
//! receiver never delays the AMI reader, the tracker or the store writer; every row stays in
//! SQLite until it is delivered or given up, so nothing pending is lost to a restart.

pub mod config;
pub mod exec;
pub mod list;
pub mod outbox;
pub mod payload;
pub mod telegram;
pub mod text;
pub mod webhook;
pub mod worker;

use serde::{Deserialize, Serialize};

pub use config::NotifyConfig;

/// What a notification announces (contract spelling in `event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A missed call, withheld ones included.
    MissedCall,
    /// An open task passed its deadline (once per task).
    TaskOverdue,
    /// The manager's summary of yesterday, at `daily_digest_at`.
    DailyDigest,
}

impl EventKind {
    /// Every kind, in contract order.
    pub const ALL: [EventKind; 3] = [
        EventKind::MissedCall,
        EventKind::TaskOverdue,
        EventKind::DailyDigest,
    ];

    /// The contract spelling (`missed_call`, ...), as stored in `notifications.event`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MissedCall => "missed_call",
            EventKind::TaskOverdue => "task_overdue",
            EventKind::DailyDigest => "daily_digest",
        }
    }

    /// Reads the stored spelling back.
    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Now on this machine's clock, in the type the outbox stores: notification times (created,
/// due, attempted) are the daemon's own, compared with its own clock, never with the PBX's.
pub fn wall_now() -> crate::time::EventTime {
    crate::time::EventTime(crate::time::LocalTime::now().as_micros())
}
