//! One call's state machine: pure and clock-free. Time comes from the event, so replaying the
//! same events always gives the same [`FinishedCall`].
//!
//! A call starts `Unclassified`. It becomes `Inbound` when a channel runs dialplan in an inbound
//! context, or enters from a trunk with an external caller id (whatever its context is called),
//! or sends an external caller id into `Queue`; that channel is the caller. It becomes
//! `Outbound` when an extension's channel dials an external number. The inbound machine
//! ([`super::inbound`]) follows the caller's stage and the legs rung for it; when the caller (or
//! the outbound extension) hangs up the call is `Finished` (sticky) and the outcome is emitted;
//! the call lives on only until its last channel is gone. Text is decoded here, once, at the
//! edge: the inbound and outbound machines see `&str` and typed steps.

use std::borrow::Cow;

use super::apps::{self, App, Place};
use super::channel::{
    ChanId, Phones, agent_from_channel, chan_id, dialled_number, is_external_number, is_local,
    is_number, is_trunk_peer, is_withheld_word, local_pair_id,
};
use super::config::TrackerConfig;
use super::inbound::{Inbound, Stage};
use super::legs::{Dest, LegEnd, Target};
use super::outbound::Outbound;
use super::outcome::FinishedCall;
use crate::ami::event::{ChannelInfo, DestInfo, Event};
use crate::ami::unescape;
use crate::time::EventTime;

/// A channel that belongs to the call and has not hung up yet.
#[derive(Debug)]
struct Chan {
    id: ChanId,
    /// Shared by the two halves of a Local channel (0 for other channels).
    pair: ChanId,
    first_at: EventTime,
    /// The PBX dialled this channel (a leg, not a call coming in).
    dialled: bool,
}

/// The call's kind and progress.
#[derive(Debug)]
enum CallKind {
    Unclassified,
    Inbound(Box<Inbound>),
    Outbound(Box<Outbound>),
    /// Outcome emitted; waiting for the remaining channels to hang up.
    Finished,
}

/// Something the admin should know about the PBX's dialplan, found while classifying a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A channel that is not an extension's phone brought an external caller id into a context
    /// that is not in `calls.inbound_contexts`; `inbound` tells whether the call was taken as
    /// inbound anyway (its channel is a trunk) or not (it looks like a phone).
    UnknownInboundContext {
        /// The context.
        context: String,
        /// The call was recorded as inbound.
        inbound: bool,
    },
}

/// One call: every channel sharing a `Linkedid` (or joined to it by a dial).
#[derive(Debug)]
pub struct Call {
    linkedid: Box<str>,
    channels: Vec<Chan>,
    /// Channels (and Local pairs) that ran `VoiceMail`/`Record`: if one "answered", no human did.
    voicemail_legs: Vec<ChanId>,
    /// Channels that hung up: an event after their `Hangup` (Asterisk 20 sends a `NewCallerid`
    /// for a Local half) must not bring them back.
    gone: Vec<ChanId>,
    kind: CallKind,
    first_at: EventTime,
    last_at: EventTime,
    notice: Option<Box<Notice>>,
    noticed: bool,
    /// Phones this call rang, for the tracker's [`Phones`].
    rang_phones: Vec<Box<str>>,
}

/// Bytes of a field as text (lossy; borrowed when valid UTF-8).
fn text(raw: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(raw)
}

impl Call {
    /// A new call first seen at `at`.
    pub fn new(linkedid: &[u8], at: EventTime) -> Call {
        Call {
            linkedid: text(linkedid).into(),
            channels: Vec::new(),
            voicemail_legs: Vec::new(),
            gone: Vec::new(),
            kind: CallKind::Unclassified,
            first_at: at,
            last_at: at,
            notice: None,
            noticed: false,
            rang_phones: Vec::new(),
        }
    }

    /// Time of the last event that reached this call.
    pub fn last_at(&self) -> EventTime {
        self.last_at
    }

    /// Time of the first event of this call.
    pub fn first_at(&self) -> EventTime {
        self.first_at
    }

