//! Framing of the AMI byte stream: finds message boundaries, then hands each frame to the parser.
//!
//! A stream is an optional banner line (`Asterisk Call Manager/<version>`, only as the very first
//! line: captures may start mid-session) followed by blocks of lines ended by an empty line.
//! Invariants:
//! - "Need more bytes" is `Ok(None)`; malformed input is skipped with a `warn!`, never an error,
//!   so a live connection survives anything the PBX sends.
//! - The scan resumes where it stopped (`next_index`): feeding one byte at a time costs O(n).
//! - A message over `max_message_bytes` is discarded up to the next blank line with one warning.
//! - Lines without a colon before a message (stray line ends, garbage) are skipped.
//! - A `Response: Follows` reply (Asterisk <= 13 `Command`) ends at the blank line after its
//!   `--END COMMAND--` line, so blank lines inside the raw output do not split it.
//!
//! Frames are split off the read buffer as `Bytes` without copying; header values stay slices
//! of them.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use memchr::{memchr, memchr_iter, memrchr};
use tokio_util::codec::{Decoder, Encoder};
use tracing::warn;

use super::action::{Action, ActionError};
use super::message::{HeaderSpan, Message};
use super::parser::{self, END_COMMAND};

/// Default cap on one message, blank line included.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// How the first line of an AMI session starts.
pub const BANNER_PREFIX: &[u8] = b"Asterisk Call Manager/";

/// Errors of the AMI layer's stream handling.
#[derive(Debug, thiserror::Error)]
pub enum AmiError {
    /// Reading or writing the socket (or file) failed.
    #[error("AMI I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// An action broke a limit of Asterisk's parser and was not sent.
    #[error(transparent)]
    Action(#[from] ActionError),
}

/// A unit of the AMI stream as framed, before parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawFrame {
    /// The banner line without its line end.
    Banner(Bytes),
    /// The bytes of one message (event, response or list item).
    Message(Bytes),
}

/// One unit of the AMI stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The banner line without its line end, e.g. `Asterisk Call Manager/11.0.0`.
    Banner(Bytes),
    /// An event, a response or a list item.
    Message(Message),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing decoded yet: the first complete line may be the banner.
    Start,
    /// Between messages: blank and garbage lines are skipped; `next_index` = scanned part of
    /// the (partial) first line.
    Idle,
    /// In a message that starts at `buf[0]`. Ordinary messages: `next_index` is a LF not yet
    /// checked for a blank line after it. Follows replies: `next_index` is the next line start.
    Message { follows: bool, end_seen: bool },
    /// Dropping a first line longer than the cap as it arrives; `colon` once it showed one
    /// (it then started a message, whose other lines are discarded too).
    LongLine { colon: bool },
    /// Dropping an oversized message up to its blank line; `mid_line` when the bytes dropped
    /// last ended inside a line; `follows`/`end_seen` as in `Message`.
    Discard {
        mid_line: bool,
        follows: bool,
        end_seen: bool,
    },
}

/// `tokio_util` codec for AMI: decodes [`Frame`]s, encodes [`Action`]s.
#[derive(Debug, Clone)]
pub struct AmiCodec {
    state: State,
    next_index: usize,
    max_message_bytes: usize,
    header_hint: usize,
    /// Emptied header vectors of messages handed back by [`AmiCodec::recycle`].
    spare_spans: Vec<Vec<HeaderSpan>>,
}

/// Most emptied header vectors [`AmiCodec::recycle`] keeps (about 2 MiB).
const SPARE_SPANS: usize = 8192;

impl Default for AmiCodec {
    fn default() -> Self {
        Self::new()
    }
}

/// Text of a line without its CR, for logs: lossy and at most 80 bytes.
fn preview(text: &[u8]) -> String {
    String::from_utf8_lossy(&text[..text.len().min(80)]).into_owned()
}

/// The first line of `buf` without its line end.
fn first_line(buf: &[u8]) -> &[u8] {
    strip_cr(&buf[..memchr(b'\n', buf).unwrap_or(buf.len())])
}

fn strip_cr(text: &[u8]) -> &[u8] {
    text.strip_suffix(b"\r").unwrap_or(text)
}

enum Scan {
    /// The message ends at this index (exclusive, blank line included).
    End(usize),
    /// No boundary in the buffered bytes yet.
    More,
}

