//! Re-probes ([`crate::Output::BweReprobe`]) while a better layer does not fit. A
//! probe that does not raise the estimate doubles the wait before the next one (from
//! [`AdaptConfig::probe_min_every`] up to [`AdaptConfig::probe_max_every`]), so a
//! link that is truly thin is not hammered; one that does resets the wait.

use std::time::{Duration, Instant};

use crate::adapt::AdaptConfig;

/// An estimate more than this times the one the last re-probe started from was
/// raised by it.
const GREW: f64 = 1.1;

/// The re-probe schedule of one link.
#[derive(Debug, Default)]
pub(super) struct Probing {
    /// When the next re-probe may go out, once the estimate is stuck below the
    /// next step.
    next_at: Option<Instant>,
    every: Duration,
    /// The estimate when the last re-probe was asked for.
    from: u64,
}

impl Probing {
    /// At each evaluation: `stuck` while the estimate is below what the next step up
    /// sends and the link is quiet. Returns the estimate to re-probe from when a
    /// re-probe is due. While not stuck the clock is stopped, and starts again from
    /// `probe_min_every` when it is.
    pub(super) fn poll(
        &mut self,
        stuck: bool,
        estimate: u64,
        now: Instant,
        ac: &AdaptConfig,
    ) -> Option<u64> {
        if !stuck {
            self.next_at = None;
            return None;
        }
        if now < *self.next_at.get_or_insert(now + ac.probe_min_every) {
            return None;
        }
        let grew = estimate as f64 > self.from as f64 * GREW;
        self.every = if grew || self.every.is_zero() {
            ac.probe_min_every
        } else {
            (self.every * 2).min(ac.probe_max_every)
        };
        self.from = estimate;
        self.next_at = Some(now + self.every);
        Some(estimate)
    }
}
