//! State machine tests: one scripted call per row of the loss-reason table (SPEC section 4),
//! plus answered, outbound, internal, expiry, shutdown and resync cases.

use super::*;
use crate::ami::Message;

/// A channel in a scripted call.
#[derive(Clone)]
struct Ch {
    name: &'static str,
    uid: &'static str,
    linked: &'static str,
}

const CALLER: Ch = Ch {
    name: "PJSIP/trunk-00000001",
    uid: "1700000000.1",
    linked: "1700000000.1",
};
const AGENT1: Ch = Ch {
    name: "PJSIP/101-00000002",
    uid: "1700000000.2",
    linked: "1700000000.1",
};
/// An extension placing its own call (outbound or internal).
const EXT: Ch = Ch {
    name: "PJSIP/101-00000009",
    uid: "1700000100.9",
    linked: "1700000100.9",
};
const AGENT2: Ch = Ch {
    name: "PJSIP/102-00000003",
    uid: "1700000000.3",
    linked: "1700000000.1",
};

/// Builds a stream of events with a running clock.
struct Script {
    t: f64,
    tracker: Tracker,
    out: Vec<FinishedCall>,
    cid: &'static str,
}

impl Script {
    fn new() -> Script {
        Script {
            t: 1_700_000_000.0,
            tracker: Tracker::new(TrackerConfig::default()),
            out: Vec::new(),
            cid: "79161234567",
        }
    }

    fn wait(&mut self, secs: f64) -> &mut Self {
        self.t += secs;
        self
    }

    fn ev(
        &mut self,
        name: &str,
        ch: &Ch,
        ctx: &str,
        exten: &str,
        extra: &[(&str, &str)],
    ) -> &mut Self {
        let ts = format!("{:.6}", self.t);
        let mut pairs: Vec<(&str, &str)> = vec![
            ("Event", name),
            ("Timestamp", &ts),
            ("Channel", ch.name),
            ("CallerIDNum", self.cid),
            ("CallerIDName", "Client"),
            ("Context", ctx),
            ("Exten", exten),
            ("Uniqueid", ch.uid),
            ("Linkedid", ch.linked),
        ];
        pairs.extend_from_slice(extra);
        let msg = Message::from_pairs(&pairs);
        self.tracker
            .on_message(&msg, EventTime::default(), &mut self.out);
        self
    }

    fn app(&mut self, ch: &Ch, ctx: &str, app: &str, data: &str) -> &mut Self {
        self.ev(
            "Newexten",
            ch,
            ctx,
            "s",
            &[("Application", app), ("AppData", data)],
        )
    }

    fn inbound(&mut self) -> &mut Self {
        self.ev("Newchannel", &CALLER, "from-pstn", "74951234567", &[])
            .ev(
                "Newexten",
                &CALLER,
                "from-pstn",
                "74951234567",
                &[("Application", "Answer"), ("AppData", "")],
            )
    }

    fn var(&mut self, ch: &Ch, name: &str, value: &str) -> &mut Self {
        self.ev(
            "VarSet",
            ch,
            "x",
            "s",
            &[("Variable", name), ("Value", value)],
        )
    }

    fn dial_begin(&mut self, dest: &Ch) -> &mut Self {
        self.ev("Newchannel", dest, "from-internal", "101", &[]).ev(
            "DialBegin",
            &CALLER,
            "x",
            "s",
            &[("DestChannel", dest.name), ("DestUniqueid", dest.uid)],
        )
    }

    fn agent_called(&mut self, dest: &Ch, member: &str) -> &mut Self {
        self.ev("Newchannel", dest, "from-queue", "101", &[])
            .ev(
                "AgentCalled",
                &CALLER,
                "x",
                "s",
                &[
                    ("DestChannel", dest.name),
                    ("DestUniqueid", dest.uid),
                    ("Queue", "sales"),
                    ("MemberName", member),
                    ("Interface", "PJSIP/101"),
                ],
            )
            .ev(
                "DialBegin",
                &CALLER,
                "x",
                "s",
                &[("DestChannel", dest.name), ("DestUniqueid", dest.uid)],
            )
    }

    fn dial_end(&mut self, dest: &Ch, status: &str) -> &mut Self {
        self.ev(
            "DialEnd",
            &CALLER,
            "x",
            "s",
            &[
                ("DestChannel", dest.name),
                ("DestUniqueid", dest.uid),
                ("DialStatus", status),
            ],
        )
    }

    fn hangup(&mut self, ch: &Ch) -> &mut Self {
        self.ev("HangupRequest", ch, "x", "s", &[])
            .ev("Hangup", ch, "x", "s", &[("Cause", "16")])
    }