impl AmiCodec {
    /// A codec with the default 64 KiB message cap.
    pub fn new() -> Self {
        Self::with_max_message_bytes(DEFAULT_MAX_MESSAGE_BYTES)
    }

    /// A codec that discards messages larger than `max` bytes (blank line included).
    pub fn with_max_message_bytes(max: usize) -> Self {
        AmiCodec {
            state: State::Start,
            next_index: 0,
            max_message_bytes: max.max(1),
            header_hint: 16,
            spare_spans: Vec::new(),
        }
    }

    /// Takes back a message this codec decoded once it is no longer needed, so that its
    /// header vector serves a later message. A reader that hands messages to another thread
    /// gets them back this way, and the allocation and the free stay on one thread (glibc
    /// frees a block from another thread's arena under that arena's lock).
    pub fn recycle(&mut self, msg: Message) {
        self.keep_spare(msg.into_span_storage());
    }

    /// Keeps `spans`, emptied, for a later message (up to [`SPARE_SPANS`]).
    fn keep_spare(&mut self, mut spans: Vec<HeaderSpan>) {
        if self.spare_spans.len() < SPARE_SPANS {
            spans.clear();
            self.spare_spans.push(spans);
        }
    }

    /// Storage for the header spans of the next message.
    fn span_storage(&mut self) -> Vec<HeaderSpan> {
        self.spare_spans
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.header_hint))
    }

    /// The message of `frame` and its parsed `spans`; the next message's storage is sized
    /// from it.
    fn message(&mut self, frame: Bytes, spans: Vec<HeaderSpan>) -> Message {
        self.header_hint = (spans.len() + 4).clamp(8, 128);
        Message::from_spans(frame, spans)
    }

    /// The configured message cap.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// After a dropped over-long first line: a line with a colon started a message, whose
    /// remaining lines go too.
    fn after_long_line(&mut self, colon: bool) {
        self.next_index = 0;
        self.state = if colon {
            State::Discard {
                mid_line: false,
                follows: false,
                end_seen: false,
            }
        } else {
            State::Idle
        };
    }

    fn enter_idle(&mut self) {
        self.state = State::Idle;
        self.next_index = 0;
    }

    /// Drops the current partial message: keeps from the start of its last partial line on.
    fn start_discard(&mut self, src: &mut BytesMut, follows: bool, end_seen: bool) {
        warn!(
            limit = self.max_message_bytes,
            buffered = src.len(),
            head = %preview(first_line(src)),
            "AMI message larger than max_message_bytes, discarding it up to the next blank line"
        );
        let line_start = memrrchr_line_start(src);
        src.advance(line_start);
        self.state = State::Discard {
            mid_line: false,
            follows,
            end_seen,
        };
        self.next_index = 0;
    }

    /// Ordinary message: the first LF followed by a line end, from `next_index` on.
    fn scan_plain(&mut self, src: &BytesMut) -> Scan {
        let from = self.next_index;
        let mut scan = Scan::More;
        let mut resume = src.len();
        parser::scan::each_lf(&src[from..], |p| {
            let p = p + from;
            match src.get(p + 1) {
                None => resume = p,
                Some(b'\n') => scan = Scan::End(p + 2),
                Some(b'\r') => match src.get(p + 2) {
                    None => resume = p,
                    Some(b'\n') => scan = Scan::End(p + 3),
                    Some(_) => return true,
                },
                Some(_) => return true,
            }
            false
        });
        self.next_index = resume;
        scan
    }

    /// `Response: Follows`: the first blank line after a line ending in `--END COMMAND--`.
    fn scan_follows(&mut self, src: &BytesMut, end_seen: &mut bool) -> Scan {
        let from = self.next_index;
        let mut start = from;
        for p in memchr_iter(b'\n', &src[from..]).map(|p| p + from) {
            let text = strip_cr(&src[start..p]);
            if *end_seen && text.is_empty() {
                return Scan::End(p + 1);
            }
            *end_seen = text.ends_with(END_COMMAND);
            start = p + 1;
        }
        self.next_index = start;
        Scan::More
    }

    /// Parses a frame of [`AmiCodec::decode_raw`]; a malformed one is logged and dropped.
    pub fn parse_frame(&mut self, frame: Bytes) -> Option<Message> {
        let mut spans = self.span_storage();
        match parser::message_spans(&frame, &mut spans) {
            Ok(()) => Some(self.message(frame, spans)),
            Err(err) => {
                warn!(%err, head = %preview(&frame), "dropping a malformed AMI message");
                None
            }
        }
    }
}

