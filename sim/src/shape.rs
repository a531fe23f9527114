//! A real-time UDP shaping proxy: one school's emulated links, the very ones the
//! replay gives it ([`crate::replay::school_links`]), between a real client (a
//! browser) and a running relay. It is how the simulator's receiver is checked
//! against Chromium's: the same link, rate, queue, delay, jitter, loss and dips,
//! in front of a real jitter buffer and decoder.
//!
//! The relay advertises the proxy's address as its candidate; the proxy forwards
//! what arrives on `listen:PORT` to the relay's media socket on the same port
//! number, through the school's uplink, and the relay's answers back through its
//! downlink. Each client address gets its own socket towards the relay, so the
//! relay sees (and answers) every client separately.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::link::{drain_pipe, stream_key, LinkShape, Pipe, Pkt};

/// What to put between the client and the relay.
#[derive(Debug, Clone)]
pub struct Shaper {
    /// The address clients send to (the relay advertises it).
    pub listen: IpAddr,
    /// The relay's media sockets; each is served on `listen` at the same port.
    pub relay: Vec<SocketAddr>,
    /// Shape the clients from this address only; others (a teacher beside the
    /// relay) pass straight through. None: shape every client.
    pub shaped: Option<IpAddr>,
    /// The school's downlink (relay to client) over time, from the proxy's start.
    pub down: Vec<(Duration, LinkShape)>,
    /// The school's uplink (client to relay).
    pub up: LinkShape,
    pub seed: u64,
}

/// Packets through the proxy.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ShapeStats {
    /// Client to relay: put on the uplink, and delivered by it.
    pub up_sent: u64,
    pub up_delivered: u64,
    /// Relay to client.
    pub down_sent: u64,
    pub down_delivered: u64,
    /// Datagrams that passed unshaped (clients other than `shaped`), both ways.
    pub unshaped: u64,
    /// Client addresses seen.
    pub clients: usize,
    /// Times the proxy's loop came back over 20 ms late (the machine was busy:
    /// what crossed the links then was delayed more than the shape says), and
    /// the longest such lateness.
    pub stalls: u64,
    pub longest_stall_ms: u64,
}

/// Lateness of the loop that counts as a stall.
const STALL: Duration = Duration::from_millis(20);

/// A proxy running on its own thread.
pub struct Running {
    stop: Arc<AtomicBool>,
    so_far: Arc<Mutex<ShapeStats>>,
    thread: JoinHandle<io::Result<ShapeStats>>,
}

impl Running {
    /// Stop it and return what went through.
    pub fn stop(self) -> io::Result<ShapeStats> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| io::Error::other("the shaping proxy panicked"))?
    }

    /// What went through so far.
    pub fn stats(&self) -> ShapeStats {
        self.so_far.lock().unwrap().clone()
    }

    /// Whether it stopped by itself (time limit or error).
    pub fn finished(&self) -> bool {
        self.thread.is_finished()
    }
}

struct Port {
    outer: UdpSocket,
    relay: SocketAddr,
    /// A socket towards the relay per client address.
    inner: HashMap<SocketAddr, UdpSocket>,
}

/// How often the loop looks at its sockets and links: the proxy's time resolution.
const TICK: Duration = Duration::from_millis(1);

