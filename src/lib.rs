//! missedcalld: turns the Asterisk Manager Interface event stream into missed calls, callback
//! tasks and reports in a local SQLite file.
//!
//! ```text
//!  TCP (run) / file (replay)
//!        │ bytes
//!  ami::codec  ── frames ──▶ ami::parser ── Message ──▶ calls::Tracker ── FinishedCall ──▶ store
//!  (socket reader task: frame, parse, queue; nothing slow)   (pure, clock = event Timestamp)   (writer thread, batched tx)
//! ```
//!
//! Invariants: `ami` never imports `calls` or `store`; `calls` and `callbacks` are sans-IO
//! (no tokio, no rusqlite); `store` is the only module that names rusqlite.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ami;
pub mod callbacks;
pub mod calls;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod logging;
pub mod output;
pub mod pipeline;
pub mod replay;
pub mod report;
pub mod secret;
pub mod signals;
pub mod spill;
pub mod store;
pub mod time;
