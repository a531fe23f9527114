//! The edge without IO: str0m peers and the relay core, fed datagrams and time,
//! producing datagrams to send. The tokio driver (`driver.rs`) only moves bytes and
//! reads the clock, so this part can also run on a virtual clock.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use relay_core::{
    Audience, Codec, FloorState, Input as CoreInput, LayerPref, PeerId, Relay, RelayConfig,
    WarmTable,
};
use str0m::bwe::BweKind;
use str0m::format::PayloadParams;
use str0m::net::{Protocol, Receive};
use str0m::rtp::Ssrc;
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tracing::{debug, info, warn};

use crate::delay::{DelayHistogram, InFlight};
use crate::error::EdgeError;
use crate::guard::contain;
use crate::peer::{Codecs, Negotiated, Role};
pub use stats::{EdgeStats, WorkerLoad};

mod core_out;
mod forward;
mod lifecycle;
mod stats;
mod talk;
#[cfg(test)]
mod tests;

/// A session that has not connected (ICE and DTLS) within this time is dropped: a
/// client that posts offers and never connects holds a session for at most this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A datagram to send from `source` (one of our local addresses) to `destination`.
#[derive(Debug)]
pub struct Datagram {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
    /// For a forwarded media packet: when the relay received the packet it copies
    /// (see [`Edge::sent`]).
    pub media_received: Option<Instant>,
}

/// A session as the HTTP layer knows it.
#[derive(Debug, Clone)]
pub struct Session {
    pub peer: PeerId,
    pub answer: String,
}

struct Subscription {
    lesson: String,
    school: String,
    layer: Option<LayerPref>,
    slots: Vec<relay_core::SlotSpec>,
    /// The estimator's starting point, when adaptation is on.
    initial_bps: Option<u64>,
    audience: Audience,
}

struct Peer {
    rtc: Rtc,
    role: Role,
    created: Instant,
    connected: bool,
    next_timeout: Instant,
    /// Subscribers join the core once connected, so their first packet is a keyframe
    /// they can actually receive.
    pending_join: Option<Subscription>,
    /// Publisher: incoming SSRC -> (mid, rid), because browsers stop sending the
    /// mid/rid header extensions once the SSRC is known.
    ssrc_map: HashMap<Ssrc, (relay_core::Mid, Option<relay_core::Rid>)>,
    /// Publisher: payload type -> codec and its parameters.
    pt_map: HashMap<u8, Option<(Codec, PayloadParams)>>,
    /// Subscriber: how each teacher stream reaches it, computed once (see
    /// [`forward::Route`]).
    routes: Vec<forward::Route>,
    /// Packets were written: str0m sends them only once time moves forward.
    written: bool,
}

/// A warm start never begins below this: under it the first video layer does not
/// fit anyway, and the estimator must be able to see some traffic.
const MIN_WARM_START_BPS: u64 = 150_000;

/// Where the estimator towards a new classroom of `school` starts (`None` without
/// adaptation): near what the school sustained before (`warm`), or `initial_bps`.
pub fn start_bps(warm: &WarmTable, school: &str, adapt: bool, initial_bps: u64) -> Option<u64> {
    adapt.then(|| {
        warm.start_for(school)
            .map_or(initial_bps, |b| b.max(MIN_WARM_START_BPS))
    })
}

/// Which of `workers` media workers runs session `peer` (see [`Edge::set_id_space`]).
pub fn worker_of(peer: PeerId, workers: usize) -> usize {
    (peer.0.saturating_sub(1) % workers.max(1) as u64) as usize
}

