//! One call's state machine: pure and clock-free. Time comes from the event, so replaying the
//! same events always gives the same [`FinishedCall`].
//!
//! A call starts `Unclassified`; the first channel that runs dialplan in an inbound context
//! makes it `Inbound` (that channel is the caller), an extension's channel dialling an
//! external number makes it `Outbound`. The inbound machine follows the caller's stage
//! (IVR, queue, dialling, voicemail, answered); when the caller hangs up the call is
//! `Finished` (sticky) and the outcome is emitted; the call lives on only until its last
//! channel is gone.

use super::channel::{
    ChanId, agent_from_channel, bare_variable, chan_id, is_number, is_withheld, local_pair_id,
};
use super::config::TrackerConfig;
use super::outcome::{
    AgentAttempt, AttemptOutcome, Direction, FinishedCall, LossReason, MissDetails,
};
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
}

/// How a dial leg ended (first `DialEnd` wins: queues send a second `CANCEL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LegEnd {
    Answer,
    NoAnswer,
    Busy,
    Cancel,
    Other,
}

impl LegEnd {
    fn from_status(status: &[u8]) -> LegEnd {
        match status {
            b"ANSWER" => LegEnd::Answer,
            b"NOANSWER" => LegEnd::NoAnswer,
            b"BUSY" | b"CHANUNAVAIL" | b"CONGESTION" => LegEnd::Busy,
            b"CANCEL" => LegEnd::Cancel,
            _ => LegEnd::Other,
        }
    }
}

/// One agent rung for an inbound call.
#[derive(Debug)]
struct Attempt {
    agent: Box<str>,
    dest: ChanId,
    start: EventTime,
    end: Option<(EventTime, LegEnd)>,
}

/// What kind of routing the caller reached last (for the loss reason after it ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Routed {
    Queue,
    Dial,
}

/// Where the inbound caller is now.
#[derive(Debug)]
enum Stage {
    /// Greeting, menu, or any dialplan before/after routing.
    Ivr,
    /// Inside the `Queue` application.
    Queue,
    /// Inside `Dial` (ring group, extension).
    Dialing,
    /// Leaving a message.
    Voicemail,
    /// Connected to a human (sticky).
    Answered {
        agent: Box<str>,
        at: EventTime,
        /// The answering leg and its Local pair, checked at the end for a voicemail "answer".
        via: ChanId,
        via_pair: ChanId,
    },
}

/// The inbound call as seen from its caller's channel.
#[derive(Debug)]
struct Inbound {
    caller: ChanId,
    caller_first_at: EventTime,
    number: String,
    name: Option<String>,
    did: String,
    queue: Option<String>,
    stage: Stage,
    /// The PBX ended the last queue/dial itself (timeout, no agents, busy).
    give_up: Option<LossReason>,
    routed: Option<Routed>,
    after_hours: bool,
    voicemail: bool,
    attempts: Vec<Attempt>,
    /// When hang-up was first requested on the caller, and whether an agent rang then.
    hangup_requested: Option<(EventTime, bool)>,
}

/// An extension calling an external number.
#[derive(Debug)]
struct Outbound {
    channel: ChanId,
    first_at: EventTime,
    number: String,
    agent: Option<Box<str>>,
    dialled: bool,
    answered_at: Option<EventTime>,
}

/// The call's kind and progress.
#[derive(Debug)]
enum Kind {
    Unclassified,
    Inbound(Box<Inbound>),
    Outbound(Box<Outbound>),
    /// Outcome emitted; waiting for the remaining channels to hang up.
    Finished,
}

/// One call: every channel sharing a `Linkedid` (or joined to it by a dial).
#[derive(Debug)]
pub struct Call {
    linkedid: Box<str>,
    channels: Vec<Chan>,
    /// Channels (and Local pairs) that ran `VoiceMail`/`Record`: if one "answered", no human did.
    voicemail_legs: Vec<ChanId>,
    kind: Kind,
    first_at: EventTime,
    last_at: EventTime,
}

