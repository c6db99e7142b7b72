//! Task life cycle through the real store on temp SQLite files: idempotent replay, repeated
//! misses joining one task, callbacks closing on time or late, attempts, withheld callers.

mod support;

use rusqlite::Connection;
use support::store::*;

/// number, status, deadline, closed_at, closed_by_direction, closed_by_agent, closed_by_linkedid
type ClosedTask = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn task(c: &Connection, number: &str) -> (String, i64, i64, String) {
    c.query_row(
        "SELECT status, missed_count, attempts, deadline FROM callback_tasks WHERE number = ?1 ORDER BY id DESC LIMIT 1",
        [number],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .expect("task row")
}

fn day_of_calls() -> Vec<missedcalld::calls::outcome::FinishedCall> {
    vec![
        missed(
            "pbx-1.1",
            "+7 916 111-00-07",
            "2026-11-23T10:00:00Z",
            15.0,
            &["101", "102"],
        ),
        missed("pbx-1.2", "", "2026-11-23T10:00:30Z", 4.0, &[]),
        outbound(
            "pbx-1.3",
            "989161110007",
            "101",
            "2026-11-23T10:03:00Z",
            false,
            0.0,
        ),
        outbound(
            "pbx-1.4",
            "89161110007",
            "101",
            "2026-11-23T10:06:00Z",
            true,
            60.0,
        ),
        inbound_answered(
            "pbx-1.5",
            "79035550101",
            "103",
            "2026-11-23T10:07:00Z",
            90.0,
        ),
        missed(
            "pbx-1.6",
            "79035550101",
            "2026-11-23T10:08:00Z",
            30.0,
            &["103"],
        ),
    ]
}

#[test]
fn recording_the_same_calls_twice_changes_nothing() {
    let (_dir, path) = temp_db();
    let mut calls = day_of_calls();
    calls[1].withheld = true;
    record_all(&path, &calls);
    let first = dump(&conn(&path));
    assert_eq!(first.iter().filter(|r| r.starts_with("calls:")).count(), 6);

    // A second daemon run replaying the same capture...
    record_all(&path, &calls);
    assert_eq!(dump(&conn(&path)), first);

    // ...and the same calls twice within one session.
    let store = open(&path);
    for c in calls.iter().chain(calls.iter()) {
        store.record(c.clone()).expect("record");
    }
    store.flush().expect("flush");
    assert_eq!(store.stats().duplicates, 12);
    assert_eq!(store.stats().calls_written, 0);
    store.close().expect("close");
    assert_eq!(dump(&conn(&path)), first);

    let c = conn(&path);
    assert_eq!(
        task(&c, "79161110007"),
        (
            "done_on_time".into(),
            1,
            1,
            "2026-11-23T10:10:00.000Z".into()
        )
    );
    assert_eq!(task(&c, "79035550101").0, "open");
}

#[test]
fn repeated_misses_from_one_number_join_one_task() {
    let (_dir, path) = temp_db();
    record_all(
        &path,
        &[
            missed(
                "pbx-2.1",
                "+7 (916) 111-00-07",
                "2026-11-23T10:00:00Z",
                5.0,
                &[],
            ),
            missed(
                "pbx-2.2",
                "8 916 111 00 07",
                "2026-11-23T10:01:00Z",
                20.0,
                &["102", "101"],
            ),
            missed(
                "pbx-2.3",
                "79161110007",
                "2026-11-23T10:02:00Z",
                7.0,
                &["101"],
            ),
        ],
    );
    let c = conn(&path);
    assert_eq!(count(&c, "callback_tasks"), 1);
    let (status, missed_count, attempts, deadline) = task(&c, "79161110007");
    assert_eq!((status.as_str(), missed_count, attempts), ("open", 3, 0));
    // Due from the first miss, not the last.
    assert_eq!(deadline, "2026-11-23T10:10:00.000Z");
    let (first, last, assignee): (String, String, Option<String>) = c
        .query_row(
            "SELECT first_missed_at, last_missed_at, assignee FROM callback_tasks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("task");
    assert_eq!(first, "2026-11-23T10:00:00.000Z");
    assert_eq!(last, "2026-11-23T10:02:00.000Z");
    // The first miss reached no agent, so nobody is assigned.
    assert_eq!(assignee, None);

    let flags: Vec<(bool, i64)> = c
        .prepare("SELECT m.first_time_caller, m.task_id FROM missed_calls m JOIN calls c ON c.id = m.call_id ORDER BY c.ended_at")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(flags, vec![(true, 1), (false, 1), (false, 1)]);
    let events: i64 = scalar(
        &c,
        "SELECT count(*) FROM task_events WHERE kind = 'missed_joined' AND task_id = 1",
    );
    assert_eq!(events, 3);
}

#[test]
fn callbacks_close_on_time_or_late_by_the_moment_the_client_was_reached() {
    let (_dir, path) = temp_db();
    record_all(
        &path,
        &[
            // A: due 10:10, reached 10:08:30.
            missed(
                "pbx-3.1",
                "79161110001",
                "2026-11-23T10:00:00Z",
                10.0,
                &["101"],
            ),
            outbound(
                "pbx-3.2",
                "89161110001",
                "101",
                "2026-11-23T10:09:30Z",
                true,
                60.0,
            ),
            // B: due 11:10, reached 11:19:30.
            missed(
                "pbx-3.3",
                "79161110002",
                "2026-11-23T11:00:00Z",
                10.0,
                &["102"],
            ),
            outbound(
                "pbx-3.4",
                "89161110002",
                "104",
                "2026-11-23T11:20:00Z",
                true,
                30.0,
            ),
            // C: due 12:10, the call ends 12:10:30 but the client answered at 12:09:30.
            missed(
                "pbx-3.5",
                "79161110003",
                "2026-11-23T12:00:00Z",
                10.0,
                &["103"],
            ),
            outbound(
                "pbx-3.6",
                "89161110003",
                "103",
                "2026-11-23T12:10:30Z",
                true,
                60.0,
            ),
            // D: missed on Saturday, due Monday 10:00; the client calls back on Sunday.
            missed("pbx-3.7", "79161110004", "2026-11-21T15:00:00Z", 10.0, &[]),
            inbound_answered(
                "pbx-3.8",
                "+79161110004",
                "105",
                "2026-11-22T09:00:00Z",
                40.0,
            ),
        ],
    );
    let c = conn(&path);
    let rows: Vec<ClosedTask> = c
        .prepare(
            "SELECT number, status, deadline, closed_at, closed_by_direction, closed_by_agent, closed_by_linkedid
               FROM callback_tasks ORDER BY number",
        )
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    let s = |x: &str| Some(x.to_owned());
    assert_eq!(
        rows,
        vec![
            (
                "79161110001".into(),
                "done_on_time".into(),
                "2026-11-23T10:10:00.000Z".into(),
                s("2026-11-23T10:08:30.000Z"),
                s("outbound"),
                s("101"),
                s("pbx-3.2")
            ),
            (
                "79161110002".into(),
                "done_late".into(),
                "2026-11-23T11:10:00.000Z".into(),
                s("2026-11-23T11:19:30.000Z"),
                s("outbound"),
                s("104"),
                s("pbx-3.4")
            ),
            (
                "79161110003".into(),
                "done_on_time".into(),
                "2026-11-23T12:10:00.000Z".into(),
                s("2026-11-23T12:09:30.000Z"),
                s("outbound"),
                s("103"),
                s("pbx-3.6")
            ),
            (
                "79161110004".into(),
                "done_on_time".into(),
                "2026-11-23T10:00:00.000Z".into(),
                s("2026-11-22T08:59:20.000Z"),
                s("inbound"),
                s("105"),
                s("pbx-3.8")
            ),
        ]
    );
}

#[test]
fn unanswered_and_short_callbacks_count_as_attempts_and_early_calls_do_not_count() {
    let (_dir, path) = temp_db();
    let mut s = settings(&path);
    s.rules.callbacks.min_talk_seconds = 20;
    let store = missedcalld::store::Store::open(s).expect("open");
    for call in [
        missed(
            "pbx-4.1",
            "79161110007",
            "2026-11-23T10:00:00Z",
            10.0,
            &["101"],
        ),
        // Ended before the miss (emitted late): cannot close nor count.
        outbound(
            "pbx-4.0",
            "89161110007",
            "101",
            "2026-11-23T09:59:00Z",
            true,
            50.0,
        ),
        outbound(
            "pbx-4.2",
            "89161110007",
            "101",
            "2026-11-23T10:02:00Z",
            false,
            0.0,
        ),
        outbound(
            "pbx-4.3",
            "89161110007",
            "101",
            "2026-11-23T10:04:00Z",
            true,
            5.0,
        ),
    ] {
        store.record(call).expect("record");
    }
    store.flush().expect("flush");
    let c = conn(&path);
    assert_eq!(
        task(&c, "79161110007"),
        ("open".into(), 1, 2, "2026-11-23T10:10:00.000Z".into())
    );

    store
        .record(outbound(
            "pbx-4.4",
            "89161110007",
            "101",
            "2026-11-23T10:07:00Z",
            true,
            25.0,
        ))
        .expect("record");
    store.flush().expect("flush");
    assert_eq!(
        task(&c, "79161110007"),
        (
            "done_on_time".into(),
            1,
            2,
            "2026-11-23T10:10:00.000Z".into()
        )
    );

    // A later miss opens a new task: the closed one is never reopened.
    store
        .record(missed(
            "pbx-4.5",
            "79161110007",
            "2026-11-23T15:00:00Z",
            10.0,
            &["102"],
        ))
        .expect("record");
    store.close().expect("close");
    assert_eq!(count(&c, "callback_tasks"), 2);
    assert_eq!(
        task(&c, "79161110007"),
        ("open".into(), 1, 0, "2026-11-23T15:10:00.000Z".into())
    );
    let kinds: Vec<String> = column(
        &c,
        "SELECT kind FROM task_events WHERE task_id = 1 ORDER BY at",
    );
    assert_eq!(kinds, ["missed_joined", "attempt", "attempt", "closed"]);
}

#[test]
fn withheld_callers_are_recorded_and_flagged_without_a_task() {
    let (_dir, path) = temp_db();
    let mut hidden = missed("pbx-5.1", "", "2026-11-23T10:00:00Z", 12.0, &["101"]);
    hidden.withheld = true;
    let anonymous = missed("pbx-5.2", "anonymous", "2026-11-23T10:05:00Z", 3.0, &[]);
    record_all(&path, &[hidden, anonymous]);
    let c = conn(&path);
    assert_eq!(count(&c, "callback_tasks"), 0);
    let rows: Vec<(bool, Option<i64>, bool, Option<String>)> = c
        .prepare(
            "SELECT m.withheld, m.task_id, m.first_time_caller, c.number_normalized
               FROM missed_calls m JOIN calls c ON c.id = m.call_id ORDER BY c.id",
        )
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(
        rows,
        vec![(true, None, false, None), (true, None, false, None)]
    );
}

#[test]
fn first_time_caller_looks_at_calls_in_both_directions() {
    let (_dir, path) = temp_db();
    record_all(
        &path,
        &[
            outbound(
                "pbx-6.1",
                "89035550199",
                "101",
                "2026-11-20T10:00:00Z",
                true,
                30.0,
            ),
            missed("pbx-6.2", "+79035550199", "2026-11-23T10:00:00Z", 10.0, &[]),
            missed("pbx-6.3", "+79035550200", "2026-11-23T10:01:00Z", 10.0, &[]),
        ],
    );
    let c = conn(&path);
    let flags: Vec<bool> = column(&c, "SELECT first_time_caller FROM missed_calls ORDER BY id");
    assert_eq!(flags, [false, true]);
}

#[test]
fn meta_records_the_calendar_timezone() {
    let (_dir, path) = temp_db();
    let mut s = settings(&path);
    s.rules.calendar =
        missedcalld::callbacks::sla::Calendar::new(&missedcalld::callbacks::sla::CalendarConfig {
            timezone: "Europe/Moscow".into(),
            ..Default::default()
        })
        .expect("calendar");
    // 10:00 MSK on a Monday is in hours: due 10:10 MSK.
    let store = missedcalld::store::Store::open(s).expect("open");
    store
        .record(missed(
            "pbx-7.1",
            "79161110007",
            "2026-11-23T07:00:00Z",
            10.0,
            &[],
        ))
        .expect("record");
    store.close().expect("close");
    let c = conn(&path);
    let tz: String = scalar(&c, "SELECT value FROM meta WHERE key = 'calendar_timezone'");
    assert_eq!(tz, "Europe/Moscow");
    assert_eq!(task(&c, "79161110007").3, "2026-11-23T07:10:00.000Z");
}

#[test]
fn a_conversation_that_began_before_the_miss_does_not_close_it() {
    // The same client on two lines: one call answered at 09:58, still talking when the other
    // call is missed at 10:00; it ends at 10:03 but is no callback for the miss.
    let (_dir, path) = temp_db();
    record_all(
        &path,
        &[
            missed(
                "pbx-8.1",
                "79161110007",
                "2026-11-23T10:00:00Z",
                20.0,
                &["101"],
            ),
            inbound_answered(
                "pbx-8.2",
                "79161110007",
                "102",
                "2026-11-23T10:03:00Z",
                300.0,
            ),
        ],
    );
    let c = conn(&path);
    assert_eq!(
        task(&c, "79161110007"),
        ("open".into(), 1, 0, "2026-11-23T10:10:00.000Z".into())
    );
    // A real callback afterwards still closes it.
    record_all(
        &path,
        &[outbound(
            "pbx-8.3",
            "89161110007",
            "101",
            "2026-11-23T10:06:00Z",
            true,
            30.0,
        )],
    );
    assert_eq!(task(&c, "79161110007").0, "done_on_time");
}

#[test]
fn new_rules_apply_to_calls_recorded_after_them_without_reopening() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    // Monday 10:00 inside working hours: due after sla_minutes.
    store
        .record(missed(
            "r1",
            "79160000001",
            "2026-11-23T10:00:00Z",
            9.0,
            &["101"],
        ))
        .expect("record");
    let mut rules = settings(&path).rules;
    rules.callbacks.sla_minutes = 45;
    store.set_rules(rules).expect("set rules");
    store
        .record(missed(
            "r2",
            "79160000002",
            "2026-11-23T10:00:00Z",
            9.0,
            &["101"],
        ))
        .expect("record");
    store.flush().expect("flush");
    let c = conn(&path);
    assert_eq!(
        column::<String>(&c, "SELECT deadline FROM callback_tasks ORDER BY number"),
        ["2026-11-23T10:10:00.000Z", "2026-11-23T10:45:00.000Z"]
    );
    store.close().expect("close");
}
