//! The lab3 reconnect captures through the real daemon: a stand-in PBX on 127.0.0.1 serves each
//! `-a` capture to `missedcalld run`, cuts the link (or the daemon is stopped), keeps the daemon
//! blind as long as the recording was, then answers the new session's `CoreShowChannels` with
//! the `-b` capture's list and serves the rest. What the daemon stored must match the pair's
//! `expect.json` (a gap call's true end inside its reported window counts as right).
//!
//! Three ways to lose sight of the PBX, one truth:
//! - the AMI link is cut (the recorded scenario);
//! - the daemon is stopped with SIGTERM and started again: it saves the calls in progress and
//!   restores them, so the result is the same as with the link cut;
//! - the daemon is SIGKILLed (nothing saved): the resync alone must never report an answered
//!   caller as missed, and a caller the PBX still lists is not lost.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use missedcalld::ami::{AmiCodec, Frame, Message};
use serde_json::Value;
use tokio_util::codec::Decoder;

mod support;
use support::ami_server::{AmiConn, FakeAmi};
use support::daemon::{append_log, spawn_run};
use support::expect::{check, missedcalld_json as cli_json};

const USER: &str = "missedcalls";
const SECRET: &str = "reconnect-test-secret";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ami-fixtures/lab3")
        .join(name)
}

fn decode(raw: &[u8]) -> Vec<Message> {
    let mut codec = AmiCodec::new();
    let mut buf = BytesMut::from(raw);
    let mut out = Vec::new();
    while let Ok(Some(frame)) = codec.decode_eof(&mut buf) {
        if let Frame::Message(m) = frame {
            out.push(m);
        }
    }
    out
}

/// One recorded session: its `CoreShowChannels` items, `FullyBooted`, and the other events.
#[derive(Default, Clone)]
struct Session {
    items: Vec<Vec<(String, String)>>,
    booted: Option<Bytes>,
    events: Vec<Bytes>,
    first: f64,
    last: f64,
}

fn session(path: &Path) -> Session {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut s = Session {
        first: f64::MAX,
        ..Session::default()
    };
    for m in decode(&raw) {
        let Some(name) = m.event_name() else { continue };
        let listed = m.get("ActionID").is_some();
        match name {
            b"CoreShowChannel" if listed => s.items.push(
                m.headers()
                    .filter(|(k, _)| {
                        !k.eq_ignore_ascii_case(b"Event") && !k.eq_ignore_ascii_case(b"ActionID")
                    })
                    .map(|(k, v)| {
                        (
                            String::from_utf8_lossy(k).into_owned(),
                            String::from_utf8_lossy(v).into_owned(),
                        )
                    })
                    .collect(),
            ),
            b"CoreShowChannelsComplete" if listed => {}
            b"FullyBooted" => s.booted = Some(frame_bytes(&m)),
            _ => {
                if let Some(t) = m.get_str("Timestamp").and_then(|t| t.parse::<f64>().ok()) {
                    s.first = s.first.min(t);
                    s.last = s.last.max(t);
                }
                s.events.push(frame_bytes(&m));
            }
        }
    }
    s
}

fn frame_bytes(m: &Message) -> Bytes {
    let mut v = m.frame().to_vec();
    while v.ends_with(b"\n") || v.ends_with(b"\r") {
        v.pop();
    }
    v.extend_from_slice(b"\r\n\r\n");
    Bytes::from(v)
}

/// How the daemon loses sight of the PBX between the two sessions.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Blind {
    LinkCut,
    Sigterm,
    Sigkill,
}

struct Pair {
    a: Session,
    b: Session,
    /// How long the recorder was blind: from the last event of `a` to the first of `b`.
    gap: Duration,
    /// When the first session ended.
    cut: Mutex<Option<Instant>>,
    blind: Blind,
}

