//! Helpers shared by the integration tests: a scripted AMI server (`ami_server`), the binary
//! run to completion (`cli`) or as a daemon (`daemon`), chunked decoding (`codec`), the expect.json comparison
//! (`expect`), and hand-built finished calls with a temp-file store (`store`).
//! Each test crate uses only part of it.
#![allow(dead_code)]

pub mod ami_server;
pub mod cli;
pub mod codec;
pub mod daemon;
pub mod expect;
pub mod store;
