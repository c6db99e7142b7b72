//! A scripted AMI server on `127.0.0.1:0` for client tests.
//!
//! Each accepted connection runs a test-supplied handler with an [`AmiConn`], which reads
//! actions with the real [`AmiCodec`] (an action is framed like any AMI message) and writes
//! replies and events, timing every write so tests can prove the client never blocks the PBX.
//! The answers themselves are the stand-in PBX's ([`missedcalld::ami::standin`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use missedcalld::ami::Message;
use missedcalld::ami::codec::{AmiCodec, Frame};
use missedcalld::ami::standin::{Answered, StandinPbx};
pub use missedcalld::ami::standin::{BANNER, render};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;

/// A running fake server.
pub struct FakeAmi {
    /// Where it listens.
    pub addr: SocketAddr,
    /// When each connection was accepted, in order (tokio's clock: paused in timer tests).
    pub accepted: Arc<Mutex<Vec<tokio::time::Instant>>>,
    /// Every action name received, over all connections, in order.
    pub actions: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for FakeAmi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeAmi {
    /// Listens on 127.0.0.1:0; runs `handler(conn, index)` for every accepted connection.
    pub async fn start<F, Fut>(handler: F) -> FakeAmi
    where
        F: Fn(AmiConn, usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let actions = Arc::new(Mutex::new(Vec::new()));
        let (acc, act) = (accepted.clone(), actions.clone());
        let task = tokio::spawn(async move {
            let mut index = 0;
            while let Ok((stream, _)) = listener.accept().await {
                acc.lock().expect("lock").push(tokio::time::Instant::now());
                // Like Asterisk, write each message as soon as it is produced.
                let _ = stream.set_nodelay(true);
                let (r, w) = stream.into_split();
                let conn = AmiConn {
                    reader: FramedRead::new(r, AmiCodec::new()),
                    writer: w,
                    actions: act.clone(),
                    full_buffer_waits: 0,
                };
                tokio::spawn(handler(conn, index));
                index += 1;
            }
        });
        FakeAmi {
            addr,
            accepted,
            actions,
            task,
        }
    }

    /// Number of connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.lock().expect("lock").len()
    }

    /// Every action name received so far.
    pub fn actions(&self) -> Vec<String> {
        self.actions.lock().expect("lock").clone()
    }
}

/// The server side of one connection.
pub struct AmiConn {
    reader: FramedRead<OwnedReadHalf, AmiCodec>,
    writer: OwnedWriteHalf,
    actions: Arc<Mutex<Vec<String>>>,
    /// Writes that found the socket's send buffer full (the client not reading).
    pub full_buffer_waits: usize,
}

impl AmiConn {
    /// Writes raw bytes; returns how long it took. A write that finds the send buffer full (the
    /// client is not reading: Asterisk would drop it) counts in `full_buffer_waits`; a thread
    /// descheduled on a loaded machine only shows in the time.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Duration {
        let t = Instant::now();
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.writer.try_write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.full_buffer_waits += 1;
                    self.writer.writable().await.expect("server socket");
                }
                Err(e) => panic!("server write: {e}"),
            }
        }
        t.elapsed()
    }

    /// Writes one message.
    pub async fn send(&mut self, pairs: &[(&str, &str)]) -> Duration {
        self.send_raw(&render(pairs)).await
    }

    /// Writes the banner line.
    pub async fn banner(&mut self) {
        self.send_raw(format!("{BANNER}\r\n").as_bytes()).await;
    }

    /// The next action, or `None` at EOF.
    pub async fn read_action(&mut self) -> Option<Message> {
        loop {
            match self.reader.next().await? {
                Ok(Frame::Message(m)) => {
                    let name = m.get_str("Action").unwrap_or_default().into_owned();
                    self.actions.lock().expect("lock").push(name);
                    return Some(m);
                }
                Ok(Frame::Banner(_)) => continue,
                Err(_) => return None,
            }
        }
    }

    /// The next action, which must be `name`.
    pub async fn expect(&mut self, name: &str) -> Message {
        let m = self.read_action().await.expect("an action before EOF");
        assert_eq!(m.get_str("Action").as_deref(), Some(name), "{m:?}");
        m
    }

    /// Banner + plain or MD5 login check; answers like Asterisk and returns whether it passed.
    /// A refused login is answered with `Authentication failed` and the connection closed.
    pub async fn login(&mut self, user: &str, secret: &str) -> bool {
        let pbx = StandinPbx::with_login(user, secret);
        self.banner().await;
        let mut m = self.read_action().await.expect("an action");
        if m.get_str("Action").as_deref() == Some("Challenge") {
            assert_eq!(m.get_str("AuthType").as_deref(), Some("MD5"));
            self.send_raw(&pbx.answer(&m).bytes).await;
            m = self.read_action().await.expect("a login");
        }
        assert_eq!(m.get_str("Action").as_deref(), Some("Login"), "{m:?}");
        let reply = pbx.answer(&m);
        self.send_raw(&reply.bytes).await;
        let ok = reply.answered == Answered::Login { accepted: true };
        if !ok {
            let _ = self.writer.shutdown().await;
        }
        ok
    }

    /// Answers a `CoreShowChannels` with the given items, as an EventList.
    pub async fn channels(&mut self, items: &[Vec<(&str, &str)>]) {
        let m = self.expect("CoreShowChannels").await;
        let mut pbx = StandinPbx::open();
        pbx.channels = items
            .iter()
            .map(|item| {
                item.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect()
            })
            .collect();
        self.send_raw(&pbx.answer(&m).bytes).await;
    }

    /// Banner, login and an empty resync: the usual start of a healthy session.
    pub async fn accept_session(&mut self, user: &str, secret: &str) {
        assert!(self.login(user, secret).await, "login refused");
        self.channels(&[]).await;
    }

    /// Answers `Ping` with `Pong` (when `pong`) and `Logoff` with `Goodbye` until EOF/Logoff.
    pub async fn serve(&mut self, pong: bool) {
        let pbx = StandinPbx::open();
        while let Some(m) = self.read_action().await {
            let reply = pbx.answer(&m);
            match reply.answered {
                Answered::Ping if pong => {
                    self.send_raw(&reply.bytes).await;
                }
                Answered::Logoff => {
                    self.send_raw(&reply.bytes).await;
                    return;
                }
                _ => {}
            }
        }
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.writer.shutdown().await;
    }
}
