//! The callback task's vocabulary: its id and its status, as stored and as a reader sees it.
//!
//! The spellings are the SPEC contract; `store` maps them to SQL, the CLI to its arguments and
//! serde to JSON, so no status string is compared anywhere else.

use serde::{Deserialize, Serialize};

use crate::time::EventTime;

/// A callback task's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub i64);

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A task's stored status. `overdue` is not stored: it depends on when one looks
/// ([`TaskStatus::shown`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Not called back yet.
    Open,
    /// The client was reached at or before the deadline.
    DoneOnTime,
    /// The client was reached after the deadline.
    DoneLate,
}

impl TaskStatus {
    /// Every stored status.
    pub const ALL: [TaskStatus; 3] = [
        TaskStatus::Open,
        TaskStatus::DoneOnTime,
        TaskStatus::DoneLate,
    ];

    /// The contract spelling, e.g. `done_on_time`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::DoneOnTime => "done_on_time",
            TaskStatus::DoneLate => "done_late",
        }
    }

    /// Parses the contract spelling.
    pub fn parse(s: &str) -> Option<TaskStatus> {
        TaskStatus::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// How a task closed when the client was reached at `reached`.
    pub fn closed(reached: EventTime, deadline: EventTime) -> TaskStatus {
        if reached <= deadline {
            TaskStatus::DoneOnTime
        } else {
            TaskStatus::DoneLate
        }
    }

    /// The status a reader sees at `now`: the one place `overdue` is decided.
    pub fn shown(self, deadline: EventTime, now: EventTime) -> ShownStatus {
        match self {
            TaskStatus::Open if deadline < now => ShownStatus::Overdue,
            TaskStatus::Open => ShownStatus::Open,
            TaskStatus::DoneOnTime => ShownStatus::DoneOnTime,
            TaskStatus::DoneLate => ShownStatus::DoneLate,
        }
    }
}

/// A task's status as `tasks` prints and filters it: stored, or `overdue` for an open task
/// past its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShownStatus {
    /// Open, deadline not passed.
    Open,
    /// Open, deadline passed.
    Overdue,
    /// Called back on time.
    DoneOnTime,
    /// Called back late.
    DoneLate,
}

impl ShownStatus {
    /// Every status a reader can see, in the CLI's order.
    pub const ALL: [ShownStatus; 4] = [
        ShownStatus::Open,
        ShownStatus::Overdue,
        ShownStatus::DoneOnTime,
        ShownStatus::DoneLate,
    ];

    /// The contract spelling, e.g. `overdue`.
    pub fn as_str(self) -> &'static str {
        match self {
            ShownStatus::Open => "open",
            ShownStatus::Overdue => "overdue",
            ShownStatus::DoneOnTime => "done_on_time",
            ShownStatus::DoneLate => "done_late",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip_and_match_serde() {
        for s in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).expect("json"),
                serde_json::json!(s.as_str())
            );
        }
        for s in ShownStatus::ALL {
            assert_eq!(
                serde_json::to_value(s).expect("json"),
                serde_json::json!(s.as_str())
            );
        }
        assert_eq!(TaskStatus::parse("overdue"), None);
        assert_eq!(serde_json::to_string(&TaskId(7)).expect("json"), "7");
    }

    #[test]
    fn overdue_is_an_open_task_past_its_deadline() {
        let deadline = EventTime(100);
        let open = TaskStatus::Open;
        assert_eq!(open.shown(deadline, EventTime(100)), ShownStatus::Open);
        assert_eq!(open.shown(deadline, EventTime(101)), ShownStatus::Overdue);
        assert_eq!(
            TaskStatus::DoneLate.shown(deadline, EventTime(101)),
            ShownStatus::DoneLate
        );
        assert_eq!(
            TaskStatus::closed(EventTime(5), EventTime(5)),
            TaskStatus::DoneOnTime
        );
        assert_eq!(
            TaskStatus::closed(EventTime(6), EventTime(5)),
            TaskStatus::DoneLate
        );
    }
}
