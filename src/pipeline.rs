//! The path every AMI message takes after the socket (or file): tracker, then a sink for
//! finished calls. `run` and `replay` share it, so a replayed capture is processed exactly as
//! the live stream was.

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::ami::{AmiCodec, Frame, Message};
use crate::calls::journal::SAVED_HEADER;
use crate::calls::{FinishedCall, Notice, Tracker, TrackerConfig};
use crate::store::Store;
use crate::time::{EventTime, LocalTime, PbxClock};

/// Where finished calls go: the SQLite store in production, a `Vec` in benchmarks and tests.
pub trait CallSink {
    /// The error a sink can fail with.
    type Error;
    /// Takes one finished call (in the order calls ended).
    fn record(&mut self, call: FinishedCall) -> Result<(), Self::Error>;
}

impl CallSink for crate::store::Store {
    type Error = crate::store::StoreError;
    fn record(&mut self, call: FinishedCall) -> Result<(), Self::Error> {
        Store::record(self, call)
    }
}

impl CallSink for Vec<FinishedCall> {
    type Error = std::convert::Infallible;
    fn record(&mut self, call: FinishedCall) -> Result<(), Self::Error> {
        self.push(call);
        Ok(())
    }
}

/// Tracker plus sink, with the one log line per missed call that admins tail.
#[derive(Debug)]
pub struct Pipeline<S> {
    tracker: Tracker,
    sink: S,
    finished: Vec<FinishedCall>,
    /// `CoreShowChannel` items of a channel list seen in the stream, until its `Complete`.
    listed_channels: Vec<Message>,
    /// This machine's clock mapped onto the PBX's (live input only).
    clock: PbxClock,
    /// The newest `Timestamp` seen: the time of unstamped events in a recording.
    newest_stamp: EventTime,
    /// A resync received before the PBX's clock was known (a fresh start): applied at the
    /// first stamped event after it, which happened after the list was taken.
    pending_channels: Option<Vec<Message>>,
}

impl<S: CallSink> Pipeline<S> {
    /// A pipeline with a fresh tracker.
    pub fn new(cfg: TrackerConfig, sink: S) -> Self {
        Pipeline {
            tracker: Tracker::new(cfg),
            sink,
            finished: Vec::new(),
            listed_channels: Vec::new(),
            clock: PbxClock::assume_equal(),
            newest_stamp: EventTime::default(),
            pending_channels: None,
        }
    }

    /// The tracker (calls in progress, latest event time).
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// How this machine's clock maps onto the PBX's, as learned so far.
    pub fn pbx_clock(&self) -> PbxClock {
        self.clock
    }

    /// Whether the tracker keeps the frames of calls in progress, to save them at shutdown
    /// (see [`Tracker::keep_journal`]).
    pub fn keep_journal(&mut self, on: bool) {
        self.tracker.keep_journal(on);
    }

    /// Applies new tracker settings (SIGHUP).
    pub fn set_tracker_config(&mut self, cfg: TrackerConfig) {
        self.tracker.set_config(cfg);
    }

    /// The sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Feeds one message read from the PBX at `received_at` (our clock). Its `Timestamp`
    /// teaches the pipeline the PBX's clock; an event without one (FullyBooted, or
    /// `timestampevents = no`) takes `received_at` moved onto the PBX's clock.
    ///
    /// A `CoreShowChannels` list inside the stream (a recorded resync after a reconnect) is
    /// applied like the live client's resync when its `CoreShowChannelsComplete` arrives.
    pub fn on_message(&mut self, msg: &Message, received_at: LocalTime) -> Result<(), S::Error> {
        // While the PBX's clock is unknown, a FullyBooted (never stamped) does not move ours.
        let unstamped_at = if !self.clock.is_known() && msg.event_name() == Some(b"FullyBooted") {
            self.tracker.latest()
        } else {
            self.clock.to_pbx(received_at)
        };
        if let Some(stamp) = self.feed(msg, unstamped_at) {
            self.clock.observe(stamp, received_at);
        }
        self.drain()
    }

