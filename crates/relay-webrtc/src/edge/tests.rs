use super::*;

fn offer(dir: str0m::media::Direction) -> String {
    crate::init_crypto();
    let mut rtc = Rtc::new(Instant::now());
    let mut api = rtc.sdp_api();
    api.add_media(str0m::media::MediaKind::Audio, dir, None, None, None);
    api.add_media(str0m::media::MediaKind::Video, dir, None, None, None);
    api.apply().unwrap().0.to_sdp_string()
}

fn edge(now: Instant) -> Edge {
    Edge::new(
        now,
        RelayConfig::default(),
        Codecs { h264: true },
        vec!["127.0.0.1:9".parse().unwrap()],
    )
}

#[test]
fn a_panic_in_one_session_closes_only_that_session() {
    use str0m::media::Direction;
    let t0 = Instant::now();
    let mut e = edge(t0);
    let teacher = e
        .publish(t0, "math", "tok-a", &offer(Direction::SendOnly))
        .unwrap();
    let class = e
        .subscribe(t0, "math", "s1", None, &offer(Direction::RecvOnly))
        .unwrap();
    let other = e
        .publish(t0, "bio", "tok-b", &offer(Direction::SendOnly))
        .unwrap();

    e.inject_panic = Some(teacher.peer);
    e.timeout(t0 + Duration::from_millis(10));

    assert!(!e.is_alive(teacher.peer), "the crashed session is closed");
    assert!(
        e.is_alive(class.peer) && e.is_alive(other.peer),
        "the others go on"
    );
    assert_eq!(e.stats(t0).contained_panics, 1);
    assert_eq!(
        e.poll_ended(),
        vec![teacher.peer],
        "the HTTP layer hears of it"
    );
    // Its lesson is free again for a teacher with another token.
    e.publish(t0, "math", "tok-c", &offer(Direction::SendOnly))
        .expect("the lesson accepts a new teacher");
    // And the edge keeps running timers for the rest.
    e.timeout(t0 + Duration::from_millis(20));
    assert!(e.is_alive(class.peer));
}

#[test]
fn a_bad_offer_is_refused_before_str0m_sees_it() {
    let t0 = Instant::now();
    let mut e = edge(t0);
    let good = offer(str0m::media::Direction::SendOnly);
    // The same payload type named by two rtpmap lines: str0m 0.25 panics on this.
    let pt_line = good
        .lines()
        .find(|l| l.starts_with("a=rtpmap:") && l.contains("VP8"))
        .unwrap();
    let pt = pt_line["a=rtpmap:".len()..].split(' ').next().unwrap();
    let bad = good.replace(
        &format!("{pt_line}\r\n"),
        &format!("{pt_line}\r\na=rtpmap:{pt} H264/90000\r\n"),
    );
    match e.publish(t0, "math", "tok", &bad) {
        Err(EdgeError::BadSdp(m)) => assert!(m.contains("twice"), "{m}"),
        other => panic!("expected BadSdp, got {:?}", other.map(|s| s.peer)),
    }
    assert_eq!(e.stats(t0).contained_panics, 0);
    e.publish(t0, "math", "tok", &good)
        .expect("a good offer still works");
}

#[test]
fn str0m_really_panics_on_what_the_check_refuses() {
    // The reason for the check: without it, this offer reaches str0m's panic. If a
    // str0m upgrade stops panicking, the check still refuses it, and this test says so.
    let good = offer(str0m::media::Direction::SendOnly);
    let pt_line = good
        .lines()
        .find(|l| l.starts_with("a=rtpmap:") && l.contains("VP8"))
        .unwrap()
        .to_string();
    let pt = pt_line["a=rtpmap:".len()..].split(' ').next().unwrap();
    let bad = good.replace(
        &format!("{pt_line}\r\n"),
        &format!("{pt_line}\r\na=rtpmap:{pt} H264/90000\r\n"),
    );
    let r = contain(|| {
        let o = str0m::change::SdpOffer::from_sdp_string(&bad).unwrap();
        let mut rtc = Rtc::builder().set_rtp_mode(true).build(Instant::now());
        rtc.sdp_api().accept_offer(o).map(|_| ())
    });
    assert!(
        r.is_err(),
        "str0m no longer panics on a repeated payload type"
    );
}

#[test]
fn stray_datagrams_are_dropped_and_counted() {
    let t0 = Instant::now();
    let mut e = edge(t0);
    let class = e
        .subscribe(
            t0,
            "math",
            "s1",
            None,
            &offer(str0m::media::Direction::RecvOnly),
        )
        .unwrap();
    let local = "127.0.0.1:9".parse().unwrap();
    let remote = "10.9.9.9:4000".parse().unwrap();
    // RTP-, DTLS- and STUN-looking garbage from an address no session knows.
    for first in [0x80u8, 0x16, 0x00, 0x01] {
        let mut d = vec![first; 60];
        d[1] = 1;
        e.receive(t0, local, remote, &d);
    }
    assert_eq!(e.stats(t0).stray_datagrams, 4);
    assert!(e.is_alive(class.peer));
    assert_eq!(e.stats(t0).contained_panics, 0);
}

#[test]
fn workers_number_their_sessions_apart_and_their_stats_add_up() {
    use str0m::media::Direction;
    let t0 = Instant::now();
    let mut a = edge(t0);
    let mut b = edge(t0);
    a.set_id_space(0, 2);
    b.set_id_space(1, 2);
    let ids: Vec<PeerId> = (0..2)
        .flat_map(|i| {
            let lesson = format!("l{i}");
            [
                a.publish(t0, &lesson, "t", &offer(Direction::SendOnly))
                    .unwrap()
                    .peer,
                b.publish(t0, &lesson, "t", &offer(Direction::SendOnly))
                    .unwrap()
                    .peer,
            ]
        })
        .collect();
    assert_eq!(ids, [PeerId(1), PeerId(2), PeerId(3), PeerId(4)]);
    for id in &ids {
        let w = worker_of(*id, 2);
        assert!(if w == 0 {
            a.is_alive(*id)
        } else {
            b.is_alive(*id)
        });
    }
    a.note_processing(Duration::from_micros(80));
    b.note_processing(Duration::from_micros(400));
    let mut s = a.stats(t0);
    s.merge(b.stats(t0));
    assert_eq!((s.publishers, s.subscribers), (4, 0));
    assert_eq!(s.workers.len(), 2);
    assert_eq!(s.workers[1].sessions, 2);
    assert_eq!(s.processing_delay.count, 2);
    let lessons: Vec<&str> = s.lessons.iter().map(|l| l.lesson.as_str()).collect();
    assert_eq!(lessons, ["l0", "l0", "l1", "l1"], "sorted by name");
}