    fn join_queue(&mut self) -> &mut Self {
        self.app(&CALLER, "ext-queues", "Queue", "sales,t,,,60").ev(
            "QueueCallerJoin",
            &CALLER,
            "ext-queues",
            "s",
            &[("Queue", "sales")],
        )
    }

    fn only(&self) -> &FinishedCall {
        assert_eq!(self.out.len(), 1, "{:#?}", self.out);
        &self.out[0]
    }

    fn reason(&self) -> Option<LossReason> {
        self.only().missed.as_ref().map(|m| m.loss_reason)
    }
}

#[test]
fn ivr_caller_hangs_up_in_the_menu() {
    let mut s = Script::new();
    s.inbound()
        .app(&CALLER, "ivr-main", "BackGround", "welcome")
        .wait(4.5)
        .hangup(&CALLER);
    assert_eq!(s.reason(), Some(LossReason::Ivr));
    let c = s.only();
    assert_eq!(c.number, "79161234567");
    assert_eq!(c.did.as_deref(), Some("74951234567"));
    assert!((c.wait_seconds - 4.5).abs() < 1e-6);
    assert!(c.attempts.is_empty());
}

#[test]
fn queue_caller_hangs_up_between_ring_rounds() {
    let mut s = Script::new();
    s.inbound()
        .join_queue()
        .agent_called(&AGENT1, "101")
        .wait(10.0)
        .dial_end(&AGENT1, "NOANSWER")
        .wait(1.0)
        .hangup(&CALLER);
    assert_eq!(s.reason(), Some(LossReason::Queue));
    let c = s.only();
    assert_eq!(c.queue.as_deref(), Some("sales"));
    assert_eq!(
        c.attempts.len(),
        1,
        "AgentCalled + DialBegin are one attempt"
    );
    assert_eq!(c.attempts[0].agent, "101");
    assert_eq!(c.attempts[0].outcome, AttemptOutcome::NoAnswer);
    assert!((c.attempts[0].ring_seconds - 10.0).abs() < 1e-6);
}

#[test]
fn ringing_caller_hangs_up_while_an_agent_rings() {
    let mut s = Script::new();
    s.inbound()
        .join_queue()
        .agent_called(&AGENT1, "101")
        .wait(3.0)
        .ev("HangupRequest", &CALLER, "x", "s", &[])
        .dial_end(&AGENT1, "CANCEL")
        .ev(
            "QueueCallerAbandon",
            &CALLER,
            "x",
            "s",
            &[("Queue", "sales")],
        )
        .ev("QueueCallerLeave", &CALLER, "x", "s", &[("Queue", "sales")])
        .ev("Hangup", &CALLER, "x", "s", &[]);
    assert_eq!(s.reason(), Some(LossReason::Ringing));
    assert_eq!(s.only().attempts[0].outcome, AttemptOutcome::CallerHungUp);
}

#[test]
fn timeout_queue_gives_up_and_sends_the_caller_to_voicemail() {
    let mut s = Script::new();
    s.inbound()
        .join_queue()
        .agent_called(&AGENT1, "101")
        .wait(10.0)
        .dial_end(&AGENT1, "NOANSWER")
        .ev(
            "QueueCallerAbandon",
            &CALLER,
            "x",
            "s",
            &[("Queue", "sales")],
        )
        .ev("QueueCallerLeave", &CALLER, "x", "s", &[("Queue", "sales")])
        .var(&CALLER, "QUEUESTATUS", "TIMEOUT")
        .app(&CALLER, "vm", "VoiceMail", "100@default,u")
        .wait(5.0)
        .hangup(&CALLER);
    assert_eq!(s.reason(), Some(LossReason::Timeout));
    assert!(s.only().missed.as_ref().unwrap().voicemail);
}

#[test]
fn no_agents_queue_refuses_the_caller() {
    let mut s = Script::new();
    s.inbound()
        .app(&CALLER, "ext-queues", "Queue", "billing")
        .var(&CALLER, "QUEUESTATUS", "JOINEMPTY")
        .app(&CALLER, "ext-queues", "Playback", "sorry")
        .wait(2.0)
        .hangup(&CALLER);
    assert_eq!(s.reason(), Some(LossReason::NoAgents));
}

#[test]
fn busy_every_dialled_extension_is_busy() {
    let mut s = Script::new();
    s.inbound()
        .app(&CALLER, "ext-group", "Dial", "PJSIP/101&PJSIP/102,20")
        .dial_begin(&AGENT1)
        .dial_begin(&AGENT2)
        .dial_end(&AGENT1, "BUSY")
        .dial_end(&AGENT2, "CHANUNAVAIL")
        .var(&CALLER, "DIALSTATUS", "CHANUNAVAIL")
        .app(&CALLER, "ext-group", "Playback", "all-busy")
        .wait(3.0)
        .hangup(&CALLER);
    assert_eq!(s.reason(), Some(LossReason::Busy));
    let outcomes: Vec<_> = s.only().attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes, vec![AttemptOutcome::Busy, AttemptOutcome::Busy]);
}

