//! A lesson on a virtual clock: the relay's real sans-IO edge (str0m sessions and
//! the core), a str0m teacher, str0m classrooms, and one emulated link per school
//! (`str0m-netem`: rate with a finite queue, delay, jitter, loss) whose shape can
//! change over time. No sockets, no sleeping: a 25-minute lesson runs in seconds.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::link::{drain_pipe, stream_key, Pipe, Pkt};
pub use crate::link::{LinkShape, Loss};
use relay_core::{RelayConfig, WarmTable};
use relay_webrtc::{Codecs, Edge};

use crate::peer::{Classroom, Teacher};

/// A school: its link down (relay to school) and up, and its capacity schedule.
pub struct SchoolSpec {
    pub name: String,
    /// (time since start, shape of the downlink from then on); the first at zero.
    pub down: Vec<(Duration, LinkShape)>,
    /// Classrooms (devices) behind this link.
    pub classrooms: usize,
    /// The uplink (school to relay); by default 10 Mbit/s with the downlink's delay.
    pub up: Option<LinkShape>,
}

struct School {
    name: String,
    down: Pipe,
    up: Pipe,
    schedule: Vec<(Duration, LinkShape)>,
    next_change: usize,
    /// Bytes the relay put on this link and bytes that came out, per 100 ms bin.
    pub sent: Vec<u64>,
    pub delivered: Vec<u64>,
}

/// The online teacher's side of a lesson.
#[derive(Debug, Clone, Copy)]
pub struct TeacherSpec {
    /// The hub school's uplink (its downlink carries only feedback and stays fat).
    /// The teacher sends the simulcast layers that fit 85 % of it, as a browser's
    /// own estimate would let it.
    pub uplink: LinkShape,
    /// Whether the teacher also shares the screen (slides), and classrooms watch it.
    pub screen: bool,
}

/// Time bins for rate measurements.
pub const BIN: Duration = Duration::from_millis(100);

/// The simulated lesson.
pub struct World {
    pub t0: Instant,
    pub now: Instant,
    pub edge: Edge,
    relay_addr: SocketAddr,
    pub teacher: Teacher,
    teacher_up: Pipe,
    teacher_down: Pipe,
    pub classes: Vec<Classroom>,
    schools: Vec<School>,
    by_addr: HashMap<SocketAddr, usize>,
    /// Every 500 ms: per classroom (in join order) the relay's estimate and budget.
    pub trace: Vec<(Duration, Vec<(u64, u64)>)>,
}

fn addr(a: u8, b: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, a, b)), port)
}

impl World {
    /// A lesson with the teacher on a fat link and `schools` as given; every
    /// classroom joins at the start.
    pub fn new(cfg: RelayConfig, schools: Vec<SchoolSpec>, seed: u64) -> World {
        World::with_warm(cfg, schools, seed, WarmTable::default())
    }

    /// As [`World::new`], with the relay remembering school links from earlier
    /// lessons (its warm-start table).
    pub fn with_warm(
        cfg: RelayConfig,
        schools: Vec<SchoolSpec>,
        seed: u64,
        warm: WarmTable,
    ) -> World {
        let fat = LinkShape {
            delay: Duration::from_millis(5),
            ..LinkShape::new(50_000)
        };
        let teacher = TeacherSpec {
            uplink: fat,
            screen: false,
        };
        World::build(cfg, schools, seed, warm, teacher)
    }