    /// Feeds one message of a recording (`replay`): there is no local clock, and an event
    /// without `Timestamp` takes the newest one seen before it.
    pub fn on_recorded(&mut self, msg: &Message) -> Result<(), S::Error> {
        self.feed(msg, self.newest_stamp);
        self.drain()
    }

    /// The tracker step shared by live and recorded input; returns the message's `Timestamp`.
    fn feed(&mut self, msg: &Message, unstamped_at: EventTime) -> Option<EventTime> {
        match msg.event_name() {
            Some(b"CoreShowChannel") => {
                self.listed_channels.push(msg.clone());
                return None;
            }
            Some(b"CoreShowChannelsComplete") => {
                let items = std::mem::take(&mut self.listed_channels);
                self.tracker
                    .resync(&items, unstamped_at, &mut self.finished);
                return None;
            }
            _ => {}
        }
        if let Some(items) = self.pending_channels.take() {
            // The first event after the list happened after it: its time is the list's.
            match msg.get("Timestamp").and_then(EventTime::parse_ami) {
                Some(t) => self.tracker.resync(&items, t, &mut self.finished),
                None if msg.event_name() != Some(b"FullyBooted") => {
                    self.tracker
                        .resync(&items, unstamped_at, &mut self.finished)
                }
                None => self.pending_channels = Some(items),
            }
        }
        let stamp = self
            .tracker
            .on_message(msg, unstamped_at, &mut self.finished);
        if let Some(t) = stamp {
            self.newest_stamp = self.newest_stamp.max(t);
        }
        stamp
    }

    /// After a (re)connect: reconcile with the channels the PBX listed at `now` (our clock).
    ///
    /// Right after a start with nothing restored the PBX's clock is unknown (ours may differ),
    /// so the list waits for the first stamped event: the adopted calls' starts, computed from
    /// their `Duration`, are then on the PBX's clock.
    pub fn on_channels(&mut self, items: &[Message], now: LocalTime) -> Result<(), S::Error> {
        if !self.clock.is_known() {
            self.pending_channels = Some(items.to_vec());
            return Ok(());
        }
        self.tracker
            .resync(items, self.clock.to_pbx(now), &mut self.finished);
        self.drain()
    }

    /// Applies a resync still waiting for the PBX's clock, at `now` (our clock).
    fn apply_pending_channels(&mut self, now: LocalTime) {
        if let Some(items) = self.pending_channels.take() {
            self.tracker
                .resync(&items, self.clock.to_pbx(now), &mut self.finished);
        }
    }

    /// Finishes calls that went quiet for too long (lost events); `now` is our clock, judged
    /// on the PBX's like every event.
    pub fn tick(&mut self, now: LocalTime) -> Result<(), S::Error> {
        self.apply_pending_channels(now);
        self.tracker
            .expire(self.clock.to_pbx(now), &mut self.finished);
        self.drain()
    }

    /// The AMI link is gone: from now on we are blind until the next resync.
    /// `now` is our clock.
    pub fn on_disconnected(&mut self, now: LocalTime) {
        // A list still waiting for the PBX's clock: take ours (nothing better came).
        self.apply_pending_channels(now);
        self.tracker.mark_blind();
    }

    /// The calls in progress, to save at shutdown: an AMI stream that [`Pipeline::restore`]
    /// reads back, and how many calls it holds.
    pub fn save_in_progress(&mut self) -> (Vec<u8>, usize) {
        self.tracker.mark_blind();
        self.tracker.save_in_progress(self.clock.offset_micros())
    }

