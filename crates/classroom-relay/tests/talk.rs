//! Two-way lesson with real WebRTC peers over real UDP against the real relay
//! binary: a str0m teacher publishes Opus + VP8 (WHIP) and hears the floor (WHEP
//! with the teacher token); three str0m classrooms watch (WHEP with a second audio
//! m-line for the floor voice) and each publishes its microphone as real Opus on
//! /talk. Only the school holding the floor is heard, by everyone but itself, as
//! one continuous stream across a floor change; the rest is dropped and counted.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use relay_sim::peer::vp8_payload;
use relay_sim::voice;
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};

/// The talk streams' first sequence numbers and timestamps, far apart, so a
/// receiver would see a hole or a jump back if the relay passed them through.
const TALK_SEQ: [u64; 3] = [10_000, 30_000, 50_000];
const TALK_TS: [u32; 3] = [1_000_000, 2_000_000_000, 500_000_000];
/// Seconds of speech each school has ready (more than the test runs).
const TALK_SECONDS: usize = 20;

// Timeline, from when everyone has joined.
const GRANT_2: Duration = Duration::from_millis(3000);
const GRANT_3: Duration = Duration::from_millis(6000);
const TAKE_BACK: Duration = Duration::from_millis(9000);
const SETTLE: Duration = Duration::from_millis(300);
const QUIET: Duration = Duration::from_millis(1000);
/// After everyone stops sending, what is still on the way is received.
const DRAIN: Duration = Duration::from_millis(500);

struct Peer {
    rtc: Rtc,
    sock: UdpSocket,
    addr: SocketAddr,
    connected: bool,
}

#[derive(Debug, Clone)]
struct Got {
    at: Instant,
    mid: Option<Mid>,
    seq: u64,
    ts: u32,
    payload: Vec<u8>,
}

impl Peer {
    fn new() -> Peer {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_nonblocking(true).unwrap();
        let addr = sock.local_addr().unwrap();
        let mut rtc = Rtc::builder().set_rtp_mode(true).build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        Peer {
            rtc,
            sock,
            addr,
            connected: false,
        }
    }

    /// Offer, POST it, apply the answer.
    fn connect(&mut self, url: &str, token: &str, setup: impl FnOnce(&mut str0m::change::SdpApi)) {
        let mut api = self.rtc.sdp_api();
        setup(&mut api);
        let (offer, pending) = api.apply().unwrap();
        let (status, body) = http(
            "POST",
            url,
            token,
            "application/sdp",
            &offer.to_sdp_string(),
        );
        assert_eq!(status, 201, "POST {url}: {status} {body}");
        let answer = SdpAnswer::from_sdp_string(&body).unwrap();
        self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
    }

    /// Send, receive and time out; returns events. In RTP mode str0m holds only one
    /// received packet until the next `poll_output`, so every datagram is fed on its
    /// own and followed by a full drain.
    fn drive(&mut self, now: Instant) -> Vec<Event> {
        let mut events = vec![];
        let mut buf = vec![0u8; 2000];
        self.rtc.handle_input(Input::Timeout(now)).unwrap();
        loop {
            loop {
                match self.rtc.poll_output().unwrap() {
                    Output::Transmit(t) => {
                        let _ = self.sock.send_to(&t.contents, t.destination);
                    }
                    Output::Event(Event::Connected) => self.connected = true,
                    Output::Event(e) => events.push(e),
                    Output::Timeout(_) => break,
                }
            }
            let Ok((n, src)) = self.sock.recv_from(&mut buf) else {
                return events;
            };
            if let Ok(r) = Receive::new(Protocol::Udp, src, self.addr, &buf[..n]) {
                self.rtc.handle_input(Input::Receive(now, r)).unwrap();
            }
        }
    }

    /// Drive and keep the RTP packets, with the m-line each came on.
    fn receive(&mut self, now: Instant, into: &mut Vec<Got>) {
        for e in self.drive(now) {
            if let Event::RtpPacket(pkt) = e {
                let mid = self
                    .rtc
                    .direct_api()
                    .stream_rx(&pkt.header.ssrc)
                    .map(|s| s.mid());
                into.push(Got {
                    at: now,
                    mid,
                    seq: *pkt.seq_no,
                    ts: pkt.header.timestamp,
                    payload: pkt.payload.to_vec(),
                });
            }
        }
    }

