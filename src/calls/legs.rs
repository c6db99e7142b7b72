//! The legs rung for one inbound caller, followed from the caller to the devices.
//!
//! A leg starts where the caller's channel rings something (`AgentCalled`, or a `DialBegin`
//! from the caller): an agent (queue member, extension, ring-group member) or a forward (an
//! external number through a trunk). A Local channel in a leg is followed through its `;1`/`;2`
//! pair and the dials its `;2` half makes, down to the device channels (PJSIP, SIP, IAX2,
//! DAHDI). "An agent is ringing" means: an agent leg has not ended and, if its chain already
//! reached devices, one of those devices is still being rung. So a follow-me whose phone
//! rang out and that now rings a mobile is not an agent ringing, and every ring round or retry
//! of a queue is just more legs.

use super::channel::ChanId;
use super::outcome::{AgentAttempt, AttemptOutcome, Forward, ForwardOutcome, LossReason};
use crate::time::EventTime;

/// How a leg ended (the first `DialEnd` wins: queues send a second `CANCEL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegEnd {
    /// `ANSWER`.
    Answer,
    /// `NOANSWER`.
    NoAnswer,
    /// `BUSY`.
    Busy,
    /// `CONGESTION`.
    Congestion,
    /// `CHANUNAVAIL`.
    Unavailable,
    /// `CANCEL`.
    Cancel,
    /// Anything else.
    Other,
}

impl LegEnd {
    /// From a `DialStatus` value.
    pub fn from_status(status: &[u8]) -> LegEnd {
        match status {
            b"ANSWER" => LegEnd::Answer,
            b"NOANSWER" => LegEnd::NoAnswer,
            b"BUSY" => LegEnd::Busy,
            b"CONGESTION" => LegEnd::Congestion,
            b"CHANUNAVAIL" => LegEnd::Unavailable,
            b"CANCEL" => LegEnd::Cancel,
            _ => LegEnd::Other,
        }
    }

    /// The phone could not ring at all (busy, unavailable, congested).
    fn is_busy(self) -> bool {
        matches!(
            self,
            LegEnd::Busy | LegEnd::Congestion | LegEnd::Unavailable
        )
    }
}

/// The channel a leg reached, as the tracker keys it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dest {
    /// The channel.
    pub id: ChanId,
    /// Its Local pair id (0 for other channels).
    pub pair: ChanId,
}

/// Who a leg rings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An agent: the extension, and the queue member's display name if it has one.
    Agent {
        /// The extension.
        agent: Box<str>,
        /// The member's name (`MemberName`), when it is not just the interface or extension.
        name: Option<Box<str>>,
    },
    /// An external number through a trunk.
    Forward(Box<str>),
    /// A device (phone) channel deeper in a leg's chain, or a Local channel to follow.
    Device,
}

#[derive(Debug)]
struct Leg {
    target: Target,
    dest: Dest,
    start: EventTime,
    end: Option<(EventTime, LegEnd)>,
    /// Device channels reached through this leg, and whether each has ended.
    devices: Vec<(ChanId, bool)>,
}

impl Leg {
    /// The leg has not ended and a device of its chain may still ring.
    fn rings(&self) -> bool {
        self.end.is_none() && (self.devices.is_empty() || self.devices.iter().any(|d| !d.1))
    }
}

/// Every leg of one inbound caller.
#[derive(Debug, Default)]
pub struct Legs {
    legs: Vec<Leg>,
    /// Channels and Local pair ids deeper inside a leg's chain (dialled by the leg's Local
    /// half), with the leg's index; a leg's own channel is found on the leg itself.
    chain: Vec<(ChanId, usize)>,
}

