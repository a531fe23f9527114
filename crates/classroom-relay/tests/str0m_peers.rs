//! Integration with real WebRTC peers over real UDP: a str0m teacher publishes Opus
//! and 3-layer VP8 simulcast through WHIP to the real relay binary; three str0m
//! classrooms watch through WHEP at low, medium and high. Each must get audio and
//! the intended layer, starting on a keyframe; when the teacher's top layer stops,
//! the high classroom must switch down on a keyframe with continuous numbering.

mod common;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use relay_sim::peer::vp8_payload;
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};

const RIDS: [&str; 3] = ["q", "h", "f"];
/// Packets per frame and payload size per layer: about 40, 200 and 720 kbit/s.
const SHAPE: [(usize, usize); 3] = [(1, 200), (2, 500), (4, 900)];

struct Peer {
    rtc: Rtc,
    sock: UdpSocket,
    addr: SocketAddr,
}

#[derive(Debug, Clone)]
struct Got {
    at: Instant,
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
        Peer { rtc, sock, addr }
    }

    /// Offer, POST it, apply the answer.
    fn connect(&mut self, url: &str, token: &str, setup: impl FnOnce(&mut str0m::change::SdpApi)) {
        let mut api = self.rtc.sdp_api();
        setup(&mut api);
        let (offer, pending) = api.apply().unwrap();
        let resp = ureq::post(url)
            .set("Authorization", &format!("Bearer {token}"))
            .set("Content-Type", "application/sdp")
            .send_string(&offer.to_sdp_string())
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert_eq!(resp.status(), 201);
        let answer = SdpAnswer::from_sdp_string(&resp.into_string().unwrap()).unwrap();
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
}

fn is_key(p: &[u8]) -> bool {
    p[0] & 0x10 != 0 && p[4] & 0x01 == 0
}

