//! `missedcalld replay` on bad input, through the compiled binary: every input is checked before
//! anything is written, a bad one fails with a message naming it and a non-zero exit, and no
//! database file is left behind (not even a schema-only one).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn good_capture() -> PathBuf {
    root().join("ami-fixtures/lab1/02-queue-abandon.ami")
}

fn replay(db: &Path, files: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_missedcalld"))
        .arg("replay")
        .arg("--db")
        .arg(db)
        .args(files)
        .env_remove("RUST_LOG")
        .output()
        .expect("run missedcalld")
}

/// The files at `db`'s path and its SQLite side files that exist.
fn leftovers(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|s| {
            let mut p = db.as_os_str().to_owned();
            p.push(s);
            PathBuf::from(p)
        })
        .filter(|p| p.exists())
        .collect()
}

fn assert_refused(db: &Path, files: &[&Path], bad: &Path, words: &str) {
    let out = replay(db, files);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{files:?}: {stderr}");
    assert!(
        stderr.contains(&bad.display().to_string()),
        "{files:?}: the message names {}: {stderr}",
        bad.display()
    );
    assert!(
        stderr.contains(words),
        "{files:?}: expected {words:?} in {stderr}"
    );
    assert_eq!(leftovers(db), Vec::<PathBuf>::new(), "{files:?}: {stderr}");
}

#[test]
fn a_good_capture_replays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db.sqlite");
    let out = replay(&db, &[&good_capture()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.exists());
}

#[test]
fn bad_inputs_fail_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db.sqlite");
    let good = good_capture();

    let missing = dir.path().join("missing.ami");
    assert_refused(&db, &[&missing], &missing, "cannot open capture");
    assert_refused(&db, &[&good, &missing], &missing, "cannot open capture");

    let subdir = dir.path().join("captures");
    std::fs::create_dir(&subdir).expect("mkdir");
    assert_refused(&db, &[&subdir], &subdir, "is a directory");

    let ls = Path::new("/bin/ls");
    if ls.exists() {
        assert_refused(&db, &[&good, ls], ls, "not an AMI stream");
    }

    // Random bytes without NULs (a NUL alone would give it away): still no AMI message.
    let random = dir.path().join("random.ami");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..300_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x as u8).max(1)
        })
        .collect();
    std::fs::write(&random, bytes).expect("write");
    assert_refused(&db, &[&random, &good], &random, "not an AMI capture");

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "just some notes\nwith: a colon\n\nbut no event\n").expect("write");
    assert_refused(&db, &[&text], &text, "not an AMI capture");

    let empty = dir.path().join("empty.ami");
    std::fs::write(&empty, "").expect("write");
    assert_refused(&db, &[&empty], &empty, "is empty");
}

#[test]
fn a_bad_input_leaves_an_existing_database_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db.sqlite");
    let first = root().join("ami-fixtures/lab1/03-ivr-abandon.ami");
    assert!(replay(&db, &[&first]).status.success());
    let calls = |db: &Path| -> i64 {
        let conn = rusqlite::Connection::open(db).expect("open");
        conn.query_row("SELECT count(*) FROM calls", [], |r| r.get(0))
            .expect("count")
    };
    let before = calls(&db);
    let missing = dir.path().join("missing.ami");
    let out = replay(&db, &[&good_capture(), &missing]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(calls(&db), before, "good.ami's calls are not committed");
}
