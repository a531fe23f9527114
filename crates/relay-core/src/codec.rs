//! Just enough codec knowledge to forward RTP without decoding: which packet starts a
//! keyframe, and where VP8 keeps the picture numbering a receiver checks for continuity.
//!
//! VP8 payload descriptor: RFC 7741 §4.2; H.264 packetization: RFC 6184 §5.

/// Codecs the relay forwards. Anything else is refused at negotiation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Opus,
    Vp8,
    H264,
}

impl Codec {
    /// RTP clock rate (RFC 7587 §4.1 for Opus; 90 kHz for video).
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            Codec::Vp8 | Codec::H264 => 90_000,
        }
    }

    /// Whether this is a video codec.
    pub fn is_video(self) -> bool {
        !matches!(self, Codec::Opus)
    }
}

/// VP8 picture numbering found in a payload descriptor (RFC 7741 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8Info {
    /// PictureID with its width: `Some((id, is_15_bit))`.
    pub picture_id: Option<(u16, bool)>,
    /// TL0PICIDX, present when the encoder uses temporal layers.
    pub tl0_pic_idx: Option<u8>,
}

/// What the core needs to know about one payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PayloadInfo {
    /// This packet is the first packet of a keyframe (a decoder can start here).
    pub keyframe_start: bool,
    /// VP8 numbering, for VP8 payloads that carry it.
    pub vp8: Option<Vp8Info>,
}

/// Inspect a payload of the given codec.
pub fn inspect(codec: Codec, payload: &[u8]) -> PayloadInfo {
    match codec {
        Codec::Opus => PayloadInfo::default(),
        Codec::Vp8 => inspect_vp8(payload),
        Codec::H264 => PayloadInfo {
            keyframe_start: h264_keyframe_start(payload),
            vp8: None,
        },
    }
}

fn inspect_vp8(p: &[u8]) -> PayloadInfo {
    let mut info = PayloadInfo::default();
    let Some(&b0) = p.first() else {
        return info;
    };
    let x = b0 & 0x80 != 0;
    let s = b0 & 0x10 != 0;
    let pid = b0 & 0x07;
    let mut i = 1;
    let mut vp8 = Vp8Info::default();
    if x {
        let Some(&b1) = p.get(1) else {
            return info;
        };
        i = 2;
        let (has_i, has_l, has_t, has_k) = (
            b1 & 0x80 != 0,
            b1 & 0x40 != 0,
            b1 & 0x20 != 0,
            b1 & 0x10 != 0,
        );
        if has_i {
            let Some(&m) = p.get(i) else {
                return info;
            };
            if m & 0x80 != 0 {
                let Some(&lo) = p.get(i + 1) else {
                    return info;
                };
                vp8.picture_id = Some(((u16::from(m & 0x7f) << 8) | u16::from(lo), true));
                i += 2;
            } else {
                vp8.picture_id = Some((u16::from(m), false));
                i += 1;
            }
        }
        // TL0PICIDX comes with a TID (RFC 7741 §4.2): str0m, which writes the
        // rewritten numbering back into the payload, refuses a descriptor with L
        // and not T. Numbering the edge could not patch would leave the receiver's
        // PictureIDs jumping at the next layer switch, so take none from it.
        if has_l && !has_t {
            return info;
        }
        if has_l {
            let Some(&t) = p.get(i) else {
                return info;
            };
            vp8.tl0_pic_idx = Some(t);
            i += 1;
        }
        if has_t || has_k {
            i += 1;
        }
    }
    // A descriptor with no VP8 data after it is no packet to number either.
    if i >= p.len() {
        return info;
    }
    info.vp8 = Some(vp8);
    // The VP8 payload header's P bit is 0 for key frames (RFC 7741 §4.3); it is only
    // present in the first packet of partition 0.
    if s && pid == 0 {
        if let Some(&h) = p.get(i) {
            info.keyframe_start = h & 0x01 == 0;
        }
    }
    info
}

