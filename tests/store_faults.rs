//! The store when its file goes away or cannot be written, on real SQLite files: a deleted file
//! (with or without its -wal/-shm) or one replaced by another database is noticed at the next
//! commit and recording goes on at the path; a stop deadline makes `close` give up a batch that
//! cannot commit (here: another connection holding the write lock) instead of waiting forever.
//! A call the database itself refuses is left out alone, whether it was committed on its own
//! or in a batch with others.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use missedcalld::calls::FinishedCall;
use missedcalld::store::{Store, StoreError, StoreSettings};
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

/// Makes the database refuse every call whose linkedid starts with `refuse` (an admin's
/// trigger, say): a failure that waiting does not cure. It strikes at the agents rung, after
/// the call's own row went in, so whatever the call wrote before must be rolled back.
fn refuse_some(path: &Path) {
    conn(path)
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON agent_attempts \
             WHEN (SELECT linkedid FROM calls WHERE id = NEW.call_id) LIKE 'refuse%' \
             BEGIN SELECT RAISE(ABORT, 'refused by a local rule'); END;",
        )
        .expect("trigger");
}

#[test]
fn a_call_the_database_refuses_is_left_out_alone_and_counted() {
    let (_dir, path) = temp_db();
    // Lingering, so calls sent together are committed as one batch.
    let store = Store::open(StoreSettings {
        batch_linger: Duration::from_millis(500),
        batch_max_delay: Duration::from_secs(2),
        ..settings(&path)
    })
    .expect("open");
    store.flush().expect("flush");
    refuse_some(&path);

    // One call a commit: the refused one leaves nothing behind, the next one lands.
    store.record(miss("refuse-1", 1, 0)).expect("record");
    store.flush().expect("flush");
    store.record(miss("a", 2, 1)).expect("record");
    store.flush().expect("flush");
    let lone = store.stats();
    assert_eq!((lone.calls_written, lone.rejected), (1, 1));
    assert_eq!(linkedids(&path), ["a"]);

    // Three calls in one batch: the refused one is rolled back alone.
    for (linkedid, n) in [("b", 3), ("refuse-2", 4), ("c", 5)] {
        store.record(miss(linkedid, n, 2 + n)).expect("record");
    }
    store.flush().expect("flush");
    let batch = store.stats();
    assert_eq!(batch.batches, lone.batches + 1, "the three were one batch");
    assert_eq!((batch.calls_written, batch.rejected), (3, 2));
    store.close().expect("close");
    assert_eq!(linkedids(&path), ["a", "b", "c"]);
    let c = conn(&path);
    assert_eq!(count(&c, "missed_calls"), 3);
    assert_eq!(
        scalar::<i64>(
            &c,
            "SELECT count(*) FROM callback_tasks WHERE number LIKE '%79031110001'"
        ),
        0,
        "no task for the refused caller"
    );
}
