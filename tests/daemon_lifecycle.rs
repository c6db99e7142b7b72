//! The compiled daemon (`missedcalld run`) against a stand-in PBX on 127.0.0.1: login, a capture
//! served in odd pieces, a PBX restart with and without the call in `CoreShowChannels`, SIGHUP
//! with and without `[ami]` changes (seen from the server: did it reconnect?), a broken config on
//! SIGHUP, SIGTERM mid-stream (exit 0, every call completed before the signal stored), and
//! SIGKILL followed by a restart (nothing committed lost or duplicated).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use missedcalld::ami::standin::{self, Answered, BANNER, StandinPbx};
use missedcalld::ami::{AmiCodec, Frame, Message};
use missedcalld::calls::{FinishedCall, TrackerConfig};
use missedcalld::pipeline::{CallSink, Pipeline};
use missedcalld::store::{Store, StoreError, StoreSettings};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;

mod support;
use support::daemon::{append_log, spawn_run};

const SECRET: &str = "daemon-test-secret";

fn capture(name: &str) -> Vec<Bytes> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ami-fixtures/lab2")
        .join(name);
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    standin::capture_events(&raw)
        .into_iter()
        .map(|e| e.bytes)
        .collect()
}

// ---------------------------------------------------------------------------- stand-in PBX

#[derive(Default)]
struct PbxState {
    /// Successful logins (MD5 key checked).
    logins: usize,
    /// TCP connections accepted.
    connections: usize,
    /// `CoreShowChannels` answered.
    resyncs: usize,
    /// Logins whose MD5 key was wrong.
    bad_logins: usize,
    /// Items (`Key: Value` pairs, without ActionID) of the next `CoreShowChannels` answers.
    channels: Vec<Vec<(String, String)>>,
    writer: Option<OwnedWriteHalf>,
    reader: Option<JoinHandle<()>>,
}

/// A PBX that answers the daemon's actions; the test pushes events into the live connection.
struct Pbx {
    port: u16,
    state: Arc<Mutex<PbxState>>,
    accept: JoinHandle<()>,
}

impl Pbx {
    async fn start() -> Pbx {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(PbxState::default()));
        let st = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (read, mut write) = socket.into_split();
                if write
                    .write_all(format!("{BANNER}\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    continue;
                }
                let mut s = st.lock().await;
                s.connections += 1;
                if let Some(old) = s.reader.take() {
                    old.abort();
                }
                s.writer = Some(write);
                let st2 = Arc::clone(&st);
                s.reader = Some(tokio::spawn(answer_actions(read, st2)));
            }
        });
        Pbx {
            port,
            state,
            accept,
        }
    }

    async fn snapshot(&self) -> (usize, usize, usize, usize) {
        let s = self.state.lock().await;
        (s.connections, s.logins, s.resyncs, s.bad_logins)
    }

    /// Waits until `resyncs` reached `n` (logged in and resynchronised `n` times).
    async fn wait_resyncs(&self, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.state.lock().await.resyncs >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no resync #{n} within {within:?}: {:?}",
                self.snapshot().await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Writes bytes to the current connection.
    async fn send(&self, bytes: &[u8]) {
        let mut s = self.state.lock().await;
        let w = s.writer.as_mut().expect("a connected daemon");
        w.write_all(bytes).await.expect("write to daemon");
    }

    /// Drops the current connection, as a PBX restart does.
    async fn kill_connection(&self) {
        let mut s = self.state.lock().await;
        if let Some(mut w) = s.writer.take() {
            let _ = w.shutdown().await;
        }
        if let Some(r) = s.reader.take() {
            r.abort();
        }
    }

    async fn set_channels(&self, items: Vec<Vec<(String, String)>>) {
        self.state.lock().await.channels = items;
    }
}

