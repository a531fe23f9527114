//! Load mode: real str0m peers over real UDP against a running relay. Each lesson
//! has a teacher publishing (WHIP) camera simulcast, slides and Opus voice, and one
//! classroom per school watching (WHEP). Every school's traffic passes through its
//! own userspace shaping proxy: between the classroom's UDP socket and its WebRTC
//! stack sit two `str0m-netem` links (down and up) shaped from the scenario, so what
//! the relay sees on the wire is the shaped link. The teacher sits behind the hub's
//! uplink the same way. Everything stops by itself after the given duration.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use relay_http::token::{sign, Claims, TokenRole};
use serde::Serialize;
use str0m_netem::{Input as NInput, Output as NOutput};

use serde_json::json;

use crate::janus;

mod relay_metrics;
use crate::link::{Pipe, Pkt};
use crate::peer::{Classroom, Teacher};
use crate::population::{Draw, PlannedLesson};
use crate::replay::{analyse, schedule, shape, SchoolResult};
use crate::world::{teacher_layers, LinkShape};
use relay_metrics::{metric, worker_sessions};
pub use relay_metrics::{scrape, ForwardDelay, RelayTotals};

/// How long peers may take to connect (ICE and DTLS) before the run gives up.
const CONNECT_WITHIN: Duration = Duration::from_secs(15);
/// Longest sleep of a lesson's loop: received datagrams wait at most this long.
const TICK: Duration = Duration::from_millis(1);
/// Health checks: how often, and how many failures in a row end the run.
const CHECK_EVERY: Duration = Duration::from_secs(1);
const CHECK_FAILURES: u32 = 3;

/// What to run.
pub struct LoadPlan {
    /// The relay's HTTP base, e.g. `http://127.0.0.1:8080`.
    pub relay: String,
    pub lessons: Vec<PlannedLesson>,
    pub duration: Duration,
    /// The relay's token secret: the load signs its own teacher and classroom tokens.
    pub secret: String,
    pub seed: u64,
    pub server: Server,
}

/// What answers at [`LoadPlan::relay`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// classroom-relay: WHIP and WHEP with signed tokens; totals from `/metrics`.
    ClassroomRelay,
    /// Janus's VideoRoom through its HTTP API (`relay` is the API base, e.g.
    /// `http://198.18.77.2:18088/janus`), for the side-by-side benchmark: one room
    /// per lesson, no tokens, no relay totals.
    Janus,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the relay at {0} is not answering: {1}")]
    NotAnswering(String, String),
    #[error("the relay refused {what}: HTTP {status}: {body}")]
    Refused {
        what: String,
        status: u16,
        body: String,
    },
    #[error("{0}")]
    Failed(String),
}

/// Teacher-to-classroom time of video packets: the teacher stamps each payload
/// when it hands it to its WebRTC stack; the classroom reads it when its stack
/// gives the packet back. Includes both str0m stacks, the shaped links, loopback
/// UDP, the relay and up to one loop tick of the load generator.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    pub packets: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(mut us: Vec<u64>) -> Latency {
        us.sort_unstable();
        let at = |q: f64| {
            us.get(((us.len() as f64 * q) as usize).min(us.len().saturating_sub(1)))
                .map_or(0.0, |&v| v as f64 / 1000.0)
        };
        Latency {
            packets: us.len(),
            p50_ms: at(0.5),
            p90_ms: at(0.9),
            p99_ms: at(0.99),
            max_ms: us.last().map_or(0.0, |&v| v as f64 / 1000.0),
        }
    }
}

/// The outcome of a load run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub relay: String,
    pub lessons: usize,
    pub duration_s: f64,
    pub relay_totals: RelayTotals,
    pub video_latency: Latency,
    /// Voice packets the classrooms got, of those sent while they watched.
    pub audio_received: u64,
    pub audio_expected: u64,
    /// RTP packets (camera, slides, voice) the classrooms' WebRTC stacks handed
    /// over: what the server forwarded, as the receivers count it.
    pub classroom_packets: u64,
    pub schools: Vec<SchoolResult>,
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build()
}

fn http_error(base: &str, what: &str, e: ureq::Error) -> LoadError {
    match e {
        ureq::Error::Status(status, r) => LoadError::Refused {
            what: what.into(),
            status,
            body: r.into_string().unwrap_or_default().trim().to_string(),
        },
        ureq::Error::Transport(t) => LoadError::NotAnswering(base.into(), t.to_string()),
    }
}

