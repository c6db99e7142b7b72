//! Tracker benchmark (prints numbers, asserts nothing):
//! 1. a ~1,000,000-event stream amplified from a real capture through decoder + parser +
//!    tracker (no database), in events/s and MB/s on one core, with the ratio to a `memchr`
//!    scan for message ends in the same run;
//! 2. memory of 10,000 calls in progress at once (each: caller in a queue, three agents
//!    ringing over Local channel pairs), from the process's resident set size;
//! 3. the restart journal of those calls: bytes held, time to save it at SIGTERM and to
//!    restore it into a fresh pipeline at start.
//!
//! Run: `cargo bench --bench tracker`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::BytesMut;
use missedcalld::ami::{AmiCodec, Frame, Message};
use missedcalld::calls::{FinishedCall, Tracker, TrackerConfig};
use missedcalld::pipeline::Pipeline;
use missedcalld::time::EventTime;
use tokio_util::codec::Decoder;

mod common;

use common::CAPTURE;

const COPIES: usize = 139;
const CALLS_IN_PROGRESS: usize = 10_000;
/// Timed runs per measurement; the best is reported.
const RUNS: usize = 3;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = amplified(root);
    println!(
        "stream: {} ({:.1} MB), {COPIES} copies of {CAPTURE}",
        data.1.display(),
        data.0.len() as f64 / 1e6
    );
    throughput(&data.0);
    memory_per_call();
    journal(&data.0);
}

/// The amplified stream (built once under target/ by the shared amplify tool) and its path.
fn amplified(root: &Path) -> (Vec<u8>, PathBuf) {
    let out = common::amplified(root, COPIES, "mix-1m.ami").expect("the bench stream");
    (
        std::fs::read(&out).expect("the bench stream is readable"),
        out,
    )
}

/// Decodes every message of `buf` (consumed), handing each to `each`; returns the count.
fn decode_all(mut buf: BytesMut, mut each: impl FnMut(&Message)) -> usize {
    let mut codec = AmiCodec::new();
    let mut n = 0;
    while let Some(frame) = codec.decode_eof(&mut buf).unwrap() {
        if let Frame::Message(m) = frame {
            n += 1;
            each(&m);
        }
    }
    n
}

/// Best of `RUNS` timings of `f` on a fresh copy of the stream (the copy is not timed).
fn best_of(bytes: &[u8], mut f: impl FnMut(BytesMut) -> usize) -> (usize, f64) {
    let mut best = f64::MAX;
    let mut n = 0;
    for _ in 0..RUNS {
        let buf = BytesMut::from(bytes);
        let t = Instant::now();
        n = f(buf);
        best = best.min(t.elapsed().as_secs_f64());
    }
    (n, best)
}

fn throughput(bytes: &[u8]) {
    let mb = bytes.len() as f64 / 1e6;
    let (messages, parse_secs) = best_of(bytes, |buf| decode_all(buf, |_| {}));
    let mut finished = 0;
    let mut missed = 0;
    let (_, total_secs) = best_of(bytes, |buf| {
        // As `replay` runs it: no restart journal, the clock from the stamps the tracker read.
        let mut tracker = Tracker::new(TrackerConfig::default());
        tracker.keep_journal(false);
        let mut out: Vec<FinishedCall> = Vec::new();
        let mut clock = EventTime::default();
        let n = decode_all(buf, |m| {
            if let Some(ts) = tracker.on_message(m, clock, &mut out) {
                clock = clock.max(ts);
            }
        });
        finished = out.len();
        missed = out.iter().filter(|c| c.missed.is_some()).count();
        n
    });
    println!(
        "decode+parse:         {messages} messages in {parse_secs:.3} s = {:.0} msgs/s, {:.0} MB/s",
        messages as f64 / parse_secs,
        mb / parse_secs
    );
    println!(
        "decode+parse+track:   {messages} messages in {total_secs:.3} s = {:.0} msgs/s, {:.0} MB/s ({finished} calls finished, {missed} missed)",
        messages as f64 / total_secs,
        mb / total_secs,
    );
    println!(
        "tracker alone:        {:.0} ns/message ({:.0} msgs/s)",
        (total_secs - parse_secs) * 1e9 / messages as f64,
        messages as f64 / (total_secs - parse_secs).max(1e-9)
    );
    // The speed the hardware allows, in the same run: a memchr scan for message ends.
    let finder = memchr::memmem::Finder::new(b"\r\n\r\n");
    let (ends, scan_secs) = best_of(bytes, |buf| finder.find_iter(&buf).count());
    println!(
        "memchr scan:          {ends} message ends in {scan_secs:.3} s = {:.0} msgs/s; ratio to it: decode+parse {:.3}, decode+parse+track {:.3}",
        ends as f64 / scan_secs,
        scan_secs / parse_secs,
        scan_secs / total_secs
    );
}

/// Resident set size of this process in bytes (Linux).
fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn ev(pairs: &[(&str, &str)]) -> Message {
    Message::from_pairs(pairs)
}

