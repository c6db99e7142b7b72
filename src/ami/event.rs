//! Typed view over the AMI events the call tracker needs; every other event is `Other`.
//!
//! The view borrows from the [`Message`]: one pass over the headers picks out the fields
//! (keys compared ASCII case-insensitively), so building it allocates nothing. Escaped fields
//! (`CallerIDName`, `VarSet` `Value`: AMI-FACTS 4) stay raw here; callers unescape what they keep.
//! Both the Asterisk 12+ names and the 1.8/11 names (`Join`, `Leave`, `Dial` with `SubEvent`,
//! `Bridge`) are recognised.

use super::message::Message;
use crate::time::EventTime;

/// The fields of a channel that most call events carry (`Channel`, `Uniqueid`, `Linkedid`, ...).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelInfo<'a> {
    /// Channel name, e.g. `PJSIP/trunk-0000001a` or `Local/101@agents-0000000e;1`.
    pub channel: &'a [u8],
    /// The channel's id (opaque: may carry a system-name prefix).
    pub uniqueid: &'a [u8],
    /// The id of the call the channel belongs to; absent on Asterisk 1.8/11.
    pub linkedid: Option<&'a [u8]>,
    /// Dialplan context the channel is in.
    pub context: &'a [u8],
    /// Dialplan extension the channel is on.
    pub exten: &'a [u8],
    /// Dialplan priority the channel is at (a number as text).
    pub priority: &'a [u8],
    /// Caller number of the channel.
    pub caller_id_num: &'a [u8],
    /// Caller name of the channel (C-escaped since Asterisk 13.5).
    pub caller_id_name: &'a [u8],
}

/// The destination side of a dial or queue attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestInfo<'a> {
    /// Dialled channel name (`DestChannel`, 1.8: `Destination`).
    pub channel: &'a [u8],
    /// Dialled channel id (`DestUniqueid`).
    pub uniqueid: &'a [u8],
    /// What was dialled (`DialString`, e.g. `101`, `trunk/79161234567`); empty when not sent.
    pub dial_string: &'a [u8],
}

