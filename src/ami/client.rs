//! The AMI client: the only owner of the PBX socket.
//!
//! One task connects, logs in (plain or MD5 challenge), resyncs with `CoreShowChannels`, then
//! reads forever: it frames and parses every event and hands them to an [`EventSink`] that never
//! waits (an **unbounded** channel by default), because Asterisk drops a client whose socket
//! write blocks for 100 ms (AMI-FACTS 10). The events are handed over one batch per socket
//! read (all the messages decoded from the read buffer, in wire order, before the socket is
//! polled again), so a busy PBX's thousands of small writes a second cost the consumer one
//! wake-up per read, not one per event. The queue depth is logged when it grows past 1k, 10k,
//! 100k...
//!
//! Keep-alive is our own `Ping` (AMI-FACTS 11); a missing reply, EOF, an I/O error or a failed
//! login leads to exactly one WARN with the cause, then a reconnect after an exponential backoff
//! with jitter, reset once a connection stayed up for `stable_after`. On cancel the client sends
//! `Logoff` (best effort) and returns.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::codec::{Decoder, FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::action::{Action, md5_key};
use super::codec::{AmiCodec, AmiError, Frame};
use super::message::Message;
use crate::time::LocalTime;

pub use super::config::{AuthMethod, ClientConfig, DEFAULT_READ_PAUSE};

/// What the client reports, in wire order.
#[derive(Debug, Clone)]
pub enum ClientEvent {
    /// Logged in; `banner` is the first line the PBX sent.
    Connected {
        /// E.g. `Asterisk Call Manager/11.0.0`.
        banner: String,
    },
    /// The `CoreShowChannel` items of the resync after every login (may be empty). Events
    /// received while the list was collected were already sent, in wire order.
    Channels(Vec<Message>),
    /// An event (replies to our own actions are not forwarded).
    Message {
        /// The event.
        msg: Message,
        /// When the socket reader parsed it, on this machine's clock.
        received_at: LocalTime,
    },
    /// The connection was lost after `Connected`; a reconnect follows.
    Disconnected {
        /// Why, in words.
        cause: String,
    },
}

/// Where the client hands its events, a batch at a time. It must not wait for the consumer:
/// [`EventSink::deliver`] runs on the socket reader's task.
pub trait EventSink: Send + 'static {
    /// Takes every event of `batch` (in wire order), leaving it empty. Returns how many events
    /// now wait for the consumer (for the depth warnings), or `None` when the consumer is gone
    /// (the client then stops).
    fn deliver(&mut self, batch: &mut Vec<ClientEvent>) -> Option<usize>;
}

/// The default sink: an unbounded channel read through [`ClientHandle`].
struct ChannelSink {
    tx: UnboundedSender<ClientEvent>,
    depth: Arc<AtomicUsize>,
}

impl EventSink for ChannelSink {
    fn deliver(&mut self, batch: &mut Vec<ClientEvent>) -> Option<usize> {
        let n = batch.len();
        let depth = self.depth.fetch_add(n, Ordering::Relaxed) + n;
        for (i, ev) in batch.drain(..).enumerate() {
            if self.tx.send(ev).is_err() {
                self.depth.fetch_sub(n - i, Ordering::Relaxed);
                return None;
            }
        }
        Some(depth)
    }
}

/// The running client: its event queue, the queue depth and the task.
pub struct ClientHandle {
    /// Events in wire order. Receive with [`ClientHandle::recv`] (or decrement `queue_depth`
    /// yourself) so the published depth stays right.
    pub events: UnboundedReceiver<ClientEvent>,
    /// Events queued and not yet received.
    pub queue_depth: Arc<AtomicUsize>,
    /// The client task; ends after cancel (or when `events` is dropped).
    pub task: JoinHandle<()>,
}

