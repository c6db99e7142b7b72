//! An inbound call as seen from its caller's channel: where the caller is (the [`Stage`],
//! which carries what it knows), the legs rung for it, and the facts that outlive a stage
//! (DID, queue, voicemail, the after-hours path). The loss reason is one `match` on the stage.
//!
//! The stage is frozen at the caller's `HangupRequest`: dialplan the caller runs after it (the
//! `h` extension) and the `CANCEL`s Asterisk sends to the legs do not change where it was lost.

use super::apps::{App, Place, TimeBranch, Var};
use super::channel::{ChanId, is_withheld};
use super::legs::{Dest, LegEnd, Legs, Target};
use super::outcome::{Direction, FinishedCall, LossReason, MissDetails};
use crate::time::EventTime;

/// What routed the caller last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// A `Queue`.
    Queue,
    /// A `Dial` (extension, ring group, follow-me).
    Dial,
}

/// Where the caller is.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// In dialplan before any queue or dial: greetings, menus, announcements.
    Ivr,
    /// Waiting in a queue; `round` counts ring rounds (every member rung again after a retry).
    Queue {
        /// Queue name.
        name: Box<str>,
        /// When the caller joined.
        joined_at: EventTime,
        /// Ring rounds started so far.
        round: u32,
    },
    /// Inside `Dial`: legs ring.
    Ringing {
        /// When the dial started.
        since: EventTime,
    },
    /// Back in dialplan after a queue or dial ended unanswered; `give_up` when the PBX ended it.
    Returned {
        /// What the caller came back from.
        from: Routing,
        /// The PBX's reason (queue timeout, no members, every phone busy, ring timeout).
        give_up: Option<LossReason>,
    },
    /// Connected to a human (sticky).
    Answered {
        /// The agent (extension) or forwarded number that answered.
        agent: Box<str>,
        /// When.
        at: EventTime,
        /// The leg that answered (and its Local pair): a voicemail there is no human.
        via: Dest,
    },
    /// The caller's hang-up was requested here (sticky).
    Lost {
        /// Where it was lost.
        reason: LossReason,
        /// When the hang-up was requested.
        at: EventTime,
    },
}

/// The inbound call.
#[derive(Debug)]
pub struct Inbound {
    /// The caller's channel.
    pub caller: ChanId,
    started_at: EventTime,
    number: String,
    name: Option<String>,
    did: String,
    /// The last queue entered.
    queue: Option<String>,
    stage: Stage,
    /// The after-hours path was taken (time condition false, closed context, variable).
    closed: bool,
    voicemail: bool,
    legs: Legs,
    /// A time branch whose outcome the caller's next step shows (boxed: rare and large).
    branch: Option<Box<TimeBranch>>,
}

impl Inbound {
    /// A caller first seen at `started_at`, entering with extension `did` (may be empty).
    pub fn new(caller: ChanId, started_at: EventTime, did: String) -> Inbound {
        Inbound {
            caller,
            started_at,
            number: String::new(),
            name: None,
            did,
            queue: None,
            stage: Stage::Ivr,
            closed: false,
            voicemail: false,
            legs: Legs::default(),
            branch: None,
        }
    }

    /// The stage now.
    pub fn stage(&self) -> &Stage {
        &self.stage
    }

    /// The caller's number or name changed (`NewCallerid`, any event's `CallerIDNum`).
    pub fn set_caller_id(&mut self, number: &str, name: Option<&str>) {
        if !number.is_empty()
            && number != self.number
            && (!is_withheld(number) || self.number.is_empty())
        {
            self.number = number.to_string();
        }
        if let Some(name) = name
            && self.name.as_deref() != Some(name)
        {
            self.name = Some(name.to_string());
        }
    }

    fn settled(&self) -> bool {
        matches!(self.stage, Stage::Answered { .. } | Stage::Lost { .. })
    }