/// The local address the relay can answer: the one this machine routes to its host.
fn local_ip(base: &str) -> Result<IpAddr, LoadError> {
    let hostport = base
        .strip_prefix("http://")
        .ok_or_else(|| LoadError::Failed(format!("--relay {base}: give an http:// URL")))?
        .split('/')
        .next()
        .unwrap_or_default();
    let target = hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| LoadError::Failed(format!("--relay {base}: cannot resolve {hostport}")))?;
    let probe = UdpSocket::bind(SocketAddr::new(
        if target.is_ipv4() {
            IpAddr::from([0, 0, 0, 0])
        } else {
            IpAddr::from([0u16; 8])
        },
        0,
    ))
    .and_then(|s| s.connect(target).map(|_| s))
    .and_then(|s| s.local_addr())
    .map_err(|e| LoadError::Failed(format!("no route to {target}: {e}")))?;
    Ok(probe.ip())
}

/// POST an SDP offer; the answer and the session URL.
fn exchange(
    base: &str,
    path: &str,
    token: &str,
    offer: &str,
) -> Result<(String, Option<String>), LoadError> {
    let r = agent()
        .post(&format!("{base}{path}"))
        .set("Authorization", &format!("Bearer {token}"))
        .set("Content-Type", "application/sdp")
        .send_string(offer)
        .map_err(|e| http_error(base, &format!("POST {path}"), e))?;
    let location = r.header("Location").map(|l| {
        if l.starts_with("http") {
            l.to_string()
        } else {
            format!("{base}{l}")
        }
    });
    let answer = r
        .into_string()
        .map_err(|e| LoadError::NotAnswering(base.into(), e.to_string()))?;
    Ok((answer, location))
}

fn udp(ip: IpAddr) -> Result<(UdpSocket, SocketAddr), LoadError> {
    let s = UdpSocket::bind(SocketAddr::new(ip, 0))
        .and_then(|s| s.set_nonblocking(true).map(|_| s))
        .map_err(|e| LoadError::Failed(format!("UDP socket on {ip}: {e}")))?;
    let a = s
        .local_addr()
        .map_err(|e| LoadError::Failed(e.to_string()))?;
    Ok((s, a))
}

/// One classroom with its socket and its shaped link.
struct School {
    class: Classroom,
    sock: UdpSocket,
    local: SocketAddr,
    down: Pipe,
    up: Pipe,
    schedule: Vec<(Duration, LinkShape)>,
    next_change: usize,
    delivered: u64,
}

/// Datagrams waiting on `sock`, each handed to `f` with its sender.
fn receive_all(sock: &UdpSocket, buf: &mut [u8], mut f: impl FnMut(SocketAddr, &[u8])) {
    while let Ok((n, from)) = sock.recv_from(buf) {
        f(from, &buf[..n]);
    }
}

/// What a link lets out by `now`.
fn delivered(p: &mut Pipe, now: Instant) -> Vec<Pkt> {
    p.netem.handle_input(NInput::Timeout(now));
    let mut out = vec![];
    while let Some(NOutput::Packet(pkt)) = p.netem.poll_output() {
        out.push(pkt);
    }
    out
}

struct Shared<'a> {
    plan: &'a LoadPlan,
    ip: IpAddr,
    stop: &'a AtomicBool,
    connected: &'a AtomicUsize,
}

/// What one lesson brought back: per-school results, video latencies (µs), and
/// voice packets received / expected.
struct LessonRun {
    schools: Vec<SchoolResult>,
    latency_us: Vec<u64>,
    audio: (u64, u64),
    packets: u64,
}

