//! Hot-path micro-benchmark of the sans-IO core: one teacher RTP packet routed to N
//! classrooms (layer decision, sequence/timestamp/picture-id rewrite, the Forward
//! outputs drained), and a layer switch's rewrite. No sockets, no SRTP: the str0m
//! edge's per-packet work is measured by the load benchmark (issue 5), not here.
//!
//! `cargo bench -p relay-core --bench forward`; in the test suite it runs once per
//! case as a smoke check (`cargo test --benches`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use relay_core::{
    AdaptConfig, Audience, Codec, Input, Kind, LayerPref, Mid, Output, PeerId, PublishedTrack,
    Relay, RelayConfig, Rid, RtpIn, SlotSpec,
};

const RIDS: [&str; 3] = ["q", "h", "f"];

/// A VP8 payload (15-bit PictureID, TL0PICIDX and a TID byte, as Chrome sends them:
/// the relay takes numbering only from descriptors it can patch back) of `len` bytes.
fn vp8(picture_id: u16, key: bool, len: usize) -> Arc<[u8]> {
    let mut v = vec![
        0x90,
        0xe0,
        0x80 | ((picture_id >> 8) as u8 & 0x7f),
        picture_id as u8,
        0,
        0x40,
        if key { 0x00 } else { 0x01 },
    ];
    v.resize(len, 0xab);
    Arc::from(v)
}

struct Lesson {
    relay: Relay,
    now: Instant,
    seq: [u64; 3],
    pid: [u16; 3],
}

impl Lesson {
    /// A teacher (3-layer VP8) and `n` classrooms at fixed layers (adaptation off).
    fn new(n: u64) -> Lesson {
        // The bench is the core's outside world: it provides the clock.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let cfg = RelayConfig {
            adapt: AdaptConfig {
                enabled: false,
                ..Default::default()
            },
            ..Default::default()
        };
        let mut relay = Relay::new(cfg, now);
        relay.handle_input(Input::PublisherJoined {
            now,
            lesson: "l".into(),
            peer: PeerId(1),
            owner: "teacher".into(),
            tracks: vec![PublishedTrack {
                mid: Mid::new("1"),
                kind: Kind::Video,
                rids: RIDS.iter().map(|r| Rid::new(r)).collect(),
            }],
        });
        for i in 0..n {
            relay.handle_input(Input::SubscriberJoined {
                now,
                lesson: "l".into(),
                peer: PeerId(10 + i),
                school: format!("s{}", i / 3),
                slots: vec![SlotSpec {
                    mid: Mid::new("1"),
                    kind: Kind::Video,
                    redundant: false,
                }],
                layer: Some(LayerPref::Medium),
                start_bps: None,
                audience: Audience::Classroom,
            });
        }
        let mut l = Lesson {
            relay,
            now,
            seq: [0; 3],
            pid: [0; 3],
        };
        // Half a second of all layers (so they are measured and chosen on the core's
        // ticks), then keyframes so every classroom is forwarding its layer.
        for frame in 0..15 {
            for layer in 0..3 {
                l.packet(layer, frame == 0 || frame == 14);
            }
            l.now += Duration::from_millis(40);
            let now = l.now;
            l.relay.handle_input(Input::Timeout(now));
            l.drain();
        }
        l
    }

    fn packet(&mut self, layer: usize, key: bool) -> usize {
        self.now += Duration::from_micros(200);
        self.pid[layer] = (self.pid[layer] + 1) % 0x8000;
        self.relay.handle_input(Input::Packet {
            now: self.now,
            peer: PeerId(1),
            rtp: RtpIn {
                mid: Mid::new("1"),
                rid: Some(Rid::new(RIDS[layer])),
                seq: self.seq[layer],
                ts: self.seq[layer] as u32 * 3600,
                marker: true,
                pt: 96,
                codec: Codec::Vp8,
                payload: vp8(self.pid[layer], key, 1100),
            },
        });
        self.seq[layer] += 1;
        self.drain()
    }

    /// Drain outputs; the number of packets forwarded.
    fn drain(&mut self) -> usize {
        let mut n = 0;
        loop {
            match self.relay.poll_output() {
                Output::Timeout(_) => return n,
                Output::Forward(f) => {
                    black_box(&f);
                    n += 1;
                }
                _ => {}
            }
        }
    }
}

fn route(c: &mut Criterion) {
    let mut g = c.benchmark_group("route one packet");
    for n in [1u64, 3, 30, 100] {
        let mut l = Lesson::new(n);
        // Every classroom is on the middle layer: one packet goes to all n.
        assert_eq!(
            l.packet(1, false),
            n as usize,
            "not forwarded to every classroom"
        );
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(BenchmarkId::new("classrooms", n), &n, |b, _| {
            b.iter(|| l.packet(1, false))
        });
    }
    g.finish();
}

fn switch(c: &mut Criterion) {
    // Thirty classrooms switch between the middle and the top layer on every
    // keyframe: the rewrite re-bases sequence numbers, timestamps and picture ids.
    let mut l = Lesson::new(30);
    let mut high = false;
    c.bench_function("layer switch, 30 classrooms", |b| {
        b.iter(|| {
            high = !high;
            let pref = if high {
                LayerPref::High
            } else {
                LayerPref::Medium
            };
            let now = l.now;
            for i in 0..30 {
                l.relay.handle_input(Input::SetLayer {
                    now,
                    peer: PeerId(10 + i),
                    layer: pref,
                });
            }
            l.drain();
            l.packet(if high { 2 } else { 1 }, true)
        })
    });
}

criterion_group!(benches, route, switch);
criterion_main!(benches);
