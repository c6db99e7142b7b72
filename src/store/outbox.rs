//! The outbox tables (migration 006): rows written by the store writer in the call's own
//! transaction ([`enqueue`]), and the delivery worker's connection ([`OutboxDb`]) that claims due
//! rows, records each attempt, and adds `task_overdue` / `daily_digest` notifications.
//!
//! A row is claimed by moving its `next_attempt_at` past the attempt's time limit: if the
//! process dies mid-delivery the row is simply due again later (at least once).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::queries::ReadDb;
use super::{StoreError, format_time, parse_time};
use crate::notify::EventKind;
use crate::notify::outbox::{Delivery, Routes, Subject};
use crate::time::EventTime;

const INSERT_NOTIFICATION: &str = "INSERT INTO notifications (id, event, created_at, call_id, \
     task_id, digest_day, task_missed_count) VALUES (lower(hex(randomblob(16))), ?1, ?2, ?3, ?4, \
     ?5, CASE WHEN ?1 = 'missed_call' THEN \
     (SELECT missed_count FROM callback_tasks WHERE id = ?4) END) RETURNING id";
const INSERT_OUTBOX: &str = "INSERT INTO outbox (notification_id, sink, target, recipient, \
     status, next_attempt_at) VALUES (?1, ?2, ?3, ?4, 'pending', ?5)";

/// Writes one notification created at `now` and its outbox rows, due from `due` (nothing when
/// `deliveries` is empty); returns the notification's id.
#[allow(clippy::too_many_arguments)]
pub(super) fn enqueue(
    conn: &Connection,
    event: EventKind,
    call_id: Option<i64>,
    task_id: Option<i64>,
    digest_day: Option<&str>,
    deliveries: &[Delivery],
    now: EventTime,
    due: EventTime,
) -> Result<Option<String>, StoreError> {
    if deliveries.is_empty() {
        return Ok(None);
    }
    let now = format_time(now);
    let due = format_time(due);
    let id: String = conn
        .prepare_cached(INSERT_NOTIFICATION)
        .and_then(|mut st| {
            st.query_row(
                params![event.as_str(), now, call_id, task_id, digest_day],
                |r| r.get(0),
            )
        })
        .map_err(StoreError::sql("insert notification"))?;
    let mut st = conn
        .prepare_cached(INSERT_OUTBOX)
        .map_err(StoreError::sql("insert outbox row"))?;
    for d in deliveries {
        st.execute(params![id, d.sink, d.target, d.recipient, due])
            .map_err(StoreError::sql("insert outbox row"))?;
    }
    Ok(Some(id))
}

/// A pending row that is due, with what rendering its payload needs.
#[derive(Debug, Clone, PartialEq)]
pub struct DueRow {
    /// `outbox.id`.
    pub row: i64,
    /// The stable notification id.
    pub notification: String,
    /// What it announces.
    pub event: EventKind,
    /// When the notification was written.
    pub created_at: EventTime,
    /// `outbox.sink`.
    pub sink: String,
    /// Telegram chat id or `""`.
    pub recipient: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the first attempt was made.
    pub first_attempt_at: Option<EventTime>,
    /// The frozen payload, once rendered.
    pub payload: Option<String>,
    /// The missed call's linkedid and end (missed_call).
    pub call: Option<(String, EventTime)>,
    /// The task (missed_call with a task, task_overdue).
    pub task_id: Option<i64>,
    /// missed_call: the task's `missed_count` right after this miss.
    pub task_missed_count: Option<i64>,
    /// The digest's local day.
    pub digest_day: Option<String>,
}

/// One row of `missedcalld outbox`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// The stable notification id.
    pub notification: String,
    /// Contract event name.
    pub event: String,
    /// When it was written.
    pub created_at: EventTime,
    /// Sink key.
    pub sink: String,
    /// URL / bot / program.
    pub target: String,
    /// Telegram chat or `""`.
    pub recipient: String,
    /// `pending` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// Next attempt (pending).
    pub next_attempt_at: EventTime,
    /// Last error.
    pub last_error: Option<String>,
}

