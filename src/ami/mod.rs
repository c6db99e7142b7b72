//! The AMI protocol layer: framing, parsing, typed events, actions, the client, and a stand-in
//! PBX (the server side) for the demo, the benchmark and the tests.
//!
//! Nothing here knows about calls or SQLite; the layer turns bytes into [`Message`]s and
//! [`Event`]s and keeps one TCP session alive.

pub mod action;
pub mod client;
pub mod codec;
pub mod config;
pub mod event;
pub mod message;
pub mod parser;
pub mod standin;

pub use action::{Action, ActionError};
pub use client::{AuthMethod, ClientConfig, ClientEvent, ClientHandle};
pub use codec::{AmiCodec, AmiError, Frame};
pub use event::Event;
pub use message::Message;
pub use parser::{ParseError, parse_message, unescape};
