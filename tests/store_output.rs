//! The read-side CLI output (SPEC section 8) over a real database written by the store.

mod support;

use missedcalld::callbacks::ShownStatus;
use missedcalld::callbacks::sla::{Calendar, CalendarConfig};
use missedcalld::output::{self, ReportFormat};
use missedcalld::store::{Store, StoreSettings};
use serde_json::{Value, json};
use support::store::*;

/// A small day: two misses from one number (one called back on time), a withheld miss,
/// an answered call, an overdue task, a late callback.
fn fixture(tz: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, path) = temp_db();
    let mut s = settings(&path);
    s.rules.calendar = Calendar::new(&CalendarConfig {
        timezone: tz.into(),
        ..CalendarConfig::default()
    })
    .expect("calendar");
    let store = Store::open(s).expect("open");
    let mut hidden = missed("L-3", "", "2026-11-23T10:30:00Z", 6.0, &["103"]);
    hidden.withheld = true;
    hidden.queue = None;
    hidden.did = Some("74957654321".into());
    // A named queue member and a follow-me to a mobile that failed (schema 3).
    let mut named = missed(
        "L-1",
        "+7 916 111-00-07",
        "2026-11-23T10:00:00Z",
        18.25,
        &["101", "102"],
    );
    named.attempts[0].name = Some("Anna Smith".into());
    named.forwards.push(missedcalld::calls::Forward {
        number: "79169990000".into(),
        ring_start: named.attempts[0].ring_start.plus_secs(10),
        ring_seconds: 2.5,
        outcome: missedcalld::calls::ForwardOutcome::Congestion,
    });
    let mut answered = inbound_answered("L-4", "79035550101", "102", "2026-11-23T11:00:00Z", 120.0);
    answered.queue = Some("support".into());
    for c in [
        named,
        missed("L-2", "89161110007", "2026-11-23T10:05:00Z", 4.5, &[]),
        outbound(
            "L-2b",
            "89161110007",
            "101",
            "2026-11-23T10:06:00Z",
            false,
            0.0,
        ),
        hidden,
        outbound(
            "L-5",
            "89161110007",
            "101",
            "2026-11-23T10:09:00Z",
            true,
            60.0,
        ),
        answered,
        missed("L-6", "79035550202", "2026-11-23T12:00:00Z", 30.0, &["102"]),
        missed("L-7", "79035550303", "2026-11-24T09:00:00Z", 10.0, &["101"]),
        outbound(
            "L-8",
            "89035550303",
            "104",
            "2026-11-24T09:30:00Z",
            true,
            30.0,
        ),
    ] {
        store.record(c).expect("record");
    }
    store.close().expect("close");
    (dir, path)
}

fn run(f: impl FnOnce(&mut Vec<u8>) -> anyhow::Result<()>) -> String {
    let mut out = Vec::new();
    f(&mut out).expect("command");
    String::from_utf8(out).expect("utf8")
}

