//! The relay state machine: lessons, their teacher (publisher) and classrooms
//! (subscribers), and what to forward where. The core is the one owner of who is in
//! which lesson and who teaches it.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::codec::{self, Codec};
use crate::ids::{Mid, PeerId, Rid};
use crate::layers::{Layer, LayerPref, RateMeter};
use crate::rewrite::{Rewriter, Rewritten, SourcePacket};
use crate::warm::WarmTable;

mod choose;
mod io;
mod link;
mod stats;
mod talk;
#[cfg(test)]
mod timing_tests;

use choose::{bind_slots, choose_layers, deferred_keyframes, request_keyframe, Effects};
pub use io::{
    Audience, FloorChange, FloorError, FloorState, Forward, Input, Kind, Output, PublishedTrack,
    RelayConfig, RtpIn, SlotSpec,
};
use link::LinkState;
pub use stats::{LessonStats, SubscriberStats, TalkerStats, Totals};
use talk::{bind_pictures, picture_lost, talk_packet, Talker};

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
    /// Who publishes (see [`Input::PublisherJoined`]).
    owner: String,
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
    /// Fed from the classrooms (the floor's voice), never bound to the teacher.
    class_feed: bool,
}

impl Slot {
    /// Numbering for packet `sp` of `src` on this slot's one outgoing stream:
    /// continued while `src` is what flows, switched to when `may_switch`, `None`
    /// otherwise (or for a packet from before the switch). True when it switched.
    fn follow(
        &mut self,
        now: Instant,
        src: Source,
        sp: &SourcePacket,
        clock_rate: u32,
        may_switch: bool,
    ) -> Option<(Rewritten, bool)> {
        let rw = self
            .rewriter
            .get_or_insert_with(|| Rewriter::new(clock_rate, 1));
        if self.current == Some(src) {
            rw.rewrite(now, sp).map(|w| (w, false))
        } else if may_switch {
            self.current = Some(src);
            Some((rw.switch_to(now, sp), true))
        } else {
            None
        }
    }

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
    audience: Audience,
    layer: LayerPref,
    slots: Vec<Slot>,
    sent: RateMeter,
    link: LinkState,
    joined: Instant,
    /// Keyframe requests (PLI/FIR) this classroom sent.
    picture_losses: u64,
    /// Where its estimator started (the warm start or the default).
    start_bps: Option<u64>,
}

#[derive(Debug, Default)]
struct Lesson {
    publisher: Option<Publisher>,
    subscribers: Vec<Subscriber>,
    /// Classrooms' talk-back sessions.
    talkers: Vec<Talker>,
    floor: FloorState,
}

/// The sans-IO relay. See the crate docs for the contract.
#[derive(Debug)]
pub struct Relay {
    cfg: RelayConfig,
    lessons: BTreeMap<String, Lesson>,
    peer_lesson: HashMap<PeerId, String>,
    fx: Effects,
    /// The link policy's next tick, while [`Relay::ticking`].
    next_tick: Instant,
    /// When the clock starts again, its first tick falls on `origin + k × tick`
    /// (each later one a `tick` after the one before was handled).
    origin: Instant,
    /// Some lesson has a teacher and classrooms: the link policy's clock runs.
    ticking: bool,
    warm: WarmTable,
    /// When the warm table next takes every classroom's current estimate.
    next_warm: Instant,
}

impl Relay {
    /// A relay whose clock starts at `now`.
    pub fn new(cfg: RelayConfig, now: Instant) -> Relay {
        let next_tick = now + cfg.tick;
        Relay {
            cfg,
            lessons: BTreeMap::new(),
            peer_lesson: HashMap::new(),
            fx: Effects::default(),
            next_tick,
            origin: now,
            ticking: false,
            warm: WarmTable::default(),
            next_warm: now,
        }
    }

    /// What school links sustained so far (for warm starts; persist it).
    pub fn warm(&self) -> &WarmTable {
        &self.warm
    }

    pub fn warm_mut(&mut self) -> &mut WarmTable {
        &mut self.warm
    }

