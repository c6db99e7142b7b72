//! The JSON payload of SPEC section 7 and the `MC_*` environment of exec sinks, built from the
//! same JSON objects `missed --json`, `tasks --json` and `report --json` print. Pure.

use serde_json::{Value, json};

use super::EventKind;

/// `{"id", "event", "created_at", "missed_call", "task", "digest"}`; absent parts are `null`.
pub fn envelope(
    id: &str,
    event: EventKind,
    created_at: &str,
    missed_call: Option<Value>,
    task: Option<Value>,
    digest: Option<Value>,
) -> Value {
    json!({
        "id": id,
        "event": event.as_str(),
        "created_at": created_at,
        "missed_call": missed_call,
        "task": task,
        "digest": digest,
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The environment of an exec sink: every `MC_*` variable is set (empty when it does not
/// apply), so scripts need no existence checks. `MC_AGENTS` lists the extensions rung,
/// comma-separated, each once.
pub fn exec_env(payload: &Value, body: &str) -> Vec<(&'static str, String)> {
    let call = &payload["missed_call"];
    let task = &payload["task"];
    let mut agents: Vec<String> = Vec::new();
    if let Some(list) = call["agents"].as_array() {
        for a in list {
            let ext = text(&a["agent"]);
            if !ext.is_empty() && !agents.contains(&ext) {
                agents.push(ext);
            }
        }
    }
    let caller = match (&call["caller"], &task["number"]) {
        (Value::String(c), _) if !c.is_empty() => c.clone(),
        (_, n) => text(n),
    };
    vec![
        ("MC_EVENT", text(&payload["event"])),
        ("MC_ID", text(&payload["id"])),
        ("MC_CALLER", caller),
        ("MC_DID", text(&call["did"])),
        ("MC_QUEUE", text(&call["queue"])),
        ("MC_WAIT_SECONDS", text(&call["wait_seconds"])),
        ("MC_LOSS_REASON", text(&call["loss_reason"])),
        ("MC_AGENTS", agents.join(",")),
        ("MC_TASK_ID", text(&task["id"])),
        ("MC_DEADLINE", text(&task["deadline"])),
        ("MC_JSON", body.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_of_a_missed_call_and_of_a_digest() {
        let p = envelope(
            "abc",
            EventKind::MissedCall,
            "2026-11-22T10:00:00.000Z",
            Some(
                json!({"caller": "89161234567", "did": "74951234567", "queue": null,
                        "wait_seconds": 17.5, "loss_reason": "ringing",
                        "agents": [{"agent": "101"}, {"agent": "102"}, {"agent": "101"}]}),
            ),
            Some(json!({"id": 7, "number": "79161234567", "deadline": "2026-11-22T10:10:00.000Z"})),
            None,
        );
        let env = exec_env(&p, "{}");
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("MC_EVENT"), Some("missed_call"));
        assert_eq!(get("MC_CALLER"), Some("89161234567"));
        assert_eq!(get("MC_QUEUE"), Some(""));
        assert_eq!(get("MC_WAIT_SECONDS"), Some("17.5"));
        assert_eq!(get("MC_AGENTS"), Some("101,102"));
        assert_eq!(get("MC_TASK_ID"), Some("7"));
        assert_eq!(get("MC_JSON"), Some("{}"));
        let d = envelope(
            "d",
            EventKind::DailyDigest,
            "t",
            None,
            None,
            Some(json!({})),
        );
        let env = exec_env(&d, "x");
        assert_eq!(env.len(), 11);
        assert!(
            env.iter().skip(2).take(8).all(|(_, v)| v.is_empty()),
            "{env:?}"
        );
    }
}