    fn pt(&self, codec: Codec) -> Pt {
        self.rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == codec)
            .unwrap()
            .pt()
    }
}

/// One HTTP request; status and body, also for 4xx/5xx.
fn http(method: &str, url: &str, token: &str, ctype: &str, body: &str) -> (u16, String) {
    let mut req = ureq::request(method, url).set("Authorization", &format!("Bearer {token}"));
    let res = if method == "GET" {
        req.call()
    } else {
        req = req.set("Content-Type", ctype);
        req.send_string(body)
    };
    match res {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

fn post_json(url: &str, token: &str, body: &str) -> serde_json::Value {
    let (status, text) = http("POST", url, token, "application/json", body);
    assert_eq!(status, 200, "POST {url} {body}: {status} {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {url}: {e}: {text}"))
}

/// A school's microphone: the generated speech with a little noise of its own, so
/// no frame is digital silence and every packet is told apart by its bytes.
fn school_voice(seed: u64) -> Vec<Vec<u8>> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let pcm: Vec<i16> = voice::speech(TALK_SECONDS, seed)
        .into_iter()
        .map(|s| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.saturating_add((x % 41) as i16 - 20)
        })
        .collect();
    voice::encode(&pcm).expect("libopus encodes")
}

/// Which school (0-based) sent a payload, and its index in that school's stream.
type Origins = HashMap<Vec<u8>, (usize, usize)>;

fn origins(voices: &[Vec<Vec<u8>>]) -> Origins {
    let mut m: HashMap<Vec<u8>, Option<(usize, usize)>> = HashMap::new();
    for (s, v) in voices.iter().enumerate() {
        for (i, p) in v.iter().enumerate() {
            m.entry(p.clone())
                .and_modify(|e| *e = None) // the same bytes twice: tells nothing
                .or_insert(Some((s, i)));
        }
    }
    m.into_iter().filter_map(|(k, v)| Some((k, v?))).collect()
}

