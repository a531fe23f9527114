//! Link adaptation on a virtual clock: estimates, loss and budgets drive the layers.

use super::*;

impl World {
    pub(super) fn estimate(&mut self, peer: u64, bps: u64) {
        self.input(Input::LinkEstimate {
            now: self.now,
            peer: PeerId(peer),
            bps,
        });
    }

    fn loss(&mut self, peer: u64, loss: f32) {
        self.quality(peer, loss, None);
    }

    /// A receiver report's loss and, when given, round trip.
    pub(super) fn quality(&mut self, peer: u64, loss: f32, rtt: Option<Duration>) {
        self.input(Input::LinkQuality {
            now: self.now,
            peer: PeerId(peer),
            loss: Some(loss),
            rtt,
        });
    }

    /// Layers (index into RIDS) of the video forwarded to `peer` since packet `from`.
    fn layers_since(&self, peer: u64, from: usize) -> Vec<u8> {
        let mut v: Vec<u8> = self.video(peer)[from..].iter().map(layer_of).collect();
        v.dedup();
        v
    }
}

#[test]
fn estimate_drop_switches_down_at_once_and_rise_up_after_hold() {
    let mut w = World::new();
    w.run(Duration::from_secs(1));
    w.join(10, "school-a", None);
    w.estimate(10, 3_000_000);
    w.run(Duration::from_secs(3));
    assert_eq!(
        w.layers_since(10, 0),
        vec![2],
        "a fat link gets the top layer"
    );

    // The link drops to 800 kbit/s: the middle layer (~500k + audio) fits.
    let mark = w.video(10).len();
    let drop_at = w.now;
    w.estimate(10, 800_000);
    w.run(Duration::from_secs(6));
    assert_eq!(w.layers_since(10, mark), vec![2, 1]);
    let v = w.video(10);
    let switch = mark + v[mark..].iter().position(|f| layer_of(f) == 1).unwrap();
    assert!(
        is_keyframe_start(&v[switch]),
        "switch down not on a keyframe"
    );
    assert_continuous(&v[mark..]);
    let kf = w.kf_requests.iter().find(|(t, _)| *t >= drop_at).unwrap();
    assert!(
        kf.0 - drop_at <= Duration::from_millis(100),
        "keyframe asked late"
    );

    // It rises again: nothing changes before the hold, then one switch up.
    let mark = w.video(10).len();
    let rise_at = w.now;
    w.estimate(10, 3_000_000);
    w.run(Duration::from_millis(1200));
    assert_eq!(
        w.layers_since(10, mark),
        vec![1],
        "no switch up before the hold"
    );
    w.run(Duration::from_secs(3));
    assert_eq!(w.layers_since(10, mark), vec![1, 2]);
    let v = w.video(10);
    let up = mark + v[mark..].iter().position(|f| layer_of(f) == 2).unwrap();
    assert!(is_keyframe_start(&v[up]));
    assert_continuous(&v[mark..]);
    let stats = w.relay.stats(w.now);
    let s = &stats[0].subscribers[0];
    assert_eq!(s.switches, 2);
    assert_eq!(s.estimate_bps, Some(3_000_000));
    assert!(rise_at > drop_at);
}

#[test]
fn a_low_estimate_without_loss_keeps_the_lowest_layer() {
    let mut w = World::new();
    w.run(Duration::from_secs(1));
    w.join(10, "school-a", None);
    w.estimate(10, 1_000_000);
    w.run(Duration::from_secs(2));
    // The delay signal alone (a busy receiver, jitter) pulls the estimate down; the
    // link loses nothing: the lowest layer keeps flowing.
    w.estimate(10, 150_000);
    w.loss(10, 0.0);
    w.run(Duration::from_millis(500));
    let before = w.video(10).len();
    w.run(Duration::from_secs(3));
    assert!(
        w.video(10).len() > before + 50,
        "video paused on a lossless link"
    );
    assert_eq!(w.relay.stats(w.now)[0].subscribers[0].paused_tracks, 0);
    // Loss shows the link really is that thin: now video pauses.
    w.loss(10, 0.06);
    w.run(Duration::from_millis(500));
    let paused = w.video(10).len();
    w.run(Duration::from_secs(3));
    assert_eq!(
        w.video(10).len(),
        paused,
        "video kept flowing on a lossy thin link"
    );
}

