//! One media worker: a thread with its own single-threaded runtime, UDP sockets,
//! clock and [`Edge`] (str0m sessions and its own relay core for the lessons placed
//! on it). It never waits on anything but its sockets, its timer and its command
//! channel, and never waits on a full socket: what one refuses waits, in order, in a
//! bounded queue (one per worker, behind which the worker's other sends also wait)
//! while reading, timers and commands go on.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use relay_core::{Audience, FloorChange, FloorError, FloorState, LayerPref, PeerId, WarmTable};
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, warn};

use super::placement::{self, Placement, Reservation};
use crate::edge::{Datagram, Edge, EdgeStats, Session};
use crate::error::EdgeError;
use crate::peer::Negotiated;

/// What the HTTP side asks of a worker.
pub(super) enum Command {
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
        place: Reservation,
        reply: oneshot::Sender<Result<Session, EdgeError>>,
    },
    Subscribe {
        lesson: String,
        school: String,
        to: (Audience, Option<LayerPref>),
        /// Boxed: a negotiated session is about 10 kB.
        negotiated: Box<Result<Negotiated, EdgeError>>,
        initial_bps: Option<u64>,
        place: Reservation,
        reply: oneshot::Sender<Result<Session, EdgeError>>,
    },
    Talk {
        lesson: String,
        school: String,
        /// Boxed: a negotiated session is about 10 kB.
        negotiated: Box<Result<Negotiated, EdgeError>>,
        place: Reservation,
        reply: oneshot::Sender<Result<Session, EdgeError>>,
    },
    Floor {
        lesson: String,
        change: FloorChange,
        reply: oneshot::Sender<Result<FloorState, FloorError>>,
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

/// What the workers share: the placement table, the warm-start table every worker's
/// observations are folded into (and which is saved), and the ended-session stream.
pub(super) struct Shared {
    pub(super) placement: Arc<Mutex<Placement>>,
    pub(super) warm: Mutex<WarmTable>,
    pub(super) state_file: Option<PathBuf>,
    /// Held while the state file is written.
    pub(super) saving: Mutex<()>,
    pub(super) ended: mpsc::UnboundedSender<PeerId>,
    /// Floor changes of every lesson, for whoever follows them (lesson, floor).
    pub(super) floors: broadcast::Sender<(String, FloorState)>,
}

impl Shared {
    pub(super) fn warm(&self) -> std::sync::MutexGuard<'_, WarmTable> {
        self.warm.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fold what `edge` observed into the shared table, which new classrooms on any
    /// worker start from.
    fn fold_warm(&self, edge: &mut Edge) {
        let seen = edge.warm_mut().take_observations();
        if !seen.is_empty() {
            let mut warm = self.warm();
            for (school, bps) in seen {
                warm.observe(&school, bps);
            }
        }
    }

    /// [`Shared::fold_warm`], then write the file if the table changed (from a
    /// copy: new classrooms read the table meanwhile).
    fn save_warm(&self, edge: &mut Edge) {
        self.fold_warm(edge);
        let Some(path) = &self.state_file else { return };
        // One writer at a time, and the copy taken under the same lock: two workers
        // saving at once wrote their copies in either order, and an older copy
        // landing last undid the newer one on disk (a relay killed just then came
        // back with the older figures).
        let _one_writer = self.saving.lock().unwrap_or_else(|e| e.into_inner());
        let changed = {
            let mut warm = self.warm();
            warm.take_changed().then(|| warm.clone())
        };
        if let Some(table) = changed {
            if let Err(e) = crate::state::save(path, &table) {
                warn!("warm start: {e}");
            }
        }
    }
}

/// How often a worker folds its warm-start observations in and the file is written.
const SAVE_EVERY: Duration = Duration::from_secs(30);

/// Datagrams a worker holds for a full socket before it drops new ones (about 10 MB
/// at full size; a socket that stays full that long has a peer that is gone).
const MAX_PENDING: usize = 8192;

pub(super) struct Sock {
    pub(super) socket: UdpSocket,
    /// The address str0m knows this socket by (an advertised candidate address).
    pub(super) local: SocketAddr,
}

enum Wake {
    Command(Option<Command>),
    Datagram(usize, SocketAddr, usize),
    Writable,
    Timer,
}

pub(super) struct Worker {
    pub(super) index: usize,
    pub(super) edge: Edge,
    pub(super) socks: Vec<Sock>,
    pub(super) rx: mpsc::Receiver<Command>,
    pub(super) shared: Arc<Shared>,
    /// Datagrams a full socket refused, in order: (socket index, datagram).
    pub(super) pending: VecDeque<(usize, Datagram)>,
    pub(super) send_drops: u64,
}

impl Worker {
    pub(super) async fn run(mut self) {
        let mut buf = vec![0u8; 2000];
        let mut next_save = Instant::now() + SAVE_EVERY;
        let mut first = 0;
        loop {
            let deadline = self.edge.next_timeout(Instant::now());
            let sleep = tokio::time::sleep_until(deadline.into());
            tokio::pin!(sleep);
            let (rx, socks, pending) = (&mut self.rx, &self.socks, &self.pending);
            // Sockets are polled from a rotating start, so that a busy one cannot
            // starve the others.
            first = (first + 1) % socks.len().max(1);
            let wake = poll_fn(|cx| {
                if let Poll::Ready(c) = rx.poll_recv(cx) {
                    return Poll::Ready(Wake::Command(c));
                }
                if let Some((i, _)) = pending.front() {
                    if socks[*i].socket.poll_send_ready(cx).is_ready() {
                        return Poll::Ready(Wake::Writable);
                    }
                }
                for i in (0..socks.len()).map(|k| (first + k) % socks.len()) {
                    let s = &socks[i];
                    let mut rb = ReadBuf::new(&mut buf);
                    if let Poll::Ready(r) = s.socket.poll_recv_from(cx, &mut rb) {
                        match r {
                            Ok(src) => {
                                return Poll::Ready(Wake::Datagram(i, src, rb.filled().len()))
                            }
                            // ICMP errors from vanished peers surface here; keep serving.
                            Err(_) => continue,
                        }
                    }
                }
                // Timers when no datagram waits: reading first keeps the receive
                // times str0m reports in its feedback (TWCC) true to the network.
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Wake::Timer);
                }
                Poll::Pending
            })
            .await;
            let now = Instant::now();
            let mut forwarded = None;
            match wake {
                Wake::Command(None) => {
                    self.shared.save_warm(&mut self.edge);
                    info!(
                        worker = self.index,
                        "media worker stopping: no more HTTP handles"
                    );
                    return;
                }
                Wake::Command(Some(c)) => self.command(now, c),
                Wake::Datagram(i, src, n) => {
                    let before = self.edge.forwarded();
                    self.edge.receive(now, self.socks[i].local, src, &buf[..n]);
                    forwarded = Some(before);
                }
                Wake::Writable => {}
                Wake::Timer => self.edge.timeout(now),
            }
            if now >= next_save {
                next_save = now + SAVE_EVERY;
                self.shared.save_warm(&mut self.edge);
            }
            let ended = self.edge.poll_ended();
            if !ended.is_empty() {
                // A classroom that leaves has said what its link sustained.
                self.shared.fold_warm(&mut self.edge);
            }
            for peer in ended {
                placement::lock(&self.shared.placement).ended(peer);
                let _ = self.shared.ended.send(peer);
            }
            for f in self.edge.poll_floors() {
                // Nobody may be following (no receiver): that is fine.
                let _ = self.shared.floors.send(f);
            }
            self.send();
            // Processing: from the read to the last copy handed to the kernel
            // (copies the pacer holds leave later and are timed as forward delay).
            if forwarded.is_some_and(|before| self.edge.forwarded() != before) {
                self.edge.note_processing(now.elapsed());
            }
        }
    }

    /// Hand what the edge produced to the kernel, in order; what a full socket
    /// refuses waits (see [`MAX_PENDING`]).
    fn send(&mut self) {
        while let Some((i, d)) = self.pending.front() {
            match self.socks[*i]
                .socket
                .try_send_to(&d.contents, d.destination)
            {
                Ok(_) => {}
                // Still full: what the edge made since queues behind (or is dropped
                // past the cap) in the loop below.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => debug!(dest = %d.destination, "UDP send failed: {e}"),
            }
            if let Some((_, d)) = self.pending.pop_front() {
                self.edge.sent(&d, Instant::now());
            }
        }
        while let Some(d) = self.edge.poll_datagram() {
            let i = match self.socks.len() {
                1 => 0,
                _ => self
                    .socks
                    .iter()
                    .position(|s| s.local == d.source)
                    .unwrap_or(0),
            };
            if !self.pending.is_empty() {
                self.hold(i, d);
                continue;
            }
            match self.socks[i].socket.try_send_to(&d.contents, d.destination) {
                Ok(_) => self.edge.sent(&d, Instant::now()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.hold(i, d),
                Err(e) => debug!(dest = %d.destination, "UDP send failed: {e}"),
            }
        }
    }

    fn hold(&mut self, i: usize, d: Datagram) {
        if self.pending.len() >= MAX_PENDING {
            self.send_drops += 1;
            if self.send_drops.is_power_of_two() {
                warn!(
                    worker = self.index,
                    dropped = self.send_drops,
                    "the media socket stays full; dropping datagrams"
                );
            }
            return;
        }
        self.pending.push_back((i, d));
    }

    fn command(&mut self, now: Instant, c: Command) {
        let edge = &mut self.edge;
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
                place,
                reply,
            } => {
                let r = edge.publish_negotiated(now, &lesson, &token_session, *negotiated);
                if let Ok(s) = &r {
                    place.bind(s.peer);
                }
                let _ = reply.send(r);
            }
            Command::Subscribe {
                lesson,
                school,
                to,
                negotiated,
                initial_bps,
                place,
                reply,
            } => {
                let r =
                    edge.subscribe_negotiated(now, &lesson, &school, to, *negotiated, initial_bps);
                if let Ok(s) = &r {
                    place.bind(s.peer);
                }
                let _ = reply.send(r);
            }
            Command::Talk {
                lesson,
                school,
                negotiated,
                place,
                reply,
            } => {
                let r = edge.talk_negotiated(now, &lesson, &school, *negotiated);
                if let Ok(s) = &r {
                    place.bind(s.peer);
                }
                let _ = reply.send(r);
            }
            Command::Floor {
                lesson,
                change,
                reply,
            } => {
                let _ = reply.send(edge.floor(now, &lesson, change));
            }
            Command::Close { peer, reply } => {
                let _ = reply.send(edge.close(now, peer));
            }
            Command::SetLayer { peer, layer, reply } => {
                let _ = reply.send(edge.set_layer(now, peer, layer));
            }
            Command::Stats { reply } => {
                let mut s = edge.stats(now);
                for w in &mut s.workers {
                    w.send_drops = self.send_drops;
                }
                let _ = reply.send(s);
            }
            Command::Count { reply } => {
                let _ = reply.send(edge.session_count());
            }
            Command::SaveState { reply } => {
                self.shared.save_warm(edge);
                let _ = reply.send(());
            }
            #[cfg(test)]
            Command::Crash => panic!("injected media-thread crash"),
        }
    }
}
