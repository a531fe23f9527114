//! Per-school link adaptation: which layers fit a link budget, in priority order.
//!
//! The teacher's voice is never part of the decision: audio is always forwarded and
//! its measured cost is taken off the budget first. What remains goes to the video
//! tracks in the configured priority order (slides before camera by default): first
//! every track gets its lowest layer while it fits, then tracks are raised one at a
//! time, the higher-priority track as far as it goes before the next one. A track
//! whose lowest layer does not fit is paused (audio-only for that track).
//!
//! Everything here is pure arithmetic on measured rates, so the policy can be tested
//! without packets. The hysteresis (down at once, up after sustained headroom) lives
//! in the relay, which owns time.

use std::time::Duration;

/// What a video track shows, by the order the teacher offers them: the first video
/// track is the camera, a second one the screen (slides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackRole {
    Camera,
    Screen,
}

impl TrackRole {
    /// Role of the n-th video track of a teacher.
    pub fn of_video_index(n: usize) -> TrackRole {
        if n == 0 {
            TrackRole::Camera
        } else {
            TrackRole::Screen
        }
    }
}

/// Tunables of link adaptation.
#[derive(Debug, Clone)]
pub struct AdaptConfig {
    /// Estimate each classroom's link and choose layers by it. Off: every classroom
    /// gets its preferred layer (`?layer=`, else the default).
    pub enabled: bool,
    /// Video tracks in the order they get bandwidth. Roles not listed come last.
    pub priority: Vec<TrackRole>,
    /// Fraction of the estimate that media may use; the rest absorbs keyframe bursts
    /// and estimate noise.
    pub headroom: f64,
    /// A better allocation must be possible this long before switching up.
    pub up_hold: Duration,
    /// No switch up this soon after a switch down.
    pub down_dwell: Duration,
    /// What is forwarded now stays while it costs at most the budget divided by
    /// this; only then does the relay switch down. Without this margin a layer
    /// whose measured rate wobbles around the budget flips up and down.
    pub down_margin: f64,
    /// Above this loss fraction the budget shrinks by the loss.
    pub loss_cut: f32,
    /// Where the estimator towards each new classroom starts.
    pub initial_bps: u64,
    /// How long a loss-driven budget cut holds: the next report shows less loss
    /// only because less was sent.
    pub loss_hold: Duration,
    /// Loss at which the link is taken to have collapsed: what got through of what
    /// was sent is all it carries now, and the budget is cut to that.
    pub collapse_loss: f32,
    /// A step down this soon after a step up means the step up did not last (the
    /// link sits at a layer boundary), which raises the step-up backoff; a step up
    /// that lasts this long clears the backoff.
    pub flap_within: Duration,
    /// Step-up backoff after the first step up that did not last; it doubles with
    /// each further one. At most `backoff_max`.
    pub backoff_min: Duration,
    /// The most the step-up backoff grows to.
    pub backoff_max: Duration,
    /// A video budget this many times the one at the last step down is a link that
    /// really got better: the step-up backoff is cleared.
    pub real_rise: f64,
    /// Wait before the first re-probe of an estimate stuck below the next step up,
    /// and after a re-probe that raised the estimate.
    pub probe_min_every: Duration,
    /// A re-probe that did not raise the estimate doubles the wait before the
    /// next one, up to this.
    pub probe_max_every: Duration,
    /// Above this loss (as last reported) no re-probe is asked for: the link is full
    /// already.
    pub probe_max_loss: f32,
    /// Loss above which video may pause. Below it a thin estimate (from the delay
    /// signal alone) still gets every track's lowest layer; after such loss that
    /// floor stays off until the estimate itself carries every track again.
    pub video_floor_max_loss: f32,
    /// How long a newly arriving layer counts at no less than `assumed_bps`.
    pub layer_settle: Duration,
    /// Wire rates assumed for camera layers not measured yet (the teacher just
    /// started), lowest to highest of a three-layer ladder; a ladder of fewer layers
    /// takes the highest ones. The usual 150/500/1500 kbit/s ladder, so nothing is
    /// mistaken for free.
    pub assumed_bps: [u64; 3],
    /// The same for a screen (slides) sent as one layer: a few frames per second of
    /// mostly still content, far below a camera's top layer.
    pub assumed_screen_bps: u64,
    /// Opus voice plus overhead, until measured.
    pub assumed_audio_bps: u64,
    /// A receiver report with at least this much loss makes voice towards the
    /// classroom two-deep RED (each packet carries the two previous frames), for
    /// classrooms that negotiated RED.
    pub red_deep_loss: f32,
    /// Two-deep RED stays this long after the last such report.
    pub red_deep_hold: Duration,
    /// A classroom whose link loses at least this much (reports' loss, smoothed)
    /// is asked to hold each video frame long enough for a retransmission to
    /// arrive (see `link::RepairDelay`).
    pub repair_loss: f32,
    /// Such a hold shorter than this is not asked for: a receiver's own jitter
    /// buffer and NACK repair most losses on short round trips.
    pub repair_min: Duration,
    /// Nor longer than this, whatever the round trip (under `repair_min`: never).
    pub repair_max: Duration,
    /// The hold stays this long after the link last lost enough.
    pub repair_hold: Duration,
}