#[test]
fn floor_voice_reaches_teacher_and_other_classrooms_only_while_held() {
    str0m::crypto::from_feature_flags().install_process_default();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let cfg = std::env::temp_dir().join(format!("crtest-talk-{}.json", std::process::id()));
    std::fs::write(&cfg, r#"{"media": {"adaptation": false}}"#).unwrap();
    let relay = common::start(&["--config", cfg.to_str().unwrap()]);
    let _ = std::fs::remove_file(&cfg);
    let base = relay.base.clone();
    let teacher_token = common::token("demo", "teacher", None, &[]);
    let school_tokens: Vec<String> = (1..=3)
        .map(|i| common::token("demo", "classroom", Some(&format!("school-{i}")), &[]))
        .collect();

    // Real Opus, one voice per school; the teacher speaks relay_sim's voice.
    let voices: Vec<Vec<Vec<u8>>> = (0..3).map(|s| school_voice(11 + s as u64)).collect();
    let talk_origin = origins(&voices);
    let teacher_voice = voice::packets();
    let teacher_set: HashSet<&[u8]> = teacher_voice.iter().map(|p| p.as_slice()).collect();
    assert!(
        voices
            .iter()
            .flatten()
            .all(|q| !teacher_set.contains(q.as_slice())),
        "a teacher packet equals a school packet; the origins would be ambiguous"
    );

    // The teacher publishes, and waits to be connected before anyone joins.
    let mut teacher = Peer::new();
    let (mut t_amid, mut t_vmid) = (Mid::from("x"), Mid::from("y"));
    teacher.connect(&format!("{base}/whip/demo"), &teacher_token, |api| {
        t_amid = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        t_vmid = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !teacher.connected && Instant::now() < deadline {
        teacher.drive(Instant::now());
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(teacher.connected, "teacher never connected");
    let opus = teacher.pt(Codec::Opus);
    let vp8 = teacher.pt(Codec::Vp8);

    // The teacher hears the floor on one recvonly audio m-line.
    let mut hearing = Peer::new();
    hearing.connect(&format!("{base}/whep/demo"), &teacher_token, |api| {
        api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    });

    // Classrooms: teacher voice, camera, floor voice; and a talk session each.
    let mut classes: Vec<(Peer, Mid, Mid, Mid)> = vec![];
    let mut talks: Vec<(Peer, Mid)> = vec![];
    for tok in &school_tokens {
        let mut p = Peer::new();
        let (mut a1, mut v, mut a2) = (Mid::from("x"), Mid::from("y"), Mid::from("z"));
        p.connect(&format!("{base}/whep/demo"), tok, |api| {
            a1 = api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
            v = api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
            a2 = api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        });
        classes.push((p, a1, v, a2));
        let mut t = Peer::new();
        let mut m = Mid::from("x");
        t.connect(&format!("{base}/talk/demo"), tok, |api| {
            m = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        });
        talks.push((t, m));
    }

    let start = Instant::now();
    let mut hearing_got: Vec<Got> = vec![];
    let mut class_got: Vec<Vec<Got>> = vec![vec![]; 3];
    // Teacher: audio packets and video frames sent; keyframe wanted.
    let (mut t_audio, mut t_frames, mut t_vseq, mut pid) = (0u64, 0u64, 5000u64, 0u16);
    let mut t_sent_at: Vec<Instant> = vec![];
    let mut key_wanted = true;
    // Talk: when each started, packets sent.
    let mut talk_start: [Option<Instant>; 3] = [None; 3];
    let mut talk_sent = [0usize; 3];
    let mut talk_sent_at: [Vec<Instant>; 3] = Default::default();
    let mut talk_pt = [None; 3];
    // When each floor change was asked for and answered.
    let (mut grant2, mut grant3, mut back) = (None, None, None);
    let mut metrics_text = String::new();
    let end = TAKE_BACK + SETTLE + QUIET + Duration::from_millis(100);
    // The longest this loop went without looking at its sockets (a loaded machine).
    let (mut last_iter, mut stall) = (start, (Duration::ZERO, Duration::ZERO));
    // Iterations that came more than 20 ms after the one before: when, how late.
    let mut stalls: HashMap<Instant, Duration> = HashMap::new();

    while start.elapsed() < end + DRAIN {
        let now = Instant::now();
        let el = now - start;
        let sending = el < end;
        if now - last_iter > stall.0 {
            stall = (now - last_iter, el);
        }
        if now - last_iter > Duration::from_millis(20) {
            stalls.insert(now, now - last_iter);
        }
        last_iter = now;

        for e in teacher.drive(now) {
            if let Event::KeyframeRequest(r) = e {
                if r.mid == t_vmid {
                    key_wanted = true;
                }
            }
        }
        // 50 audio packets/s and 25 video frames/s, paced by elapsed time.
        while sending && t_audio < el.as_millis() as u64 / 20 {
            let payload = teacher_voice[t_audio as usize % teacher_voice.len()].clone();
            let mut api = teacher.rtc.direct_api();
            let tx = api.stream_tx_by_mid(t_amid, None).unwrap();
            tx.write_rtp(RtpWrite::new(
                opus,
                (1000 + t_audio).into(),
                (t_audio * 960) as u32,
                now,
                payload,
            ));
            t_audio += 1;
            t_sent_at.push(now);
        }
        while sending && t_frames < el.as_millis() as u64 / 40 {
            t_frames += 1;
            pid = (pid + 1) % 0x8000;
            let key = std::mem::take(&mut key_wanted) || t_frames % 25 == 0;
            for k in 0..2 {
                let mut api = teacher.rtc.direct_api();
                let tx = api.stream_tx_by_mid(t_vmid, None).unwrap();
                tx.write_rtp(
                    RtpWrite::new(
                        vp8,
                        t_vseq.into(),
                        (t_frames * 3600) as u32,
                        now,
                        vp8_payload(pid, k == 0, key, 400, 0),
                    )
                    .marker(k == 1)
                    .nackable(true),
                );
                t_vseq += 1;
            }
        }

        // Each school speaks from when its talk session connects, 20 ms frames.
        for (s, (t, mid)) in talks.iter_mut().enumerate() {
            t.drive(now);
            if !t.connected || !sending {
                continue;
            }
            let pt = *talk_pt[s].get_or_insert_with(|| t.pt(Codec::Opus));
            let t0 = *talk_start[s].get_or_insert(now);
            let due = ((now - t0).as_millis() / 20) as usize + 1;
            while talk_sent[s] < due.min(voices[s].len()) {
                let i = talk_sent[s];
                let mut api = t.rtc.direct_api();
                let tx = api.stream_tx_by_mid(*mid, None).unwrap();
                tx.write_rtp(RtpWrite::new(
                    pt,
                    (TALK_SEQ[s] + i as u64).into(),
                    TALK_TS[s].wrapping_add(960 * i as u32),
                    now,
                    voices[s][i].clone(),
                ));
                talk_sent[s] += 1;
                talk_sent_at[s].push(now);
            }
        }

        hearing.receive(now, &mut hearing_got);
        for (ci, (p, ..)) in classes.iter_mut().enumerate() {
            p.receive(now, &mut class_got[ci]);
        }

        // The floor: school-2 raises a hand and gets it, then school-3, then nobody.
        if el >= GRANT_2 && grant2.is_none() {
            for (s, t) in talks.iter().enumerate() {
                assert!(
                    t.0.connected,
                    "talk session of school-{} not connected",
                    s + 1
                );
                assert!(talk_sent[s] > 50, "school-{}: {} sent", s + 1, talk_sent[s]);
            }
            let f = post_json(
                &format!("{base}/api/lessons/demo/hand"),
                &school_tokens[1],
                r#"{"raised": true}"#,
            );
            println!("hand raised: {f}");
            let (status, text) = http(
                "GET",
                &format!("{base}/api/lessons/demo"),
                &teacher_token,
                "",
                "",
            );
            assert_eq!(status, 200, "GET lesson: {text}");
            let lesson: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                lesson["floor"]["hands"],
                serde_json::json!(["school-2"]),
                "lesson after the hand: {text}"
            );
            let asked = Instant::now();
            let f = post_json(
                &format!("{base}/api/lessons/demo/floor"),
                &teacher_token,
                r#"{"school": "school-2"}"#,
            );
            println!("floor to school-2: {f}");
            assert_eq!(f["school"], "school-2", "floor JSON: {f}");
            assert_eq!(f["hands"], serde_json::json!([]), "floor JSON: {f}");
            grant2 = Some((asked, Instant::now()));
        }
        if el >= GRANT_3 && grant3.is_none() {
            let asked = Instant::now();
            let f = post_json(
                &format!("{base}/api/lessons/demo/floor"),
                &teacher_token,
                r#"{"school": "school-3"}"#,
            );
            println!("floor to school-3: {f}");
            assert_eq!(f["school"], "school-3", "floor JSON: {f}");
            grant3 = Some((asked, Instant::now()));
        }
        if el >= TAKE_BACK && back.is_none() {
            let (status, text) = http("GET", &format!("{base}/metrics"), "", "", "");
            assert_eq!(status, 200, "GET /metrics: {text}");
            metrics_text = text;
            let asked = Instant::now();
            let f = post_json(
                &format!("{base}/api/lessons/demo/floor"),
                &teacher_token,
                r#"{"school": null}"#,
            );
            println!("floor taken back: {f}");
            assert!(f["school"].is_null(), "floor JSON: {f}");
            back = Some((asked, Instant::now()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let (grant2, grant3, back) = (grant2.unwrap(), grant3.unwrap(), back.unwrap());
    assert!(
        hearing.connected,
        "teacher's hearing session never connected"
    );
    for (ci, (p, ..)) in classes.iter().enumerate() {
        assert!(p.connected, "classroom {} never connected", ci + 1);
    }
    println!(
        "sent: teacher audio {t_audio}, video frames {t_frames}, talk {talk_sent:?}; \
         longest loop stall {:?} at {:?}",
        stall.0, stall.1
    );
    // A packet seen at `at` may have come in up to the stall before it.
    let came_after =
        |g: &Got, t: Instant| g.at - stalls.get(&g.at).copied().unwrap_or_default() >= t;

    // Every floor receiver: (name, floor packets, schools it must hear in order).
    let mut receivers: Vec<(String, Vec<Got>, Vec<usize>)> =
        vec![("teacher hearing".into(), hearing_got.clone(), vec![1, 2])];
    let hears = [vec![1, 2], vec![2], vec![1]];
    for (ci, (_, a1, v, a2)) in classes.iter().enumerate() {
        let name = format!("classroom {}", ci + 1);
        let got = &class_got[ci];
        let other = got
            .iter()
            .filter(|g| g.mid != Some(*a1) && g.mid != Some(*v) && g.mid != Some(*a2))
            .count();
        assert_eq!(other, 0, "{name}: packets on no known m-line");

        // The first audio m-line carries the teacher's voice all along: exactly the
        // teacher's packets in its order, from before the floor to after it.
        let mut teacher_audio: Vec<Got> =
            got.iter().filter(|g| g.mid == Some(*a1)).cloned().collect();
        assert!(!teacher_audio.is_empty(), "{name}: no teacher audio");
        assert_gap_free(&teacher_audio, &format!("{name} teacher audio"));
        teacher_audio.sort_by_key(|g| g.seq);
        let n = teacher_voice.len();
        let k = (0..n)
            .find(|k| {
                teacher_audio
                    .iter()
                    .enumerate()
                    .all(|(j, g)| teacher_voice[(k + j) % n] == g.payload)
            })
            .unwrap_or_else(|| {
                panic!("{name}: first audio m-line is not the teacher's packets in order")
            });
        // The teacher's voice loops every `n`: the run's last packet is the latest
        // index with that position sent.
        let last = (k + teacher_audio.len() - 1) % n;
        let last_sent = (0..t_sent_at.len()).rev().find(|i| i % n == last).unwrap();
        assert!(
            teacher_audio.iter().map(|g| g.at).min().unwrap() < grant2.0,
            "{name}: no teacher voice before the floor"
        );
        assert!(
            t_sent_at[last_sent] >= back.1 + SETTLE,
            "{name}: teacher voice stopped at {:?}, the floor was taken back at {:?}",
            t_sent_at[last_sent] - start,
            back.1 - start
        );
        let video = got.iter().filter(|g| g.mid == Some(*v)).count();
        assert!(video > 100, "{name}: {video} video packets");
        println!(
            "{name}: teacher audio {} packets in order, video {video} packets",
            teacher_audio.len()
        );

        let floor: Vec<Got> = got.iter().filter(|g| g.mid == Some(*a2)).cloned().collect();
        receivers.push((name, floor, hears[ci].clone()));
    }

    for (name, floor, want) in &receivers {
        let unknown = floor
            .iter()
            .filter(|g| !talk_origin.contains_key(&g.payload))
            .count();
        let mut by_school = [0usize; 3];
        for g in floor {
            if let Some((s, _)) = talk_origin.get(&g.payload) {
                by_school[*s] += 1;
            }
        }
        let before = floor.iter().filter(|g| g.at < grant2.0).count();
        let after: Vec<&Got> = floor.iter().filter(|g| g.at >= back.1 + SETTLE).collect();
        let after_excused = after
            .iter()
            .filter(|g| !came_after(g, back.1 + SETTLE))
            .count();
        println!(
            "{name}: floor packets {} (school-1 {}, school-2 {}, school-3 {}, unknown {unknown}), \
             before the floor {before}, after take-back+settle {} ({after_excused} behind a loop stall)",
            floor.len(),
            by_school[0],
            by_school[1],
            by_school[2],
            after.len(),
        );
        assert_eq!(
            before, 0,
            "{name}: floor voice before anyone held the floor"
        );
        assert_eq!(unknown, 0, "{name}: floor packets that no school sent");
        assert_eq!(
            after.len() - after_excused,
            0,
            "{name}: floor voice 300 ms after the floor was taken back"
        );

        // Schools in the order heard: exactly those expected, each once.
        let mut seen: Vec<usize> = floor.iter().map(|g| talk_origin[&g.payload].0).collect();
        seen.dedup();
        assert_eq!(
            seen, *want,
            "{name}: schools heard in order (0-based: 1 = school-2, 2 = school-3)"
        );
        for &s in want {
            // Its floor: (asked, answered) when it got it and when it lost it.
            let (got_it, lost_it) = if s == 1 {
                (grant2, grant3)
            } else {
                (grant3, back)
            };
            let mut mine: Vec<&Got> = floor
                .iter()
                .filter(|g| talk_origin[&g.payload].0 == s)
                .collect();
            mine.sort_by_key(|g| g.seq);
            let index = |g: &Got| talk_origin[&g.payload].1;
            let first_at = mine.iter().map(|g| g.at).min().unwrap();
            assert!(
                first_at >= got_it.0,
                "{name}: school-{} heard before it was given the floor",
                s + 1
            );
            // Nothing it said after the relay confirmed the floor had moved on.
            let late = mine
                .iter()
                .filter(|g| talk_sent_at[s][index(g)] >= lost_it.1)
                .count();
            assert_eq!(
                late,
                0,
                "{name}: school-{} packets sent after it lost the floor",
                s + 1
            );
            // What it said while it held the floor: in its own order, none missing,
            // bytes unchanged; at most a second lost to the edges of its turn.
            for w in mine.windows(2) {
                let (a, b) = (index(w[0]), index(w[1]));
                assert_eq!(
                    b,
                    a + 1,
                    "{name}: school-{} packet {b} follows its packet {a}",
                    s + 1
                );
            }
            let held = lost_it.0 - got_it.1;
            let want_n = held.saturating_sub(Duration::from_secs(1)).as_millis() as usize / 20;
            assert!(
                mine.len() >= want_n,
                "{name}: {} packets of school-{} in a floor held {held:?}",
                mine.len(),
                s + 1
            );
            // Decodable by libopus, as a receiver plays it.
            let rx: Vec<voice::AudioRx> = mine
                .iter()
                .map(|g| (g.seq, g.at, g.payload.clone()))
                .collect();
            let play = voice::play(&rx);
            assert_eq!(play.errors, 0, "{name}: libopus refused packets: {play:?}");
            assert!(
                play.decoded * 10 >= play.expected * 9,
                "{name}: school-{} played {play:?}",
                s + 1
            );
        }
        // One stream across the floor change: no holes, time only forward.
        assert_gap_free(floor, &format!("{name} floor voice"));
        if want.len() == 2 {
            let mut by_seq: Vec<&Got> = floor.iter().collect();
            by_seq.sort_by_key(|g| g.seq);
            let k = by_seq
                .windows(2)
                .position(|w| talk_origin[&w[0].payload].0 != talk_origin[&w[1].payload].0)
                .unwrap();
            let jump = by_seq[k + 1].ts.wrapping_sub(by_seq[k].ts);
            println!(
                "{name}: switch at seq {} -> {}, timestamp +{jump}",
                by_seq[k].seq,
                by_seq[k + 1].seq
            );
            assert!(
                jump > 0 && jump < 48_000 * 5,
                "{name}: timestamp moved by {jump} at the floor change"
            );
        }
    }

    // Talk voice that did not hold the floor was dropped and counted.
    let talk_lines: Vec<&str> = metrics_text
        .lines()
        .filter(|l| l.contains("talk"))
        .collect();
    println!("metrics:\n{}", talk_lines.join("\n"));
    let dropped: Vec<f64> = talk_lines
        .iter()
        .filter(|l| l.starts_with("classroom_relay_talk_dropped_packets_total"))
        .filter_map(|l| l.split_whitespace().last()?.parse().ok())
        .collect();
    assert!(
        !dropped.is_empty(),
        "no classroom_relay_talk_dropped_packets_total in /metrics"
    );
    let dropped: f64 = dropped.iter().sum();
    assert!(dropped > 0.0, "talk dropped counter is {dropped}");
    // School-1 never held the floor: all it had sent by then was dropped.
    let school1 = talk_sent_at[0].iter().filter(|t| **t < back.0).count() as f64;
    assert!(
        dropped >= school1 * 0.5,
        "talk dropped counter {dropped}, school-1 alone had sent {school1}"
    );
    println!("talk: PASS");
}

/// Sequence numbers form one run without holes (loopback loses nothing), and
/// timestamps never go backwards.
fn assert_gap_free(v: &[Got], what: &str) {
    assert!(!v.is_empty(), "{what}: no packets");
    let mut seqs: Vec<u64> = v.iter().map(|g| g.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    let span = seqs.last().unwrap() - seqs.first().unwrap() + 1;
    assert_eq!(
        span,
        seqs.len() as u64,
        "{what}: {} holes in sequence numbers",
        span - seqs.len() as u64
    );
    let mut by_seq: Vec<&Got> = v.iter().collect();
    by_seq.sort_by_key(|g| g.seq);
    for w in by_seq.windows(2) {
        let d = w[1].ts.wrapping_sub(w[0].ts);
        assert!(
            d < 1 << 31,
            "{what}: timestamp went backwards at seq {}",
            w[1].seq
        );
    }
}