impl Drop for Pbx {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn answer_actions(read: tokio::net::tcp::OwnedReadHalf, st: Arc<Mutex<PbxState>>) {
    let mut actions = FramedRead::new(read, AmiCodec::new());
    while let Some(Ok(frame)) = actions.next().await {
        let Frame::Message(a) = frame else { continue };
        let mut s = st.lock().await;
        let mut pbx = StandinPbx::with_login("missedcalls", SECRET);
        pbx.channels = s.channels.clone();
        let reply = pbx.answer(&a);
        match reply.answered {
            Answered::Login { accepted: true } => s.logins += 1,
            Answered::Login { accepted: false } => s.bad_logins += 1,
            Answered::Channels => s.resyncs += 1,
            _ => {}
        }
        if let Some(w) = s.writer.as_mut() {
            let _ = w.write_all(&reply.bytes).await;
        }
    }
}

// ---------------------------------------------------------------------------- the daemon process

struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(config: &Path, log: &Path) -> Daemon {
        let child = spawn_run(config, append_log(log), Some("info"));
        Daemon {
            child,
            log: log.to_path_buf(),
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "daemon still running after {within:?}; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then a clean exit (status 0) within 5 s.
    async fn terminate(&mut self) {
        self.signal("TERM");
        let status = self.wait_exit(Duration::from_secs(5)).await;
        assert!(status.success(), "{status:?}\n{}", self.log_text());
    }

    /// SIGKILL, then an exit that is not a success within 5 s.
    async fn kill(&mut self) {
        self.signal("KILL");
        let status = self.wait_exit(Duration::from_secs(5)).await;
        assert!(!status.success(), "{status:?}");
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_log(&self, needle: &str, occurrences: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.log_text().matches(needle).count() < occurrences {
            assert!(
                Instant::now() < deadline,
                "{needle:?} x{occurrences} not logged within {within:?}; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn write_config(path: &Path, port: u16, db: &Path, ami_extra: &str, log_level: &str) {
    let text = format!(
        "[ami]\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"missedcalls\"\n\
         secret = \"{SECRET}\"\nauth = \"md5\"\nreconnect_min_secs = 0.05\nreconnect_max_secs = 0.3\n\
         ping_interval_secs = 5\n{ami_extra}\n\
         [store]\npath = {:?}\nbatch_max_delay_ms = 20\n\n[log]\nlevel = \"{log_level}\"\n",
        db.display().to_string()
    );
    std::fs::write(path, text).expect("write config");
}

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    db: PathBuf,
    log: PathBuf,
}

fn setup(port: u16) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("missedcalld.toml");
    let db = dir.path().join("calls.sqlite");
    let log = dir.path().join("daemon.log");
    write_config(&config, port, &db, "", "info");
    Setup {
        dir,
        config,
        db,
        log,
    }
}

/// A stand-in PBX and a fresh setup with the daemon running on it, logged in and resynchronised
/// once.
async fn start_logged_in() -> (Pbx, Setup, Daemon) {
    let pbx = Pbx::start().await;
    let s = setup(pbx.port);
    let daemon = Daemon::start(&s.config, &s.log);
    pbx.wait_resyncs(1, Duration::from_secs(10)).await;
    (pbx, s, daemon)
}

/// Writes `pieces` to the current connection from a background task, one piece per lock of the
/// state, sleeping `pause` (if any) after each; stops quietly once there is no connection.
fn stream_in_background(
    pbx: &Pbx,
    pieces: Vec<Vec<u8>>,
    pause: Option<Duration>,
) -> JoinHandle<()> {
    let state = Arc::clone(&pbx.state);
    tokio::spawn(async move {
        for piece in pieces {
            let mut st = state.lock().await;
            let Some(w) = st.writer.as_mut() else { return };
            if w.write_all(&piece).await.is_err() {
                return;
            }
            drop(st);
            if let Some(pause) = pause {
                tokio::time::sleep(pause).await;
            }
        }
    })
}

/// Streams the whole capture in the background, 64 KiB at a time, without pauses.
fn stream_capture(pbx: &Pbx, frames: &[Bytes]) -> JoinHandle<()> {
    let pieces = frames
        .concat()
        .chunks(64 * 1024)
        .map(<[u8]>::to_vec)
        .collect();
    stream_in_background(pbx, pieces, None)
}

/// Streams the whole capture (see [`stream_capture`]), waits until 5 missed calls are stored, then
/// SIGKILLs the daemon; returns what was committed by then.
async fn kill_mid_capture(pbx: &Pbx, s: &Setup, daemon: &mut Daemon, frames: &[Bytes]) -> Missed {
    let streaming = stream_capture(pbx, frames);
    wait_missed(&s.db, 5, Duration::from_secs(20)).await;
    daemon.kill().await;
    streaming.abort();
    missed_calls(&s.db)
}

// ---------------------------------------------------------------------------- database checks

/// linkedid -> (loss_reason, gap) of stored missed calls.
type Missed = BTreeMap<String, (String, bool)>;

fn read_db(db: &Path) -> Option<rusqlite::Connection> {
    if !db.exists() {
        return None;
    }
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()
}

/// linkedid -> (loss_reason, gap) of every stored missed call.
fn missed_calls(db: &Path) -> Missed {
    let Some(c) = read_db(db) else {
        return BTreeMap::new();
    };
    let Ok(mut st) = c.prepare(
        "SELECT c.linkedid, m.loss_reason, c.gap FROM missed_calls m JOIN calls c ON c.id = m.call_id",
    ) else {
        return BTreeMap::new();
    };
    st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            (r.get::<_, String>(1)?, r.get::<_, i64>(2)? != 0),
        ))
    })
    .map(|rows| rows.filter_map(Result::ok).collect())
    .unwrap_or_default()
}

