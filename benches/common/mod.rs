//! Helpers shared by the benchmarks.

// Each benchmark is its own crate and uses only some of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use missedcalld::ami::standin::{self, OnWritten, Pacing, ServedEvent, StandinPbx};

/// The capture every load benchmark amplifies.
pub const CAPTURE: &str = "ami-fixtures/lab1/13-concurrent-mix.ami";

/// Builds (once) `target/bench-data/NAME`: [`CAPTURE`] repeated `copies` times with shifted
/// times and ids by the shared amplify tool (`../shared/tools` beside the checkout, or one
/// level further up).
pub fn amplified(root: &Path, copies: usize, name: &str) -> anyhow::Result<PathBuf> {
    let out = root.join("target/bench-data").join(name);
    if !out.exists() {
        std::fs::create_dir_all(out.parent().unwrap_or(root))?;
        let tool = ["../shared", "../../shared"]
            .iter()
            .map(|dir| root.join(dir).join("tools/amplify-capture.py"))
            .find(|p| p.exists())
            .ok_or_else(|| {
                anyhow::anyhow!("amplify-capture.py not found next to {}", root.display())
            })?;
        let status = Command::new("python3")
            .arg(tool)
            .arg(root.join(CAPTURE))
            .arg(copies.to_string())
            .arg(&out)
            .status()?;
        anyhow::ensure!(status.success(), "amplify-capture.py failed");
    }
    Ok(out)
}

/// Serves `events` at `pacing` from the stand-in PBX on `listener` (non-blocking, already
/// bound), on a thread of its own so the daemon under test shares no runtime with it.
pub fn serve_on_thread(
    listener: std::net::TcpListener,
    events: Arc<Vec<ServedEvent>>,
    pacing: Pacing,
    on_written: Option<OnWritten>,
) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the stand-in PBX's runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            standin::serve(listener, StandinPbx::open(), events, pacing, on_written).await;
        });
    });
}
