//! The writer thread: owns the read-write connection, batches calls into one transaction,
//! applies the callback-task rules, and retries a batch whole until it commits.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use rusqlite::ffi::ErrorCode;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::file::OpenedFiles;
use super::{Cmd, StoreError, StoreSettings, StoreStats, outbox};
use crate::callbacks::{self, OpenTask, TaskId, TaskOp, TaskRules, TaskStatus};
use crate::calls::outcome::{Direction, FinishedCall};
use crate::notify::EventKind;
use crate::notify::outbox::{Routes, Subject};
use crate::time::EventTime;

/// First pause after a failed batch; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between two attempts at the same batch.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// While a batch keeps failing, repeat the warning at most this often.
const REWARN_EVERY: Duration = Duration::from_secs(60);
/// With nothing to commit, look this often whether the file at the path is still ours, so a
/// deleted database is reported (and recreated for readers) without waiting for the next call.
const IDLE_FILE_CHECK: Duration = Duration::from_secs(10);

const INSERT_CALL: &str = "INSERT INTO calls (linkedid, direction, number, number_normalized, \
     name, did, queue, started_at, ended_at, wait_seconds, answered, agent, talk_seconds, gap, \
     gap_started_at, gap_ended_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
     ON CONFLICT (linkedid) DO NOTHING";
const INSERT_ATTEMPT: &str = "INSERT INTO agent_attempts (call_id, seq, agent, ring_start, \
     ring_seconds, outcome, name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const INSERT_FORWARD: &str = "INSERT INTO forwards (call_id, seq, number, ring_start, \
     ring_seconds, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const EARLIER_CALL: &str = "SELECT EXISTS (SELECT 1 FROM calls WHERE number_normalized = ?1 \
     AND started_at < ?2 AND id <> ?3)";
// `status = 'open'` stays a literal so SQLite uses the partial index `callback_tasks_one_open`.
const OPEN_TASK: &str = "SELECT id, assignee, first_missed_at, deadline, missed_count \
     FROM callback_tasks WHERE number = ?1 AND status = 'open'";
const JOIN_TASK: &str = "UPDATE callback_tasks SET missed_count = missed_count + 1, \
     first_missed_at = min(first_missed_at, ?2), last_missed_at = max(last_missed_at, ?2) \
     WHERE id = ?1";
const NEW_TASK: &str = "INSERT INTO callback_tasks (number, status, missed_count, \
     first_missed_at, last_missed_at, deadline, assignee) VALUES (?1, 'open', 1, ?2, ?2, ?3, ?4)";
const TASK_EVENT: &str =
    "INSERT INTO task_events (task_id, kind, at, linkedid) VALUES (?1, ?2, ?3, ?4)";
const INSERT_MISSED: &str = "INSERT INTO missed_calls (call_id, loss_reason, voicemail, \
     withheld, first_time_caller, task_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const CLOSE_TASK: &str = "UPDATE callback_tasks SET status = ?2, closed_at = ?3, \
     closed_by_direction = ?4, closed_by_agent = ?5, closed_by_linkedid = ?6 WHERE id = ?1";
const COUNT_ATTEMPT: &str = "UPDATE callback_tasks SET attempts = attempts + 1 WHERE id = ?1";

/// What happened to one call.
enum Applied {
    New,
    Duplicate,
}

/// A task change, logged only once its transaction has committed.
enum TaskLog {
    Opened {
        task: TaskId,
        number: String,
        deadline: EventTime,
        assignee: Option<String>,
        linkedid: String,
    },
    Joined {
        task: TaskId,
        number: String,
        missed_count: i64,
        deadline: EventTime,
        linkedid: String,
    },
    Closed {
        task: TaskId,
        number: String,
        status: TaskStatus,
        direction: Direction,
        agent: Option<String>,
        deadline: EventTime,
        linkedid: String,
    },
}

impl TaskLog {
    /// Opening and joining are DEBUG: the pipeline already logs one INFO line per missed call,
    /// and admins tail exactly that; a task closing is the other INFO line they watch for.
    fn emit(&self) {
        match self {
            TaskLog::Opened {
                task,
                number,
                deadline,
                assignee,
                linkedid,
            } => tracing::debug!(
                task = task.0,
                number = %number,
                deadline = %deadline.to_rfc3339(),
                assignee = assignee.as_deref().unwrap_or("-"),
                linkedid = %linkedid,
                "callback task opened for {number}, due {}", deadline.to_rfc3339()
            ),
            TaskLog::Joined {
                task,
                number,
                missed_count,
                deadline,
                linkedid,
            } => tracing::debug!(
                task = task.0,
                number = %number,
                missed_count,
                deadline = %deadline.to_rfc3339(),
                linkedid = %linkedid,
                "repeated miss from {number} joined callback task {task} ({missed_count} missed), due {}",
                deadline.to_rfc3339()
            ),
            TaskLog::Closed {
                task,
                number,
                status,
                direction,
                agent,
                deadline,
                linkedid,
            } => tracing::info!(
                task = task.0,
                number = %number,
                status = status.as_str(),
                direction = direction.as_str(),
                agent = agent.as_deref().unwrap_or("-"),
                deadline = %deadline.to_rfc3339(),
                linkedid = %linkedid,
                "callback task {task} for {number} closed {} by {} call{}",
                status.as_str(),
                direction.as_str(),
                agent.as_deref().map(|a| format!(" of agent {a}")).unwrap_or_default()
            ),
        }
    }
}

/// Results of one committed batch.
#[derive(Default)]
struct BatchOutcome {
    written: u64,
    duplicates: u64,
    rejected: u64,
    logs: Vec<TaskLog>,
}

/// Failures that go away by waiting: retry the whole batch. Anything else is a problem with
/// one call's data, which is rolled back alone and logged.
fn is_transient(err: &StoreError) -> bool {
    let code = match err {
        StoreError::Sql { source, .. } => source.sqlite_error_code(),
        _ => return false,
    };
    matches!(
        code,
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::CannotOpen
                | ErrorCode::OutOfMemory
                | ErrorCode::ReadOnly
                | ErrorCode::FileLockingProtocolFailed
                | ErrorCode::OperationInterrupted
        )
    )
}

