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
    pub(super) last_up: Option<Instant>,
    /// Extra headroom time a step up needs after steps up that did not last (see
    /// [`FLAP_WITHIN`]); zero once a step up has lasted.
    pub(super) up_backoff: Duration,
    /// The video budget at the last step down.
    pub(super) down_budget: u64,
    /// Last (min, desired) sent to the estimator.
    pub(super) bwe_target: Option<(u64, u64)>,
    pub(super) pauses: u64,
    /// Budget limit after heavy loss, and until when it holds.
    pub(super) loss_cap: Option<(u64, Instant)>,
    /// The link lost packets (see [`VIDEO_FLOOR_MAX_LOSS`]) and has not carried the
    /// lowest layers by its estimate since: no video floor.
    pub(super) lossy: bool,
    pub(super) probe: ProbeState,
}

impl LinkState {
    pub(super) fn note_loss(&mut self, loss: Option<f32>) {
        if loss.is_some_and(|l| l > VIDEO_FLOOR_MAX_LOSS) {
            self.lossy = true;
        }
    }
}

/// Re-probes ([`Output::BweReprobe`]) while a better layer does not fit. A probe
/// that does not raise the estimate doubles the wait before the next one, so a
/// link that is truly thin is not hammered; one that does resets the wait.
#[derive(Debug, Default)]
pub(super) struct ProbeState {
    /// When the next re-probe may go out, once the estimate is stuck below the
    /// next step.
    next_at: Option<Instant>,
    every: Duration,
    /// The estimate when the last re-probe was asked for.
    from: u64,
}

const PROBE_MIN_EVERY: Duration = Duration::from_secs(3);
const PROBE_MAX_EVERY: Duration = Duration::from_secs(8);
/// Loss at which the link is taken to have collapsed: what got through is all it
/// carries now.
const COLLAPSE_LOSS: f32 = 0.10;
/// Loss above which no re-probe is asked for: the link is full already.
const PROBE_MAX_LOSS: f32 = 0.02;

/// Video pauses only once the link has lost packets. Without loss a low estimate
/// comes from the delay signal alone, which a busy receiver's timing or jitter can
/// drive far below what the link carries (and which then stays low, since a paused
/// link sends little to measure): there the lowest layers keep flowing, and loss,
/// if the link really is that thin, soon shows it. After such loss the floor stays
/// off until the relay has resumed every track by the estimate itself, so a
/// collapsed link is not overfilled again and again (the voice shares it).
const VIDEO_FLOOR_MAX_LOSS: f32 = 0.02;

/// Per-packet wire overhead counted in measured rates (see `RateMeter`), less the
/// 4 bytes a RED header adds: 56 bytes at 50 voice packets a second.
const RED_SAVED_BPS: u64 = 56 * 8 * 50;

/// What the teacher's voice costs on this classroom's link: with RED each packet
/// carries its payload twice (see `crate::red`), under one packet's overhead.
fn voice_cost(s: &Subscriber, plan: &LessonPlan) -> u64 {
    let red = s
        .slots
        .iter()
        .any(|slot| slot.spec.kind == Kind::Audio && slot.spec.redundant);
    if red {
        (2 * plan.audio_bps)
            .saturating_sub(RED_SAVED_BPS)
            .max(plan.audio_bps)
    } else {
        plan.audio_bps
    }
}

/// A step down this soon after a step up means the step up did not last: the
/// link sits at a layer boundary. Each such flap doubles how long the next step up
/// waits for headroom (from [`BACKOFF_MIN`] up to [`BACKOFF_MAX`]); a step up that
/// lasts [`FLAP_WITHIN`] clears it. Steady capacity then costs a switch every half
/// minute at most, not every few seconds. A video budget [`REAL_RISE`] times the
/// one at the last step down is a link that really got better: no backoff.
const FLAP_WITHIN: Duration = Duration::from_secs(15);
const BACKOFF_MIN: Duration = Duration::from_secs(4);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const REAL_RISE: f64 = 2.0;

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
/// The same for a screen (slides) sent as one layer: a few frames per second of
/// mostly still content, far below a camera's top layer.
const ASSUMED_SCREEN_BPS: u64 = 400_000;
/// How long a newly arriving layer counts at no less than [`ASSUMED_BPS`].
const LAYER_SETTLE: Duration = Duration::from_secs(3);
/// Opus voice plus overhead, until measured.
const ASSUMED_AUDIO_BPS: u64 = 60_000;