fn run_lesson(sh: &Shared, index: usize, l: &PlannedLesson) -> Result<LessonRun, LoadError> {
    let plan = sh.plan;
    let base = plan.relay.as_str();
    let name = format!("load-{}-{index}", std::process::id());
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + plan.duration.as_secs()
        + 3600;
    let seed = plan.seed.wrapping_add(index as u64 * 1000);
    let mut draw = Draw::new(seed);
    let minutes = plan.duration.as_secs().div_ceil(60).max(1);
    let mut sessions = vec![];

    let t0 = Instant::now();
    let (tsock, taddr) = udp(sh.ip)?;
    let mut janus = match plan.server {
        Server::Janus => Some(JanusLesson::open(base)?),
        Server::ClassroomRelay => None,
    };
    let (mut teacher, answer) = if let Some(j) = &mut janus {
        let (mut teacher, offer, pending) =
            Teacher::with_rid_order(t0, taddr, true, &["f", "h", "q"]);
        let answer = j.publish(&offer)?;
        teacher.peer.accept(pending, &answer);
        // Janus lets subscribers join only a feed that is up.
        publish_until_up(&tsock, &mut teacher, sh.stop)?;
        (teacher, answer)
    } else {
        let (mut teacher, offer, pending) = Teacher::new(t0, taddr, true);
        let token = sign(
            &plan.secret,
            &Claims::new(&name, TokenRole::Teacher, None, exp),
        );
        let (answer, loc) = exchange(base, &format!("/whip/{name}"), &token, &offer)?;
        sessions.extend(loc.map(|u| (u, token)));
        teacher.peer.accept(pending, &answer);
        (teacher, answer)
    };
    teacher.layers = teacher_layers(l.uplink.up_kbps, true);
    let mut t_up = Pipe::new(shape(&l.uplink, l.uplink.up_kbps), seed);

    let mut schools = vec![];
    for (i, s) in l.schools.iter().enumerate() {
        let (sock, local) = udp(sh.ip)?;
        let class = if let Some(j) = &mut janus {
            j.subscribe(t0, local, i)?
        } else {
            let (mut class, offer, pending) = Classroom::new(t0, local, i, true);
            let token = sign(
                &plan.secret,
                &Claims::new(&name, TokenRole::Classroom, Some(&s.id), exp),
            );
            let (answer, loc) = exchange(base, &format!("/whep/{name}"), &token, &offer)?;
            sessions.extend(loc.map(|u| (u, token)));
            class.peer.accept(pending, &answer);
            class
        };
        let sched = schedule(&s.link, minutes, &mut draw);
        let up = shape(&s.link, s.link.up_kbps);
        schools.push(School {
            class,
            sock,
            local,
            down: Pipe::new(sched[0].1, seed + 2 * i as u64 + 1),
            up: Pipe::new(up, seed + 2 * i as u64 + 2),
            schedule: sched,
            next_change: 1,
            delivered: 0,
        });
    }

    let end = t0 + plan.duration;
    let mut buf = vec![0u8; 4000];
    let mut all_connected = false;
    let mut result = Ok(());
    while !sh.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= end {
            break;
        }
        receive_all(&tsock, &mut buf, |from, d| {
            teacher.peer.receive(now, from, d)
        });
        for s in &mut schools {
            let (down, local) = (&mut s.down, s.local);
            receive_all(&s.sock, &mut buf, |from, d| {
                down.send(
                    now,
                    Pkt {
                        from,
                        to: local,
                        data: d.to_vec(),
                    },
                )
            });
        }
        for p in delivered(&mut t_up, now) {
            let _ = tsock.send_to(&p.data, p.to);
        }
        let el = now - t0;
        for s in &mut schools {
            while let Some((at, shape)) = s.schedule.get(s.next_change) {
                if *at > el {
                    break;
                }
                s.down.reshape(*shape);
                s.next_change += 1;
            }
            for p in delivered(&mut s.down, now) {
                s.delivered += p.data.len() as u64;
                s.class.peer.receive(now, p.from, &p.data);
            }
            for p in delivered(&mut s.up, now) {
                let _ = s.sock.send_to(&p.data, p.to);
            }
        }
        teacher.peer.tick(now);
        teacher.step(now);
        for (to, data) in teacher.peer.outbox.drain(..) {
            t_up.send(
                now,
                Pkt {
                    from: taddr,
                    to,
                    data,
                },
            );
        }
        if teacher.connected {
            t_up.connected();
        }
        for s in &mut schools {
            s.class.peer.tick(now);
            s.class.step(now);
            for (to, data) in s.class.peer.outbox.drain(..) {
                s.up.send(
                    now,
                    Pkt {
                        from: s.local,
                        to,
                        data,
                    },
                );
            }
            if s.class.connected_at.is_some() {
                s.down.connected();
                s.up.connected();
            }
        }
        if !all_connected {
            if teacher.connected && schools.iter().all(|s| s.class.connected_at.is_some()) {
                all_connected = true;
                sh.connected.fetch_add(1 + schools.len(), Ordering::Relaxed);
            } else if now - t0 > CONNECT_WITHIN {
                result = Err(LoadError::Failed(format!(
                    "lesson {name}: sessions did not connect within {} s; can this machine reach the relay's advertised UDP address? (answer candidates: {})",
                    CONNECT_WITHIN.as_secs(),
                    answer
                        .lines()
                        .filter(|l| l.starts_with("a=candidate"))
                        .collect::<Vec<_>>()
                        .join(" | ")
                )));
                break;
            }
        }
        let mut next = (now + TICK).min(teacher.peer.next);
        if let Some(t) = teacher.next_media() {
            next = next.min(t);
        }
        for s in &schools {
            next = next
                .min(s.class.peer.next)
                .min(s.down.netem.poll_timeout())
                .min(s.up.netem.poll_timeout());
        }
        next = next.min(t_up.netem.poll_timeout());
        let wait = next.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
    let end_at = Instant::now();
    if let Some(j) = janus {
        j.session.destroy();
    }
    for (url, token) in sessions {
        let _ = agent()
            .delete(&url)
            .set("Authorization", &format!("Bearer {token}"))
            .call();
    }
    result?;
    let mut latency_us = vec![];
    let mut audio = (0, 0);
    let mut packets = 0;
    for sc in &schools {
        let c = &sc.class;
        packets += (c.video.len() + c.screen.len() + c.audio_rx.len()) as u64;
        latency_us.extend(
            sc.class
                .video
                .iter()
                .chain(&sc.class.screen)
                .filter_map(|v| {
                    v.sent
                        .map(|s| v.at.saturating_duration_since(s).as_micros() as u64)
                }),
        );
        if let (Some(a), Some(b)) = (sc.class.audio.first(), sc.class.audio.last()) {
            audio.0 += sc.class.audio.len() as u64;
            audio.1 += b - a + 1;
        }
    }
    Ok(LessonRun {
        schools: l
            .schools
            .iter()
            .zip(&schools)
            .map(|(s, sc)| analyse(l, s, &sc.class, t0, end_at, sc.delivered).result)
            .collect(),
        latency_us,
        audio,
        packets,
    })
}