fn h264_keyframe_start(p: &[u8]) -> bool {
    const IDR: u8 = 5;
    const SPS: u8 = 7;
    let Some(&b0) = p.first() else {
        return false;
    };
    match b0 & 0x1f {
        IDR | SPS => true,
        // STAP-A: 16-bit size-prefixed NAL units (RFC 6184 §5.7.1).
        24 => {
            let mut i = 1;
            while i + 2 < p.len() {
                let size = usize::from(u16::from_be_bytes([p[i], p[i + 1]]));
                // A NAL unit has at least its header byte; after a zero size the
                // next byte is the following unit's size, not a header.
                if size == 0 {
                    return false;
                }
                let t = p[i + 2] & 0x1f;
                if t == IDR || t == SPS {
                    return true;
                }
                i += 2 + size;
            }
            false
        }
        // FU-A start fragment of an IDR (RFC 6184 §5.8).
        28 => p
            .get(1)
            .is_some_and(|&fu| fu & 0x80 != 0 && fu & 0x1f == IDR),
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A VP8 payload with a 15-bit PictureID, TL0PICIDX and TID, as Chrome sends
    /// them with temporal layers.
    pub(crate) fn vp8_payload(picture_id: u16, tl0: u8, start: bool, key: bool) -> Vec<u8> {
        let b0 = 0x80 | if start { 0x10 } else { 0 };
        let b1 = 0x80 | 0x40 | 0x20; // I, L and T
        let pid_hi = 0x80 | ((picture_id >> 8) as u8 & 0x7f);
        let header = if key { 0x00 } else { 0x01 };
        vec![
            b0,
            b1,
            pid_hi,
            picture_id as u8,
            tl0,
            0x40,
            header,
            0xaa,
            0xbb,
        ]
    }

    #[test]
    fn vp8_keyframe_and_numbering() {
        let i = inspect(Codec::Vp8, &vp8_payload(300, 7, true, true));
        assert!(i.keyframe_start);
        assert_eq!(
            i.vp8,
            Some(Vp8Info {
                picture_id: Some((300, true)),
                tl0_pic_idx: Some(7)
            })
        );
        // Continuation packet of a keyframe is not a start.
        assert!(!inspect(Codec::Vp8, &vp8_payload(300, 7, false, true)).keyframe_start);
        // Delta frame.
        assert!(!inspect(Codec::Vp8, &vp8_payload(301, 7, true, false)).keyframe_start);
        // Short descriptor without extensions: keyframe bit right after byte 0.
        assert!(inspect(Codec::Vp8, &[0x10, 0x00, 0x9d]).keyframe_start);
        assert!(!inspect(Codec::Vp8, &[]).keyframe_start);
        assert!(!inspect(Codec::Vp8, &[0x90]).keyframe_start);
    }

    /// Found by fuzzing (fuzz/regressions/vp8): numbering is taken only from a
    /// descriptor str0m can patch, since the edge writes it back with str0m.
    #[test]
    fn vp8_numbering_only_from_descriptors_the_edge_can_patch() {
        // L without T: str0m refuses it.
        let l_no_t = [0x90, 0xc0, 0x81, 0x23, 0x07, 0x00, 0x9d];
        assert_eq!(inspect(Codec::Vp8, &l_no_t), PayloadInfo::default());
        // With T the same numbering is read.
        let l_t = [0x90, 0xe0, 0x81, 0x23, 0x07, 0x40, 0x00, 0x9d];
        let v = inspect(Codec::Vp8, &l_t).vp8.unwrap();
        assert_eq!(
            (v.picture_id, v.tl0_pic_idx),
            (Some((0x123, true)), Some(7))
        );
        // A descriptor with nothing after it.
        assert_eq!(inspect(Codec::Vp8, &[0x80, 0x80, 0x05]).vp8, None);
        assert_eq!(inspect(Codec::Vp8, &[0x10]).vp8, None);
    }

    #[test]
    fn h264_keyframe_forms() {
        assert!(inspect(Codec::H264, &[0x65, 0x88]).keyframe_start); // IDR
        assert!(inspect(Codec::H264, &[0x67, 0x42]).keyframe_start); // SPS
        assert!(!inspect(Codec::H264, &[0x41, 0x9a]).keyframe_start); // non-IDR slice
                                                                      // STAP-A with SPS + PPS.
        assert!(inspect(Codec::H264, &[0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce]).keyframe_start);
        // FU-A: start of IDR, and a middle fragment.
        assert!(inspect(Codec::H264, &[0x7c, 0x85, 1]).keyframe_start);
        assert!(!inspect(Codec::H264, &[0x7c, 0x05, 1]).keyframe_start);
        assert!(!inspect(Codec::Opus, &[0x65]).keyframe_start);
    }

    /// Found by fuzzing (fuzz/regressions/h264): a zero-sized unit in a STAP-A
    /// made the next size's first byte (here 5) read as an IDR header, so a delta
    /// frame counted as a keyframe to switch layers on.
    #[test]
    fn h264_stap_a_zero_size_is_no_keyframe() {
        assert!(!inspect(Codec::H264, &[0x78, 0, 0, 0x05, 0, 0x41]).keyframe_start);
        assert!(!inspect(Codec::H264, &[0x78, 0, 0, 0x03, 0x06, 0x05, 0x01]).keyframe_start);
    }
}
