//! Callback tasks: number normalization, SLA deadlines, task rules. Pure, no I/O.
//!
//! [`decide`] holds every task rule; the store only runs the [`TaskOp`] it returns. The task
//! vocabulary ([`TaskId`], [`TaskStatus`], [`ShownStatus`]) is in [`task`].

pub mod decide;
pub mod number;
pub mod sla;
pub mod task;

pub use decide::{
    OpenTask, TaskEffect, TaskOp, TaskRules, assignee_for, decide, effect_on_task, reached_at,
};
pub use task::{ShownStatus, TaskId, TaskStatus};

use chrono::NaiveTime;
use serde::{Deserialize, Deserializer};

/// Default minutes to call back a miss inside working hours.
pub const DEFAULT_SLA_MINUTES: u32 = 10;
/// Default local time by which off-hours misses are due on the next working day.
pub const DEFAULT_OFFHOURS_DEADLINE: &str = "10:00";
/// Default minimum conversation for an outbound callback to count as done.
pub const DEFAULT_MIN_TALK_SECONDS: u32 = 0;

/// Which answered calls with the task's number close it (`complete_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompleteOn {
    /// Any answered call, inbound or outbound.
    #[default]
    Any,
    /// Only the client calling again and being answered.
    Inbound,
    /// Only an answered outbound call to the client.
    Outbound,
    /// Only an answered outbound call placed by the task's assignee.
    OutboundByAssignee,
}

impl CompleteOn {
    /// The TOML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CompleteOn::Any => "any",
            CompleteOn::Inbound => "inbound",
            CompleteOn::Outbound => "outbound",
            CompleteOn::OutboundByAssignee => "outbound_by_assignee",
        }
    }
}

/// The TOML `[callbacks]` table (SPEC section 10).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbacksConfig {
    /// Minutes to call back a miss inside working hours.
    pub sla_minutes: u32,
    /// Local `HH:MM` by which off-hours misses are due on the next working day.
    #[serde(deserialize_with = "deserialize_clock")]
    pub offhours_deadline: NaiveTime,
    /// Which answered calls close a task.
    pub complete_on: CompleteOn,
    /// An answered outbound callback shorter than this counts only as an attempt.
    pub min_talk_seconds: u32,
    /// Missed calls whose caller hung up sooner are still recorded but left out of the SLA
    /// and callback figures of reports (mis-dials, instant hang-ups); 0 = none.
    #[serde(deserialize_with = "deserialize_short_abandon")]
    pub short_abandon_seconds: u32,
}

/// Longest accepted `short_abandon_seconds`: beyond a minute a caller really waited.
pub const MAX_SHORT_ABANDON_SECONDS: u32 = 60;

fn deserialize_short_abandon<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if v > MAX_SHORT_ABANDON_SECONDS {
        return Err(serde::de::Error::custom(format!(
            "must be at most {MAX_SHORT_ABANDON_SECONDS} seconds, got {v}"
        )));
    }
    Ok(v)
}

impl Default for CallbacksConfig {
    fn default() -> Self {
        CallbacksConfig {
            sla_minutes: DEFAULT_SLA_MINUTES,
            offhours_deadline: NaiveTime::from_hms_opt(10, 0, 0).unwrap_or(NaiveTime::MIN),
            complete_on: CompleteOn::Any,
            min_talk_seconds: DEFAULT_MIN_TALK_SECONDS,
            short_abandon_seconds: 0,
        }
    }
}

fn deserialize_clock<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
    let s = String::deserialize(d)?;
    sla::parse_clock(&s)
        .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a local time HH:MM")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_callbacks_toml() {
        let c: CallbacksConfig = toml::from_str(
            "sla_minutes = 15\noffhours_deadline = \"09:30\"\ncomplete_on = \"outbound_by_assignee\"\nmin_talk_seconds = 20",
        )
        .expect("valid [callbacks]");
        assert_eq!(c.sla_minutes, 15);
        assert_eq!(
            c.offhours_deadline,
            NaiveTime::from_hms_opt(9, 30, 0).expect("time")
        );
        assert_eq!(c.complete_on, CompleteOn::OutboundByAssignee);
        assert_eq!(
            toml::from_str::<CallbacksConfig>("").expect("empty"),
            CallbacksConfig::default()
        );
        assert!(toml::from_str::<CallbacksConfig>("offhours_deadline = \"25:00\"").is_err());
        assert!(toml::from_str::<CallbacksConfig>("complete_on = \"sometimes\"").is_err());
        assert!(toml::from_str::<CallbacksConfig>("sla = 5").is_err());
        let c: CallbacksConfig = toml::from_str("short_abandon_seconds = 5").expect("valid");
        assert_eq!(c.short_abandon_seconds, 5);
        let err = toml::from_str::<CallbacksConfig>("short_abandon_seconds = 61").unwrap_err();
        assert!(
            err.to_string()
                .contains("must be at most 60 seconds, got 61"),
            "{err}"
        );
        assert!(toml::from_str::<CallbacksConfig>("short_abandon_seconds = -1").is_err());
    }
}
