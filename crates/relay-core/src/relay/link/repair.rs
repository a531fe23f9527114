//! How long a classroom's receiver should hold each video frame before it plays,
//! so that a lost packet's retransmission arrives in time: the minimum of the
//! playout-delay header extension (`http://www.webrtc.org/experiments/rtp-hdrext/playout-delay`,
//! which Chromium applies to its video jitter buffer), per classroom.
//!
//! On a satellite hop (620 ms) Chromium's jitter buffer holds a frame about
//! 100 ms, so a retransmission (one round trip after the loss) comes long after the
//! frame was due, and with VP8 temporal layers every later frame waits on a lost
//! base-layer frame: the picture freezes until the repair. Asked to hold frames a
//! round trip and a half, the receiver plays the repaired frame on time. It costs
//! the classroom delay, not bandwidth: on a thin link, bandwidth is what is short.
//! Forward error correction (ulpfec, flexfec-03), which Chromium also receives,
//! would cost bandwidth and no delay; str0m (0.25) negotiates and sends neither.
//!
//! Asked for while the reports' loss, smoothed, is at least
//! [`AdaptConfig::repair_loss`] (reports of [`AdaptConfig::loss_cut`] or more are
//! congestion and left out) and the hold it takes is at least
//! [`AdaptConfig::repair_min`]; the hold is the round trip, half of it more (at
//! least 30 ms) for the queue a retransmission may wait behind and its jitter,
//! and 60 ms for the receiver to notice the gap and the retransmission to be
//! sent, at most [`AdaptConfig::repair_max`]. (Measured in the replay's satellite
//! lesson, seed 1, on a smoothed round trip: a quarter more left 13 freezes in 4
//! minutes, half 3, a whole round trip more 2; without the hold, 19.)
//! The round trip is the least seen over the last 10–20 s: the path's own, not a
//! queue's (a congested link's round trip grows for a while, and a hold asked for
//! then would stay long after). The hold rises at once when that needs a tenth
//! more, and falls by at most [`FALL_PER_REPORT`] a report, so it does not flap
//! (a receiver moves its delay about 100 ms a second anyway).
//! It ends [`AdaptConfig::repair_hold`] after the link last lost enough: then 0
//! (the receiver's own choice) is sent, since a receiver keeps the last value.

use std::time::{Duration, Instant};

use crate::adapt::AdaptConfig;

/// Weight of a new report in the smoothed loss (reports come about once a second).
const NEW_REPORT: f32 = 0.2;
/// How much the hold may fall a report.
const FALL_PER_REPORT: Duration = Duration::from_millis(50);
/// The least round trip is kept per window of this length, over two windows.
const RTT_WINDOW: Duration = Duration::from_secs(10);
/// For the receiver to see the gap and ask, and for the retransmission to leave.
const ASK_AND_RESEND: Duration = Duration::from_millis(60);

#[derive(Debug, Default)]
pub(super) struct RepairDelay {
    smoothed: Option<f32>,
    /// The least round trip in the window that started then, and in the one before.
    rtt: Option<(Duration, Instant)>,
    rtt_before: Option<Duration>,
    /// The hold asked for now, and until when.
    hold: Option<(Duration, Instant)>,
    /// A hold was asked for once: from then on the value is always sent.
    asked: bool,
}

/// The hold a round trip takes, in the extension's 10 ms steps.
fn hold_for(rtt: Duration) -> Duration {
    let d = rtt + (rtt / 2).max(Duration::from_millis(30)) + ASK_AND_RESEND;
    Duration::from_millis(d.as_millis().div_ceil(10) as u64 * 10)
}

impl RepairDelay {
    pub(super) fn note(
        &mut self,
        loss: Option<f32>,
        rtt: Option<Duration>,
        now: Instant,
        ac: &AdaptConfig,
    ) {
        // A report losing `loss_cut` or more is congestion (the budget is cut for
        // it), not a link that drops packets now and then: it is left out.
        let Some(l) = loss.filter(|&l| l < ac.loss_cut) else {
            return;
        };
        let s = self.smoothed.map_or(l, |s| s + NEW_REPORT * (l - s));
        self.smoothed = Some(s);
        let Some(sample) = rtt else {
            return;
        };
        let rtt = self.least_rtt(sample, now);
        let want = hold_for(rtt).min(ac.repair_max);
        // (A maximum under the minimum makes every hold too short: off.)
        if s < ac.repair_loss || want < ac.repair_min {
            return;
        }
        let held = self.hold.filter(|&(_, until)| now < until).map(|h| h.0);
        let d = match held {
            Some(h) if want * 10 > h * 11 => want,
            Some(h) if want >= h => h,
            Some(h) => want.max(h.saturating_sub(FALL_PER_REPORT)),
            None => want,
        };
        self.hold = Some((d, now + ac.repair_hold));
        self.asked = true;
    }

