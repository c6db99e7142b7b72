//! Reconciliation after a gap: when the AMI link comes back, the daemon restarts or the PBX
//! restarts, the `CoreShowChannels` list is the truth about which channels survived.
//!
//! For each call we tracked before the gap (AMI-FACTS 12, SPEC 3 and 4):
//! - its inbound caller is listed and bridged (same `BridgeId`, possibly through `Local`
//!   `;1`/`;2` halves) with a human device leg: it was answered by that leg's agent at an
//!   unknown moment inside the gap;
//! - its caller (or outbound extension) is gone: it ended inside the gap; it is finished with
//!   what was known before the gap (waits, ring starts, the stage) and the gap window;
//! - legs that were ringing and are gone stopped ringing inside the gap;
//! - anything else (a caller still in the IVR or the queue) is kept as it is.
//!
//! Channels we do not know are adopted; their start is fixed from the listed `Duration`. An
//! adopted first channel with an external caller id is an inbound caller, whatever dialplan
//! it is in now, so a caller still in the IVR after a crash is never dropped.
//!
//! Invariants: an answered call never becomes a missed one (answers are sticky and only ever
//! added here); every call finished here carries `gap` and its window.

use std::collections::HashMap;

use super::channel::{ChanId, agent_from_channel, chan_id, is_number, local_pair_id};
use super::{CallId, FinishedCall, GapWindow, IdMap, Tracker};
use crate::ami::Message;
use crate::ami::event::ChannelInfo;
use crate::time::EventTime;

/// The synthetic event that marks an adopted channel as an inbound caller. It goes through
/// [`Tracker::on_message`] like any event so the call journal replays it after a restart.
pub(super) const ADOPTED_CALLER: &[u8] = b"MissedcalldAdoptedCaller";

/// One `CoreShowChannel` item.
#[derive(Debug)]
struct Listed<'a> {
    id: ChanId,
    name: &'a [u8],
    bridge: &'a [u8],
    application: &'a [u8],
}

impl Listed<'_> {
    fn is_local(&self) -> bool {
        self.name.starts_with(b"Local/")
    }

    /// A dialled leg towards a device (`AppDial`/`AppQueue` "(Outgoing Line)").
    fn is_dialled_leg(&self) -> bool {
        let a = self.application;
        a.len() >= 6 && a[..6].eq_ignore_ascii_case(b"AppDia")
            || a.eq_ignore_ascii_case(b"AppQueue")
    }

    fn is_voicemail(&self) -> bool {
        self.application.eq_ignore_ascii_case(b"VoiceMail")
            || self.application.eq_ignore_ascii_case(b"Record")
    }
}

/// The channel list, indexed by channel, bridge and Local pair.
#[derive(Debug)]
struct Listing<'a> {
    items: Vec<Listed<'a>>,
    by_id: HashMap<ChanId, usize>,
    by_bridge: HashMap<&'a [u8], Vec<usize>>,
    by_pair: HashMap<ChanId, Vec<usize>>,
}

impl<'a> Listing<'a> {
    fn new(channels: &'a [Message]) -> Listing<'a> {
        let mut l = Listing {
            items: Vec::with_capacity(channels.len()),
            by_id: HashMap::new(),
            by_bridge: HashMap::new(),
            by_pair: HashMap::new(),
        };
        for m in channels {
            let id = chan_id(m.get("Uniqueid").unwrap_or_default());
            if id == 0 {
                continue;
            }
            let item = Listed {
                id,
                name: m.get("Channel").unwrap_or_default(),
                bridge: m.get("BridgeId").unwrap_or_default(),
                application: m.get("Application").unwrap_or_default(),
            };
            let i = l.items.len();
            l.by_id.insert(id, i);
            if !item.bridge.is_empty() {
                l.by_bridge.entry(item.bridge).or_default().push(i);
            }
            let pair = local_pair_id(item.name);
            if pair != 0 {
                l.by_pair.entry(pair).or_default().push(i);
            }
            l.items.push(item);
        }
        l
    }

    fn contains(&self, id: ChanId) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Every channel connected to `from` through bridges and Local pairs, nearest first.
    fn connected(&self, from: ChanId) -> Vec<&Listed<'a>> {
        let Some(&start) = self.by_id.get(&from) else {
            return Vec::new();
        };
        let mut seen = vec![start];
        let mut next = 0;
        while next < seen.len() {
            let item = &self.items[seen[next]];
            next += 1;
            let bridged = self.by_bridge.get(item.bridge).into_iter().flatten();
            let paired = self
                .by_pair
                .get(&local_pair_id(item.name))
                .into_iter()
                .flatten();
            for &j in bridged.chain(paired) {
                if !seen.contains(&j) {
                    seen.push(j);
                }
            }
        }
        seen[1..].iter().map(|&i| &self.items[i]).collect()
    }
}

