//! The two-way lesson: floor rules, talk-back voice forwarded only with the floor,
//! one continuous floor stream per receiver, and the floor's voice in the budget.

use super::*;

/// A classroom with the teacher's audio and video and a second audio m-line "f"
/// for the floor.
fn join_hearing(w: &mut World, peer: u64, school: &str) {
    w.input(Input::SubscriberJoined {
        now: w.now,
        lesson: "math".into(),
        peer: PeerId(peer),
        school: school.into(),
        slots: vec![
            SlotSpec {
                mid: Mid::new("a"),
                kind: Kind::Audio,
                redundant: false,
            },
            SlotSpec {
                mid: Mid::new("v"),
                kind: Kind::Video,
                redundant: false,
            },
            SlotSpec {
                mid: Mid::new("f"),
                kind: Kind::Audio,
                redundant: false,
            },
        ],
        layer: None,
        start_bps: None,
        audience: Audience::Classroom,
    });
}

/// The teacher's hearing session: one audio m-line "t".
fn join_teacher_ear(w: &mut World, peer: u64) {
    w.input(Input::SubscriberJoined {
        now: w.now,
        lesson: "math".into(),
        peer: PeerId(peer),
        school: String::new(),
        slots: vec![SlotSpec {
            mid: Mid::new("t"),
            kind: Kind::Audio,
            redundant: false,
        }],
        layer: None,
        start_bps: None,
        audience: Audience::Teacher,
    });
}

fn talker(w: &mut World, peer: u64, school: &str) {
    w.input(Input::TalkerJoined {
        now: w.now,
        lesson: "math".into(),
        peer: PeerId(peer),
        school: school.into(),
        tracks: vec![PublishedTrack {
            mid: Mid::new("m"),
            kind: Kind::Audio,
            rids: vec![],
        }],
    });
}

fn floor(w: &mut World, change: FloorChange) -> Result<FloorState, FloorError> {
    let now = w.now;
    let r = w.relay.floor(now, "math", change);
    w.input(Input::Timeout(now));
    r
}

fn hand(school: &str, raised: bool) -> FloorChange {
    FloorChange::Hand {
        school: school.into(),
        raised,
    }
}

fn give(school: Option<&str>) -> FloorChange {
    FloorChange::Give(school.map(Into::into))
}

fn state(holder: Option<&str>, open: bool, hands: &[&str]) -> FloorState {
    FloorState {
        holder: holder.map(Into::into),
        open,
        hands: hands.iter().map(|h| h.to_string()).collect(),
    }
}

/// One voice packet from talker `peer`, whose sequence numbers start at `base`.
fn speak(w: &mut World, peer: u64, n: u64, base: u64, tag: u8) {
    let now = w.now;
    w.input(Input::Packet {
        now,
        peer: PeerId(peer),
        rtp: RtpIn {
            mid: Mid::new("m"),
            rid: None,
            seq: base + n,
            ts: (base as u32)
                .wrapping_mul(7919)
                .wrapping_add(n as u32 * 960),
            marker: false,
            pt: 109,
            codec: Codec::Opus,
            payload: Arc::from(&[tag; 60][..]),
        },
    });
}

fn got(w: &World, peer: u64, mid: &str) -> Vec<Forward> {
    w.got
        .get(&(PeerId(peer), Mid::new(mid)))
        .map(|r| r.packets.clone())
        .unwrap_or_default()
}

