//! RFC 2198 redundant audio (RED), as browsers use it for Opus: each packet carries
//! the previous frame again (or the previous two, on a lossy link), so a classroom
//! that loses one voice packet (or two in a row) rebuilds them from the next. The relay adds it per classroom, on the classroom's own link, for
//! classrooms that negotiated `audio/red`; the teacher's own packets stay plain
//! Opus.

/// The most a redundant block may lag its packet (timestamp units): older frames
/// would be played too late to matter, and the field has 14 bits.
pub const MAX_OFFSET: u32 = 3 * 960;
/// A block length has 10 bits.
const MAX_BLOCK: usize = 1023;

/// One block of a RED payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block<'a> {
    pub pt: u8,
    /// How far before the packet's own timestamp this block's frame lies.
    pub ts_offset: u32,
    pub data: &'a [u8],
}

/// A RED payload carrying `primary` (payload type `pt`, at timestamp `ts`) and the
/// frames before it that are recent enough (`prev`: timestamp and data, oldest
/// first; one for one-deep redundancy, two for two-deep).
pub fn wrap(pt: u8, ts: u32, primary: &[u8], prev: &[(u32, &[u8])]) -> Vec<u8> {
    let red: Vec<(u32, &[u8])> = prev
        .iter()
        .filter_map(|&(pts, data)| {
            let offset = ts.wrapping_sub(pts);
            (offset > 0 && offset <= MAX_OFFSET && !data.is_empty() && data.len() <= MAX_BLOCK)
                .then_some((offset, data))
        })
        .collect();
    let size = primary.len() + 1 + red.iter().map(|(_, d)| d.len() + 4).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    for (offset, data) in &red {
        out.push(0x80 | (pt & 0x7f));
        let word = (offset << 10) | data.len() as u32;
        out.extend_from_slice(&[(word >> 16) as u8, (word >> 8) as u8, word as u8]);
    }
    out.push(pt & 0x7f);
    for (_, data) in &red {
        out.extend_from_slice(data);
    }
    out.extend_from_slice(primary);
    out
}

/// The blocks of a RED payload, oldest first, the primary (offset 0) last; `None`
/// if the payload is not well-formed RED.
pub fn parse(payload: &[u8]) -> Option<Vec<Block<'_>>> {
    let mut heads = vec![];
    let mut at = 0;
    loop {
        let b = *payload.get(at)?;
        if b & 0x80 == 0 {
            heads.push((b & 0x7f, 0, None));
            at += 1;
            break;
        }
        let h = payload.get(at + 1..at + 4)?;
        let word = (h[0] as u32) << 16 | (h[1] as u32) << 8 | h[2] as u32;
        heads.push((b & 0x7f, word >> 10, Some((word & 0x3ff) as usize)));
        at += 4;
    }
    let mut blocks = Vec::with_capacity(heads.len());
    for (pt, ts_offset, len) in heads {
        let len = len.unwrap_or(payload.len().saturating_sub(at));
        let data = payload.get(at..at + len)?;
        at += len;
        blocks.push(Block {
            pt,
            ts_offset,
            data,
        });
    }
    Some(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_then_parse_gives_both_frames() {
        let p = wrap(111, 10_960, b"now", &[(10_000, b"before")]);
        // Header: F=1|PT, offset 960 << 10 | len 6; then F=0|PT.
        assert_eq!(&p[..5], &[0x80 | 111, 0x0f, 0x00, 0x06, 111]);
        let b = parse(&p).unwrap();
        assert_eq!(
            b,
            vec![
                Block {
                    pt: 111,
                    ts_offset: 960,
                    data: b"before"
                },
                Block {
                    pt: 111,
                    ts_offset: 0,
                    data: b"now"
                }
            ]
        );
    }

    #[test]
    fn no_redundancy_without_a_recent_previous_frame() {
        for prev in [
            &[][..],
            &[(0u32, &b"old"[..])][..],
            &[(10_960, &b"same ts"[..])][..],
        ] {
            let p = wrap(111, 10_960, b"now", prev);
            assert_eq!(p, [&[111u8][..], b"now"].concat(), "{prev:?}");
            assert_eq!(parse(&p).unwrap().len(), 1);
        }
        // Across the RTP timestamp wrap.
        let p = wrap(111, 500, b"now", &[(u32::MAX - 459, b"x")]);
        assert_eq!(parse(&p).unwrap()[0].ts_offset, 960);
    }

    #[test]
    fn two_deep_carries_both_previous_frames_oldest_first() {
        let p = wrap(111, 11_920, b"now", &[(10_000, b"two"), (10_960, b"one")]);
        let b = parse(&p).unwrap();
        let got: Vec<(u32, &[u8])> = b.iter().map(|b| (b.ts_offset, b.data)).collect();
        assert_eq!(
            got,
            vec![(1920, &b"two"[..]), (960, &b"one"[..]), (0, &b"now"[..])]
        );
        // A frame too old to matter is left out, the recent one kept.
        let p = wrap(111, 20_000, b"now", &[(10_000, b"old"), (19_040, b"one")]);
        assert_eq!(parse(&p).unwrap().len(), 2);
    }

    #[test]
    fn broken_payloads_are_refused() {
        assert_eq!(parse(&[]), None);
        // A redundant header whose block runs past the end.
        assert_eq!(parse(&[0x80 | 111, 0x0f, 0x00, 0x40, 111, 1, 2]), None);
        // A header cut short.
        assert_eq!(parse(&[0x80 | 111, 0x0f]), None);
    }
}
