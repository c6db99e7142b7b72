//! The SQLite store: the only module that names rusqlite.
//!
//! One writer thread owns the read-write connection. [`Store::record`] sends a finished call
//! over a bounded channel (blocking when it is full: back-pressure, nothing is dropped); the
//! writer applies the calls in arrival order in one `BEGIN IMMEDIATE` transaction per batch:
//! for each call it reads the open task of its number, asks [`crate::callbacks::decide`] what to
//! do and runs that [`crate::callbacks::TaskOp`]. New rules arrive as a message
//! ([`Store::set_rules`]) between two batches; the store is never reopened for them. A batch that cannot be
//! committed (another process holding the write lock, disk full) is rolled back and retried
//! whole until it commits; it is never dropped.
//!
//! Idempotency rests on `calls.linkedid UNIQUE`: a call already stored is skipped entirely, so
//! replaying the same events twice adds no rows, no `missed_count`, no attempts.
//!
//! The writer checks before and after each commit, and every 10 s when idle, that the file at
//! the path is still the one it writes to (device and inode). When it was deleted or replaced
//! it logs an ERROR, opens a new database at the path (schema included) and commits the same
//! batch there.
//!
//! The read side ([`queries`]) opens the file read-only; WAL mode lets readers and the writer
//! work at the same time. Schema and time format: `docs/schema.md`.

mod busy;
mod calendar;
mod file;
pub mod migrations;
pub mod outbox;
pub mod queries;
mod sql_types;
mod writer;

pub use sql_types::BadSpelling;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::DateTime;
use rusqlite::Connection;
use rusqlite::ffi::ErrorCode;

use crate::callbacks::TaskRules;
use crate::calls::outcome::FinishedCall;
use crate::notify::outbox::Routes;
use crate::time::EventTime;

/// Default number of calls committed in one transaction at most.
pub const DEFAULT_BATCH_MAX: usize = 1000;
/// Default longest time spent collecting one batch before committing it.
pub const DEFAULT_BATCH_MAX_DELAY: Duration = Duration::from_millis(200);
/// Default SQLite busy timeout: how long one attempt waits for another writer's lock.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Default capacity of the channel to the writer (calls waiting to be written).
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;

/// Errors of the store, naming the file or statement involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be opened or its first read failed.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database file does not exist (read side only; the writer creates it).
    #[error("database {path} does not exist")]
    Missing {
        /// The database file.
        path: PathBuf,
    },
    /// The file is not an SQLite database (garbage, encrypted, truncated).
    #[error("{path} is not an SQLite database")]
    NotADatabase {
        /// The offending file.
        path: PathBuf,
    },
    /// An SQLite database, but not missedcalld's.
    #[error("{path} is not a missedcalld database: {reason}")]
    NotOurs {
        /// The offending file.
        path: PathBuf,
        /// What gave it away.
        reason: String,
    },
    /// Written by a newer missedcalld.
    #[error(
        "database {path} has schema version {found}, newer than this program supports ({supported}); upgrade missedcalld"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The latest version this program knows.
        supported: i64,
    },
    /// A schema migration failed.
    #[error("database {path}: migration {name} failed: {source}")]
    Migration {
        /// The database file.
        path: PathBuf,
        /// The migration's name, e.g. `002_views`.
        name: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A statement failed.
    #[error("database query failed ({query}): {source}")]
    Sql {
        /// What the statement was for.
        query: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored value could not be read back (e.g. a time that is not RFC 3339).
    #[error("database value {column} = {value:?} is invalid")]
    BadValue {
        /// Table and column.
        column: &'static str,
        /// The stored text.
        value: String,
    },
    /// The writer thread is gone (it panicked, or the store was closed).
    #[error("the database writer has stopped")]
    WriterGone,
    /// Calls that could not be committed before the stop deadline (each logged at ERROR).
    #[error("{calls} finished call(s) could not be saved to {path} before the stop deadline")]
    Unsaved {
        /// The database file.
        path: PathBuf,
        /// How many calls were given up.
        calls: u64,
    },
}

impl StoreError {
    /// Classifies an error from opening or first reading `path`.
    fn from_open(path: &Path, source: rusqlite::Error) -> StoreError {
        match source.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => StoreError::NotADatabase {
                path: path.to_owned(),
            },
            _ => StoreError::Open {
                path: path.to_owned(),
                source,
            },
        }
    }

    fn sql(query: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Sql { query, source }
    }
}