impl ClientHandle {
    /// Next event; `None` once the client task has ended.
    pub async fn recv(&mut self) -> Option<ClientEvent> {
        let ev = self.events.recv().await;
        if ev.is_some() {
            self.queue_depth.fetch_sub(1, Ordering::Relaxed);
        }
        ev
    }
}

/// Why one connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// TCP connect failed.
    #[error("cannot connect to AMI at {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Connect or banner took longer than `connect_timeout`.
    #[error("AMI at {addr}: no {what} within {after:?}")]
    Timeout {
        /// `host:port`.
        addr: String,
        /// What we were waiting for.
        what: &'static str,
        /// The limit.
        after: Duration,
    },
    /// The first line was not `Asterisk Call Manager/...`.
    #[error("AMI at {addr} sent no banner (first message: {first})")]
    NoBanner {
        /// `host:port`.
        addr: String,
        /// What came instead.
        first: String,
    },
    /// Asterisk refused the login.
    #[error("AMI login as {username:?} refused: {message}")]
    LoginFailed {
        /// The user we tried.
        username: String,
        /// Asterisk's `Message`, e.g. `Authentication failed`.
        message: String,
    },
    /// An action was answered with an error.
    #[error("AMI action {action} failed: {message}")]
    ActionFailed {
        /// Action name.
        action: String,
        /// Asterisk's `Message`.
        message: String,
    },
    /// No reply to an action (or to `Ping`) in time.
    #[error("no reply to {action} within {after:?}")]
    NoReply {
        /// Action name.
        action: String,
        /// The limit.
        after: Duration,
    },
    /// The PBX closed the connection.
    #[error("{0}")]
    Closed(String),
    /// Socket error.
    #[error(transparent)]
    Ami(#[from] AmiError),
}

/// Starts the client task on the current runtime, reading as soon as data arrives (no
/// [`ClientConfig::read_pause`]). It runs until `cancel` fires or `events` is dropped.
pub fn spawn(cfg: ClientConfig, cancel: CancellationToken) -> ClientHandle {
    let (sink, handle) = channel_sink();
    let sink = Sink::new(Box::new(sink));
    let task = tokio::runtime::Handle::current().spawn(run(cfg, cancel, sink, PauseMode::Never));
    handle(task)
}

/// Starts the client on a thread of its own (`ami-reader`, its own single-thread runtime) that
/// sleeps [`ClientConfig::read_pause`] after a small read. A runtime timer would not do: the
/// socket stays registered with the runtime, and every segment Asterisk writes during the pause
/// would wake its thread; a sleeping thread is woken by nothing, so at a busy PBX's thousands
/// of events a second the reader wakes about once per pause. Nothing else runs on that thread,
/// so the pause delays nothing but the reads. The thread ends with the client task.
pub fn spawn_dedicated(
    cfg: ClientConfig,
    cancel: CancellationToken,
) -> std::io::Result<ClientHandle> {
    let (sink, handle) = channel_sink();
    Ok(handle(spawn_dedicated_into(cfg, cancel, sink)?))
}

/// [`spawn_dedicated`] handing the events to `sink` instead of a channel: the sink is called
/// on the reader's thread once per socket read, so the consumer is not woken per event. The
/// task ends after cancel or when the sink reports its consumer gone; every event decoded
/// before that has been delivered.
pub fn spawn_dedicated_into(
    cfg: ClientConfig,
    cancel: CancellationToken,
    sink: impl EventSink,
) -> std::io::Result<JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The thread runs until the client task ends or is aborted (either drops `done_tx`).
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let sink = Sink::new(Box::new(sink));
    let task = runtime.spawn(async move {
        let _done = done_tx;
        run(cfg, cancel, sink, PauseMode::SleepThread).await;
    });
    std::thread::Builder::new()
        .name("ami-reader".into())
        .spawn(move || {
            runtime.block_on(async move {
                let _ = done_rx.await;
            });
        })?;
    Ok(task)
}

