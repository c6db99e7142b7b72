//! The read side: opens the database read-only (never blocks the writer: WAL readers take no
//! write lock) and returns plain rows for the CLI's `missed`, `tasks` and `report`.
//!
//! Queries read the tables, not the views, so a database at any schema version this program
//! knows can be read without migrating it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{StoreError, format_time, migrations, parse_time};
use crate::time::EventTime;

/// One agent rung for a call.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRow {
    /// Agent id (the extension).
    pub agent: String,
    /// The queue member's display name, if it has one (schema 3 on).
    pub name: Option<String>,
    /// When the ring started.
    pub ring_start: EventTime,
    /// How long it rang.
    pub ring_seconds: f64,
    /// Contract spelling of how it ended.
    pub outcome: String,
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

/// One row of a ring table (agent attempt or forward), before it is typed.
struct Ring {
    who: String,
    name: Option<String>,
    ring_start: EventTime,
    ring_seconds: f64,
    outcome: String,
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
    /// Contract loss reason.
    pub loss_reason: String,
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
    pub task_id: Option<i64>,
}

/// Who closed a task.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedBy {
    /// `inbound` or `outbound`.
    pub direction: String,
    /// The company-side agent, if known.
    pub agent: Option<String>,
    /// The closing call's Linkedid.
    pub linkedid: String,
}

/// One callback task as stored (status `open`, `done_on_time` or `done_late`).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    /// Task id.
    pub id: i64,
    /// Normalized number.
    pub number: String,
    /// Stored status; `overdue` is derived by the caller from `deadline` and the time now.
    pub status: String,
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

/// One inbound call for reports.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundRow {
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
    /// Seconds the caller waited.
    pub wait_seconds: f64,
    /// It is a missed call.
    pub missed: bool,
    /// Agents rung (distinct, in first-ring order).
    pub agents_rung: Vec<String>,
}

