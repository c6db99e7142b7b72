//! How our write connections wait for a lock another connection holds: a retry every
//! millisecond, up to the timeout set for the thread running the statement.
//!
//! SQLite's own handler (`busy_timeout`) backs off up to 100 ms between retries. Another
//! connection (the notification worker, a report, an admin's shell) holds the write lock for a
//! few milliseconds at a time, so the store writer could sleep far longer than the lock was
//! held (the test below: 82 ms after the release with SQLite's handler). SQLite's busy
//! callback is a plain function here (rusqlite takes a `fn`), so the timeout is the thread's:
//! the writer thread sets its own.

use std::cell::Cell;
use std::time::Duration;

use super::DEFAULT_BUSY_TIMEOUT;

thread_local! {
    /// Retries (of about a millisecond each) before a statement gives up with `SQLITE_BUSY`.
    static RETRIES: Cell<i32> = Cell::new(millis(DEFAULT_BUSY_TIMEOUT));
}

fn millis(d: Duration) -> i32 {
    d.as_millis().clamp(1, i32::MAX as u128) as i32
}

/// Sets how long statements run on this thread wait for a lock.
pub fn set_thread_timeout(timeout: Duration) {
    RETRIES.with(|r| r.set(millis(timeout)));
}

/// The busy handler: sleeps a millisecond and retries, until the thread's timeout.
pub fn retry_every_millisecond(retries: i32) -> bool {
    if retries >= RETRIES.with(Cell::get) {
        return false;
    }
    std::thread::sleep(Duration::from_millis(1));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_writer_gets_the_lock_within_milliseconds_of_its_release_and_gives_up_at_its_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.sqlite");
        let holder = rusqlite::Connection::open(&path).unwrap();
        holder
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x)")
            .unwrap();
        let mut waiter = rusqlite::Connection::open(&path).unwrap();
        waiter.busy_handler(Some(retry_every_millisecond)).unwrap();

        // Held for 250 ms: by then SQLite's own handler sleeps 100 ms between looks.
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let released = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(250));
            holder.execute_batch("COMMIT").unwrap();
            (Instant::now(), holder)
        });
        set_thread_timeout(Duration::from_secs(5));
        waiter.execute_batch("BEGIN IMMEDIATE").unwrap();
        let got = Instant::now();
        let (at, holder) = released.join().unwrap();
        let late = got.saturating_duration_since(at);
        assert!(
            late < Duration::from_millis(40),
            "lock taken {late:?} after its release"
        );
        waiter.execute_batch("COMMIT").unwrap();

        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        set_thread_timeout(Duration::from_millis(50));
        let asked = Instant::now();
        let err = waiter.execute_batch("BEGIN IMMEDIATE").unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy)
        );
        let waited = asked.elapsed();
        assert!(
            waited >= Duration::from_millis(50) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
    }
}
