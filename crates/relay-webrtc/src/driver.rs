//! The thin tokio driver: owns the UDP sockets and the clock, runs the [`Edge`] on
//! one task, and takes commands from the HTTP layer through a [`Handle`].

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::task::Poll;
use std::time::{Duration, Instant};

use relay_core::{LayerPref, PeerId, RelayConfig};
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use crate::edge::{Edge, EdgeStats, Session};
use crate::error::EdgeError;
use crate::peer::{negotiate, Codecs, Negotiated, Role};

/// Where the media sockets listen.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// UDP bind address; port 0 picks a free port.
    pub udp: SocketAddr,
    /// Addresses offered to browsers. When `udp` is a wildcard, one socket is bound
    /// per advertised address (same port), so the relay knows which address a
    /// datagram reached. An address that cannot be bound (a NAT's public address) is
    /// served from a wildcard socket instead.
    pub advertise: Vec<std::net::IpAddr>,
    pub relay: RelayConfig,
    pub codecs: Codecs,
    /// Warm-start state file (see [`crate::state`]); `None` keeps it in memory only.
    pub state_file: Option<std::path::PathBuf>,
}

/// How often a changed warm-start table is written.
const SAVE_EVERY: Duration = Duration::from_secs(30);

enum Command {
    PublishCheck {
        lesson: String,
        token_session: String,
        reply: oneshot::Sender<Result<(), EdgeError>>,
    },
    Publish {
        lesson: String,
        token_session: String,
        /// Boxed: a negotiated session is about 10 kB.
        negotiated: Box<Result<Negotiated, EdgeError>>,
        reply: oneshot::Sender<Result<Session, EdgeError>>,
    },
    StartBps {
        school: String,
        reply: oneshot::Sender<Option<u64>>,
    },
    Subscribe {
        lesson: String,
        school: String,
        layer: Option<LayerPref>,
        /// Boxed: a negotiated session is about 10 kB.
        negotiated: Box<Result<Negotiated, EdgeError>>,
        initial_bps: Option<u64>,
        reply: oneshot::Sender<Result<Session, EdgeError>>,
    },
    Close {
        peer: PeerId,
        reply: oneshot::Sender<bool>,
    },
    SetLayer {
        peer: PeerId,
        layer: LayerPref,
        reply: oneshot::Sender<bool>,
    },
    Stats {
        reply: oneshot::Sender<EdgeStats>,
    },
    Count {
        reply: oneshot::Sender<usize>,
    },
    SaveState {
        reply: oneshot::Sender<()>,
    },
    /// Test hook: a bug that escapes the edge's containment.
    #[cfg(test)]
    Crash,
}

/// Talks to the running edge. Cheap to clone.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Command>,
    /// The addresses offered as ICE candidates (with the real port).
    pub local_addrs: Vec<SocketAddr>,
    codecs: Codecs,
    /// True while the media thread runs.
    running: watch::Receiver<bool>,
    ended: std::sync::Arc<std::sync::Mutex<Option<mpsc::UnboundedReceiver<PeerId>>>>,
}

impl Handle {
    /// Whether the media thread is running (false once it stopped or died).
    pub fn media_running(&self) -> bool {
        *self.running.borrow()
    }

    /// Resolves when the media thread has stopped, for whatever reason.
    pub async fn media_stopped(&self) {
        let mut rx = self.running.clone();
        let _ = rx.wait_for(|running| !*running).await;
    }

