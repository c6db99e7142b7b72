//! Every `complete_on` policy through the real store: which calls close a task, which only
//! count as attempts, which are ignored.

mod support;

use missedcalld::callbacks::CompleteOn;
use missedcalld::store::Store;
use support::store::*;

/// Runs the same five stories under `policy` (min_talk_seconds = 10) and returns, per number,
/// (status, attempts).
fn outcome(policy: CompleteOn) -> Vec<(String, String, i64)> {
    let (_dir, path) = temp_db();
    let mut s = settings(&path);
    s.rules.callbacks.complete_on = policy;
    s.rules.callbacks.min_talk_seconds = 10;
    let store = Store::open(s).expect("open");
    for call in [
        // 1: the client calls again and an agent answers.
        missed("m1", "79160000001", "2026-11-23T10:00:00Z", 9.0, &["101"]),
        inbound_answered("c1", "79160000001", "102", "2026-11-23T10:03:00Z", 30.0),
        // 2: the assignee calls back.
        missed(
            "m2",
            "79160000002",
            "2026-11-23T10:00:00Z",
            9.0,
            &["101", "102"],
        ),
        outbound(
            "c2",
            "89160000002",
            "101",
            "2026-11-23T10:04:00Z",
            true,
            30.0,
        ),
        // 3: a colleague of the assignee calls back.
        missed("m3", "79160000003", "2026-11-23T10:00:00Z", 9.0, &["101"]),
        outbound(
            "c3",
            "89160000003",
            "102",
            "2026-11-23T10:04:00Z",
            true,
            30.0,
        ),
        // 4: nobody was rung (IVR), anyone calls back.
        missed("m4", "79160000004", "2026-11-23T10:00:00Z", 9.0, &[]),
        outbound(
            "c4",
            "89160000004",
            "102",
            "2026-11-23T10:04:00Z",
            true,
            30.0,
        ),
        // 5: the assignee reaches the client for 3 s only, then does not get through.
        missed("m5", "79160000005", "2026-11-23T10:00:00Z", 9.0, &["101"]),
        outbound(
            "c5",
            "89160000005",
            "101",
            "2026-11-23T10:04:00Z",
            true,
            3.0,
        ),
        outbound(
            "c5b",
            "89160000005",
            "101",
            "2026-11-23T10:05:00Z",
            false,
            0.0,
        ),
    ] {
        store.record(call).expect("record");
    }
    store.close().expect("close");
    let c = conn(&path);
    let mut st = c
        .prepare("SELECT number, status, attempts FROM callback_tasks ORDER BY number")
        .expect("prepare");
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

fn expect(rows: &[(&str, i64)]) -> Vec<(String, String, i64)> {
    rows.iter()
        .enumerate()
        .map(|(i, (status, attempts))| {
            (
                format!("7916000000{}", i + 1),
                (*status).to_owned(),
                *attempts,
            )
        })
        .collect()
}

#[test]
fn complete_on_any() {
    assert_eq!(
        outcome(CompleteOn::Any),
        expect(&[
            ("done_on_time", 0),
            ("done_on_time", 0),
            ("done_on_time", 0),
            ("done_on_time", 0),
            ("open", 2)
        ])
    );
}

#[test]
fn complete_on_inbound() {
    assert_eq!(
        outcome(CompleteOn::Inbound),
        expect(&[
            ("done_on_time", 0),
            ("open", 1),
            ("open", 1),
            ("open", 1),
            ("open", 2)
        ])
    );
}

#[test]
fn complete_on_outbound() {
    assert_eq!(
        outcome(CompleteOn::Outbound),
        expect(&[
            ("open", 0),
            ("done_on_time", 0),
            ("done_on_time", 0),
            ("done_on_time", 0),
            ("open", 2)
        ])
    );
}

#[test]
fn complete_on_outbound_by_assignee() {
    assert_eq!(
        outcome(CompleteOn::OutboundByAssignee),
        expect(&[
            ("open", 0),
            ("done_on_time", 0),
            ("open", 1),
            ("done_on_time", 0),
            ("open", 2)
        ])
    );
}
