//! The frames each live call consumed, kept so calls in progress survive a daemon restart.
//!
//! Rather than serialising the state machines (whose shape changes from release to release),
//! the journal keeps, per call in progress, a copy of the raw AMI frames the tracker routed to
//! it. At shutdown the frames of the calls still open are written out as one AMI stream
//! ([`Journal::save`]), oldest first, behind a [`SAVED_HEADER`] message; at start the same
//! tracker is fed that stream again ([`super::Tracker::restore`]) and ends in the same state,
//! before the resync reconciles it with what the PBX lists.
//!
//! Invariants: a call's frames are dropped when the call is removed or its outcome emitted,
//! so the journal only ever holds calls in progress; a call's journal is capped at
//! [`MAX_CALL_BYTES`] (beyond that the call is restored from the frames kept and the resync).
//! Each frame is copied into its own exact-size allocation: it never pins the socket's read
//! buffers, and a call's journal does not carry a growing buffer's spare capacity.

use super::{CallId, IdMap};
use crate::ami::Message;
use crate::time::EventTime;

/// The first message of a saved stream: `SavedAt` (PBX clock, the start of the gap) and
/// `ClockOffset` (µs, the PBX's clock minus ours when the previous run stopped; absent when
/// it never learned it).
pub const SAVED_HEADER: &[u8] = b"MissedcalldSavedCalls";

/// At most this many bytes of frames are kept per call (a call with more is pathological:
/// ~55 KB is a whole answered queue call).
pub const MAX_CALL_BYTES: usize = 1 << 20;

/// One call's frames, each with its time.
#[derive(Debug, Default)]
struct Frames {
    frames: Vec<(EventTime, Box<[u8]>)>,
    bytes: usize,
}

/// Per live call, the frames it consumed.
#[derive(Debug, Default)]
pub struct Journal {
    calls: IdMap<Frames>,
    bytes: usize,
}

impl Journal {
    /// Appends `msg` (seen at `at`) to call `id`'s frames. A frame without `Timestamp` gets one,
    /// so its replay lands at the same time.
    pub fn record(&mut self, id: CallId, msg: &Message, at: EventTime) {
        let frames = self.calls.entry(id).or_default();
        let frame = msg.frame();
        if frames.bytes + frame.len() > MAX_CALL_BYTES {
            return;
        }
        let body = trim_end(frame);
        let stamp = match msg.get("Timestamp") {
            Some(_) => String::new(),
            None => format!("Timestamp: {:.6}\r\n", at.as_secs_f64()),
        };
        let mut copy = Vec::with_capacity(body.len() + stamp.len() + 4);
        copy.extend_from_slice(body);
        copy.extend_from_slice(b"\r\n");
        copy.extend_from_slice(stamp.as_bytes());
        copy.extend_from_slice(b"\r\n");
        frames.bytes += copy.len();
        self.bytes += copy.len();
        frames.frames.push((at, copy.into_boxed_slice()));
    }

    /// Drops call `id`'s frames.
    pub fn forget(&mut self, id: CallId) {
        if let Some(f) = self.calls.remove(&id) {
            self.bytes -= f.bytes;
        }
    }

    /// Moves `from`'s frames into `into` (two calls merged).
    pub fn absorb(&mut self, into: CallId, from: CallId) {
        let Some(src) = self.calls.remove(&from) else {
            return;
        };
        let dst = self.calls.entry(into).or_default();
        dst.bytes += src.bytes;
        dst.frames.extend(src.frames);
    }

    /// Bytes of frames held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Calls with frames.
    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    /// The frames of the calls `keep` accepts as one AMI stream in time order, behind a
    /// [`SAVED_HEADER`] message; returns the stream and how many calls it holds.
    pub fn save(
        &self,
        keep: impl Fn(CallId) -> bool,
        saved_at: EventTime,
        clock_offset: Option<i64>,
    ) -> (Vec<u8>, usize) {
        let mut frames: Vec<(EventTime, &[u8])> = Vec::new();
        let mut calls = 0;
        for (&id, f) in &self.calls {
            if !keep(id) {
                continue;
            }
            calls += 1;
            frames.extend(f.frames.iter().map(|(t, b)| (*t, &b[..])));
        }
        // Stable: frames of one time keep their order within a call.
        frames.sort_by_key(|&(t, _)| t);
        let offset = clock_offset.map_or(String::new(), |o| format!("ClockOffset: {o}\r\n"));
        let mut out = format!(
            "Event: {}\r\nSavedAt: {:.6}\r\n{offset}Calls: {calls}\r\n\r\n",
            String::from_utf8_lossy(SAVED_HEADER),
            saved_at.as_secs_f64(),
        )
        .into_bytes();
        for (_, f) in frames {
            out.extend_from_slice(f);
        }
        (out, calls)
    }
}

/// The frame without its trailing line ends.
fn trim_end(frame: &[u8]) -> &[u8] {
    let mut end = frame.len();
    while end > 0 && matches!(frame[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    &frame[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(pairs: &[(&str, &str)]) -> Message {
        Message::from_pairs(pairs)
    }

    #[test]
    fn save_merges_calls_in_time_order_and_stamps_unstamped_frames() {
        let mut j = Journal::default();
        let t = |s: f64| EventTime::from_secs_f64(s);
        j.record(
            1,
            &msg(&[("Event", "A"), ("Timestamp", "10.000000")]),
            t(10.0),
        );
        j.record(2, &msg(&[("Event", "B")]), t(11.0));
        j.record(
            1,
            &msg(&[("Event", "C"), ("Timestamp", "12.000000")]),
            t(12.0),
        );
        j.record(
            3,
            &msg(&[("Event", "D"), ("Timestamp", "9.000000")]),
            t(9.0),
        );
        assert_eq!(j.calls(), 3);
        let (out, calls) = j.save(|id| id != 3, t(13.0), Some(-5));
        assert_eq!(calls, 2);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "Event: MissedcalldSavedCalls\r\nSavedAt: 13.000000\r\nClockOffset: -5\r\nCalls: 2\r\n\r\n\
             Event: A\r\nTimestamp: 10.000000\r\n\r\n\
             Event: B\r\nTimestamp: 11.000000\r\n\r\n\
             Event: C\r\nTimestamp: 12.000000\r\n\r\n"
        );
        let held = j.bytes();
        j.forget(1);
        assert!(j.bytes() < held);
        j.forget(2);
        j.forget(3);
        assert_eq!((j.bytes(), j.calls()), (0, 0));
    }

    #[test]
    fn absorb_keeps_both_calls_frames() {
        let mut j = Journal::default();
        let t = EventTime::from_secs_f64(1.0);
        j.record(1, &msg(&[("Event", "A"), ("Timestamp", "1.0")]), t);
        j.record(2, &msg(&[("Event", "B"), ("Timestamp", "1.0")]), t);
        j.absorb(1, 2);
        let (out, calls) = j.save(|_| true, t, None);
        assert_eq!(calls, 1);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("Event: A") && text.contains("Event: B"),
            "{text}"
        );
    }

    #[test]
    fn a_call_past_the_cap_stops_growing() {
        let mut j = Journal::default();
        let big = "x".repeat(64 * 1024);
        for _ in 0..40 {
            j.record(
                7,
                &msg(&[("Event", "A"), ("Timestamp", "1.0"), ("Pad", &big)]),
                EventTime::from_secs_f64(1.0),
            );
        }
        assert!(j.bytes() <= MAX_CALL_BYTES);
    }
}
