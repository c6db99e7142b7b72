//! Property tests of the codec: encode/decode round trips of random messages, and arbitrary
//! bytes in arbitrary splits (never a panic, never an error, the same result however split).

mod support;

use bytes::BytesMut;
use missedcalld::ami::Message;
use missedcalld::ami::codec::{AmiCodec, Frame, write_message};
use proptest::prelude::*;
use support::codec::decode_chunked;

/// Key bytes: anything but a colon or a line end (non-UTF-8 included), possibly empty.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::sample::select(vec![
            b"Event".to_vec(),
            b"ChanVariable".to_vec(),
            b"ChanVariable(PJSIP/x-1;2)".to_vec(),
            b"Uniqueid".to_vec(),
            b"X-Key @a.b/c".to_vec(),
            Vec::new(),
        ]),
        2 => prop::collection::vec(any::<u8>().prop_filter("no : CR LF", |b| !matches!(b, b':' | b'\r' | b'\n')), 0..12),
    ]
}

/// Value bytes: anything but CR/LF (colons, `": "`, non-UTF-8 and empty values included).
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => Just(Vec::new()),
        1 => Just(b"a=b: c; d".to_vec()),
        4 => prop::collection::vec(any::<u8>().prop_filter("no CR LF", |b| !matches!(b, b'\r' | b'\n')), 0..40),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop::collection::vec((key(), value()), 1..12)
        .prop_filter("not a Follows reply", |pairs| {
            !(pairs[0].0.eq_ignore_ascii_case(b"Response")
                && pairs[0].1.eq_ignore_ascii_case(b"Follows"))
        })
        .prop_map(|pairs| Message::from_pairs(&pairs))
}

/// Arbitrary bytes biased towards the protocol's delimiters.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(b"\r\n: \r\n\n".to_vec()),
            1 => prop::sample::select(vec![b'A', b'x', b'-', 0xff, 0xd0]),
            1 => any::<u8>(),
        ],
        0..600,
    )
    .prop_flat_map(|bytes| {
        // Sometimes glue in protocol fragments that switch the decoder's modes.
        prop::sample::select(vec![
            &b""[..],
            b"Asterisk Call Manager/11.0.0\r\n",
            b"Response: Follows\r\n",
            b"--END COMMAND--\r\n\r\n",
            b"Event: X\r\n",
        ])
        .prop_map(move |frag| {
            let mut v = frag.to_vec();
            v.append(&mut bytes.clone());
            v
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_messages_round_trip(
        msgs in prop::collection::vec(message(), 1..8),
        sizes in prop::collection::vec(1usize..50, 1..8),
    ) {
        let mut wire = BytesMut::new();
        for m in &msgs {
            write_message(m, &mut wire);
        }
        let frames = decode_chunked(AmiCodec::new(), &wire, &sizes);
        let got: Vec<Message> = frames
            .into_iter()
            .map(|f| match f {
                Frame::Message(m) => m,
                Frame::Banner(b) => panic!("unexpected banner {b:?}"),
            })
            .collect();
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_split_invariant(
        data in noise(),
        sizes in prop::collection::vec(1usize..64, 1..8),
        max in prop::sample::select(vec![16usize, 40, 64 * 1024]),
    ) {
        let whole = decode_chunked(AmiCodec::with_max_message_bytes(max), &data, &[data.len().max(1)]);
        let split = decode_chunked(AmiCodec::with_max_message_bytes(max), &data, &sizes);
        prop_assert_eq!(&split, &whole);
        for f in &whole {
            if let Frame::Message(m) = f {
                prop_assert!(m.frame().len() <= max, "a frame above the cap got through");
                prop_assert!(!m.is_empty());
            }
        }
    }
}