/// The lowest estimate (from `start`, in `step`s) at which a classroom joining with
/// it shows `layer` after `settle`; with `red`, its voice goes out with RED.
fn lowest_estimate_showing(
    layer: u8,
    red: bool,
    (start, step): (u64, u64),
    settle: Duration,
) -> u64 {
    (0..100)
        .map(|i| start + i * step)
        .find(|&bps| {
            let mut w = World::new();
            w.run(Duration::from_secs(1));
            w.join_with(10, "school-a", None, red);
            w.estimate(10, bps);
            w.run(settle);
            w.video(10).last().map(layer_of) == Some(layer)
        })
        .expect("the layer shows at some estimate")
}

/// Voice sent with RED costs the link about twice as much: the camera needs a
/// higher estimate for the same layer.
#[test]
fn redundant_voice_counts_against_the_video_budget() {
    let settle = Duration::from_secs(3);
    let plain = lowest_estimate_showing(1, false, (400_000, 10_000), settle);
    let red = lowest_estimate_showing(1, true, (400_000, 10_000), settle);
    assert!(
        red > plain && red <= plain + 100_000,
        "middle layer from {plain} bit/s plain, {red} bit/s with RED"
    );
}

/// A link that keeps crossing a layer boundary (the estimate now carries the top
/// layer, now not) gets fewer and fewer steps up: each step up that did not last
/// doubles the wait before the next.
#[test]
fn a_link_at_a_layer_boundary_backs_off_its_steps_up() {
    let top_from = lowest_estimate_showing(2, false, (1_000_000, 50_000), Duration::from_secs(6));
    let mut w = World::new();
    w.run(Duration::from_secs(1));
    w.join(10, "school-a", None);
    w.estimate(10, top_from * 11 / 10);
    w.run(Duration::from_secs(6));
    let from = w.video(10).len();
    assert_eq!(w.video(10).last().map(layer_of), Some(2));
    // 8 cycles of 6 s with room for the top layer and 2 s without.
    for _ in 0..8 {
        w.estimate(10, top_from * 11 / 10);
        w.run(Duration::from_secs(6));
        w.estimate(10, top_from * 8 / 10);
        w.run(Duration::from_secs(2));
    }
    let layers = w.layers_since(10, from);
    let switches = layers.windows(2).filter(|p| p[0] != p[1]).count();
    // Without the backoff: a step up in every cycle and a step down after it (16).
    assert!(switches <= 6, "{switches} switches in 64 s: {layers:?}");
    assert!(switches >= 2, "never stepped down: {layers:?}");
}

#[test]
fn thin_link_pauses_video_but_never_audio() {
    let mut w = World::new();
    w.run(Duration::from_secs(1));
    w.join(10, "school-a", None);
    w.estimate(10, 1_000_000);
    w.run(Duration::from_secs(2));
    let audio_before = w.audio(10).len();
    let video_before = w.video(10).len();
    assert!(video_before > 0);

    // 150 kbit/s: voice (~50k with overhead) fits, the lowest video (~150k) does not,
    // and the overflowing link loses packets.
    w.estimate(10, 150_000);
    w.loss(10, 0.15);
    w.run(Duration::from_millis(200));
    let video_paused = w.video(10).len();
    w.run(Duration::from_secs(5));
    assert_eq!(
        w.video(10).len(),
        video_paused,
        "video kept flowing on a 150k link"
    );
    let audio = &w.audio(10)[audio_before..];
    assert!(
        audio.len() >= 5200 / 20 - 2,
        "audio paused: {} packets",
        audio.len()
    );
    assert_continuous(w.audio(10));
    let st = &w.relay.stats(w.now)[0].subscribers[0];
    assert_eq!((st.paused_tracks, st.pauses), (1, 1));
    // While paused, the estimator is asked to make room for the lowest layer.
    let (min, _) = w.bwe[&PeerId(10)];
    assert!(min > 150_000, "probe target {min}");

    // The link comes back: video resumes on a keyframe within a few seconds.
    w.estimate(10, 1_000_000);
    w.run(Duration::from_secs(4));
    let v = w.video(10);
    assert!(v.len() > video_paused, "video did not resume");
    assert!(is_keyframe_start(&v[video_paused]));
    assert_continuous(&v[..video_paused]);
    assert_continuous(&v[video_paused..]);
    // Across the pause: the next sequence number, and the timestamp advanced by
    // about the time video was away (so the receiver's jitter buffer is not fooled).
    let (last, first) = (&v[video_paused - 1], &v[video_paused]);
    assert_eq!(first.seq, last.seq + 1);
    let away_ms = u64::from(first.ts.wrapping_sub(last.ts)) / 90;
    assert!(
        (5_000..9_000).contains(&away_ms),
        "timestamp advanced {away_ms} ms"
    );
}

