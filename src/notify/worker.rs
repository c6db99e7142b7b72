//! The delivery worker: its own thread and tokio runtime, so nothing it waits for (a hanging
//! receiver, a slow command, SQLite's lock) reaches the AMI reader, the tracker or the writer.
//!
//! Each round it claims due outbox rows (a lease: a crash mid-delivery makes them due again),
//! holds those of quiet sinks while the calendar is closed, renders and freezes the payload
//! on first use, and runs each delivery as a task with a per-sink cap, so one hanging receiver
//! occupies only its own slots. Outcomes go back in one transaction per round through the
//! pure policy of [`super::outbox`]. Every `SCAN_EVERY` (and at start) it also writes
//! `task_overdue` for tasks past their deadline and the `daily_digest` once its time has come.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{Days, NaiveDate};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::config::NotifyConfig;
use super::exec::Exec;
use super::outbox::{Attempt, Next, Routes, SinkKind, due_at, next_after};
use super::telegram::Telegram;
use super::text::{self, Markup};
use super::webhook::Webhook;
use super::{EventKind, payload};
use crate::callbacks::sla::Calendar;
use crate::output::{missed_json, task_json};
use crate::store::outbox::{DueRow, OutboxDb, RowUpdate};
use crate::store::queries::{self, ReadDb};
use crate::time::EventTime;

/// How often overdue tasks and the digest are looked for.
pub const SCAN_EVERY: Duration = Duration::from_secs(10);
/// Overdue tasks whose deadline is older than this are not announced (first start after a
/// long stop, or an old backfill).
pub const OVERDUE_LOOKBACK: Duration = Duration::from_secs(7 * 86_400);
/// Rows claimed per round at most.
const CLAIM_BATCH: usize = 256;
/// Deliveries that may be in flight at once, per sink.
const WEBHOOK_SLOTS: usize = 16;
const TELEGRAM_SLOTS: usize = 4;
const EXEC_SLOTS: usize = 2;
/// How long in-flight deliveries get to finish at shutdown (the rest stay pending).
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Longest sleep between two rounds when nothing is due.
const IDLE: Duration = Duration::from_secs(30);

/// The time source (wall clock in the daemon, fixed in tests).
pub type Clock = Arc<dyn Fn() -> EventTime + Send + Sync>;

/// The wall clock.
pub fn wall_clock() -> Clock {
    Arc::new(super::wall_now)
}

/// What the worker needs.
#[derive(Clone)]
pub struct WorkerSettings {
    /// The database (created and migrated by the store).
    pub db: PathBuf,
    /// `[notify]` with secrets resolved.
    pub config: NotifyConfig,
    /// Quiet hours, digest time and deadlines in texts use its timezone.
    pub calendar: Calendar,
    /// Now.
    pub clock: Clock,
    /// Write `task_overdue` and `daily_digest` (the daemon); `replay --notify` only delivers.
    pub scans: bool,
}

/// One sink ready to send.
#[derive(Debug, Clone)]
enum Sink {
    Webhook(Arc<Webhook>),
    Telegram(Arc<Telegram>),
    Exec(Arc<Exec>),
}

impl Sink {
    fn shown(&self) -> &str {
        match self {
            Sink::Webhook(w) => &w.shown,
            Sink::Telegram(t) => &t.shown,
            Sink::Exec(e) => &e.shown,
        }
    }

    fn slots(&self) -> usize {
        match self {
            Sink::Webhook(_) => WEBHOOK_SLOTS,
            Sink::Telegram(_) => TELEGRAM_SLOTS,
            Sink::Exec(_) => EXEC_SLOTS,
        }
    }
}