/// A read-only connection to a missedcalld database.
#[derive(Debug)]
pub struct ReadDb {
    conn: Connection,
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

/// A call's stored `started_at` and `ended_at`, parsed.
fn call_span(started: &str, ended: &str) -> Result<(EventTime, EventTime), StoreError> {
    Ok((
        parse_time("calls.started_at", started)?,
        parse_time("calls.ended_at", ended)?,
    ))
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
        // The member's name and the forwards exist from schema 3 on.
        let name = if self.version >= 3 { "r.name" } else { "NULL" };
        let mut agents: HashMap<i64, Vec<AttemptRow>> = HashMap::new();
        for (call_id, ring) in self.rings_of_missed("agent_attempts", "agent", name, &range)? {
            agents.entry(call_id).or_default().push(AttemptRow {
                agent: ring.who,
                name: ring.name,
                ring_start: ring.ring_start,
                ring_seconds: ring.ring_seconds,
                outcome: ring.outcome,
            });
        }
        let mut forwards: HashMap<i64, Vec<ForwardRow>> = HashMap::new();
        if self.version >= 3 {
            for (call_id, ring) in self.rings_of_missed("forwards", "number", "NULL", &range)? {
                forwards.entry(call_id).or_default().push(ForwardRow {
                    number: ring.who,
                    ring_start: ring.ring_start,
                    ring_seconds: ring.ring_seconds,
                    outcome: ring.outcome,
                });
            }
        }
        let mut out = Vec::new();
        // The gap window exists from schema 4 on.
        let window = if self.version >= 4 {
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
                        started_at: EventTime(0),
                        ended_at: EventTime(0),
                        wait_seconds: r.get(8)?,
                        loss_reason: r.get(9)?,
                        voicemail: r.get(10)?,
                        first_time_caller: r.get(11)?,
                        withheld: r.get(12)?,
                        gap: r.get(13)?,
                        gap_window: None,
                        agents: Vec::new(),
                        forwards: Vec::new(),
                        task_id: r.get(14)?,
                    },
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, Option<String>>(15)?
                        .zip(r.get::<_, Option<String>>(16)?),
                ))
            },
            |(call_id, mut m, started, ended, window)| {
                (m.started_at, m.ended_at) = call_span(&started, &ended)?;
                if let Some((from, to)) = window {
                    m.gap_window = Some((
                        parse_time("calls.gap_started_at", &from)?,
                        parse_time("calls.gap_ended_at", &to)?,
                    ));
                }
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

    /// The rows of a ring table (`agent_attempts` or `forwards`) of the missed calls that ended
    /// in the range, in call and ring order, with their call id. `who` and `name` are the
    /// table's column names (or `NULL`).
    fn rings_of_missed(
        &self,
        table: &'static str,
        who: &'static str,
        name: &'static str,
        range: &(Option<String>, Option<String>),
    ) -> Result<Vec<(i64, Ring)>, StoreError> {
        let mut out = Vec::new();
        let column = if table == "forwards" {
            "forwards.ring_start"
        } else {
            "agent_attempts.ring_start"
        };
        self.each_row(
            &format!(
                "SELECT r.call_id, r.{who}, r.ring_start, r.ring_seconds, r.outcome, {name}
                   FROM missed_calls m
                   JOIN calls c ON c.id = m.call_id
                   JOIN {table} r ON r.call_id = c.id
                  WHERE (?1 IS NULL OR c.ended_at >= ?1) AND (?2 IS NULL OR c.ended_at < ?2)
                  ORDER BY r.call_id, r.seq"
            ),
            range,
            (table, table),
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, f64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            },
            |(call_id, who, ring_start, ring_seconds, outcome, name)| {
                out.push((
                    call_id,
                    Ring {
                        who,
                        name,
                        ring_start: parse_time(column, &ring_start)?,
                        ring_seconds,
                        outcome,
                    },
                ));
                Ok(())
            },
        )?;
        Ok(out)
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
        type Raw = (
            i64,
            String,
            String,
            i64,
            String,
            String,
            String,
            Option<String>,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
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
            |r| -> rusqlite::Result<Raw> {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                    r.get(12)?,
                    r.get(13)?,
                    r.get(14)?,
                ))
            },
            |(
                id,
                number,
                status,
                missed_count,
                first,
                last,
                deadline,
                assignee,
                attempts,
                closed_at,
                by_direction,
                by_agent,
                by_linkedid,
                did,
                queue,
            )| {
                let closed_at = match closed_at {
                    Some(t) => Some(parse_time("callback_tasks.closed_at", &t)?),
                    None => None,
                };
                let closed_by = match (by_direction, by_linkedid) {
                    (Some(direction), Some(linkedid)) => Some(ClosedBy {
                        direction,
                        agent: by_agent,
                        linkedid,
                    }),
                    _ => None,
                };
                out.push(TaskRow {
                    id,
                    number,
                    status,
                    missed_count,
                    first_missed_at: parse_time("callback_tasks.first_missed_at", &first)?,
                    last_missed_at: parse_time("callback_tasks.last_missed_at", &last)?,
                    deadline: parse_time("callback_tasks.deadline", &deadline)?,
                    assignee,
                    attempts,
                    closed_at,
                    closed_by,
                    did,
                    queue,
                });
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Inbound calls that ended in `[since, until)`, with the agents rung.
    pub fn inbound_calls(
        &self,
        since: Option<EventTime>,
        until: Option<EventTime>,
    ) -> Result<Vec<InboundRow>, StoreError> {
        let mut out = Vec::new();
        self.each_row(
            "SELECT c.started_at, c.ended_at, c.did, c.queue, c.answered, c.agent,
                    c.wait_seconds, m.id IS NOT NULL,
                    (SELECT group_concat(agent, char(31))
                       FROM (SELECT agent FROM agent_attempts a
                              WHERE a.call_id = c.id ORDER BY seq))
               FROM calls c LEFT JOIN missed_calls m ON m.call_id = c.id
              WHERE c.direction = 'inbound'
                AND (?1 IS NULL OR c.ended_at >= ?1) AND (?2 IS NULL OR c.ended_at < ?2)
              ORDER BY c.ended_at, c.id",
            &range_params(since, until),
            ("select inbound calls", "read inbound call"),
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    InboundRow {
                        started_at: EventTime(0),
                        ended_at: EventTime(0),
                        did: r.get(2)?,
                        queue: r.get(3)?,
                        answered: r.get(4)?,
                        agent: r.get(5)?,
                        wait_seconds: r.get(6)?,
                        missed: r.get(7)?,
                        agents_rung: Vec::new(),
                    },
                    r.get::<_, Option<String>>(8)?,
                ))
            },
            |(started, ended, mut call, agents)| {
                (call.started_at, call.ended_at) = call_span(&started, &ended)?;
                if let Some(agents) = agents {
                    for a in agents.split('\u{1f}') {
                        if !call.agents_rung.iter().any(|x| x == a) {
                            call.agents_rung.push(a.to_owned());
                        }
                    }
                }
                out.push(call);
                Ok(())
            },
        )?;
        Ok(out)
    }
}
