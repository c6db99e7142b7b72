//! `missedcalld demo`: the real daemon against a local stand-in PBX, no Asterisk needed.
//!
//! A TCP server on 127.0.0.1 answers the banner, `Challenge`/`Login`, `Ping`,
//! `CoreShowChannels` (an empty list) and `Logoff`, then serves the events of the bundled lab
//! captures (`ami-fixtures/lab2/*.ami`, embedded in the binary) byte for byte, oldest capture
//! first, with the gaps between their `Timestamp`s compressed. [`crate::daemon`] runs against it
//! into a temporary database; once every event served was processed the daemon is stopped the
//! normal way, and the missed calls, the callback tasks and the report are printed.
//!
//! The stand-in PBX is [`crate::ami::standin`], shared with the end-to-end benchmark
//! (`benches/live_latency.rs`) and the tests.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::net::TcpListener;

use crate::ami::standin::{self, Pacing, ServedEvent, StandinPbx, capture_events};
use crate::daemon::{self, DaemonStatus};
use crate::output::{self, ReportFormat};

/// The bundled captures (real Asterisk 22 sessions; see `ami-fixtures/lab2/README.md`).
const CAPTURES: &[(&str, &[u8])] = &[
    (
        "01-answered-via-queue",
        include_bytes!("../ami-fixtures/lab2/01-answered-via-queue.ami"),
    ),
    (
        "02-queue-abandon",
        include_bytes!("../ami-fixtures/lab2/02-queue-abandon.ami"),
    ),
    (
        "03-ivr-abandon",
        include_bytes!("../ami-fixtures/lab2/03-ivr-abandon.ami"),
    ),
    (
        "05-queue-timeout-to-voicemail",
        include_bytes!("../ami-fixtures/lab2/05-queue-timeout-to-voicemail.ami"),
    ),
    (
        "07-missed-then-agent-callback-answered",
        include_bytes!("../ami-fixtures/lab2/07-missed-then-agent-callback-answered.ami"),
    ),
    (
        "10-repeat-missed-same-number",
        include_bytes!("../ami-fixtures/lab2/10-repeat-missed-same-number.ami"),
    ),
    (
        "12-answered-then-transferred",
        include_bytes!("../ami-fixtures/lab2/12-answered-then-transferred.ami"),
    ),
    (
        "13-concurrent-mix",
        include_bytes!("../ami-fixtures/lab2/13-concurrent-mix.ami"),
    ),
];

/// Event time runs this many times faster than in the recording.
pub const SPEEDUP: f64 = 50.0;
/// Longest real pause between two events, whatever the recorded gap.
pub const MAX_PAUSE: Duration = Duration::from_millis(250);
/// The whole demo gives up after this long.
pub const DEMO_TIMEOUT: Duration = Duration::from_secs(55);

/// Every bundled capture's events, captures ordered by their first timestamp.
pub fn bundled_events() -> Vec<ServedEvent> {
    let mut captures: Vec<Vec<ServedEvent>> = CAPTURES
        .iter()
        .map(|(_, raw)| capture_events(raw))
        .collect();
    captures.sort_by_key(|events| events.iter().find_map(|e| e.at).unwrap_or_default());
    captures.into_iter().flatten().collect()
}