/// Index just after the last LF of `src` (0 without one).
fn memrrchr_line_start(src: &[u8]) -> usize {
    memrchr(b'\n', src).map_or(0, |p| p + 1)
}

impl AmiCodec {
    /// The next frame, split off `src` but not parsed: [`Decoder::decode`] is this plus
    /// [`AmiCodec::parse_frame`], and a caller may parse on another thread instead.
    pub fn decode_raw(&mut self, src: &mut BytesMut) -> Result<Option<RawFrame>, AmiError> {
        loop {
            match self.state {
                State::Start | State::Idle => {
                    let from = self.next_index.min(src.len());
                    let Some(nl) = memchr(b'\n', &src[from..]).map(|p| p + from) else {
                        self.next_index = src.len();
                        if src.len() > self.max_message_bytes {
                            warn!(
                                limit = self.max_message_bytes,
                                head = %preview(src),
                                "AMI line longer than max_message_bytes, discarding it"
                            );
                            let colon = memchr(b':', src).is_some();
                            src.clear();
                            self.next_index = 0;
                            self.state = State::LongLine { colon };
                        }
                        return Ok(None);
                    };
                    if nl > self.max_message_bytes {
                        // The same decision as above when the line arrives in one piece.
                        warn!(
                            limit = self.max_message_bytes,
                            head = %preview(&src[..nl]),
                            "AMI line longer than max_message_bytes, discarding it"
                        );
                        let colon = memchr(b':', &src[..nl]).is_some();
                        src.advance(nl + 1);
                        self.after_long_line(colon);
                        continue;
                    }
                    let text = strip_cr(&src[..nl]);
                    if self.state == State::Start {
                        self.state = State::Idle;
                        if text.starts_with(BANNER_PREFIX) {
                            let len = text.len();
                            let line = src.split_to(nl + 1).freeze();
                            self.enter_idle();
                            return Ok(Some(RawFrame::Banner(line.slice(..len))));
                        }
                    }
                    if text.is_empty() {
                        src.advance(nl + 1);
                        self.enter_idle();
                        continue;
                    }
                    if memchr(b':', text).is_none() {
                        warn!(line = %preview(text), "skipping an AMI line outside any message");
                        src.advance(nl + 1);
                        self.enter_idle();
                        continue;
                    }
                    if parser::is_follows_line(text) {
                        self.state = State::Message {
                            follows: true,
                            end_seen: false,
                        };
                        self.next_index = nl + 1;
                    } else {
                        self.state = State::Message {
                            follows: false,
                            end_seen: false,
                        };
                        self.next_index = nl;
                    }
                }
                State::Message {
                    follows,
                    mut end_seen,
                } => {
                    let scan = if follows {
                        let s = self.scan_follows(src, &mut end_seen);
                        self.state = State::Message { follows, end_seen };
                        s
                    } else {
                        self.scan_plain(src)
                    };
                    match scan {
                        Scan::End(end) => {
                            self.enter_idle();
                            if end > self.max_message_bytes {
                                warn!(
                                    limit = self.max_message_bytes,
                                    size = end,
                                    head = %preview(first_line(&src[..end])),
                                    "AMI message larger than max_message_bytes, discarded"
                                );
                                src.advance(end);
                                continue;
                            }
                            let frame = src.split_to(end).freeze();
                            return Ok(Some(RawFrame::Message(frame)));
                        }
                        Scan::More => {
                            if src.len() > self.max_message_bytes {
                                let (follows, end_seen) = match self.state {
                                    State::Message { follows, end_seen } => (follows, end_seen),
                                    _ => (false, false),
                                };
                                self.start_discard(src, follows, end_seen);
                                continue;
                            }
                            return Ok(None);
                        }
                    }
                }
                State::LongLine { colon } => match memchr(b'\n', src) {
                    Some(p) => {
                        let colon = colon || memchr(b':', &src[..p]).is_some();
                        src.advance(p + 1);
                        self.after_long_line(colon);
                    }
                    None => {
                        let colon = colon || memchr(b':', src).is_some();
                        src.clear();
                        self.state = State::LongLine { colon };
                        return Ok(None);
                    }
                },
                State::Discard {
                    mid_line,
                    follows,
                    end_seen,
                } => match memchr(b'\n', src) {
                    Some(p) => {
                        let text = strip_cr(&src[..p]);
                        if !mid_line && text.is_empty() && (!follows || end_seen) {
                            src.advance(p + 1);
                            self.enter_idle();
                            continue;
                        }
                        let end_seen = text.ends_with(END_COMMAND);
                        src.advance(p + 1);
                        self.state = State::Discard {
                            mid_line: false,
                            follows,
                            end_seen,
                        };
                    }
                    None => {
                        // Keep a short tail: a lone CR may begin the blank line, and a
                        // terminator split across reads must still be recognised.
                        let keep = END_COMMAND.len() + 1;
                        if src.len() > keep {
                            src.advance(src.len() - keep);
                            self.state = State::Discard {
                                mid_line: true,
                                follows,
                                end_seen,
                            };
                        }
                        return Ok(None);
                    }
                },
            }
        }
    }

