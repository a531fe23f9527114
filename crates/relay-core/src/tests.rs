//! Whole-core tests on a virtual clock: a simulated teacher sends Opus and 3-layer VP8
//! simulcast; classrooms join, switch and leave.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::tests::vp8_payload;
use crate::*;

const RIDS: [&str; 3] = ["q", "h", "f"];

/// A teacher that answers keyframe requests after `kf_delay` and otherwise sends a
/// keyframe every 10 s.
struct Teacher {
    peer: PeerId,
    seq: [u64; 4],
    ts: [u32; 4],
    pid: [u16; 3],
    frame: u64,
    kf_due: [Option<Instant>; 3],
    kf_delay: Duration,
    /// Layers that send (index into RIDS).
    sending: [bool; 3],
}

impl Teacher {
    fn new(peer: u64) -> Teacher {
        Teacher {
            peer: PeerId(peer),
            seq: [100, 20_000, 40_000, 60_000],
            ts: [5, 1_000_000, 2_000_000, 3_000_000],
            pid: [10, 5000, 20_000],
            frame: 0,
            kf_due: [None; 3],
            kf_delay: Duration::from_millis(40),
            sending: [true; 3],
        }
    }

    fn tracks() -> Vec<PublishedTrack> {
        vec![
            PublishedTrack {
                mid: Mid::new("0"),
                kind: Kind::Audio,
                rids: vec![],
            },
            PublishedTrack {
                mid: Mid::new("1"),
                kind: Kind::Video,
                rids: RIDS.iter().map(|r| Rid::new(r)).collect(),
            },
        ]
    }

    /// Packets of one 20 ms step: one Opus packet, and on even steps... every 33 ms
    /// approximated as every other step plus a third: we send video on steps where
    /// the frame clock ticks.
    fn step(&mut self, now: Instant, t0: Instant) -> Vec<RtpIn> {
        let mut v = vec![RtpIn {
            mid: Mid::new("0"),
            rid: None,
            seq: self.seq[3],
            ts: self.ts[3],
            marker: false,
            pt: 111,
            codec: Codec::Opus,
            // A voice frame of about 32 kbit/s, as Opus sends speech.
            payload: Arc::from(&[0xfcu8; 80][..]),
        }];
        self.seq[3] += 1;
        self.ts[3] = self.ts[3].wrapping_add(960);
        // 25 fps video: a frame every 40 ms, i.e. every other 20 ms step.
        let elapsed = now.duration_since(t0).as_millis() as u64;
        if elapsed / 40 >= self.frame {
            self.frame += 1;
            let periodic = self.frame % 250 == 1;
            for (i, rid) in RIDS.iter().enumerate() {
                let requested = self.kf_due[i].is_some_and(|d| now >= d);
                let key = periodic || requested;
                if requested {
                    self.kf_due[i] = None;
                }
                self.pid[i] = (self.pid[i] + 1) % 0x8000;
                self.ts[i] = self.ts[i].wrapping_add(3600);
                if !self.sending[i] {
                    continue;
                }
                // 1, 2, 3 packets per frame for q, h, f.
                let n = i + 1;
                for k in 0..n {
                    // The last byte tags the layer, so tests can tell what they got.
                    let mut payload = vp8_payload(self.pid[i], 0, k == 0, key);
                    // About 150, 500 and 1500 kbit/s on the wire.
                    payload.resize([700, 1200, 2400][i], 0);
                    payload.push(i as u8);
                    v.push(RtpIn {
                        mid: Mid::new("1"),
                        rid: Some(Rid::new(rid)),
                        seq: self.seq[i],
                        ts: self.ts[i],
                        marker: k == n - 1,
                        pt: 96,
                        codec: Codec::Vp8,
                        payload: Arc::from(payload),
                    });
                    self.seq[i] += 1;
                }
            }
        }
        v
    }

    fn keyframe_requested(&mut self, rid: Option<Rid>, now: Instant) {
        let i = RIDS.iter().position(|r| Some(Rid::new(r)) == rid).unwrap();
        self.kf_due[i].get_or_insert(now + self.kf_delay);
    }
}

/// What one classroom received on one mid.
#[derive(Default, Debug)]
struct Received {
    packets: Vec<Forward>,
}

struct World {
    t0: Instant,
    now: Instant,
    relay: Relay,
    teacher: Teacher,
    got: HashMap<(PeerId, Mid), Received>,
    kf_requests: Vec<(Instant, Option<Rid>)>,
    closed: Vec<PeerId>,
    bwe: HashMap<PeerId, (u64, u64)>,
    reprobes: Vec<(Instant, PeerId, u64)>,
}

