//! The daemon as its own process under load (prints numbers, asserts nothing):
//! 1. CPU at a live feed of RATE events/s, each event written on its own as Asterisk does:
//!    user+sys time of the daemon process (`/proc/PID/stat`) over MEASURE after a WARMUP,
//!    split by thread, then over IDLE with the feed finished (still connected, pings only);
//!    then the floor under it: the same feed read by a thread of this bench exactly as the
//!    daemon's reader reads it, bytes dropped, and once more also parsing them.
//! 2. Bursts of 100,000 and 1,000,000 events written as fast as the socket takes them, each
//!    into a fresh daemon: peak RSS (`VmHWM`), RSS once drained and a few seconds later, the
//!    drain rate (events / time from the first byte written to the last missed call visible)
//!    and the events the queue spilled to its file.
//!
//! The feed is `ami-fixtures/lab1/13-concurrent-mix.ami` amplified by the shared tool (the
//! same 1M-event stream as the tracker bench), served by the stand-in PBX (`ami::standin`) with the capture's own timestamps. A `memchr` scan of the 1M burst's bytes is timed
//! in the same run for scale.
//!
//! Run: `cargo bench --bench daemon_load` (about 6 minutes). `DAEMON_LOAD_SECS` shortens
//! the CPU measurement (default 60); `DAEMON_LOAD_PARTS=live` or `=burst` runs only that part;
//! `DAEMON_LOAD_BIN` measures another build of `missedcalld`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use missedcalld::ami::client::{DEFAULT_READ_PAUSE, PAUSE_BELOW_BYTES};
use missedcalld::ami::standin::{self, Pacing, ServedEvent};
use rusqlite::{Connection, OpenFlags};

const COPIES: usize = 139;
/// Events per second of the live feed.
const RATE: f64 = 5_000.0;
/// Feed time before the CPU measurement starts (connect, resync, first commits).
const WARMUP: Duration = Duration::from_secs(5);
/// Idle time measured after the feed.
const IDLE: Duration = Duration::from_secs(20);
/// A burst is given up after this long.
const BURST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long after draining the RSS is read again (memory given back).
const SETTLE: Duration = Duration::from_secs(3);

fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read(common::amplified(root, COPIES, "mix-1m.ami")?)?;
    let events = standin::capture_events(&raw);
    println!(
        "stream: {} events ({:.1} MB), {COPIES} copies of {}",
        events.len(),
        raw.len() as f64 / 1e6,
        common::CAPTURE
    );
    let measure = std::env::var("DAEMON_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(60), Duration::from_secs);
    let parts = std::env::var("DAEMON_LOAD_PARTS").unwrap_or_default();
    if parts.is_empty() || parts.contains("live") {
        let daemon = live_cpu(&events, measure)?;
        let read = read_floor(&events, measure, false)?;
        let framed = read_floor(&events, measure, true)?;
        println!(
            "floor at the same feed, a thread that only reads it like the daemon's reader: \
             {:.2}% of one core; reads and frames + parses it: {:.2}%; daemon / read floor: {:.1}",
            read * 100.0,
            framed * 100.0,
            daemon / read
        );
    }
    if parts.is_empty() || parts.contains("burst") {
        for n in [100_000, 1_000_000] {
            burst(&events[..n.min(events.len())])?;
        }
    }
    memchr_scan(&raw);
    Ok(())
}

/// A daemon process with its stand-in PBX and database.
struct Daemon {
    child: Child,
    db: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts the stand-in PBX serving `events` at `pacing`, then `missedcalld run`.
    fn start(events: Vec<ServedEvent>, pacing: Pacing) -> anyhow::Result<Daemon> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("bench.sqlite");
        let config = dir.path().join("missedcalld.toml");
        let port = standin::serve_on_thread(Arc::new(events), pacing, None)?;
        std::fs::write(
            &config,
            format!(
                "[ami]\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"missedcalls\"\n\
                 secret = \"bench\"\n\n[store]\npath = {:?}\n",
                db.display().to_string()
            ),
        )?;
        let child = Command::new(daemon_binary())
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        Ok(Daemon {
            child,
            db,
            _dir: dir,
        })
    }

    /// User + system CPU time of the process so far.
    fn cpu(&self) -> anyhow::Result<Duration> {
        cpu_of_stat(&std::fs::read_to_string(format!(
            "/proc/{}/stat",
            self.child.id()
        ))?)
    }

    /// Time on the CPU of each thread so far, by thread name, to the nanosecond
    /// (`/proc/PID/task/*/schedstat`; `stat` counts in 10 ms ticks).
    fn cpu_by_thread(&self) -> anyhow::Result<BTreeMap<String, Duration>> {
        let mut by_name = BTreeMap::new();
        for task in std::fs::read_dir(format!("/proc/{}/task", self.child.id()))? {
            let dir = task?.path();
            // A thread that ended meanwhile is left out.
            let (Ok(name), Ok(sched)) = (
                std::fs::read_to_string(dir.join("comm")),
                std::fs::read_to_string(dir.join("schedstat")),
            ) else {
                continue;
            };
            *by_name.entry(name.trim_end().to_string()).or_default() += on_cpu(&sched)?;
        }
        Ok(by_name)
    }

    /// A `kB` line of `/proc/PID/status` (`VmHWM`, `VmRSS`) in MiB.
    fn mem_mib(&self, key: &str) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with(key))
            .ok_or_else(|| anyhow::anyhow!("no {key}"))?;
        let kb: f64 = line
            .split_whitespace()
            .nth(1)
            .unwrap_or("0")
            .parse()
            .unwrap_or(0.0);
        Ok(kb / 1024.0)
    }

    /// Calls committed so far (0 before the schema exists).
    fn calls(&self, conn: &mut Option<Connection>) -> i64 {
        if conn.is_none() && self.db.exists() {
            *conn = Connection::open_with_flags(&self.db, OpenFlags::SQLITE_OPEN_READ_ONLY).ok();
        }
        conn.as_ref()
            .and_then(|c| {
                c.query_row("SELECT count(*) FROM calls", [], |r| r.get(0))
                    .ok()
            })
            .unwrap_or(0)
    }

    /// SIGTERM and wait.
    fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        self.child.wait()?;
        Ok(())
    }
}