    /// Feeds a stream written by [`Pipeline::save_in_progress`] back through the tracker, so
    /// the calls in progress at the last shutdown are tracked again, then the next resync
    /// reconciles them (the gap starts when the previous run stopped). Returns the calls
    /// restored; a call the replay finished waits for [`Pipeline::flush`].
    pub fn restore(&mut self, saved: &[u8]) -> Result<usize, RestoreError> {
        let mut codec = AmiCodec::new();
        let mut buf = BytesMut::from(saved);
        let mut header = None;
        loop {
            let frame = codec
                .decode_eof(&mut buf)
                .map_err(|e| RestoreError(e.to_string()))?;
            let Some(frame) = frame else { break };
            let Frame::Message(msg) = frame else { continue };
            if msg.event_name() == Some(SAVED_HEADER) {
                let at = msg.get("SavedAt").and_then(EventTime::parse_ami);
                // Absent when the previous run never learned the PBX's clock.
                let offset = match msg.get_str("ClockOffset") {
                    None => Some(None),
                    Some(o) => o.trim().parse::<i64>().ok().map(Some),
                };
                let calls = msg.get_str("Calls").and_then(|c| c.trim().parse().ok());
                match (at, offset, calls) {
                    (Some(at), Some(offset), Some(calls)) => header = Some((at, offset, calls)),
                    _ => return Err(RestoreError(format!("a bad header: {msg}"))),
                }
                continue;
            }
            let Some((saved_at, _, _)) = header else {
                return Err(RestoreError("no MissedcalldSavedCalls header".into()));
            };
            let at = msg
                .get("Timestamp")
                .and_then(EventTime::parse_ami)
                .unwrap_or(saved_at);
            self.feed(&msg, at);
        }
        let Some((saved_at, offset, calls)) = header else {
            return Err(RestoreError("empty".into()));
        };
        if let Some(offset) = offset {
            self.clock = PbxClock::with_offset(offset);
        }
        self.tracker.set_blind_since(saved_at);
        Ok(calls)
    }

    /// Records the calls finished and not yet handed to the sink (after [`Pipeline::restore`]).
    pub fn flush(&mut self) -> Result<(), S::Error> {
        self.drain()
    }

    /// End of a replay: every call still in progress is finished with the `gap` flag.
    pub fn finish_all(&mut self) -> Result<(), S::Error> {
        let at = self.tracker.latest();
        self.tracker.finish_all(at, &mut self.finished);
        self.drain()
    }

    /// Gives the sink back.
    pub fn into_sink(self) -> S {
        self.sink
    }

    fn drain(&mut self) -> Result<(), S::Error> {
        for notice in self.tracker.take_notices() {
            log_notice(&notice);
        }
        for call in self.finished.drain(..) {
            log_finished(&call);
            self.sink.record(call)?;
        }
        Ok(())
    }
}

/// One WARN line per context the admin should add to the configuration.
fn log_notice(notice: &Notice) {
    let Notice::UnknownInboundContext { context, inbound } = notice;
    if *inbound {
        tracing::warn!(
            context = %context,
            "calls from external numbers enter a context not in calls.inbound_contexts; they come \
             from a trunk, so they are recorded as inbound: add this context to \
             calls.inbound_contexts to make it explicit"
        );
    } else {
        tracing::warn!(
            context = %context,
            "calls from external numbers keep arriving in a context not in \
             calls.inbound_contexts, on channels that look like phones, and are NOT recorded as \
             inbound: add this context to calls.inbound_contexts (or the trunk's channel prefix \
             to calls.trunk_channels)"
        );
    }
}

/// A saved state that cannot be read back.
#[derive(Debug, thiserror::Error)]
#[error("the saved calls in progress cannot be read: {0}")]
pub struct RestoreError(String);

