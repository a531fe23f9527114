//! Base-layer copies towards a classroom on a long, lossy round trip: a repetition
//! code for the packets that matter. On a satellite hop (600 ms) a lost packet's
//! retransmission arrives long after the receiver's jitter buffer has played the
//! frame, and with VP8 temporal layers every later frame refers back to the base
//! layer: one lost base packet freezes the picture until a retransmission or a
//! keyframe. Sent twice, a base packet is lost only when both copies are (at 0.5 %
//! random loss, 1 in 40 000). The cost is the base layer's rate again, which comes
//! out of the classroom's video budget (see `adapt_subscriber`); a higher temporal
//! layer's loss costs one or two frames, under what a viewer sees as a freeze.
//!
//! Chromium receives ulpfec and flexfec-03 as well, which cost less for the same
//! protection; str0m (0.25) negotiates and sends neither.
//!
//! On: the round trip is at least [`AdaptConfig::copy_rtt`] and the reports' loss,
//! smoothed, at least [`AdaptConfig::copy_loss`]. Off [`AdaptConfig::copy_hold`]
//! after the link last met both, so a clean spell of a few seconds does not flip
//! the layers it pays for.

use std::time::{Duration, Instant};

use crate::adapt::AdaptConfig;

/// Weight of a new report in the smoothed loss (reports come about once a second).
const NEW_REPORT: f32 = 0.2;

#[derive(Debug, Default)]
pub(super) struct BaseCopies {
    smoothed: Option<f32>,
    until: Option<Instant>,
}

impl BaseCopies {
    pub(super) fn note(
        &mut self,
        loss: Option<f32>,
        rtt: Option<Duration>,
        now: Instant,
        ac: &AdaptConfig,
    ) {
        let Some(l) = loss else {
            return;
        };
        let s = self.smoothed.map_or(l, |s| s + NEW_REPORT * (l - s));
        self.smoothed = Some(s);
        if s >= ac.copy_loss && rtt.is_some_and(|r| r >= ac.copy_rtt) {
            self.until = Some(now + ac.copy_hold);
        }
    }

    pub(super) fn on(&self, now: Instant) -> bool {
        self.until.is_some_and(|t| now < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(loss: f32, rtt_ms: u64, secs: u64) -> (BaseCopies, Instant) {
        let ac = AdaptConfig::default();
        let mut c = BaseCopies::default();
        let t0 = Instant::now();
        for s in 0..secs {
            let rtt = Some(Duration::from_millis(rtt_ms));
            c.note(Some(loss), rtt, t0 + Duration::from_secs(s), &ac);
        }
        (c, t0 + Duration::from_secs(secs))
    }

    #[test]
    fn on_for_a_long_lossy_round_trip_only() {
        assert!(run(0.005, 620, 10).0.on(run(0.005, 620, 10).1), "satellite");
        let (c, t) = run(0.0, 620, 10);
        assert!(!c.on(t), "satellite without loss");
        let (c, t) = run(0.01, 100, 10);
        assert!(!c.on(t), "a lossy link whose retransmissions come in time");
    }

    #[test]
    fn off_a_while_after_the_loss_stops() {
        let ac = AdaptConfig::default();
        let (mut c, t) = run(0.005, 620, 10);
        let rtt = Some(Duration::from_millis(620));
        for s in 0..40 {
            let now = t + Duration::from_secs(s);
            c.note(Some(0.0), rtt, now, &ac);
            if s < 10 {
                assert!(c.on(now), "{s} s after");
            }
        }
        assert!(!c.on(t + Duration::from_secs(40)));
    }
}