/// The sans-IO edge.
pub struct Edge {
    relay: Relay,
    codecs: Codecs,
    locals: Vec<SocketAddr>,
    /// Ordered, so that timers fire in the same order on every run (the
    /// simulator's same-seed-same-result rests on it).
    peers: BTreeMap<PeerId, Peer>,
    by_remote: HashMap<(SocketAddr, SocketAddr), PeerId>,
    next_id: u64,
    /// Ids go up by this (the number of media workers), so that a session's id
    /// tells which worker runs it.
    id_step: u64,
    out: VecDeque<Datagram>,
    core_in: VecDeque<CoreInput>,
    dirty: Vec<PeerId>,
    /// Every session's next deadline, soonest first: a wake-up finds the due
    /// sessions without scanning them all.
    timers: BTreeSet<(Instant, PeerId)>,
    in_flight: InFlight,
    /// What every copy of the teacher packet being fanned out shares.
    fanout: forward::Fanout,
    forward_delay: DelayHistogram,
    processing_delay: DelayHistogram,
    adapt: bool,
    /// Where the estimator towards a classroom of a school never seen starts (a
    /// conservative default); known schools start near what they sustained before.
    initial_bps: u64,
    contained_panics: u64,
    connect_timeouts: u64,
    stray_datagrams: u64,
    /// Sessions that ended since the last [`Edge::poll_ended`], for the HTTP layer.
    ended: Vec<PeerId>,
    /// Floor changes since the last [`Edge::poll_floors`], for the HTTP layer.
    floors: Vec<(String, FloorState)>,
    /// Test hook: the next drain of this session panics, as a str0m bug would.
    #[cfg(test)]
    inject_panic: Option<PeerId>,
}

impl Edge {
    /// An edge answering on `locals` (the addresses offered as ICE candidates, which
    /// are also the source addresses of what it sends).
    pub fn new(now: Instant, cfg: RelayConfig, codecs: Codecs, locals: Vec<SocketAddr>) -> Edge {
        Edge {
            adapt: cfg.adapt.enabled,
            initial_bps: cfg.adapt.initial_bps,
            relay: Relay::new(cfg, now),
            codecs,
            locals,
            peers: BTreeMap::new(),
            by_remote: HashMap::new(),
            next_id: 1,
            id_step: 1,
            out: VecDeque::new(),
            core_in: VecDeque::new(),
            dirty: Vec::new(),
            timers: BTreeSet::new(),
            in_flight: InFlight::default(),
            fanout: forward::Fanout::default(),
            forward_delay: DelayHistogram::default(),
            processing_delay: DelayHistogram::default(),
            contained_panics: 0,
            connect_timeouts: 0,
            stray_datagrams: 0,
            ended: Vec::new(),
            floors: Vec::new(),
            #[cfg(test)]
            inject_panic: None,
        }
    }

    /// Number this edge's sessions `worker + 1`, `worker + 1 + workers`, …: media
    /// worker `worker` of `workers`, so that [`worker_of`] finds it from the id.
    pub fn set_id_space(&mut self, worker: usize, workers: usize) {
        self.next_id = worker as u64 + 1;
        self.id_step = workers.max(1) as u64;
    }

    /// A teacher publishes `offer` to `lesson`. `token_session` identifies the token:
    /// the same token replaces its own earlier session (a reconnect), another one is
    /// refused while the first is alive.
    pub fn publish(
        &mut self,
        now: Instant,
        lesson: &str,
        token_session: &str,
        offer: &str,
    ) -> Result<Session, EdgeError> {
        self.publish_check(lesson, token_session)?;
        let n = self.negotiate(now, Role::Publisher, offer, None);
        self.publish_negotiated(now, lesson, token_session, n)
    }

    /// Whether `token_session` may publish to `lesson` now.
    pub fn publish_check(&self, lesson: &str, token_session: &str) -> Result<(), EdgeError> {
        if self.relay.may_publish(lesson, token_session) {
            Ok(())
        } else {
            Err(EdgeError::Conflict(lesson.to_string()))
        }
    }

    /// [`Edge::publish`] with the offer negotiated elsewhere (off the media thread,
    /// see the driver).
    pub(crate) fn publish_negotiated(
        &mut self,
        now: Instant,
        lesson: &str,
        token_session: &str,
        n: Result<Negotiated, EdgeError>,
    ) -> Result<Session, EdgeError> {
        let n = self.negotiated(Role::Publisher, n)?;
        // Checked again: another teacher may have come in while it was negotiated.
        self.publish_check(lesson, token_session)?;
        let peer = self.add_peer(now, Role::Publisher, n.rtc, None);
        info!(lesson, %peer, tracks = n.tracks.len(), "teacher publishing");
        self.core_in.push_back(CoreInput::PublisherJoined {
            now,
            lesson: lesson.to_string(),
            peer,
            owner: token_session.to_string(),
            tracks: n.tracks,
        });
        self.settle(now);
        Ok(Session {
            peer,
            answer: n.answer,
        })
    }

