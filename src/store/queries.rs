//! The read side: opens the database read-only (never blocks the writer: WAL readers take no
//! write lock) and returns typed rows for the CLI's `missed`, `tasks` and `report` (statuses,
//! reasons and times are read through their `FromSql`, never compared as text).
//!
//! Queries read the tables, not the views, so a database at any schema version this program
//! knows can be read without migrating it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{StoreError, format_time, migrations};
use crate::callbacks::{TaskId, TaskStatus};
use crate::calls::outcome::{AttemptOutcome, Direction, LossReason};
use crate::time::EventTime;

/// One agent rung for a call.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRow {
    /// Agent id (the extension).
    pub agent: String,
    /// The queue member's display name, if it has one (from migration `003_forwards` on).
    pub name: Option<String>,
    /// When the ring started.
    pub ring_start: EventTime,
    /// How long it rang.
    pub ring_seconds: f64,
    /// How it ended.
    pub outcome: AttemptOutcome,
}

/// One external number dialled for a call.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardRow {
    /// The number dialled.
    pub number: String,
    /// When its ring started.
    pub ring_start: EventTime,
    /// How long it rang.
    pub ring_seconds: f64,
    /// How it ended (`answered`, `no_answer`, `busy`, `congestion`, `unavailable`, ...).
    pub outcome: String,
}

/// One missed call with its agents.
#[derive(Debug, Clone, PartialEq)]
pub struct MissedRow {
    /// The call's Linkedid.
    pub linkedid: String,
    /// The number as signalled; `''` when withheld.
    pub caller: String,
    /// Caller name, if signalled.
    pub caller_name: Option<String>,
    /// Company number dialled.
    pub did: Option<String>,
    /// Queue entered.
    pub queue: Option<String>,
    /// Caller channel's first event.
    pub started_at: EventTime,
    /// Caller channel's hangup.
    pub ended_at: EventTime,
    /// Seconds the caller waited.
    pub wait_seconds: f64,
    /// Where the caller was lost.
    pub loss_reason: LossReason,
    /// Reached voicemail.
    pub voicemail: bool,
    /// No earlier call with the number in the store.
    pub first_time_caller: bool,
    /// The number was withheld or not callable (no task).
    pub withheld: bool,
    /// Finished without seeing its end.
    pub gap: bool,
    /// With `gap`: the window in which the unseen end happened.
    pub gap_window: Option<(EventTime, EventTime)>,
    /// Agents rung, in order.
    pub agents: Vec<AttemptRow>,
    /// External numbers dialled for the call (follow-me, forwards), in order.
    pub forwards: Vec<ForwardRow>,
    /// The callback task it belongs to.
    pub task_id: Option<TaskId>,
}

/// Who closed a task.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedBy {
    /// Inbound or outbound.
    pub direction: Direction,
    /// The company-side agent, if known.
    pub agent: Option<String>,
    /// The closing call's Linkedid.
    pub linkedid: String,
}

/// One callback task as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    /// Task id.
    pub id: TaskId,
    /// Normalized number.
    pub number: String,
    /// Stored status; [`TaskRow::shown_status`] adds `overdue`.
    pub status: TaskStatus,
    /// Missed calls joined.
    pub missed_count: i64,
    /// First miss (when the task opened).
    pub first_missed_at: EventTime,
    /// Latest miss.
    pub last_missed_at: EventTime,
    /// Callback due.
    pub deadline: EventTime,
    /// First agent rung for the first miss.
    pub assignee: Option<String>,
    /// Unanswered callback attempts.
    pub attempts: i64,
    /// When the client was reached.
    pub closed_at: Option<EventTime>,
    /// The call that closed it.
    pub closed_by: Option<ClosedBy>,
    /// DID of the first missed call.
    pub did: Option<String>,
    /// Queue of the first missed call.
    pub queue: Option<String>,
}

impl TaskRow {
    /// The status a reader sees at `now` (`overdue` for an open task past its deadline).
    pub fn shown_status(&self, now: EventTime) -> crate::callbacks::ShownStatus {
        self.status.shown(self.deadline, now)
    }
}

/// One inbound call for reports.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportCall {
    /// Caller channel's first event.
    pub started_at: EventTime,
    /// Caller channel's hangup.
    pub ended_at: EventTime,
    /// Company number dialled.
    pub did: Option<String>,
    /// Queue entered.
    pub queue: Option<String>,
    /// A human answered.
    pub answered: bool,
    /// Who answered.
    pub agent: Option<String>,
    /// Seconds from the caller's first event to its hangup.
    pub wait_seconds: f64,
    /// Where the caller was lost: `Some` for a missed call.
    pub loss_reason: Option<LossReason>,
    /// Every ring of every agent, in ring order.
    pub attempts: Vec<AttemptRow>,
}