pub(super) struct Writer {
    conn: Connection,
    settings: StoreSettings,
    stats: Arc<StoreStats>,
    /// The files `conn` writes to, as found at the path when it was opened.
    files: OpenedFiles,
}

impl Writer {
    pub(super) fn new(conn: Connection, settings: StoreSettings, stats: Arc<StoreStats>) -> Self {
        let files = OpenedFiles::at(&settings.path);
        Writer {
            conn,
            settings,
            stats,
            files,
        }
    }

    /// The file at the path is still the one `conn` writes to.
    fn same_file(&self) -> bool {
        !self.files.main_changed(&self.settings.path)
    }

    /// Opens a new database at the path when the file there is no longer ours (deleted,
    /// replaced). SQLite refuses to write to an unlinked file (`READONLY_DBMOVED`), and a
    /// commit that still worked would land in a file nobody can open.
    fn follow_the_path(&mut self) -> Result<(), StoreError> {
        if self.same_file() {
            return Ok(());
        }
        tracing::error!(
            path = %self.settings.path.display(),
            "the database file was deleted or replaced while in use; recording into a new \
             database at that path from now on (what was committed before is only in the old file)"
        );
        // Close ours first, then clear what it leaves of the old database at the path.
        let placeholder =
            Connection::open_in_memory().map_err(StoreError::sql("open in memory"))?;
        drop(std::mem::replace(&mut self.conn, placeholder));
        self.files.remove_old_side_files(&self.settings.path);
        self.conn = super::open_database(&self.settings)?;
        self.files = OpenedFiles::at(&self.settings.path);
        tracing::info!(path = %self.settings.path.display(), "recording into the database now at the path");
        Ok(())
    }

