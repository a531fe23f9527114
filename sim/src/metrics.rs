//! What a classroom experienced, computed from what it received: rendered frames and
//! freezes, layers over time, lost audio; and how the relay's sending followed the
//! link's capacity.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::peer::{Classroom, VideoRx};
use crate::world::BIN;

/// A gap between rendered frames longer than this is a freeze (the WebRTC stats
/// rule gives max(3 frame times, frame time + 150 ms) = 190 ms at 25 fps).
pub const FREEZE: Duration = Duration::from_millis(190);

/// A gap between rendered frames this long or longer is a pause (the sender
/// stopped), not a freeze: Chromium's rule.
pub const PAUSE_FROM: Duration = Duration::from_secs(5);

/// One frame as the decoder would see it.
#[derive(Debug, Clone, Copy)]
struct Frame {
    first_seq: u64,
    key: bool,
    /// Its first packet's arrival, and when the teacher sent it.
    first_at: Instant,
    sent: Option<Instant>,
    /// A packet of it came by retransmission.
    repaired: bool,
    complete_at: Instant,
    layer: u8,
    pid: u16,
    temporal: Option<(u8, u8)>,
    /// The minimum playout delay its first packet asked for.
    min_delay: Option<Duration>,
}

/// Render times of the frames a VP8 decoder could show, as Chromium's receiver
/// shows them: a frame is decodable once it is complete (all packets from the start
/// to the marker) and the frame it references has been decoded, or it is a
/// keyframe; it is shown as soon as it is decodable, unless a later frame was shown
/// first (then it is dropped). With temporal layers (TL0PICIDX, TID) a TL0 frame
/// references the previous TL0, a TL1 frame its TL0, a TL2 frame the last TL1 or
/// TL0 before it; without them every frame references the one before.
pub fn rendered(video: &[VideoRx]) -> Vec<(Instant, u8)> {
    let mut by_seq: BTreeMap<u64, VideoRx> = BTreeMap::new();
    for v in video {
        // A retransmission may arrive twice; the first arrival counts.
        by_seq.entry(v.seq).or_insert(*v);
    }
    let mut frames: Vec<Frame> = vec![];
    let mut cur: Option<Frame> = None;
    let mut prev_seq: Option<u64> = None;
    for (&seq, v) in &by_seq {
        let contiguous = prev_seq == Some(seq.wrapping_sub(1));
        prev_seq = Some(seq);
        if v.first {
            cur = Some(Frame {
                first_seq: seq,
                key: v.key,
                first_at: v.at,
                sent: v.sent,
                repaired: v.repaired,
                complete_at: v.at,
                layer: v.layer,
                pid: v.pid,
                temporal: v.temporal,
                min_delay: v.min_delay,
            });
        } else if let Some(f) = cur.as_mut() {
            if contiguous {
                f.complete_at = f.complete_at.max(v.at);
                f.repaired |= v.repaired;
            } else {
                cur = None;
            }
        }
        if v.marker {
            frames.extend(cur.take());
        }
    }
    // When each frame became decodable, in stream order, and when the jitter
    // buffer plays it.
    let mut decodable: Vec<(Instant, u64, u8)> = vec![];
    let mut refs = Refs::default();
    let mut jb = JitterBuffer::default();
    for f in &frames {
        let at = if f.key {
            refs = Refs::default();
            Some(f.complete_at)
        } else {
            refs.of(f).map(|t| t.max(f.complete_at))
        };
        let due = jb.due(f);
        if let Some(at) = at {
            refs.decoded(f, at);
            decodable.push((at.max(due.unwrap_or(at)), f.first_seq, f.layer));
        }
    }
    decodable.sort_by_key(|&(at, seq, _)| (at, seq));
    let mut out = vec![];
    let mut shown: Option<u64> = None;
    for (at, seq, layer) in decodable {
        if shown.is_none_or(|s| seq > s) {
            out.push((at, layer));
            shown = Some(seq);
        }
    }
    out
}

