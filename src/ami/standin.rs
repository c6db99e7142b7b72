//! A stand-in PBX: the server side of AMI, for `missedcalld demo`, the live-latency benchmark
//! and the tests. It answers what the client sends as Asterisk 22 does (the banner,
//! `Challenge`/`Login` plain or MD5, `Ping`, `CoreShowChannels`, `Logoff`), and [`serve`] plays
//! recorded events to whoever connects, paced. Keeping one copy means a change to the login or
//! resync sequence is made once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use md5::{Digest, Md5};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::codec::{Decoder, FramedRead};

use super::{AmiCodec, Frame, Message};
use crate::time::{EventTime, LocalTime};

/// The banner line (that of the Asterisk 22 the lab captures come from), without CRLF.
pub const BANNER: &str = "Asterisk Call Manager/11.0.0";
/// The challenge handed out for MD5 logins.
pub const CHALLENGE: &str = "840193517";

/// Who may log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The `Username`.
    pub username: String,
    /// The secret: sent as `Secret` (plain) or as `Key: md5(challenge + secret)`.
    pub secret: String,
}

/// How the stand-in answers actions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StandinPbx {
    /// Checked on `Login`; `None` lets anyone in.
    pub credentials: Option<Credentials>,
    /// The `CoreShowChannel` items of a resync, each as its `Key: Value` lines.
    pub channels: Vec<Vec<(String, String)>>,
}

/// Which action an answer was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// `Challenge` (MD5 login, first step).
    Challenge,
    /// `Login`, accepted or refused.
    Login {
        /// The credentials matched.
        accepted: bool,
    },
    /// `Ping`.
    Ping,
    /// `CoreShowChannels`: the list was sent.
    Channels,
    /// `Logoff`: the PBX closes the connection after the answer.
    Logoff,
    /// Anything else (answered with an error, as Asterisk does).
    Unknown,
}

/// The bytes answering one action, and what it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Exactly what to write back.
    pub bytes: Vec<u8>,
    /// The action answered.
    pub answered: Answered,
}

