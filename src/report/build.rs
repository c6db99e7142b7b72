//! `build`: the figures of a report from the calls and tasks of a period. Pure: no I/O and no
//! clock (`now` is a parameter), so every rule below is a unit test away.
//!
//! Rules a manager reads the numbers by (README, "Reports"):
//! - Calls count by the local day (calendar timezone) they ended; tasks by their first miss.
//! - A missed call shorter than `short_abandon_seconds` is a *short abandon*: counted in
//!   `inbound` and `short_abandons`, left out of `missed`, the waits, the heat map and every
//!   callback figure (a task counts only if one of its misses was not short).
//! - `missed_rate` = missed / (inbound - short abandons).
//! - Callbacks: `done_on_time` / `done_late` as stored; an open task past its deadline at `now`
//!   is `never`, one not yet due is `open`. Callback delay = first miss to the callback.
//! - Percentiles are nearest-rank (p50 of 1, 2, 3, 4 is 2), the same as `v_daily_sla`.
//! - By agent: a call counts for every agent rung and for whoever answered it; `answered` only
//!   for the agent who answered; tasks by their assignee; `callbacks_made` by who called back.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Timelike};
use chrono_tz::Tz;
use serde::Serialize;

use crate::callbacks::{ShownStatus, TaskId, TaskStatus};
use crate::calls::outcome::{AttemptOutcome, LossReason};
use crate::store::queries::{ReportCall, TaskRow};
use crate::time::EventTime;

/// Key used for calls without a queue / DID / agent.
pub const NO_KEY: &str = "(none)";

/// What a report is broken down by (`report --by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ReportBy {
    /// Local calendar day (`YYYY-MM-DD`).
    Day,
    /// Local calendar month (`YYYY-MM`).
    Month,
    /// Queue entered.
    Queue,
    /// Agent rung or answering.
    Agent,
    /// Company number dialled.
    Did,
}

impl ReportBy {
    /// The command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportBy::Day => "day",
            ReportBy::Month => "month",
            ReportBy::Queue => "queue",
            ReportBy::Agent => "agent",
            ReportBy::Did => "did",
        }
    }

    /// Parses the command-line spelling; the error lists the choices.
    pub fn parse(s: &str) -> Result<ReportBy, String> {
        [
            ReportBy::Day,
            ReportBy::Month,
            ReportBy::Queue,
            ReportBy::Agent,
            ReportBy::Did,
        ]
        .into_iter()
        .find(|b| b.as_str() == s)
        .ok_or_else(|| format!("--by {s:?}: expected one of day, month, queue, agent, did"))
    }
}

/// What `build` needs besides the rows.
#[derive(Debug, Clone, Copy)]
pub struct ReportParams {
    /// The break-down.
    pub by: ReportBy,
    /// Calendar timezone: days, months and the heat map are local to it.
    pub tz: Tz,
    /// Judges open tasks: past their deadline = `never`, else `open`.
    pub now: EventTime,
    /// Missed calls shorter than this are short abandons (0 = none).
    pub short_abandon_seconds: f64,
    /// The requested period, if bounded.
    pub since: Option<EventTime>,
    /// End of the requested period (exclusive), if bounded.
    pub until: Option<EventTime>,
}

/// The figures of every report row and of the totals (SPEC section 8 names).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Inbound calls, short abandons included.
    pub inbound: u64,
    /// Answered by a human.
    pub answered: u64,
    /// Missed, short abandons excluded.
    pub missed: u64,
    /// Missed calls shorter than `short_abandon_seconds`.
    pub short_abandons: u64,
    /// missed / (inbound - short abandons); null without such calls.
    pub missed_rate: Option<f64>,
    /// Tasks called back by their deadline.
    pub callback_on_time: u64,
    /// Tasks called back after their deadline.
    pub callback_late: u64,
    /// Tasks past their deadline and still not called back.
    pub callback_never: u64,
    /// Tasks open and not yet due.
    pub callback_open: u64,
    /// Median first-miss-to-callback delay; null without callbacks.
    pub callback_delay_p50_seconds: Option<f64>,
    /// 90th percentile of the same.
    pub callback_delay_p90_seconds: Option<f64>,
    /// Average wait of missed calls (0 without any).
    pub avg_wait_missed_seconds: f64,
    /// Longest wait of a missed call (0 without any).
    pub max_wait_missed_seconds: f64,
}

