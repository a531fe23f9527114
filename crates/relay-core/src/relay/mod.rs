//! The relay state machine: lessons, their teacher (publisher) and classrooms
//! (subscribers), and what to forward where.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::adapt::AdaptConfig;
use crate::codec::{self, Codec};
use crate::ids::{Mid, PeerId, Rid};
use crate::layers::{Layer, LayerPref, RateMeter};
use crate::rewrite::{Rewriter, SourcePacket};
use crate::warm::WarmTable;

mod link;
use link::{adapt_subscriber, LessonPlan, LinkState};

/// Tunables of the core. Defaults suit a classroom lesson.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// At most one keyframe request per teacher stream per this interval.
    pub keyframe_interval: Duration,
    /// A classroom still waiting for a keyframe this long asks again.
    pub keyframe_retry: Duration,
    /// Layer a classroom gets unless it asks for another.
    pub default_layer: LayerPref,
    /// A layer with no packet for this long counts as stopped.
    pub layer_idle: Duration,
    /// Housekeeping period (layer choice, deferred keyframe requests).
    pub tick: Duration,
    /// Link adaptation, for classrooms whose edge reports estimates.
    pub adapt: AdaptConfig,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            keyframe_interval: Duration::from_millis(500),
            keyframe_retry: Duration::from_millis(1000),
            default_layer: LayerPref::High,
            layer_idle: Duration::from_millis(1500),
            tick: Duration::from_millis(100),
            adapt: AdaptConfig::default(),
        }
    }
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Audio,
    Video,
}

/// A track the teacher announced in the publish offer.
#[derive(Debug, Clone)]
pub struct PublishedTrack {
    pub mid: Mid,
    pub kind: Kind,
    /// Simulcast rids in SDP order; empty without simulcast.
    pub rids: Vec<Rid>,
}

/// An outgoing m-line of a classroom.
#[derive(Debug, Clone, Copy)]
pub struct SlotSpec {
    pub mid: Mid,
    pub kind: Kind,
    /// Voice on this m-line goes out with RFC 2198 redundancy (the classroom
    /// negotiated RED), which about doubles what it costs the link.
    pub redundant: bool,
}

/// One RTP packet from a teacher.
#[derive(Debug, Clone)]
pub struct RtpIn {
    pub mid: Mid,
    pub rid: Option<Rid>,
    /// Extended sequence number.
    pub seq: u64,
    pub ts: u32,
    pub marker: bool,
    /// Payload type on the teacher's connection.
    pub pt: u8,
    pub codec: Codec,
    pub payload: Arc<[u8]>,
}

/// Everything the core reacts to. Every input carries its time.
#[derive(Debug, Clone)]
pub enum Input {
    /// A teacher's publish session is up. Replaces the lesson's current publisher,
    /// which is then closed (`Output::Close`).
    PublisherJoined {
        now: Instant,
        lesson: String,
        peer: PeerId,
        tracks: Vec<PublishedTrack>,
    },
    /// A classroom's watch session is up.
    SubscriberJoined {
        now: Instant,
        lesson: String,
        peer: PeerId,
        school: String,
        slots: Vec<SlotSpec>,
        layer: Option<LayerPref>,
    },
    /// A session ended (DELETE, ICE timeout, error).
    PeerLeft { now: Instant, peer: PeerId },
    /// Media from a teacher.
    Packet {
        now: Instant,
        peer: PeerId,
        rtp: RtpIn,
    },
    /// A classroom's decoder asked for a keyframe (PLI/FIR) on one of its m-lines.
    KeyframeRequest {
        now: Instant,
        peer: PeerId,
        mid: Mid,
    },
    /// The edge's send-side bandwidth estimate towards a classroom (TWCC).
    LinkEstimate {
        now: Instant,
        peer: PeerId,
        bps: u64,
    },
    /// Loss and round-trip time towards a classroom, from its receiver reports.
    LinkQuality {
        now: Instant,
        peer: PeerId,
        loss: Option<f32>,
        rtt: Option<Duration>,
    },
    /// Change which layer a classroom gets (with adaptation: the highest it may get).
    SetLayer {
        now: Instant,
        peer: PeerId,
        layer: LayerPref,
    },
    /// Time passed.
    Timeout(Instant),
}