impl Legs {
    /// The caller rings `target` over `dest` (one leg per dialled channel: `AgentCalled` and
    /// `DialBegin` describe the same leg). Returns false when the leg was already known.
    pub fn begin(&mut self, target: Target, dest: Dest, at: EventTime) -> bool {
        if dest.id != 0
            && let Some(leg) = self.legs.iter_mut().find(|l| l.dest.id == dest.id)
        {
            if let (
                Target::Agent { name: have, .. },
                Target::Agent {
                    name: Some(name), ..
                },
            ) = (&mut leg.target, target)
            {
                have.get_or_insert(name);
            }
            return false;
        }
        self.legs.push(Leg {
            target,
            dest,
            start: at,
            end: None,
            devices: Vec::new(),
        });
        true
    }

    fn link(&mut self, dest: Dest, idx: usize) {
        // A Local channel is found by its pair id (both halves share it).
        let id = if dest.pair != 0 { dest.pair } else { dest.id };
        if id != 0 && !self.chain.iter().any(|&(c, _)| c == id) {
            self.chain.push((id, idx));
        }
    }

    fn owner(&self, from: Dest) -> Option<usize> {
        let hit = |c: ChanId| c != 0 && (c == from.id || c == from.pair);
        self.legs
            .iter()
            .position(|l| hit(l.dest.id) || hit(l.dest.pair))
            .or_else(|| self.chain.iter().find(|&&(c, _)| hit(c)).map(|&(_, i)| i))
    }

    /// A channel of a leg's chain (`from`) dials `dest`; true when `from` belongs to a leg.
    /// A forward found there becomes its own leg.
    pub fn begin_inner(&mut self, from: Dest, target: Target, dest: Dest, at: EventTime) -> bool {
        let Some(idx) = self.owner(from) else {
            return false;
        };
        match target {
            Target::Forward(_) => {
                self.begin(target, dest, at);
            }
            // A Local channel is followed further; anything else is a device that rings.
            _ if is_local_dest(dest) => self.link(dest, idx),
            _ => self.legs[idx].devices.push((dest.id, false)),
        }
        true
    }

    /// The leg over `dest` (or a device inside a chain) ended.
    pub fn end(&mut self, dest: ChanId, end: LegEnd, at: EventTime) {
        if let Some(leg) = self
            .legs
            .iter_mut()
            .find(|l| l.dest.id == dest && l.end.is_none())
        {
            leg.end = Some((at, end));
            return;
        }
        for leg in &mut self.legs {
            for d in leg.devices.iter_mut().filter(|d| d.0 == dest) {
                d.1 = true;
            }
        }
    }

    /// Asterisk 1.8/11 ends a whole `Dial` at once, naming no leg.
    pub fn end_all(&mut self, end: LegEnd, at: EventTime) {
        let end = if end == LegEnd::Answer {
            LegEnd::Other
        } else {
            end
        };
        for leg in self.legs.iter_mut().filter(|l| l.end.is_none()) {
            leg.end = Some((at, end));
        }
    }

    /// A device channel of some chain hung up (it rings no more).
    pub fn device_gone(&mut self, id: ChanId) {
        for leg in &mut self.legs {
            for d in leg.devices.iter_mut().filter(|d| d.0 == id) {
                d.1 = true;
            }
        }
    }

    /// The agent legs, in ring order: (leg channel, agent, still open).
    pub fn agent_legs(&self) -> Vec<(ChanId, Box<str>, bool)> {
        self.legs
            .iter()
            .filter_map(|l| match &l.target {
                Target::Agent { agent, .. } => Some((l.dest.id, agent.clone(), l.end.is_none())),
                _ => None,
            })
            .collect()
    }

    /// Legs still open whose channel is gone ended at `at`, and gone devices ring no more
    /// (the channels hung up while we were blind).
    pub fn end_gone(&mut self, live: impl Fn(ChanId) -> bool, at: EventTime) {
        for leg in &mut self.legs {
            if leg.end.is_none() && leg.dest.id != 0 && !live(leg.dest.id) {
                leg.end = Some((at, LegEnd::Other));
            }
            for d in leg.devices.iter_mut().filter(|d| !live(d.0)) {
                d.1 = true;
            }
        }
    }