impl LessonPlan {
    pub(super) fn new(p: &Publisher, now: Instant, cfg: &RelayConfig) -> LessonPlan {
        let idle = cfg.layer_idle;
        let mut video_n = 0;
        let mut audio_bps = 0;
        let mut tracks = Vec::new();
        for t in &p.tracks {
            let role = TrackRole::of_video_index(video_n);
            let assumed = |n: usize, k: usize| {
                if role == TrackRole::Screen && n == 1 {
                    ASSUMED_SCREEN_BPS
                } else {
                    ASSUMED_BPS[(3 - n.min(3)) + k.min(2)]
                }
            };
            let ranked = ranked_active(&t.layers, now, idle);
            let mut rates: Vec<u64> = ranked
                .iter()
                .map(|&i| t.layers[i].meter.wire_bps(now, idle))
                .collect();
            // A layer that just started (a browser turns its top layer on as its
            // own estimate grows) has not shown its real rate yet: until it has
            // flowed for LAYER_SETTLE, count it at no less than the usual ladder.
            if t.kind == Kind::Video && !rates.contains(&0) {
                let n = rates.len();
                for (k, &i) in ranked.iter().enumerate() {
                    if t.layers[i].meter.flowing_for(now) < LAYER_SETTLE {
                        rates[k] = rates[k].max(assumed(n, k));
                    }
                }
            }
            if rates.contains(&0) {
                let n = rates.len();
                rates = if t.kind == Kind::Audio {
                    vec![ASSUMED_AUDIO_BPS; n]
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
    let audio_bps = voice_cost(s, plan);
    let budget = estimate.min(school_share.unwrap_or(estimate)) as f64 * ac.headroom;
    // Heavy loss means the queue overflows: what gets through is about
    // estimate × (1 - loss), so that is all the budget there is. The cut holds for
    // LOSS_HOLD, because the next report shows less loss only because less was sent.
    if let Some(loss) = s.link.loss.filter(|l| *l > ac.loss_cut) {
        let kept = 1.0 - f64::from(loss.min(0.95));
        let mut cut = (budget * kept) as u64;
        if loss >= COLLAPSE_LOSS {
            // What was sent times what got through is what the link carries now,
            // whatever the (slower) estimate still says.
            let delivered = (s.sent.window_wire_bps(now, cfg.layer_idle) as f64 * kept) as u64;
            cut = cut.min(delivered.max(audio_bps));
        }
        s.link.loss_cap = Some((cut, now + LOSS_HOLD));
        s.link.loss = None;
    }
    let mut budget = budget as u64;
    match s.link.loss_cap {
        Some((cap, until)) if now < until => budget = budget.min(cap),
        _ => s.link.loss_cap = None,
    }
    s.link.budget = budget;
    let raw_video_budget = budget.saturating_sub(audio_bps);
    let lowest: u64 = ladders.iter().filter_map(|l| l.rates.first()).sum();
    let floored = !s.link.lossy && s.link.loss_cap.is_none() && raw_video_budget < lowest;
    let video_budget = if floored { lowest } else { raw_video_budget };
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
    // What to forward from now on, if it changes: down at once, all the way to
    // what fits; up one step at a time, each after `up_hold` of headroom, so that a
    // short-lived estimate (a probe through a bursty queue) buys one step, not two.
    if let Some(up) = s.link.last_up {
        let lasted = now.saturating_duration_since(up) >= FLAP_WITHIN
            && s.link.last_down.is_none_or(|d| d < up);
        if lasted {
            s.link.up_backoff = Duration::ZERO;
        }
    }
    if video_budget as f64 > s.link.down_budget as f64 * REAL_RISE {
        s.link.up_backoff = Duration::ZERO;
    }
    let apply: Option<Vec<Option<usize>>> = match &current {
        None => Some(want.clone()),
        Some(cur) => {
            let (have, need) = (adapt::cost(&ladders, cur), adapt::cost(&ladders, &want));
            // What would still be kept, with the margin that stops flapping.
            let keep = adapt::allocate(
                (video_budget as f64 / ac.down_margin) as u64,
                &ladders,
                &ac.priority,
            );
            if adapt::cost(&ladders, &keep) < have || (need == have && *cur != want) {
                s.link.up_since = None;
                s.link.last_down = Some(now);
                s.link.down_budget = video_budget;
                let flapped = s
                    .link
                    .last_up
                    .is_some_and(|t| now.saturating_duration_since(t) < FLAP_WITHIN);
                if flapped && need < have {
                    s.link.up_backoff = (s.link.up_backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
                }
                Some(want.clone())
            } else if need > have {
                let since = *s.link.up_since.get_or_insert(now);
                let settled = s
                    .link
                    .last_down
                    .is_none_or(|t| now.saturating_duration_since(t) >= ac.down_dwell);
                let hold = ac.up_hold + s.link.up_backoff;
                (now.saturating_duration_since(since) >= hold && settled).then(|| {
                    s.link.last_up = Some(now);
                    adapt::next_step(&ladders, cur, &ac.priority)
                        .filter(|n| adapt::cost(&ladders, n) <= video_budget)
                        .unwrap_or_else(|| want.clone())
                })
            } else {
                // Within the margin (or already what fits): keep it.
                s.link.up_since = None;
                None
            }
        }
    };
    let applied = if let Some(alloc) = apply {
        s.link.up_since = None;
        for ((i, t), choice) in video.iter().zip(&alloc) {
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
        alloc
    } else {
        current.unwrap_or(want)
    };
    // The estimate itself carries every track again: the floor is back.
    if s.link.lossy && applied.iter().all(Option::is_some) && raw_video_budget >= lowest {
        s.link.lossy = false;
    }
    // Keep the estimator probing towards the best allocation, and pad the link up
    // to what the next step up would send (str0m caps padding at the estimate): an
    // estimate may grow to 1.5× what is sent, so that is enough to prove the next
    // step, and no more is wasted. At the best allocation nothing is padded, so a
    // link that carries it just barely is not filled to the brim.
    let media = |a: &[Option<usize>]| adapt::cost(&ladders, a) + audio_bps;
    let wire = |a: &[Option<usize>]| (media(a) as f64 / ac.headroom) as u64;
    let next = adapt::next_step(&ladders, &applied, &ac.priority);
    let best = adapt::allocate(u64::MAX, &ladders, &ac.priority);
    let pad_to = next.as_deref().map_or(0, media);
    // After heavy loss no padding beyond the cut budget: the link is overflowing.
    let floor = match s.link.loss_cap {
        Some((cap, _)) => pad_to.min(cap),
        None => pad_to,
    };
    let target = (floor, wire(&best));
    let quiet = s.link.loss_cap.is_none() && s.link.last_loss.unwrap_or(0.0) <= PROBE_MAX_LOSS;
    let p = &mut s.link.probe;
    let stuck = next.as_deref().is_some_and(|n| estimate < wire(n));
    if applied != best && stuck && quiet {
        if now >= *p.next_at.get_or_insert(now + PROBE_MIN_EVERY) {
            let grew = estimate as f64 > p.from as f64 * 1.1;
            p.every = if grew || p.every.is_zero() {
                PROBE_MIN_EVERY
            } else {
                (p.every * 2).min(PROBE_MAX_EVERY)
            };
            p.from = estimate;
            p.next_at = Some(now + p.every);
            out.push_back(Output::BweReprobe {
                peer: s.peer,
                from_bps: estimate,
            });
        }
    } else {
        // Not stuck (or not quiet): the clock starts again when it is.
        p.next_at = None;
    }
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