#[test]
fn missed_json_has_the_contract_fields() {
    let (_d, path) = fixture("UTC");
    let v: Value = serde_json::from_str(&run(|o| output::missed(&path, None, None, true, o)))
        .expect("one JSON array");
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), 5);
    assert_eq!(
        arr[0],
        json!({
            "linkedid": "L-1",
            "caller": "+7 916 111-00-07",
            "caller_name": "Client",
            "did": "74951234567",
            "queue": "sales",
            "started_at": "2026-11-23T09:59:41.750Z",
            "ended_at": "2026-11-23T10:00:00.000Z",
            "wait_seconds": 18.25,
            "loss_reason": "ringing",
            "voicemail": false,
            "first_time_caller": true,
            "withheld": false,
            "gap": false,
            "gap_started_at": null,
            "gap_ended_at": null,
            "agents": [
                {"agent": "101", "name": "Anna Smith", "ring_start": "2026-11-23T09:59:43.750Z", "ring_seconds": 10.0, "outcome": "caller_hung_up"},
                {"agent": "102", "name": null, "ring_start": "2026-11-23T09:59:43.750Z", "ring_seconds": 10.0, "outcome": "caller_hung_up"},
            ],
            "forwards": [
                {"number": "79169990000", "ring_start": "2026-11-23T09:59:53.750Z", "ring_seconds": 2.5, "outcome": "congestion"},
            ],
            "task_id": 1,
        })
    );
    assert_eq!(arr[1]["task_id"], 1);
    assert_eq!(arr[1]["first_time_caller"], false);
    assert_eq!(arr[1]["loss_reason"], "ivr");
    let hidden = &arr[2];
    assert_eq!(
        (hidden["linkedid"].as_str(), hidden["caller"].as_str()),
        (Some("L-3"), Some(""))
    );
    assert_eq!(hidden["withheld"], true);
    assert_eq!(hidden["task_id"], Value::Null);
    assert_eq!(hidden["queue"], Value::Null);

    // Ranges: RFC 3339 and dates, half-open on ended_at.
    let only = |since: Option<&str>, until: Option<&str>| -> Vec<String> {
        let v: Value = serde_json::from_str(&run(|o| output::missed(&path, since, until, true, o)))
            .expect("json");
        v.as_array()
            .expect("array")
            .iter()
            .map(|m| m["linkedid"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(only(Some("2026-11-24"), None), ["L-7"]);
    assert_eq!(only(None, Some("2026-11-23")), ["L-1", "L-2", "L-3", "L-6"]);
    assert_eq!(
        only(Some("2026-11-23T10:05:00Z"), Some("2026-11-23T12:00:00Z")),
        ["L-2", "L-3"]
    );
    let mut out = Vec::new();
    let err = output::missed(&path, Some("last tuesday"), None, true, &mut out).unwrap_err();
    assert!(
        err.to_string().contains("--since \"last tuesday\""),
        "{err}"
    );
}

#[test]
fn tasks_json_computes_overdue_against_now() {
    let (_d, path) = fixture("UTC");
    let now = at("2026-11-23T12:05:00Z");
    let v: Value =
        serde_json::from_str(&run(|o| output::tasks_at(&path, None, true, now, o))).expect("json");
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), 3);
    assert_eq!(
        arr[0],
        json!({
            "id": 1,
            "number": "79161110007",
            "status": "done_on_time",
            "missed_count": 2,
            "first_missed_at": "2026-11-23T10:00:00.000Z",
            "last_missed_at": "2026-11-23T10:05:00.000Z",
            "deadline": "2026-11-23T10:10:00.000Z",
            "closed_at": "2026-11-23T10:08:00.000Z",
            "closed_by": {"direction": "outbound", "agent": "101", "linkedid": "L-5"},
            "attempts": 1,
            "assignee": "101",
        })
    );
    // Task 2 is due 12:10: open at 12:05, overdue at 12:10:00.001.
    assert_eq!(arr[1]["status"], "open");
    assert_eq!(arr[1]["closed_by"], Value::Null);
    let later = at("2026-11-23T12:10:00.001Z");
    let v: Value = serde_json::from_str(&run(|o| {
        output::tasks_at(&path, Some(ShownStatus::Overdue), true, later, o)
    }))
    .expect("json");
    assert_eq!(
        v.as_array()
            .map(|a| a.iter().map(|t| t["id"].clone()).collect::<Vec<_>>()),
        Some(vec![json!(2)])
    );
    // Task 3 missed 09:00 (in hours), reached 09:29:30, due 09:10: late.
    assert_eq!(arr[2]["status"], "done_late");
    let v: Value = serde_json::from_str(&run(|o| {
        output::tasks_at(&path, Some(ShownStatus::DoneLate), true, later, o)
    }))
    .expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(1));

    let text = run(|o| output::tasks_at(&path, None, false, now, o));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("ID  NUMBER       STATUS"), "{text}");
    assert!(lines[1].contains("79161110007  done_on_time"), "{text}");
    assert_eq!(lines.last().copied(), Some("3 task(s); times in UTC"));
}