    /// The stream of ended sessions (closed, failed, timed out, replaced, crashed):
    /// the first caller gets it, later ones `None`.
    pub fn take_ended(&self) -> Option<mpsc::UnboundedReceiver<PeerId>> {
        self.ended.lock().ok()?.take()
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, EdgeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| EdgeError::Stopped)?;
        rx.await.map_err(|_| EdgeError::Stopped)
    }

    /// Negotiate an offer on the runtime's blocking pool: building a session (its
    /// DTLS certificate, the SDP answer) takes milliseconds, and on the media
    /// thread every lesson's forwarding would wait for it.
    async fn negotiate(
        &self,
        role: Role,
        offer: String,
        bwe_initial: Option<u64>,
    ) -> Result<Negotiated, EdgeError> {
        let locals = self.local_addrs.clone();
        let codecs = self.codecs;
        tokio::task::spawn_blocking(move || {
            negotiate(Instant::now(), role, &offer, &locals, codecs, bwe_initial)
        })
        .await
        .unwrap_or_else(|e| Err(EdgeError::Contained(e.to_string())))
    }

    /// Publish a teacher's offer; see [`Edge::publish`].
    pub async fn publish(
        &self,
        lesson: &str,
        token_session: &str,
        offer: String,
    ) -> Result<Session, EdgeError> {
        self.ask(|reply| Command::PublishCheck {
            lesson: lesson.into(),
            token_session: token_session.into(),
            reply,
        })
        .await??;
        let negotiated = Box::new(self.negotiate(Role::Publisher, offer, None).await);
        self.ask(|reply| Command::Publish {
            lesson: lesson.into(),
            token_session: token_session.into(),
            negotiated,
            reply,
        })
        .await?
    }

    /// Subscribe a classroom; see [`Edge::subscribe`].
    pub async fn subscribe(
        &self,
        lesson: &str,
        school: &str,
        layer: Option<LayerPref>,
        offer: String,
    ) -> Result<Session, EdgeError> {
        let initial_bps = self
            .ask(|reply| Command::StartBps {
                school: school.into(),
                reply,
            })
            .await?;
        let negotiated = Box::new(self.negotiate(Role::Subscriber, offer, initial_bps).await);
        self.ask(|reply| Command::Subscribe {
            lesson: lesson.into(),
            school: school.into(),
            layer,
            negotiated,
            initial_bps,
            reply,
        })
        .await?
    }

    /// End a session; false if it was already gone.
    pub async fn close(&self, peer: PeerId) -> Result<bool, EdgeError> {
        self.ask(|reply| Command::Close { peer, reply }).await
    }

    /// Change a classroom's layer; false if the session is gone.
    pub async fn set_layer(&self, peer: PeerId, layer: LayerPref) -> Result<bool, EdgeError> {
        self.ask(|reply| Command::SetLayer { peer, layer, reply })
            .await
    }

    /// How many sessions are open.
    pub async fn session_count(&self) -> Result<usize, EdgeError> {
        self.ask(|reply| Command::Count { reply }).await
    }

    /// Write the warm-start state file now (at shutdown).
    pub async fn save_state(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::SaveState { reply }).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// A snapshot for metrics.
    pub async fn stats(&self) -> Result<EdgeStats, EdgeError> {
        self.ask(|reply| Command::Stats { reply }).await
    }
}

struct Sock {
    socket: UdpSocket,
    /// The address str0m knows this socket by (an advertised candidate address).
    local: SocketAddr,
}

/// Kernel buffer asked for on each media socket, each way. Every datagram of every
/// session goes through one socket, and Linux's default (208 kB) holds about 170
/// full-size packets: when many sessions connect at once (DTLS handshakes keep the
/// edge busy for a while), the queue overflowed in the benchmark at 32 lessons.
const SOCKET_BUFFER: usize = 4 << 20;

fn bind(addr: SocketAddr) -> Result<std::net::UdpSocket, EdgeError> {
    let std = std::net::UdpSocket::bind(addr).map_err(|source| EdgeError::Bind { addr, source })?;
    std.set_nonblocking(true)
        .map_err(|source| EdgeError::Bind { addr, source })?;
    size_buffers(&std, addr);
    Ok(std)
}

/// Ask for [`SOCKET_BUFFER`] both ways; the kernel caps it at `net.core.rmem_max` /
/// `wmem_max`, which on many systems is the default: say so once, with the fix.
fn size_buffers(socket: &std::net::UdpSocket, addr: SocketAddr) {
    let s = socket2::SockRef::from(socket);
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    // Linux reports twice what it grants (bookkeeping overhead included).
    let got = s.recv_buffer_size().unwrap_or(0) / 2;
    if got < SOCKET_BUFFER {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            warn!(
                %addr,
                granted_kb = got / 1024,
                wanted_kb = SOCKET_BUFFER / 1024,
                "the kernel limits the media socket's receive buffer; bursts may be dropped under load (raise it with: sysctl -w net.core.rmem_max={SOCKET_BUFFER} net.core.wmem_max={SOCKET_BUFFER})"
            )
        });
    }
}

