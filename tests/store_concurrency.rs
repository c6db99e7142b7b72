//! The writer under concurrent readers and a competing writer: no lost, duplicated or
//! half-visible data.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use missedcalld::calls::outcome::FinishedCall;
use missedcalld::store::Store;
use rusqlite::{Connection, OpenFlags};
use support::store::*;

/// Collects WARN-and-above log lines from every thread (the writer logs from its own).
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_warnings() -> Captured {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber)
        .expect("only this test sets the subscriber");
    captured
}

/// `n` calls over a pool of 500 numbers, one second apart: misses, unanswered and answered
/// callbacks. Returns the calls and the expected (tasks, open tasks, sum missed_count, sum attempts).
fn workload(n: usize) -> (Vec<FinishedCall>, (i64, i64, i64, i64)) {
    let base = at("2026-11-23T00:00:00Z");
    let mut calls = Vec::with_capacity(n);
    // number -> open task (missed_count, attempts)
    let mut open: HashMap<String, (i64, i64)> = HashMap::new();
    let (mut tasks, mut closed_missed, mut closed_attempts) = (0i64, 0i64, 0i64);
    for i in 0..n {
        let number = format!("7916{:07}", (i * 7) % 500);
        let ended = base.plus_secs(i as i64).to_rfc3339();
        let id = format!("load-{i}");
        let call = match i % 5 {
            0..=2 => {
                let c = missed(&id, &number, &ended, 20.0, &["101", "102"]);
                match open.get_mut(&number) {
                    Some(t) => t.0 += 1,
                    None => {
                        tasks += 1;
                        open.insert(number.clone(), (1, 0));
                    }
                }
                c
            }
            3 => {
                if let Some(t) = open.get_mut(&number) {
                    t.1 += 1;
                }
                outbound(
                    &id,
                    &format!("8{}", &number[1..]),
                    "101",
                    &ended,
                    false,
                    0.0,
                )
            }
            _ => {
                if let Some((m, a)) = open.remove(&number) {
                    closed_missed += m;
                    closed_attempts += a;
                }
                outbound(
                    &id,
                    &format!("8{}", &number[1..]),
                    "101",
                    &ended,
                    true,
                    30.0,
                )
            }
        };
        calls.push(call);
    }
    let open_missed: i64 = open.values().map(|t| t.0).sum();
    let open_attempts: i64 = open.values().map(|t| t.1).sum();
    (
        calls,
        (
            tasks,
            open.len() as i64,
            closed_missed + open_missed,
            closed_attempts + open_attempts,
        ),
    )
}

/// Invariants every committed state must satisfy; returns the number of calls seen.
fn check_consistent(c: &Connection) -> i64 {
    let orphans: i64 = scalar(
        c,
        "SELECT count(*) FROM missed_calls m LEFT JOIN calls c ON c.id = m.call_id WHERE c.id IS NULL",
    );
    assert_eq!(orphans, 0, "missed call without its calls row");
    let bad_counts = tasks_with_wrong_missed_count(c);
    assert_eq!(
        bad_counts, 0,
        "task missed_count differs from its missed calls"
    );
    let bad_attempts: i64 = scalar(
        c,
        "SELECT count(*) FROM callback_tasks t
          WHERE t.attempts <> (SELECT count(*) FROM task_events e WHERE e.task_id = t.id AND e.kind = 'attempt')",
    );
    assert_eq!(
        bad_attempts, 0,
        "task attempts differ from its attempt events"
    );
    let attempts_rows = count(c, "agent_attempts");
    let missed = count(c, "missed_calls");
    assert_eq!(
        attempts_rows,
        missed * 2,
        "agent attempts of a missed call half-visible"
    );
    count(c, "calls")
}

