//! Helpers shared by integration tests.
#![allow(dead_code)]

pub mod ami_server;
pub mod codec;
pub mod expect;
