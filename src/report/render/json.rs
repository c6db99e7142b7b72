//! `report --json`: one object (SPEC section 8): the totals at the top level, `by` rows with the
//! same fields plus `key` (and the agent or queue figures), `heatmap`, `open_tasks`.

use std::io::Write;

use crate::report::Report;

/// Writes the report as one pretty-printed JSON object and a newline.
pub fn write(report: &Report, out: &mut dyn Write) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)?;
    Ok(())
}
