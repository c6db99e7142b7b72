//! AMI codec benchmark (prints numbers, asserts nothing).
//!
//! On a ~1,000,000-event stream amplified from a real capture, in one run:
//! 1. decoder + parser over the whole buffer, and fed in 64 KiB reads like a socket;
//! 2. the parser alone over frames split beforehand;
//! 3. a `memchr::memmem` scan for `\r\n\r\n` over the same bytes (the reference speed);
//! 4. a naive split into (key, value) slices with std iterators, for comparison.
//!
//! Run: `cargo bench --bench ami_codec` (the stream is generated once under `target/`).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use missedcalld::ami::codec::{AmiCodec, Frame};
use missedcalld::ami::parser::parse_message;
use tokio_util::codec::Decoder;

use common::CAPTURE;

const COPIES: usize = 139;
const ROUNDS: usize = 3;

fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = common::amplified(root, COPIES, "mix-1m.ami")?;
    let data = std::fs::read(&path)?;
    let mb = data.len() as f64 / 1e6;
    let events = data
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"Event:"))
        .count();
    println!(
        "stream: {} ({mb:.1} MB, {events} events), {COPIES} copies of {CAPTURE}",
        path.display()
    );

    let (t_whole, n) = best_with(|| BytesMut::from(&data[..]), decode_buffer);
    report("decode+parse (one buffer)", n, mb, t_whole);
    let (t_reads, n) = best(|| decode(&data, 64 * 1024));
    report("decode+parse (64 KiB reads)", n, mb, t_reads);

    let frames = split_frames(&data);
    let (t_parse, n) = best(|| {
        frames
            .iter()
            .filter_map(|f| parse_message(f.clone()).ok())
            .map(|m| m.len())
            .filter(|&h| h > 0)
            .count()
    });
    report("parser alone (pre-split frames)", n, mb, t_parse);

    // The same work on one capture's frames, parsed COPIES times (cache-warm).
    let one = std::fs::read(root.join(CAPTURE))?;
    let small = split_frames(&one);
    let (t_warm, n) = best(|| {
        let mut n = 0;
        for _ in 0..COPIES {
            n += small
                .iter()
                .filter_map(|f| parse_message(f.clone()).ok())
                .filter(|m| !m.is_empty())
                .count();
        }
        n
    });
    report(
        "parser alone (cache-warm capture)",
        n,
        one.len() as f64 * COPIES as f64 / 1e6,
        t_warm,
    );

    let finder = memchr::memmem::Finder::new(b"\r\n\r\n");
    let (t_memmem, n) = best(|| finder.find_iter(&data).count());
    report("memmem \\r\\n\\r\\n scan (reference)", n, mb, t_memmem);

    let (t_naive, n) = best(|| naive(&data));
    report("naive std split into (key, value)", n, mb, t_naive);

    let gbs = |t: Duration| mb / 1e3 / t.as_secs_f64();
    println!(
        "ratio to memmem: decode+parse {:.2} (one buffer), {:.2} (64 KiB reads), parser alone {:.2}; naive split takes {:.2}x the time of decode+parse (64 KiB reads)",
        gbs(t_whole) / gbs(t_memmem),
        gbs(t_reads) / gbs(t_memmem),
        gbs(t_parse) / gbs(t_memmem),
        t_naive.as_secs_f64() / t_reads.as_secs_f64(),
    );
    Ok(())
}

/// Best wall time of a few rounds, and the last result.
fn best<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    best_with(|| (), |()| f())
}

/// Like [`best`], with an untimed `setup` before each round.
fn best_with<S, T>(mut setup: impl FnMut() -> S, mut f: impl FnMut(S) -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..ROUNDS {
        let input = setup();
        let t = Instant::now();
        let r = std::hint::black_box(f(input));
        best = best.min(t.elapsed());
        last = Some(r);
    }
    (best, last.expect("at least one round"))
}

/// Decoder + parser over a stream already in the read buffer.
fn decode_buffer(mut buf: BytesMut) -> usize {
    let mut codec = AmiCodec::new();
    let mut n = 0;
    while let Some(frame) = codec.decode_eof(&mut buf).expect("decode never errors") {
        n += usize::from(matches!(frame, Frame::Message(_)));
    }
    n
}

fn report(what: &str, items: usize, mb: f64, t: Duration) {
    let s = t.as_secs_f64();
    println!(
        "{what:<36} {items:>8} items in {s:.3} s = {:>10.0} items/s, {:>6.0} MB/s = {:.2} GB/s",
        items as f64 / s,
        mb / s,
        mb / 1e3 / s
    );
}

/// Decoder + parser, fed `chunk` bytes at a time; returns the number of messages.
fn decode(data: &[u8], chunk: usize) -> usize {
    let mut codec = AmiCodec::new();
    let mut buf = BytesMut::with_capacity(chunk.min(data.len()) + 1);
    let mut n = 0;
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(frame) = codec.decode(&mut buf).expect("decode never errors") {
            if let Frame::Message(m) = frame {
                n += usize::from(!m.is_empty());
            }
        }
    }
    while let Some(frame) = codec.decode_eof(&mut buf).expect("decode never errors") {
        n += usize::from(matches!(frame, Frame::Message(_)));
    }
    n
}

/// Frames as the codec would split them (for the parser-only measurement).
fn split_frames(data: &[u8]) -> Vec<Bytes> {
    let mut codec = AmiCodec::new();
    let mut buf = BytesMut::from(data);
    let mut out = Vec::new();
    while let Some(frame) = codec.decode_eof(&mut buf).expect("decode never errors") {
        if let Frame::Message(m) = frame {
            out.push(m.frame().clone());
        }
    }
    out
}

/// The obvious std-only version: lines by `split`, the first colon by `position`.
fn naive(data: &[u8]) -> usize {
    let mut messages = 0;
    let mut pairs: Vec<(&[u8], &[u8])> = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if !pairs.is_empty() {
                messages += 1;
                std::hint::black_box(&pairs);
                pairs.clear();
            }
            continue;
        }
        if let Some(i) = line.iter().position(|&b| b == b':') {
            let v = &line[i + 1..];
            pairs.push((&line[..i], v.strip_prefix(b" ").unwrap_or(v)));
        }
    }
    messages + usize::from(!pairs.is_empty())
}