    /// As [`World::with_warm`], with the teacher as `teacher` says.
    pub fn build(
        cfg: RelayConfig,
        schools: Vec<SchoolSpec>,
        seed: u64,
        warm: WarmTable,
        teacher: TeacherSpec,
    ) -> World {
        let (hub_up, screen) = (teacher.uplink, teacher.screen);
        relay_webrtc::init_crypto();
        fastrand::seed(seed);
        let t0 = Instant::now();
        let relay_addr = addr(0, 1, 5000);
        let mut edge = Edge::new(t0, cfg, Codecs { h264: false }, vec![relay_addr]);
        *edge.warm_mut() = warm;
        // Each session draws its ids and SSRCs from fastrand as it is made. How much
        // one session draws is not always the same (DTLS setup), so the generator is
        // seeded again before each: one session cannot shift the next one's SSRCs,
        // on which the canonical packet order rests.
        let reseed = |k: u64| fastrand::seed(seed.wrapping_mul(1_000_003).wrapping_add(k));
        reseed(1);
        let (mut teacher, offer, pending) = Teacher::new(t0, addr(1, 1, 6000), screen);
        reseed(2);
        let s = edge
            .publish(t0, "lesson", "teacher", &offer)
            .expect("relay accepts the teacher");
        teacher.peer.accept(pending, &s.answer);
        teacher.layers = teacher_layers(hub_up.kbps, screen);
        let fat = LinkShape {
            delay: Duration::from_millis(5),
            ..LinkShape::new(50_000)
        };
        let mut w = World {
            t0,
            now: t0,
            edge,
            relay_addr,
            teacher,
            teacher_up: Pipe::new(hub_up, seed ^ 0x51),
            teacher_down: Pipe::new(fat, seed ^ 0x52),
            classes: vec![],
            schools: vec![],
            by_addr: HashMap::new(),
            trace: vec![],
        };
        for (si, spec) in schools.into_iter().enumerate() {
            let first = spec.down[0].1;
            let up = spec.up.unwrap_or(LinkShape {
                kbps: 10_000,
                loss: Loss::None,
                ..first
            });
            w.schools.push(School {
                name: spec.name.clone(),
                down: Pipe::new(first, seed.wrapping_mul(31).wrapping_add(si as u64 * 2)),
                up: Pipe::new(up, seed.wrapping_mul(31).wrapping_add(si as u64 * 2 + 1)),
                schedule: spec.down,
                next_change: 1,
                sent: vec![],
                delivered: vec![],
            });
            for k in 0..spec.classrooms {
                let a = addr(2 + si as u8, 1 + k as u8, 6000);
                let n = w.classes.len() as u64;
                reseed(100 + 2 * n);
                let (c, offer, pending) = Classroom::new(t0, a, si, screen);
                w.by_addr.insert(a, w.classes.len());
                w.classes.push(c);
                reseed(101 + 2 * n);
                let s = w
                    .edge
                    .subscribe(t0, "lesson", &spec.name, None, &offer)
                    .expect("relay accepts the classroom");
                w.classes
                    .last_mut()
                    .unwrap()
                    .peer
                    .accept(pending, &s.answer);
            }
        }
        w
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Shape of school `s`'s downlink now.
    pub fn shape(&self, s: usize) -> LinkShape {
        self.schools[s].down.shape
    }

    /// Number of schools.
    pub fn schools(&self) -> usize {
        self.schools.len()
    }

    /// Per 100 ms bin: bytes the relay sent towards school `s`, and bytes delivered.
    pub fn school_bins(&self, s: usize) -> (&[u64], &[u64]) {
        (&self.schools[s].sent, &self.schools[s].delivered)
    }

    pub fn school_name(&self, s: usize) -> &str {
        &self.schools[s].name
    }

    fn bin(&self) -> usize {
        (self.elapsed().as_micros() / BIN.as_micros()) as usize
    }

    /// Run until `d` from the start.
    pub fn run_until(&mut self, d: Duration) {
        let end = self.t0 + d;
        while self.now < end {
            let mut next = end.min(self.edge.next_timeout(self.now));
            next = next.min(self.teacher.peer.next);
            if let Some(t) = self.teacher.next_media() {
                next = next.min(t);
            }
            for c in &self.classes {
                next = next.min(c.peer.next);
            }
            for p in self.pipes() {
                next = next.min(p.netem.poll_timeout());
            }
            for s in &self.schools {
                if let Some((at, _)) = s.schedule.get(s.next_change) {
                    next = next.min(self.t0 + *at);
                }
            }
            // Never stand still: str0m may ask for "now" again.
            self.now = next
                .max(self.now + Duration::from_micros(200))
                .min(end.max(self.now));
            self.step();
        }
    }

    fn pipes(&self) -> impl Iterator<Item = &Pipe> {
        [&self.teacher_up, &self.teacher_down]
            .into_iter()
            .chain(self.schools.iter().flat_map(|s| [&s.down, &s.up]))
    }

    fn step(&mut self) {
        let now = self.now;
        let bin = self.bin();
        for s in &mut self.schools {
            while let Some((at, shape)) = s.schedule.get(s.next_change) {
                if self.t0 + *at > now {
                    break;
                }
                s.down.reshape(*shape);
                s.next_change += 1;
            }
        }
        if self.teacher.connected {
            self.teacher_up.connected();
            self.teacher_down.connected();
        }
        for (si, s) in self.schools.iter_mut().enumerate() {
            if s.down.connecting
                && self
                    .classes
                    .iter()
                    .filter(|c| c.school == si)
                    .all(|c| c.connected_at.is_some())
            {
                s.down.connected();
                s.up.connected();
            }
        }
        // Links deliver what is due.
        let mut arrivals: Vec<Pkt> = vec![];
        for p in [&mut self.teacher_up, &mut self.teacher_down] {
            drain_pipe(p, now, &mut arrivals);
        }
        for s in &mut self.schools {
            let before = arrivals.len();
            drain_pipe(&mut s.down, now, &mut arrivals);
            let bytes: usize = arrivals[before..].iter().map(|p| p.data.len()).sum();
            add_bin(&mut s.delivered, bin, bytes as u64);
            drain_pipe(&mut s.up, now, &mut arrivals);
        }
        for p in arrivals {
            if p.to == self.relay_addr {
                self.edge.receive(now, p.to, p.from, &p.data);
            } else if p.to == self.teacher.peer.addr {
                self.teacher.peer.receive(now, p.from, &p.data);
            } else if let Some(&i) = self.by_addr.get(&p.to) {
                self.classes[i].peer.receive(now, p.from, &p.data);
            }
        }
        self.edge.timeout(now);
        let el = self.elapsed();
        if self
            .trace
            .last()
            .is_none_or(|(t, _)| el >= *t + Duration::from_millis(500))
        {
            let st = self.edge.stats(now);
            let mut subs: Vec<_> = st
                .lessons
                .iter()
                .flat_map(|l| l.subscribers.clone())
                .collect();
            subs.sort_by_key(|s| s.peer);
            let v = subs
                .iter()
                .map(|s| (s.estimate_bps.unwrap_or(0), s.budget_bps))
                .collect();
            self.trace.push((el, v));
        }
        self.teacher.peer.tick(now);
        self.teacher.step(now);
        for c in &mut self.classes {
            c.peer.tick(now);
            c.step(now);
        }
        // What everyone sends goes onto the links.
        let mut out = vec![];
        while let Some(d) = self.edge.poll_datagram() {
            out.push(Pkt {
                from: d.source,
                to: d.destination,
                data: d.contents,
            });
        }
        canonical_order(&mut out);
        for pkt in out {
            if pkt.to == self.teacher.peer.addr {
                self.teacher_down.send(now, pkt);
            } else if let Some(&i) = self.by_addr.get(&pkt.to) {
                let s = &mut self.schools[self.classes[i].school];
                add_bin(&mut s.sent, bin, pkt.data.len() as u64);
                s.down.send(now, pkt);
            }
        }
        canonical_order_outbox(&mut self.teacher.peer.outbox);
        for (to, data) in self.teacher.peer.outbox.drain(..) {
            let from = self.teacher.peer.addr;
            self.teacher_up.send(now, Pkt { from, to, data });
        }
        for c in &mut self.classes {
            let s = &mut self.schools[c.school];
            canonical_order_outbox(&mut c.peer.outbox);
            for (to, data) in c.peer.outbox.drain(..) {
                let from = c.peer.addr;
                s.up.send(now, Pkt { from, to, data });
            }
        }
    }
}

/// str0m keeps its streams in `HashMap`s with per-process random hashing, so the
/// order in which one peer's packets of one instant come out differs from run to
/// run. Sorting each batch by destination and stream (stably, so each stream keeps
/// its own order) makes the links see the same sequence on every run. Padding goes
/// on whichever send stream str0m's map yields first, a different SSRC each run, so
/// it sorts as a stream of its own.
fn canonical_order(v: &mut [Pkt]) {
    v.sort_by_key(|p| (p.to, order_key(&p.data)));
}

fn canonical_order_outbox(v: &mut [(SocketAddr, Vec<u8>)]) {
    v.sort_by_key(|(to, data)| (*to, order_key(data)));
}

fn order_key(d: &[u8]) -> (u8, bool, u32) {
    let (kind, ssrc) = stream_key(d);
    // RTP's padding bit (RFC 3550 §5.1).
    let padding = kind == 0 && d.first().is_some_and(|b| b & 0x20 != 0);
    (kind, padding, if padding { 0 } else { ssrc })
}

/// How many simulcast layers (lowest first) a teacher sends on an uplink of `bps`.
/// The camera layers a teacher behind an uplink of `kbps` sends, with the screen
/// (slides) taking its share first when shared.
pub fn teacher_layers(kbps: u64, screen: bool) -> usize {
    let slides = if screen {
        crate::peer::SCREEN_BPS.iter().sum()
    } else {
        0
    };
    layers_fitting((kbps * 1000).saturating_sub(slides * 110 / 100))
}

pub fn layers_fitting(bps: u64) -> usize {
    let room = bps * 85 / 100;
    let audio = 40_000;
    let mut sum = audio;
    let mut n = 0;
    for l in crate::peer::LAYER_BPS {
        sum += l * 110 / 100;
        if sum > room {
            break;
        }
        n += 1;
    }
    n.max(1)
}

fn add_bin(v: &mut Vec<u64>, bin: usize, bytes: u64) {
    if v.len() <= bin {
        v.resize(bin + 1, 0);
    }
    v[bin] += bytes;
}
