//! End-to-end latency of the daemon (prints numbers, asserts nothing): from the moment the
//! stand-in PBX (`ami::standin`) writes a caller's `Hangup` on the AMI socket to the moment
//! the missed call is committed and visible to another, read-only SQLite connection, under a
//! steady live feed of RATE events/s.
//!
//! The feed is `ami-fixtures/lab1/13-concurrent-mix.ami` repeated COPIES times with shifted
//! times and ids (the shared amplify tool, cached under target/bench-data/). The daemon runs
//! in-process (`daemon::run_with_status`, default store settings) on its own runtime; the
//! stand-in PBX runs on another thread and reports when each event was written; a reader thread
//! polls the database every POLL for new `missed_calls` rows and matches each to the `Hangup`
//! whose `Linkedid` and `Timestamp` (to the millisecond) equal the call's `linkedid` and
//! `ended_at`. If several `Hangup`s of a call share that millisecond, the first one written
//! counts (the longer latency).
//!
//! The capture's `Timestamp`s are served as recorded (days in the past): the daemon runs its
//! stale-call expiry on the PBX's clock, so old timestamps must not end calls early.
//!
//! Run: `cargo bench --bench live_latency` (about 40 s).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use missedcalld::ami::standin::{self, Pacing, ServedEvent};
use missedcalld::callbacks::sla::Calendar;
use missedcalld::config::{Config, LogSection};
use missedcalld::daemon::{self, DaemonStatus};
use missedcalld::notify::outbox::Routes;
use missedcalld::notify::worker::{self, WorkerSettings};
use missedcalld::time::EventTime;
use rusqlite::{Connection, OpenFlags};

const COPIES: usize = 18;
/// Events written per second by the stand-in PBX.
const RATE: f64 = 5_000.0;
/// How often the reader looks for new missed calls.
const POLL: Duration = Duration::from_millis(1);
/// The feed gives up after this long, whatever was processed.
const TIMEOUT: Duration = Duration::from_secs(55);

/// A caller's hangup as the store records it: (`linkedid`, `ended_at`).
type Key = (String, String);

#[path = "../tests/notify_support/mod.rs"]
mod notify_support;
use notify_support::{Receiver, free_port, ok};

fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let quiet = LogSection {
        level: "warn".to_string(),
        ..LogSection::default()
    };
    missedcalld::logging::init(&quiet)?;

    let file = common::amplified(root, COPIES, &format!("mix-{COPIES}x.ami"))?;
    let events = Arc::new(standin::capture_events(&std::fs::read(&file)?));
    let total = events.len();
    let hangups: Arc<Vec<Option<Key>>> = Arc::new(events.iter().map(hangup_key).collect());
    println!(
        "feed: {total} events ({} Hangup) of {COPIES} copies of {} at {RATE} events/s",
        hangups.iter().flatten().count(),
        common::CAPTURE
    );

    // 1. Latency, with a webhook receiver on 127.0.0.1 answering at once.
    let rx = Receiver::start(0, |_, _| ok());
    let hook = format!("[[notify.webhook]]\nurl = {:?}\n", rx.url("/missed"));
    // LIVE_LATENCY_NO_NOTIFY=1: the same run without notifications, to compare.
    let without = std::env::var_os("LIVE_LATENCY_NO_NOTIFY").is_some();
    let run = live(&events, &hangups, if without { "" } else { &hook }, None)?;
    if without {
        report(&run.seen, total, run.processed);
        return Ok(());
    }
    report(&run.seen, total, run.processed);
    report_webhook(&run.seen, &rx);

    // 2. 10,000 pending notifications drained to the same receiver.
    drain_pending(&run.db, &hook, &rx)?;

    // 3. The receiver down (connection refused) for the whole feed: RSS stays flat.
    let down = format!(
        "[[notify.webhook]]\nurl = \"http://127.0.0.1:{}/\"\n",
        free_port()
    );
    let rss = Arc::new(std::sync::Mutex::new(Vec::new()));
    let down_run = live(&events, &hangups, &down, Some(Arc::clone(&rss)))?;
    report_rss(&down_run, &rss.lock().expect("rss"));
    Ok(())
}

/// RSS samples: (time since the feed started, KiB).
type RssLog = Arc<std::sync::Mutex<Vec<(Duration, u64)>>>;

/// One live run: the daemon in-process against the stand-in PBX, with `notify` appended to
/// its configuration; `rss`, if given, gets this process's RSS every second.
struct Run {
    seen: Seen,
    processed: u64,
    db: PathBuf,
    _dir: tempfile::TempDir,
}