/// The daemon under test: this checkout's, or `DAEMON_LOAD_BIN` (to compare two builds in
/// one sitting, alternating).
fn daemon_binary() -> PathBuf {
    std::env::var_os("DAEMON_LOAD_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_missedcalld")),
        PathBuf::from,
    )
}

/// User + system time of a `/proc/.../stat` line.
fn cpu_of_stat(stat: &str) -> anyhow::Result<Duration> {
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').unwrap_or(0) + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>()? + f[12].parse::<u64>()?;
    Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks()))
}

/// `sysconf(_SC_CLK_TCK)`, which is 100 on Linux.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The live feed for a measurement of `measure` after the warm-up.
fn live_feed(events: &[ServedEvent], measure: Duration) -> Vec<ServedEvent> {
    let total = (RATE * (WARMUP + measure).as_secs_f64()) as usize + 1_000;
    events[..total.min(events.len())].to_vec()
}

/// Prints the daemon's CPU at the live feed and idle; returns the live share of one core.
fn live_cpu(events: &[ServedEvent], measure: Duration) -> anyhow::Result<f64> {
    let d = Daemon::start(live_feed(events, measure), Pacing::PerSecond(RATE))?;
    std::thread::sleep(WARMUP);
    let (c0, threads0, t0) = (d.cpu()?, d.cpu_by_thread()?, Instant::now());
    std::thread::sleep(measure);
    let (c1, threads1, t1) = (d.cpu()?, d.cpu_by_thread()?, Instant::now());
    let busy = (c1 - c0).as_secs_f64() / (t1 - t0).as_secs_f64();
    let by_thread: Vec<String> = threads1
        .iter()
        .map(|(name, c)| {
            let before = threads0.get(name).copied().unwrap_or_default();
            let share = c.saturating_sub(before).as_secs_f64() / (t1 - t0).as_secs_f64();
            (name, share)
        })
        .filter(|(_, share)| *share >= 0.000_05)
        .map(|(name, share)| format!("{name} {:.3}%", share * 100.0))
        .collect();
    let mut conn = None;
    let calls = d.calls(&mut conn);
    // Let the feed end, then measure the idle daemon.
    std::thread::sleep(Duration::from_secs(2));
    let (c2, t2) = (d.cpu()?, Instant::now());
    std::thread::sleep(IDLE);
    let (c3, t3) = (d.cpu()?, Instant::now());
    let idle = (c3 - c2).as_secs_f64() / (t3 - t2).as_secs_f64();
    println!(
        "live feed {RATE:.0} events/s, each written on its own: daemon CPU (user+sys) {:.2}% of \
         one core over {:.0} s ({:.2} µs per event); {calls} calls committed",
        busy * 100.0,
        (t1 - t0).as_secs_f64(),
        busy * 1e6 / RATE
    );
    println!("  by thread: {}", by_thread.join(", "));
    println!(
        "idle (connected, no events): {:.3}% of one core over {:.0} s",
        idle * 100.0,
        (t3 - t2).as_secs_f64()
    );
    d.stop()?;
    Ok(busy)
}

