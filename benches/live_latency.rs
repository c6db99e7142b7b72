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
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use missedcalld::ami::standin::{self, Pacing, ServedEvent, StandinPbx};
use missedcalld::config::LogSection;
use missedcalld::daemon::{self, DaemonStatus};
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

    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.sqlite");
    let config = dir.path().join("missedcalld.toml");
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    std::fs::write(&config, bench_config(port, &db))?;

    // The stand-in PBX on its own thread, reporting every write to the reader.
    let (written_tx, written_rx) = mpsc::channel::<(usize, Instant)>();
    let server_events = Arc::clone(&events);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the stand-in PBX's runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let on_written: standin::OnWritten = Box::new(move |i, at| {
                let _ = written_tx.send((i, at));
            });
            standin::serve(
                listener,
                StandinPbx::open(),
                server_events,
                Pacing::PerSecond(RATE),
                Some(on_written),
            )
            .await;
        });
    });

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (db, stop, hangups) = (db.clone(), Arc::clone(&stop), Arc::clone(&hangups));
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
        while status.events_processed.load(Ordering::Relaxed) < total as u64
            && started.elapsed() < TIMEOUT
            && !daemon.is_finished()
        {
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
    report(
        &seen,
        total,
        status.events_processed.load(Ordering::Relaxed),
    );
    Ok(())
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