/// Run the teacher alone (unshaped) until its session is up and it has sent
/// media for a moment.
fn publish_until_up(sock: &UdpSocket, t: &mut Teacher, stop: &AtomicBool) -> Result<(), LoadError> {
    let start = Instant::now();
    let mut buf = vec![0u8; 4000];
    let mut up_at = None;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if up_at.is_some_and(|u| now - u > Duration::from_millis(500)) {
            return Ok(());
        }
        if now - start > CONNECT_WITHIN {
            break;
        }
        receive_all(sock, &mut buf, |from, d| t.peer.receive(now, from, d));
        t.peer.tick(now);
        t.step(now);
        for (to, data) in t.peer.outbox.drain(..) {
            let _ = sock.send_to(&data, to);
        }
        if t.connected && up_at.is_none() {
            up_at = Some(now);
        }
        std::thread::sleep(TICK);
    }
    Err(LoadError::Failed(format!(
        "the teacher's session did not come up within {} s",
        CONNECT_WITHIN.as_secs()
    )))
}

/// A lesson's room on Janus.
struct JanusLesson {
    session: janus::Session,
    room: u64,
    publisher: u64,
}

impl JanusLesson {
    fn open(base: &str) -> Result<JanusLesson, LoadError> {
        let mut session = janus::Session::create(base)?;
        let h = session.attach()?;
        static ROOMS: AtomicUsize = AtomicUsize::new(0);
        let n = ROOMS.fetch_add(1, Ordering::Relaxed) as u64;
        let room = 1_000_000 + (std::process::id() as u64 % 1000) * 100_000 + n;
        session.request(
            h,
            json!({"request": "create", "room": room, "publishers": 1,
                   "videocodec": "vp8", "audiocodec": "opus", "bitrate": 0,
                   "is_private": true}),
            None,
        )?;
        Ok(JanusLesson {
            session,
            room,
            publisher: h,
        })
    }

    /// The teacher joins as the room's publisher; Janus's answer.
    fn publish(&mut self, offer: &str) -> Result<String, LoadError> {
        let r = self.session.request(
            self.publisher,
            json!({"request": "joinandconfigure", "room": self.room, "ptype": "publisher",
                   "audio": true, "video": true}),
            Some(("offer", offer)),
        )?;
        let id = r.data["id"].as_u64();
        self.publisher =
            id.ok_or_else(|| LoadError::Failed(format!("Janus: no publisher id in {}", r.data)))?;
        r.sdp
            .ok_or_else(|| LoadError::Failed("Janus answered the teacher without SDP".into()))
    }

    /// A classroom subscribes to every stream of the teacher, the camera at its
    /// top layer (what the relay forwards on an unshaped link).
    fn subscribe(
        &mut self,
        now: Instant,
        local: SocketAddr,
        school: usize,
    ) -> Result<Classroom, LoadError> {
        let h = self.session.attach()?;
        let r = self.session.request(
            h,
            json!({"request": "join", "room": self.room, "ptype": "subscriber",
                   "streams": [{"feed": self.publisher}]}),
            None,
        )?;
        let offer = r
            .sdp
            .ok_or_else(|| LoadError::Failed("Janus offered the classroom no SDP".into()))?;
        let (class, answer) =
            Classroom::answering(now, local, school, &offer).map_err(LoadError::Failed)?;
        self.session
            .request(h, json!({"request": "start"}), Some(("answer", &answer)))?;
        Ok(class)
    }
}

