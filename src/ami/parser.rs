//! nom grammar for one complete AMI frame (the codec has already found its boundaries).
//!
//! ```text
//! message     := header* [blank_line]
//! header      := field | raw_line
//! field       := key ":" [" "] value line_end
//! raw_line    := text line_end                  ; a line without a colon
//! line_end    := "\r\n" | "\n"                  ; or the end of the frame (EOF trailer)
//! ```
//!
//! Tolerances, named in one place:
//! - `quirk_bare_lf`: a bare LF ends a line like CRLF does; both may be mixed in one frame.
//! - `quirk_raw_line`: a line without a colon is kept as a header with an **empty key** and the
//!   whole line as its value, so nothing read is lost and no key lookup matches it by accident.
//! - `quirk_follows`: in an Asterisk <= 13 `Response: Follows` reply, the `Response`, `Privilege`
//!   and `ActionID` fields are parsed as usual; every later line, colons and blank lines included,
//!   is raw command output (empty key), and the `--END COMMAND--` terminator is dropped.
//! - `quirk_eof_line`: the last line of a frame may lack its line end (a capture cut short).
//!
//! Parsing allocates exactly one `Vec<HeaderSpan>` per message; values are slices of the frame.
//! Bytes are never required to be UTF-8.

use std::borrow::Cow;

use bytes::Bytes;
use memchr::memchr;
use nom::branch::alt;
use nom::bytes::complete::tag;
use nom::combinator::{eof, opt, recognize};
use nom::error::{Error, ErrorKind};
use nom::sequence::terminated;
use nom::{IResult, Offset, Parser};

use super::message::{HeaderSpan, Message};

/// Terminator of the raw output of an Asterisk <= 13 `Command` reply.
pub const END_COMMAND: &[u8] = b"--END COMMAND--";

/// Why a frame could not be turned into a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The frame holds no header at all (only blank lines, or nothing).
    #[error("AMI frame of {len} bytes holds no header")]
    Empty {
        /// Length of the frame.
        len: usize,
    },
    /// Non-blank bytes follow the blank line that ends the message.
    #[error("AMI frame has data after its terminating blank line, at byte {offset}: {preview:?}")]
    TrailingData {
        /// Offset of the first trailing line.
        offset: usize,
        /// The start of that line, decoded lossily.
        preview: String,
    },
    /// Header spans are 32-bit offsets; a frame this large is refused.
    #[error("AMI frame of {len} bytes is too large to index")]
    TooLarge {
        /// Length of the frame.
        len: usize,
    },
}

/// One parsed line, borrowing from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// `Key: Value`.
    Field {
        /// Bytes before the first colon.
        key: &'a [u8],
        /// Bytes after `": "` (or `":"`) up to the line end.
        value: &'a [u8],
    },
    /// A line without a colon (`quirk_raw_line`).
    Raw(&'a [u8]),
    /// An empty line: the end of a message.
    Blank,
}

fn fail(input: &[u8], kind: ErrorKind) -> nom::Err<Error<&[u8]>> {
    nom::Err::Error(Error::new(input, kind))
}

/// `line_end := "\r\n" | "\n"`
#[inline]
pub fn line_end(input: &[u8]) -> IResult<&[u8], &[u8]> {
    alt((tag(&b"\r\n"[..]), tag(&b"\n"[..]))).parse(input)
}

/// `line_end | EOF | "\r" EOF` (`quirk_eof_line`: the last line of a cut capture).
#[inline]
fn line_end_or_eof(input: &[u8]) -> IResult<&[u8], &[u8]> {
    alt((line_end, eof, terminated(tag(&b"\r"[..]), eof))).parse(input)
}

/// `text := (byte - "\n")*`, up to the line end, without a CR just before the LF.
#[inline]
pub fn text(input: &[u8]) -> IResult<&[u8], &[u8]> {
    let end = scan::find_lf(input).unwrap_or(input.len());
    let text_end = if end > 0 && input[end - 1] == b'\r' {
        end - 1
    } else {
        end
    };
    Ok((&input[text_end..], &input[..text_end]))
}

