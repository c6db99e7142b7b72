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
    assert!((c.wait_seconds - 10.0).abs() < 1e-6, "{}", c.wait_seconds);
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
