//! Step-up backoff at a layer boundary. A step down within
//! [`AdaptConfig::flap_within`] of a step up means the step up did not last: the
//! link sits at a layer boundary. Each such flap doubles how long the next step up
//! waits for headroom (from [`AdaptConfig::backoff_min`] up to
//! [`AdaptConfig::backoff_max`]); a step up that lasts `flap_within` clears it.
//! Steady capacity then costs a switch every half minute at most, not every few
//! seconds. A video budget [`AdaptConfig::real_rise`] times the one at the last step
//! down is a link that really got better: no backoff.

use std::time::{Duration, Instant};

use crate::adapt::AdaptConfig;

/// When the layers last stepped up and down, and the backoff that follows.
#[derive(Debug, Default)]
pub(super) struct FlapBackoff {
    last_up: Option<Instant>,
    last_down: Option<Instant>,
    /// The video budget at the last step down.
    down_budget: u64,
    /// Extra headroom time a step up needs; zero once a step up has lasted.
    extra: Duration,
}

impl FlapBackoff {
    /// Clears the backoff when the last step up has lasted, or when `video_budget`
    /// is a real rise over the one at the last step down.
    pub(super) fn refresh(&mut self, video_budget: u64, now: Instant, ac: &AdaptConfig) {
        if let Some(up) = self.last_up {
            let lasted = now.saturating_duration_since(up) >= ac.flap_within
                && self.last_down.is_none_or(|d| d < up);
            if lasted {
                self.extra = Duration::ZERO;
            }
        }
        if video_budget as f64 > self.down_budget as f64 * ac.real_rise {
            self.extra = Duration::ZERO;
        }
    }

    /// A step down at `video_budget`; `lighter` when it forwards less than before
    /// (not only another allocation of the same cost). Only that undoes a step up.
    pub(super) fn stepped_down(
        &mut self,
        video_budget: u64,
        lighter: bool,
        now: Instant,
        ac: &AdaptConfig,
    ) {
        self.last_down = Some(now);
        self.down_budget = video_budget;
        let flapped = self
            .last_up
            .is_some_and(|t| now.saturating_duration_since(t) < ac.flap_within);
        if flapped && lighter {
            // max then min, not clamp: a config with min over max must not panic.
            self.extra = (self.extra * 2).max(ac.backoff_min).min(ac.backoff_max);
        }
    }

    pub(super) fn stepped_up(&mut self, now: Instant) {
        self.last_up = Some(now);
    }

    /// How long a better allocation must fit before a step up.
    pub(super) fn hold(&self, ac: &AdaptConfig) -> Duration {
        ac.up_hold + self.extra
    }

    /// Whether [`AdaptConfig::down_dwell`] has passed since the last step down.
    pub(super) fn settled(&self, now: Instant, ac: &AdaptConfig) -> bool {
        self.last_down
            .is_none_or(|t| now.saturating_duration_since(t) >= ac.down_dwell)
    }
}
