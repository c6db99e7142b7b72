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

use std::io::Write;
use std::path::Path;

use anyhow::bail;
use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;
use serde_json::{Value, json};

use crate::callbacks::ShownStatus;
use crate::callbacks::sla::local_to_utc;
use crate::store::queries::{self, MissedRow, ReadDb, TaskRow};
use crate::time::{EventTime, LocalTime, PbxClock};

pub use crate::report::ReportFormat;

/// Opens `db` read-only with the calendar timezone the writer recorded (UTC if none).
pub(crate) fn open(db: &Path) -> anyhow::Result<(ReadDb, Tz)> {
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

/// Parses `--since`/`--until`; `since` must come first.
pub(crate) fn bounds(
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
pub(crate) fn write_table(
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

/// One item of `missed --json` (also the `missed_call` of a notification payload).
pub fn missed_json(m: &MissedRow) -> Value {
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
                m.loss_reason.as_str().to_owned(),
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

/// One item of `tasks --json` (also the `task` of a notification payload).
pub fn task_json(t: &TaskRow, now: EventTime) -> Value {
    json!({
        "id": t.id,
        "number": t.number,
        "status": t.shown_status(now),
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
}

/// `missedcalld tasks`: every callback task (or those with `status`), by id.
pub fn tasks(
    db: &Path,
    status: Option<ShownStatus>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    // A reader has no stamped event to learn the PBX's clock from: it assumes ours.
    let now = PbxClock::assume_equal().to_pbx(LocalTime::now());
    tasks_at(db, status, json, now, out)
}

/// [`tasks`] judging `overdue` against `now` instead of the wall clock.
pub fn tasks_at(
    db: &Path,
    status: Option<ShownStatus>,
    json: bool,
    now: EventTime,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (rdb, tz) = open(db)?;
    let rows: Vec<TaskRow> = rdb
        .snapshot(|r| r.tasks())?
        .into_iter()
        .filter(|t| status.is_none_or(|s| t.shown_status(now) == s))
        .collect();
    if json {
        let arr: Vec<Value> = rows.iter().map(|t| task_json(t, now)).collect();
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
                t.shown_status(now).as_str().to_owned(),
                t.missed_count.to_string(),
                local(t.first_missed_at, tz),
                local(t.deadline, tz),
                opt(&t.assignee).to_owned(),
                t.attempts.to_string(),
                t.closed_at.map_or("-".to_owned(), |c| local(c, tz)),
                t.closed_by.as_ref().map_or("-".to_owned(), |b| {
                    format!(
                        "{} {}",
                        b.direction.as_str(),
                        b.agent.as_deref().unwrap_or("?")
                    )
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

/// `missedcalld report` (see [`crate::report`]), judged at the wall clock, heat map unshaded.
pub fn report(
    db: &Path,
    since: Option<&str>,
    until: Option<&str>,
    by: &str,
    format: ReportFormat,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let by = crate::report::ReportBy::parse(by).map_err(anyhow::Error::msg)?;
    let req = crate::report::Request {
        since,
        until,
        by,
        format,
        now: PbxClock::assume_equal().to_pbx(LocalTime::now()),
        tty: false,
    };
    crate::report::run(db, &req, out)
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
    fn tables_align() {
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
    }
}