#[test]
fn ring_group_timeout_then_voicemail() {
    let mut s = Script::new();
    s.inbound()
        .app(&CALLER, "ext-group", "Dial", "PJSIP/101&PJSIP/102,20")
        .dial_begin(&AGENT1)
        .wait(20.0)
        .dial_end(&AGENT1, "NOANSWER")
        .var(&CALLER, "DIALSTATUS", "NOANSWER")
        .app(&CALLER, "vm", "VoiceMail", "100")
        .wait(4.0)
        .hangup(&CALLER);
    assert_eq!(s.reason(), Some(LossReason::Timeout));
}

#[test]
fn after_hours_context_and_variable() {
    let mut s = Script::new();
    s.inbound()
        .app(&CALLER, "support-closed", "Playback", "closed")
        .wait(3.0)
        .hangup(&CALLER);
    assert_eq!(s.reason(), Some(LossReason::AfterHours));

    let mut s = Script::new();
    s.inbound()
        .var(&CALLER, "__AFTER_HOURS", "1")
        .app(&CALLER, "from-pstn", "Hangup", "")
        .hangup(&CALLER);
    assert_eq!(s.reason(), Some(LossReason::AfterHours));
}

#[test]
fn answered_by_queue_member_is_not_missed() {
    let mut s = Script::new();
    s.inbound()
        .join_queue()
        .agent_called(&AGENT1, "101")
        .wait(3.0)
        .ev(
            "AgentConnect",
            &CALLER,
            "x",
            "s",
            &[
                ("DestChannel", AGENT1.name),
                ("DestUniqueid", AGENT1.uid),
                ("MemberName", "101"),
                ("Queue", "sales"),
            ],
        )
        .dial_end(&AGENT1, "ANSWER")
        .wait(30.0)
        .hangup(&CALLER);
    let c = s.only();
    assert!(c.answered && c.missed.is_none());
    assert_eq!(c.agent.as_deref(), Some("101"));
    assert!((c.talk_seconds - 30.0).abs() < 1e-6);
    assert_eq!(c.attempts[0].outcome, AttemptOutcome::Answered);
}

#[test]
fn pbx_answer_for_the_ivr_is_not_a_human_answer() {
    let mut s = Script::new();
    s.inbound()
        .ev(
            "Newstate",
            &CALLER,
            "from-pstn",
            "s",
            &[("ChannelState", "6")],
        )
        .app(&CALLER, "ivr", "WaitExten", "5")
        .wait(6.0)
        .hangup(&CALLER);
    assert!(!s.only().answered);
    assert_eq!(s.reason(), Some(LossReason::Ivr));
}

#[test]
fn local_leg_answered_by_voicemail_is_a_timeout_not_an_answer() {
    let one = Ch {
        name: "Local/101@ext-local-00000001;1",
        uid: "1700000000.5",
        linked: "1700000000.1",
    };
    let two = Ch {
        name: "Local/101@ext-local-00000001;2",
        uid: "1700000000.6",
        linked: "1700000000.1",
    };
    let mut s = Script::new();
    s.inbound()
        .app(&CALLER, "ext-group", "Dial", "Local/101@ext-local,30")
        .dial_begin(&one)
        .ev("Newchannel", &two, "ext-local", "101", &[])
        .wait(15.0)
        .app(&two, "ext-local", "VoiceMail", "101@default")
        .dial_end(&one, "ANSWER")
        .wait(10.0)
        .hangup(&CALLER);
    let c = s.only();
    assert!(!c.answered);
    let m = c.missed.as_ref().unwrap();
    assert_eq!(m.loss_reason, LossReason::Timeout);
    assert!(m.voicemail);
}

#[test]
fn outbound_call_reports_number_agent_and_talk_time() {
    let ext = EXT;
    let trunk = Ch {
        name: "PJSIP/provider-0000000a",
        uid: "1700000100.10",
        linked: "1700000100.9",
    };
    let mut s = Script::new();
    s.ev("Newchannel", &ext, "from-internal", "89161234567", &[])
        .ev(
            "Newexten",
            &ext,
            "from-internal",
            "89161234567",
            &[
                ("Application", "Dial"),
                ("AppData", "PJSIP/89161234567@provider"),
            ],
        )
        .ev("Newchannel", &trunk, "from-trunk", "s", &[])
        .ev(
            "DialBegin",
            &ext,
            "from-internal",
            "89161234567",
            &[("DestChannel", trunk.name), ("DestUniqueid", trunk.uid)],
        )
        .wait(5.0)
        .ev(
            "DialEnd",
            &ext,
            "from-internal",
            "89161234567",
            &[
                ("DestChannel", trunk.name),
                ("DestUniqueid", trunk.uid),
                ("DialStatus", "ANSWER"),
            ],
        )
        .wait(42.0)
        .hangup(&trunk)
        .hangup(&ext);
    let c = s.only();
    assert_eq!(c.direction, Direction::Outbound);
    assert_eq!(c.number, "89161234567");
    assert!(c.answered);
    assert!((c.talk_seconds - 42.0).abs() < 1e-6);
    assert_eq!(
        s.tracker.in_progress(),
        0,
        "state freed after the last hangup"
    );
}