/// What the reading alone costs on this machine, the floor under the daemon's CPU: a thread
/// reads the same live feed as the daemon's reader does (a [`DEFAULT_READ_PAUSE`] sleep after
/// each read under [`PAUSE_BELOW_BYTES`], 128 KiB reads) and drops the bytes, or with
/// `frame` also cuts them into parsed messages with the daemon's codec. Returns its time on
/// the CPU as a share of one core over `measure`.
fn read_floor(events: &[ServedEvent], measure: Duration, frame: bool) -> anyhow::Result<f64> {
    use std::io::{Read, Write};
    use tokio_util::codec::Decoder;
    let port = standin::serve_on_thread(
        Arc::new(live_feed(events, measure)),
        Pacing::PerSecond(RATE),
        None,
    )?;
    let reader = std::thread::spawn(move || -> anyhow::Result<f64> {
        let mut socket = std::net::TcpStream::connect(("127.0.0.1", port))?;
        // The stand-in starts the feed after the first channel list.
        socket.write_all(b"Action: CoreShowChannels\r\nActionID: 1\r\n\r\n")?;
        let mut codec = missedcalld::ami::AmiCodec::new();
        let mut buf = bytes::BytesMut::new();
        let mut chunk = vec![0u8; 128 * 1024];
        let started = Instant::now();
        let mut first: Option<(Duration, Instant)> = None;
        loop {
            let n = socket.read(&mut chunk)?;
            if n == 0 {
                anyhow::bail!("the feed ended before the measurement did");
            }
            if frame {
                buf.extend_from_slice(&chunk[..n]);
                while let Some(msg) = codec.decode(&mut buf)? {
                    std::hint::black_box(msg);
                }
            }
            match first {
                None if started.elapsed() >= WARMUP => {
                    first = Some((thread_cpu()?, Instant::now()))
                }
                Some((c0, t0)) if t0.elapsed() >= measure => {
                    return Ok((thread_cpu()? - c0).as_secs_f64() / t0.elapsed().as_secs_f64());
                }
                _ => {}
            }
            if n < PAUSE_BELOW_BYTES {
                std::thread::sleep(DEFAULT_READ_PAUSE);
            }
        }
    });
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the floor reader panicked"))?
}

/// Time on the CPU of the calling thread, to the nanosecond.
fn thread_cpu() -> anyhow::Result<Duration> {
    on_cpu(&std::fs::read_to_string("/proc/thread-self/schedstat")?)
}

/// Time on the CPU of a `/proc/.../schedstat` line (its first field, in nanoseconds).
fn on_cpu(schedstat: &str) -> anyhow::Result<Duration> {
    let ns = schedstat.split_whitespace().next().unwrap_or("0").parse()?;
    Ok(Duration::from_nanos(ns))
}

/// Calls a tracker finishes from `events` alone (what the daemon commits once drained).
fn expected_calls(events: &[ServedEvent]) -> i64 {
    use missedcalld::calls::{Tracker, TrackerConfig};
    let mut tracker = Tracker::new(TrackerConfig::default());
    let mut out = Vec::new();
    for ev in events {
        if let Ok(msg) = missedcalld::ami::parse_message(ev.bytes.clone()) {
            tracker.on_message(&msg, ev.at.unwrap_or_default(), &mut out);
        }
    }
    out.len() as i64
}

fn burst(events: &[ServedEvent]) -> anyhow::Result<()> {
    let expected = expected_calls(events);
    let mut all = Vec::with_capacity(events.iter().map(|e| e.bytes.len()).sum());
    for e in events {
        all.extend_from_slice(&e.bytes);
    }
    // One event holding the whole burst: written at once, as fast as the socket takes it.
    let one = ServedEvent {
        bytes: Bytes::from(all),
        at: None,
    };
    let d = Daemon::start(vec![one], Pacing::PerSecond(1.0))?;
    let started = Instant::now();
    let mut conn = None;
    let mut calls = 0;
    while started.elapsed() < BURST_TIMEOUT {
        calls = d.calls(&mut conn);
        if calls >= expected {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let secs = started.elapsed().as_secs_f64();
    let (peak, drained) = (d.mem_mib("VmHWM")?, d.mem_mib("VmRSS")?);
    std::thread::sleep(SETTLE);
    let settled = d.mem_mib("VmRSS")?;
    let spill = spilled(&d);
    println!(
        "burst of {} events: {calls} of {expected} calls committed in {secs:.2} s \
         ({:.0} events/s, connect included); peak RSS {peak:.1} MiB, RSS drained {drained:.1} \
         MiB, {:.0} s later {settled:.1} MiB; {spill}",
        events.len(),
        events.len() as f64 / secs,
        SETTLE.as_secs_f64()
    );
    d.stop()
}

/// What the log would say; here: whether the spill file is still there and its size.
fn spilled(d: &Daemon) -> String {
    let file =
        d.db.parent()
            .unwrap_or(Path::new("."))
            .join(missedcalld::spill::SPILL_FILE_NAME);
    match std::fs::metadata(&file) {
        Ok(m) => format!("spill file {} bytes after draining", m.len()),
        Err(_) => "no spill file".to_string(),
    }
}

fn memchr_scan(raw: &[u8]) {
    let t = Instant::now();
    let n = memchr::memmem::find_iter(raw, b"\r\n\r\n").count();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "memchr scan for message ends: {n} in {:.1} ms ({:.2} GB/s, {:.1} M messages/s)",
        secs * 1e3,
        raw.len() as f64 / secs / 1e9,
        n as f64 / secs / 1e6
    );
}