/// One AMI event the tracker understands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event<'a> {
    /// A channel was created.
    Newchannel(ChannelInfo<'a>),
    /// A channel's state changed (Ring, Ringing, Up...).
    Newstate(ChannelInfo<'a>),
    /// A channel's caller id changed (the trunk number often arrives this way).
    NewCallerid(ChannelInfo<'a>),
    /// A channel executes a dialplan application.
    Newexten {
        /// The channel.
        chan: ChannelInfo<'a>,
        /// Application name, e.g. `Queue`, `Dial`, `BackGround`.
        application: &'a [u8],
        /// Application arguments (not escaped).
        app_data: &'a [u8],
    },
    /// A channel variable was set.
    VarSet {
        /// The channel.
        chan: ChannelInfo<'a>,
        /// Variable name (may carry `_`/`__` inheritance prefixes).
        variable: &'a [u8],
        /// Value (C-escaped).
        value: &'a [u8],
    },
    /// A dial attempt started (`DialBegin`, 1.8: `Dial` `SubEvent: Begin`).
    DialBegin {
        /// The dialling channel; absent for an originate's own dial.
        chan: Option<ChannelInfo<'a>>,
        /// The dialled channel.
        dest: DestInfo<'a>,
    },
    /// A dial attempt ended (`DialEnd`, 1.8: `Dial` `SubEvent: End`).
    DialEnd {
        /// The dialling channel; absent for an originate's own dial.
        chan: Option<ChannelInfo<'a>>,
        /// The dialled channel (1.8 gives none).
        dest: DestInfo<'a>,
        /// `ANSWER`, `NOANSWER`, `BUSY`, `CANCEL`, `CHANUNAVAIL`, `CONGESTION`...
        status: &'a [u8],
    },
    /// The caller entered a queue (`QueueCallerJoin`, 1.8: `Join`).
    QueueCallerJoin {
        /// The caller's channel.
        chan: ChannelInfo<'a>,
        /// Queue name.
        queue: &'a [u8],
    },
    /// The caller left a queue for any reason (`QueueCallerLeave`, 1.8: `Leave`).
    QueueCallerLeave {
        /// The caller's channel.
        chan: ChannelInfo<'a>,
        /// Queue name.
        queue: &'a [u8],
    },
    /// Raised on caller hang-up AND on timeout/leave-empty (AMI-FACTS 15).
    QueueCallerAbandon {
        /// The caller's channel.
        chan: ChannelInfo<'a>,
        /// Queue name.
        queue: &'a [u8],
    },
    /// A queue member is rung.
    AgentCalled {
        /// The caller's channel.
        chan: ChannelInfo<'a>,
        /// The member's channel.
        dest: DestInfo<'a>,
        /// Queue name.
        queue: &'a [u8],
        /// Member name (`MemberName`, older: `AgentName`).
        member: &'a [u8],
        /// Member interface, e.g. `Local/101@agents/n`.
        interface: &'a [u8],
    },
    /// A member did not answer (also for busy members, with `RingTime: 0`).
    AgentRingNoAnswer {
        /// The caller's channel.
        chan: ChannelInfo<'a>,
        /// The member's channel.
        dest: DestInfo<'a>,
        /// Member name.
        member: &'a [u8],
    },
    /// A member answered: the caller is connected to a human.
    AgentConnect {
        /// The caller's channel.
        chan: ChannelInfo<'a>,
        /// The member's channel.
        dest: DestInfo<'a>,
        /// Queue name.
        queue: &'a [u8],
        /// Member name.
        member: &'a [u8],
        /// Member interface.
        interface: &'a [u8],
    },
    /// The conversation with a member ended.
    AgentComplete {
        /// The caller's channel.
        chan: ChannelInfo<'a>,
        /// Member name.
        member: &'a [u8],
    },
    /// The member hung up before the caller was connected.
    AgentDump {
        /// The caller's channel.
        chan: ChannelInfo<'a>,
        /// Member name.
        member: &'a [u8],
    },
    /// A channel entered a bridge.
    BridgeEnter {
        /// The channel.
        chan: ChannelInfo<'a>,
        /// Bridge id.
        bridge: &'a [u8],
    },
    /// A channel left a bridge.
    BridgeLeave {
        /// The channel.
        chan: ChannelInfo<'a>,
        /// Bridge id.
        bridge: &'a [u8],
    },
    /// Asterisk 1.8/11 `Bridge` (`Bridgestate: Link|Unlink`) between two channels.
    LegacyBridge {
        /// `true` for `Link`.
        link: bool,
        /// First channel's id.
        uniqueid1: &'a [u8],
        /// Second channel's id.
        uniqueid2: &'a [u8],
    },
    /// Hang-up was requested on a channel (before its `Hangup`).
    HangupRequest(ChannelInfo<'a>),
    /// A channel is gone.
    Hangup {
        /// The channel.
        chan: ChannelInfo<'a>,
        /// Q.850 cause code.
        cause: Option<u16>,
    },
    /// A Local channel pair was optimized away (`LocalOptimizationEnd`).
    LocalOptimizationEnd {
        /// The `;1` half.
        local_one: &'a [u8],
        /// The `;2` half.
        local_two: &'a [u8],
    },
    /// A blind or attended transfer.
    Transfer {
        /// The transferee's (or transferer's) channel, when given.
        chan: Option<ChannelInfo<'a>>,
    },
    /// The PBX is shutting down or restarting: every call in progress ends.
    Shutdown,
    /// The PBX (re)started and is ready (no `Timestamp`): calls before it are gone.
    FullyBooted,
    /// Any event the tracker does not model.
    Other,
}

/// The raw header fields [`Event::parse`] picks out in its single pass.
#[derive(Default)]
struct Fields<'a> {
    event: &'a [u8],
    sub_event: &'a [u8],
    timestamp: &'a [u8],
    chan: ChannelInfo<'a>,
    dest_channel: &'a [u8],
    dest_uniqueid: &'a [u8],
    dial_string: &'a [u8],
    application: &'a [u8],
    app_data: &'a [u8],
    variable: &'a [u8],
    value: &'a [u8],
    dial_status: &'a [u8],
    queue: &'a [u8],
    member: &'a [u8],
    interface: &'a [u8],
    bridge: &'a [u8],
    cause: &'a [u8],
    bridge_state: &'a [u8],
    uniqueid1: &'a [u8],
    uniqueid2: &'a [u8],
    local_one: &'a [u8],
    local_two: &'a [u8],
    transferee: Option<ChannelInfo<'a>>,
    has_channel: bool,
}

impl<'a> Fields<'a> {
    fn collect(msg: &'a Message) -> Self {
        let mut f = Fields::default();
        let mut transferee = ChannelInfo::default();
        for (key, value) in msg.headers() {
            // Dispatch on length first: most keys are rejected after one integer compare.
            macro_rules! is {
                ($name:literal) => {
                    key.len() == $name.len() && key.eq_ignore_ascii_case($name)
                };
            }
            match key.len() {
                5 if is!(b"Event") => {
                    // Most of a busy stream (CEL, Cdr, QueueMemberStatus...) is not modelled:
                    // stop reading those at their first header.
                    if !is_modelled(value) {
                        return Fields::default();
                    }
                    f.event = value;
                }
                5 if is!(b"Exten") => f.chan.exten = value,
                5 if is!(b"Queue") => f.queue = value,
                5 if is!(b"Cause") => f.cause = value,
                5 if is!(b"Value") => f.value = value,
                7 if is!(b"Channel") => {
                    f.chan.channel = value;
                    f.has_channel = true;
                }
                7 if is!(b"Context") => f.chan.context = value,
                8 if is!(b"SubEvent") => f.sub_event = value,
                8 if is!(b"Uniqueid") => f.chan.uniqueid = value,
                8 if is!(b"Linkedid") => f.chan.linkedid = Some(value),
                8 if is!(b"Variable") => f.variable = value,
                8 if is!(b"Priority") => f.chan.priority = value,
                8 if is!(b"Channel1") => f.local_one = value,
                8 if is!(b"Channel2") => f.local_two = value,
                9 if is!(b"Timestamp") => f.timestamp = value,
                9 if is!(b"Interface") => f.interface = value,
                9 if is!(b"AgentName") && f.member.is_empty() => f.member = value,
                9 if is!(b"Uniqueid1") => f.uniqueid1 = value,
                9 if is!(b"Uniqueid2") => f.uniqueid2 = value,
                10 if is!(b"MemberName") => f.member = value,
                10 if is!(b"DialStatus") => f.dial_status = value,
                10 if is!(b"DialString") => f.dial_string = value,
                11 if is!(b"CallerIDNum") => f.chan.caller_id_num = value,
                11 if is!(b"Application") => f.application = value,
                11 if is!(b"DestChannel") => f.dest_channel = value,
                11 if is!(b"Destination") && f.dest_channel.is_empty() => f.dest_channel = value,
                11 if is!(b"Bridgestate") => f.bridge_state = value,
                // Asterisk before 12 sends `Extension` where later versions send `Exten`.
                9 if is!(b"Extension") && f.chan.exten.is_empty() => f.chan.exten = value,
                // Asterisk 1.8/11 `AgentCalled`: caller, member channel and interface.
                14 if is!(b"ChannelCalling") && f.chan.channel.is_empty() => {
                    f.chan.channel = value;
                    f.has_channel = true;
                }
                18 if is!(b"DestinationChannel") && f.dest_channel.is_empty() => {
                    f.dest_channel = value
                }
                11 if is!(b"AgentCalled") && f.interface.is_empty() => f.interface = value,
                12 if is!(b"CallerIDName") => f.chan.caller_id_name = value,
                12 if is!(b"DestUniqueid") => f.dest_uniqueid = value,
                14 if is!(b"BridgeUniqueid") => f.bridge = value,
                7 if is!(b"AppData") => f.app_data = value,
                // Transfer events name their channels with prefixes.
                17 if is!(b"TransfereeChannel") => transferee.channel = value,
                18 if is!(b"TransfereeUniqueid") => transferee.uniqueid = value,
                18 if is!(b"TransfereeLinkedid") => transferee.linkedid = Some(value),
                // LocalOptimizationEnd names the pair `LocalOne*` / `LocalTwo*`.
                15 if is!(b"LocalOneChannel") => f.local_one = value,
                15 if is!(b"LocalTwoChannel") => f.local_two = value,
                _ => {}
            }
        }
        if !transferee.uniqueid.is_empty() {
            f.transferee = Some(transferee);
        }
        f
    }

    fn dest(&self) -> DestInfo<'a> {
        DestInfo {
            channel: self.dest_channel,
            uniqueid: self.dest_uniqueid,
            dial_string: self.dial_string,
        }
    }

    fn source(&self) -> Option<ChannelInfo<'a>> {
        (self.has_channel && !self.chan.uniqueid.is_empty()).then_some(self.chan)
    }
}