#[test]
fn internal_calls_produce_nothing() {
    let ext = EXT;
    let mut s = Script::new();
    s.ev("Newchannel", &ext, "from-internal", "102", &[])
        .ev(
            "Newexten",
            &ext,
            "from-internal",
            "102",
            &[("Application", "Dial"), ("AppData", "PJSIP/102")],
        )
        .wait(10.0)
        .hangup(&ext);
    assert!(s.out.is_empty());
    assert_eq!(s.tracker.in_progress(), 0);
}

#[test]
fn call_without_hangup_expires_with_gap_flag() {
    let mut s = Script::new();
    s.inbound().join_queue().wait(5.0);
    assert!(s.out.is_empty());
    let now = EventTime::from_secs_f64(s.t);
    s.tracker.expire(now, &mut s.out);
    assert!(s.out.is_empty(), "not stale yet");
    let later = now.plus_secs(DEFAULT_EXPIRE_SECS_FOR_TEST);
    s.tracker.expire(later, &mut s.out);
    let c = s.only();
    assert!(c.gap);
    assert_eq!(c.missed.as_ref().unwrap().loss_reason, LossReason::Queue);
    assert_eq!(s.tracker.in_progress(), 0);
}

const DEFAULT_EXPIRE_SECS_FOR_TEST: i64 = config::DEFAULT_EXPIRE_AFTER_SECS as i64 + 1;

#[test]
fn shutdown_ends_every_call_in_progress() {
    let mut s = Script::new();
    s.inbound().join_queue().wait(2.0);
    let msg = Message::from_pairs(&[
        ("Event", "Shutdown"),
        ("Timestamp", "1700000010.0"),
        ("Shutdown", "Cleanly"),
        ("Restart", "True"),
    ]);
    s.tracker.on_message(&msg, EventTime::default(), &mut s.out);
    assert!(s.only().gap);
    assert_eq!(s.tracker.in_progress(), 0);
}

#[test]
fn resync_finishes_vanished_calls_and_adopts_new_channels() {
    let mut s = Script::new();
    s.inbound().join_queue().wait(2.0);
    let other = Message::from_pairs(&[
        ("Event", "CoreShowChannel"),
        ("Channel", "PJSIP/trunk-00000099"),
        ("Uniqueid", "1700000050.99"),
        ("Linkedid", "1700000050.99"),
        ("Context", "from-pstn"),
        ("Extension", "74957654321"),
        ("CallerIDNum", "79990001122"),
        ("Application", "Queue"),
        ("ApplicationData", "support"),
        ("Duration", "00:00:07"),
    ]);
    let now = EventTime::from_secs_f64(s.t + 60.0);
    s.tracker.resync(&[other], now, &mut s.out);
    assert!(s.only().gap, "the call tracked before the gap is finished");
    assert_eq!(s.tracker.in_progress(), 1, "the listed channel is adopted");
    s.out.clear();
    let bye = Message::from_pairs(&[
        ("Event", "Hangup"),
        ("Timestamp", &format!("{:.6}", now.as_secs_f64() + 3.0)),
        ("Channel", "PJSIP/trunk-00000099"),
        ("Uniqueid", "1700000050.99"),
        ("Linkedid", "1700000050.99"),
    ]);
    s.tracker.on_message(&bye, EventTime::default(), &mut s.out);
    let c = s.only();
    assert_eq!(c.number, "79990001122");
    assert_eq!(c.did.as_deref(), Some("74957654321"));
    // Listed 7 s old (whole seconds: 7.5 s), hung up 3 s after the list.
    assert!((c.wait_seconds - 10.5).abs() < 1e-6, "{}", c.wait_seconds);
}

#[test]
fn withheld_caller_is_reported_with_empty_number() {
    let mut s = Script::new();
    s.cid = "anonymous";
    s.inbound()
        .app(&CALLER, "ivr", "Playback", "welcome")
        .wait(1.0)
        .hangup(&CALLER);
    let c = s.only();
    assert!(c.withheld);
    assert_eq!(c.number, "");
    assert_eq!(c.missed.as_ref().unwrap().loss_reason, LossReason::Ivr);
}

