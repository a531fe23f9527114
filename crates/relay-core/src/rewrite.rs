//! Per-receiver rewrite of RTP numbering, so that one outgoing stream stays continuous
//! while its source changes (a simulcast layer switch, or a teacher who reconnects).
//!
//! A receiver sees one SSRC per outgoing track. Each source has its own sequence
//! numbers, RTP timestamps and (VP8) PictureID/TL0PICIDX. On a switch the rewriter
//! rebases all four so the first packet of the new source follows the last one sent:
//! sequence +1, timestamp advanced by the wall-clock time that passed, PictureID +1,
//! TL0PICIDX +1. Within one source the offsets stay fixed, so reordering and loss
//! upstream show up to the receiver exactly as they happened (and NACK still works).

use std::time::Instant;

use crate::codec::Vp8Info;

/// One incoming packet, as the rewriter sees it.
#[derive(Debug, Clone, Copy)]
pub struct SourcePacket {
    /// Extended (rollover-free) sequence number of the source stream.
    pub seq: u64,
    /// RTP timestamp of the source stream.
    pub ts: u32,
    /// VP8 numbering, when present.
    pub vp8: Option<Vp8Info>,
}

/// The numbering to put on the outgoing packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    pub seq: u64,
    pub ts: u32,
    /// New VP8 PictureID (same width as the source's), when the source carries one.
    pub vp8_picture_id: Option<u16>,
    /// New VP8 TL0PICIDX, when the source carries one.
    pub vp8_tl0_pic_idx: Option<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Offsets {
    seq: i64,
    ts: u32,
    picture_id: u16,
    tl0: u8,
    /// First source sequence number of this source; older packets are from before the
    /// switch and must not be forwarded (they would land "in the past").
    first_seq: u64,
}

/// Rewrite state of one outgoing stream.
#[derive(Debug, Clone)]
pub struct Rewriter {
    clock_rate: u32,
    offsets: Option<Offsets>,
    /// Highest outgoing sequence number so far.
    max_seq: u64,
    last_ts: u32,
    last_picture_id: u16,
    last_tl0: u8,
    last_sent_at: Option<Instant>,
}

const PICTURE_ID_MOD: u32 = 0x8000;

impl Rewriter {
    /// A rewriter whose first outgoing sequence number is `first_seq`.
    ///
    /// Keep `first_seq` below 65536: SRTP receivers start with rollover counter 0.
    pub fn new(clock_rate: u32, first_seq: u64) -> Rewriter {
        Rewriter {
            clock_rate,
            offsets: None,
            max_seq: first_seq.saturating_sub(1),
            last_ts: 0,
            last_picture_id: 0,
            last_tl0: 0,
            last_sent_at: None,
        }
    }

    /// Whether a source has been bound yet.
    pub fn is_started(&self) -> bool {
        self.offsets.is_some()
    }

    /// Make `p` (arriving at `now`) the first packet of a new source, and rewrite it.
    pub fn switch_to(&mut self, now: Instant, p: &SourcePacket) -> Rewritten {
        let out_seq = self.max_seq + 1;
        let out_ts = match self.last_sent_at {
            None => p.ts,
            Some(at) => {
                let elapsed = now.saturating_duration_since(at);
                let ticks = (elapsed.as_micros() * u128::from(self.clock_rate) / 1_000_000) as u32;
                self.last_ts.wrapping_add(ticks.max(1))
            }
        };
        let started = self.last_sent_at.is_some();
        let (pid_in, tl0_in) = vp8_fields(p.vp8);
        let out_pid = if started {
            (u32::from(self.last_picture_id) + 1) % PICTURE_ID_MOD
        } else {
            u32::from(pid_in)
        } as u16;
        let out_tl0 = if started {
            self.last_tl0.wrapping_add(1)
        } else {
            tl0_in
        };
        self.offsets = Some(Offsets {
            seq: out_seq as i64 - p.seq as i64,
            ts: out_ts.wrapping_sub(p.ts),
            picture_id: ((u32::from(out_pid) + PICTURE_ID_MOD - u32::from(pid_in)) % PICTURE_ID_MOD)
                as u16,
            tl0: out_tl0.wrapping_sub(tl0_in),
            first_seq: p.seq,
        });
        self.rewrite(now, p).expect("offsets were just set")
    }