/// `line := text line_end` (or EOF); fails only on empty input.
#[inline]
pub fn line(input: &[u8]) -> IResult<&[u8], &[u8]> {
    if input.is_empty() {
        return Err(fail(input, ErrorKind::Eof));
    }
    terminated(text, line_end_or_eof).parse(input)
}

/// `key := (byte - ":" - "\n")*`, the bytes before the first colon of the line.
///
/// Keys may be empty and may hold spaces, `-()/@;.` and any non-UTF-8 byte. Fails when the
/// line has no colon.
#[inline]
pub fn key(input: &[u8]) -> IResult<&[u8], &[u8]> {
    match scan::find_colon_or_lf(input) {
        Some(i) if input[i] == b':' => Ok((&input[i..], &input[..i])),
        _ => Err(fail(input, ErrorKind::TakeUntil)),
    }
}

/// `separator := ":" [" "]`
#[inline]
pub fn separator(input: &[u8]) -> IResult<&[u8], &[u8]> {
    recognize((tag(&b":"[..]), opt(tag(&b" "[..])))).parse(input)
}

/// `value := text`, everything after the separator up to the line end, further colons
/// included; may be empty.
#[inline]
pub fn value(input: &[u8]) -> IResult<&[u8], &[u8]> {
    text(input)
}

/// `field := key separator value`, applied to one line's text.
pub fn field(input: &[u8]) -> IResult<&[u8], (&[u8], &[u8])> {
    let (rest, (k, _, v)) = (key, separator, value).parse(input)?;
    Ok((rest, (k, v)))
}

/// `header := field line_end | raw_line | blank_line`: one whole line of a message.
#[inline]
pub fn header(input: &[u8]) -> IResult<&[u8], Line<'_>> {
    if let Ok((rest, (key, value))) = terminated(field, line_end_or_eof).parse(input) {
        return Ok((rest, Line::Field { key, value }));
    }
    let (rest, text) = line(input)?;
    Ok((
        rest,
        if text.is_empty() {
            Line::Blank
        } else {
            Line::Raw(text)
        },
    ))
}

/// Short-haystack byte search: the lines of AMI are ~25 bytes, where a `memchr` call costs
/// more than the scan itself; so the first bytes are checked 8 at a time in a `u64` (SWAR),
/// and `memchr` takes over for long values.
pub mod scan {
    use memchr::{memchr, memchr2};

    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    /// Bytes checked word by word before handing over to `memchr`.
    const SHORT: usize = 64;

    /// 0x80 in every byte of `x` that is zero, 0 elsewhere (exact, no false positives).
    #[inline(always)]
    pub fn zero_bytes(x: u64) -> u64 {
        !((((x & LOW7).wrapping_add(LOW7)) | x) | LOW7)
    }