#[test]
fn classrooms_of_one_school_share_its_budget() {
    let mut w = World::new();
    w.run(Duration::from_secs(1));
    // School A: two classrooms whose estimates add up to 1.2 Mbit/s; school B: one
    // classroom at the same 900 kbit/s as A's better one.
    // (The thinner one first: a classroom already forwarded a layer keeps it
    // within the down margin, so the order would matter.)
    for (peer, school, bps) in [
        (11, "school-a", 300_000),
        (10, "school-a", 900_000),
        (12, "school-b", 900_000),
    ] {
        w.join(peer, school, None);
        w.estimate(peer, bps);
    }
    w.run(Duration::from_secs(3));
    // A's share is 600k each: the better-linked classroom still only gets the
    // lowest layer; B's classroom alone on its link gets the middle one.
    assert_eq!(w.layers_since(10, 0), vec![0]);
    assert_eq!(w.layers_since(11, 0), vec![0]);
    assert_eq!(w.layers_since(12, 0), vec![1]);
}

#[test]
fn stuck_estimate_is_reprobed_with_backoff_but_not_on_a_lossy_link() {
    let mut w = World::new();
    w.run(Duration::from_secs(1));
    w.join(10, "school-a", None);
    w.estimate(10, 800_000);
    let start = w.now;
    w.run(Duration::from_secs(19));
    let at: Vec<u64> = w
        .reprobes
        .iter()
        .map(|(t, p, from)| {
            assert_eq!((*p, *from), (PeerId(10), 800_000));
            (*t - start).as_secs()
        })
        .collect();
    // 3 s, then the wait doubles because the estimate did not grow: 6, 12.
    assert_eq!(at, vec![3, 6, 12], "re-probes at {at:?}");

    // Loss on the link: it is full, no more probing.
    let n = w.reprobes.len();
    w.input(Input::LinkQuality {
        now: w.now,
        peer: PeerId(10),
        loss: Some(0.04),
        rtt: None,
    });
    w.run(Duration::from_secs(20));
    assert_eq!(w.reprobes.len(), n, "re-probed a lossy link");

    // A link carrying the best layers has nothing to probe for.
    w.input(Input::LinkQuality {
        now: w.now,
        peer: PeerId(10),
        loss: Some(0.0),
        rtt: None,
    });
    w.estimate(10, 5_000_000);
    w.run(Duration::from_secs(20));
    assert_eq!(w.reprobes.len(), n, "re-probed at the top layer");
}

#[test]
fn switching_up_needs_more_than_switching_down() {
    let mut w = World::new();
    w.run(Duration::from_secs(1));
    w.join(10, "school-a", None);
    let mut est = 4_000_000u64;
    w.estimate(10, est);
    w.run(Duration::from_secs(3));
    assert_eq!(w.layers_since(10, 0), vec![2]);
    // Lower the estimate 3 % at a time until the relay leaves the top layer.
    let down_at = loop {
        let mark = w.video(10).len();
        est = est * 97 / 100;
        w.estimate(10, est);
        w.run(Duration::from_secs(2));
        if w.layers_since(10, mark).contains(&1) {
            break est;
        }
        assert!(est > 300_000, "never switched down");
    };
    w.run(Duration::from_secs(5));
    // Raise it 3 % at a time until it comes back.
    let up_at = loop {
        let mark = w.video(10).len();
        est = est * 103 / 100;
        w.estimate(10, est);
        w.run(Duration::from_secs(3));
        if w.layers_since(10, mark).contains(&2) {
            break est;
        }
        assert!(est < 8_000_000, "never switched up");
    };
    assert!(
        up_at as f64 >= down_at as f64 * 1.08,
        "down at {down_at}, up again at {up_at}: no hysteresis"
    );
}

