//! Call tracking: routes AMI events to one pure state machine per call and reports each
//! inbound or outbound call when it ends.
//!
//! Routing: an event goes to the call that already owns its channel (`Uniqueid`), else to the
//! call of its `Linkedid`; a dial joins the dialled channel to the dialling channel's call
//! (Asterisk 1.8/11 has no `Linkedid`). Memory stays bounded: a call is dropped when its last
//! channel hangs up, and a call that stops receiving events is finished with the `gap` flag
//! after `expire_after_secs`.

pub mod apps;
pub mod channel;
pub mod config;
pub mod inbound;
pub mod journal;
pub mod legs;
pub mod machine;
pub mod outbound;
pub mod outcome;
mod reconcile;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use channel::{ChanId, Phones, chan_id};
use journal::Journal;

pub use config::TrackerConfig;
pub use machine::{Call, Notice};
pub use outcome::{
    AgentAttempt, AttemptOutcome, Direction, FinishedCall, Forward, ForwardOutcome, GapWindow,
    LossReason,
};

use crate::ami::Message;
use crate::ami::event::Event;
use crate::time::EventTime;

/// Calls from external numbers that a context not known as inbound must see before a notice
/// says so, when the calls were not taken as inbound (one taken in is reported at once).
const NOTICE_AFTER_CALLS: u32 = 3;

/// How often (in event time) stale calls are looked for.
const EXPIRY_SWEEP_SECS: i64 = 60;

type CallId = u64;

/// Maps keyed by ids that are already hashes.
type IdMap<V> = HashMap<ChanId, V, foldhash::fast::FixedState>;

/// Every call in progress, keyed for routing.
///
/// `by_linkedid` routes most events. `by_uniqueid` holds only the channels that must not
/// follow a changing `Linkedid` (the caller, the outbound extension) and channels without a
/// `Linkedid` (Asterisk 1.8/11), which keeps it to about one entry per call.
#[derive(Debug)]
pub struct Tracker {
    cfg: TrackerConfig,
    calls: IdMap<Call>,
    by_uniqueid: IdMap<CallId>,
    by_linkedid: IdMap<CallId>,
    next_id: CallId,
    last_sweep: EventTime,
    latest: EventTime,
    /// The frames each call in progress consumed (saved at shutdown, see [`journal`]).
    journal: Journal,
    /// Whether [`Tracker::journal`] is kept (see [`Tracker::keep_journal`]).
    journaling: bool,
    /// Calls that went through a gap, with its window (see [`reconcile`]).
    gaps: IdMap<GapWindow>,
    /// Since when we have been blind (link lost, restored state), until the next resync.
    blind_since: Option<EventTime>,
    /// Calls seen per unknown context, and the contexts already reported.
    unknown_contexts: HashMap<String, u32>,
    reported_contexts: HashSet<String>,
    notices: Vec<Notice>,
    /// Peers rung as phones: never taken for trunks.
    phones: Phones,
}

/// Events that may start tracking a channel we have not seen yet (mid-stream start).
/// Not `NewCallerid`: Asterisk 20 sends one for a Local half after its `Hangup`.
fn may_create(ev: &Event<'_>) -> bool {
    matches!(
        ev,
        Event::Newchannel(_)
            | Event::Newexten { .. }
            | Event::Newstate(_)
            | Event::VarSet { .. }
            | Event::QueueCallerJoin { .. }
            | Event::DialBegin { .. }
    )
}

impl Tracker {
    /// An empty tracker.
    pub fn new(cfg: TrackerConfig) -> Tracker {
        Tracker {
            cfg,
            calls: IdMap::default(),
            by_uniqueid: IdMap::default(),
            by_linkedid: IdMap::default(),
            next_id: 0,
            last_sweep: EventTime::default(),
            latest: EventTime::default(),
            journal: Journal::default(),
            journaling: true,
            gaps: IdMap::default(),
            blind_since: None,
            unknown_contexts: HashMap::new(),
            reported_contexts: HashSet::new(),
            notices: Vec::new(),
            phones: Phones::default(),
        }
    }