/// `Key: Value` lines and the blank line.
pub fn render(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `hex(md5(challenge + secret))`, computed here independently of the client's code.
pub fn md5_hex(challenge: &str, secret: &str) -> String {
    Md5::digest(format!("{challenge}{secret}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl StandinPbx {
    /// Anyone may log in; resyncs list no channel.
    pub fn open() -> StandinPbx {
        StandinPbx::default()
    }

    /// Only `username` with `secret` may log in.
    pub fn with_login(username: &str, secret: &str) -> StandinPbx {
        StandinPbx {
            credentials: Some(Credentials {
                username: username.to_owned(),
                secret: secret.to_owned(),
            }),
            channels: Vec::new(),
        }
    }

    /// Whether a `Login` action carries the right credentials.
    fn accepts(&self, login: &Message) -> bool {
        let Some(c) = &self.credentials else {
            return true;
        };
        let user_ok = login.get_str("Username").as_deref() == Some(c.username.as_str());
        let md5 = login
            .get_str("AuthType")
            .is_some_and(|t| t.eq_ignore_ascii_case("md5"));
        let secret_ok = if md5 {
            login.get("Secret").is_none()
                && login.get_str("Key").as_deref() == Some(md5_hex(CHALLENGE, &c.secret).as_str())
        } else {
            login.get_str("Secret").as_deref() == Some(c.secret.as_str())
        };
        user_ok && secret_ok
    }

    /// The answer to one action, as Asterisk would give it.
    pub fn answer(&self, action: &Message) -> Reply {
        let name = action
            .get_str("Action")
            .map(|a| a.to_ascii_lowercase())
            .unwrap_or_default();
        let id = action.get_str("ActionID").unwrap_or_default().into_owned();
        let reply = |pairs: &[(&str, &str)], answered| {
            let mut all = vec![("Response", pairs[0].1), ("ActionID", id.as_str())];
            all.extend_from_slice(&pairs[1..]);
            Reply {
                bytes: render(&all),
                answered,
            }
        };
        match name.as_str() {
            "challenge" => reply(
                &[("Response", "Success"), ("Challenge", CHALLENGE)],
                Answered::Challenge,
            ),
            "login" if self.accepts(action) => reply(
                &[
                    ("Response", "Success"),
                    ("Message", "Authentication accepted"),
                ],
                Answered::Login { accepted: true },
            ),
            "login" => reply(
                &[("Response", "Error"), ("Message", "Authentication failed")],
                Answered::Login { accepted: false },
            ),
            "ping" => {
                // The PBX stamps with its own clock; the stand-in's is this machine's.
                let now = LocalTime::now().as_micros();
                let stamp = format!("{}.{:06}", now / 1_000_000, now % 1_000_000);
                reply(
                    &[
                        ("Response", "Success"),
                        ("Ping", "Pong"),
                        ("Timestamp", &stamp),
                    ],
                    Answered::Ping,
                )
            }
            "coreshowchannels" => Reply {
                bytes: self.channel_list(&id),
                answered: Answered::Channels,
            },
            "logoff" => reply(
                &[
                    ("Response", "Goodbye"),
                    ("Message", "Thanks for all the fish."),
                ],
                Answered::Logoff,
            ),
            _ => reply(
                &[
                    ("Response", "Error"),
                    ("Message", "Invalid/unknown command"),
                ],
                Answered::Unknown,
            ),
        }
    }

    /// A `CoreShowChannels` answer: the start reply, one event per channel, the completion.
    fn channel_list(&self, id: &str) -> Vec<u8> {
        let mut out = render(&[
            ("Response", "Success"),
            ("ActionID", id),
            ("EventList", "start"),
            ("Message", "Channels will follow"),
        ]);
        for item in &self.channels {
            let mut pairs = vec![("Event", "CoreShowChannel"), ("ActionID", id)];
            pairs.extend(item.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            out.extend_from_slice(&render(&pairs));
        }
        let n = self.channels.len().to_string();
        out.extend_from_slice(&render(&[
            ("Event", "CoreShowChannelsComplete"),
            ("ActionID", id),
            ("EventList", "Complete"),
            ("ListItems", &n),
        ]));
        out
    }
}

/// How [`serve`] paces the events it plays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// The recorded gaps between `Timestamp`s divided by `speedup`, each capped at `max_pause`.
    Recorded {
        /// Event time runs this many times faster than in the recording.
        speedup: f64,
        /// Longest real pause between two events.
        max_pause: Duration,
    },
    /// A steady number of events per second (more than 0), whatever their recorded times.
    PerSecond(f64),
}

/// Called with the index of each event played and the moment its last byte was written.
pub type OnWritten = Box<dyn FnMut(usize, Instant) + Send>;

/// One event to play: its exact bytes and its recorded time.
#[derive(Debug, Clone)]
pub struct ServedEvent {
    /// The frame as recorded, blank line included.
    pub bytes: Bytes,
    /// Its `Timestamp`, if any.
    pub at: Option<EventTime>,
}

/// The events of one capture (banner and replies to the recorder's own actions left out).
pub fn capture_events(raw: &[u8]) -> Vec<ServedEvent> {
    let mut codec = AmiCodec::new();
    let mut buf = BytesMut::from(raw);
    let mut events = Vec::new();
    loop {
        let frame = match codec.decode_eof(&mut buf) {
            Ok(Some(f)) => f,
            Ok(None) | Err(_) => break,
        };
        let Frame::Message(msg) = frame else {
            continue;
        };
        if msg.event_name().is_none() {
            continue;
        }
        events.push(ServedEvent {
            at: msg.get("Timestamp").and_then(EventTime::parse_ami),
            bytes: terminated(msg.frame()),
        });
    }
    events
}

/// The frame with its terminating blank line (added if the codec stripped it).
fn terminated(frame: &Bytes) -> Bytes {
    if frame.ends_with(b"\r\n\r\n") || frame.ends_with(b"\n\n") {
        return frame.clone();
    }
    let mut v = frame.to_vec();
    if !v.ends_with(b"\n") {
        v.extend_from_slice(b"\r\n");
    }
    v.extend_from_slice(b"\r\n");
    Bytes::from(v)
}

/// Plays `events` to whoever connects, one connection after another (a client that reconnects
/// gets the events not yet written): every connection gets the banner and `pbx`'s answers,
/// and, after its first `CoreShowChannels`, the events paced by `pacing`. `on_written`, if any,
/// hears of every event written. Runs until the listener fails or the task is dropped.
pub async fn serve(
    listener: TcpListener,
    pbx: StandinPbx,
    events: Arc<Vec<ServedEvent>>,
    pacing: Pacing,
    mut on_written: Option<OnWritten>,
) {
    let mut next = 0usize;
    while let Ok((socket, _)) = listener.accept().await {
        // Like Asterisk, write each message as soon as it is produced.
        let _ = socket.set_nodelay(true);
        let (read, write) = socket.into_split();
        next = session(read, write, &pbx, &events, next, pacing, &mut on_written).await;
    }
}

/// [`serve`] with an open login on 127.0.0.1, on a thread and runtime of its own (so the
/// daemon under test shares nothing with it); returns the port it listens on.
pub fn serve_on_thread(
    events: Arc<Vec<ServedEvent>>,
    pacing: Pacing,
    on_written: Option<OnWritten>,
) -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("standin-pbx".into())
        .spawn(move || {
            runtime.block_on(async move {
                if let Ok(listener) = TcpListener::from_std(listener) {
                    serve(listener, StandinPbx::open(), events, pacing, on_written).await;
                }
            });
        })?;
    Ok(port)
}

/// One client connection; returns the index of the first event not yet written.
async fn session(
    read: OwnedReadHalf,
    mut write: OwnedWriteHalf,
    pbx: &StandinPbx,
    events: &[ServedEvent],
    mut next: usize,
    pacing: Pacing,
    on_written: &mut Option<OnWritten>,
) -> usize {
    if write
        .write_all(format!("{BANNER}\r\n").as_bytes())
        .await
        .is_err()
    {
        return next;
    }
    let mut actions = FramedRead::new(read, AmiCodec::new());
    let mut streaming = false;
    let mut due = tokio::time::Instant::now();
    loop {
        let pending = streaming && next < events.len();
        tokio::select! {
            action = actions.next() => {
                let Some(Ok(Frame::Message(action))) = action else { return next };
                let reply = pbx.answer(&action);
                if write.write_all(&reply.bytes).await.is_err() {
                    return next;
                }
                match reply.answered {
                    Answered::Logoff => {
                        let _ = write.shutdown().await;
                        return next;
                    }
                    Answered::Channels if !streaming => {
                        streaming = true;
                        due = tokio::time::Instant::now();
                    }
                    _ => {}
                }
            }
            () = tokio::time::sleep_until(due), if pending => {
                let ev = &events[next];
                if write.write_all(&ev.bytes).await.is_err() {
                    return next;
                }
                if let Some(on_written) = on_written.as_mut() {
                    on_written(next, Instant::now());
                }
                next += 1;
                due = match pacing {
                    Pacing::Recorded { speedup, max_pause } => {
                        tokio::time::Instant::now() + pause(ev, events.get(next), speedup, max_pause)
                    }
                    // From the previous due time, not from now: the rate holds on average.
                    Pacing::PerSecond(rate) => due + Duration::from_secs_f64(1.0 / rate),
                };
            }
        }
    }
}

/// The compressed real-time pause between two recorded events.
fn pause(this: &ServedEvent, next: Option<&ServedEvent>, speedup: f64, max: Duration) -> Duration {
    match (this.at, next.and_then(|n| n.at)) {
        (Some(a), Some(b)) if b > a => {
            Duration::from_secs_f64(b.seconds_since(a) / speedup).min(max)
        }
        _ => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(reply: &Reply) -> String {
        String::from_utf8(reply.bytes.clone()).expect("ASCII reply")
    }

    #[test]
    fn pauses_are_compressed_and_capped() {
        let at = |s: i64| ServedEvent {
            bytes: Bytes::new(),
            at: Some(EventTime(s * 1_000_000)),
        };
        let cap = Duration::from_millis(250);
        assert_eq!(
            pause(&at(0), Some(&at(5)), 50.0, cap),
            Duration::from_millis(100)
        );
        assert_eq!(pause(&at(0), Some(&at(500)), 50.0, cap), cap);
        assert_eq!(pause(&at(5), Some(&at(0)), 50.0, cap), Duration::ZERO);
        assert_eq!(pause(&at(5), None, 50.0, cap), Duration::ZERO);
    }

    #[test]
    fn answers_login_ping_an_empty_channel_list_and_logoff() {
        let pbx = StandinPbx::open();
        let login = Message::from_pairs(&[("Action", "Login"), ("ActionID", "7")]);
        let reply = pbx.answer(&login);
        assert_eq!(reply.answered, Answered::Login { accepted: true });
        assert_eq!(
            text(&reply),
            "Response: Success\r\nActionID: 7\r\nMessage: Authentication accepted\r\n\r\n"
        );
        let list = Message::from_pairs(&[("Action", "CoreShowChannels"), ("ActionID", "8")]);
        let reply = pbx.answer(&list);
        assert_eq!(reply.answered, Answered::Channels);
        assert!(text(&reply).ends_with("EventList: Complete\r\nListItems: 0\r\n\r\n"));
        let ping = pbx.answer(&Message::from_pairs(&[
            ("Action", "Ping"),
            ("ActionID", "9"),
        ]));
        assert!(
            text(&ping).contains("Ping: Pong\r\nTimestamp: "),
            "{}",
            text(&ping)
        );
        let bye = pbx.answer(&Message::from_pairs(&[("Action", "Logoff")]));
        assert_eq!(bye.answered, Answered::Logoff);
    }

    #[test]
    fn checks_plain_and_md5_logins() {
        let pbx = StandinPbx::with_login("missedcalls", "s3cret");
        let login = |pairs: &[(&str, &str)]| {
            let mut all = vec![("Action", "Login"), ("Username", "missedcalls")];
            all.extend_from_slice(pairs);
            pbx.answer(&Message::from_pairs(&all)).answered
        };
        let ok = Answered::Login { accepted: true };
        let refused = Answered::Login { accepted: false };
        assert_eq!(login(&[("Secret", "s3cret")]), ok);
        assert_eq!(login(&[("Secret", "wrong")]), refused);
        let key = md5_hex(CHALLENGE, "s3cret");
        assert_eq!(login(&[("AuthType", "MD5"), ("Key", &key)]), ok);
        assert_eq!(login(&[("AuthType", "MD5"), ("Key", "00")]), refused);
        let challenge = pbx.answer(&Message::from_pairs(&[("Action", "Challenge")]));
        assert!(text(&challenge).contains(&format!("Challenge: {CHALLENGE}")));
        // Independent of this module: the RFC 1321 test vector.
        assert_eq!(md5_hex("", "abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn lists_the_configured_channels() {
        let mut pbx = StandinPbx::open();
        pbx.channels = vec![vec![
            ("Channel".to_owned(), "PJSIP/101-00000002".to_owned()),
            ("Uniqueid".to_owned(), "1700000050.2".to_owned()),
        ]];
        let reply = pbx.answer(&Message::from_pairs(&[
            ("Action", "CoreShowChannels"),
            ("ActionID", "3"),
        ]));
        assert!(text(&reply).contains(
            "Event: CoreShowChannel\r\nActionID: 3\r\nChannel: PJSIP/101-00000002\r\nUniqueid: 1700000050.2\r\n\r\n"
        ));
        assert!(text(&reply).contains("ListItems: 1\r\n"));
    }
}
