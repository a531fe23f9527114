//! The core's clock: no timer while no lesson needs one, the policy tick while one
//! does, restarting on the beat it had.

use std::time::{Duration, Instant};

use super::*;

fn teacher(now: Instant, peer: u64) -> Input {
    Input::PublisherJoined {
        now,
        lesson: "l".into(),
        peer: PeerId(peer),
        owner: "t".into(),
        tracks: vec![PublishedTrack {
            mid: Mid::new("v"),
            kind: Kind::Video,
            rids: vec![],
        }],
    }
}

fn classroom(now: Instant, peer: u64) -> Input {
    Input::SubscriberJoined {
        now,
        lesson: "l".into(),
        peer: PeerId(peer),
        school: "s".into(),
        slots: vec![SlotSpec {
            mid: Mid::new("v"),
            kind: Kind::Video,
            redundant: false,
        }],
        layer: None,
        start_bps: None,
        audience: Audience::Classroom,
    }
}

fn drain(r: &mut Relay) -> Option<Instant> {
    loop {
        if let Output::Timeout(t) = r.poll_output() {
            assert_eq!(t, r.poll_timeout(), "poll_output ends with poll_timeout");
            return t;
        }
    }
}

#[test]
fn the_policy_clock_runs_only_while_a_lesson_has_a_teacher_and_classrooms() {
    let t0 = Instant::now();
    let tick = RelayConfig::default().tick;
    let mut r = Relay::new(RelayConfig::default(), t0);
    assert_eq!(drain(&mut r), None, "an idle relay has no timer");
    r.handle_input(teacher(t0, 1));
    assert_eq!(drain(&mut r), None, "a teacher alone needs no policy");
    let joined = t0 + Duration::from_millis(1234);
    r.handle_input(classroom(joined, 2));
    assert_eq!(
        drain(&mut r),
        Some(t0 + 13 * tick),
        "the first tick after the join, on the beat from the start"
    );
    r.handle_input(Input::Timeout(t0 + 13 * tick));
    assert_eq!(drain(&mut r), Some(t0 + 14 * tick));
    r.handle_input(Input::PeerLeft {
        now: t0 + 14 * tick,
        peer: PeerId(2),
    });
    assert_eq!(drain(&mut r), None, "the last classroom left");
}

#[test]
fn only_the_owner_may_replace_a_teacher_and_the_core_lets_go_of_the_old_one() {
    let t0 = Instant::now();
    let mut r = Relay::new(RelayConfig::default(), t0);
    assert!(r.may_publish("l", "t"));
    r.handle_input(teacher(t0, 1));
    drain(&mut r);
    assert!(r.may_publish("l", "t"), "its own reconnect");
    assert!(!r.may_publish("l", "other"), "another teacher token");
    r.handle_input(teacher(t0, 3));
    assert!(matches!(r.poll_output(), Output::Close(PeerId(1))));
    // The edge closes peer 1 without telling the core; a late PeerLeft for it
    // must not take the new teacher away.
    r.handle_input(Input::PeerLeft {
        now: t0,
        peer: PeerId(1),
    });
    assert_eq!(r.stats(t0)[0].publisher, Some(PeerId(3)));
    r.handle_input(Input::PeerLeft {
        now: t0,
        peer: PeerId(3),
    });
    assert!(r.may_publish("l", "other"), "nobody teaches any more");
}