impl World {
    fn new() -> World {
        let t0 = Instant::now();
        let mut w = World {
            t0,
            now: t0,
            relay: Relay::new(RelayConfig::default(), t0),
            teacher: Teacher::new(1),
            got: HashMap::new(),
            kf_requests: vec![],
            closed: vec![],
            bwe: HashMap::new(),
            reprobes: vec![],
        };
        w.input(Input::PublisherJoined {
            now: t0,
            lesson: "math".into(),
            peer: PeerId(1),
            owner: "teacher".into(),
            tracks: Teacher::tracks(),
        });
        w
    }

    fn join(&mut self, peer: u64, school: &str, layer: Option<LayerPref>) {
        self.join_with(peer, school, layer, false);
    }

    /// Join; with `red`, the classroom's voice goes out with RED redundancy.
    fn join_with(&mut self, peer: u64, school: &str, layer: Option<LayerPref>, red: bool) {
        self.input(Input::SubscriberJoined {
            now: self.now,
            lesson: "math".into(),
            peer: PeerId(peer),
            school: school.into(),
            slots: vec![
                SlotSpec {
                    mid: Mid::new("a"),
                    kind: Kind::Audio,
                    redundant: red,
                },
                SlotSpec {
                    mid: Mid::new("v"),
                    kind: Kind::Video,
                    redundant: false,
                },
            ],
            layer,
            start_bps: None,
        });
    }

    fn input(&mut self, i: Input) {
        self.relay.handle_input(i);
        loop {
            match self.relay.poll_output() {
                Output::Timeout(_) => break,
                Output::Forward(f) => self.got.entry((f.to, f.mid)).or_default().packets.push(f),
                Output::RequestKeyframe { rid, .. } => {
                    self.kf_requests.push((self.now, rid));
                    self.teacher.keyframe_requested(rid, self.now);
                }
                Output::Close(p) => self.closed.push(p),
                Output::BweTarget {
                    peer,
                    min_bps,
                    desired_bps,
                } => {
                    self.bwe.insert(peer, (min_bps, desired_bps));
                }
                Output::BweReprobe { peer, from_bps } => {
                    self.reprobes.push((self.now, peer, from_bps))
                }
            }
        }
    }

    /// Advance virtual time in 20 ms steps.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(20);
            let now = self.now;
            for rtp in self.teacher.step(now, self.t0) {
                let peer = self.teacher.peer;
                self.input(Input::Packet { now, peer, rtp });
            }
            self.input(Input::Timeout(now));
        }
    }

    fn video(&self, peer: u64) -> &[Forward] {
        self.got
            .get(&(PeerId(peer), Mid::new("v")))
            .map(|r| &r.packets[..])
            .unwrap_or(&[])
    }

    fn audio(&self, peer: u64) -> &[Forward] {
        self.got
            .get(&(PeerId(peer), Mid::new("a")))
            .map(|r| &r.packets[..])
            .unwrap_or(&[])
    }
}

/// Which layer (index into RIDS) a forwarded packet came from.
fn layer_of(f: &Forward) -> u8 {
    *f.payload.last().unwrap()
}

fn is_keyframe_start(f: &Forward) -> bool {
    inspect(Codec::Vp8, &f.payload).keyframe_start
}

fn assert_continuous(pkts: &[Forward]) {
    for w in pkts.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq + 1,
            "sequence gap between {:?} and {:?}",
            w[0].seq,
            w[1].seq
        );
        let dt = w[1].ts.wrapping_sub(w[0].ts);
        assert!(dt < 90_000, "timestamp jumped by {dt}");
    }
    let pids: Vec<u16> = pkts.iter().filter_map(|f| f.vp8_picture_id).collect();
    for w in pids.windows(2) {
        let d = (w[1] + 0x8000 - w[0]) % 0x8000;
        assert!(d <= 1, "picture id jumped {} -> {}", w[0], w[1]);
    }
}

#[test]
fn routes_audio_and_intended_layer_to_each_classroom() {
    let mut w = World::new();
    w.run(Duration::from_millis(600));
    w.join(10, "school-a", None);
    w.join(11, "school-b", Some(LayerPref::Low));
    w.join(12, "school-c", Some(LayerPref::Medium));
    w.run(Duration::from_secs(3));

    for peer in [10, 11, 12] {
        let a = w.audio(peer);
        assert!(
            a.len() > 100,
            "classroom {peer} got {} audio packets",
            a.len()
        );
        assert!(a.iter().all(|f| f.codec == Codec::Opus));
        assert_continuous(a);
        let v = w.video(peer);
        assert!(!v.is_empty(), "classroom {peer} got no video");
        assert!(
            is_keyframe_start(&v[0]),
            "first video packet is not a keyframe"
        );
        assert_continuous(v);
    }
    for (peer, layer) in [(10, 2), (11, 0), (12, 1)] {
        assert!(
            w.video(peer).iter().all(|f| layer_of(f) == layer),
            "classroom {peer}"
        );
    }
    let stats = w.relay.stats(w.now);
    assert_eq!(stats.len(), 1);
    let rids: Vec<_> = stats[0].subscribers.iter().map(|s| s.layers[1].1).collect();
    assert_eq!(
        rids,
        vec![
            Some(Some(Rid::new("f"))),
            Some(Some(Rid::new("q"))),
            Some(Some(Rid::new("h")))
        ]
    );
}

