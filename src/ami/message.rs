//! One parsed AMI message: the frame's bytes plus the position of every header in it.
//!
//! Invariants: headers keep wire order (repeated keys such as `ChanVariable` are all kept);
//! key lookup ignores ASCII case; values are raw bytes (not guaranteed UTF-8) and are only
//! decoded, lossily, when a caller asks for text. Keeping spans instead of owned strings means
//! parsing allocates one `Vec` per message, never one per header.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use bytes::Bytes;

/// Byte offsets of one `Key: Value` header inside the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderSpan {
    /// Start and end of the key.
    pub key: (u32, u32),
    /// Start and end of the value (after the `": "` separator, without the line ending).
    pub value: (u32, u32),
}

impl HeaderSpan {
    /// Builds a span from two byte ranges of the frame.
    pub fn new(key: Range<usize>, value: Range<usize>) -> Self {
        HeaderSpan {
            key: (key.start as u32, key.end as u32),
            value: (value.start as u32, value.end as u32),
        }
    }
}

/// An AMI message (event, response or list item).
#[derive(Clone)]
pub struct Message {
    frame: Bytes,
    headers: Vec<HeaderSpan>,
}

impl Message {
    /// Wraps a frame and the header spans a parser found in it.
    pub fn from_spans(frame: Bytes, headers: Vec<HeaderSpan>) -> Self {
        Message { frame, headers }
    }

    /// Builds a message from key/value pairs (actions we send, tests, the demo server).
    pub fn from_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Self {
        let mut buf = Vec::new();
        let mut headers = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let ks = buf.len();
            buf.extend_from_slice(k.as_ref());
            let ke = buf.len();
            buf.extend_from_slice(b": ");
            let vs = buf.len();
            buf.extend_from_slice(v.as_ref());
            let ve = buf.len();
            buf.extend_from_slice(b"\r\n");
            headers.push(HeaderSpan::new(ks..ke, vs..ve));
        }
        buf.extend_from_slice(b"\r\n");
        Message {
            frame: Bytes::from(buf),
            headers,
        }
    }

    /// The header spans' storage, for [`crate::ami::AmiCodec::recycle`] (the frame is
    /// released).
    pub fn into_span_storage(self) -> Vec<HeaderSpan> {
        self.headers
    }

    /// The raw frame as received (including line endings).
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// True when the message has no header at all.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    fn slice(&self, (s, e): (u32, u32)) -> &[u8] {
        &self.frame[s as usize..e as usize]
    }

    /// Every header in wire order as (key, value) byte slices.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.headers
            .iter()
            .map(|h| (self.slice(h.key), self.slice(h.value)))
    }

    /// The first value of `key` (ASCII case-insensitive).
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        let key = key.as_bytes();
        self.headers
            .iter()
            .find(|h| same_key(self.slice(h.key), key))
            .map(|h| self.slice(h.value))
    }

    /// The first value of `key` decoded lossily as UTF-8.
    pub fn get_str(&self, key: &str) -> Option<Cow<'_, str>> {
        self.get(key).map(String::from_utf8_lossy)
    }

    /// The first value of `key` as a zero-copy `Bytes` slice of the frame.
    pub fn get_bytes(&self, key: &str) -> Option<Bytes> {
        let key_b = key.as_bytes();
        self.headers
            .iter()
            .find(|h| same_key(self.slice(h.key), key_b))
            .map(|h| self.frame.slice(h.value.0 as usize..h.value.1 as usize))
    }

    /// All values of `key`, in wire order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |h| same_key(self.slice(h.key), key.as_bytes()))
            .map(|h| self.slice(h.value))
    }

    /// The `Event` header, if this is an event.
    pub fn event_name(&self) -> Option<&[u8]> {
        self.get("Event")
    }

    /// The `Response` header, if this is a reply to an action.
    pub fn response(&self) -> Option<&[u8]> {
        self.get("Response")
    }
}

/// Header keys compare ignoring ASCII case; Asterisk spells them one way, so the exact
/// comparison settles nearly every lookup before the case-folding one runs.
#[inline]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && (a == b || a.eq_ignore_ascii_case(b))
}

impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        self.headers().eq(other.headers())
    }
}

impl Eq for Message {}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (k, v) in self.headers() {
            list.entry(&(String::from_utf8_lossy(k), String::from_utf8_lossy(v)));
        }
        list.finish()
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in self.headers() {
            writeln!(
                f,
                "{}: {}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive_and_keeps_repeats_in_order() {
        let m = Message::from_pairs(&[
            ("Event", "Newchannel"),
            ("ChanVariable", "A=1"),
            ("chanvariable", "B=2"),
            ("AppData", "x: y"),
        ]);
        assert_eq!(m.get("EVENT"), Some(&b"Newchannel"[..]));
        let all: Vec<_> = m.get_all("ChanVariable").collect();
        assert_eq!(all, vec![&b"A=1"[..], &b"B=2"[..]]);
        assert_eq!(m.get_str("appdata").as_deref(), Some("x: y"));
        assert_eq!(m.get("Missing"), None);
    }
}
