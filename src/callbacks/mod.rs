//! Callback tasks: number normalization, SLA deadlines, task rules. Pure, no I/O.
//!
//! The store applies these rules to every finished call, in the order calls ended:
//! - a missed call with a callable number joins the open task of its normalized number or opens
//!   one (deadline from [`sla::Calendar::deadline`], counted from the call's `ended_at`);
//! - any other call with the number that ended after the task was opened is judged by
//!   [`effect_on_task`]: it closes the task, counts as an unanswered callback attempt, or is
//!   unrelated. A conversation that began before the miss (the client on two lines at once)
//!   closes nothing.

pub mod number;
pub mod sla;

use chrono::NaiveTime;
use serde::{Deserialize, Deserializer};

use crate::calls::outcome::{Direction, FinishedCall};
use crate::time::EventTime;

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
}

impl Default for CallbacksConfig {
    fn default() -> Self {
        CallbacksConfig {
            sla_minutes: DEFAULT_SLA_MINUTES,
            offhours_deadline: NaiveTime::from_hms_opt(10, 0, 0).unwrap_or(NaiveTime::MIN),
            complete_on: CompleteOn::Any,
            min_talk_seconds: DEFAULT_MIN_TALK_SECONDS,
        }
    }
}

fn deserialize_clock<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
    let s = String::deserialize(d)?;
    sla::parse_clock(&s)
        .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a local time HH:MM")))
}

/// What a finished call that is not a new miss does to the open task of its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskEffect {
    /// The client was reached: the task is done.
    Close,
    /// An outbound call to the client that did not complete the task (unanswered, too short,
    /// or by someone `complete_on` does not accept): one more callback attempt.
    Attempt,
    /// Does not concern the task (e.g. an answered inbound call under `complete_on = outbound`).
    Unrelated,
}

/// The assignee of a new task: the first agent rung for its first missed call, or nobody when
/// the caller never reached an agent (IVR, after hours, empty queue).
pub fn assignee_for(first_miss: &FinishedCall) -> Option<&str> {
    first_miss.attempts.first().map(|a| a.agent.as_str())
}

/// How `call` (not a missed call, same normalized number, ended after the task opened) affects
/// an open task assigned to `task_assignee`.
///
/// An answered inbound call closes under `any`/`inbound`; `min_talk_seconds` applies to
/// outbound callbacks only (it exists to ignore answering machines and instant hang-ups).
/// `outbound_by_assignee` accepts any agent when the task has no assignee.
pub fn effect_on_task(
    task_assignee: Option<&str>,
    call: &FinishedCall,
    cfg: &CallbacksConfig,
) -> TaskEffect {
    if call.missed.is_some() {
        return TaskEffect::Unrelated;
    }
    match call.direction {
        Direction::Inbound => {
            if call.answered && matches!(cfg.complete_on, CompleteOn::Any | CompleteOn::Inbound) {
                TaskEffect::Close
            } else {
                TaskEffect::Unrelated
            }
        }
        Direction::Outbound => {
            let long_enough = call.talk_seconds >= f64::from(cfg.min_talk_seconds);
            let accepted = match cfg.complete_on {
                CompleteOn::Any | CompleteOn::Outbound => true,
                CompleteOn::Inbound => false,
                CompleteOn::OutboundByAssignee => match task_assignee {
                    None => true,
                    Some(who) => call.agent.as_deref() == Some(who),
                },
            };
            if call.answered && long_enough && accepted {
                TaskEffect::Close
            } else {
                TaskEffect::Attempt
            }
        }
    }
}

/// Shorthand: does `call` close an open task assigned to `task_assignee`?
pub fn closes(task_assignee: Option<&str>, call: &FinishedCall, cfg: &CallbacksConfig) -> bool {
    effect_on_task(task_assignee, call, cfg) == TaskEffect::Close
}

/// When the client was reached by `call`: the answer moment (`ended_at - talk_seconds`), never
/// before the call started. A callback counts as on time when this is at or before the deadline.
pub fn reached_at(call: &FinishedCall) -> EventTime {
    let talk_us = (call.talk_seconds.max(0.0) * 1_000_000.0).round() as i64;
    EventTime((call.ended_at.0 - talk_us).max(call.started_at.0))
}

