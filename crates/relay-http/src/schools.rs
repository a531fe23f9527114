//! One line per school link: several classrooms (devices) of one school share its
//! link, so their rates, estimates and budgets add up, and the worst loss and RTT
//! stand for the link. Used by `/metrics` and `/api/lessons`.

use std::collections::BTreeMap;

use relay_webrtc::EdgeStats;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct School {
    pub bitrate: u64,
    pub classrooms: usize,
    /// Classrooms with a send-side estimate so far.
    pub estimated: usize,
    pub estimate: u64,
    pub budget: u64,
    pub loss: f32,
    pub rtt_ms: u64,
    pub paused: usize,
    pub switches: u64,
    pub pauses: u64,
    pub picture_losses: u64,
}

/// Schools keyed by (lesson, school id).
pub fn by_school(s: &EdgeStats) -> BTreeMap<(&str, &str), School> {
    let mut schools: BTreeMap<(&str, &str), School> = BTreeMap::new();
    for l in &s.lessons {
        // The teacher's hearing session is no school's link.
        for sub in l
            .subscribers
            .iter()
            .filter(|s| s.audience == relay_core::Audience::Classroom)
        {
            let k = schools.entry((&l.lesson, &sub.school)).or_default();
            k.bitrate += sub.bitrate_bps;
            k.classrooms += 1;
            k.estimated += sub.estimate_bps.is_some() as usize;
            k.estimate += sub.estimate_bps.unwrap_or(0);
            k.budget += sub.budget_bps;
            k.loss = k.loss.max(sub.loss.unwrap_or(0.0));
            k.rtt_ms = k.rtt_ms.max(sub.rtt.map_or(0, |r| r.as_millis() as u64));
            k.paused += sub.paused_tracks;
            k.switches += sub.switches;
            k.pauses += sub.pauses;
            k.picture_losses += sub.picture_losses;
        }
    }
    schools
}

impl School {
    /// The link's state in words an operator can act on.
    pub fn health(&self) -> String {
        let kbps = |b: u64| b / 1000;
        if self.estimated == 0 {
            return "measuring: no bandwidth estimate yet".into();
        }
        if self.paused > 0 {
            return format!(
                "too thin for video: audio only on {} track(s); the link carries about {} kbit/s",
                self.paused,
                kbps(self.estimate)
            );
        }
        if self.loss >= 0.05 {
            return format!(
                "lossy: {:.1}% of packets lost, video held at a lower layer",
                self.loss * 100.0
            );
        }
        if self.rtt_ms >= 400 {
            return format!(
                "slow: {} ms round trip (satellite-like); the picture is fine, talk-back is delayed",
                self.rtt_ms
            );
        }
        format!(
            "good: about {} kbit/s available, {} kbit/s in use",
            kbps(self.estimate),
            kbps(self.bitrate)
        )
    }
}

/// Three classrooms of two schools in one lesson, for tests.
#[cfg(test)]
pub(crate) fn fixture() -> EdgeStats {
    use relay_core::{LessonStats, PeerId, SubscriberStats, Totals};
    let sub = |peer, school: &str, bps| SubscriberStats {
        peer: PeerId(peer),
        school: school.into(),
        audience: relay_core::Audience::Classroom,
        bitrate_bps: bps,
        packets: 1,
        bytes: 1,
        layers: vec![],
        switches: 1,
        estimate_bps: Some(bps * 2),
        start_bps: Some(500_000),
        playout_min: None,
        budget_bps: bps,
        loss: Some(0.01),
        rtt: Some(std::time::Duration::from_millis(80)),
        paused_tracks: 0,
        pauses: 0,
        picture_losses: 2,
        video: vec![],
    };
    EdgeStats {
        lessons: vec![LessonStats {
            lesson: "math".into(),
            publisher: Some(PeerId(1)),
            tracks: vec![],
            subscribers: vec![sub(2, "a", 1000), sub(3, "a", 500), sub(4, "b\"x", 7)],
            talkers: vec![],
            floor: Default::default(),
        }],
        totals: Totals {
            packets_forwarded: 42,
            ..Default::default()
        },
        publishers: 1,
        subscribers: 3,
        forward_delay: Default::default(),
        processing_delay: Default::default(),
        workers: vec![
            relay_webrtc::WorkerLoad {
                sessions: 1,
                lessons: 1,
                send_drops: 0,
            },
            relay_webrtc::WorkerLoad {
                sessions: 3,
                lessons: 1,
                send_drops: 0,
            },
        ],
        contained_panics: 0,
        connect_timeouts: 0,
        stray_datagrams: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_a_school_and_words_its_health() {
        let mut s = fixture();
        let a = by_school(&s)[&("math", "a")].clone();
        assert_eq!(
            (a.classrooms, a.bitrate, a.estimate, a.switches),
            (2, 1500, 3000, 2)
        );
        assert!(
            a.health().starts_with("good: about 3 kbit/s available"),
            "{}",
            a.health()
        );
        s.lessons[0].subscribers[2].paused_tracks = 1;
        s.lessons[0].subscribers[0].loss = Some(0.2);
        let m = by_school(&s);
        assert!(m[&("math", "b\"x")]
            .health()
            .starts_with("too thin for video"));
        assert!(m[&("math", "a")].health().starts_with("lossy: 20.0%"));
        for sub in &mut s.lessons[0].subscribers {
            sub.estimate_bps = None;
        }
        assert!(by_school(&s)[&("math", "a")]
            .health()
            .starts_with("measuring"));
    }
}