impl ReadDb {
    /// Pending and failed outbox rows, oldest first (empty for a database before migration 6).
    pub fn outbox(&self) -> Result<Vec<OutboxRow>, StoreError> {
        let has: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'outbox')",
                [],
                |r| r.get(0),
            )
            .map_err(StoreError::sql("look for the outbox table"))?;
        if !has {
            return Ok(Vec::new());
        }
        let mut st = self
            .conn
            .prepare(
                "SELECT n.id, n.event, n.created_at, o.sink, o.target, o.recipient, o.status,
                        o.attempts, o.next_attempt_at, o.last_error
                   FROM outbox o JOIN notifications n ON n.id = o.notification_id
                  WHERE o.status IN ('pending', 'failed')
                  ORDER BY n.created_at, o.id",
            )
            .map_err(StoreError::sql("select outbox"))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, Option<String>>(9)?,
                ))
            })
            .map_err(StoreError::sql("select outbox"))?;
        let mut out = Vec::new();
        for row in rows {
            let (
                notification,
                event,
                created,
                sink,
                target,
                recipient,
                status,
                attempts,
                next,
                err,
            ) = row.map_err(StoreError::sql("read outbox row"))?;
            out.push(OutboxRow {
                notification,
                event,
                created_at: parse_time("notifications.created_at", &created)?,
                sink,
                target,
                recipient,
                status,
                attempts,
                next_attempt_at: parse_time("outbox.next_attempt_at", &next)?,
                last_error: err,
            });
        }
        Ok(out)
    }
}

/// The delivery worker's read-write connection.
pub struct OutboxDb {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for OutboxDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxDb")
            .field("path", &self.path)
            .finish()
    }
}

fn time_opt(column: &'static str, s: Option<String>) -> Result<Option<EventTime>, StoreError> {
    s.map(|s| parse_time(column, &s)).transpose()
}

