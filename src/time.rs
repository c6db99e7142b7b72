//! Two clocks, two types. [`EventTime`] is the PBX's clock (the AMI `Timestamp` header): calls,
//! tasks and deadlines live on it. [`LocalTime`] is this machine's clock: when a message was
//! read, when a timer fired. The PBX's clock may be off by days or set to another timezone, so
//! the two never mix: [`PbxClock::to_pbx`] is the one conversion, with the offset learned from
//! the stamped events.
//!
//! Integer microseconds keep replay deterministic (no float drift) and compare cheaply.

use chrono::{DateTime, TimeZone, Utc};

/// A point in time on the PBX's clock, in microseconds since 1970-01-01T00:00:00Z.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct EventTime(pub i64);

impl EventTime {
    /// Parses an AMI `Timestamp` value such as `1795374804.077707` (seconds, optional fraction).
    pub fn parse_ami(raw: &[u8]) -> Option<Self> {
        let (secs, frac) = match memchr::memchr(b'.', raw) {
            Some(dot) => (&raw[..dot], &raw[dot + 1..]),
            None => (raw, &b""[..]),
        };
        if secs.is_empty() || secs.len() > 12 || !secs.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut micros: i64 = 0;
        for &b in secs {
            micros = micros * 10 + i64::from(b - b'0');
        }
        micros *= 1_000_000;
        let mut scale = 100_000;
        for &b in frac.iter().take(6) {
            if !b.is_ascii_digit() {
                return None;
            }
            micros += i64::from(b - b'0') * scale;
            scale /= 10;
        }
        Some(EventTime(micros))
    }

    /// Builds a time from whole and fractional epoch seconds.
    pub fn from_secs_f64(secs: f64) -> Self {
        EventTime((secs * 1_000_000.0).round() as i64)
    }

    /// Seconds since the epoch as a float (for JSON and arithmetic at the edges).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }

    /// Seconds elapsed from `earlier` to `self`, never negative.
    pub fn seconds_since(self, earlier: EventTime) -> f64 {
        (self.0 - earlier.0).max(0) as f64 / 1_000_000.0
    }

    /// Adds whole seconds.
    pub fn plus_secs(self, secs: i64) -> Self {
        EventTime(self.0 + secs * 1_000_000)
    }

    /// Adds a duration.
    pub fn plus(self, d: std::time::Duration) -> Self {
        EventTime(
            self.0
                .saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
        )
    }

    /// The same instant as a chrono UTC time.
    pub fn to_utc(self) -> DateTime<Utc> {
        Utc.timestamp_micros(self.0)
            .single()
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }

    /// From a chrono time.
    pub fn from_utc<Tz: TimeZone>(t: &DateTime<Tz>) -> Self {
        EventTime(t.timestamp_micros())
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-22T10:00:04.077Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }
}

/// Every UTC offset `tz` takes from 1970 to 2100, as `(from, offset_seconds)` in time order:
/// the first entry starts at the epoch, each later one at a DST or law change. Lets SQL
/// (which has no timezone database) turn stored UTC times into local days.
pub fn utc_offsets(tz: chrono_tz::Tz) -> Vec<(EventTime, i32)> {
    use chrono::Offset;
    let offset = |secs: i64| -> i32 {
        let t = EventTime(secs * 1_000_000).to_utc().naive_utc();
        tz.offset_from_utc_datetime(&t).fix().local_minus_utc()
    };
    const DAY: i64 = 86_400;
    const END: i64 = 4_133_980_800; // 2101-01-01T00:00:00Z
    let mut out = vec![(EventTime(0), offset(0))];
    let mut t = 0;
    while t < END {
        let next = t + DAY;
        if offset(next) != offset(t) {
            // The change is in (t, next]: find its first second.
            let (mut lo, mut hi) = (t, next);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset(mid) == offset(t) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            out.push((EventTime(hi * 1_000_000), offset(hi)));
        }
        t = next;
    }
    out
}

/// A point in time on this machine's clock, in microseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LocalTime(i64);

impl LocalTime {
    /// The wall clock now.
    pub fn now() -> Self {
        LocalTime(Utc::now().timestamp_micros())
    }