    /// Notices for the admin raised since the last call (each context is reported once).
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    fn on_notice(&mut self, notice: Notice) {
        let Notice::UnknownInboundContext { context, inbound } = &notice;
        if self.reported_contexts.contains(context) {
            return;
        }
        let seen = self.unknown_contexts.entry(context.clone()).or_insert(0);
        *seen += 1;
        if *inbound || *seen >= NOTICE_AFTER_CALLS {
            self.unknown_contexts.remove(context);
            self.reported_contexts.insert(context.clone());
            self.notices.push(notice);
        }
    }

    /// Replaces the settings (SIGHUP); calls in progress keep their classification.
    pub fn set_config(&mut self, cfg: TrackerConfig) {
        self.cfg = cfg;
    }

    /// Calls in progress.
    pub fn in_progress(&self) -> usize {
        self.calls.len()
    }

    /// The newest event time seen.
    pub fn latest(&self) -> EventTime {
        self.latest
    }

    /// Feeds one AMI message; calls it ended are appended to `out`. `unstamped_at` is the time
    /// (on the PBX's clock) of an event without a `Timestamp` header. Returns the message's
    /// `Timestamp`, so the caller learns the PBX's clock without parsing it again.
    pub fn on_message(
        &mut self,
        msg: &Message,
        unstamped_at: EventTime,
        out: &mut Vec<FinishedCall>,
    ) -> Option<EventTime> {
        let (ev, stamp) = Event::parse(msg);
        if matches!(ev, Event::Other) {
            if msg.event_name() == Some(reconcile::ADOPTED_CALLER) {
                self.on_adopted_caller(msg, stamp.unwrap_or(unstamped_at));
            }
            return stamp;
        }
        let at = stamp.unwrap_or(unstamped_at);
        self.latest = self.latest.max(at);
        match ev {
            // The PBX stops: the callers still up are cut off now.
            Event::Shutdown => self.finish_where(|_| true, |_| GapWindow::new(at, at), out),
            Event::FullyBooted => {
                // A (re)booted PBX: calls older than its uptime cannot exist any more; they
                // ended between the last moment we saw them and the boot.
                if let Some(uptime) = msg
                    .get_str("Uptime")
                    .and_then(|u| u.trim().parse::<i64>().ok())
                {
                    let booted_at = at.plus_secs(-uptime);
                    let blind = self.blind_since;
                    self.finish_where(
                        |c| c.last_at() < booted_at,
                        |c| GapWindow::new(blind.unwrap_or(c.last_at()), booted_at),
                        out,
                    );
                }
            }
            Event::LegacyBridge { uniqueid1, .. } => {
                let one = chan_id(uniqueid1);
                let id = self
                    .by_uniqueid
                    .get(&one)
                    .or_else(|| self.by_linkedid.get(&one));
                if let Some(&id) = id {
                    self.dispatch(id, one, &ev, at, out);
                    self.journal_frame(id, msg, at);
                }
            }
            _ => {
                if let Some(id) = self.route(&ev, at, out)
                    && self.journaling
                    && self.worth_journaling(&ev)
                {
                    self.journal_frame(id, msg, at);
                }
            }
        }
        if at.0 - self.last_sweep.0 > EXPIRY_SWEEP_SECS * 1_000_000 {
            self.last_sweep = at;
            self.expire(at, out);
        }
        stamp
    }