#[test]
fn replaying_the_same_events_twice_gives_identical_output() {
    let run = || {
        let mut s = Script::new();
        s.inbound()
            .join_queue()
            .agent_called(&AGENT1, "101")
            .wait(3.0)
            .hangup(&CALLER);
        s.out
    };
    assert_eq!(run(), run());
}

#[test]
fn external_caller_sent_straight_to_a_queue_is_inbound() {
    let mut s = Script::new();
    s.ev("Newchannel", &CALLER, "ivr", "sales", &[])
        .app(&CALLER, "ivr", "Queue", "sales,r")
        .ev(
            "QueueCallerJoin",
            &CALLER,
            "ivr",
            "sales",
            &[("Queue", "sales")],
        )
        .wait(5.0)
        .hangup(&CALLER);
    assert_eq!(s.reason(), Some(LossReason::Queue));
    assert_eq!(
        s.only().did.as_deref(),
        Some(""),
        "no DID: the extension was a name"
    );
}

#[test]
fn extension_calling_a_queue_is_not_inbound() {
    let ext = EXT;
    let mut s = Script::new();
    s.cid = "101";
    s.ev("Newchannel", &ext, "from-internal", "400", &[])
        .app(&ext, "from-internal", "Queue", "400")
        .wait(5.0)
        .hangup(&ext);
    assert!(s.out.is_empty());
}

#[test]
fn unnamed_queue_member_is_named_by_its_extension() {
    let mut s = Script::new();
    s.inbound()
        .join_queue()
        .agent_called(&AGENT1, "Local/101@agents/n")
        .wait(2.0)
        .hangup(&CALLER);
    assert_eq!(s.only().attempts[0].agent, "101");
}

#[test]
fn caller_lost_during_the_members_announcement_is_not_answered() {
    let mut s = Script::new();
    s.inbound()
        .join_queue()
        .agent_called(&AGENT1, "101")
        .wait(4.0)
        .dial_end(&AGENT1, "ANSWER")
        .wait(1.0)
        .ev(
            "AgentDump",
            &CALLER,
            "x",
            "s",
            &[("MemberName", "101"), ("Queue", "sales")],
        )
        .hangup(&CALLER);
    let c = s.only();
    assert!(
        !c.answered,
        "no AgentConnect: the caller never talked to 101"
    );
    assert_eq!(c.attempts[0].outcome, AttemptOutcome::Answered);
}

// ---- Mechanisms of production PBXes: the h extension, ring rounds, Local chains, forwards,
// ---- trunks in contexts of any name, time conditions.

/// The `;1` and `;2` halves of a Local queue member and the phone its `;2` dials.
const LOCAL1: Ch = Ch {
    name: "Local/101@from-queue-00000006;1",
    uid: "1700000000.11",
    linked: "1700000000.1",
};
const LOCAL2: Ch = Ch {
    name: "Local/101@from-queue-00000006;2",
    uid: "1700000000.12",
    linked: "1700000000.1",
};
const PHONE101: Ch = Ch {
    name: "PJSIP/101-00000009",
    uid: "1700000000.13",
    linked: "1700000000.1",
};
const MOBILE: Ch = Ch {
    name: "PJSIP/trunk-0000000a",
    uid: "1700000000.14",
    linked: "1700000000.1",
};

impl Script {
    /// `from` dials `dest` with the dial string `what`.
    fn dial_from(&mut self, from: &Ch, dest: &Ch, what: &str) -> &mut Self {
        self.ev("Newchannel", dest, "from-internal", "s", &[]).ev(
            "DialBegin",
            from,
            "from-internal",
            "101",
            &[
                ("DestChannel", dest.name),
                ("DestUniqueid", dest.uid),
                ("DialString", what),
            ],
        )
    }

    fn dial_end_from(&mut self, from: &Ch, dest: &Ch, status: &str) -> &mut Self {
        self.ev(
            "DialEnd",
            from,
            "from-internal",
            "101",
            &[
                ("DestChannel", dest.name),
                ("DestUniqueid", dest.uid),
                ("DialStatus", status),
            ],
        )
    }

    /// The caller's hang-up as FreePBX shows it: `HangupRequest`, the legs cancelled, the `h`
    /// extension, `Hangup`.
    fn hangup_through_h(&mut self, legs: &[&Ch]) -> &mut Self {
        self.ev("HangupRequest", &CALLER, "ext-queues", "400", &[]);
        for leg in legs {
            self.dial_end(leg, "CANCEL");
        }
        self.var(&CALLER, "DIALSTATUS", "CANCEL")
            .ev(
                "Newexten",
                &CALLER,
                "ext-queues",
                "h",
                &[("Application", "Hangup"), ("AppData", "")],
            )
            .ev("Hangup", &CALLER, "ext-queues", "h", &[])
    }