/// A channel sink and the function that makes its [`ClientHandle`] once the task runs.
fn channel_sink() -> (ChannelSink, impl FnOnce(JoinHandle<()>) -> ClientHandle) {
    let (tx, rx) = unbounded_channel();
    let depth = Arc::new(AtomicUsize::new(0));
    let sink = ChannelSink {
        tx,
        depth: depth.clone(),
    };
    let handle = move |task| ClientHandle {
        events: rx,
        queue_depth: depth,
        task,
    };
    (sink, handle)
}

/// Whether [`Paced`] pauses after a small read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PauseMode {
    /// Never: a shared runtime (a timer would not help: the socket's readiness still wakes it).
    Never,
    /// `std::thread::sleep` (only on the client's own thread).
    SleepThread,
}

/// Depth at which the first "queue growing" warning is logged; each next one is 10x.
pub const FIRST_DEPTH_WARN: usize = 1_000;

/// After a depth warning, the "drained" line and the next warning wait at least this long: a
/// consumer that takes events in bursts would otherwise make the depth swing every few ms.
const DEPTH_REARM_AFTER: Duration = Duration::from_secs(60);

/// The client's side of the hand-over: events wait in `pending` (wire order) until
/// [`Sink::flush`] delivers them as one batch, which happens before every socket read or write,
/// so nothing decoded waits on the socket.
struct Sink {
    out: Box<dyn EventSink>,
    pending: Vec<ClientEvent>,
    /// The consumer is gone: nothing more is delivered.
    closed: bool,
    next_warn: usize,
    warned_at: Option<std::time::Instant>,
}

impl Sink {
    fn new(out: Box<dyn EventSink>) -> Self {
        Sink {
            out,
            pending: Vec::new(),
            closed: false,
            next_warn: FIRST_DEPTH_WARN,
            warned_at: None,
        }
    }

    /// Queues an event for the next [`Sink::flush`].
    fn push(&mut self, ev: ClientEvent) {
        self.pending.push(ev);
    }

    /// Delivers the pending events; false when the consumer is gone.
    fn flush(&mut self) -> bool {
        if self.closed {
            self.pending.clear();
            return false;
        }
        if self.pending.is_empty() {
            return true;
        }
        let Some(depth) = self.out.deliver(&mut self.pending) else {
            self.closed = true;
            self.pending.clear();
            return false;
        };
        self.pending.clear();
        if self.pending.capacity() > KEEP_PENDING {
            self.pending = Vec::new();
        }
        if depth >= self.next_warn {
            warn!(depth, "AMI event queue is growing: the consumer is behind");
            while self.next_warn <= depth {
                self.next_warn = self.next_warn.saturating_mul(10);
            }
            self.warned_at = Some(std::time::Instant::now());
        } else if depth < FIRST_DEPTH_WARN / 2
            && self.next_warn > FIRST_DEPTH_WARN
            && self
                .warned_at
                .is_none_or(|at| at.elapsed() >= DEPTH_REARM_AFTER)
        {
            info!(depth, "AMI event queue drained");
            self.next_warn = FIRST_DEPTH_WARN;
        }
        true
    }

    /// Queues `ev` and delivers at once; false when the consumer is gone.
    fn send(&mut self, ev: ClientEvent) -> bool {
        self.push(ev);
        self.flush()
    }
}

/// Most pending events whose room is kept between batches.
const KEEP_PENDING: usize = 4096;

/// Exponential backoff with jitter between `min` and `max`.
struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    fn next_delay(&mut self) -> Duration {
        let base = self
            .min
            .saturating_mul(2u32.saturating_pow(self.attempt))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1).min(31);
        // "Equal jitter": half fixed, half random, never under `min`.
        let half = base / 2;
        let jitter = half.mul_f64(rand::random_range(0.0..=1.0));
        (half + jitter).max(self.min).min(self.max)
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// How a session ended without error.
enum End {
    /// Cancelled, or nobody listens any more.
    Stop,
}