    /// The stop deadline has passed: failing batches are given up, not retried.
    fn past_stop_deadline(&self) -> bool {
        self.settings
            .stop
            .get()
            .is_some_and(|at| Instant::now() >= at)
    }

    /// Logs every call of a batch that could not be committed before the stop deadline.
    fn give_up(&self, calls: &[Box<FinishedCall>], err: &StoreError) {
        for call in calls {
            tracing::error!(
                linkedid = %call.linkedid,
                err = %err,
                "not saved: the database could not commit before the stop deadline"
            );
        }
        self.stats
            .unsaved
            .fetch_add(calls.len() as u64, Ordering::Relaxed);
    }

    /// Serves commands until every sender is gone, then returns after the last commit.
    pub(super) fn run(mut self, rx: Receiver<Cmd>) {
        super::busy::set_thread_timeout(self.settings.busy_timeout);
        let batch_max = self.settings.batch_max.max(1);
        let linger = self.settings.batch_linger;
        loop {
            let first = match rx.recv_timeout(IDLE_FILE_CHECK) {
                Ok(cmd) => cmd,
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(err) = self.follow_the_path() {
                        tracing::error!(path = %self.settings.path.display(), err = %err, "cannot create the new database yet; retrying at the next commit");
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let started = Instant::now();
            let mut calls = Vec::new();
            let mut flushes = Vec::new();
            let mut new_rules = None;
            let mut next = Some(first);
            // Commit when the queue is empty, the batch is full, collecting took too long, or
            // the rules change (calls recorded before the change are judged by the old rules).
            while let Some(cmd) = next.take() {
                match cmd {
                    Cmd::Record(call) => calls.push(call),
                    Cmd::Flush(done) => flushes.push(done),
                    Cmd::SetRules(rules) => {
                        new_rules = Some(rules);
                        break;
                    }
                }
                let elapsed = started.elapsed();
                if calls.len() >= batch_max || elapsed >= self.settings.batch_max_delay {
                    break;
                }
                match rx.try_recv() {
                    Ok(cmd) => next = Some(cmd),
                    Err(TryRecvError::Disconnected) => break,
                    // Someone waits for a flush, or no lingering: commit now.
                    Err(TryRecvError::Empty) if !flushes.is_empty() || linger.is_zero() => break,
                    Err(TryRecvError::Empty) => {
                        let wait = linger.min(self.settings.batch_max_delay - elapsed);
                        match linger_for_more(&rx, wait) {
                            Some(cmd) => next = Some(cmd),
                            None => break,
                        }
                    }
                }
            }
            if !calls.is_empty() {
                self.commit_batch(&calls);
            }
            if let Some(rules) = new_rules {
                self.set_rules(*rules);
            }
            for done in flushes {
                let _ = done.send(());
            }
        }
    }

    /// Takes new task rules; the calendar's timezone goes to `meta` for the reports.
    fn set_rules(&mut self, rules: TaskRules) {
        if let Err(err) = super::calendar::record(&self.conn, &rules) {
            tracing::error!(err = %err, "cannot record the calendar for reports and views; they keep the old one");
        }
        self.settings.rules = rules;
    }

    /// Commits `calls` in one transaction, retrying the whole batch until it succeeds.
    fn commit_batch(&mut self, calls: &[Box<FinishedCall>]) {
        let mut backoff = FIRST_BACKOFF;
        let mut failing_since: Option<Instant> = None;
        let mut last_warn = Instant::now();
        loop {
            let attempt = self.follow_the_path().and_then(|()| self.try_batch(calls));
            match attempt {
                // Committed, but the file went away meanwhile: commit again into a new one.
                Ok(_) if !self.same_file() => continue,
                Ok(outcome) => {
                    if let Some(since) = failing_since {
                        tracing::info!(
                            calls = calls.len(),
                            waited_ms = since.elapsed().as_millis() as u64,
                            "database batch committed after retrying"
                        );
                    }
                    let s = &self.stats;
                    s.calls_written
                        .fetch_add(outcome.written, Ordering::Relaxed);
                    s.duplicates
                        .fetch_add(outcome.duplicates, Ordering::Relaxed);
                    s.rejected.fetch_add(outcome.rejected, Ordering::Relaxed);
                    s.batches.fetch_add(1, Ordering::Relaxed);
                    for log in &outcome.logs {
                        log.emit();
                    }
                    if outcome.written > 0
                        && let Some(hook) = &self.settings.on_commit
                    {
                        (hook.0)();
                    }
                    return;
                }
                Err(err) => {
                    if self.past_stop_deadline() {
                        self.give_up(calls, &err);
                        return;
                    }
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    match failing_since {
                        None => {
                            tracing::warn!(
                                path = %self.settings.path.display(),
                                calls = calls.len(),
                                err = %err,
                                "cannot commit to the database yet; keeping the batch and retrying"
                            );
                            failing_since = Some(Instant::now());
                            last_warn = Instant::now();
                        }
                        Some(since) if last_warn.elapsed() >= REWARN_EVERY => {
                            tracing::warn!(
                                path = %self.settings.path.display(),
                                calls = calls.len(),
                                err = %err,
                                "still cannot commit to the database after {} s; retrying",
                                since.elapsed().as_secs()
                            );
                            last_warn = Instant::now();
                        }
                        Some(_) => {}
                    }
                    let pause = match self.settings.stop.get() {
                        Some(at) => backoff.min(at.saturating_duration_since(Instant::now())),
                        None => backoff,
                    };
                    std::thread::sleep(pause);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One attempt at the batch: `Err` means nothing of it was committed.
    fn try_batch(&mut self, calls: &[Box<FinishedCall>]) -> Result<BatchOutcome, StoreError> {
        let mut tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sql("BEGIN IMMEDIATE"))?;
        let mut out = BatchOutcome::default();
        if let [call] = calls {
            // A lone call (a live PBX's usual batch) needs no savepoint: refusing it is
            // rolling the transaction back. The savepoint and its statement journal cost
            // about a tenth of such a commit.
            if out.apply(&tx, &self.settings, call)? {
                tx.commit().map_err(StoreError::sql("COMMIT"))?;
            }
            return Ok(out);
        }
        for call in calls {
            let sp = tx.savepoint().map_err(StoreError::sql("SAVEPOINT"))?;
            if out.apply(&sp, &self.settings, call)? {
                sp.commit().map_err(StoreError::sql("RELEASE"))?;
            }
            // Otherwise dropping the savepoint rolls this call back; the rest of the batch
            // stays.
        }
        tx.commit().map_err(StoreError::sql("COMMIT"))?;
        Ok(out)
    }
}

impl BatchOutcome {
    /// Stores `call` through `conn` and counts how it went. `Ok(true)`: keep what it wrote;
    /// `Ok(false)`: the database refused it (logged), roll it back alone; `Err`: a transient
    /// failure, retry the batch.
    fn apply(
        &mut self,
        conn: &Connection,
        settings: &StoreSettings,
        call: &FinishedCall,
    ) -> Result<bool, StoreError> {
        let mut logs = Vec::new();
        match apply_call(
            conn,
            &settings.rules,
            settings.notify.as_deref(),
            call,
            &mut logs,
        ) {
            Ok(applied) => {
                match applied {
                    Applied::New => self.written += 1,
                    Applied::Duplicate => self.duplicates += 1,
                }
                self.logs.append(&mut logs);
                Ok(true)
            }
            Err(err) if is_transient(&err) => Err(err),
            Err(err) => {
                self.rejected += 1;
                tracing::error!(linkedid = %call.linkedid, err = %err, "call refused by the database, not stored");
                Ok(false)
            }
        }
    }
}

fn open_task(conn: &Connection, number: &str) -> Result<Option<OpenTask>, StoreError> {
    conn.prepare_cached(OPEN_TASK)
        .and_then(|mut st| {
            st.query_row([number], |r| {
                Ok(OpenTask {
                    id: r.get(0)?,
                    assignee: r.get(1)?,
                    first_missed_at: r.get(2)?,
                    deadline: r.get(3)?,
                    missed_count: r.get(4)?,
                })
            })
            .optional()
        })
        .map_err(StoreError::sql("find open task"))
}

fn task_event(
    conn: &Connection,
    task: TaskId,
    kind: &str,
    at: EventTime,
    linkedid: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(TASK_EVENT)
        .and_then(|mut st| st.execute(params![task, kind, at, linkedid]))
        .map_err(StoreError::sql("insert task event"))?;
    Ok(())
}

/// Stores one call, reads what the task rules need inside the same transaction, and runs the
/// [`TaskOp`] they decide; a call already stored changes nothing.
fn apply_call(
    conn: &Connection,
    rules: &TaskRules,
    notify: Option<&Routes>,
    call: &FinishedCall,
    logs: &mut Vec<TaskLog>,
) -> Result<Applied, StoreError> {
    let normalized = rules.callable_number(call);
    let inserted = conn
        .prepare_cached(INSERT_CALL)
        .and_then(|mut st| {
            st.execute(params![
                call.linkedid,
                call.direction,
                call.number,
                normalized,
                call.name,
                call.did,
                call.queue,
                call.started_at,
                call.ended_at,
                call.wait_seconds,
                call.answered,
                call.agent,
                call.talk_seconds,
                call.gap,
                call.gap_window.map(|w| w.started_at),
                call.gap_window.map(|w| w.ended_at),
            ])
        })
        .map_err(StoreError::sql("insert call"))?;
    if inserted == 0 {
        return Ok(Applied::Duplicate);
    }
    let call_id = conn.last_insert_rowid();

    {
        let mut st = conn
            .prepare_cached(INSERT_ATTEMPT)
            .map_err(StoreError::sql("insert agent attempt"))?;
        for (seq, a) in call.attempts.iter().enumerate() {
            st.execute(params![
                call_id,
                seq as i64,
                a.agent,
                a.ring_start,
                a.ring_seconds,
                a.outcome,
                a.name,
            ])
            .map_err(StoreError::sql("insert agent attempt"))?;
        }
        let mut st = conn
            .prepare_cached(INSERT_FORWARD)
            .map_err(StoreError::sql("insert forward"))?;
        for (seq, f) in call.forwards.iter().enumerate() {
            st.execute(params![
                call_id,
                seq as i64,
                f.number,
                f.ring_start,
                f.ring_seconds,
                f.outcome.as_str(),
            ])
            .map_err(StoreError::sql("insert forward"))?;
        }
    }

    let (open, earlier) = match &normalized {
        None => (None, false),
        Some(n) => {
            let open = open_task(conn, n)?;
            // Only a missed call asks whether the number called before.
            let earlier = call.missed.is_some()
                && conn
                    .prepare_cached(EARLIER_CALL)
                    .and_then(|mut st| {
                        st.query_row(params![n, call.started_at, call_id], |r| r.get(0))
                    })
                    .map_err(StoreError::sql("look for an earlier call"))?;
            (open, earlier)
        }
    };
    let op = callbacks::decide(call, open.as_ref(), earlier, rules);
    let number = normalized.as_deref().unwrap_or_default();
    let (task_id, first_time_caller) = run_op(conn, call, number, open.as_ref(), op, logs)?;
    if let Some(miss) = &call.missed {
        conn.prepare_cached(INSERT_MISSED)
            .and_then(|mut st| {
                st.execute(params![
                    call_id,
                    miss.loss_reason,
                    miss.voicemail,
                    call.withheld || task_id.is_none(),
                    first_time_caller,
                    task_id,
                ])
            })
            .map_err(StoreError::sql("insert missed call"))?;
        if let Some(routes) = notify {
            let agents: Vec<&str> = call.attempts.iter().map(|a| a.agent.as_str()).collect();
            let deliveries = routes.deliveries(Subject::MissedCall { agents: &agents });
            outbox::enqueue(
                conn,
                EventKind::MissedCall,
                Some(call_id),
                task_id.map(|t| t.0),
                None,
                &deliveries,
                crate::notify::wall_now(),
                // Due from the moment of the miss: a replay on any clock sends at once.
                call.ended_at,
            )?;
        }
    }
    Ok(Applied::New)
}

/// Carries out `op` for `call`; returns the task a missed call belongs to and whether its
/// caller is calling for the first time.
fn run_op(
    conn: &Connection,
    call: &FinishedCall,
    number: &str,
    open: Option<&OpenTask>,
    op: TaskOp,
    logs: &mut Vec<TaskLog>,
) -> Result<(Option<TaskId>, bool), StoreError> {
    let linkedid = &call.linkedid;
    match op {
        TaskOp::Open {
            number: new_number,
            deadline,
            assignee,
            first_time_caller,
        } => {
            conn.prepare_cached(NEW_TASK)
                .and_then(|mut st| {
                    st.execute(params![new_number, call.ended_at, deadline, assignee])
                })
                .map_err(StoreError::sql("open task"))?;
            let task = TaskId(conn.last_insert_rowid());
            task_event(conn, task, "missed_joined", call.ended_at, linkedid)?;
            logs.push(TaskLog::Opened {
                task,
                number: new_number,
                deadline,
                assignee,
                linkedid: linkedid.clone(),
            });
            Ok((Some(task), first_time_caller))
        }
        TaskOp::Join {
            task,
            first_time_caller,
        } => {
            conn.prepare_cached(JOIN_TASK)
                .and_then(|mut st| st.execute(params![task, call.ended_at]))
                .map_err(StoreError::sql("join open task"))?;
            task_event(conn, task, "missed_joined", call.ended_at, linkedid)?;
            if let Some(open) = open {
                logs.push(TaskLog::Joined {
                    task,
                    number: number.to_owned(),
                    missed_count: open.missed_count + 1,
                    deadline: open.deadline,
                    linkedid: linkedid.clone(),
                });
            }
            Ok((Some(task), first_time_caller))
        }
        TaskOp::Close {
            task,
            status,
            reached,
        } => {
            conn.prepare_cached(CLOSE_TASK)
                .and_then(|mut st| {
                    st.execute(params![
                        task,
                        status,
                        reached,
                        call.direction,
                        call.agent,
                        linkedid,
                    ])
                })
                .map_err(StoreError::sql("close task"))?;
            task_event(conn, task, "closed", reached, linkedid)?;
            if let Some(open) = open {
                logs.push(TaskLog::Closed {
                    task,
                    number: number.to_owned(),
                    status,
                    direction: call.direction,
                    agent: call.agent.clone(),
                    deadline: open.deadline,
                    linkedid: linkedid.clone(),
                });
            }
            Ok((None, false))
        }
        TaskOp::Attempt { task } => {
            conn.prepare_cached(COUNT_ATTEMPT)
                .and_then(|mut st| st.execute([task]))
                .map_err(StoreError::sql("count callback attempt"))?;
            task_event(conn, task, "attempt", call.ended_at, linkedid)?;
            Ok((None, false))
        }
        TaskOp::Nothing => Ok((None, false)),
    }
}
/// Naps between looks at the queue while lingering for more calls.
const LINGER_NAP: Duration = Duration::from_millis(5);

/// The next command within `wait`, looking every [`LINGER_NAP`]. A receiver blocked on the
/// queue is woken by every call sent, and a bulk load sends thousands a second; a sleeping
/// one is woken by none, and finds them all at its next look.
fn linger_for_more(rx: &Receiver<Cmd>, wait: Duration) -> Option<Cmd> {
    let until = Instant::now() + wait;
    loop {
        std::thread::sleep(
            until
                .saturating_duration_since(Instant::now())
                .min(LINGER_NAP),
        );
        match rx.try_recv() {
            Ok(cmd) => return Some(cmd),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if Instant::now() >= until => return None,
            Err(TryRecvError::Empty) => {}
        }
    }
}
