//! `report` against replays whose truth is known: the lab captures (their `expect.json` files
//! say what really happened) and the same captures shifted in time (a callback moved past its
//! deadline, calls across a month boundary, a DST night, a timezone 14 hours from UTC). Also
//! checks that the `v_daily_sla` view equals `report --by day --json`.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use missedcalld::callbacks::sla::{Calendar, CalendarConfig, HoursConfig};
use missedcalld::calls::TrackerConfig;
use missedcalld::pipeline::Pipeline;
use missedcalld::replay::replay_into;
use missedcalld::report::{self, ReportBy, ReportFormat, Request};
use missedcalld::store::{Store, StoreSettings};
use missedcalld::time::EventTime;
use serde_json::Value;
use support::store::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ami-fixtures")
        .join(name)
}

fn calendar(tz: &str, open_sunday: bool) -> Calendar {
    let mut hours = HoursConfig::default();
    if open_sunday {
        hours.sun = "00:00-24:00".into();
    }
    Calendar::new(&CalendarConfig {
        timezone: tz.into(),
        hours,
        ..CalendarConfig::default()
    })
    .expect("calendar")
}

fn replay(settings: StoreSettings, files: &[PathBuf]) {
    let store = Store::open(settings).expect("open store");
    let mut pipeline = Pipeline::new(TrackerConfig::default(), store);
    replay_into(files, &mut pipeline).expect("replay");
    pipeline.into_sink().close().expect("close store");
}

/// `report --json` judged at `now`.
fn report_json(db: &Path, by: ReportBy, now: EventTime) -> Value {
    report_between(db, None, None, by, now)
}

fn report_between(
    db: &Path,
    since: Option<&str>,
    until: Option<&str>,
    by: ReportBy,
    now: EventTime,
) -> Value {
    let mut out = Vec::new();
    let req = Request {
        since,
        until,
        by,
        format: ReportFormat::Json,
        now,
        tty: false,
    };
    report::run(db, &req, &mut out).expect("report");
    serde_json::from_slice(&out).expect("report json")
}

/// The row of `by` with `key`.
fn row<'a>(v: &'a Value, key: &str) -> &'a Value {
    v["by"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["key"] == key))
        .unwrap_or_else(|| panic!("no row {key:?} in {}", v["by"]))
}