/// Builds every sink of `cfg` keyed like [`Routes`].
fn build_sinks(cfg: &NotifyConfig, routes: &Routes) -> anyhow::Result<HashMap<String, Sink>> {
    let mut out = HashMap::new();
    let mut keys = routes.iter().map(|r| (r.key.clone(), r.kind));
    for (i, w) in cfg.webhook.iter().enumerate() {
        let (key, _) = keys.next().context("routes and sinks disagree")?;
        let sink = Webhook::new(w).with_context(|| format!("notify.webhook[{i}]"))?;
        out.insert(key, Sink::Webhook(Arc::new(sink)));
    }
    for (i, t) in cfg.telegram.iter().enumerate() {
        let (key, _) = keys.next().context("routes and sinks disagree")?;
        let sink = Telegram::new(t).with_context(|| format!("notify.telegram[{i}]"))?;
        out.insert(key, Sink::Telegram(Arc::new(sink)));
    }
    for e in &cfg.exec {
        let (key, kind) = keys.next().context("routes and sinks disagree")?;
        debug_assert_eq!(kind, SinkKind::Exec);
        out.insert(key, Sink::Exec(Arc::new(Exec::new(e))));
    }
    Ok(out)
}

/// The result of one delivery task.
struct Done {
    row: DueRow,
    attempt: Attempt,
    connect_error: bool,
}

/// What a finished drain left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainSummary {
    /// Rows still pending (retried later by `run`).
    pub pending: u64,
    /// Rows given up.
    pub failed: u64,
}

struct Worker {
    settings: WorkerSettings,
    routes: Routes,
    sinks: HashMap<String, Sink>,
    db: OutboxDb,
    rdb: ReadDb,
    in_flight: HashMap<String, usize>,
    /// Sinks whose last attempt failed (one WARN per failure streak, one INFO on recovery).
    failing: HashSet<String>,
    /// Rows whose sink is gone are warned about once per sink.
    warned_gone: HashSet<String>,
    lease: Duration,
}

impl Worker {
    fn open(settings: WorkerSettings) -> anyhow::Result<Worker> {
        let routes = Routes::new(&settings.config);
        let sinks = build_sinks(&settings.config, &routes)?;
        let db = OutboxDb::open(&settings.db)
            .with_context(|| format!("opening the outbox in {}", settings.db.display()))?;
        let rdb = queries::open_read_only(&settings.db)?;
        let longest = settings
            .config
            .webhook
            .iter()
            .map(|w| w.timeout_secs)
            .chain(settings.config.telegram.iter().map(|t| t.timeout_secs))
            .chain(settings.config.exec.iter().map(|e| e.timeout_secs))
            .fold(1.0, f64::max);
        Ok(Worker {
            settings,
            routes,
            sinks,
            db,
            rdb,
            in_flight: HashMap::new(),
            failing: HashSet::new(),
            warned_gone: HashSet::new(),
            // A delivery never outlives its time limit; the lease only has to cover that and
            // the write of its outcome. After a crash the row is due again this soon.
            lease: Duration::from_secs_f64(longest) + Duration::from_secs(5),
        })
    }

    fn now(&self) -> EventTime {
        (self.settings.clock)()
    }

    /// Writes `task_overdue` and the digest when due.
    fn scan(&mut self, now: EventTime) {
        match self.db.enqueue_overdue(&self.routes, now, OVERDUE_LOOKBACK) {
            Ok(0) => {}
            Ok(n) => info!(tasks = n, "callback tasks went overdue; notifying"),
            Err(e) => warn!("looking for overdue tasks: {e}"),
        }
        let Some(at) = self.settings.config.daily_digest_at else {
            return;
        };
        let local = self.settings.calendar.local(now);
        if local.time() < at {
            return;
        }
        let Some(day) = local.date_naive().checked_sub_days(Days::new(1)) else {
            return;
        };
        let day = day.format("%Y-%m-%d").to_string();
        match self.db.enqueue_digest(&self.routes, &day, now) {
            Ok(true) => info!(day, "daily digest written"),
            Ok(false) => {}
            Err(e) => warn!("writing the daily digest: {e}"),
        }
    }