    fn step(&mut self, ctx: &str, exten: &str, prio: &str, app: &str, data: &str) -> &mut Self {
        self.ev(
            "Newexten",
            &CALLER,
            ctx,
            exten,
            &[("Priority", prio), ("Application", app), ("AppData", data)],
        )
    }
}

#[test]
fn the_h_extension_after_the_hang_up_does_not_change_where_the_caller_was_lost() {
    let mut s = Script::new();
    s.inbound()
        .app(&CALLER, "ext-group", "Dial", "PJSIP/101&PJSIP/102,20")
        .dial_begin(&AGENT1)
        .dial_begin(&AGENT2)
        .wait(12.0)
        .hangup_through_h(&[&AGENT1, &AGENT2]);
    assert_eq!(s.reason(), Some(LossReason::Ringing));
    let outcomes: Vec<_> = s.only().attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes, [AttemptOutcome::CallerHungUp; 2]);
}

#[test]
fn a_caller_lost_in_the_second_ring_round_was_lost_ringing() {
    let mut s = Script::new();
    s.inbound()
        .join_queue()
        .agent_called(&AGENT1, "101")
        .wait(15.0)
        // Asterisk 20: NOANSWER then CANCEL for the same leg.
        .dial_end(&AGENT1, "NOANSWER")
        .dial_end(&AGENT1, "CANCEL")
        .wait(5.0)
        .agent_called(&AGENT2, "101")
        .wait(3.5)
        .hangup_through_h(&[&AGENT2]);
    assert_eq!(s.reason(), Some(LossReason::Ringing));
    let rings: Vec<_> = s
        .only()
        .attempts
        .iter()
        .map(|a| (a.outcome, a.ring_seconds))
        .collect();
    assert_eq!(
        rings,
        [
            (AttemptOutcome::NoAnswer, 15.0),
            (AttemptOutcome::CallerHungUp, 3.5)
        ]
    );
}

#[test]
fn a_local_member_is_followed_to_its_phone_and_named_by_its_member_name() {
    let mut s = Script::new();
    s.inbound().join_queue();
    s.ev("Newchannel", &LOCAL1, "from-queue", "101", &[])
        .ev("Newchannel", &LOCAL2, "from-queue", "101", &[])
        .ev(
            "AgentCalled",
            &CALLER,
            "ext-queues",
            "400",
            &[
                ("DestChannel", LOCAL1.name),
                ("DestUniqueid", LOCAL1.uid),
                ("Queue", "400"),
                ("MemberName", "Anna Smith"),
                ("Interface", "Local/101@from-queue/n"),
            ],
        )
        .dial_from(&CALLER, &LOCAL1, "Local/101@from-queue/n")
        .dial_from(&LOCAL2, &PHONE101, "101")
        .wait(15.0)
        // The phone rang out but the queue has not ended the member's leg yet.
        .dial_end_from(&LOCAL2, &PHONE101, "NOANSWER")
        .ev("Hangup", &PHONE101, "from-internal", "101", &[])
        .wait(0.5)
        .hangup_through_h(&[&LOCAL1]);
    assert_eq!(
        s.reason(),
        Some(LossReason::Queue),
        "no phone rang when the caller left"
    );
    let a = &s.only().attempts;
    assert_eq!(
        a.len(),
        1,
        "the phone behind the Local member is not another attempt"
    );
    assert_eq!(a[0].agent, "101");
    assert_eq!(a[0].name.as_deref(), Some("Anna Smith"));
}

#[test]
fn a_follow_me_to_a_mobile_is_a_forward_and_the_ring_group_timed_out() {
    let mut s = Script::new();
    s.inbound()
        .app(&CALLER, "ext-group", "Dial", "Local/101@from-internal/n,30")
        .dial_from(&CALLER, &LOCAL1, "Local/101@from-internal/n")
        .ev("Newchannel", &LOCAL2, "from-internal", "101", &[])
        .dial_from(&LOCAL2, &PHONE101, "101")
        .wait(15.0)
        .dial_end_from(&LOCAL2, &PHONE101, "NOANSWER")
        .dial_from(&LOCAL2, &MOBILE, "trunk/79169990000")
        .wait(1.0)
        .dial_end_from(&LOCAL2, &MOBILE, "CONGESTION")
        .dial_end(&LOCAL1, "NOANSWER")
        .var(&CALLER, "DIALSTATUS", "NOANSWER")
        .app(&CALLER, "ext-group", "Playback", "nobody-there")
        .wait(2.0)
        .hangup(&CALLER);
    assert_eq!(s.reason(), Some(LossReason::Timeout));
    let c = s.only();
    let agents: Vec<_> = c.attempts.iter().map(|a| a.agent.as_str()).collect();
    assert_eq!(agents, ["101"], "the mobile is not an agent");
    assert_eq!(c.forwards.len(), 1);
    assert_eq!(c.forwards[0].number, "79169990000");
    assert_eq!(c.forwards[0].outcome, ForwardOutcome::Congestion);
    assert!((c.forwards[0].ring_seconds - 1.0).abs() < 1e-6);
}