/// Everything the store needs: where the file is, the rules for tasks, and batching knobs.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// The SQLite file (created with its directory's permissions if missing).
    pub path: PathBuf,
    /// The callback-task rules; the calendar's timezone is stored in `meta` for reports.
    pub rules: TaskRules,
    /// Most calls in one transaction.
    pub batch_max: usize,
    /// Longest time spent collecting one batch.
    pub batch_max_delay: Duration,
    /// How long the writer waits for more calls once the queue is empty, up to
    /// `batch_max_delay` and `batch_max` (zero: commit as soon as the queue is empty, the live
    /// default). A bulk load (replay) sets it: one transaction per call is most of its cost.
    pub batch_linger: Duration,
    /// How long one commit attempt waits for a lock held by another connection.
    pub busy_timeout: Duration,
    /// Calls that may wait for the writer before `record` blocks.
    pub queue_capacity: usize,
    /// When set, the writer stops retrying batches at that moment (shutdown).
    pub stop: StopDeadline,
    /// Sinks to write outbox rows for, in each missed call's transaction; `None`: no
    /// notifications (replay without `--notify`).
    pub notify: Option<Arc<Routes>>,
    /// Called after every commit that stored new calls (wakes the delivery worker).
    pub on_commit: Option<CommitHook>,
}

/// The moment a stopping process stops waiting for the database: until it is set the writer
/// retries a failing batch forever (nothing is dropped); after it, a batch that fails is given
/// up and each of its calls logged at ERROR, so a full disk cannot hold up a shutdown.
#[derive(Debug, Clone, Default)]
pub struct StopDeadline(Arc<OnceLock<Instant>>);

impl StopDeadline {
    /// Gives the writer until `at`; only the first call counts.
    pub fn set(&self, at: Instant) {
        let _ = self.0.set(at);
    }

    /// The deadline, once set.
    pub fn get(&self) -> Option<Instant> {
        self.0.get().copied()
    }
}

/// A callback run by the writer thread after a commit; it must not block.
#[derive(Clone)]
pub struct CommitHook(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for CommitHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommitHook")
    }
}

impl StoreSettings {
    /// Settings with every default (SPEC section 10) for the file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> StoreSettings {
        StoreSettings {
            path: path.into(),
            rules: TaskRules::default(),
            batch_max: DEFAULT_BATCH_MAX,
            batch_max_delay: DEFAULT_BATCH_MAX_DELAY,
            batch_linger: Duration::ZERO,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            stop: StopDeadline::default(),
            notify: None,
            on_commit: None,
        }
    }
}

/// Counters kept by the writer (for logs and benchmarks).
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Calls newly stored.
    pub calls_written: AtomicU64,
    /// Calls skipped because their linkedid was already stored.
    pub duplicates: AtomicU64,
    /// Transactions committed.
    pub batches: AtomicU64,
    /// Batch attempts rolled back and retried (lock held elsewhere, I/O error).
    pub retries: AtomicU64,
    /// Calls refused by the database (logged at ERROR with their linkedid).
    pub rejected: AtomicU64,
    /// Calls given up at the stop deadline (logged at ERROR with their linkedid).
    pub unsaved: AtomicU64,
}

/// Snapshot of [`StoreStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// Calls newly stored.
    pub calls_written: u64,
    /// Calls skipped as already stored.
    pub duplicates: u64,
    /// Transactions committed.
    pub batches: u64,
    /// Batch attempts retried.
    pub retries: u64,
    /// Calls refused by the database.
    pub rejected: u64,
    /// Calls given up at the stop deadline.
    pub unsaved: u64,
}

/// A command for the writer thread.
enum Cmd {
    Record(Box<FinishedCall>),
    Flush(mpsc::Sender<()>),
    SetRules(Box<TaskRules>),
}

/// Handle to the writer thread. `record` and `flush` take `&self`, so an `Arc<Store>` can be
/// shared; dropping the handle flushes and joins like [`Store::close`] (errors are logged).
pub struct Store {
    tx: Option<SyncSender<Cmd>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<StoreStats>,
    path: PathBuf,
    stop: StopDeadline,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Opens the read-write connection with the per-connection pragmas.
fn open_writer_connection(settings: &StoreSettings) -> Result<Connection, StoreError> {
    let path = settings.path.as_path();
    let mut conn = Connection::open(path).map_err(|e| StoreError::from_open(path, e))?;
    // The writer thread sets the timeout (busy::set_thread_timeout).
    conn.busy_handler(Some(busy::retry_every_millisecond))
        .map_err(|e| StoreError::from_open(path, e))?;
    // journal_mode answers with a row; the first real read of the file happens here, so a
    // garbage file fails now with NotADatabase.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| StoreError::from_open(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "database is not in WAL mode; readers may block the writer");
    }
    // temp_store: the savepoint taken per call of a batch keeps its statement journal in
    // memory instead of a temporary file (a third of the writer's time went to that file).
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
    )
    .map_err(|e| StoreError::from_open(path, e))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Opens (creating if needed) and migrates the database and records the calendar for the
