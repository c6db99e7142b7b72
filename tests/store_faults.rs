//! The store when its file goes away or cannot be written, on real SQLite files: a deleted file
//! (with or without its -wal/-shm) or one replaced by another database is noticed at the next
//! commit and recording goes on at the path; a stop deadline makes `close` give up a batch that
//! cannot commit (here: another connection holding the write lock) instead of waiting forever.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use missedcalld::calls::FinishedCall;
use missedcalld::store::{Store, StoreError};
use support::store::*;

fn linkedids(path: &Path) -> Vec<String> {
    column(&conn(path), "SELECT linkedid FROM calls ORDER BY linkedid")
}

/// Call `linkedid`, a miss of number 7903111000`n` at 10:`minute` that rang agent 101.
fn miss(linkedid: &str, n: u8, minute: u8) -> FinishedCall {
    missed(
        linkedid,
        &format!("7903111000{n}"),
        &format!("2026-11-23T10:{minute:02}:00Z"),
        20.0,
        &["101"],
    )
}

fn side(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    p.into()
}

#[test]
fn a_deleted_file_is_recreated_at_the_path() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    store.record(miss("a", 1, 0)).expect("record");
    store.flush().expect("flush");

    // The main file only: SQLite's -wal and -shm of the old database stay behind.
    std::fs::remove_file(&path).expect("rm");
    store.record(miss("b", 2, 5)).expect("record");
    store.flush().expect("flush");
    assert_eq!(
        linkedids(&path),
        ["b"],
        "a new database with the later call only"
    );

    // All three files.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(side(&path, suffix));
    }
    store.record(miss("c", 3, 10)).expect("record");
    store.close().expect("close");
    assert_eq!(linkedids(&path), ["c"]);
    assert_eq!(
        count(&conn(&path), "missed_calls"),
        1,
        "the schema is all there"
    );
}

#[test]
fn an_idle_writer_recreates_a_deleted_file_within_seconds() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    store.record(miss("a", 1, 0)).expect("record");
    store.flush().expect("flush");
    std::fs::remove_file(&path).expect("rm");

    // No call is recorded: the writer's idle check (every 10 s) finds the file gone.
    let asked = Instant::now();
    let calls_in_new_file = loop {
        let counted = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .and_then(|c| c.query_row("SELECT count(*) FROM calls", [], |r| r.get::<_, i64>(0)));
        if let Ok(n) = counted {
            break n;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(60),
            "no new database after {:?}",
            asked.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(calls_in_new_file, 0, "a new, empty database");
    store.close().expect("close");
}

#[test]
fn a_replaced_file_is_followed() {
    let (dir, path) = temp_db();
    let other = dir.path().join("restored.sqlite");
    record_all(
        &other,
        &[missed(
            "x",
            "79031110009",
            "2026-11-22T10:00:00Z",
            20.0,
            &[],
        )],
    );
    let store = open(&path);
    store.record(miss("a", 1, 0)).expect("record");
    store.flush().expect("flush");

    // A restore from backup: another database renamed over the path.
    std::fs::rename(&other, &path).expect("mv");
    store.record(miss("b", 2, 5)).expect("record");
    store.close().expect("close");
    assert_eq!(linkedids(&path), ["b", "x"]);
}

#[test]
fn past_the_stop_deadline_a_batch_that_cannot_commit_is_given_up() {
    let (_dir, path) = temp_db();
    let mut s = settings(&path);
    s.busy_timeout = Duration::from_millis(50);
    let store = Store::open(s).expect("open");
    let stop = store.stop_deadline();

    let blocker = conn(&path);
    blocker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("hold the write lock");
    store.record(miss("a", 1, 0)).expect("record");

    let asked = Instant::now();
    stop.set(asked + Duration::from_millis(500));
    let closing = std::thread::spawn(move || store.close());
    while !closing.is_finished() {
        assert!(
            asked.elapsed() < Duration::from_secs(20),
            "close still waiting for the lock after the deadline"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let result = closing.join().expect("join");
    assert!(
        matches!(result, Err(StoreError::Unsaved { calls: 1, .. })),
        "{result:?}"
    );
    blocker.execute_batch("ROLLBACK").expect("release");
    assert!(linkedids(&path).is_empty());
}