/// Event names [`Event::from_fields`] turns into something other than `Other`.
fn is_modelled(name: &[u8]) -> bool {
    matches!(
        name,
        b"Newchannel"
            | b"Newstate"
            | b"NewCallerid"
            | b"Newexten"
            | b"VarSet"
            | b"DialBegin"
            | b"DialEnd"
            | b"Dial"
            | b"QueueCallerJoin"
            | b"Join"
            | b"QueueCallerLeave"
            | b"Leave"
            | b"QueueCallerAbandon"
            | b"AgentCalled"
            | b"AgentRingNoAnswer"
            | b"AgentConnect"
            | b"AgentComplete"
            | b"AgentDump"
            | b"BridgeEnter"
            | b"BridgeLeave"
            | b"Bridge"
            | b"HangupRequest"
            | b"SoftHangupRequest"
            | b"Hangup"
            | b"LocalOptimizationEnd"
            | b"BlindTransfer"
            | b"AttendedTransfer"
            | b"Shutdown"
            | b"FullyBooted"
    )
}

impl<'a> Event<'a> {
    /// Builds the typed view and the event time (`Timestamp` header, if any) of a message.
    /// Replies and list items that are not events give `Other`.
    pub fn parse(msg: &'a Message) -> (Event<'a>, Option<EventTime>) {
        let f = Fields::collect(msg);
        let at = EventTime::parse_ami(f.timestamp);
        (Self::from_fields(&f), at)
    }

