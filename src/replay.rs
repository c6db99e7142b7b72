//! `missedcalld replay`: recorded AMI byte streams through the live pipeline.
//!
//! Files are read in chunks through the same [`AmiCodec`] the socket uses; the event clock
//! is the `Timestamp` header (events without one take the last time seen). Files are one
//! stream in order, so a call may span two files; calls still open at the end are finished
//! with the `gap` flag.
//!
//! [`replay_pipelined`] (what the `replay` command runs) reads, frames and parses on one
//! thread and tracks on the calling one, handing messages over in batches; [`replay_into`]
//! does both on one thread and is the reference the pipelined path must match byte for byte.
//!
//! Every input is checked first ([`check_inputs`]): a missing file, a directory, or a file
//! whose start shows no AMI stream (a binary, random bytes, an empty file) fails the replay
//! before anything is written.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use bytes::BytesMut;

use crate::ami::{AmiCodec, Frame, Message};
use crate::pipeline::{CallSink, Pipeline};
use crate::time::EventTime;
use tokio_util::codec::Decoder;

/// Bytes read from a file at a time. A read buffer is freed once every message framed in it
/// has been tracked; 128 KiB ones are reused from the allocator's cache while 1 MiB ones came
/// fresh from the kernel (page faults and zeroing on the reading thread, 0.47 -> 0.39 s
/// median for the 1M-event stream).
const READ_CHUNK: usize = 128 << 10;
/// How much of each input's start [`check_inputs`] looks at.
const SNIFF_BYTES: u64 = 256 * 1024;

/// Checks that every file exists, is a regular file, and starts like an AMI stream: no NUL
/// byte, and a banner or a message with `Event` or `Response` within its first 256 KiB.
/// Only the start is read, so a replay still reads each capture once.
pub fn check_inputs(files: &[PathBuf]) -> anyhow::Result<()> {
    files.iter().try_for_each(|p| check_input(p))
}

fn check_input(path: &Path) -> anyhow::Result<()> {
    let shown = path.display();
    let meta = std::fs::metadata(path).with_context(|| format!("cannot open capture {shown}"))?;
    if meta.is_dir() {
        anyhow::bail!("{shown} is a directory, not an AMI capture file");
    }
    if !meta.is_file() {
        anyhow::bail!("{shown} is not a regular file");
    }
    let file = File::open(path).with_context(|| format!("cannot open capture {shown}"))?;
    let mut head = Vec::new();
    file.take(SNIFF_BYTES)
        .read_to_end(&mut head)
        .with_context(|| format!("reading {shown}"))?;
    if head.is_empty() {
        anyhow::bail!("{shown} is empty: no AMI stream in it");
    }
    if head.contains(&0) {
        anyhow::bail!("{shown} holds binary data (a NUL byte): not an AMI stream");
    }
    let whole = (head.len() as u64) < SNIFF_BYTES;
    let mut buf = BytesMut::from(&head[..]);
    let mut codec = AmiCodec::new();
    loop {
        let frame = if whole {
            codec.decode_eof(&mut buf)
        } else {
            codec.decode(&mut buf)
        }
        .with_context(|| format!("decoding {shown}"))?;
        match frame {
            Some(Frame::Banner(_)) => return Ok(()),
            Some(Frame::Message(m)) if m.event_name().is_some() || m.get("Response").is_some() => {
                return Ok(());
            }
            Some(Frame::Message(_)) => {}
            None => break,
        }
    }
    anyhow::bail!(
        "{shown} is not an AMI capture: no banner and no AMI event in its first {} KiB",
        SNIFF_BYTES / 1024
    )
}

/// What a replay saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayStats {
    /// Bytes read.
    pub bytes: u64,
    /// Messages decoded (events, replies, list items).
    pub messages: u64,
    /// Events decoded.
    pub events: u64,
    /// Events by name.
    pub by_name: BTreeMap<String, u64>,
}

/// Messages handed from the reading thread to the tracking thread at once: one channel
/// hand-off per batch instead of one per event.
const BATCH: usize = 256;
/// Batches in flight between the two threads; bounds the memory a fast reader can fill.
const BATCHES_IN_FLIGHT: usize = 4;

/// Decodes every message of `files` in order and hands each to `each` with the event clock.
pub fn for_each_message(
    files: &[PathBuf],
    mut each: impl FnMut(&Message, EventTime) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut clock = EventTime::default();
    decode_files(files, |msg| {
        if let Some(t) = msg.get("Timestamp").and_then(EventTime::parse_ami) {
            clock = clock.max(t);
        }
        each(&msg, clock)
    })
}

/// Reads `files` in order and hands each message to `each` (banners are skipped; a
/// malformed message is logged and dropped). Returns the bytes read.
fn decode_files(
    files: &[PathBuf],
    mut each: impl FnMut(Message) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    decode_files_recycling(files, |msg, _| each(msg))
}

/// [`decode_files`], handing `each` the codec too, to give it back messages that are done
/// with ([`AmiCodec::recycle`]).
fn decode_files_recycling(
    files: &[PathBuf],
    mut each: impl FnMut(Message, &mut AmiCodec) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut bytes_read = 0u64;
    for path in files {
        let mut file =
            File::open(path).with_context(|| format!("cannot open capture {}", path.display()))?;
        // A fresh codec per file: each capture starts with its own banner.
        let mut codec = AmiCodec::new();
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        loop {
            buf.reserve(READ_CHUNK);
            let n = read_chunk(&mut file, &mut buf, path)?;
            bytes_read += n as u64;
            let eof = n == 0;
            loop {
                let frame = if eof {
                    codec.decode_eof(&mut buf)
                } else {
                    codec.decode(&mut buf)
                }
                .with_context(|| format!("decoding {}", path.display()))?;
                match frame {
                    Some(Frame::Message(msg)) => each(msg, &mut codec)?,
                    Some(Frame::Banner(_)) => {}
                    None => break,
                }
            }
            if eof {
                break;
            }
        }
    }
    Ok(bytes_read)
}