async fn run(cfg: ClientConfig, cancel: CancellationToken, mut sink: Sink, mode: PauseMode) {
    let mut backoff = Backoff {
        min: cfg.backoff_min,
        max: cfg.backoff_max,
        attempt: 0,
    };
    loop {
        let started = Instant::now();
        let mut connected = false;
        let result = session(&cfg, &cancel, &mut sink, &mut connected, mode).await;
        // Whatever was decoded before the session ended goes out before anything else.
        if !sink.flush() {
            return;
        }
        let (cause, shutdown) = match result {
            Ok(End::Stop) => return,
            Err(Failure { error, shutdown }) => (error, shutdown),
        };
        if connected
            && !sink.send(ClientEvent::Disconnected {
                cause: cause.to_string(),
            })
        {
            return;
        }
        if shutdown || (connected && started.elapsed() >= cfg.stable_after) {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        if connected {
            warn!(cause = %cause, retry_in = ?delay, "AMI connection lost, reconnecting");
        } else {
            warn!(cause = %cause, retry_in = ?delay, "AMI connection failed, retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = cancel.cancelled() => return,
        }
    }
}

/// An error plus whether the PBX announced its shutdown before it.
struct Failure {
    error: ClientError,
    shutdown: bool,
}

/// The codec for a live socket: a message cut by a lost connection is dropped, not delivered.
struct LiveCodec(AmiCodec);

impl Decoder for LiveCodec {
    type Item = Frame;
    type Error = AmiError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, AmiError> {
        self.0.decode(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, AmiError> {
        let frame = self.0.decode(src)?;
        if frame.is_none() && !src.is_empty() {
            debug!(
                bytes = src.len(),
                "dropping a message cut by the end of the connection"
            );
            src.clear();
        }
        Ok(frame)
    }
}

/// Reads smaller than this are followed by [`ClientConfig::read_pause`] (64 KiB: a 15 ms
/// pause's worth of events at about 9,000 a second; a faster feed is read without pausing).
pub const PAUSE_BELOW_BYTES: usize = 64 * 1024;

/// Room of the read buffer: a pause's worth of events at a busy PBX fits in one read.
const READ_BUFFER_BYTES: usize = 128 * 1024;

/// A socket read half that, on the client's own thread, sleeps after small reads (see
/// [`DEFAULT_READ_PAUSE`]).
struct Paced<R> {
    inner: R,
    /// `None`: read as soon as data arrives (a shared runtime must never sleep).
    pause: Option<Duration>,
    /// Set after a small read: the next read first sleeps until then.
    resume_at: Option<std::time::Instant>,
}

impl<R> Paced<R> {
    fn new(inner: R, pause: Duration, mode: PauseMode) -> Self {
        let pause = (mode == PauseMode::SleepThread && !pause.is_zero()).then_some(pause);
        Paced {
            inner,
            pause,
            resume_at: None,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Paced<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if let Some(at) = this.resume_at.take() {
            // Blocking on purpose: this thread runs nothing but this client (spawn_dedicated).
            std::thread::sleep(at.saturating_duration_since(std::time::Instant::now()));
        }
        let room = buf.remaining();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let got = buf.filled().len() - before;
        // A read that filled the buffer may have left more behind: no pause after it.
        let small = got > 0 && got < PAUSE_BELOW_BYTES && got < room;
        if let Some(pause) = this.pause.filter(|_| small) {
            this.resume_at = Some(std::time::Instant::now() + pause);
        }
        Poll::Ready(Ok(()))
    }
}

/// One connected session, between connect and loss.
struct Conn<'a> {
    reader: FramedRead<Paced<OwnedReadHalf>, LiveCodec>,
    writer: FramedWrite<OwnedWriteHalf, AmiCodec>,
    sink: &'a mut Sink,
    reply_timeout: Duration,
    shutdown_seen: bool,
    closed_by_consumer: bool,
}

impl Conn<'_> {
    async fn send(&mut self, action: &Action) -> Result<(), ClientError> {
        self.flush();
        debug!(action = action.name(), id = action.action_id(), "AMI send");
        self.writer.send(action).await?;
        Ok(())
    }

    /// The next message, or an error when the connection ends or stays silent too long.
    async fn read(&mut self) -> Result<Message, ClientError> {
        loop {
            self.flush();
            let next = tokio::time::timeout(self.reply_timeout, self.reader.next()).await;
            match next {
                Err(_) => {
                    return Err(ClientError::NoReply {
                        action: "pending action".into(),
                        after: self.reply_timeout,
                    });
                }
                Ok(None) => return Err(self.closed()),
                Ok(Some(Err(e))) => return Err(e.into()),
                Ok(Some(Ok(Frame::Banner(_)))) => continue,
                Ok(Some(Ok(Frame::Message(m)))) => return Ok(m),
            }
        }
    }

    /// Delivers the events dispatched so far (one batch).
    fn flush(&mut self) {
        if !self.sink.flush() {
            self.closed_by_consumer = true;
        }
    }

    /// Dispatches every further message already in the read buffer (decoded without touching
    /// the socket), except the reply `is_pong` recognises, which it returns. Then the batch
    /// of events goes out at once, before the socket is polled (and the reader pauses) again.
    fn drain_buffered(
        &mut self,
        mut is_pong: impl FnMut(&Message) -> bool,
    ) -> Result<bool, ClientError> {
        let mut buf = std::mem::take(self.reader.read_buffer_mut());
        let mut pong = false;
        let result = loop {
            match self.reader.decoder_mut().decode(&mut buf) {
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
                Ok(Some(Frame::Banner(_))) => {}
                Ok(Some(Frame::Message(m))) => {
                    if !pong && is_pong(&m) {
                        pong = true;
                    } else {
                        self.dispatch(m);
                    }
                }
            }
        };
        // Room for the next pause's worth of events, so that read is not cut short and followed
        // by a second one (a second batch). The block shared with the messages already handed
        // over cannot be reused, so the tail moves to a new one.
        if buf.capacity() - buf.len() < PAUSE_BELOW_BYTES {
            buf.reserve(READ_BUFFER_BYTES);
        }
        *self.reader.read_buffer_mut() = buf;
        self.flush();
        result?;
        Ok(pong)
    }

    fn closed(&self) -> ClientError {
        ClientError::Closed(if self.shutdown_seen {
            "PBX shut down (Event: Shutdown) and closed the connection".into()
        } else {
            "PBX closed the connection".into()
        })
    }

    /// Forwards anything that is not a reply to us; events go to the queue.
    fn dispatch(&mut self, msg: Message) {
        if msg.event_name().is_some() {
            if msg.event_name() == Some(b"Shutdown") {
                info!(
                    shutdown = %msg.get_str("Shutdown").unwrap_or_default(),
                    restart = %msg.get_str("Restart").unwrap_or_default(),
                    "PBX is shutting down"
                );
                self.shutdown_seen = true;
            }
            let ev = ClientEvent::Message {
                msg,
                received_at: LocalTime::now(),
            };
            self.sink.push(ev);
        } else if msg.response() == Some(b"Error") {
            warn!(message = %msg.get_str("Message").unwrap_or_default(), "AMI error reply to no pending action");
        } else {
            debug!(?msg, "AMI reply to no pending action");
        }
    }

    /// Sends `action` and returns its reply; other messages are dispatched meanwhile.
    async fn request(&mut self, action: &Action) -> Result<Message, ClientError> {
        self.send(action).await?;
        loop {
            let m = self.read().await.map_err(|e| match e {
                ClientError::NoReply { after, .. } => ClientError::NoReply {
                    action: action.name().to_owned(),
                    after,
                },
                e => e,
            })?;
            if m.response().is_some() && m.get("ActionID") == Some(action.action_id().as_bytes()) {
                return Ok(m);
            }
            self.dispatch(m);
        }
    }

    /// Sends a list action and collects its items (the events carrying its ActionID) up to
    /// `EventList: Complete`. Other messages are dispatched meanwhile, in wire order.
    async fn collect_list(&mut self, action: &Action) -> Result<Vec<Message>, ClientError> {
        let reply = self.request(action).await?;
        if reply.response() != Some(b"Success") {
            return Err(ClientError::ActionFailed {
                action: action.name().to_owned(),
                message: reply.get_str("Message").unwrap_or_default().into_owned(),
            });
        }
        let starts_list = reply
            .get("EventList")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"start"));
        if !starts_list {
            return Ok(Vec::new());
        }
        let id = action.action_id().as_bytes();
        let mut items = Vec::new();
        loop {
            let m = self.read().await?;
            if m.event_name().is_some() && m.get("ActionID") == Some(id) {
                if m.get("EventList")
                    .is_some_and(|v| v.eq_ignore_ascii_case(b"Complete"))
                {
                    return Ok(items);
                }
                items.push(m);
            } else {
                self.dispatch(m);
            }
        }
    }

    async fn login(&mut self, cfg: &ClientConfig) -> Result<(), ClientError> {
        let login = match cfg.auth {
            AuthMethod::Plain => Action::login(&cfg.username, &cfg.secret),
            AuthMethod::Md5 => {
                let challenge = Action::challenge();
                let reply = self.request(&challenge).await?;
                let Some(ch) = reply.get_str("Challenge").filter(|c| !c.is_empty()) else {
                    return Err(ClientError::ActionFailed {
                        action: "Challenge".into(),
                        message: reply.get_str("Message").unwrap_or_default().into_owned(),
                    });
                };
                Action::login_md5(&cfg.username, &md5_key(&ch, &cfg.secret))
            }
        };
        let reply = self.request(&login).await?;
        if reply.response() != Some(b"Success") {
            return Err(ClientError::LoginFailed {
                username: cfg.username.clone(),
                message: reply.get_str("Message").unwrap_or_default().into_owned(),
            });
        }
        Ok(())
    }
}

async fn session(
    cfg: &ClientConfig,
    cancel: &CancellationToken,
    sink: &mut Sink,
    connected: &mut bool,
    mode: PauseMode,
) -> Result<End, Failure> {
    let fail = |error| Failure {
        error,
        shutdown: false,
    };
    let addr = format!("{}:{}", cfg.host, cfg.port);
    let connect = tokio::time::timeout(
        cfg.connect_timeout,
        TcpStream::connect((cfg.host.as_str(), cfg.port)),
    );
    let connect = tokio::select! {
        r = connect => r,
        _ = cancel.cancelled() => return Ok(End::Stop),
    };
    let stream = match connect {
        Err(_) => {
            return Err(fail(ClientError::Timeout {
                addr,
                what: "TCP connection",
                after: cfg.connect_timeout,
            }));
        }
        Ok(Err(source)) => return Err(fail(ClientError::Connect { addr, source })),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    let (r, w) = stream.into_split();
    let mut conn = Conn {
        reader: FramedRead::with_capacity(
            Paced::new(r, cfg.read_pause, mode),
            LiveCodec(AmiCodec::with_max_message_bytes(cfg.max_message_bytes)),
            READ_BUFFER_BYTES,
        ),
        writer: FramedWrite::new(w, AmiCodec::new()),
        sink,
        reply_timeout: cfg.ping_timeout,
        shutdown_seen: false,
        closed_by_consumer: false,
    };
    let first = tokio::time::timeout(cfg.connect_timeout, conn.reader.next());
    let first = tokio::select! {
        r = first => r,
        _ = cancel.cancelled() => return Ok(End::Stop),
    };
    let banner = match first {
        Err(_) => {
            return Err(fail(ClientError::Timeout {
                addr,
                what: "banner",
                after: cfg.connect_timeout,
            }));
        }
        Ok(None) => return Err(fail(conn.closed())),
        Ok(Some(Err(e))) => return Err(fail(e.into())),
        Ok(Some(Ok(Frame::Banner(b)))) => String::from_utf8_lossy(&b).into_owned(),
        Ok(Some(Ok(Frame::Message(m)))) => {
            return Err(fail(ClientError::NoBanner {
                addr,
                first: m.to_string().replace('\n', " "),
            }));
        }
    };
    debug!(%banner, "AMI banner");
    let result = logged_in(&mut conn, cfg, cancel, banner, connected).await;
    let shutdown = conn.shutdown_seen;
    if conn.closed_by_consumer {
        return Ok(End::Stop);
    }
    result.map_err(|error| Failure { error, shutdown })
}

async fn logged_in(
    conn: &mut Conn<'_>,
    cfg: &ClientConfig,
    cancel: &CancellationToken,
    banner: String,
    connected: &mut bool,
) -> Result<End, ClientError> {
    let setup = async {
        conn.login(cfg).await?;
        info!(%banner, user = %cfg.username, "AMI logged in");
        *connected = true;
        if !conn.sink.send(ClientEvent::Connected { banner }) {
            return Ok::<bool, ClientError>(false);
        }
        let channels = conn.collect_list(&Action::core_show_channels()).await?;
        Ok(conn.sink.send(ClientEvent::Channels(channels)) && !conn.closed_by_consumer)
    };
    let go_on = tokio::select! {
        r = setup => r?,
        _ = cancel.cancelled() => false,
    };
    if !go_on {
        return Ok(End::Stop);
    }

    let mut ping = tokio::time::interval_at(Instant::now() + cfg.ping_interval, cfg.ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut pending: Option<(String, Instant)> = None;
    loop {
        let deadline = pending.as_ref().map(|p| p.1);
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                let logoff = Action::logoff();
                let _ = tokio::time::timeout(Duration::from_secs(1), conn.send(&logoff)).await;
                return Ok(End::Stop);
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                return Err(ClientError::NoReply { action: "Ping".into(), after: cfg.ping_timeout });
            }
            _ = ping.tick() => {
                if pending.is_none() {
                    let action = Action::ping();
                    conn.send(&action).await?;
                    pending = Some((action.action_id().to_owned(), Instant::now() + cfg.ping_timeout));
                }
            }
            next = conn.reader.next() => match next {
                None => return Err(conn.closed()),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Frame::Banner(_))) => {}
                Some(Ok(Frame::Message(m))) => {
                    let is_pong = |m: &Message| {
                        m.response().is_some()
                            && pending.as_ref().is_some_and(|(id, _)| m.get("ActionID") == Some(id.as_bytes()))
                    };
                    let first_is_pong = is_pong(&m);
                    if !first_is_pong {
                        conn.dispatch(m);
                    }
                    // The rest of this read, then one hand-over for all of it.
                    let pong = first_is_pong
                        | conn.drain_buffered(|m| !first_is_pong && is_pong(m))?;
                    if pong {
                        pending = None;
                    }
                    if conn.closed_by_consumer {
                        return Ok(End::Stop);
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_within_bounds_and_resets() {
        let mut b = Backoff {
            min: Duration::from_secs(1),
            max: Duration::from_secs(30),
            attempt: 0,
        };
        let delays: Vec<_> = (0..10).map(|_| b.next_delay()).collect();
        for (i, d) in delays.iter().enumerate() {
            let base = Duration::from_secs(1 << i.min(5)).min(Duration::from_secs(30));
            assert!(
                *d >= Duration::from_secs(1) && *d <= base,
                "attempt {i}: {d:?}"
            );
            assert!(*d >= base / 2, "attempt {i}: {d:?}");
        }
        assert!(delays[9] >= Duration::from_secs(15));
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }
}