    #[inline(always)]
    fn word(hay: &[u8], i: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&hay[i..i + 8]);
        u64::from_le_bytes(w)
    }

    #[inline(always)]
    fn find_by(
        hay: &[u8],
        mask: impl Fn(u64) -> u64,
        slow: impl Fn(&[u8]) -> Option<usize>,
    ) -> Option<usize> {
        let mut i = 0;
        while i + 8 <= hay.len() && i < SHORT {
            let m = mask(word(hay, i));
            if m != 0 {
                return Some(i + (m.trailing_zeros() / 8) as usize);
            }
            i += 8;
        }
        slow(&hay[i..]).map(|p| p + i)
    }

    /// 0x80 in every byte of `w` that is a colon or an LF.
    #[inline(always)]
    fn colon_or_lf(w: u64) -> u64 {
        zero_bytes(w ^ (ONES * u64::from(b'\n'))) | zero_bytes(w ^ (ONES * u64::from(b':')))
    }

    /// 0x80 in every byte of `w` that is an LF.
    #[inline(always)]
    fn lf(w: u64) -> u64 {
        zero_bytes(w ^ (ONES * u64::from(b'\n')))
    }

    /// Bit k set when byte k of the 64-byte block is marked by `marks`.
    #[inline(always)]
    fn block_mask(block: &[u8], marks: impl Fn(u64) -> u64) -> u64 {
        const GATHER: u64 = 0x0102_0408_1020_4080;
        let mut mask = 0u64;
        for k in 0..8 {
            let z = marks(word(block, 8 * k));
            // Moves the 0x80 marks of the eight bytes into the top byte, bit k for byte k.
            let bits = (z >> 7).wrapping_mul(GATHER) >> 56;
            mask |= bits << (8 * k);
        }
        mask
    }

    /// Calls `f(position, byte)` for every byte of `hay` marked by `marks`, in order, until it
    /// returns false. Masks of 64 bytes keep the loop free of per-byte and per-line branches.
    #[inline(always)]
    fn each_marked(
        hay: &[u8],
        marks: impl Fn(u64) -> u64 + Copy,
        mut f: impl FnMut(usize, u8) -> bool,
    ) {
        let mut base = 0;
        let mut tail = [0u8; 64];
        while base < hay.len() {
            let mut mask = if base + 64 <= hay.len() {
                block_mask(&hay[base..base + 64], marks)
            } else {
                let n = hay.len() - base;
                tail[..n].copy_from_slice(&hay[base..]);
                tail[n..].fill(0);
                block_mask(&tail, marks)
            };
            while mask != 0 {
                let p = base + mask.trailing_zeros() as usize;
                if !f(p, hay[p]) {
                    return;
                }
                mask &= mask - 1;
            }
            base += 64;
        }
    }

    /// Calls `f(position, byte)` for every colon and LF of `hay` in order, until it returns
    /// false (the parser's lexer).
    #[inline(always)]
    pub fn structural(hay: &[u8], f: impl FnMut(usize, u8) -> bool) {
        each_marked(hay, colon_or_lf, f);
    }

    /// Calls `f(position)` for every LF of `hay` in order, until it returns false (the
    /// codec's boundary scan).
    #[inline(always)]
    pub fn each_lf(hay: &[u8], mut f: impl FnMut(usize) -> bool) {
        each_marked(hay, lf, |p, _| f(p));
    }

    /// Position of the first LF.
    #[inline(always)]
    pub fn find_lf(hay: &[u8]) -> Option<usize> {
        find_by(
            hay,
            |w| zero_bytes(w ^ (ONES * u64::from(b'\n'))),
            |h| memchr(b'\n', h),
        )
    }

    /// Position of the first colon or LF.
    #[inline(always)]
    pub fn find_colon_or_lf(hay: &[u8]) -> Option<usize> {
        find_by(
            hay,
            |w| {
                zero_bytes(w ^ (ONES * u64::from(b'\n'))) | zero_bytes(w ^ (ONES * u64::from(b':')))
            },
            |h| memchr2(b':', b'\n', h),
        )
    }
}

/// Fields that may precede the raw output of a `Response: Follows` reply (`quirk_follows`).
fn is_follows_field(key: &[u8]) -> bool {
    key.eq_ignore_ascii_case(b"Response")
        || key.eq_ignore_ascii_case(b"Privilege")
        || key.eq_ignore_ascii_case(b"ActionID")
}

/// True when a first line reads `Response: Follows` (ASCII case-insensitive).
pub fn is_follows_line(text: &[u8]) -> bool {
    matches!(field(text), Ok((_, (k, v))) if is_follows_field_pair(k, v))
}

fn is_follows_field_pair(key: &[u8], value: &[u8]) -> bool {
    key.eq_ignore_ascii_case(b"Response") && value.eq_ignore_ascii_case(b"Follows")
}

/// Where [`scan_lines`] stopped.
enum LinesEnd {
    /// At a blank line; the index just after it.
    Blank(usize),
    /// The first line reads `Response: Follows` (`quirk_follows`): nothing was kept.
    Follows,
    /// The bytes ran out inside the line starting at `line_start` (first colon at `colon`,
    /// `usize::MAX`: none).
    Exhausted { line_start: usize, colon: usize },
}

