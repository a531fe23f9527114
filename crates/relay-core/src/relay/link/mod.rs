//! Layer choice by link: what each teacher track offers right now ([`LessonPlan`]),
//! what the relay knows of a classroom's link ([`LinkState`]), and the controller
//! that turns an allocation ([`crate::adapt`]) into video targets.
//!
//! [`LinkState`] is the controller. Its evaluation decides (a [`Decision`]) and
//! [`adapt_subscriber`] carries the decision out on the classroom's slots and the
//! relay's outputs. The controller is composed of parts that each keep their own
//! state: [`LossCap`] (the budget after heavy loss), [`FlapBackoff`] (the step-up
//! backoff at a layer boundary), [`Probing`] (re-probes of a stuck estimate) and
//! [`VideoFloor`] (when video may pause).

mod backoff;
mod floor;
mod loss;
mod plan;
mod probe;
mod redundancy;
mod repair;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Kind, Output, RelayConfig, Subscriber, Totals};
use crate::adapt::{self, AdaptConfig, Allocation, Ladder};
use backoff::FlapBackoff;
use floor::VideoFloor;
use loss::LossCap;
pub(super) use plan::LessonPlan;
use plan::{voice_cost, TrackPlan};
use probe::Probing;
use redundancy::VoiceRedundancy;
use repair::RepairDelay;

/// What the relay knows of the link towards one classroom, and the controller that
/// chooses the layers it gets.
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
    pub(super) pauses: u64,
    /// Since when a better allocation than the current one fits.
    up_since: Option<Instant>,
    /// Last (min, desired) sent to the estimator.
    bwe_target: Option<(u64, u64)>,
    loss_cap: LossCap,
    flap: FlapBackoff,
    floor: VideoFloor,
    probe: Probing,
    redundancy: VoiceRedundancy,
    repair: RepairDelay,
}

/// What one evaluation of a measured link looks at besides the controller's state.
#[derive(Debug)]
struct Inputs<'a> {
    estimate: u64,
    /// The classroom's share of its school's estimate, when the school has one.
    school_share: Option<u64>,
    /// The video tracks the classroom is shown.
    ladders: &'a [Ladder],
    /// What is forwarded now, in ladder terms; `None` when a forwarded layer stopped
    /// arriving (or nothing was chosen yet).
    current: Option<Allocation>,
    /// What the teacher's voice costs on this link.
    audio_bps: u64,
    /// What was sent to the classroom in the last window (wire bit/s).
    sent_bps: u64,
}

/// What one evaluation decided, for [`adapt_subscriber`] to carry out.
#[derive(Debug, PartialEq)]
struct Decision {
    /// Media budget (wire bit/s, audio included).
    budget: u64,
    /// New video layers, when they change.
    switch: Option<Switch>,
    /// (min, desired) for the estimator, when it moved enough to be sent again.
    bwe_target: Option<(u64, u64)>,
    /// Ask the estimator to probe again, from this estimate.
    reprobe: Option<u64>,
}

/// A change of the video layers. Per track: the layer to forward (resuming a paused
/// track), or `None` to pause it.
#[derive(Debug, PartialEq)]
enum Switch {
    /// What was forwarded stopped arriving, or nothing was chosen yet: what fits.
    Replace(Allocation),
    /// At once, all the way down to what fits (or to another allocation of the same
    /// cost that fits better).
    Down(Allocation),
    /// One step up, after sustained headroom.
    Up(Allocation),
}

impl Switch {
    fn allocation(&self) -> &Allocation {
        match self {
            Switch::Replace(a) | Switch::Down(a) | Switch::Up(a) => a,
        }
    }
}

impl LinkState {
    /// Previous voice frames each RED packet carries now (see [`VoiceRedundancy`]).
    pub(in crate::relay) fn red_depth(&self, now: Instant) -> u8 {
        self.redundancy.depth(now)
    }

    /// The minimum playout delay this classroom's video carries now (see
    /// [`RepairDelay`]); `None`: none is sent.
    pub(in crate::relay) fn playout_min(&self, now: Instant) -> Option<Duration> {
        self.repair.playout_min(now)
    }

    /// A receiver report's loss, as it arrives (see [`VideoFloor`],
    /// [`VoiceRedundancy`] and [`RepairDelay`], which also takes `self.rtt`).
    pub(super) fn note_loss(&mut self, loss: Option<f32>, now: Instant, ac: &AdaptConfig) {
        self.floor.note_loss(loss);
        self.redundancy.note_loss(loss, now, ac);
        self.repair.note(loss, self.rtt, now, ac);
    }

