//! The edge without IO: str0m peers and the relay core, fed datagrams and time,
//! producing datagrams to send. The tokio driver (`driver.rs`) only moves bytes and
//! reads the clock, so this part can also run on a virtual clock.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use relay_core::{
    Codec, Input as CoreInput, LayerPref, LessonStats, Output as CoreOutput, PeerId, Relay,
    RelayConfig, RtpIn, Totals, WarmTable,
};
use str0m::bwe::{Bitrate, BweKind};
use str0m::format::{Codec as StrCodec, PayloadParams};
use str0m::media::{KeyframeRequestKind, Mid as StrMid, Pt, Rid as StrRid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpPacket, RtpWrite, Ssrc, Vp8Descriptor};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tracing::{debug, info, warn};

use crate::delay::{DelayHistogram, InFlight};
use crate::error::EdgeError;
use crate::peer::{negotiate, Codecs, Role};

/// A session that has not connected within this time is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

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

/// Counts and per-lesson state, for /metrics and the operator.
#[derive(Debug, Clone)]
pub struct EdgeStats {
    pub lessons: Vec<LessonStats>,
    pub totals: Totals,
    pub publishers: usize,
    pub subscribers: usize,
    /// Receive-to-send time of forwarded packets, since start (see [`crate::delay`]).
    pub forward_delay: DelayHistogram,
}

struct Subscription {
    lesson: String,
    school: String,
    layer: Option<LayerPref>,
    slots: Vec<relay_core::SlotSpec>,
    /// The estimator's starting point, when adaptation is on.
    initial_bps: Option<u64>,
}

struct Peer {
    rtc: Rtc,
    role: Role,
    lesson: String,
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
    /// Subscriber: (publisher, publisher's pt) -> our pt, and our RED pt when the
    /// classroom negotiated RED for that (Opus) codec.
    out_pt: HashMap<(PeerId, u8), Option<OutPt>>,
    /// Subscriber: per audio m-line, the last voice frame sent (timestamp, payload),
    /// which the next RED packet carries again.
    red_prev: HashMap<relay_core::Mid, (u32, Arc<[u8]>)>,
    /// Packets were written: str0m sends them only once time moves forward.
    written: bool,
}

/// Our payload type for a publisher's codec, and the RED one wrapping it (voice).
type OutPt = (Pt, Option<Pt>);

/// A warm start never begins below this: under it the first video layer does not
/// fit anyway, and the estimator must be able to see some traffic.
const MIN_WARM_START_BPS: u64 = 150_000;

