//! What the tracker reports when a call ends: the facts the store, the callback tasks and the
//! reports need. `LossReason` and `AttemptOutcome` spell the SPEC section 4 contract values.

use serde::{Deserialize, Serialize};

use crate::time::EventTime;

/// Where the caller of a missed call was lost (SPEC section 4, contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossReason {
    /// Hung up in an IVR/menu/greeting before reaching any queue or agent.
    Ivr,
    /// Hung up while waiting in a queue with no agent ringing at that moment.
    Queue,
    /// Hung up while at least one agent/extension was ringing.
    Ringing,
    /// The PBX gave up (queue max wait, ring group timeout) and sent the caller on.
    Timeout,
    /// The queue had no available members (join/leave empty).
    NoAgents,
    /// Every dialled agent/extension was busy or unavailable.
    Busy,
    /// Routed to the after-hours path, never reached a queue or agent.
    AfterHours,
}

impl LossReason {
    /// Every loss reason.
    pub const ALL: [LossReason; 7] = [
        LossReason::Ivr,
        LossReason::Queue,
        LossReason::Ringing,
        LossReason::Timeout,
        LossReason::NoAgents,
        LossReason::Busy,
        LossReason::AfterHours,
    ];

    /// The contract spelling, e.g. `no_agents`.
    pub fn as_str(self) -> &'static str {
        match self {
            LossReason::Ivr => "ivr",
            LossReason::Queue => "queue",
            LossReason::Ringing => "ringing",
            LossReason::Timeout => "timeout",
            LossReason::NoAgents => "no_agents",
            LossReason::Busy => "busy",
            LossReason::AfterHours => "after_hours",
        }
    }

    /// Parses the contract spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ivr" => LossReason::Ivr,
            "queue" => LossReason::Queue,
            "ringing" => LossReason::Ringing,
            "timeout" => LossReason::Timeout,
            "no_agents" => LossReason::NoAgents,
            "busy" => LossReason::Busy,
            "after_hours" => LossReason::AfterHours,
            _ => return None,
        })
    }
}

/// How one ring of one agent ended (SPEC section 4, contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Rang until the queue/dial gave up on it.
    NoAnswer,
    /// The agent's phone was busy, unavailable or congested.
    Busy,
    /// The agent picked up.
    Answered,
    /// The caller hung up while this agent rang.
    CallerHungUp,
    /// Anything else (cancelled because another agent answered, unknown status).
    Other,
}

impl AttemptOutcome {
    /// Every attempt outcome.
    pub const ALL: [AttemptOutcome; 5] = [
        AttemptOutcome::NoAnswer,
        AttemptOutcome::Busy,
        AttemptOutcome::Answered,
        AttemptOutcome::CallerHungUp,
        AttemptOutcome::Other,
    ];

    /// The contract spelling, e.g. `caller_hung_up`.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::NoAnswer => "no_answer",
            AttemptOutcome::Busy => "busy",
            AttemptOutcome::Answered => "answered",
            AttemptOutcome::CallerHungUp => "caller_hung_up",
            AttemptOutcome::Other => "other",
        }
    }

    /// Parses the contract spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "no_answer" => AttemptOutcome::NoAnswer,
            "busy" => AttemptOutcome::Busy,
            "answered" => AttemptOutcome::Answered,
            "caller_hung_up" => AttemptOutcome::CallerHungUp,
            "other" => AttemptOutcome::Other,
            _ => return None,
        })
    }
}

/// One agent (queue member or dialled extension) rung for a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentAttempt {
    /// The agent's extension, from the device or interface rung (`PJSIP/101-…`, `Local/101@…`).
    pub agent: String,
    /// The queue member's display name (`MemberName`), when it is more than the extension.
    #[serde(default)]
    pub name: Option<String>,
    /// When the ring started (DialBegin / AgentCalled).
    pub ring_start: EventTime,
    /// Seconds from ring start to the end of the ring (DialEnd or equivalent).
    pub ring_seconds: f64,
    /// How the ring ended.
    pub outcome: AttemptOutcome,
}

/// How the ring of a forwarded leg (an external number) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardOutcome {
    /// The external party answered.
    Answered,
    /// Rang until the dial gave up.
    NoAnswer,
    /// The number was busy.
    Busy,
    /// The trunk or the network was congested.
    Congestion,
    /// The trunk was unavailable.
    Unavailable,
    /// The caller hung up while it rang.
    CallerHungUp,
    /// Anything else (cancelled because someone else answered, unknown status).
    Other,
}

