//! Store benchmark: prints numbers, asserts nothing.
//!
//! `cargo run --release --bin bench_store -- [CALLS] [FEED_SECONDS]`
//! 1. throughput: CALLS (default 200,000) synthetic finished calls (missed, answered inbound,
//!    outbound callbacks) recorded as fast as possible into a fresh file; calls/s until closed;
//! 2. latency: a steady feed of 40 calls/s (about 2,000 AMI events/s) for FEED_SECONDS (default
//!    20); from `record()` to the call being visible to a separate read-only connection that
//!    polls every 0.5 ms (p50/p99/max), and the store writer thread's CPU time per committed
//!    call at that pace (from `/proc/self/task/*/schedstat`, nanoseconds on the CPU).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use missedcalld::calls::outcome::{
    AgentAttempt, AttemptOutcome, Direction, FinishedCall, LossReason, MissDetails,
};
use missedcalld::store::{Store, StoreSettings};
use missedcalld::time::EventTime;

/// Monday 2026-11-23 00:00 UTC.
const BASE_US: i64 = 1_795_392_000_000_000;

/// Call `i` of the synthetic mix: 50% missed, 20% answered inbound, 30% outbound callbacks.
fn synthetic(i: u64) -> FinishedCall {
    let number = format!("7916{:07}", (i * 7919) % 20_000);
    let ended_at = EventTime(BASE_US + i as i64 * 2_000_000);
    let started_at = EventTime(ended_at.0 - 25_000_000);
    let agents = ["101", "102", "103"];
    let attempt = |k: usize, outcome| AgentAttempt {
        agent: agents[k % 3].to_owned(),
        name: None,
        ring_start: started_at.plus_secs(3),
        ring_seconds: 10.0,
        outcome,
    };
    let mut call = FinishedCall {
        linkedid: format!("bench-{i}"),
        direction: Direction::Inbound,
        number: number.clone(),
        name: Some("Client".into()),
        withheld: i.is_multiple_of(97),
        did: Some("74951234567".into()),
        queue: Some("sales".into()),
        started_at,
        ended_at,
        wait_seconds: 25.0,
        answered: false,
        agent: None,
        talk_seconds: 0.0,
        attempts: Vec::new(),
        forwards: Vec::new(),
        missed: None,
        gap: false,
        gap_window: None,
    };
    match i % 10 {
        0..=4 => {
            call.attempts = (0..3)
                .map(|k| attempt(k + i as usize, AttemptOutcome::CallerHungUp))
                .collect();
            call.missed = Some(MissDetails {
                loss_reason: LossReason::Ringing,
                voicemail: i.is_multiple_of(3),
            });
        }
        5 | 6 => {
            call.answered = true;
            call.agent = Some(agents[i as usize % 3].to_owned());
            call.talk_seconds = 60.0;
            call.attempts = vec![attempt(i as usize, AttemptOutcome::Answered)];
        }
        _ => {
            call.direction = Direction::Outbound;
            call.number = format!("8{}", &number[1..]);
            call.name = None;
            call.did = None;
            call.queue = None;
            call.withheld = false;
            call.answered = i % 10 == 9;
            call.agent = Some(agents[i as usize % 3].to_owned());
            call.talk_seconds = if call.answered { 40.0 } else { 0.0 };
        }
    }
    call
}

fn fresh_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("missedcalld-bench-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(err) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {err}", dir.display());
        std::process::exit(1);
    }
    dir
}

fn file_mb(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1e6)
}

fn throughput(n: u64) -> anyhow::Result<()> {
    let dir = fresh_dir("throughput");
    let path = dir.join("bench.sqlite");
    let store = Store::open(StoreSettings::new(&path))?;
    let calls: Vec<FinishedCall> = (0..n).map(synthetic).collect();
    let started = Instant::now();
    for c in calls {
        store.record(c)?;
    }
    store.flush()?;
    let elapsed = started.elapsed();
    let stats = store.stats();
    store.close()?;
    println!(
        "throughput: {n} calls in {:.2} s = {:.0} calls/s ({} transactions, avg {:.0} calls each, {} retries), db {:.1} MB",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        stats.batches,
        stats.calls_written as f64 / stats.batches.max(1) as f64,
        stats.retries,
        file_mb(&path)
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn latency(seconds: u64) -> anyhow::Result<()> {
    const RATE: u64 = 40;
    let dir = fresh_dir("latency");
    let path = dir.join("bench.sqlite");
    let store = Store::open(StoreSettings::new(&path))?;
    let n = RATE * seconds;
    let sent: Arc<Vec<std::sync::Mutex<Option<Instant>>>> =
        Arc::new((0..n).map(|_| std::sync::Mutex::new(None)).collect());
    let stop = Arc::new(AtomicBool::new(false));

    // The observer: another connection that sees a call once its transaction committed.
    let observer = {
        let (sent, stop, path) = (Arc::clone(&sent), Arc::clone(&stop), path.clone());
        std::thread::spawn(move || -> anyhow::Result<Vec<Duration>> {
            let conn = rusqlite::Connection::open_with_flags(
                &path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )?;
            let mut seen: u64 = 0;
            let mut lat = Vec::with_capacity(n as usize);
            while seen < n && !stop.load(Ordering::Relaxed) {
                let max: i64 =
                    conn.query_row("SELECT coalesce(max(id), 0) FROM calls", [], |r| r.get(0))?;
                let now = Instant::now();
                while seen < max as u64 {
                    if let Some(t) = *sent[seen as usize]
                        .lock()
                        .map_err(|_| anyhow::anyhow!("poisoned"))?
                    {
                        lat.push(now.duration_since(t));
                    }
                    seen += 1;
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            Ok(lat)
        })
    };

    let interval = Duration::from_secs_f64(1.0 / RATE as f64);
    let writer_before = thread_cpu("store-writer");
    let start = Instant::now();
    for i in 0..n {
        let due = start + interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if let Ok(mut slot) = sent[i as usize].lock() {
            *slot = Some(Instant::now());
        }
        store.record(synthetic(i))?;
    }
    store.flush()?;
    let writer_cpu = thread_cpu("store-writer").saturating_sub(writer_before);
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let mut lat = observer
        .join()
        .map_err(|_| anyhow::anyhow!("observer panicked"))??;
    let stats = store.stats();
    store.close()?;
    lat.sort();
    println!(
        "latency record()->visible to a reader at {RATE} calls/s for {seconds} s ({} calls, {} transactions): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; store writer CPU {:.0} µs per call ({:.2}% of one core)",
        lat.len(),
        stats.batches,
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        writer_cpu.as_secs_f64() * 1e6 / n as f64,
        writer_cpu.as_secs_f64() / start.elapsed().as_secs_f64() * 100.0,
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Time on the CPU so far of this process's threads named `name` (0 if none).
fn thread_cpu(name: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .filter_map(|t| t.ok())
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .sum()
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200_000);
    let seconds: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(20);
    throughput(n)?;
    latency(seconds)?;
    Ok(())
}