/// A packet to send to one classroom.
#[derive(Debug, Clone)]
pub struct Forward {
    pub to: PeerId,
    pub mid: Mid,
    /// Where it came from, to map the payload type.
    pub from: PeerId,
    pub pt: u8,
    pub codec: Codec,
    pub seq: u64,
    pub ts: u32,
    pub marker: bool,
    pub vp8_picture_id: Option<u16>,
    pub vp8_tl0_pic_idx: Option<u8>,
    pub payload: Arc<[u8]>,
}

/// What the core asks of the edge.
#[derive(Debug, Clone)]
pub enum Output {
    Forward(Forward),
    /// Ask the teacher's encoder for a keyframe on this stream (PLI).
    RequestKeyframe {
        publisher: PeerId,
        mid: Mid,
        rid: Option<Rid>,
    },
    /// Close this session (a teacher replaced by a reconnect).
    Close(PeerId),
    /// Steer the bandwidth estimator towards a classroom: keep at least `min_bps`
    /// flowing (padding fills gaps, capped by the estimate) and probe towards
    /// `desired_bps`. Rates are on the wire.
    BweTarget {
        peer: PeerId,
        min_bps: u64,
        desired_bps: u64,
    },
    /// Restart the estimator towards a classroom at `from_bps` so that it probes
    /// again (at 3× and 6×, capped at twice the desired rate). Asked for when the
    /// estimate has sat below the next layer for a while with little loss: str0m's
    /// loss-based estimate does not probe out of a loss-limited state by itself once
    /// the link has grown (after a congested spell).
    BweReprobe {
        peer: PeerId,
        from_bps: u64,
    },
    /// Call `handle_input(Input::Timeout)` at this time.
    Timeout(Instant),
}

#[derive(Debug)]
struct Track {
    mid: Mid,
    kind: Kind,
    codec: Option<Codec>,
    layers: Vec<Layer>,
}

impl Track {
    fn layer_index(&mut self, rid: Option<Rid>) -> usize {
        if let Some(i) = self.layers.iter().position(|l| l.rid == rid) {
            return i;
        }
        let order = self.layers.len();
        self.layers.push(Layer::new(rid, order));
        order
    }
}

#[derive(Debug)]
struct Publisher {
    peer: PeerId,
    tracks: Vec<Track>,
}

/// Which teacher stream a slot forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Source {
    peer: PeerId,
    mid: Mid,
    rid: Option<Rid>,
}

#[derive(Debug)]
struct Slot {
    spec: SlotSpec,
    /// The teacher track this slot shows: (publisher, mid).
    bound: Option<(PeerId, Mid)>,
    /// The layer wanted (video only).
    target: Option<Rid>,
    /// The stream being forwarded now.
    current: Option<Source>,
    rewriter: Option<Rewriter>,
    /// The source whose keyframe the slot waits for, and when it last asked.
    waiting: Option<(Source, Instant)>,
    switches: u64,
    /// Video held back because the link cannot carry even the lowest layer.
    paused: bool,
}

impl Slot {
    fn wants_switch(&self) -> bool {
        match (self.bound, self.current) {
            (Some((peer, mid)), Some(c)) => c.peer != peer || c.mid != mid || c.rid != self.target,
            (Some(_), None) => !self.paused,
            (None, _) => false,
        }
    }
}

#[derive(Debug)]
struct Subscriber {
    peer: PeerId,
    school: String,
    layer: LayerPref,
    slots: Vec<Slot>,
    sent: RateMeter,
    link: LinkState,
    joined: Instant,
    /// Keyframe requests (PLI/FIR) this classroom sent.
    picture_losses: u64,
}

#[derive(Debug, Default)]
struct Lesson {
    publisher: Option<Publisher>,
    subscribers: Vec<Subscriber>,
}

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_forwarded: u64,
    pub bytes_forwarded: u64,
    pub keyframe_requests_sent: u64,
    pub layer_switches: u64,
    /// Times a classroom's video track was paused for a thin link.
    pub video_pauses: u64,
}

/// A snapshot of one classroom, for metrics and the operator page.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriberStats {
    pub peer: PeerId,
    pub school: String,
    pub bitrate_bps: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Per slot: mid, and the rid forwarded now (`Some(None)` = a stream without rids).
    pub layers: Vec<(Mid, Option<Option<Rid>>)>,
    pub switches: u64,
    /// Send-side estimate towards this classroom, when the edge measures one.
    pub estimate_bps: Option<u64>,
    /// Media budget last allocated (wire bit/s, audio included); 0 without estimate.
    pub budget_bps: u64,
    pub loss: Option<f32>,
    pub rtt: Option<Duration>,
    /// Video tracks held back now because the link is too thin.
    pub paused_tracks: usize,
    /// Times a video track was paused.
    pub pauses: u64,
    /// Keyframe requests from this classroom: each is a picture its decoder lost
    /// (frozen until the keyframe comes), where a layer switch loses none.
    pub picture_losses: u64,
}

