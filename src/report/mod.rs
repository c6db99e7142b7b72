//! `missedcalld report` (SPEC section 8): what a call-centre manager reads. One snapshot of the
//! database is read, [`build`] computes every figure (pure), and [`render`] prints it as text,
//! CSV, JSON or one self-contained HTML page. The rules behind the figures are in [`build`].

pub mod build;
pub mod render;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

pub use build::{Report, ReportBy, ReportParams, build};

use crate::output;
use crate::time::EventTime;

/// How `report` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportFormat {
    /// Aligned tables and a shaded heat map for people.
    Text,
    /// One JSON object (SPEC section 8).
    Json,
    /// One CSV table: a header, a row per key, then a `(total)` row.
    Csv,
    /// One self-contained HTML page written to the file; its path is printed.
    Html(PathBuf),
}

/// Reads the period `[since, until)` from `db` and computes the report, judging open tasks at
/// `now`.
pub fn load(
    db: &Path,
    since: Option<&str>,
    until: Option<&str>,
    by: ReportBy,
    now: EventTime,
) -> anyhow::Result<Report> {
    let (rdb, tz) = output::open(db)?;
    let (since, until) = output::bounds(since, until, tz)?;
    let (calls, tasks, short_abandon_seconds, short_tasks) = rdb
        .snapshot(|r| {
            let short = match r.meta("short_abandon_seconds")? {
                Some(v) => v
                    .parse::<f64>()
                    .map_err(|_| crate::store::StoreError::BadValue {
                        column: "meta.short_abandon_seconds",
                        value: v,
                    })?,
                None => 0.0,
            };
            Ok((
                r.report_calls(since, until)?,
                r.tasks_opened(since, until)?,
                short,
                r.short_abandon_tasks(short)?,
            ))
        })
        .with_context(|| format!("reading {}", db.display()))?;
    let params = ReportParams {
        by,
        tz,
        now,
        short_abandon_seconds,
        since,
        until,
    };
    Ok(build(&calls, &tasks, &short_tasks, params))
}

/// One `report` invocation.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// Start of the period (RFC 3339 or a local date).
    pub since: Option<&'a str>,
    /// End of the period (exclusive; a date means the end of that day).
    pub until: Option<&'a str>,
    /// The break-down.
    pub by: ReportBy,
    /// How to print.
    pub format: ReportFormat,
    /// Open tasks past their deadline at this moment count as `never`.
    pub now: EventTime,
    /// Standard output is a terminal: the text heat map is shaded with colours.
    pub tty: bool,
}

/// `missedcalld report`.
pub fn run(db: &Path, req: &Request<'_>, out: &mut dyn Write) -> anyhow::Result<()> {
    let report = load(db, req.since, req.until, req.by, req.now)?;
    match &req.format {
        ReportFormat::Json => render::json::write(&report, out)?,
        ReportFormat::Csv => render::csv::write(&report, out)?,
        ReportFormat::Text => render::text::write(&report, req.tty, out)?,
        ReportFormat::Html(path) => {
            let page = render::html::page(&report, req.now);
            std::fs::write(path, page)
                .with_context(|| format!("writing the HTML report {}", path.display()))?;
            writeln!(out, "{}", path.display())?;
        }
    }
    Ok(())
}
