//! The read-side commands of the CLI contract (SPEC section 8): `missed`, `tasks`, `report`.
//!
//! Each opens the database read-only (never blocking the daemon's writer), reads one snapshot
//! and renders it as JSON (times RFC 3339 UTC with milliseconds), CSV or an aligned text table
//! (times in the calendar timezone the daemon stored in `meta`).
//!
//! `--since`/`--until` take RFC 3339 or `YYYY-MM-DD`. A date means local midnight in the stored
//! calendar timezone; for `--until` it means the end of that day, so
//! `--since 2026-11-01 --until 2026-11-30` covers all of November. Ranges are half-open
//! `[since, until)` on the call's `ended_at` (for tasks: their first miss).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use chrono::{DateTime, Datelike, NaiveDate, Timelike};
use chrono_tz::Tz;
use serde_json::{Value, json};

use crate::callbacks::sla::local_to_utc;
use crate::store::queries::{self, InboundRow, MissedRow, ReadDb, TaskRow};
use crate::time::EventTime;

/// How `report` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// Aligned tables and a heatmap for people.
    Text,
    /// One JSON object (SPEC section 8).
    Json,
    /// One CSV table: a header, a row per key, then a `(total)` row.
    Csv,
}

/// Task statuses accepted by `tasks --status`.
pub const TASK_STATUSES: [&str; 4] = ["open", "overdue", "done_on_time", "done_late"];

/// Report break-downs accepted by `report --by`.
pub const REPORT_BY: [&str; 4] = ["day", "queue", "agent", "did"];

/// Key used for calls without a queue / DID / agent in `report --by`.
pub const NO_KEY: &str = "(none)";

fn open(db: &Path) -> anyhow::Result<(ReadDb, Tz)> {
    let rdb = queries::open_read_only(db)?;
    let tz = match rdb.timezone()? {
        Some(name) => name.parse::<Tz>().map_err(|_| {
            anyhow::anyhow!(
                "database {}: meta.calendar_timezone {name:?} is not a known timezone",
                db.display()
            )
        })?,
        None => Tz::UTC,
    };
    Ok((rdb, tz))
}

/// Parses a `--since`/`--until` value (module doc).
pub fn parse_bound(flag: &str, value: &str, tz: Tz, is_until: bool) -> anyhow::Result<EventTime> {
    let v = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(EventTime::from_utc(&t));
    }
    if let Ok(day) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let day = if is_until {
            day.succ_opt().unwrap_or(day)
        } else {
            day
        };
        let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
        return Ok(EventTime::from_utc(&local_to_utc(tz, midnight)));
    }
    bail!("{flag} {value:?}: expected RFC 3339 (2026-11-22T10:00:00Z) or a date (2026-11-22)")
}

fn bounds(
    since: Option<&str>,
    until: Option<&str>,
    tz: Tz,
) -> anyhow::Result<(Option<EventTime>, Option<EventTime>)> {
    let s = since
        .map(|v| parse_bound("--since", v, tz, false))
        .transpose()?;
    let u = until
        .map(|v| parse_bound("--until", v, tz, true))
        .transpose()?;
    if let (Some(s), Some(u)) = (s, u)
        && s >= u
    {
        bail!("--since must be before --until");
    }
    Ok((s, u))
}