type LessonOutcome = Result<LessonRun, LoadError>;

/// Run the load; `progress(elapsed, connected sessions)` about once a second.
pub fn run(plan: &LoadPlan, progress: &dyn Fn(Duration, usize)) -> Result<LoadReport, LoadError> {
    let base = plan.relay.trim_end_matches('/').to_string();
    let plan = LoadPlan {
        relay: base.clone(),
        lessons: plan.lessons.clone(),
        duration: plan.duration,
        secret: plan.secret.clone(),
        seed: plan.seed,
        server: plan.server,
    };
    // Janus has no /metrics: its health is its /info, and no relay totals.
    let check = |base: &str| match plan.server {
        Server::ClassroomRelay => scrape(base),
        Server::Janus => janus::alive(base).map(|_| BTreeMap::new()),
    };
    let before = check(&base)?;
    // The teacher's voice is encoded once per process, on first use (the better
    // part of a second): done here, it cannot stall the first lessons' loops.
    let _ = crate::voice::packets();
    let ip = local_ip(&base)?;
    let stop = AtomicBool::new(false);
    let connected = AtomicUsize::new(0);
    let sh = Shared {
        plan: &plan,
        ip,
        stop: &stop,
        connected: &connected,
    };
    let results: Mutex<Vec<Option<LessonOutcome>>> =
        Mutex::new((0..plan.lessons.len()).map(|_| None).collect());
    let started = Instant::now();
    let mut peak = (
        metric(&before, "publishers"),
        metric(&before, "subscribers"),
    );
    let mut peak_workers: Vec<u64> = Vec::new();
    let mut health: Result<(), LoadError> = Ok(());
    std::thread::scope(|scope| {
        for (i, l) in plan.lessons.iter().enumerate() {
            let (sh, results) = (&sh, &results);
            scope.spawn(move || {
                let r = run_lesson(sh, i, l);
                if r.is_err() {
                    sh.stop.store(true, Ordering::Relaxed);
                }
                results.lock().expect("results")[i] = Some(r);
            });
        }
        let mut failures = 0;
        while results.lock().expect("results").iter().any(Option::is_none) {
            std::thread::sleep(CHECK_EVERY);
            match check(&base) {
                Ok(m) => {
                    failures = 0;
                    peak.0 = peak.0.max(metric(&m, "publishers"));
                    peak.1 = peak.1.max(metric(&m, "subscribers"));
                    let split = worker_sessions(&m);
                    if split.iter().sum::<u64>() > peak_workers.iter().sum::<u64>() {
                        peak_workers = split;
                    }
                }
                Err(e) => {
                    failures += 1;
                    if failures >= CHECK_FAILURES && health.is_ok() {
                        health = Err(e);
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            }
            progress(started.elapsed(), connected.load(Ordering::Relaxed));
        }
    });
    health?;
    let after = check(&base)?;
    let (mut schools, mut latency_us, mut audio) = (vec![], vec![], (0, 0));
    let mut classroom_packets = 0;
    for r in results.into_inner().expect("results") {
        let r = r.expect("every lesson ran")?;
        classroom_packets += r.packets;
        schools.extend(r.schools);
        latency_us.extend(r.latency_us);
        audio = (audio.0 + r.audio.0, audio.1 + r.audio.1);
    }
    let delta = |n: &str| metric(&after, n).saturating_sub(metric(&before, n));
    Ok(LoadReport {
        relay: base.clone(),
        lessons: plan.lessons.len(),
        duration_s: started.elapsed().as_secs_f64(),
        relay_totals: RelayTotals {
            packets_received: delta("packets_received_total"),
            packets_forwarded: delta("packets_forwarded_total"),
            bytes_forwarded: delta("bytes_forwarded_total"),
            keyframe_requests: delta("keyframe_requests_total"),
            layer_switches: delta("layer_switches_total"),
            peak_publishers: peak.0,
            peak_subscribers: peak.1,
            forward_delay: ForwardDelay::between("forward_delay_seconds", &before, &after),
            processing: ForwardDelay::between("processing_seconds", &before, &after),
            peak_worker_sessions: peak_workers,
        },
        video_latency: Latency::of(latency_us),
        audio_received: audio.0,
        audio_expected: audio.1,
        classroom_packets,
        schools,
    })
}