/// `done_on_time` when the client was reached at or before the deadline, else `done_late`.
pub fn closed_status(reached: EventTime, deadline: EventTime) -> &'static str {
    if reached <= deadline {
        "done_on_time"
    } else {
        "done_late"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::outcome::{AgentAttempt, AttemptOutcome, LossReason, MissDetails};

    fn call(direction: Direction, answered: bool, agent: Option<&str>, talk: f64) -> FinishedCall {
        FinishedCall {
            linkedid: "pbx-1.1".into(),
            direction,
            number: "89161110007".into(),
            name: None,
            withheld: false,
            did: None,
            queue: None,
            started_at: EventTime(1_000_000_000),
            ended_at: EventTime(1_000_000_000 + 60_000_000),
            wait_seconds: 60.0 - talk,
            answered,
            agent: agent.map(str::to_owned),
            talk_seconds: talk,
            attempts: Vec::new(),
            forwards: Vec::new(),
            missed: None,
            gap: false,
            gap_window: None,
        }
    }

    fn cfg(complete_on: CompleteOn, min_talk_seconds: u32) -> CallbacksConfig {
        CallbacksConfig {
            complete_on,
            min_talk_seconds,
            ..CallbacksConfig::default()
        }
    }

    use CompleteOn::{Any, OutboundByAssignee};
    const ON_IN: CompleteOn = CompleteOn::Inbound;
    const ON_OUT: CompleteOn = CompleteOn::Outbound;
    use Direction::*;
    use TaskEffect::*;

    #[test]
    #[allow(clippy::type_complexity)]
    fn policy_table() {
        // (policy, min_talk, assignee, direction, answered, agent, talk) -> effect
        let cases: &[(
            CompleteOn,
            u32,
            Option<&str>,
            Direction,
            bool,
            Option<&str>,
            f64,
            TaskEffect,
        )] = &[
            (Any, 0, Some("101"), Inbound, true, Some("102"), 30.0, Close),
            (
                Any,
                0,
                Some("101"),
                Outbound,
                true,
                Some("102"),
                30.0,
                Close,
            ),
            (
                Any,
                0,
                Some("101"),
                Outbound,
                false,
                Some("101"),
                0.0,
                Attempt,
            ),
            (
                Any,
                20,
                Some("101"),
                Outbound,
                true,
                Some("101"),
                5.0,
                Attempt,
            ),
            (
                Any,
                20,
                Some("101"),
                Outbound,
                true,
                Some("101"),
                20.0,
                Close,
            ),
            (Any, 20, Some("101"), Inbound, true, Some("102"), 5.0, Close),
            (
                ON_IN,
                0,
                Some("101"),
                Inbound,
                true,
                Some("103"),
                1.0,
                Close,
            ),
            (
                ON_IN,
                0,
                Some("101"),
                Outbound,
                true,
                Some("101"),
                60.0,
                Attempt,
            ),
            (
                ON_IN,
                0,
                Some("101"),
                Outbound,
                false,
                Some("101"),
                0.0,
                Attempt,
            ),
            (
                ON_OUT,
                0,
                Some("101"),
                Inbound,
                true,
                Some("101"),
                60.0,
                Unrelated,
            ),
            (
                ON_OUT,
                0,
                Some("101"),
                Outbound,
                true,
                Some("104"),
                60.0,
                Close,
            ),
            (
                ON_OUT,
                0,
                Some("101"),
                Outbound,
                false,
                Some("104"),
                0.0,
                Attempt,
            ),
            (
                OutboundByAssignee,
                0,
                Some("101"),
                Outbound,
                true,
                Some("101"),
                60.0,
                Close,
            ),
            (
                OutboundByAssignee,
                0,
                Some("101"),
                Outbound,
                true,
                Some("102"),
                60.0,
                Attempt,
            ),
            (
                OutboundByAssignee,
                0,
                Some("101"),
                Outbound,
                true,
                None,
                60.0,
                Attempt,
            ),
            (
                OutboundByAssignee,
                0,
                None,
                Outbound,
                true,
                Some("102"),
                60.0,
                Close,
            ),
            (
                OutboundByAssignee,
                0,
                Some("101"),
                Inbound,
                true,
                Some("101"),
                60.0,
                Unrelated,
            ),
        ];
        for &(policy, min_talk, assignee, dir, answered, agent, talk, want) in cases {
            let c = call(dir, answered, agent, talk);
            let got = effect_on_task(assignee, &c, &cfg(policy, min_talk));
            assert_eq!(
                got, want,
                "{policy:?} min_talk={min_talk} assignee={assignee:?} {dir:?} answered={answered} agent={agent:?} talk={talk}"
            );
            assert_eq!(closes(assignee, &c, &cfg(policy, min_talk)), want == Close);
        }
    }

    #[test]
    fn a_new_miss_never_closes() {
        let mut c = call(Inbound, false, None, 0.0);
        c.missed = Some(MissDetails {
            loss_reason: LossReason::Queue,
            voicemail: false,
        });
        assert_eq!(
            effect_on_task(None, &c, &CallbacksConfig::default()),
            Unrelated
        );
    }

    #[test]
    fn assignee_is_the_first_agent_rung() {
        let mut c = call(Inbound, false, None, 0.0);
        assert_eq!(assignee_for(&c), None);
        for agent in ["102", "101"] {
            c.attempts.push(AgentAttempt {
                agent: agent.into(),
                name: None,
                ring_start: EventTime(1),
                ring_seconds: 10.0,
                outcome: AttemptOutcome::NoAnswer,
            });
        }
        assert_eq!(assignee_for(&c), Some("102"));
    }

    #[test]
    fn reached_at_is_the_answer_moment() {
        let c = call(Outbound, true, Some("101"), 45.5);
        assert_eq!(reached_at(&c), EventTime(1_000_000_000 + 14_500_000));
        let c = call(Outbound, true, Some("101"), 500.0);
        assert_eq!(reached_at(&c), c.started_at);
        assert_eq!(closed_status(EventTime(5), EventTime(5)), "done_on_time");
        assert_eq!(closed_status(EventTime(6), EventTime(5)), "done_late");
    }

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
        assert_eq!(c.complete_on, OutboundByAssignee);
        assert_eq!(
            toml::from_str::<CallbacksConfig>("").expect("empty"),
            CallbacksConfig::default()
        );
        assert!(toml::from_str::<CallbacksConfig>("offhours_deadline = \"25:00\"").is_err());
        assert!(toml::from_str::<CallbacksConfig>("complete_on = \"sometimes\"").is_err());
        assert!(toml::from_str::<CallbacksConfig>("sla = 5").is_err());
    }
}
