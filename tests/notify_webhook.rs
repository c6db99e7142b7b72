//! Webhook delivery end to end, with the compiled binary and real HTTP receivers on 127.0.0.1:
//! payloads equal to `missed --json` / `tasks --json` and signed, a receiver that refuses, then
//! is down, then up (nothing lost), SIGKILL with notifications pending then a restart (all
//! delivered), and a receiver that hangs (other sinks and the recording are not delayed).

mod notify_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hmac::{KeyInit, Mac};
use notify_support::*;
use serde_json::Value;

const SECRET: &str = "s3cret-hmac-key";
const BEARER: &str = "Bearer tok-4242";

fn by_key(arr: &Value, key: &str) -> BTreeMap<String, Value> {
    arr.as_array()
        .expect("array")
        .iter()
        .map(|v| (v[key].to_string(), v.clone()))
        .collect()
}

fn ids(got: &[Received]) -> BTreeSet<String> {
    got.iter()
        .map(|r| r.header("idempotency-key").unwrap_or("").to_string())
        .collect()
}

#[test]
fn replay_with_notify_sends_signed_payloads_equal_to_the_cli_json() {
    let rx = Receiver::start(0, |_, _| ok());
    let overdue_only = Receiver::start(0, |_, _| ok());
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[notify.webhook]]\nurl = {:?}\nsecret = {SECRET:?}\nheaders = {{ Authorization = {BEARER:?} }}\n\n\
             [[notify.webhook]]\nurl = {:?}\nevents = [\"task_overdue\"]\n",
            rx.url("/missed?token=abc"),
            overdue_only.url("/overdue")
        ),
    )
    .expect("config");

    // Without --notify: nothing is written, nobody is told.
    let quiet_db = dir.path().join("quiet.sqlite");
    replay(&cfg, &quiet_db, false, MIX);
    assert_eq!(count(&quiet_db, "SELECT count(*) FROM notifications"), 0);
    assert!(rx.received().is_empty());

    let db = dir.path().join("db.sqlite");
    let out = replay(&cfg, &db, true, MIX);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains(SECRET) && !stderr.contains("tok-4242"),
        "{stderr}"
    );

    let dbs = db.to_str().expect("utf8");
    let missed = by_key(&cli_json(&["missed", "--db", dbs, "--json"]), "linkedid");
    let tasks = by_key(&cli_json(&["tasks", "--db", dbs, "--json"]), "id");
    let got = rx.delivered();
    assert_eq!(got.len(), missed.len(), "one request per missed call");
    assert_eq!(rx.received().len(), got.len(), "no retries needed");
    assert!(overdue_only.received().is_empty(), "events filter");

    let mut seen = BTreeSet::new();
    for r in &got {
        assert_eq!(r.path, "/missed?token=abc");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("authorization"), Some(BEARER));
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
        mac.update(r.body.as_bytes());
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(r.header("x-missedcalld-signature"), Some(expected.as_str()));
        let body = r.json();
        let keys: Vec<&str> = body
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["created_at", "digest", "event", "id", "missed_call", "task"]
        );
        assert_eq!(body["event"], "missed_call");
        assert_eq!(r.header("idempotency-key"), body["id"].as_str());
        assert_eq!(body["id"].as_str().map(str::len), Some(32));
        assert!(seen.insert(body["id"].to_string()), "ids are unique");
        let call = &body["missed_call"];
        assert_eq!(
            Some(call),
            missed.get(&call["linkedid"].to_string()),
            "missed_call"
        );
        match &call["task_id"] {
            Value::Null => assert_eq!(body["task"], Value::Null),
            id => {
                // The task as this miss left it: missed_count counts the misses up to this one.
                let mut task = body["task"].clone();
                let mut listed = tasks.get(&id.to_string()).expect("task listed").clone();
                let nth = missed
                    .values()
                    .filter(|m| {
                        m["task_id"] == *id && m["ended_at"].as_str() <= call["ended_at"].as_str()
                    })
                    .count();
                assert_eq!(task["missed_count"], nth, "{}", call["linkedid"]);
                task["missed_count"] = Value::Null;
                listed["missed_count"] = Value::Null;
                assert_eq!(task, listed, "task");
            }
        }
        assert_eq!(body["digest"], Value::Null);
    }
    let stored: BTreeSet<String> = strings(&db, "SELECT id FROM notifications")
        .into_iter()
        .collect();
    assert_eq!(stored, ids(&got), "the stored ids are the ones sent");
    assert_eq!(
        cli_json(&["outbox", "--db", dbs, "--json"]),
        Value::Array(vec![])
    );
}