    /// Whether `owner` may publish to `lesson` now: nobody publishes there, or
    /// `owner` itself does (a reconnect replaces its own session).
    pub fn may_publish(&self, lesson: &str, owner: &str) -> bool {
        self.lessons
            .get(lesson)
            .and_then(|l| l.publisher.as_ref())
            .is_none_or(|p| p.owner == owner)
    }

    /// Feed one input. Then drain [`Relay::poll_output`].
    pub fn handle_input(&mut self, input: Input) {
        match input {
            Input::PublisherJoined {
                now,
                lesson,
                peer,
                owner,
                tracks,
            } => self.publisher_joined(now, lesson, peer, owner, tracks),
            Input::SubscriberJoined {
                now,
                lesson,
                peer,
                school,
                slots,
                layer,
                start_bps,
                audience,
            } => {
                let joined = Joining {
                    school,
                    slots,
                    layer,
                    start_bps,
                    audience,
                };
                self.subscriber_joined(now, lesson, peer, joined)
            }
            Input::TalkerJoined {
                now,
                lesson,
                peer,
                school,
                tracks,
            } => self.talker_joined(now, lesson, peer, school, tracks),
            Input::PeerLeft { now, peer } => self.peer_left(now, peer),
            Input::Packet { now, peer, rtp } => self.packet(now, peer, rtp),
            Input::KeyframeRequest { now, peer, mid } => self.subscriber_pli(now, peer, mid),
            Input::SetLayer { now, peer, layer } => self.set_layer(now, peer, layer),
            Input::LinkEstimate { now, peer, bps } => self.link_estimate(now, peer, bps),
            Input::LinkQuality {
                now,
                peer,
                loss,
                rtt,
            } => {
                let ac = &self.cfg.adapt;
                if let Some((l, i)) = find_subscriber(&self.peer_lesson, &mut self.lessons, peer) {
                    let s = &mut l.subscribers[i];
                    s.link.rtt = rtt.or(s.link.rtt);
                    s.link.note_loss(loss, now, ac);
                    s.link.loss = loss;
                    s.link.last_loss = loss.or(s.link.last_loss);
                }
            }
            Input::Timeout(now) => self.timeout(now),
        }
    }

