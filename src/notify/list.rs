//! `missedcalld outbox --db PATH [--json]`: notifications pending or failed, oldest first.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use crate::store::outbox::OutboxRow;
use crate::store::queries;

fn row_json(r: &OutboxRow) -> Value {
    json!({
        "id": r.notification,
        "event": r.event,
        "created_at": r.created_at.to_rfc3339(),
        "sink": r.sink,
        "target": r.target,
        "recipient": if r.recipient.is_empty() { Value::Null } else { json!(r.recipient) },
        "status": r.status,
        "attempts": r.attempts,
        "next_attempt_at": if r.status == "pending" { json!(r.next_attempt_at.to_rfc3339()) } else { Value::Null },
        "last_error": r.last_error,
    })
}

/// Prints the rows as one JSON array or as a table with a closing count line.
pub fn outbox(db: &Path, json_out: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let rdb = queries::open_read_only(db)?;
    let rows = rdb.snapshot(|r| r.outbox())?;
    if json_out {
        let arr: Vec<Value> = rows.iter().map(row_json).collect();
        serde_json::to_writer_pretty(&mut *out, &arr)?;
        writeln!(out)?;
        return Ok(());
    }
    for r in &rows {
        let to = if r.recipient.is_empty() {
            r.target.clone()
        } else {
            format!("{} chat {}", r.target, r.recipient)
        };
        let when = if r.status == "pending" {
            format!("next {}", r.next_attempt_at.to_rfc3339())
        } else {
            "given up".to_string()
        };
        writeln!(
            out,
            "{}  {:<7}  {:<12}  {}  {}  attempts {}  {}  {}",
            r.created_at.to_rfc3339(),
            r.status,
            r.event,
            r.notification,
            to,
            r.attempts,
            when,
            r.last_error.as_deref().unwrap_or("-")
        )?;
    }
    let pending = rows.iter().filter(|r| r.status == "pending").count();
    writeln!(
        out,
        "{pending} pending, {} failed notification(s)",
        rows.len() - pending
    )?;
    Ok(())
}
