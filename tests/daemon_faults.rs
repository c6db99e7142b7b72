//! The compiled daemon (`missedcalld run`) under store faults, fed by the stand-in PBX of
//! `missedcalld::ami::standin` on 127.0.0.1: the database file deleted mid-stream (later calls land in
//! a new file at the same path), and SIGTERM while the disk is full (the daemon exits within its
//! stop budget, keeps what was committed and logs each call it could not save), and AMI data
//! with raw control bytes (it reaches the log escaped). The full-disk test mounts a small tmpfs
//! and skips with a message where mounting is not allowed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use missedcalld::ami::standin::{self, Pacing, ServedEvent};

mod support;
use support::daemon::spawn_run;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Two lab captures with distinct calls, in the order of their timestamps.
fn two_captures() -> [(PathBuf, Vec<ServedEvent>); 2] {
    let load = |name: &str| {
        let path = root().join("ami-fixtures/lab2").join(name);
        let events = standin::capture_events(&std::fs::read(&path).expect("capture"));
        (path, events)
    };
    let mut both = [load("02-queue-abandon.ami"), load("13-concurrent-mix.ami")];
    let first_at = |e: &[ServedEvent]| e.iter().find_map(|e| e.at);
    if first_at(&both[1].1) < first_at(&both[0].1) {
        both.swap(0, 1);
    }
    both
}

// ---------------------------------------------------------------------------- stand-in PBX

/// The stand-in PBX on its own thread: serves `first` then `second`, and holds the stream
/// between them until [`Pbx::release`].
struct Pbx {
    port: u16,
    gate: mpsc::Sender<()>,
}

impl Pbx {
    fn start(first: &[ServedEvent], second: &[ServedEvent]) -> Pbx {
        let events: Vec<ServedEvent> = first.iter().chain(second).cloned().collect();
        let hold_after = first.len() - 1;
        let (gate, gate_rx) = mpsc::channel::<()>();
        let hook: standin::OnWritten = Box::new(move |i, _| {
            if i == hold_after {
                // Blocks the stand-in's thread only: the daemon is another process.
                let _ = gate_rx.recv();
            }
        });
        let port = standin::serve_on_thread(Arc::new(events), Pacing::PerSecond(400.0), Some(hook))
            .expect("the stand-in PBX starts");
        Pbx { port, gate }
    }

    /// Lets the second capture through.
    fn release(&self) {
        let _ = self.gate.send(());
    }
}

// ---------------------------------------------------------------------------- the daemon process

struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, port: u16, db: &Path) -> Daemon {
        let config = dir.join("missedcalld.toml");
        std::fs::write(
            &config,
            format!(
                "[ami]\nport = {port}\nsecret = \"demo\"\nreconnect_min_secs = 0.05\n\
                 reconnect_max_secs = 0.3\n\n[store]\npath = {:?}\nbatch_max_delay_ms = 20\n\n\
                 [log]\nlevel = \"info\"\nformat = \"full\"\n",
                db.display().to_string()
            ),
        )
        .expect("config");
        let log = dir.join("daemon.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = spawn_run(&config, log_file, None);
        Daemon { child, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -TERM failed");
    }

    /// The exit status, or `None` if still running after `within`.
    fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_log(&self, needle: &str, within: Duration) {
        wait_for(
            within,
            || self.log_text().contains(needle),
            || format!("{needle:?} not logged; log:\n{}", self.log_text()),
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `done` until it holds, or panics with `why()` after `within` (generous: the machine is
/// shared).
fn wait_for(within: Duration, mut done: impl FnMut() -> bool, why: impl Fn() -> String) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "after {within:?}: {}", why());
        std::thread::sleep(Duration::from_millis(25));
    }
}

// ---------------------------------------------------------------------------- database checks

/// Linkedids of the missed calls stored in `db` (empty when there is no readable database).
fn missed(db: &Path) -> BTreeSet<String> {
    if !db.exists() {
        return BTreeSet::new();
    }
    let Ok(c) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return BTreeSet::new();
    };
    let Ok(mut st) = c.prepare(
        "SELECT c.linkedid FROM missed_calls m JOIN calls c ON c.id = m.call_id WHERE c.gap = 0",
    ) else {
        return BTreeSet::new();
    };
    st.query_map([], |r| r.get::<_, String>(0))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// The missed calls (without the `gap` flag) a clean `replay` of `capture` stores.
fn reference(dir: &Path, capture: &Path) -> BTreeSet<String> {
    let db = dir.join(format!(
        "ref-{}.sqlite",
        capture.file_stem().unwrap_or_default().to_string_lossy()
    ));
    let ok = Command::new(env!("CARGO_BIN_EXE_missedcalld"))
        .arg("replay")
        .arg("--db")
        .arg(&db)
        .arg(capture)
        .env_remove("RUST_LOG")
        .status()
        .expect("replay")
        .success();
    assert!(ok, "replay {}", capture.display());
    let calls = missed(&db);
    assert!(!calls.is_empty(), "{} has missed calls", capture.display());
    calls
}

// ---------------------------------------------------------------------------- tests

/// The daemon running on `db`, with the first capture's missed calls committed and the stand-in
/// PBX holding the second one back.
struct FirstCaptureStored {
    pbx: Pbx,
    daemon: Daemon,
    /// Missed calls of the first capture (a clean replay's).
    ref_a: BTreeSet<String>,
    /// Missed calls of the second capture.
    ref_b: BTreeSet<String>,
}

fn first_capture_stored(dir: &Path, db: &Path) -> FirstCaptureStored {
    let [(path_a, events_a), (path_b, events_b)] = two_captures();
    let (ref_a, ref_b) = (reference(dir, &path_a), reference(dir, &path_b));
    let pbx = Pbx::start(&events_a, &events_b);
    let daemon = Daemon::start(dir, pbx.port, db);
    wait_for(
        Duration::from_secs(60),
        || missed(db).is_superset(&ref_a),
        || {
            format!(
                "the first capture's calls stored; log:\n{}",
                daemon.log_text()
            )
        },
    );
    FirstCaptureStored {
        pbx,
        daemon,
        ref_a,
        ref_b,
    }
}

#[test]
fn a_deleted_database_file_is_recreated_and_later_calls_land_in_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state/missedcalld.sqlite");
    std::fs::create_dir_all(db.parent().expect("parent")).expect("mkdir");
    let FirstCaptureStored {
        pbx,
        mut daemon,
        ref_a,
        ref_b,
    } = first_capture_stored(dir.path(), &db);

    // The admin's mistake: the database file goes, its -wal and -shm stay.
    std::fs::remove_file(&db).expect("delete the database");
    pbx.release();

    wait_for(
        Duration::from_secs(60),
        || missed(&db).is_superset(&ref_b),
        || {
            format!(
                "the second capture's calls in a new file at the path (found {:?}); log:\n{}",
                missed(&db),
                daemon.log_text()
            )
        },
    );
    let log = daemon.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("deleted or replaced")),
        "one ERROR says so:\n{log}"
    );
    assert!(
        missed(&db).is_disjoint(&ref_a),
        "the new file starts empty (nothing resurrected from the old WAL)"
    );

    daemon.terminate();
    let status = daemon.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        daemon.log_text()
    );
}

