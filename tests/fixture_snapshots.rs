//! Byte-for-byte safety net: every capture in `ami-fixtures/` is replayed into a fresh SQLite
//! file and the exact `missed --json` and `tasks --json` output is compared with the snapshot
//! files in `tests/snapshots/` (`<lab>-<capture>.missed.json`, `.tasks.json`).
//!
//! `overdue` depends on the time of reading, so tasks are rendered as of the fixed instant
//! [`NOW`]: the comparison is deterministic.
//!
//! A change that alters the output on purpose (a tracker fix, a new capture) re-blesses the
//! snapshots with `UPDATE_SNAPSHOTS=1 cargo test --test fixture_snapshots`; review the diff of
//! `tests/snapshots/` before committing it.

use std::path::{Path, PathBuf};

use missedcalld::config::Config;
use missedcalld::output;
use missedcalld::pipeline::Pipeline;
use missedcalld::replay::replay_into;
use missedcalld::store::Store;
use missedcalld::time::EventTime;

/// The reading time for `tasks --json`: 2026-11-22T12:00:00Z, inside the recorded lab days.
const NOW: EventTime = EventTime(1_795_348_800_000_000);

fn captures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("ami-fixtures");
    let mut out = Vec::new();
    for lab in std::fs::read_dir(&root).expect("ami-fixtures/").flatten() {
        if !lab.path().is_dir() {
            continue;
        }
        for e in std::fs::read_dir(lab.path()).expect("lab dir").flatten() {
            let p = e.path();
            let capture = p.extension().is_some_and(|x| x == "ami" || x == "raw");
            if capture && p.with_extension("expect.json").exists() {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `<lab>-<file name>`, e.g. `lab1-02-queue-abandon.ami`.
fn snapshot_name(capture: &Path) -> String {
    let lab = capture
        .parent()
        .and_then(Path::file_name)
        .expect("lab")
        .to_string_lossy();
    let file = capture.file_name().expect("file").to_string_lossy();
    format!("{lab}-{file}")
}

/// Replays one capture with the default configuration (what `missedcalld replay` does).
fn replay(capture: &Path, db: &Path) {
    let cfg = Config::default();
    let mut settings = missedcalld::daemon::store_settings(&cfg).expect("default settings");
    settings.path = db.to_path_buf();
    let store = Store::open(settings).expect("open store");
    let mut pipeline = Pipeline::new(cfg.calls.clone(), store);
    replay_into(&[capture.to_path_buf()], &mut pipeline).expect("replay");
    pipeline.into_sink().close().expect("commit");
}

/// Compares `got` with the snapshot file, or writes it under `UPDATE_SNAPSHOTS=1`.
fn compare(file: &Path, got: &str, failures: &mut Vec<String>) {
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(file, got).expect("write snapshot");
        return;
    }
    match std::fs::read_to_string(file) {
        Ok(want) if want == got => {}
        Ok(want) => {
            let line = want
                .lines()
                .zip(got.lines())
                .position(|(a, b)| a != b)
                .map_or(want.lines().count().min(got.lines().count()), |n| n);
            failures.push(format!(
                "{}: differs from line {}: want {:?}, got {:?}",
                file.display(),
                line + 1,
                want.lines().nth(line).unwrap_or("<end>"),
                got.lines().nth(line).unwrap_or("<end>"),
            ));
        }
        Err(_) => failures.push(format!("{}: no snapshot", file.display())),
    }
}

#[test]
fn every_capture_renders_exactly_its_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    std::fs::create_dir_all(&snapshots).expect("snapshot dir");
    let all = captures();
    assert!(all.len() >= 33, "captures not found: {all:?}");
    let mut failures = Vec::new();
    for capture in &all {
        let name = snapshot_name(capture);
        let db = dir.path().join(format!("{name}.sqlite"));
        replay(capture, &db);
        let mut missed = Vec::new();
        output::missed(&db, None, None, true, &mut missed).expect("missed --json");
        let mut tasks = Vec::new();
        output::tasks_at(&db, None, true, NOW, &mut tasks).expect("tasks --json");
        for (kind, bytes) in [("missed", missed), ("tasks", tasks)] {
            let text = String::from_utf8(bytes).expect("utf-8 json");
            compare(
                &snapshots.join(format!("{name}.{kind}.json")),
                &text,
                &mut failures,
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} snapshot(s) differ (re-bless with UPDATE_SNAPSHOTS=1 if intended):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