    /// Next thing to do. Ends with `Output::Timeout` when nothing else is queued.
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.fx.out.pop_front() {
            return o;
        }
        Output::Timeout(self.poll_timeout())
    }

    /// When the core must next be given `Input::Timeout`: the link policy's tick
    /// while a lesson has a teacher and classrooms, or a deferred keyframe request;
    /// `None` when nothing waits on time.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let tick = self.ticking.then_some(self.next_tick);
        match (tick, self.fx.keyframe_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Counters since start.
    pub fn totals(&self) -> Totals {
        self.fx.totals
    }

    /// Number of lessons with anyone in them.
    pub fn lesson_count(&self) -> usize {
        self.lessons.len()
    }

    /// Membership changed: start or stop the link policy's clock.
    fn membership_changed(&mut self, now: Instant) {
        let ticking = self
            .lessons
            .values()
            .any(|l| l.publisher.is_some() && !l.subscribers.is_empty());
        if ticking && !self.ticking && self.next_tick <= now {
            // Back on the same beat as before it stopped: when the policy runs
            // relative to the teacher's frames should not depend on when a lesson
            // began.
            let tick = self.cfg.tick.as_nanos().max(1);
            let k = now.saturating_duration_since(self.origin).as_nanos() / tick + 1;
            self.next_tick = self.origin + Duration::from_nanos((k * tick) as u64);
        }
        self.ticking = ticking;
    }

    fn publisher_joined(
        &mut self,
        now: Instant,
        lesson: String,
        peer: PeerId,
        owner: String,
        tracks: Vec<PublishedTrack>,
    ) {
        self.peer_lesson.insert(peer, lesson.clone());
        let l = self.lessons.entry(lesson).or_default();
        let publisher = Publisher {
            peer,
            owner,
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
        // The teacher reconnected: the old session goes, and the core forgets it
        // here and now (the edge closes it without telling back).
        if let Some(old) = l.publisher.replace(publisher) {
            self.peer_lesson.remove(&old.peer);
            self.fx.out.push_back(Output::Close(old.peer));
        }
        let tracks = l.publisher.as_ref().map(|p| &p.tracks[..]).unwrap_or(&[]);
        for s in &mut l.subscribers {
            bind_slots(&mut s.slots, peer, tracks);
        }
        choose_layers(&self.cfg, l, now, &mut self.fx);
        self.membership_changed(now);
    }

    fn subscriber_joined(&mut self, now: Instant, lesson: String, peer: PeerId, j: Joining) {
        self.peer_lesson.insert(peer, lesson.clone());
        let l = self.lessons.entry(lesson).or_default();
        let mut audio_n = 0;
        let mut slots: Vec<Slot> = j
            .slots
            .into_iter()
            .map(|spec| {
                // A classroom hears the floor on its second audio m-line; the
                // teacher's hearing session on every m-line.
                let class_feed = match j.audience {
                    Audience::Teacher => true,
                    Audience::Classroom => {
                        spec.kind == Kind::Audio && {
                            audio_n += 1;
                            audio_n == 2
                        }
                    }
                };
                Slot {
                    spec,
                    bound: None,
                    target: None,
                    current: None,
                    rewriter: None,
                    waiting: None,
                    switches: 0,
                    paused: false,
                    class_feed,
                }
            })
            .collect();
        if let (Some(p), Audience::Classroom) = (&l.publisher, j.audience) {
            bind_slots(&mut slots, p.peer, &p.tracks);
        }
        l.subscribers.push(Subscriber {
            peer,
            school: j.school,
            audience: j.audience,
            layer: j.layer.unwrap_or(self.cfg.default_layer),
            slots,
            sent: RateMeter::default(),
            link: LinkState::default(),
            joined: now,
            picture_losses: 0,
            start_bps: j.start_bps,
        });
        // The classroom starts from its preferred layers; the warm start is then its
        // first estimate, which steps them down with the usual margin where the
        // link will not carry them (starting from nothing, the estimate would have
        // to clear the step-up hold for every layer).
        bind_pictures(l);
        choose_layers(&self.cfg, l, now, &mut self.fx);
        if let (Some(bps), Some(s)) = (j.start_bps, l.subscribers.last_mut()) {
            s.link.estimate = Some(bps);
            choose_layers(&self.cfg, l, now, &mut self.fx);
        }
        self.membership_changed(now);
    }

    fn link_estimate(&mut self, now: Instant, peer: PeerId, bps: u64) {
        let Some((l, i)) = find_subscriber(&self.peer_lesson, &mut self.lessons, peer) else {
            return;
        };
        let s = &mut l.subscribers[i];
        let first = s.link.estimate.replace(bps).is_none();
        // The first estimate decides the starting layers before any video is
        // forwarded by preference alone.
        if first {
            choose_layers(&self.cfg, l, now, &mut self.fx);
        }
    }

    fn peer_left(&mut self, now: Instant, peer: PeerId) {
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
        let school = l
            .subscribers
            .iter()
            .find(|s| s.peer == peer && s.audience == Audience::Classroom)
            .map(|s| s.school.clone())
            .or_else(|| {
                l.talkers
                    .iter()
                    .find(|t| t.peer == peer)
                    .map(|t| t.school.clone())
            });
        l.subscribers.retain(|s| s.peer != peer);
        l.talkers.retain(|t| t.peer != peer);
        bind_pictures(l);
        if l.publisher.is_none() && l.subscribers.is_empty() && l.talkers.is_empty() {
            self.lessons.remove(&name);
        } else if let Some(school) = school {
            self.school_may_have_left(now, &name, &school);
        }
        self.membership_changed(now);
    }

    fn packet(&mut self, now: Instant, peer: PeerId, rtp: RtpIn) {
        self.fx.totals.packets_in += 1;
        self.fx.totals.bytes_in += rtp.payload.len() as u64;
        let Some(name) = self.peer_lesson.get(&peer) else {
            return;
        };
        let Some(l) = self.lessons.get_mut(name) else {
            return;
        };
        let Some(p) = l.publisher.as_mut().filter(|p| p.peer == peer) else {
            talk_packet(l, now, peer, rtp, &self.cfg, &mut self.fx);
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
                // Audio follows any packet of its bound track; video only the target
                // layer, from a keyframe (the old layer keeps flowing until then).
                let is_target = !is_video || slot.target == src.rid;
                let may_switch = is_target && (!is_video || info.keyframe_start);
                let had = slot.current.is_some();
                let clock = rtp.codec.clock_rate();
                let Some((w, switched)) = slot.follow(now, src, &sp, clock, may_switch) else {
                    continue;
                };
                if switched {
                    slot.waiting = None;
                    if had {
                        slot.switches += 1;
                        self.fx.totals.layer_switches += 1;
                    }
                }
                let playout = if is_video {
                    s.link.playout_min(now)
                } else {
                    None
                };
                let to = (s.peer, slot.spec.mid, s.link.red_depth(now), playout);
                self.fx.forward(now, &mut s.sent, to, peer, &rtp, w);
            }
        }
        // A layer that starts (or resumes) may be what a classroom waits for.
        if new_layer && is_video {
            choose_layers(&self.cfg, l, now, &mut self.fx);
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
        if sub.audience == Audience::Teacher {
            picture_lost(l, (peer, mid), now, &self.cfg, &mut self.fx);
            return;
        }
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
            request_keyframe(&mut self.fx, &self.cfg, l, src, now);
        }
    }

    fn set_layer(&mut self, now: Instant, peer: PeerId, layer: LayerPref) {
        let Some((l, i)) = find_subscriber(&self.peer_lesson, &mut self.lessons, peer) else {
            return;
        };
        l.subscribers[i].layer = layer;
        choose_layers(&self.cfg, l, now, &mut self.fx);
    }

    fn timeout(&mut self, now: Instant) {
        if self.ticking && now >= self.next_tick {
            self.next_tick = now + self.cfg.tick;
            for l in self.lessons.values_mut() {
                choose_layers(&self.cfg, l, now, &mut self.fx);
            }
            if now >= self.next_warm {
                self.next_warm = now + crate::warm::OBSERVE_EVERY;
                self.observe_links(now);
            }
        }
        if self.fx.keyframe_due.is_some_and(|t| t <= now) {
            self.fx.keyframe_due = None;
            for l in self.lessons.values_mut() {
                deferred_keyframes(&self.cfg, l, now, &mut self.fx);
            }
        }
    }

    /// The warm table takes every classroom's current estimate, once a period, so
    /// a steady link (whose estimate stops changing) is remembered as well as a
    /// changing one. Only while the teacher publishes: a classroom waiting in a
    /// lesson with no teacher gets only RTCP, and str0m's estimate then sinks
    /// towards 40 kbit/s, which says nothing of its link.
    fn observe_links(&mut self, now: Instant) {
        for l in self.lessons.values().filter(|l| l.publisher.is_some()) {
            for s in l
                .subscribers
                .iter()
                .filter(|s| s.audience == Audience::Classroom)
                .filter(|s| now.saturating_duration_since(s.joined) >= crate::warm::RAMP)
            {
                if let Some(bps) = s.link.estimate {
                    self.warm.observe(&s.school, bps);
                }
            }
        }
    }
}

/// A classroom's lesson and its index there (a free function, so that the relay's
/// other fields stay usable beside the borrow).
fn find_subscriber<'a>(
    peer_lesson: &HashMap<PeerId, String>,
    lessons: &'a mut BTreeMap<String, Lesson>,
    peer: PeerId,
) -> Option<(&'a mut Lesson, usize)> {
    let l = lessons.get_mut(peer_lesson.get(&peer)?)?;
    let i = l.subscribers.iter().position(|s| s.peer == peer)?;
    Some((l, i))
}

/// A classroom as it joins.
struct Joining {
    school: String,
    slots: Vec<SlotSpec>,
    layer: Option<LayerPref>,
    start_bps: Option<u64>,
    audience: Audience,
}