/// Who answered a listed caller: the agent and the leg, if a human device is bridged with it.
fn bridged_agent(
    listing: &Listing<'_>,
    caller: ChanId,
    legs: &[(ChanId, Box<str>, bool)],
) -> Option<(Box<str>, ChanId)> {
    let reached = listing.connected(caller);
    // A chain ending in voicemail is no human, and a caller bridged only with Local halves
    // (an announcement, a conference) was not answered by anyone we can name.
    if reached.iter().any(|c| c.is_voicemail()) {
        return None;
    }
    let device = reached
        .iter()
        .find(|c| !c.is_local() && c.is_dialled_leg())?;
    // Prefer the leg we saw ring: its agent name is the one the attempt carries.
    if let Some((dest, agent, _)) = legs
        .iter()
        .find(|(dest, _, _)| reached.iter().any(|c| c.id == *dest))
    {
        return Some((agent.clone(), *dest));
    }
    let agent: Box<str> = agent_from_channel(&String::from_utf8_lossy(device.name)).into();
    if let Some((dest, agent, _)) = legs.iter().find(|(_, a, _)| *a == agent) {
        return Some((agent.clone(), *dest));
    }
    Some((agent, device.id))
}

/// Stamps a finished call with the gap window of its call, if it has one.
pub(super) fn mark_gap(gaps: &IdMap<GapWindow>, id: CallId, done: &mut FinishedCall) {
    if let Some(w) = gaps.get(&id) {
        done.gap = true;
        done.gap_window = Some(*w);
    }
}

/// `HH:MM:SS` (CoreShowChannel `Duration`) in seconds.
fn parse_hms(s: &str) -> Option<i64> {
    let mut total = 0i64;
    for part in s.trim().split(':') {
        total = total * 60 + part.parse::<i64>().ok()?;
    }
    Some(total)
}

impl Tracker {
    /// The daemon cannot see the PBX from now on (link lost, shutting down): the gap starts
    /// at the newest event seen, after which any unseen change must have happened.
    pub fn mark_blind(&mut self) {
        if self.blind_since.is_none() {
            self.blind_since = Some(self.latest);
        }
    }

    /// The gap started at `at` (restored state: the moment the previous run stopped).
    pub fn set_blind_since(&mut self, at: EventTime) {
        self.blind_since = Some(at);
    }

    /// After a (re)connect: `channels` are the `CoreShowChannel` items the PBX listed at `at`.
    /// Reconciles every tracked call with them (see the module doc), then adopts the channels
    /// we do not know so their calls are tracked from here on.
    pub fn resync(&mut self, channels: &[Message], at: EventTime, out: &mut Vec<FinishedCall>) {
        let listing = Listing::new(channels);
        let blind_since = self.blind_since.take().unwrap_or(self.latest).min(at);
        let window = GapWindow::new(blind_since, at);
        let live = |id: ChanId| listing.contains(id);

        // Calls whose caller (or outbound extension) is gone ended inside the gap.
        self.finish_where(
            |c| match c.principal() {
                Some(p) if !c.is_finished() => !live(p),
                _ => !c.channel_ids().any(live),
            },
            |_| window,
            out,
        );
        let ids: Vec<CallId> = self.calls.keys().copied().collect();
        for id in ids {
            self.reconcile_live(id, &listing, window);
        }
        for item in channels {
            self.adopt(item, at, out);
        }
        // An adopted caller may already be talking to an agent.
        let ids: Vec<CallId> = self.calls.keys().copied().collect();
        for id in ids {
            if let Some(w) = self.gaps.get(&id).copied() {
                self.answer_if_bridged(id, &listing, w);
            }
        }
    }

