//! `missedcalld demo`: the real daemon against a local stand-in PBX, no Asterisk needed.
//!
//! A TCP server on 127.0.0.1 answers the banner, `Challenge`/`Login`, `Ping`,
//! `CoreShowChannels` (an empty list) and `Logoff`, then serves the events of the bundled lab
//! captures (`ami-fixtures/lab2/*.ami`, embedded in the binary) byte for byte, oldest capture
//! first, with the gaps between their `Timestamp`s compressed. [`crate::daemon`] runs against it
//! into a temporary database; once every event served was processed the daemon is stopped the
//! normal way, and the missed calls, the callback tasks and the report are printed.
//!
//! The stand-in PBX ([`serve`]) also feeds the end-to-end benchmark (`benches/live_latency.rs`)
//! with its own events at a fixed rate, reporting when each one was written.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::net::tcp::OwnedWriteHalf;
use tokio_util::codec::{Decoder, FramedRead};

use crate::ami::{AmiCodec, Frame, Message};
use crate::daemon::{self, DaemonStatus};
use crate::output::{self, ReportFormat};
use crate::time::{EventTime, LocalTime};

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
/// The banner of the stand-in PBX (that of the Asterisk 22 the captures come from).
const BANNER: &[u8] = b"Asterisk Call Manager/11.0.0\r\n";

/// How the stand-in PBX paces the events it serves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// The recorded gaps between `Timestamp`s, divided by [`SPEEDUP`] and capped at
    /// [`MAX_PAUSE`] (the demo).
    Recorded,
    /// A steady number of events per second (more than 0), whatever their recorded times.
    PerSecond(f64),
}

/// Called with the index of each event served and the moment its last byte was written.
pub type OnWritten = Box<dyn FnMut(usize, Instant) + Send>;

/// One event to serve: its exact bytes and its recorded time.
#[derive(Debug, Clone)]
pub struct ServedEvent {
    /// The frame as recorded, blank line included.
    pub bytes: Bytes,
    /// Its `Timestamp`, if any.
    pub at: Option<EventTime>,
}

/// The events of one capture (banner, replies to the recorder's own actions left out).
pub fn capture_events(raw: &[u8]) -> Vec<ServedEvent> {
    let mut codec = AmiCodec::new();
    let mut buf = BytesMut::from(raw);
    let mut events = Vec::new();
    loop {
        let frame = match codec.decode_eof(&mut buf) {
            Ok(Some(f)) => f,
            Ok(None) | Err(_) => break,
        };
        let Frame::Message(msg) = frame else {
            continue;
        };
        if msg.event_name().is_none() {
            continue;
        }
        events.push(ServedEvent {
            at: msg.get("Timestamp").and_then(EventTime::parse_ami),
            bytes: terminated(msg.frame()),
        });
    }
    events
}

/// The frame with its terminating blank line (added if the codec stripped it).
fn terminated(frame: &Bytes) -> Bytes {
    if frame.ends_with(b"\r\n\r\n") || frame.ends_with(b"\n\n") {
        return frame.clone();
    }
    let mut v = frame.to_vec();
    if !v.ends_with(b"\n") {
        v.extend_from_slice(b"\r\n");
    }
    v.extend_from_slice(b"\r\n");
    Bytes::from(v)
}

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
    let _ = crate::logging::init(&quiet);
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
    let server = tokio::spawn(serve(listener, Arc::clone(&events), Pacing::Recorded, None));

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
    out.flush()?;
    Ok(())
}

/// The stand-in PBX: accepts connections one after another (the daemon reconnects if one
/// drops); every connection gets the banner, answers to its actions, and, after its first
/// `CoreShowChannels`, the events not yet served, paced by `pacing`. `on_written`, if any, hears
/// of every event written. Runs until the listener fails or the task is dropped.
pub async fn serve(
    listener: TcpListener,
    events: Arc<Vec<ServedEvent>>,
    pacing: Pacing,
    mut on_written: Option<OnWritten>,
) {
    let mut next = 0usize;
    while let Ok((socket, _)) = listener.accept().await {
        let _ = socket.set_nodelay(true);
        let (read, write) = socket.into_split();
        next = session(read, write, &events, next, pacing, &mut on_written).await;
        if next >= events.len() {
            // Stay reachable so the daemon can log off; nothing more to send.
        }
    }
}