    /// One dialplan step of the caller, in a context that is (`closed_context`) or is not on
    /// the after-hours path.
    pub fn on_step(&mut self, place: Place<'_>, app: App<'_>, closed_context: bool, at: EventTime) {
        if self.settled() {
            return;
        }
        if let Some(branch) = self.branch.take()
            && let Some(was_false) = branch.was_false(&place)
        {
            self.closed = was_false;
        }
        if closed_context {
            self.closed = true;
        }
        match app {
            App::Queue(name) => self.enter_queue(name, at),
            App::Dial => self.enter_dial(at),
            App::Voicemail => {
                self.voicemail = true;
                self.leave_routing(None);
            }
            App::TimeBranch(branch) => self.branch = Some(Box::new(branch.ran_at(place))),
            App::Set(var) => self.on_variable(var),
            App::OutgoingLine => {}
            // Any other step after a queue or a dial: it returned.
            App::Menu | App::Other => self.leave_routing(None),
        }
    }

    /// The queue or dial the caller was in returned; `give_up` is the PBX's reason, if any.
    fn leave_routing(&mut self, give_up: Option<LossReason>) {
        let from = match self.stage {
            Stage::Queue { .. } => Routing::Queue,
            Stage::Ringing { .. } => Routing::Dial,
            _ => return,
        };
        let give_up = give_up.or_else(|| {
            // A dial whose every leg has ended: how they ended says why.
            (from == Routing::Dial && self.legs.all_ended()).then(|| self.legs.dial_result())
        });
        self.stage = Stage::Returned { from, give_up };
    }

    /// The caller entered queue `name` (the `Queue` step, or `QueueCallerJoin`).
    pub fn enter_queue(&mut self, name: &str, at: EventTime) {
        if self.settled() {
            return;
        }
        if self.queue.as_deref() != Some(name) {
            self.queue = Some(name.to_string());
        }
        if let Stage::Queue { name: current, .. } = &self.stage
            && &**current == name
        {
            return;
        }
        self.stage = Stage::Queue {
            name: name.into(),
            joined_at: at,
            round: 0,
        };
    }

    /// The caller runs `Dial`, or dials a leg itself.
    pub fn enter_dial(&mut self, at: EventTime) {
        if self.settled() || matches!(self.stage, Stage::Ringing { .. }) {
            return;
        }
        self.stage = Stage::Ringing { since: at };
    }

    /// A channel variable of the caller.
    pub fn on_variable(&mut self, var: Var) {
        match var {
            Var::Closed(closed) => self.closed = closed,
            Var::Did(did) => self.did = did,
            _ if self.settled() => {}
            Var::QueueStatus(Some(reason)) => match self.stage {
                Stage::Queue { .. } | Stage::Ivr | Stage::Returned { .. } => {
                    // A queue that refused the caller emits no queue event, only this.
                    self.stage = Stage::Returned {
                        from: Routing::Queue,
                        give_up: Some(reason),
                    }
                }
                _ => {}
            },
            Var::DialFailed(true) if matches!(self.stage, Stage::Ringing { .. }) => {
                let reason = self.legs.dial_result();
                self.stage = Stage::Returned {
                    from: Routing::Dial,
                    give_up: Some(reason),
                };
            }
            _ => {}
        }
    }

    /// The caller rings `target` over `dest` (`AgentCalled`, a `DialBegin` of the caller).
    pub fn ring(&mut self, target: Target, dest: Dest, from_dial: bool, at: EventTime) {
        if self.settled() {
            return;
        }
        if from_dial && !matches!(self.stage, Stage::Queue { .. }) {
            self.enter_dial(at);
        }
        let new_round = self.legs.all_ended();
        if self.legs.begin(target, dest, at)
            && new_round
            && let Stage::Queue { round, .. } = &mut self.stage
        {
            *round += 1;
        }
    }

    /// A channel inside a leg's chain dials `dest`; false when `from` is in no chain.
    pub fn ring_inner(&mut self, from: Dest, target: Target, dest: Dest, at: EventTime) -> bool {
        self.legs.begin_inner(from, target, dest, at)
    }

    /// A leg (or a device in a chain) ended; an empty `dest` ends the whole dial (1.8/11).
    pub fn leg_ended(&mut self, dest: Option<ChanId>, end: LegEnd, at: EventTime) {
        match dest {
            Some(id) => self.legs.end(id, end, at),
            None => self.legs.end_all(end, at),
        }
    }

    /// A channel of the call hung up: a device rings no more.
    pub fn channel_gone(&mut self, id: ChanId) {
        self.legs.device_gone(id);
    }