/// One pass of [`scan::structural`] over `buf`: every colon and LF, 64 bytes at a time; each
/// LF closes a line, split into `spans` as `field` or `raw_line` would split it, up to the
/// first blank line.
#[inline(always)]
fn scan_lines(buf: &[u8], spans: &mut Vec<HeaderSpan>) -> LinesEnd {
    const NONE: usize = usize::MAX;
    let mut line_start = 0;
    let mut colon = NONE;
    let mut end = None;
    scan::structural(buf, |p, b| {
        if b == b':' {
            if colon == NONE {
                colon = p;
            }
            return true;
        }
        let text_end = if p > line_start && buf[p - 1] == b'\r' {
            p - 1
        } else {
            p
        };
        if text_end == line_start {
            end = Some(LinesEnd::Blank(p + 1));
            return false;
        }
        push_line(buf, spans, line_start, colon, text_end);
        if spans.len() == 1 && first_is_follows(buf, spans) {
            end = Some(LinesEnd::Follows);
            return false;
        }
        line_start = p + 1;
        colon = NONE;
        true
    });
    end.unwrap_or(LinesEnd::Exhausted { line_start, colon })
}

/// `message := header* [blank_line]`: fills `spans` with the frame's headers in wire order.
///
/// The hot path of replay: [`scan_lines`] splits the lines in one pass. The result is
/// identical to [`message_spans_nom`], which still handles `Response: Follows` replies.
pub fn message_spans(frame: &[u8], spans: &mut Vec<HeaderSpan>) -> Result<(), ParseError> {
    if frame.len() > u32::MAX as usize {
        return Err(ParseError::TooLarge { len: frame.len() });
    }
    let mut follows = false;
    match scan_lines(frame, spans) {
        LinesEnd::Blank(end) => check_trailing(frame, &frame[end..])?,
        LinesEnd::Follows => follows = true,
        LinesEnd::Exhausted { line_start, colon } if line_start < frame.len() => {
            // quirk_eof_line: the last line has no line end.
            let end = frame.len();
            let text_end = if frame[end - 1] == b'\r' {
                end - 1
            } else {
                end
            };
            if text_end > line_start {
                push_line(frame, spans, line_start, colon, text_end);
                follows = spans.len() == 1 && first_is_follows(frame, spans);
            }
        }
        LinesEnd::Exhausted { .. } => {}
    }
    if follows {
        spans.clear();
        return message_spans_nom(frame, spans);
    }
    if spans.is_empty() {
        return Err(ParseError::Empty { len: frame.len() });
    }
    Ok(())
}

/// The codec's one-pass path: when `buf` starts with a complete ordinary message (its first
/// line a `Key: Value` field, not a `Response: Follows` reply) ended by a blank line within
/// `max` bytes, fills `spans` with its headers and returns its length, blank line included.
/// `None` for anything else (the codec's general path then decides); `spans` is then left
/// in an unspecified state.
#[inline]
pub fn leading_message(buf: &[u8], max: usize, spans: &mut Vec<HeaderSpan>) -> Option<usize> {
    let buf = &buf[..buf.len().min(max).min(u32::MAX as usize)];
    match scan_lines(buf, spans) {
        LinesEnd::Blank(end) => spans
            .first()
            // A raw first line (no colon) is garbage before a message, not its start.
            .filter(|first| first.value.0 > first.key.1)
            .map(|_| end),
        LinesEnd::Follows | LinesEnd::Exhausted { .. } => None,
    }
}

/// One line `[start, text_end)` whose first colon is at `colon` (`usize::MAX`: none), split
/// as `field := key ":" [" "] value` or kept whole as a `raw_line` with an empty key.
#[inline(always)]
fn push_line(
    frame: &[u8],
    spans: &mut Vec<HeaderSpan>,
    start: usize,
    colon: usize,
    text_end: usize,
) {
    if colon < text_end {
        let mut value = colon + 1;
        if value < text_end && frame[value] == b' ' {
            value += 1;
        }
        spans.push(HeaderSpan::new(start..colon, value..text_end));
    } else {
        spans.push(HeaderSpan::new(start..start, start..text_end));
    }
}

fn first_is_follows(frame: &[u8], spans: &[HeaderSpan]) -> bool {
    let h = spans[0];
    is_follows_field_pair(
        &frame[h.key.0 as usize..h.key.1 as usize],
        &frame[h.value.0 as usize..h.value.1 as usize],
    )
}

