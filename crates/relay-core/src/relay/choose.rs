//! Layer choice for one lesson, and the keyframe requests it leads to.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::link::{adapt_subscriber, LessonPlan};
use super::{
    Audience, Forward, Kind, Lesson, Output, RelayConfig, RtpIn, Slot, Source, Totals, Track,
};
use crate::ids::{Mid, PeerId};
use crate::layers::RateMeter;
use crate::rewrite::Rewritten;

/// What the core has to say to the edge, and the counters that go with it: one
/// place every part of the core writes to.
#[derive(Debug, Default)]
pub(super) struct Effects {
    pub(super) out: VecDeque<Output>,
    pub(super) totals: Totals,
    /// The earliest deferred keyframe request (see [`crate::KeyframeThrottle`]),
    /// at most this early: a keyframe arriving first cancels it.
    pub(super) keyframe_due: Option<Instant>,
}

impl Effects {
    /// Send `rtp` (from `from`) to `to` on its m-line `mid` (voice with `red_depth`
    /// previous frames where RED is on; video with the minimum playout delay
    /// `playout_min` when one is asked for), numbered `w`, and count it against
    /// the receiver's rate meter `sent`.
    pub(super) fn forward(
        &mut self,
        now: Instant,
        sent: &mut RateMeter,
        (to, mid, red_depth, playout_min): (PeerId, Mid, u8, Option<Duration>),
        from: PeerId,
        rtp: &RtpIn,
        w: Rewritten,
    ) {
        sent.add(now, rtp.payload.len());
        self.totals.packets_forwarded += 1;
        self.totals.bytes_forwarded += rtp.payload.len() as u64;
        self.out.push_back(Output::Forward(Forward {
            to,
            mid,
            from,
            pt: rtp.pt,
            codec: rtp.codec,
            seq: w.seq,
            ts: w.ts,
            marker: rtp.marker,
            vp8_picture_id: w.vp8_picture_id,
            vp8_tl0_pic_idx: w.vp8_tl0_pic_idx,
            red_depth,
            playout_min,
            payload: rtp.payload.clone(),
        }));
    }
}

/// Pick every video slot's target layer in lesson `l` from what arrives now and
/// what each classroom's link carries, and ask for the keyframes that switches and
/// joins need.
pub(super) fn choose_layers(cfg: &RelayConfig, l: &mut Lesson, now: Instant, fx: &mut Effects) {
    let mut plan = l
        .publisher
        .as_ref()
        .map(|p| LessonPlan::new(p, now, cfg))
        .unwrap_or_default();
    // The floor's voice costs every classroom that hears it.
    plan.floor = l.floor.holder.as_ref().map(|school| {
        let measured = l
            .talkers
            .iter()
            .filter(|t| &t.school == school)
            .map(|t| t.meter.wire_bps(now, cfg.layer_idle))
            .max()
            .unwrap_or(0);
        let bps = if measured == 0 {
            cfg.adapt.assumed_audio_bps
        } else {
            measured
        };
        (school.clone(), bps)
    });
    // One budget per school link: its classrooms share one bottleneck.
    let mut schools: HashMap<&str, (u64, u64)> = HashMap::new();
    for s in l
        .subscribers
        .iter()
        .filter(|s| s.audience == Audience::Classroom)
    {
        if let Some(e) = s.link.estimate {
            let v = schools.entry(s.school.as_str()).or_default();
            v.0 += e;
            v.1 += 1;
        }
    }
    let share: HashMap<String, u64> = schools
        .into_iter()
        .map(|(k, (sum, n))| (k.to_string(), sum / n.max(1)))
        .collect();
    let mut requests: Vec<Source> = Vec::new();
    for s in &mut l.subscribers {
        // The teacher's hearing session carries voice only: nothing to choose.
        if s.audience == Audience::Teacher {
            continue;
        }
        let fair = share.get(&s.school).copied();
        adapt_subscriber(s, &plan, fair, now, cfg, &mut fx.out, &mut fx.totals);
        for slot in &mut s.slots {
            let Some((ppeer, pmid)) = slot.bound else {
                continue;
            };
            let Some(track) = plan.tracks.iter().find(|t| t.mid == pmid) else {
                continue;
            };
            // With nothing arriving, keep the old target: it may resume.
            if track.kind == Kind::Video && track.rids.is_empty() {
                continue;
            }
            if !slot.wants_switch() || track.kind == Kind::Audio {
                slot.waiting = None;
                continue;
            }
            let src = Source {
                peer: ppeer,
                mid: pmid,
                rid: slot.target,
            };
            let ask = match slot.waiting {
                Some((waited, asked)) => {
                    waited != src || now.saturating_duration_since(asked) >= cfg.keyframe_retry
                }
                None => true,
            };
            if ask {
                slot.waiting = Some((src, now));
                requests.push(src);
            }
        }
    }
    for src in requests {
        request_keyframe(fx, cfg, l, src, now);
    }
}

/// Ask the teacher for a keyframe of `src`: now, or when its throttle allows.
pub(super) fn request_keyframe(
    fx: &mut Effects,
    cfg: &RelayConfig,
    l: &mut Lesson,
    src: Source,
    now: Instant,
) {
    let Some(p) = l.publisher.as_mut().filter(|p| p.peer == src.peer) else {
        return;
    };
    let Some(t) = p.tracks.iter_mut().find(|t| t.mid == src.mid) else {
        return;
    };
    if t.kind != Kind::Video {
        return;
    }
    let li = t.layer_index(src.rid);
    let throttle = &mut t.layers[li].keyframes;
    if throttle.request(now, cfg.keyframe_interval) {
        fx.totals.keyframe_requests_sent += 1;
        fx.out.push_back(Output::RequestKeyframe {
            publisher: src.peer,
            mid: src.mid,
            rid: src.rid,
        });
    } else if let Some(due) = throttle.poll_timeout(cfg.keyframe_interval) {
        fx.keyframe_due = Some(fx.keyframe_due.map_or(due, |d| d.min(due)));
    }
}

/// Send the deferred keyframe requests that are due in lesson `l`; the earliest
/// one still waiting goes into `fx.keyframe_due`.
pub(super) fn deferred_keyframes(
    cfg: &RelayConfig,
    l: &mut Lesson,
    now: Instant,
    fx: &mut Effects,
) {
    let iv = cfg.keyframe_interval;
    let Some(p) = l.publisher.as_mut() else {
        return;
    };
    for t in &mut p.tracks {
        for layer in &mut t.layers {
            if layer.keyframes.handle_timeout(now, iv) {
                fx.totals.keyframe_requests_sent += 1;
                fx.out.push_back(Output::RequestKeyframe {
                    publisher: p.peer,
                    mid: t.mid,
                    rid: layer.rid,
                });
            } else if let Some(due) = layer.keyframes.poll_timeout(iv) {
                fx.keyframe_due = Some(fx.keyframe_due.map_or(due, |d| d.min(due)));
            }
        }
    }
}

/// Bind a classroom's slots to the teacher's tracks: the n-th audio slot to the n-th
/// audio track, the n-th video slot to the n-th video track (camera first, then screen).
pub(super) fn bind_slots(slots: &mut [Slot], publisher: PeerId, tracks: &[Track]) {
    for kind in [Kind::Audio, Kind::Video] {
        let mut sources = tracks.iter().filter(|t| t.kind == kind);
        for slot in slots
            .iter_mut()
            .filter(|s| s.spec.kind == kind && !s.class_feed)
        {
            slot.bound = sources.next().map(|t| (publisher, t.mid));
            slot.waiting = None;
        }
    }
}