impl OutboxDb {
    /// Opens a database the store has already created and migrated.
    pub fn open(path: &Path) -> Result<OutboxDb, StoreError> {
        let mut conn = Connection::open(path).map_err(|e| StoreError::from_open(path, e))?;
        // The store writer commits many short transactions: retry every millisecond.
        conn.busy_handler(Some(super::busy::retry_every_millisecond))
            .map_err(|e| StoreError::from_open(path, e))?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(|e| StoreError::from_open(path, e))?;
        let version = super::migrations::check_ours(&conn, path)?;
        if version < super::migrations::LATEST_VERSION {
            return Err(StoreError::NotOurs {
                path: path.to_owned(),
                reason: format!("schema version {version} has no outbox yet"),
            });
        }
        Ok(OutboxDb {
            conn,
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write<T>(
        &mut self,
        what: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sql(what))?;
        let out = f(&tx).map_err(StoreError::sql(what))?;
        tx.commit().map_err(StoreError::sql(what))?;
        Ok(out)
    }

    /// Up to `limit` pending rows due at `now`, oldest due first; each is claimed until
    /// `now + lease` in the same transaction.
    pub fn claim_due(
        &mut self,
        now: EventTime,
        limit: usize,
        lease: Duration,
        skip_sinks: &[String],
    ) -> Result<Vec<DueRow>, StoreError> {
        let now_s = format_time(now);
        let until = format_time(now.plus(lease));
        type Raw = (
            i64,
            String,
            String,
            String,
            String,
            String,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<i64>,
        );
        // Look without a lock first: taking the write lock only when something is due keeps
        // the worker out of the store writer's way.
        let any_due: bool = self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?1)",
            )
            .and_then(|mut st| st.query_row([&now_s], |r| r.get(0)))
            .map_err(StoreError::sql("look for due outbox rows"))?;
        if !any_due {
            return Ok(Vec::new());
        }
        let raw: Vec<Raw> = self.write("claim due outbox rows", |tx| {
            let mut st = tx.prepare_cached(
                "SELECT o.id, n.id, n.event, n.created_at, o.sink, o.recipient, o.attempts,
                        o.first_attempt_at, n.payload, c.linkedid, c.ended_at, n.task_id,
                        n.digest_day, n.task_missed_count
                   FROM outbox o
                   JOIN notifications n ON n.id = o.notification_id
                   LEFT JOIN calls c ON c.id = n.call_id
                  WHERE o.status = 'pending' AND o.next_attempt_at <= ?1
                  ORDER BY o.next_attempt_at, o.id
                  LIMIT ?2",
            )?;
            let rows: Vec<Raw> = st
                .query_map(params![now_s, (limit + skip_sinks.len() * 8) as i64], |r| {
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
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let rows: Vec<Raw> = rows
                .into_iter()
                .filter(|r| !skip_sinks.contains(&r.4))
                .take(limit)
                .collect();
            let mut claim =
                tx.prepare_cached("UPDATE outbox SET next_attempt_at = ?2 WHERE id = ?1")?;
            for r in &rows {
                claim.execute(params![r.0, until])?;
            }
            Ok(rows)
        })?;
        let mut out = Vec::with_capacity(raw.len());
        for (
            row,
            id,
            event,
            created,
            sink,
            recipient,
            attempts,
            first,
            payload,
            lid,
            ended,
            task,
            day,
            task_missed_count,
        ) in raw
        {
            let call = match (lid, ended) {
                (Some(l), Some(e)) => Some((l, parse_time("calls.ended_at", &e)?)),
                _ => None,
            };
            out.push(DueRow {
                row,
                notification: id,
                event: EventKind::parse(&event).ok_or(StoreError::BadValue {
                    column: "notifications.event",
                    value: event.clone(),
                })?,
                created_at: parse_time("notifications.created_at", &created)?,
                sink,
                recipient,
                attempts: u32::try_from(attempts).unwrap_or(0),
                first_attempt_at: time_opt("outbox.first_attempt_at", first)?,
                payload,
                call,
                task_id: task,
                task_missed_count,
                digest_day: day,
            });
        }
        Ok(out)
    }

    /// The earliest `next_attempt_at` of a pending row.
    pub fn next_due(&self) -> Result<Option<EventTime>, StoreError> {
        let s: Option<String> = self
            .conn
            .query_row(
                "SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending'",
                [],
                |r| r.get(0),
            )
            .map_err(StoreError::sql("next due outbox row"))?;
        time_opt("outbox.next_attempt_at", s)
    }

    /// Pending and failed row counts.
    pub fn counts(&self) -> Result<(u64, u64), StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FILTER (WHERE status = 'pending'),
                        count(*) FILTER (WHERE status = 'failed') FROM outbox",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(StoreError::sql("count outbox rows"))
    }

    /// Freezes payloads (the first rendering of each wins) in one transaction and returns
    /// the stored ones by notification id.
    pub fn freeze_payloads(
        &mut self,
        payloads: &[(String, String)],
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        if payloads.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        self.write("store notification payloads", |tx| {
            let mut set = tx.prepare_cached(
                "UPDATE notifications SET payload = ?2 WHERE id = ?1 AND payload IS NULL",
            )?;
            let mut get = tx.prepare_cached("SELECT payload FROM notifications WHERE id = ?1")?;
            let mut out = std::collections::HashMap::new();
            for (id, payload) in payloads {
                set.execute(params![id, payload])?;
                let stored: String = get.query_row([id], |r| r.get(0))?;
                out.insert(id.clone(), stored);
            }
            Ok(out)
        })
    }

    /// Applies a batch of outcomes in one transaction.
    pub fn record(
        &mut self,
        outcomes: &[(i64, RowUpdate)],
        now: EventTime,
    ) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let now = format_time(now);
        self.write("record delivery outcomes", |tx| {
            for (row, update) in outcomes {
                match update {
                    RowUpdate::Delivered => tx.execute(
                        "UPDATE outbox SET status = 'delivered', attempts = attempts + 1,
                                first_attempt_at = coalesce(first_attempt_at, ?2),
                                done_at = ?2, last_error = NULL WHERE id = ?1",
                        params![row, now],
                    )?,
                    RowUpdate::Retry { at, error } => tx.execute(
                        "UPDATE outbox SET attempts = attempts + 1,
                                first_attempt_at = coalesce(first_attempt_at, ?2),
                                next_attempt_at = ?3, last_error = ?4 WHERE id = ?1",
                        params![row, now, format_time(*at), error],
                    )?,
                    RowUpdate::Hold { until } => tx.execute(
                        "UPDATE outbox SET next_attempt_at = ?2 WHERE id = ?1",
                        params![row, format_time(*until)],
                    )?,
                    RowUpdate::Failed { error, attempted } => tx.execute(
                        "UPDATE outbox SET status = 'failed',
                                attempts = attempts + ?3,
                                first_attempt_at = coalesce(first_attempt_at, ?2),
                                done_at = ?2, last_error = ?4 WHERE id = ?1",
                        params![row, now, i64::from(*attempted), error],
                    )?,
                };
            }
            Ok(())
        })
    }

