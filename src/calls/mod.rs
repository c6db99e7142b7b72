//! Call tracking: one pure state machine per call, fed by AMI events.

pub mod outcome;