/// Per-agent additions (`--by agent`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AgentFigures {
    /// Times this agent's phone was rung.
    pub rung: u64,
    /// Rings that ended without this agent answering and nobody else answering meanwhile
    /// (`no_answer`, `caller_hung_up`).
    pub rung_not_answered: u64,
    /// Ring seconds of those rings.
    pub ring_seconds_not_answered: f64,
    /// Tasks this agent closed by calling back (or being reached).
    pub callbacks_made: u64,
    /// Of those, by the deadline.
    pub callbacks_made_on_time: u64,
    /// Of those, after the deadline.
    pub callbacks_made_late: u64,
    /// Median delay of this agent's callbacks; null without any.
    pub callbacks_made_delay_p50_seconds: Option<f64>,
}

/// Per-queue additions (`--by queue`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueueFigures {
    /// Calls that entered the queue.
    pub offered: u64,
    /// Hung up waiting in the queue, no agent ringing.
    pub abandoned_queue: u64,
    /// Hung up while an agent was ringing.
    pub abandoned_ringing: u64,
    /// The queue gave up on the caller.
    pub timeout: u64,
    /// No agent could take calls.
    pub no_agents: u64,
    /// Average wait until answered or lost (missed: the whole wait; answered: until the agent
    /// picked up); null when unknown.
    pub avg_wait_seconds: Option<f64>,
}

/// One row of the break-down.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Day, month, queue, agent or DID (`(none)` when the call had none).
    pub key: String,
    /// The shared figures.
    #[serde(flatten)]
    pub figures: Figures,
    /// Only in `--by agent`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentFigures>,
    /// Only in `--by queue`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueFigures>,
}

/// An open task as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenTask {
    /// Task id.
    pub id: TaskId,
    /// Number to call.
    pub number: String,
    /// Misses joined.
    pub missed_count: i64,
    /// First miss (RFC 3339).
    pub first_missed_at: String,
    /// Due (RFC 3339).
    pub deadline: String,
    /// Past the deadline at the report's `now`.
    pub overdue: bool,
    /// First agent rung, if any.
    pub assignee: Option<String>,
    /// Only short abandons: not in the SLA figures.
    pub short_abandon: bool,
}

/// The first and last moment covered, as local dates (`YYYY-MM-DD`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Period {
    /// First local day covered.
    pub first_day: String,
    /// Last local day covered (inclusive).
    pub last_day: String,
}

/// A computed report, ready for any renderer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Requested start (RFC 3339) or null.
    pub since: Option<String>,
    /// Requested end, exclusive (RFC 3339) or null.
    pub until: Option<String>,
    /// The days actually covered (the bounds, else the data); null when there is nothing.
    pub period: Option<Period>,
    /// Calendar timezone.
    pub timezone: String,
    /// The same, for renderers that print local times.
    #[serde(skip)]
    pub tz: Tz,
    /// The break-down.
    pub by_key: ReportBy,
    /// The same threshold the figures used.
    pub short_abandon_seconds: f64,
    /// Totals.
    #[serde(flatten)]
    pub total: Figures,
    /// One row per key, sorted by key.
    pub by: Vec<Row>,
    /// Missed calls by local weekday (Monday first) and hour they came in.
    pub heatmap: [[u64; 24]; 7],
    /// Open tasks (overdue first, then by deadline).
    pub open_tasks: Vec<OpenTask>,
    /// Per-agent rows (the HTML page shows them whatever `by` is).
    #[serde(skip)]
    pub agents: Vec<Row>,
    /// Per-queue rows.
    #[serde(skip)]
    pub queues: Vec<Row>,
    /// Per-day rows, per month over long periods: the chart of the HTML page.
    #[serde(skip)]
    pub timeline: Vec<Row>,
}

/// Seconds rounded to milliseconds (what the tracker can measure; no float noise in JSON).
pub fn secs(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: u64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    let rank = (p * n).div_ceil(100).max(1);
    Some(secs(sorted[(rank - 1) as usize]))
}

/// How a task counts in callback figures at `now`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Callback {
    OnTime { delay: f64 },
    Late { delay: f64 },
    Never,
    Open,
}