impl Default for AdaptConfig {
    fn default() -> Self {
        AdaptConfig {
            enabled: true,
            priority: vec![TrackRole::Screen, TrackRole::Camera],
            headroom: 0.85,
            up_hold: Duration::from_millis(1500),
            down_dwell: Duration::from_secs(4),
            down_margin: 0.9,
            loss_cut: 0.05,
            initial_bps: 500_000,
            loss_hold: Duration::from_secs(2),
            collapse_loss: 0.10,
            flap_within: Duration::from_secs(15),
            backoff_min: Duration::from_secs(4),
            backoff_max: Duration::from_secs(30),
            real_rise: 2.0,
            probe_min_every: Duration::from_secs(3),
            probe_max_every: Duration::from_secs(8),
            probe_max_loss: 0.02,
            video_floor_max_loss: 0.02,
            layer_settle: Duration::from_secs(3),
            assumed_bps: [200_000, 600_000, 1_700_000],
            assumed_screen_bps: 400_000,
            assumed_audio_bps: 60_000,
            red_deep_loss: 0.02,
            red_deep_hold: Duration::from_secs(20),
            repair_loss: 0.001,
            repair_min: Duration::from_millis(150),
            repair_max: Duration::from_millis(1500),
            repair_hold: Duration::from_secs(30),
        }
    }
}

/// One video track's layers as the allocator sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct Ladder {
    pub role: TrackRole,
    /// Wire bit rate of each arriving layer, lowest first.
    pub rates: Vec<u64>,
    /// Highest layer index this classroom may get (its `?layer=` preference).
    pub cap: usize,
}

/// Per ladder: the layer index chosen, or `None` for paused.
pub type Allocation = Vec<Option<usize>>;

/// Indices of `ladders` in priority order (stable for equal roles).
fn order(ladders: &[Ladder], priority: &[TrackRole]) -> Vec<usize> {
    let rank = |r: TrackRole| priority.iter().position(|p| *p == r).unwrap_or(usize::MAX);
    let mut idx: Vec<usize> = (0..ladders.len()).collect();
    idx.sort_by_key(|&i| rank(ladders[i].role));
    idx
}

/// Wire cost of the video part of an allocation.
pub fn cost(ladders: &[Ladder], a: &[Option<usize>]) -> u64 {
    ladders
        .iter()
        .zip(a)
        .map(|(l, c)| c.and_then(|i| l.rates.get(i)).copied().unwrap_or(0))
        .sum()
}

/// The best allocation whose video fits in `budget` (already net of audio).
pub fn allocate(budget: u64, ladders: &[Ladder], priority: &[TrackRole]) -> Allocation {
    let mut a: Allocation = vec![None; ladders.len()];
    let mut left = budget;
    let ord = order(ladders, priority);
    for &i in &ord {
        if let Some(&r) = ladders[i].rates.first() {
            if r <= left {
                a[i] = Some(0);
                left -= r;
            }
        }
    }
    for &i in &ord {
        let l = &ladders[i];
        let Some(mut cur) = a[i] else { continue };
        let top = l.cap.min(l.rates.len().saturating_sub(1));
        while cur < top {
            let extra = l.rates[cur + 1].saturating_sub(l.rates[cur]);
            if extra > left {
                break;
            }
            left -= extra;
            cur += 1;
        }
        a[i] = Some(cur);
    }
    a
}