#[test]
fn report_json_totals_breakdowns_and_heatmap() {
    let (_d, path) = fixture("Europe/Moscow");
    let v: Value = serde_json::from_str(&run(|o| {
        output::report(
            &path,
            Some("2026-11-23"),
            Some("2026-11-23"),
            "agent",
            ReportFormat::Json,
            o,
        )
    }))
    .expect("json object");
    // 2026-11-23 in Moscow: calls L-1..L-6 (L-7 is on the 24th).
    assert_eq!(v["timezone"], "Europe/Moscow");
    assert_eq!(v["inbound"], 5);
    assert_eq!(v["answered"], 1);
    assert_eq!(v["missed"], 4);
    assert_eq!(v["callback_on_time"], 1);
    assert_eq!(v["callback_late"], 0);
    assert_eq!(v["callback_never"], 1);
    assert_eq!(v["avg_wait_missed_seconds"], json!(14.688));
    let by: Vec<(String, u64, u64, u64)> = v["by"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap_or("").to_owned(),
                r["inbound"].as_u64().unwrap_or(99),
                r["answered"].as_u64().unwrap_or(99),
                r["missed"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    assert_eq!(
        by,
        [
            ("(none)".into(), 1, 0, 1),
            ("101".into(), 1, 0, 1),
            ("102".into(), 3, 1, 2),
            ("103".into(), 1, 0, 1),
        ]
    );
    let heat = v["heatmap"].as_array().expect("heatmap");
    assert_eq!(heat.len(), 7);
    assert!(
        heat.iter()
            .all(|row| row.as_array().map(Vec::len) == Some(24))
    );
    // Monday, Moscow time: misses came in at 12:59, 13:04, 13:29 and 14:59.
    assert_eq!(heat[0][12], 1);
    assert_eq!(heat[0][13], 2);
    assert_eq!(heat[0][14], 1);
    let total: u64 = heat
        .iter()
        .flat_map(|r| r.as_array().into_iter().flatten())
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(total, 4);
}

#[test]
fn report_csv_and_text() {
    let (_d, path) = fixture("UTC");
    let csv = run(|o| output::report(&path, None, None, "day", ReportFormat::Csv, o));
    assert_eq!(
        csv,
        "day,inbound,answered,missed,missed_rate,short_abandons,callback_on_time,callback_late,\
         callback_never,callback_open,callback_delay_p50_seconds,callback_delay_p90_seconds,\
         avg_wait_missed_seconds,max_wait_missed_seconds\n\
         2026-11-23,5,1,4,0.8,0,1,0,1,0,480,480,14.688,30\n\
         2026-11-24,1,0,1,1,0,0,1,0,0,1770,1770,10,10\n\
         (total),6,1,5,0.8333,0,1,1,1,0,480,1770,13.75,30\n"
    );
    let csv = run(|o| output::report(&path, None, None, "did", ReportFormat::Csv, o));
    assert!(
        csv.contains("\n74957654321,1,0,1,1,0,0,0,0,0,,,6,6\n"),
        "{csv}"
    );
    let text = run(|o| output::report(&path, None, None, "queue", ReportFormat::Text, o));
    assert!(
        text.starts_with("Report 2026-11-23 .. 2026-11-24 (UTC), by queue\n"),
        "{text}"
    );
    assert!(
        text.contains("inbound 6  answered 1  missed 5 (83.3%)\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "callbacks: on time 1, late 1, never 1, open 0  delay p50 480.0 s, p90 1770.0 s"
        ),
        "{text}"
    );
    assert!(
        text.contains("Missed calls by weekday and hour (UTC)"),
        "{text}"
    );
    // Not a terminal: plain digits, no colour codes.
    assert!(!text.contains('\x1b'), "{text}");
    assert!(text.lines().any(|l| l.starts_with("support ")), "{text}");
    let mut out = Vec::new();
    let err = output::report(&path, None, None, "week", ReportFormat::Text, &mut out).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--by \"week\": expected one of day, month, queue, agent, did"
    );
}

#[test]
fn a_gap_call_reports_its_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gap.sqlite");
    let store = Store::open(StoreSettings::new(path.clone())).expect("open");
    let mut call = missed("G-1", "79161110101", "2026-11-23T10:00:08Z", 8.0, &["101"]);
    call.gap = true;
    call.gap_window = Some(missedcalld::calls::GapWindow::new(
        call.ended_at,
        call.ended_at.plus_secs(6),
    ));
    store.record(call).expect("record");
    store.close().expect("close");
    let v: Value =
        serde_json::from_str(&run(|o| output::missed(&path, None, None, true, o))).expect("json");
    let m = &v[0];
    assert_eq!(m["gap"], true);
    assert_eq!(m["ended_at"], "2026-11-23T10:00:08.000Z");
    assert_eq!(m["gap_started_at"], "2026-11-23T10:00:08.000Z");
    assert_eq!(m["gap_ended_at"], "2026-11-23T10:00:14.000Z");
    // Other programs read the same window from the view.
    let conn = rusqlite::Connection::open(&path).expect("open");
    let window: (i64, String, String) = conn
        .query_row(
            "SELECT gap, gap_started_at, gap_ended_at FROM v_missed_with_agents",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("the view shows the window");
    assert_eq!(
        window,
        (
            1,
            "2026-11-23T10:00:08.000Z".to_string(),
            "2026-11-23T10:00:14.000Z".to_string()
        )
    );
}