    /// No channel of the call is left: it can be dropped.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// Ids of the channels still up.
    pub fn channel_ids(&self) -> impl Iterator<Item = ChanId> + '_ {
        self.channels.iter().map(|c| c.id)
    }

    /// The channel that carries the call's outcome (inbound caller, outbound extension).
    pub fn principal(&self) -> Option<ChanId> {
        match &self.kind {
            CallKind::Inbound(inb) => Some(inb.caller),
            CallKind::Outbound(out) => Some(out.channel),
            _ => None,
        }
    }

    /// The call's key.
    pub fn linkedid(&self) -> &str {
        &self.linkedid
    }

    /// The notice this call raised, once.
    pub fn take_notice(&mut self) -> Option<Notice> {
        self.notice.take().map(|n| *n)
    }

    /// Phones (channel names) this call rang since the last call.
    pub fn take_rang_phones(&mut self) -> Vec<Box<str>> {
        std::mem::take(&mut self.rang_phones)
    }

    fn chan(&self, id: ChanId) -> Option<&Chan> {
        self.channels.iter().find(|c| c.id == id)
    }

    fn chan_pos(&self, id: ChanId) -> Option<usize> {
        self.channels.iter().position(|c| c.id == id)
    }

    fn dest_of(&self, id: ChanId, name: &[u8]) -> Dest {
        Dest {
            id,
            pair: self
                .chan(id)
                .map_or_else(|| local_pair_id(name), |c| c.pair),
        }
    }

    /// Adds a channel if it is new to the call; true when it was added.
    pub fn add_channel(&mut self, id: ChanId, name: &[u8], at: EventTime) -> bool {
        if id == 0 || self.chan_pos(id).is_some() || self.gone.contains(&id) {
            return false;
        }
        self.channels.push(Chan {
            id,
            pair: local_pair_id(name),
            first_at: at,
            dialled: false,
        });
        true
    }

    fn mark_dialled(&mut self, id: ChanId) {
        if let Some(p) = self.chan_pos(id) {
            self.channels[p].dialled = true;
        }
    }

    /// Moves every channel of `other` into this call (Asterisk 1.8/11 dials, where the
    /// dialled channel had no `Linkedid` to join by).
    pub fn absorb(&mut self, other: Call) {
        for c in other.channels {
            if self.chan_pos(c.id).is_none() {
                self.channels.push(c);
            }
        }
    }

    /// True when this call has not been classified and may be merged into another.
    pub fn is_unclassified(&self) -> bool {
        matches!(self.kind, CallKind::Unclassified)
    }

    fn is_caller(&self, uid: ChanId) -> bool {
        matches!(&self.kind, CallKind::Inbound(inb) if uid == inb.caller)
    }

    fn caller(&mut self, uid: ChanId) -> Option<&mut Inbound> {
        match &mut self.kind {
            CallKind::Inbound(inb) if uid == inb.caller => Some(inb),
            _ => None,
        }
    }

    /// Feeds one event. Returns the finished call when this event ended it (the inbound
    /// caller or the outbound extension hung up). `phones` are the peers rung as phones so far.
    pub fn on_event(
        &mut self,
        ev: &Event<'_>,
        at: EventTime,
        cfg: &TrackerConfig,
        phones: &Phones,
    ) -> Option<FinishedCall> {
        self.last_at = self.last_at.max(at);
        let uid = ev.channel().map_or(0, |c| chan_id(c.uniqueid));
        if let Some(c) = ev.channel() {
            self.add_channel(uid, c.channel, at);
            if let Some(inb) = self.caller(uid) {
                update_caller_id(inb, c);
            }
        }
        match *ev {
            // A trunk channel from the configured patterns makes the call inbound at once.
            Event::Newchannel(c)
                if self.is_unclassified() && cfg.is_trunk_channel(&text(c.channel)) =>
            {
                self.become_inbound(&c, uid, at);
            }
            // Dialplan steps: classification, then the caller's stage.
            Event::Newexten {
                chan,
                application,
                app_data,
            } => self.on_step(&chan, uid, (application, app_data), (cfg, phones), at),
            Event::VarSet {
                variable, value, ..
            } => {
                if let Some(inb) = self.caller(uid) {
                    let value = unescape(value);
                    inb.on_variable(apps::decode_var(&text(variable), &text(&value), cfg));
                }
            }
            // Legs of the caller: queue members, dialled extensions and forwards.
            Event::AgentCalled {
                dest,
                member,
                interface,
                ..
            } => {
                let d = self.dest_of(chan_id(dest.uniqueid), dest.channel);
                let interface_name = text(interface);
                if !interface.is_empty() && !phones.contains(&interface_name) {
                    self.rang_phones.push(interface_name.into());
                }
                if let Some(inb) = self.caller(uid) {
                    inb.ring(member_target(member, interface, dest.channel), d, false, at);
                }
            }
            Event::DialBegin {
                chan: Some(_),
                dest,
            } => self.on_dial_begin(uid, &dest, (cfg, phones), at),
            Event::DialEnd {
                chan: Some(_),
                dest,
                status,
            } => self.on_dial_end(uid, &dest, LegEnd::from_status(status), at),
            Event::AgentRingNoAnswer { dest, .. } => {
                let id = chan_id(dest.uniqueid);
                if let Some(inb) = self.caller(uid) {
                    inb.leg_ended(Some(id), LegEnd::NoAnswer, at);
                }
            }
            // In a queue only `AgentConnect` connects the caller (the member hears an
            // announcement after answering).
            Event::AgentConnect {
                dest,
                member,
                interface,
                ..
            } if self.is_caller(uid) => {
                let fallback = member_target(member, interface, dest.channel);
                self.answer_via(chan_id(dest.uniqueid), dest.channel, Some(fallback), at);
            }
            Event::QueueCallerJoin { queue, .. } => {
                if let Some(inb) = self.caller(uid) {
                    inb.enter_queue(&text(queue), at);
                }
            }
            // Asterisk 1.8/11: the caller bridged with a leg it rang is answered.
            Event::LegacyBridge {
                link: true,
                uniqueid1,
                uniqueid2,
            } => {
                let (one, two) = (chan_id(uniqueid1), chan_id(uniqueid2));
                let other = match &self.kind {
                    CallKind::Inbound(inb) if one == inb.caller => two,
                    CallKind::Inbound(inb) if two == inb.caller => one,
                    _ => return None,
                };
                let known =
                    matches!(&self.kind, CallKind::Inbound(inb) if inb.agent_of(other).is_some());
                if known {
                    self.answer_via(other, b"", None, at);
                }
            }
            Event::HangupRequest(_) => {
                if let Some(inb) = self.caller(uid) {
                    inb.hangup_requested(at);
                }
            }
            Event::Hangup { .. } => return self.on_hangup(uid, at),
            _ => {}
        }
        None
    }

    /// A dialplan step of any channel of the call. Only the caller's steps, and steps while
    /// the call is not classified yet, are decoded in full: this runs for most events.
    fn on_step(
        &mut self,
        chan: &ChannelInfo<'_>,
        uid: ChanId,
        (application, app_data): (&[u8], &[u8]),
        (cfg, phones): (&TrackerConfig, &Phones),
        at: EventTime,
    ) {
        let application = text(application);
        if apps::is_outgoing_line(&application) {
            self.mark_dialled(uid);
            return;
        }
        if apps::is_voicemail(&application)
            && let Some(c) = self.chan(uid)
        {
            let pair = c.pair;
            self.voicemail_legs.push(uid);
            if pair != 0 {
                self.voicemail_legs.push(pair);
            }
            if let CallKind::Inbound(inb) = &mut self.kind
                && uid != inb.caller
            {
                inb.leg_runs_voicemail(uid, pair);
            }
        }
        if !self.is_caller(uid) && !self.reclassifiable() {
            return;
        }
        let app_data = text(app_data);
        let app = apps::decode(&application, &app_data, cfg);
        self.classify(chan, uid, &app, (cfg, phones), at);
        if let Some(inb) = self.caller(uid) {
            let context = text(chan.context);
            let exten = text(chan.exten);
            let place = Place {
                context: &context,
                exten: &exten,
                priority: std::str::from_utf8(chan.priority)
                    .ok()
                    .and_then(|p| p.parse().ok()),
            };
            let closed = cfg.is_after_hours_context(&context);
            inb.on_step(place, app, closed, at);
        }
    }

    /// The call may still be classified (again): not yet, or an "outbound" guess that never
    /// dialled and yields to a real inbound entry.
    fn reclassifiable(&self) -> bool {
        match &self.kind {
            CallKind::Unclassified => true,
            CallKind::Outbound(out) => !out.dialled,
            _ => false,
        }
    }

    fn on_dial_begin(
        &mut self,
        uid: ChanId,
        dest: &DestInfo<'_>,
        (cfg, phones): (&TrackerConfig, &Phones),
        at: EventTime,
    ) {
        let dest_id = chan_id(dest.uniqueid);
        self.mark_dialled(dest_id);
        let d = self.dest_of(dest_id, dest.channel);
        let target = leg_target(dest, cfg);
        let name = text(dest.channel);
        if matches!(target, Target::Agent { .. }) && !is_local(&name) && !phones.contains(&name) {
            self.rang_phones.push(name.into());
        }
        let from = Dest {
            id: uid,
            pair: self.chan(uid).map_or(0, |c| c.pair),
        };
        match &mut self.kind {
            CallKind::Inbound(inb) if uid == inb.caller => {
                inb.ring(target, d, true, at);
            }
            CallKind::Inbound(inb) => {
                let target = match target {
                    Target::Agent { .. } => Target::Device,
                    forward => forward,
                };
                inb.ring_inner(from, target, d, at);
            }
            CallKind::Outbound(out) if uid == out.channel => out.dialled = true,
            _ => {}
        }
    }

    fn on_dial_end(&mut self, uid: ChanId, dest: &DestInfo<'_>, end: LegEnd, at: EventTime) {
        let dest_id = chan_id(dest.uniqueid);
        match &mut self.kind {
            CallKind::Inbound(inb) if uid == inb.caller => {
                inb.leg_ended((dest_id != 0).then_some(dest_id), end, at);
                // A `Dial` bridges on answer; a queue connects only at `AgentConnect`.
                let in_queue = matches!(inb.stage(), Stage::Queue { .. });
                if end == LegEnd::Answer && dest_id != 0 && !in_queue {
                    self.answer_via(dest_id, dest.channel, None, at);
                }
            }
            CallKind::Inbound(inb) if dest_id != 0 => inb.leg_ended(Some(dest_id), end, at),
            CallKind::Outbound(out) if uid == out.channel && end == LegEnd::Answer => {
                out.answered(at)
            }
            _ => {}
        }
    }

    /// The inbound caller was connected over the leg `dest`.
    fn answer_via(&mut self, dest: ChanId, name: &[u8], fallback: Option<Target>, at: EventTime) {
        let via = self.dest_of(dest, name);
        let voicemail_leg = self.voicemail_legs.contains(&via.id)
            || (via.pair != 0 && self.voicemail_legs.contains(&via.pair));
        if let CallKind::Inbound(inb) = &mut self.kind {
            let agent = match (inb.agent_of(dest), fallback) {
                (Some((agent, _)), _) => agent,
                (None, Some(Target::Agent { agent, .. })) => agent,
                _ => agent_from_channel(&text(name)).into(),
            };
            inb.answer(agent, via, voicemail_leg, at);
        }
    }

    fn become_inbound(&mut self, chan: &ChannelInfo<'_>, uid: ChanId, at: EventTime) {
        let started_at = self.chan(uid).map_or(at, |c| c.first_at);
        let exten = text(chan.exten);
        let did = if is_number(&exten) {
            exten.into_owned()
        } else {
            String::new()
        };
        let mut inb = Inbound::new(uid, started_at, did);
        update_caller_id(&mut inb, chan);
        self.kind = CallKind::Inbound(Box::new(inb));
    }

    /// Decides inbound/outbound from the first real dialplan step of a channel.
    fn classify(
        &mut self,
        chan: &ChannelInfo<'_>,
        uid: ChanId,
        app: &App<'_>,
        (cfg, phones): (&TrackerConfig, &Phones),
        at: EventTime,
    ) {
        if !self.reclassifiable() {
            return;
        }
        let context = text(chan.context);
        let cid = text(chan.caller_id_num);
        let external_caller = is_external_number(&cid, cfg.internal_max_length);
        if cfg.is_inbound_context(&context) || (matches!(app, App::Queue(_)) && external_caller) {
            self.become_inbound(chan, uid, at);
            return;
        }
        // Carriers send withheld callers as `anonymous` & co.: from a trunk they are inbound too.
        let withheld_caller = is_withheld_word(&cid);
        let name = text(chan.channel);
        if (external_caller || withheld_caller)
            && self.enters_call(chan, uid)
            && !cfg.is_outbound_context(&context)
        {
            let trunk = is_trunk_peer(&name, &cfg.trunk_channels, cfg.internal_max_length)
                && !phones.contains(&name);
            if !self.noticed {
                self.noticed = true;
                self.notice = Some(Box::new(Notice::UnknownInboundContext {
                    context: context.to_string(),
                    inbound: trunk,
                }));
            }
            if trunk {
                self.become_inbound(chan, uid, at);
                return;
            }
        }
        if !self.is_unclassified() {
            return;
        }
        let exten = text(chan.exten);
        let external = is_external_number(&exten, cfg.internal_max_length);
        if external || (cfg.is_outbound_context(&context) && is_number(&exten)) {
            let first_at = self.chan(uid).map_or(at, |c| c.first_at);
            let agent: Box<str> = if is_number(&cid) && cid.len() <= cfg.internal_max_length {
                cid.into()
            } else {
                agent_from_channel(&text(chan.channel)).into()
            };
            self.kind = CallKind::Outbound(Box::new(Outbound::new(
                uid,
                first_at,
                exten.into_owned(),
                agent,
            )));
        }
    }

    /// The channel started a call of its own (it was not dialled by the PBX): the first
    /// channel of its `Linkedid`, not a Local half, never dialled.
    fn enters_call(&self, chan: &ChannelInfo<'_>, uid: ChanId) -> bool {
        let first = chan
            .linkedid
            .is_none_or(|l| l.is_empty() || l == chan.uniqueid);
        first && !is_local(&text(chan.channel)) && !self.chan(uid).is_some_and(|c| c.dialled)
    }

    fn on_hangup(&mut self, uid: ChanId, at: EventTime) -> Option<FinishedCall> {
        let finished = match &self.kind {
            CallKind::Inbound(inb) if uid == inb.caller => self.finish(at, false),
            CallKind::Outbound(out) if uid == out.channel => self.finish(at, false),
            _ => None,
        };
        if let CallKind::Inbound(inb) = &mut self.kind {
            inb.channel_gone(uid);
        }
        if let Some(p) = self.chan_pos(uid) {
            self.channels.swap_remove(p);
            self.gone.push(uid);
        }
        finished
    }

    /// Ends the call now with what is known. `gap` marks an end that was not seen (lost
    /// events, reconnect, PBX restart). Returns the outcome for inbound/outbound calls.
    pub fn finish(&mut self, at: EventTime, gap: bool) -> Option<FinishedCall> {
        match std::mem::replace(&mut self.kind, CallKind::Finished) {
            CallKind::Inbound(inb) => Some(inb.into_finished(&self.linkedid, at, gap)),
            CallKind::Outbound(out) => Some(out.into_finished(&self.linkedid, at, gap)),
            CallKind::Unclassified | CallKind::Finished => None,
        }
    }
}

