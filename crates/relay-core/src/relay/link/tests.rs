//! Tables for the controller's parts, and for the controller's switches.

use std::time::{Duration, Instant};

use super::backoff::FlapBackoff;
use super::floor::VideoFloor;
use super::loss::LossCap;
use super::probe::Probing;
use super::{Inputs, LinkState, Switch};
use crate::adapt::{AdaptConfig, Allocation, Ladder, TrackRole};

fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

#[test]
fn loss_cap_cuts_by_the_loss_and_holds() {
    const BUDGET: u64 = 1_000_000;
    const AUDIO: u64 = 60_000;
    // (name, sent bit/s, steps: (ms, reported loss, budget after the cap)).
    type Step = (u64, Option<f32>, u64);
    let cases: &[(&str, u64, &[Step])] = &[
        (
            "loss at loss_cut is no cut",
            900_000,
            &[(0, Some(0.05), BUDGET), (100, None, BUDGET)],
        ),
        (
            "heavy loss cuts by the loss for loss_hold",
            900_000,
            &[
                (0, Some(0.0625), 937_500),
                (1_999, None, 937_500),
                (2_000, None, BUDGET),
            ],
        ),
        (
            "a light report does not lift the cut",
            900_000,
            &[
                (0, Some(0.0625), 937_500),
                (500, Some(0.01), 937_500),
                (2_000, None, BUDGET),
            ],
        ),
        (
            "a later heavy report replaces the cut and its hold",
            900_000,
            &[
                (0, Some(0.0625), 937_500),
                (1_500, Some(0.09375), 906_250),
                (3_499, None, 906_250),
                (3_500, None, BUDGET),
            ],
        ),
        (
            "a collapse cuts to what got through of what was sent",
            600_000,
            &[(0, Some(0.25), 450_000)],
        ),
        (
            "a collapse never cuts below the voice",
            40_000,
            &[(0, Some(0.5), AUDIO)],
        ),
        (
            "near-total loss still keeps a twentieth",
            10_000_000,
            &[(0, Some(1.0), 50_000)],
        ),
    ];
    let ac = AdaptConfig::default();
    let t0 = Instant::now();
    for (name, sent, steps) in cases {
        let mut c = LossCap::default();
        for &(ms, loss, expect) in *steps {
            let now = at(t0, ms);
            if let Some(loss) = loss {
                let acted = c.report(loss, BUDGET as f64, *sent, AUDIO, now, &ac);
                assert_eq!(acted, loss > ac.loss_cut, "{name}: acted at {ms} ms");
            }
            let got = c.limit(BUDGET, now);
            assert_eq!(got, expect, "{name}: budget at {ms} ms");
            assert_eq!(
                c.cap().is_some(),
                got < BUDGET,
                "{name}: cap in force at {ms} ms"
            );
        }
    }
}

#[derive(Clone, Copy)]
enum Ev {
    Up,
    /// A step down at this video budget; `true` when it forwards less.
    Down(u64, bool),
    /// An evaluation at this video budget.
    Refresh(u64),
}

#[test]
fn flap_backoff_follows_steps_that_did_not_last() {
    use Ev::{Down, Refresh, Up};
    // (name, steps: (s, event, backoff in s after it)).
    type Step = (u64, Ev, u64);
    let cases: &[(&str, &[Step])] = &[
        (
            "a step up that lasted flap_within costs nothing",
            &[(0, Up, 0), (15, Down(500_000, true), 0)],
        ),
        (
            "each step up undone soon doubles the backoff, up to backoff_max",
            &[
                (0, Up, 0),
                (5, Down(500_000, true), 4),
                (20, Up, 4),
                (25, Down(500_000, true), 8),
                (40, Up, 8),
                (45, Down(500_000, true), 16),
                (60, Up, 16),
                (65, Down(500_000, true), 30),
                (80, Up, 30),
                (85, Down(500_000, true), 30),
            ],
        ),
        (
            "another allocation of the same cost is no flap",
            &[(0, Up, 0), (5, Down(500_000, false), 0)],
        ),
        (
            "a step up that lasts clears the backoff",
            &[
                (0, Up, 0),
                (5, Down(500_000, true), 4),
                (20, Up, 4),
                (34, Refresh(500_000), 4),
                (35, Refresh(500_000), 0),
            ],
        ),
        (
            "a step down since the last step up keeps it",
            &[
                (0, Up, 0),
                (5, Down(500_000, true), 4),
                (60, Refresh(500_000), 4),
            ],
        ),
        (
            "a budget over real_rise times the last step down's clears it",
            &[
                (0, Up, 0),
                (5, Down(400_000, true), 4),
                (6, Refresh(800_000), 4),
                (7, Refresh(800_001), 0),
            ],
        ),
    ];
    let ac = AdaptConfig::default();
    let t0 = Instant::now();
    for (name, steps) in cases {
        let mut f = FlapBackoff::default();
        for &(s, ev, expect) in *steps {
            let now = at(t0, s * 1000);
            match ev {
                Up => f.stepped_up(now),
                Down(budget, lighter) => f.stepped_down(budget, lighter, now, &ac),
                Refresh(budget) => f.refresh(budget, now, &ac),
            }
            assert_eq!(
                f.hold(&ac),
                ac.up_hold + Duration::from_secs(expect),
                "{name}: hold at {s} s"
            );
        }
    }
}