    /// True when at least one agent is being rung now.
    pub fn agent_ringing(&self) -> bool {
        self.legs
            .iter()
            .any(|l| matches!(l.target, Target::Agent { .. }) && l.rings())
    }

    /// True when no leg of the caller is open (a new ring round starts with the next one).
    pub fn all_ended(&self) -> bool {
        self.legs.iter().all(|l| l.end.is_some())
    }

    /// The agent and name of the leg over `dest`.
    pub fn agent_of(&self, dest: ChanId) -> Option<(Box<str>, Option<Box<str>>)> {
        self.legs
            .iter()
            .find(|l| l.dest.id == dest)
            .and_then(|l| match &l.target {
                Target::Agent { agent, name } => Some((agent.clone(), name.clone())),
                Target::Forward(number) => Some((number.clone(), None)),
                Target::Device => None,
            })
    }

    /// Marks the leg over `dest` answered (if still open); false when it was ended otherwise.
    pub fn answered(&mut self, dest: ChanId, at: EventTime) {
        if let Some(leg) = self
            .legs
            .iter_mut()
            .find(|l| l.dest.id == dest && l.end.is_none())
        {
            leg.end = Some((at, LegEnd::Answer));
        }
    }

    /// The leg over `dest` "answered" with voicemail: it was not a human.
    pub fn unanswer(&mut self, dest: ChanId) {
        for leg in self.legs.iter_mut().filter(|l| l.dest.id == dest) {
            if let Some((t, LegEnd::Answer)) = leg.end {
                leg.end = Some((t, LegEnd::NoAnswer));
            }
        }
    }

    /// How a dial that returned unanswered ended, from its agent legs: `busy` when every agent
    /// phone was busy or unavailable, else `timeout` (a forward tried after the phones rang
    /// out does not change that). Without agent legs the forwards decide.
    pub fn dial_result(&self) -> LossReason {
        let agents: Vec<LegEnd> = self
            .legs
            .iter()
            .filter(|l| matches!(l.target, Target::Agent { .. }))
            .filter_map(|l| l.end.map(|e| e.1))
            .collect();
        let ends = if agents.is_empty() {
            self.legs
                .iter()
                .filter_map(|l| l.end.map(|e| e.1))
                .collect()
        } else {
            agents
        };
        if !ends.is_empty() && ends.iter().all(|e| e.is_busy()) {
            LossReason::Busy
        } else {
            LossReason::Timeout
        }
    }

    /// The agent attempts and forwards for the finished call. `caller_gone_at` is when the
    /// caller's hang-up was requested: legs cancelled from then on were cut by the caller.
    pub fn into_records(
        self,
        caller_gone_at: EventTime,
        end_at: EventTime,
        gap: bool,
    ) -> (Vec<AgentAttempt>, Vec<Forward>) {
        let mut agents = Vec::new();
        let mut forwards = Vec::new();
        for leg in self.legs {
            let (ended, end) = match leg.end {
                Some((t, e)) => (t, Some(e)),
                None => (end_at, None),
            };
            let ring_seconds = ended.seconds_since(leg.start);
            let cut_by_caller = match end {
                Some(LegEnd::Cancel) => ended >= caller_gone_at,
                None => !gap,
                _ => false,
            };
            match leg.target {
                Target::Agent { agent, name } => agents.push(AgentAttempt {
                    agent: agent.into(),
                    name: name.map(String::from),
                    ring_start: leg.start,
                    ring_seconds,
                    outcome: match end {
                        Some(LegEnd::Answer) => AttemptOutcome::Answered,
                        Some(LegEnd::NoAnswer) => AttemptOutcome::NoAnswer,
                        Some(e) if e.is_busy() => AttemptOutcome::Busy,
                        _ if cut_by_caller => AttemptOutcome::CallerHungUp,
                        _ => AttemptOutcome::Other,
                    },
                }),
                Target::Forward(number) => forwards.push(Forward {
                    number: number.into(),
                    ring_start: leg.start,
                    ring_seconds,
                    outcome: match end {
                        Some(LegEnd::Answer) => ForwardOutcome::Answered,
                        Some(LegEnd::NoAnswer) => ForwardOutcome::NoAnswer,
                        Some(LegEnd::Busy) => ForwardOutcome::Busy,
                        Some(LegEnd::Congestion) => ForwardOutcome::Congestion,
                        Some(LegEnd::Unavailable) => ForwardOutcome::Unavailable,
                        _ if cut_by_caller => ForwardOutcome::CallerHungUp,
                        _ => ForwardOutcome::Other,
                    },
                }),
                Target::Device => {}
            }
        }
        (agents, forwards)
    }
}