fn count(db: &Path, sql: &str) -> i64 {
    read_db(db)
        .and_then(|c| c.query_row(sql, [], |r| r.get(0)).ok())
        .unwrap_or(-1)
}

/// (number, missed_count, status, attempts) of every task, sorted.
fn tasks(db: &Path) -> Vec<(String, i64, String, i64)> {
    let c = read_db(db).expect("database");
    let mut st = c
        .prepare("SELECT number, missed_count, status, attempts FROM callback_tasks ORDER BY number, first_missed_at")
        .expect("prepare");
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

async fn wait_missed(db: &Path, n: usize, within: Duration) -> Missed {
    let deadline = Instant::now() + within;
    loop {
        let m = missed_calls(db);
        if m.len() >= n {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} missed calls stored within {within:?}",
            m.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// What the library's own pipeline makes of `frames` (the reference for the daemon).
fn reference_calls(frames: &[Bytes]) -> Vec<FinishedCall> {
    let mut pipeline = Pipeline::new(TrackerConfig::default(), Vec::new());
    feed(&mut pipeline, frames);
    pipeline.into_sink()
}

/// Runs the decoded `frames` through `pipeline`, each event at its own `Timestamp`.
fn feed<S: CallSink>(pipeline: &mut Pipeline<S>, frames: &[Bytes])
where
    S::Error: std::fmt::Debug,
{
    for msg in decode(frames) {
        pipeline.on_recorded(&msg).expect("record");
    }
}

fn decode(frames: &[Bytes]) -> Vec<Message> {
    let mut buf = BytesMut::new();
    for f in frames {
        buf.extend_from_slice(f);
    }
    let mut codec = AmiCodec::new();
    let mut out = Vec::new();
    while let Ok(Some(frame)) = tokio_util::codec::Decoder::decode_eof(&mut codec, &mut buf) {
        if let Frame::Message(m) = frame {
            out.push(m);
        }
    }
    out
}

fn missed_linkedids(calls: &[FinishedCall]) -> BTreeSet<String> {
    calls
        .iter()
        .filter(|c| c.missed.is_some())
        .map(|c| c.linkedid.clone())
        .collect()
}

/// Every call in `committed` is still in `after`, unchanged.
fn assert_committed_kept(committed: &Missed, after: &Missed) {
    for (id, v) in committed {
        assert_eq!(
            after.get(id),
            Some(v),
            "committed call {id} changed or lost"
        );
    }
}

struct StoreSink(Store);

impl CallSink for StoreSink {
    type Error = StoreError;
    fn record(&mut self, call: FinishedCall) -> Result<(), StoreError> {
        self.0.record(call)
    }
}

// ---------------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_login_then_a_capture_served_in_odd_pieces() {
    let (pbx, s, mut daemon) = start_logged_in().await;
    let (_, logins, _, bad) = pbx.snapshot().await;
    assert_eq!(
        (logins, bad),
        (1, 0),
        "MD5 login with the configured secret"
    );

    let bytes: Vec<u8> = capture("02-queue-abandon.ami").concat();
    let mut pos = 0usize;
    let mut step = 1usize;
    while pos < bytes.len() {
        // 1, 4, 13, 40, 121, 364 ... bytes: splits land inside lines, keys and line ends.
        let end = (pos + step).min(bytes.len());
        pbx.send(&bytes[pos..end]).await;
        pos = end;
        step = if step > 1000 { 1 } else { step * 3 + 1 };
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let missed = wait_missed(&s.db, 1, Duration::from_secs(10)).await;
    assert_eq!(missed.len(), 1, "{missed:?}");
    let (reason, gap) = missed.values().next().expect("one");
    assert_eq!(reason, "ringing");
    assert!(!gap);

    daemon.terminate().await;
    let log = daemon.log_text();
    assert!(!log.contains(SECRET), "the secret was logged:\n{log}");
    assert!(log.contains("missed call"), "{log}");
    drop(s.dir);
}

/// The caller's two Local channels of `03-ivr-abandon`, as `CoreShowChannels` lists them.
fn ivr_call_channels() -> Vec<Vec<(String, String)>> {
    let item = |chan: &str, uid: &str| {
        [
            ("Channel", chan),
            ("ChannelState", "6"),
            ("ChannelStateDesc", "Up"),
            ("CallerIDNum", "79264445566"),
            ("CallerIDName", "Client"),
            ("Context", "ivr-main"),
            ("Exten", "s"),
            ("Priority", "4"),
            ("Uniqueid", uid),
            ("Linkedid", "lab-pbx-1795376869.44"),
            ("Application", "Background"),
            ("ApplicationData", "custom/ivr-welcome"),
            ("Duration", "00:00:02"),
            ("BridgeId", ""),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    };
    vec![
        item(
            "Local/74951234567@from-trunk-00000016;1",
            "lab-pbx-1795376869.44",
        ),
        item(
            "Local/74951234567@from-trunk-00000016;2",
            "lab-pbx-1795376869.45",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pbx_restart_mid_call_keeps_a_call_the_pbx_still_lists() {
    let (pbx, s, mut daemon) = start_logged_in().await;

    let frames = capture("03-ivr-abandon.ami");
    let split = 45; // in the IVR greeting, long before the caller hangs up
    pbx.send(&frames[..split].concat()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    pbx.set_channels(ivr_call_channels()).await;
    pbx.kill_connection().await;
    pbx.wait_resyncs(2, Duration::from_secs(10)).await;
    assert_eq!(pbx.snapshot().await.1, 2, "logged in again");
    daemon
        .wait_log("AMI connection lost", 1, Duration::from_secs(5))
        .await;

    pbx.send(&frames[split..].concat()).await;
    let missed = wait_missed(&s.db, 1, Duration::from_secs(10)).await;
    assert_eq!(
        missed.get("lab-pbx-1795376869.44"),
        Some(&("ivr".to_string(), false)),
        "{missed:?}"
    );
    daemon.terminate().await;
    assert_eq!(count(&s.db, "SELECT count(*) FROM calls"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pbx_restart_without_the_call_finishes_it_flagged_gap() {
    let (pbx, s, mut daemon) = start_logged_in().await;

    let frames = capture("03-ivr-abandon.ami");
    pbx.send(&frames[..45].concat()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(missed_calls(&s.db).is_empty(), "call still in progress");
    pbx.kill_connection().await; // restarted PBX: the list comes back empty
    pbx.wait_resyncs(2, Duration::from_secs(10)).await;
    let missed = wait_missed(&s.db, 1, Duration::from_secs(10)).await;
    let (reason, gap) = missed.get("lab-pbx-1795376869.44").expect("the IVR call");
    assert_eq!(reason, "ivr");
    assert!(gap, "finished by the resync, flagged gap");
    daemon.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reconnects_only_when_ami_changes_and_survives_a_broken_config() {
    let (pbx, s, mut daemon) = start_logged_in().await;

    // Same file: nothing to do.
    daemon.signal("HUP");
    daemon
        .wait_log("configuration unchanged", 1, Duration::from_secs(5))
        .await;
    // [log] changed, [ami] not: the session stays up.
    write_config(&s.config, pbx.port, &s.db, "", "debug");
    daemon.signal("HUP");
    daemon
        .wait_log("configuration reloaded", 1, Duration::from_secs(5))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        pbx.snapshot().await,
        (1, 1, 1, 0),
        "no reconnect without an [ami] change"
    );

    // A broken file: logged, the running configuration stays.
    std::fs::write(&s.config, "[ami]\nport = 70000\n").expect("write");
    daemon.signal("HUP");
    daemon
        .wait_log("reload failed", 1, Duration::from_secs(5))
        .await;
    assert!(
        daemon.log_text().contains("ami.port"),
        "{}",
        daemon.log_text()
    );
    assert_eq!(pbx.snapshot().await.0, 1);

    // [ami] changed: exactly one new session.
    write_config(
        &s.config,
        pbx.port,
        &s.db,
        "stable_after_secs = 30",
        "debug",
    );
    daemon.signal("HUP");
    pbx.wait_resyncs(2, Duration::from_secs(10)).await;
    daemon
        .wait_log("configuration reloaded", 2, Duration::from_secs(5))
        .await;
    let (connections, logins, _, _) = pbx.snapshot().await;
    assert_eq!((connections, logins), (2, 2));

    // Still processing on the new session.
    pbx.send(&capture("03-ivr-abandon.ami").concat()).await;
    wait_missed(&s.db, 1, Duration::from_secs(10)).await;
    daemon.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_new_callback_rules_keeps_the_database_open_and_applies_them() {
    let (pbx, s, mut daemon) = start_logged_in().await;

    // Only [callbacks] changes: the writer gets the new rules, the store is not reopened.
    let mut text = std::fs::read_to_string(&s.config).expect("read config");
    text.push_str("\n[callbacks]\noffhours_deadline = \"11:30\"\n");
    std::fs::write(&s.config, text).expect("write config");
    daemon.signal("HUP");
    daemon
        .wait_log("configuration reloaded", 1, Duration::from_secs(5))
        .await;
    // The writer thread logs the rules once it has them, after the reload line.
    daemon
        .wait_log("callback task rules applied", 1, Duration::from_secs(5))
        .await;
    let log = daemon.log_text();
    assert!(!log.contains("database settings applied"), "{log}");

    // The IVR miss of Sunday 2026-11-22 19:47Z is due Monday at the new off-hours time.
    pbx.send(&capture("03-ivr-abandon.ami").concat()).await;
    wait_missed(&s.db, 1, Duration::from_secs(10)).await;
    let deadline: String = read_db(&s.db)
        .expect("database")
        .query_row("SELECT deadline FROM callback_tasks", [], |r| r.get(0))
        .expect("one task");
    assert_eq!(deadline, "2026-11-23T11:30:00.000Z");
    daemon.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_exits_0_with_every_completed_call_stored() {
    let (pbx, s, mut daemon) = start_logged_in().await;

    let frames = capture("13-concurrent-mix.ami");
    let k = frames.len() / 2;
    pbx.send(&frames[..k].concat()).await;
    let before = missed_linkedids(&reference_calls(&frames[..k]));
    assert!(before.len() >= 5, "enough calls end in the first half");
    // Let the frames already written reach the daemon, then signal while still streaming.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rest = frames[k..].chunks(20).map(<[Bytes]>::concat).collect();
    let streamer = stream_in_background(&pbx, rest, Some(Duration::from_millis(2)));
    let signalled = Instant::now();
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(5)).await;
    let took = signalled.elapsed();
    streamer.abort();
    assert!(status.success(), "{status:?}\n{}", daemon.log_text());
    assert!(took < Duration::from_secs(5), "{took:?}");

    let stored: BTreeSet<String> = missed_calls(&s.db).into_keys().collect();
    let all = missed_linkedids(&reference_calls(&frames));
    let lost: Vec<_> = before.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "completed before SIGTERM but not stored: {lost:?}"
    );
    let unknown: Vec<_> = stored.difference(&all).collect();
    assert!(
        unknown.is_empty(),
        "stored but never completed: {unknown:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_then_restart_loses_and_duplicates_nothing() {
    let frames = capture("13-concurrent-mix.ami");

    // Reference: the whole capture through the library into its own database.
    let ref_dir = tempfile::tempdir().expect("tempdir");
    let ref_db = ref_dir.path().join("ref.sqlite");
    let store = Store::open(StoreSettings::new(&ref_db)).expect("reference store");
    let mut pipeline = Pipeline::new(TrackerConfig::default(), StoreSink(store));
    feed(&mut pipeline, &frames);
    pipeline.into_sink().0.close().expect("close reference");
    let expected = missed_calls(&ref_db);
    assert!(expected.len() >= 10);

    let (pbx, s, mut first) = start_logged_in().await;
    let committed = kill_mid_capture(&pbx, &s, &mut first, &frames).await;
    assert!(!committed.is_empty());
    pbx.kill_connection().await;

    // Restart on the same database and feed the whole capture again.
    let mut second = Daemon::start(&s.config, &s.log);
    pbx.wait_resyncs(2, Duration::from_secs(10)).await;
    let streaming = stream_capture(&pbx, &frames);
    wait_missed(&s.db, expected.len(), Duration::from_secs(30)).await;
    streaming.await.expect("stream");
    tokio::time::sleep(Duration::from_millis(300)).await;
    second.terminate().await;

    let after = missed_calls(&s.db);
    assert_committed_kept(&committed, &after);
    assert_eq!(after, expected, "same missed calls as one clean run");
    assert_eq!(
        count(&s.db, "SELECT count(*) FROM calls"),
        count(&ref_db, "SELECT count(*) FROM calls")
    );
    assert_eq!(tasks(&s.db), tasks(&ref_db), "tasks: no double counting");
    assert_eq!(
        count(&s.db, "SELECT count(*) FROM task_events"),
        count(&ref_db, "SELECT count(*) FROM task_events")
    );
}

fn replay(db: &Path, capture: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_missedcalld"))
        .arg("replay")
        .arg("--db")
        .arg(db)
        .arg(capture)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run missedcalld replay");
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_then_replay_matches_a_clean_replay() {
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("ami-fixtures/lab2/13-concurrent-mix.ami");
    let frames = capture("13-concurrent-mix.ami");
    let ref_dir = tempfile::tempdir().expect("tempdir");
    let ref_db = ref_dir.path().join("ref.sqlite");
    replay(&ref_db, &file);

    let (pbx, s, mut daemon) = start_logged_in().await;
    let committed = kill_mid_capture(&pbx, &s, &mut daemon, &frames).await;

    replay(&s.db, &file);
    let after = missed_calls(&s.db);
    assert_committed_kept(&committed, &after);
    assert_eq!(
        after,
        missed_calls(&ref_db),
        "same missed calls as a clean replay"
    );
    assert_eq!(tasks(&s.db), tasks(&ref_db), "tasks: no double counting");
    for sql in [
        "SELECT count(*) FROM calls",
        "SELECT count(*) FROM agent_attempts",
        "SELECT count(*) FROM task_events",
    ] {
        assert_eq!(count(&s.db, sql), count(&ref_db, sql), "{sql}");
    }
}