fn callback(t: &TaskRow, now: EventTime) -> Callback {
    let delay = || {
        t.closed_at
            .map_or(0.0, |c| c.seconds_since(t.first_missed_at))
    };
    match t.shown_status(now) {
        ShownStatus::DoneOnTime => Callback::OnTime { delay: delay() },
        ShownStatus::DoneLate => Callback::Late { delay: delay() },
        ShownStatus::Overdue => Callback::Never,
        ShownStatus::Open => Callback::Open,
    }
}

/// Sums of one row while it is being built.
#[derive(Debug, Default)]
struct Acc {
    f: Figures,
    wait_missed_sum: f64,
    delays: Vec<f64>,
    agent: AgentFigures,
    made_delays: Vec<f64>,
    queue: QueueFigures,
    wait_sum: f64,
    wait_n: u64,
}

/// One call as the accumulators see it.
struct CallView<'a> {
    call: &'a ReportCall,
    /// Missed and not a short abandon.
    missed: bool,
    short: bool,
}

impl Acc {
    fn add_call(&mut self, c: &CallView<'_>, answered: bool) {
        self.f.inbound += 1;
        if answered {
            self.f.answered += 1;
        }
        if c.short {
            self.f.short_abandons += 1;
        }
        if c.missed {
            self.f.missed += 1;
            self.wait_missed_sum += c.call.wait_seconds;
            self.f.max_wait_missed_seconds =
                self.f.max_wait_missed_seconds.max(c.call.wait_seconds);
        }
    }

    fn add_queue_call(&mut self, c: &CallView<'_>) {
        let q = &mut self.queue;
        q.offered += 1;
        if c.missed {
            match c.call.loss_reason {
                Some(LossReason::Queue) => q.abandoned_queue += 1,
                Some(LossReason::Ringing) => q.abandoned_ringing += 1,
                Some(LossReason::Timeout) => q.timeout += 1,
                Some(LossReason::NoAgents) => q.no_agents += 1,
                _ => {}
            }
        }
        if let Some(w) = wait_until_answer_or_loss(c.call) {
            self.wait_sum += w;
            self.wait_n += 1;
        }
    }

    fn add_task(&mut self, cb: Callback) {
        match cb {
            Callback::OnTime { delay } => {
                self.f.callback_on_time += 1;
                self.delays.push(delay);
            }
            Callback::Late { delay } => {
                self.f.callback_late += 1;
                self.delays.push(delay);
            }
            Callback::Never => self.f.callback_never += 1,
            Callback::Open => self.f.callback_open += 1,
        }
    }

    fn add_callback_made(&mut self, cb: Callback) {
        match cb {
            Callback::OnTime { delay } => {
                self.agent.callbacks_made_on_time += 1;
                self.made_delays.push(delay);
            }
            Callback::Late { delay } => {
                self.agent.callbacks_made_late += 1;
                self.made_delays.push(delay);
            }
            Callback::Never | Callback::Open => return,
        }
        self.agent.callbacks_made += 1;
    }

    fn finish(mut self, key: String, by: ReportBy) -> Row {
        let f = &mut self.f;
        let counted = f.inbound - f.short_abandons;
        f.missed_rate =
            (counted > 0).then(|| (f.missed as f64 / counted as f64 * 1e4).round() / 1e4);
        if f.missed > 0 {
            f.avg_wait_missed_seconds = secs(self.wait_missed_sum / f.missed as f64);
        }
        f.max_wait_missed_seconds = secs(f.max_wait_missed_seconds);
        self.delays.sort_by(f64::total_cmp);
        f.callback_delay_p50_seconds = percentile(&self.delays, 50);
        f.callback_delay_p90_seconds = percentile(&self.delays, 90);
        let agent = (by == ReportBy::Agent).then(|| {
            self.made_delays.sort_by(f64::total_cmp);
            AgentFigures {
                ring_seconds_not_answered: secs(self.agent.ring_seconds_not_answered),
                callbacks_made_delay_p50_seconds: percentile(&self.made_delays, 50),
                ..self.agent
            }
        });
        let queue = (by == ReportBy::Queue).then(|| QueueFigures {
            avg_wait_seconds: (self.wait_n > 0).then(|| secs(self.wait_sum / self.wait_n as f64)),
            ..self.queue
        });
        Row {
            key,
            figures: self.f,
            agent,
            queue,
        }
    }
}