#[test]
fn floor_rules_hands_grants_open_floor_and_leaving() {
    let mut w = World::new();
    for (peer, school) in [(10, "a"), (11, "b"), (12, "c")] {
        join_hearing(&mut w, peer, school);
    }
    assert_eq!(
        w.relay.floor(w.now, "bio", hand("a", true)),
        Err(FloorError::NoLesson("bio".into()))
    );
    assert_eq!(
        floor(&mut w, hand("x", true)),
        Err(FloorError::NotInLesson {
            lesson: "math".into(),
            school: "x".into()
        })
    );
    assert!(floor(&mut w, give(Some("x"))).is_err());
    assert!(w.floors.is_empty(), "a refused change announced nothing");

    assert_eq!(
        floor(&mut w, hand("a", true)),
        Ok(state(None, false, &["a"]))
    );
    assert_eq!(
        floor(&mut w, hand("b", true)),
        Ok(state(None, false, &["a", "b"]))
    );
    // Raising twice changes nothing and announces nothing.
    let announced = w.floors.len();
    assert_eq!(
        floor(&mut w, hand("a", true)),
        Ok(state(None, false, &["a", "b"]))
    );
    assert_eq!(w.floors.len(), announced);
    // One school at a time: giving it to another takes it from the first.
    assert_eq!(
        floor(&mut w, give(Some("b"))),
        Ok(state(Some("b"), false, &["a"]))
    );
    assert_eq!(
        floor(&mut w, give(Some("c"))),
        Ok(state(Some("c"), false, &["a"]))
    );
    // The holder hands it back by lowering its hand.
    assert_eq!(
        floor(&mut w, hand("c", false)),
        Ok(state(None, false, &["a"]))
    );
    // Open floor: the first hand up gets it at once, later hands take it at once.
    assert_eq!(
        floor(&mut w, FloorChange::Open(true)),
        Ok(state(Some("a"), true, &[]))
    );
    assert_eq!(
        floor(&mut w, hand("b", true)),
        Ok(state(Some("b"), true, &[]))
    );
    assert_eq!(floor(&mut w, give(None)), Ok(state(None, true, &[])));
    assert_eq!(
        floor(&mut w, FloorChange::Open(false)),
        Ok(state(None, false, &[]))
    );
    // A school that leaves loses its hand and the floor.
    floor(&mut w, hand("a", true)).unwrap();
    floor(&mut w, give(Some("b"))).unwrap();
    w.input(Input::PeerLeft {
        now: w.now,
        peer: PeerId(11),
    });
    w.input(Input::PeerLeft {
        now: w.now,
        peer: PeerId(10),
    });
    assert_eq!(w.relay.floor_state("math"), Some(state(None, false, &[])));
    let last = w.floors.last().unwrap();
    assert_eq!(last, &("math".to_string(), state(None, false, &[])));
    assert_eq!(
        floor(&mut w, give(Some("a"))),
        Err(FloorError::NotInLesson {
            lesson: "math".into(),
            school: "a".into()
        })
    );
}