    /// Decides for a measured link: the budget (cut after heavy loss), the layers
    /// that fit it, and what the estimator is told.
    fn evaluate(&mut self, l: Inputs<'_>, now: Instant, ac: &AdaptConfig) -> Decision {
        let ladders = l.ladders;
        let budget = l.estimate.min(l.school_share.unwrap_or(l.estimate)) as f64 * ac.headroom;
        if let Some(loss) = self.loss {
            if self
                .loss_cap
                .report(loss, budget, l.sent_bps, l.audio_bps, now, ac)
            {
                self.loss = None;
            }
        }
        let budget = self.loss_cap.limit(budget as u64, now);
        let raw_video_budget = budget.saturating_sub(l.audio_bps);
        let lowest: u64 = ladders.iter().filter_map(|l| l.rates.first()).sum();
        let capped = self.loss_cap.cap().is_some();
        let video_budget = self
            .floor
            .video_budget(raw_video_budget, lowest, capped, ac);
        let want = adapt::allocate(video_budget, ladders, &ac.priority);
        self.flap.refresh(video_budget, now, ac);
        let switch = self.choose(ladders, l.current.as_ref(), &want, video_budget, now, ac);
        let applied = match &switch {
            Some(s) => s.allocation(),
            None => l.current.as_ref().unwrap_or(&want),
        };
        self.floor.settle(
            applied.iter().all(Option::is_some),
            raw_video_budget,
            lowest,
        );
        // Keep the estimator probing towards the best allocation, and pad the link up
        // to what the next step up would send (str0m caps padding at the estimate): an
        // estimate may grow to 1.5× what is sent, so that is enough to prove the next
        // step, and no more is wasted. At the best allocation nothing is padded, so a
        // link that carries it just barely is not filled to the brim.
        let media = |a: &[Option<usize>]| adapt::cost(ladders, a) + l.audio_bps;
        let wire = |a: &[Option<usize>]| (media(a) as f64 / ac.headroom) as u64;
        let next = adapt::next_step(ladders, applied, &ac.priority);
        let best = adapt::allocate(u64::MAX, ladders, &ac.priority);
        let pad_to = next.as_deref().map_or(0, media);
        // After heavy loss no padding beyond the cut budget: the link is overflowing.
        let min_bps = match self.loss_cap.cap() {
            Some(cap) => pad_to.min(cap),
            None => pad_to,
        };
        let target = (min_bps, wire(&best));
        let quiet =
            self.loss_cap.cap().is_none() && self.last_loss.unwrap_or(0.0) <= ac.probe_max_loss;
        let stuck = next.as_deref().is_some_and(|n| l.estimate < wire(n));
        let reprobe = self
            .probe
            .poll(*applied != best && stuck && quiet, l.estimate, now, ac);
        Decision {
            budget,
            switch,
            bwe_target: self.bwe_update(target),
            reprobe,
        }
    }

    /// What to forward from now on, if it changes: down at once, all the way to what
    /// fits; up one step at a time, each after `up_hold` (and the flap backoff) of
    /// headroom, so that a short-lived estimate (a probe through a bursty queue) buys
    /// one step, not two.
    fn choose(
        &mut self,
        ladders: &[Ladder],
        current: Option<&Allocation>,
        want: &Allocation,
        video_budget: u64,
        now: Instant,
        ac: &AdaptConfig,
    ) -> Option<Switch> {
        let switch = match current {
            None => Some(Switch::Replace(want.clone())),
            Some(cur) => {
                let (have, need) = (adapt::cost(ladders, cur), adapt::cost(ladders, want));
                // What would still be kept, with the margin that stops flapping.
                let keep = adapt::allocate(
                    (video_budget as f64 / ac.down_margin) as u64,
                    ladders,
                    &ac.priority,
                );
                if adapt::cost(ladders, &keep) < have || (need == have && cur != want) {
                    self.flap.stepped_down(video_budget, need < have, now, ac);
                    Some(Switch::Down(want.clone()))
                } else if need > have {
                    let since = *self.up_since.get_or_insert(now);
                    let due = now.saturating_duration_since(since) >= self.flap.hold(ac)
                        && self.flap.settled(now, ac);
                    due.then(|| {
                        self.flap.stepped_up(now);
                        Switch::Up(
                            adapt::next_step(ladders, cur, &ac.priority)
                                .filter(|n| adapt::cost(ladders, n) <= video_budget)
                                .unwrap_or_else(|| want.clone()),
                        )
                    })
                } else {
                    // Within the margin (or already what fits): keep it.
                    self.up_since = None;
                    None
                }
            }
        };
        if switch.is_some() {
            self.up_since = None;
        }
        switch
    }

    /// `target`, when it is the first or differs from the last one sent by more than
    /// a twentieth: the estimator need not hear of every wobble of measured rates.
    fn bwe_update(&mut self, target: (u64, u64)) -> Option<(u64, u64)> {
        let changed = self.bwe_target.is_none_or(|(m, d)| {
            m.abs_diff(target.0) * 20 > m.max(1) || d.abs_diff(target.1) * 20 > d.max(1)
        });
        changed.then(|| {
            self.bwe_target = Some(target);
            target
        })
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
    let current: Option<Allocation> = video
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
    let inputs = Inputs {
        estimate,
        school_share,
        ladders: &ladders,
        current,
        audio_bps: voice_cost(s, plan, now),
        sent_bps: s.sent.window_wire_bps(now, cfg.layer_idle),
    };
    let d = s.link.evaluate(inputs, now, &cfg.adapt);
    s.link.budget = d.budget;
    if let Some(switch) = &d.switch {
        for ((i, t), choice) in video.iter().zip(switch.allocation()) {
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
    }
    if let Some(from_bps) = d.reprobe {
        out.push_back(Output::BweReprobe {
            peer: s.peer,
            from_bps,
        });
    }
    if let Some((min_bps, desired_bps)) = d.bwe_target {
        out.push_back(Output::BweTarget {
            peer: s.peer,
            min_bps,
            desired_bps,
        });
    }
}