#[test]
fn teacher_simulcast_to_three_classrooms_with_layer_switch() {
    str0m::crypto::from_feature_flags().install_process_default();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    // Fixed layers (no link adaptation): this test is about routing and switching.
    let cfg = std::env::temp_dir().join(format!("crtest-fixed-{}.json", std::process::id()));
    std::fs::write(&cfg, r#"{"media": {"adaptation": false}}"#).unwrap();
    let relay = common::start(&["--config", cfg.to_str().unwrap()]);
    let _ = std::fs::remove_file(&cfg);
    let whip = format!("{}/whip/demo", relay.base);
    let teacher_token = common::token("demo", "teacher", None, &[]);

    let mut teacher = Peer::new();
    let (mut amid, mut vmid) = (Mid::from("x"), Mid::from("y"));
    teacher.connect(&whip, &teacher_token, |api| {
        amid = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let mut sim = Simulcast::new();
        for r in RIDS {
            sim.add_send_layer(SimulcastLayer::new(r));
        }
        vmid = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, Some(sim));
    });

    let start = Instant::now();
    let mut classes: Vec<(Peer, Mid, Mid, Instant)> = vec![];
    let mut got: HashMap<(usize, bool), Vec<Got>> = HashMap::new();
    let (mut seq, mut ts, mut pid) = (
        [1000u64, 2000, 3000, 4000],
        [0u32, 10, 20, 30],
        [100u16, 200, 300],
    );
    let mut frame = 0u64;
    let mut audio_n = 0u64;
    let mut key_wanted = [true; 3];
    let mut sending = [true; 3];
    let mut pts = None;
    let mut connected = false;

    while start.elapsed() < Duration::from_secs(11) {
        let now = Instant::now();
        let el = now - start;
        for e in teacher.drive(now) {
            match e {
                Event::Connected => connected = true,
                Event::KeyframeRequest(r) => {
                    if let Some(i) = RIDS.iter().position(|x| r.rid == Some(Rid::from(*x))) {
                        key_wanted[i] = true;
                    }
                }
                _ => {}
            }
        }
        if connected && pts.is_none() {
            let pt = |c| {
                teacher
                    .rtc
                    .codec_config()
                    .params()
                    .iter()
                    .find(|p| p.spec().codec == c)
                    .unwrap()
                    .pt()
            };
            pts = Some((pt(Codec::Opus), pt(Codec::Vp8)));
        }
        if let Some((opus, vp8pt)) = pts {
            // 50 audio packets/s and 25 video frames/s, paced by elapsed time.
            let due_audio = el.as_millis() as u64 / 20;
            while audio_n < due_audio {
                audio_n += 1;
                let mut api = teacher.rtc.direct_api();
                let tx = api.stream_tx_by_mid(amid, None).unwrap();
                tx.write_rtp(RtpWrite::new(
                    opus,
                    seq[3].into(),
                    ts[3],
                    now,
                    vec![0xfc; 80],
                ));
                seq[3] += 1;
                ts[3] = ts[3].wrapping_add(960);
            }
            let due_frames = el.as_millis() as u64 / 40;
            while frame < due_frames {
                frame += 1;
                for (i, rid) in RIDS.iter().enumerate() {
                    pid[i] = (pid[i] + 1) % 0x8000;
                    ts[i] = ts[i].wrapping_add(3600);
                    if !sending[i] {
                        continue;
                    }
                    let key = std::mem::take(&mut key_wanted[i]) || frame % 250 == 0;
                    let (n, size) = SHAPE[i];
                    for k in 0..n {
                        let mut api = teacher.rtc.direct_api();
                        let tx = api.stream_tx_by_mid(vmid, Some(Rid::from(*rid))).unwrap();
                        let payload = vp8_payload(pid[i], k == 0, key, size, i as u8);
                        tx.write_rtp(
                            RtpWrite::new(vp8pt, seq[i].into(), ts[i], now, payload)
                                .marker(k == n - 1)
                                .nackable(true),
                        );
                        seq[i] += 1;
                    }
                }
            }
        }
        // Classrooms join 2 s in, at low, medium and high.
        if el >= Duration::from_secs(2) && classes.is_empty() {
            for (i, layer) in ["low", "medium", "high"].iter().enumerate() {
                let school = format!("school-{i}");
                let tok = common::token("demo", "classroom", Some(&school), &[]);
                let mut p = Peer::new();
                let (mut a, mut v) = (Mid::from("x"), Mid::from("y"));
                p.connect(
                    &format!("{}/whep/demo?layer={layer}", relay.base),
                    &tok,
                    |api| {
                        a = api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
                        v = api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
                    },
                );
                classes.push((p, a, v, Instant::now()));
            }
        }
        // The teacher's uplink drops the top layer 7 s in.
        if el >= Duration::from_secs(7) {
            sending[2] = false;
        }
        for (ci, (p, a, _v, _)) in classes.iter_mut().enumerate() {
            for e in p.drive(now) {
                if let Event::RtpPacket(pkt) = e {
                    let mid = p
                        .rtc
                        .direct_api()
                        .stream_rx(&pkt.header.ssrc)
                        .map(|s| s.mid());
                    let is_audio = mid == Some(*a);
                    got.entry((ci, is_audio)).or_default().push(Got {
                        at: now,
                        seq: *pkt.seq_no,
                        ts: pkt.header.timestamp,
                        payload: pkt.payload.to_vec(),
                    });
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }

    assert!(connected, "teacher never connected");
    for (ci, (_, _, _, joined)) in classes.iter().enumerate() {
        let audio = got.get(&(ci, true)).cloned().unwrap_or_default();
        assert!(
            audio.len() > 300,
            "classroom {ci}: {} audio packets",
            audio.len()
        );
        assert_gap_free(&audio, &format!("classroom {ci} audio"));

        let video = got.get(&(ci, false)).cloned().unwrap_or_default();
        assert!(!video.is_empty(), "classroom {ci}: no video");
        assert!(
            is_key(&video[0].payload),
            "classroom {ci}: first video packet is not a keyframe"
        );
        let first_picture = video[0].at - *joined;
        assert!(
            first_picture < Duration::from_millis(1500),
            "classroom {ci}: first picture after {first_picture:?}"
        );
        assert_gap_free(&video, &format!("classroom {ci} video"));
        let layers: Vec<u8> = video.iter().map(|g| *g.payload.last().unwrap()).collect();
        match ci {
            0 => assert!(
                layers.iter().all(|&l| l == 0),
                "low classroom got {:?}",
                dedup(&layers)
            ),
            1 => assert!(
                layers.iter().all(|&l| l == 1),
                "medium classroom got {:?}",
                dedup(&layers)
            ),
            _ => {
                // High: the top layer, then the middle one after the teacher drops it.
                assert_eq!(
                    dedup(&layers),
                    vec![2, 1],
                    "high classroom layers over time"
                );
                let switch = layers.iter().position(|&l| l == 1).unwrap();
                assert!(is_key(&video[switch].payload), "switch not on a keyframe");
                let gap = video[switch].at - video[switch - 1].at;
                assert!(
                    gap < Duration::from_millis(800),
                    "picture stalled {gap:?} at the switch"
                );
            }
        }
    }
}

fn dedup(v: &[u8]) -> Vec<u8> {
    let mut d = v.to_vec();
    d.dedup();
    d
}

/// Sequence numbers form one run without holes (loopback loses nothing), and
/// timestamps never go backwards.
fn assert_gap_free(v: &[Got], what: &str) {
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