    /// Routes a channel event to its call; returns the call it went to.
    fn route(
        &mut self,
        ev: &Event<'_>,
        at: EventTime,
        out: &mut Vec<FinishedCall>,
    ) -> Option<CallId> {
        let chan = ev.channel()?;
        let uid = chan_id(chan.uniqueid);
        if uid == 0 {
            return None;
        }
        let linked = chan.linkedid.map_or(0, chan_id);
        let known = self
            .by_uniqueid
            .get(&uid)
            .or_else(|| self.by_linkedid.get(&linked))
            // Asterisk 1.8/11: a call without Linkedid is keyed by its first channel's id.
            .or_else(|| self.by_linkedid.get(&uid))
            .copied();
        let id = match known {
            Some(id) => id,
            None if may_create(ev) => {
                let key = chan
                    .linkedid
                    .filter(|l| !l.is_empty())
                    .unwrap_or(chan.uniqueid);
                self.create(key, at)
            }
            None => return None,
        };
        if linked == 0 && !self.by_uniqueid.contains_key(&uid) {
            self.by_uniqueid.insert(uid, id);
        }
        if let Event::DialBegin { dest, .. } = ev {
            self.join_dialled(id, dest.uniqueid, dest.channel, at);
        }
        self.dispatch(id, uid, ev, at, out);
        Some(id)
    }

    /// False for events that change nothing the tracker keeps: the many `VarSet`s of
    /// variables it does not read (FreePBX sets dozens per call), left out of the journal.
    fn worth_journaling(&self, ev: &Event<'_>) -> bool {
        match ev {
            Event::VarSet {
                variable, value, ..
            } => !matches!(
                apps::decode_var(
                    &String::from_utf8_lossy(variable),
                    &String::from_utf8_lossy(value),
                    &self.cfg
                ),
                apps::Var::Ignored
            ),
            _ => true,
        }
    }

    /// Whether to keep the frames of each call in progress for [`Tracker::save_in_progress`]
    /// (on by default). A replay turns it off: nothing saves its calls, and the copy of every
    /// routed frame was a tenth of its tracking time.
    pub fn keep_journal(&mut self, on: bool) {
        self.journaling = on;
        if !on {
            self.journal = Journal::default();
        }
    }

    /// Keeps `msg` in the journal of call `id` while the call is in progress.
    fn journal_frame(&mut self, id: CallId, msg: &Message, at: EventTime) {
        if !self.journaling {
            return;
        }
        match self.calls.get(&id) {
            Some(call) if !call.is_finished() => self.journal.record(id, msg, at),
            _ => self.journal.forget(id),
        }
    }

    fn create(&mut self, key: &[u8], at: EventTime) -> CallId {
        let id = self.next_id;
        self.next_id += 1;
        self.calls.insert(id, Call::new(key, at));
        self.by_linkedid.insert(chan_id(key), id);
        id
    }

    /// Puts a dialled channel into the dialling call, merging the separate call it may have
    /// started (Asterisk 1.8/11, where it had no `Linkedid` to join by).
    fn join_dialled(&mut self, id: CallId, uniqueid: &[u8], name: &[u8], at: EventTime) {
        let dest = chan_id(uniqueid);
        if dest == 0 {
            return;
        }
        let other = self
            .by_uniqueid
            .get(&dest)
            .or_else(|| self.by_linkedid.get(&dest))
            .copied();
        match other {
            Some(other) if other != id => {
                let mergeable = self.calls.get(&other).is_some_and(Call::is_unclassified);
                if !mergeable {
                    return;
                }
                if let Some(absorbed) = self.calls.remove(&other) {
                    let key = chan_id(absorbed.linkedid().as_bytes());
                    if self.by_linkedid.get(&key) == Some(&other) {
                        self.by_linkedid.remove(&key);
                    }
                    for ch in absorbed.channel_ids() {
                        self.by_uniqueid.insert(ch, id);
                    }
                    self.journal.absorb(id, other);
                    if let Some(w) = self.gaps.remove(&other) {
                        self.gaps.entry(id).or_insert(w);
                    }
                    if let Some(call) = self.calls.get_mut(&id) {
                        call.absorb(absorbed);
                    }
                }
            }
            Some(_) => {}
            None => {
                if let Some(call) = self.calls.get_mut(&id)
                    && call.add_channel(dest, name, at)
                {
                    self.by_uniqueid.insert(dest, id);
                }
            }
        }
    }