/// When a frame is due to play, as Chromium's jitter buffer decides it: its send
/// time, plus the smallest send-to-arrival delay seen, plus the mean and
/// [`JITTER_STD_DEVS`] standard deviations of how much later than that frames have
/// completed (frames delayed by retransmission left out, as Chromium leaves them
/// out of its jitter estimate), plus [`RENDER_DELAY`]. A frame complete by then
/// plays on time; a later one plays when it completes.
///
/// A sender's minimum playout delay (the playout-delay header extension, last
/// value seen, as Chromium keeps it) holds frames at least that long after their
/// send time plus that smallest delay; a change of it moves the hold by at most
/// [`DELAY_CHANGE_PER_S`] per second of the stream, as Chromium's timing moves its
/// delay (slow motion rather than a freeze).
#[derive(Default)]
struct JitterBuffer {
    base: Option<Duration>,
    mean_ms: f64,
    var_ms2: f64,
    /// The sender's minimum, and where the hold is on its way to it: (hold,
    /// send time of the frame it was set for).
    min_delay: Duration,
    hold: Option<(Duration, Instant)>,
}

/// How fast the hold follows a changed minimum playout delay.
pub const DELAY_CHANGE_PER_S: Duration = Duration::from_millis(100);

/// See [`JitterBuffer`]; fitted to Chromium's `jitterBufferDelay` behind the
/// calibration links (about 70–80 ms at 20–30 ms of link jitter).
pub const JITTER_STD_DEVS: f64 = 2.33;
pub const RENDER_DELAY: Duration = Duration::from_millis(10);
/// Weight of each new frame in the jitter estimate.
const JITTER_WEIGHT: f64 = 1.0 / 16.0;

impl JitterBuffer {
    fn due(&mut self, f: &Frame) -> Option<Instant> {
        let sent = f.sent?;
        let first = f.first_at.saturating_duration_since(sent);
        let base = *self.base.get_or_insert(first);
        let base = base.min(first);
        self.base = Some(base);
        let target = Duration::from_secs_f64(
            (self.mean_ms + JITTER_STD_DEVS * self.var_ms2.sqrt()).max(0.0) / 1000.0,
        );
        if !f.repaired {
            let late = f
                .complete_at
                .saturating_duration_since(sent)
                .saturating_sub(base)
                .as_secs_f64()
                * 1000.0;
            let d = late - self.mean_ms;
            self.mean_ms += JITTER_WEIGHT * d;
            self.var_ms2 += JITTER_WEIGHT * (d * d - self.var_ms2);
        }
        if let Some(d) = f.min_delay {
            self.min_delay = d;
        }
        let hold = match self.hold {
            None => self.min_delay,
            Some((h, at)) => {
                let step =
                    DELAY_CHANGE_PER_S.mul_f64(sent.saturating_duration_since(at).as_secs_f64());
                if self.min_delay > h {
                    (h + step).min(self.min_delay)
                } else {
                    h.saturating_sub(step).max(self.min_delay)
                }
            }
        };
        self.hold = Some((hold, sent));
        Some(sent + base + (target + RENDER_DELAY).max(hold))
    }
}

/// The decoded frames later frames may reference, with when each was decodable.
#[derive(Default)]
struct Refs {
    /// Without temporal layers: the previous frame's PictureID.
    last: Option<(u16, Instant)>,
    /// The last TL0: its TL0PICIDX and PictureID.
    tl0: Option<(u8, u16, Instant)>,
    /// The last TL1 after it: its PictureID.
    tl1: Option<(u16, Instant)>,
}

impl Refs {
    /// When `f`'s reference was decodable, if it was.
    fn of(&self, f: &Frame) -> Option<Instant> {
        let next = |a: u16| (a + 1) % 0x8000;
        match f.temporal {
            None => self.last.filter(|(p, _)| next(*p) == f.pid).map(|x| x.1),
            Some((idx, 0)) => self
                .tl0
                .filter(|(i, _, _)| i.wrapping_add(1) == idx)
                .map(|x| x.2),
            Some((idx, tid)) => {
                let (i, pid0, t0) = self.tl0?;
                if i != idx {
                    return None;
                }
                // A TL2 frame after its group's TL1 references that TL1.
                match self.tl1 {
                    Some((_, t1)) if tid == 2 => Some(t1),
                    None if tid == 2 && (f.pid + 0x8000 - pid0) % 0x8000 > 2 => None,
                    _ => Some(t0),
                }
            }
        }
    }

