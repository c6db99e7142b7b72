//! A fake Asterisk Manager Interface server on `127.0.0.1:0` for client tests.
//!
//! Each accepted connection runs a test-supplied handler with an [`AmiConn`], which reads
//! actions with the real [`AmiCodec`] (an action is framed like any AMI message) and writes
//! replies and events, timing every write so tests can prove the client never blocks the PBX.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use md5::{Digest, Md5};
use missedcalld::ami::Message;
use missedcalld::ami::codec::{AmiCodec, Frame};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;

/// The banner of Asterisk 22.
pub const BANNER: &str = "Asterisk Call Manager/11.0.0";

/// A running fake server.
pub struct FakeAmi {
    /// Where it listens.
    pub addr: SocketAddr,
    /// When each connection was accepted, in order.
    pub accepted: Arc<Mutex<Vec<Instant>>>,
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
                acc.lock().expect("lock").push(Instant::now());
                // Like Asterisk, write each message as soon as it is produced.
                let _ = stream.set_nodelay(true);
                let (r, w) = stream.into_split();
                let conn = AmiConn {
                    reader: FramedRead::new(r, AmiCodec::new()),
                    writer: w,
                    actions: act.clone(),
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
}

/// `hex(md5(challenge + secret))`, computed here independently of the client.
pub fn md5_hex(challenge: &str, secret: &str) -> String {
    let digest = Md5::digest(format!("{challenge}{secret}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `Key: Value` lines and the blank line.
pub fn render(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

impl AmiConn {
    /// Writes raw bytes; returns how long `write_all` took (a blocked write shows here).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Duration {
        let t = Instant::now();
        self.writer.write_all(bytes).await.expect("server write");
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
        self.banner().await;
        let mut m = self.read_action().await.expect("an action");
        let mut challenge = None;
        if m.get_str("Action").as_deref() == Some("Challenge") {
            assert_eq!(m.get_str("AuthType").as_deref(), Some("MD5"));
            let id = m.get_str("ActionID").unwrap_or_default().into_owned();
            self.send(&[
                ("Response", "Success"),
                ("ActionID", &id),
                ("Challenge", "840724993"),
            ])
            .await;
            challenge = Some("840724993");
            m = self.read_action().await.expect("a login");
        }
        assert_eq!(m.get_str("Action").as_deref(), Some("Login"), "{m:?}");
        let id = m.get_str("ActionID").unwrap_or_default().into_owned();
        let ok = m.get_str("Username").as_deref() == Some(user)
            && match challenge {
                Some(c) => {
                    m.get("Secret").is_none()
                        && m.get_str("AuthType").as_deref() == Some("MD5")
                        && m.get_str("Key").as_deref() == Some(md5_hex(c, secret).as_str())
                }
                None => m.get_str("Secret").as_deref() == Some(secret),
            };
        if ok {
            self.send(&[
                ("Response", "Success"),
                ("ActionID", &id),
                ("Message", "Authentication accepted"),
            ])
            .await;
        } else {
            self.send(&[
                ("Response", "Error"),
                ("ActionID", &id),
                ("Message", "Authentication failed"),
            ])
            .await;
            let _ = self.writer.shutdown().await;
        }
        ok
    }

    /// Answers a `CoreShowChannels` with the given items, as an EventList.
    pub async fn channels(&mut self, items: &[Vec<(&str, &str)>]) {
        let m = self.expect("CoreShowChannels").await;
        let id = m.get_str("ActionID").unwrap_or_default().into_owned();
        self.send(&[
            ("Response", "Success"),
            ("ActionID", &id),
            ("EventList", "start"),
            ("Message", "Channels will follow"),
        ])
        .await;
        for item in items {
            let mut pairs = vec![("Event", "CoreShowChannel"), ("ActionID", id.as_str())];
            pairs.extend_from_slice(item);
            self.send(&pairs).await;
        }
        let n = items.len().to_string();
        self.send(&[
            ("Event", "CoreShowChannelsComplete"),
            ("ActionID", &id),
            ("EventList", "Complete"),
            ("ListItems", &n),
        ])
        .await;
    }

    /// Banner, login and an empty resync: the usual start of a healthy session.
    pub async fn accept_session(&mut self, user: &str, secret: &str) {
        assert!(self.login(user, secret).await, "login refused");
        self.channels(&[]).await;
    }

    /// Answers `Ping` with `Pong` (when `pong`) and `Logoff` with `Goodbye` until EOF/Logoff.
    pub async fn serve(&mut self, pong: bool) {
        while let Some(m) = self.read_action().await {
            let id = m.get_str("ActionID").unwrap_or_default().into_owned();
            match m.get_str("Action").as_deref() {
                Some("Ping") if pong => {
                    self.send(&[
                        ("Response", "Success"),
                        ("ActionID", &id),
                        ("Ping", "Pong"),
                        ("Timestamp", "1795375975.820109"),
                    ])
                    .await;
                }
                Some("Logoff") => {
                    self.send(&[
                        ("Response", "Goodbye"),
                        ("ActionID", &id),
                        ("Message", "Thanks for all the fish."),
                    ])
                    .await;
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