fn live(
    events: &Arc<Vec<ServedEvent>>,
    hangups: &Arc<Vec<Option<Key>>>,
    notify: &str,
    rss: Option<RssLog>,
) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.sqlite");
    let config = dir.path().join("missedcalld.toml");
    // The stand-in PBX on its own thread, reporting every write to the reader.
    let (written_tx, written_rx) = mpsc::channel::<(usize, Instant)>();
    let on_written: standin::OnWritten = Box::new(move |i, at| {
        let _ = written_tx.send((i, at));
    });
    let port = standin::serve_on_thread(
        Arc::clone(events),
        Pacing::PerSecond(RATE),
        Some(on_written),
    )?;
    std::fs::write(&config, bench_config(port, &db) + notify)?;

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (db, stop, hangups) = (db.clone(), Arc::clone(&stop), Arc::clone(hangups));
        std::thread::spawn(move || observe(&db, &stop, &hangups, written_rx))
    };

    // The daemon on the main thread, on a runtime like `missedcalld run`'s.
    let status = Arc::new(DaemonStatus::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let fed = runtime.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let daemon = tokio::spawn(daemon::run_with_status(
            config.clone(),
            async move {
                let _ = stop_rx.await;
            },
            Arc::clone(&status),
        ));
        let started = Instant::now();
        let mut next_sample = Duration::ZERO;
        while status.events_processed.load(Ordering::Relaxed) < events.len() as u64
            && started.elapsed() < TIMEOUT
            && !daemon.is_finished()
        {
            if let Some(rss) = &rss
                && started.elapsed() >= next_sample
            {
                rss.lock()
                    .expect("rss")
                    .push((started.elapsed(), rss_kib()));
                next_sample += Duration::from_secs(1);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = stop_tx.send(());
        daemon.await?
    });
    if let Err(e) = &fed {
        println!("the daemon stopped with an error: {e:#}");
    }
    // The daemon has committed everything; give the reader a last look.
    std::thread::sleep(Duration::from_millis(20));
    stop.store(true, Ordering::Relaxed);
    let seen = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader panicked"))??;
    Ok(Run {
        seen,
        processed: status.events_processed.load(Ordering::Relaxed),
        db,
        _dir: dir,
    })
}

/// This process's resident set size in KiB (`VmRSS` of /proc/self/status).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
}

/// Missed call visible to a reader (committed) -> its webhook request received.
fn report_webhook(seen: &Seen, rx: &Receiver) {
    let mut lat: Vec<Duration> = rx
        .delivered()
        .iter()
        .filter_map(|r| {
            let linkedid = r.json()["missed_call"]["linkedid"].as_str()?.to_string();
            let visible = seen.visible.get(&linkedid)?;
            Some(r.at.saturating_duration_since(*visible))
        })
        .collect();
    lat.sort();
    println!(
        "latency missed call committed (visible to a reader) -> webhook request received: count {} \
         of {} requests, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        rx.delivered().len(),
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99),
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
    );
}

/// Adds 10,000 pending notifications (copies of the run's missed calls) and drains them.
fn drain_pending(db: &Path, notify: &str, rx: &Receiver) -> anyhow::Result<()> {
    const PENDING: usize = 10_000;
    let cfg = Config::from_toml_str(notify, Path::new("bench.toml"), None)?;
    let routes = Routes::new(&cfg.notify);
    let sink = routes
        .iter()
        .next()
        .map(|r| (r.key.clone(), r.target.clone()));
    let (sink, target) = sink.ok_or_else(|| anyhow::anyhow!("no sink"))?;
    let conn = Connection::open(db)?;
    conn.execute_batch("BEGIN")?;
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1),
              m AS (SELECT row_number() OVER (ORDER BY m.id) - 1 AS k, m.call_id, m.task_id
                      FROM missed_calls m),
              cnt AS (SELECT count(*) AS c FROM m)
         INSERT INTO notifications (id, event, created_at, call_id, task_id)
         SELECT lower(hex(randomblob(16))), 'missed_call', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
                m.call_id, m.task_id
           FROM n, cnt JOIN m ON m.k = n.i % cnt.c",
        [PENDING as i64],
    )?;
    conn.execute(
        "INSERT INTO outbox (notification_id, sink, target, status, next_attempt_at)
         SELECT id, ?1, ?2, 'pending', created_at FROM notifications WHERE payload IS NULL",
        [&sink, &target],
    )?;
    conn.execute_batch("COMMIT")?;
    drop(conn);
    let before = rx.delivered().len();
    let started = Instant::now();
    let left = worker::drain(WorkerSettings {
        db: db.to_path_buf(),
        config: cfg.notify.clone(),
        calendar: Calendar::new(&cfg.calendar).map_err(|e| anyhow::anyhow!("{e}"))?,
        clock: worker::wall_clock(),
        scans: false,
    })?;
    let secs = started.elapsed().as_secs_f64();
    let got = rx.delivered().len() - before;
    println!(
        "drain: {got} of {PENDING} pending notifications delivered to a local receiver in {secs:.2} s \
         ({:.0}/s, payload rendering included); left pending {}, failed {}",
        got as f64 / secs,
        left.pending,
        left.failed
    );
    Ok(())
}

