//! Append-only schema migrations keyed by `PRAGMA user_version`.
//!
//! Migration N (1-based) is `MIGRATIONS[N - 1]`; a database at `user_version = N` has had the
//! first N applied. Never edit or reorder a shipped entry: add a new file and a new entry.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// The SQL of every migration, in order.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("001_tables", include_str!("sql/001_tables.sql")),
    ("002_views", include_str!("sql/002_views.sql")),
    (FORWARDS, include_str!("sql/003_forwards.sql")),
    (GAP_WINDOW, include_str!("sql/004_gap_window.sql")),
    ("005_local_day", include_str!("sql/005_local_day.sql")),
    ("006_outbox", include_str!("sql/006_outbox.sql")),
    ("007_gap_in_views", include_str!("sql/007_gap_in_views.sql")),
];

/// The migration that adds `agent_attempts.name` and `forwards`.
pub const FORWARDS: &str = "003_forwards";

/// The migration that adds `calls.gap_started_at` and `calls.gap_ended_at`.
pub const GAP_WINDOW: &str = "004_gap_window";

/// The schema version at which migration `name` is applied (0 if there is none).
pub const fn version_of(name: &str) -> i64 {
    let mut i = 0;
    while i < MIGRATIONS.len() {
        if const_eq(MIGRATIONS[i].0, name) {
            return i as i64 + 1;
        }
        i += 1;
    }
    0
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The schema version this program writes.
pub const LATEST_VERSION: i64 = MIGRATIONS.len() as i64;

/// The database's `user_version`.
pub fn user_version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| StoreError::from_open(path, e))
}

/// Refuses databases that are not missedcalld's or come from a newer version.
pub fn check_ours(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let version = user_version(conn, path)?;
    if version > LATEST_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: version,
            supported: LATEST_VERSION,
        });
    }
    if version == 0 {
        let objects: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| StoreError::from_open(path, e))?;
        if objects > 0 {
            return Err(StoreError::NotOurs {
                path: path.to_owned(),
                reason: format!(
                    "it has {objects} tables/indexes but no missedcalld schema version"
                ),
            });
        }
    } else {
        let has_tasks: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'callback_tasks')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| StoreError::from_open(path, e))?;
        if !has_tasks {
            return Err(StoreError::NotOurs {
                path: path.to_owned(),
                reason: format!("user_version is {version} but table callback_tasks is missing"),
            });
        }
    }
    Ok(version)
}

/// Applies every migration the database lacks, each in its own immediate transaction together
/// with its `user_version` bump, so a crash leaves the database at a well-defined version.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<i64, StoreError> {
    migrate_to(conn, path, LATEST_VERSION)
}

/// Like [`migrate`], stopping at `target` (tests build old databases with it).
pub fn migrate_to(conn: &mut Connection, path: &Path, target: i64) -> Result<i64, StoreError> {
    let mut version = check_ours(conn, path)?;
    while version < target.min(LATEST_VERSION) {
        let (name, sql) = MIGRATIONS[version as usize];
        let next = version + 1;
        let fail = |source| StoreError::Migration {
            path: path.to_owned(),
            name,
            source,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(fail)?;
        if now >= next {
            version = now;
            continue;
        }
        tx.execute_batch(sql).map_err(fail)?;
        tx.pragma_update(None, "user_version", next).map_err(fail)?;
        tx.commit().map_err(fail)?;
        tracing::info!(path = %path.display(), migration = name, "database schema upgraded to version {next}");
        version = next;
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_applies_in_memory_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().expect("in-memory db");
        let path = Path::new(":memory:");
        assert_eq!(migrate(&mut conn, path).expect("migrate"), LATEST_VERSION);
        assert_eq!(migrate(&mut conn, path).expect("again"), LATEST_VERSION);
        for view in ["v_open_tasks", "v_missed_with_agents", "v_daily_sla"] {
            let n: i64 = conn
                .query_row(&format!("SELECT count(*) FROM {view}"), [], |r| r.get(0))
                .expect(view);
            assert_eq!(n, 0, "{view}");
        }
    }

    #[test]
    fn foreign_schema_is_refused() {
        let mut conn = Connection::open_in_memory().expect("in-memory db");
        conn.execute_batch("CREATE TABLE customers (id INTEGER)")
            .expect("create");
        let err = migrate(&mut conn, Path::new("x.db")).unwrap_err();
        assert!(
            err.to_string().contains("not a missedcalld database"),
            "{err}"
        );
    }

    #[test]
    fn newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().expect("in-memory db");
        conn.pragma_update(None, "user_version", LATEST_VERSION + 1)
            .expect("pragma");
        let err = migrate(&mut conn, Path::new("x.db")).unwrap_err();
        assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
    }
}
