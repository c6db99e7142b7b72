//! `report` for a terminal: the period, the totals in words, the `by` table with a `(total)`
//! line, and the weekday x hour heat map of missed calls: shaded cells on a terminal, plain
//! digits (`.` for none) when the output is a file or a pipe.

use std::io::Write;

use super::{Kind, WEEKDAYS, columns, human};
use crate::output::write_table;
use crate::report::Report;
use crate::report::build::Row;

/// The header line: the period actually covered, in the calendar's timezone.
pub fn period_line(report: &Report) -> String {
    match &report.period {
        Some(p) if p.first_day == p.last_day => format!("{} ({})", p.first_day, report.timezone),
        Some(p) => format!("{} .. {} ({})", p.first_day, p.last_day, report.timezone),
        None => format!("no calls ({})", report.timezone),
    }
}

/// Shade levels (xterm 256 colours, light to dark red) of a heat map cell.
const SHADES: [u8; 5] = [224, 217, 210, 203, 160];

/// The shade index (0-based) of `n` against the busiest cell `max`; `None` for zero.
pub fn shade(n: u64, max: u64) -> Option<usize> {
    if n == 0 || max == 0 {
        return None;
    }
    let levels = SHADES.len() as u64;
    Some((((n * levels).div_ceil(max)).clamp(1, levels) - 1) as usize)
}

/// Writes the text report; `tty` shades the heat map.
pub fn write(report: &Report, tty: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let t = &report.total;
    writeln!(
        out,
        "Report {}, by {}",
        period_line(report),
        report.by_key.as_str()
    )?;
    let rate = human(Kind::Rate, t.missed_rate);
    let short = if report.short_abandon_seconds > 0.0 {
        format!(
            "  short abandons {} (under {} s, not in SLA figures)",
            t.short_abandons, report.short_abandon_seconds
        )
    } else {
        String::new()
    };
    writeln!(
        out,
        "inbound {}  answered {}  missed {} ({rate}){short}",
        t.inbound, t.answered, t.missed
    )?;
    writeln!(
        out,
        "callbacks: on time {}, late {}, never {}, open {}  delay p50 {} s, p90 {} s  wait of missed: avg {:.1} s, max {:.1} s\n",
        t.callback_on_time,
        t.callback_late,
        t.callback_never,
        t.callback_open,
        human(Kind::Seconds, t.callback_delay_p50_seconds),
        human(Kind::Seconds, t.callback_delay_p90_seconds),
        t.avg_wait_missed_seconds,
        t.max_wait_missed_seconds,
    )?;

    let cols = columns(report.by_key);
    let cells = |row: &Row| -> Vec<String> {
        let mut v = vec![row.key.clone()];
        v.extend(cols.iter().map(|c| human(c.kind, (c.get)(row))));
        v
    };
    let mut rows: Vec<Vec<String>> = report.by.iter().map(cells).collect();
    let total = cells(&total_row(report));
    rows.push(total);
    let key = report.by_key.as_str().to_uppercase();
    let labels: Vec<String> = cols
        .iter()
        .map(|c| c.label.to_uppercase().replace(' ', "_"))
        .collect();
    let mut headers: Vec<&str> = vec![&key];
    headers.extend(labels.iter().map(String::as_str));
    let right: Vec<usize> = (1..headers.len()).collect();
    write_table(out, &headers, &right, &rows)?;

    writeln!(
        out,
        "\nMissed calls by weekday and hour ({})",
        report.timezone
    )?;
    let hours: Vec<String> = (0..24).map(|h| format!("{h:>3}")).collect();
    writeln!(out, "   {}", hours.join(""))?;
    let max = report.heatmap.iter().flatten().copied().max().unwrap_or(0);
    for (d, name) in WEEKDAYS.iter().enumerate() {
        let mut line = (*name).to_owned();
        for &n in &report.heatmap[d] {
            match (shade(n, max), tty) {
                (None, _) => line.push_str("  ."),
                (Some(s), true) => {
                    line.push_str(&format!("\x1b[48;5;{}m\x1b[30m{n:>3}\x1b[0m", SHADES[s]))
                }
                (Some(_), false) => line.push_str(&format!("{n:>3}")),
            }
        }
        writeln!(out, "{line}")?;
    }
    if !report.open_tasks.is_empty() {
        let overdue = report.open_tasks.iter().filter(|t| t.overdue).count();
        writeln!(
            out,
            "\n{} task(s) still open, {overdue} past their deadline: `missedcalld tasks --status overdue`",
            report.open_tasks.len()
        )?;
    }
    Ok(())
}

fn total_row(report: &Report) -> Row {
    Row {
        key: "(total)".into(),
        figures: report.total.clone(),
        agent: None,
        queue: None,
    }
}

#[cfg(test)]
mod tests {
    use super::shade;

    #[test]
    fn shades_scale_with_the_busiest_cell() {
        assert_eq!(shade(0, 9), None);
        assert_eq!(shade(1, 1), Some(4));
        assert_eq!(shade(1, 10), Some(0));
        assert_eq!(shade(5, 10), Some(2));
        assert_eq!(shade(10, 10), Some(4));
    }
}
