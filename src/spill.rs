//! The queue between the AMI socket reader and the pipeline thread, bounded by bytes in memory.
//!
//! Asterisk disconnects a reader that stops reading, so the producer never waits: what does
//! not fit under the memory limit is appended to a spill file (in the state directory) and
//! read back in order once the consumer has caught up. Invariants:
//! - FIFO across memory and file: while the file holds unread records nothing goes to memory,
//!   so every event in memory is older than every event in the file.
//! - Nothing is lost: a failed write to the file keeps the events in memory (over the limit)
//!   and logs an ERROR once.
//! - After a burst the memory is given back (buffers over a small size shrink when drained)
//!   and the file is emptied when the producer sees it fully read.
//! - The consumer is woken once per batch pushed while it is idle, not once per event.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tracing::{error, info, warn};

use crate::ami::{ClientEvent, Message, parse_message};
use crate::time::LocalTime;

/// Default bytes of events held in memory before spilling.
pub const DEFAULT_MEMORY_LIMIT: usize = 16 << 20;
/// Name of the spill file inside the state directory.
pub const SPILL_FILE_NAME: &str = "ami-queue.spill";

/// Bytes read from the spill file at a time.
const READ_CHUNK: usize = 256 << 10;
/// Queues and buffers with more capacity than this are shrunk once empty.
const KEEP_CAPACITY_BYTES: usize = 256 << 10;
/// What a queued event costs besides its frame and header spans (enum, Vec and Bytes heads).
const EVENT_OVERHEAD: usize = 96;

/// A record's kind in the spill file.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Tag {
    Message = 0,
    Connected = 1,
    Channels = 2,
    Disconnected = 3,
}

/// Counters of the queue (for benchmarks, tests and logs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    /// Events queued and not yet taken, in memory and in the file.
    pub queued: u64,
    /// Bytes of events in memory now.
    pub memory_bytes: usize,
    /// Most bytes of events in memory at once.
    pub peak_memory_bytes: usize,
    /// Events written to the file since the start.
    pub spilled_total: u64,
}

/// Shared between the two ends.
struct Shared {
    state: Mutex<State>,
    file: File,
    path: PathBuf,
    limit: usize,
}

/// Events live in three places, oldest first: `mem`, the file, `after_file`.
struct State {
    mem: VecDeque<ClientEvent>,
    mem_bytes: usize,
    /// Records in the file not yet taken by the consumer.
    spilled_unread: u64,
    /// End of the complete records in the file: the consumer never reads past it, so it
    /// never sees a batch the producer is still writing.
    file_end: u64,
    /// Events that could not be written to the file (disk full): newer than the file's.
    after_file: VecDeque<ClientEvent>,
    /// Events go past memory (from the first spilled event until the file is fully read);
    /// whichever end first sees it fully read empties the file ([`end_episode`]).
    spilling: bool,
    /// Where the producer writes the next record in the file.
    write_pos: u64,
    /// A write failed in this episode (logged once).
    write_failed: bool,
    /// Bumped when the file is emptied; the consumer then reads from the start again.
    epoch: u64,
    /// The consumer was told there is work and has not yet found the queue empty.
    notified: bool,
    stats: QueueStats,
}

