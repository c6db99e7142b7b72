//! Hand-built finished calls and a temp-file store for the store/callback tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::DateTime;
use missedcalld::calls::outcome::{
    AgentAttempt, AttemptOutcome, Direction, FinishedCall, LossReason, MissDetails,
};
use missedcalld::store::{Store, StoreSettings};
use missedcalld::time::EventTime;
use rusqlite::types::FromSql;

/// Parses an RFC 3339 test time.
pub fn at(s: &str) -> EventTime {
    EventTime::from_utc(&DateTime::parse_from_rfc3339(s).expect("test time"))
}

/// An inbound call nobody answered: rang `agents` for 10 s each, then the caller hung up.
pub fn missed(
    linkedid: &str,
    number: &str,
    ended: &str,
    wait: f64,
    agents: &[&str],
) -> FinishedCall {
    let ended_at = at(ended);
    let started_at = EventTime(ended_at.0 - (wait * 1e6) as i64);
    FinishedCall {
        linkedid: linkedid.into(),
        direction: Direction::Inbound,
        number: number.into(),
        name: Some("Client".into()),
        withheld: false,
        did: Some("74951234567".into()),
        queue: Some("sales".into()),
        started_at,
        ended_at,
        wait_seconds: wait,
        answered: false,
        agent: None,
        talk_seconds: 0.0,
        attempts: agents
            .iter()
            .map(|a| AgentAttempt {
                agent: (*a).into(),
                name: None,
                ring_start: started_at.plus_secs(2),
                ring_seconds: 10.0,
                outcome: AttemptOutcome::CallerHungUp,
            })
            .collect(),
        forwards: Vec::new(),
        missed: Some(MissDetails {
            loss_reason: if agents.is_empty() {
                LossReason::Ivr
            } else {
                LossReason::Ringing
            },
            voicemail: false,
        }),
        gap: false,
        gap_window: None,
    }
}

/// An inbound call answered by `agent` after 5 s, with `talk` seconds of conversation.
pub fn inbound_answered(
    linkedid: &str,
    number: &str,
    agent: &str,
    ended: &str,
    talk: f64,
) -> FinishedCall {
    let ended_at = at(ended);
    let started_at = EventTime(ended_at.0 - ((talk + 5.0) * 1e6) as i64);
    FinishedCall {
        linkedid: linkedid.into(),
        direction: Direction::Inbound,
        number: number.into(),
        name: None,
        withheld: false,
        did: Some("74951234567".into()),
        queue: Some("sales".into()),
        started_at,
        ended_at,
        wait_seconds: 5.0,
        answered: true,
        agent: Some(agent.into()),
        talk_seconds: talk,
        attempts: vec![AgentAttempt {
            agent: agent.into(),
            name: None,
            ring_start: started_at.plus_secs(1),
            ring_seconds: 4.0,
            outcome: AttemptOutcome::Answered,
        }],
        forwards: Vec::new(),
        missed: None,
        gap: false,
        gap_window: None,
    }
}

/// An outbound call by `agent` to `number`; answered calls talk `talk` seconds before `ended`.
pub fn outbound(
    linkedid: &str,
    number: &str,
    agent: &str,
    ended: &str,
    answered: bool,
    talk: f64,
) -> FinishedCall {
    let ended_at = at(ended);
    let started_at = EventTime(ended_at.0 - ((talk + 8.0) * 1e6) as i64);
    FinishedCall {
        linkedid: linkedid.into(),
        direction: Direction::Outbound,
        number: number.into(),
        name: None,
        withheld: false,
        did: None,
        queue: None,
        started_at,
        ended_at,
        wait_seconds: 8.0,
        answered,
        agent: Some(agent.into()),
        talk_seconds: if answered { talk } else { 0.0 },
        attempts: Vec::new(),
        forwards: Vec::new(),
        missed: None,
        gap: false,
        gap_window: None,
    }
}

/// A fresh database path in a temp dir (kept alive by the returned guard).
pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("missedcalld.sqlite");
    (dir, path)
}

/// Default settings (UTC, Mon-Fri 09:00-18:00, SLA 10 min) with quick batching.
pub fn settings(path: &Path) -> StoreSettings {
    let mut s = StoreSettings::new(path);
    s.batch_max_delay = Duration::from_millis(20);
    s
}

/// Opens a store with default settings.
pub fn open(path: &Path) -> Store {
    Store::open(settings(path)).expect("open store")
}

/// Records all calls, then closes the store (everything committed).
pub fn record_all(path: &Path, calls: &[FinishedCall]) {
    let store = open(path);
    for c in calls {
        store.record(c.clone()).expect("record");
    }
    store.close().expect("close");
}

/// A plain read-write connection for assertions.
pub fn conn(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("open for checks")
}

/// The first column of the one row `sql` returns.
pub fn scalar<T: FromSql>(c: &rusqlite::Connection, sql: &str) -> T {
    c.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The first column of every row `sql` returns, in order.
pub fn column<T: FromSql>(c: &rusqlite::Connection, sql: &str) -> Vec<T> {
    c.prepare(sql)
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

/// `SELECT count(*) FROM table`.
pub fn count(c: &rusqlite::Connection, table: &str) -> i64 {
    scalar(c, &format!("SELECT count(*) FROM {table}"))
}

/// How many tasks have a `missed_count` other than the number of their missed calls (0 when
/// the store is consistent).
pub fn tasks_with_wrong_missed_count(c: &rusqlite::Connection) -> i64 {
    scalar(
        c,
        "SELECT count(*) FROM callback_tasks t
          WHERE t.missed_count <> (SELECT count(*) FROM missed_calls m WHERE m.task_id = t.id)",
    )
}

/// Every row of every table, as text, for before/after comparisons.
pub fn dump(c: &rusqlite::Connection) -> Vec<String> {
    let mut out = Vec::new();
    for table in [
        "calls",
        "missed_calls",
        "agent_attempts",
        "callback_tasks",
        "task_events",
    ] {
        let mut st = c
            .prepare(&format!("SELECT * FROM {table} ORDER BY id"))
            .expect("prepare");
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                let mut s = format!("{table}:");
                for i in 0..n {
                    let v: rusqlite::types::Value = r.get(i)?;
                    s.push_str(&format!(" {v:?}"));
                }
                Ok(s)
            })
            .expect("query");
        for row in rows {
            out.push(row.expect("row"));
        }
    }
    out
}
