//! The two-thread replay (decoding on its own thread, batches handed to the tracking thread)
//! against the single-thread reference path: on every capture in `ami-fixtures/`, one by one
//! and all in one run, the compiled binary's `missed --json` and `tasks --json` are
//! byte-identical; in-process, tiny batches (many hand-offs) give the same finished calls and
//! counts, with or without the restart journal, and a decoding error still fails the replay.

mod support;

use std::path::{Path, PathBuf};

use missedcalld::calls::{FinishedCall, TrackerConfig};
use missedcalld::pipeline::Pipeline;
use missedcalld::replay::{replay_in_batches, replay_into};
use support::cli::run_ok;

fn captures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("ami-fixtures");
    let mut out = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "ami" || x == "raw") {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 20, "captures found: {}", out.len());
    out
}

/// `missed --json` and `tasks --json` after replaying `files` into a new database.
fn outputs(dir: &Path, name: &str, single_thread: bool, files: &[PathBuf]) -> (Vec<u8>, Vec<u8>) {
    let db = dir.join(name);
    let db = db.to_str().unwrap();
    let mut args = vec!["replay", "--db", db];
    if single_thread {
        args.push("--single-thread");
    }
    let files: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    args.extend(&files);
    run_ok(&args);
    (
        run_ok(&["missed", "--db", db, "--json"]),
        run_ok(&["tasks", "--db", db, "--json"]),
    )
}

#[test]
fn pipelined_replay_writes_what_the_single_thread_path_writes() {
    let dir = tempfile::tempdir().unwrap();
    let all = captures();
    let mut missed_total = 0;
    for (i, capture) in all.iter().enumerate() {
        let one = std::slice::from_ref(capture);
        let reference = outputs(dir.path(), &format!("{i}-single.sqlite"), true, one);
        let pipelined = outputs(dir.path(), &format!("{i}-pipelined.sqlite"), false, one);
        assert_eq!(
            String::from_utf8_lossy(&pipelined.0),
            String::from_utf8_lossy(&reference.0),
            "missed --json differs for {}",
            capture.display()
        );
        assert_eq!(
            String::from_utf8_lossy(&pipelined.1),
            String::from_utf8_lossy(&reference.1),
            "tasks --json differs for {}",
            capture.display()
        );
        let missed: serde_json::Value = serde_json::from_slice(&reference.0).unwrap();
        missed_total += missed.as_array().map_or(0, Vec::len);
    }
    assert!(
        missed_total > 50,
        "the captures hold missed calls: {missed_total}"
    );
    // All captures as one stream (calls may span files; more than one batch).
    let reference = outputs(dir.path(), "all-single.sqlite", true, &all);
    let pipelined = outputs(dir.path(), "all-pipelined.sqlite", false, &all);
    assert_eq!(pipelined, reference, "the whole set differs");
}

#[test]
fn tiny_batches_give_the_same_calls_and_counts() {
    let all = captures();
    let mut single = Pipeline::new(TrackerConfig::default(), Vec::<FinishedCall>::new());
    let expected_stats = replay_into(&all, &mut single).unwrap();
    let expected = single.into_sink();
    assert!(expected.len() > 100, "calls: {}", expected.len());
    // With and without the restart journal (`replay` runs without): it changes no call.
    for (batch, journal) in [(1, true), (7, true), (300, true), (7, false), (256, false)] {
        let mut p = Pipeline::new(TrackerConfig::default(), Vec::<FinishedCall>::new());
        p.keep_journal(journal);
        let stats = replay_in_batches(&all, &mut p, batch).unwrap();
        assert_eq!(stats, expected_stats, "batch of {batch}");
        assert!(
            p.sink() == &expected,
            "batch of {batch}, journal {journal}: calls differ"
        );
    }
    assert!(expected_stats.by_name.get("Hangup").copied().unwrap_or(0) > 100);
}

#[test]
fn a_missing_file_fails_the_pipelined_replay() {
    let mut files = captures();
    files.truncate(1);
    files.push(PathBuf::from("/nonexistent/capture.ami"));
    let mut p = Pipeline::new(TrackerConfig::default(), Vec::<FinishedCall>::new());
    let err = replay_in_batches(&files, &mut p, 3).unwrap_err();
    assert!(
        format!("{err:#}").contains("/nonexistent/capture.ami"),
        "{err:#}"
    );
}
