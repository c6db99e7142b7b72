//! `missedcalld run` as a child process, its log (stderr) going to a file the caller opened.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Starts the compiled daemon on `config`. `rust_log` sets `RUST_LOG` (`None`: unset, so the
/// config's `[log] level` decides); the environment systemd would set is removed so the log
/// format does not depend on where the tests run.
pub fn spawn_run(config: &Path, log: File, rust_log: Option<&str>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_missedcalld"));
    cmd.args(["run", "--config"]).arg(config);
    match rust_log {
        Some(level) => cmd.env("RUST_LOG", level),
        None => cmd.env_remove("RUST_LOG"),
    };
    cmd.env_remove("JOURNAL_STREAM")
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start missedcalld run")
}

/// Opens `path` for appending (a restarted daemon adds to the same log).
pub fn append_log(path: &Path) -> File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("log file")
}
