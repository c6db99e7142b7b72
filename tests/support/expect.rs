//! Comparing what the daemon stored (`missed --json`, `tasks --json`) with a capture's
//! `expect.json`: the same missed calls (caller, DID, loss reason, voicemail, wait within
//! 1.5 s, the same agents with ring seconds within 1.5 s, and the forwards where the
//! expectation lists them), answered callers absent, and the callback tasks' outcome. A call flagged `gap` was seen only in part: its true end (and an
//! agent's true ring end) counts as right anywhere inside its `gap_started_at`..`gap_ended_at`
//! window, while what was known before the gap (DID, queue, agents, ring starts) must match.

use serde_json::Value;

/// Seconds of slack on every time compared.
pub const TOLERANCE_SECS: f64 = 1.5;

fn secs(v: &Value) -> Option<f64> {
    let t = chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok()?;
    Some(t.timestamp_micros() as f64 / 1e6)
}

/// A duration measured from `start` (RFC 3339 value) is right: within the tolerance, or, for a
/// gap call, ending inside its window.
fn duration_matches(got: f64, want: f64, start: &Value, m: &Value) -> bool {
    if close(got, want) {
        return true;
    }
    if m["gap"] != true {
        return false;
    }
    let (Some(start), Some(from), Some(to)) = (
        secs(start),
        secs(&m["gap_started_at"]),
        secs(&m["gap_ended_at"]),
    ) else {
        return false;
    };
    let end = start + want;
    end >= from - TOLERANCE_SECS && end <= to + TOLERANCE_SECS
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOLERANCE_SECS
}

/// Compares one capture's database with its expect.json; returns the mismatches.
pub fn check(name: &str, expect: &Value, missed: &[Value], tasks: &[Value]) -> Vec<String> {
    let mut failures = Vec::new();
    let mut left: Vec<&Value> = missed.iter().collect();
    for w in expect["missed"].as_array().unwrap() {
        let caller = w["caller"].as_str().unwrap();
        let did = w["did"].as_str().unwrap();
        let wait = w["wait_seconds"].as_f64().unwrap();
        let Some(pos) = left.iter().position(|m| {
            m["caller"] == caller
                && m["did"] == did
                && duration_matches(
                    m["wait_seconds"].as_f64().unwrap(),
                    wait,
                    &m["started_at"],
                    m,
                )
        }) else {
            failures.push(format!("{name}: missing missed call {w}"));
            continue;
        };
        let m = left.remove(pos);
        for key in ["loss_reason", "voicemail"] {
            if m[key] != w[key] {
                failures.push(format!(
                    "{name}: {caller} {key} = {} want {}",
                    m[key], w[key]
                ));
            }
        }
        let want: Vec<&Value> = w["agents"].as_array().unwrap().iter().collect();
        let mut got: Vec<&Value> = m["agents"].as_array().unwrap().iter().collect();
        for a in &want {
            match got.iter().position(|g| {
                g["agent"] == a["agent"]
                    && duration_matches(
                        g["ring_seconds"].as_f64().unwrap(),
                        a["ring_seconds"].as_f64().unwrap(),
                        &g["ring_start"],
                        m,
                    )
            }) {
                Some(p) => {
                    got.remove(p);
                }
                None => failures.push(format!("{name}: {caller} lacks agent attempt {a}")),
            }
        }
        for g in got {
            failures.push(format!("{name}: {caller} has extra agent attempt {g}"));
        }
        if let Some(want) = w.get("forwards").and_then(Value::as_array) {
            let got = m["forwards"].as_array().cloned().unwrap_or_default();
            let same = want.len() == got.len()
                && want.iter().zip(&got).all(|(a, g)| {
                    g["number"] == a["number"]
                        && g["outcome"] == a["outcome"]
                        && close(
                            g["ring_seconds"].as_f64().unwrap_or(-99.0),
                            a["ring_seconds"].as_f64().unwrap_or(0.0),
                        )
                });
            if !same {
                failures.push(format!(
                    "{name}: {caller} forwards {} want {}",
                    m["forwards"],
                    Value::Array(want.clone())
                ));
            }
        }
        if caller.is_empty() != m["task_id"].is_null() {
            failures.push(format!("{name}: {caller} task_id {}", m["task_id"]));
        }
    }
    for m in left {
        failures.push(format!("{name}: unexpected missed call {m}"));
    }
    for nm in expect["not_missed_callers"].as_array().unwrap() {
        if missed.iter().any(|m| m["caller"] == *nm)
            && !expect["missed"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w["caller"] == *nm)
        {
            failures.push(format!("{name}: answered caller {nm} reported missed"));
        }
    }
    if let Some(want) = expect.get("tasks").and_then(Value::as_array) {
        for w in want {
            // Tasks hold the normalized number (digits only): `+7916...` is task `7916...`.
            let number = w["number"].as_str().unwrap();
            let Some(t) = tasks
                .iter()
                .find(|t| digits(t["number"].as_str().unwrap_or("")) == digits(number))
            else {
                failures.push(format!("{name}: no task for {number}"));
                continue;
            };
            let statuses = w["status"].as_array().unwrap();
            if !statuses.contains(&t["status"]) {
                failures.push(format!(
                    "{name}: task {number} status {} want {statuses:?}",
                    t["status"]
                ));
            }
            if t["missed_count"] != w["missed_count"] {
                failures.push(format!(
                    "{name}: task {number} missed_count {} want {}",
                    t["missed_count"], w["missed_count"]
                ));
            }
        }
    }
    if let Some(n) = expect.get("task_count").and_then(Value::as_u64)
        && tasks.len() as u64 != n
    {
        failures.push(format!("{name}: {} tasks want {n}", tasks.len()));
    }
    failures
}

/// Runs the compiled `missedcalld` with `args`; its stdout (it must succeed).
pub fn missedcalld(args: &[&str]) -> String {
    String::from_utf8(super::cli::run_ok(args)).unwrap()
}

/// [`missedcalld`] with a JSON output, parsed.
pub fn missedcalld_json(args: &[&str]) -> Value {
    serde_json::from_str(&missedcalld(args)).unwrap()
}