fn keys(v: &Value) -> Vec<String> {
    v["by"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| r["key"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: {a} vs {b}");
}

/// Rewrites a raw AMI capture: `Timestamp`s and the epoch part of call ids move by `secs`, for
/// every message, or (`from`: a Linkedid) for the messages from the first one naming that
/// call on: "the callback happened later". Shifted ids keep copies of one capture apart in one
/// database (as `amplify-capture.py` does).
fn shift(raw: &[u8], secs: i64, from: Option<&str>) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::new();
    let mut started = from.is_none();
    for (i, block) in text.split("\r\n\r\n").enumerate() {
        if i > 0 {
            out.push_str("\r\n\r\n");
        }
        if let Some(id) = from {
            started |= block.lines().any(|l| l == format!("Linkedid: {id}"));
        }
        if !started {
            out.push_str(block);
            continue;
        }
        let lines: Vec<String> = block
            .split("\r\n")
            .map(|l| match l.split_once(": ") {
                Some(("Timestamp", v)) => match v.parse::<f64>() {
                    Ok(t) => format!("Timestamp: {:.6}", t + secs as f64),
                    Err(_) => l.to_owned(),
                },
                Some((k, v))
                    if from.is_none() && (k.ends_with("niqueid") || k.ends_with("inkedid")) =>
                {
                    format!("{k}: {}", shift_id(v, secs))
                }
                _ => l.to_owned(),
            })
            .collect();
        out.push_str(&lines.join("\r\n"));
    }
    out.into_bytes()
}

/// `1795374990.90` -> epoch part + secs; a prefix (`lab-pbx-`) is kept.
fn shift_id(v: &str, secs: i64) -> String {
    let Some((head, tail)) = v.rsplit_once('.') else {
        return v.to_owned();
    };
    let digits = head.len() - head.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (prefix, epoch) = head.split_at(head.len() - digits);
    match epoch.parse::<i64>() {
        Ok(e) => format!("{prefix}{}.{tail}", e + secs),
        Err(_) => v.to_owned(),
    }
}

/// The first `Timestamp` of a capture.
fn first_timestamp(raw: &[u8]) -> f64 {
    String::from_utf8_lossy(raw)
        .lines()
        .find_map(|l| l.strip_prefix("Timestamp: ")?.parse().ok())
        .expect("a timestamp")
}

/// A copy of `capture` whose first event is at `start` (RFC 3339), written into `dir`.
fn moved_copy(dir: &Path, capture: &str, start: &str) -> PathBuf {
    let raw = std::fs::read(fixture(capture)).expect("capture");
    let secs = (at(start).as_secs_f64() - first_timestamp(&raw)).round() as i64;
    let path = dir.join(format!("{}-{secs}.ami", capture.replace('/', "-")));
    std::fs::write(&path, shift(&raw, secs, None)).expect("write shifted capture");
    path
}

/// What a set of `expect.json` files says the report must show.
#[derive(Debug, Default)]
struct Truth {
    inbound: u64,
    answered: u64,
    missed: u64,
    waits: Vec<f64>,
    reasons: BTreeMap<String, u64>,
    missed_by_did: BTreeMap<String, u64>,
    missed_rung_by_agent: BTreeMap<String, u64>,
    on_time: u64,
    still_open: u64,
}

impl Truth {
    /// Adds what one `expect.json` says.
    fn add(&mut self, e: &Value) {
        let missed = e["missed"].as_array().expect("missed");
        match e["calls"].as_array() {
            // Lab 2 lists every inbound call.
            Some(calls) => {
                self.inbound += calls.len() as u64;
                self.answered += calls.iter().filter(|c| c["answered"] == true).count() as u64;
            }
            // Lab 1: the missed calls and the callers answered.
            None => {
                let answered = e["not_missed_callers"].as_array().map_or(0, Vec::len) as u64;
                self.inbound += missed.len() as u64 + answered;
                self.answered += answered;
            }
        }
        for m in missed {
            self.missed += 1;
            self.waits.push(num(&m["wait_seconds"]));
            *self
                .reasons
                .entry(m["loss_reason"].as_str().expect("reason").to_owned())
                .or_default() += 1;
            *self
                .missed_by_did
                .entry(m["did"].as_str().unwrap_or("(none)").to_owned())
                .or_default() += 1;
            let mut rung: Vec<&str> = m["agents"]
                .as_array()
                .expect("agents")
                .iter()
                .filter_map(|a| a["agent"].as_str())
                .collect();
            rung.sort();
            rung.dedup();
            for a in rung {
                *self.missed_rung_by_agent.entry(a.to_owned()).or_default() += 1;
            }
        }
        for task in e["tasks"].as_array().into_iter().flatten() {
            let statuses = task["status"].to_string();
            if statuses.contains("done_on_time") {
                self.on_time += 1;
            } else if statuses.contains("open") {
                self.still_open += 1;
            }
        }
    }
}

/// The truth and the captures of every `expect.json` in `dir` that lists its tasks.
fn truth(dir: &str) -> (Truth, Vec<PathBuf>) {
    let mut t = Truth::default();
    let mut files = Vec::new();
    let mut expects: Vec<PathBuf> = std::fs::read_dir(fixture(dir))
        .expect("fixture dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".expect.json"))
        .collect();
    expects.sort();
    for path in expects {
        let e: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        // Without a task list (lab1/13-concurrent-mix) the callback truth is unknown.
        if e.get("tasks").is_none() {
            continue;
        }
        for c in e["captures"].as_array().expect("captures") {
            files.push(fixture(dir).join(c.as_str().expect("name")));
        }
        t.add(&e);
    }
    (t, files)
}

/// Every figure of every view against the truth of the lab captures.
#[test]
fn lab_reports_match_what_really_happened() {
    for dir in ["lab1", "lab2"] {
        let (truth, files) = truth(dir);
        let (_d, db) = temp_db();
        replay(settings(&db), &files);
        // A year later every open task is past its deadline: `never`.
        let later = at("2027-11-22T00:00:00Z");
        let v = report_json(&db, ReportBy::Day, later);
        let what = |f: &str| format!("{dir} {f}");
        assert_eq!(v["inbound"], truth.inbound, "{}", what("inbound"));
        assert_eq!(v["missed"], truth.missed, "{}", what("missed"));
        assert_eq!(v["answered"], truth.answered, "{}", what("answered"));
        assert_eq!(v["short_abandons"], 0);
        close(
            num(&v["missed_rate"]),
            truth.missed as f64 / truth.inbound as f64,
            1e-4,
            &what("missed_rate"),
        );
        let avg = truth.waits.iter().sum::<f64>() / truth.waits.len() as f64;
        let max = truth.waits.iter().copied().fold(0.0, f64::max);
        close(
            num(&v["avg_wait_missed_seconds"]),
            avg,
            1.5,
            &what("avg wait"),
        );
        close(
            num(&v["max_wait_missed_seconds"]),
            max,
            1.5,
            &what("max wait"),
        );
        assert_eq!(v["callback_on_time"], truth.on_time, "{}", what("on time"));
        assert_eq!(v["callback_late"], 0, "{}", what("late"));
        assert_eq!(v["callback_never"], truth.still_open, "{}", what("never"));
        assert_eq!(v["callback_open"], 0, "{}", what("open"));
        // Judged on the day of the calls, nothing is past its Monday 10:00 deadline yet.
        let same_day = report_json(&db, ReportBy::Day, at("2026-11-22T23:59:00Z"));
        assert_eq!(same_day["callback_never"], 0, "{}", what("never same day"));
        assert_eq!(same_day["callback_open"], truth.still_open);
        assert_eq!(
            same_day["open_tasks"].as_array().map(Vec::len),
            Some(truth.still_open as usize)
        );
        let heat: u64 = v["heatmap"]
            .as_array()
            .expect("heatmap")
            .iter()
            .flat_map(|r| {
                r.as_array()
                    .expect("row")
                    .iter()
                    .map(|n| n.as_u64().unwrap_or(0))
            })
            .sum();
        assert_eq!(heat, truth.missed, "{}", what("heat map total"));

        // By DID: the misses of each number dialled.
        let by_did = report_json(&db, ReportBy::Did, later);
        for (did, n) in &truth.missed_by_did {
            assert_eq!(row(&by_did, did)["missed"], *n, "{}", what(did));
        }
        // By agent: every missed call an agent was rung for; rings never fewer than that.
        let by_agent = report_json(&db, ReportBy::Agent, later);
        for (agent, n) in &truth.missed_rung_by_agent {
            let r = row(&by_agent, agent);
            assert_eq!(r["missed"], *n, "{}", what(agent));
            assert!(r["rung"].as_u64().unwrap_or(0) >= *n, "{}", what(agent));
            assert!(r["rung_not_answered"].as_u64() <= r["rung"].as_u64());
        }
        // By queue: the loss reasons add up over the rows.
        let by_queue = report_json(&db, ReportBy::Queue, later);
        let sum = |f: &str| -> u64 {
            by_queue["by"]
                .as_array()
                .expect("rows")
                .iter()
                .map(|r| r[f].as_u64().unwrap_or(0))
                .sum()
        };
        let reason = |r: &str| truth.reasons.get(r).copied().unwrap_or(0);
        assert_eq!(sum("abandoned_queue"), reason("queue"), "{}", what("queue"));
        assert_eq!(
            sum("abandoned_ringing"),
            reason("ringing"),
            "{}",
            what("ringing")
        );
        assert_eq!(sum("timeout"), reason("timeout"), "{}", what("timeout"));
        assert_eq!(
            sum("no_agents"),
            reason("no_agents"),
            "{}",
            what("no_agents")
        );
        assert_eq!(sum("offered"), truth.inbound, "{}", what("offered"));
        // Every view carries the same totals.
        for view in [&by_did, &by_agent, &by_queue] {
            for f in [
                "inbound",
                "answered",
                "missed",
                "callback_on_time",
                "callback_never",
            ] {
                assert_eq!(view[f], v[f], "{} {f}", what("totals"));
            }
        }
    }
}

/// A callback moved past its deadline turns `done_on_time` into `done_late`, with the delay
/// from the miss to the (moved) callback.
#[test]
fn callback_moved_past_its_deadline_counts_late() {
    let name = "lab1/07-missed-then-callback-answered.ami";
    let later = at("2027-01-01T00:00:00Z");
    let open_sunday = |db: &Path| {
        let mut s = settings(db);
        s.rules.calendar = calendar("UTC", true);
        s
    };
    // The callback figures of the report and of agent 101, who called back:
    // (on time, late, delay), then 101's (made on time, made late, delay).
    let check = |db: &Path, on_time: u64, late: u64, delay: f64| {
        let v = report_json(db, ReportBy::Agent, later);
        let got = |r: &Value, f: &str| r[f].as_u64().expect(f);
        assert_eq!(
            (got(&v, "callback_on_time"), got(&v, "callback_late")),
            (on_time, late)
        );
        assert_eq!(v["callback_never"], 0);
        assert_eq!(v["callback_delay_p50_seconds"], delay);
        assert_eq!(v["callback_delay_p90_seconds"], delay);
        let agent = row(&v, "101");
        assert_eq!(agent["callbacks_made"], 1);
        assert_eq!(
            (
                got(agent, "callbacks_made_on_time"),
                got(agent, "callbacks_made_late")
            ),
            (on_time, late)
        );
        assert_eq!(agent["callbacks_made_delay_p50_seconds"], delay);
        // The task was the agent's own (first rung): its row carries the callback too.
        assert_eq!(
            (got(agent, "callback_on_time"), got(agent, "callback_late")),
            (on_time, late)
        );
    };
    // As recorded: missed 19:16:25.290, called back by 101 at 19:16:34.330, due 10 min later.
    let (_d, db) = temp_db();
    replay(open_sunday(&db), &[fixture(name)]);
    check(&db, 1, 0, 9.04);

    // The same callback 15 minutes later: past the 10-minute deadline.
    let (dir, db) = temp_db();
    let moved = dir.path().join("moved.ami");
    let raw = std::fs::read(fixture(name)).expect("capture");
    std::fs::write(&moved, shift(&raw, 900, Some("1795374990.90"))).expect("write");
    replay(open_sunday(&db), &[moved]);
    check(&db, 0, 1, 909.04);
}

/// Copies of one missed call (lab1/02: rang 101-103, caller gone after 17.98 s) moved to
/// chosen local times.
fn copies(dir: &Path, starts: &[&str]) -> Vec<PathBuf> {
    starts
        .iter()
        .map(|s| moved_copy(dir, "lab1/02-queue-abandon.ami", s))
        .collect()
}

/// A database holding [`copies`] of lab1/02 starting at `starts`, under a calendar in `tz`.
fn copies_db(tz: &str, starts: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let (dir, db) = temp_db();
    let mut s = settings(&db);
    s.rules.calendar = calendar(tz, false);
    replay(s, &copies(dir.path(), starts));
    (dir, db)
}

fn heat(v: &Value, day: usize, hour: usize) -> u64 {
    v["heatmap"][day][hour].as_u64().expect("cell")
}

/// The night New York leaves summer time (2026-11-01: 01:00-02:00 happens twice).
const NEW_YORK_NIGHT: [&str; 5] = [
    "2026-11-01T03:30:00Z", // Sat 31 Oct 23:30 EDT
    "2026-11-01T04:30:00Z", // Sun 00:30 EDT
    "2026-11-01T05:30:00Z", // Sun 01:30 EDT
    "2026-11-01T06:30:00Z", // Sun 01:30 EST, the same hour again
    "2026-11-02T04:30:00Z", // Sun 23:30 EST
];

#[test]
fn days_months_and_heat_map_follow_the_calendar_timezone() {
    let now = at("2027-01-01T00:00:00Z");
    // A DST night far from UTC: New York.
    let (_dir, db) = copies_db("America/New_York", &NEW_YORK_NIGHT);
    let v = report_json(&db, ReportBy::Day, now);
    assert_eq!(keys(&v), ["2026-10-31", "2026-11-01"]);
    assert_eq!(row(&v, "2026-10-31")["missed"], 1);
    assert_eq!(row(&v, "2026-11-01")["missed"], 4);
    assert_eq!(v["period"]["first_day"], "2026-10-31");
    assert_eq!(v["period"]["last_day"], "2026-11-01");
    assert_eq!(heat(&v, 5, 23), 1);
    assert_eq!(heat(&v, 6, 0), 1);
    assert_eq!(heat(&v, 6, 1), 2);
    assert_eq!(heat(&v, 6, 23), 1);
    // One number: the repeated misses joined one task, counted on the day of the first.
    assert_eq!(row(&v, "2026-10-31")["callback_never"], 1);
    assert_eq!(row(&v, "2026-11-01")["callback_never"], 0);
    // A date bound is a local day: 1 November in New York is 25 hours long.
    let nov1 = report_between(
        &db,
        Some("2026-11-01"),
        Some("2026-11-01"),
        ReportBy::Day,
        now,
    );
    assert_eq!(nov1["missed"], 4);
    assert_eq!(nov1["since"], "2026-11-01T04:00:00.000Z");
    assert_eq!(nov1["until"], "2026-11-02T05:00:00.000Z");
    // The same database under a UTC calendar (the daemon restarted with another timezone).
    let mut s = settings(&db);
    s.rules.calendar = calendar("UTC", false);
    Store::open(s).expect("reopen").close().expect("close");
    let v = report_json(&db, ReportBy::Day, now);
    assert_eq!(keys(&v), ["2026-11-01", "2026-11-02"]);
    assert_eq!(row(&v, "2026-11-01")["missed"], 4);
    assert_eq!(heat(&v, 6, 3), 1);

    // A month boundary in Moscow (+03:00): 23:30 on 30 November and 00:30 on 1 December.
    let (_dir, db) = copies_db(
        "Europe/Moscow",
        &["2026-11-30T20:30:00Z", "2026-11-30T21:30:00Z"],
    );
    let v = report_json(&db, ReportBy::Month, now);
    assert_eq!(keys(&v), ["2026-11", "2026-12"]);
    assert_eq!(row(&v, "2026-11")["missed"], 1);
    assert_eq!(row(&v, "2026-12")["missed"], 1);
    let dec = report_between(
        &db,
        Some("2026-12-01"),
        Some("2026-12-31"),
        ReportBy::Month,
        now,
    );
    assert_eq!(dec["missed"], 1);
    assert_eq!(dec["period"]["first_day"], "2026-12-01");
    assert_eq!(dec["period"]["last_day"], "2026-12-31");
    assert_eq!(heat(&v, 0, 23), 1); // Monday 30 November, 23:00
    assert_eq!(heat(&v, 1, 0), 1); // Tuesday 1 December, 00:00

    // Fourteen hours ahead of UTC: a Sunday-evening call in UTC is Monday morning there.
    let (_dir, db) = copies_db("Pacific/Kiritimati", &["2026-11-22T19:30:00Z"]);
    let v = report_json(&db, ReportBy::Day, now);
    assert_eq!(keys(&v), ["2026-11-23"]);
    assert_eq!(heat(&v, 0, 9), 1);
    assert_eq!(v["timezone"], "Pacific/Kiritimati");
}

/// Short abandons: recorded and counted, but out of `missed`, the waits and the callbacks.
#[test]
fn short_abandons_are_counted_apart() {
    let now = at("2027-01-01T00:00:00Z");
    let (_d, db) = temp_db();
    let mut s = settings(&db);
    // lab1/03: gone from the IVR after 4 s; lab1/02: after 17.98 s.
    s.rules.callbacks.short_abandon_seconds = 10;
    replay(
        s,
        &[
            fixture("lab1/02-queue-abandon.ami"),
            fixture("lab1/03-ivr-abandon.ami"),
        ],
    );
    let v = report_json(&db, ReportBy::Day, now);
    assert_eq!(v["inbound"], 2);
    assert_eq!(v["short_abandons"], 1);
    assert_eq!(v["missed"], 1);
    assert_eq!(v["missed_rate"], 1.0);
    close(num(&v["avg_wait_missed_seconds"]), 17.98, 1.5, "avg wait");
    assert_eq!(v["avg_wait_missed_seconds"], v["max_wait_missed_seconds"]);
    // Two tasks stored, one counted; the short one is still listed as open work.
    assert_eq!(v["callback_never"], 1);
    assert_eq!(v["open_tasks"].as_array().map(Vec::len), Some(2));
    let short: Vec<&Value> = v["open_tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|t| t["short_abandon"] == true)
        .collect();
    assert_eq!(short.len(), 1);
    assert_eq!(short[0]["number"], "79161110003");
    assert_eq!(v["short_abandon_seconds"], 10.0);
}

/// `v_daily_sla` (for Grafana, sqlite3) equals `report --by day --json` row for row, on a
/// replay with a DST night in the calendar's timezone and short abandons.
#[test]
fn daily_sla_view_equals_the_day_report() {
    let (dir, db) = temp_db();
    let mut s = settings(&db);
    s.rules.calendar = calendar("America/New_York", true);
    s.rules.callbacks.short_abandon_seconds = 9;
    // In time order: the DST night, the lab day, then on Tuesday 1 December 10:00 EST a
    // missed call whose callback came 15 minutes late.
    let mut files = copies(dir.path(), &NEW_YORK_NIGHT);
    let mut lab: Vec<PathBuf> = std::fs::read_dir(fixture("lab1"))
        .expect("lab1")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ami"))
        .collect();
    lab.sort();
    files.extend(lab);
    let raw = std::fs::read(fixture("lab1/07-missed-then-callback-answered.ami")).expect("07");
    let secs = (at("2026-12-01T15:00:00Z").as_secs_f64() - first_timestamp(&raw)).round() as i64;
    let moved = shift(&raw, secs, None);
    let late = shift(&moved, 900, Some(&shift_id("1795374990.90", secs)));
    let path = dir.path().join("late-callback.ami");
    std::fs::write(&path, late).expect("write");
    files.push(path);
    replay(s, &files);
    // The view judges open tasks against the wall clock; so does this report.
    let now = EventTime::from_utc(&chrono::Utc::now());
    let report = report_json(&db, ReportBy::Day, now);
    let fields = [
        "inbound",
        "answered",
        "missed",
        "short_abandons",
        "missed_rate",
        "callback_on_time",
        "callback_late",
        "callback_never",
        "callback_open",
        "callback_delay_p50_seconds",
        "callback_delay_p90_seconds",
        "avg_wait_missed_seconds",
        "max_wait_missed_seconds",
    ];
    let c = conn(&db);
    let mut st = c
        .prepare(&format!(
            "SELECT day, {} FROM v_daily_sla",
            fields.join(", ")
        ))
        .expect("view");
    let view: Vec<(String, Vec<Option<f64>>)> = st
        .query_map([], |r| {
            let mut vals = Vec::new();
            for i in 0..fields.len() {
                vals.push(r.get::<_, Option<f64>>(i + 1)?);
            }
            Ok((r.get(0)?, vals))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        view.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
        keys(&report),
        "the same local days"
    );
    assert!(view.len() >= 4, "{view:?}");
    for (day, vals) in &view {
        let r = row(&report, day);
        for (f, v) in fields.iter().zip(vals) {
            match (v, r[*f].as_f64()) {
                (Some(a), Some(b)) => close(*a, b, 1e-9, &format!("{day} {f}")),
                (None, None) => {}
                (a, _) => panic!("{day} {f}: view {a:?}, report {}", r[*f]),
            }
        }
    }
    // Something of every kind is in there, so the comparison means something.
    let total = |f: &str| num(&report[f]);
    for f in [
        "short_abandons",
        "callback_on_time",
        "callback_late",
        "callback_never",
        "missed",
    ] {
        assert!(total(f) > 0.0, "{f} = 0 in {report}");
    }
}

/// The text heat map: shaded cells on a terminal, plain digits otherwise; the header names the
/// local days covered.
#[test]
fn text_heat_map_is_shaded_only_on_a_terminal() {
    let (_dir, db) = copies_db(
        "Europe/Moscow",
        &["2026-11-30T20:30:00Z", "2026-11-30T21:30:00Z"],
    );
    let text = |tty: bool| {
        let mut out = Vec::new();
        let req = Request {
            since: None,
            until: None,
            by: ReportBy::Day,
            format: ReportFormat::Text,
            now: at("2027-01-01T00:00:00Z"),
            tty,
        };
        report::run(&db, &req, &mut out).expect("report");
        String::from_utf8(out).expect("utf8")
    };
    let plain = text(false);
    assert!(
        plain.starts_with("Report 2026-11-30 .. 2026-12-01 (Europe/Moscow), by day\n"),
        "{plain}"
    );
    let mon = plain
        .lines()
        .find(|l| l.starts_with("Mon"))
        .expect("Mon row");
    assert_eq!(mon, format!("Mon{}  1", "  .".repeat(23)));
    assert!(!plain.contains('\x1b'));
    let shaded = text(true);
    assert!(
        shaded.contains("\x1b[48;5;160m\x1b[30m  1\x1b[0m"),
        "{shaded}"
    );
}