    /// Where the estimator towards a new classroom of `school` starts (`None`
    /// without adaptation): near what the school sustained before, or the default.
    pub fn start_bps(&self, school: &str) -> Option<u64> {
        start_bps(self.relay.warm(), school, self.adapt, self.initial_bps)
    }

    /// A classroom of `school` watches `lesson`.
    pub fn subscribe(
        &mut self,
        now: Instant,
        lesson: &str,
        school: &str,
        layer: Option<LayerPref>,
        offer: &str,
    ) -> Result<Session, EdgeError> {
        let initial_bps = self.start_bps(school);
        let n = self.negotiate(now, Role::Subscriber, offer, initial_bps);
        let to = (Audience::Classroom, layer);
        self.subscribe_negotiated(now, lesson, school, to, n, initial_bps)
    }

    /// [`Edge::subscribe`] with the offer negotiated elsewhere, for `audience` at
    /// `layer`, starting its estimator at `initial_bps` (from [`Edge::start_bps`]).
    pub(crate) fn subscribe_negotiated(
        &mut self,
        now: Instant,
        lesson: &str,
        school: &str,
        (audience, layer): (Audience, Option<LayerPref>),
        n: Result<Negotiated, EdgeError>,
        initial_bps: Option<u64>,
    ) -> Result<Session, EdgeError> {
        let n = self.negotiated(Role::Subscriber, n)?;
        let sub = Subscription {
            lesson: lesson.to_string(),
            school: school.to_string(),
            layer,
            slots: n.slots,
            initial_bps,
            audience,
        };
        let peer = self.add_peer(now, Role::Subscriber, n.rtc, Some(sub));
        match audience {
            Audience::Classroom => info!(lesson, school, %peer, "classroom watching"),
            Audience::Teacher => info!(lesson, %peer, "teacher hearing the floor"),
        }
        self.settle(now);
        Ok(Session {
            peer,
            answer: n.answer,
        })
    }

    /// End a session. False if it does not exist (any more).
    pub fn close(&mut self, now: Instant, peer: PeerId) -> bool {
        let existed = self.remove_peer(now, peer, true);
        self.settle(now);
        existed
    }

    /// Change the layer a classroom gets.
    pub fn set_layer(&mut self, now: Instant, peer: PeerId, layer: LayerPref) -> bool {
        if !self.peers.contains_key(&peer) {
            return false;
        }
        self.core_in
            .push_back(CoreInput::SetLayer { now, peer, layer });
        self.settle(now);
        true
    }

    /// Whether this session is alive.
    pub fn is_alive(&self, peer: PeerId) -> bool {
        self.peers.contains_key(&peer)
    }