/// A read-only connection to a missedcalld database.
#[derive(Debug)]
pub struct ReadDb {
    pub(super) conn: Connection,
    path: PathBuf,
    /// Schema version: older files are read as they are, without the newer columns.
    version: i64,
}

/// Opens `path` read-only and checks it is a missedcalld database.
pub fn open_read_only(path: &Path) -> Result<ReadDb, StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing {
            path: path.to_owned(),
        });
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::from_open(path, e))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| StoreError::from_open(path, e))?;
    let version = migrations::check_ours(&conn, path)?;
    if version == 0 {
        return Err(StoreError::NotOurs {
            path: path.to_owned(),
            reason: "it is empty (no missedcalld schema)".into(),
        });
    }
    Ok(ReadDb {
        conn,
        path: path.to_owned(),
        version,
    })
}

fn range_params(
    since: Option<EventTime>,
    until: Option<EventTime>,
) -> (Option<String>, Option<String>) {
    (since.map(format_time), until.map(format_time))
}

impl ReadDb {
    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` inside one read transaction, so every query sees the same snapshot.
    pub fn snapshot<T>(
        &self,
        f: impl FnOnce(&ReadDb) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(StoreError::sql("BEGIN"))?;
        let out = f(self)?;
        tx.rollback()
            .map_err(StoreError::sql("end read transaction"))?;
        Ok(out)
    }

    /// Runs the cached statement `sql` with the range bounds as `?1` and `?2`, reads every row
    /// with `read` and hands it to `each`, in order. In errors, `select` names the statement
    /// and `read_one` the reading of a row.
    fn each_row<R>(
        &self,
        sql: &str,
        (since, until): &(Option<String>, Option<String>),
        (select, read_one): (&'static str, &'static str),
        read: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<R>,
        mut each: impl FnMut(R) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut st = self
            .conn
            .prepare_cached(sql)
            .map_err(StoreError::sql(select))?;
        let rows = st
            .query_map(params![since, until], read)
            .map_err(StoreError::sql(select))?;
        for row in rows {
            each(row.map_err(StoreError::sql(read_one))?)?;
        }
        Ok(())
    }

    /// The agent attempts `sql` selects (`call_id, agent, ring_start, ring_seconds, outcome`,
    /// in ring order), grouped by call id.
    fn attempts_by_call(
        &self,
        sql: &str,
        range: &(Option<String>, Option<String>),
        what: (&'static str, &'static str),
    ) -> Result<HashMap<i64, Vec<AttemptRow>>, StoreError> {
        let mut by_call: HashMap<i64, Vec<AttemptRow>> = HashMap::new();
        self.each_row(
            sql,
            range,
            what,
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    AttemptRow {
                        agent: r.get(1)?,
                        ring_start: r.get(2)?,
                        ring_seconds: r.get(3)?,
                        outcome: r.get(4)?,
                        name: r.get(5)?,
                    },
                ))
            },
            |(call_id, attempt)| {
                by_call.entry(call_id).or_default().push(attempt);
                Ok(())
            },
        )?;
        Ok(by_call)
    }

    /// The calendar timezone the writer recorded in `meta`, if any.
    pub fn timezone(&self) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'calendar_timezone'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::sql("read meta.calendar_timezone"))
    }

    /// Missed calls that ended in `[since, until)`, oldest first, with their agents.
    pub fn missed_calls(
        &self,
        since: Option<EventTime>,
        until: Option<EventTime>,
    ) -> Result<Vec<MissedRow>, StoreError> {
        let range = range_params(since, until);
        let mut agents = self.attempts_by_call(
            &format!(
                "SELECT a.call_id, a.agent, a.ring_start, a.ring_seconds, a.outcome, {}
                   FROM missed_calls m
                   JOIN calls c ON c.id = m.call_id
                   JOIN agent_attempts a ON a.call_id = c.id
                  WHERE (?1 IS NULL OR c.ended_at >= ?1) AND (?2 IS NULL OR c.ended_at < ?2)
                  ORDER BY a.call_id, a.seq",
                self.member_name_column()
            ),
            &range,
            ("select agent attempts", "read agent attempt"),
        )?;
        let mut forwards = self.forwards_of_missed(&range)?;
        let mut out = Vec::new();
        // The gap window exists from migration `004_gap_window` on.
        let window = if self.version >= migrations::version_of(migrations::GAP_WINDOW) {
            "c.gap_started_at, c.gap_ended_at"
        } else {
            "NULL, NULL"
        };
        self.each_row(
            &format!(
                "SELECT c.id, c.linkedid, c.number, c.name, c.did, c.queue, c.started_at,
                    c.ended_at, c.wait_seconds, m.loss_reason, m.voicemail,
                    m.first_time_caller, m.withheld, c.gap, m.task_id, {window}
               FROM missed_calls m
               JOIN calls c ON c.id = m.call_id
              WHERE (?1 IS NULL OR c.ended_at >= ?1) AND (?2 IS NULL OR c.ended_at < ?2)
              ORDER BY c.ended_at, c.id"
            ),
            &range,
            ("select missed calls", "read missed call"),
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    MissedRow {
                        linkedid: r.get(1)?,
                        caller: r.get(2)?,
                        caller_name: r.get(3)?,
                        did: r.get(4)?,
                        queue: r.get(5)?,
                        started_at: r.get(6)?,
                        ended_at: r.get(7)?,
                        wait_seconds: r.get(8)?,
                        loss_reason: r.get(9)?,
                        voicemail: r.get(10)?,
                        first_time_caller: r.get(11)?,
                        withheld: r.get(12)?,
                        gap: r.get(13)?,
                        gap_window: r
                            .get::<_, Option<EventTime>>(15)?
                            .zip(r.get::<_, Option<EventTime>>(16)?),
                        agents: Vec::new(),
                        forwards: Vec::new(),
                        task_id: r.get(14)?,
                    },
                ))
            },
            |(call_id, mut m)| {
                if m.withheld {
                    m.caller.clear();
                }
                m.agents = agents.remove(&call_id).unwrap_or_default();
                m.forwards = forwards.remove(&call_id).unwrap_or_default();
                out.push(m);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// The forwards of the missed calls that ended in the range, by call, in ring order
    /// (none before the migration that adds the table).
    fn forwards_of_missed(
        &self,
        range: &(Option<String>, Option<String>),
    ) -> Result<HashMap<i64, Vec<ForwardRow>>, StoreError> {
        let mut by_call: HashMap<i64, Vec<ForwardRow>> = HashMap::new();
        if self.version < migrations::version_of(migrations::FORWARDS) {
            return Ok(by_call);
        }
        self.each_row(
            "SELECT f.call_id, f.number, f.ring_start, f.ring_seconds, f.outcome
               FROM missed_calls m
               JOIN calls c ON c.id = m.call_id
               JOIN forwards f ON f.call_id = c.id
              WHERE (?1 IS NULL OR c.ended_at >= ?1) AND (?2 IS NULL OR c.ended_at < ?2)
              ORDER BY f.call_id, f.seq",
            range,
            ("select forwards", "read forward"),
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    ForwardRow {
                        number: r.get(1)?,
                        ring_start: r.get(2)?,
                        ring_seconds: r.get(3)?,
                        outcome: r.get(4)?,
                    },
                ))
            },
            |(call_id, forward)| {
                by_call.entry(call_id).or_default().push(forward);
                Ok(())
            },
        )?;
        Ok(by_call)
    }

    /// `a.name` where the schema has the member's name, else `NULL`.
    fn member_name_column(&self) -> &'static str {
        if self.version >= migrations::version_of(migrations::FORWARDS) {
            "a.name"
        } else {
            "NULL"
        }
    }

    /// Every callback task, by id.
    pub fn tasks(&self) -> Result<Vec<TaskRow>, StoreError> {
        self.tasks_where(None, None, false)
    }

    /// Tasks opened (first miss) in `[since, until)`, by id.
    pub fn tasks_opened(
        &self,
        since: Option<EventTime>,
        until: Option<EventTime>,
    ) -> Result<Vec<TaskRow>, StoreError> {
        self.tasks_where(since, until, true)
    }

    fn tasks_where(
        &self,
        since: Option<EventTime>,
        until: Option<EventTime>,
        filter: bool,
    ) -> Result<Vec<TaskRow>, StoreError> {
        let range = if filter {
            range_params(since, until)
        } else {
            (None, None)
        };
        let mut out = Vec::new();
        self.each_row(
            "SELECT t.id, t.number, t.status, t.missed_count, t.first_missed_at,
                    t.last_missed_at, t.deadline, t.assignee, t.attempts, t.closed_at,
                    t.closed_by_direction, t.closed_by_agent, t.closed_by_linkedid,
                    (SELECT c.did FROM missed_calls m JOIN calls c ON c.id = m.call_id
                      WHERE m.task_id = t.id ORDER BY c.ended_at LIMIT 1),
                    (SELECT c.queue FROM missed_calls m JOIN calls c ON c.id = m.call_id
                      WHERE m.task_id = t.id ORDER BY c.ended_at LIMIT 1)
               FROM callback_tasks t
              WHERE (?1 IS NULL OR t.first_missed_at >= ?1)
                AND (?2 IS NULL OR t.first_missed_at < ?2)
              ORDER BY t.id",
            &range,
            ("select tasks", "read task"),
            |r| {
                let closed_by = match (r.get(10)?, r.get::<_, Option<String>>(12)?) {
                    (Some(direction), Some(linkedid)) => Some(ClosedBy {
                        direction,
                        agent: r.get(11)?,
                        linkedid,
                    }),
                    _ => None,
                };
                Ok(TaskRow {
                    id: r.get(0)?,
                    number: r.get(1)?,
                    status: r.get(2)?,
                    missed_count: r.get(3)?,
                    first_missed_at: r.get(4)?,
                    last_missed_at: r.get(5)?,
                    deadline: r.get(6)?,
                    assignee: r.get(7)?,
                    attempts: r.get(8)?,
                    closed_at: r.get(9)?,
                    closed_by,
                    did: r.get(13)?,
                    queue: r.get(14)?,
                })
            },
            |task| {
                out.push(task);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// A `meta` value the writer recorded (`calendar_timezone`, `short_abandon_seconds`).
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(StoreError::sql("read meta"))
    }

    /// Inbound calls that ended in `[since, until)`, with every ring of every agent.
    pub fn report_calls(
        &self,
        since: Option<EventTime>,
        until: Option<EventTime>,
    ) -> Result<Vec<ReportCall>, StoreError> {
        let range = range_params(since, until);
        let mut rings = self.attempts_by_call(
            &format!(
                "SELECT a.call_id, a.agent, a.ring_start, a.ring_seconds, a.outcome, {}
                   FROM calls c JOIN agent_attempts a ON a.call_id = c.id
                  WHERE c.direction = 'inbound'
                    AND (?1 IS NULL OR c.ended_at >= ?1) AND (?2 IS NULL OR c.ended_at < ?2)
                  ORDER BY a.call_id, a.seq",
                self.member_name_column()
            ),
            &range,
            ("select rings for report", "read ring"),
        )?;
        let mut out = Vec::new();
        self.each_row(
            "SELECT c.id, c.started_at, c.ended_at, c.did, c.queue, c.answered, c.agent,
                    c.wait_seconds, m.loss_reason
               FROM calls c LEFT JOIN missed_calls m ON m.call_id = c.id
              WHERE c.direction = 'inbound'
                AND (?1 IS NULL OR c.ended_at >= ?1) AND (?2 IS NULL OR c.ended_at < ?2)
              ORDER BY c.ended_at, c.id",
            &range,
            ("select inbound calls", "read inbound call"),
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    ReportCall {
                        started_at: r.get(1)?,
                        ended_at: r.get(2)?,
                        did: r.get(3)?,
                        queue: r.get(4)?,
                        answered: r.get(5)?,
                        agent: r.get(6)?,
                        wait_seconds: r.get(7)?,
                        loss_reason: r.get(8)?,
                        attempts: Vec::new(),
                    },
                ))
            },
            |(id, mut call)| {
                call.attempts = rings.remove(&id).unwrap_or_default();
                out.push(call);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Tasks whose every missed call waited less than `seconds` (short abandons only).
    pub fn short_abandon_tasks(&self, seconds: f64) -> Result<Vec<TaskId>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT m.task_id FROM missed_calls m JOIN calls c ON c.id = m.call_id
                  WHERE m.task_id IS NOT NULL
                  GROUP BY m.task_id HAVING max(c.wait_seconds) < ?1 ORDER BY m.task_id",
            )
            .map_err(StoreError::sql("select short-abandon tasks"))?;
        let ids = st
            .query_map([seconds], |r| r.get(0))
            .map_err(StoreError::sql("select short-abandon tasks"))?
            .collect::<Result<Vec<TaskId>, _>>()
            .map_err(StoreError::sql("read short-abandon task"))?;
        Ok(ids)
    }
}
