//! Keyframe requests towards the teacher, shared across classrooms.
//!
//! Each classroom that needs a keyframe (joined, switching layer, lost picture) asks;
//! the teacher's encoder gets at most one request per source stream per interval. A
//! request made inside the interval is not dropped: it is deferred to the end of the
//! interval, so a classroom joining 100 ms after another still gets its picture.

use std::time::{Duration, Instant};

/// Throttle for one source stream (one track, one simulcast layer).
#[derive(Debug, Clone, Default)]
pub struct KeyframeThrottle {
    last_sent: Option<Instant>,
    pending: bool,
    /// Requests folded into an earlier or deferred one (for stats).
    pub suppressed: u64,
    /// Requests actually sent.
    pub sent: u64,
}

impl KeyframeThrottle {
    /// Ask for a keyframe. Returns true when the request must go out now.
    pub fn request(&mut self, now: Instant, interval: Duration) -> bool {
        if self.due(now, interval) {
            self.mark_sent(now);
            true
        } else {
            if self.pending {
                self.suppressed += 1;
            }
            self.pending = true;
            false
        }
    }

    /// When a deferred request becomes due, if one is waiting.
    pub fn poll_timeout(&self, interval: Duration) -> Option<Instant> {
        // `pending` is only set after a refused request, which implies `last_sent`.
        self.last_sent
            .filter(|_| self.pending)
            .map(|t| t + interval)
    }

    /// Send a deferred request if it is due. Returns true when it must go out now.
    pub fn handle_timeout(&mut self, now: Instant, interval: Duration) -> bool {
        if self.pending && self.due(now, interval) {
            self.mark_sent(now);
            true
        } else {
            false
        }
    }

    /// A keyframe arrived: a deferred request is no longer needed.
    pub fn keyframe_seen(&mut self) {
        if self.pending {
            self.suppressed += 1;
        }
        self.pending = false;
    }

    fn due(&self, now: Instant, interval: Duration) -> bool {
        self.last_sent
            .is_none_or(|t| now.saturating_duration_since(t) >= interval)
    }

    fn mark_sent(&mut self, now: Instant) {
        self.last_sent = Some(now);
        self.pending = false;
        self.sent += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_per_interval_and_deferred_not_lost() {
        let iv = Duration::from_millis(500);
        let t0 = Instant::now();
        let mut k = KeyframeThrottle::default();
        assert!(k.request(t0, iv));
        // Three classrooms more within the interval: nothing goes out now...
        assert!(!k.request(t0 + Duration::from_millis(100), iv));
        assert!(!k.request(t0 + Duration::from_millis(120), iv));
        assert!(!k.request(t0 + Duration::from_millis(130), iv));
        assert_eq!(k.poll_timeout(iv), Some(t0 + iv));
        assert!(!k.handle_timeout(t0 + Duration::from_millis(499), iv));
        // ...one deferred request at the end of the interval.
        assert!(k.handle_timeout(t0 + iv, iv));
        assert_eq!(k.poll_timeout(iv), None);
        assert_eq!((k.sent, k.suppressed), (2, 2));
    }

    #[test]
    fn keyframe_cancels_deferred_request() {
        let iv = Duration::from_millis(500);
        let t0 = Instant::now();
        let mut k = KeyframeThrottle::default();
        assert!(k.request(t0, iv));
        assert!(!k.request(t0 + Duration::from_millis(10), iv));
        k.keyframe_seen();
        assert!(!k.handle_timeout(t0 + iv, iv));
        assert_eq!(k.sent, 1);
    }
}
