//! Link adaptation through the real relay code on a virtual clock: str0m teacher
//! (Opus + 3-layer VP8 simulcast at about 150/500/1500 kbit/s), str0m classrooms,
//! emulated school links. Asserts behaviour; the figures are in scenario-bench.

use std::time::Duration;

use relay_sim::metrics::rendered;
use relay_sim::peer::Classroom;
use relay_sim::scenario::{self, Outcome};

/// Every change of layer in what a classroom received starts with a keyframe.
fn assert_switches_on_keyframes(c: &Classroom, what: &str) {
    let mut v = c.video.clone();
    v.sort_by_key(|p| p.seq);
    for w in v.windows(2) {
        // Across a hole the keyframe's first packet may be the one the link lost.
        if w[1].layer != w[0].layer && w[1].seq == w[0].seq + 1 {
            assert!(
                w[1].first && w[1].key,
                "{what}: switch {} -> {} at seq {} not on a keyframe",
                w[0].layer,
                w[1].layer,
                w[1].seq
            );
        }
    }
}

/// Layer shown at `t` since the start.
fn layer_at(o: &Outcome, class: usize, t: Duration) -> Option<u8> {
    let t0 = o.world.t0;
    rendered(&o.world.classes[class].video)
        .iter()
        .take_while(|(at, _)| *at - t0 <= t)
        .last()
        .map(|(_, l)| *l)
}

#[test]
fn variable_capacity_goes_down_on_the_drop_and_up_on_the_rise() {
    let o = scenario::run(scenario::variable_capacity(1), 7);
    let c = &o.world.classes[0];
    assert_switches_on_keyframes(c, "variable");
    let secs = Duration::from_secs;
    // 1.0 Mbit/s: the middle layer; 2.5: the top (the relay re-probes the stuck
    // estimate); 0.6: the lowest; back at 1.0: the middle again.
    assert_eq!(layer_at(&o, 0, secs(38)), Some(1), "at 1.0 Mbit/s");
    assert_eq!(layer_at(&o, 0, secs(58)), Some(2), "at 2.5 Mbit/s");
    // The lowest layer's keyframe arrives about 3 s after the drop (seed 7); frames
    // play later still while the jitter buffer covers the queue built in the drop.
    assert_eq!(
        layer_at(&o, 0, secs(66)),
        Some(0),
        "at 0.6 Mbit/s, 6 s after the drop"
    );
    assert_eq!(layer_at(&o, 0, secs(99)), Some(1), "back at 1.0 Mbit/s");
    let fit = o.fit_after_drop[0].expect("send rate never fit 0.6 Mbit/s");
    assert!(fit < secs(3), "send rate fit the drop after {fit:?}");
    let e = &o.seen[0];
    // No random loss, but the 2.5 → 0.6 Mbit/s drop overflows the bottleneck queue
    // until the relay has cut its rate: a few packets of voice may go there (4 of
    // about 5,000 with seed 7).
    assert!(e.audio_lost <= 6, "{} audio packets lost", e.audio_lost);
    assert!(
        e.audio_gap < Duration::from_millis(500),
        "audio gap {:?}",
        e.audio_gap
    );
}

#[test]
fn collapse_keeps_the_voice_and_brings_video_back() {
    let o = scenario::run(scenario::collapse(2), 7);
    let c = &o.world.classes[0];
    assert_switches_on_keyframes(c, "collapse");
    let t0 = o.world.t0;
    let frames = rendered(&c.video);
    let secs = Duration::from_secs;
    // During the collapse (150 kbit/s from 20 s to 40 s) video pauses...
    let during = frames
        .iter()
        .filter(|(at, _)| (secs(30)..secs(40)).contains(&(*at - t0)))
        .count();
    assert!(during < 25, "{during} frames shown on a 150 kbit/s link");
    // ...and comes back within a few seconds of the recovery.
    let back = frames
        .iter()
        .find(|(at, _)| *at - t0 > secs(40))
        .map(|(at, _)| *at - t0)
        .expect("video never came back");
    assert!(back < secs(50), "video back at {back:?}");
    // Voice never stopped for long: Opus packets kept arriving through it.
    let e = &o.seen[0];
    assert!(e.audio_gap < secs(2), "audio gap {:?}", e.audio_gap);
    let late: Vec<_> = c
        .audio_at
        .iter()
        .filter(|t| (secs(22)..secs(40)).contains(&(**t - t0)))
        .collect();
    assert!(
        late.len() > 18 * 40,
        "only {} audio packets during the collapse",
        late.len()
    );
}

#[test]
fn one_school_link_is_shared_by_its_classrooms() {
    let o = scenario::run(scenario::shared_link(Duration::from_secs(30)), 7);
    let end = Duration::from_secs(29);
    for i in 0..4 {
        assert_switches_on_keyframes(&o.world.classes[i], "shared");
    }
    // The fibre school's lone classroom gets the top layer.
    assert_eq!(layer_at(&o, 3, end), Some(2));
    // The three classrooms behind 2 Mbit/s together stay within it.
    let rate = [170_000u64, 560_000, 1_600_000];
    let total: u64 = (0..3)
        .map(|i| layer_at(&o, i, end).map_or(0, |l| rate[l as usize]))
        .sum();
    assert!(
        total <= 2_000_000,
        "three classrooms want {total} bit/s of a 2 Mbit/s link"
    );
    for e in &o.seen {
        assert!(e.frames > 0);
        assert_eq!(e.audio_lost, 0);
    }
}

