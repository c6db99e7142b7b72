//! Unix signals as daemon controls: SIGHUP reloads the configuration, SIGTERM and SIGINT stop
//! the daemon cleanly (the store flushes, exit 0).
//!
//! signal-hook-tokio turns the signals into a stream; nothing runs inside the signal handler
//! itself, so a signal arriving at any point is safe.

use futures::StreamExt;
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_tokio::{Handle, Signals};

/// What the daemon is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Re-read the configuration and apply what changed (SIGHUP).
    Reload,
    /// Finish what was received, flush the database and exit 0 (SIGTERM, SIGINT).
    Shutdown,
}

/// The control a signal number stands for.
pub fn control_for(signal: i32) -> Option<Control> {
    match signal {
        SIGHUP => Some(Control::Reload),
        SIGTERM | SIGINT => Some(Control::Shutdown),
        _ => None,
    }
}

/// SIGHUP, SIGTERM and SIGINT, caught for as long as this value lives.
pub struct SignalListener {
    signals: Signals,
    handle: Handle,
}

impl std::fmt::Debug for SignalListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignalListener")
    }
}

impl SignalListener {
    /// Installs the handlers (replacing the default "terminate" action). Needs a tokio runtime.
    pub fn install() -> std::io::Result<SignalListener> {
        let signals = Signals::new([SIGHUP, SIGTERM, SIGINT])?;
        let handle = signals.handle();
        Ok(SignalListener { signals, handle })
    }

    /// The next control; `None` once [`SignalListener::close`] was called.
    pub async fn recv(&mut self) -> Option<Control> {
        while let Some(sig) = self.signals.next().await {
            if let Some(c) = control_for(sig) {
                return Some(c);
            }
        }
        None
    }

    /// Stops listening (the stream ends).
    pub fn close(&self) {
        self.handle.close();
    }
}

impl Drop for SignalListener {
    fn drop(&mut self) {
        self.handle.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_numbers_map_to_controls() {
        assert_eq!(control_for(SIGHUP), Some(Control::Reload));
        assert_eq!(control_for(SIGTERM), Some(Control::Shutdown));
        assert_eq!(control_for(SIGINT), Some(Control::Shutdown));
        assert_eq!(control_for(signal_hook::consts::signal::SIGUSR1), None);
    }
}