/// One client connection; returns the index of the first event not yet written.
async fn session(
    read: tokio::net::tcp::OwnedReadHalf,
    mut write: OwnedWriteHalf,
    events: &[ServedEvent],
    mut next: usize,
    pacing: Pacing,
    on_written: &mut Option<OnWritten>,
) -> usize {
    if write.write_all(BANNER).await.is_err() {
        return next;
    }
    let mut actions = FramedRead::new(read, AmiCodec::new());
    let mut streaming = false;
    let mut due = tokio::time::Instant::now();
    loop {
        let pending = streaming && next < events.len();
        tokio::select! {
            action = actions.next() => {
                let Some(Ok(Frame::Message(action))) = action else { return next };
                let (reply, start, close) = answer(&action);
                if write.write_all(&reply).await.is_err() {
                    return next;
                }
                if close {
                    let _ = write.shutdown().await;
                    return next;
                }
                if start && !streaming {
                    streaming = true;
                    due = tokio::time::Instant::now();
                }
            }
            () = tokio::time::sleep_until(due), if pending => {
                let ev = &events[next];
                if write.write_all(&ev.bytes).await.is_err() {
                    return next;
                }
                if let Some(on_written) = on_written.as_mut() {
                    on_written(next, Instant::now());
                }
                next += 1;
                due = match pacing {
                    Pacing::Recorded => tokio::time::Instant::now() + pause(ev, events.get(next)),
                    // From the previous due time, not from now: the rate holds on average.
                    Pacing::PerSecond(rate) => due + Duration::from_secs_f64(1.0 / rate),
                };
            }
        }
    }
}

/// The compressed real-time pause between two recorded events.
fn pause(this: &ServedEvent, next: Option<&ServedEvent>) -> Duration {
    match (this.at, next.and_then(|n| n.at)) {
        (Some(a), Some(b)) if b > a => {
            Duration::from_secs_f64(b.seconds_since(a) / SPEEDUP).min(MAX_PAUSE)
        }
        _ => Duration::ZERO,
    }
}

/// The stand-in PBX's reply to one action: (bytes, start streaming, close afterwards).
fn answer(action: &Message) -> (Vec<u8>, bool, bool) {
    let name = action
        .get_str("Action")
        .map(|a| a.to_ascii_lowercase())
        .unwrap_or_default();
    let id = action
        .get_str("ActionID")
        .map(|id| format!("ActionID: {id}\r\n"))
        .unwrap_or_default();
    // The stand-in PBX stamps with its own clock, which is this machine's.
    let now = LocalTime::now().as_micros();
    let stamp = format!("{}.{:06}", now / 1_000_000, now % 1_000_000);
    match name.as_str() {
        "challenge" => (
            format!("Response: Success\r\n{id}Challenge: 840193517\r\n\r\n").into_bytes(),
            false,
            false,
        ),
        "login" => (
            format!("Response: Success\r\n{id}Message: Authentication accepted\r\n\r\n")
                .into_bytes(),
            false,
            false,
        ),
        "ping" => (
            format!("Response: Success\r\n{id}Ping: Pong\r\nTimestamp: {stamp}\r\n\r\n")
                .into_bytes(),
            false,
            false,
        ),
        "coreshowchannels" => (
            format!(
                "Response: Success\r\n{id}EventList: start\r\nMessage: Channels will follow\r\n\r\n\
                 Event: CoreShowChannelsComplete\r\n{id}EventList: Complete\r\nListItems: 0\r\n\r\n"
            )
            .into_bytes(),
            true,
            false,
        ),
        "logoff" => (
            format!("Response: Goodbye\r\n{id}Message: Thanks for all the fish.\r\n\r\n")
                .into_bytes(),
            false,
            true,
        ),
        _ => (
            format!("Response: Error\r\n{id}Message: Invalid/unknown command\r\n\r\n").into_bytes(),
            false,
            false,
        ),
    }
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

    #[test]
    fn pauses_are_compressed_and_capped() {
        let at = |s: i64| ServedEvent {
            bytes: Bytes::new(),
            at: Some(EventTime(s * 1_000_000)),
        };
        assert_eq!(pause(&at(0), Some(&at(5))), Duration::from_millis(100));
        assert_eq!(pause(&at(0), Some(&at(500))), MAX_PAUSE);
        assert_eq!(pause(&at(5), Some(&at(0))), Duration::ZERO);
        assert_eq!(pause(&at(5), None), Duration::ZERO);
    }

    #[test]
    fn answers_login_ping_and_an_empty_channel_list() {
        let login = Message::from_pairs(&[("Action", "Login"), ("ActionID", "7")]);
        let (reply, start, close) = answer(&login);
        let text = String::from_utf8(reply).unwrap();
        assert!(text.contains("Authentication accepted") && text.contains("ActionID: 7"));
        assert!(!start && !close);
        let list = Message::from_pairs(&[("Action", "CoreShowChannels"), ("ActionID", "8")]);
        let (reply, start, _) = answer(&list);
        let text = String::from_utf8(reply).unwrap();
        assert!(text.contains("EventList: Complete\r\nListItems: 0"));
        assert!(start);
        let (_, _, close) = answer(&Message::from_pairs(&[("Action", "Logoff")]));
        assert!(close);
    }
}
