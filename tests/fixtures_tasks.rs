//! Callback tasks from real captures: the lab recordings replayed through the real pipeline
//! (codec, tracker) into the store, checked task by task.

mod support;

use std::path::{Path, PathBuf};

use missedcalld::callbacks::sla::{Calendar, CalendarConfig, HoursConfig};
use missedcalld::calls::TrackerConfig;
use missedcalld::output;
use missedcalld::pipeline::Pipeline;
use missedcalld::replay::replay_into;
use missedcalld::store::{Store, StoreSettings};
use serde_json::Value;
use support::store::*;

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ami-fixtures")
        .join(name)
}

fn replay(settings: StoreSettings, files: &[PathBuf]) {
    let store = Store::open(settings).expect("open store");
    let mut pipeline = Pipeline::new(TrackerConfig::default(), store);
    replay_into(files, &mut pipeline).expect("replay");
    pipeline.into_sink().close().expect("close store");
}

fn tasks_json(path: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    output::tasks_at(path, None, true, at("2026-11-22T23:00:00Z"), &mut out).expect("tasks");
    match serde_json::from_slice(&out).expect("json") {
        Value::Array(a) => a,
        other => panic!("not an array: {other}"),
    }
}

fn settings_with(path: &Path, f: impl FnOnce(&mut StoreSettings)) -> StoreSettings {
    let mut s = settings(path);
    f(&mut s);
    s
}

/// Sunday open all day (the lab captures were recorded on Sunday 2026-11-22, UTC).
fn open_on_sunday() -> Calendar {
    Calendar::new(&CalendarConfig {
        hours: HoursConfig {
            sun: "00:00-24:00".into(),
            ..HoursConfig::default()
        },
        ..CalendarConfig::default()
    })
    .expect("calendar")
}

fn one_task(path: &Path) -> Value {
    let tasks = tasks_json(path);
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    tasks.into_iter().next().unwrap_or_default()
}

#[test]
fn lab_callbacks_close_their_tasks_by_the_dialling_agent() {
    for (name, number, callback) in [
        (
            "lab1/07-missed-then-callback-answered.ami",
            "79161110007",
            "1795374990.90",
        ),
        (
            "lab2/07-missed-then-agent-callback-answered.ami",
            "79161234567",
            "lab-pbx-1795376933.66",
        ),
    ] {
        let (_d, path) = temp_db();
        replay(settings(&path), &[capture(name)]);
        let t = one_task(&path);
        assert_eq!(t["number"], number, "{name}");
        assert_eq!(t["status"], "done_on_time", "{name}");
        assert_eq!(t["missed_count"], 1, "{name}");
        assert_eq!(t["assignee"], "101", "{name}");
        assert_eq!(t["attempts"], 0, "{name}");
        // Missed on a Sunday evening: due Monday 10:00 with the default calendar.
        assert_eq!(t["deadline"], "2026-11-23T10:00:00.000Z", "{name}");
        assert_eq!(t["closed_by"]["direction"], "outbound", "{name}");
        assert_eq!(t["closed_by"]["agent"], "101", "{name}");
        assert_eq!(t["closed_by"]["linkedid"], callback, "{name}");
        // The agent dialled the national form; matching went through normalization.
        let dialled: String = conn(&path)
            .query_row(
                "SELECT number FROM calls WHERE linkedid = ?1",
                [callback],
                |r| r.get(0),
            )
            .expect("callback call");
        assert!(
            dialled.starts_with('8') && dialled[1..] == number[1..],
            "{name}: {dialled}"
        );
    }
}

#[test]
fn lab_deadlines_follow_the_calendar_and_sla() {
    let name = "lab1/07-missed-then-callback-answered.ami";
    // Open on Sunday with a 10-minute SLA: due 10 minutes after the miss, called back in 9 s.
    let (_d, path) = temp_db();
    replay(
        settings_with(&path, |s| s.rules.calendar = open_on_sunday()),
        &[capture(name)],
    );
    let t = one_task(&path);
    assert_eq!(t["first_missed_at"], "2026-11-22T19:16:25.290Z");
    assert_eq!(t["deadline"], "2026-11-22T19:26:25.290Z");
    assert_eq!(t["status"], "done_on_time");
    assert_eq!(t["closed_at"], "2026-11-22T19:16:34.330Z");

    // A zero-minute SLA makes the same callback late.
    let (_d, path) = temp_db();
    replay(
        settings_with(&path, |s| {
            s.rules.calendar = open_on_sunday();
            s.rules.callbacks.sla_minutes = 0;
        }),
        &[capture(name)],
    );
    let t = one_task(&path);
    assert_eq!(t["deadline"], "2026-11-22T19:16:25.290Z");
    assert_eq!(t["status"], "done_late");
}

#[test]
fn lab_callback_under_complete_on_inbound_is_only_an_attempt() {
    let (_d, path) = temp_db();
    replay(
        settings_with(&path, |s| {
            s.rules.callbacks.complete_on = missedcalld::callbacks::CompleteOn::Inbound;
        }),
        &[capture("lab1/07-missed-then-callback-answered.ami")],
    );
    let t = one_task(&path);
    assert_eq!(t["status"], "open");
    assert_eq!(t["attempts"], 1);
    assert_eq!(t["closed_by"], Value::Null);
}

#[test]
fn lab_repeated_misses_make_one_task() {
    let (_d, path) = temp_db();
    replay(
        settings(&path),
        &[capture("lab1/10-repeat-missed-same-number.ami")],
    );
    let t = one_task(&path);
    assert_eq!(t["number"], "79161110010");
    assert_eq!(t["missed_count"], 3);
    assert_eq!(t["status"], "open");
    assert_eq!(t["first_missed_at"], "2026-11-22T19:18:59.969Z");
    assert_eq!(t["last_missed_at"], "2026-11-22T19:19:29.969Z");
    let c = conn(&path);
    let flags: Vec<bool> = column(&c, "SELECT first_time_caller FROM missed_calls ORDER BY id");
    assert_eq!(flags, [true, false, false]);
}

#[test]
fn replaying_every_lab_capture_twice_changes_nothing() {
    let mut files: Vec<PathBuf> = Vec::new();
    for lab in ["lab1", "lab2"] {
        let mut names: Vec<PathBuf> = std::fs::read_dir(capture(lab))
            .expect("fixture dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "ami"))
            .collect();
        names.sort();
        files.extend(names);
    }
    assert!(files.len() >= 18, "{files:?}");
    let (_d, path) = temp_db();
    replay(settings(&path), &files);
    let first = dump(&conn(&path));
    let c = conn(&path);
    assert_eq!(tasks_with_wrong_missed_count(&c), 0);
    assert!(
        count(&c, "callback_tasks") >= 10,
        "{}",
        count(&c, "callback_tasks")
    );
    replay(settings(&path), &files);
    assert_eq!(dump(&conn(&path)), first);
}