    /// [`AmiCodec::decode_raw`] at the end of the stream (what [`Decoder::decode_eof`] parses).
    pub fn decode_raw_eof(&mut self, src: &mut BytesMut) -> Result<Option<RawFrame>, AmiError> {
        if let Some(frame) = self.decode_raw(src)? {
            return Ok(Some(frame));
        }
        if src.is_empty() {
            return Ok(None);
        }
        // What is left is a message or a line without its terminator.
        let state = self.state;
        let rest = src.split().freeze();
        self.enter_idle();
        match state {
            State::Discard { .. } | State::LongLine { .. } => Ok(None),
            State::Start if strip_cr(&rest).starts_with(BANNER_PREFIX) => {
                let len = strip_cr(&rest).len();
                Ok(Some(RawFrame::Banner(rest.slice(..len))))
            }
            State::Start | State::Idle if memchr(b':', &rest).is_none() => {
                if !strip_cr(&rest).is_empty() {
                    warn!(line = %preview(&rest), "skipping an AMI line outside any message at end of stream");
                }
                Ok(None)
            }
            _ => {
                if rest.len() > self.max_message_bytes {
                    warn!(
                        limit = self.max_message_bytes,
                        size = rest.len(),
                        "AMI message larger than max_message_bytes at end of stream, discarded"
                    );
                    return Ok(None);
                }
                Ok(Some(RawFrame::Message(rest)))
            }
        }
    }
}

impl Decoder for AmiCodec {
    type Item = Frame;
    type Error = AmiError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, AmiError> {
        self.decode_parsed(src, false)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, AmiError> {
        self.decode_parsed(src, true)
    }
}

impl AmiCodec {
    /// The next raw frame, parsed; malformed messages are skipped.
    fn decode_parsed(&mut self, src: &mut BytesMut, eof: bool) -> Result<Option<Frame>, AmiError> {
        if let Some(msg) = self.decode_leading(src) {
            return Ok(Some(Frame::Message(msg)));
        }
        self.decode_general(src, eof)
    }

    /// The common case in one pass: between messages, with a whole ordinary message at the
    /// start of `src`, the parser's line scan finds its end and its headers together (the
    /// general path scans for the end first and parses the frame after).
    #[inline]
    fn decode_leading(&mut self, src: &mut BytesMut) -> Option<Message> {
        if self.state != State::Idle || self.next_index != 0 {
            return None;
        }
        let mut spans = self.span_storage();
        let Some(end) = parser::leading_message(src, self.max_message_bytes, &mut spans) else {
            self.keep_spare(spans);
            return None;
        };
        Some(self.message(src.split_to(end).freeze(), spans))
    }