/// A tmpfs of `size` mounted on `dir`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs ({}); the full-disk test needs root",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes to `path` until the filesystem is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("filler");
    let chunk = vec![0x55u8; 16 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.flush();
}

#[test]
fn sigterm_on_a_full_disk_exits_within_the_stop_budget_and_names_what_was_not_saved() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(fs) = Tmpfs::mount(&dir.path().join("small"), "4m") else {
        return;
    };
    let db = fs.0.join("missedcalld.sqlite");
    let FirstCaptureStored {
        pbx,
        mut daemon,
        ref_a,
        ref_b,
    } = first_capture_stored(dir.path(), &db);

    fill(&fs.0.join("filler"));
    pbx.release();
    daemon.wait_log("cannot commit to the database yet", Duration::from_secs(60));

    let asked = Instant::now();
    daemon.terminate();
    let status = daemon.wait_exit(Duration::from_secs(18));
    let took = asked.elapsed();
    let log = daemon.log_text();
    let status = status.unwrap_or_else(|| panic!("still running {took:?} after SIGTERM:\n{log}"));
    eprintln!("exited {took:?} after SIGTERM with {status:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}:\n{log}");
    assert_eq!(
        status.code(),
        Some(1),
        "losing calls is a failed stop:\n{log}"
    );
    assert!(log.contains("could not be saved"), "{log}");
    let not_saved: BTreeSet<String> = log
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("not saved"))
        .filter_map(|l| {
            let id = l.split("linkedid=").nth(1)?;
            Some(id.split_whitespace().next()?.trim_matches('"').to_string())
        })
        .collect();
    assert!(
        !not_saved.is_empty() && ref_b.iter().any(|id| not_saved.contains(id)),
        "each unsaved call is named ({not_saved:?} vs {ref_b:?}):\n{log}"
    );

    std::fs::remove_file(fs.0.join("filler")).expect("free the space");
    assert!(
        missed(&db).is_superset(&ref_a),
        "what was committed before the disk filled is kept"
    );
}

#[test]
fn control_bytes_in_ami_data_reach_the_log_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("missedcalld.sqlite");
    // A value that would clear the terminal, turn it red and forge a second log line.
    let hostile = ServedEvent {
        bytes: Bytes::from_static(
            b"Event: Shutdown\r\nPrivilege: system,all\r\n\
              Shutdown: Cleanly\x1b[2J\x1b[31m\x07\x0bERROR forged\r\nRestart: False\r\n\r\n",
        ),
        at: None,
    };
    let pbx = Pbx::start(std::slice::from_ref(&hostile), &[]);
    let mut daemon = Daemon::start(dir.path(), pbx.port, &db);
    daemon.wait_log("PBX is shutting down", Duration::from_secs(60));
    pbx.release();
    daemon.terminate();
    let status = daemon.wait_exit(Duration::from_secs(20));
    assert!(status.is_some(), "{}", daemon.log_text());

    let log = std::fs::read(&daemon.log).expect("log");
    let line = log
        .split(|b| *b == b'\n')
        .find(|l| l.windows(20).any(|w| w == b"PBX is shutting down"))
        .expect("the shutdown line");
    let line = String::from_utf8_lossy(line);
    assert!(
        !line.contains(|c: char| c.is_control()),
        "no raw control byte: {line:?}"
    );
    assert!(
        line.contains(r"Cleanly\x1b[2J\x1b[31m\x07\x0bERROR forged"),
        "{line:?}"
    );
    assert!(!log.contains(&0x1b), "no ESC anywhere in the log");
}