/// The sans-IO edge.
pub struct Edge {
    relay: Relay,
    codecs: Codecs,
    locals: Vec<SocketAddr>,
    /// Ordered, so that timers fire in the same order on every run (the
    /// simulator's same-seed-same-result rests on it).
    peers: BTreeMap<PeerId, Peer>,
    by_remote: HashMap<(SocketAddr, SocketAddr), PeerId>,
    lesson_publisher: HashMap<String, (PeerId, String)>,
    next_id: u64,
    out: VecDeque<Datagram>,
    core_in: VecDeque<CoreInput>,
    dirty: Vec<PeerId>,
    /// Every session's next deadline, soonest first: a wake-up finds the due
    /// sessions without scanning them all.
    timers: BTreeSet<(Instant, PeerId)>,
    in_flight: InFlight,
    forward_delay: DelayHistogram,
    adapt: bool,
    /// Where the estimator towards a classroom of a school never seen starts (a
    /// conservative default); known schools start near what they sustained before.
    initial_bps: u64,
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
            lesson_publisher: HashMap::new(),
            next_id: 1,
            out: VecDeque::new(),
            core_in: VecDeque::new(),
            dirty: Vec::new(),
            timers: BTreeSet::new(),
            in_flight: InFlight::default(),
            forward_delay: DelayHistogram::default(),
        }
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
        if let Some((peer, ts)) = self.lesson_publisher.get(lesson) {
            if ts != token_session && self.peers.contains_key(peer) {
                return Err(EdgeError::Conflict(lesson.to_string()));
            }
        }
        let n = negotiate(now, Role::Publisher, offer, &self.locals, self.codecs, None)?;
        let peer = self.add_peer(now, Role::Publisher, lesson, n.rtc, None);
        self.lesson_publisher
            .insert(lesson.to_string(), (peer, token_session.to_string()));
        info!(lesson, %peer, tracks = n.tracks.len(), "teacher publishing");
        self.core_in.push_back(CoreInput::PublisherJoined {
            now,
            lesson: lesson.to_string(),
            peer,
            tracks: n.tracks,
        });
        self.settle(now);
        Ok(Session {
            peer,
            answer: n.answer,
        })
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
        let initial_bps = self.adapt.then(|| {
            self.relay
                .warm()
                .start_for(school)
                .map_or(self.initial_bps, |b| b.max(MIN_WARM_START_BPS))
        });
        let n = negotiate(
            now,
            Role::Subscriber,
            offer,
            &self.locals,
            self.codecs,
            initial_bps,
        )?;
        let sub = Subscription {
            lesson: lesson.to_string(),
            school: school.to_string(),
            layer,
            slots: n.slots,
            initial_bps,
        };
        let peer = self.add_peer(now, Role::Subscriber, lesson, n.rtc, Some(sub));
        info!(lesson, school, %peer, "classroom watching");
        self.settle(now);
        Ok(Session {
            peer,
            answer: n.answer,
        })
    }

    /// End a session. False if it does not exist (any more).
    pub fn close(&mut self, now: Instant, peer: PeerId) -> bool {
        let existed = self.remove_peer(now, peer);
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
            return;
        };
        let input = Input::Receive(now, recv);
        let id = match self.by_remote.get(&(local, remote)) {
            Some(id) if self.peers.get(id).is_some_and(|p| p.rtc.accepts(&input)) => *id,
            _ => {
                let Some((id, _)) = self.peers.iter().find(|(_, p)| p.rtc.accepts(&input)) else {
                    debug!(%remote, "datagram for no session");
                    return;
                };
                self.by_remote.insert((local, remote), *id);
                *id
            }
        };
        if let Some(p) = self.peers.get_mut(&id) {
            if let Err(e) = p.rtc.handle_input(input) {
                warn!(peer = %id, "input refused: {e}");
                p.rtc.disconnect();
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
                p.rtc.disconnect();
            } else if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
                warn!(peer = %id, "timeout refused: {e}");
                p.rtc.disconnect();
            }
            self.dirty.push(id);
        }
        self.core_in.push_back(CoreInput::Timeout(now));
        self.settle(now);
        self.in_flight.sweep(now);
    }

    /// When `timeout` must be called next.
    pub fn next_timeout(&mut self, now: Instant) -> Instant {
        let mut t = now + Duration::from_secs(1);
        if let CoreOutput::Timeout(c) = self.relay.poll_output() {
            t = t.min(c);
        }
        if let Some(&(p, _)) = self.timers.first() {
            t = t.min(p);
        }
        t
    }

    /// Next datagram to send.
    pub fn poll_datagram(&mut self) -> Option<Datagram> {
        self.out.pop_front()
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

    /// A snapshot for metrics.
    pub fn stats(&self, now: Instant) -> EdgeStats {
        EdgeStats {
            lessons: self.relay.stats(now),
            totals: self.relay.totals(),
            publishers: self
                .peers
                .values()
                .filter(|p| p.role == Role::Publisher)
                .count(),
            subscribers: self
                .peers
                .values()
                .filter(|p| p.role == Role::Subscriber)
                .count(),
            forward_delay: self.forward_delay.clone(),
        }
    }

    fn add_peer(
        &mut self,
        now: Instant,
        role: Role,
        lesson: &str,
        rtc: Rtc,
        sub: Option<Subscription>,
    ) -> PeerId {
        let id = PeerId(self.next_id);
        self.next_id += 1;
        self.peers.insert(
            id,
            Peer {
                rtc,
                role,
                lesson: lesson.to_string(),
                created: now,
                connected: false,
                next_timeout: now,
                pending_join: sub,
                ssrc_map: HashMap::new(),
                pt_map: HashMap::new(),
                out_pt: HashMap::new(),
                red_prev: HashMap::new(),
                written: false,
            },
        );
        self.timers.insert((now, id));
        self.dirty.push(id);
        id
    }

    fn remove_peer(&mut self, now: Instant, id: PeerId) -> bool {
        let Some(mut p) = self.peers.remove(&id) else {
            return false;
        };
        self.timers.remove(&(p.next_timeout, id));
        p.rtc.disconnect();
        // Flush what disconnecting produced (DTLS close_notify) while we still can.
        while let Ok(o) = p.rtc.poll_output() {
            match o {
                Output::Transmit(t) => self.out.push_back(Datagram {
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents.into(),
                    media_received: None,
                }),
                Output::Timeout(_) => break,
                Output::Event(_) => {}
            }
        }
        self.by_remote.retain(|_, v| *v != id);
        if self
            .lesson_publisher
            .get(&p.lesson)
            .is_some_and(|(pid, _)| *pid == id)
        {
            self.lesson_publisher.remove(&p.lesson);
        }
        info!(peer = %id, lesson = %p.lesson, "session ended");
        self.core_in
            .push_back(CoreInput::PeerLeft { now, peer: id });
        true
    }

    /// Drain peers and the core until nothing is left to do.
    fn settle(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(id) = self.dirty.pop() {
                progressed = true;
                self.drain_peer(now, id);
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
                            });
                            if let Some(bps) = s.initial_bps {
                                self.core_in.push_back(CoreInput::LinkEstimate {
                                    now,
                                    peer: id,
                                    bps,
                                });
                            }
                        }
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        info!(peer = %id, "ICE disconnected");
                        p.rtc.disconnect();
                    }
                    Event::RtpPacket(pkt) if p.role == Role::Publisher => {
                        if let Some(rtp) = publisher_packet(p, pkt) {
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
            self.remove_peer(now, id);
        }
    }

    fn drain_core(&mut self, now: Instant) {
        loop {
            match self.relay.poll_output() {
                CoreOutput::Timeout(_) => break,
                CoreOutput::Forward(f) => self.forward(now, f),
                CoreOutput::RequestKeyframe {
                    publisher,
                    mid,
                    rid,
                } => {
                    if let Some(p) = self.peers.get_mut(&publisher) {
                        let rid = rid.map(|r| StrRid::from(r.as_str()));
                        if let Some(rx) = p
                            .rtc
                            .direct_api()
                            .stream_rx_by_mid(StrMid::from(mid.as_str()), rid)
                        {
                            rx.request_keyframe(KeyframeRequestKind::Pli);
                            self.dirty.push(publisher);
                        }
                    }
                }
                CoreOutput::BweTarget {
                    peer,
                    min_bps,
                    desired_bps,
                } => {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.rtc
                            .bwe()
                            .set_bitrate(Bitrate::bps(min_bps), Bitrate::bps(desired_bps));
                        self.dirty.push(peer);
                    }
                }
                CoreOutput::BweReprobe { peer, from_bps } => {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.rtc.bwe().reset(Bitrate::bps(from_bps));
                        self.dirty.push(peer);
                    }
                }
                CoreOutput::Close(peer) => {
                    info!(%peer, "teacher session replaced by a reconnect");
                    self.remove_peer(now, peer);
                }
            }
        }
    }

    fn forward(&mut self, now: Instant, f: relay_core::Forward) {
        // Payload type on the receiving side, matched by codec parameters.
        let key = (f.from, f.pt);
        let Some(src_params) = self
            .peers
            .get(&f.from)
            .and_then(|p| p.pt_map.get(&f.pt).cloned().flatten())
            .map(|(_, params)| params)
        else {
            return;
        };
        let Some(p) = self.peers.get_mut(&f.to) else {
            return;
        };
        let out = *p.out_pt.entry(key).or_insert_with(|| {
            p.rtc
                .codec_config()
                .match_params(src_params)
                .map(|m| (m.pt(), m.red().filter(|_| m.spec().codec == StrCodec::Opus)))
        });
        let Some((pt, red)) = out else {
            return;
        };
        // Voice towards a classroom that negotiated RED carries the previous frame
        // again: one lost packet on the classroom's link costs no voice.
        let (pt, payload) = match red {
            Some(red_pt) if !f.codec.is_video() => {
                let prev = p.red_prev.insert(f.mid, (f.ts, f.payload.clone()));
                let wrapped = relay_core::red::wrap(
                    *pt,
                    f.ts,
                    &f.payload,
                    prev.as_ref().map(|(ts, d)| (*ts, &d[..])),
                );
                (red_pt, Arc::from(wrapped))
            }
            _ => (pt, f.payload.clone()),
        };
        let mut api = p.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(StrMid::from(f.mid.as_str()), None) else {
            return;
        };
        let mut w = RtpWrite::new(pt, f.seq.into(), f.ts, now, payload)
            .marker(f.marker)
            .nackable(f.codec.is_video());
        if f.vp8_picture_id.is_some() || f.vp8_tl0_pic_idx.is_some() {
            if let Ok(d) = Vp8Descriptor::parse(&f.payload) {
                let mut b = d.patch();
                if let Some(id) = f.vp8_picture_id {
                    b = b.picture_id(id);
                }
                if let Some(t) = f.vp8_tl0_pic_idx {
                    b = b.tl0_pic_idx(t);
                }
                if let Ok(patch) = b.build() {
                    w = w.vp8_patch(patch);
                }
            }
        }
        self.in_flight.note(*tx.ssrc(), f.seq as u16, now);
        tx.write_rtp(w);
        p.written = true;
        if self.dirty.last() != Some(&f.to) {
            self.dirty.push(f.to);
        }
    }
}