/// One INFO line per missed call: caller, DID, wait, reason, agents rung with seconds.
fn log_finished(call: &FinishedCall) {
    let Some(missed) = &call.missed else {
        tracing::debug!(
            linkedid = %call.linkedid,
            direction = call.direction.as_str(),
            number = %call.number,
            answered = call.answered,
            agent = call.agent.as_deref().unwrap_or("-"),
            "call ended"
        );
        return;
    };
    let agents = if call.attempts.is_empty() {
        "none".to_string()
    } else {
        call.attempts
            .iter()
            .map(|a| format!("{}({:.1}s {})", a.agent, a.ring_seconds, a.outcome.as_str()))
            .collect::<Vec<_>>()
            .join(",")
    };
    let forwards = call
        .forwards
        .iter()
        .map(|f| {
            format!(
                "{}({:.1}s {})",
                f.number,
                f.ring_seconds,
                f.outcome.as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    tracing::info!(
        caller = if call.withheld { "withheld" } else { call.number.as_str() },
        did = call.did.as_deref().unwrap_or("-"),
        wait = format_args!("{:.1}s", call.wait_seconds),
        reason = missed.loss_reason.as_str(),
        queue = call.queue.as_deref().unwrap_or("-"),
        voicemail = missed.voicemail,
        agents = %agents,
        forwards = if forwards.is_empty() { "none" } else { forwards.as_str() },
        gap = call.gap,
        "missed call"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(pairs: &[(&str, &str)]) -> Message {
        Message::from_pairs(pairs)
    }

    /// A caller's channel appears and enters a queue, both events stamped `stamp` (PBX clock)
    /// and read at `received` (ours).
    fn enter_queue(p: &mut Pipeline<Vec<FinishedCall>>, stamp: &str, received: LocalTime) {
        for (event, extra) in [
            ("Newchannel", ("AppData", "")),
            ("Newexten", ("Application", "Queue")),
        ] {
            let m = msg(&[
                ("Event", event),
                ("Timestamp", stamp),
                ("Channel", "PJSIP/trunk-00000001"),
                ("CallerIDNum", "79161234567"),
                ("Context", "from-pstn"),
                ("Exten", "74951234567"),
                ("Uniqueid", "1700000000.1"),
                ("Linkedid", "1700000000.1"),
                extra,
            ]);
            p.on_message(&m, received).unwrap();
        }
    }

    #[test]
    fn ticks_follow_the_pbx_clock_not_ours() {
        // Events stamped three days in the past (an old recording, a PBX clock that is off).
        let mut p = Pipeline::new(TrackerConfig::default(), Vec::new());
        let pbx = 1_700_000_000.0;
        let ours = LocalTime::from_micros(((pbx + 3.0 * 86_400.0) * 1e6) as i64);
        enter_queue(&mut p, "1700000000.000000", ours);
        p.tick(ours.plus_secs(30)).unwrap();
        assert!(p.sink().is_empty(), "a call 30 s quiet is not stale");
        // A re-login's FullyBooted has no Timestamp: its uptime is judged on the PBX clock too.
        let booted = msg(&[
            ("Event", "FullyBooted"),
            ("Uptime", "3600"),
            ("Status", "Fully Booted"),
        ]);
        p.on_message(&booted, ours.plus_secs(40)).unwrap();
        assert!(
            p.sink().is_empty(),
            "the PBX has been up for an hour: the call is live"
        );
        assert_eq!(p.tracker().in_progress(), 1);
        let stale = ours.plus_secs(crate::calls::config::DEFAULT_EXPIRE_AFTER_SECS as i64 + 60);
        p.tick(stale).unwrap();
        assert_eq!(p.sink().len(), 1);
        assert!(p.sink()[0].gap);
    }

    #[test]
    fn a_pbx_clock_days_behind_ends_no_live_call_after_a_fresh_login() {
        // A fresh login: FullyBooted (no Timestamp) comes first, then the call's events stamped
        // by a PBX clock three days behind ours. Ticks must judge staleness on that clock.
        let mut p = Pipeline::new(TrackerConfig::default(), Vec::new());
        let ours = LocalTime::from_micros((1_700_000_000 + 3 * 86_400) * 1_000_000);
        let booted = msg(&[
            ("Event", "FullyBooted"),
            ("Uptime", "3600"),
            ("Status", "Fully Booted"),
        ]);
        p.on_message(&booted, ours).unwrap();
        enter_queue(&mut p, "1700000001.000000", ours.plus_secs(1));
        p.tick(ours.plus_secs(31)).unwrap();
        assert!(
            p.sink().is_empty(),
            "a call 30 s quiet is live: {:?}",
            p.sink()
        );
        assert_eq!(p.tracker().in_progress(), 1);
        let stale = ours.plus_secs(crate::calls::config::DEFAULT_EXPIRE_AFTER_SECS as i64 + 60);
        p.tick(stale).unwrap();
        assert_eq!(p.sink().len(), 1, "a call quiet past expire_after is stale");
        assert!(p.sink()[0].gap);
    }

    #[test]
    fn a_channel_list_in_the_stream_resyncs_the_tracker() {
        let mut p = Pipeline::new(TrackerConfig::default(), Vec::new());
        let chan = |event: &str, ts: &str, extra: &[(&'static str, &'static str)]| {
            let mut v = vec![
                ("Event", event),
                ("Timestamp", ts),
                ("Channel", "PJSIP/trunk-00000001"),
                ("CallerIDNum", "79161234567"),
                ("Context", "from-pstn"),
                ("Exten", "74951234567"),
                ("Uniqueid", "1700000000.1"),
                ("Linkedid", "1700000000.1"),
            ];
            v.extend_from_slice(extra);
            msg(&v)
        };
        let t = LocalTime::default();
        p.on_message(&chan("Newchannel", "1700000000.0", &[]), t)
            .unwrap();
        p.on_message(
            &chan(
                "Newexten",
                "1700000001.0",
                &[("Application", "Queue"), ("AppData", "sales")],
            ),
            t,
        )
        .unwrap();
        assert_eq!(p.tracker().in_progress(), 1);
        // After a reconnect the PBX lists one other channel: our call is gone.
        p.on_message(
            &msg(&[
                ("Event", "CoreShowChannel"),
                ("Channel", "PJSIP/101-00000002"),
                ("Uniqueid", "1700000050.2"),
                ("Linkedid", "1700000050.2"),
                ("Context", "from-internal"),
                ("Extension", "102"),
                ("Application", "Dial"),
                ("Duration", "00:00:03"),
            ]),
            t,
        )
        .unwrap();
        assert!(
            p.sink().is_empty(),
            "nothing happens before the list is complete"
        );
        p.on_message(
            &msg(&[
                ("Event", "CoreShowChannelsComplete"),
                ("EventList", "Complete"),
                ("ListItems", "1"),
            ]),
            t,
        )
        .unwrap();
        let done = p.sink();
        assert_eq!(done.len(), 1);
        assert!(done[0].gap);
        assert_eq!(done[0].number, "79161234567");
    }

    #[test]
    fn a_saved_state_that_is_not_ours_is_refused_without_touching_the_tracker() {
        let mut p = Pipeline::new(TrackerConfig::default(), Vec::new());
        for bad in [
            &b""[..],
            b"garbage without a blank line",
            b"Event: Newchannel\r\nUniqueid: 1.1\r\n\r\n",
            b"Event: MissedcalldSavedCalls\r\nSavedAt: soon\r\n\r\n",
        ] {
            let err = p.restore(bad).expect_err("not a saved state");
            assert!(
                err.to_string().starts_with("the saved calls in progress"),
                "{err}"
            );
        }
        assert_eq!(p.tracker().in_progress(), 0);
    }

    #[test]
    fn a_list_before_any_stamped_event_waits_for_the_pbx_clock() {
        // A fresh start: our clock is a day ahead of the PBX's.
        let mut p = Pipeline::new(TrackerConfig::default(), Vec::new());
        let ours = LocalTime::from_micros(1_700_086_400_000_000);
        let caller = msg(&[
            ("Event", "CoreShowChannel"),
            ("Channel", "PJSIP/trunk-00000001"),
            ("Uniqueid", "1700000000.1"),
            ("Linkedid", "1700000000.1"),
            ("CallerIDNum", "79161234567"),
            ("Context", "ivr-1"),
            ("Extension", "s"),
            ("Application", "BackGround"),
            ("Duration", "00:00:10"),
        ]);
        p.on_channels(&[caller], ours).unwrap();
        assert_eq!(p.tracker().in_progress(), 0, "waits for the PBX's clock");
        let hangup = msg(&[
            ("Event", "Hangup"),
            ("Timestamp", "1700000005.000000"),
            ("Channel", "PJSIP/trunk-00000001"),
            ("Uniqueid", "1700000000.1"),
            ("Linkedid", "1700000000.1"),
            ("CallerIDNum", "79161234567"),
            ("Context", "ivr-1"),
        ]);
        p.on_message(&hangup, ours).unwrap();
        let done = &p.sink()[0];
        assert_eq!(done.started_at, EventTime::from_secs_f64(1_699_999_994.5));
        assert_eq!(done.wait_seconds, 10.5);
    }
}
