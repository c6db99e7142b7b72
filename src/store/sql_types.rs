//! How the domain vocabulary is stored: each type maps to its contract spelling (or its integer
//! id, or RFC 3339 UTC text for times) and back, so statements bind and read typed values and
//! no spelling is compared outside this file.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::callbacks::{TaskId, TaskStatus};
use crate::calls::outcome::{AttemptOutcome, Direction, LossReason};
use crate::time::EventTime;

/// A stored text that is not one of the type's spellings.
#[derive(Debug, thiserror::Error)]
#[error("{value:?} is not a valid {kind}")]
pub struct BadSpelling {
    kind: &'static str,
    value: String,
}

/// Text columns holding a contract spelling.
macro_rules! spelled {
    ($ty:ty, $kind:literal, $parse:expr) => {
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                let parse: fn(&str) -> Option<$ty> = $parse;
                parse(text).ok_or_else(|| {
                    FromSqlError::Other(Box::new(BadSpelling {
                        kind: $kind,
                        value: text.to_owned(),
                    }))
                })
            }
        }
    };
}

spelled!(TaskStatus, "task status", TaskStatus::parse);
spelled!(LossReason, "loss reason", LossReason::parse);
spelled!(AttemptOutcome, "attempt outcome", AttemptOutcome::parse);
spelled!(Direction, "direction", Direction::parse);

impl ToSql for TaskId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl FromSql for TaskId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(TaskId)
    }
}

/// Times are stored as RFC 3339 in UTC with milliseconds (`2026-11-22T19:13:24.077Z`).
impl ToSql for EventTime {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_rfc3339()))
    }
}

impl FromSql for EventTime {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| EventTime::from_utc(&t))
            .map_err(|_| {
                FromSqlError::Other(Box::new(BadSpelling {
                    kind: "RFC 3339 time",
                    value: text.to_owned(),
                }))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn round_trip<T: ToSql + FromSql>(v: &T) -> T {
        let c = Connection::open_in_memory().expect("memory db");
        c.query_row("SELECT ?1", [v], |r| r.get(0))
            .expect("round trip")
    }

    #[test]
    fn every_value_round_trips_through_sqlite() {
        for s in TaskStatus::ALL {
            assert_eq!(round_trip(&s), s);
        }
        for r in LossReason::ALL {
            assert_eq!(round_trip(&r), r);
        }
        for o in AttemptOutcome::ALL {
            assert_eq!(round_trip(&o), o);
        }
        for d in [Direction::Inbound, Direction::Outbound] {
            assert_eq!(round_trip(&d), d);
        }
        assert_eq!(round_trip(&TaskId(42)), TaskId(42));
        let t = EventTime(1_795_374_804_077_000);
        assert_eq!(round_trip(&t), t);
    }

    #[test]
    fn a_foreign_spelling_is_an_error_naming_the_value() {
        let c = Connection::open_in_memory().expect("memory db");
        let err = c
            .query_row("SELECT 'closed'", [], |r| r.get::<_, TaskStatus>(0))
            .expect_err("not a status");
        assert!(
            err.to_string()
                .contains("\"closed\" is not a valid task status"),
            "{err}"
        );
        let err = c
            .query_row("SELECT 'yesterday'", [], |r| r.get::<_, EventTime>(0))
            .expect_err("not a time");
        assert!(err.to_string().contains("RFC 3339"), "{err}");
    }
}
