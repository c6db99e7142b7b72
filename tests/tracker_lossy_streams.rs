//! The tracker on damaged streams: real captures with events dropped at random (as after a
//! reconnect or a filtered AMI user) must never panic, never report more calls than the
//! capture holds, and never keep state once every call is finished. A daemon restart at any
//! point (calls in progress saved, then restored into a fresh pipeline) changes nothing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use missedcalld::ami::Message;
use missedcalld::calls::{FinishedCall, Tracker, TrackerConfig};
use missedcalld::pipeline::Pipeline;
use missedcalld::replay::for_each_message;
use missedcalld::time::EventTime;
use proptest::prelude::*;

fn capture(name: &str) -> Vec<(Message, EventTime)> {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ami-fixtures")
        .join(name);
    let mut out = Vec::new();
    for_each_message(&[path], |m, t| {
        out.push((m.clone(), t));
        Ok(())
    })
    .unwrap();
    out
}

fn linkedids(msgs: &[(Message, EventTime)]) -> HashSet<Vec<u8>> {
    msgs.iter()
        .filter_map(|(m, _)| m.get("Linkedid").map(<[u8]>::to_vec))
        .collect()
}

fn run(msgs: &[(Message, EventTime)], keep: &[bool]) -> (Vec<FinishedCall>, Tracker) {
    let mut tracker = Tracker::new(TrackerConfig::default());
    let mut out = Vec::new();
    for ((m, t), k) in msgs.iter().zip(keep.iter().cycle()) {
        if *k {
            tracker.on_message(m, *t, &mut out);
        }
    }
    (out, tracker)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn dropped_events_never_break_the_tracker(
        which in prop::sample::select(vec![
            "lab1/13-concurrent-mix.ami",
            "lab2/13-concurrent-mix.ami",
            "lab2/12-answered-then-transferred.ami",
            "hand/asterisk11-legacy-queue.ami",
            "hand/attended-transfer.ami",
            "lab3/02-queue-abandon-ringing.ami",
            "lab3/04-ringgroup-all-busy.ami",
            "lab3/13-ringgroup-answered-after-busy.ami",
            "lab3/17-answered-then-sip-refer-transfer.ami",
            "lab3/09-reconnect-answered-in-gap-a.ami",
        ]),
        keep in prop::collection::vec(prop::bool::weighted(0.9), 1..97),
    ) {
        let msgs = capture(which);
        let calls = linkedids(&msgs).len().max(1);
        let (mut out, mut tracker) = run(&msgs, &keep);
        let end = tracker.latest();
        tracker.finish_all(end, &mut out);
        prop_assert_eq!(tracker.in_progress(), 0);
        prop_assert!(out.len() <= calls, "{} outcomes from {} calls", out.len(), calls);
        let mut seen = HashSet::new();
        for c in &out {
            prop_assert!(seen.insert(c.linkedid.clone()), "call {} reported twice", c.linkedid);
            prop_assert!(c.ended_at >= c.started_at);
            prop_assert!(c.wait_seconds >= 0.0 && c.talk_seconds >= 0.0);
            for a in &c.attempts {
                prop_assert!(a.ring_seconds >= 0.0);
            }
            for f in &c.forwards {
                prop_assert!(f.ring_seconds >= 0.0);
            }
        }
    }
}

/// Runs `msgs` through a pipeline; the finished calls, sorted by linkedid.
fn through(pipeline: &mut Pipeline<Vec<FinishedCall>>, msgs: &[(Message, EventTime)]) {
    for (m, _) in msgs {
        pipeline.on_recorded(m).unwrap();
    }
}

fn sorted(mut calls: Vec<FinishedCall>) -> Vec<FinishedCall> {
    calls.sort_by(|a, b| a.linkedid.cmp(&b.linkedid));
    calls
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn a_restart_anywhere_gives_the_same_calls_as_an_uninterrupted_run(
        which in prop::sample::select(vec![
            "lab2/13-concurrent-mix.ami",
            "lab2/12-answered-then-transferred.ami",
            "lab3/02-queue-abandon-ringing.ami",
            "lab3/17-answered-then-sip-refer-transfer.ami",
            "hand/attended-transfer.ami",
            "hand/asterisk11-legacy-queue.ami",
        ]),
        cut in 0.0f64..1.0,
    ) {
        let msgs = capture(which);
        let cut = (msgs.len() as f64 * cut) as usize;
        let mut whole = Pipeline::new(TrackerConfig::default(), Vec::new());
        through(&mut whole, &msgs);
        let whole = sorted(whole.into_sink());

        let mut before = Pipeline::new(TrackerConfig::default(), Vec::new());
        through(&mut before, &msgs[..cut]);
        let (saved, calls) = before.save_in_progress();
        prop_assert!(calls <= before.tracker().in_progress());
        let mut after = Pipeline::new(TrackerConfig::default(), Vec::new());
        prop_assert_eq!(after.restore(&saved).unwrap(), calls);
        after.flush().unwrap();
        through(&mut after, &msgs[cut..]);
        let mut both = before.into_sink();
        both.extend(after.into_sink());
        prop_assert_eq!(sorted(both), whole);
    }
}

#[test]
fn the_whole_capture_leaves_no_state_behind() {
    for name in [
        "lab1/13-concurrent-mix.ami",
        "lab2/13-concurrent-mix.ami",
        "lab3/01-answered-via-queue.ami",
        "lab3/02-queue-abandon-ringing.ami",
        "lab3/05-ringgroup-no-answer-abandon.ami",
        "lab3/13-ringgroup-answered-after-busy.ami",
        "lab3/17-answered-then-sip-refer-transfer.ami",
    ] {
        let msgs = capture(name);
        let (_, tracker) = run(&msgs, &[true]);
        assert_eq!(
            tracker.in_progress(),
            0,
            "{name}: calls left after every hangup"
        );
    }
}
