//! The budget after heavy loss. A queue that overflows passes about
//! estimate × (1 - loss), so that is all the budget there is, and the cut holds for
//! [`AdaptConfig::loss_hold`]: the next report shows less loss only because less was
//! sent.

use std::time::Instant;

use crate::adapt::AdaptConfig;

/// A budget limit after heavy loss, and until when it holds.
#[derive(Debug, Default)]
pub(super) struct LossCap {
    cap: Option<(u64, Instant)>,
}

impl LossCap {
    /// Acts on a reported loss above [`AdaptConfig::loss_cut`]: the cap is `budget`
    /// (before any cap) less the loss, and after a collapse
    /// ([`AdaptConfig::collapse_loss`]) no more than what got through of `sent_bps`,
    /// though never below the voice. Returns whether the report was acted on.
    pub(super) fn report(
        &mut self,
        loss: f32,
        budget: f64,
        sent_bps: u64,
        audio_bps: u64,
        now: Instant,
        ac: &AdaptConfig,
    ) -> bool {
        if loss > ac.loss_cut {
            let kept = 1.0 - f64::from(loss.min(0.95));
            let mut cut = (budget * kept) as u64;
            if loss >= ac.collapse_loss {
                // What was sent times what got through is what the link carries now,
                // whatever the (slower) estimate still says.
                let delivered = (sent_bps as f64 * kept) as u64;
                cut = cut.min(delivered.max(audio_bps));
            }
            self.cap = Some((cut, now + ac.loss_hold));
            true
        } else {
            false
        }
    }

    /// `budget` under the cap while it holds; a cap whose time is up is dropped.
    pub(super) fn limit(&mut self, budget: u64, now: Instant) -> u64 {
        match self.cap {
            Some((cap, until)) if now < until => budget.min(cap),
            _ => {
                self.cap = None;
                budget
            }
        }
    }

    /// The cap in force as of the last [`LossCap::limit`].
    pub(super) fn cap(&self) -> Option<u64> {
        self.cap.map(|(cap, _)| cap)
    }
}