    fn decoded(&mut self, f: &Frame, at: Instant) {
        self.last = Some((f.pid, at));
        match f.temporal {
            Some((idx, 0)) => {
                self.tl0 = Some((idx, f.pid, at));
                self.tl1 = None;
            }
            Some((_, 1)) => self.tl1 = Some((f.pid, at)),
            _ => {}
        }
    }
}

/// What one classroom saw.
#[derive(Debug, Clone, Default)]
pub struct Experience {
    pub first_frame: Option<Duration>,
    pub frames: usize,
    pub freezes: usize,
    pub frozen: Duration,
    /// (time since start, layer) at each layer change of shown frames.
    pub layers: Vec<(Duration, u8)>,
    pub audio_received: usize,
    /// Holes in the audio sequence between the first and last packet received.
    pub audio_lost: u64,
    /// Longest time without audio.
    pub audio_gap: Duration,
}

impl Experience {
    pub fn of(c: &Classroom, t0: Instant) -> Experience {
        let frames = rendered(&c.video);
        let mut e = Experience {
            first_frame: frames
                .first()
                .zip(c.connected_at)
                .map(|((t, _), c)| t.saturating_duration_since(c)),
            frames: frames.len(),
            audio_received: c.audio.len(),
            ..Default::default()
        };
        for w in frames.windows(2) {
            let gap = w[1].0 - w[0].0;
            if gap > FREEZE && gap < PAUSE_FROM {
                e.freezes += 1;
                e.frozen += gap;
            }
        }
        for (t, l) in &frames {
            if e.layers.last().is_none_or(|(_, p)| p != l) {
                e.layers.push((*t - t0, *l));
            }
        }
        if let (Some(first), Some(last)) = (c.audio.first(), c.audio.last()) {
            e.audio_lost = last - first + 1 - c.audio.len() as u64;
        }
        let mut prev: Option<Instant> = None;
        for at in &c.audio_at {
            if let Some(p) = prev {
                e.audio_gap = e.audio_gap.max(*at - p);
            }
            prev = Some(*at);
        }
        e
    }

    /// Layer switches seen by the viewer.
    pub fn switches(&self) -> usize {
        self.layers.len().saturating_sub(1)
    }
}

/// Bit rate over `window` ending at bin `i` (inclusive), from 100 ms byte bins.
pub fn rate_at(bins: &[u64], i: usize, window: usize) -> u64 {
    let lo = (i + 1).saturating_sub(window);
    let bytes: u64 = bins[lo..=i.min(bins.len().saturating_sub(1))].iter().sum();
    bytes * 8 * 1000 / (BIN.as_millis() as u64 * (i + 1 - lo) as u64)
}

