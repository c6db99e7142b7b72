//! Working-hours calendar and callback deadlines (SPEC section 5). Pure: the time to judge is
//! always passed in, never read from the clock.
//!
//! Rules:
//! - A miss inside working hours is due `sla_minutes` later, plain wall-clock minutes, even
//!   when that crosses closing time (17:55 + 10 min = 18:05 with an 18:00 close): the caller
//!   reached us while we were open, the SLA promise was made then.
//! - A miss outside working hours (before opening, after closing, a closed weekday, a holiday)
//!   is due at the first `offhours_deadline` local time on a working day strictly after the miss.
//!   A working day is a weekday with hours that is not a holiday.
//! - Local times are resolved DST-safely with chrono-tz: an ambiguous local time (autumn fold)
//!   takes the earlier instant; a nonexistent one (spring gap) is shifted forward by the gap,
//!   so 02:30 on a 02:00→03:00 night means 03:30 summer time.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::time::EventTime;

/// Default calendar timezone (SPEC section 10).
pub const DEFAULT_TIMEZONE: &str = "UTC";
/// Default hours Monday to Friday.
pub const DEFAULT_WEEKDAY_HOURS: &str = "09:00-18:00";
/// Default hours Saturday and Sunday: closed.
pub const DEFAULT_WEEKEND_HOURS: &str = "";