impl State {
    fn take_memory(&mut self, ev: ClientEvent, cost: usize) {
        self.mem_bytes += cost;
        self.stats.memory_bytes = self.mem_bytes;
        self.stats.peak_memory_bytes = self.stats.peak_memory_bytes.max(self.mem_bytes);
        self.mem.push_back(ev);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent counters: keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Once the file is fully read and nothing waits behind it: empty it and go back to memory.
/// Both ends call it (under the lock), so the file is emptied as soon as the consumer has
/// read it, even when no event comes after a burst.
fn end_episode_if_read(shared: &Shared, st: &mut State) {
    if !st.spilling || st.spilled_unread > 0 || !st.after_file.is_empty() {
        return;
    }
    st.spilling = false;
    st.epoch += 1;
    st.file_end = 0;
    st.write_pos = 0;
    st.write_failed = false;
    if let Err(e) = shared.file.set_len(0) {
        warn!(file = %shared.path.display(), "cannot empty the spill file: {e}");
    }
    info!(
        spilled_total = st.stats.spilled_total,
        "AMI event queue caught up with the spill file"
    );
}

/// Creates the queue with its spill file at `dir`/[`SPILL_FILE_NAME`] (emptied if a previous
/// run left one) and `limit` bytes of events in memory at most.
pub fn queue(dir: &Path, limit: usize) -> io::Result<(QueueSender, QueueReceiver)> {
    let path = dir.join(SPILL_FILE_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("spill file {}: {e}", path.display())))?;
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            mem: VecDeque::new(),
            mem_bytes: 0,
            spilled_unread: 0,
            file_end: 0,
            after_file: VecDeque::new(),
            spilling: false,
            epoch: 0,
            write_pos: 0,
            write_failed: false,
            notified: false,
            stats: QueueStats::default(),
        }),
        file,
        path,
        limit,
    });
    Ok((
        QueueSender {
            shared: Arc::clone(&shared),
            scratch: Vec::new(),
        },
        QueueReceiver {
            shared,
            taken: VecDeque::new(),
            taken_bytes: 0,
            epoch: 0,
            read_pos: 0,
            buf: Vec::new(),
            buf_at: 0,
        },
    ))
}

/// What a [`QueueSender::push`] left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// The consumer was idle: wake it.
    pub wake: bool,
    /// Events queued and not yet taken, this batch included.
    pub queued: u64,
}

/// The producing end (the socket reader's thread).
pub struct QueueSender {
    shared: Arc<Shared>,
    scratch: Vec<u8>,
}

impl QueueSender {
    /// Queues `events` in order; says whether the consumer must be woken (it was idle).
    pub fn push(&mut self, events: impl IntoIterator<Item = ClientEvent>) -> Pushed {
        let mut to_file: Vec<ClientEvent> = Vec::new();
        let shared = Arc::clone(&self.shared);
        let mut st = shared.lock();
        end_episode_if_read(&self.shared, &mut st);
        for ev in events {
            st.stats.queued += 1;
            if !st.after_file.is_empty() {
                st.after_file.push_back(ev);
                continue;
            }
            let cost = cost(&ev);
            if !st.spilling && st.mem_bytes + cost <= self.shared.limit {
                st.take_memory(ev, cost);
                continue;
            }
            if !st.spilling {
                st.spilling = true;
                warn!(
                    limit_bytes = self.shared.limit,
                    file = %self.shared.path.display(),
                    "AMI event queue is full in memory: spilling to the file until the pipeline catches up"
                );
            }
            encode(&ev, &mut self.scratch);
            to_file.push(ev);
        }
        if !to_file.is_empty() {
            // Written under the lock so the consumer never counts a record before its bytes
            // are there: one positional write of the whole batch, to the page cache.
            match self.shared.file.write_all_at(&self.scratch, st.write_pos) {
                Ok(()) => {
                    st.write_pos += self.scratch.len() as u64;
                    st.file_end = st.write_pos;
                    st.spilled_unread += to_file.len() as u64;
                    st.stats.spilled_total += to_file.len() as u64;
                }
                Err(e) => {
                    if !st.write_failed {
                        error!(
                            file = %self.shared.path.display(),
                            "cannot write the spill file, keeping events in memory: {e}"
                        );
                        st.write_failed = true;
                    }
                    st.after_file.extend(to_file);
                }
            }
            self.scratch.clear();
            if self.scratch.capacity() > KEEP_CAPACITY_BYTES {
                self.scratch = Vec::new();
            }
        }
        let wake = !st.notified && st.stats.queued > 0;
        st.notified |= wake;
        Pushed {
            wake,
            queued: st.stats.queued,
        }
    }

    /// The queue's counters.
    pub fn stats(&self) -> QueueStats {
        self.shared.lock().stats
    }
}

/// Most in-memory events the consumer takes under one lock.
const TAKE_AT_ONCE: usize = 512;