/// Reconciliation hooks (`calls::reconcile`): what a resync after a gap reads and sets.
impl Call {
    /// The inbound caller's channel while the call is in progress.
    pub fn caller_channel(&self) -> Option<ChanId> {
        match &self.kind {
            CallKind::Inbound(inb) => Some(inb.caller),
            _ => None,
        }
    }

    /// A human answered the inbound caller.
    pub fn is_answered(&self) -> bool {
        matches!(&self.kind, CallKind::Inbound(inb) if matches!(inb.stage(), Stage::Answered { .. }))
    }

    /// The outcome was emitted; only channels are left.
    pub fn is_finished(&self) -> bool {
        matches!(self.kind, CallKind::Finished)
    }

    /// The agent legs of an inbound call, in ring order: (leg channel, agent, still ringing).
    pub fn legs(&self) -> Vec<(ChanId, Box<str>, bool)> {
        match &self.kind {
            CallKind::Inbound(inb) => inb.legs().agent_legs(),
            _ => Vec::new(),
        }
    }

    /// Legs still ringing whose channel is gone stopped ringing at `at` (inside a gap).
    pub fn end_gone_legs(&mut self, live: impl Fn(ChanId) -> bool, at: EventTime) {
        if let CallKind::Inbound(inb) = &mut self.kind {
            inb.legs_gone(live, at);
        }
    }