#[test]
fn layer_switch_is_keyframe_first_and_gap_free() {
    let mut w = World::new();
    w.join(10, "school-a", Some(LayerPref::High));
    w.run(Duration::from_secs(2));
    let before = w.video(10).len();
    assert!(before > 0);
    w.input(Input::SetLayer {
        now: w.now,
        peer: PeerId(10),
        layer: LayerPref::Low,
    });
    w.run(Duration::from_secs(2));
    let v = w.video(10);
    assert_continuous(v);
    let first_low = v
        .iter()
        .position(|f| layer_of(f) == 0)
        .expect("the low layer is reached");
    assert!(first_low >= before, "switched before it was asked");
    assert!(is_keyframe_start(&v[first_low]), "switch not on a keyframe");
    assert!(
        v[..first_low].iter().all(|f| layer_of(f) == 2),
        "old layer kept until the switch"
    );
    assert!(
        v[first_low..].iter().all(|f| layer_of(f) == 0),
        "no flapping after the switch"
    );
    // No frames dropped for the switch: frames keep arriving every 40 ms.
    let frames = v.iter().filter(|f| f.marker).count();
    assert!(frames >= 95, "{frames} frames in 4 s at 25 fps");
    let stats = w.relay.stats(w.now);
    assert_eq!(stats[0].subscribers[0].switches, 1);
    assert_eq!(
        stats[0].subscribers[0].layers[1].1,
        Some(Some(Rid::new("q")))
    );
}

#[test]
fn classrooms_joining_together_share_one_keyframe_request() {
    let mut w = World::new();
    // All three join before the encoder's answer to the first request arrives.
    w.teacher.kf_delay = Duration::from_millis(100);
    w.run(Duration::from_secs(3));
    let base = w.kf_requests.len();
    w.join(10, "a", None);
    w.run(Duration::from_millis(20));
    w.join(11, "b", None);
    w.run(Duration::from_millis(20));
    w.join(12, "c", None);
    w.run(Duration::from_secs(2));
    let high: Vec<_> = w.kf_requests[base..]
        .iter()
        .filter(|(_, r)| *r == Some(Rid::new("f")))
        .collect();
    assert_eq!(high.len(), 1, "requests: {:?}", &w.kf_requests[base..]);
    for peer in [10, 11, 12] {
        assert!(
            is_keyframe_start(&w.video(peer)[0]),
            "classroom {peer} has a picture"
        );
    }
}

#[test]
fn mid_lesson_join_gets_picture_fast() {
    let mut w = World::new();
    w.run(Duration::from_secs(3)); // natural keyframes only every 10 s
    let join_frame = w.teacher.frame;
    w.join(10, "a", None);
    w.run(Duration::from_secs(1));
    let v = w.video(10);
    assert!(!v.is_empty());
    let frames_before_first = v.iter().filter(|f| f.marker).count();
    // 25 frames in a second; picture starts within ~3 frames (PLI + 40 ms encoder).
    assert!(
        frames_before_first >= 22,
        "joined at frame {join_frame}, got {frames_before_first} frames"
    );
}

#[test]
fn keyframe_requests_are_throttled_and_retried() {
    let mut w = World::new();
    w.teacher.kf_delay = Duration::from_secs(60); // the encoder ignores requests
    w.run(Duration::from_secs(1));
    let base = w.kf_requests.len();
    w.join(10, "a", None);
    w.run(Duration::from_millis(3000));
    let n = w.kf_requests[base..]
        .iter()
        .filter(|(_, r)| *r == Some(Rid::new("f")))
        .count();
    // One at join, then one retry a second: 3 or 4 in 3 s, never a storm.
    assert!((3..=4).contains(&n), "{n} requests");
}

