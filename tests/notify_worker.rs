//! The delivery worker on a fixed clock, against real receivers on 127.0.0.1: quiet hours hold
//! until the calendar opens, the daily digest equals `report --json` for yesterday,
//! `task_overdue` goes out once; Telegram through a stand-in Bot API (manager chat gets all,
//! agent chats only their calls, 429 `retry_after` honoured, texts in en and ru); exec with the
//! exact `MC_*` environment, killed at its time limit and retried.
//!
//! The captures are served as recorded: Sunday 2026-11-22, 22:23-22:26 in Moscow, outside the
//! default hours (Mon-Fri 09:00-18:00), so their tasks are due Monday 10:00.

mod notify_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use missedcalld::callbacks::sla::Calendar;
use missedcalld::config::Config;
use missedcalld::notify::outbox::Routes;
use missedcalld::notify::worker::{self, Clock, DrainSummary, WorkerSettings};
use missedcalld::pipeline::Pipeline;
use missedcalld::replay::replay_into;
use missedcalld::store::Store;
use missedcalld::time::EventTime;
use notify_support::*;
use serde_json::{Value, json};

fn at(s: &str) -> EventTime {
    EventTime::from_utc(&chrono::DateTime::parse_from_rfc3339(s).expect("time"))
}

struct Setup {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    cfg: Config,
    now: Arc<AtomicI64>,
}

impl Setup {
    /// Parses `toml`, replays `capture` writing outbox rows (nothing delivered yet).
    fn new(toml: &str, capture: &str) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("db.sqlite");
        let cfg = Config::from_toml_str(toml, Path::new("t.toml"), None).expect("config");
        let mut settings = missedcalld::daemon::store_settings(&cfg).expect("settings");
        settings.path = db.clone();
        settings.notify = Some(Arc::new(Routes::new(&cfg.notify)));
        let store = Store::open(settings).expect("store");
        let mut pipeline = Pipeline::new(cfg.calls.clone(), store);
        replay_into(&[root().join(capture)], &mut pipeline).expect("replay");
        pipeline.into_sink().close().expect("close");
        Setup {
            _dir: dir,
            db,
            cfg,
            now: Arc::new(AtomicI64::new(0)),
        }
    }

    fn drain(&self, now: &str, scans: bool) -> DrainSummary {
        self.now.store(at(now).0, Ordering::SeqCst);
        let t = Arc::clone(&self.now);
        let clock: Clock = Arc::new(move || EventTime(t.load(Ordering::SeqCst)));
        worker::drain(WorkerSettings {
            db: self.db.clone(),
            config: self.cfg.notify.clone(),
            calendar: Calendar::new(&self.cfg.calendar).expect("calendar"),
            clock,
            scans,
        })
        .expect("drain")
    }

    fn dbs(&self) -> &str {
        self.db.to_str().expect("utf8")
    }

    fn missed(&self) -> Vec<Value> {
        cli_json(&["missed", "--db", self.dbs(), "--json"])
            .as_array()
            .expect("array")
            .clone()
    }
}