#[test]
fn readers_see_consistent_states_while_20000_calls_are_recorded() {
    let (_dir, path) = temp_db();
    let n = 20_000;
    let (calls, (tasks, open_tasks, sum_missed, sum_attempts)) = workload(n);
    let store = Store::open(settings(&path)).expect("open");

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|k| {
            let stop = Arc::clone(&stop);
            let path = path.clone();
            thread::spawn(move || {
                let mut c = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
                    .expect("reader");
                let (mut snapshots, mut last) = (0u64, 0i64);
                while !stop.load(Ordering::Relaxed) {
                    let tx = c.transaction().expect("read transaction");
                    let seen = check_consistent(&tx);
                    assert!(seen >= last, "calls went from {last} to {seen}");
                    last = seen;
                    if k == 1 {
                        // A reader that sits in its read transaction for a while.
                        thread::sleep(Duration::from_millis(150));
                        assert_eq!(
                            check_consistent(&tx),
                            seen,
                            "snapshot moved inside a transaction"
                        );
                    }
                    tx.commit().expect("end read");
                    snapshots += 1;
                }
                snapshots
            })
        })
        .collect();

    let started = Instant::now();
    for c in calls {
        store.record(c).expect("record");
    }
    store.close().expect("close");
    eprintln!("recorded {n} calls in {:?}", started.elapsed());
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let snapshots = r.join().expect("reader thread");
        assert!(snapshots > 0);
    }

    let c = conn(&path);
    assert_eq!(check_consistent(&c), n as i64);
    assert_eq!(count(&c, "missed_calls"), (n as i64 / 5) * 3);
    assert_eq!(count(&c, "callback_tasks"), tasks);
    let (open, missed_sum, attempts_sum): (i64, i64, i64) = c
        .query_row(
            "SELECT sum(status = 'open'), sum(missed_count), sum(attempts) FROM callback_tasks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("sums");
    assert_eq!(
        (open, missed_sum, attempts_sum),
        (open_tasks, sum_missed, sum_attempts)
    );
}

#[test]
fn a_competing_writer_holding_the_lock_for_2s_loses_and_duplicates_nothing() {
    let logs = capture_warnings();
    let (_dir, path) = temp_db();
    let (calls, (tasks, _, sum_missed, sum_attempts)) = workload(3_000);
    let mut s = settings(&path);
    // Shorter than the lock, so the writer really hits SQLITE_BUSY and retries its batch.
    s.busy_timeout = Duration::from_millis(200);
    s.batch_max = 100;
    s.queue_capacity = 500;
    let store = Store::open(s).expect("open");
    for c in &calls[..1000] {
        store.record(c.clone()).expect("record");
    }
    store.flush().expect("flush");

    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let locker = {
        let path = path.clone();
        thread::spawn(move || {
            let mut c = Connection::open(&path).expect("second writer");
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .expect("BEGIN IMMEDIATE");
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('other_writer', 'was here')",
                [],
            )
            .expect("write under lock");
            locked_tx.send(()).expect("signal");
            thread::sleep(Duration::from_secs(2));
            tx.commit().expect("commit");
        })
    };
    locked_rx.recv().expect("lock taken");
    let during = Instant::now();
    for c in &calls[1000..] {
        store.record(c.clone()).expect("record while locked");
    }
    store.flush().expect("flush after lock");
    assert!(
        during.elapsed() >= Duration::from_millis(1500),
        "writer did not wait for the lock"
    );
    locker.join().expect("locker");
    let stats = store.stats();
    assert!(stats.retries > 1, "the batch was not retried: {stats:?}");
    let text = String::from_utf8(logs.0.lock().expect("log buffer").clone()).expect("utf8 logs");
    // Other tests in this binary log to the same global subscriber: keep this database's lines.
    let mine = path.display().to_string();
    let warnings = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(&mine))
        .count();
    assert_eq!(
        warnings, 1,
        "expected one warning for the blocked batch, got:\n{text}"
    );
    assert!(text.contains("cannot commit to the database yet"), "{text}");
    // Replay everything once more: nothing may be added.
    for c in &calls {
        store.record(c.clone()).expect("record again");
    }
    store.close().expect("close");

    let c = conn(&path);
    assert_eq!(check_consistent(&c), 3_000);
    assert_eq!(count(&c, "callback_tasks"), tasks);
    let (missed_sum, attempts_sum): (i64, i64) = c
        .query_row(
            "SELECT sum(missed_count), sum(attempts) FROM callback_tasks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("sums");
    assert_eq!((missed_sum, attempts_sum), (sum_missed, sum_attempts));
    let other: String = scalar(&c, "SELECT value FROM meta WHERE key = 'other_writer'");
    assert_eq!(other, "was here");
}