#[test]
fn flap_backoff_settles_down_dwell_after_a_step_down() {
    // (ms of the step down, or none; ms asked at; settled).
    let cases: &[(Option<u64>, u64, bool)] = &[
        (None, 0, true),
        (Some(0), 0, false),
        (Some(0), 3_999, false),
        (Some(0), 4_000, true),
    ];
    let ac = AdaptConfig::default();
    let t0 = Instant::now();
    for &(down, asked, expect) in cases {
        let mut f = FlapBackoff::default();
        if let Some(d) = down {
            f.stepped_down(500_000, true, at(t0, d), &ac);
        }
        assert_eq!(
            f.settled(at(t0, asked), &ac),
            expect,
            "down at {down:?}, asked at {asked} ms"
        );
    }
}

#[test]
fn probing_doubles_the_wait_after_probes_that_did_not_help() {
    // (name, spans (ms) in which the estimate is not stuck, per re-probe whether the
    // estimate rose 20 % (else 5 %) by the next one, ms of the re-probes).
    type Case<'a> = (&'a str, &'a [(u64, u64)], &'a [bool], &'a [u64]);
    let cases: &[Case] = &[
        (
            "a thin link: 3 s, 3 s, 6 s, then 8 s",
            &[],
            &[false; 8],
            &[3_000, 6_000, 12_000, 20_000, 28_000, 36_000],
        ),
        (
            "probes that raise the estimate keep the shortest wait",
            &[],
            &[true; 16],
            &[
                3_000, 6_000, 9_000, 12_000, 15_000, 18_000, 21_000, 24_000, 27_000, 30_000,
                33_000, 36_000, 39_000,
            ],
        ),
        (
            "a probe that helped resets the wait",
            &[],
            &[false, false, true, false, false, false, false, false],
            &[3_000, 6_000, 12_000, 20_000, 23_000, 29_000, 37_000],
        ),
        (
            "not stuck stops the clock; it restarts at probe_min_every",
            &[(4_000, 10_000)],
            &[false; 8],
            &[3_000, 13_000, 19_000, 27_000, 35_000],
        ),
    ];
    let ac = AdaptConfig::default();
    let t0 = Instant::now();
    for (name, unstuck, grows, expect) in cases {
        let mut p = Probing::default();
        let mut estimate = 300_000u64;
        let mut fired = Vec::new();
        for ms in (0..=39_900).step_by(100) {
            let stuck = !unstuck.iter().any(|&(a, b)| (a..b).contains(&ms));
            if let Some(from) = p.poll(stuck, estimate, at(t0, ms), &ac) {
                assert_eq!(from, estimate, "{name}: probe from");
                let rise = if grows[fired.len()] { 5 } else { 20 };
                estimate += estimate / rise;
                fired.push(ms);
            }
        }
        assert_eq!(fired, *expect, "{name}");
    }
}