/// The consuming end (the pipeline thread).
pub struct QueueReceiver {
    shared: Arc<Shared>,
    /// Events taken from memory under one lock, oldest first; still counted in the shared
    /// `mem_bytes` (as `taken_bytes`) until the next take, so the memory bound holds.
    taken: VecDeque<ClientEvent>,
    taken_bytes: usize,
    /// The file epoch `read_pos` and `buf` belong to.
    epoch: u64,
    /// File offset of the end of `buf`.
    read_pos: u64,
    /// Bytes read from the file, not yet decoded from `buf_at` on.
    buf: Vec<u8>,
    buf_at: usize,
}

impl QueueReceiver {
    /// The oldest event, or `None` when the queue is empty (the next push then wakes).
    /// Events in memory are taken up to [`TAKE_AT_ONCE`] under one lock, so the producer and
    /// the consumer meet once per batch, not once per event.
    pub fn pop(&mut self) -> Option<ClientEvent> {
        if let Some(ev) = self.taken.pop_front() {
            return Some(ev);
        }
        let mut st = self.shared.lock();
        // What was taken last time is gone now.
        st.mem_bytes -= std::mem::take(&mut self.taken_bytes);
        st.stats.memory_bytes = st.mem_bytes;
        if !st.mem.is_empty() {
            let n = st.mem.len().min(TAKE_AT_ONCE);
            self.taken.extend(st.mem.drain(..n));
            self.taken_bytes = self.taken.iter().map(cost).sum();
            st.stats.queued -= n as u64;
            if st.mem.is_empty() {
                shrink(&mut st.mem);
            }
            return self.taken.pop_front();
        }
        while st.spilled_unread > 0 {
            if st.epoch != self.epoch {
                self.epoch = st.epoch;
                self.read_pos = 0;
                self.buf.clear();
                self.buf_at = 0;
            }
            // Reading needs no lock: the producer only appends past `file_end`.
            let end = st.file_end;
            drop(st);
            let read = self.next_record(end);
            st = self.shared.lock();
            st.spilled_unread -= 1;
            st.stats.queued -= 1;
            if st.spilled_unread == 0 {
                self.buf = Vec::new();
                self.buf_at = 0;
            }
            match read {
                Ok(ev) => return Some(ev),
                Err(e) => {
                    error!(
                        file = %self.shared.path.display(),
                        "cannot read an event back from the spill file, skipping it: {e}"
                    );
                }
            }
        }
        if let Some(ev) = st.after_file.pop_front() {
            st.stats.queued -= 1;
            if st.after_file.is_empty() {
                shrink(&mut st.after_file);
            }
            return Some(ev);
        }
        end_episode_if_read(&self.shared, &mut st);
        st.notified = false;
        None
    }

    /// Decodes the next record of the file, reading more of it as needed.
    fn next_record(&mut self, end: u64) -> io::Result<ClientEvent> {
        let len = u32::from_le_bytes(self.take(4, end)?.try_into().expect("4 bytes")) as usize;
        let body = self.take(len, end)?;
        decode(body)
    }

    /// The next `n` bytes of the file, reading no further than `end`.
    fn take(&mut self, n: usize, end: u64) -> io::Result<&[u8]> {
        if self.buf.len() - self.buf_at < n {
            self.buf.drain(..self.buf_at);
            self.buf_at = 0;
            while self.buf.len() < n {
                let have = self.buf.len();
                let want = (READ_CHUNK.max(n - have) as u64).min(end.saturating_sub(self.read_pos));
                self.buf.resize(have + want as usize, 0);
                let got = self
                    .shared
                    .file
                    .read_at(&mut self.buf[have..], self.read_pos)?;
                self.buf.truncate(have + got);
                self.read_pos += got as u64;
                if got == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the spill file ends inside a record",
                    ));
                }
            }
        }
        let at = self.buf_at;
        self.buf_at += n;
        Ok(&self.buf[at..at + n])
    }

    /// The queue's counters.
    pub fn stats(&self) -> QueueStats {
        self.shared.lock().stats
    }
}

fn shrink<T>(q: &mut VecDeque<T>) {
    if q.capacity() * std::mem::size_of::<T>() > KEEP_CAPACITY_BYTES {
        *q = VecDeque::new();
    }
}