    fn from_fields(f: &Fields<'a>) -> Event<'a> {
        let chan = f.chan;
        match f.event {
            b"Newchannel" => Event::Newchannel(chan),
            b"Newstate" => Event::Newstate(chan),
            b"NewCallerid" => Event::NewCallerid(chan),
            b"Newexten" => Event::Newexten {
                chan,
                application: f.application,
                app_data: f.app_data,
            },
            b"VarSet" => Event::VarSet {
                chan,
                variable: f.variable,
                value: f.value,
            },
            b"DialBegin" => Event::DialBegin {
                chan: f.source(),
                dest: f.dest(),
            },
            b"DialEnd" => Event::DialEnd {
                chan: f.source(),
                dest: f.dest(),
                status: f.dial_status,
            },
            // Asterisk 1.8/11: one `Dial` event with a `SubEvent`, source id in `UniqueID`.
            b"Dial" if f.sub_event.eq_ignore_ascii_case(b"Begin") => Event::DialBegin {
                chan: f.source(),
                dest: f.dest(),
            },
            b"Dial" if f.sub_event.eq_ignore_ascii_case(b"End") => Event::DialEnd {
                chan: f.source(),
                dest: f.dest(),
                status: f.dial_status,
            },
            b"QueueCallerJoin" | b"Join" => Event::QueueCallerJoin {
                chan,
                queue: f.queue,
            },
            b"QueueCallerLeave" | b"Leave" => Event::QueueCallerLeave {
                chan,
                queue: f.queue,
            },
            b"QueueCallerAbandon" => Event::QueueCallerAbandon {
                chan,
                queue: f.queue,
            },
            b"AgentCalled" => Event::AgentCalled {
                chan,
                dest: f.dest(),
                queue: f.queue,
                member: f.member,
                interface: f.interface,
            },
            b"AgentRingNoAnswer" => Event::AgentRingNoAnswer {
                chan,
                dest: f.dest(),
                member: f.member,
            },
            b"AgentConnect" => Event::AgentConnect {
                chan,
                dest: f.dest(),
                queue: f.queue,
                member: f.member,
                interface: f.interface,
            },
            b"AgentComplete" => Event::AgentComplete {
                chan,
                member: f.member,
            },
            b"AgentDump" => Event::AgentDump {
                chan,
                member: f.member,
            },
            b"BridgeEnter" => Event::BridgeEnter {
                chan,
                bridge: f.bridge,
            },
            b"BridgeLeave" => Event::BridgeLeave {
                chan,
                bridge: f.bridge,
            },
            b"Bridge" => Event::LegacyBridge {
                link: f.bridge_state.eq_ignore_ascii_case(b"Link"),
                uniqueid1: f.uniqueid1,
                uniqueid2: f.uniqueid2,
            },
            // A soft hang-up with cause 2 (`AST_SOFTHANGUP_ASYNCGOTO`) moves the channel to other
            // dialplan (redirect, transfer); it does not end it.
            b"SoftHangupRequest" if f.cause == b"2" => Event::Other,
            b"HangupRequest" | b"SoftHangupRequest" => Event::HangupRequest(chan),
            b"Hangup" => Event::Hangup {
                chan,
                cause: std::str::from_utf8(f.cause)
                    .ok()
                    .and_then(|c| c.parse().ok()),
            },
            b"LocalOptimizationEnd" => Event::LocalOptimizationEnd {
                local_one: f.local_one,
                local_two: f.local_two,
            },
            b"BlindTransfer" | b"AttendedTransfer" => Event::Transfer {
                chan: f.transferee.or(f.source()),
            },
            b"Shutdown" => Event::Shutdown,
            b"FullyBooted" => Event::FullyBooted,
            _ => Event::Other,
        }
    }

    /// The channel the event is about, for routing (the dialling side for dials).
    pub fn channel(&self) -> Option<&ChannelInfo<'a>> {
        match self {
            Event::Newchannel(c)
            | Event::Newstate(c)
            | Event::NewCallerid(c)
            | Event::HangupRequest(c)
            | Event::Newexten { chan: c, .. }
            | Event::VarSet { chan: c, .. }
            | Event::QueueCallerJoin { chan: c, .. }
            | Event::QueueCallerLeave { chan: c, .. }
            | Event::QueueCallerAbandon { chan: c, .. }
            | Event::AgentCalled { chan: c, .. }
            | Event::AgentRingNoAnswer { chan: c, .. }
            | Event::AgentConnect { chan: c, .. }
            | Event::AgentComplete { chan: c, .. }
            | Event::AgentDump { chan: c, .. }
            | Event::BridgeEnter { chan: c, .. }
            | Event::BridgeLeave { chan: c, .. }
            | Event::Hangup { chan: c, .. } => Some(c),
            Event::DialBegin { chan, .. }
            | Event::DialEnd { chan, .. }
            | Event::Transfer { chan } => chan.as_ref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newexten_fields_are_picked_case_insensitively() {
        let m = Message::from_pairs(&[
            ("Event", "Newexten"),
            ("Timestamp", "1795374804.077729"),
            ("channel", "PJSIP/trunk-00000001"),
            ("UNIQUEID", "lab1-1795374804.26"),
            ("Linkedid", "lab1-1795374804.26"),
            ("Context", "from-trunk"),
            ("Exten", "74951234567"),
            ("Application", "Queue"),
            ("AppData", "sales,t,,,35"),
        ]);
        let (ev, at) = Event::parse(&m);
        assert_eq!(at, Some(EventTime(1_795_374_804_077_729)));
        match ev {
            Event::Newexten {
                chan,
                application,
                app_data,
            } => {
                assert_eq!(chan.channel, b"PJSIP/trunk-00000001");
                assert_eq!(chan.uniqueid, b"lab1-1795374804.26");
                assert_eq!(chan.context, b"from-trunk");
                assert_eq!(application, b"Queue");
                assert_eq!(app_data, b"sales,t,,,35");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn legacy_dial_subevents_map_to_dial_begin_and_end() {
        let begin = Message::from_pairs(&[
            ("Event", "Dial"),
            ("SubEvent", "Begin"),
            ("Channel", "SIP/trunk-00000001"),
            ("UniqueID", "1400000000.1"),
            ("Destination", "SIP/101-00000002"),
            ("DestUniqueID", "1400000000.2"),
        ]);
        let (ev, at) = Event::parse(&begin);
        assert_eq!(at, None);
        assert_eq!(
            ev,
            Event::DialBegin {
                chan: Some(ChannelInfo {
                    channel: b"SIP/trunk-00000001",
                    uniqueid: b"1400000000.1",
                    ..Default::default()
                }),
                dest: DestInfo {
                    channel: b"SIP/101-00000002",
                    uniqueid: b"1400000000.2",
                    dial_string: b"",
                },
            }
        );
        let end = Message::from_pairs(&[
            ("Event", "Dial"),
            ("SubEvent", "End"),
            ("Channel", "SIP/trunk-00000001"),
            ("UniqueID", "1400000000.1"),
            ("DialStatus", "NOANSWER"),
        ]);
        assert!(matches!(
            Event::parse(&end).0,
            Event::DialEnd {
                status: b"NOANSWER",
                ..
            }
        ));
    }

    #[test]
    fn originate_dial_without_channel_has_no_source() {
        let m = Message::from_pairs(&[
            ("Event", "DialBegin"),
            ("DestChannel", "Local/17d1@caller-sim-0000000d;1"),
            ("DestUniqueid", "1795374804.26"),
        ]);
        assert!(matches!(
            Event::parse(&m).0,
            Event::DialBegin { chan: None, .. }
        ));
    }

    #[test]
    fn every_modelled_name_maps_to_a_typed_event() {
        for name in [
            "Newchannel",
            "Newstate",
            "NewCallerid",
            "Newexten",
            "VarSet",
            "DialBegin",
            "DialEnd",
            "QueueCallerJoin",
            "Join",
            "QueueCallerLeave",
            "Leave",
            "QueueCallerAbandon",
            "AgentCalled",
            "AgentRingNoAnswer",
            "AgentConnect",
            "AgentComplete",
            "AgentDump",
            "BridgeEnter",
            "BridgeLeave",
            "Bridge",
            "HangupRequest",
            "SoftHangupRequest",
            "Hangup",
            "LocalOptimizationEnd",
            "BlindTransfer",
            "AttendedTransfer",
            "Shutdown",
            "FullyBooted",
        ] {
            assert!(is_modelled(name.as_bytes()), "{name}");
            let m = Message::from_pairs(&[("Event", name), ("Channel", "x"), ("Uniqueid", "1.1")]);
            assert_ne!(Event::parse(&m).0, Event::Other, "{name}");
        }
        let dial = Message::from_pairs(&[("Event", "Dial"), ("SubEvent", "Begin")]);
        assert_ne!(Event::parse(&dial).0, Event::Other);
    }

    #[test]
    fn unknown_events_and_replies_are_other() {
        let m = Message::from_pairs(&[("Event", "MusicOnHoldStart"), ("Channel", "x")]);
        assert_eq!(Event::parse(&m).0, Event::Other);
        let r = Message::from_pairs(&[("Response", "Success"), ("Ping", "Pong")]);
        assert_eq!(Event::parse(&r).0, Event::Other);
    }
}