#[test]
fn talk_back_goes_out_only_with_the_floor_as_one_continuous_stream() {
    let mut w = World::new();
    w.run(Duration::from_millis(400));
    for (peer, school) in [(10, "a"), (11, "b"), (12, "c")] {
        join_hearing(&mut w, peer, school);
    }
    join_teacher_ear(&mut w, 30);
    // A plain player with one audio m-line.
    w.join(13, "d", None);
    talker(&mut w, 20, "a");
    talker(&mut w, 21, "b");
    w.run(Duration::from_millis(200));

    // Nobody holds the floor: every talk packet is dropped and counted.
    for n in 0..10 {
        speak(&mut w, 20, n, 1000, 0xaa);
        speak(&mut w, 21, n, 50_000, 0xbb);
    }
    assert_eq!(w.relay.totals().talk_dropped, 20);
    for (peer, mid) in [(10, "f"), (11, "f"), (12, "f"), (30, "t")] {
        assert!(
            got(&w, peer, mid).is_empty(),
            "{peer} heard without a floor"
        );
    }

    floor(&mut w, give(Some("a"))).unwrap();
    for n in 10..60 {
        w.now += Duration::from_millis(20);
        speak(&mut w, 20, n, 1000, 0xaa);
        speak(&mut w, 21, n, 50_000, 0xbb);
    }
    assert_eq!(
        w.relay.totals().talk_dropped,
        70,
        "b spoke without the floor"
    );
    assert!(got(&w, 10, "f").is_empty(), "school a heard itself");
    for (peer, mid) in [(11, "f"), (12, "f"), (30, "t")] {
        let g = got(&w, peer, mid);
        assert_eq!(g.len(), 50, "{peer} on {mid}");
        assert!(g
            .iter()
            .all(|f| f.payload[0] == 0xaa && f.from == PeerId(20)));
    }
    // The teacher's voice still reaches the classrooms on their first audio m-line,
    // and none of the floor's does.
    assert!(got(&w, 12, "a").iter().all(|f| f.from == PeerId(1)));
    assert!(got(&w, 30, "t").iter().all(|f| f.from != PeerId(1)));
    assert!(
        w.audio(13).iter().all(|f| f.from == PeerId(1)),
        "one audio m-line: the teacher alone"
    );
    assert_eq!(
        w.got.keys().filter(|(to, _)| *to == PeerId(13)).count(),
        2,
        "a plain player gets its own two m-lines only"
    );

    floor(&mut w, give(Some("b"))).unwrap();
    for n in 60..110 {
        w.now += Duration::from_millis(20);
        speak(&mut w, 20, n, 1000, 0xaa);
        speak(&mut w, 21, n, 50_000, 0xbb);
    }
    assert_eq!(
        got(&w, 11, "f").len(),
        50,
        "b does not hear itself after its turn"
    );
    assert_eq!(got(&w, 10, "f").len(), 50);
    for (peer, mid) in [(12, "f"), (30, "t")] {
        let g = got(&w, peer, mid);
        assert_eq!(g.len(), 100, "{peer} on {mid}");
        let (first, second) = g.split_at(50);
        assert!(first.iter().all(|f| f.payload[0] == 0xaa));
        assert!(second.iter().all(|f| f.payload[0] == 0xbb));
        // One stream across the switch: consecutive numbers, time moving forward.
        assert_continuous(&g);
        let step = g[50].ts.wrapping_sub(g[49].ts);
        assert!(
            step > 0 && step < 48_000,
            "timestamp step {step} at the switch"
        );
    }
}

#[test]
fn floor_voice_comes_before_video_on_a_thin_link() {
    // The lowest estimate at which a classroom gets the middle camera layer with the
    // teacher's voice alone; there the floor's voice must push the camera down a
    // layer, never be left out.
    let layer = |bps: u64, floor_held: bool| -> u8 {
        let mut w = World::new();
        w.run(Duration::from_millis(400));
        join_hearing(&mut w, 10, "a");
        join_hearing(&mut w, 11, "b");
        talker(&mut w, 21, "b");
        if floor_held {
            floor(&mut w, give(Some("b"))).unwrap();
        }
        for _ in 0..300 {
            let now = w.now;
            w.input(Input::LinkEstimate {
                now,
                peer: PeerId(10),
                bps,
            });
            w.run(Duration::from_millis(20));
        }
        let v = w.video(10);
        v.last().map_or(0, layer_of)
    };
    let edge = (100_000..2_000_000)
        .step_by(10_000)
        .find(|&bps| layer(bps, false) >= 1)
        .expect("the middle layer fits at some estimate");
    assert_eq!(
        layer(edge, true),
        0,
        "at {edge} bit/s the middle layer still flows beside the floor's voice"
    );
    assert!(
        layer(edge + 150_000, true) >= 1,
        "the middle layer comes back with room for both"
    );
}

/// A talker with a microphone and, with `camera`, a picture on m-line "c".
fn talker_with(w: &mut World, peer: u64, school: &str, camera: bool) {
    let mut tracks = vec![PublishedTrack {
        mid: Mid::new("m"),
        kind: Kind::Audio,
        rids: vec![],
    }];
    if camera {
        tracks.push(PublishedTrack {
            mid: Mid::new("c"),
            kind: Kind::Video,
            rids: vec![],
        });
    }
    w.input(Input::TalkerJoined {
        now: w.now,
        lesson: "math".into(),
        peer: PeerId(peer),
        school: school.into(),
        tracks,
    });
}