    /// Claims due rows and starts their deliveries; returns how many rows it claimed.
    fn dispatch(&mut self, now: EventTime, tasks: &mut JoinSet<Done>) -> anyhow::Result<usize> {
        // Claim no more than the free slots: few, short write transactions keep the store
        // writer from waiting on this connection's lock.
        let mut full = Vec::new();
        let mut free = 0;
        for (k, s) in &self.sinks {
            let busy = self.in_flight.get(k).copied().unwrap_or(0);
            if busy >= s.slots() {
                full.push(k.clone());
            } else {
                free += s.slots() - busy;
            }
        }
        let rows = self
            .db
            .claim_due(now, free.clamp(1, CLAIM_BATCH), self.lease, &full)?;
        let claimed = rows.len();
        let mut updates = Vec::new();
        let mut sending = Vec::new();
        for row in rows {
            let (Some(route), Some(sink)) = (
                self.routes.get(&row.sink).cloned(),
                self.sinks.get(&row.sink).cloned(),
            ) else {
                if self.warned_gone.insert(row.sink.clone()) {
                    warn!(sink = %row.sink, "notifications for a sink no longer configured are marked failed");
                }
                updates.push((
                    row.row,
                    RowUpdate::Failed {
                        error: "sink no longer configured".into(),
                        attempted: false,
                    },
                ));
                continue;
            };
            let at = due_at(route.quiet_outside_hours, &self.settings.calendar, now);
            if at > now {
                updates.push((row.row, RowUpdate::Hold { until: at }));
                continue;
            }
            let busy = self.in_flight.entry(row.sink.clone()).or_default();
            if *busy >= sink.slots() {
                // Over the cap after this claim: due again right away, picked up next round.
                updates.push((row.row, RowUpdate::Hold { until: now }));
                continue;
            }
            *busy += 1;
            sending.push((row, sink));
        }
        // Render what has no payload yet and freeze it all in one transaction.
        let mut fresh: Vec<(String, String)> = Vec::new();
        let tz = self.settings.calendar.tz();
        for (row, _) in &sending {
            if row.payload.is_some() || fresh.iter().any(|(id, _)| *id == row.notification) {
                continue;
            }
            match render_payload(&self.rdb, row, now) {
                Ok(v) => fresh.push((row.notification.clone(), v.to_string())),
                Err(e) => warn!(id = %row.notification, "cannot render the notification: {e:#}"),
            }
        }
        let frozen = self.db.freeze_payloads(&fresh)?;
        let lang = self.settings.config.language;
        for (row, sink) in sending {
            let Some(body) = row
                .payload
                .clone()
                .or_else(|| frozen.get(&row.notification).cloned())
            else {
                if let Some(n) = self.in_flight.get_mut(&row.sink) {
                    *n = n.saturating_sub(1);
                }
                updates.push((
                    row.row,
                    RowUpdate::Failed {
                        error: "cannot render the payload".into(),
                        attempted: false,
                    },
                ));
                continue;
            };
            tasks.spawn(async move {
                let (attempt, err) = match &sink {
                    Sink::Webhook(w) => w.send(&row.notification, &body).await,
                    Sink::Telegram(t) => {
                        let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                        let text = text::render(&value, lang, Markup::Html, tz);
                        t.send(&row.recipient, &text).await
                    }
                    Sink::Exec(e) => {
                        let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                        (e.run(&payload::exec_env(&value, &body)).await, None)
                    }
                };
                Done {
                    row,
                    attempt,
                    connect_error: err.is_some_and(|e| e.is_connect()),
                }
            });
        }
        self.db.record(&updates, now)?;
        Ok(claimed)
    }