#[test]
fn receiver_refusing_then_down_then_up_gets_every_notification() {
    let port = free_port();
    let files = daemon_for(
        MIX,
        &format!("[[notify.webhook]]\nurl = \"http://127.0.0.1:{port}/hook\"\ntimeout_secs = 2\n"),
    );
    let (db, cfg) = (files.db.clone(), files.config.clone());
    let expected = missed_in(MIX) as i64;

    // 503 (with Retry-After: 1) to everything until stopped.
    let refusing = Receiver::start(port, |_, _| {
        Reply::Status(
            503,
            vec![("Retry-After", "1".into()), ("Connection", "close".into())],
            String::new(),
        )
    });
    let mut daemon = spawn_daemon(&cfg);
    wait_count(
        &db,
        "SELECT count(*) FROM missed_calls",
        expected,
        Duration::from_secs(60),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while refusing.received().len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "no requests reached the receiver"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused = refusing.received().len();
    refusing.stop();
    // Down: connections refused for a while; the daemon logs why it cannot deliver.
    std::thread::sleep(Duration::from_secs(3));
    let up = Receiver::start(port, |_, _| ok());
    let stored: BTreeSet<String> = strings(&db, "SELECT id FROM notifications")
        .into_iter()
        .collect();
    assert_eq!(stored.len() as i64, expected);
    up.wait(
        Duration::from_secs(90),
        "every notification after the outage",
        |got| ids(got) == stored,
    );
    sigterm(&mut daemon);
    // Duplicates only ever carry an id that was sent before.
    assert!(ids(&up.received()).is_subset(&stored));
    assert!(refused >= 3);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM outbox WHERE status <> 'delivered'"
        ),
        0
    );
    let log = daemon_log(&cfg);
    assert!(
        log.contains("cannot deliver notifications: HTTP 503")
            || log.contains("cannot deliver notifications: cannot connect"),
        "{log}"
    );
    assert!(log.contains("notifications are delivered again"), "{log}");
}

#[test]
fn sigkill_with_notifications_pending_then_restart_delivers_all() {
    let port = free_port();
    let files = daemon_for(
        MIX,
        &format!("[[notify.webhook]]\nurl = \"http://127.0.0.1:{port}/\"\n"),
    );
    let (db, cfg) = (files.db.clone(), files.config.clone());
    let expected = missed_in(MIX) as i64;
    let mut daemon = spawn_daemon(&cfg);
    wait_count(
        &db,
        "SELECT count(*) FROM outbox WHERE status = 'pending' AND attempts >= 1",
        expected,
        Duration::from_secs(60),
    );
    daemon.kill().expect("SIGKILL");
    let _ = daemon.wait();
    let log = daemon_log(&cfg);
    assert!(
        log.contains("connection refused"),
        "the log says why: {log}"
    );

    let rx = Receiver::start(port, |_, _| ok());
    let stored: BTreeSet<String> = strings(&db, "SELECT id FROM notifications")
        .into_iter()
        .collect();
    assert_eq!(stored.len() as i64, expected);
    let mut daemon = spawn_daemon(&cfg);
    rx.wait(
        Duration::from_secs(60),
        "every pending notification after the restart",
        |got| ids(got) == stored,
    );
    sigterm(&mut daemon);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM outbox WHERE status = 'delivered'"
        ),
        expected
    );
}

