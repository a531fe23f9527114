//! Snapshots of the relay for metrics and the operator page.

use std::time::{Duration, Instant};

use super::{Audience, FloorState, Kind, Relay};
use crate::ids::{Mid, PeerId, Rid};

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_forwarded: u64,
    pub bytes_forwarded: u64,
    pub keyframe_requests_sent: u64,
    pub layer_switches: u64,
    /// Times a classroom's video track was paused for a thin link.
    pub video_pauses: u64,
    /// Talk-back packets dropped because their school did not hold the floor.
    pub talk_dropped: u64,
}

/// A snapshot of one classroom, for metrics and the operator page.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriberStats {
    pub peer: PeerId,
    pub school: String,
    /// A classroom, or the teacher's hearing session.
    pub audience: Audience,
    pub bitrate_bps: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Per slot: mid, and the rid forwarded now (`Some(None)` = a stream without rids).
    pub layers: Vec<(Mid, Option<Option<Rid>>)>,
    pub switches: u64,
    /// Send-side estimate towards this classroom, when the edge measures one.
    pub estimate_bps: Option<u64>,
    /// The minimum playout delay its video asks for now (long, lossy round trips).
    pub playout_min: Option<Duration>,
    /// Where that estimate started when the classroom joined: what the school
    /// sustained before (the warm start), or the configured default.
    pub start_bps: Option<u64>,
    /// Media budget last allocated (wire bit/s, audio included); 0 without estimate.
    pub budget_bps: u64,
    pub loss: Option<f32>,
    pub rtt: Option<Duration>,
    /// Video tracks held back now because the link is too thin.
    pub paused_tracks: usize,
    /// Times a video track was paused.
    pub pauses: u64,
    /// Per video slot in m-line order (camera first, then screen): the rid
    /// forwarded now (as in `layers`), and whether it is held back for a thin link.
    pub video: Vec<(Option<Option<Rid>>, bool)>,
    /// Keyframe requests from this classroom: each is a picture its decoder lost
    /// (frozen until the keyframe comes), where a layer switch loses none.
    pub picture_losses: u64,
}

/// Bit rate per layer of one teacher track: (rid, bit/s).
pub type LayerRates = Vec<(Option<Rid>, u64)>;

/// A snapshot of one lesson.
#[derive(Debug, Clone, PartialEq)]
pub struct LessonStats {
    pub lesson: String,
    pub publisher: Option<PeerId>,
    /// Per teacher track: mid and per layer (rid, bit/s).
    pub tracks: Vec<(Mid, LayerRates)>,
    pub subscribers: Vec<SubscriberStats>,
    /// Classrooms' talk-back sessions.
    pub talkers: Vec<TalkerStats>,
    pub floor: FloorState,
}

/// A snapshot of one classroom's talk-back session.
#[derive(Debug, Clone, PartialEq)]
pub struct TalkerStats {
    pub peer: PeerId,
    pub school: String,
    /// Its voice now, floor or not (bit/s).
    pub bitrate_bps: u64,
    /// Packets dropped because its school did not hold the floor.
    pub dropped: u64,
    /// Where its camera picture is shown: (the teacher's hearing session, m-line).
    pub shown_on: Vec<(PeerId, Mid)>,
}

impl Relay {
    /// Snapshot of every lesson, sorted by name.
    pub fn stats(&self, now: Instant) -> Vec<LessonStats> {
        let idle = self.cfg.layer_idle;
        let mut v: Vec<LessonStats> = self
            .lessons
            .iter()
            .map(|(name, l)| LessonStats {
                lesson: name.clone(),
                publisher: l.publisher.as_ref().map(|p| p.peer),
                tracks: l
                    .publisher
                    .iter()
                    .flat_map(|p| &p.tracks)
                    .map(|t| {
                        (
                            t.mid,
                            t.layers
                                .iter()
                                .map(|l| (l.rid, l.meter.bps(now, idle)))
                                .collect(),
                        )
                    })
                    .collect(),
                subscribers: l
                    .subscribers
                    .iter()
                    .map(|s| SubscriberStats {
                        peer: s.peer,
                        school: s.school.clone(),
                        audience: s.audience,
                        bitrate_bps: s.sent.bps(now, idle),
                        packets: s.sent.total_packets,
                        bytes: s.sent.total_bytes,
                        layers: s
                            .slots
                            .iter()
                            .map(|sl| (sl.spec.mid, sl.current.map(|c| c.rid)))
                            .collect(),
                        switches: s.slots.iter().map(|sl| sl.switches).sum(),
                        estimate_bps: s.link.estimate,
                        playout_min: s.link.playout_min(now),
                        start_bps: s.start_bps,
                        budget_bps: s.link.budget,
                        loss: s.link.last_loss,
                        rtt: s.link.rtt,
                        paused_tracks: s.slots.iter().filter(|sl| sl.paused).count(),
                        pauses: s.link.pauses,
                        video: s
                            .slots
                            .iter()
                            .filter(|sl| sl.spec.kind == Kind::Video && !sl.class_feed)
                            .map(|sl| (sl.current.map(|c| c.rid), sl.paused))
                            .collect(),
                        picture_losses: s.picture_losses,
                    })
                    .collect(),
                talkers: l
                    .talkers
                    .iter()
                    .map(|t| TalkerStats {
                        peer: t.peer,
                        school: t.school.clone(),
                        bitrate_bps: t.meter.bps(now, idle),
                        dropped: t.dropped,
                        shown_on: super::talk::picture_shown_on(l, t.peer),
                    })
                    .collect(),
                floor: l.floor.clone(),
            })
            .collect();
        v.sort_by(|a, b| a.lesson.cmp(&b.lesson));
        v
    }
}