/// The allocation one step better than `a`, in the order [`allocate`] fills: a
/// paused track resumes first, then the highest-priority track that can go up
/// does. `None` when everything is at its cap.
pub fn next_step(
    ladders: &[Ladder],
    a: &[Option<usize>],
    priority: &[TrackRole],
) -> Option<Allocation> {
    let ord = order(ladders, priority);
    for &i in &ord {
        if a[i].is_none() && !ladders[i].rates.is_empty() {
            let mut n = a.to_vec();
            n[i] = Some(0);
            return Some(n);
        }
    }
    for &i in &ord {
        let l = &ladders[i];
        let top = l.cap.min(l.rates.len().saturating_sub(1));
        if let Some(c) = a[i] {
            if c < top {
                let mut n = a.to_vec();
                n[i] = Some(c + 1);
                return Some(n);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam() -> Ladder {
        Ladder {
            role: TrackRole::Camera,
            rates: vec![170_000, 540_000, 1_560_000],
            cap: 2,
        }
    }

    fn screen() -> Ladder {
        Ladder {
            role: TrackRole::Screen,
            rates: vec![120_000, 700_000],
            cap: 1,
        }
    }

    #[test]
    fn camera_only_takes_the_best_layer_that_fits() {
        let p = AdaptConfig::default().priority;
        let l = [cam()];
        assert_eq!(
            allocate(100_000, &l, &p),
            vec![None],
            "below the lowest: paused"
        );
        assert_eq!(allocate(170_000, &l, &p), vec![Some(0)]);
        assert_eq!(allocate(600_000, &l, &p), vec![Some(1)]);
        assert_eq!(allocate(1_559_999, &l, &p), vec![Some(1)]);
        assert_eq!(allocate(5_000_000, &l, &p), vec![Some(2)]);
    }

    #[test]
    fn slides_come_before_the_camera() {
        let p = AdaptConfig::default().priority;
        let l = [cam(), screen()];
        // Only one lowest layer fits: the screen's.
        assert_eq!(allocate(150_000, &l, &p), vec![None, Some(0)]);
        // Both lowest fit; the rest goes to the screen first.
        assert_eq!(allocate(300_000, &l, &p), vec![Some(0), Some(0)]);
        assert_eq!(allocate(900_000, &l, &p), vec![Some(0), Some(1)]);
        assert_eq!(allocate(1_300_000, &l, &p), vec![Some(1), Some(1)]);
        // With the camera first in the ladder the camera wins instead.
        let camera_first = [TrackRole::Camera, TrackRole::Screen];
        assert_eq!(allocate(900_000, &l, &camera_first), vec![Some(1), Some(0)]);
    }

    #[test]
    fn cap_limits_the_top() {
        let p = AdaptConfig::default().priority;
        let mut c = cam();
        c.cap = 1;
        assert_eq!(allocate(10_000_000, &[c], &p), vec![Some(1)]);
    }

    #[test]
    fn next_step_follows_the_fill_order() {
        let p = AdaptConfig::default().priority;
        let l = [cam(), screen()];
        assert_eq!(next_step(&l, &[None, None], &p), Some(vec![None, Some(0)]));
        assert_eq!(
            next_step(&l, &[None, Some(0)], &p),
            Some(vec![Some(0), Some(0)])
        );
        assert_eq!(
            next_step(&l, &[Some(0), Some(0)], &p),
            Some(vec![Some(0), Some(1)])
        );
        assert_eq!(
            next_step(&l, &[Some(0), Some(1)], &p),
            Some(vec![Some(1), Some(1)])
        );
        assert_eq!(next_step(&l, &[Some(2), Some(1)], &p), None);
        // Every step of next_step is what allocate gives at exactly that cost.
        let mut a = vec![None, None];
        while let Some(n) = next_step(&l, &a, &p) {
            assert_eq!(allocate(cost(&l, &n), &l, &p), n);
            a = n;
        }
    }
}