/// Events that put call `i` in a queue with three agents ringing.
fn call_in_progress(i: usize, t: f64) -> Vec<Message> {
    let ts = format!("{t:.6}");
    let caller = format!("PJSIP/trunk-{i:08x}");
    let cu = format!("1700000000.{}", i * 10);
    let num = format!("7916{i:07}");
    let base = |event: &str| {
        vec![
            ("Event", event.to_string()),
            ("Timestamp", ts.clone()),
            ("Channel", caller.clone()),
            ("CallerIDNum", num.clone()),
            ("CallerIDName", "Client".to_string()),
            ("Context", "from-trunk".to_string()),
            ("Exten", "74951234567".to_string()),
            ("Uniqueid", cu.clone()),
            ("Linkedid", cu.clone()),
        ]
    };
    let to_msg = |v: Vec<(&str, String)>| {
        let pairs: Vec<(&str, &str)> = v.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ev(&pairs)
    };
    let mut msgs = vec![to_msg(base("Newchannel"))];
    let mut e = base("Newexten");
    e.push(("Application", "Queue".into()));
    e.push(("AppData", "sales,t,,,300".into()));
    msgs.push(to_msg(e));
    let mut j = base("QueueCallerJoin");
    j.push(("Queue", "sales".into()));
    msgs.push(to_msg(j));
    for a in 1..=3 {
        for half in 1..=2 {
            let mut n = base("Newchannel");
            n[2].1 = format!("Local/10{a}@agents-{i:08x};{half}");
            n[7].1 = format!("1700000000.{}", i * 10 + a * 2 + half - 1);
            n[5].1 = "agents".into();
            msgs.push(to_msg(n));
        }
        let mut c = base("AgentCalled");
        c.push(("DestChannel", format!("Local/10{a}@agents-{i:08x};1")));
        c.push(("DestUniqueid", format!("1700000000.{}", i * 10 + a * 2)));
        c.push(("Queue", "sales".into()));
        c.push(("MemberName", format!("10{a}")));
        c.push(("Interface", format!("Local/10{a}@agents/n")));
        msgs.push(to_msg(c));
        let mut d = base("DialBegin");
        d.push(("DestChannel", format!("Local/10{a}@agents-{i:08x};1")));
        d.push(("DestUniqueid", format!("1700000000.{}", i * 10 + a * 2)));
        msgs.push(to_msg(d));
    }
    msgs
}

fn memory_per_call() {
    // Build the events first so only the tracker's growth is measured.
    let events: Vec<Vec<Message>> = (0..CALLS_IN_PROGRESS)
        .map(|i| call_in_progress(i, 1_700_000_000.0 + i as f64 * 0.01))
        .collect();
    let mut tracker = Tracker::new(TrackerConfig::default());
    let mut out = Vec::new();
    let before = rss_bytes();
    for call in &events {
        for m in call {
            tracker.on_message(m, EventTime::default(), &mut out);
        }
    }
    let after = rss_bytes();
    assert_eq!(tracker.in_progress(), CALLS_IN_PROGRESS);
    let per_call = (after.saturating_sub(before)) as f64 / CALLS_IN_PROGRESS as f64;
    println!(
        "calls in progress:    {} (7 channels, 3 ringing attempts each): RSS +{:.1} MiB = {:.0} bytes/call",
        tracker.in_progress(),
        (after - before) as f64 / (1024.0 * 1024.0),
        per_call
    );
}

/// The restart journal: its size for the 10,000 calls in progress, and for the amplified
/// real stream at its busiest; the time to save and restore the former.
fn journal(stream: &[u8]) {
    let events: Vec<Vec<Message>> = (0..CALLS_IN_PROGRESS)
        .map(|i| call_in_progress(i, 1_700_000_000.0 + i as f64 * 0.01))
        .collect();
    let mut pipeline = Pipeline::new(TrackerConfig::default(), Vec::new());
    for call in &events {
        for m in call {
            pipeline.on_recorded(m).unwrap();
        }
    }
    let (bytes, calls) = pipeline.tracker().journal_size();
    let t = Instant::now();
    let (saved, saved_calls) = pipeline.save_in_progress();
    let save_secs = t.elapsed().as_secs_f64();
    let mut fresh = Pipeline::new(TrackerConfig::default(), Vec::new());
    let t = Instant::now();
    fresh.restore(&saved).unwrap();
    let restore_secs = t.elapsed().as_secs_f64();
    assert_eq!((saved_calls, fresh.tracker().in_progress()), (calls, calls));
    println!(
        "journal:              {calls} calls, {:.1} MiB held = {:.0} bytes/call; saved ({:.1} MB) in {:.0} ms, restored in {:.0} ms",
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / calls as f64,
        saved.len() as f64 / 1e6,
        save_secs * 1e3,
        restore_secs * 1e3,
    );
    // The real stream: the journal's peak while it runs.
    let mut tracker = Tracker::new(TrackerConfig::default());
    let mut out = Vec::new();
    let mut clock = EventTime::default();
    let (mut peak_bytes, mut peak_calls) = (0, 0);
    decode_all(BytesMut::from(stream), |m| {
        if let Some(ts) = m.get("Timestamp").and_then(EventTime::parse_ami) {
            clock = ts;
        }
        tracker.on_message(m, clock, &mut out);
        let (b, c) = tracker.journal_size();
        if b > peak_bytes {
            (peak_bytes, peak_calls) = (b, c);
        }
    });
    println!(
        "journal, real stream: peak {:.1} KiB for {peak_calls} calls in progress = {:.0} bytes/call",
        peak_bytes as f64 / 1024.0,
        peak_bytes as f64 / peak_calls.max(1) as f64
    );
}
