//! Every real capture decodes to the same messages however the bytes are split, and the edge
//! captures parse to the values visible in the files.

mod support;

use std::path::{Path, PathBuf};

use missedcalld::ami::codec::{AmiCodec, Frame};
use missedcalld::ami::{Message, unescape};
use proptest::prelude::*;

fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ami-fixtures")
}

fn captures() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("fixture dir readable")
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("ami" | "raw")) {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&fixture_root(), &mut out);
    assert!(
        out.len() >= 20,
        "expected the bundled captures, found {out:?}"
    );
    out
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Feeds `data` to a default codec in the given chunk sizes (cycled), then signals EOF.
fn decode_chunked(data: &[u8], sizes: &[usize]) -> Vec<Frame> {
    support::codec::decode_chunked(AmiCodec::new(), data, sizes)
}

fn decode_whole(data: &[u8]) -> Vec<Frame> {
    decode_chunked(data, &[data.len().max(1)])
}

fn messages(frames: &[Frame]) -> Vec<&Message> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Message(m) => Some(m),
            Frame::Banner(_) => None,
        })
        .collect()
}

fn event_lines(data: &[u8]) -> usize {
    data.split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"Event:"))
        .count()
}

#[test]
fn every_capture_decodes_whole_with_one_message_per_event_line() {
    for path in captures() {
        let data = read(&path);
        let frames = decode_whole(&data);
        let msgs = messages(&frames);
        let events = msgs.iter().filter(|m| m.event_name().is_some()).count();
        assert_eq!(events, event_lines(&data), "{}", path.display());
        assert!(events > 0, "{}", path.display());
        // Nothing but messages and at most one leading banner.
        let banners = frames.len() - msgs.len();
        assert!(banners <= 1, "{}", path.display());
        if data.starts_with(b"Asterisk Call Manager/") {
            assert!(
                matches!(&frames[0], Frame::Banner(b) if b.starts_with(b"Asterisk Call Manager/"))
            );
        }
        // Every message keeps all of its lines: header count = non-blank lines of the file.
        let lines = data
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty() && *l != b"\r")
            .count();
        let headers: usize = msgs.iter().map(|m| m.len()).sum();
        assert_eq!(headers + banners, lines, "{}", path.display());
    }
}

#[test]
fn every_capture_decodes_identically_in_one_byte_chunks() {
    for path in captures() {
        let data = read(&path);
        assert_eq!(
            decode_chunked(&data, &[1]),
            decode_whole(&data),
            "{}",
            path.display()
        );
    }
}

fn edge() -> Vec<Message> {
    let data = read(&fixture_root().join("edge/edge.raw"));
    messages(&decode_whole(&data))
        .into_iter()
        .cloned()
        .collect()
}

fn find<'a>(msgs: &'a [Message], key: &str, value: &str) -> &'a Message {
    msgs.iter()
        .find(|m| m.get(key) == Some(value.as_bytes()))
        .unwrap_or_else(|| panic!("no message with {key}: {value}"))
}

#[test]
fn edge_escaped_names_and_values_with_colons() {
    let msgs = edge();
    let user = find(&msgs, "UserEvent", "MyEvt");
    let raw = user.get("CallerIDName").expect("name");
    assert_eq!(raw, br#"O\'Brien \"Bob\" \\\\ back"#);
    assert_eq!(unescape(raw).as_ref(), br#"O'Brien "Bob" \\ back"#);
    assert_eq!(user.get("Key1"), Some(&b"v1: with colon"[..]));
    assert_eq!(user.get("Empty"), Some(&b""[..]));
    assert_eq!(
        user.get_all("ChanVariable").collect::<Vec<_>>(),
        vec![&b"FOO=a=b: c; d"[..], &b"ABANDONED="[..]]
    );
    let varset = find(&msgs, "Value", "a=b: c; d");
    assert_eq!(varset.event_name(), Some(&b"VarSet"[..]));
}

#[test]
fn edge_both_chanvariable_syntaxes() {
    let msgs = edge();
    let with_channel = msgs
        .iter()
        .find(|m| m.get("ChanVariable(Local/s@edge-00000000;1)").is_some())
        .expect("a message with the channel-qualified syntax");
    assert_eq!(
        with_channel
            .get_all("ChanVariable(Local/s@edge-00000000;1)")
            .collect::<Vec<_>>(),
        vec![&b"FOO="[..], &b"ABANDONED="[..]]
    );
    let plain = find(&msgs, "Event", "Newchannel");
    assert_eq!(
        plain.get_all("ChanVariable").collect::<Vec<_>>(),
        vec![&b"FOO="[..], &b"ABANDONED="[..]]
    );
}

#[test]
fn edge_replies_output_errors_and_lists() {
    let msgs = edge();
    let out = find(&msgs, "ActionID", "c1");
    assert_eq!(out.get("Message"), Some(&b"Command output follows"[..]));
    assert_eq!(
        out.get_all("Output").collect::<Vec<_>>(),
        vec![
            &b"System uptime: 27 seconds"[..],
            &b"Last reload: 3 seconds"[..]
        ]
    );
    let too_long = find(&msgs, "Message", "Failed to parse message: line too long");
    assert_eq!(too_long.response(), Some(&b"Error"[..]));
    assert_eq!(too_long.get("ActionID"), None);
    let unknown = find(&msgs, "ActionID", "bad");
    assert_eq!(unknown.response(), Some(&b"Error"[..]));
    assert!(
        unknown
            .get_str("Message")
            .is_some_and(|m| m.starts_with("Invalid/unknown command: NoSuchAction."))
    );
    let list: Vec<_> = msgs
        .iter()
        .filter(|m| m.get("ActionID") == Some(b"qs"))
        .collect();
    assert_eq!(list.len(), 5, "start, QueueParams, 2 QueueMember, Complete");
    assert_eq!(list[0].get("EventList"), Some(&b"start"[..]));
    assert_eq!(list[2].get("Name"), Some(&b"Local/103@agents/n"[..]));
    assert_eq!(list[4].get("EventList"), Some(&b"Complete"[..]));
    assert_eq!(list[4].get("ListItems"), Some(&b"3"[..]));
    let csc = find(&msgs, "Event", "CoreShowChannelsComplete");
    assert_eq!(csc.get("ListItems"), Some(&b"0"[..]));
}

#[test]
fn edge_system_name_uniqueids_and_utf8_names() {
    let data = read(&fixture_root().join("edge/A_answered.raw"));
    let frames = decode_whole(&data);
    let msgs = messages(&frames);
    let ids: Vec<_> = msgs.iter().filter_map(|m| m.get_str("Uniqueid")).collect();
    assert!(!ids.is_empty());
    assert!(ids.iter().all(|id| id.starts_with("lab1-")), "{ids:?}");
    let named = msgs
        .iter()
        .find(|m| m.get_str("CallerIDName").as_deref() == Some("Иван Петров"))
        .expect("the Cyrillic caller name");
    assert_eq!(named.get("CallerIDNum"), Some(&b"+79991234567"[..]));
    let login = messages(&decode_whole(&read(&fixture_root().join("edge/login.raw"))))
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(
        login[0].get("Message"),
        Some(&b"Authentication accepted"[..])
    );
    assert_eq!(login[1].event_name(), Some(&b"FullyBooted"[..]));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_splits_give_identical_messages(
        file in any::<prop::sample::Index>(),
        sizes in prop::collection::vec(1usize..600, 1..40),
    ) {
        let all = captures();
        let path = &all[file.index(all.len())];
        let data = read(path);
        prop_assert_eq!(decode_chunked(&data, &sizes), decode_whole(&data), "{}", path.display());
    }
}