/// Bit rate per layer of one teacher track: (rid, bit/s).
pub type LayerRates = Vec<(Option<Rid>, u64)>;

/// A snapshot of one lesson.
#[derive(Debug, Clone, PartialEq)]
pub struct LessonStats {
    pub lesson: String,
    pub publisher: Option<PeerId>,
    /// Per teacher track: mid and per layer (rid, bit/s).
    pub tracks: Vec<(Mid, LayerRates)>,
    pub subscribers: Vec<SubscriberStats>,
}

/// The sans-IO relay. See the crate docs for the contract.
#[derive(Debug)]
pub struct Relay {
    cfg: RelayConfig,
    lessons: BTreeMap<String, Lesson>,
    peer_lesson: HashMap<PeerId, String>,
    out: VecDeque<Output>,
    next_tick: Instant,
    totals: Totals,
    warm: WarmTable,
}

impl Relay {
    /// A relay whose clock starts at `now`.
    pub fn new(cfg: RelayConfig, now: Instant) -> Relay {
        let next_tick = now + cfg.tick;
        Relay {
            cfg,
            lessons: BTreeMap::new(),
            peer_lesson: HashMap::new(),
            out: VecDeque::new(),
            next_tick,
            totals: Totals::default(),
            warm: WarmTable::default(),
        }
    }

    /// What school links sustained so far (for warm starts; persist it).
    pub fn warm(&self) -> &WarmTable {
        &self.warm
    }

    pub fn warm_mut(&mut self) -> &mut WarmTable {
        &mut self.warm
    }

    /// Feed one input. Then drain [`Relay::poll_output`].
    pub fn handle_input(&mut self, input: Input) {
        match input {
            Input::PublisherJoined {
                now,
                lesson,
                peer,
                tracks,
            } => self.publisher_joined(now, lesson, peer, tracks),
            Input::SubscriberJoined {
                now,
                lesson,
                peer,
                school,
                slots,
                layer,
            } => self.subscriber_joined(now, lesson, peer, school, slots, layer),
            Input::PeerLeft { now, peer } => self.peer_left(now, peer),
            Input::Packet { now, peer, rtp } => self.packet(now, peer, rtp),
            Input::KeyframeRequest { now, peer, mid } => self.subscriber_pli(now, peer, mid),
            Input::SetLayer { now, peer, layer } => self.set_layer(now, peer, layer),
            Input::LinkEstimate { now, peer, bps } => {
                if let Some(s) = self.subscriber_mut(peer) {
                    let first = s.link.estimate.replace(bps).is_none();
                    if now.saturating_duration_since(s.joined) >= crate::warm::RAMP {
                        let school = s.school.clone();
                        self.warm.observe(&school, bps);
                    }
                    // The first estimate decides the starting layers before any
                    // video is forwarded by preference alone.
                    if first {
                        self.choose_layers(now);
                    }
                }
            }
            Input::LinkQuality {
                now: _,
                peer,
                loss,
                rtt,
            } => {
                if let Some(s) = self.subscriber_mut(peer) {
                    s.link.note_loss(loss);
                    s.link.loss = loss;
                    s.link.last_loss = loss.or(s.link.last_loss);
                    s.link.rtt = rtt.or(s.link.rtt);
                }
            }
            Input::Timeout(now) => self.timeout(now),
        }
    }