#[test]
fn video_floor_holds_until_loss_then_until_the_estimate_carries_all() {
    const LOWEST: u64 = 170_000;
    // (name, steps: (losses reported before it, raw video budget, loss cap in
    // force, every track forwarded after it, video budget)).
    type Step<'a> = (&'a [Option<f32>], u64, bool, bool, u64);
    let cases: &[(&str, &[Step])] = &[
        (
            "a lossless thin link keeps the lowest layers",
            &[
                (&[], 100_000, false, true, LOWEST),
                (&[None], 100_000, false, true, LOWEST),
            ],
        ),
        (
            "under a loss cap there is no floor",
            &[(&[], 100_000, true, false, 100_000)],
        ),
        (
            "loss at video_floor_max_loss keeps the floor",
            &[(&[Some(0.02)], 100_000, false, true, LOWEST)],
        ),
        (
            "loss above it removes the floor until the budget carries every track",
            &[
                (&[Some(0.03)], 100_000, false, false, 100_000),
                (&[Some(0.0)], 100_000, false, false, 100_000),
                (&[], 100_000, false, true, 100_000),
                (&[], 200_000, false, false, 200_000),
                (&[], 100_000, false, false, 100_000),
                (&[], 200_000, false, true, 200_000),
                (&[], 100_000, false, true, LOWEST),
            ],
        ),
        (
            "the worst of the reports since the last evaluation counts",
            &[(
                &[Some(0.05), Some(0.0), None],
                100_000,
                false,
                false,
                100_000,
            )],
        ),
        (
            "a budget above the lowest layers is not raised",
            &[(&[], 300_000, false, true, 300_000)],
        ),
    ];
    let ac = AdaptConfig::default();
    for (name, steps) in cases {
        let mut f = VideoFloor::default();
        for (k, &(losses, raw, capped, all, expect)) in steps.iter().enumerate() {
            for &l in losses {
                f.note_loss(l);
            }
            assert_eq!(
                f.video_budget(raw, LOWEST, capped, &ac),
                expect,
                "{name}: step {k}"
            );
            f.settle(all, raw, LOWEST);
        }
    }
}

#[test]
fn controller_switches_down_at_once_and_up_after_the_hold() {
    use Switch::{Down, Replace, Up};
    const AUDIO: u64 = 60_000;
    let ladders = [Ladder {
        role: TrackRole::Camera,
        rates: vec![170_000, 540_000, 1_560_000],
        cap: 2,
    }];
    let (q, h, f): (Allocation, Allocation, Allocation) =
        (vec![Some(0)], vec![Some(1)], vec![Some(2)]);
    // (ms, estimate, loss reported before it, switch).
    let steps: &[(u64, u64, Option<f32>, Option<Switch>)] = &[
        (0, 3_000_000, None, Some(Replace(f.clone()))),
        (1_000, 1_000_000, None, Some(Down(h.clone()))),
        // A video budget a little below what is forwarded, within down_margin: kept.
        (1_500, 658_824, None, None),
        // Headroom from 2 s on (less than a real rise), but down_dwell runs until 5 s.
        (2_000, 1_920_000, None, None),
        (4_900, 1_920_000, None, None),
        (5_000, 1_920_000, None, Some(Up(f.clone()))),
        // The step up did not last: the next one waits up_hold plus 4 s.
        (6_000, 1_000_000, None, Some(Down(h.clone()))),
        (10_000, 1_920_000, None, None),
        (15_499, 1_920_000, None, None),
        (15_500, 1_920_000, None, Some(Up(f.clone()))),
        // Down all the way at once (the floor keeps the lowest layer), then up one
        // step at a time, each after its own up_hold.
        (40_000, 200_000, None, Some(Down(q.clone()))),
        (45_000, 3_000_000, None, None),
        (46_500, 3_000_000, None, Some(Up(h.clone()))),
        (46_600, 3_000_000, None, None),
        (48_099, 3_000_000, None, None),
        (48_100, 3_000_000, None, Some(Up(f.clone()))),
        // Lossless, the lowest layer stays below its cost; with loss video pauses.
        (70_000, 150_000, None, Some(Down(q.clone()))),
        (71_000, 150_000, Some(0.25), Some(Down(vec![None]))),
    ];
    let ac = AdaptConfig::default();
    let t0 = Instant::now();
    let mut link = LinkState::default();
    let mut current: Option<Allocation> = None;
    for (ms, estimate, loss, expect) in steps {
        if loss.is_some() {
            link.note_loss(*loss, t0 + Duration::from_millis(*ms), &ac);
            link.loss = *loss;
            link.last_loss = *loss;
        }
        let d = link.evaluate(
            Inputs {
                estimate: *estimate,
                school_share: None,
                ladders: &ladders,
                current: current.clone(),
                audio_bps: AUDIO,
                sent_bps: 200_000,
            },
            at(t0, *ms),
            &ac,
        );
        assert_eq!(d.switch, *expect, "switch at {ms} ms");
        if let Some(s) = &d.switch {
            current = Some(s.allocation().clone());
        }
    }
}