impl ForwardOutcome {
    /// The spelling in the store and in `missed --json`, e.g. `congestion`.
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardOutcome::Answered => "answered",
            ForwardOutcome::NoAnswer => "no_answer",
            ForwardOutcome::Busy => "busy",
            ForwardOutcome::Congestion => "congestion",
            ForwardOutcome::Unavailable => "unavailable",
            ForwardOutcome::CallerHungUp => "caller_hung_up",
            ForwardOutcome::Other => "other",
        }
    }

    /// Parses the spelling of [`ForwardOutcome::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "answered" => ForwardOutcome::Answered,
            "no_answer" => ForwardOutcome::NoAnswer,
            "busy" => ForwardOutcome::Busy,
            "congestion" => ForwardOutcome::Congestion,
            "unavailable" => ForwardOutcome::Unavailable,
            "caller_hung_up" => ForwardOutcome::CallerHungUp,
            "other" => ForwardOutcome::Other,
            _ => return None,
        })
    }
}

/// An external number dialled for an inbound call (follow-me or call forward to a mobile).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forward {
    /// The number dialled, as the dial string gave it.
    pub number: String,
    /// When its ring started (`DialBegin`).
    pub ring_start: EventTime,
    /// Seconds from ring start to its `DialEnd`.
    pub ring_seconds: f64,
    /// How it ended.
    pub outcome: ForwardOutcome,
}

/// Direction of a call as seen from the company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A client called a company number.
    Inbound,
    /// An extension dialled an external number.
    Outbound,
}

impl Direction {
    /// `inbound` or `outbound`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }

    /// Parses `inbound` or `outbound`.
    pub fn parse(s: &str) -> Option<Self> {
        [Direction::Inbound, Direction::Outbound]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// The loss details of an inbound call no human answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissDetails {
    /// Where the caller was lost.
    pub loss_reason: LossReason,
    /// The caller reached voicemail (`VoiceMail`/`Record`).
    pub voicemail: bool,
}

/// Everything known about one finished inbound or outbound call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishedCall {
    /// The call's `Linkedid` (stable key; idempotency in the store rests on it).
    pub linkedid: String,
    /// Inbound or outbound.
    pub direction: Direction,
    /// The external party's number as signalled (caller for inbound, dialled number for
    /// outbound), not normalized; empty when withheld or unknown.
    pub number: String,
    /// The caller's name, if any (inbound only).
    pub name: Option<String>,
    /// The caller withheld their number (anonymous, restricted, empty).
    pub withheld: bool,
    /// The company number dialled (inbound only).
    pub did: Option<String>,
    /// The queue the caller entered (the last one, if several).
    pub queue: Option<String>,
    /// The caller channel's first event.
    pub started_at: EventTime,
    /// The caller channel's hangup.
    pub ended_at: EventTime,
    /// Seconds from `started_at` to `ended_at` (inbound: how long the caller waited).
    pub wait_seconds: f64,
    /// A human answered (inbound: agent/extension bridged; outbound: the client answered).
    pub answered: bool,
    /// The company-side person: who answered (inbound) or who dialled (outbound).
    pub agent: Option<String>,
    /// Seconds of conversation after the answer.
    pub talk_seconds: f64,
    /// Every agent rung, in ring order.
    pub attempts: Vec<AgentAttempt>,
    /// External numbers dialled for the call (follow-me, call forward), in ring order.
    #[serde(default)]
    pub forwards: Vec<Forward>,
    /// Set for inbound calls nobody answered: the missed call.
    pub missed: Option<MissDetails>,
    /// The call was finished without seeing its end (lost events, reconnect, PBX restart).
    pub gap: bool,
    /// With `gap`: the window in which we were blind and the unseen end (or answer) happened.
    #[serde(default)]
    pub gap_window: Option<GapWindow>,
}

/// When the daemon was blind to a call: from the last event it saw before losing sight (link
/// lost, daemon stopped, PBX restart) to the moment it saw again (`CoreShowChannels`). What
/// happened to the call inside the window happened at an unknown moment within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapWindow {
    /// The last moment we know the call's state (PBX clock).
    pub started_at: EventTime,
    /// When we could see again (PBX clock); never before `started_at`.
    pub ended_at: EventTime,
}

impl GapWindow {
    /// The window `[started_at, ended_at]`, widened so it never runs backwards.
    pub fn new(started_at: EventTime, ended_at: EventTime) -> GapWindow {
        GapWindow {
            started_at,
            ended_at: ended_at.max(started_at),
        }
    }
}