fn events(got: &[Received]) -> Vec<String> {
    got.iter()
        .map(|r| r.json()["event"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn quiet_hours_digest_and_overdue_on_a_fixed_clock() {
    let quiet = Receiver::start(0, |_, _| ok());
    let loud = Receiver::start(0, |_, _| ok());
    let digest = Receiver::start(0, |_, _| ok());
    let s = Setup::new(
        &format!(
            "[calendar]\ntimezone = \"Europe/Moscow\"\n[notify]\ndaily_digest_at = \"09:00\"\n\
             [[notify.webhook]]\nurl = {:?}\ntimeout_secs = 30\nquiet_outside_hours = true\nevents = [\"missed_call\", \"task_overdue\"]\n\
             [[notify.webhook]]\nurl = {:?}\ntimeout_secs = 30\nevents = [\"missed_call\", \"task_overdue\"]\n\
             [[notify.webhook]]\nurl = {:?}\ntimeout_secs = 30\nevents = [\"daily_digest\"]\n",
            quiet.url("/"),
            loud.url("/"),
            digest.url("/")
        ),
        MIX,
    );
    let n = s.missed().len();
    assert!(n > 10, "{n}");

    // Sunday 23:00 in Moscow: the loud sink hears at once, the quiet one waits for Monday 09:00.
    let left = s.drain("2026-11-22T23:00:00+03:00", false);
    let errors = strings(
        &s.db,
        "SELECT DISTINCT coalesce(last_error, '') FROM outbox",
    );
    assert_eq!(
        loud.delivered().len(),
        n,
        "{} received, errors: {errors:?}",
        loud.received().len()
    );
    assert!(quiet.received().is_empty());
    assert_eq!(
        left,
        DrainSummary {
            pending: n as u64,
            failed: 0
        }
    );
    let held = strings(
        &s.db,
        "SELECT DISTINCT next_attempt_at FROM outbox WHERE status = 'pending'",
    );
    assert_eq!(
        held,
        ["2026-11-23T06:00:00.000Z"],
        "held until Monday 09:00 local"
    );

    // Monday 09:00:30: the quiet sink gets everything; yesterday's digest goes out.
    let left = s.drain("2026-11-23T09:00:30+03:00", true);
    assert_eq!(
        left,
        DrainSummary {
            pending: 0,
            failed: 0
        }
    );
    assert_eq!(quiet.delivered().len(), n);
    let quiet_ids: BTreeSet<String> = quiet
        .delivered()
        .iter()
        .map(|r| r.json()["id"].to_string())
        .collect();
    let loud_ids: BTreeSet<String> = loud
        .delivered()
        .iter()
        .map(|r| r.json()["id"].to_string())
        .collect();
    assert_eq!(quiet_ids, loud_ids, "the same notifications, the same ids");
    let got = digest.delivered();
    assert_eq!(events(&got), ["daily_digest"]);
    let d = got[0].json();
    assert_eq!(d["missed_call"], Value::Null);
    assert_eq!(d["task"], Value::Null);
    let report = cli_json(&[
        "report",
        "--db",
        s.dbs(),
        "--since",
        "2026-11-22",
        "--until",
        "2026-11-22",
        "--json",
    ]);
    let figures = d["digest"].clone();
    assert_eq!(figures["day"], "2026-11-22");
    // The figures of `report --json` for the day; which tasks count as "never" depends on the
    // moment (the digest is judged at 09:00:30, the command at the wall clock).
    for key in [
        "inbound",
        "answered",
        "missed",
        "avg_wait_missed_seconds",
        "heatmap",
        "timezone",
    ] {
        assert_eq!(figures[key], report[key], "{key}");
    }
    assert_eq!(figures["by"][0]["key"], "2026-11-22");
    assert_eq!(figures["by"][0]["missed"], report["by"][0]["missed"]);
    assert_eq!(
        figures["callback_open"],
        figures["open_tasks"].as_array().map(Vec::len).unwrap_or(0)
    );
    let open = figures["open_tasks"]
        .as_array()
        .expect("open tasks")
        .clone();

    let tasks = cli_json(&["tasks", "--db", s.dbs(), "--json"]);
    let open_ids: Vec<&Value> = tasks
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|t| t["closed_at"].is_null())
        .map(|t| &t["id"])
        .collect();
    assert_eq!(open.iter().map(|t| &t["id"]).collect::<Vec<_>>(), open_ids);
    assert!(
        open.iter().all(|t| t["overdue"] == false),
        "not due before 10:00"
    );
    assert!(!open_ids.is_empty());

    // Monday 10:00:30: each open task goes overdue, announced once.
    s.drain("2026-11-23T10:00:30+03:00", true);
    s.drain("2026-11-23T10:01:00+03:00", true);
    let overdue: Vec<Value> = loud
        .delivered()
        .iter()
        .map(Received::json)
        .filter(|p| p["event"] == "task_overdue")
        .collect();
    assert_eq!(overdue.len(), open_ids.len(), "once per task");
    for p in &overdue {
        assert_eq!(p["task"]["status"], "overdue");
        assert_eq!(p["task"]["deadline"], "2026-11-23T07:00:00.000Z");
        assert_eq!(p["missed_call"], Value::Null);
    }
    assert_eq!(
        quiet
            .delivered()
            .iter()
            .filter(|r| r.json()["event"] == "task_overdue")
            .count(),
        open_ids.len(),
        "the calendar is open: the quiet sink hears at once"
    );
    assert_eq!(digest.delivered().len(), 1, "one digest per day");
}

const TOKEN: &str = "123456:TESTtoken_x";

fn telegram_setup(rx: &Receiver, language: &str) -> Setup {
    Setup::new(
        &format!(
            "[calendar]\ntimezone = \"Europe/Moscow\"\n[notify]\nlanguage = {language:?}\n\
             [[notify.telegram]]\nbot_token = {TOKEN:?}\nchat_ids = [-100500]\n\
             agents = {{ \"101\" = 1001, \"103\" = 1003 }}\napi_url = {:?}\ntimeout_secs = 30\n",
            rx.url("")
        ),
        MIX,
    )
}

/// `chat -> texts` of the delivered `sendMessage` calls.
fn chats(rx: &Receiver) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in rx.delivered() {
        assert_eq!(r.path, format!("/bot{TOKEN}/sendMessage"));
        let b = r.json();
        assert_eq!(b["parse_mode"], "HTML");
        out.entry(b["chat_id"].to_string())
            .or_default()
            .push(b["text"].as_str().unwrap_or("").to_string());
    }
    out
}

#[test]
fn telegram_routes_managers_and_agents_and_honours_retry_after() {
    let rx = Receiver::start(0, |n, _| {
        if n == 0 {
            Reply::Status(
                429,
                Vec::new(),
                json!({"ok": false, "error_code": 429,
                       "description": "Too Many Requests: retry after 3",
                       "parameters": {"retry_after": 3}})
                .to_string(),
            )
        } else {
            ok()
        }
    });
    let s = telegram_setup(&rx, "en");
    let missed = s.missed();
    let rang = |ext: &str| {
        missed
            .iter()
            .filter(|m| {
                m["agents"]
                    .as_array()
                    .expect("agents")
                    .iter()
                    .any(|a| a["agent"] == ext)
            })
            .count()
    };
    let left = s.drain("2026-11-23T12:00:00+03:00", false);
    assert_eq!(left.pending, 1, "the 429 waits");
    let retry: Vec<String> = strings(
        &s.db,
        "SELECT next_attempt_at FROM outbox WHERE status = 'pending'",
    );
    assert_eq!(retry, ["2026-11-23T09:00:03.000Z"], "retry_after = 3 s");
    let err = strings(
        &s.db,
        "SELECT last_error FROM outbox WHERE status = 'pending'",
    );
    assert!(
        err[0].contains("429") && !err[0].contains("TESTtoken"),
        "{err:?}"
    );
    s.drain("2026-11-23T12:00:03+03:00", false);
    let c = chats(&rx);
    assert_eq!(
        c.get("-100500").map(Vec::len),
        Some(missed.len()),
        "managers get all"
    );
    assert_eq!(
        c.get("1001").map(Vec::len),
        Some(rang("101")),
        "agent 101: its calls"
    );
    assert_eq!(
        c.get("1003").map(Vec::len),
        Some(rang("103")),
        "agent 103: its calls"
    );
    assert!(rang("101") < missed.len() && rang("103") > 0);
    assert_eq!(c.len(), 3);
    let texts = &c["-100500"];
    for expected in [
        "Missed call <b>+7 916 200-00-37</b> → 74957654321. Waited 15 s, hung up while 101 and \
         102 rang (15 s each). First call from this number. Call back by 10:00 Mon 23.11.",
        "Missed call <b>+7 916 200-00-38</b> → sales (74951234567). Waited 37 s, hung up waiting \
         in the queue. Rang 101, 102 and 103 (101: 10 s, 102: 0 s, 103: 0 s). 2nd miss from this \
         number. Call back by 10:00 Mon 23.11.",
        "Missed call <b>withheld number</b> → sales (74951234567). Waited 17 s, hung up waiting \
         in the queue.",
    ] {
        assert!(
            texts.iter().any(|t| t == expected),
            "{expected}\n{texts:#?}"
        );
    }
}

#[test]
fn telegram_text_in_russian() {
    let rx = Receiver::start(0, |_, _| ok());
    let s = telegram_setup(&rx, "ru");
    s.drain("2026-11-23T12:00:00+03:00", false);
    let texts = &chats(&rx)["-100500"];
    assert!(
        texts.contains(
            &"Пропущенный звонок <b>+7 916 200-00-37</b> → 74957654321. Ждал 15 с, положил \
              трубку, пока звонили 101 и 102 (по 15 с). Звонит впервые. Перезвонить до 10:00 пн \
              23.11."
                .to_string()
        ),
        "{texts:#?}"
    );
}

fn script(dir: &Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}")).expect("script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p.display().to_string()
}