    /// Rewrite a packet of the current source. `None` if there is no source yet or the
    /// packet predates the switch to this source.
    pub fn rewrite(&mut self, now: Instant, p: &SourcePacket) -> Option<Rewritten> {
        let o = self.offsets?;
        if p.seq < o.first_seq {
            return None;
        }
        let seq = (p.seq as i64 + o.seq) as u64;
        let ts = p.ts.wrapping_add(o.ts);
        let (vp8_picture_id, vp8_tl0_pic_idx) = match p.vp8 {
            Some(v) => (
                v.picture_id.map(|(id, wide)| {
                    let m = if wide { PICTURE_ID_MOD } else { 0x80 };
                    ((u32::from(id) + u32::from(o.picture_id)) % m) as u16
                }),
                v.tl0_pic_idx.map(|t| t.wrapping_add(o.tl0)),
            ),
            None => (None, None),
        };
        if seq > self.max_seq {
            self.max_seq = seq;
            self.last_ts = ts;
            self.last_sent_at = Some(now);
            if let Some(id) = vp8_picture_id {
                self.last_picture_id = id;
            }
            if let Some(t) = vp8_tl0_pic_idx {
                self.last_tl0 = t;
            }
        }
        Some(Rewritten {
            seq,
            ts,
            vp8_picture_id,
            vp8_tl0_pic_idx,
        })
    }
}

fn vp8_fields(v: Option<Vp8Info>) -> (u16, u8) {
    let v = v.unwrap_or_default();
    (
        v.picture_id.map(|(id, _)| id).unwrap_or(0),
        v.tl0_pic_idx.unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pkt(seq: u64, ts: u32, pid: u16, tl0: u8) -> SourcePacket {
        SourcePacket {
            seq,
            ts,
            vp8: Some(Vp8Info {
                picture_id: Some((pid, true)),
                tl0_pic_idx: Some(tl0),
            }),
        }
    }

    #[test]
    fn switch_keeps_numbering_continuous() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(90_000, 1);
        let a = r.switch_to(t0, &pkt(5000, 1_000_000, 100, 9));
        assert_eq!(
            (a.seq, a.ts, a.vp8_picture_id, a.vp8_tl0_pic_idx),
            (1, 1_000_000, Some(100), Some(9))
        );
        let b = r
            .rewrite(
                t0 + Duration::from_millis(33),
                &pkt(5001, 1_003_000, 101, 10),
            )
            .unwrap();
        assert_eq!((b.seq, b.ts, b.vp8_picture_id), (2, 1_003_000, Some(101)));

        // Switch to another layer with unrelated numbering, 40 ms later.
        let t1 = t0 + Duration::from_millis(73);
        let c = r.switch_to(t1, &pkt(60_000, 7, 32_760, 250));
        assert_eq!(c.seq, 3);
        assert_eq!(
            c.ts,
            1_003_000 + 3600,
            "40 ms at 90 kHz after the last frame"
        );
        assert_eq!(c.vp8_picture_id, Some(102));
        assert_eq!(c.vp8_tl0_pic_idx, Some(11));

        // PictureID wraps at 15 bits on the new source; the output follows.
        let d = r.rewrite(t1, &pkt(60_001, 3007, 0, 251)).unwrap();
        assert_eq!(
            (d.seq, d.vp8_picture_id, d.vp8_tl0_pic_idx),
            (4, Some(110), Some(12))
        );

        // A late packet of the new source from before the switch point is dropped,
        // one out of order after it keeps its place.
        assert!(r.rewrite(t1, &pkt(59_999, 0, 0, 0)).is_none());
        let e = r.rewrite(t1, &pkt(60_003, 3007, 0, 251)).unwrap();
        let f = r.rewrite(t1, &pkt(60_002, 3007, 0, 251)).unwrap();
        assert_eq!((e.seq, f.seq), (6, 5));
    }

    #[test]
    fn timestamp_wraps_and_unstarted_drops() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(48_000, 10);
        assert!(r.rewrite(t0, &pkt(1, 1, 1, 1)).is_none());
        let first = SourcePacket {
            seq: 70_000,
            ts: u32::MAX - 100,
            vp8: None,
        };
        let a = r.switch_to(t0, &first);
        assert_eq!((a.seq, a.ts, a.vp8_picture_id), (10, u32::MAX - 100, None));
        let b = r
            .rewrite(
                t0,
                &SourcePacket {
                    seq: 70_001,
                    ts: 859,
                    vp8: None,
                },
            )
            .unwrap();
        assert_eq!((b.seq, b.ts), (11, 859));
    }
}
