//! Layer choice by link: what each teacher track offers right now ([`LessonPlan`]),
//! what the relay knows of a classroom's link ([`LinkState`]), and the hysteresis
//! that turns an allocation ([`crate::adapt`]) into video targets.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Kind, Output, Publisher, RelayConfig, Subscriber, Totals};
use crate::adapt::{self, Ladder, TrackRole};
use crate::ids::{Mid, Rid};
use crate::layers::ranked_active;

/// What the relay knows of the link towards one classroom.
#[derive(Debug, Default)]
pub(super) struct LinkState {
    pub(super) estimate: Option<u64>,
    /// Loss from the latest report not yet acted on.
    pub(super) loss: Option<f32>,
    /// Loss last reported, for stats.
    pub(super) last_loss: Option<f32>,
    pub(super) rtt: Option<Duration>,
    /// Budget for media last computed (wire bit/s, audio included).
    pub(super) budget: u64,
    /// Since when a better allocation than the current one fits.
    pub(super) up_since: Option<Instant>,
    pub(super) last_down: Option<Instant>,
    /// Last (min, desired) sent to the estimator.
    pub(super) bwe_target: Option<(u64, u64)>,
    pub(super) pauses: u64,
    /// Budget limit after heavy loss, and until when it holds.
    pub(super) loss_cap: Option<(u64, Instant)>,
}

/// How long a loss-driven budget cut holds.
const LOSS_HOLD: Duration = Duration::from_secs(2);

/// One teacher track as layer choice sees it at one moment.
#[derive(Debug)]
pub(super) struct TrackPlan {
    pub(super) mid: Mid,
    pub(super) kind: Kind,
    pub(super) role: TrackRole,
    /// Arriving layers, lowest first, and their wire rates.
    pub(super) rids: Vec<Option<Rid>>,
    pub(super) rates: Vec<u64>,
}

#[derive(Debug, Default)]
pub(super) struct LessonPlan {
    pub(super) tracks: Vec<TrackPlan>,
    pub(super) audio_bps: u64,
}

/// Rates assumed for layers not measured yet (the teacher just started): the usual
/// 150/500/1500 kbit/s ladder, so nothing is mistaken for free.
const ASSUMED_BPS: [u64; 3] = [200_000, 600_000, 1_700_000];
/// Opus voice plus overhead, until measured.
const ASSUMED_AUDIO_BPS: u64 = 60_000;

impl LessonPlan {
    pub(super) fn new(p: &Publisher, now: Instant, cfg: &RelayConfig) -> LessonPlan {
        let idle = cfg.layer_idle;
        let mut video_n = 0;
        let mut audio_bps = 0;
        let mut tracks = Vec::new();
        for t in &p.tracks {
            let ranked = ranked_active(&t.layers, now, idle);
            let mut rates: Vec<u64> = ranked
                .iter()
                .map(|&i| t.layers[i].meter.wire_bps(now, idle))
                .collect();
            if rates.contains(&0) {
                let n = rates.len();
                rates = if t.kind == Kind::Audio {
                    vec![ASSUMED_AUDIO_BPS; n]
                } else {
                    (0..n)
                        .map(|i| ASSUMED_BPS[(3 - n.min(3)) + i.min(2)])
                        .collect()
                };
            }
            let role = TrackRole::of_video_index(video_n);
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
                ASSUMED_AUDIO_BPS
            } else {
                audio_bps
            },
        }
    }
}