/// The `sqlite3` shell, if installed: another process reading and locking the file.
fn sqlite3_shell() -> Option<std::path::PathBuf> {
    let out = std::process::Command::new("sqlite3")
        .arg("-version")
        .output()
        .ok()?;
    out.status.success().then(|| "sqlite3".into())
}

#[test]
fn another_process_locking_and_reading_with_the_sqlite3_shell() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    let Some(shell) = sqlite3_shell() else {
        eprintln!("sqlite3 shell not installed; covered by the in-process tests only");
        return;
    };
    let (_dir, path) = temp_db();
    let (calls, (tasks, _, sum_missed, _)) = workload(4_000);
    let mut s = settings(&path);
    s.busy_timeout = Duration::from_millis(300);
    let store = Store::open(s).expect("open");
    for c in &calls[..500] {
        store.record(c.clone()).expect("record");
    }
    store.flush().expect("flush");

    // Another process takes the write lock and keeps it for 2 s.
    let mut locker = Command::new(&shell)
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sqlite3");
    let mut stdin = locker.stdin.take().expect("stdin");
    writeln!(stdin, ".timeout 5000\nBEGIN IMMEDIATE;\nINSERT INTO meta VALUES ('shell', 'locked');\nSELECT 'locked';")
        .expect("write to sqlite3");
    stdin.flush().expect("flush sqlite3 stdin");
    thread::sleep(Duration::from_millis(300));
    let feeder = {
        let calls = calls[500..].to_vec();
        let store = Arc::new(store);
        let s2 = Arc::clone(&store);
        (
            thread::spawn(move || {
                for c in calls {
                    s2.record(c).expect("record while locked");
                }
                s2.flush().expect("flush");
            }),
            store,
        )
    };
    // Meanwhile a third process reads, and must see a consistent snapshot each time.
    let query = "SELECT (SELECT count(*) FROM callback_tasks t WHERE t.missed_count <> \
                 (SELECT count(*) FROM missed_calls m WHERE m.task_id = t.id)) || ' ' || \
                 (SELECT count(*) FROM missed_calls m LEFT JOIN calls c ON c.id = m.call_id WHERE c.id IS NULL);";
    for _ in 0..10 {
        let out = Command::new(&shell)
            .args(["-readonly", "-cmd", ".timeout 5000"])
            .arg(&path)
            .arg(query)
            .output()
            .expect("sqlite3 reader");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0 0");
        thread::sleep(Duration::from_millis(150));
    }
    thread::sleep(Duration::from_millis(500));
    writeln!(stdin, "COMMIT;\n.quit").expect("commit in sqlite3");
    drop(stdin);
    assert!(locker.wait().expect("sqlite3 exit").success());
    let (handle, store) = feeder;
    handle.join().expect("feeder");
    let store = Arc::try_unwrap(store).expect("sole owner");
    assert!(store.stats().retries > 0, "{:?}", store.stats());
    store.close().expect("close");

    let c = conn(&path);
    assert_eq!(check_consistent(&c), 4_000);
    assert_eq!(count(&c, "callback_tasks"), tasks);
    let missed_sum: i64 = scalar(&c, "SELECT sum(missed_count) FROM callback_tasks");
    assert_eq!(missed_sum, sum_missed);
}
