//! What each teacher track offers at one moment, and what the teacher's voice costs
//! a classroom's link.

use std::time::Instant;

use super::super::{Kind, Publisher, RelayConfig, Subscriber};
use crate::adapt::TrackRole;
use crate::ids::{Mid, Rid};
use crate::layers::ranked_active;

/// Per-packet wire overhead counted in measured rates (see `RateMeter`), less the
/// 4 bytes a RED header adds: 56 bytes at 50 voice packets a second.
const RED_SAVED_BPS: u64 = 56 * 8 * 50;

/// What voice costs on this classroom's link: the teacher's, and the floor's while
/// another school holds it and the classroom hears it. With RED each packet also
/// carries the previous frame, or two (see `crate::red` and `VoiceRedundancy`),
/// under one packet's overhead.
pub(super) fn voice_cost(s: &Subscriber, plan: &LessonPlan, now: Instant) -> u64 {
    let depth = u64::from(s.link.red_depth(now));
    let cost = |bps: u64, red: bool| {
        if red {
            ((1 + depth) * bps)
                .saturating_sub(depth * RED_SAVED_BPS)
                .max(bps)
        } else {
            bps
        }
    };
    let audio = |feed: bool| {
        s.slots
            .iter()
            .filter(move |sl| sl.spec.kind == Kind::Audio && sl.class_feed == feed)
    };
    let teacher = cost(plan.audio_bps, audio(false).any(|sl| sl.spec.redundant));
    let floor = match (&plan.floor, audio(true).next()) {
        (Some((school, bps)), Some(slot)) if *school != s.school => cost(*bps, slot.spec.redundant),
        _ => 0,
    };
    teacher + floor
}

/// One teacher track as layer choice sees it at one moment.
#[derive(Debug)]
pub(in crate::relay) struct TrackPlan {
    pub(in crate::relay) mid: Mid,
    pub(in crate::relay) kind: Kind,
    pub(in crate::relay) role: TrackRole,
    /// Arriving layers, lowest first, and their wire rates.
    pub(in crate::relay) rids: Vec<Option<Rid>>,
    pub(in crate::relay) rates: Vec<u64>,
}

#[derive(Debug, Default)]
pub(in crate::relay) struct LessonPlan {
    pub(in crate::relay) tracks: Vec<TrackPlan>,
    pub(in crate::relay) audio_bps: u64,
    /// The school holding the floor and what its voice arrives at.
    pub(in crate::relay) floor: Option<(String, u64)>,
}

impl LessonPlan {
    pub(in crate::relay) fn new(p: &Publisher, now: Instant, cfg: &RelayConfig) -> LessonPlan {
        let ac = &cfg.adapt;
        let idle = cfg.layer_idle;
        let mut video_n = 0;
        let mut audio_bps = 0;
        let mut tracks = Vec::new();
        for t in &p.tracks {
            let role = TrackRole::of_video_index(video_n);
            let assumed = |n: usize, k: usize| {
                if role == TrackRole::Screen && n == 1 {
                    ac.assumed_screen_bps
                } else {
                    ac.assumed_bps[(3 - n.min(3)) + k.min(2)]
                }
            };
            let ranked = ranked_active(&t.layers, now, idle);
            let mut rates: Vec<u64> = ranked
                .iter()
                .map(|&i| t.layers[i].meter.wire_bps(now, idle))
                .collect();
            // A layer that just started (a browser turns its top layer on as its
            // own estimate grows) has not shown its real rate yet: until it has
            // flowed for layer_settle, count it at no less than the usual ladder.
            if t.kind == Kind::Video && !rates.contains(&0) {
                let n = rates.len();
                for (k, &i) in ranked.iter().enumerate() {
                    if t.layers[i].meter.flowing_for(now) < ac.layer_settle {
                        rates[k] = rates[k].max(assumed(n, k));
                    }
                }
            }
            if rates.contains(&0) {
                let n = rates.len();
                rates = if t.kind == Kind::Audio {
                    vec![ac.assumed_audio_bps; n]
                } else {
                    (0..n).map(|k| assumed(n, k)).collect()
                };
            }
            if t.kind == Kind::Video {
                video_n += 1;
            } else {
                audio_bps += rates.iter().sum::<u64>();
            }
            tracks.push(TrackPlan {
                mid: t.mid,
                kind: t.kind,
                role,
                rids: ranked.iter().map(|&i| t.layers[i].rid).collect(),
                rates,
            });
        }
        LessonPlan {
            tracks,
            audio_bps: if audio_bps == 0 {
                ac.assumed_audio_bps
            } else {
                audio_bps
            },
            floor: None,
        }
    }
}
