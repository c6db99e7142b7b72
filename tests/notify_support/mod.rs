//! Shared by the notification tests: a real HTTP receiver on 127.0.0.1 (tiny_http) whose
//! answers a test scripts, the stand-in PBX of `missedcalld demo` on its own thread, the
//! compiled daemon, `replay --notify`, and reads of the outbox tables.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use missedcalld::ami::standin::{self, Pacing};
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

/// The capture most tests use: 14 calls, missed ones in the queue, ringing, timeout, withheld.
pub const MIX: &str = "ami-fixtures/lab1/13-concurrent-mix.ami";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_missedcalld")
}

/// One request the receiver saw.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// What we answered (`None`: left hanging).
    pub status: Option<u16>,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// How the receiver answers request number `n` (0-based).
pub enum Reply {
    /// Status, extra headers, body.
    Status(u16, Vec<(&'static str, String)>, String),
    /// Never answer.
    Hang,
}

pub fn ok() -> Reply {
    Reply::Status(200, Vec::new(), "{\"ok\":true,\"result\":{}}".into())
}

type Script = Box<dyn FnMut(usize, &Received) -> Reply + Send>;

/// A real HTTP/1.1 server on 127.0.0.1 (hyper), one connection task per client.
pub struct Receiver {
    pub port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    stop: Arc<tokio::sync::Notify>,
    thread: Option<JoinHandle<()>>,
}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<(usize, Script)>>,
) -> Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible> {
    use http_body_util::BodyExt;
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    let mut r = Received {
        path,
        headers,
        body,
        status: None,
        at: Instant::now(),
    };
    let reply = {
        let mut s = script.lock().expect("lock");
        let n = s.0;
        s.0 += 1;
        (s.1)(n, &r)
    };
    match reply {
        Reply::Status(code, extra, body) => {
            r.status = Some(code);
            got.lock().expect("lock").push(r);
            let mut resp =
                hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
            *resp.status_mut() = hyper::StatusCode::from_u16(code).expect("status");
            for (k, v) in extra {
                resp.headers_mut().insert(
                    hyper::header::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                    v.parse().expect("header value"),
                );
            }
            Ok(resp)
        }
        Reply::Hang => {
            got.lock().expect("lock").push(r);
            std::future::pending().await
        }
    }
}

impl Receiver {
    /// Listens on `port` (0: any free port) and answers with `script`.
    pub fn start(
        port: u16,
        script: impl FnMut(usize, &Received) -> Reply + Send + 'static,
    ) -> Receiver {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind receiver");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(tokio::sync::Notify::new());
        let (g, s) = (Arc::clone(&got), Arc::clone(&stop));
        let script: Arc<Mutex<(usize, Script)>> = Arc::new(Mutex::new((0, Box::new(script))));
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let mut conns = tokio::task::JoinSet::new();
                loop {
                    tokio::select! {
                        () = s.notified() => break,
                        accepted = listener.accept() => {
                            let Ok((socket, _)) = accepted else { continue };
                            let (g, script) = (Arc::clone(&g), Arc::clone(&script));
                            conns.spawn(async move {
                                let service = hyper::service::service_fn(move |req| {
                                    answer(req, Arc::clone(&g), Arc::clone(&script))
                                });
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                                    .await;
                            });
                        }
                    }
                }
                // Down: the listener and every open connection close.
                drop(listener);
                conns.abort_all();
            });
        });
        Receiver {
            port,
            got,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    /// Requests answered 2xx.
    pub fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.status.is_some_and(|s| (200..300).contains(&s)))
            .collect()
    }

    /// Waits until `pred` holds for the delivered requests.
    pub fn wait(&self, within: Duration, what: &str, pred: impl Fn(&[Received]) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            if pred(&self.delivered()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}; got {} request(s), {} delivered",
                self.received().len(),
                self.delivered().len()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Stops answering and closes the port (connections are refused afterwards).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A port nothing listens on (bound once, then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A daemon's files: its temporary directory, database and configuration.
pub struct DaemonFiles {
    _dir: tempfile::TempDir,
    pub db: PathBuf,
    pub config: PathBuf,
}

/// The stand-in PBX (`ami::standin`, as `missedcalld demo` uses it) serving `capture` at 2,000
/// events/s, and the configuration of a daemon for it: `[ami]`, `[store]`, then `notify`.
pub fn daemon_for(capture: &str, notify: &str) -> DaemonFiles {
    let raw = std::fs::read(root().join(capture)).expect("capture");
    let events = Arc::new(standin::capture_events(&raw));
    let pbx = standin::serve_on_thread(events, Pacing::PerSecond(2000.0), None)
        .expect("the stand-in PBX");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db.sqlite");
    let config = dir.path().join("d.toml");
    std::fs::write(
        &config,
        format!(
            "[ami]\nport = {pbx}\nsecret = \"test\"\n\n[store]\npath = {:?}\nbatch_max_delay_ms = 20\n\n{notify}",
            db.display().to_string()
        ),
    )
    .expect("config");
    DaemonFiles {
        _dir: dir,
        db,
        config,
    }
}

/// The compiled daemon; stderr goes to `<dir>/daemon.log`.
pub fn spawn_daemon(config: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.with_extension("log"))
        .expect("log file");
    Command::new(bin())
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the daemon")
}

pub fn daemon_log(config: &Path) -> String {
    std::fs::read_to_string(config.with_extension("log")).unwrap_or_default()
}

pub fn sigterm(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("the daemon did not stop on SIGTERM");
}

/// `missedcalld replay [--notify] --config CONFIG --db DB capture`.
pub fn replay(config: &Path, db: &Path, notify: bool, capture: &str) -> std::process::Output {
    let mut cmd = Command::new(bin());
    cmd.arg("replay")
        .arg("--config")
        .arg(config)
        .arg("--db")
        .arg(db);
    if notify {
        cmd.arg("--notify");
    }
    let out = cmd.arg(root().join(capture)).output().expect("replay");
    assert!(
        out.status.success(),
        "replay: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `missedcalld <args> --json` parsed.
pub fn cli_json(args: &[&str]) -> Value {
    let out = Command::new(bin()).args(args).output().expect("cli");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

pub fn read_db(db: &Path) -> Connection {
    Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open db")
}

/// `SELECT <sql>` as strings, one per row.
pub fn strings(db: &Path, sql: &str) -> Vec<String> {
    let c = read_db(db);
    let mut st = c.prepare(sql).expect(sql);
    st.query_map([], |r| r.get::<_, String>(0))
        .expect(sql)
        .map(|r| r.expect("row"))
        .collect()
}

pub fn count(db: &Path, sql: &str) -> i64 {
    read_db(db).query_row(sql, [], |r| r.get(0)).expect(sql)
}

/// Waits until the query's count reaches `n`.
pub fn wait_count(db: &Path, sql: &str, n: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let now = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row(sql, [], |r| r.get::<_, i64>(0)));
        if now.is_ok_and(|c| c >= n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: not {n} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The number of missed calls in the capture (from `missedcalld replay` into a scratch db).
pub fn missed_in(capture: &str) -> usize {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "").expect("config");
    let db = dir.path().join("x.sqlite");
    replay(&cfg, &db, false, capture);
    cli_json(&["missed", "--db", db.to_str().expect("utf8"), "--json"])
        .as_array()
        .expect("array")
        .len()
}