    /// [`AmiCodec::decode_raw`] then [`AmiCodec::parse_frame`]: every case the one-pass path
    /// leaves (banner, garbage lines, `Response: Follows`, partial and oversized messages).
    fn decode_general(&mut self, src: &mut BytesMut, eof: bool) -> Result<Option<Frame>, AmiError> {
        loop {
            let raw = if eof {
                self.decode_raw_eof(src)?
            } else {
                self.decode_raw(src)?
            };
            match raw {
                None => return Ok(None),
                Some(RawFrame::Banner(b)) => return Ok(Some(Frame::Banner(b))),
                Some(RawFrame::Message(frame)) => {
                    if let Some(msg) = self.parse_frame(frame) {
                        return Ok(Some(Frame::Message(msg)));
                    }
                }
            }
        }
    }
}

impl Encoder<&Action> for AmiCodec {
    type Error = AmiError;

    fn encode(&mut self, action: &Action, dst: &mut BytesMut) -> Result<(), AmiError> {
        action.encode(dst)?;
        Ok(())
    }
}

impl Encoder<Action> for AmiCodec {
    type Error = AmiError;

    fn encode(&mut self, action: Action, dst: &mut BytesMut) -> Result<(), AmiError> {
        self.encode(&action, dst)
    }
}

/// Writes a message as `Key: Value\r\n` lines and a blank line (test servers, demo, replay).
///
/// Headers with an empty key (raw lines) are written as `: value`, which parses back to the
/// same header.
pub fn write_message(msg: &Message, dst: &mut BytesMut) {
    for (k, v) in msg.headers() {
        dst.reserve(k.len() + v.len() + 4);
        dst.put_slice(k);
        dst.put_slice(b": ");
        dst.put_slice(v);
        dst.put_slice(b"\r\n");
    }
    dst.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut AmiCodec, input: &[u8]) -> Vec<Frame> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(f) = codec.decode(&mut buf).expect("decode never errors") {
            out.push(f);
        }
        while let Some(f) = codec.decode_eof(&mut buf).expect("decode_eof never errors") {
            out.push(f);
        }
        assert!(buf.is_empty());
        out
    }

    fn messages(input: &[u8]) -> Vec<Message> {
        decode_all(&mut AmiCodec::new(), input)
            .into_iter()
            .filter_map(|f| match f {
                Frame::Message(m) => Some(m),
                Frame::Banner(_) => None,
            })
            .collect()
    }

    #[test]
    fn banner_then_messages() {
        let frames = decode_all(
            &mut AmiCodec::new(),
            b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\nMessage: Authentication accepted\r\n\r\n",
        );
        assert_eq!(frames.len(), 2);
        assert_eq!(
            frames[0],
            Frame::Banner(Bytes::from_static(b"Asterisk Call Manager/11.0.0"))
        );
        let Frame::Message(m) = &frames[1] else {
            panic!("not a message")
        };
        assert_eq!(m.get("Message"), Some(&b"Authentication accepted"[..]));
    }

    #[test]
    fn banner_only_as_first_line() {
        let frames = decode_all(
            &mut AmiCodec::new(),
            b"Event: A\r\n\r\nAsterisk Call Manager/11.0.0\r\nEvent: B\r\n\r\n",
        );
        assert!(frames.iter().all(|f| matches!(f, Frame::Message(_))));
        assert_eq!(frames.len(), 2);
    }

    #[test]
    fn partial_input_is_ok_none_and_resumes() {
        let mut codec = AmiCodec::new();
        let mut buf = BytesMut::from(&b"Asterisk Call Man"[..]);
        assert!(codec.decode(&mut buf).expect("no error").is_none());
        buf.extend_from_slice(b"ager/2.10.6\r\nEvent: A\r\nX: 1\r\n");
        assert!(matches!(codec.decode(&mut buf), Ok(Some(Frame::Banner(_)))));
        assert!(codec.decode(&mut buf).expect("no error").is_none());
        buf.extend_from_slice(b"\r");
        assert!(codec.decode(&mut buf).expect("no error").is_none());
        buf.extend_from_slice(b"\n");
        let Ok(Some(Frame::Message(m))) = codec.decode(&mut buf) else {
            panic!("no message")
        };
        assert_eq!(m.get("X"), Some(&b"1"[..]));
        assert!(buf.is_empty());
    }

    #[test]
    fn bare_lf_and_mixed_endings() {
        let ms = messages(b"Event: A\nK: 1\n\nEvent: B\r\nK: 2\n\r\nEvent: C\nK: 3\r\n\n");
        let names: Vec<_> = ms
            .iter()
            .map(|m| m.get_str("Event").unwrap_or_default().into_owned())
            .collect();
        assert_eq!(names, ["A", "B", "C"]);
    }

    #[test]
    fn garbage_and_blank_lines_before_a_message_are_skipped() {
        let ms = messages(
            b"\r\n\r\n\nnoise without colon\r\n\r\nEvent: A\r\n\r\n\r\n\r\nEvent: B\r\n\r\n",
        );
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0].len(), 1);
        assert_eq!(ms[1].get("Event"), Some(&b"B"[..]));
    }

    #[test]
    fn oversize_message_is_dropped_and_the_next_one_kept() {
        let mut input = b"Event: Big\r\n".to_vec();
        for i in 0..200 {
            input.extend_from_slice(
                format!("Variable: v{i}=xxxxxxxxxxxxxxxxxxxxxxxx\r\n").as_bytes(),
            );
        }
        input.extend_from_slice(b"\r\nEvent: Small\r\nK: v\r\n\r\n");
        // Whole buffer at once: the boundary is found, the frame is too large.
        let mut codec = AmiCodec::with_max_message_bytes(1024);
        let ms: Vec<_> = decode_all(&mut codec, &input);
        assert_eq!(ms.len(), 1);
        let Frame::Message(m) = &ms[0] else {
            panic!("not a message")
        };
        assert_eq!(m.get("Event"), Some(&b"Small"[..]));
        // Trickled in 7-byte chunks: discard mode kicks in before the boundary arrives.
        let mut codec = AmiCodec::with_max_message_bytes(1024);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for chunk in input.chunks(7) {
            buf.extend_from_slice(chunk);
            while let Some(f) = codec.decode(&mut buf).expect("no error") {
                got.push(f);
            }
            assert!(buf.len() <= 1024 + 7, "buffer must not grow past the cap");
        }
        assert_eq!(got, ms);
    }

    #[test]
    fn oversize_single_line_without_newline_is_discarded() {
        let mut codec = AmiCodec::with_max_message_bytes(100);
        let mut buf = BytesMut::from(&[b'x'; 300][..]);
        assert!(codec.decode(&mut buf).expect("no error").is_none());
        assert!(buf.is_empty());
        buf.extend_from_slice(b"yy\r\n\r\nEvent: Ok\r\n\r\n");
        let Ok(Some(Frame::Message(m))) = codec.decode(&mut buf) else {
            panic!("no message")
        };
        assert_eq!(m.get("Event"), Some(&b"Ok"[..]));
    }

    #[test]
    fn follows_reply_with_blank_lines_is_one_frame() {
        let input = b"Response: Follows\r\nPrivilege: Command\r\nActionID: c1\r\n\
                      line one: x\n\nline three\n--END COMMAND--\r\n\r\nEvent: After\r\n\r\n";
        let ms = messages(input);
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0].get("ActionID"), Some(&b"c1"[..]));
        let raw: Vec<_> = ms[0]
            .headers()
            .filter(|(k, _)| k.is_empty())
            .map(|(_, v)| v)
            .collect();
        assert_eq!(raw, vec![&b"line one: x"[..], &b""[..], &b"line three"[..]]);
        assert_eq!(ms[1].get("Event"), Some(&b"After"[..]));
    }

    #[test]
    fn trailing_message_without_blank_line_at_eof() {
        let ms = messages(b"Event: A\r\n\r\nEvent: B\r\nK: v\r\n");
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[1].get("K"), Some(&b"v"[..]));
        let ms = messages(b"Event: A\r\n\r\ngarbage at the end");
        assert_eq!(ms.len(), 1);
        let ms = messages(b"Event: A\r\n\r\nEvent: C");
        assert_eq!(ms[1].get("Event"), Some(&b"C"[..]));
    }

    #[test]
    fn values_with_colons_empty_values_and_repeats() {
        let ms = messages(
            b"Event: Newexten\r\nAppData: a=b: c; d\r\nAccountCode: \r\n\
              ChanVariable: A=1\r\nChanVariable(PJSIP/x-1;1): B=2\r\nChanVariable: C=3\r\n\r\n",
        );
        let m = &ms[0];
        assert_eq!(m.get("AppData"), Some(&b"a=b: c; d"[..]));
        assert_eq!(m.get("AccountCode"), Some(&b""[..]));
        assert_eq!(
            m.get_all("ChanVariable").collect::<Vec<_>>(),
            vec![&b"A=1"[..], &b"C=3"[..]]
        );
        assert_eq!(m.get("ChanVariable(PJSIP/x-1;1)"), Some(&b"B=2"[..]));
    }

    #[test]
    fn invalid_utf8_survives_framing() {
        let ms = messages(b"Event: Newchannel\r\nCallerIDName: \xc8\xe2\xe0\xed\r\n\r\n");
        assert_eq!(ms[0].get("CallerIDName"), Some(&b"\xc8\xe2\xe0\xed"[..]));
    }

    #[test]
    fn encodes_actions() {
        let mut codec = AmiCodec::new();
        let mut buf = BytesMut::new();
        codec
            .encode(&Action::ping().with_action_id("p1"), &mut buf)
            .expect("encodes");
        assert_eq!(&buf[..], b"Action: Ping\r\nActionID: p1\r\n\r\n");
    }

    #[test]
    fn write_message_round_trips() {
        let m = Message::from_pairs(&[("Event", "X"), ("", "raw"), ("K", ": v")]);
        let mut buf = BytesMut::new();
        write_message(&m, &mut buf);
        assert_eq!(messages(&buf), vec![m]);
    }

    /// A decoded frame: whether it is the banner, its bytes, its headers.
    type Decoded = (bool, Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>);

    /// Decodes `input` fed in pieces of `sizes` bytes (then the rest), with or without the
    /// one-pass path.
    fn decode_pieces(input: &[u8], sizes: &[usize], max: usize, one_pass: bool) -> Vec<Decoded> {
        let mut codec = AmiCodec::with_max_message_bytes(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let next = |codec: &mut AmiCodec, buf: &mut BytesMut, eof: bool| {
            if one_pass {
                if eof {
                    codec.decode_eof(buf)
                } else {
                    codec.decode(buf)
                }
            } else {
                codec.decode_general(buf, eof)
            }
            .expect("decoding never errors")
        };
        let mut fed = 0;
        for &n in sizes.iter().chain(std::iter::once(&usize::MAX)) {
            let n = n.min(input.len() - fed);
            buf.extend_from_slice(&input[fed..fed + n]);
            fed += n;
            let eof = fed == input.len();
            while let Some(f) = next(&mut codec, &mut buf, eof) {
                out.push(match f {
                    Frame::Banner(b) => (true, b.to_vec(), Vec::new()),
                    Frame::Message(m) => (
                        false,
                        m.frame().to_vec(),
                        m.headers().map(|(k, v)| (k.to_vec(), v.to_vec())).collect(),
                    ),
                });
            }
            if eof {
                break;
            }
        }
        out
    }

    /// Streams of protocol-shaped pieces: messages, blank and garbage lines, banners,
    /// `Response: Follows` replies, bare LFs and arbitrary bytes.
    fn stream_bytes() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(vec![
                    &b"Event: Newchannel\r\nUniqueid: 1.2\r\n\r\n"[..],
                    b"Asterisk Call Manager/11.0.0\r\n", b"\r\n", b"\n", b"\r", b":", b": ",
                    b"Event", b"garbage line\r\n", b"Response: Follows\r\n",
                    b"Privilege: Command\r\n", b"--END COMMAND--", b"\r\n\r\n", b"\xff",
                    b"Key:\n\n", b": raw\r\n",
                ])
                .prop_map(|s| s.to_vec()),
                1 => prop::collection::vec(any::<u8>(), 0..40),
            ],
            0..30,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 3000, ..Default::default() })]

        /// The one-pass path gives exactly what framing then parsing gives, however the
        /// stream is cut and whatever the size cap.
        #[test]
        fn one_pass_equals_frame_then_parse(
            input in stream_bytes(),
            sizes in proptest::collection::vec(1usize..64, 0..8),
            max in proptest::prop_oneof![
                proptest::strategy::Just(DEFAULT_MAX_MESSAGE_BYTES),
                8usize..80
            ],
        ) {
            proptest::prop_assert_eq!(
                decode_pieces(&input, &sizes, max, true),
                decode_pieces(&input, &sizes, max, false)
            );
        }
    }
}