    /// A tracked call whose caller survived the gap: drop the channels that are gone, end the
    /// legs that stopped ringing, and see whether it was answered meanwhile.
    fn reconcile_live(&mut self, id: CallId, listing: &Listing<'_>, window: GapWindow) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let gone: Vec<ChanId> = call
            .channel_ids()
            .filter(|&c| !listing.contains(c))
            .collect();
        call.retain_channels(|c| listing.contains(c));
        call.end_gone_legs(|c| listing.contains(c), window.started_at);
        for c in gone {
            if self.by_uniqueid.get(&c) == Some(&id) {
                self.by_uniqueid.remove(&c);
            }
        }
        self.answer_if_bridged(id, listing, window);
        if self.calls.get(&id).is_some_and(|c| c.is_empty()) {
            self.remove(id);
        }
    }

    /// Answers the call's caller if the listing shows it bridged with a human device leg.
    fn answer_if_bridged(&mut self, id: CallId, listing: &Listing<'_>, window: GapWindow) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(caller) = call.caller_channel() else {
            return;
        };
        if call.is_answered() {
            return;
        }
        if let Some((agent, via)) = bridged_agent(listing, caller, &call.legs()) {
            call.answer_unseen(agent, via, window.started_at);
            self.gaps.insert(id, window);
        }
    }

    /// Tracks a channel listed by `CoreShowChannels` as if we had seen it start `Duration`
    /// ago; the first channel of a call with an external caller id becomes its inbound caller.
    fn adopt(&mut self, item: &Message, at: EventTime, out: &mut Vec<FinishedCall>) {
        let Some(uniqueid) = item.get("Uniqueid") else {
            return;
        };
        let uid = chan_id(uniqueid);
        if uid == 0
            || self.by_uniqueid.contains_key(&uid)
            || self
                .calls
                .values()
                .any(|c| c.channel_ids().any(|ch| ch == uid))
        {
            return;
        }
        // `Duration` counts whole seconds: the channel is that plus half a second old.
        let started = item
            .get_str("Duration")
            .and_then(|d| parse_hms(&d))
            .map_or(at, |secs| EventTime(at.0 - secs * 1_000_000 - 500_000));
        let get = |k: &str| item.get(k).unwrap_or_default();
        let context = get("Context");
        // The current extension is the DID only while the caller is still where it entered.
        let inbound_context = self
            .cfg
            .is_inbound_context(&String::from_utf8_lossy(context));
        let exten = if inbound_context {
            get("Extension")
        } else {
            b""
        };
        let stamp = format!("{:.6}", started.as_secs_f64());
        let mut pairs: Vec<(&str, &[u8])> = vec![
            ("Event", b"Newchannel"),
            ("Timestamp", stamp.as_bytes()),
            ("Channel", get("Channel")),
            ("Uniqueid", uniqueid),
            ("Linkedid", get("Linkedid")),
            ("Context", context),
            ("Exten", exten),
            ("CallerIDNum", get("CallerIDNum")),
            ("CallerIDName", get("CallerIDName")),
        ];
        self.on_message(&Message::from_pairs(&pairs), started, out);
        let linkedid = get("Linkedid");
        let first = linkedid.is_empty() || linkedid == uniqueid;
        let name = get("Channel");
        let cid = String::from_utf8_lossy(get("CallerIDNum"));
        let external =
            is_number(&cid) && cid.trim_start_matches('+').len() > self.cfg.internal_max_length;
        let outgoing = Listed {
            id: uid,
            name,
            bridge: b"",
            application: get("Application"),
        }
        .is_dialled_leg();
        if first && external && !name.starts_with(b"Local/") && !outgoing {
            pairs[0] = ("Event", ADOPTED_CALLER);
            self.on_message(&Message::from_pairs(&pairs), started, out);
        }
        let now = format!("{:.6}", at.as_secs_f64());
        pairs[0] = ("Event", b"Newexten");
        pairs[1] = ("Timestamp", now.as_bytes());
        pairs.push(("Application", get("Application")));
        pairs.push(("AppData", get("ApplicationData")));
        self.on_message(&Message::from_pairs(&pairs), at, out);
        if let Some(&id) = self.by_uniqueid.get(&uid).or_else(|| {
            self.by_linkedid
                .get(&chan_id(if first { uniqueid } else { linkedid }))
        }) && !self.gaps.contains_key(&id)
        {
            self.gaps.insert(id, GapWindow::new(started, at));
        }
    }

    /// The synthetic [`ADOPTED_CALLER`] event: the channel is its call's inbound caller.
    pub(super) fn on_adopted_caller(&mut self, msg: &Message, at: EventTime) {
        let get = |k: &str| msg.get(k).unwrap_or_default();
        let uniqueid = get("Uniqueid");
        let uid = chan_id(uniqueid);
        let Some(&id) = self
            .by_uniqueid
            .get(&uid)
            .or_else(|| self.by_linkedid.get(&chan_id(get("Linkedid"))))
            .or_else(|| self.by_linkedid.get(&uid))
        else {
            return;
        };
        let chan = ChannelInfo {
            channel: get("Channel"),
            uniqueid,
            linkedid: msg.get("Linkedid"),
            context: get("Context"),
            exten: get("Exten"),
            priority: get("Priority"),
            caller_id_num: get("CallerIDNum"),
            caller_id_name: get("CallerIDName"),
        };
        if let Some(call) = self.calls.get_mut(&id) {
            call.adopt_caller(&chan, uid, at);
            if call.principal() == Some(uid) {
                self.by_uniqueid.insert(uid, id);
            }
        }
        self.journal_frame(id, msg, at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::{LossReason, TrackerConfig};

    const T0: f64 = 1_700_000_000.0;
    const CALLER: (&str, &str) = ("PJSIP/trunk-00000001", "1700000000.1");
    const LINKED: &str = "1700000000.1";

    struct Run {
        tracker: Tracker,
        out: Vec<FinishedCall>,
    }

    fn t(secs: f64) -> EventTime {
        EventTime::from_secs_f64(T0 + secs)
    }

    impl Run {
        fn new() -> Run {
            Run {
                tracker: Tracker::new(TrackerConfig::default()),
                out: Vec::new(),
            }
        }

        /// One event of `chan` at `secs`, with the caller's id and the call's Linkedid.
        fn ev(&mut self, secs: f64, name: &str, chan: (&str, &str), extra: &[(&str, &str)]) {
            let ts = format!("{:.6}", T0 + secs);
            let mut pairs = vec![
                ("Event", name),
                ("Timestamp", ts.as_str()),
                ("Channel", chan.0),
                ("Uniqueid", chan.1),
                ("Linkedid", LINKED),
                ("CallerIDNum", "79161234567"),
                ("Context", "from-pstn"),
                ("Exten", "74951234567"),
            ];
            pairs.extend_from_slice(extra);
            let msg = Message::from_pairs(&pairs);
            self.tracker.on_message(&msg, t(secs), &mut self.out);
        }

        fn app(&mut self, secs: f64, chan: (&str, &str), app: &str, data: &str) {
            self.ev(
                secs,
                "Newexten",
                chan,
                &[("Application", app), ("AppData", data)],
            );
        }

        /// A caller enters from the trunk at 0 s and joins queue 400 at 2 s.
        fn queue_caller(&mut self) {
            self.ev(0.0, "Newchannel", CALLER, &[]);
            self.app(0.5, CALLER, "Answer", "");
            self.app(2.0, CALLER, "Queue", "400,t");
        }

        /// The queue rings `member` over the Local channel `leg` from `secs`.
        fn ring(&mut self, secs: f64, member: &str, leg: (&str, &str)) {
            self.ev(secs, "Newchannel", leg, &[("Context", "from-queue")]);
            self.ev(
                secs,
                "AgentCalled",
                CALLER,
                &[
                    ("DestChannel", leg.0),
                    ("DestUniqueid", leg.1),
                    ("DestLinkedid", LINKED),
                    ("Queue", "400"),
                    ("MemberName", member),
                    ("Interface", member),
                ],
            );
        }

        fn resync(&mut self, secs: f64, items: &[&[(&str, &str)]]) {
            let msgs: Vec<Message> = items
                .iter()
                .map(|pairs| {
                    let mut p = vec![("Event", "CoreShowChannel")];
                    p.extend_from_slice(pairs);
                    Message::from_pairs(&p)
                })
                .collect();
            self.tracker.resync(&msgs, t(secs), &mut self.out);
        }
    }

    const LOCAL1: (&str, &str) = ("Local/101@from-queue-0000000f;1", "1700000003.3");
    const LOCAL2: (&str, &str) = ("Local/101@from-queue-0000000f;2", "1700000003.4");
    const LOCAL_102: (&str, &str) = ("Local/102@from-queue-00000010;1", "1700000003.5");

    fn listed<'a>(
        chan: (&'a str, &'a str),
        bridge: &'a str,
        app: &'a str,
        duration: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        vec![
            ("Channel", chan.0),
            ("Uniqueid", chan.1),
            ("Linkedid", LINKED),
            ("BridgeId", bridge),
            ("Application", app),
            ("Duration", duration),
            ("CallerIDNum", "79161234567"),
            ("Context", "ext-queues"),
            ("Extension", "400"),
        ]
    }

    #[test]
    fn a_caller_bridged_with_a_leg_that_rang_was_answered_inside_the_gap() {
        let mut r = Run::new();
        r.queue_caller();
        r.ring(3.0, "Local/101@from-queue/n", LOCAL1);
        r.ring(3.0, "Local/102@from-queue/n", LOCAL_102);
        r.tracker.mark_blind();
        // Back at 15 s: caller ⇄ Local;1 (bridge a), Local;2 ⇄ the phone (bridge b); 102 is gone.
        let caller = listed(CALLER, "a", "Queue", "00:00:15");
        let l1 = listed(LOCAL1, "a", "AppQueue", "00:00:12");
        let l2 = listed(LOCAL2, "b", "Dial", "00:00:12");
        let phone = listed(
            ("PJSIP/101-00000022", "1700000003.6"),
            "b",
            "AppDial",
            "00:00:12",
        );
        r.resync(15.0, &[&caller, &l1, &l2, &phone]);
        assert!(r.out.is_empty(), "{:?}", r.out);
        r.ev(35.0, "Hangup", CALLER, &[]);
        let done = r.out.pop().expect("the call ends at the caller's hangup");
        assert!(done.answered && done.missed.is_none(), "{done:?}");
        assert_eq!(done.agent.as_deref(), Some("101"));
        assert!(done.gap);
        assert_eq!(done.gap_window, Some(GapWindow::new(t(3.0), t(15.0))));
        let a102 = done.attempts.iter().find(|a| a.agent == "102").unwrap();
        assert_eq!(
            a102.ring_seconds, 0.0,
            "102 stopped ringing inside the gap: {a102:?}"
        );
    }

    #[test]
    fn a_caller_gone_after_the_gap_keeps_the_waits_known_before_it() {
        let mut r = Run::new();
        r.queue_caller();
        r.ring(3.0, "Local/101@from-queue/n", LOCAL1);
        r.ev(8.0, "Newstate", LOCAL1, &[]);
        r.tracker.mark_blind();
        r.resync(14.0, &[]);
        let done = r.out.pop().expect("finished at the resync");
        let missed = done.missed.as_ref().expect("missed");
        assert_eq!(missed.loss_reason, LossReason::Ringing);
        assert!(done.gap);
        assert_eq!(done.gap_window, Some(GapWindow::new(t(8.0), t(14.0))));
        assert_eq!(done.wait_seconds, 8.0, "not a 0-second call");
        assert_eq!(done.attempts.len(), 1);
        assert_eq!(done.attempts[0].ring_start, t(3.0));
        assert_eq!(done.attempts[0].ring_seconds, 5.0);
        assert_eq!(r.tracker.in_progress(), 0);
    }

    #[test]
    fn an_ivr_caller_still_listed_is_kept_and_ends_normally() {
        let mut r = Run::new();
        r.ev(0.0, "Newchannel", CALLER, &[]);
        r.app(1.0, CALLER, "BackGround", "welcome");
        r.tracker.mark_blind();
        r.resync(10.0, &[&listed(CALLER, "", "BackGround", "00:00:10")]);
        assert!(r.out.is_empty());
        assert_eq!(r.tracker.in_progress(), 1);
        r.ev(20.0, "Hangup", CALLER, &[]);
        let done = r.out.pop().unwrap();
        assert_eq!(done.missed.unwrap().loss_reason, LossReason::Ivr);
        assert_eq!(done.wait_seconds, 20.0);
        assert_eq!(done.did.as_deref(), Some("74951234567"));
        assert!(!done.gap, "nothing about it happened while we were blind");
    }

    #[test]
    fn an_adopted_caller_starts_at_its_listed_duration_even_in_the_ivr() {
        let mut r = Run::new();
        let mut ivr = listed(CALLER, "", "BackGround", "00:00:42");
        ivr.retain(|(k, _)| *k != "Context");
        ivr.push(("Context", "ivr-1"));
        r.resync(100.0, &[&ivr]);
        assert_eq!(r.tracker.in_progress(), 1);
        r.ev(103.0, "Hangup", CALLER, &[("Context", "ivr-1")]);
        let done = r.out.pop().expect("an adopted IVR caller is not dropped");
        assert_eq!(done.started_at, t(57.5));
        assert_eq!(done.wait_seconds, 45.5);
        assert_eq!(done.missed.unwrap().loss_reason, LossReason::Ivr);
        assert_eq!(done.gap_window, Some(GapWindow::new(t(57.5), t(100.0))));
        assert_eq!(
            done.did.as_deref(),
            Some(""),
            "the DID is not the IVR's extension"
        );
    }

    #[test]
    fn an_adopted_caller_bridged_with_a_phone_is_answered_after_a_crash() {
        let mut r = Run::new();
        let caller = listed(CALLER, "a", "Queue", "00:00:30");
        let phone = listed(
            ("PJSIP/101-00000022", "1700000003.6"),
            "a",
            "AppQueue",
            "00:00:20",
        );
        r.resync(100.0, &[&caller, &phone]);
        r.ev(110.0, "Hangup", CALLER, &[]);
        let done = r.out.pop().unwrap();
        assert!(done.answered, "{done:?}");
        assert_eq!(done.agent.as_deref(), Some("101"));
    }

    #[test]
    fn a_caller_bridged_into_voicemail_is_not_answered() {
        let mut r = Run::new();
        r.queue_caller();
        r.ring(3.0, "Local/101@from-queue/n", LOCAL1);
        r.tracker.mark_blind();
        let caller = listed(CALLER, "a", "Queue", "00:00:15");
        let l1 = listed(LOCAL1, "a", "AppQueue", "00:00:12");
        let l2 = listed(LOCAL2, "", "VoiceMail", "00:00:12");
        r.resync(15.0, &[&caller, &l1, &l2]);
        r.ev(30.0, "Hangup", CALLER, &[]);
        let done = r.out.pop().unwrap();
        assert!(!done.answered, "{done:?}");
    }

    #[test]
    fn a_pbx_restart_cuts_callers_off_as_gap_missed_calls_in_their_stage() {
        let mut r = Run::new();
        r.queue_caller();
        r.ring(3.0, "Local/101@from-queue/n", LOCAL1);
        r.tracker.on_message(
            &Message::from_pairs(&[
                ("Event", "Shutdown"),
                ("Timestamp", &format!("{:.6}", T0 + 9.0)),
                ("Shutdown", "Cleanly"),
                ("Restart", "True"),
            ]),
            t(9.0),
            &mut r.out,
        );
        let done = r.out.pop().expect("cut off by the restart");
        assert_eq!(done.missed.unwrap().loss_reason, LossReason::Ringing);
        assert_eq!(done.wait_seconds, 9.0);
        assert_eq!(done.gap_window, Some(GapWindow::new(t(9.0), t(9.0))));
        assert_eq!(r.tracker.in_progress(), 0);
    }

    #[test]
    fn a_pbx_that_rebooted_unseen_ends_the_calls_older_than_its_uptime() {
        let mut r = Run::new();
        r.queue_caller();
        r.tracker.mark_blind();
        r.tracker.on_message(
            &Message::from_pairs(&[("Event", "FullyBooted"), ("Uptime", "5")]),
            t(60.0),
            &mut r.out,
        );
        let done = r.out.pop().expect("the PBX rebooted 5 s ago");
        assert_eq!(done.missed.unwrap().loss_reason, LossReason::Queue);
        assert_eq!(done.gap_window, Some(GapWindow::new(t(2.0), t(55.0))));
        assert_eq!(done.wait_seconds, 2.0);
    }
}