/// `missedcalld demo`: runs the demo on its own runtime and prints the results on stdout.
pub fn run_command() -> anyhow::Result<()> {
    // Warnings only (reconnects, errors): the results are printed at the end. RUST_LOG=info
    // shows the daemon's line per missed call as it happens.
    let quiet = crate::config::LogSection {
        level: "warn".to_string(),
        ..crate::config::LogSection::default()
    };
    // A bad RUST_LOG is reported; a subscriber already installed (tests) is fine.
    if let Err(e @ crate::logging::LoggingError::BadFilter { .. }) = crate::logging::init(&quiet) {
        return Err(e.into());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let mut stdout = std::io::stdout().lock();
    runtime.block_on(run(&mut stdout))
}

/// The demo: serve, run the daemon, print missed calls, tasks and the report to `out`.
pub async fn run(out: &mut dyn Write) -> anyhow::Result<()> {
    tokio::time::timeout(DEMO_TIMEOUT, run_inner(out))
        .await
        .map_err(|_| anyhow!("the demo did not finish within {DEMO_TIMEOUT:?}"))?
}

async fn run_inner(out: &mut dyn Write) -> anyhow::Result<()> {
    let events = Arc::new(bundled_events());
    let total = events.len() as u64;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the demo AMI server")?;
    let port = listener.local_addr()?.port();
    let pacing = Pacing::Recorded {
        speedup: SPEEDUP,
        max_pause: MAX_PAUSE,
    };
    let server = tokio::spawn(standin::serve(
        listener,
        StandinPbx::open(),
        Arc::clone(&events),
        pacing,
        None,
    ));

    let dir = demo_dir()?;
    let db = dir.join("demo.sqlite");
    let config = dir.join("missedcalld.toml");
    std::fs::write(&config, demo_config(port, &db)).context("writing the demo config")?;

    writeln!(
        out,
        "Serving {total} AMI events of {} recorded Asterisk sessions on 127.0.0.1:{port} \
         ({SPEEDUP}x speed); the daemon records them into {}",
        CAPTURES.len(),
        db.display()
    )?;
    out.flush()?;

    let status = Arc::new(DaemonStatus::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(daemon::run_with_status(
        config.clone(),
        async move {
            let _ = stop_rx.await;
        },
        Arc::clone(&status),
    ));
    let started = tokio::time::Instant::now();
    while status.events_processed.load(Ordering::Relaxed) < total {
        if daemon.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(());
    daemon
        .await
        .map_err(|e| anyhow!("the daemon task failed: {e}"))?
        .context("the daemon stopped with an error")?;
    server.abort();
    let processed = status.events_processed.load(Ordering::Relaxed);
    if processed < total {
        bail!("the daemon processed {processed} of {total} events");
    }
    writeln!(
        out,
        "Processed {processed} events in {:.1} s.\n",
        started.elapsed().as_secs_f64()
    )?;
    print_results(&db, out)?;
    writeln!(
        out,
        "\nThe database is kept: try `missedcalld missed --db {} --json`.",
        db.display()
    )?;
    Ok(())
}

/// A fresh directory under the system's temporary directory, kept afterwards so the database
/// can be explored with `missed`, `tasks` and `report`.
fn demo_dir() -> anyhow::Result<std::path::PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!(
        "missedcalld-demo-{}-{nanos:09}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the demo directory {}", dir.display()))?;
    Ok(dir)
}

fn demo_config(port: u16, db: &Path) -> String {
    format!(
        "# written by `missedcalld demo`\n\
         [ami]\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"missedcalls\"\n\
         secret = \"demo\"\nauth = \"md5\"\nreconnect_min_secs = 0.2\nreconnect_max_secs = 1\n\n\
         [store]\npath = {:?}\nbatch_max_delay_ms = 50\n",
        db.display().to_string()
    )
}

fn print_results(db: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(out, "== Missed calls (missedcalld missed) ==")?;
    output::missed(db, None, None, false, out)?;
    writeln!(out, "\n== Callback tasks (missedcalld tasks) ==")?;
    output::tasks(db, None, false, out)?;
    writeln!(out, "\n== Report (missedcalld report) ==")?;
    output::report(db, None, None, "day", ReportFormat::Text, out)?;
    let html = db.with_file_name("report.html");
    write!(out, "\nHTML report (missedcalld report --html FILE): ")?;
    output::report(db, None, None, "day", ReportFormat::Html(html), out)?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_events_are_whole_frames_in_capture_order() {
        let events = bundled_events();
        assert!(events.len() > 1000, "{}", events.len());
        for e in &events {
            assert!(e.bytes.starts_with(b"Event: "), "{:?}", e.bytes);
            assert!(e.bytes.ends_with(b"\r\n\r\n"));
        }
        // Captures are served oldest first: the first event is from the oldest capture (05).
        let first = events.iter().find_map(|e| e.at).unwrap();
        let min = events.iter().filter_map(|e| e.at).min().unwrap();
        assert_eq!(first, min);
        let expected: usize = CAPTURES
            .iter()
            .map(|(_, raw)| {
                raw.split(|&b| b == b'\n')
                    .filter(|l| l.starts_with(b"Event:"))
                    .count()
            })
            .sum();
        assert_eq!(events.len(), expected);
    }
}