    fn dispatch(
        &mut self,
        id: CallId,
        uid: ChanId,
        ev: &Event<'_>,
        at: EventTime,
        out: &mut Vec<FinishedCall>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let principal_before = call.principal();
        if let Some(mut done) = call.on_event(ev, at, &self.cfg, &self.phones) {
            reconcile::mark_gap(&self.gaps, id, &mut done);
            out.push(done);
        }
        let notice = call.take_notice();
        for phone in call.take_rang_phones() {
            self.phones.learn(&phone);
        }
        // The caller/outbound channel stays with its call even if its Linkedid changes.
        let principal = call.principal();
        if principal != principal_before
            && let Some(p) = principal
        {
            self.by_uniqueid.insert(p, id);
        }
        let empty = call.is_empty();
        if let Event::Hangup { .. } = ev {
            self.by_uniqueid.remove(&uid);
        }
        if empty {
            self.remove(id);
        }
        if let Some(notice) = notice {
            self.on_notice(notice);
        }
    }

    fn remove(&mut self, id: CallId) {
        self.journal.forget(id);
        self.gaps.remove(&id);
        if let Some(call) = self.calls.remove(&id) {
            for ch in call.channel_ids().chain(call.principal()) {
                if self.by_uniqueid.get(&ch) == Some(&id) {
                    self.by_uniqueid.remove(&ch);
                }
            }
            let key = chan_id(call.linkedid().as_bytes());
            if self.by_linkedid.get(&key) == Some(&id) {
                self.by_linkedid.remove(&key);
            }
        }
    }

    /// Finishes (with the `gap` flag) and drops every call matching `pred`, oldest first.
    /// `window` is when each one's unseen end happened; it ended, as far as we know, at the
    /// window's start.
    fn finish_where(
        &mut self,
        pred: impl Fn(&Call) -> bool,
        window: impl Fn(&Call) -> GapWindow,
        out: &mut Vec<FinishedCall>,
    ) {
        let mut ids: Vec<(EventTime, CallId)> = self
            .calls
            .iter()
            .filter(|(_, c)| pred(c))
            .map(|(&id, c)| (c.first_at(), id))
            .collect();
        ids.sort();
        for (_, id) in ids {
            if let Some(call) = self.calls.get_mut(&id) {
                let w = window(call);
                let end = w.started_at.max(call.first_at());
                if let Some(mut done) = call.finish(end, true) {
                    done.gap_window = Some(GapWindow::new(end, w.ended_at));
                    out.push(done);
                }
            }
            self.remove(id);
        }
    }

    /// Ends every call in progress (the end of a replay), each at its last event.
    pub fn finish_all(&mut self, at: EventTime, out: &mut Vec<FinishedCall>) {
        self.finish_where(|_| true, |c| GapWindow::new(c.last_at().min(at), at), out);
    }

    /// Finishes calls that saw no event for `expire_after_secs` before `now`.
    pub fn expire(&mut self, now: EventTime, out: &mut Vec<FinishedCall>) {
        let limit = now.plus_secs(-(self.cfg.expire_after_secs as i64));
        self.finish_where(
            |c| c.last_at() < limit,
            |c| GapWindow::new(c.last_at(), now),
            out,
        );
    }

    /// The journal of the calls in progress as one AMI stream (see [`journal`]), and how
    /// many calls it holds. `clock_offset` (µs, the PBX's clock minus ours) is saved with it.
    pub fn save_in_progress(&self, clock_offset: Option<i64>) -> (Vec<u8>, usize) {
        let saved_at = self.blind_since.unwrap_or(self.latest);
        self.journal.save(
            |id| self.calls.get(&id).is_some_and(|c| !c.is_finished()),
            saved_at,
            clock_offset,
        )
    }

    /// Bytes and calls held by the journal.
    pub fn journal_size(&self) -> (usize, usize) {
        (self.journal.bytes(), self.journal.calls())
    }
}