#[test]
fn exec_gets_the_exact_environment() {
    let out = tempfile::tempdir().expect("tempdir");
    let cmd = script(
        out.path(),
        "on-missed",
        &format!(
            "env | grep '^MC_' | grep -v '^MC_JSON=' | sort > {0}/$MC_ID.env\nprintf '%s' \"$MC_JSON\" > {0}/$MC_ID.json\n",
            out.path().display()
        ),
    );
    let s = Setup::new(
        &format!("[[notify.exec]]\ncommand = [{cmd:?}, \"--crm\"]\ntimeout_secs = 20\n"),
        "ami-fixtures/lab1/10-repeat-missed-same-number.ami",
    );
    let left = s.drain("2026-11-23T12:00:00+03:00", false);
    assert_eq!(
        left,
        DrainSummary {
            pending: 0,
            failed: 0
        }
    );
    let missed = s.missed();
    let tasks = cli_json(&["tasks", "--db", s.dbs(), "--json"]);
    let ids = strings(
        &s.db,
        "SELECT id FROM notifications ORDER BY created_at, rowid",
    );
    assert_eq!(ids.len(), missed.len());
    for id in ids {
        let payload: Value = serde_json::from_str(
            &std::fs::read_to_string(out.path().join(format!("{id}.json"))).expect("MC_JSON"),
        )
        .expect("json");
        let call = &payload["missed_call"];
        let m = missed
            .iter()
            .find(|m| m["linkedid"] == call["linkedid"])
            .expect("the call");
        let task = tasks
            .as_array()
            .expect("tasks")
            .iter()
            .find(|t| t["id"] == m["task_id"])
            .expect("task");
        let mut agents: Vec<&str> = Vec::new();
        for a in m["agents"].as_array().expect("agents") {
            let a = a["agent"].as_str().expect("agent");
            if !agents.contains(&a) {
                agents.push(a);
            }
        }
        let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_default();
        let expected = [
            format!("MC_AGENTS={}", agents.join(",")),
            format!("MC_CALLER={}", text(&m["caller"])),
            format!("MC_DEADLINE={}", text(&task["deadline"])),
            format!("MC_DID={}", text(&m["did"])),
            "MC_EVENT=missed_call".to_string(),
            format!("MC_ID={id}"),
            format!("MC_LOSS_REASON={}", text(&m["loss_reason"])),
            format!("MC_QUEUE={}", text(&m["queue"])),
            format!("MC_TASK_ID={}", task["id"]),
            format!("MC_WAIT_SECONDS={}", m["wait_seconds"]),
        ];
        let env = std::fs::read_to_string(out.path().join(format!("{id}.env"))).expect("env");
        assert_eq!(env.lines().collect::<Vec<_>>(), expected);
        assert_eq!(call, m);
    }
}