    /// Writes the outcomes of finished deliveries in one transaction and logs what changed.
    fn settle(&mut self, done: Vec<Done>) -> anyhow::Result<()> {
        let now = self.now();
        let give_up = self.settings.config.give_up_after();
        let mut updates = Vec::with_capacity(done.len());
        for d in done {
            if let Some(n) = self.in_flight.get_mut(&d.row.sink) {
                *n = n.saturating_sub(1);
            }
            let shown = self
                .sinks
                .get(&d.row.sink)
                .map_or(d.row.sink.as_str(), Sink::shown)
                .to_string();
            let attempts = d.row.attempts + 1;
            let first = d.row.first_attempt_at.unwrap_or(now);
            let ok = d.attempt == Attempt::Delivered;
            if ok && self.failing.remove(&d.row.sink) {
                info!(sink = %shown, "notifications are delivered again");
            }
            if let Attempt::Retry { reason, .. } = &d.attempt
                && self.failing.insert(d.row.sink.clone())
            {
                warn!(
                    sink = %shown,
                    connect = d.connect_error,
                    "cannot deliver notifications: {reason}; they stay in the outbox and are retried with backoff"
                );
            }
            let next = next_after(
                d.attempt,
                attempts,
                first,
                now,
                give_up,
                rand::random::<f64>(),
            );
            let update = match next {
                Next::Delivered => {
                    debug!(id = %d.row.notification, sink = %shown, "notification delivered");
                    RowUpdate::Delivered
                }
                Next::RetryAt { at, reason } => RowUpdate::Retry { at, error: reason },
                Next::Failed { reason } => {
                    warn!(
                        id = %d.row.notification,
                        event = d.row.event.as_str(),
                        sink = %shown,
                        recipient = %d.row.recipient,
                        attempts,
                        "notification failed: {reason}"
                    );
                    RowUpdate::Failed {
                        error: reason,
                        attempted: true,
                    }
                }
            };
            updates.push((d.row.row, update));
        }
        self.db.record(&updates, now)?;
        Ok(())
    }

    /// The loop; with `drain` it returns once nothing is due and nothing is in flight.
    async fn run(
        mut self,
        wake: Arc<Notify>,
        cancel: CancellationToken,
        drain: bool,
    ) -> anyhow::Result<()> {
        let mut tasks: JoinSet<Done> = JoinSet::new();
        let mut next_scan = EventTime(i64::MIN);
        loop {
            let now = self.now();
            if self.settings.scans && now >= next_scan {
                self.scan(now);
                next_scan = now.plus(SCAN_EVERY);
            }
            let had_full = self
                .sinks
                .iter()
                .any(|(k, s)| self.in_flight.get(k).copied().unwrap_or(0) >= s.slots());
            let claimed = match self.dispatch(now, &mut tasks) {
                Ok(n) => n,
                Err(e) => {
                    warn!("reading the outbox: {e:#}");
                    0
                }
            };
            if drain && claimed == 0 && tasks.is_empty() {
                break;
            }
            let next_due = self.db.next_due().ok().flatten();
            let mut wait = IDLE;
            for t in [next_due, self.settings.scans.then_some(next_scan)]
                .into_iter()
                .flatten()
            {
                let d = Duration::from_micros(u64::try_from(t.0 - now.0).unwrap_or(0));
                wait = wait.min(d);
            }
            if claimed == CLAIM_BATCH {
                wait = Duration::ZERO;
            } else if had_full && wait.is_zero() {
                // Rows wait for a busy sink: a finished delivery wakes the loop, not a timer.
                wait = IDLE;
            }
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                Some(first) = tasks.join_next(), if !tasks.is_empty() => {
                    let mut done: Vec<Done> = first.into_iter().collect();
                    while let Some(more) = tasks.try_join_next() {
                        done.extend(more);
                    }
                    if let Err(e) = self.settle(done) {
                        warn!("recording delivery outcomes: {e:#}");
                    }
                }
                () = wake.notified() => {}
                () = tokio::time::sleep(wait.max(Duration::from_millis(1))) => {}
            }
        }
        // Let deliveries in flight finish briefly; whatever is cut off stays pending.
        let _ = tokio::time::timeout(STOP_GRACE, async {
            while let Some(d) = tasks.join_next().await {
                if let Ok(d) = d
                    && let Err(e) = self.settle(vec![d])
                {
                    warn!("recording delivery outcomes: {e:#}");
                }
            }
        })
        .await;
        tasks.abort_all();
        Ok(())
    }
}