fn is_local_dest(dest: Dest) -> bool {
    dest.pair != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> EventTime {
        EventTime(1_700_000_000_000_000 + s * 1_000_000)
    }

    fn agent(a: &str) -> Target {
        Target::Agent {
            agent: a.into(),
            name: None,
        }
    }

    const LOCAL1: Dest = Dest { id: 11, pair: 10 };
    const LOCAL2: Dest = Dest { id: 12, pair: 10 };
    const PHONE: Dest = Dest { id: 13, pair: 0 };
    const TRUNK: Dest = Dest { id: 14, pair: 0 };

    #[test]
    fn a_local_chain_rings_until_its_device_ends() {
        let mut legs = Legs::default();
        legs.begin(agent("101"), LOCAL1, t(0));
        assert!(
            legs.agent_ringing(),
            "a Local leg rings before its device is dialled"
        );
        assert!(legs.begin_inner(LOCAL2, Target::Device, PHONE, t(0)));
        assert!(legs.agent_ringing());
        legs.end(PHONE.id, LegEnd::NoAnswer, t(15));
        assert!(!legs.agent_ringing(), "the phone rang out");
        // Follow-me: the same Local half now rings a mobile through the trunk.
        assert!(legs.begin_inner(LOCAL2, Target::Forward("79161234567".into()), TRUNK, t(15)));
        assert!(
            !legs.agent_ringing(),
            "a ringing mobile is not an agent ringing"
        );
        legs.end(TRUNK.id, LegEnd::Congestion, t(16));
        legs.end(LOCAL1.id, LegEnd::NoAnswer, t(20));
        assert_eq!(legs.dial_result(), LossReason::Timeout);
        let (agents, forwards) = legs.into_records(t(30), t(30), false);
        assert_eq!(agents.len(), 1);
        assert_eq!(agents[0].ring_seconds, 20.0);
        assert_eq!(forwards.len(), 1);
        assert_eq!(forwards[0].number, "79161234567");
        assert_eq!(forwards[0].outcome, ForwardOutcome::Congestion);
    }

    #[test]
    fn ring_rounds_are_new_legs_and_double_dial_ends_keep_the_first() {
        let mut legs = Legs::default();
        legs.begin(agent("101"), Dest { id: 1, pair: 0 }, t(0));
        legs.end(1, LegEnd::NoAnswer, t(15));
        legs.end(1, LegEnd::Cancel, t(15));
        assert!(legs.all_ended());
        assert!(!legs.agent_ringing());
        legs.begin(agent("101"), Dest { id: 2, pair: 0 }, t(20));
        assert!(legs.agent_ringing(), "second round");
        let (agents, _) = legs.into_records(t(23), t(23), false);
        assert_eq!(agents[0].outcome, AttemptOutcome::NoAnswer);
        assert_eq!(agents[1].outcome, AttemptOutcome::CallerHungUp);
        assert_eq!(agents[1].ring_seconds, 3.0);
    }

    #[test]
    fn every_phone_busy_is_busy() {
        let mut legs = Legs::default();
        legs.begin(agent("101"), Dest { id: 1, pair: 0 }, t(0));
        legs.begin(agent("102"), Dest { id: 2, pair: 0 }, t(0));
        legs.end(1, LegEnd::Busy, t(0));
        legs.end(2, LegEnd::Unavailable, t(0));
        assert_eq!(legs.dial_result(), LossReason::Busy);
    }
}