/// Set one classroom's video targets: by its preference when its link is not
/// measured, otherwise by what fits its share of the school's budget, switching down
/// at once and up only after [`AdaptConfig::up_hold`] of sustained headroom.
pub(super) fn adapt_subscriber(
    s: &mut Subscriber,
    plan: &LessonPlan,
    school_share: Option<u64>,
    now: Instant,
    cfg: &RelayConfig,
    out: &mut VecDeque<Output>,
    totals: &mut Totals,
) {
    let ac = &cfg.adapt;
    // Video slots bound to an arriving track, with that track's plan.
    let mut video: Vec<(usize, &TrackPlan)> = Vec::new();
    for (i, slot) in s.slots.iter().enumerate() {
        let Some((_, mid)) = slot.bound else { continue };
        if let Some(t) = plan.tracks.iter().find(|t| t.mid == mid) {
            if t.kind == Kind::Video && !t.rids.is_empty() {
                video.push((i, t));
            }
        }
    }
    let Some(estimate) = s.link.estimate else {
        for (i, t) in &video {
            let slot = &mut s.slots[*i];
            slot.paused = false;
            if let Some(k) = s.layer.index(t.rids.len()) {
                slot.target = t.rids[k];
            }
        }
        return;
    };
    let ladders: Vec<Ladder> = video
        .iter()
        .map(|(_, t)| Ladder {
            role: t.role,
            rates: t.rates.clone(),
            cap: s.layer.index(t.rates.len()).unwrap_or(0),
        })
        .collect();
    let budget = estimate.min(school_share.unwrap_or(estimate)) as f64 * ac.headroom;
    // Heavy loss means the queue overflows: what gets through is about
    // estimate × (1 - loss), so that is all the budget there is. The cut holds for
    // LOSS_HOLD, because the next report shows less loss only because less was sent.
    if let Some(loss) = s.link.loss.filter(|l| *l > ac.loss_cut) {
        let cut = (budget * (1.0 - f64::from(loss.min(0.95)))) as u64;
        s.link.loss_cap = Some((cut, now + LOSS_HOLD));
        s.link.loss = None;
    }
    let mut budget = budget as u64;
    match s.link.loss_cap {
        Some((cap, until)) if now < until => budget = budget.min(cap),
        _ => s.link.loss_cap = None,
    }
    s.link.budget = budget;
    let video_budget = budget.saturating_sub(plan.audio_bps);
    let want = adapt::allocate(video_budget, &ladders, &ac.priority);
    // What is forwarded now, in ladder terms; a layer that stopped arriving makes
    // the current allocation invalid and is replaced at once.
    let current: Option<Vec<Option<usize>>> = video
        .iter()
        .map(|(i, t)| {
            let slot = &s.slots[*i];
            if slot.paused {
                Some(None)
            } else if slot.current.is_none() && slot.waiting.is_none() {
                None
            } else {
                t.rids.iter().position(|r| *r == slot.target).map(Some)
            }
        })
        .collect();
    let apply = match &current {
        None => true,
        Some(cur) => {
            let (have, need) = (adapt::cost(&ladders, cur), adapt::cost(&ladders, &want));
            if need < have || (need == have && *cur != want) {
                s.link.up_since = None;
                s.link.last_down = Some(now);
                true
            } else if need > have {
                let since = *s.link.up_since.get_or_insert(now);
                let settled = s
                    .link
                    .last_down
                    .is_none_or(|t| now.saturating_duration_since(t) >= ac.down_dwell);
                now.saturating_duration_since(since) >= ac.up_hold && settled
            } else {
                s.link.up_since = None;
                false
            }
        }
    };
    let applied = if apply {
        s.link.up_since = None;
        for ((i, t), choice) in video.iter().zip(&want) {
            let slot = &mut s.slots[*i];
            match choice {
                Some(k) => {
                    slot.paused = false;
                    slot.target = t.rids[*k];
                }
                None => {
                    if !slot.paused {
                        s.link.pauses += 1;
                        totals.video_pauses += 1;
                    }
                    slot.paused = true;
                    slot.current = None;
                    slot.waiting = None;
                }
            }
        }
        want
    } else {
        current.unwrap_or(want)
    };
    // Keep the estimator probing towards the next step up, and padding the link to
    // it while the estimate allows (str0m caps padding at the estimate), so a better
    // layer is proven before it is used and an app-limited estimate does not sink to
    // what the current layer needs.
    let wire = |a: &[Option<usize>]| {
        ((adapt::cost(&ladders, a) + plan.audio_bps) as f64 / ac.headroom) as u64
    };
    let next = adapt::next_step(&ladders, &applied, &ac.priority).unwrap_or(applied.clone());
    let best = adapt::allocate(u64::MAX, &ladders, &ac.priority);
    // After heavy loss no padding beyond the cut budget: the link is overflowing.
    let floor = match s.link.loss_cap {
        Some((cap, _)) => wire(&next).min(cap),
        None => wire(&next),
    };
    let target = (floor, wire(&best));
    let changed = s.link.bwe_target.is_none_or(|(m, d)| {
        m.abs_diff(target.0) * 20 > m.max(1) || d.abs_diff(target.1) * 20 > d.max(1)
    });
    if changed {
        s.link.bwe_target = Some(target);
        out.push_back(Output::BweTarget {
            peer: s.peer,
            min_bps: target.0,
            desired_bps: target.1,
        });
    }
}