    /// The least round trip over this window and the one before, with `sample`.
    fn least_rtt(&mut self, sample: Duration, now: Instant) -> Duration {
        match self.rtt {
            Some((least, since)) if now.saturating_duration_since(since) < RTT_WINDOW => {
                self.rtt = Some((least.min(sample), since));
            }
            Some((least, _)) => {
                self.rtt_before = Some(least);
                self.rtt = Some((sample, now));
            }
            None => self.rtt = Some((sample, now)),
        }
        let least = self.rtt.map_or(sample, |r| r.0);
        self.rtt_before.map_or(least, |b| b.min(least))
    }

    /// The minimum playout delay to put on this classroom's video now: `None`
    /// until a hold was first asked for, then the hold, or zero once it ended.
    pub(super) fn playout_min(&self, now: Instant) -> Option<Duration> {
        if !self.asked {
            return None;
        }
        Some(
            self.hold
                .filter(|&(_, until)| now < until)
                .map_or(Duration::ZERO, |h| h.0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn link(loss: f32, rtt_ms: u64, secs: u32) -> (RepairDelay, Instant) {
        let ac = AdaptConfig::default();
        let mut r = RepairDelay::default();
        let t0 = Instant::now();
        for s in 0..secs {
            let rtt = Some(Duration::from_millis(rtt_ms));
            r.note(Some(loss), rtt, t0 + S * s, &ac);
        }
        (r, t0 + S * secs)
    }

    #[test]
    fn a_lossy_long_round_trip_holds_frames_a_round_trip_and_a_half() {
        let (r, t) = link(0.005, 620, 10);
        assert_eq!(r.playout_min(t), Some(Duration::from_millis(990)));
        let (r, t) = link(0.01, 100, 10);
        assert_eq!(r.playout_min(t), Some(Duration::from_millis(210)), "3G");
        let (r, t) = link(0.0, 620, 10);
        assert_eq!(r.playout_min(t), None, "no loss: nothing to repair");
        let (r, t) = link(0.01, 40, 10);
        assert_eq!(r.playout_min(t), None, "a short round trip repairs in time");
        let (r, t) = link(0.3, 620, 10);
        assert_eq!(
            r.playout_min(t),
            None,
            "a collapse is congestion, not link loss"
        );
        let (r, t) = link(0.01, 3000, 10);
        assert_eq!(r.playout_min(t), Some(AdaptConfig::default().repair_max));
    }

    #[test]
    fn a_maximum_under_the_minimum_turns_it_off() {
        let ac = AdaptConfig {
            repair_max: Duration::ZERO,
            ..AdaptConfig::default()
        };
        let mut r = RepairDelay::default();
        let t0 = Instant::now();
        for s in 0..10 {
            r.note(
                Some(0.01),
                Some(Duration::from_millis(620)),
                t0 + S * s,
                &ac,
            );
        }
        assert_eq!(r.playout_min(t0 + S * 10), None);
    }

    #[test]
    fn the_hold_follows_the_least_round_trip_and_ends_at_zero() {
        let ac = AdaptConfig::default();
        let (mut r, t) = link(0.005, 620, 10);
        let first = r.playout_min(t).unwrap();
        let rtt = |ms| Some(Duration::from_millis(ms));
        // A queue's longer round trips within the windows do not move it.
        for s in 0..5 {
            r.note(Some(0.005), rtt(1500), t + S * s, &ac);
        }
        assert_eq!(r.playout_min(t + S * 5), Some(first), "a queue for a while");
        // A longer path (every sample for 20 s and more): it rises.
        for s in 5..40 {
            r.note(Some(0.005), rtt(900), t + S * s, &ac);
        }
        let t = t + S * 40;
        assert_eq!(r.playout_min(t), Some(Duration::from_millis(1410)));
        // Back to the short path: down 50 ms a report.
        for s in 0..3 {
            r.note(Some(0.005), rtt(620), t + S * s, &ac);
        }
        assert_eq!(r.playout_min(t + S * 3), Some(Duration::from_millis(1260)));
        for s in 3..60 {
            r.note(Some(0.0), rtt(620), t + S * s, &ac);
        }
        assert_eq!(
            r.playout_min(t + S * 60),
            Some(Duration::ZERO),
            "ended, and said so"
        );
    }
}
