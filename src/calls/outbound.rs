//! An outbound call: an extension dialling an external number. Only the facts a callback
//! needs: who dialled, the number, whether and when the client answered.

use super::channel::ChanId;
use super::outcome::{Direction, FinishedCall};
use crate::time::EventTime;

/// The outbound call as seen from the extension's channel.
#[derive(Debug)]
pub struct Outbound {
    /// The extension's channel.
    pub channel: ChanId,
    first_at: EventTime,
    number: String,
    agent: Option<Box<str>>,
    /// The extension's channel has dialled: the call can no longer turn out to be inbound.
    pub dialled: bool,
    answered_at: Option<EventTime>,
}

impl Outbound {
    /// `agent` on `channel` (first seen at `first_at`) calls `number`.
    pub fn new(channel: ChanId, first_at: EventTime, number: String, agent: Box<str>) -> Outbound {
        Outbound {
            channel,
            first_at,
            number,
            agent: Some(agent),
            dialled: false,
            answered_at: None,
        }
    }

    /// The client answered (the first answer counts).
    pub fn answered(&mut self, at: EventTime) {
        self.answered_at.get_or_insert(at);
    }

    /// The finished call, ended at `at`; `gap` when the end was not seen.
    pub fn into_finished(self, linkedid: &str, at: EventTime, gap: bool) -> FinishedCall {
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
            forwards: Vec::new(),
            missed: None,
            gap,
            gap_window: None,
        }
    }
}
