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

/// One frame as the decoder would see it.
#[derive(Debug, Clone, Copy)]
struct Frame {
    first_seq: u64,
    last_seq: u64,
    key: bool,
    complete_at: Instant,
    layer: u8,
}

/// Render times of the frames a VP8 decoder could show: frames are complete (all
/// packets from the start to the marker), in order, each following the previous
/// shown one without a hole, or a keyframe.
pub fn rendered(video: &[VideoRx]) -> Vec<(Instant, u8)> {
    rendered_with_delay(video, Duration::ZERO)
}

/// As [`rendered`], for a receiver that plays each frame `delay` after its first
/// packet arrived (or when it completes, if later): a jitter buffer that has grown
/// to cover a retransmission round trip shows repaired frames on time.
pub fn rendered_with_delay(video: &[VideoRx], delay: Duration) -> Vec<(Instant, u8)> {
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
                last_seq: seq,
                key: v.key,
                complete_at: v.at + delay,
                layer: v.layer,
            });
        } else if let Some(f) = cur.as_mut() {
            if contiguous {
                f.last_seq = seq;
                f.complete_at = f.complete_at.max(v.at);
            } else {
                cur = None;
            }
        }
        if v.marker {
            if let Some(f) = cur.take() {
                frames.push(Frame { last_seq: seq, ..f });
            }
        }
    }
    let mut out = vec![];
    let mut last: Option<(u64, Instant)> = None;
    for f in frames {
        let follows = last.is_some_and(|(s, _)| s + 1 == f.first_seq);
        if f.key || follows {
            let at = last.map_or(f.complete_at, |(_, t)| t.max(f.complete_at));
            out.push((at, f.layer));
            last = Some((f.last_seq, at));
        }
    }
    out
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
            if gap > FREEZE {
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
