//! Schema upgrades and refusing files that are not ours, on real files.

mod support;

use missedcalld::output;
use missedcalld::store::migrations::{self, LATEST_VERSION};
use missedcalld::store::{Store, StoreError};
use rusqlite::Connection;
use support::store::*;

fn user_version(c: &Connection) -> i64 {
    c.pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("user_version")
}

#[test]
fn a_database_from_migration_1_opens_and_upgrades_keeping_its_data() {
    const { assert!(LATEST_VERSION >= 2) };
    let (_dir, path) = temp_db();
    {
        let mut c = Connection::open(&path).expect("create");
        assert_eq!(
            migrations::migrate_to(&mut c, &path, 1).expect("migration 1"),
            1
        );
        c.execute_batch(
            "INSERT INTO calls (linkedid, direction, number, number_normalized, started_at, ended_at,
                                wait_seconds, answered, talk_seconds, gap)
             VALUES ('old-1', 'inbound', '79161110007', '79161110007', '2026-11-20T10:00:00.000Z',
                     '2026-11-20T10:00:20.000Z', 20.0, 0, 0, 0);
             INSERT INTO callback_tasks (number, status, missed_count, first_missed_at, last_missed_at, deadline)
             VALUES ('79161110007', 'open', 1, '2026-11-20T10:00:20.000Z', '2026-11-20T10:00:20.000Z',
                     '2026-11-20T10:10:20.000Z');
             INSERT INTO missed_calls (call_id, loss_reason, voicemail, withheld, first_time_caller, task_id)
             VALUES (1, 'queue', 0, 0, 1, 1);",
        )
        .expect("old data");
        let views: i64 = scalar(&c, "SELECT count(*) FROM sqlite_master WHERE type = 'view'");
        assert_eq!(views, 0);
    }
    // The read side reads a version-1 database as it is, without upgrading it.
    let mut out = Vec::new();
    output::missed(&path, None, None, true, &mut out).expect("read v1");
    let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(v[0]["linkedid"], "old-1");
    assert_eq!(user_version(&conn(&path)), 1);

    // The writer upgrades it and goes on with the old task.
    let store = open(&path);
    store
        .record(missed(
            "new-1",
            "89161110007",
            "2026-11-20T10:05:00Z",
            5.0,
            &[],
        ))
        .expect("record");
    store.close().expect("close");
    let c = conn(&path);
    assert_eq!(user_version(&c), LATEST_VERSION);
    let (count, linkedids): (i64, String) = c
        .query_row(
            "SELECT missed_count, missed_linkedids FROM v_open_tasks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("view over old and new data");
    assert_eq!((count, linkedids.as_str()), (2, "old-1,new-1"));
}

#[test]
fn garbage_file_is_refused_clearly() {
    let (_dir, path) = temp_db();
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&path, &garbage).expect("write garbage");

    let err = Store::open(settings(&path)).unwrap_err();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{} is not an SQLite database", path.display())
    );

    let mut out = Vec::new();
    let err = output::tasks(&path, None, true, &mut out).unwrap_err();
    assert!(
        format!("{err:#}").contains("is not an SQLite database"),
        "{err:#}"
    );
    assert!(out.is_empty());
    // The file is left as it was.
    assert_eq!(std::fs::read(&path).expect("read back"), garbage);
}

#[test]
fn missing_and_foreign_databases_are_refused_by_the_read_side() {
    let (_dir, path) = temp_db();
    let mut out = Vec::new();
    let err = output::report(
        &path,
        None,
        None,
        "day",
        output::ReportFormat::Json,
        &mut out,
    )
    .unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        format!("database {} does not exist", path.display())
    );
    assert!(!path.exists(), "the read side must not create the file");

    Connection::open(&path)
        .expect("create")
        .execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        .expect("foreign table");
    let err = output::missed(&path, None, None, false, &mut out).unwrap_err();
    assert!(
        format!("{err:#}").contains("is not a missedcalld database"),
        "{err:#}"
    );
    let err = Store::open(settings(&path)).unwrap_err();
    assert!(matches!(err, StoreError::NotOurs { .. }), "{err:?}");
}

#[test]
fn an_empty_file_becomes_a_database_and_a_newer_one_is_refused() {
    let (_dir, path) = temp_db();
    std::fs::write(&path, b"").expect("empty file");
    let mut out = Vec::new();
    let err = output::missed(&path, None, None, true, &mut out).unwrap_err();
    assert!(format!("{err:#}").contains("it is empty"), "{err:#}");
    open(&path).close().expect("create schema");
    output::missed(&path, None, None, true, &mut out).expect("now readable");
    assert_eq!(String::from_utf8_lossy(&out).trim(), "[]");

    conn(&path)
        .pragma_update(None, "user_version", LATEST_VERSION + 1)
        .expect("bump");
    let err = Store::open(settings(&path)).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { .. }), "{err:?}");
    assert!(err.to_string().contains("upgrade missedcalld"), "{err}");
}