/// views: at start, and again when the file was deleted or replaced under the writer.
fn open_database(settings: &StoreSettings) -> Result<Connection, StoreError> {
    let mut conn = open_writer_connection(settings)?;
    migrations::migrate(&mut conn, &settings.path)?;
    calendar::record(&conn, &settings.rules)?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) and migrates the database, records the calendar for the
    /// views ([`calendar`]), and starts the writer thread.
    pub fn open(settings: StoreSettings) -> Result<Store, StoreError> {
        let conn = open_database(&settings)?;

        let (tx, rx) = mpsc::sync_channel(settings.queue_capacity.max(1));
        let stats = Arc::new(StoreStats::default());
        let path = settings.path.clone();
        let stop = settings.stop.clone();
        let writer = writer::Writer::new(conn, settings, Arc::clone(&stats));
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|_| StoreError::WriterGone)?;
        Ok(Store {
            tx: Some(tx),
            thread: Some(thread),
            stats,
            path,
            stop,
        })
    }

    /// Queues a finished call for the writer; blocks while the queue is full.
    pub fn record(&self, call: FinishedCall) -> Result<(), StoreError> {
        let tx = self.tx.as_ref().ok_or(StoreError::WriterGone)?;
        tx.send(Cmd::Record(Box::new(call)))
            .map_err(|_| StoreError::WriterGone)
    }

    /// Judges every call recorded after this one by `rules` (calls recorded before keep the
    /// old ones). The file stays open.
    pub fn set_rules(&self, rules: TaskRules) -> Result<(), StoreError> {
        let tx = self.tx.as_ref().ok_or(StoreError::WriterGone)?;
        tx.send(Cmd::SetRules(Box::new(rules)))
            .map_err(|_| StoreError::WriterGone)
    }

    /// Returns once every call recorded before it is committed.
    pub fn flush(&self) -> Result<(), StoreError> {
        let tx = self.tx.as_ref().ok_or(StoreError::WriterGone)?;
        let (done_tx, done_rx) = mpsc::channel();
        tx.send(Cmd::Flush(done_tx))
            .map_err(|_| StoreError::WriterGone)?;
        done_rx.recv().map_err(|_| StoreError::WriterGone)
    }

    /// Commits everything recorded and stops the writer thread.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.shutdown()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stop deadline this store's writer obeys.
    pub fn stop_deadline(&self) -> StopDeadline {
        self.stop.clone()
    }

    /// The writer's counters so far.
    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.stats;
        StatsSnapshot {
            calls_written: s.calls_written.load(Ordering::Relaxed),
            duplicates: s.duplicates.load(Ordering::Relaxed),
            batches: s.batches.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            rejected: s.rejected.load(Ordering::Relaxed),
            unsaved: s.unsaved.load(Ordering::Relaxed),
        }
    }

    fn shutdown(&mut self) -> Result<(), StoreError> {
        // Closing the channel lets the writer drain what is queued, commit and return.
        drop(self.tx.take());
        if let Some(handle) = self.thread.take() {
            handle.join().map_err(|_| StoreError::WriterGone)?;
            let unsaved = self.stats.unsaved.load(Ordering::Relaxed);
            if unsaved > 0 {
                return Err(StoreError::Unsaved {
                    path: self.path.clone(),
                    calls: unsaved,
                });
            }
        }
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(err) = self.shutdown() {
            tracing::error!(path = %self.path.display(), %err, "database writer did not stop cleanly");
        }
    }
}

/// The stored form of a time: RFC 3339, UTC, milliseconds (`2026-11-22T19:13:24.077Z`).
pub fn format_time(t: EventTime) -> String {
    t.to_rfc3339()
}

/// Reads a stored time back.
pub fn parse_time(column: &'static str, s: &str) -> Result<EventTime, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| EventTime::from_utc(&t))
        .map_err(|_| StoreError::BadValue {
            column,
            value: s.to_owned(),
        })
}
