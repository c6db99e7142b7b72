//! `report --html FILE`: one self-contained page a manager opens, prints or reads on a phone.
//!
//! Everything is inline (CSS, SVG); no script, font or image is fetched, so the file can be
//! mailed or opened offline. Numbers carry `data-k` attributes naming their JSON field, which
//! is what the headless-browser test reads back from the DOM.

use std::fmt::Write as _;

use chrono::NaiveDate;

use super::{AGENT, COMMON, Column, Kind, QUEUE, WEEKDAYS, human};
use crate::report::Report;
use crate::report::build::{NO_KEY, Row};
use crate::time::EventTime;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A duration as people say it: `45 s`, `4 min 05 s`, `1 h 12 min`, `2 d 3 h`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        3600..86_400 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

fn pretty_day(day: &str) -> String {
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map(|d| d.format("%a %-d %b %Y").to_string())
        .unwrap_or_else(|_| day.to_owned())
}

/// A chart label for a day (`22 Nov`) or month (`Nov 2026`) key.
fn short_key(key: &str) -> String {
    if let Ok(d) = NaiveDate::parse_from_str(key, "%Y-%m-%d") {
        return d.format("%-d %b").to_string();
    }
    NaiveDate::parse_from_str(&format!("{key}-01"), "%Y-%m-%d")
        .map(|d| d.format("%b %Y").to_string())
        .unwrap_or_else(|_| key.to_owned())
}

