//! Renderers of a built [`Report`](super::Report): one file per format, all reading the same
//! column list so a new figure is added in one place.

pub mod csv;
pub mod html;
pub mod json;
pub mod text;

use super::ReportBy;
use super::build::Row;

/// How a cell is formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number.
    Count,
    /// Seconds (ms precision).
    Seconds,
    /// A fraction shown as a percentage in text.
    Rate,
}

/// One column of a report table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The JSON/CSV field name.
    pub name: &'static str,
    /// Short header for text and HTML.
    pub label: &'static str,
    /// Formatting.
    pub kind: Kind,
    /// The value, `None` when unknown (e.g. a percentile without callbacks).
    pub get: fn(&Row) -> Option<f64>,
}

macro_rules! col {
    ($name:literal, $label:literal, $kind:ident, |$r:ident| $e:expr) => {
        Column {
            name: $name,
            label: $label,
            kind: Kind::$kind,
            get: |$r: &Row| $e,
        }
    };
}

/// The figures every row has, in SPEC section 8 order.
pub const COMMON: &[Column] = &[
    col!("inbound", "Inbound", Count, |r| Some(
        r.figures.inbound as f64
    )),
    col!("answered", "Answered", Count, |r| Some(
        r.figures.answered as f64
    )),
    col!("missed", "Missed", Count, |r| Some(r.figures.missed as f64)),
    col!("missed_rate", "Missed %", Rate, |r| r.figures.missed_rate),
    col!("short_abandons", "Short", Count, |r| Some(
        r.figures.short_abandons as f64
    )),
    col!("callback_on_time", "On time", Count, |r| Some(
        r.figures.callback_on_time as f64
    )),
    col!("callback_late", "Late", Count, |r| Some(
        r.figures.callback_late as f64
    )),
    col!("callback_never", "Never", Count, |r| Some(
        r.figures.callback_never as f64
    )),
    col!("callback_open", "Open", Count, |r| Some(
        r.figures.callback_open as f64
    )),
    col!("callback_delay_p50_seconds", "Delay p50", Seconds, |r| r
        .figures
        .callback_delay_p50_seconds),
    col!("callback_delay_p90_seconds", "Delay p90", Seconds, |r| r
        .figures
        .callback_delay_p90_seconds),
    col!("avg_wait_missed_seconds", "Avg wait", Seconds, |r| Some(
        r.figures.avg_wait_missed_seconds
    )),
    col!("max_wait_missed_seconds", "Max wait", Seconds, |r| Some(
        r.figures.max_wait_missed_seconds
    )),
];

/// A column read from a row's `agent` or `queue` figures: `count` (a whole number), `secs`
/// (seconds) or `opt_secs` (seconds or unknown).
macro_rules! sub {
    ($part:ident, $name:literal, $label:literal, count $f:ident) => {
        col!($name, $label, Count, |r| r
            .$part
            .as_ref()
            .map(|x| x.$f as f64))
    };
    ($part:ident, $name:literal, $label:literal, secs $f:ident) => {
        col!($name, $label, Seconds, |r| r.$part.as_ref().map(|x| x.$f))
    };
    ($part:ident, $name:literal, $label:literal, opt_secs $f:ident) => {
        col!($name, $label, Seconds, |r| r
            .$part
            .as_ref()
            .and_then(|x| x.$f))
    };
}

/// Per-agent figures (`--by agent`).
pub const AGENT: &[Column] = &[
    sub!(agent, "rung", "Rung", count rung),
    sub!(agent, "rung_not_answered", "Not answered", count rung_not_answered),
    sub!(agent, "ring_seconds_not_answered", "Ring s unanswered", secs ring_seconds_not_answered),
    sub!(agent, "callbacks_made", "Callbacks", count callbacks_made),
    sub!(agent, "callbacks_made_on_time", "CB on time", count callbacks_made_on_time),
    sub!(agent, "callbacks_made_late", "CB late", count callbacks_made_late),
    sub!(agent, "callbacks_made_delay_p50_seconds", "CB delay p50", opt_secs callbacks_made_delay_p50_seconds),
];

/// Per-queue figures (`--by queue`).
pub const QUEUE: &[Column] = &[
    sub!(queue, "offered", "Offered", count offered),
    sub!(queue, "abandoned_queue", "Lost in queue", count abandoned_queue),
    sub!(queue, "abandoned_ringing", "Lost ringing", count abandoned_ringing),
    sub!(queue, "timeout", "Timeout", count timeout),
    sub!(queue, "no_agents", "No agents", count no_agents),
    sub!(queue, "avg_wait_seconds", "Avg wait (all)", opt_secs avg_wait_seconds),
];

/// The columns of a `by` table: the common figures, then the agent or queue ones.
pub fn columns(by: ReportBy) -> Vec<Column> {
    let extra: &[Column] = match by {
        ReportBy::Agent => AGENT,
        ReportBy::Queue => QUEUE,
        _ => &[],
    };
    COMMON.iter().chain(extra).copied().collect()
}

/// A cell for people: counts plain, seconds with one decimal, rates as a percentage, `-` when
/// unknown.
pub fn human(kind: Kind, v: Option<f64>) -> String {
    match (kind, v) {
        (_, None) => "-".to_owned(),
        (Kind::Count, Some(v)) => format!("{v:.0}"),
        (Kind::Seconds, Some(v)) => format!("{v:.1}"),
        (Kind::Rate, Some(v)) => format!("{:.1}%", v * 100.0),
    }
}

/// A cell for machines: counts plain, seconds and rates as stored, empty when unknown.
pub fn machine(kind: Kind, v: Option<f64>) -> String {
    match (kind, v) {
        (_, None) => String::new(),
        (Kind::Count, Some(v)) => format!("{v:.0}"),
        (_, Some(v)) => v.to_string(),
    }
}

/// Local weekday names, Monday first (the heat map's rows).
pub const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