fn read_chunk(file: &mut File, buf: &mut BytesMut, path: &Path) -> anyhow::Result<usize> {
    let start = buf.len();
    buf.resize(start + READ_CHUNK, 0);
    let n = loop {
        match file.read(&mut buf[start..]) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                buf.truncate(start);
                return Err(e).with_context(|| format!("reading {}", path.display()));
            }
        }
    };
    buf.truncate(start + n);
    Ok(n)
}

/// Counts messages and events by name without allocating per event: a name is copied once,
/// the first time it is seen.
#[derive(Default)]
struct Counter {
    messages: u64,
    events: u64,
    by_name: HashMap<Box<[u8]>, u64, foldhash::fast::FixedState>,
}

impl Counter {
    fn add(&mut self, msg: &Message) {
        self.messages += 1;
        let Some(name) = msg.event_name() else { return };
        self.events += 1;
        match self.by_name.get_mut(name) {
            Some(n) => *n += 1,
            None => {
                self.by_name.insert(name.into(), 1);
            }
        }
    }

    fn into_stats(self, bytes: u64) -> ReplayStats {
        let mut by_name = BTreeMap::new();
        for (name, n) in self.by_name {
            *by_name
                .entry(String::from_utf8_lossy(&name).into_owned())
                .or_insert(0) += n;
        }
        ReplayStats {
            bytes,
            messages: self.messages,
            events: self.events,
            by_name,
        }
    }
}

/// Replays `files` into `pipeline` on the calling thread, then finishes the calls left open.
pub fn replay_into<S>(files: &[PathBuf], pipeline: &mut Pipeline<S>) -> anyhow::Result<ReplayStats>
where
    S: CallSink,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    let mut counter = Counter::default();
    let bytes = decode_files(files, |msg| {
        counter.add(&msg);
        pipeline.on_recorded(&msg)?;
        Ok(())
    })?;
    pipeline.finish_all()?;
    Ok(counter.into_stats(bytes))
}

/// The reading thread gave up because the tracking side stopped first (its error wins).
#[derive(Debug, thiserror::Error)]
#[error("the tracking side stopped")]
struct TrackingStopped;

/// [`replay_into`] on two cores: a thread reads and frames while the calling thread parses
/// and tracks, in batches of [`BATCH`] frames. Same order, same results.
pub fn replay_pipelined<S>(
    files: &[PathBuf],
    pipeline: &mut Pipeline<S>,
) -> anyhow::Result<ReplayStats>
where
    S: CallSink,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    replay_in_batches(files, pipeline, BATCH)
}

/// [`replay_pipelined`] with `batch` messages per hand-off (tests use small ones).
pub fn replay_in_batches<S>(
    files: &[PathBuf],
    pipeline: &mut Pipeline<S>,
    batch_len: usize,
) -> anyhow::Result<ReplayStats>
where
    S: CallSink,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    let batch_len = batch_len.max(1);
    // Reading, framing and parsing are one pass on the reading thread; the typed view,
    // tracking and the store's side are the other's. That balances the two cores.
    type Batch = Vec<Message>;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(BATCHES_IN_FLIGHT);
    // Batches go back to the reading thread once tracked, so their buffers are allocated once.
    let (spare_tx, spare_rx) = std::sync::mpsc::channel::<Batch>();
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("replay-read".into())
            .spawn_scoped(scope, move || -> anyhow::Result<u64> {
                let mut batch = Vec::with_capacity(batch_len);
                let bytes = decode_files_recycling(files, |msg, codec| {
                    batch.push(msg);
                    if batch.len() >= batch_len {
                        let next = match spare_rx.try_recv() {
                            Ok(mut done) => {
                                done.drain(..).for_each(|m| codec.recycle(m));
                                done
                            }
                            Err(_) => Vec::with_capacity(batch_len),
                        };
                        tx.send(std::mem::replace(&mut batch, next))
                            .map_err(|_| TrackingStopped)?;
                    }
                    Ok(())
                })?;
                if !batch.is_empty() {
                    tx.send(batch).map_err(|_| TrackingStopped)?;
                }
                Ok(bytes)
            })
            .context("starting the reading thread")?;
        let mut counter = Counter::default();
        let tracked = (|| -> anyhow::Result<()> {
            for batch in rx.iter() {
                for msg in &batch {
                    counter.add(msg);
                    pipeline.on_recorded(msg)?;
                }
                // The messages go back with the batch: the reading thread allocated them,
                // so it frees and reuses them.
                let _ = spare_tx.send(batch);
            }
            Ok(())
        })();
        // On a tracking error the reader's next send fails and it stops.
        drop(rx);
        let read = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the reading thread panicked"))?;
        tracked?;
        let stats = counter.into_stats(read?);
        pipeline.finish_all()?;
        Ok(stats)
    })
}

impl ReplayStats {
    /// The `--stats` table: events by name, most frequent first, then totals.
    pub fn render(&self) -> String {
        let mut rows: Vec<_> = self.by_name.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut out = String::new();
        for (name, n) in rows {
            out.push_str(&format!("{n:>10}  {name}\n"));
        }
        out.push_str(&format!(
            "{:>10}  events ({} messages, {} bytes)\n",
            self.events, self.messages, self.bytes
        ));
        out
    }
}