/// A classroom's keyframe requests are counted as pictures it lost; a layer switch
/// (made on a keyframe, the old layer flowing until then) is not one.
#[test]
fn picture_losses_count_the_classrooms_keyframe_requests() {
    let mut w = World::new();
    w.join(10, "a", None);
    w.run(Duration::from_secs(2));
    w.teacher.sending[2] = false;
    w.run(Duration::from_secs(2));
    let s = &w.relay.stats(w.now)[0].subscribers[0];
    assert!(s.switches >= 1);
    assert_eq!(s.picture_losses, 0);
    for _ in 0..2 {
        let now = w.now;
        w.input(Input::KeyframeRequest {
            now,
            peer: PeerId(10),
            mid: Mid::new("v"),
        });
        w.run(Duration::from_millis(100));
    }
    assert_eq!(w.relay.stats(w.now)[0].subscribers[0].picture_losses, 2);
}

#[test]
fn falls_back_when_a_layer_stops_and_returns() {
    let mut w = World::new();
    w.join(10, "a", None);
    w.run(Duration::from_secs(2));
    w.teacher.sending[2] = false; // teacher's uplink drops the top layer
    w.run(Duration::from_secs(3));
    let s = &w.relay.stats(w.now)[0].subscribers[0];
    assert_eq!(s.layers[1].1, Some(Some(Rid::new("h"))));
    w.teacher.sending[2] = true;
    w.run(Duration::from_secs(3));
    let s = &w.relay.stats(w.now)[0].subscribers[0];
    assert_eq!(s.layers[1].1, Some(Some(Rid::new("f"))));
    assert_continuous(w.video(10));
}

#[test]
fn teacher_reconnect_replaces_and_streams_stay_continuous() {
    let mut w = World::new();
    w.join(10, "a", None);
    w.run(Duration::from_secs(2));
    let now = w.now;
    w.teacher = Teacher::new(2);
    w.teacher.seq = [7, 7, 7, 7];
    w.input(Input::PublisherJoined {
        now,
        lesson: "math".into(),
        peer: PeerId(2),
        owner: "teacher".into(),
        tracks: Teacher::tracks(),
    });
    assert_eq!(w.closed, vec![PeerId(1)]);
    w.run(Duration::from_secs(2));
    assert_continuous(w.audio(10));
    assert_continuous(w.video(10));
    assert!(w.audio(10).iter().any(|f| f.from == PeerId(2)));
    assert!(w.video(10).iter().any(|f| f.from == PeerId(2)));
}

#[test]
fn leaving_frees_the_lesson() {
    let mut w = World::new();
    w.join(10, "a", None);
    w.join(11, "b", None);
    w.run(Duration::from_secs(1));
    w.input(Input::PeerLeft {
        now: w.now,
        peer: PeerId(10),
    });
    let before = w.video(11).len();
    w.run(Duration::from_secs(1));
    assert!(
        w.video(11).len() > before,
        "the other classroom keeps receiving"
    );
    assert_eq!(w.relay.stats(w.now)[0].subscribers.len(), 1);
    for p in [11, 1] {
        w.input(Input::PeerLeft {
            now: w.now,
            peer: PeerId(p),
        });
    }
    assert_eq!(w.relay.lesson_count(), 0);
    // Packets of a gone teacher are ignored.
    w.run(Duration::from_millis(100));
    assert_eq!(w.relay.lesson_count(), 0);
}

#[test]
fn same_inputs_same_outputs() {
    let run = || {
        let mut w = World::new();
        w.join(10, "a", None);
        w.run(Duration::from_secs(1));
        w.input(Input::SetLayer {
            now: w.now,
            peer: PeerId(10),
            layer: LayerPref::Low,
        });
        w.run(Duration::from_secs(1));
        let v: Vec<(u64, u32, Option<u16>)> = w
            .video(10)
            .iter()
            .map(|f| {
                (
                    f.seq,
                    f.ts.wrapping_sub(w.video(10)[0].ts),
                    f.vp8_picture_id,
                )
            })
            .collect();
        (v, w.relay.totals())
    };
    assert_eq!(run(), run());
}

impl World {
    fn estimate(&mut self, peer: u64, bps: u64) {
        self.input(Input::LinkEstimate {
            now: self.now,
            peer: PeerId(peer),
            bps,
        });
    }

    fn loss(&mut self, peer: u64, loss: f32) {
        self.input(Input::LinkQuality {
            now: self.now,
            peer: PeerId(peer),
            loss: Some(loss),
            rtt: None,
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
    w.estimate(10, 900_000);
    assert_eq!(
        w.relay.warm().start_for("school-a"),
        None,
        "learned the ramp"
    );
    w.run(Duration::from_secs(6));
    w.estimate(10, 2_000_000);
    assert_eq!(w.relay.warm().start_for("school-a"), Some(1_600_000));
    assert_eq!(w.relay.warm().start_for("school-b"), None);
}
