//! `replay` end to end (prints numbers, asserts nothing): the compiled `missedcalld replay`
//! of the 1,000,800-event stream into a new SQLite file (on tmpfs when `/dev/shm` exists, so
//! the disk is not what is measured), two threads and `--single-thread`, best of three runs
//! each; and in the same run a `memchr` scan of the same bytes for `\r\n\r\n`, the speed the
//! hardware allows, with the ratio of each to it.
//!
//! Run: `cargo bench --bench replay` (the stream is generated once under `target/`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};

const COPIES: usize = 139;
const RUNS: usize = 3;

fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let stream = common::amplified(root, COPIES, "mix-1m.ami")?;
    let data = std::fs::read(&stream)?;
    let events = data
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"Event:"))
        .count();
    println!(
        "stream: {} ({:.1} MB, {events} events)",
        stream.display(),
        data.len() as f64 / 1e6
    );
    let finder = memchr::memmem::Finder::new(b"\r\n\r\n");
    let scan = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(finder.find_iter(&data).count());
            t.elapsed()
        })
        .min()
        .unwrap_or_default();
    drop(data);
    let scan_rate = events as f64 / scan.as_secs_f64();
    println!(
        "memchr scan for \\r\\n\\r\\n:  {:.3} s = {:.1} M messages/s (reference)",
        scan.as_secs_f64(),
        scan_rate / 1e6
    );
    let dir = scratch_dir()?;
    for (label, extra) in [
        ("two threads", None),
        ("--single-thread", Some("--single-thread")),
    ] {
        let mut best: Option<(Duration, Duration)> = None;
        for i in 0..RUNS {
            let db = dir.path().join(format!("replay-{i}.sqlite"));
            let run = replay(&stream, &db, extra)?;
            if best.is_none_or(|b| run.0 < b.0) {
                best = Some(run);
            }
        }
        let (wall, cpu) = best.unwrap_or_default();
        let rate = events as f64 / wall.as_secs_f64();
        println!(
            "replay, {label:<16} {:.3} s wall, {:.3} CPU-s = {:.2} M events/s ({:.0} ns of CPU per event), ratio to the scan {:.3}",
            wall.as_secs_f64(),
            cpu.as_secs_f64(),
            rate / 1e6,
            cpu.as_secs_f64() * 1e9 / events as f64,
            rate / scan_rate
        );
    }
    Ok(())
}

/// A directory for the databases: on tmpfs when there is one.
fn scratch_dir() -> anyhow::Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    Ok(if shm.is_dir() {
        tempfile::tempdir_in(shm)?
    } else {
        tempfile::tempdir()?
    })
}

/// Wall and CPU (user + system) time of one `missedcalld replay` into `db`.
fn replay(
    stream: &PathBuf,
    db: &Path,
    extra: Option<&str>,
) -> anyhow::Result<(Duration, Duration)> {
    let before = children_cpu()?;
    let t = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_missedcalld"))
        .arg("replay")
        .args(extra)
        .arg("--db")
        .arg(db)
        .arg(stream)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    let wall = t.elapsed();
    anyhow::ensure!(status.success(), "missedcalld replay failed: {status}");
    Ok((wall, children_cpu()? - before))
}

/// User + system time of the waited-for children so far.
fn children_cpu() -> anyhow::Result<Duration> {
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    Ok(tv(usage.user_time()) + tv(usage.system_time()))
}