/// The caller's wait: a missed call's whole wait; an answered call's until the answering ring
/// ended (the pick-up); `None` when the answer moment is unknown.
fn wait_until_answer_or_loss(c: &ReportCall) -> Option<f64> {
    if c.loss_reason.is_some() {
        return Some(c.wait_seconds);
    }
    c.attempts
        .iter()
        .find(|a| a.outcome == AttemptOutcome::Answered)
        .map(|a| (a.ring_start.seconds_since(c.started_at) + a.ring_seconds).max(0.0))
}

fn local(t: EventTime, tz: Tz) -> DateTime<Tz> {
    t.to_utc().with_timezone(&tz)
}

/// The local day (`YYYY-MM-DD`) or month (`YYYY-MM`) of `t`.
pub fn period_key(t: EventTime, tz: Tz, monthly: bool) -> String {
    let fmt = if monthly { "%Y-%m" } else { "%Y-%m-%d" };
    local(t, tz).format(fmt).to_string()
}

fn key_or_none(k: &Option<String>) -> String {
    match k.as_deref() {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => NO_KEY.to_owned(),
    }
}

/// Rows by one key, filled call by call and task by task.
struct Grouping {
    by: ReportBy,
    tz: Tz,
    monthly: bool,
    rows: BTreeMap<String, Acc>,
}

impl Grouping {
    fn new(by: ReportBy, tz: Tz) -> Self {
        Grouping {
            by,
            tz,
            monthly: by == ReportBy::Month,
            rows: BTreeMap::new(),
        }
    }

    fn add_call(&mut self, c: &CallView<'_>) {
        let call = c.call;
        match self.by {
            ReportBy::Day | ReportBy::Month => {
                let k = period_key(call.ended_at, self.tz, self.monthly);
                self.rows.entry(k).or_default().add_call(c, call.answered);
            }
            ReportBy::Did => self
                .rows
                .entry(key_or_none(&call.did))
                .or_default()
                .add_call(c, call.answered),
            ReportBy::Queue => {
                let acc = self.rows.entry(key_or_none(&call.queue)).or_default();
                acc.add_call(c, call.answered);
                acc.add_queue_call(c);
            }
            ReportBy::Agent => {
                let mut agents: Vec<&str> = Vec::new();
                for a in &call.attempts {
                    if !agents.contains(&a.agent.as_str()) {
                        agents.push(&a.agent);
                    }
                }
                if let Some(a) = call.agent.as_deref()
                    && call.answered
                    && !agents.contains(&a)
                {
                    agents.push(a);
                }
                if agents.is_empty() {
                    agents.push(NO_KEY);
                }
                for agent in agents {
                    let acc = self.rows.entry(agent.to_owned()).or_default();
                    let answered = call.answered && call.agent.as_deref() == Some(agent);
                    acc.add_call(c, answered);
                    for a in call.attempts.iter().filter(|a| a.agent == agent) {
                        acc.agent.rung += 1;
                        if matches!(
                            a.outcome,
                            AttemptOutcome::NoAnswer | AttemptOutcome::CallerHungUp
                        ) {
                            acc.agent.rung_not_answered += 1;
                            acc.agent.ring_seconds_not_answered += a.ring_seconds;
                        }
                    }
                }
            }
        }
    }

    fn add_task(&mut self, t: &TaskRow, cb: Callback) {
        let key = match self.by {
            ReportBy::Day | ReportBy::Month => period_key(t.first_missed_at, self.tz, self.monthly),
            ReportBy::Queue => key_or_none(&t.queue),
            ReportBy::Did => key_or_none(&t.did),
            ReportBy::Agent => key_or_none(&t.assignee),
        };
        self.rows.entry(key).or_default().add_task(cb);
        if self.by == ReportBy::Agent
            && let Some(agent) = t.closed_by.as_ref().and_then(|b| b.agent.as_deref())
        {
            self.rows
                .entry(agent.to_owned())
                .or_default()
                .add_callback_made(cb);
        }
    }

    fn finish(self) -> Vec<Row> {
        let by = self.by;
        self.rows
            .into_iter()
            .map(|(k, acc)| acc.finish(k, by))
            .collect()
    }
}

