//! The core's public vocabulary: its configuration, what it is told ([`Input`]) and
//! what it asks of the edge ([`Output`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::adapt::AdaptConfig;
use crate::codec::Codec;
use crate::ids::{Mid, PeerId, Rid};
use crate::layers::LayerPref;

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
    /// Period of the link policy's clock (layer choice by link, stopped layers,
    /// keyframe retries), for lessons with a teacher and classrooms; an idle relay
    /// has no timer.
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

/// Who a watch session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Audience {
    /// A classroom: the teacher's tracks on its first m-lines of each kind, and the
    /// floor's voice on a second audio m-line when it has one.
    #[default]
    Classroom,
    /// The teacher's own hearing session: the floor's voice on its first audio
    /// m-line, nothing of the teacher's.
    Teacher,
}

/// A change to a lesson's floor (who may speak to everyone), asked for over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FloorChange {
    /// A classroom raises or lowers its hand; lowering it while holding the floor
    /// hands the floor back.
    Hand { school: String, raised: bool },
    /// The teacher gives the floor to a school, or takes it back (`None`).
    Give(Option<String>),
    /// Open floor: a raised hand gets the floor at once.
    Open(bool),
}

/// Who holds a lesson's floor, whether it is open, and whose hands are up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FloorState {
    pub holder: Option<String>,
    pub open: bool,
    /// Schools with a raised hand, in the order they raised it.
    pub hands: Vec<String>,
}

/// Why a floor change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FloorError {
    #[error("nobody is in lesson {0:?} (no teacher or classroom session)")]
    NoLesson(String),
    #[error("school {school:?} has no session in lesson {lesson:?}: it must watch or talk first")]
    NotInLesson { lesson: String, school: String },
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
        /// Who publishes (the token's session): the same owner may replace its own
        /// session (a reconnect), another one is refused while it is there (see
        /// [`crate::Relay::may_publish`]).
        owner: String,
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
        /// Where the edge's estimator towards it starts (a warm start from what the
        /// school sustained before), taken as its first estimate; `None` without
        /// adaptation.
        start_bps: Option<u64>,
        audience: Audience,
    },
    /// A classroom's talk-back session is up (its microphone): forwarded to the
    /// teacher and the other classrooms only while its school holds the floor.
    TalkerJoined {
        now: Instant,
        lesson: String,
        peer: PeerId,
        school: String,
        tracks: Vec<PublishedTrack>,
    },
    /// A session ended (DELETE, ICE timeout, error).
    PeerLeft { now: Instant, peer: PeerId },
    /// Media from a teacher or a talking classroom.
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
    /// Voice towards a classroom that negotiated RED: how many previous frames
    /// each packet carries again (1, or 2 on a lossy link).
    pub red_depth: u8,
    /// Video: the minimum playout delay to ask of the receiver (the
    /// playout-delay header extension), so that retransmissions arrive before
    /// the frame is due; `None`: no extension.
    pub playout_min: Option<Duration>,
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
    /// Close this session (a teacher replaced by a reconnect). The core has let go
    /// of it already: no [`Input::PeerLeft`] is needed for it.
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
    /// A lesson's floor changed (a hand, a grant, open floor, a school that left).
    Floor {
        lesson: String,
        floor: FloorState,
    },
    /// Nothing more to do now; call `handle_input(Input::Timeout)` at this time
    /// (the same as [`crate::Relay::poll_timeout`]); `None`: nothing waits on time.
    Timeout(Option<Instant>),
}
