//! The callback-task rules as one pure function: [`decide`] looks at a finished call, the open
//! task of its number and whether the number called before, and says what to do ([`TaskOp`]).
//! The store runs the op inside its transaction; it knows no rule.
//!
//! The rules, in the order calls ended:
//! - a withheld or uncallable number never has a task;
//! - a missed call joins the open task of its normalized number or opens one (deadline from
//!   [`Calendar::deadline`], counted from the call's `ended_at`; assignee: the first agent rung);
//! - any other call with the number is judged by [`effect_on_task`]: it closes the task (on time
//!   or late, by the moment the client was reached), counts as an unanswered callback attempt,
//!   or is unrelated;
//! - a call that ended before the task opened cannot answer it, and a conversation that began
//!   before the miss (the client on two lines at once) closes nothing.

use super::number::{self, NumbersConfig};
use super::sla::Calendar;
use super::task::{TaskId, TaskStatus};
use super::{CallbacksConfig, CompleteOn};
use crate::calls::outcome::{Direction, FinishedCall};
use crate::time::EventTime;

/// Everything the rules depend on: one value, replaced whole when the configuration changes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskRules {
    /// Working hours for deadlines.
    pub calendar: Calendar,
    /// SLA and task-closing rules.
    pub callbacks: CallbacksConfig,
    /// Number normalization for task matching.
    pub numbers: NumbersConfig,
}

impl TaskRules {
    /// The normalized number a task for `call` is kept under, or `None` when the number is
    /// withheld or not callable.
    pub fn callable_number(&self, call: &FinishedCall) -> Option<String> {
        if call.withheld {
            None
        } else {
            number::normalize(&call.number, &self.numbers)
        }
    }

    /// When a call missed at `missed_at` must be called back.
    pub fn deadline(&self, missed_at: EventTime) -> EventTime {
        self.calendar.deadline(
            missed_at,
            self.callbacks.sla_minutes,
            self.callbacks.offhours_deadline,
        )
    }
}

/// The open task of a number, as the rules need it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenTask {
    /// Its id.
    pub id: TaskId,
    /// The first agent rung for its first miss.
    pub assignee: Option<String>,
    /// When it opened.
    pub first_missed_at: EventTime,
    /// When the callback is due.
    pub deadline: EventTime,
    /// Missed calls joined so far.
    pub missed_count: i64,
}

/// What a finished call does to the callback tasks.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOp {
    /// A missed call with no open task for its number: open one.
    Open {
        /// The normalized number.
        number: String,
        /// When the callback is due.
        deadline: EventTime,
        /// The first agent rung, if any.
        assignee: Option<String>,
        /// No earlier call with the number is stored.
        first_time_caller: bool,
    },
    /// A missed call while its number has an open task: one more miss on it.
    Join {
        /// The open task.
        task: TaskId,
        /// No earlier call with the number is stored.
        first_time_caller: bool,
    },
    /// The client was reached: the task is done.
    Close {
        /// The open task.
        task: TaskId,
        /// On time or late.
        status: TaskStatus,
        /// The moment the client was reached.
        reached: EventTime,
    },
    /// An outbound call that did not complete the task: one more callback attempt.
    Attempt {
        /// The open task.
        task: TaskId,
    },
    /// Nothing changes (no callable number, no open task, or the call does not concern it).
    Nothing,
}

