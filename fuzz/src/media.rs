//! Payload inspection as the relay does it on every teacher packet: VP8 payload
//! descriptors (RFC 7741 §4.2), H.264 NAL unit headers (RFC 6184 §5) and RED
//! (RFC 2198), checked against the parsers the rest of the path uses.

use std::time::{Duration, Instant};

use relay_core::red::{self, Block};
use relay_core::{inspect, Codec, Rewriter, SourcePacket};
use str0m::rtp::{RedDecoder, Vp8Descriptor};

use crate::Reader;

/// VP8: the core's descriptor parsing must agree with str0m's, which the edge
/// uses to write the rewritten PictureID/TL0PICIDX back into the payload; and a
/// rewritten PictureID must fit the descriptor it goes into.
///
/// Input: one RTP payload; its last 8 bytes also seed the rewriter's history.
pub fn vp8(data: &[u8]) {
    let info = inspect(Codec::Vp8, data);
    if info.keyframe_start {
        // RFC 7741 §4.3: only the start of partition 0 carries the P bit.
        assert!(
            data[0] & 0x10 != 0 && data[0] & 0x07 == 0,
            "keyframe without S=1, PID=0"
        );
    }
    if let Some((id, wide)) = info.vp8.and_then(|v| v.picture_id) {
        assert!(
            id < if wide { 0x8000 } else { 0x80 },
            "PictureID {id} wider than its field"
        );
    }
    let parsed = Vp8Descriptor::parse(data);
    match (&parsed, info.vp8) {
        (Ok(d), Some(v)) => {
            assert_eq!(
                v.picture_id.map(|p| p.0),
                d.picture_id(),
                "PictureID differs from str0m's"
            );
            assert_eq!(
                v.tl0_pic_idx,
                d.tl0_pic_idx(),
                "TL0PICIDX differs from str0m's"
            );
        }
        (Ok(d), None) => panic!("str0m parses a descriptor the core does not: {d:?}"),
        (Err(e), Some(v)) => assert!(
            v.picture_id.is_none() && v.tl0_pic_idx.is_none(),
            "the core takes numbering {v:?} from a descriptor the edge cannot patch ({e})"
        ),
        (Err(_), None) => {}
    }
    let (Ok(d), Some(v)) = (parsed, info.vp8) else {
        return;
    };
    // Rewrite as a layer switch does: a first source with numbering from the input's
    // tail, then this packet's source; the edge then patches the result in.
    let mut tail = Reader::new(&data[data.len().saturating_sub(8)..]);
    let t0 = Instant::now();
    let mut r = Rewriter::new(90_000, u64::from(tail.u16()) + 1);
    let first = SourcePacket {
        seq: u64::from(tail.u16()),
        ts: tail.u32(),
        vp8: Some(relay_core::Vp8Info {
            picture_id: Some((tail.u16() & 0x7fff, true)),
            tl0_pic_idx: Some(tail.u8()),
        }),
    };
    r.switch_to(t0, &first);
    let p = SourcePacket {
        seq: 70_000,
        ts: 1234,
        vp8: Some(v),
    };
    for out in [
        r.switch_to(t0 + Duration::from_millis(40), &p),
        r.rewrite(t0 + Duration::from_millis(41), &p)
            .expect("same source"),
    ] {
        assert_eq!(out.vp8_picture_id.is_some(), v.picture_id.is_some());
        assert_eq!(out.vp8_tl0_pic_idx.is_some(), v.tl0_pic_idx.is_some());
        let mut b = d.patch();
        if let Some(id) = out.vp8_picture_id {
            b = b.picture_id(id);
        }
        if let Some(t) = out.vp8_tl0_pic_idx {
            b = b.tl0_pic_idx(t);
        }
        if let Err(e) = b.build() {
            panic!("the edge cannot patch the rewritten numbering {out:?} into {d:?}: {e}");
        }
    }
}

/// H.264: keyframe detection agrees with a strict reading of RFC 6184: a single
/// NAL unit, a STAP-A whose units are all read inside the payload with sizes of at
/// least one byte, or the start fragment of an FU-A.
pub fn h264(data: &[u8]) {
    let got = inspect(Codec::H264, data).keyframe_start;
    let want = h264_reference(data);
    assert_eq!(
        got, want,
        "keyframe detection differs from RFC 6184 on {data:02x?}"
    );
    assert!(inspect(Codec::H264, data).vp8.is_none());
}

