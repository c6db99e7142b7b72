//! The AMI protocol layer: framing, parsing, typed events, actions and the client.
//!
//! Nothing here knows about calls or SQLite; the layer turns bytes into [`Message`]s and
//! [`Event`]s and keeps one TCP session alive.

pub mod event;
pub mod message;

pub use event::Event;
pub use message::Message;
