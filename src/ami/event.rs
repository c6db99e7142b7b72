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
    /// How to build the event named by `Event` (`None`: not modelled).
    build: Option<Build>,
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
    transferee: ChannelInfo<'a>,
    has_channel: bool,
}

/// Builds the typed event from the fields collected for it.
type Build = for<'a> fn(&Fields<'a>) -> Event<'a>;
/// Stores one header's value in its field.
type Store = for<'a> fn(&mut Fields<'a>, &'a [u8]);

/// Every modelled event: its name (exact, as Asterisk spells it) and how it is built. Adding an
/// event is one line here plus, if it brings new headers, their lines in [`FIELDS`].
const EVENTS: &[(&[u8], Build)] = &[
    (b"Newchannel", |f| Event::Newchannel(f.chan)),
    (b"Newstate", |f| Event::Newstate(f.chan)),
    (b"NewCallerid", |f| Event::NewCallerid(f.chan)),
    (b"Newexten", |f| Event::Newexten {
        chan: f.chan,
        application: f.application,
        app_data: f.app_data,
    }),
    (b"VarSet", |f| Event::VarSet {
        chan: f.chan,
        variable: f.variable,
        value: f.value,
    }),
    (b"DialBegin", dial_begin),
    (b"DialEnd", dial_end),
    // Asterisk 1.8/11: one `Dial` event with a `SubEvent`, source id in `UniqueID`.
    (b"Dial", |f| {
        if f.sub_event.eq_ignore_ascii_case(b"Begin") {
            dial_begin(f)
        } else if f.sub_event.eq_ignore_ascii_case(b"End") {
            dial_end(f)
        } else {
            Event::Other
        }
    }),
    (b"QueueCallerJoin", queue_join),
    (b"Join", queue_join),
    (b"QueueCallerLeave", queue_leave),
    (b"Leave", queue_leave),
    (b"QueueCallerAbandon", |f| Event::QueueCallerAbandon {
        chan: f.chan,
        queue: f.queue,
    }),
    (b"AgentCalled", |f| Event::AgentCalled {
        chan: f.chan,
        dest: f.dest(),
        queue: f.queue,
        member: f.member,
        interface: f.interface,
    }),
    (b"AgentRingNoAnswer", |f| Event::AgentRingNoAnswer {
        chan: f.chan,
        dest: f.dest(),
        member: f.member,
    }),
    (b"AgentConnect", |f| Event::AgentConnect {
        chan: f.chan,
        dest: f.dest(),
        queue: f.queue,
        member: f.member,
        interface: f.interface,
    }),
    (b"AgentComplete", |f| Event::AgentComplete {
        chan: f.chan,
        member: f.member,
    }),
    (b"AgentDump", |f| Event::AgentDump {
        chan: f.chan,
        member: f.member,
    }),
    (b"BridgeEnter", |f| Event::BridgeEnter {
        chan: f.chan,
        bridge: f.bridge,
    }),
    (b"BridgeLeave", |f| Event::BridgeLeave {
        chan: f.chan,
        bridge: f.bridge,
    }),
    (b"Bridge", |f| Event::LegacyBridge {
        link: f.bridge_state.eq_ignore_ascii_case(b"Link"),
        uniqueid1: f.uniqueid1,
        uniqueid2: f.uniqueid2,
    }),
    (b"HangupRequest", |f| Event::HangupRequest(f.chan)),
    // A soft hang-up with cause 2 (`AST_SOFTHANGUP_ASYNCGOTO`) moves the channel to other
    // dialplan (redirect, transfer); it does not end it.
    (b"SoftHangupRequest", |f| {
        if f.cause == b"2" {
            Event::Other
        } else {
            Event::HangupRequest(f.chan)
        }
    }),
    (b"Hangup", |f| Event::Hangup {
        chan: f.chan,
        cause: std::str::from_utf8(f.cause)
            .ok()
            .and_then(|c| c.parse().ok()),
    }),
    (b"LocalOptimizationEnd", |f| Event::LocalOptimizationEnd {
        local_one: f.local_one,
        local_two: f.local_two,
    }),
    (b"BlindTransfer", transfer),
    (b"AttendedTransfer", transfer),
    (b"Shutdown", |_| Event::Shutdown),
    (b"FullyBooted", |_| Event::FullyBooted),
];

fn dial_begin<'a>(f: &Fields<'a>) -> Event<'a> {
    Event::DialBegin {
        chan: f.source(),
        dest: f.dest(),
    }
}

fn dial_end<'a>(f: &Fields<'a>) -> Event<'a> {
    Event::DialEnd {
        chan: f.source(),
        dest: f.dest(),
        status: f.dial_status,
    }
}

fn queue_join<'a>(f: &Fields<'a>) -> Event<'a> {
    Event::QueueCallerJoin {
        chan: f.chan,
        queue: f.queue,
    }
}

fn queue_leave<'a>(f: &Fields<'a>) -> Event<'a> {
    Event::QueueCallerLeave {
        chan: f.chan,
        queue: f.queue,
    }
}

