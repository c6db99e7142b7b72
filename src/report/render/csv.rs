//! `report --csv`: a header named after the JSON fields, one line per key, then `(total)`.
//! Seconds keep millisecond precision; unknown values (no callbacks yet) are empty cells.

use std::io::Write;

use super::{Column, columns, machine};
use crate::report::Report;
use crate::report::build::Row;

/// Quotes a cell when it holds a comma, a quote or a line break (RFC 4180).
pub fn cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Writes the report's `by` table as CSV.
pub fn write(report: &Report, out: &mut dyn Write) -> anyhow::Result<()> {
    let cols = columns(report.by_key);
    let names: Vec<&str> = cols.iter().map(|c| c.name).collect();
    writeln!(out, "{},{}", report.by_key.as_str(), names.join(","))?;
    let line = |out: &mut dyn Write, key: &str, row: &Row, cols: &[Column]| {
        let cells: Vec<String> = cols.iter().map(|c| machine(c.kind, (c.get)(row))).collect();
        writeln!(out, "{},{}", cell(key), cells.join(","))
    };
    for row in &report.by {
        line(out, &row.key, row, &cols)?;
    }
    let total = Row {
        key: "(total)".into(),
        figures: report.total.clone(),
        agent: None,
        queue: None,
    };
    // The per-agent/per-queue extras have no total: their cells stay empty.
    line(out, "(total)", &total, &cols)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn cells_are_quoted_only_when_needed() {
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("plain"), "plain");
    }
}
