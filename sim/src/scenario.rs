//! The link-adaptation scenarios (issue 3, after RFC 8867 where it applies) and the
//! figures each one yields.

use std::time::Duration;

use relay_core::RelayConfig;

use crate::metrics::{first_time, rate_at, Experience};
use crate::world::{LinkShape, Loss, SchoolSpec, World, BIN};

/// A named scenario.
pub struct Scenario {
    pub name: &'static str,
    pub schools: Vec<SchoolSpec>,
    pub duration: Duration,
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn school(name: &str, classrooms: usize, down: Vec<(Duration, LinkShape)>) -> SchoolSpec {
    SchoolSpec {
        name: name.into(),
        down,
        classrooms,
        up: None,
    }
}

/// RFC 8867 §5.1 variable capacity: 1.0 → 2.5 → 0.6 → 1.0 Mbit/s, 50 ms, 300 ms queue.
pub fn variable_capacity(scale: u64) -> Scenario {
    let s = |kbps| LinkShape {
        delay: Duration::from_millis(50),
        ..LinkShape::new(kbps)
    };
    Scenario {
        name: "variable",
        schools: vec![school(
            "variable",
            1,
            vec![
                (secs(0), s(1000)),
                (secs(40 / scale), s(2500)),
                (secs(60 / scale), s(600)),
                (secs(80 / scale), s(1000)),
            ],
        )],
        duration: secs(100 / scale),
    }
}

/// 1.5 Mbit/s with 3 % Gilbert-Elliott burst loss.
pub fn burst_loss(duration: Duration) -> Scenario {
    Scenario {
        name: "burst-loss",
        schools: vec![school(
            "burst-loss",
            1,
            vec![(
                secs(0),
                LinkShape {
                    delay: Duration::from_millis(30),
                    loss: Loss::Bursty {
                        mean: 0.03,
                        burst: 3.0,
                    },
                    ..LinkShape::new(1500)
                },
            )],
        )],
        duration,
    }
}

/// 1.5 Mbit/s with 1 % independent random loss (the audio goal's condition).
pub fn random_loss(duration: Duration) -> Scenario {
    Scenario {
        name: "random-loss-1%",
        schools: vec![school(
            "random-loss",
            1,
            vec![(
                secs(0),
                LinkShape {
                    delay: Duration::from_millis(30),
                    loss: Loss::Random(0.01),
                    ..LinkShape::new(1500)
                },
            )],
        )],
        duration,
    }
}

/// Satellite-like: 2 Mbit/s, 600 ms RTT, 30 ms jitter.
pub fn satellite(duration: Duration) -> Scenario {
    Scenario {
        name: "satellite",
        schools: vec![school(
            "satellite",
            1,
            vec![(
                secs(0),
                LinkShape {
                    delay: Duration::from_millis(300),
                    jitter: Duration::from_millis(30),
                    queue: Duration::from_millis(500),
                    ..LinkShape::new(2000)
                },
            )],
        )],
        duration,
    }
}

/// [`satellite`] losing 0.5 % of packets at random: retransmissions come a 600 ms
/// round trip late (for the repair delay's test; not in the benchmark's table).
pub fn lossy_satellite(duration: Duration) -> Scenario {
    let mut sc = satellite(duration);
    sc.name = "lossy-satellite";
    for (_, shape) in &mut sc.schools[0].down {
        shape.loss = Loss::Random(0.005);
    }
    sc
}

/// Three classrooms of one school behind one 2 Mbit/s link, a fourth school on 8.
pub fn shared_link(duration: Duration) -> Scenario {
    Scenario {
        name: "shared-link",
        schools: vec![
            school("shared-2M", 3, vec![(secs(0), LinkShape::new(2000))]),
            school("fibre-8M", 1, vec![(secs(0), LinkShape::new(8000))]),
        ],
        duration,
    }
}

/// 2 Mbit/s collapsing to 150 kbit/s for 20 s, then back.
pub fn collapse(scale: u64) -> Scenario {
    let s = |kbps| LinkShape {
        delay: Duration::from_millis(40),
        ..LinkShape::new(kbps)
    };
    Scenario {
        name: "collapse",
        schools: vec![school(
            "collapse",
            1,
            vec![(secs(0), s(2000)), (secs(20), s(150)), (secs(40), s(2000))],
        )],
        duration: secs(40) + secs(30 / scale),
    }
}

/// Every scenario at full length, for the benchmark.
pub fn all() -> Vec<Scenario> {
    vec![
        variable_capacity(1),
        burst_loss(secs(60)),
        random_loss(secs(60)),
        satellite(secs(60)),
        shared_link(secs(60)),
        collapse(1),
    ]
}

/// What one run of a scenario gave, for its first school (and all classrooms).
pub struct Outcome {
    pub name: &'static str,
    pub world: World,
    /// Per classroom.
    pub seen: Vec<Experience>,
    /// Per capacity drop of school 0: time until the relay's send rate (500 ms
    /// window) fit the new capacity.
    pub fit_after_drop: Vec<Option<Duration>>,
    /// Per capacity rise of school 0: time until delivery (1 s window) reached 85 %
    /// of what the link can usefully carry.
    pub reach_after_rise: Vec<Option<Duration>>,
    /// Mean delivered rate over usable capacity, after the first 5 s, school 0.
    pub utilization: f64,
}

/// The most a classroom can use: every top layer, audio and overhead.
pub const USABLE_BPS: u64 = 1_750_000;

pub fn run(sc: Scenario, seed: u64) -> Outcome {
    run_with(RelayConfig::default(), sc, seed)
}

/// [`run`] with the relay configured otherwise.
pub fn run_with(cfg: RelayConfig, sc: Scenario, seed: u64) -> Outcome {
    let schedule: Vec<(Duration, LinkShape)> = sc.schools[0].down.clone();
    let mut w = World::new(cfg, sc.schools, seed);
    w.run_until(sc.duration);
    let seen: Vec<Experience> = w.classes.iter().map(|c| Experience::of(c, w.t0)).collect();
    let (sent, delivered) = w.school_bins(0);
    let classrooms0 = w.classes.iter().filter(|c| c.school == 0).count() as u64;
    let usable = |kbps: u64| (kbps * 1000).min(USABLE_BPS * classrooms0);
    let mut fit = vec![];
    let mut reach = vec![];
    for pair in schedule.windows(2) {
        let (before, (at, after)) = (pair[0].1, pair[1]);
        let cap = after.kbps * 1000;
        if after.kbps < before.kbps {
            fit.push(first_time(sent, at, 5, |r| r <= cap));
        } else {
            let goal = usable(after.kbps) * 85 / 100;
            reach.push(first_time(delivered, at, 10, |r| r >= goal));
        }
    }
    // Utilization: delivered over usable capacity, bin by bin after 5 s.
    let mut num = 0.0;
    let mut den = 0.0;
    for i in 50..delivered.len() {
        let t = BIN * i as u32;
        let shape = schedule
            .iter()
            .rev()
            .find(|(at, _)| *at <= t)
            .map(|(_, s)| s)
            .unwrap();
        num += rate_at(delivered, i, 1) as f64;
        den += usable(shape.kbps) as f64;
    }
    Outcome {
        name: sc.name,
        world: w,
        seen,
        fit_after_drop: fit,
        reach_after_rise: reach,
        utilization: if den > 0.0 { num / den } else { 0.0 },
    }
}
