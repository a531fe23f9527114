//! Datagrams as the edge sees them on its UDP socket: STUN, DTLS, SRTP and SRTCP
//! from a teacher and a classroom that are really connected (str0m peers in memory
//! on a virtual clock, as the simulator runs them), and from strangers.
//!
//! Fuzzed bytes reach the edge three ways: raw datagrams from the teacher's, the
//! classroom's or an unknown address; real datagrams of the session with bytes
//! changed; and RTP the teacher's str0m writes with fuzzed payloads, payload
//! types, sequence numbers, timestamps and marker bits, which it protects with the
//! session's SRTP keys, so the edge's RTP path and the core's payload inspection
//! see them past authentication.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use relay_core::{PeerId, RelayConfig};
use relay_sim::peer::Peer;
use relay_webrtc::{Codecs, Edge};
use str0m::media::{Direction, MediaKind, Mid, Pt, Rid, Simulcast, SimulcastLayer};
use str0m::rtp::RtpWrite;
use str0m::{Event, Input};

use crate::sdp::CHROMIUM_WHEP;
use crate::Reader;

const RIDS: [&str; 3] = ["q", "h", "f"];
/// The rig is built anew after this many inputs, so state cannot pile up.
const REBUILD_EVERY: u64 = 20_000;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

/// A lesson with one str0m teacher and one str0m classroom, connected.
struct Rig {
    now: Instant,
    edge: Edge,
    relay: SocketAddr,
    teacher: Peer,
    class: Peer,
    teacher_id: PeerId,
    class_id: PeerId,
    amid: Mid,
    vmid: Mid,
    pts: Vec<Pt>,
    seq: [u64; 4],
    ts: [u32; 4],
    /// The last real datagram each peer sent, for mutation.
    last_teacher: Vec<u8>,
    last_class: Vec<u8>,
    /// Every datagram the peers sent while the rig was built (teacher's or not).
    seen: Vec<(bool, Vec<u8>)>,
    inputs: u64,
}

impl Rig {
    fn build() -> Rig {
        relay_webrtc::init_crypto();
        fastrand::seed(14);
        let t0 = Instant::now();
        let relay = addr("198.18.0.1:5000");
        let mut edge = Edge::new(
            t0,
            RelayConfig::default(),
            Codecs { h264: true },
            vec![relay],
        );
        let mut teacher = Peer::new(t0, addr("198.18.1.1:6000"));
        let (mut amid, mut vmid) = (Mid::from("a"), Mid::from("v"));
        let (offer, pending) = teacher.offer(|api| {
            amid = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
            let mut sim = Simulcast::new();
            for r in RIDS {
                sim.add_send_layer(SimulcastLayer::new(r));
            }
            vmid = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, Some(sim));
        });
        let s = edge
            .publish(t0, "lesson", "teacher", &offer)
            .expect("teacher accepted");
        teacher.accept(pending, &s.answer);
        let mut class = Peer::with_red(t0, addr("198.18.2.1:6000"));
        let (offer, pending) = class.offer(|api| {
            api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
            api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        });
        let c = edge
            .subscribe(t0, "lesson", "school", None, &offer)
            .expect("classroom accepted");
        class.accept(pending, &c.answer);
        // A second classroom, a browser's offer, that never connects.
        let _ = edge.subscribe(t0, "lesson", "browser", None, CHROMIUM_WHEP);
        let pts = teacher
            .rtc
            .codec_config()
            .params()
            .iter()
            .map(|p| p.pt())
            .collect();
        let mut rig = Rig {
            now: t0,
            edge,
            relay,
            teacher,
            class,
            teacher_id: s.peer,
            class_id: c.peer,
            amid,
            vmid,
            pts,
            seq: [1000, 20_000, 40_000, 60_000],
            ts: [0; 4],
            last_teacher: vec![],
            last_class: vec![],
            seen: vec![],
            inputs: 0,
        };
        let mut connected = 0;
        for _ in 0..400 {
            rig.pump(Duration::from_millis(10));
            for p in [&mut rig.teacher, &mut rig.class] {
                connected += p
                    .events
                    .iter()
                    .filter(|e| matches!(e, Event::Connected))
                    .count();
                p.events.clear();
            }
            if connected == 2 {
                break;
            }
        }
        assert_eq!(connected, 2, "the rig's peers connect");
        // A keyframe on every layer and some voice, so the classroom is bound.
        for i in 0..4 {
            let key = [0x90, 0x80, 0x80, 0x01, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a];
            rig.write(i, rig.pts_of(i), &key, true);
        }
        rig.pump(Duration::from_millis(100));
        rig
    }

    /// The teacher's first payload type for a stream (0: voice, 1-3: layers).
    fn pts_of(&self, stream: usize) -> Pt {
        let want = if stream == 0 {
            str0m::format::Codec::Opus
        } else {
            str0m::format::Codec::Vp8
        };
        let params = self.teacher.rtc.codec_config().params();
        params
            .iter()
            .find(|p| p.spec().codec == want)
            .map(|p| p.pt())
            .expect("negotiated")
    }

    /// The teacher writes one RTP packet on `stream`.
    fn write(&mut self, stream: usize, pt: Pt, payload: &[u8], marker: bool) {
        let (mid, rid) = match stream {
            0 => (self.amid, None),
            i => (self.vmid, Some(Rid::from(RIDS[i - 1]))),
        };
        let mut api = self.teacher.rtc.direct_api();
        if let Some(tx) = api.stream_tx_by_mid(mid, rid) {
            let w = RtpWrite::new(
                pt,
                self.seq[stream].into(),
                self.ts[stream],
                self.now,
                payload.to_vec(),
            )
            .marker(marker)
            .nackable(stream > 0);
            tx.write_rtp(w);
        }
        let _ = self.teacher.rtc.handle_input(Input::Timeout(self.now));
        self.teacher.drain();
    }

    /// Deliver everything in flight and run every timer for `d` of virtual time.
    fn pump(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let mut moved = false;
            while let Some(dg) = self.edge.poll_datagram() {
                moved = true;
                if dg.destination == self.teacher.addr {
                    self.teacher.receive(self.now, dg.source, &dg.contents);
                } else if dg.destination == self.class.addr {
                    self.class.receive(self.now, dg.source, &dg.contents);
                }
            }
            for teacher in [true, false] {
                let p = if teacher {
                    &mut self.teacher
                } else {
                    &mut self.class
                };
                p.events.retain(|e| matches!(e, Event::Connected));
                let from = p.addr;
                for (to, data) in std::mem::take(&mut p.outbox) {
                    moved = true;
                    if to == self.relay {
                        self.edge.receive(self.now, self.relay, from, &data);
                        if self.inputs == 0 && self.seen.len() < 64 {
                            self.seen.push((teacher, data.clone()));
                        }
                        if teacher {
                            self.last_teacher = data;
                        } else {
                            self.last_class = data;
                        }
                    }
                }
            }
            if moved {
                continue;
            }
            let next = self
                .edge
                .next_timeout(self.now)
                .min(self.teacher.next)
                .min(self.class.next);
            if next > end {
                self.now = end;
                break;
            }
            self.now = next.max(self.now + Duration::from_micros(100));
            self.edge.timeout(self.now);
            self.teacher.tick(self.now);
            self.class.tick(self.now);
        }
        self.edge.timeout(self.now);
    }

    fn alive(&self) -> bool {
        self.edge.is_alive(self.teacher_id) && self.edge.is_alive(self.class_id)
    }
}