#[test]
fn a_hanging_receiver_delays_neither_other_sinks_nor_recording() {
    let hanging = Receiver::start(0, |_, _| Reply::Hang);
    let fast = Receiver::start(0, |_, _| ok());
    let files = daemon_for(
        MIX,
        &format!(
            "[[notify.webhook]]\nurl = {:?}\ntimeout_secs = 120\n\n[[notify.webhook]]\nurl = {:?}\n",
            hanging.url("/"),
            fast.url("/")
        ),
    );
    let (db, cfg) = (files.db.clone(), files.config.clone());
    let expected = missed_in(MIX);
    let started = std::time::Instant::now();
    let mut daemon = spawn_daemon(&cfg);
    // The capture lasts well under a second at 2,000 events/s; generous margins for a loaded
    // machine, but far below the hanging sink's 120 s time limit.
    wait_count(
        &db,
        "SELECT count(*) FROM missed_calls",
        expected as i64,
        Duration::from_secs(30),
    );
    let recorded = started.elapsed();
    fast.wait(Duration::from_secs(30), "the other sink", |got| {
        got.len() == expected
    });
    let delivered = started.elapsed();
    assert!(
        !hanging.received().is_empty(),
        "the hanging receiver was asked"
    );
    assert!(hanging.received().iter().all(|r| r.status.is_none()));
    wait_count(
        &db,
        "SELECT count(*) FROM outbox WHERE status = 'delivered'",
        expected as i64,
        Duration::from_secs(10),
    );
    sigterm(&mut daemon);
    eprintln!("recorded in {recorded:?}, other sink delivered in {delivered:?}");
}

#[test]
fn check_config_validates_notify_and_never_prints_its_secrets() {
    let valid = root().join("tests/config/valid/notify-all.toml");
    let out = std::process::Command::new(bin())
        .args(["check-config", "--config"])
        .arg(&valid)
        .output()
        .expect("check-config");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(
            "notify: 1 webhook(s), 1 telegram, 1 exec; language ru; daily digest at 09:00"
        ),
        "{text}"
    );
    for secret in ["hmac-key", "Bearer abc", "ABC-def_1"] {
        assert!(!text.contains(secret), "{secret} printed: {text}");
    }
    // A token that is not one: named, not quoted.
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[notify.telegram]]\nbot_token = \"s3cr3t token\"\nchat_ids = [1]\n",
    )
    .expect("write");
    let out = std::process::Command::new(bin())
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .expect("check-config");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("notify.telegram[0].bot_token") && !err.contains("s3cr3t"),
        "{err}"
    );
}

#[test]
fn a_receiver_refusing_for_good_marks_them_failed_and_outbox_lists_them() {
    let rx = Receiver::start(0, |_, _| Reply::Status(400, Vec::new(), "bad".into()));
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!("[[notify.webhook]]\nurl = {:?}\n", rx.url("/x")),
    )
    .expect("config");
    let db = dir.path().join("db.sqlite");
    let out = replay(
        &cfg,
        &db,
        true,
        "ami-fixtures/lab1/10-repeat-missed-same-number.ami",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("notification failed: HTTP 400").count(),
        3,
        "one WARN each: {stderr}"
    );
    assert_eq!(rx.received().len(), 3, "no retry after a 400");
    let dbs = db.to_str().expect("utf8");
    let listed = cli_json(&["outbox", "--db", dbs, "--json"]);
    let listed = listed.as_array().expect("array");
    assert_eq!(listed.len(), 3);
    assert!(
        listed.iter().all(|r| r["status"] == "failed"
            && r["attempts"] == 1
            && r["next_attempt_at"].is_null()
            && r["last_error"] == "HTTP 400"),
        "{listed:?}"
    );
    let text = std::process::Command::new(bin())
        .args(["outbox", "--db", dbs])
        .output()
        .expect("outbox");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.ends_with("0 pending, 3 failed notification(s)\n"),
        "{text}"
    );
}