#[test]
fn a_caller_dialled_straight_to_a_mobile_while_phones_ring_is_ringing() {
    let mut s = Script::new();
    s.inbound()
        .app(
            &CALLER,
            "ext-group",
            "Dial",
            "PJSIP/101&PJSIP/trunk/79169990000,20",
        )
        .dial_begin(&AGENT1)
        .dial_from(&CALLER, &MOBILE, "trunk/79169990000")
        .wait(5.0)
        .hangup_through_h(&[&AGENT1, &MOBILE]);
    assert_eq!(s.reason(), Some(LossReason::Ringing));
    let c = s.only();
    assert_eq!(c.attempts.len(), 1);
    assert_eq!(c.forwards[0].outcome, ForwardOutcome::CallerHungUp);
}

#[test]
fn a_trunk_in_a_context_of_any_name_is_inbound_and_the_context_is_reported_once() {
    let carrier = Ch {
        name: "SIP/carrier-00000001",
        uid: "1700000000.1",
        linked: "1700000000.1",
    };
    let mut s = Script::new();
    for _ in 0..2 {
        s.ev("Newchannel", &carrier, "incoming-calls", "74951234567", &[])
            .ev(
                "Newexten",
                &carrier,
                "incoming-calls",
                "74951234567",
                &[("Application", "Answer"), ("AppData", "")],
            )
            .ev(
                "Newexten",
                &carrier,
                "main-menu",
                "s",
                &[("Application", "Background"), ("AppData", "welcome")],
            )
            .wait(3.0)
            .hangup(&carrier);
    }
    assert_eq!(s.out.len(), 2);
    assert_eq!(s.out[0].direction, Direction::Inbound);
    assert_eq!(s.out[0].did.as_deref(), Some("74951234567"));
    assert_eq!(
        s.out[0].missed.as_ref().map(|m| m.loss_reason),
        Some(LossReason::Ivr)
    );
    assert_eq!(
        s.tracker.take_notices(),
        [Notice::UnknownInboundContext {
            context: "incoming-calls".into(),
            inbound: true
        }]
    );
}

#[test]
fn a_phone_with_an_external_caller_id_is_not_taken_for_a_trunk() {
    let phone = Ch {
        name: "SIP/101-00000001",
        uid: "1700000000.1",
        linked: "1700000000.1",
    };
    let mut s = Script::new();
    for _ in 0..3 {
        s.ev("Newchannel", &phone, "office", "s", &[])
            .ev(
                "Newexten",
                &phone,
                "office",
                "200",
                &[("Application", "Dial"), ("AppData", "SIP/200")],
            )
            .wait(2.0)
            .hangup(&phone);
    }
    assert!(s.out.is_empty(), "{:#?}", s.out);
    let notices = s.tracker.take_notices();
    assert_eq!(
        notices,
        [Notice::UnknownInboundContext {
            context: "office".into(),
            inbound: false
        }],
        "reported once, after calls keep arriving"
    );
}

#[test]
fn a_dialled_trunk_leg_running_dialplan_in_from_pstn_is_not_an_inbound_call() {
    let trunk = Ch {
        name: "PJSIP/trunk-00000002",
        uid: "1700000100.10",
        linked: "1700000100.9",
    };
    let mut s = Script::new();
    s.cid = "101";
    s.ev("Newchannel", &EXT, "from-internal", "89161234567", &[])
        .ev(
            "Newexten",
            &EXT,
            "from-internal",
            "89161234567",
            &[
                ("Application", "Dial"),
                ("AppData", "PJSIP/89161234567@trunk"),
            ],
        );
    s.cid = "74951234567";
    s.ev("Newchannel", &trunk, "from-pstn", "s", &[])
        .ev(
            "Newexten",
            &trunk,
            "from-pstn",
            "89161234567",
            &[("Application", "AppDial"), ("AppData", "(Outgoing Line)")],
        )
        .ev(
            "DialBegin",
            &EXT,
            "from-internal",
            "89161234567",
            &[("DestChannel", trunk.name), ("DestUniqueid", trunk.uid)],
        )
        .wait(5.0)
        .ev("Hangup", &trunk, "from-pstn", "s", &[])
        .ev("Hangup", &EXT, "from-internal", "89161234567", &[]);
    let c = s.only();
    assert_eq!(c.direction, Direction::Outbound);
    assert_eq!(c.number, "89161234567");
    assert!(s.tracker.take_notices().is_empty());
}