const CSS: &str = r#"
:root{--ink:#1d2433;--muted:#5b6478;--line:#e3e7ee;--bg:#f5f7fa;--card:#fff;
--miss:#d1495b;--ok:#2a9d6f;--late:#e9a23b;--never:#8d1c2c;--open:#7b8aa6;--accent:#2f5fd0}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:var(--ink);background:var(--bg);-webkit-print-color-adjust:exact;print-color-adjust:exact}
main{max-width:1120px;margin:0 auto;padding:24px 20px 40px}
header{display:flex;flex-wrap:wrap;align-items:baseline;justify-content:space-between;gap:4px 24px;
border-bottom:3px solid var(--accent);padding-bottom:12px;margin-bottom:20px}
h1{font-size:26px;margin:0}
h2{font-size:17px;margin:0 0 10px}
.period{font-size:17px;font-weight:600;margin:0}
.sub,.note{color:var(--muted);font-size:13px;margin:2px 0 0}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(136px,1fr));gap:10px;margin-bottom:16px}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.kpi .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.kpi .value{font-size:26px;font-weight:700;line-height:1.2}
.kpi.main{border-top:4px solid var(--ok)}
.kpi.bad{border-top:4px solid var(--miss)}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px;
margin-bottom:16px;break-inside:avoid}
.sla{display:flex;height:26px;border-radius:6px;overflow:hidden;background:var(--line)}
.sla div{height:100%}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:13px;margin-top:8px;color:var(--muted)}
.legend i{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{color:var(--muted);font-weight:600;font-size:12px;background:#fafbfd}
td:first-child,th:first-child{text-align:left}
tr.total td{font-weight:700;border-top:2px solid var(--ink)}
.heat td,.heat th{padding:0;text-align:center;width:3.8%;height:26px;font-size:11px;border:1px solid #fff}
.heat th{background:none}
.heat td:first-child,.heat th:first-child{text-align:left;width:40px;padding-right:4px}
.overdue{color:var(--never);font-weight:700}
svg text{font:11px system-ui,"DejaVu Sans",sans-serif;fill:var(--muted)}
footer{color:var(--muted);font-size:12px;text-align:center}
@media (max-width:640px){main{padding:12px 10px}h1{font-size:21px}.kpi .value{font-size:22px}
.kpis{grid-template-columns:repeat(2,1fr)}.heat td,.heat th{height:20px;font-size:9px}
svg text{font-size:22px}}
@media print{@page{size:A4 landscape;margin:12mm}body{background:#fff;font-size:12px}
main{max-width:none;padding:0}section,.kpi{border-color:#ccc;box-shadow:none}
section{page-break-inside:avoid}.scroll{overflow:visible}}
"#;

/// The whole page for `report`, generated at `now`.
pub fn page(report: &Report, now: EventTime) -> String {
    let mut h = String::with_capacity(32 * 1024);
    let period = match &report.period {
        Some(p) if p.first_day == p.last_day => pretty_day(&p.first_day),
        Some(p) => format!("{} – {}", pretty_day(&p.first_day), pretty_day(&p.last_day)),
        None => "No calls in this period".to_owned(),
    };
    let generated = now
        .to_utc()
        .with_timezone(&report.tz)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Missed calls report · {p}</title><style>{CSS}</style></head><body><main>\
         <header><div><h1>Missed calls &amp; callbacks</h1>\
         <p class=\"period\" data-k=\"period\">{p}</p></div>\
         <p class=\"sub\">Times in {tz} · generated {g}</p></header>",
        p = esc(&period),
        tz = esc(&report.timezone),
        g = esc(&generated),
    );
    kpis(&mut h, report);
    sla_bar(&mut h, report);
    chart(&mut h, report);
    heatmap(&mut h, report);
    let agent_cols: Vec<Column> = [COMMON[0], COMMON[1], COMMON[2]]
        .into_iter()
        .chain(AGENT.iter().copied())
        .collect();
    table(
        &mut h,
        &report.agents,
        &agent_cols,
        &TableText {
            title: "Agents",
            id: "agents",
            key_label: "Agent",
            none_label: "no agent rung",
            note: "A call counts for every agent it rang. Not answered = rang until the caller or the queue gave up. Callbacks = tasks the agent closed.",
        },
    );
    let queue_cols: Vec<Column> = QUEUE[..1]
        .iter()
        .chain([COMMON[1], COMMON[2], COMMON[3]].iter())
        .chain(QUEUE[1..].iter())
        .copied()
        .collect();
    table(
        &mut h,
        &report.queues,
        &queue_cols,
        &TableText {
            title: "Queues",
            id: "queues",
            key_label: "Queue",
            none_label: "no queue (ring group, direct)",
            note: "Avg wait (all) = until an agent picked up, or until the caller was lost.",
        },
    );
    open_tasks(&mut h, report);
    let short = if report.short_abandon_seconds > 0.0 {
        format!(
            "short abandons (callers gone within {} s) are counted but left out of the SLA figures",
            report.short_abandon_seconds
        )
    } else {
        "every missed call counts in the SLA figures ([callbacks] short_abandon_seconds = 0)"
            .to_owned()
    };
    let _ = writeln!(
        h,
        "<footer>missedcalld · {short}</footer></main></body></html>"
    );
    h
}

fn kpi(h: &mut String, class: &str, label: &str, key: &str, value: &str, sub: &str) {
    let _ = write!(
        h,
        "<div class=\"kpi {class}\"><div class=\"label\">{}</div>\
         <div class=\"value\" data-k=\"{key}\">{}</div><p class=\"sub\">{sub}</p></div>",
        esc(label),
        esc(value),
    );
}

fn kpis(h: &mut String, r: &Report) {
    let t = &r.total;
    let counted = t.callback_on_time + t.callback_late + t.callback_never + t.callback_open;
    let pct = |n: u64| {
        if counted == 0 {
            "-".to_owned()
        } else {
            format!("{:.0}%", n as f64 * 100.0 / counted as f64)
        }
    };
    h.push_str("<div class=\"kpis\">");
    kpi(
        h,
        "",
        "Inbound calls",
        "inbound",
        &t.inbound.to_string(),
        &format!("<b data-k=\"answered\">{}</b> answered", t.answered),
    );
    kpi(
        h,
        "bad",
        "Missed",
        "missed",
        &t.missed.to_string(),
        &format!(
            "<b data-k=\"missed_rate\">{}</b> of calls · <b data-k=\"short_abandons\">{}</b> short abandons not counted",
            human(Kind::Rate, t.missed_rate),
            t.short_abandons
        ),
    );
    kpi(
        h,
        "main",
        "Called back on time",
        "callback_on_time",
        &t.callback_on_time.to_string(),
        &format!("{} of {counted} callback tasks", pct(t.callback_on_time)),
    );
    kpi(
        h,
        "",
        "Called back late",
        "callback_late",
        &t.callback_late.to_string(),
        &format!(
            "{} · <b data-k=\"callback_open\">{}</b> open, not yet due",
            pct(t.callback_late),
            t.callback_open
        ),
    );
    kpi(
        h,
        if t.callback_never > 0 { "bad" } else { "" },
        "Never called back",
        "callback_never",
        &t.callback_never.to_string(),
        &format!("{} · past the deadline, still open", pct(t.callback_never)),
    );
    let delay = |v: Option<f64>| v.map_or("-".to_owned(), duration);
    kpi(
        h,
        "",
        "Callback delay (median)",
        "callback_delay_p50_seconds",
        &delay(t.callback_delay_p50_seconds),
        &format!(
            "9 in 10 within <b data-k=\"callback_delay_p90_seconds\">{}</b>",
            delay(t.callback_delay_p90_seconds)
        ),
    );
    kpi(
        h,
        "",
        "Wait before hanging up",
        "avg_wait_missed_seconds",
        &duration(t.avg_wait_missed_seconds),
        &format!(
            "average · longest <b data-k=\"max_wait_missed_seconds\">{}</b>",
            duration(t.max_wait_missed_seconds)
        ),
    );
    h.push_str("</div>");
}

fn sla_bar(h: &mut String, r: &Report) {
    let t = &r.total;
    let parts = [
        ("On time", t.callback_on_time, "var(--ok)"),
        ("Late", t.callback_late, "var(--late)"),
        ("Never", t.callback_never, "var(--never)"),
        ("Open, not yet due", t.callback_open, "var(--open)"),
    ];
    let sum: u64 = parts.iter().map(|p| p.1).sum();
    let _ = write!(
        h,
        "<section><h2>Callback SLA</h2><p class=\"note\">{sum} callback tasks opened in the period (short abandons left out)</p><div class=\"sla\">"
    );
    for (label, n, colour) in parts {
        if n > 0 {
            let _ = write!(
                h,
                "<div style=\"width:{:.2}%;background:{colour}\" title=\"{label}: {n}\"></div>",
                n as f64 * 100.0 / sum as f64
            );
        }
    }
    h.push_str("</div><div class=\"legend\">");
    for (label, n, colour) in parts {
        let _ = write!(
            h,
            "<span><i style=\"background:{colour}\"></i>{label} <b>{n}</b>{}</span>",
            if sum > 0 {
                format!(" ({:.0}%)", n as f64 * 100.0 / sum as f64)
            } else {
                String::new()
            }
        );
    }
    h.push_str("</div></section>");
}

/// Grouped bars per day (or month): missed vs called back on time.
/// The timeline with the quiet days (or months) between its first and last row filled in
/// with zeros, so the chart's x axis is a calendar.
fn calendar_rows(rows: &[Row]) -> Vec<(String, u64, u64)> {
    let monthly = rows.first().is_some_and(|row| row.key.len() == 7);
    let date = |k: &str| {
        let k = if monthly {
            format!("{k}-01")
        } else {
            k.to_owned()
        };
        NaiveDate::parse_from_str(&k, "%Y-%m-%d").ok()
    };
    let (Some(first), Some(last)) = (
        rows.first().and_then(|r| date(&r.key)),
        rows.last().and_then(|r| date(&r.key)),
    ) else {
        return rows
            .iter()
            .map(|r| (r.key.clone(), r.figures.missed, r.figures.callback_on_time))
            .collect();
    };
    let mut out = Vec::new();
    let mut d = first;
    while d <= last {
        let key = d
            .format(if monthly { "%Y-%m" } else { "%Y-%m-%d" })
            .to_string();
        let (missed, on_time) = rows
            .iter()
            .find(|r| r.key == key)
            .map_or((0, 0), |r| (r.figures.missed, r.figures.callback_on_time));
        out.push((key, missed, on_time));
        d = if monthly {
            d.checked_add_months(chrono::Months::new(1))
        } else {
            d.succ_opt()
        }
        .unwrap_or(NaiveDate::MAX);
    }
    out
}

fn chart(h: &mut String, r: &Report) {
    let rows = calendar_rows(&r.timeline);
    let monthly = rows.first().is_some_and(|row| row.0.len() == 7);
    let _ = write!(
        h,
        "<section><h2>Missed vs called back on time, by {}</h2>",
        if monthly { "month" } else { "day" }
    );
    if rows.is_empty() {
        h.push_str("<p class=\"note\">No calls.</p></section>");
        return;
    }
    let (w, top, bottom, left) = (720.0_f64, 16.0, 28.0, 30.0);
    let plot_h = 180.0;
    let max = rows
        .iter()
        .map(|row| row.1.max(row.2))
        .max()
        .unwrap_or(0)
        .max(1);
    let step = (w - left) / rows.len() as f64;
    let bar = (step * 0.36).min(22.0);
    let y = |v: u64| top + plot_h - v as f64 / max as f64 * plot_h;
    let _ = write!(
        h,
        "<svg viewBox=\"0 0 {w} {}\" width=\"100%\" role=\"img\" aria-label=\"missed and called back on time per period\">",
        top + plot_h + bottom
    );
    for tick in [0, max.div_ceil(2), max] {
        let _ = write!(
            h,
            "<line x1=\"{left}\" x2=\"{w}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e3e7ee\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{tick}</text>",
            left - 6.0,
            y(tick) + 4.0,
            y = y(tick)
        );
    }
    let label_every = rows.len().div_ceil(16);
    for (i, (key, missed, on_time)) in rows.iter().enumerate() {
        let x = left + step * i as f64 + step / 2.0;
        for (n, dx, colour, what) in [
            (*missed, -bar, "var(--miss)", "missed"),
            (*on_time, 0.0, "var(--ok)", "called back on time"),
        ] {
            let _ = write!(
                h,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" rx=\"2\" fill=\"{colour}\"><title>{}: {n} {what}</title></rect>",
                x + dx,
                y(n),
                top + plot_h - y(n),
                esc(key)
            );
            if n > 0 && rows.len() <= 31 {
                let _ = write!(
                    h,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{n}</text>",
                    x + dx + bar / 2.0,
                    y(n) - 3.0
                );
            }
        }
        if i % label_every == 0 {
            let _ = write!(
                h,
                "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                top + plot_h + 18.0,
                esc(&short_key(key))
            );
        }
    }
    h.push_str(
        "</svg><div class=\"legend\"><span><i style=\"background:var(--miss)\"></i>Missed</span>\
         <span><i style=\"background:var(--ok)\"></i>Called back on time (tasks by the day of the miss)</span></div></section>",
    );
}

fn heatmap(h: &mut String, r: &Report) {
    let max = r.heatmap.iter().flatten().copied().max().unwrap_or(0);
    let _ = write!(
        h,
        "<section><h2>When calls are missed</h2><p class=\"note\">Missed calls by weekday and the hour they came in ({}).</p>\
         <div class=\"scroll\"><table class=\"heat\"><tr><th></th>",
        esc(&r.timezone)
    );
    for hour in 0..24 {
        let _ = write!(h, "<th>{hour}</th>");
    }
    h.push_str("</tr>");
    for (d, name) in WEEKDAYS.iter().enumerate() {
        let _ = write!(h, "<tr><td>{name}</td>");
        for (hour, &n) in r.heatmap[d].iter().enumerate() {
            if n == 0 {
                let _ = write!(
                    h,
                    "<td style=\"background:#f3f5f8\" data-h=\"{d}-{hour}\"></td>"
                );
            } else {
                let a = 0.18 + 0.82 * n as f64 / max as f64;
                let ink = if a > 0.55 { "#fff" } else { "#1d2433" };
                let _ = write!(
                    h,
                    "<td style=\"background:rgba(209,73,91,{a:.2});color:{ink}\" data-h=\"{d}-{hour}\" title=\"{name} {hour}:00 – {n} missed\">{n}</td>"
                );
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</table></div></section>");
}

/// The words around a table.
struct TableText<'a> {
    title: &'a str,
    id: &'a str,
    key_label: &'a str,
    /// Shown for the `(none)` key.
    none_label: &'a str,
    note: &'a str,
}

fn table(h: &mut String, rows: &[Row], cols: &[Column], text: &TableText<'_>) {
    let TableText {
        title,
        id,
        key_label,
        none_label,
        note,
    } = *text;
    let _ = write!(h, "<section id=\"{id}\"><h2>{title}</h2>");
    if rows.is_empty() {
        h.push_str("<p class=\"note\">Nothing in this period.</p></section>");
        return;
    }
    let _ = write!(
        h,
        "<div class=\"scroll\"><table><tr><th>{}</th>",
        esc(key_label)
    );
    for c in cols {
        let _ = write!(h, "<th>{}</th>", esc(c.label));
    }
    h.push_str("</tr>");
    for row in rows {
        let shown = if row.key == NO_KEY {
            none_label
        } else {
            &row.key
        };
        let _ = write!(
            h,
            "<tr data-key=\"{}\"><td>{}</td>",
            esc(&row.key),
            esc(shown)
        );
        for c in cols {
            let v = (c.get)(row);
            let shown = match c.kind {
                Kind::Seconds => v.map_or("-".to_owned(), duration),
                _ => human(c.kind, v),
            };
            let _ = write!(h, "<td data-k=\"{}\">{}</td>", c.name, esc(&shown));
        }
        h.push_str("</tr>");
    }
    let _ = write!(
        h,
        "</table></div><p class=\"note\">{}</p></section>",
        esc(note)
    );
}

fn open_tasks(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        "<section id=\"open-tasks\"><h2>Open callbacks ({})</h2>",
        r.open_tasks.len()
    );
    if r.open_tasks.is_empty() {
        h.push_str("<p class=\"note\">Every missed caller has been called back.</p></section>");
        return;
    }
    h.push_str(
        "<div class=\"scroll\"><table><tr><th>Number</th><th>Missed</th><th>First missed</th>\
         <th>Deadline</th><th>Assignee</th><th>Status</th></tr>",
    );
    let local = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&r.tz).format("%a %-d %b %H:%M").to_string())
            .unwrap_or_else(|_| s.to_owned())
    };
    for t in &r.open_tasks {
        let status = match (t.overdue, t.short_abandon) {
            (true, _) => "<span class=\"overdue\">overdue</span>",
            (false, true) => "short abandon",
            (false, false) => "due",
        };
        let _ = write!(
            h,
            "<tr data-task=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{status}</td></tr>",
            t.id,
            esc(&t.number),
            t.missed_count,
            esc(&local(&t.first_missed_at)),
            esc(&local(&t.deadline)),
            esc(t.assignee.as_deref().unwrap_or("-")),
        );
    }
    h.push_str("</table></div></section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_durations() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(duration(44.6), "45 s");
        assert_eq!(duration(245.0), "4 min 05 s");
        assert_eq!(duration(4320.0), "1 h 12 min");
        assert_eq!(duration(2.0 * 86_400.0 + 3.0 * 3600.0), "2 d 3 h");
        assert_eq!(short_key("2026-11-02"), "2 Nov");
        assert_eq!(short_key("2026-11"), "Nov 2026");
    }

    #[test]
    fn the_chart_axis_is_a_calendar() {
        let row = |key: &str, missed| Row {
            key: key.into(),
            figures: crate::report::build::Figures {
                missed,
                ..Default::default()
            },
            agent: None,
            queue: None,
        };
        let days = calendar_rows(&[row("2026-10-31", 2), row("2026-11-02", 5)]);
        assert_eq!(
            days,
            [
                ("2026-10-31".to_owned(), 2, 0),
                ("2026-11-01".to_owned(), 0, 0),
                ("2026-11-02".to_owned(), 5, 0)
            ]
        );
        let months = calendar_rows(&[row("2026-11", 1), row("2027-01", 1)]);
        let keys: Vec<&str> = months.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(keys, ["2026-11", "2026-12", "2027-01"]);
    }
}