/// Transfer events name the transferred channel with a `Transferee` prefix.
fn transfer<'a>(f: &Fields<'a>) -> Event<'a> {
    let transferee = (!f.transferee.uniqueid.is_empty()).then_some(f.transferee);
    Event::Transfer {
        chan: transferee.or(f.source()),
    }
}

/// Every header the events above read (keys compared ASCII case-insensitively) and where it
/// goes. A fallback (`Extension`, `Destination`...) only fills a field still empty, so the
/// modern name wins whatever the order.
const FIELDS: &[(&[u8], Store)] = &[
    (b"SubEvent", |f, v| f.sub_event = v),
    (b"Timestamp", |f, v| f.timestamp = v),
    (b"Channel", |f, v| {
        f.chan.channel = v;
        f.has_channel = true;
    }),
    (b"Uniqueid", |f, v| f.chan.uniqueid = v),
    (b"Linkedid", |f, v| f.chan.linkedid = Some(v)),
    (b"Context", |f, v| f.chan.context = v),
    (b"Exten", |f, v| f.chan.exten = v),
    (b"Priority", |f, v| f.chan.priority = v),
    // Asterisk before 12 sends `Extension` where later versions send `Exten`.
    (b"Extension", |f, v| fill(&mut f.chan.exten, v)),
    (b"CallerIDNum", |f, v| f.chan.caller_id_num = v),
    (b"CallerIDName", |f, v| f.chan.caller_id_name = v),
    // Asterisk 1.8/11 `AgentCalled`: caller, member channel and interface.
    (b"ChannelCalling", |f, v| {
        if f.chan.channel.is_empty() {
            f.chan.channel = v;
            f.has_channel = true;
        }
    }),
    (b"DestinationChannel", |f, v| fill(&mut f.dest_channel, v)),
    (b"AgentCalled", |f, v| fill(&mut f.interface, v)),
    (b"DestChannel", |f, v| f.dest_channel = v),
    (b"Destination", |f, v| fill(&mut f.dest_channel, v)),
    (b"DestUniqueid", |f, v| f.dest_uniqueid = v),
    (b"Application", |f, v| f.application = v),
    (b"AppData", |f, v| f.app_data = v),
    (b"Variable", |f, v| f.variable = v),
    (b"Value", |f, v| f.value = v),
    (b"DialStatus", |f, v| f.dial_status = v),
    (b"DialString", |f, v| f.dial_string = v),
    (b"Queue", |f, v| f.queue = v),
    (b"MemberName", |f, v| f.member = v),
    (b"AgentName", |f, v| fill(&mut f.member, v)),
    (b"Interface", |f, v| f.interface = v),
    (b"BridgeUniqueid", |f, v| f.bridge = v),
    (b"Bridgestate", |f, v| f.bridge_state = v),
    (b"Uniqueid1", |f, v| f.uniqueid1 = v),
    (b"Uniqueid2", |f, v| f.uniqueid2 = v),
    (b"Cause", |f, v| f.cause = v),
    // LocalOptimizationEnd names the pair `LocalOne*` / `LocalTwo*` (1.8/11: `Channel1/2`).
    (b"LocalOneChannel", |f, v| f.local_one = v),
    (b"LocalTwoChannel", |f, v| f.local_two = v),
    (b"Channel1", |f, v| f.local_one = v),
    (b"Channel2", |f, v| f.local_two = v),
    (b"TransfereeChannel", |f, v| f.transferee.channel = v),
    (b"TransfereeUniqueid", |f, v| f.transferee.uniqueid = v),
    (b"TransfereeLinkedid", |f, v| {
        f.transferee.linkedid = Some(v)
    }),
];

/// Sets a fallback field only when the preferred header has not filled it.
fn fill<'a>(field: &mut &'a [u8], value: &'a [u8]) {
    if field.is_empty() {
        *field = value;
    }
}

/// A table indexed by key length, so a header is compared only with the few keys of its
/// length (most headers are rejected by one bounds check); built at compile time.
struct ByLength<T: Copy + 'static> {
    rows: [[Option<Entry<T>>; ROW]; LONGEST + 1],
}

/// A key and what it maps to.
type Entry<T> = (&'static [u8], T);

/// Longest key or event name in the tables.
const LONGEST: usize = 20;
/// Most entries of one length.
const ROW: usize = 8;

impl<T: Copy + 'static> ByLength<T> {
    /// Indexes `entries`; a table that does not fit fails the build.
    const fn new(entries: &[Entry<T>]) -> Self {
        let mut rows = [[None; ROW]; LONGEST + 1];
        let mut i = 0;
        while i < entries.len() {
            let (name, value) = entries[i];
            assert!(name.len() <= LONGEST, "raise LONGEST");
            let mut col = 0;
            while rows[name.len()][col].is_some() {
                col += 1;
                assert!(col < ROW, "raise ROW");
            }
            rows[name.len()][col] = Some((name, value));
            i += 1;
        }
        ByLength { rows }
    }

    /// The entry for `key`, compared with `same`.
    #[inline]
    fn find(&self, key: &[u8], same: fn(&[u8], &[u8]) -> bool) -> Option<T> {
        for entry in self.rows.get(key.len())? {
            match entry {
                Some((name, value)) if same(name, key) => return Some(*value),
                Some(_) => {}
                None => return None,
            }
        }
        None
    }
}