/// Renders a row's payload from the stored call, task or day.
fn render_payload(rdb: &ReadDb, row: &DueRow, now: EventTime) -> anyhow::Result<Value> {
    let created = row.created_at.to_rfc3339();
    let task = |id: Option<i64>| -> anyhow::Result<Option<Value>> {
        Ok(match id {
            Some(id) => rdb.task(id)?.map(|t| task_json(&t, now)),
            None => None,
        })
    };
    Ok(match row.event {
        EventKind::MissedCall => {
            let call = match &row.call {
                Some((lid, ended)) => rdb.missed_call(lid, *ended)?.map(|m| missed_json(&m)),
                None => None,
            };
            // The task as this miss left it: later misses of the same number do not change
            // what this notification says.
            let mut task = task(row.task_id)?;
            if let (Some(t), Some(n)) = (task.as_mut(), row.task_missed_count) {
                t["missed_count"] = json!(n);
            }
            payload::envelope(&row.notification, row.event, &created, call, task, None)
        }
        EventKind::TaskOverdue => payload::envelope(
            &row.notification,
            row.event,
            &created,
            None,
            task(row.task_id)?,
            None,
        ),
        EventKind::DailyDigest => {
            let day = row.digest_day.clone().unwrap_or_default();
            NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                .with_context(|| format!("digest day {day:?}"))?;
            // Exactly what `report --since DAY --until DAY --json` prints.
            let req = crate::report::Request {
                since: Some(&day),
                until: Some(&day),
                by: crate::report::ReportBy::parse("day").map_err(anyhow::Error::msg)?,
                format: crate::report::ReportFormat::Json,
                now,
                tty: false,
            };
            let mut out = Vec::new();
            crate::report::run(rdb.path(), &req, &mut out)?;
            let mut digest: Value = serde_json::from_slice(&out).context("report JSON")?;
            let open: Vec<Value> = rdb
                .snapshot(|r| r.tasks())?
                .iter()
                .filter(|t| t.status == crate::callbacks::TaskStatus::Open)
                .map(|t| task_json(t, now))
                .collect();
            if let Value::Object(m) = &mut digest {
                m.insert("day".into(), json!(day));
                m.entry("open_tasks").or_insert(Value::Array(open));
            }
            payload::envelope(
                &row.notification,
                row.event,
                &created,
                None,
                None,
                Some(digest),
            )
        }
    })
}

/// The running worker of a daemon.
pub struct WorkerHandle {
    cancel: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkerHandle")
    }
}

/// Starts the worker on its own thread; `wake` is notified by the store after each commit.
pub fn spawn(settings: WorkerSettings, wake: Arc<Notify>) -> anyhow::Result<WorkerHandle> {
    let worker = Worker::open(settings)?;
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let thread = std::thread::Builder::new()
        .name("notify".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    warn!("notifications stopped: cannot start their runtime: {e}");
                    return;
                }
            };
            if let Err(e) = runtime.block_on(worker.run(wake, stop, false)) {
                warn!("notifications stopped: {e:#}");
            }
        })
        .context("starting the notification thread")?;
    Ok(WorkerHandle {
        cancel,
        thread: Some(thread),
    })
}

impl WorkerHandle {
    /// Stops after a short grace for deliveries in flight; pending rows stay in the outbox.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.cancel.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Delivers every row due now (blocking), then returns what is left: `replay --notify` and
/// tests. Rows waiting for a retry stay pending for `missedcalld run`.
pub fn drain(settings: WorkerSettings) -> anyhow::Result<DrainSummary> {
    let worker = Worker::open(settings)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the notification runtime")?;
    let db = OutboxDb::open(worker.db.path())?;
    runtime.block_on(worker.run(Arc::new(Notify::new()), CancellationToken::new(), true))?;
    let (pending, failed) = db.counts()?;
    Ok(DrainSummary { pending, failed })
}