/// Bytes an event holds in memory while queued (an estimate that errs high).
fn cost(ev: &ClientEvent) -> usize {
    let msg_cost = |m: &Message| {
        m.frame().len() + m.len() * std::mem::size_of::<crate::ami::message::HeaderSpan>()
    };
    EVENT_OVERHEAD
        + match ev {
            ClientEvent::Message { msg, .. } => msg_cost(msg),
            ClientEvent::Channels(items) => items.iter().map(|m| msg_cost(m) + 32).sum(),
            ClientEvent::Connected { banner } => banner.len(),
            ClientEvent::Disconnected { cause } => cause.len(),
        }
}

/// Appends one record: `u32` length of the rest, tag, payload.
fn encode(ev: &ClientEvent, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    match ev {
        ClientEvent::Message { msg, received_at } => {
            out.push(Tag::Message as u8);
            out.extend_from_slice(&received_at.as_micros().to_le_bytes());
            out.extend_from_slice(msg.frame());
        }
        ClientEvent::Connected { banner } => {
            out.push(Tag::Connected as u8);
            out.extend_from_slice(banner.as_bytes());
        }
        ClientEvent::Channels(items) => {
            out.push(Tag::Channels as u8);
            for m in items {
                out.extend_from_slice(&(m.frame().len() as u32).to_le_bytes());
                out.extend_from_slice(m.frame());
            }
        }
        ClientEvent::Disconnected { cause } => {
            out.push(Tag::Disconnected as u8);
            out.extend_from_slice(cause.as_bytes());
        }
    }
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("spill record: {what}"))
}

/// A frame written by [`encode`], parsed again (it was parsed once before it was queued).
fn reparse(frame: &[u8]) -> io::Result<Message> {
    parse_message(Bytes::copy_from_slice(frame)).map_err(|e| bad(&e.to_string()))
}