/// Real datagrams of a session's start (STUN, DTLS, then SRTP and SRTCP), as the
/// teacher (`true`) or the classroom sent them to the relay: material for seeds.
pub fn session_datagrams() -> Vec<(bool, Vec<u8>)> {
    Rig::build().seen
}

thread_local! {
    static RIG: RefCell<Option<Rig>> = const { RefCell::new(None) };
}

/// Replace the bytes of `d` at positions and with values from `r` (pairs).
fn mutate(mut d: Vec<u8>, edits: &[u8]) -> Vec<u8> {
    for e in edits.chunks(2) {
        if d.is_empty() {
            break;
        }
        let at = usize::from(e[0]) % d.len();
        d[at] ^= e.get(1).copied().unwrap_or(0xff);
    }
    d
}

/// Datagrams at a connected edge. The input is a list of records: `op` (1 byte),
/// `len` (2 bytes, big-endian), `len` bytes. Whatever they carry, the edge must not panic, and raw or altered
/// datagrams (which anyone on the path can send with a forged source address)
/// must not end the connected sessions.
pub fn edge_datagram(data: &[u8]) {
    RIG.with(|cell| {
        let mut guard = cell.borrow_mut();
        let fresh = guard
            .as_ref()
            .is_none_or(|r| !r.alive() || r.inputs >= REBUILD_EVERY);
        if fresh {
            *guard = Some(Rig::build());
        }
        let rig = guard.as_mut().expect("built");
        rig.inputs += 1;
        let stranger = addr("203.0.113.9:7000");
        let mut r = Reader::new(data);
        while !r.is_empty() {
            let op = r.u8();
            let len = usize::from(r.u16());
            let bytes = r.bytes(len);
            let (relay, teacher, class) = (rig.relay, rig.teacher.addr, rig.class.addr);
            let now = rig.now;
            match op % 8 {
                0 => rig.edge.receive(now, relay, teacher, bytes),
                1 => rig.edge.receive(now, relay, class, bytes),
                2 => rig.edge.receive(now, relay, stranger, bytes),
                3 | 4 => {
                    let mut b = Reader::new(bytes);
                    let stream = if op % 8 == 3 {
                        0
                    } else {
                        1 + usize::from(b.u8()) % 3
                    };
                    let sel = b.u8();
                    let pt = if sel < 0x80 {
                        rig.pts_of(stream)
                    } else {
                        rig.pts[usize::from(sel) % rig.pts.len()]
                    };
                    rig.seq[stream] =
                        rig.seq[stream].wrapping_add(u64::from(b.u8() % 8)) % (1 << 40);
                    rig.ts[stream] = rig.ts[stream].wrapping_add(u32::from(b.u16()) * 16);
                    let marker = b.u8() & 1 == 1;
                    rig.write(stream, pt, b.rest(), marker);
                    rig.seq[stream] += 1;
                }
                5 => {
                    let d = mutate(rig.last_teacher.clone(), bytes);
                    rig.edge.receive(now, relay, teacher, &d);
                }
                6 => {
                    let d = mutate(rig.last_class.clone(), bytes);
                    rig.edge.receive(now, relay, class, &d);
                }
                _ => {
                    let ms = bytes.first().copied().unwrap_or(1);
                    rig.pump(Duration::from_millis(u64::from(ms) * 4));
                }
            }
            assert!(
                rig.alive(),
                "a datagram from the path ended a connected session (op {op})"
            );
        }
        rig.pump(Duration::from_millis(30));
        assert!(rig.alive(), "the sessions ended after the input");
    });
}