    /// Forgets the channels that hung up while we were blind.
    pub fn retain_channels(&mut self, live: impl Fn(ChanId) -> bool) {
        self.channels.retain(|c| live(c.id));
    }

    /// The caller was found bridged with `agent`'s leg `via`: answered at an unseen moment,
    /// `at` being the earliest it can have been.
    pub fn answer_unseen(&mut self, agent: Box<str>, via: ChanId, at: EventTime) {
        let via = Dest {
            id: via,
            pair: self.chan(via).map_or(0, |c| c.pair),
        };
        let voicemail_leg = self.voicemail_legs.contains(&via.id)
            || (via.pair != 0 && self.voicemail_legs.contains(&via.pair));
        if let CallKind::Inbound(inb) = &mut self.kind {
            inb.answer(agent, via, voicemail_leg, at);
        }
    }

    /// Makes an unclassified call inbound with `chan` as its caller: a caller adopted from
    /// `CoreShowChannels` whose entry into the PBX we never saw.
    pub fn adopt_caller(&mut self, chan: &ChannelInfo<'_>, uid: ChanId, at: EventTime) {
        if matches!(self.kind, CallKind::Unclassified) {
            self.become_inbound(chan, uid, at);
        }
    }
}

fn update_caller_id(inb: &mut Inbound, c: &ChannelInfo<'_>) {
    let name = (!c.caller_id_name.is_empty()
        && !c.caller_id_name.eq_ignore_ascii_case(b"<unknown>"))
    .then(|| unescape(c.caller_id_name));
    inb.set_caller_id(&text(c.caller_id_num), name.as_deref().map(text).as_deref());
}

