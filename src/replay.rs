//! `missedcalld replay`: recorded AMI byte streams through the live pipeline.
//!
//! Files are read in chunks through the same [`AmiCodec`] the socket uses; the event clock
//! is the `Timestamp` header (events without one take the last time seen). Files are one
//! stream in order, so a call may span two files; calls still open at the end are finished
//! with the `gap` flag.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::ami::{AmiCodec, Frame, Message};
use crate::pipeline::{CallSink, Pipeline};
use crate::time::EventTime;

/// Bytes read from a file at a time.
const READ_CHUNK: usize = 1 << 20;

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

/// Decodes every message of `files` in order and hands each to `each` with the event clock.
pub fn for_each_message(
    files: &[PathBuf],
    mut each: impl FnMut(&Message, EventTime) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut bytes_read = 0u64;
    let mut clock = EventTime::default();
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
                    Some(Frame::Message(msg)) => {
                        if let Some(t) = msg.get("Timestamp").and_then(EventTime::parse_ami) {
                            clock = clock.max(t);
                        }
                        each(&msg, clock)?;
                    }
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

/// Replays `files` into `pipeline`, then finishes the calls left open.
pub fn replay_into<S>(files: &[PathBuf], pipeline: &mut Pipeline<S>) -> anyhow::Result<ReplayStats>
where
    S: CallSink,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    let mut stats = ReplayStats::default();
    stats.bytes = for_each_message(files, |msg, _clock| {
        stats.messages += 1;
        if let Some(name) = msg.event_name() {
            stats.events += 1;
            match stats.by_name.get_mut(&*String::from_utf8_lossy(name)) {
                Some(n) => *n += 1,
                None => {
                    stats
                        .by_name
                        .insert(String::from_utf8_lossy(name).into_owned(), 1);
                }
            }
        }
        pipeline.on_recorded(msg)?;
        Ok(())
    })?;
    pipeline.finish_all()?;
    Ok(stats)
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
