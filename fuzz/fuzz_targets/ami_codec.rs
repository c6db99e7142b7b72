//! Arbitrary bytes through the AMI codec and parser: never a panic, never a decoder error,
//! the same frames however the bytes are split, and every message within the size cap.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use missedcalld::ami::codec::{AmiCodec, Frame};
use missedcalld::ami::parser::{message_spans, message_spans_nom};
use tokio_util::codec::Decoder;

fn decode(data: &[u8], max: usize, chunk: usize) -> Vec<Frame> {
    let mut codec = AmiCodec::with_max_message_bytes(max);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        while let Some(f) = codec.decode(&mut buf).expect("decode never errors") {
            out.push(f);
        }
    }
    while let Some(f) = codec.decode_eof(&mut buf).expect("decode_eof never errors") {
        out.push(f);
    }
    assert!(buf.is_empty());
    out
}

fuzz_target!(|input: &[u8]| {
    // First byte picks the cap and the read size, the rest is the stream.
    let Some((&knob, data)) = input.split_first() else {
        return;
    };
    let max = [24, 100, 64 * 1024][usize::from(knob % 3)];
    let chunk = usize::from(knob / 3) + 1;
    let whole = decode(data, max, data.len().max(1));
    let split = decode(data, max, chunk);
    assert_eq!(whole, split);
    for f in &whole {
        if let Frame::Message(m) = f {
            assert!(m.frame().len() <= max);
            let _ = m.to_string();
        }
    }
    // The parser's fast path and its nom grammar agree on any frame.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let ra = message_spans(data, &mut a);
    let rb = message_spans_nom(data, &mut b);
    assert_eq!(ra, rb);
    if ra.is_ok() {
        assert_eq!(a, b);
    }
});
