//! What SQL views need to know about the calendar and the report rules, written at every start:
//! the calendar's UTC offsets (`calendar_offsets`: SQLite has no timezone database) and
//! `short_abandon_seconds` in `meta`. `v_daily_sla` reads both to group by the local day.

use rusqlite::{Connection, params};

use super::{StoreError, format_time};
use crate::callbacks::TaskRules;
use crate::time::utc_offsets;

/// Records the calendar timezone, its offsets and the short-abandon threshold, in one
/// transaction so a view never sees half of it.
/// Runs at start and on every `SetRules` (reload), between two batches.
pub(super) fn record(conn: &Connection, rules: &TaskRules) -> Result<(), StoreError> {
    let fail = StoreError::sql;
    let tx = conn
        .unchecked_transaction()
        .map_err(fail("BEGIN calendar"))?;
    let meta = "INSERT INTO meta (key, value) VALUES (?1, ?2)
                ON CONFLICT (key) DO UPDATE SET value = excluded.value";
    tx.execute(
        meta,
        params!["calendar_timezone", rules.calendar.timezone_name()],
    )
    .map_err(fail("store calendar timezone in meta"))?;
    tx.execute(
        meta,
        params![
            "short_abandon_seconds",
            rules.callbacks.short_abandon_seconds.to_string()
        ],
    )
    .map_err(fail("store short_abandon_seconds in meta"))?;
    tx.execute("DELETE FROM calendar_offsets", [])
        .map_err(fail("clear calendar_offsets"))?;
    {
        let mut st = tx
            .prepare("INSERT INTO calendar_offsets (from_utc, offset_seconds) VALUES (?1, ?2)")
            .map_err(fail("insert calendar offset"))?;
        for (from, offset) in utc_offsets(rules.calendar.tz()) {
            st.execute(params![format_time(from), offset])
                .map_err(fail("insert calendar offset"))?;
        }
    }
    tx.commit().map_err(fail("COMMIT calendar"))
}
