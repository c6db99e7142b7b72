//! Exec sink: runs the configured argv (never through a shell) with the `MC_*` variables of
//! [`super::payload::exec_env`] added to the daemon's environment (inherited `MC_*` removed).
//! Exit 0 = delivered; anything else, or running past the time limit, = retry. On timeout the
//! whole process group is killed, so a script's children do not linger.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::config::ExecConfig;
use super::outbox::Attempt;

/// How much of the command's stderr goes into the error text.
const STDERR_KEEP: usize = 500;

/// One configured command.
#[derive(Debug, Clone)]
pub struct Exec {
    argv: Vec<String>,
    timeout: Duration,
    /// For logs: the program.
    pub shown: String,
}

impl Exec {
    /// From `[[notify.exec]]`.
    pub fn new(cfg: &ExecConfig) -> Exec {
        Exec {
            argv: cfg.command.clone(),
            timeout: Duration::from_secs_f64(cfg.timeout_secs),
            shown: cfg.command.first().cloned().unwrap_or_default(),
        }
    }

    /// Runs the command once with `env`.
    pub async fn run(&self, env: &[(&'static str, String)]) -> Attempt {
        let Some((program, args)) = self.argv.split_first() else {
            return Attempt::Refused {
                reason: "empty command".into(),
            };
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("MC_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Attempt::Retry {
                    reason: format!("cannot run {}: {e}", self.shown),
                    retry_after: None,
                };
            }
        };
        let mut stderr = child.stderr.take();
        let read_err = async move {
            let mut buf = Vec::new();
            if let Some(s) = stderr.as_mut() {
                let _ = s.take(64 * 1024).read_to_end(&mut buf).await;
            }
            buf
        };
        let waited = tokio::time::timeout(self.timeout, async {
            let (status, err) = tokio::join!(child.wait(), read_err);
            (status, err)
        })
        .await;
        match waited {
            Ok((Ok(status), err)) if status.success() => {
                let _ = err;
                Attempt::Delivered
            }
            Ok((Ok(status), err)) => {
                let text = String::from_utf8_lossy(&err);
                let text = text.trim();
                let cut: String = text.chars().take(STDERR_KEEP).collect();
                Attempt::Retry {
                    reason: format!(
                        "{} exited with {status}{}{cut}",
                        self.shown,
                        if cut.is_empty() { "" } else { ": " }
                    ),
                    retry_after: None,
                }
            }
            Ok((Err(e), _)) => Attempt::Retry {
                reason: format!("waiting for {}: {e}", self.shown),
                retry_after: None,
            },
            Err(_) => {
                if let Some(pid) = child.id() {
                    let pgid = nix::unistd::Pid::from_raw(pid as i32);
                    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                }
                let _ = child.kill().await;
                Attempt::Retry {
                    reason: format!(
                        "{} ran longer than {} s and was killed",
                        self.shown,
                        self.timeout.as_secs_f64()
                    ),
                    retry_after: None,
                }
            }
        }
    }
}
