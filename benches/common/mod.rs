//! Helpers shared by the benchmarks.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The capture every load benchmark amplifies.
pub const CAPTURE: &str = "ami-fixtures/lab1/13-concurrent-mix.ami";

/// Builds (once) `target/bench-data/NAME`: [`CAPTURE`] repeated `copies` times with shifted
/// times and ids by the shared amplify tool (`../shared/tools` beside the checkout, or one
/// level further up). The tool writes a temporary file that is renamed when complete, so an
/// interrupted run never leaves a short stream for the next one to trust.
pub fn amplified(root: &Path, copies: usize, name: &str) -> anyhow::Result<PathBuf> {
    let out = root.join("target/bench-data").join(name);
    if !out.exists() {
        let dir = out.parent().unwrap_or(root);
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
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
            .arg(&tmp)
            .status()?;
        anyhow::ensure!(status.success(), "amplify-capture.py failed");
        std::fs::rename(&tmp, &out)?;
    }
    Ok(out)
}
