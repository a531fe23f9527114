//! How deep the voice redundancy (RED) towards a classroom is: each packet carries
//! the previous frame on a clean link, the previous two on a lossy one, so that two
//! voice packets lost in a row are rebuilt too. Lossy: the receiver reports' loss,
//! smoothed over a few reports (one report of a second is noisy: a link losing 1 %
//! at random shows 2 % in about one report of five), reaches
//! [`AdaptConfig::red_deep_loss`]. It goes back to one-deep
//! [`AdaptConfig::red_deep_hold`] after the smoothed loss last did. The deeper redundancy costs the link one more frame
//! a packet, which comes out of the video budget (see `plan::voice_cost`).

use std::time::Instant;

use crate::adapt::AdaptConfig;

/// Weight of a new report in the smoothed loss.
const NEW_REPORT: f32 = 0.3;

#[derive(Debug, Default)]
pub(super) struct VoiceRedundancy {
    /// Reports' loss, smoothed.
    smoothed: Option<f32>,
    /// Two-deep until then.
    deep_until: Option<Instant>,
}

impl VoiceRedundancy {
    pub(super) fn note_loss(&mut self, loss: Option<f32>, now: Instant, ac: &AdaptConfig) {
        let Some(l) = loss else {
            return;
        };
        let s = self.smoothed.map_or(l, |s| s + NEW_REPORT * (l - s));
        self.smoothed = Some(s);
        if s >= ac.red_deep_loss {
            self.deep_until = Some(now + ac.red_deep_hold);
        }
    }

    /// Previous frames each voice packet carries now: 1 or 2.
    pub(super) fn depth(&self, now: Instant) -> u8 {
        if self.deep_until.is_some_and(|t| now < t) {
            2
        } else {
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn two_deep_on_a_lossy_link_and_one_deep_a_while_after() {
        let ac = AdaptConfig::default();
        let t0 = Instant::now();
        let mut r = VoiceRedundancy::default();
        // 1 % at random: reports of 0-3 %, one previous frame is enough.
        for l in [0.01, 0.0, 0.03, 0.01, 0.007, 0.02, 0.0, 0.013] {
            r.note_loss(Some(l), t0, &ac);
            r.note_loss(None, t0, &ac);
            assert_eq!(r.depth(t0), 1, "after a report of {l}");
        }
        // 4 % for a few reports: two previous frames.
        for _ in 0..3 {
            r.note_loss(Some(0.04), t0, &ac);
        }
        assert_eq!(r.depth(t0), 2);
        let later = t0 + ac.red_deep_hold - Duration::from_millis(1);
        assert_eq!(r.depth(later), 2);
        r.note_loss(Some(0.04), later, &ac);
        let again = later + Duration::from_secs(10);
        assert_eq!(r.depth(again), 2, "held from the last lossy report");
        assert_eq!(r.depth(later + ac.red_deep_hold), 1);
    }
}