fn decode(body: &[u8]) -> io::Result<ClientEvent> {
    let (&tag, rest) = body.split_first().ok_or_else(|| bad("empty"))?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Ok(match tag {
        t if t == Tag::Message as u8 => {
            let (at, frame) = rest.split_at_checked(8).ok_or_else(|| bad("short"))?;
            ClientEvent::Message {
                msg: reparse(frame)?,
                received_at: LocalTime::from_micros(i64::from_le_bytes(
                    at.try_into().expect("8 bytes"),
                )),
            }
        }
        t if t == Tag::Connected as u8 => ClientEvent::Connected { banner: text(rest) },
        t if t == Tag::Disconnected as u8 => ClientEvent::Disconnected { cause: text(rest) },
        t if t == Tag::Channels as u8 => {
            let mut items = Vec::new();
            let mut rest = rest;
            while !rest.is_empty() {
                let (len, tail) = rest.split_at_checked(4).ok_or_else(|| bad("short"))?;
                let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
                let (frame, tail) = tail.split_at_checked(len).ok_or_else(|| bad("short"))?;
                items.push(reparse(frame)?);
                rest = tail;
            }
            ClientEvent::Channels(items)
        }
        _ => return Err(bad("unknown tag")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: usize) -> ClientEvent {
        let id = format!("1700000000.{i}");
        let msg = Message::from_pairs(&[
            ("Event", "Newchannel"),
            ("Uniqueid", id.as_str()),
            ("CallerIDName", "A \\\"quoted\\\" name"),
        ]);
        ClientEvent::Message {
            msg,
            received_at: LocalTime::from_micros(i as i64),
        }
    }

    fn id_of(ev: &ClientEvent) -> String {
        match ev {
            ClientEvent::Message { msg, received_at } => {
                format!(
                    "{}@{}",
                    msg.get_str("Uniqueid").unwrap(),
                    received_at.as_micros()
                )
            }
            ClientEvent::Channels(items) => format!("channels:{}", items.len()),
            ClientEvent::Connected { banner } => format!("connected:{banner}"),
            ClientEvent::Disconnected { cause } => format!("disconnected:{cause}"),
        }
    }

    fn drain(rx: &mut QueueReceiver) -> Vec<String> {
        std::iter::from_fn(|| rx.pop()).map(|e| id_of(&e)).collect()
    }

    #[test]
    fn events_past_the_limit_go_through_the_file_in_order() {
        let dir = tempfile::tempdir().unwrap();
        // Room for about ten events in memory.
        let (mut tx, mut rx) = queue(dir.path(), 10 * cost(&event(0))).unwrap();
        let mut sent = Vec::new();
        let mut got = Vec::new();
        let mut n = 0;
        // Bursts of 40 with partial drains in between: memory, file and memory again.
        for round in 0..5 {
            let mut batch = vec![ClientEvent::Connected {
                banner: format!("round {round}"),
            }];
            for _ in 0..40 {
                batch.push(event(n));
                n += 1;
            }
            batch.push(ClientEvent::Channels(vec![
                Message::from_pairs(&[("Event", "CoreShowChannel"), ("Uniqueid", "1.1")]),
                Message::from_pairs(&[("Event", "CoreShowChannel"), ("Uniqueid", "1.2")]),
            ]));
            sent.extend(batch.iter().map(id_of));
            tx.push(batch);
            assert!(tx.stats().memory_bytes <= 10 * cost(&event(0)));
            for _ in 0..25 {
                got.extend(rx.pop().map(|e| id_of(&e)));
            }
        }
        got.extend(drain(&mut rx));
        assert_eq!(got, sent);
        let stats = rx.stats();
        assert!(stats.spilled_total > 100, "{stats:?}");
        assert_eq!(stats.queued, 0);
        // The consumer that found the file read emptied it: no event has to come after a
        // burst for the disk to be given back.
        let path = dir.path().join(SPILL_FILE_NAME);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        // The next burst spills from the start of the file again.
        let again: Vec<_> = (1000..1030).map(event).collect();
        let ids: Vec<_> = again.iter().map(id_of).collect();
        tx.push(again);
        assert!(std::fs::metadata(&path).unwrap().len() > 0);
        assert_eq!(drain(&mut rx), ids);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        tx.push([ClientEvent::Disconnected { cause: "x".into() }]);
        assert_eq!(drain(&mut rx), vec!["disconnected:x".to_string()]);
        drop((tx, rx));
        assert!(!path.exists(), "the spill file is removed with the queue");
    }

    #[test]
    fn a_spilled_message_reads_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let (mut tx, mut rx) = queue(dir.path(), 0).unwrap();
        let ClientEvent::Message { msg, .. } = event(7) else {
            unreachable!()
        };
        tx.push([event(7)]);
        assert_eq!(tx.stats().spilled_total, 1);
        let Some(ClientEvent::Message {
            msg: back,
            received_at,
        }) = rx.pop()
        else {
            panic!("no event back")
        };
        assert_eq!(back, msg);
        assert_eq!(received_at, LocalTime::from_micros(7));
    }

    #[test]
    fn the_consumer_is_woken_once_per_idle_period() {
        let dir = tempfile::tempdir().unwrap();
        let (mut tx, mut rx) = queue(dir.path(), DEFAULT_MEMORY_LIMIT).unwrap();
        assert!(tx.push([event(1)]).wake, "idle consumer: wake it");
        let second = tx.push([event(2)]);
        assert!(!second.wake, "already told");
        assert_eq!(second.queued, 2);
        assert_eq!(drain(&mut rx).len(), 2);
        assert!(
            tx.push([event(3)]).wake,
            "it found the queue empty: wake it again"
        );
    }

    #[test]
    fn producer_and_consumer_threads_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut tx, mut rx) = queue(dir.path(), 50 * cost(&event(0))).unwrap();
        const N: usize = 20_000;
        let producer = std::thread::spawn(move || {
            for chunk in (0..N).collect::<Vec<_>>().chunks(37) {
                tx.push(chunk.iter().map(|&i| event(i)));
            }
            tx.stats()
        });
        // A consumer late to start: the producer runs into the limit.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut got = Vec::with_capacity(N);
        while got.len() < N {
            match rx.pop() {
                Some(ClientEvent::Message { received_at, .. }) => {
                    got.push(received_at.as_micros() as usize)
                }
                Some(other) => panic!("unexpected {other:?}"),
                None => std::thread::yield_now(),
            }
        }
        let stats = producer.join().unwrap();
        assert_eq!(got, (0..N).collect::<Vec<_>>());
        assert!(stats.peak_memory_bytes <= 50 * cost(&event(0)));
        assert!(stats.spilled_total > 0, "{stats:?}");
    }
}