/// First time at or after `from` when the rate over `window` bins satisfies `ok`.
pub fn first_time(
    bins: &[u64],
    from: Duration,
    window: usize,
    ok: impl Fn(u64) -> bool,
) -> Option<Duration> {
    let start = (from.as_millis() / BIN.as_millis()) as usize;
    (start + window - 1..bins.len())
        .find(|&i| ok(rate_at(bins, i, window)))
        .map(|i| BIN * (i as u32 + 1) - from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::VideoRx;

    /// 40 frames of two packets at 25 fps, L1T3 (TL0 TL2 TL1 TL2), the first a
    /// keyframe; `late` maps a sequence number to how long its packet was delayed
    /// (a retransmission), `None` for a packet that never came.
    fn stream(late: &[(u64, Option<u64>)]) -> Vec<VideoRx> {
        let t0 = Instant::now();
        let mut out = vec![];
        let mut tl0 = 0u8;
        for f in 0..40u64 {
            let tid = [0, 2, 1, 2][f as usize % 4];
            if tid == 0 {
                tl0 = tl0.wrapping_add(1);
            }
            for k in 0..2u64 {
                let seq = 2 * f + k;
                let delay = match late.iter().find(|(s, _)| *s == seq) {
                    Some((_, None)) => continue,
                    Some((_, Some(ms))) => *ms,
                    None => 0,
                };
                out.push(VideoRx {
                    at: t0 + Duration::from_millis(40 * f + delay),
                    seq,
                    ts: 3600 * f as u32,
                    marker: k == 1,
                    first: k == 0,
                    key: k == 0 && f == 0,
                    layer: 0,
                    pid: f as u16,
                    temporal: Some((tl0, tid)),
                    repaired: delay > 0,
                    min_delay: None,
                    sent: None,
                });
            }
        }
        out
    }

    /// [`stream`] sent every 40 ms and arriving `one_way_ms` later plus 0 or 30 ms
    /// of jitter in turn, frame 24's (TL0) second packet repaired `repair_ms` late.
    fn over_a_link(one_way_ms: u64, repair_ms: u64) -> Vec<VideoRx> {
        let mut v = stream(&[(49, Some(repair_ms))]);
        let t0 = v[0].at;
        for p in v.iter_mut() {
            let f = p.seq / 2;
            let sent = t0 + Duration::from_millis(40 * f);
            let late = if p.repaired { repair_ms } else { 30 * (f % 2) };
            p.sent = Some(sent);
            p.at = sent + Duration::from_millis(one_way_ms + late);
        }
        v
    }

    fn freezes(frames: &[(Instant, u8)]) -> usize {
        frames
            .windows(2)
            .filter(|w| w[1].0 - w[0].0 > FREEZE)
            .count()
    }

    #[test]
    fn a_lost_tl2_frame_costs_that_frame_only() {
        // Frame 5 (TL2) never completes.
        let f = rendered(&stream(&[(11, None)]));
        assert_eq!(f.len(), 39);
        assert_eq!(freezes(&f), 0);
    }

    #[test]
    fn a_lost_tl0_frame_stops_the_picture_until_it_is_repaired() {
        // Frame 8 (TL0) is repaired 600 ms late: frames 9..23 wait for it, then
        // show at once; one freeze, no frame lost.
        let f = rendered(&stream(&[(17, Some(600))]));
        assert_eq!(f.len(), 40);
        assert_eq!(freezes(&f), 1);
        // Never repaired: nothing after it decodes (no keyframe follows).
        let f = rendered(&stream(&[(17, None)]));
        assert_eq!(f.len(), 8);
    }

    #[test]
    fn a_late_tl2_frame_is_dropped_not_waited_for() {
        // Frame 5 (TL2) repaired 600 ms late: the frames after it do not wait; when
        // it comes, later frames were shown, so it is dropped.
        let f = rendered(&stream(&[(11, Some(600))]));
        assert_eq!(f.len(), 39);
        assert_eq!(freezes(&f), 0);
    }

    #[test]
    fn the_jitter_buffer_absorbs_a_retransmission_within_its_delay() {
        // Sent every 40 ms, arriving 50 ms later plus 0 or 30 ms of jitter in turn:
        // the buffer plays frames about 110 ms after sending. Frame 24 (TL0) has a
        // packet repaired 200 ms late: it plays 140 ms late, a 180 ms gap, no freeze.
        // Played on arrival instead, the gap would be 210-240 ms: a freeze.
        let f = rendered(&over_a_link(50, 200));
        assert_eq!(f.len(), 40);
        assert_eq!(
            freezes(&f),
            0,
            "{:?}",
            f.windows(2)
                .map(|w| (w[1].0 - w[0].0).as_millis())
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_sender_asked_playout_delay_lets_a_long_round_trip_repair_in_time() {
        // A satellite hop: 310 ms one way plus 0 or 30 ms of jitter; frame 24's
        // (TL0) packet is repaired a round trip and a bit (680 ms) late. On the
        // receiver's own delay that is a freeze; held 990 ms, as the relay asks
        // for such a link, it plays on time.
        let satellite = |min_delay: Option<u64>| {
            let mut v = over_a_link(310, 680);
            for p in v.iter_mut() {
                p.min_delay = min_delay.map(Duration::from_millis);
            }
            let f = rendered(&v);
            (f.len(), freezes(&f))
        };
        assert_eq!(satellite(None), (40, 1));
        assert_eq!(satellite(Some(990)), (40, 0));
    }

    #[test]
    fn a_tl2_frame_after_a_lost_tl1_cannot_decode() {
        // Frame 6 (TL1) lost: frame 7 (TL2) references it; frame 8 (TL0) does not.
        let f = rendered(&stream(&[(13, None)]));
        assert_eq!(f.len(), 38);
        assert_eq!(freezes(&f), 0);
    }
}