#[test]
fn a_freepbx_time_condition_set_to_false_is_after_hours() {
    let mut s = Script::new();
    s.inbound()
        .step("timeconditions", "1", "1", "Set", "TCRULE=tc1")
        .step("timeconditions", "1", "2", "GotoIf", "1?falsestate")
        // No VarSet here: the AMI user may filter them; the Set step says it.
        .step("timeconditions", "1", "4", "Set", "TCSTATE=false")
        .step("timeconditions", "1", "5", "Goto", "app-announcement-1,s,1")
        .step("app-announcement-1", "s", "1", "Answer", "")
        .step(
            "app-announcement-1",
            "s",
            "2",
            "Playback",
            "custom/closed,noanswer",
        )
        .wait(5.0)
        .hangup(&CALLER);
    assert_eq!(s.reason(), Some(LossReason::AfterHours));
}

#[test]
fn a_gotoiftime_that_falls_through_is_after_hours_and_one_that_jumps_is_not() {
    let run = |next_prio: &str, next_ctx: &str| {
        let mut s = Script::new();
        s.inbound()
            .step(
                "incoming",
                "74951234567",
                "2",
                "GotoIfTime",
                "09:00-18:00,mon-fri,*,*?open,s,1",
            )
            .step(
                next_ctx,
                if next_ctx == "open" {
                    "s"
                } else {
                    "74951234567"
                },
                next_prio,
                "Playback",
                "message",
            )
            .wait(4.0)
            .hangup(&CALLER);
        s.reason()
    };
    assert_eq!(run("3", "incoming"), Some(LossReason::AfterHours));
    assert_eq!(run("1", "open"), Some(LossReason::Ivr));
}

#[test]
fn a_caller_who_reaches_a_queue_after_a_false_time_condition_is_not_after_hours() {
    let mut s = Script::new();
    s.inbound()
        .step("timeconditions", "1", "4", "Set", "TCSTATE=false")
        .join_queue()
        .wait(10.0)
        .hangup(&CALLER);
    assert_eq!(s.reason(), Some(LossReason::Queue));
}

#[test]
fn a_named_phone_once_rung_is_never_taken_for_a_trunk() {
    let reception = Ch {
        name: "SIP/reception-00000002",
        uid: "1700000000.2",
        linked: "1700000000.1",
    };
    let mut s = Script::new();
    // An inbound call rings the phone `SIP/reception` (a named peer, not an extension number).
    s.inbound()
        .app(&CALLER, "ext-group", "Dial", "SIP/reception,20")
        .ev("Newchannel", &reception, "from-internal", "s", &[])
        .ev(
            "DialBegin",
            &CALLER,
            "ext-group",
            "600",
            &[
                ("DestChannel", reception.name),
                ("DestUniqueid", reception.uid),
                ("DialString", "reception"),
            ],
        )
        .wait(3.0)
        .hangup_through_h(&[&reception])
        .ev("Hangup", &reception, "from-internal", "s", &[]);
    assert_eq!(s.only().attempts[0].agent, "reception");
    // Later the same phone, whose caller id is the company number, calls a mobile.
    let calling = Ch {
        name: "SIP/reception-00000005",
        uid: "1700000200.5",
        linked: "1700000200.5",
    };
    s.cid = "74951234567";
    s.ev("Newchannel", &calling, "phones", "89161234567", &[])
        .ev(
            "Newexten",
            &calling,
            "phones",
            "89161234567",
            &[
                ("Application", "Dial"),
                ("AppData", "SIP/carrier/89161234567"),
            ],
        )
        .wait(10.0)
        .hangup(&calling);
    assert_eq!(s.out.len(), 2);
    assert_eq!(s.out[1].direction, Direction::Outbound, "{:#?}", s.out[1]);
}

#[test]
fn an_anonymous_caller_on_a_trunk_in_an_unknown_context_is_inbound_and_withheld() {
    let carrier = Ch {
        name: "SIP/carrier-00000001",
        uid: "1700000000.1",
        linked: "1700000000.1",
    };
    let mut s = Script::new();
    s.cid = "anonymous";
    s.ev("Newchannel", &carrier, "incoming", "74951234567", &[])
        .ev(
            "Newexten",
            &carrier,
            "incoming",
            "74951234567",
            &[("Application", "Background"), ("AppData", "welcome")],
        )
        .wait(2.0)
        .hangup(&carrier);
    let c = s.only();
    assert_eq!(c.direction, Direction::Inbound);
    assert!(c.withheld);
    assert_eq!(c.number, "");
}
