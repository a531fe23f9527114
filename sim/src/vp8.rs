//! The VP8 payloads the simulator's teacher sends and its classrooms read: the
//! payload descriptor (RFC 7741 §4.2) with PictureID and temporal-layer fields, a
//! keyframe marker decoders and Janus accept, and a send-time stamp in the filler.

use std::time::{Duration, Instant};

/// Temporal layer of each frame after a keyframe, in turn.
pub(crate) const TL_PATTERN: [u8; 4] = [0, 2, 1, 2];
/// A frame's size by temporal layer, in quarters of the mean.
pub(crate) const TL_SHARE: [usize; 3] = [6, 4, 3];

/// A VP8 payload: descriptor with a 15-bit PictureID, the keyframe bit in the first
/// partition, and the layer index as the last byte.
pub fn vp8_payload(picture_id: u16, first: bool, key: bool, size: usize, layer: u8) -> Vec<u8> {
    vp8_payload_tl(picture_id, None, first, key, size, layer)
}

/// The same, with temporal-layer fields `(TL0PICIDX, TID)` when given.
pub fn vp8_payload_tl(
    picture_id: u16,
    temporal: Option<(u8, u8)>,
    first: bool,
    key: bool,
    size: usize,
    layer: u8,
) -> Vec<u8> {
    let mut p = vec![
        if first { 0x90 } else { 0x80 },
        if temporal.is_some() { 0xe0 } else { 0x80 },
        0x80 | (picture_id >> 8) as u8,
        picture_id as u8,
    ];
    if let Some((tl0, tid)) = temporal {
        p.extend_from_slice(&[tl0, tid << 6]);
    }
    if first {
        if key {
            // Frame tag, then the start code and a 1280×720 size, as a decoder (and
            // Janus's keyframe check) expects of a keyframe.
            p.extend_from_slice(&[0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02]);
        } else {
            p.push(0x01);
        }
    }
    p.resize(size.max(8) - 1, 0x55);
    p.push(layer);
    p
}

/// What a receiver reads from a VP8 payload descriptor (RFC 7741 §4.2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vp8Descriptor {
    /// Start of a frame (S bit, partition 0).
    pub first: bool,
    /// The first packet of a keyframe.
    pub key: bool,
    pub pid: u16,
    /// (TL0PICIDX, TID), when present.
    pub temporal: Option<(u8, u8)>,
}

pub fn vp8_descriptor(b: &[u8]) -> Option<Vp8Descriptor> {
    let b0 = *b.first()?;
    let first = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    let (mut at, mut pid, mut tl0, mut tid) = (1, 0, None, 0);
    if b0 & 0x80 != 0 {
        let x = *b.get(1)?;
        at = 2;
        if x & 0x80 != 0 {
            let m = *b.get(at)?;
            if m & 0x80 != 0 {
                pid = u16::from_be_bytes([m & 0x7f, *b.get(at + 1)?]);
                at += 2;
            } else {
                pid = u16::from(m);
                at += 1;
            }
        }
        if x & 0x40 != 0 {
            tl0 = Some(*b.get(at)?);
            at += 1;
        }
        if x & 0x30 != 0 {
            tid = *b.get(at)? >> 6;
            at += 1;
        }
    }
    let key = first && *b.get(at)? & 0x01 == 0;
    Some(Vp8Descriptor {
        first,
        key,
        pid,
        temporal: tl0.map(|t| (t, tid)),
    })
}

/// The instant send stamps count from (set by the first peer made).
pub(crate) fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Write the send time into a teacher payload's filler (the 8 bytes before the
/// layer byte), so a receiver can tell how long the packet took; the relay
/// forwards payloads untouched past the VP8 descriptor.
pub fn stamp(payload: &mut [u8], sent: Instant) {
    let n = payload.len();
    if n >= 16 {
        let us = sent.saturating_duration_since(epoch()).as_micros() as u64;
        payload[n - 9..n - 1].copy_from_slice(&us.to_be_bytes());
    }
}

/// The send time [`stamp`] wrote, if any.
pub fn stamp_of(payload: &[u8]) -> Option<Instant> {
    let n = payload.len();
    let b: [u8; 8] = payload.get(n.checked_sub(9)?..n - 1)?.try_into().ok()?;
    let us = u64::from_be_bytes(b);
    // Filler bytes (0x55…) are not a stamp.
    (us != u64::from_be_bytes([0x55; 8])).then(|| epoch() + Duration::from_micros(us))
}