/// Who a dialled leg rings: an external number through a trunk (a forward: a Local channel
/// into an external number, a configured trunk, or a dial string naming an external number),
/// else the extension of the device or Local channel.
fn leg_target(dest: &DestInfo<'_>, cfg: &TrackerConfig) -> Target {
    let name = text(dest.channel);
    let max = cfg.internal_max_length;
    let extension = agent_from_channel(&name);
    if is_local(&name) {
        if is_external_number(&extension, max) {
            return Target::Forward(extension.into());
        }
    } else if let Some(number) = dialled_number(&text(dest.dial_string), max) {
        return Target::Forward(number.into());
    } else if cfg.is_trunk_channel(&name) {
        return Target::Forward(text(dest.dial_string).into());
    }
    Target::Agent {
        agent: extension.into(),
        name: None,
    }
}

/// The agent a queue member stands for: the extension of its interface (`SIP/103`,
/// `Local/101@from-queue/n`) or of the channel rung; its `MemberName` is the display name
/// when it says more than that.
fn member_target(member: &[u8], interface: &[u8], dest_channel: &[u8]) -> Target {
    let member = text(member);
    let source = [interface, dest_channel]
        .into_iter()
        .find(|s| !s.is_empty())
        .map(text);
    let agent: Box<str> = match source {
        Some(s) => agent_from_channel(&s).into(),
        None if member.contains('/') => agent_from_channel(&member).into(),
        None => member.as_ref().into(),
    };
    let name = (!member.is_empty() && !member.contains('/') && *member != *agent)
        .then(|| member.as_ref().into());
    Target::Agent { agent, name }
}