#[test]
fn exec_that_hangs_is_killed_at_its_time_limit_and_retried() {
    let out = tempfile::tempdir().expect("tempdir");
    let cmd = script(
        out.path(),
        "hangs",
        &format!(
            "sleep 60 &\necho $! >> {}/children\nwait\n",
            out.path().display()
        ),
    );
    let s = Setup::new(
        &format!("[[notify.exec]]\ncommand = [{cmd:?}]\ntimeout_secs = 1\n"),
        "ami-fixtures/lab1/02-queue-abandon.ami",
    );
    let started = std::time::Instant::now();
    let left = s.drain("2026-11-23T12:00:00+03:00", false);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(left.pending, 1);
    let err = strings(&s.db, "SELECT last_error FROM outbox");
    assert!(
        err[0].contains("ran longer than 1 s and was killed"),
        "{err:?}"
    );
    let alive = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|st| st.split(' ').nth(2).is_none_or(|state| state != "Z"))
    };
    let children = std::fs::read_to_string(out.path().join("children")).expect("children");
    let first = children.lines().next().expect("a child").to_string();
    // The whole process group went, the script's child too (allow the kernel a moment).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while alive(&first) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!alive(&first), "the child of the killed command lives on");
    // Retried after its backoff.
    s.drain("2026-11-23T12:00:10+03:00", false);
    assert_eq!(
        strings(&s.db, "SELECT CAST(attempts AS TEXT) FROM outbox"),
        ["2"]
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("children"))
            .expect("children")
            .lines()
            .count(),
        2
    );
}