    /// Next thing to do. Ends with `Output::Timeout` when nothing else is queued.
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        Output::Timeout(self.next_tick)
    }

    /// Counters since start.
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Number of lessons with anyone in them.
    pub fn lesson_count(&self) -> usize {
        self.lessons.len()
    }

    /// Snapshot of every lesson, sorted by name.
    pub fn stats(&self, now: Instant) -> Vec<LessonStats> {
        let idle = self.cfg.layer_idle;
        let mut v: Vec<LessonStats> = self
            .lessons
            .iter()
            .map(|(name, l)| LessonStats {
                lesson: name.clone(),
                publisher: l.publisher.as_ref().map(|p| p.peer),
                tracks: l
                    .publisher
                    .iter()
                    .flat_map(|p| &p.tracks)
                    .map(|t| {
                        (
                            t.mid,
                            t.layers
                                .iter()
                                .map(|l| (l.rid, l.meter.bps(now, idle)))
                                .collect(),
                        )
                    })
                    .collect(),
                subscribers: l
                    .subscribers
                    .iter()
                    .map(|s| SubscriberStats {
                        peer: s.peer,
                        school: s.school.clone(),
                        bitrate_bps: s.sent.bps(now, idle),
                        packets: s.sent.total_packets,
                        bytes: s.sent.total_bytes,
                        layers: s
                            .slots
                            .iter()
                            .map(|sl| (sl.spec.mid, sl.current.map(|c| c.rid)))
                            .collect(),
                        switches: s.slots.iter().map(|sl| sl.switches).sum(),
                        estimate_bps: s.link.estimate,
                        budget_bps: s.link.budget,
                        loss: s.link.last_loss,
                        rtt: s.link.rtt,
                        paused_tracks: s.slots.iter().filter(|sl| sl.paused).count(),
                        pauses: s.link.pauses,
                        picture_losses: s.picture_losses,
                    })
                    .collect(),
            })
            .collect();
        v.sort_by(|a, b| a.lesson.cmp(&b.lesson));
        v
    }

    fn publisher_joined(
        &mut self,
        now: Instant,
        lesson: String,
        peer: PeerId,
        tracks: Vec<PublishedTrack>,
    ) {
        self.peer_lesson.insert(peer, lesson.clone());
        let l = self.lessons.entry(lesson).or_default();
        let publisher = Publisher {
            peer,
            tracks: tracks
                .into_iter()
                .map(|t| Track {
                    mid: t.mid,
                    kind: t.kind,
                    codec: None,
                    layers: t
                        .rids
                        .iter()
                        .enumerate()
                        .map(|(i, r)| Layer::new(Some(*r), i))
                        .collect(),
                })
                .collect(),
        };
        if let Some(old) = l.publisher.replace(publisher) {
            self.peer_lesson.remove(&old.peer);
            self.out.push_back(Output::Close(old.peer));
        }
        let tracks = l.publisher.as_ref().map(|p| &p.tracks[..]).unwrap_or(&[]);
        for s in &mut l.subscribers {
            bind_slots(&mut s.slots, peer, tracks);
        }
        self.choose_layers(now);
    }

    fn subscriber_joined(
        &mut self,
        now: Instant,
        lesson: String,
        peer: PeerId,
        school: String,
        slots: Vec<SlotSpec>,
        layer: Option<LayerPref>,
    ) {
        self.peer_lesson.insert(peer, lesson.clone());
        let l = self.lessons.entry(lesson).or_default();
        let mut slots: Vec<Slot> = slots
            .into_iter()
            .map(|spec| Slot {
                spec,
                bound: None,
                target: None,
                current: None,
                rewriter: None,
                waiting: None,
                switches: 0,
                paused: false,
            })
            .collect();
        if let Some(p) = &l.publisher {
            bind_slots(&mut slots, p.peer, &p.tracks);
        }
        l.subscribers.push(Subscriber {
            peer,
            school,
            layer: layer.unwrap_or(self.cfg.default_layer),
            slots,
            sent: RateMeter::default(),
            link: LinkState::default(),
            joined: now,
            picture_losses: 0,
        });
        self.choose_layers(now);
    }

    fn peer_left(&mut self, _now: Instant, peer: PeerId) {
        let Some(name) = self.peer_lesson.remove(&peer) else {
            return;
        };
        let Some(l) = self.lessons.get_mut(&name) else {
            return;
        };
        if l.publisher.as_ref().is_some_and(|p| p.peer == peer) {
            l.publisher = None;
            for s in &mut l.subscribers {
                for slot in &mut s.slots {
                    // Keep `current` and the rewriter: a reconnecting teacher continues
                    // the same outgoing numbering.
                    slot.bound = None;
                    slot.waiting = None;
                }
            }
        }
        l.subscribers.retain(|s| s.peer != peer);
        if l.publisher.is_none() && l.subscribers.is_empty() {
            self.lessons.remove(&name);
        }
    }

    fn packet(&mut self, now: Instant, peer: PeerId, rtp: RtpIn) {
        self.totals.packets_in += 1;
        self.totals.bytes_in += rtp.payload.len() as u64;
        let Some(name) = self.peer_lesson.get(&peer) else {
            return;
        };
        let Some(l) = self.lessons.get_mut(name) else {
            return;
        };
        let Some(p) = l.publisher.as_mut().filter(|p| p.peer == peer) else {
            return;
        };
        let Some(track) = p.tracks.iter_mut().find(|t| t.mid == rtp.mid) else {
            return;
        };
        track.codec = Some(rtp.codec);
        let li = track.layer_index(rtp.rid);
        let info = codec::inspect(rtp.codec, &rtp.payload);
        let layer = &mut track.layers[li];
        let new_layer = !layer.meter.is_active(now, self.cfg.layer_idle);
        layer.meter.add(now, rtp.payload.len());
        if info.keyframe_start {
            layer.keyframes.keyframe_seen();
            layer.last_keyframe = Some(now);
        }
        let src = Source {
            peer,
            mid: rtp.mid,
            rid: rtp.rid,
        };
        let sp = SourcePacket {
            seq: rtp.seq,
            ts: rtp.ts,
            vp8: info.vp8,
        };
        let is_video = rtp.codec.is_video();
        for s in &mut l.subscribers {
            for slot in &mut s.slots {
                if slot.bound != Some((peer, rtp.mid)) || (is_video && slot.paused) {
                    continue;
                }
                let rw = slot
                    .rewriter
                    .get_or_insert_with(|| Rewriter::new(rtp.codec.clock_rate(), 1));
                // Audio follows any packet of its bound track; video only the target layer.
                let is_target = !is_video || slot.target == src.rid;
                let out = if slot.current == Some(src) {
                    // The old layer keeps flowing until the new one has a keyframe.
                    rw.rewrite(now, &sp)
                } else if is_target && (!is_video || info.keyframe_start) {
                    if slot.current.is_some() {
                        slot.switches += 1;
                        self.totals.layer_switches += 1;
                    }
                    slot.current = Some(src);
                    slot.waiting = None;
                    Some(rw.switch_to(now, &sp))
                } else {
                    None
                };
                let Some(w) = out else {
                    continue;
                };
                s.sent.add(now, rtp.payload.len());
                self.totals.packets_forwarded += 1;
                self.totals.bytes_forwarded += rtp.payload.len() as u64;
                self.out.push_back(Output::Forward(Forward {
                    to: s.peer,
                    mid: slot.spec.mid,
                    from: peer,
                    pt: rtp.pt,
                    codec: rtp.codec,
                    seq: w.seq,
                    ts: w.ts,
                    marker: rtp.marker,
                    vp8_picture_id: w.vp8_picture_id,
                    vp8_tl0_pic_idx: w.vp8_tl0_pic_idx,
                    payload: rtp.payload.clone(),
                }));
            }
        }
        if new_layer && is_video {
            self.choose_layers(now);
        }
    }

    fn subscriber_pli(&mut self, now: Instant, peer: PeerId, mid: Mid) {
        let Some(l) = self
            .peer_lesson
            .get(&peer)
            .and_then(|n| self.lessons.get_mut(n))
        else {
            return;
        };
        let Some(sub) = l.subscribers.iter_mut().find(|s| s.peer == peer) else {
            return;
        };
        sub.picture_losses += 1;
        let Some(slot) = sub.slots.iter().find(|sl| sl.spec.mid == mid) else {
            return;
        };
        // Ask for the stream the classroom sees now, or the one it waits for.
        let want = slot.current.or(slot.bound.map(|(peer, mid)| Source {
            peer,
            mid,
            rid: slot.target,
        }));
        if let Some(src) = want {
            request_keyframe(&mut self.out, &mut self.totals, &self.cfg, l, src, now);
        }
    }

    fn set_layer(&mut self, now: Instant, peer: PeerId, layer: LayerPref) {
        let Some(s) = self.subscriber_mut(peer) else {
            return;
        };
        s.layer = layer;
        self.choose_layers(now);
    }

    fn timeout(&mut self, now: Instant) {
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + self.cfg.tick;
        self.choose_layers(now);
        let iv = self.cfg.keyframe_interval;
        for l in self.lessons.values_mut() {
            let Some(p) = l.publisher.as_mut() else {
                continue;
            };
            for t in &mut p.tracks {
                for layer in &mut t.layers {
                    if layer.keyframes.handle_timeout(now, iv) {
                        self.totals.keyframe_requests_sent += 1;
                        self.out.push_back(Output::RequestKeyframe {
                            publisher: p.peer,
                            mid: t.mid,
                            rid: layer.rid,
                        });
                    }
                }
            }
        }
    }

    fn subscriber_mut(&mut self, peer: PeerId) -> Option<&mut Subscriber> {
        let name = self.peer_lesson.get(&peer)?;
        self.lessons
            .get_mut(name)?
            .subscribers
            .iter_mut()
            .find(|s| s.peer == peer)
    }

    /// Pick every video slot's target layer from what arrives now and what each
    /// classroom's link carries, and ask for the keyframes that switches and joins
    /// need.
    fn choose_layers(&mut self, now: Instant) {
        let cfg = &self.cfg;
        for l in self.lessons.values_mut() {
            let plan = l
                .publisher
                .as_ref()
                .map(|p| LessonPlan::new(p, now, cfg))
                .unwrap_or_default();
            // One budget per school link: its classrooms share one bottleneck.
            let mut schools: HashMap<&str, (u64, u64)> = HashMap::new();
            for s in &l.subscribers {
                if let Some(e) = s.link.estimate {
                    let v = schools.entry(s.school.as_str()).or_default();
                    v.0 += e;
                    v.1 += 1;
                }
            }
            let share: HashMap<String, u64> = schools
                .into_iter()
                .map(|(k, (sum, n))| (k.to_string(), sum / n.max(1)))
                .collect();
            let mut requests: Vec<Source> = Vec::new();
            for s in &mut l.subscribers {
                let fair = share.get(&s.school).copied();
                adapt_subscriber(s, &plan, fair, now, cfg, &mut self.out, &mut self.totals);
                for slot in &mut s.slots {
                    let Some((ppeer, pmid)) = slot.bound else {
                        continue;
                    };
                    let Some(track) = plan.tracks.iter().find(|t| t.mid == pmid) else {
                        continue;
                    };
                    // With nothing arriving, keep the old target: it may resume.
                    if track.kind == Kind::Video && track.rids.is_empty() {
                        continue;
                    }
                    if !slot.wants_switch() || track.kind == Kind::Audio {
                        slot.waiting = None;
                        continue;
                    }
                    let src = Source {
                        peer: ppeer,
                        mid: pmid,
                        rid: slot.target,
                    };
                    let ask = match slot.waiting {
                        Some((waited, asked)) => {
                            waited != src
                                || now.saturating_duration_since(asked) >= cfg.keyframe_retry
                        }
                        None => true,
                    };
                    if ask {
                        slot.waiting = Some((src, now));
                        requests.push(src);
                    }
                }
            }
            for src in requests {
                request_keyframe(&mut self.out, &mut self.totals, cfg, l, src, now);
            }
        }
    }
}

