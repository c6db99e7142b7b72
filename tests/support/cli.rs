//! The compiled `missedcalld` binary, run to completion.

use std::process::Command;

/// Runs `missedcalld ARGS` with `RUST_LOG=warn`; panics with its stderr unless it succeeds.
/// Returns stdout.
pub fn run_ok(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_missedcalld"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "missedcalld {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