    /// From microseconds since the epoch.
    pub const fn from_micros(micros: i64) -> Self {
        LocalTime(micros)
    }

    /// Microseconds since the epoch.
    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// Adds whole seconds.
    pub fn plus_secs(self, secs: i64) -> Self {
        LocalTime(self.0 + secs * 1_000_000)
    }
}

/// How this machine's clock maps onto the PBX's, learned from the events the PBX stamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PbxClock {
    /// PBX minus local in µs, as of the latest stamped event; `None` before the first one.
    offset: Option<i64>,
}

impl PbxClock {
    /// A clock that assumes the PBX's time equals ours until an event says otherwise.
    pub fn assume_equal() -> Self {
        PbxClock::default()
    }

    /// An event stamped `stamp` was read at `received`. The newest event wins, so a PBX clock
    /// that is corrected (or jumps) is followed at once.
    pub fn observe(&mut self, stamp: EventTime, received: LocalTime) {
        self.offset = Some(stamp.0 - received.0);
    }

    /// A clock already known to be `offset` µs ahead of ours (restored from a previous run).
    pub fn with_offset(offset: i64) -> Self {
        PbxClock {
            offset: Some(offset),
        }
    }

    /// PBX minus local in µs, once a stamped event has been seen (saved across a restart).
    pub fn offset_micros(&self) -> Option<i64> {
        self.offset
    }

    /// A stamped event has been seen.
    pub fn is_known(&self) -> bool {
        self.offset.is_some()
    }

    /// `t` on the PBX's clock: the one conversion between the two clocks.
    pub fn to_pbx(&self, t: LocalTime) -> EventTime {
        EventTime(t.0 + self.offset.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ami_timestamps() {
        assert_eq!(
            EventTime::parse_ami(b"1795374804.077707"),
            Some(EventTime(1_795_374_804_077_707))
        );
        assert_eq!(
            EventTime::parse_ami(b"1795374804"),
            Some(EventTime(1_795_374_804_000_000))
        );
        assert_eq!(
            EventTime::parse_ami(b"1795374804.5"),
            Some(EventTime(1_795_374_804_500_000))
        );
        assert_eq!(EventTime::parse_ami(b""), None);
        assert_eq!(EventTime::parse_ami(b"abc"), None);
        assert_eq!(EventTime::parse_ami(b"12.x"), None);
    }

    #[test]
    fn utc_offsets_follow_dst_and_law_changes() {
        let berlin = utc_offsets(chrono_tz::Europe::Berlin);
        // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert!(berlin.contains(&(EventTime(1_774_746_000_000_000), 7200)));
        assert!(berlin.contains(&(EventTime(1_792_890_000_000_000), 3600)));
        let moscow = utc_offsets(chrono_tz::Europe::Moscow);
        // Moscow has kept +03:00 since 26 October 2014 (22:00 UTC on the 25th).
        let last = moscow.last().copied().expect("changes");
        assert_eq!(last, (EventTime(1_414_274_400_000_000), 10_800));
        assert_eq!(utc_offsets(chrono_tz::UTC), vec![(EventTime(0), 0)]);
    }

    #[test]
    fn formats_rfc3339_in_utc() {
        assert_eq!(
            EventTime(1_795_374_804_077_707).to_rfc3339(),
            "2026-11-22T19:13:24.077Z"
        );
    }

    #[test]
    fn the_pbx_clock_follows_the_newest_stamped_event() {
        let mut c = PbxClock::assume_equal();
        let ours = LocalTime::from_micros(1_000_000_000);
        assert_eq!(c.to_pbx(ours), EventTime(1_000_000_000));
        assert!(!c.is_known());
        // Three days behind.
        c.observe(EventTime(1_000_000_000 - 259_200_000_000), ours);
        assert!(c.is_known());
        assert_eq!(
            c.to_pbx(ours.plus_secs(30)),
            EventTime(1_000_000_000 - 259_200_000_000 + 30_000_000)
        );
        // The PBX's clock is corrected: the next stamp moves the offset back to zero.
        c.observe(EventTime(1_000_000_000 + 60_000_000), ours.plus_secs(60));
        assert_eq!(
            c.to_pbx(ours.plus_secs(90)),
            EventTime(1_000_000_000 + 90_000_000)
        );
    }
}