fn text(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

fn is_outgoing_line(application: &[u8]) -> bool {
    // `AppDial`/`AppDial2`/`AppQueue` "(Outgoing Line)": a dialled leg, not dialplan.
    application.len() >= 6 && application[..6].eq_ignore_ascii_case(b"AppDia")
        || application.eq_ignore_ascii_case(b"AppQueue")
}

impl Call {
    /// A new call first seen at `at`.
    pub fn new(linkedid: &[u8], at: EventTime) -> Call {
        Call {
            linkedid: String::from_utf8_lossy(linkedid).into(),
            channels: Vec::new(),
            voicemail_legs: Vec::new(),
            kind: Kind::Unclassified,
            first_at: at,
            last_at: at,
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
            Kind::Inbound(inb) => Some(inb.caller),
            Kind::Outbound(out) => Some(out.channel),
            _ => None,
        }
    }

    /// The call's key.
    pub fn linkedid(&self) -> &str {
        &self.linkedid
    }

    fn chan_pos(&self, id: ChanId) -> Option<usize> {
        self.channels.iter().position(|c| c.id == id)
    }

    /// Adds a channel if it is new to the call; true when it was added.
    pub fn add_channel(&mut self, id: ChanId, name: &[u8], at: EventTime) -> bool {
        if id == 0 || self.chan_pos(id).is_some() {
            return false;
        }
        self.channels.push(Chan {
            id,
            pair: local_pair_id(name),
            first_at: at,
        });
        true
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
        matches!(self.kind, Kind::Unclassified)
    }

    /// Feeds one event. Returns the finished call when this event ended it (the inbound
    /// caller or the outbound extension hung up).
    pub fn on_event(
        &mut self,
        ev: &Event<'_>,
        at: EventTime,
        cfg: &TrackerConfig,
    ) -> Option<FinishedCall> {
        self.last_at = self.last_at.max(at);
        let uid = ev.channel().map_or(0, |c| chan_id(c.uniqueid));
        if let Some(c) = ev.channel() {
            self.add_channel(uid, c.channel, at);
            if let Kind::Inbound(inb) = &mut self.kind
                && uid == inb.caller
            {
                inb.update_caller_id(c);
            }
        }
        match *ev {
            // A trunk channel from the configured patterns makes the call inbound at once.
            Event::Newchannel(c) => {
                if matches!(self.kind, Kind::Unclassified)
                    && cfg.is_trunk_channel(&String::from_utf8_lossy(c.channel))
                {
                    self.become_inbound(&c, uid, at);
                }
                None
            }
            // Dialplan steps: classification, then the caller's stage.
            Event::Newexten {
                chan,
                application,
                app_data,
            } => {
                if is_outgoing_line(application) {
                    return None;
                }
                if is_voicemail_app(application)
                    && let Some(p) = self.chan_pos(uid)
                {
                    let pair = self.channels[p].pair;
                    self.voicemail_legs.push(uid);
                    if pair != 0 {
                        self.voicemail_legs.push(pair);
                    }
                }
                self.classify(&chan, uid, application, cfg, at);
                if let Kind::Inbound(inb) = &mut self.kind
                    && uid == inb.caller
                {
                    inb.on_application(&chan, application, app_data, cfg);
                }
                None
            }
            Event::VarSet {
                variable, value, ..
            } => {
                if let Kind::Inbound(inb) = &mut self.kind
                    && uid == inb.caller
                {
                    inb.on_variable(variable, value, cfg);
                }
                None
            }
            // Agent legs.
            Event::AgentCalled {
                dest,
                member,
                interface,
                ..
            } => {
                if let Some(inb) = self.inbound_caller(uid) {
                    let agent = agent_name(member, interface, dest.channel);
                    inb.begin_attempt(agent, &dest, at);
                }
                None
            }
            Event::DialBegin {
                chan: Some(_),
                dest,
            } => {
                if let Some(inb) = self.inbound_caller(uid) {
                    let agent = agent_from_channel(&String::from_utf8_lossy(dest.channel)).into();
                    if !matches!(inb.stage, Stage::Answered { .. } | Stage::Queue) {
                        inb.enter_dial();
                    }
                    inb.begin_attempt(agent, &dest, at);
                } else if let Kind::Outbound(out) = &mut self.kind
                    && uid == out.channel
                {
                    out.dialled = true;
                }
                None
            }
            Event::DialEnd {
                chan: Some(_),
                dest,
                status,
            } => {
                let end = LegEnd::from_status(status);
                if let Some(inb) = self.inbound_caller(uid) {
                    inb.end_attempt(&dest, end, at);
                    // A queue member who picks up hears the announcement first: the caller is
                    // connected only at `AgentConnect`. A `Dial` bridges on answer.
                    let in_queue = matches!(inb.stage, Stage::Queue);
                    if end == LegEnd::Answer && !dest.uniqueid.is_empty() && !in_queue {
                        let dest_id = chan_id(dest.uniqueid);
                        let agent = inb.attempt_agent(dest_id).unwrap_or_else(|| {
                            agent_from_channel(&String::from_utf8_lossy(dest.channel)).into()
                        });
                        self.answer_via(agent, dest_id, at);
                    }
                } else if let Kind::Outbound(out) = &mut self.kind
                    && uid == out.channel
                    && end == LegEnd::Answer
                    && out.answered_at.is_none()
                {
                    out.answered_at = Some(at);
                }
                None
            }
            Event::AgentRingNoAnswer { dest, .. } => {
                if let Some(inb) = self.inbound_caller(uid) {
                    inb.end_attempt(&dest, LegEnd::NoAnswer, at);
                }
                None
            }
            Event::AgentConnect {
                dest,
                member,
                interface,
                ..
            } => {
                if let Some(inb) = self.inbound_caller(uid) {
                    let agent = agent_name(member, interface, dest.channel);
                    inb.end_attempt(&dest, LegEnd::Answer, at);
                    self.answer_via(agent, chan_id(dest.uniqueid), at);
                }
                None
            }
            // Queue membership of the caller.
            Event::QueueCallerJoin { queue, .. } => {
                if let Some(inb) = self.inbound_caller(uid) {
                    inb.enter_queue(queue);
                }
                None
            }
            Event::LegacyBridge {
                link: true,
                uniqueid1,
                uniqueid2,
            } => {
                if let Kind::Inbound(inb) = &mut self.kind {
                    let (one, two) = (chan_id(uniqueid1), chan_id(uniqueid2));
                    let other = if one == inb.caller {
                        two
                    } else if two == inb.caller {
                        one
                    } else {
                        return None;
                    };
                    if let Some(agent) = inb.attempt_agent(other) {
                        inb.answer(agent, other, 0, at);
                    }
                }
                None
            }
            Event::HangupRequest(_) => {
                if let Some(inb) = self.inbound_caller(uid)
                    && inb.hangup_requested.is_none()
                {
                    let ringing = inb.attempts.iter().any(|a| a.end.is_none());
                    inb.hangup_requested = Some((at, ringing));
                }
                None
            }
            Event::Hangup { .. } => self.on_hangup(uid, at),
            _ => None,
        }
    }

    /// The inbound caller was connected to `agent` over the leg `dest`.
    fn answer_via(&mut self, agent: Box<str>, dest: ChanId, at: EventTime) {
        let pair = self
            .channels
            .iter()
            .find(|c| c.id == dest)
            .map_or(0, |c| c.pair);
        if let Kind::Inbound(inb) = &mut self.kind {
            inb.answer(agent, dest, pair, at);
        }
    }

    fn inbound_caller(&mut self, uid: ChanId) -> Option<&mut Inbound> {
        match &mut self.kind {
            Kind::Inbound(inb) if uid == inb.caller => Some(inb),
            _ => None,
        }
    }

    fn become_inbound(&mut self, chan: &ChannelInfo<'_>, uid: ChanId, at: EventTime) {
        let caller_first_at = self
            .chan_pos(uid)
            .map(|p| self.channels[p].first_at)
            .unwrap_or(at);
        let mut inb = Inbound {
            caller: uid,
            caller_first_at,
            number: String::new(),
            name: None,
            did: if is_number(&String::from_utf8_lossy(chan.exten)) {
                text(chan.exten)
            } else {
                String::new()
            },
            queue: None,
            stage: Stage::Ivr,
            give_up: None,
            routed: None,
            after_hours: false,
            voicemail: false,
            attempts: Vec::new(),
            hangup_requested: None,
        };
        inb.update_caller_id(chan);
        self.kind = Kind::Inbound(Box::new(inb));
    }

    /// Decides inbound/outbound from the first real dialplan step of a channel.
    fn classify(
        &mut self,
        chan: &ChannelInfo<'_>,
        uid: ChanId,
        application: &[u8],
        cfg: &TrackerConfig,
        at: EventTime,
    ) {
        let reclassifiable = match &self.kind {
            Kind::Unclassified => true,
            // An "outbound" guess that never dialled yields to a real inbound entry.
            Kind::Outbound(out) => !out.dialled,
            _ => false,
        };
        if !reclassifiable {
            return;
        }
        let context = String::from_utf8_lossy(chan.context);
        if cfg.is_inbound_context(&context) || queues_external_caller(chan, application, cfg) {
            self.become_inbound(chan, uid, at);
            return;
        }
        if !matches!(self.kind, Kind::Unclassified) {
            return;
        }
        let exten = String::from_utf8_lossy(chan.exten);
        let digits = exten.trim_start_matches('+').len();
        let external = is_number(&exten) && digits > cfg.internal_max_length;
        if external || (cfg.is_outbound_context(&context) && is_number(&exten)) {
            let first_at = self
                .chan_pos(uid)
                .map(|p| self.channels[p].first_at)
                .unwrap_or(at);
            let cid = String::from_utf8_lossy(chan.caller_id_num);
            let agent: Box<str> = if is_number(&cid) && cid.len() <= cfg.internal_max_length {
                cid.into()
            } else {
                agent_from_channel(&String::from_utf8_lossy(chan.channel)).into()
            };
            let agent = Some(agent);
            self.kind = Kind::Outbound(Box::new(Outbound {
                channel: uid,
                first_at,
                number: exten.into_owned(),
                agent,
                dialled: false,
                answered_at: None,
            }));
        }
    }

    fn on_hangup(&mut self, uid: ChanId, at: EventTime) -> Option<FinishedCall> {
        let finished = match &self.kind {
            Kind::Inbound(inb) if uid == inb.caller => self.finish(at, false),
            Kind::Outbound(out) if uid == out.channel => self.finish(at, false),
            _ => None,
        };
        if let Some(p) = self.chan_pos(uid) {
            self.channels.swap_remove(p);
        }
        finished
    }

    /// Ends the call now with what is known. `gap` marks an end that was not seen (lost
    /// events, reconnect, PBX restart). Returns the outcome for inbound/outbound calls.
    pub fn finish(&mut self, at: EventTime, gap: bool) -> Option<FinishedCall> {
        let kind = std::mem::replace(&mut self.kind, Kind::Finished);
        match kind {
            Kind::Inbound(inb) => {
                Some(inb.into_finished(&self.linkedid, &self.voicemail_legs, at, gap))
            }
            Kind::Outbound(out) => Some(out.into_finished(&self.linkedid, at, gap)),
            Kind::Unclassified | Kind::Finished => None,
        }
    }
}

/// Reconciliation hooks (`calls::reconcile`): what a resync after a gap reads and sets.
impl Call {
    /// The inbound caller's channel while the call is in progress.
    pub fn caller_channel(&self) -> Option<ChanId> {
        match &self.kind {
            Kind::Inbound(inb) => Some(inb.caller),
            _ => None,
        }
    }

    /// A human answered the inbound caller.
    pub fn is_answered(&self) -> bool {
        matches!(&self.kind, Kind::Inbound(inb) if matches!(inb.stage, Stage::Answered { .. }))
    }

    /// The outcome was emitted; only channels are left.
    pub fn is_finished(&self) -> bool {
        matches!(self.kind, Kind::Finished)
    }

    /// The agent legs of an inbound call, in ring order: (leg channel, agent, still ringing).
    pub fn legs(&self) -> Vec<(ChanId, Box<str>, bool)> {
        match &self.kind {
            Kind::Inbound(inb) => inb
                .attempts
                .iter()
                .map(|a| (a.dest, a.agent.clone(), a.end.is_none()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The Local-pair key of a channel of this call (0 when not a Local channel).
    pub fn pair_of(&self, id: ChanId) -> ChanId {
        self.chan_pos(id).map_or(0, |p| self.channels[p].pair)
    }

    /// Legs still ringing whose channel is gone stopped ringing at `at` (inside a gap).
    pub fn end_gone_legs(&mut self, live: impl Fn(ChanId) -> bool, at: EventTime) {
        if let Kind::Inbound(inb) = &mut self.kind {
            for a in inb.attempts.iter_mut() {
                if a.end.is_none() && a.dest != 0 && !live(a.dest) {
                    a.end = Some((at, LegEnd::Other));
                }
            }
        }
    }

    /// Forgets the channels that hung up while we were blind.
    pub fn retain_channels(&mut self, live: impl Fn(ChanId) -> bool) {
        self.channels.retain(|c| live(c.id));
    }

    /// The caller was found bridged with `agent`'s leg `via`: answered at an unseen moment,
    /// `at` being the earliest it can have been.
    pub fn answer_unseen(&mut self, agent: Box<str>, via: ChanId, at: EventTime) {
        self.answer_via(agent, via, at);
    }

    /// Makes an unclassified call inbound with `chan` as its caller: a caller adopted from
    /// `CoreShowChannels` whose entry into the PBX we never saw.
    pub fn adopt_caller(&mut self, chan: &ChannelInfo<'_>, uid: ChanId, at: EventTime) {
        if matches!(self.kind, Kind::Unclassified) {
            self.become_inbound(chan, uid, at);
        }
    }
}

/// A channel with an external caller id (longer than an extension) that runs `Queue` is an
/// inbound caller even in a context not listed as inbound (a DID routed straight to a queue).
fn queues_external_caller(chan: &ChannelInfo<'_>, application: &[u8], cfg: &TrackerConfig) -> bool {
    if !application.eq_ignore_ascii_case(b"Queue") {
        return false;
    }
    let cid = String::from_utf8_lossy(chan.caller_id_num);
    is_number(&cid) && cid.trim_start_matches('+').len() > cfg.internal_max_length
}

fn is_voicemail_app(application: &[u8]) -> bool {
    application.eq_ignore_ascii_case(b"VoiceMail") || application.eq_ignore_ascii_case(b"Record")
}

/// Menu and greeting applications: the caller is in an IVR.
fn is_menu_app(application: &[u8]) -> bool {
    const MENU: &[&[u8]] = &[
        b"BackGround",
        b"Background",
        b"Read",
        b"WaitExten",
        b"Playback",
        b"ControlPlayback",
        b"SayDigits",
        b"SayNumber",
    ];
    MENU.iter().any(|m| application.eq_ignore_ascii_case(m))
}

/// The agent id for a queue attempt: the member name, else the extension in the interface.
///
/// A member added without a name is named after its interface (`Local/101@agents/n`): then
/// the extension is the agent.
fn agent_name(member: &[u8], interface: &[u8], dest_channel: &[u8]) -> Box<str> {
    if !member.is_empty() && !member.contains(&b'/') {
        return String::from_utf8_lossy(member).into();
    }
    if !member.is_empty() {
        return agent_from_channel(&String::from_utf8_lossy(member)).into();
    }
    let source = if interface.is_empty() {
        dest_channel
    } else {
        interface
    };
    agent_from_channel(&String::from_utf8_lossy(source)).into()
}

impl Inbound {
    fn update_caller_id(&mut self, c: &ChannelInfo<'_>) {
        if !c.caller_id_num.is_empty() && c.caller_id_num != self.number.as_bytes() {
            let num = String::from_utf8_lossy(c.caller_id_num);
            if !is_withheld(&num) || self.number.is_empty() {
                self.number = num.into_owned();
            }
        }
        if !c.caller_id_name.is_empty()
            && !c.caller_id_name.eq_ignore_ascii_case(b"<unknown>")
            && self.name.as_deref().map(str::as_bytes) != Some(c.caller_id_name)
        {
            self.name = Some(text(&unescape(c.caller_id_name)));
        }
    }

    fn on_application(
        &mut self,
        chan: &ChannelInfo<'_>,
        application: &[u8],
        app_data: &[u8],
        cfg: &TrackerConfig,
    ) {
        if cfg.is_after_hours_context(&String::from_utf8_lossy(chan.context)) {
            self.after_hours = true;
        }
        if matches!(self.stage, Stage::Answered { .. }) {
            return;
        }
        if application.eq_ignore_ascii_case(b"Queue") {
            let name = app_data.split(|&b| b == b',').next().unwrap_or(app_data);
            self.enter_queue(name);
        } else if application.eq_ignore_ascii_case(b"Dial") {
            self.enter_dial();
        } else if is_voicemail_app(application) {
            self.voicemail = true;
            self.stage = Stage::Voicemail;
        } else if matches!(self.stage, Stage::Queue | Stage::Dialing) || is_menu_app(application) {
            // The queue or dial returned: the caller is back in dialplan.
            if !matches!(self.stage, Stage::Voicemail) {
                self.stage = Stage::Ivr;
            }
        }
    }

    /// The caller's channel runs `Dial` (ring group, extension): legs may ring now.
    fn enter_dial(&mut self) {
        self.stage = Stage::Dialing;
        self.routed = Some(Routed::Dial);
        self.give_up = None;
    }

    fn enter_queue(&mut self, queue: &[u8]) {
        if matches!(self.stage, Stage::Answered { .. }) {
            return;
        }
        if self.queue.as_deref().map(str::as_bytes) != Some(queue) {
            self.queue = Some(text(queue));
        }
        self.stage = Stage::Queue;
        self.routed = Some(Routed::Queue);
        self.give_up = None;
    }

    fn on_variable(&mut self, variable: &[u8], value: &[u8], cfg: &TrackerConfig) {
        let name = String::from_utf8_lossy(variable);
        let bare = bare_variable(&name);
        if bare.eq_ignore_ascii_case("QUEUESTATUS") {
            self.give_up = match value {
                b"TIMEOUT" => Some(LossReason::Timeout),
                b"JOINEMPTY" | b"LEAVEEMPTY" | b"JOINUNAVAIL" | b"LEAVEUNAVAIL" | b"FULL" => {
                    Some(LossReason::NoAgents)
                }
                _ => None,
            };
            if self.give_up.is_some() && matches!(self.stage, Stage::Queue) {
                self.stage = Stage::Ivr;
            }
            if self.routed.is_none() {
                self.routed = Some(Routed::Queue);
            }
        } else if bare.eq_ignore_ascii_case("DIALSTATUS") {
            if !matches!(self.stage, Stage::Dialing) {
                return;
            }
            self.give_up = match value {
                b"NOANSWER" => Some(LossReason::Timeout),
                b"BUSY" | b"CHANUNAVAIL" | b"CONGESTION" => Some(LossReason::Busy),
                _ => None,
            };
            if self.give_up.is_some() {
                self.stage = Stage::Ivr;
            }
        } else if cfg.is_after_hours_variable(bare) {
            let v = String::from_utf8_lossy(value);
            let v = v.trim();
            if !(v.is_empty()
                || v == "0"
                || v.eq_ignore_ascii_case("no")
                || v.eq_ignore_ascii_case("false"))
            {
                self.after_hours = true;
            }
        } else if cfg.is_did_variable(bare) && !value.is_empty() {
            self.did = text(&unescape(value));
        }
    }

    fn begin_attempt(&mut self, agent: Box<str>, dest: &DestInfo<'_>, at: EventTime) {
        // `AgentCalled` and `DialBegin` describe the same leg: keep one attempt per leg.
        let dest = chan_id(dest.uniqueid);
        if dest != 0 && self.attempts.iter().any(|a| a.dest == dest) {
            return;
        }
        self.attempts.push(Attempt {
            agent,
            dest,
            start: at,
            end: None,
        });
    }

    fn end_attempt(&mut self, dest: &DestInfo<'_>, end: LegEnd, at: EventTime) {
        if dest.uniqueid.is_empty() {
            // Asterisk 1.8/11 ends the whole Dial at once.
            let end = if end == LegEnd::Answer {
                LegEnd::Other
            } else {
                end
            };
            for a in self.attempts.iter_mut().filter(|a| a.end.is_none()) {
                a.end = Some((at, end));
            }
            return;
        }
        let dest = chan_id(dest.uniqueid);
        if let Some(a) = self
            .attempts
            .iter_mut()
            .find(|a| a.dest == dest && a.end.is_none())
        {
            a.end = Some((at, end));
        }
    }

    fn attempt_agent(&self, dest: ChanId) -> Option<Box<str>> {
        self.attempts
            .iter()
            .find(|a| a.dest == dest)
            .map(|a| a.agent.clone())
    }

    fn answer(&mut self, agent: Box<str>, via: ChanId, via_pair: ChanId, at: EventTime) {
        if matches!(self.stage, Stage::Answered { .. }) {
            return;
        }
        if let Some(a) = self
            .attempts
            .iter_mut()
            .find(|a| a.dest == via && a.end.is_none())
        {
            a.end = Some((at, LegEnd::Answer));
        }
        self.stage = Stage::Answered {
            agent,
            at,
            via,
            via_pair,
        };
    }

    /// The loss reason of a caller who was never answered, from where they were at the end.
    fn loss_reason(&self) -> LossReason {
        let ringing_at_hangup = match self.hangup_requested {
            Some((_, ringing)) => ringing,
            None => self.attempts.iter().any(|a| a.end.is_none()),
        };
        if self.after_hours && self.routed.is_none() {
            return LossReason::AfterHours;
        }
        match self.stage {
            Stage::Queue | Stage::Dialing if ringing_at_hangup => LossReason::Ringing,
            Stage::Queue => LossReason::Queue,
            Stage::Dialing => self.give_up.unwrap_or_else(|| self.dial_without_ring()),
            _ => match (self.give_up, self.routed) {
                (Some(reason), _) => reason,
                (None, Some(Routed::Queue)) => LossReason::Queue,
                (None, Some(Routed::Dial)) => self.dial_without_ring(),
                (None, None) => LossReason::Ivr,
            },
        }
    }

    /// A dial that ended with no leg ringing: busy if every leg was busy, else a timeout.
    fn dial_without_ring(&self) -> LossReason {
        let ended: Vec<_> = self.attempts.iter().filter_map(|a| a.end).collect();
        if !ended.is_empty() && ended.iter().all(|(_, e)| *e == LegEnd::Busy) {
            LossReason::Busy
        } else {
            LossReason::Timeout
        }
    }

    fn into_finished(
        mut self,
        linkedid: &str,
        voicemail_legs: &[ChanId],
        at: EventTime,
        gap: bool,
    ) -> FinishedCall {
        // A leg that "answered" by running voicemail is no human: undo the answer.
        if let Stage::Answered { via, via_pair, .. } = self.stage
            && (voicemail_legs.contains(&via)
                || (via_pair != 0 && voicemail_legs.contains(&via_pair)))
        {
            self.stage = Stage::Voicemail;
            self.voicemail = true;
            self.give_up = Some(LossReason::Timeout);
        }
        let caller_hung_up_at = self.hangup_requested.map(|(t, _)| t).unwrap_or(at);
        let attempts = self
            .attempts
            .iter()
            .map(|a| {
                let (end_at, outcome) = match a.end {
                    Some((t, LegEnd::Answer)) => (t, AttemptOutcome::Answered),
                    Some((t, LegEnd::NoAnswer)) => (t, AttemptOutcome::NoAnswer),
                    Some((t, LegEnd::Busy)) => (t, AttemptOutcome::Busy),
                    Some((t, LegEnd::Cancel)) if t >= caller_hung_up_at => {
                        (t, AttemptOutcome::CallerHungUp)
                    }
                    Some((t, _)) => (t, AttemptOutcome::Other),
                    None if !gap => (at, AttemptOutcome::CallerHungUp),
                    None => (at, AttemptOutcome::Other),
                };
                AgentAttempt {
                    agent: a.agent.to_string(),
                    ring_start: a.start,
                    ring_seconds: end_at.seconds_since(a.start),
                    outcome,
                }
            })
            .collect();
        let (answered, agent, talk_seconds) = match &self.stage {
            Stage::Answered { agent, at: t, .. } => {
                (true, Some(agent.clone()), at.seconds_since(*t))
            }
            _ => (false, None, 0.0),
        };
        let missed = (!answered).then(|| MissDetails {
            loss_reason: self.loss_reason(),
            voicemail: self.voicemail,
        });
        let withheld = is_withheld(&self.number);
        FinishedCall {
            linkedid: linkedid.to_string(),
            direction: Direction::Inbound,
            number: if withheld { String::new() } else { self.number },
            name: self.name,
            withheld,
            did: Some(self.did),
            queue: self.queue,
            started_at: self.caller_first_at,
            ended_at: at,
            wait_seconds: at.seconds_since(self.caller_first_at),
            answered,
            agent: agent.map(String::from),
            talk_seconds,
            attempts,
            missed,
            gap,
            gap_window: None,
        }
    }
}

impl Outbound {
    fn into_finished(self, linkedid: &str, at: EventTime, gap: bool) -> FinishedCall {
        FinishedCall {
            linkedid: linkedid.to_string(),
            direction: Direction::Outbound,
            number: self.number,
            name: None,
            withheld: false,
            did: None,
            queue: None,
            started_at: self.first_at,
            ended_at: at,
            wait_seconds: at.seconds_since(self.first_at),
            answered: self.answered_at.is_some(),
            agent: self.agent.map(String::from),
            talk_seconds: self.answered_at.map_or(0.0, |t| at.seconds_since(t)),
            attempts: Vec::new(),
            missed: None,
            gap,
            gap_window: None,
        }
    }
}
