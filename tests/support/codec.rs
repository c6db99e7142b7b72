//! Decoding helpers for the codec tests.

use bytes::BytesMut;
use missedcalld::ami::codec::{AmiCodec, Frame};
use tokio_util::codec::Decoder;

/// Feeds `data` to `codec` in the given chunk sizes (cycled), then signals EOF; the decoder
/// must never error and `decode_eof` must drain the buffer.
pub fn decode_chunked(mut codec: AmiCodec, data: &[u8], sizes: &[usize]) -> Vec<Frame> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let (mut pos, mut i) = (0, 0);
    while pos < data.len() {
        let n = sizes[i % sizes.len()].max(1).min(data.len() - pos);
        i += 1;
        buf.extend_from_slice(&data[pos..pos + n]);
        pos += n;
        while let Some(f) = codec.decode(&mut buf).expect("decode never errors") {
            out.push(f);
        }
    }
    while let Some(f) = codec.decode_eof(&mut buf).expect("decode_eof never errors") {
        out.push(f);
    }
    assert!(buf.is_empty(), "decode_eof must drain the buffer");
    out
}