    /// The legs rung so far (for reconciliation after a gap).
    pub fn legs(&self) -> &Legs {
        &self.legs
    }

    /// Legs and devices whose channel is gone stopped ringing at `at` (inside a gap).
    pub fn legs_gone(&mut self, live: impl Fn(ChanId) -> bool, at: EventTime) {
        self.legs.end_gone(live, at);
    }

    /// The agent (and member name) of the leg over `dest`.
    pub fn agent_of(&self, dest: ChanId) -> Option<(Box<str>, Option<Box<str>>)> {
        self.legs.agent_of(dest)
    }

    /// The caller was connected over `via` to `agent`; `voicemail_leg` when that leg (or its
    /// Local pair) runs voicemail, which is no human.
    pub fn answer(&mut self, agent: Box<str>, via: Dest, voicemail_leg: bool, at: EventTime) {
        if self.settled() {
            return;
        }
        if voicemail_leg {
            self.voicemail_answered(via.id);
            return;
        }
        self.legs.answered(via.id, at);
        self.stage = Stage::Answered { agent, at, via };
    }

    /// The leg over `via` runs voicemail: if the caller was "answered" over it, undo that.
    pub fn leg_runs_voicemail(&mut self, leg: ChanId, pair: ChanId) {
        if let Stage::Answered { via, .. } = self.stage
            && (via.id == leg || (pair != 0 && via.pair == pair))
        {
            self.voicemail_answered(via.id);
        }
    }

    fn voicemail_answered(&mut self, via: ChanId) {
        self.legs.unanswer(via);
        self.voicemail = true;
        self.stage = Stage::Returned {
            from: Routing::Dial,
            give_up: Some(LossReason::Timeout),
        };
    }

    /// The caller's hang-up was requested: it is lost where it is now.
    pub fn hangup_requested(&mut self, at: EventTime) {
        if !self.settled() {
            self.stage = Stage::Lost {
                reason: self.loss_reason(),
                at,
            };
        }
    }

    /// Where the caller of an unanswered call was lost.
    fn loss_reason(&self) -> LossReason {
        match &self.stage {
            Stage::Lost { reason, .. } => *reason,
            Stage::Ivr if self.closed => LossReason::AfterHours,
            Stage::Ivr | Stage::Answered { .. } => LossReason::Ivr,
            Stage::Queue { .. } | Stage::Ringing { .. } if self.legs.agent_ringing() => {
                LossReason::Ringing
            }
            Stage::Queue { .. } => LossReason::Queue,
            Stage::Ringing { .. } => self.legs.dial_result(),
            Stage::Returned {
                give_up: Some(reason),
                ..
            } => *reason,
            Stage::Returned {
                from: Routing::Queue,
                give_up: None,
            } => LossReason::Queue,
            Stage::Returned {
                from: Routing::Dial,
                give_up: None,
            } => self.legs.dial_result(),
        }
    }

    /// The finished call, ended at `at`; `gap` when the end was not seen.
    pub fn into_finished(self, linkedid: &str, at: EventTime, gap: bool) -> FinishedCall {
        let caller_gone_at = match self.stage {
            Stage::Lost { at: t, .. } => t,
            _ => at,
        };
        let (answered, agent, talk_seconds) = match &self.stage {
            Stage::Answered { agent, at: t, .. } => {
                (true, Some(agent.to_string()), at.seconds_since(*t))
            }
            _ => (false, None, 0.0),
        };
        let missed = (!answered).then(|| MissDetails {
            loss_reason: self.loss_reason(),
            voicemail: self.voicemail,
        });
        let (attempts, forwards) = self.legs.into_records(caller_gone_at, at, gap);
        let withheld = is_withheld(&self.number);
        FinishedCall {
            linkedid: linkedid.to_string(),
            direction: Direction::Inbound,
            number: if withheld { String::new() } else { self.number },
            name: self.name,
            withheld,
            did: Some(self.did),
            queue: self.queue,
            started_at: self.started_at,
            ended_at: at,
            wait_seconds: at.seconds_since(self.started_at),
            answered,
            agent,
            talk_seconds,
            attempts,
            forwards,
            missed,
            gap,
            gap_window: None,
        }
    }
}