#[test]
fn a_big_rise_climbs_one_layer_per_hold() {
    let mut w = World::new();
    w.run(Duration::from_secs(1));
    w.join(10, "school-a", None);
    w.estimate(10, 350_000);
    w.run(Duration::from_secs(6));
    assert_eq!(w.layers_since(10, 0), vec![0]);
    let mark = w.video(10).len();
    w.estimate(10, 6_000_000);
    w.run(Duration::from_millis(2500));
    assert_eq!(w.layers_since(10, mark), vec![0, 1], "first step only");
    w.run(Duration::from_secs(2));
    assert_eq!(w.layers_since(10, mark), vec![0, 1, 2]);
}

#[test]
fn warm_table_learns_a_school_only_after_the_ramp() {
    let mut w = World::new();
    w.run(Duration::from_secs(1));
    w.join(10, "school-a", None);
    w.estimate(10, 400_000);
    w.run(Duration::from_secs(5));
    w.estimate(10, 2_000_000);
    w.run(Duration::from_secs(4));
    assert_eq!(
        w.relay.warm().start_for("school-a"),
        None,
        "learned the ramp"
    );
    // A steady estimate, reported once, is remembered after the ramp.
    w.run(Duration::from_secs(2));
    assert_eq!(w.relay.warm().start_for("school-a"), Some(1_600_000));
    assert_eq!(w.relay.warm().start_for("school-b"), None);
}

/// A classroom waiting in a lesson whose teacher is not publishing gets no media,
/// so its estimate says nothing of its link: the school's remembered estimate must
/// not move (it once dragged a 1.9 Mbit/s school to 974 kbit/s on disk).
#[test]
fn a_classroom_without_a_teacher_teaches_the_warm_table_nothing() {
    let mut w = World::new();
    w.run(Duration::from_secs(1));
    w.join(10, "school-a", None);
    w.estimate(10, 2_000_000);
    w.run(Duration::from_secs(12));
    assert_eq!(w.relay.warm().start_for("school-a"), Some(1_600_000));
    w.input(Input::SubscriberJoined {
        now: w.now,
        lesson: "no-teacher-yet".into(),
        peer: PeerId(11),
        school: "school-a".into(),
        slots: vec![SlotSpec {
            mid: Mid::new("a"),
            kind: Kind::Audio,
            redundant: false,
        }],
        layer: None,
        start_bps: w.relay.warm().start_for("school-a"),
        audience: Audience::Classroom,
    });
    w.estimate(11, 40_000);
    w.run(Duration::from_secs(15));
    assert_eq!(w.relay.warm().start_for("school-a"), Some(1_600_000));
    // Where it started stays in its stats after the estimate has moved.
    let stats = w.relay.stats(w.now);
    let joiner = stats
        .iter()
        .flat_map(|l| &l.subscribers)
        .find(|s| s.peer == PeerId(11))
        .unwrap();
    assert_eq!(
        (joiner.start_bps, joiner.estimate_bps),
        (Some(1_600_000), Some(40_000))
    );
}

#[test]
fn lossy_links_get_two_deep_voice_redundancy_for_a_while() {
    let mut w = World::new();
    w.run(Duration::from_millis(400));
    w.join_with(10, "a", None, true);
    w.join_with(11, "b", None, true);
    w.run(Duration::from_secs(1));
    let depth = |w: &World, peer: u64| w.audio(peer).last().map(|f| f.red_depth);
    assert_eq!((depth(&w, 10), depth(&w, 11)), (Some(1), Some(1)));
    // 1.5 % loss: one previous frame is enough.
    w.loss(10, 0.015);
    w.run(Duration::from_secs(1));
    assert_eq!(depth(&w, 10), Some(1));
    // 4 % loss towards a for a few reports: two previous frames, for a only.
    for _ in 0..4 {
        w.loss(10, 0.04);
        w.run(Duration::from_secs(1));
    }
    assert_eq!((depth(&w, 10), depth(&w, 11)), (Some(2), Some(1)));
    let hold = AdaptConfig::default().red_deep_hold;
    w.run(hold - Duration::from_secs(2));
    assert_eq!(depth(&w, 10), Some(2), "held after the last lossy report");
    w.run(Duration::from_secs(2));
    assert_eq!(
        depth(&w, 10),
        Some(1),
        "one-deep again once the link is clean"
    );
}