async fn serve_session(conn: &mut AmiConn, items: &[Vec<(String, String)>]) {
    let refs: Vec<Vec<(&str, &str)>> = items
        .iter()
        .map(|i| i.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
        .collect();
    conn.channels(&refs).await;
}

async fn pbx(pair: Arc<Pair>, mut conn: AmiConn, index: usize) {
    if !conn.login(USER, SECRET).await {
        return;
    }
    if index == 0 {
        serve_session(&mut conn, &pair.a.items).await;
        conn.send_raw(&pair.a.events.concat()).await;
        if pair.blind == Blind::LinkCut {
            *pair.cut.lock().unwrap() = Some(Instant::now());
            conn.close().await;
            return;
        }
        // The test stops the daemon; a SIGTERMed one logs off.
        conn.serve(true).await;
        pair.cut.lock().unwrap().get_or_insert_with(Instant::now);
        return;
    }
    if let Some(b) = &pair.b.booted {
        conn.send_raw(b).await;
    }
    // Stay blind as long as the recording did before answering the resync.
    loop {
        let cut = *pair.cut.lock().unwrap();
        if cut.is_some_and(|c| c.elapsed() >= pair.gap) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    serve_session(&mut conn, &pair.b.items).await;
    conn.send_raw(&pair.b.events.concat()).await;
    conn.serve(true).await;
}

struct Daemon(Child);

impl Daemon {
    fn start(config: &Path, log: &Path) -> Daemon {
        Daemon(spawn_run(config, append_log(log), Some("info")))
    }

    async fn stop(&mut self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.0.id().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                assert_eq!(status.success(), signal == "TERM", "{status:?}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not stop on SIG{signal}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A temporary directory with a database path, a log path and a configuration for a daemon on
/// the stand-in PBX at `port` (fast reconnects, a long reply timeout for the held resync).
fn setup(port: u16) -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("calls.sqlite");
    let config = dir.path().join("missedcalld.toml");
    let log = dir.path().join("daemon.log");
    std::fs::write(
        &config,
        format!(
            "[ami]\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"{USER}\"\nsecret = \"{SECRET}\"\n\
             auth = \"md5\"\nreconnect_min_secs = 0.05\nreconnect_max_secs = 0.3\n\
             ping_interval_secs = 5\nping_timeout_secs = 30\n\n[store]\npath = {:?}\n\
             batch_max_delay_ms = 20\n",
            db.display().to_string()
        ),
    )
    .unwrap();
    (dir, db, config, log)
}

fn inbound_calls(db: &Path) -> i64 {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .ok()
        .and_then(|c| {
            c.query_row(
                "SELECT count(*) FROM calls WHERE direction = 'inbound'",
                [],
                |r| r.get(0),
            )
            .ok()
        })
        .unwrap_or(0)
}

async fn wait_calls(db: &Path, n: i64, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while inbound_calls(db) < n {
        assert!(
            Instant::now() < deadline,
            "{} of {n} calls stored; log:\n{}",
            inbound_calls(db),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Serves the pair `name` to the daemon, blinding it the `blind` way between the sessions;
/// returns `missed --json`, `tasks --json` and the expect.json.
async fn run_pair(name: &str, blind: Blind, calls_expected: Option<i64>) -> (Value, Value, Value) {
    let a = session(&fixture(&format!("{name}-a.ami")));
    let b = session(&fixture(&format!("{name}-b.ami")));
    let expect: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture(&format!("{name}.expect.json"))).unwrap(),
    )
    .unwrap();
    let gap = Duration::from_secs_f64((b.first - a.last).max(0.0));
    let pair = Arc::new(Pair {
        a,
        b,
        gap,
        cut: Mutex::new(None),
        blind,
    });
    let p = Arc::clone(&pair);
    let server = FakeAmi::start(move |conn, i| pbx(Arc::clone(&p), conn, i)).await;
    let (_dir, db, config, log) = setup(server.addr.port());
    let mut daemon = Daemon::start(&config, &log);
    if blind != Blind::LinkCut {
        // Wait until the first session's events are processed, then stop the daemon.
        let deadline = Instant::now() + Duration::from_secs(30);
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        while server.connections() < 1 || !log_text().contains("resynchronised") {
            assert!(
                Instant::now() < deadline,
                "no first session:\n{}",
                log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The events of `a` follow the resync on the same socket: give the daemon time to read them.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        daemon
            .stop(if blind == Blind::Sigterm {
                "TERM"
            } else {
                "KILL"
            })
            .await;
        pair.cut.lock().unwrap().get_or_insert_with(Instant::now);
        daemon = Daemon::start(&config, &log);
    }
    let want = calls_expected.unwrap_or(expect["calls"].as_array().unwrap().len() as i64);
    wait_calls(&db, want, &log).await;
    daemon.stop("TERM").await;
    let db = db.to_str().unwrap();
    (
        cli_json(&["missed", "--db", db, "--json"]),
        cli_json(&["tasks", "--db", db, "--json"]),
        expect,
    )
}

async fn assert_matches(name: &str, blind: Blind) -> Value {
    let (missed, tasks, expect) = run_pair(name, blind, None).await;
    let failures = check(
        &format!("{name} ({blind:?})"),
        &expect,
        missed.as_array().unwrap(),
        tasks.as_array().unwrap(),
    );
    assert!(
        failures.is_empty(),
        "{}\nmissed: {missed:#}",
        failures.join("\n")
    );
    missed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_in_the_gap_link_cut() {
    let missed = assert_matches("09-reconnect-answered-in-gap", Blind::LinkCut).await;
    // The caller who stayed in the queue through the gap kept everything: no gap flag.
    assert_eq!(missed[0]["gap"], false, "{missed:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_in_the_gap_link_cut() {
    let missed = assert_matches("10-reconnect-missed-in-gap", Blind::LinkCut).await;
    let m = &missed[0];
    assert_eq!(m["gap"], true, "{m:#}");
    assert!(m["gap_started_at"].is_string() && m["gap_ended_at"].is_string());
    assert_eq!(m["did"], "74957654321", "known before the gap");
}

/// Without the fields that depend on when the daemon ran (ids, first-time flags are equal).
fn comparable(missed: &Value) -> Vec<Value> {
    missed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let mut m = m.clone();
            let o = m.as_object_mut().unwrap();
            o.remove("gap_ended_at");
            o.remove("task_id");
            m
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_between_the_sessions_gives_the_same_result_as_the_link_cut() {
    for name in ["09-reconnect-answered-in-gap", "10-reconnect-missed-in-gap"] {
        let cut = assert_matches(name, Blind::LinkCut).await;
        let restarted = assert_matches(name, Blind::Sigterm).await;
        assert_eq!(comparable(&restarted), comparable(&cut), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_the_sessions_never_turns_an_answered_call_into_a_missed_one() {
    // 09: A is answered in the gap, B still queued. Nothing saved: both are adopted.
    let (missed, _, expect) = run_pair("09-reconnect-answered-in-gap", Blind::Sigkill, None).await;
    let callers: Vec<&Value> = missed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["caller"])
        .collect();
    for answered in expect["not_missed_callers"].as_array().unwrap() {
        assert!(
            !callers.contains(&answered),
            "{answered} reported missed: {missed:#}"
        );
    }
    let b = missed
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["caller"] == "79031110092")
        .unwrap_or_else(|| panic!("the queued caller the PBX still listed was lost: {missed:#}"));
    assert_eq!(b["loss_reason"], "ringing");
    assert!(
        (b["wait_seconds"].as_f64().unwrap() - 28.0).abs() <= 1.5,
        "its start comes from the listed Duration (whole seconds) on the PBX's clock: {b:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_saved_state_is_set_aside_and_the_daemon_runs_on() {
    let server = FakeAmi::start(|mut conn, _| async move {
        if conn.login(USER, SECRET).await {
            conn.channels(&[]).await;
            conn.serve(true).await;
        }
    })
    .await;
    let (dir, _db, config, log) = setup(server.addr.port());
    let saved = dir.path().join("calls.sqlite.calls-in-progress");
    std::fs::write(&saved, b"Event: Newchannel\r\nUniqueid: 1.1\r\n\r\n").unwrap();
    let mut daemon = Daemon::start(&config, &log);
    let deadline = Instant::now() + Duration::from_secs(30);
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    while !log_text().contains("resynchronised") {
        assert!(
            Instant::now() < deadline,
            "daemon not running:\n{}",
            log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(log_text().contains("set aside"), "{}", log_text());
    assert!(!saved.exists());
    assert!(
        dir.path()
            .join("calls.sqlite.calls-in-progress.unreadable")
            .exists()
    );
    daemon.stop("TERM").await;
}
