//! What the edge reports: its counts and every lesson's state, for `/metrics` and the
//! operator, and how one media worker's report folds into another's.

use std::time::Instant;

use relay_core::{LessonStats, Totals};

use super::{Edge, Role};
use crate::delay::DelayHistogram;

/// Counts and per-lesson state, for /metrics and the operator.
#[derive(Debug, Clone)]
pub struct EdgeStats {
    pub lessons: Vec<LessonStats>,
    pub totals: Totals,
    pub publishers: usize,
    pub subscribers: usize,
    /// Receive-to-send time of forwarded packets, since start (see [`crate::delay`]):
    /// processing plus the send pacer's hold.
    pub forward_delay: DelayHistogram,
    /// Processing time of teacher datagrams that were forwarded: from the read to
    /// the end of their handling (str0m receive, the core, every classroom's write
    /// and SRTP), measured by the driver.
    pub processing_delay: DelayHistogram,
    /// Per media worker: sessions and lessons it runs (one entry per worker).
    pub workers: Vec<WorkerLoad>,
    /// Panics inside str0m that were contained to one session (or one offer).
    pub contained_panics: u64,
    /// Sessions dropped because they never connected within [`CONNECT_TIMEOUT`].
    pub connect_timeouts: u64,
    /// Datagrams that belonged to no session (dropped).
    pub stray_datagrams: u64,
}

/// What one media worker carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerLoad {
    pub sessions: usize,
    pub lessons: usize,
    /// Datagrams dropped because the worker's socket stayed full.
    pub send_drops: u64,
}

impl EdgeStats {
    /// Fold another worker's stats into these.
    pub fn merge(&mut self, o: EdgeStats) {
        self.lessons.extend(o.lessons);
        self.lessons.sort_by(|a, b| a.lesson.cmp(&b.lesson));
        let (t, u) = (&mut self.totals, o.totals);
        t.packets_in += u.packets_in;
        t.bytes_in += u.bytes_in;
        t.packets_forwarded += u.packets_forwarded;
        t.bytes_forwarded += u.bytes_forwarded;
        t.keyframe_requests_sent += u.keyframe_requests_sent;
        t.layer_switches += u.layer_switches;
        t.video_pauses += u.video_pauses;
        self.publishers += o.publishers;
        self.subscribers += o.subscribers;
        self.forward_delay.merge(&o.forward_delay);
        self.processing_delay.merge(&o.processing_delay);
        self.workers.extend(o.workers);
        self.contained_panics += o.contained_panics;
        self.connect_timeouts += o.connect_timeouts;
        self.stray_datagrams += o.stray_datagrams;
    }
}

impl Edge {
    /// A snapshot for metrics.
    pub fn stats(&self, now: Instant) -> EdgeStats {
        let lessons = self.relay.stats(now);
        let talkers: usize = lessons.iter().map(|l| l.talkers.len()).sum();
        EdgeStats {
            lessons,
            totals: self.relay.totals(),
            // Teachers: classrooms' microphones publish too.
            publishers: self
                .peers
                .values()
                .filter(|p| p.role == Role::Publisher)
                .count()
                .saturating_sub(talkers),
            subscribers: self
                .peers
                .values()
                .filter(|p| p.role == Role::Subscriber)
                .count(),
            forward_delay: self.forward_delay.clone(),
            processing_delay: self.processing_delay.clone(),
            workers: vec![WorkerLoad {
                sessions: self.peers.len(),
                lessons: self.relay.lesson_count(),
                send_drops: 0,
            }],
            contained_panics: self.contained_panics,
            connect_timeouts: self.connect_timeouts,
            stray_datagrams: self.stray_datagrams,
        }
    }
}