/// `message := header* [blank_line]`, the grammar applied rule by rule with the nom functions
/// above: fills `spans` with the frame's headers in wire order (offsets relative to `frame`).
///
/// This is the reference: [`message_spans`] gives the same result faster (a property test
/// checks it) and hands `Response: Follows` replies (`quirk_follows`) to this function.
pub fn message_spans_nom(frame: &[u8], spans: &mut Vec<HeaderSpan>) -> Result<(), ParseError> {
    if frame.len() > u32::MAX as usize {
        return Err(ParseError::TooLarge { len: frame.len() });
    }
    let span_of = |s: &[u8]| {
        let start = frame.offset(s);
        start..start + s.len()
    };
    let mut input = frame;
    let mut follows = false;
    let mut output = false;
    while !input.is_empty() {
        if output {
            // Raw command output (quirk_follows): every line is data until the terminator.
            let Ok((rest, text)) = line(input) else { break };
            if let Some(before) = text.strip_suffix(END_COMMAND) {
                if !before.is_empty() {
                    let s = span_of(before);
                    spans.push(HeaderSpan::new(s.start..s.start, s));
                }
                output = false;
                follows = false;
            } else if !(text.is_empty() && rest.is_empty()) {
                let s = span_of(text);
                spans.push(HeaderSpan::new(s.start..s.start, s));
            }
            input = rest;
            continue;
        }
        let Ok((rest, line)) = header(input) else {
            break;
        };
        match line {
            Line::Blank => {
                check_trailing(frame, rest)?;
                break;
            }
            Line::Field { key, value } => {
                if follows && !is_follows_field(key) {
                    output = true;
                    continue;
                }
                if spans.is_empty() && is_follows_field_pair(key, value) {
                    follows = true;
                }
                spans.push(HeaderSpan::new(span_of(key), span_of(value)));
            }
            Line::Raw(text) => {
                if follows {
                    output = true;
                    continue;
                }
                let s = span_of(text);
                spans.push(HeaderSpan::new(s.start..s.start, s));
            }
        }
        input = rest;
    }
    if spans.is_empty() {
        return Err(ParseError::Empty { len: frame.len() });
    }
    Ok(())
}

/// After the terminating blank line only more blank lines may follow.
fn check_trailing(frame: &[u8], mut rest: &[u8]) -> Result<(), ParseError> {
    if rest.is_empty() {
        return Ok(());
    }
    while let Ok((next, line)) = header(rest) {
        if line != Line::Blank {
            let len = rest.len().min(40);
            return Err(ParseError::TrailingData {
                offset: frame.offset(rest),
                preview: String::from_utf8_lossy(&rest[..len]).into_owned(),
            });
        }
        rest = next;
    }
    Ok(())
}

/// Parses one complete frame into a [`Message`] whose values are slices of `frame`.
pub fn parse_message(frame: Bytes) -> Result<Message, ParseError> {
    let mut spans = Vec::with_capacity(16);
    message_spans(&frame, &mut spans)?;
    Ok(Message::from_spans(frame, spans))
}