fn request_keyframe(
    out: &mut VecDeque<Output>,
    totals: &mut Totals,
    cfg: &RelayConfig,
    l: &mut Lesson,
    src: Source,
    now: Instant,
) {
    let Some(p) = l.publisher.as_mut().filter(|p| p.peer == src.peer) else {
        return;
    };
    let Some(t) = p.tracks.iter_mut().find(|t| t.mid == src.mid) else {
        return;
    };
    if t.kind != Kind::Video {
        return;
    }
    let li = t.layer_index(src.rid);
    if t.layers[li].keyframes.request(now, cfg.keyframe_interval) {
        totals.keyframe_requests_sent += 1;
        out.push_back(Output::RequestKeyframe {
            publisher: src.peer,
            mid: src.mid,
            rid: src.rid,
        });
    }
}

/// Bind a classroom's slots to the teacher's tracks: the n-th audio slot to the n-th
/// audio track, the n-th video slot to the n-th video track (camera first, then screen).
fn bind_slots(slots: &mut [Slot], publisher: PeerId, tracks: &[Track]) {
    for kind in [Kind::Audio, Kind::Video] {
        let mut sources = tracks.iter().filter(|t| t.kind == kind);
        for slot in slots.iter_mut().filter(|s| s.spec.kind == kind) {
            slot.bound = sources.next().map(|t| (publisher, t.mid));
            slot.waiting = None;
        }
    }
}