/// Turn a str0m packet from a teacher into a core packet.
fn publisher_packet(p: &mut Peer, pkt: RtpPacket) -> Option<RtpIn> {
    let ssrc = pkt.header.ssrc;
    let (mid, rid) = match p.ssrc_map.get(&ssrc) {
        Some(v) => *v,
        None => {
            let mut api = p.rtc.direct_api();
            let rx = api.stream_rx(&ssrc)?;
            let v = (
                relay_core::Mid::new(&rx.mid().to_string()),
                rx.rid().map(|r| relay_core::Rid::new(&r.to_string())),
            );
            p.ssrc_map.insert(ssrc, v);
            v
        }
    };
    let pt = *pkt.header.payload_type;
    let entry = p.pt_map.entry(pt).or_insert_with(|| {
        let params = p
            .rtc
            .codec_config()
            .params()
            .iter()
            .find(|x| *x.pt() == pt)?;
        let codec = match params.spec().codec {
            StrCodec::Opus => Codec::Opus,
            StrCodec::Vp8 => Codec::Vp8,
            StrCodec::H264 => Codec::H264,
            _ => return None,
        };
        Some((codec, *params))
    });
    let (codec, _) = entry.as_ref()?;
    Some(RtpIn {
        mid,
        rid,
        seq: *pkt.seq_no,
        ts: pkt.header.timestamp,
        marker: pkt.header.marker,
        pt,
        codec: *codec,
        payload: pkt.payload,
    })
}