impl Shaper {
    /// Bind every listening socket (errors come back here), then run on a thread
    /// for at most `limit`.
    pub fn start(self, limit: Duration) -> io::Result<Running> {
        if self.down.is_empty() {
            return Err(io::Error::other("the downlink schedule is empty"));
        }
        let mut ports = vec![];
        for r in &self.relay {
            if r.ip() == self.listen {
                // The proxy would send to itself, without end.
                return Err(io::Error::other(format!(
                    "the relay's socket {r} is on the address the proxy listens on"
                )));
            }
            let outer = UdpSocket::bind(SocketAddr::new(self.listen, r.port()))?;
            outer.set_nonblocking(true)?;
            ports.push(Port {
                outer,
                relay: *r,
                inner: HashMap::new(),
            });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let so_far = Arc::new(Mutex::new(ShapeStats::default()));
        let shared = so_far.clone();
        let thread = std::thread::Builder::new()
            .name("shape".into())
            .spawn(move || self.run(ports, &flag, &shared, limit))?;
        Ok(Running {
            stop,
            so_far,
            thread,
        })
    }

    fn run(
        &self,
        mut ports: Vec<Port>,
        stop: &AtomicBool,
        so_far: &Mutex<ShapeStats>,
        limit: Duration,
    ) -> io::Result<ShapeStats> {
        let start = Instant::now();
        let mut down = Pipe::new(self.down[0].1, self.seed.wrapping_mul(31));
        let mut up = Pipe::new(self.up, self.seed.wrapping_mul(31).wrapping_add(1));
        let mut next_change = 1;
        let mut st = ShapeStats::default();
        let mut buf = vec![0u8; 2048];
        let mut out = vec![];
        let mut woke = start;
        while !stop.load(Ordering::Relaxed) && start.elapsed() < limit {
            let now = Instant::now();
            let late = now.saturating_duration_since(woke + TICK);
            woke = now;
            if late > STALL {
                st.stalls += 1;
                st.longest_stall_ms = st.longest_stall_ms.max(late.as_millis() as u64);
            }
            while let Some((at, shape)) = self.down.get(next_change) {
                if now.duration_since(start) < *at {
                    break;
                }
                down.reshape(*shape);
                next_change += 1;
            }
            for p in ports.iter_mut() {
                // Client to relay.
                loop {
                    let (n, from) = match p.outer.recv_from(&mut buf) {
                        Ok(v) => v,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        // A port unreachable from an earlier send; nothing to do.
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                        Err(e) => return Err(e),
                    };
                    if !p.inner.contains_key(&from) {
                        let local = if p.relay.is_ipv4() {
                            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                        } else {
                            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                        };
                        let s = UdpSocket::bind(SocketAddr::new(local, 0))?;
                        s.connect(p.relay)?;
                        s.set_nonblocking(true)?;
                        p.inner.insert(from, s);
                        st.clients += 1;
                    }
                    if !self.shapes(from) {
                        st.unshaped += 1;
                        let _ = p.inner[&from].send(&buf[..n]);
                        continue;
                    }
                    note_media(&buf[..n], &mut up, &mut down);
                    st.up_sent += 1;
                    up.send(
                        now,
                        Pkt {
                            from,
                            to: p.relay,
                            data: buf[..n].to_vec(),
                        },
                    );
                }
                // Relay to client.
                for (client, s) in &p.inner {
                    loop {
                        let n = match s.recv(&mut buf) {
                            Ok(n) => n,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                            Err(e) => return Err(e),
                        };
                        if !self.shapes(*client) {
                            st.unshaped += 1;
                            let _ = p.outer.send_to(&buf[..n], client);
                            continue;
                        }
                        note_media(&buf[..n], &mut up, &mut down);
                        st.down_sent += 1;
                        down.send(
                            now,
                            Pkt {
                                from: p.relay,
                                to: *client,
                                data: buf[..n].to_vec(),
                            },
                        );
                    }
                }
            }
            out.clear();
            drain_pipe(&mut up, now, &mut out);
            for pkt in out.drain(..) {
                if let Some(s) = ports
                    .iter()
                    .find(|p| p.relay == pkt.to)
                    .and_then(|p| p.inner.get(&pkt.from))
                {
                    st.up_delivered += 1;
                    let _ = s.send(&pkt.data);
                }
            }
            drain_pipe(&mut down, now, &mut out);
            for pkt in out.drain(..) {
                if let Some(p) = ports.iter().find(|p| p.relay == pkt.from) {
                    st.down_delivered += 1;
                    let _ = p.outer.send_to(&pkt.data, pkt.to);
                }
            }
            so_far.lock().unwrap().clone_from(&st);
            std::thread::sleep(TICK);
        }
        Ok(st)
    }
}

impl Shaper {
    fn shapes(&self, client: SocketAddr) -> bool {
        self.shaped.is_none_or(|a| a == client.ip())
    }
}

/// The first media packet either way means the peers connected: the links take
/// their full shape then, as in the replay (the handshake crosses a plain short
/// delay; see [`Pipe::new`]).
fn note_media(d: &[u8], up: &mut Pipe, down: &mut Pipe) {
    if stream_key(d).0 == 0 {
        up.connected();
        down.connected();
    }
}