/// Longest period still charted day by day; longer ones are charted by month.
const DAILY_CHART_MAX_DAYS: i64 = 62;

/// Computes the report for `calls` (ended in the period) and `tasks` (opened in it);
/// `short_tasks` lists the tasks whose every miss was a short abandon.
pub fn build(
    calls: &[ReportCall],
    tasks: &[TaskRow],
    short_tasks: &[TaskId],
    p: ReportParams,
) -> Report {
    let short_tasks: std::collections::HashSet<TaskId> = short_tasks.iter().copied().collect();
    let views: Vec<CallView<'_>> = calls
        .iter()
        .map(|call| {
            let is_missed = call.loss_reason.is_some();
            let short = is_missed && call.wait_seconds < p.short_abandon_seconds;
            CallView {
                call,
                missed: is_missed && !short,
                short,
            }
        })
        .collect();
    let counted: Vec<(&TaskRow, Callback)> = tasks
        .iter()
        .filter(|t| !short_tasks.contains(&t.id))
        .map(|t| (t, callback(t, p.now)))
        .collect();

    let period = covered(calls, tasks, &p);
    let monthly_chart = p.by == ReportBy::Month
        || period
            .as_ref()
            .is_some_and(|(a, b)| (*b - *a).num_days() > DAILY_CHART_MAX_DAYS);
    let timeline_by = if monthly_chart {
        ReportBy::Month
    } else {
        ReportBy::Day
    };
    let group = |by: ReportBy| {
        let mut g = Grouping::new(by, p.tz);
        views.iter().for_each(|c| g.add_call(c));
        counted.iter().for_each(|(t, cb)| g.add_task(t, *cb));
        g.finish()
    };

    let mut total = Acc::default();
    let mut heatmap = [[0u64; 24]; 7];
    for c in &views {
        total.add_call(c, c.call.answered);
        if c.missed {
            let l = local(c.call.started_at, p.tz);
            heatmap[l.weekday().num_days_from_monday() as usize][l.hour() as usize] += 1;
        }
    }
    counted.iter().for_each(|(_, cb)| total.add_task(*cb));

    let mut open_tasks: Vec<OpenTask> = tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Open)
        .map(|t| OpenTask {
            id: t.id,
            number: t.number.clone(),
            missed_count: t.missed_count,
            first_missed_at: t.first_missed_at.to_rfc3339(),
            deadline: t.deadline.to_rfc3339(),
            overdue: t.deadline < p.now,
            assignee: t.assignee.clone(),
            short_abandon: short_tasks.contains(&t.id),
        })
        .collect();
    open_tasks.sort_by(|a, b| (!a.overdue, &a.deadline).cmp(&(!b.overdue, &b.deadline)));

    Report {
        since: p.since.map(EventTime::to_rfc3339),
        until: p.until.map(EventTime::to_rfc3339),
        period: period.map(|(a, b)| Period {
            first_day: a.format("%Y-%m-%d").to_string(),
            last_day: b.format("%Y-%m-%d").to_string(),
        }),
        timezone: p.tz.name().to_owned(),
        tz: p.tz,
        by_key: p.by,
        short_abandon_seconds: p.short_abandon_seconds,
        total: total.finish(String::new(), ReportBy::Day).figures,
        by: group(p.by),
        heatmap,
        open_tasks,
        agents: group(ReportBy::Agent),
        queues: group(ReportBy::Queue),
        timeline: group(timeline_by),
    }
}