/// One frame (one packet) of talker `peer`'s picture, tagged with the peer.
fn picture(w: &mut World, peer: u64, n: u64, key: bool) {
    let now = w.now;
    let mut payload = crate::codec::tests::vp8_payload(n as u16, 0, true, key);
    payload.push(peer as u8);
    w.input(Input::Packet {
        now,
        peer: PeerId(peer),
        rtp: RtpIn {
            mid: Mid::new("c"),
            rid: None,
            seq: peer * 10_000 + n,
            ts: (n as u32) * 9000,
            marker: true,
            pt: 96,
            codec: Codec::Vp8,
            payload: Arc::from(payload),
        },
    });
}

#[test]
fn classroom_pictures_go_to_the_teacher_only_in_join_order_from_a_keyframe() {
    let mut w = World::new();
    join_hearing(&mut w, 10, "a");
    // The teacher's hearing session with an audio and two video m-lines.
    w.input(Input::SubscriberJoined {
        now: w.now,
        lesson: "math".into(),
        peer: PeerId(30),
        school: String::new(),
        slots: ["t", "p1", "p2"]
            .iter()
            .enumerate()
            .map(|(i, m)| SlotSpec {
                mid: Mid::new(m),
                kind: if i == 0 { Kind::Audio } else { Kind::Video },
                redundant: false,
            })
            .collect(),
        layer: None,
        start_bps: None,
        audience: Audience::Teacher,
    });
    talker_with(&mut w, 20, "a", true);
    talker_with(&mut w, 21, "b", false);
    talker_with(&mut w, 22, "c", true);
    // Frames before a keyframe are held back, and a keyframe is asked for.
    for n in 0..3 {
        w.now += Duration::from_millis(100);
        picture(&mut w, 20, n, false);
        picture(&mut w, 22, n, false);
    }
    assert!(got(&w, 30, "p1").is_empty() && got(&w, 30, "p2").is_empty());
    assert!(w.other_kf.contains(&PeerId(20)) && w.other_kf.contains(&PeerId(22)));
    for n in 3..10 {
        w.now += Duration::from_millis(100);
        picture(&mut w, 20, n, n == 3);
        picture(&mut w, 22, n, n == 3);
    }
    let tag = |f: &Forward| *f.payload.last().unwrap();
    let p1 = got(&w, 30, "p1");
    let p2 = got(&w, 30, "p2");
    assert_eq!(p1.len(), 7);
    assert!(
        p1.iter().all(|f| tag(f) == 20),
        "first picture: the first talker with a camera"
    );
    assert!(p2.iter().all(|f| tag(f) == 22) && p2.len() == 7);
    assert!(is_keyframe_start(&p1[0]));
    // No classroom gets a picture, on any m-line.
    let pictures_to: Vec<PeerId> = w
        .got
        .values()
        .flat_map(|r| &r.packets)
        .filter(|f| f.codec == Codec::Vp8 && f.from != PeerId(1))
        .map(|f| f.to)
        .collect();
    assert!(
        pictures_to.iter().all(|to| *to == PeerId(30)),
        "{pictures_to:?}"
    );
    // The first talker leaves: the next picture moves up, from its next keyframe
    // (asked for), on the same outgoing stream.
    w.input(Input::PeerLeft {
        now: w.now,
        peer: PeerId(20),
    });
    for n in 10..16 {
        w.now += Duration::from_millis(100);
        picture(&mut w, 22, n, n == 12);
    }
    let p1 = got(&w, 30, "p1");
    assert_eq!(p1.len(), 7 + 4, "from the keyframe on: {:?}", p1.len());
    assert!(p1[7..].iter().all(|f| tag(f) == 22));
    assert!(is_keyframe_start(&p1[7]));
    assert_continuous(&p1);
    assert_eq!(
        got(&w, 30, "p2").len(),
        7,
        "the second m-line shows nobody now"
    );
}