/// A school the relay has seen before starts near what its link sustained: the
/// top layer shows up sooner than for a school met for the first time.
#[test]
fn warm_start_reaches_the_top_layer_sooner() {
    use relay_core::{RelayConfig, WarmTable};
    use relay_sim::world::{LinkShape, SchoolSpec, World};
    let top_at = |warm: WarmTable| {
        let school = SchoolSpec {
            name: "school-w".into(),
            down: vec![(
                Duration::ZERO,
                LinkShape {
                    delay: Duration::from_millis(40),
                    ..LinkShape::new(3_000)
                },
            )],
            classrooms: 1,
            up: None,
        };
        let mut w = World::with_warm(RelayConfig::default(), vec![school], 7, warm);
        w.run_until(Duration::from_secs(15));
        rendered(&w.classes[0].video)
            .iter()
            .find(|(_, l)| *l == 2)
            .map(|(at, _)| *at - w.t0)
    };
    let cold = top_at(WarmTable::default());
    let mut known = WarmTable::default();
    known.observe("school-w", 2_600_000);
    let warm = top_at(known).expect("warm start never showed the top layer");
    assert!(
        warm < Duration::from_secs(2),
        "warm start: top layer at {warm:?}"
    );
    assert!(
        cold.is_none_or(|c| c > warm),
        "cold {cold:?} not later than warm {warm:?}"
    );
    println!("top layer: cold start {cold:?}, warm start {warm:?}");
}

/// At 1 % random loss the relay's RED brings the lost voice packets back: the
/// classroom rebuilds them from the next packet, and (almost) none stay lost.
#[test]
fn voice_lost_on_the_link_comes_back_from_red() {
    let o = scenario::run(scenario::random_loss(Duration::from_secs(30)), 7);
    let c = &o.world.classes[0];
    assert!(
        c.red_recovered >= 5,
        "only {} packets rebuilt from RED",
        c.red_recovered
    );
    let e = &o.seen[0];
    assert!(e.audio_lost <= 2, "{} voice packets lost", e.audio_lost);
}

/// At 3 % burst loss (two and more voice packets lost in a row) the relay's RED
/// goes two-deep, and the classroom rebuilds what one-deep RED could not: the same
/// lesson (seed 7) with two-deep RED turned off loses at least half as many voice
/// packets again (18 against 9 when written). The 0.2 % goal is measured over many
/// seeds by scenario-bench.
#[test]
fn burst_loss_makes_red_two_deep() {
    let lost = |deep_from: f32| {
        let mut cfg = relay_core::RelayConfig::default();
        cfg.adapt.red_deep_loss = deep_from;
        let o = scenario::run_with(cfg, scenario::burst_loss(Duration::from_secs(60)), 7);
        (o.seen[0].audio_lost, o.world.classes[0].red_recovered)
    };
    let (two, rebuilt) = lost(relay_core::RelayConfig::default().adapt.red_deep_loss);
    let (one, _) = lost(2.0);
    println!(
        "burst loss: {two} voice packets lost ({rebuilt} rebuilt from RED); one-deep only: {one}"
    );
    assert!(two * 3 <= one * 2, "two-deep lost {two}, one-deep {one}");
    // 60 s of 20 ms packets: 3,000.
    assert!(two <= 15, "{two} voice packets lost of about 3,000");
}

/// Over a lossy 600 ms round trip the relay asks the classroom to hold its picture
/// a round trip and a half (the playout-delay extension, through the real edge and
/// str0m to the classroom), and the classroom, honouring it as Chromium does,
/// freezes less than with the hold turned off.
#[test]
fn a_lossy_satellite_classroom_is_asked_to_hold_its_picture_and_freezes_less() {
    let run = |repair_max_ms: u64| {
        let mut cfg = relay_core::RelayConfig::default();
        cfg.adapt.repair_max = Duration::from_millis(repair_max_ms);
        scenario::run_with(cfg, scenario::lossy_satellite(Duration::from_secs(60)), 7)
    };
    let (on, off) = (run(1500), run(0));
    let asked: Vec<Duration> = on.world.classes[0]
        .video
        .iter()
        .filter_map(|v| v.min_delay)
        .collect();
    let last = *asked
        .last()
        .expect("no video packet carried a playout delay");
    assert!(
        (Duration::from_millis(900)..=Duration::from_millis(1100)).contains(&last),
        "held {last:?} on a 600 ms round trip"
    );
    assert!(off.world.classes[0]
        .video
        .iter()
        .all(|v| v.min_delay.is_none()));
    let (with, without) = (on.seen[0].freezes, off.seen[0].freezes);
    println!("freezes with the hold {with}, without {without}");
    assert!(
        with < without,
        "freezes with the hold {with}, without {without}"
    );
}