/// What `call` does to the tasks, given the open task of its number (read by the store inside
/// the same transaction) and whether an earlier call with the number is stored.
pub fn decide(
    call: &FinishedCall,
    open: Option<&OpenTask>,
    earlier_call: bool,
    rules: &TaskRules,
) -> TaskOp {
    let Some(number) = rules.callable_number(call) else {
        return TaskOp::Nothing;
    };
    if call.missed.is_some() {
        let first_time_caller = !earlier_call;
        return match open {
            Some(task) => TaskOp::Join {
                task: task.id,
                first_time_caller,
            },
            None => TaskOp::Open {
                number,
                deadline: rules.deadline(call.ended_at),
                assignee: assignee_for(call).map(str::to_owned),
                first_time_caller,
            },
        };
    }
    let Some(task) = open else {
        return TaskOp::Nothing;
    };
    // A call that ended before the task was opened cannot answer it.
    if call.ended_at <= task.first_missed_at {
        return TaskOp::Nothing;
    }
    let reached = reached_at(call);
    match effect_on_task(task.assignee.as_deref(), call, &rules.callbacks) {
        // A conversation that began before the miss (the same client on two lines at once)
        // is no callback for it.
        TaskEffect::Close if reached < task.first_missed_at => TaskOp::Nothing,
        TaskEffect::Close => TaskOp::Close {
            task: task.id,
            status: TaskStatus::closed(reached, task.deadline),
            reached,
        },
        TaskEffect::Attempt => TaskOp::Attempt { task: task.id },
        TaskEffect::Unrelated => TaskOp::Nothing,
    }
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

/// When the client was reached by `call`: the answer moment (`ended_at - talk_seconds`), never
/// before the call started. A callback counts as on time when this is at or before the deadline.
pub fn reached_at(call: &FinishedCall) -> EventTime {
    let talk_us = (call.talk_seconds.max(0.0) * 1_000_000.0).round() as i64;
    EventTime((call.ended_at.0 - talk_us).max(call.started_at.0))
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
    }

    /// 2026-11-23T10:00:00Z, a Monday inside the default working hours (UTC, 09:00-18:00).
    const MON_10H: i64 = 1_795_428_000_000_000;
    const MIN: i64 = 60_000_000;

    /// A call of 89161110007 (normalized: 79161110007) that ended at `MON_10H + end_min`.
    fn at(mut c: FinishedCall, end_min: i64) -> FinishedCall {
        let len = c.ended_at.0 - c.started_at.0;
        c.ended_at = EventTime(MON_10H + end_min * MIN);
        c.started_at = EventTime(c.ended_at.0 - len);
        c
    }

    fn miss(end_min: i64, agents: &[&str]) -> FinishedCall {
        let mut c = at(call(Inbound, false, None, 0.0), end_min);
        c.missed = Some(MissDetails {
            loss_reason: LossReason::Queue,
            voicemail: false,
        });
        for a in agents {
            c.attempts.push(AgentAttempt {
                agent: (*a).into(),
                name: None,
                ring_start: c.started_at,
                ring_seconds: 10.0,
                outcome: AttemptOutcome::NoAnswer,
            });
        }
        c
    }

    fn task(assignee: Option<&str>, opened_min: i64, deadline_min: i64) -> OpenTask {
        OpenTask {
            id: TaskId(4),
            assignee: assignee.map(str::to_owned),
            first_missed_at: EventTime(MON_10H + opened_min * MIN),
            deadline: EventTime(MON_10H + deadline_min * MIN),
            missed_count: 1,
        }
    }

    /// (case, call, open task, earlier call, rules) -> op
    type Case<'a> = (
        &'a str,
        FinishedCall,
        Option<&'a OpenTask>,
        bool,
        &'a TaskRules,
        TaskOp,
    );

    #[test]
    fn decide_table() {
        let rules = TaskRules::default();
        let by_assignee = TaskRules {
            callbacks: cfg(OutboundByAssignee, 10),
            ..TaskRules::default()
        };
        let open = task(Some("101"), 0, 10);
        let close = |status, reached_min: i64| TaskOp::Close {
            task: TaskId(4),
            status,
            reached: EventTime(MON_10H + reached_min * MIN),
        };
        let mut withheld = miss(0, &["101"]);
        withheld.withheld = true;
        let mut uncallable = miss(0, &["101"]);
        uncallable.number = "anonymous".into();
        let mut began_before = at(call(Inbound, true, Some("102"), 150.0), 1);
        began_before.started_at = EventTime(MON_10H - 3 * MIN);
        let cases: Vec<Case> = vec![
            (
                "withheld miss",
                withheld,
                None,
                false,
                &rules,
                TaskOp::Nothing,
            ),
            (
                "uncallable miss",
                uncallable,
                None,
                false,
                &rules,
                TaskOp::Nothing,
            ),
            (
                "first miss opens, due in sla_minutes, first agent assigned",
                miss(0, &["102", "101"]),
                None,
                false,
                &rules,
                TaskOp::Open {
                    number: "79161110007".into(),
                    deadline: EventTime(MON_10H + 10 * MIN),
                    assignee: Some("102".into()),
                    first_time_caller: true,
                },
            ),
            (
                "a miss after earlier calls is no first-time caller",
                miss(0, &[]),
                None,
                true,
                &rules,
                TaskOp::Open {
                    number: "79161110007".into(),
                    deadline: EventTime(MON_10H + 10 * MIN),
                    assignee: None,
                    first_time_caller: false,
                },
            ),
            (
                "a repeated miss joins",
                miss(3, &["103"]),
                Some(&open),
                true,
                &rules,
                TaskOp::Join {
                    task: TaskId(4),
                    first_time_caller: false,
                },
            ),
            (
                "the client calls again and is answered: on time",
                at(call(Inbound, true, Some("102"), 60.0), 5),
                Some(&open),
                true,
                &rules,
                close(TaskStatus::DoneOnTime, 4),
            ),
            (
                "answered exactly at the deadline is on time",
                at(call(Outbound, true, Some("101"), 60.0), 11),
                Some(&open),
                true,
                &rules,
                close(TaskStatus::DoneOnTime, 10),
            ),
            (
                "answered after the deadline: late",
                at(call(Outbound, true, Some("101"), 60.0), 12),
                Some(&open),
                true,
                &rules,
                close(TaskStatus::DoneLate, 11),
            ),
            (
                "an unanswered callback is an attempt",
                at(call(Outbound, false, Some("101"), 0.0), 5),
                Some(&open),
                true,
                &rules,
                TaskOp::Attempt { task: TaskId(4) },
            ),
            (
                "a call that ended before the task opened answers nothing",
                at(call(Inbound, true, Some("102"), 30.0), -1),
                Some(&open),
                true,
                &rules,
                TaskOp::Nothing,
            ),
            (
                "a call that ended exactly when the task opened answers nothing",
                at(call(Outbound, false, Some("101"), 0.0), 0),
                Some(&open),
                true,
                &rules,
                TaskOp::Nothing,
            ),
            (
                "a conversation that began before the miss closes nothing",
                began_before,
                Some(&open),
                true,
                &rules,
                TaskOp::Nothing,
            ),
            (
                "no open task: an answered call changes nothing",
                at(call(Inbound, true, Some("102"), 30.0), 5),
                None,
                true,
                &rules,
                TaskOp::Nothing,
            ),
            (
                "outbound_by_assignee: a colleague's callback is an attempt",
                at(call(Outbound, true, Some("102"), 30.0), 5),
                Some(&open),
                true,
                &by_assignee,
                TaskOp::Attempt { task: TaskId(4) },
            ),
            (
                "outbound_by_assignee: the assignee's 3 s callback is an attempt",
                at(call(Outbound, true, Some("101"), 3.0), 5),
                Some(&open),
                true,
                &by_assignee,
                TaskOp::Attempt { task: TaskId(4) },
            ),
            (
                "outbound_by_assignee: the assignee reaches the client",
                at(call(Outbound, true, Some("101"), 60.0), 5),
                Some(&open),
                true,
                &by_assignee,
                close(TaskStatus::DoneOnTime, 4),
            ),
            (
                "outbound_by_assignee: an inbound answer is unrelated",
                at(call(Inbound, true, Some("101"), 30.0), 5),
                Some(&open),
                true,
                &by_assignee,
                TaskOp::Nothing,
            ),
        ];
        for (name, c, open, earlier, rules, want) in cases {
            assert_eq!(decide(&c, open, earlier, rules), want, "{name}");
        }
    }

    #[test]
    fn an_off_hours_miss_is_due_next_working_morning() {
        // Saturday 2026-11-28 12:00Z: due Monday 2026-11-30 10:00Z (offhours_deadline).
        let sat_noon = MON_10H + (5 * 24 + 2) * 60 * MIN;
        let mut c = miss(0, &[]);
        c.ended_at = EventTime(sat_noon);
        c.started_at = EventTime(sat_noon - MIN);
        match decide(&c, None, false, &TaskRules::default()) {
            TaskOp::Open { deadline, .. } => {
                assert_eq!(deadline.to_rfc3339(), "2026-11-30T10:00:00.000Z")
            }
            other => panic!("expected Open, got {other:?}"),
        }
    }
}