    /// Writes `task_overdue` for open tasks past their deadline at `now` that have none yet.
    /// Only tasks announced when they opened count (a backfill without `--notify` stays quiet),
    /// and only deadlines within `lookback`. Returns how many were written.
    pub fn enqueue_overdue(
        &mut self,
        routes: &Routes,
        now: EventTime,
        lookback: Duration,
    ) -> Result<usize, StoreError> {
        let now_s = format_time(now);
        let since = format_time(EventTime(now.0 - lookback.as_micros() as i64));
        // Found without a lock; the write lock is taken only when there is something to write
        // (this worker is the only writer of task_overdue, and the unique index keeps it once).
        let due: Vec<(i64, Option<String>)> = self
            .conn
            .prepare_cached(
                "SELECT t.id, t.assignee FROM callback_tasks t
                  WHERE t.status = 'open' AND t.deadline <= ?1 AND t.deadline > ?2
                    AND EXISTS (SELECT 1 FROM notifications n
                                 WHERE n.task_id = t.id AND n.event = 'missed_call')
                    AND NOT EXISTS (SELECT 1 FROM notifications n
                                     WHERE n.task_id = t.id AND n.event = 'task_overdue')
                  ORDER BY t.deadline",
            )
            .and_then(|mut st| {
                st.query_map(params![now_s, since], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(StoreError::sql("find overdue tasks"))?;
        if due.is_empty() {
            return Ok(0);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sql("begin overdue scan"))?;
        let mut written = 0;
        for (task, assignee) in &due {
            let d = routes.deliveries(Subject::TaskOverdue {
                assignee: assignee.as_deref(),
            });
            if enqueue(
                &tx,
                EventKind::TaskOverdue,
                None,
                Some(*task),
                None,
                &d,
                now,
                now,
            )?
            .is_some()
            {
                written += 1;
            }
        }
        tx.commit()
            .map_err(StoreError::sql("commit overdue scan"))?;
        Ok(written)
    }

    /// Writes the `daily_digest` of local day `day` unless it exists; true when written.
    pub fn enqueue_digest(
        &mut self,
        routes: &Routes,
        day: &str,
        now: EventTime,
    ) -> Result<bool, StoreError> {
        let deliveries = routes.deliveries(Subject::DailyDigest);
        if deliveries.is_empty() {
            return Ok(false);
        }
        let done: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM notifications
                                 WHERE event = 'daily_digest' AND digest_day = ?1)",
                [day],
                |r| r.get(0),
            )
            .map_err(StoreError::sql("look for the digest"))?;
        if done {
            return Ok(false);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sql("begin digest"))?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM notifications WHERE event = 'daily_digest' AND digest_day = ?1",
                [day],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::sql("look for the digest"))?;
        let written = exists.is_none()
            && enqueue(
                &tx,
                EventKind::DailyDigest,
                None,
                None,
                Some(day),
                &deliveries,
                now,
                now,
            )?
            .is_some();
        tx.commit().map_err(StoreError::sql("commit digest"))?;
        Ok(written)
    }
}

/// What one attempt changes in its row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowUpdate {
    /// Done.
    Delivered,
    /// Attempted, failed, due again at `at`.
    Retry {
        /// Next attempt.
        at: EventTime,
        /// Why it failed.
        error: String,
    },
    /// Not attempted: held (quiet hours) until `until`.
    Hold {
        /// When the calendar opens.
        until: EventTime,
    },
    /// Given up; `attempted` when this was an attempt (not a removed sink).
    Failed {
        /// Why.
        error: String,
        /// Count it as an attempt.
        attempted: bool,
    },
}

impl ReadDb {
    /// The missed call with `linkedid` that ended at `ended_at` (as stored).
    pub fn missed_call(
        &self,
        linkedid: &str,
        ended_at: EventTime,
    ) -> Result<Option<super::queries::MissedRow>, StoreError> {
        let rows = self.missed_calls(Some(ended_at), Some(EventTime(ended_at.0 + 1_000)))?;
        Ok(rows.into_iter().find(|m| m.linkedid == linkedid))
    }

    /// One callback task by id.
    pub fn task(&self, id: i64) -> Result<Option<super::queries::TaskRow>, StoreError> {
        let first: Option<String> = self
            .conn
            .query_row(
                "SELECT first_missed_at FROM callback_tasks WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::sql("find task"))?;
        let Some(first) = first else {
            return Ok(None);
        };
        let first = parse_time("callback_tasks.first_missed_at", &first)?;
        let rows = self.tasks_opened(Some(first), Some(EventTime(first.0 + 1_000)))?;
        Ok(rows.into_iter().find(|t| t.id.0 == id))
    }
}