/// Weekday keys of `[calendar.hours]`, Monday first.
pub const WEEKDAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The TOML `[calendar]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalendarConfig {
    /// IANA timezone name, e.g. `Europe/Moscow`.
    pub timezone: String,
    /// Whole days off, `"YYYY-MM-DD"`.
    pub holidays: Vec<NaiveDate>,
    /// Weekly schedule.
    pub hours: HoursConfig,
}

impl Default for CalendarConfig {
    fn default() -> Self {
        CalendarConfig {
            timezone: DEFAULT_TIMEZONE.to_owned(),
            holidays: Vec::new(),
            hours: HoursConfig::default(),
        }
    }
}

/// The TOML `[calendar.hours]` table: `"HH:MM-HH:MM"` per weekday, `""` = closed all day.
/// A weekday left out keeps its default (Mon-Fri 09:00-18:00, Sat/Sun closed).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)]
pub struct HoursConfig {
    pub mon: String,
    pub tue: String,
    pub wed: String,
    pub thu: String,
    pub fri: String,
    pub sat: String,
    pub sun: String,
}

impl Default for HoursConfig {
    fn default() -> Self {
        let open = || DEFAULT_WEEKDAY_HOURS.to_owned();
        HoursConfig {
            mon: open(),
            tue: open(),
            wed: open(),
            thu: open(),
            fri: open(),
            sat: DEFAULT_WEEKEND_HOURS.to_owned(),
            sun: DEFAULT_WEEKEND_HOURS.to_owned(),
        }
    }
}

impl HoursConfig {
    /// The seven values, Monday first.
    fn days(&self) -> [&str; 7] {
        [
            &self.mon, &self.tue, &self.wed, &self.thu, &self.fri, &self.sat, &self.sun,
        ]
    }
}

/// A `[calendar]` value that cannot work; names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// Not an IANA timezone name chrono-tz knows.
    #[error("calendar.timezone: unknown IANA timezone {value:?}")]
    UnknownTimezone {
        /// The offending value.
        value: String,
    },
    /// A weekday's hours are not `"HH:MM-HH:MM"` with start before end.
    #[error("calendar.hours.{day}: {value:?}: {reason}")]
    BadHours {
        /// `mon`..`sun`.
        day: &'static str,
        /// The offending value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Every weekday is closed: no deadline could ever be computed.
    #[error("calendar.hours: every weekday is closed; at least one needs hours")]
    NoWorkingDay,
}

/// Opening hours of one day as seconds since local midnight, `start..end` (end up to 86400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DayHours {
    start: u32,
    end: u32,
}

impl fmt::Display for DayHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 3600,
            self.start / 60 % 60,
            self.end / 3600,
            self.end / 60 % 60
        )
    }
}

/// A validated working calendar: timezone, weekly hours, holidays.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    tz: Tz,
    week: [Option<DayHours>; 7],
    holidays: BTreeSet<NaiveDate>,
}

impl Default for Calendar {
    fn default() -> Self {
        match Calendar::new(&CalendarConfig::default()) {
            Ok(cal) => cal,
            // The defaults are constants that validate; keep a total fallback anyway.
            Err(_) => Calendar {
                tz: Tz::UTC,
                week: [None; 7],
                holidays: BTreeSet::new(),
            },
        }
    }
}

/// Parses `HH:MM` (or `H:MM`); `24:00` only when `allow_24` (end of day). Seconds since midnight.
fn parse_clock_secs(s: &str, allow_24: bool) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    if !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if allow_24 => Some(86_400),
        (0..=23, 0..=59) => Some(h * 3600 + m * 60),
        _ => None,
    }
}

/// Parses a wall-clock time `HH:MM` (e.g. `offhours_deadline = "10:00"`).
pub fn parse_clock(s: &str) -> Option<NaiveTime> {
    let secs = parse_clock_secs(s, false)?;
    NaiveTime::from_num_seconds_from_midnight_opt(secs, 0)
}

fn parse_day(day: &'static str, value: &str) -> Result<Option<DayHours>, CalendarError> {
    let value_t = value.trim();
    if value_t.is_empty() {
        return Ok(None);
    }
    let bad = |reason| CalendarError::BadHours {
        day,
        value: value.to_owned(),
        reason,
    };
    let (a, b) = value_t
        .split_once('-')
        .ok_or_else(|| bad("expected \"HH:MM-HH:MM\" or \"\" for closed"))?;
    let start = parse_clock_secs(a, false).ok_or_else(|| bad("start is not a valid HH:MM"))?;
    let end = parse_clock_secs(b, true).ok_or_else(|| bad("end is not a valid HH:MM"))?;
    if start >= end {
        return Err(bad(
            "start must be before end (ranges over midnight: split them over two days)",
        ));
    }
    Ok(Some(DayHours { start, end }))
}

/// The instant a local wall-clock time denotes in `tz`, DST-safe (see the module doc).
pub fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
        LocalResult::None => {
            // In a gap: use the offset in force a day before (before the jump), which moves
            // the wall-clock time forward by the gap length.
            let probe = (local - Duration::days(1)).and_utc();
            let offset = tz.offset_from_utc_datetime(&probe.naive_utc()).fix();
            (local - Duration::seconds(i64::from(offset.local_minus_utc()))).and_utc()
        }
    }
}

impl Calendar {
    /// Validates a `[calendar]` table.
    pub fn new(cfg: &CalendarConfig) -> Result<Calendar, CalendarError> {
        let tz: Tz = cfg
            .timezone
            .trim()
            .parse()
            .map_err(|_| CalendarError::UnknownTimezone {
                value: cfg.timezone.clone(),
            })?;
        let mut week = [None; 7];
        for (i, value) in cfg.hours.days().into_iter().enumerate() {
            week[i] = parse_day(WEEKDAY_KEYS[i], value)?;
        }
        if week.iter().all(Option::is_none) {
            return Err(CalendarError::NoWorkingDay);
        }
        Ok(Calendar {
            tz,
            week,
            holidays: cfg.holidays.iter().copied().collect(),
        })
    }

    /// The calendar's timezone.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The IANA name of the timezone (stored in the database for reports).
    pub fn timezone_name(&self) -> &'static str {
        self.tz.name()
    }

    /// The local time of `t` in the calendar's timezone.
    pub fn local(&self, t: EventTime) -> DateTime<Tz> {
        t.to_utc().with_timezone(&self.tz)
    }

    /// Open on this local date: not a holiday and its weekday has hours.
    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        !self.holidays.contains(&day)
            && self.week[day.weekday().num_days_from_monday() as usize].is_some()
    }

    /// Inside opening hours at `t` (start inclusive, end exclusive).
    pub fn is_working_time(&self, t: EventTime) -> bool {
        let local = self.local(t);
        let day = local.date_naive();
        if self.holidays.contains(&day) {
            return false;
        }
        match self.week[day.weekday().num_days_from_monday() as usize] {
            Some(h) => {
                let secs = local.time().num_seconds_from_midnight();
                h.start <= secs && secs < h.end
            }
            None => false,
        }
    }

    /// When a call missed at `missed_at` must be called back (module doc has the rules).
    pub fn deadline(
        &self,
        missed_at: EventTime,
        sla_minutes: u32,
        offhours_deadline: NaiveTime,
    ) -> EventTime {
        let in_hours = missed_at.plus_secs(i64::from(sla_minutes) * 60);
        if self.is_working_time(missed_at) {
            return in_hours;
        }
        let first_day = self.local(missed_at).date_naive();
        // Every run of closed days is bounded by the holidays plus one week.
        let horizon = self.holidays.len() as u64 + 8;
        for day in first_day.iter_days().take(horizon as usize + 1) {
            if !self.is_working_day(day) {
                continue;
            }
            let due = EventTime::from_utc(&local_to_utc(self.tz, day.and_time(offhours_deadline)));
            if due > missed_at {
                return due;
            }
        }
        // Unreachable for a validated calendar (some weekday has hours); stay total.
        in_hours
    }

    /// The first instant at or after `t` inside opening hours (quiet sinks deliver then);
    /// `None` only for a calendar with no opening in the coming weeks.
    pub fn next_opening(&self, t: EventTime) -> Option<EventTime> {
        if self.is_working_time(t) {
            return Some(t);
        }
        let first_day = self.local(t).date_naive();
        let horizon = self.holidays.len() + 8;
        for day in first_day.iter_days().take(horizon + 1) {
            if !self.is_working_day(day) {
                continue;
            }
            let Some(h) = self.week[day.weekday().num_days_from_monday() as usize] else {
                continue;
            };
            let start = NaiveTime::from_num_seconds_from_midnight_opt(h.start, 0)?;
            let open = EventTime::from_utc(&local_to_utc(self.tz, day.and_time(start)));
            if open > t {
                return Some(open);
            }
        }
        None
    }

    /// One line for logs: `Europe/Berlin mon 09:00-18:00 ... sun closed, 2 holidays`.
    pub fn describe(&self) -> String {
        let mut s = self.tz.name().to_owned();
        for (i, h) in self.week.iter().enumerate() {
            s.push(' ');
            s.push_str(WEEKDAY_KEYS[i]);
            s.push(' ');
            match h {
                Some(h) => s.push_str(&h.to_string()),
                None => s.push_str("closed"),
            }
        }
        s.push_str(&format!(", {} holidays", self.holidays.len()));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> EventTime {
        let t = DateTime::parse_from_rfc3339(rfc3339).expect("test time");
        EventTime::from_utc(&t)
    }

    fn ten() -> NaiveTime {
        parse_clock("10:00").expect("10:00")
    }

    fn cal(tz: &str, hours: HoursConfig, holidays: &[&str]) -> Calendar {
        Calendar::new(&CalendarConfig {
            timezone: tz.into(),
            holidays: holidays
                .iter()
                .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("date"))
                .collect(),
            hours,
        })
        .expect("valid calendar")
    }

    #[test]
    fn next_opening_skips_nights_weekends_and_holidays() {
        let c = cal("Europe/Moscow", HoursConfig::default(), &["2026-11-23"]);
        // Inside hours: now.
        let open = at("2026-11-24T10:00:00+03:00");
        assert_eq!(c.next_opening(open), Some(open));
        // Saturday night -> Monday is a holiday -> Tuesday 09:00 local.
        assert_eq!(
            c.next_opening(at("2026-11-21T03:00:00+03:00")),
            Some(at("2026-11-24T09:00:00+03:00"))
        );
        // After closing on Tuesday -> Wednesday 09:00.
        assert_eq!(
            c.next_opening(at("2026-11-24T18:00:00+03:00")),
            Some(at("2026-11-25T09:00:00+03:00"))
        );
    }

    #[test]
    fn one_second_before_opening_is_off_hours() {
        // Hours start at 10:00 in this test: 09:59:59 waits for the 10:00 off-hours deadline,
        // 10:00:00 is in hours and gets the plain SLA.
        let hours = HoursConfig {
            mon: "10:00-18:00".into(),
            ..HoursConfig::default()
        };
        let c = cal("UTC", hours, &[]);
        assert!(!c.is_working_time(at("2026-11-23T09:59:59Z")));
        assert!(c.is_working_time(at("2026-11-23T10:00:00Z")));
        assert_eq!(
            c.deadline(at("2026-11-23T09:59:59Z"), 10, ten()),
            at("2026-11-23T10:00:00Z")
        );
        assert_eq!(
            c.deadline(at("2026-11-23T10:00:00Z"), 10, ten()),
            at("2026-11-23T10:10:00Z")
        );
    }

    #[test]
    fn friday_before_closing_gets_plain_sla_after_closing_waits_for_monday() {
        let c = Calendar::default();
        // 2026-11-27 is a Friday.
        assert_eq!(
            c.deadline(at("2026-11-27T17:55:00Z"), 10, ten()),
            at("2026-11-27T18:05:00Z")
        );
        assert_eq!(
            c.deadline(at("2026-11-27T17:59:59.999Z"), 10, ten()),
            at("2026-11-27T18:09:59.999Z")
        );
        assert_eq!(
            c.deadline(at("2026-11-27T18:00:00Z"), 10, ten()),
            at("2026-11-30T10:00:00Z")
        );
    }

    #[test]
    fn night_and_weekend_misses() {
        let c = Calendar::default();
        // 02:00 on Tuesday 2026-11-24 -> Tuesday 10:00.
        assert_eq!(
            c.deadline(at("2026-11-24T02:00:00Z"), 10, ten()),
            at("2026-11-24T10:00:00Z")
        );
        // Saturday and Sunday -> Monday 10:00.
        assert_eq!(
            c.deadline(at("2026-11-28T12:00:00Z"), 10, ten()),
            at("2026-11-30T10:00:00Z")
        );
        assert_eq!(
            c.deadline(at("2026-11-22T19:13:24Z"), 10, ten()),
            at("2026-11-23T10:00:00Z")
        );
        // A working day after closing -> the next morning.
        assert_eq!(
            c.deadline(at("2026-11-24T18:30:00Z"), 10, ten()),
            at("2026-11-25T10:00:00Z")
        );
    }

    #[test]
    fn holiday_eve_skips_holidays_and_weekend() {
        let c = cal(
            "Europe/Moscow",
            HoursConfig::default(),
            &["2026-12-31", "2027-01-01"],
        );
        // Wednesday 2026-12-30 18:30 MSK: Thu and Fri are holidays, then the weekend.
        assert_eq!(
            c.deadline(at("2026-12-30T18:30:00+03:00"), 10, ten()),
            at("2027-01-04T10:00:00+03:00")
        );
        // On the holiday itself, during what would be working hours.
        assert!(!c.is_working_time(at("2026-12-31T12:00:00+03:00")));
        assert_eq!(
            c.deadline(at("2026-12-31T12:00:00+03:00"), 10, ten()),
            at("2027-01-04T10:00:00+03:00")
        );
        // The eve itself, in hours: plain SLA.
        assert_eq!(
            c.deadline(at("2026-12-30T17:00:00+03:00"), 15, ten()),
            at("2026-12-30T17:15:00+03:00")
        );
    }

    #[test]
    fn deadlines_across_berlin_dst_changes() {
        let c = cal("Europe/Berlin", HoursConfig::default(), &[]);
        // Saturday 2026-03-28 20:00 CET; clocks jump on Sunday 29th; Monday 10:00 is CEST.
        assert_eq!(
            c.deadline(at("2026-03-28T20:00:00+01:00"), 10, ten()),
            at("2026-03-30T08:00:00Z")
        );
        // Saturday 2026-10-24 20:00 CEST; clocks fall back on Sunday 25th; Monday 10:00 CET.
        assert_eq!(
            c.deadline(at("2026-10-24T20:00:00+02:00"), 10, ten()),
            at("2026-10-26T09:00:00Z")
        );
        // Opening hours follow local time after the change.
        assert!(!c.is_working_time(at("2026-03-30T06:59:59Z")));
        assert!(c.is_working_time(at("2026-03-30T07:00:00Z")));
    }

    #[test]
    fn nonexistent_and_ambiguous_local_deadlines() {
        let sunday_open = HoursConfig {
            sun: "04:00-12:00".into(),
            ..HoursConfig::default()
        };
        let c = cal("Europe/Berlin", sunday_open, &[]);
        let half_past_two = parse_clock("02:30").expect("02:30");
        // 02:30 does not exist on 2026-03-29: shifted by the gap to 03:30 CEST.
        assert_eq!(
            c.deadline(at("2026-03-28T23:00:00+01:00"), 10, half_past_two),
            at("2026-03-29T01:30:00Z")
        );
        // 02:30 happens twice on 2026-10-25: the earlier (CEST) one.
        assert_eq!(
            c.deadline(at("2026-10-24T23:00:00+02:00"), 10, half_past_two),
            at("2026-10-25T00:30:00Z")
        );
    }

    #[test]
    fn invalid_calendars_name_the_key() {
        let bad_tz = CalendarConfig {
            timezone: "Europe/Atlantis".into(),
            ..CalendarConfig::default()
        };
        assert_eq!(
            Calendar::new(&bad_tz).unwrap_err().to_string(),
            "calendar.timezone: unknown IANA timezone \"Europe/Atlantis\""
        );
        for (value, reason) in [
            ("9-18", "start is not"),
            ("09:00", "expected"),
            ("09:00-25:00", "end is not"),
            ("18:00-09:00", "start must be before end"),
            ("9:0-18:00", "start is not"),
        ] {
            let cfg = CalendarConfig {
                hours: HoursConfig {
                    wed: value.into(),
                    ..HoursConfig::default()
                },
                ..CalendarConfig::default()
            };
            let err = Calendar::new(&cfg).unwrap_err().to_string();
            assert!(err.starts_with("calendar.hours.wed: "), "{err}");
            assert!(err.contains(reason), "{value}: {err}");
        }
        let closed = HoursConfig {
            mon: String::new(),
            tue: String::new(),
            wed: String::new(),
            thu: String::new(),
            fri: String::new(),
            sat: String::new(),
            sun: String::new(),
        };
        assert_eq!(
            Calendar::new(&CalendarConfig {
                hours: closed,
                ..CalendarConfig::default()
            }),
            Err(CalendarError::NoWorkingDay)
        );
    }

    #[test]
    fn parses_the_spec_toml_and_keeps_unlisted_days_default() {
        let cfg: CalendarConfig = toml::from_str(
            r#"
timezone = "Europe/Moscow"
holidays = ["2026-12-31", "2027-01-01"]
[hours]
mon = "10:00-19:00"
sat = "10:00-14:00"
"#,
        )
        .expect("valid [calendar]");
        let c = Calendar::new(&cfg).expect("valid calendar");
        assert_eq!(
            c.describe(),
            "Europe/Moscow mon 10:00-19:00 tue 09:00-18:00 wed 09:00-18:00 thu 09:00-18:00 \
             fri 09:00-18:00 sat 10:00-14:00 sun closed, 2 holidays"
        );
        assert!(toml::from_str::<CalendarConfig>("timezon = \"UTC\"").is_err());
        assert!(toml::from_str::<CalendarConfig>("[hours]\nmonday = \"\"").is_err());
    }

    #[test]
    fn whole_day_hours_reach_midnight() {
        let hours = HoursConfig {
            sun: "00:00-24:00".into(),
            ..HoursConfig::default()
        };
        let c = cal("UTC", hours, &[]);
        assert!(c.is_working_time(at("2026-11-22T23:59:59Z")));
        assert!(c.is_working_time(at("2026-11-22T00:00:00Z")));
    }
}