/// The local days covered: the requested bounds where given, else the data's first and last.
fn covered(
    calls: &[ReportCall],
    tasks: &[TaskRow],
    p: &ReportParams,
) -> Option<(chrono::NaiveDate, chrono::NaiveDate)> {
    let times = calls
        .iter()
        .flat_map(|c| [c.started_at, c.ended_at])
        .chain(tasks.iter().map(|t| t.first_missed_at));
    let (lo, hi) = times.fold(
        (None, None),
        |(lo, hi): (Option<EventTime>, Option<EventTime>), t| {
            (
                Some(lo.map_or(t, |l| l.min(t))),
                Some(hi.map_or(t, |h| h.max(t))),
            )
        },
    );
    let first = p.since.or(lo)?;
    // `until` is exclusive: the last day covered is the one before it.
    let last = match p.until {
        Some(u) => EventTime(u.0 - 1),
        None => hi?,
    };
    let first = local(first, p.tz).date_naive();
    let last = local(last, p.tz).date_naive();
    (first <= last).then_some((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::outcome::Direction;
    use crate::store::queries::{AttemptRow, ClosedBy};

    const T0: i64 = 1_795_374_000_000_000; // 2026-11-22T19:00:00Z, a Sunday

    fn t(secs: i64) -> EventTime {
        EventTime(T0 + secs * 1_000_000)
    }

    fn ring(agent: &str, at: i64, secs: f64, outcome: AttemptOutcome) -> AttemptRow {
        AttemptRow {
            agent: agent.into(),
            name: None,
            ring_start: t(at),
            ring_seconds: secs,
            outcome,
        }
    }

    fn call(start: i64, wait: f64, lost: Option<LossReason>, rings: Vec<AttemptRow>) -> ReportCall {
        let answered_by = rings
            .iter()
            .find(|r| r.outcome == AttemptOutcome::Answered)
            .map(|r| r.agent.clone());
        ReportCall {
            started_at: t(start),
            ended_at: EventTime(t(start).0 + (wait * 1e6) as i64),
            did: Some("74951234567".into()),
            queue: Some("sales".into()),
            answered: answered_by.is_some(),
            agent: answered_by,
            wait_seconds: wait,
            loss_reason: lost,
            attempts: rings,
        }
    }

    fn task(id: i64, status: TaskStatus, deadline: i64, closed: Option<(i64, &str)>) -> TaskRow {
        TaskRow {
            id: TaskId(id),
            number: format!("7916000000{id}"),
            status,
            missed_count: 1,
            first_missed_at: t(0),
            last_missed_at: t(0),
            deadline: t(deadline),
            assignee: Some("101".into()),
            attempts: 0,
            closed_at: closed.map(|(at, _)| t(at)),
            closed_by: closed.map(|(_, agent)| ClosedBy {
                direction: Direction::Outbound,
                agent: Some(agent.into()),
                linkedid: format!("cb-{id}"),
            }),
            did: Some("74951234567".into()),
            queue: Some("sales".into()),
        }
    }

    fn params(by: ReportBy, now: i64, short: f64) -> ReportParams {
        ReportParams {
            by,
            tz: Tz::UTC,
            now: t(now),
            short_abandon_seconds: short,
            since: None,
            until: None,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7.0], 90), Some(7.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 90), Some(4.0));
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 90), Some(9.0));
    }

    #[test]
    fn callbacks_split_by_status_and_deadline_at_now() {
        use TaskStatus::*;
        let tasks = [
            task(1, DoneOnTime, 600, Some((60, "101"))),
            task(2, DoneLate, 600, Some((900, "102"))),
            task(3, DoneOnTime, 600, Some((300, "102"))),
            task(4, Open, 600, None), // past its deadline at now = 1000: never
            task(5, Open, 5000, None), // not yet due: open
        ];
        let calls = [call(-20, 20.0, Some(LossReason::Queue), vec![])];
        let r = build(&calls, &tasks, &[], params(ReportBy::Agent, 1000, 0.0));
        let f = &r.total;
        assert_eq!(
            (
                f.callback_on_time,
                f.callback_late,
                f.callback_never,
                f.callback_open
            ),
            (2, 1, 1, 1)
        );
        assert_eq!(f.callback_delay_p50_seconds, Some(300.0));
        assert_eq!(f.callback_delay_p90_seconds, Some(900.0));
        let agent = |k: &str| r.by.iter().find(|row| row.key == k).expect(k);
        let a102 = agent("102").agent.clone().expect("agent figures");
        assert_eq!(
            (
                a102.callbacks_made,
                a102.callbacks_made_on_time,
                a102.callbacks_made_late
            ),
            (2, 1, 1)
        );
        assert_eq!(a102.callbacks_made_delay_p50_seconds, Some(300.0));
        // Tasks count for their assignee (101), callbacks for who made them.
        assert_eq!(agent("101").figures.callback_on_time, 2);
        assert_eq!(
            r.open_tasks.iter().map(|o| o.overdue).collect::<Vec<_>>(),
            [true, false]
        );
    }

    #[test]
    fn short_abandons_leave_the_sla_figures() {
        let calls = [
            call(0, 3.0, Some(LossReason::Ivr), vec![]),
            call(100, 30.0, Some(LossReason::Queue), vec![]),
            call(
                200,
                50.0,
                None,
                vec![ring("101", 210, 5.0, AttemptOutcome::Answered)],
            ),
        ];
        let tasks = [
            task(1, TaskStatus::Open, 10, None),
            task(2, TaskStatus::Open, 10, None),
        ];
        let r = build(
            &calls,
            &tasks,
            &[TaskId(1)],
            params(ReportBy::Day, 1000, 5.0),
        );
        let f = &r.total;
        assert_eq!(
            (f.inbound, f.answered, f.missed, f.short_abandons),
            (3, 1, 1, 1)
        );
        assert_eq!(f.missed_rate, Some(0.5));
        assert_eq!(
            (f.avg_wait_missed_seconds, f.max_wait_missed_seconds),
            (30.0, 30.0)
        );
        assert_eq!(f.callback_never, 1, "task 1 had only a short abandon");
        assert_eq!(r.open_tasks.len(), 2, "still listed");
        assert_eq!(
            r.heatmap[6][19], 1,
            "the short abandon is not in the heat map"
        );
    }

    #[test]
    fn agent_and_queue_rows() {
        use AttemptOutcome::*;
        let calls = [
            // 101 and 102 ring 10 s, nobody answers, the caller gives up while ringing.
            call(
                0,
                25.0,
                Some(LossReason::Ringing),
                vec![
                    ring("101", 5, 10.0, NoAnswer),
                    ring("102", 5, 10.0, NoAnswer),
                    ring("101", 17, 8.0, CallerHungUp),
                ],
            ),
            // 102 answers after 4 s of ringing, 12 s into the call; 101's ring was cancelled.
            call(
                100,
                90.0,
                None,
                vec![
                    ring("101", 108, 4.0, Other),
                    ring("102", 108, 4.0, Answered),
                ],
            ),
            call(300, 40.0, Some(LossReason::Timeout), vec![]),
        ];
        let r = build(&calls, &[], &[], params(ReportBy::Agent, 1000, 0.0));
        let row = |k: &str| r.by.iter().find(|row| row.key == k).expect(k).clone();
        let a101 = row("101");
        let f101 = a101.agent.expect("agent");
        assert_eq!(
            (
                a101.figures.inbound,
                a101.figures.answered,
                a101.figures.missed
            ),
            (2, 0, 1)
        );
        assert_eq!(
            (
                f101.rung,
                f101.rung_not_answered,
                f101.ring_seconds_not_answered
            ),
            (3, 2, 18.0)
        );
        let a102 = row("102");
        assert_eq!((a102.figures.inbound, a102.figures.answered), (2, 1));
        assert_eq!(a102.agent.expect("agent").rung_not_answered, 1);
        assert_eq!(row(NO_KEY).figures.missed, 1);

        let q = build(&calls, &[], &[], params(ReportBy::Queue, 1000, 0.0));
        let sales = q.by[0].queue.clone().expect("queue figures");
        assert_eq!(q.by[0].key, "sales");
        assert_eq!(
            (
                sales.offered,
                sales.abandoned_ringing,
                sales.abandoned_queue,
                sales.timeout
            ),
            (3, 1, 0, 1)
        );
        // Waits: 25 (lost), 12 (answered at 108 + 4 - 100), 40 (lost).
        assert_eq!(sales.avg_wait_seconds, Some(secs(77.0 / 3.0)));
    }

    #[test]
    fn long_periods_chart_by_month() {
        let calls = [
            call(0, 10.0, Some(LossReason::Queue), vec![]),
            call(90 * 86_400, 10.0, Some(LossReason::Queue), vec![]),
        ];
        let r = build(&calls, &[], &[], params(ReportBy::Day, 0, 0.0));
        assert_eq!(
            r.timeline
                .iter()
                .map(|x| x.key.as_str())
                .collect::<Vec<_>>(),
            ["2026-11", "2027-02"]
        );
        assert_eq!(r.by.len(), 2);
        assert_eq!(
            r.period.as_ref().map(|p| p.last_day.as_str()),
            Some("2027-02-20")
        );
    }
}