fn report_rss(run: &Run, samples: &[(Duration, u64)]) {
    let pending: i64 = Connection::open_with_flags(&run.db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| {
            c.query_row(
                "SELECT count(*) FROM outbox WHERE status = 'pending'",
                [],
                |r| r.get(0),
            )
        })
        .unwrap_or(-1);
    let mib = |k: u64| k as f64 / 1024.0;
    let shown: Vec<String> = samples
        .iter()
        .step_by(5)
        .map(|(t, k)| format!("{:.0} s {:.1}", t.as_secs_f64(), mib(*k)))
        .collect();
    println!(
        "receiver down (refused) for the whole feed ({} events processed): {pending} notifications \
         pending; RSS of the process (MiB) {}",
        run.processed,
        shown.join(", ")
    );
}

/// `(Linkedid, Timestamp as RFC 3339 ms)` of a `Hangup` event, the form the store writes.
fn hangup_key(event: &ServedEvent) -> Option<Key> {
    let text = std::str::from_utf8(&event.bytes).ok()?;
    let mut lines = text.lines();
    if lines.next()?.trim_end() != "Event: Hangup" {
        return None;
    }
    let linkedid = lines.find_map(|l| l.strip_prefix("Linkedid: "))?;
    let at: EventTime = event.at?;
    Some((linkedid.trim_end().to_string(), at.to_rfc3339()))
}

fn bench_config(port: u16, db: &Path) -> String {
    format!(
        "[ami]\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"missedcalls\"\n\
         secret = \"bench\"\nauth = \"md5\"\n\n[store]\npath = {:?}\n",
        db.display().to_string()
    )
}

/// What the reader saw.
struct Seen {
    /// Hangup written -> missed call visible, one per matched missed call.
    latencies: Vec<Duration>,
    /// Missed calls with no written `Hangup` of the same call and millisecond.
    unmatched: usize,
    /// Events written, first and last write.
    written: usize,
    first: Option<Instant>,
    last: Option<Instant>,
    /// linkedid -> when the reader first saw the missed call.
    visible: HashMap<String, Instant>,
}

/// The reader: polls for new missed calls until `stop`, then looks once more.
fn observe(
    db: &Path,
    stop: &AtomicBool,
    hangups: &[Option<Key>],
    written: mpsc::Receiver<(usize, Instant)>,
) -> anyhow::Result<Seen> {
    let mut seen = Seen {
        latencies: Vec::new(),
        unmatched: 0,
        written: 0,
        first: None,
        last: None,
        visible: HashMap::new(),
    };
    let mut hangup_written: HashMap<&Key, Instant> = HashMap::new();
    let mut pending: Vec<(Key, Instant)> = Vec::new();
    let mut conn: Option<Connection> = None;
    let mut last_id: i64 = 0;
    loop {
        let last_look = stop.load(Ordering::Relaxed);
        if conn.is_none() {
            conn = open_reader(db);
        }
        if let Some(conn) = &conn {
            let mut stmt = conn.prepare_cached(
                "SELECT m.id, c.linkedid, c.ended_at FROM missed_calls m \
                 JOIN calls c ON c.id = m.call_id WHERE m.id > ?1 ORDER BY m.id",
            )?;
            let rows = stmt
                .query_map([last_id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?))
                })?
                .collect::<Result<Vec<(i64, String, String)>, _>>()?;
            let now = Instant::now();
            for (id, linkedid, ended_at) in rows {
                last_id = id;
                seen.visible.entry(linkedid.clone()).or_insert(now);
                pending.push(((linkedid, ended_at), now));
            }
        }
        for (i, at) in written.try_iter() {
            seen.written += 1;
            seen.first.get_or_insert(at);
            seen.last = Some(at);
            if let Some(key) = &hangups[i] {
                hangup_written.entry(key).or_insert(at);
            }
        }
        pending.retain(|(key, visible)| match hangup_written.get(key) {
            Some(w) => {
                seen.latencies.push(visible.saturating_duration_since(*w));
                false
            }
            None => true,
        });
        if last_look {
            break;
        }
        std::thread::sleep(POLL);
    }
    seen.unmatched = pending.len();
    Ok(seen)
}

/// A read-only connection once the daemon has created the schema.
fn open_reader(db: &Path) -> Option<Connection> {
    if !db.exists() {
        return None;
    }
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .ok()?;
    (version >= 1).then_some(conn)
}

fn report(seen: &Seen, total: usize, processed: u64) {
    let mut lat = seen.latencies.clone();
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pct = |p: f64| {
        if lat.is_empty() {
            return 0.0;
        }
        ms(lat[((lat.len() as f64 - 1.0) * p).round() as usize])
    };
    let rate = match (seen.first, seen.last) {
        (Some(a), Some(b)) if b > a => (seen.written - 1) as f64 / (b - a).as_secs_f64(),
        _ => 0.0,
    };
    println!(
        "fed {} of {total} events at {rate:.0} events/s; the daemon processed {processed}",
        seen.written
    );
    println!(
        "missed calls: {} matched to their Hangup ({:.1} per copy), {} unmatched",
        lat.len(),
        lat.len() as f64 / COPIES as f64,
        seen.unmatched
    );
    println!(
        "latency Hangup written -> missed call visible to a reader: count {}, p50 {:.2} ms, \
         p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        lat.last().copied().map(ms).unwrap_or(0.0)
    );
}