/// A NAL unit that lets a decoder start: an IDR slice or a sequence parameter set.
fn starts_decoding(nal_header: u8) -> bool {
    matches!(nal_header & 0x1f, 5 | 7)
}

fn h264_reference(p: &[u8]) -> bool {
    let Some(&h) = p.first() else { return false };
    match h & 0x1f {
        // STAP-A (§5.7.1): NAL unit size (16 bits) then the unit, repeated.
        24 => {
            let mut rest = &p[1..];
            while rest.len() >= 2 {
                let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                if size == 0 {
                    return false;
                }
                let Some(&nal) = rest.get(2) else {
                    return false;
                };
                if starts_decoding(nal) {
                    return true;
                }
                rest = rest.get(2 + size..).unwrap_or(&[]);
            }
            false
        }
        // FU-A (§5.8): S bit and the fragmented unit's type.
        28 => p.get(1).is_some_and(|&fu| fu & 0x80 != 0 && fu & 0x1f == 5),
        _ => starts_decoding(h),
    }
}

/// RED: what the relay parses agrees with str0m's decoder (a str0m classroom's;
/// libwebrtc reads the format the same way), and `wrap` then `parse` gives back the
/// frames it was given.
///
/// Input: a RED payload to parse; the same bytes also give `wrap` its arguments
/// (payload type, timestamps, the split between previous and primary frame).
pub fn red(data: &[u8]) {
    let ours = red::parse(data);
    if let Some(blocks) = &ours {
        let primary = blocks.last().expect("a RED payload has a primary block");
        assert_eq!(primary.ts_offset, 0);
        let carried: usize = blocks.iter().map(|b| b.data.len()).sum();
        assert_eq!(
            carried + 4 * (blocks.len() - 1) + 1,
            data.len(),
            "bytes lost or invented"
        );
    }
    match (&ours, RedDecoder::decode(data)) {
        (Some(a), Ok(b)) => {
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(
                    (x.pt, x.ts_offset, x.data),
                    (y.pt, y.timestamp_offset, y.payload)
                );
            }
        }
        (None, Ok(b)) => panic!("str0m decodes {} RED blocks the relay refuses", b.len()),
        // str0m refuses more than 32 redundant blocks (a bound on hostile input).
        (Some(a), Err(_)) => assert!(a.len() > 33, "the relay accepts RED str0m refuses"),
        (None, Err(_)) => {}
    }

    let mut r = Reader::new(data);
    let pt = r.u8();
    let ts = r.u32();
    let lag = u32::from(r.u16());
    let split = usize::from(r.u16());
    let rest = r.rest();
    let (prev, primary) = rest.split_at(split.min(rest.len()));
    let prev_ts = ts.wrapping_sub(lag);
    let w = red::wrap(pt, ts, primary, &[(prev_ts, prev)]);
    let blocks = red::parse(&w).expect("the relay parses its own RED");
    let kept = lag > 0 && lag <= red::MAX_OFFSET && !prev.is_empty() && prev.len() <= 1023;
    let mut want = vec![];
    if kept {
        want.push(Block {
            pt: pt & 0x7f,
            ts_offset: lag,
            data: prev,
        });
    }
    want.push(Block {
        pt: pt & 0x7f,
        ts_offset: 0,
        data: primary,
    });
    assert_eq!(blocks, want, "wrap then parse changed the frames");
    let theirs = RedDecoder::decode(&w).expect("str0m decodes the relay's RED");
    assert_eq!(theirs.len(), want.len());
    assert_eq!(theirs.last().map(|b| b.payload), Some(primary));
    // Without a previous frame it is plain one-block RED.
    let alone = red::wrap(pt, ts, primary, &[]);
    assert_eq!(alone.len(), primary.len() + 1);
    assert_eq!(red::parse(&alone).map(|b| b.len()), Some(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_h264_reads_the_usual_forms() {
        assert!(h264_reference(&[0x65, 0x88]));
        assert!(h264_reference(&[0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce]));
        assert!(h264_reference(&[0x7c, 0x85, 1]));
        assert!(!h264_reference(&[0x7c, 0x05, 1]));
        assert!(!h264_reference(&[0x41, 0x9a]));
        // A zero-sized unit ends a STAP-A: the next size's byte is not a NAL header.
        assert!(!h264_reference(&[0x78, 0, 0, 0x05, 0, 0x41]));
    }
}
