//! Replays every lab capture through the tracker (no database) and compares the missed calls
//! with the capture's `expect.json` (what really happened on the PBX).

use std::path::{Path, PathBuf};

use missedcalld::calls::{FinishedCall, TrackerConfig};
use missedcalld::pipeline::Pipeline;
use missedcalld::replay::replay_into;
use serde_json::Value;

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("ami-fixtures");
    let mut out = Vec::new();
    for lab in ["lab1", "lab2", "hand"] {
        let Ok(dir) = std::fs::read_dir(root.join(lab)) else {
            continue;
        };
        for e in dir.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "ami") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn replay(path: &Path) -> Vec<FinishedCall> {
    let mut pipeline = Pipeline::new(TrackerConfig::default(), Vec::new());
    replay_into(&[path.to_path_buf()], &mut pipeline).unwrap();
    pipeline.into_sink()
}

#[test]
fn missed_calls_match_expectations() {
    let mut failures = Vec::new();
    let all = fixtures();
    assert!(all.len() >= 18, "fixtures not found: {all:?}");
    let mut checked = 0;
    for path in all {
        let expect_path = path.with_extension("expect.json");
        let expect: Value =
            serde_json::from_str(&std::fs::read_to_string(&expect_path).unwrap()).unwrap();
        let got = replay(&path);
        let mut missed: Vec<&FinishedCall> = got.iter().filter(|c| c.missed.is_some()).collect();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let want = expect["missed"].as_array().unwrap();
        for w in want {
            let caller = w["caller"].as_str().unwrap();
            let did = w["did"].as_str().unwrap();
            let reason = w["loss_reason"].as_str().unwrap();
            let wait = w["wait_seconds"].as_f64().unwrap();
            let pos = missed.iter().position(|c| {
                c.number == caller
                    && c.did.as_deref() == Some(did)
                    && (c.wait_seconds - wait).abs() <= 1.5
            });
            let Some(pos) = pos else {
                failures.push(format!(
                    "{name}: missing missed call {caller} {did} {reason} {wait}"
                ));
                continue;
            };
            let c = missed.remove(pos);
            checked += 1;
            let m = c.missed.as_ref().unwrap();
            if m.loss_reason.as_str() != reason {
                failures.push(format!(
                    "{name}: {caller} reason {} want {reason}",
                    m.loss_reason.as_str()
                ));
            }
            if m.voicemail != w["voicemail"].as_bool().unwrap() {
                failures.push(format!("{name}: {caller} voicemail {} ", m.voicemail));
            }
            let wa: Vec<(String, f64)> = w["agents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    (
                        a["agent"].as_str().unwrap().to_string(),
                        a["ring_seconds"].as_f64().unwrap(),
                    )
                })
                .collect();
            let ga: Vec<(String, f64)> = c
                .attempts
                .iter()
                .map(|a| (a.agent.clone(), a.ring_seconds))
                .collect();
            let same = wa.len() == ga.len()
                && wa.iter().all(|(agent, secs)| {
                    ga.iter()
                        .any(|(g, s)| g == agent && (s - secs).abs() <= 1.5)
                });
            if !same {
                failures.push(format!("{name}: {caller} agents {ga:?} want {wa:?}"));
            }
        }
        for extra in missed {
            failures.push(format!(
                "{name}: unexpected missed call {} {:?} {:?} {}",
                extra.number, extra.did, extra.missed, extra.wait_seconds
            ));
        }
        for nm in expect["not_missed_callers"].as_array().unwrap() {
            let nm = nm.as_str().unwrap();
            if !got.iter().any(|c| c.number == nm && c.answered) {
                failures.push(format!("{name}: {nm} should be an answered call"));
            }
        }
    }
    assert!(checked > 0);
    eprintln!("{checked} missed calls matched");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