/// Undoes Asterisk's C escaping (`ast_escape_c`) of `CallerIDName`, `ConnectedLineName`,
/// `ChanVariable` values and `VarSet` `Value` (AMI-FACTS 4).
///
/// Known escapes: `\a \b \f \n \r \t \v \\ \' \" \?`. An unknown escape or a trailing lone
/// backslash is kept as is. Borrows when there is nothing to undo.
pub fn unescape(value: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = memchr(b'\\', value) else {
        return Cow::Borrowed(value);
    };
    let mut out = Vec::with_capacity(value.len());
    out.extend_from_slice(&value[..first]);
    let mut i = first;
    while i < value.len() {
        let b = value[i];
        if b != b'\\' || i + 1 == value.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let decoded = match value[i + 1] {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            c @ (b'\\' | b'\'' | b'"' | b'?') => Some(c),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                i += 2;
            }
            None => {
                out.push(b'\\');
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> Message {
        parse_message(Bytes::copy_from_slice(s)).expect("parses")
    }

    fn pairs(m: &Message) -> Vec<(Vec<u8>, Vec<u8>)> {
        m.headers().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
    }

    #[test]
    fn line_end_accepts_crlf_and_lf_only() {
        assert_eq!(line_end(b"\r\nX"), Ok((&b"X"[..], &b"\r\n"[..])));
        assert_eq!(line_end(b"\nX"), Ok((&b"X"[..], &b"\n"[..])));
        assert!(line_end(b"X\n").is_err());
    }

    #[test]
    fn field_splits_at_first_colon_and_keeps_later_ones() {
        assert_eq!(
            field(b"AppData: a=b: c; d"),
            Ok((&b""[..], (&b"AppData"[..], &b"a=b: c; d"[..])))
        );
        assert_eq!(field(b"Key:"), Ok((&b""[..], (&b"Key"[..], &b""[..]))));
        assert_eq!(field(b"Key:v"), Ok((&b""[..], (&b"Key"[..], &b"v"[..]))));
        assert_eq!(field(b"Key:  v"), Ok((&b""[..], (&b"Key"[..], &b" v"[..]))));
        assert!(field(b"--END COMMAND--").is_err());
    }

    #[test]
    fn message_keeps_order_repeats_empty_values_and_odd_keys() {
        let m = parse(
            b"Event: Newchannel\r\nAccountCode: \r\nChanVariable: A=1\r\n\
              ChanVariable(PJSIP/x-0001;1): B=2\r\nX-Odd key@a.b/c: v\r\n\r\n",
        );
        assert_eq!(m.len(), 5);
        assert_eq!(m.get("accountcode"), Some(&b""[..]));
        assert_eq!(
            m.get_all("ChanVariable").collect::<Vec<_>>(),
            vec![&b"A=1"[..]]
        );
        assert_eq!(m.get("ChanVariable(PJSIP/x-0001;1)"), Some(&b"B=2"[..]));
        assert_eq!(m.get("X-Odd key@a.b/c"), Some(&b"v"[..]));
    }

    #[test]
    fn bare_lf_and_mixed_line_ends() {
        let m = parse(b"Event: A\nUniqueid: 1.2\r\nLinkedid: 1.2\n\n");
        assert_eq!(
            pairs(&m),
            vec![
                (b"Event".to_vec(), b"A".to_vec()),
                (b"Uniqueid".to_vec(), b"1.2".to_vec()),
                (b"Linkedid".to_vec(), b"1.2".to_vec()),
            ]
        );
    }

    #[test]
    fn raw_line_gets_empty_key() {
        let m = parse(b"Event: X\r\njust text\r\n\r\n");
        assert_eq!(
            pairs(&m),
            vec![
                (b"Event".to_vec(), b"X".to_vec()),
                (vec![], b"just text".to_vec())
            ]
        );
    }

    #[test]
    fn output_lines_stay_repeated_fields() {
        let m = parse(
            b"Response: Success\r\nActionID: c1\r\nMessage: Command output follows\r\n\
              Output: System uptime: 27 seconds\r\nOutput: Last reload: 3 seconds\r\n\r\n",
        );
        assert_eq!(
            m.get_all("Output").collect::<Vec<_>>(),
            vec![
                &b"System uptime: 27 seconds"[..],
                &b"Last reload: 3 seconds"[..]
            ]
        );
    }

    #[test]
    fn follows_reply_keeps_raw_output_and_drops_terminator() {
        let m = parse(
            b"Response: Follows\r\nPrivilege: Command\r\nActionID: c9\r\n\
              Channel              Location\nSIP/1-0001: Up\n\nx channels\n--END COMMAND--\r\n\r\n",
        );
        assert_eq!(m.response(), Some(&b"Follows"[..]));
        assert_eq!(m.get("ActionID"), Some(&b"c9"[..]));
        let raw: Vec<_> = m
            .headers()
            .filter(|(k, _)| k.is_empty())
            .map(|(_, v)| v)
            .collect();
        assert_eq!(
            raw,
            vec![
                &b"Channel              Location"[..],
                &b"SIP/1-0001: Up"[..],
                &b""[..],
                &b"x channels"[..],
            ]
        );
        // The glued form, output without a final newline.
        let m =
            parse(b"Response: Follows\r\nPrivilege: Command\r\nlast line--END COMMAND--\r\n\r\n");
        assert_eq!(m.headers().last(), Some((&b""[..], &b"last line"[..])));
    }

    #[test]
    fn invalid_utf8_and_utf8_never_panic() {
        let m = parse(
            b"CallerIDName: \xcf\xe5\xf2\xf0\r\nName: \xd0\x9f\xd0\xb5\r\n\xff\xfe: \xff\r\n\r\n",
        );
        assert_eq!(m.get("CallerIDName"), Some(&b"\xcf\xe5\xf2\xf0"[..]));
        assert_eq!(m.get_str("Name").as_deref(), Some("Пе"));
        assert_eq!(m.headers().nth(2), Some((&b"\xff\xfe"[..], &b"\xff"[..])));
        assert!(m.to_string().contains('\u{fffd}'));
    }

    #[test]
    fn last_line_without_line_end_is_kept() {
        let m = parse(b"Event: A\r\nB: c");
        assert_eq!(m.get("B"), Some(&b"c"[..]));
        let m = parse(b"Event: A\r\nB: c\r");
        assert_eq!(m.get("B"), Some(&b"c"[..]));
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            parse_message(Bytes::from_static(b"\r\n\r\n")),
            Err(ParseError::Empty { len: 4 })
        );
        let err = parse_message(Bytes::from_static(b"A: 1\r\n\r\nB: 2\r\n")).unwrap_err();
        assert_eq!(
            err,
            ParseError::TrailingData {
                offset: 8,
                preview: "B: 2\r\n".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "AMI frame has data after its terminating blank line, at byte 8: \"B: 2\\r\\n\""
        );
    }

    #[test]
    fn values_are_slices_of_the_frame() {
        let frame = Bytes::from_static(b"Event: A\r\nUniqueid: lab1-1.2\r\n\r\n");
        let m = parse_message(frame.clone()).expect("parses");
        let v = m.get_bytes("Uniqueid").expect("present");
        assert_eq!(v.as_ptr(), frame[20..].as_ptr());
    }

    /// Frames made of protocol-shaped pieces and arbitrary bytes.
    fn frame_bytes() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        prop::collection::vec(
            prop_oneof![
                3 => prop::sample::select(vec![
                    &b"\r\n"[..], b"\n", b"\r", b":", b": ", b" ", b"Event", b"Response: Follows\r\n",
                    b"Privilege: Command\r\n", b"--END COMMAND--", b"\r\n\r\n", b"\xff",
                ])
                .prop_map(|s| s.to_vec()),
                2 => prop::collection::vec(any::<u8>(), 0..90),
            ],
            0..24,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]

        /// The fast lexer path and the nom grammar agree on every input, errors included.
        #[test]
        fn fast_path_equals_nom_grammar(frame in frame_bytes()) {
            let (mut fast, mut nom) = (Vec::new(), Vec::new());
            let a = message_spans(&frame, &mut fast);
            let b = message_spans_nom(&frame, &mut nom);
            proptest::prop_assert_eq!(&a, &b);
            if a.is_ok() {
                proptest::prop_assert_eq!(fast, nom);
            }
        }
    }

    #[test]
    fn structural_scan_finds_every_colon_and_lf() {
        let mut hay = Vec::new();
        for i in 0..300u32 {
            hay.push(match i % 7 {
                0 => b':',
                3 => b'\n',
                _ => (i % 251) as u8 | 0x80,
            });
        }
        let expected: Vec<usize> = hay
            .iter()
            .enumerate()
            .filter(|(_, b)| matches!(b, b':' | b'\n'))
            .map(|(i, _)| i)
            .collect();
        for len in [0, 1, 63, 64, 65, 128, 300] {
            let mut got = Vec::new();
            scan::structural(&hay[..len], |p, _| {
                got.push(p);
                true
            });
            let want: Vec<usize> = expected.iter().copied().filter(|&p| p < len).collect();
            assert_eq!(got, want, "len {len}");
        }
    }

    #[test]
    fn unescape_undoes_ast_escape_c() {
        assert_eq!(
            unescape(br#"O\'Brien \"Bob\" \\\\ back"#).as_ref(),
            br#"O'Brien "Bob" \\ back"#
        );
        assert_eq!(unescape(b"a\\nb\\tc\\?").as_ref(), b"a\nb\tc?");
        assert!(matches!(unescape(b"plain"), Cow::Borrowed(_)));
        assert_eq!(unescape(b"end\\").as_ref(), b"end\\");
        assert_eq!(unescape(b"\\x41").as_ref(), b"\\x41");
        assert_eq!(unescape(b"\xff\\'").as_ref(), b"\xff'");
    }
}
