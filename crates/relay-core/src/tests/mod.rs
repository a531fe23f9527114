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
    floors: Vec<(String, FloorState)>,
    /// Keyframe requests to others than the teacher (classrooms' pictures).
    other_kf: Vec<PeerId>,
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
            floors: vec![],
            other_kf: vec![],
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
            audience: Audience::Classroom,
        });
    }

    fn input(&mut self, i: Input) {
        self.relay.handle_input(i);
        loop {
            match self.relay.poll_output() {
                Output::Timeout(_) => break,
                Output::Forward(f) => self.got.entry((f.to, f.mid)).or_default().packets.push(f),
                Output::RequestKeyframe { publisher, rid, .. }
                    if publisher == self.teacher.peer =>
                {
                    self.kf_requests.push((self.now, rid));
                    self.teacher.keyframe_requested(rid, self.now);
                }
                Output::RequestKeyframe { publisher, .. } => self.other_kf.push(publisher),
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
                Output::Floor { lesson, floor } => self.floors.push((lesson, floor)),
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

mod adapt;
mod floor;
mod repair;