static EVENT_INDEX: ByLength<Build> = ByLength::new(EVENTS);
static FIELD_INDEX: ByLength<Store> = ByLength::new(FIELDS);

fn exact(a: &[u8], b: &[u8]) -> bool {
    a == b
}

/// `key` equals the table's `name` ignoring ASCII case. Table names are alphanumeric (a test
/// checks it), so a byte that differs from the name's only in bit 0x20 is the same letter in
/// the other case; the loop stops at the first other difference, which for the headers the
/// tracker does not read is nearly always the first byte.
#[inline(always)]
fn ignore_case(name: &[u8], key: &[u8]) -> bool {
    name.len() == key.len()
        && name
            .iter()
            .zip(key)
            .all(|(&n, &k)| n == k || (n ^ k == 0x20 && n.is_ascii_alphabetic()))
}

impl<'a> Fields<'a> {
    fn collect(msg: &'a Message) -> Self {
        let mut f = Fields::default();
        for (key, value) in msg.headers() {
            if ignore_case(b"Event", key) {
                // Most of a busy stream (CEL, Cdr, QueueMemberStatus...) is not modelled:
                // stop reading those at their first header.
                match EVENT_INDEX.find(value, exact) {
                    Some(build) => f.build = Some(build),
                    None => return Fields::default(),
                }
            } else if let Some(store) = FIELD_INDEX.find(key, ignore_case) {
                store(&mut f, value);
            }
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

/// Whether [`Event::parse`] models the event `name`.
#[cfg(test)]
fn is_modelled(name: &[u8]) -> bool {
    EVENT_INDEX.find(name, exact).is_some()
}

impl<'a> Event<'a> {
    /// Builds the typed view and the event time (`Timestamp` header, if any) of a message.
    /// Replies and list items that are not events give `Other`.
    pub fn parse(msg: &'a Message) -> (Event<'a>, Option<EventTime>) {
        let f = Fields::collect(msg);
        let at = EventTime::parse_ami(f.timestamp);
        let ev = match f.build {
            Some(build) => build(&f),
            None => Event::Other,
        };
        (ev, at)
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
        for (name, _) in EVENTS {
            let name = std::str::from_utf8(name).expect("ASCII name");
            assert!(is_modelled(name.as_bytes()), "{name}");
            let m = Message::from_pairs(&[
                ("Event", name),
                ("SubEvent", "Begin"),
                ("Channel", "x"),
                ("Uniqueid", "1.1"),
            ]);
            assert_ne!(Event::parse(&m).0, Event::Other, "{name}");
        }
        assert!(!is_modelled(b"newchannel"), "event names are exact");
        let dial = Message::from_pairs(&[("Event", "Dial"), ("SubEvent", "Ringing")]);
        assert_eq!(Event::parse(&dial).0, Event::Other);
    }

    #[test]
    fn table_keys_are_alphanumeric_as_the_case_rule_needs() {
        for (key, _) in FIELDS {
            assert!(key.iter().all(u8::is_ascii_alphanumeric), "{key:?}");
        }
        assert!(ignore_case(b"Uniqueid1", b"UNIQUEID1"));
        assert!(!ignore_case(b"Uniqueid1", b"Uniqueid\x11"));
        assert!(!ignore_case(b"Channel", b"Channe"));
    }

    #[test]
    fn every_table_entry_is_found_by_its_own_key_in_any_case() {
        for (key, _) in FIELDS {
            assert!(FIELD_INDEX.find(key, ignore_case).is_some(), "{key:?}");
            let upper = key.to_ascii_uppercase();
            assert!(FIELD_INDEX.find(&upper, ignore_case).is_some(), "{key:?}");
        }
        assert!(FIELD_INDEX.find(b"Privilege", ignore_case).is_none());
        assert!(FIELD_INDEX.find(b"", ignore_case).is_none());
        assert!(FIELD_INDEX.find(&[b'x'; 64], ignore_case).is_none());
    }

    #[test]
    fn the_modern_header_wins_over_its_fallback_in_any_order() {
        for pairs in [
            [("Extension", "old"), ("Exten", "new")],
            [("Exten", "new"), ("Extension", "old")],
        ] {
            let mut all = vec![("Event", "Newexten"), ("Channel", "x"), ("Uniqueid", "1.1")];
            all.extend_from_slice(&pairs);
            let m = Message::from_pairs(&all);
            match Event::parse(&m).0 {
                Event::Newexten { chan, .. } => assert_eq!(chan.exten, b"new"),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_events_and_replies_are_other() {
        let m = Message::from_pairs(&[("Event", "MusicOnHoldStart"), ("Channel", "x")]);
        assert_eq!(Event::parse(&m).0, Event::Other);
        let r = Message::from_pairs(&[("Response", "Success"), ("Ping", "Pong")]);
        assert_eq!(Event::parse(&r).0, Event::Other);
    }
}