/// Seconds rounded to milliseconds (what the tracker can measure; avoids float noise in JSON).
fn secs(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn local(t: EventTime, tz: Tz) -> String {
    t.to_utc()
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("-")
}

/// Writes rows as an aligned table; columns listed in `right` are right-aligned.
fn write_table(
    out: &mut dyn Write,
    headers: &[&str],
    right: &[usize],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let mut width: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: Vec<&str>| -> std::io::Result<()> {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = width[i].saturating_sub(cell.chars().count());
            if i > 0 {
                s.push_str("  ");
            }
            if right.contains(&i) {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            } else {
                s.push_str(cell);
                if i + 1 < cells.len() {
                    s.push_str(&" ".repeat(pad));
                }
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, headers.to_vec())?;
    for row in rows {
        line(out, row.iter().map(String::as_str).collect())?;
    }
    Ok(())
}

fn missed_json(m: &MissedRow) -> Value {
    json!({
        "linkedid": m.linkedid,
        "caller": m.caller,
        "caller_name": m.caller_name,
        "did": m.did,
        "queue": m.queue,
        "started_at": m.started_at.to_rfc3339(),
        "ended_at": m.ended_at.to_rfc3339(),
        "wait_seconds": secs(m.wait_seconds),
        "loss_reason": m.loss_reason,
        "voicemail": m.voicemail,
        "first_time_caller": m.first_time_caller,
        "withheld": m.withheld,
        "gap": m.gap,
        "gap_started_at": m.gap_window.map(|(from, _)| from.to_rfc3339()),
        "gap_ended_at": m.gap_window.map(|(_, to)| to.to_rfc3339()),
        "agents": m.agents.iter().map(|a| json!({
            "agent": a.agent,
            "name": a.name,
            "ring_start": a.ring_start.to_rfc3339(),
            "ring_seconds": secs(a.ring_seconds),
            "outcome": a.outcome,
        })).collect::<Vec<_>>(),
        "forwards": m.forwards.iter().map(|f| json!({
            "number": f.number,
            "ring_start": f.ring_start.to_rfc3339(),
            "ring_seconds": secs(f.ring_seconds),
            "outcome": f.outcome,
        })).collect::<Vec<_>>(),
        "task_id": m.task_id,
    })
}

/// `missedcalld missed`: missed calls that ended in the range, oldest first.
pub fn missed(
    db: &Path,
    since: Option<&str>,
    until: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (rdb, tz) = open(db)?;
    let (s, u) = bounds(since, until, tz)?;
    let rows = rdb.snapshot(|r| r.missed_calls(s, u))?;
    if json {
        let arr: Vec<Value> = rows.iter().map(missed_json).collect();
        serde_json::to_writer_pretty(&mut *out, &arr)?;
        writeln!(out)?;
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|m| {
            let mut agents: Vec<&str> = Vec::new();
            for a in &m.agents {
                if !agents.contains(&a.agent.as_str()) {
                    agents.push(&a.agent);
                }
            }
            vec![
                local(m.ended_at, tz),
                if m.withheld {
                    "(withheld)".to_owned()
                } else {
                    m.caller.clone()
                },
                opt(&m.caller_name).to_owned(),
                opt(&m.did).to_owned(),
                opt(&m.queue).to_owned(),
                format!("{:.1}", m.wait_seconds),
                m.loss_reason.clone(),
                if m.voicemail { "yes" } else { "no" }.to_owned(),
                if agents.is_empty() {
                    "-".to_owned()
                } else {
                    agents.join(",")
                },
                m.task_id.map_or("-".to_owned(), |t| t.to_string()),
            ]
        })
        .collect();
    write_table(
        out,
        &[
            "ENDED",
            "CALLER",
            "NAME",
            "DID",
            "QUEUE",
            "WAIT_S",
            "REASON",
            "VOICEMAIL",
            "AGENTS",
            "TASK",
        ],
        &[5, 9],
        &table,
    )?;
    writeln!(out, "{} missed call(s); times in {}", rows.len(), tz.name())?;
    Ok(())
}

/// The status a reader sees: `overdue` for an open task past its deadline at `now`.
pub fn task_status(t: &TaskRow, now: EventTime) -> &str {
    if t.status == "open" && t.deadline < now {
        "overdue"
    } else {
        &t.status
    }
}

/// `missedcalld tasks`: every callback task (or those with `status`), by id.
pub fn tasks(
    db: &Path,
    status: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    tasks_at(db, status, json, EventTime::now(), out)
}

/// [`tasks`] judging `overdue` against `now` instead of the wall clock.
pub fn tasks_at(
    db: &Path,
    status: Option<&str>,
    json: bool,
    now: EventTime,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if let Some(s) = status
        && !TASK_STATUSES.contains(&s)
    {
        bail!(
            "--status {s:?}: expected one of {}",
            TASK_STATUSES.join(", ")
        );
    }
    let (rdb, tz) = open(db)?;
    let rows: Vec<TaskRow> = rdb
        .snapshot(|r| r.tasks())?
        .into_iter()
        .filter(|t| status.is_none_or(|s| task_status(t, now) == s))
        .collect();
    if json {
        let arr: Vec<Value> = rows
            .iter()
            .map(|t| {
                json!({
                    "id": t.id,
                    "number": t.number,
                    "status": task_status(t, now),
                    "missed_count": t.missed_count,
                    "first_missed_at": t.first_missed_at.to_rfc3339(),
                    "last_missed_at": t.last_missed_at.to_rfc3339(),
                    "deadline": t.deadline.to_rfc3339(),
                    "closed_at": t.closed_at.map(EventTime::to_rfc3339),
                    "closed_by": t.closed_by.as_ref().map(|b| json!({
                        "direction": b.direction,
                        "agent": b.agent,
                        "linkedid": b.linkedid,
                    })),
                    "attempts": t.attempts,
                    "assignee": t.assignee,
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &arr)?;
        writeln!(out)?;
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.number.clone(),
                task_status(t, now).to_owned(),
                t.missed_count.to_string(),
                local(t.first_missed_at, tz),
                local(t.deadline, tz),
                opt(&t.assignee).to_owned(),
                t.attempts.to_string(),
                t.closed_at.map_or("-".to_owned(), |c| local(c, tz)),
                t.closed_by.as_ref().map_or("-".to_owned(), |b| {
                    format!("{} {}", b.direction, b.agent.as_deref().unwrap_or("?"))
                }),
            ]
        })
        .collect();
    write_table(
        out,
        &[
            "ID",
            "NUMBER",
            "STATUS",
            "MISSED",
            "FIRST_MISSED",
            "DEADLINE",
            "ASSIGNEE",
            "ATTEMPTS",
            "CLOSED_AT",
            "CLOSED_BY",
        ],
        &[0, 3, 7],
        &table,
    )?;
    writeln!(out, "{} task(s); times in {}", rows.len(), tz.name())?;
    Ok(())
}

/// Totals of one report row.
#[derive(Debug, Clone, Default, PartialEq)]
struct Totals {
    inbound: u64,
    answered: u64,
    missed: u64,
    callback_on_time: u64,
    callback_late: u64,
    callback_never: u64,
    wait_missed_sum: f64,
}

impl Totals {
    fn add_call(&mut self, c: &InboundRow, answered: bool) {
        self.inbound += 1;
        if answered {
            self.answered += 1;
        }
        if c.missed {
            self.missed += 1;
            self.wait_missed_sum += c.wait_seconds;
        }
    }

    fn add_task(&mut self, t: &TaskRow) {
        match t.status.as_str() {
            "done_on_time" => self.callback_on_time += 1,
            "done_late" => self.callback_late += 1,
            _ => self.callback_never += 1,
        }
    }

    fn avg_wait_missed(&self) -> f64 {
        if self.missed == 0 {
            0.0
        } else {
            secs(self.wait_missed_sum / self.missed as f64)
        }
    }

    fn json(&self) -> serde_json::Map<String, Value> {
        let v = json!({
            "inbound": self.inbound,
            "answered": self.answered,
            "missed": self.missed,
            "callback_on_time": self.callback_on_time,
            "callback_late": self.callback_late,
            "callback_never": self.callback_never,
            "avg_wait_missed_seconds": self.avg_wait_missed(),
        });
        match v {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        }
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.inbound.to_string(),
            self.answered.to_string(),
            self.missed.to_string(),
            self.callback_on_time.to_string(),
            self.callback_late.to_string(),
            self.callback_never.to_string(),
            format!("{:.1}", self.avg_wait_missed()),
        ]
    }
}

/// The computed report, before rendering.
struct Report {
    total: Totals,
    by: BTreeMap<String, Totals>,
    heatmap: [[u64; 24]; 7],
}

fn key_or_none(k: &Option<String>) -> String {
    match k.as_deref() {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => NO_KEY.to_owned(),
    }
}

fn build_report(calls: &[InboundRow], tasks: &[TaskRow], by: &str, tz: Tz) -> Report {
    let day = |t: EventTime| {
        t.to_utc()
            .with_timezone(&tz)
            .date_naive()
            .format("%Y-%m-%d")
            .to_string()
    };
    let mut r = Report {
        total: Totals::default(),
        by: BTreeMap::new(),
        heatmap: [[0; 24]; 7],
    };
    for c in calls {
        r.total.add_call(c, c.answered);
        match by {
            "day" => {
                r.by.entry(day(c.ended_at))
                    .or_default()
                    .add_call(c, c.answered)
            }
            "queue" => {
                r.by.entry(key_or_none(&c.queue))
                    .or_default()
                    .add_call(c, c.answered)
            }
            "did" => {
                r.by.entry(key_or_none(&c.did))
                    .or_default()
                    .add_call(c, c.answered)
            }
            _ => {
                // by agent: a call counts for every agent rung and for whoever answered it;
                // `answered` only for the agent who answered.
                let mut agents = c.agents_rung.clone();
                if let Some(a) = &c.agent
                    && c.answered
                    && !agents.contains(a)
                {
                    agents.push(a.clone());
                }
                if agents.is_empty() {
                    agents.push(NO_KEY.to_owned());
                }
                for a in agents {
                    let answered = c.answered && c.agent.as_deref() == Some(a.as_str());
                    r.by.entry(a).or_default().add_call(c, answered);
                }
            }
        }
        if c.missed {
            let l = c.started_at.to_utc().with_timezone(&tz);
            r.heatmap[l.weekday().num_days_from_monday() as usize][l.hour() as usize] += 1;
        }
    }
    for t in tasks {
        r.total.add_task(t);
        let key = match by {
            "day" => day(t.first_missed_at),
            "queue" => key_or_none(&t.queue),
            "did" => key_or_none(&t.did),
            _ => key_or_none(&t.assignee),
        };
        r.by.entry(key).or_default().add_task(t);
    }
    r
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

const REPORT_COLUMNS: [&str; 7] = [
    "inbound",
    "answered",
    "missed",
    "callback_on_time",
    "callback_late",
    "callback_never",
    "avg_wait_missed_seconds",
];

/// `missedcalld report`: totals, a break-down `by` day/queue/agent/did, and a weekday x hour
/// heatmap of missed calls (by the hour the call came in, calendar timezone). Tasks count by
/// their first miss; `callback_never` = tasks not (yet) called back, overdue or not.
pub fn report(
    db: &Path,
    since: Option<&str>,
    until: Option<&str>,
    by: &str,
    format: ReportFormat,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if !REPORT_BY.contains(&by) {
        bail!("--by {by:?}: expected one of {}", REPORT_BY.join(", "));
    }
    let (rdb, tz) = open(db)?;
    let (s, u) = bounds(since, until, tz)?;
    let (calls, tasks) = rdb
        .snapshot(|r| Ok((r.inbound_calls(s, u)?, r.tasks_opened(s, u)?)))
        .with_context(|| format!("reading {}", db.display()))?;
    let rep = build_report(&calls, &tasks, by, tz);
    match format {
        ReportFormat::Json => {
            let mut obj = rep.total.json();
            obj.insert("since".into(), json!(s.map(EventTime::to_rfc3339)));
            obj.insert("until".into(), json!(u.map(EventTime::to_rfc3339)));
            obj.insert("timezone".into(), json!(tz.name()));
            obj.insert("by_key".into(), json!(by));
            let rows: Vec<Value> = rep
                .by
                .iter()
                .map(|(k, t)| {
                    let mut m = serde_json::Map::new();
                    m.insert("key".into(), json!(k));
                    m.extend(t.json());
                    Value::Object(m)
                })
                .collect();
            obj.insert("by".into(), Value::Array(rows));
            obj.insert("heatmap".into(), json!(rep.heatmap));
            serde_json::to_writer_pretty(&mut *out, &Value::Object(obj))?;
            writeln!(out)?;
        }
        ReportFormat::Csv => {
            writeln!(out, "{},{}", by, REPORT_COLUMNS.join(","))?;
            for (k, t) in rep.by.iter().chain([(&"(total)".to_owned(), &rep.total)]) {
                writeln!(out, "{},{}", csv_cell(k), t.cells().join(","))?;
            }
        }
        ReportFormat::Text => {
            let range = |t: Option<EventTime>| t.map_or("-".to_owned(), |t| local(t, tz));
            writeln!(
                out,
                "Report {} .. {} ({}), by {by}",
                range(s),
                range(u),
                tz.name()
            )?;
            let t = &rep.total;
            writeln!(
                out,
                "inbound {}  answered {}  missed {}  callbacks: on time {}, late {}, never {}  avg wait of missed {:.1} s\n",
                t.inbound,
                t.answered,
                t.missed,
                t.callback_on_time,
                t.callback_late,
                t.callback_never,
                t.avg_wait_missed()
            )?;
            let mut rows: Vec<Vec<String>> = rep
                .by
                .iter()
                .map(|(k, t)| {
                    let mut row = vec![k.clone()];
                    row.extend(t.cells());
                    row
                })
                .collect();
            let mut total = vec!["(total)".to_owned()];
            total.extend(rep.total.cells());
            rows.push(total);
            let key = by.to_uppercase();
            write_table(
                out,
                &[
                    &key,
                    "INBOUND",
                    "ANSWERED",
                    "MISSED",
                    "ON_TIME",
                    "LATE",
                    "NEVER",
                    "AVG_WAIT_MISSED_S",
                ],
                &[1, 2, 3, 4, 5, 6, 7],
                &rows,
            )?;
            writeln!(out, "\nMissed calls by hour ({})", tz.name())?;
            let hours: Vec<String> = (0..24).map(|h| format!("{h:>3}")).collect();
            writeln!(out, "    {}", hours.join(""))?;
            for (d, name) in ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
                .iter()
                .enumerate()
            {
                let cells: Vec<String> = rep.heatmap[d]
                    .iter()
                    .map(|n| {
                        if *n == 0 {
                            "  .".to_owned()
                        } else {
                            format!("{n:>3}")
                        }
                    })
                    .collect();
                writeln!(out, "{name} {}", cells.join(""))?;
            }
        }
    }
    Ok(())
}

/// The start of the local day containing `t` (used by callers that want "today").
pub fn start_of_local_day(t: EventTime, tz: Tz) -> EventTime {
    let local = t.to_utc().with_timezone(&tz).date_naive();
    let midnight = local.and_hms_opt(0, 0, 0).unwrap_or_default();
    EventTime::from_utc(&local_to_utc(tz, midnight))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_accept_rfc3339_and_dates_in_the_calendar_zone() {
        let tz: Tz = "Europe/Moscow".parse().expect("tz");
        let since = parse_bound("--since", "2026-11-22", tz, false).expect("date");
        assert_eq!(since.to_rfc3339(), "2026-11-21T21:00:00.000Z");
        let until = parse_bound("--until", "2026-11-22", tz, true).expect("date");
        assert_eq!(until.to_rfc3339(), "2026-11-22T21:00:00.000Z");
        let exact = parse_bound("--since", "2026-11-22T10:00:00+03:00", tz, false).expect("rfc");
        assert_eq!(exact.to_rfc3339(), "2026-11-22T07:00:00.000Z");
        let err = parse_bound("--since", "yesterday", tz, false).unwrap_err();
        assert!(err.to_string().contains("--since \"yesterday\""), "{err}");
        assert!(bounds(Some("2026-11-23"), Some("2026-11-22"), tz).is_err());
        assert_eq!(
            start_of_local_day(exact, tz).to_rfc3339(),
            "2026-11-21T21:00:00.000Z"
        );
    }

    #[test]
    fn tables_align_and_csv_escapes() {
        let mut buf = Vec::new();
        write_table(
            &mut buf,
            &["A", "NUM"],
            &[1],
            &[
                vec!["long value".into(), "1".into()],
                vec!["x".into(), "100".into()],
            ],
        )
        .expect("write");
        assert_eq!(
            String::from_utf8(buf).expect("utf8"),
            "A           NUM\nlong value    1\nx           100\n"
        );
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("plain"), "plain");
    }
}