    /// A datagram arrived on `local` from `remote`.
    pub fn receive(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr, data: &[u8]) {
        let Ok(recv) = Receive::new(Protocol::Udp, remote, local, data) else {
            self.stray_datagrams += 1;
            return;
        };
        let input = Input::Receive(now, recv);
        let mut crashed = Vec::new();
        let mut accepts = |id: PeerId, p: &Peer| match contain(|| p.rtc.accepts(&input)) {
            Ok(yes) => yes,
            Err(panic) => {
                crashed.push((id, panic));
                false
            }
        };
        let known = self.by_remote.get(&(local, remote)).copied();
        // Only a STUN request (first byte 0-3, RFC 7983 §7) can start a new
        // association; anything else from an unknown address is not searched for
        // across every session, so a flood of garbage costs one lookup a datagram.
        let stun = data.first().is_some_and(|b| *b < 4);
        let found = match known.and_then(|id| self.peers.get(&id).map(|p| (id, p))) {
            Some((id, p)) if accepts(id, p) => Some(id),
            _ if stun => self
                .peers
                .iter()
                .find(|(id, p)| accepts(**id, p))
                .map(|(id, _)| *id),
            _ => None,
        };
        for (id, panic) in crashed {
            self.contained(now, id, "accepts", panic);
        }
        let Some(id) = found else {
            self.stray_datagrams += 1;
            debug!(%remote, "datagram for no session");
            self.settle(now);
            return;
        };
        self.by_remote.insert((local, remote), id);
        if let Some(p) = self.peers.get_mut(&id) {
            match contain(|| p.rtc.handle_input(input)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    warn!(peer = %id, "input refused: {e}");
                    p.rtc.disconnect();
                }
                Err(panic) => self.contained(now, id, "handle_input", panic),
            }
        }
        self.dirty.push(id);
        // In RTP mode str0m keeps just one received packet until the next poll_output,
        // so each datagram must be drained before the next one is fed in.
        self.settle(now);
    }

    /// Time passed: drive every peer whose timer is due, and the core.
    pub fn timeout(&mut self, now: Instant) {
        let mut due: Vec<PeerId> = Vec::new();
        while let Some(&(t, id)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            due.push(id);
        }
        // In id order, as before the timer index: the simulator's results rest on it.
        due.sort_unstable();
        for id in due {
            let Some(p) = self.peers.get_mut(&id) else {
                continue;
            };
            if !p.connected && now.duration_since(p.created) > CONNECT_TIMEOUT {
                info!(peer = %id, "session never connected; dropping it");
                self.connect_timeouts += 1;
                p.rtc.disconnect();
            } else {
                match contain(|| p.rtc.handle_input(Input::Timeout(now))) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        warn!(peer = %id, "timeout refused: {e}");
                        p.rtc.disconnect();
                    }
                    Err(panic) => {
                        self.contained(now, id, "timeout", panic);
                        continue;
                    }
                }
            }
            self.dirty.push(id);
        }
        self.core_in.push_back(CoreInput::Timeout(now));
        self.settle(now);
        self.in_flight.sweep(now);
    }

    /// When `timeout` must be called next.
    pub fn next_timeout(&self, now: Instant) -> Instant {
        let mut t = now + Duration::from_secs(1);
        if let Some(c) = self.relay.poll_timeout() {
            t = t.min(c);
        }
        if let Some(&(p, _)) = self.timers.first() {
            t = t.min(p);
        }
        t
    }

    /// Sessions that ended (closed, failed, timed out, replaced or crashed) since the
    /// last call, in the order they ended.
    pub fn poll_ended(&mut self) -> Vec<PeerId> {
        std::mem::take(&mut self.ended)
    }

    /// How many sessions are open.
    pub fn session_count(&self) -> usize {
        self.peers.len()
    }

    /// Next datagram to send.
    pub fn poll_datagram(&mut self) -> Option<Datagram> {
        self.out.pop_front()
    }

    /// Handling a datagram that was forwarded took `d` (measured by the driver).
    pub fn note_processing(&mut self, d: Duration) {
        self.processing_delay.record(d);
    }

    /// Packets forwarded since start (to tell whether a datagram was forwarded).
    pub fn forwarded(&self) -> u64 {
        self.relay.totals().packets_forwarded
    }

    /// `d` (from [`Edge::poll_datagram`]) was handed to the kernel at `at`: count
    /// its forwarding delay when it carries forwarded media.
    pub fn sent(&mut self, d: &Datagram, at: Instant) {
        if let Some(t) = d.media_received {
            self.forward_delay.record(at.saturating_duration_since(t));
        }
    }

    /// What school links sustained, for warm starts (see [`relay_core::WarmTable`]).
    pub fn warm(&self) -> &WarmTable {
        self.relay.warm()
    }

    pub fn warm_mut(&mut self) -> &mut WarmTable {
        self.relay.warm_mut()
    }

    fn add_peer(
        &mut self,
        now: Instant,
        role: Role,
        rtc: Rtc,
        sub: Option<Subscription>,
    ) -> PeerId {
        let id = PeerId(self.next_id);
        self.next_id += self.id_step;
        self.peers.insert(
            id,
            Peer {
                rtc,
                role,
                created: now,
                connected: false,
                next_timeout: now,
                pending_join: sub,
                ssrc_map: HashMap::new(),
                pt_map: HashMap::new(),
                routes: Vec::new(),
                written: false,
            },
        );
        self.timers.insert((now, id));
        self.dirty.push(id);
        id
    }

    /// Drain peers and the core until nothing is left to do.
    fn settle(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(id) = self.dirty.pop() {
                progressed = true;
                if let Err(panic) = contain(|| self.drain_peer(now, id)) {
                    self.contained(now, id, "poll_output", panic);
                }
            }
            while let Some(i) = self.core_in.pop_front() {
                progressed = true;
                self.relay.handle_input(i);
                self.drain_core(now);
            }
            if !progressed {
                break;
            }
        }
    }

    fn drain_peer(&mut self, now: Instant, id: PeerId) {
        #[cfg(test)]
        if self.inject_panic.take_if(|p| *p == id).is_some() {
            panic!("injected for a test");
        }
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        if std::mem::take(&mut p.written) {
            if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
                warn!(peer = %id, "timeout refused: {e}");
                p.rtc.disconnect();
            }
        }
        loop {
            let out = match p.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    warn!(peer = %id, "session failed: {e}");
                    p.rtc.disconnect();
                    break;
                }
            };
            match out {
                Output::Transmit(t) => {
                    let contents: Vec<u8> = t.contents.into();
                    let media_received = match p.role {
                        Role::Subscriber => self.in_flight.take(&contents),
                        Role::Publisher => None,
                    };
                    self.out.push_back(Datagram {
                        source: t.source,
                        destination: t.destination,
                        contents,
                        media_received,
                    })
                }
                Output::Timeout(t) => {
                    // A session that has not connected is also due when it has
                    // waited too long (see `timeout`).
                    let t = if p.connected {
                        t
                    } else {
                        t.min(p.created + CONNECT_TIMEOUT + Duration::from_millis(1))
                    };
                    self.timers.remove(&(p.next_timeout, id));
                    self.timers.insert((t, id));
                    p.next_timeout = t;
                    break;
                }
                Output::Event(e) => match e {
                    Event::Connected => {
                        p.connected = true;
                        if let Some(s) = p.pending_join.take() {
                            self.core_in.push_back(CoreInput::SubscriberJoined {
                                now,
                                lesson: s.lesson,
                                peer: id,
                                school: s.school,
                                slots: s.slots,
                                layer: s.layer,
                                start_bps: s.initial_bps,
                                audience: s.audience,
                            });
                        }
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        info!(peer = %id, "ICE disconnected");
                        p.rtc.disconnect();
                    }
                    Event::RtpPacket(pkt) if p.role == Role::Publisher => {
                        if let Some(rtp) = forward::publisher_packet(p, pkt) {
                            self.core_in
                                .push_back(CoreInput::Packet { now, peer: id, rtp });
                        }
                    }
                    Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. })
                        if p.role == Role::Subscriber =>
                    {
                        self.core_in.push_back(CoreInput::LinkEstimate {
                            now,
                            peer: id,
                            bps: estimate.as_u64(),
                        });
                    }
                    Event::PeerStats(st) if p.role == Role::Subscriber => {
                        self.core_in.push_back(CoreInput::LinkQuality {
                            now,
                            peer: id,
                            loss: st.egress_loss_fraction,
                            rtt: st.rtt,
                        });
                    }
                    Event::KeyframeRequest(r) if p.role == Role::Subscriber => {
                        self.core_in.push_back(CoreInput::KeyframeRequest {
                            now,
                            peer: id,
                            mid: relay_core::Mid::new(&r.mid.to_string()),
                        });
                    }
                    _ => {}
                },
            }
        }
        if !p.rtc.is_alive() {
            self.remove_peer(now, id, true);
        }
    }
}