/// Bind the media sockets and start the edge on a thread of its own, with a
/// single-threaded runtime: the edge is one task that never waits on anything but
/// its sockets, its timer and the command channel, so a work-stealing runtime only
/// adds cross-thread wake-ups to every datagram.
pub fn spawn(cfg: MediaConfig) -> Result<Handle, EdgeError> {
    let mut socks = Vec::new();
    if cfg.udp.ip().is_unspecified() {
        let mut port = cfg.udp.port();
        let mut unbound = Vec::new();
        for ip in &cfg.advertise {
            match bind(SocketAddr::new(*ip, port)) {
                Ok(socket) => {
                    let local = socket.local_addr().map_err(|source| EdgeError::Bind {
                        addr: cfg.udp,
                        source,
                    })?;
                    port = local.port();
                    socks.push((socket, local));
                }
                Err(EdgeError::Bind { source, .. })
                    if source.kind() == std::io::ErrorKind::AddrNotAvailable =>
                {
                    unbound.push(*ip)
                }
                Err(e) => return Err(e),
            }
        }
        for ip in unbound {
            let socket = bind(SocketAddr::new(cfg.udp.ip(), port))?;
            port = socket.local_addr().map(|a| a.port()).unwrap_or(port);
            info!(%ip, port, "advertised address is not local (NAT?); serving it from the wildcard socket");
            socks.push((socket, SocketAddr::new(ip, port)));
        }
    } else {
        let socket = bind(cfg.udp)?;
        let bound = socket.local_addr().map_err(|source| EdgeError::Bind {
            addr: cfg.udp,
            source,
        })?;
        let ip = cfg.advertise.first().copied().unwrap_or(bound.ip());
        socks.push((socket, SocketAddr::new(ip, bound.port())));
    }
    let local_addrs: Vec<SocketAddr> = socks.iter().map(|s| s.1).collect();
    let (tx, rx) = mpsc::channel(256);
    let mut edge = Edge::new(Instant::now(), cfg.relay, cfg.codecs, local_addrs.clone());
    if let Some(path) = &cfg.state_file {
        match crate::state::load(path) {
            Ok(Some(t)) => {
                info!(file = %path.display(), schools = t.entries().count(), "warm start: school link estimates loaded");
                *edge.warm_mut() = t;
            }
            Ok(None) => {
                info!(file = %path.display(), "warm start: no state file yet; every school starts at the default")
            }
            Err(e) => warn!("warm start: {e}; every school starts at the default"),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| EdgeError::Bind {
            addr: cfg.udp,
            source,
        })?;
    let socks = {
        // Register the sockets with the edge's own runtime.
        let _in_runtime = runtime.enter();
        socks
            .into_iter()
            .map(|(socket, local)| {
                UdpSocket::from_std(socket)
                    .map(|socket| Sock { socket, local })
                    .map_err(|source| EdgeError::Bind {
                        addr: local,
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let state_file = cfg.state_file;
    let (running_tx, running) = watch::channel(true);
    let (ended_tx, ended_rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("media-edge".into())
        .spawn(move || {
            // Sessions' panics are contained in the edge; one that escapes (a bug in
            // the core) stops the media thread, and the process must not pretend.
            let r = crate::guard::contain(|| {
                runtime.block_on(run(edge, socks, rx, ended_tx, state_file))
            });
            if let Err(panic) = r {
                error!("the media edge stopped after a panic: {panic}");
            }
            let _ = running_tx.send(false);
        })
        .map_err(|source| EdgeError::Bind {
            addr: cfg.udp,
            source,
        })?;
    Ok(Handle {
        tx,
        local_addrs,
        codecs: cfg.codecs,
        running,
        ended: std::sync::Arc::new(std::sync::Mutex::new(Some(ended_rx))),
    })
}

enum Wake {
    Command(Option<Command>),
    Datagram(usize, SocketAddr, usize),
    Timer,
}

fn save_warm(edge: &mut Edge, path: Option<&std::path::Path>) {
    let Some(path) = path else { return };
    if edge.warm_mut().take_changed() {
        if let Err(e) = crate::state::save(path, edge.warm()) {
            warn!("warm start: {e}");
        }
    }
}

async fn run(
    mut edge: Edge,
    socks: Vec<Sock>,
    mut rx: mpsc::Receiver<Command>,
    ended: mpsc::UnboundedSender<PeerId>,
    state_file: Option<std::path::PathBuf>,
) {
    let mut buf = vec![0u8; 2000];
    let mut next_save = Instant::now() + SAVE_EVERY;
    loop {
        let deadline = edge.next_timeout(Instant::now());
        let sleep = tokio::time::sleep_until(deadline.into());
        tokio::pin!(sleep);
        let wake = poll_fn(|cx| {
            if let Poll::Ready(c) = rx.poll_recv(cx) {
                return Poll::Ready(Wake::Command(c));
            }
            for (i, s) in socks.iter().enumerate() {
                let mut rb = ReadBuf::new(&mut buf);
                if let Poll::Ready(r) = s.socket.poll_recv_from(cx, &mut rb) {
                    match r {
                        Ok(src) => return Poll::Ready(Wake::Datagram(i, src, rb.filled().len())),
                        // ICMP errors from vanished peers surface here; keep serving.
                        Err(_) => continue,
                    }
                }
            }
            if sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Timer);
            }
            Poll::Pending
        })
        .await;
        let now = Instant::now();
        match wake {
            Wake::Command(None) => {
                save_warm(&mut edge, state_file.as_deref());
                info!("media edge stopping: no more HTTP handles");
                return;
            }
            Wake::Command(Some(Command::SaveState { reply })) => {
                save_warm(&mut edge, state_file.as_deref());
                let _ = reply.send(());
            }
            Wake::Command(Some(c)) => handle_command(&mut edge, now, c),
            Wake::Datagram(i, src, n) => edge.receive(now, socks[i].local, src, &buf[..n]),
            Wake::Timer => edge.timeout(now),
        }
        if now >= next_save {
            next_save = now + SAVE_EVERY;
            save_warm(&mut edge, state_file.as_deref());
        }
        for peer in edge.poll_ended() {
            let _ = ended.send(peer);
        }
        while let Some(d) = edge.poll_datagram() {
            let Some(s) = socks.iter().find(|s| s.local == d.source).or(socks.first()) else {
                break;
            };
            match s.socket.try_send_to(&d.contents, d.destination) {
                Ok(_) => edge.sent(&d, Instant::now()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    match s.socket.send_to(&d.contents, d.destination).await {
                        Ok(_) => edge.sent(&d, Instant::now()),
                        Err(e) => error!(dest = %d.destination, "UDP send failed: {e}"),
                    }
                }
                Err(e) => tracing::debug!(dest = %d.destination, "UDP send failed: {e}"),
            }
        }
    }
}

fn handle_command(edge: &mut Edge, now: Instant, c: Command) {
    match c {
        Command::PublishCheck {
            lesson,
            token_session,
            reply,
        } => {
            let _ = reply.send(edge.publish_check(&lesson, &token_session));
        }
        Command::Publish {
            lesson,
            token_session,
            negotiated,
            reply,
        } => {
            let _ = reply.send(edge.publish_negotiated(now, &lesson, &token_session, *negotiated));
        }
        Command::StartBps { school, reply } => {
            let _ = reply.send(edge.start_bps(&school));
        }
        Command::Subscribe {
            lesson,
            school,
            layer,
            negotiated,
            initial_bps,
            reply,
        } => {
            let _ = reply.send(edge.subscribe_negotiated(
                now,
                &lesson,
                &school,
                layer,
                *negotiated,
                initial_bps,
            ));
        }
        Command::Close { peer, reply } => {
            let _ = reply.send(edge.close(now, peer));
        }
        Command::SetLayer { peer, layer, reply } => {
            let _ = reply.send(edge.set_layer(now, peer, layer));
        }
        Command::Stats { reply } => {
            let _ = reply.send(edge.stats(now));
        }
        Command::Count { reply } => {
            let _ = reply.send(edge.session_count());
        }
        Command::SaveState { reply } => {
            let _ = reply.send(());
        }
        #[cfg(test)]
        Command::Crash => panic!("injected media-thread crash"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_dead_media_thread_is_reported_not_hidden() {
        crate::init_crypto();
        let h = spawn(MediaConfig {
            udp: "127.0.0.1:0".parse().unwrap(),
            advertise: vec![],
            relay: RelayConfig::default(),
            codecs: Codecs { h264: true },
            state_file: None,
        })
        .unwrap();
        assert!(h.media_running());
        assert_eq!(h.session_count().await.unwrap(), 0);
        h.tx.send(Command::Crash).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), h.media_stopped())
            .await
            .expect("media_stopped resolves");
        assert!(!h.media_running());
        assert!(matches!(h.stats().await, Err(EdgeError::Stopped)));
    }

    #[test]
    fn media_sockets_get_the_buffer_the_kernel_allows() {
        let cap = |f: &str| {
            std::fs::read_to_string(f)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
        };
        let (Some(rmax), Some(wmax)) = (
            cap("/proc/sys/net/core/rmem_max"),
            cap("/proc/sys/net/core/wmem_max"),
        ) else {
            return; // not Linux
        };
        let s = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let r = socket2::SockRef::from(&s);
        // Linux reports twice what it grants.
        assert!(r.recv_buffer_size().unwrap() / 2 >= SOCKET_BUFFER.min(rmax));
        assert!(r.send_buffer_size().unwrap() / 2 >= SOCKET_BUFFER.min(wmax));
    }
}
