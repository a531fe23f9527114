//! str0m peers on a virtual clock: a teacher that publishes Opus and 3-layer VP8
//! simulcast at realistic rates, and classrooms that receive and record what
//! arrived and when.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpApi, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{
    Direction, KeyframeRequestKind, MediaKind, Mid, Rid, Simulcast, SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};

use crate::vp8::{epoch, TL_PATTERN, TL_SHARE};
pub use crate::vp8::{stamp, stamp_of, vp8_descriptor, vp8_payload, vp8_payload_tl, Vp8Descriptor};

/// The teacher's simulcast rids, lowest first.
pub const RIDS: [&str; 3] = ["q", "h", "f"];
/// Target bit rate of each layer's payload, as a browser sends them.
pub const LAYER_BPS: [u64; 3] = [150_000, 500_000, 1_500_000];
pub const FPS: u64 = 25;
const MAX_PAYLOAD: usize = 1100;
/// A keyframe is this many times a delta frame.
const KEYFRAME_FACTOR: usize = 3;
/// The teacher's screen (slides), as the teacher page sends it: two simulcast
/// layers at 5 frames/s, half and full resolution. The rates are what Chromium's
/// fake screen capture gave behind the calibration links.
pub const SCREEN_RIDS: [&str; 2] = ["q", "f"];
pub const SCREEN_BPS: [u64; 2] = [80_000, 150_000];
pub const SCREEN_FPS: u64 = 5;
/// Stream indexes in the teacher's counters: camera layers, screen layers, voice.
const SCREEN: usize = 3;
const AUDIO: usize = 5;
/// The last payload byte of a screen packet (camera packets carry their layer).
pub const SCREEN_LAYER: u8 = 9;

/// One str0m session with its address and outbox.
pub struct Peer {
    pub rtc: Rtc,
    pub addr: SocketAddr,
    pub next: Instant,
    pub outbox: Vec<(SocketAddr, Vec<u8>)>,
    pub events: Vec<Event>,
}

impl Peer {
    pub fn new(now: Instant, addr: SocketAddr) -> Peer {
        Peer::build(now, addr, false)
    }

    /// A peer that offers RED for Opus, as browsers do.
    pub fn with_red(now: Instant, addr: SocketAddr) -> Peer {
        Peer::build(now, addr, true)
    }

    fn build(now: Instant, addr: SocketAddr, red: bool) -> Peer {
        epoch();
        // Chromium offers the playout-delay extension; so does this peer, and its
        // receiver model honours it (`metrics::rendered`).
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .enable_opus(true, red)
            .set_extension(6, str0m::rtp::Extension::PlayoutDelay)
            .build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("candidate"));
        Peer {
            rtc,
            addr,
            next: now,
            outbox: vec![],
            events: vec![],
        }
    }

    /// Make an offer with `setup`; returns it and the pending state.
    pub fn offer(&mut self, setup: impl FnOnce(&mut SdpApi)) -> (String, SdpPendingOffer) {
        let mut api = self.rtc.sdp_api();
        setup(&mut api);
        let (offer, pending) = api.apply().expect("offer");
        (offer.to_sdp_string(), pending)
    }

    pub fn accept(&mut self, pending: SdpPendingOffer, answer: &str) {
        let a = SdpAnswer::from_sdp_string(answer).expect("answer parses");
        self.rtc
            .sdp_api()
            .accept_answer(pending, a)
            .expect("answer accepted");
    }

    /// Drain str0m until it asks for a timeout. In RTP mode it holds one received
    /// packet until polled, so this follows every input.
    pub fn drain(&mut self) {
        loop {
            match self.rtc.poll_output().expect("poll") {
                Output::Transmit(t) => self.outbox.push((t.destination, t.contents.into())),
                Output::Event(e) => self.events.push(e),
                Output::Timeout(t) => {
                    self.next = t;
                    return;
                }
            }
        }
    }

    pub fn receive(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        if let Ok(r) = Receive::new(Protocol::Udp, from, self.addr, data) {
            if self.rtc.handle_input(Input::Receive(now, r)).is_ok() {
                self.drain();
            }
        }
    }

    pub fn tick(&mut self, now: Instant) {
        if now >= self.next && self.rtc.handle_input(Input::Timeout(now)).is_ok() {
            self.drain();
        }
    }
}

/// The online teacher: Opus every 20 ms and three VP8 layers at 25 fps. A
/// keyframe request makes the next frame of that layer a keyframe.
pub struct Teacher {
    pub peer: Peer,
    pub amid: Mid,
    pub vmid: Mid,
    /// The screen track, when the teacher shares slides.
    pub smid: Option<Mid>,
    pts: Option<(str0m::media::Pt, str0m::media::Pt)>,
    pub connected: bool,
    /// Per stream (camera layers, screen layers, then audio): next sequence number and
    /// timestamp; per video stream its PictureID and whether a keyframe is due.
    seq: [u64; 6],
    ts: [u32; 6],
    pid: [u16; 5],
    /// Per video stream: TL0PICIDX, and frames since the last keyframe (the
    /// position in the temporal-layer pattern).
    tl0: [u8; 5],
    since_key: [u32; 5],
    key_wanted: [bool; 5],
    next_audio: Instant,
    next_frame: Instant,
    next_screen: Instant,
    /// Audio packets sent (their extended sequence numbers start at `seq[AUDIO]`).
    pub audio_sent: u64,
    pub keyframes_sent: u64,
    /// Simulcast layers sent, lowest first: a browser drops its top layers when its
    /// own uplink cannot carry them.
    pub layers: usize,
}

impl Teacher {
    /// A teacher with a camera and, if `screen`, slides as a second video track.
    pub fn new(now: Instant, addr: SocketAddr, screen: bool) -> (Teacher, String, SdpPendingOffer) {
        Teacher::with_rid_order(now, addr, screen, &RIDS)
    }

    /// The same, its offer listing the simulcast rids in `order` (Janus takes the
    /// first as the highest).
    pub fn with_rid_order(
        now: Instant,
        addr: SocketAddr,
        screen: bool,
        order: &[&str],
    ) -> (Teacher, String, SdpPendingOffer) {
        let mut peer = Peer::new(now, addr);
        let (mut amid, mut vmid, mut smid) = (Mid::from("a"), Mid::from("v"), None);
        let (offer, pending) = peer.offer(|api| {
            amid = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
            let mut sim = Simulcast::new();
            for &r in order {
                sim.add_send_layer(SimulcastLayer::new(r));
            }
            vmid = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, Some(sim));
            if screen {
                // Listed in the same order as the camera's rids.
                let mut sim = Simulcast::new();
                let mut rids = SCREEN_RIDS;
                if order.first() == Some(&"f") {
                    rids.reverse();
                }
                for r in rids {
                    sim.add_send_layer(SimulcastLayer::new(r));
                }
                smid = Some(api.add_media(
                    MediaKind::Video,
                    Direction::SendOnly,
                    None,
                    None,
                    Some(sim),
                ));
            }
        });
        let t = Teacher {
            peer,
            amid,
            vmid,
            smid,
            pts: None,
            connected: false,
            seq: [1000, 20_000, 40_000, 60_000, 80_000, 100],
            ts: [0; 6],
            pid: [1, 1000, 2000, 3000, 4000],
            tl0: [0; 5],
            since_key: [0; 5],
            key_wanted: [true; 5],
            next_audio: now,
            next_frame: now,
            next_screen: now,
            audio_sent: 0,
            keyframes_sent: 0,
            layers: RIDS.len(),
        };
        (t, offer, pending)
    }

    /// When the teacher next has media to send.
    pub fn next_media(&self) -> Option<Instant> {
        self.pts.map(|_| {
            let t = self.next_audio.min(self.next_frame);
            if self.smid.is_some() {
                t.min(self.next_screen)
            } else {
                t
            }
        })
    }

    /// Handle events and send what is due at `now`.
    pub fn step(&mut self, now: Instant) {
        for e in std::mem::take(&mut self.peer.events) {
            match e {
                Event::Connected => self.connected = true,
                Event::KeyframeRequest(r) if Some(r.mid) == self.smid => {
                    for (k, x) in SCREEN_RIDS.iter().enumerate() {
                        if r.rid.is_none_or(|rid| rid == Rid::from(*x)) {
                            self.key_wanted[SCREEN + k] = true;
                        }
                    }
                }
                Event::KeyframeRequest(r) => {
                    if let Some(i) = RIDS.iter().position(|x| r.rid == Some(Rid::from(*x))) {
                        self.key_wanted[i] = true;
                    }
                }
                _ => {}
            }
        }
        if self.connected && self.pts.is_none() {
            let params = self.peer.rtc.codec_config().params().to_vec();
            let pt = |c| params.iter().find(|p| p.spec().codec == c).map(|p| p.pt());
            if let (Some(a), Some(v)) = (pt(Codec::Opus), pt(Codec::Vp8)) {
                self.pts = Some((a, v));
                self.next_audio = now;
                self.next_frame = now;
                self.next_screen = now;
            }
        }
        let Some((opus, vp8)) = self.pts else { return };
        let mut wrote = false;
        while self.next_audio <= now {
            let mut api = self.peer.rtc.direct_api();
            if let Some(tx) = api.stream_tx_by_mid(self.amid, None) {
                let voice = crate::voice::packets();
                let payload = voice[(self.audio_sent % voice.len() as u64) as usize].clone();
                let w = RtpWrite::new(opus, self.seq[AUDIO].into(), self.ts[AUDIO], now, payload);
                tx.write_rtp(w);
            }
            self.seq[AUDIO] += 1;
            self.ts[AUDIO] = self.ts[AUDIO].wrapping_add(960);
            self.audio_sent += 1;
            self.next_audio += Duration::from_millis(20);
            wrote = true;
        }
        while self.next_frame <= now {
            for (i, rid) in RIDS.iter().enumerate().take(self.layers) {
                let rid = Some(Rid::from(*rid));
                self.send_frame(now, vp8, self.vmid, rid, i, LAYER_BPS[i] / FPS, i as u8);
            }
            self.next_frame += Duration::from_millis(1000 / FPS);
            wrote = true;
        }
        while let Some(smid) = self.smid.filter(|_| self.next_screen <= now) {
            for (k, rid) in SCREEN_RIDS.iter().enumerate() {
                let rid = Some(Rid::from(*rid));
                let bits = SCREEN_BPS[k] / SCREEN_FPS;
                self.send_frame(now, vp8, smid, rid, SCREEN + k, bits, SCREEN_LAYER);
            }
            self.next_screen += Duration::from_millis(1000 / SCREEN_FPS);
            wrote = true;
        }
        if wrote {
            // str0m releases written packets when time moves.
            let _ = self.peer.rtc.handle_input(Input::Timeout(now));
            self.peer.drain();
        }
    }
}

impl Teacher {
    /// One VP8 frame of `bits` (three times that for a keyframe) on stream `i`.
    #[allow(clippy::too_many_arguments)]
    fn send_frame(
        &mut self,
        now: Instant,
        vp8: str0m::media::Pt,
        mid: Mid,
        rid: Option<Rid>,
        i: usize,
        bits: u64,
        tag: u8,
    ) {
        let fps = if i >= SCREEN { SCREEN_FPS } else { FPS };
        self.pid[i] = (self.pid[i] + 1) % 0x8000;
        self.ts[i] = self.ts[i].wrapping_add(90_000 / fps as u32);
        let key = std::mem::take(&mut self.key_wanted[i]);
        self.keyframes_sent += u64::from(key);
        if key {
            self.since_key[i] = 0;
        }
        // Camera layers carry three temporal layers, as Chromium's VP8 simulcast
        // does (L1T3: TL0 TL2 TL1 TL2 ...); a lost packet in a TL2 frame costs that
        // frame only. TL0 frames take more of the rate, TL2 less (mean 1). Slides
        // are one chain.
        let tid = if i >= SCREEN {
            0
        } else {
            TL_PATTERN[self.since_key[i] as usize % TL_PATTERN.len()]
        };
        self.since_key[i] += 1;
        if tid == 0 {
            self.tl0[i] = self.tl0[i].wrapping_add(1);
        }
        let share = if i >= SCREEN {
            4
        } else {
            TL_SHARE[tid as usize]
        };
        let frame = if key {
            (bits / 8) as usize * KEYFRAME_FACTOR
        } else {
            (bits / 8) as usize * share / 4
        };
        let n = frame.div_ceil(MAX_PAYLOAD);
        for k in 0..n {
            let mut payload = vp8_payload_tl(
                self.pid[i],
                Some((self.tl0[i], tid)),
                k == 0,
                key,
                frame / n,
                tag,
            );
            stamp(&mut payload, now);
            let mut api = self.peer.rtc.direct_api();
            if let Some(tx) = api.stream_tx_by_mid(mid, rid) {
                let w = RtpWrite::new(vp8, self.seq[i].into(), self.ts[i], now, payload)
                    .marker(k == n - 1)
                    .nackable(true);
                tx.write_rtp(w);
            }
            self.seq[i] += 1;
        }
    }
}

/// One video packet as a classroom got it.
#[derive(Debug, Clone, Copy)]
pub struct VideoRx {
    pub at: Instant,
    pub seq: u64,
    pub ts: u32,
    pub marker: bool,
    pub first: bool,
    pub key: bool,
    pub layer: u8,
    /// VP8 PictureID, and (TL0PICIDX, TID) when the stream has temporal layers.
    pub pid: u16,
    pub temporal: Option<(u8, u8)>,
    /// It filled a hole: a retransmission (or a packet reordered past others).
    pub repaired: bool,
    /// The minimum playout delay the sender asked for on it (the playout-delay
    /// header extension).
    pub min_delay: Option<Duration>,
    /// When the teacher sent it (from its payload stamp).
    pub sent: Option<Instant>,
}

/// A classroom: receives the lesson and records it.
pub struct Classroom {
    pub peer: Peer,
    pub school: usize,
    pub amid: Mid,
    /// The m-line that carries the teacher's screen, when the classroom asked for it.
    pub smid: Option<Mid>,
    pub connected_at: Option<Instant>,
    pub audio: BTreeSet<u64>,
    pub audio_at: Vec<Instant>,
    /// Every audio packet as it arrived, with its Opus payload.
    pub audio_rx: Vec<crate::voice::AudioRx>,
    pub video: Vec<VideoRx>,
    pub screen: Vec<VideoRx>,
    decoder: DecoderState,
    screen_decoder: DecoderState,
    /// Keyframe requests (PLI) this classroom sent.
    pub plis: u64,
    /// The negotiated RED payload type for voice, once looked up.
    red_pt: Option<Option<u8>>,
    /// Voice packets that never came but were rebuilt from the next packet's RED.
    pub red_recovered: u64,
}

/// What a browser's video receiver does about loss: str0m asks for the missing
/// packets again (NACK, up to five times a round trip apart); a packet still
/// missing after [`KEYFRAME_WAIT`] breaks the picture until a keyframe, and it asks
/// for one (PLI), again every [`PLI_EVERY`] until one arrives. (Chromium waits as
/// long for a decodable frame before it asks; it does not ask on a hole alone.)
#[derive(Debug, Default)]
struct DecoderState {
    highest: Option<u64>,
    /// Missing sequence numbers and since when.
    missing: std::collections::BTreeMap<u64, Instant>,
    need_key: bool,
    last_pli: Option<Instant>,
}

/// How long a hole may wait for retransmissions before the picture is broken.
pub const KEYFRAME_WAIT: Duration = Duration::from_secs(3);
const PLI_EVERY: Duration = Duration::from_millis(500);

impl DecoderState {
    fn on_packet(&mut self, now: Instant, seq: u64, key: bool) {
        match self.highest {
            Some(h) if seq > h => {
                // Bound the bookkeeping on a long outage: a huge hole needs a keyframe.
                if seq - h > 500 {
                    self.need_key = true;
                    self.missing.clear();
                } else {
                    for m in h + 1..seq {
                        self.missing.insert(m, now);
                    }
                }
                self.highest = Some(seq);
            }
            Some(_) => {
                self.missing.remove(&seq);
            }
            None => self.highest = Some(seq),
        }
        if key {
            self.need_key = false;
            self.missing.retain(|&m, _| m > seq);
        }
    }

    /// Whether to send a keyframe request now.
    fn wants_pli(&mut self, now: Instant) -> bool {
        if self
            .missing
            .values()
            .next()
            .is_some_and(|&t| now.saturating_duration_since(t) > KEYFRAME_WAIT)
        {
            self.need_key = true;
            self.missing.clear();
        }
        let due = self
            .last_pli
            .is_none_or(|t| now.saturating_duration_since(t) >= PLI_EVERY);
        if self.need_key && due {
            self.last_pli = Some(now);
            return true;
        }
        false
    }
}

impl Classroom {
    /// A classroom watching the camera and, if `screen`, the slides.
    pub fn new(
        now: Instant,
        addr: SocketAddr,
        school: usize,
        screen: bool,
    ) -> (Classroom, String, SdpPendingOffer) {
        let mut peer = Peer::with_red(now, addr);
        let (mut amid, mut smid) = (Mid::from("a"), None);
        let (offer, pending) = peer.offer(|api| {
            amid = api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
            api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
            if screen {
                smid = Some(api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None));
            }
        });
        (
            Classroom::with_peer(peer, school, amid, smid),
            offer,
            pending,
        )
    }

    /// A classroom that answers a server's offer (Janus offers to its
    /// subscribers): the audio m-line, and the second video one as the screen.
    pub fn answering(
        now: Instant,
        addr: SocketAddr,
        school: usize,
        offer: &str,
    ) -> Result<(Classroom, String), String> {
        let mut peer = Peer::new(now, addr);
        let parsed = SdpOffer::from_sdp_string(offer).map_err(|e| format!("offer: {e}"))?;
        let answer = peer
            .rtc
            .sdp_api()
            .accept_offer(parsed)
            .map_err(|e| format!("offer not acceptable: {e}"))?;
        let (mut kind, mut audio, mut video) = ("", None, vec![]);
        for line in offer.lines() {
            if let Some(m) = line.strip_prefix("m=") {
                kind = if m.starts_with("audio") {
                    "audio"
                } else if m.starts_with("video") {
                    "video"
                } else {
                    ""
                };
            } else if let Some(mid) = line.trim_end().strip_prefix("a=mid:") {
                match kind {
                    "audio" if audio.is_none() => audio = Some(Mid::from(mid)),
                    "video" => video.push(Mid::from(mid)),
                    _ => {}
                }
            }
        }
        let amid = audio.ok_or("the offer has no audio")?;
        let mut c = Classroom::with_peer(peer, school, amid, video.get(1).copied());
        c.peer.drain();
        Ok((c, answer.to_sdp_string()))
    }

    /// A voice packet: plain Opus, or RED whose redundant block rebuilds the
    /// packet before it if that one never came.
    fn on_audio(&mut self, now: Instant, seq: u64, pt: u8, payload: &[u8]) {
        let red_pt = *self.red_pt.get_or_insert_with(|| {
            self.peer
                .rtc
                .codec_config()
                .params()
                .iter()
                .find(|p| p.spec().codec == Codec::Opus)
                .and_then(|p| p.red())
                .map(|pt| *pt)
        });
        let put = |c: &mut Classroom, seq: u64, data: &[u8]| {
            if c.audio.insert(seq) {
                c.audio_at.push(now);
                c.audio_rx.push((seq, now, data.to_vec()));
            }
        };
        if red_pt != Some(pt) {
            put(self, seq, payload);
            return;
        }
        let Some(blocks) = relay_core::red::parse(payload) else {
            return;
        };
        if let Some(primary) = blocks.last() {
            put(self, seq, primary.data);
        }
        for b in &blocks[..blocks.len().saturating_sub(1)] {
            // Frames are 20 ms (960 at 48 kHz) apart, one sequence number each.
            if b.ts_offset % 960 == 0 && b.ts_offset > 0 && seq >= (b.ts_offset / 960) as u64 {
                let back = seq - (b.ts_offset / 960) as u64;
                if !self.audio.contains(&back) {
                    self.red_recovered += 1;
                }
                put(self, back, b.data);
            }
        }
    }

    fn with_peer(peer: Peer, school: usize, amid: Mid, smid: Option<Mid>) -> Classroom {
        Classroom {
            peer,
            school,
            amid,
            smid,
            connected_at: None,
            audio: BTreeSet::new(),
            audio_at: vec![],
            audio_rx: vec![],
            video: vec![],
            screen: vec![],
            decoder: DecoderState::default(),
            screen_decoder: DecoderState::default(),
            plis: 0,
            red_pt: None,
            red_recovered: 0,
        }
    }

    pub fn step(&mut self, now: Instant) {
        for e in std::mem::take(&mut self.peer.events) {
            match e {
                Event::Connected => self.connected_at = Some(now),
                Event::RtpPacket(p) => {
                    let mid = self
                        .peer
                        .rtc
                        .direct_api()
                        .stream_rx(&p.header.ssrc)
                        .map(|s| s.mid());
                    if mid == Some(self.amid) {
                        self.on_audio(now, *p.seq_no, *p.header.payload_type, &p.payload);
                    } else if let Some(d) = vp8_descriptor(&p.payload) {
                        let b = &p.payload;
                        let mut rx = VideoRx {
                            at: now,
                            seq: *p.seq_no,
                            ts: p.header.timestamp,
                            marker: p.header.marker,
                            first: d.first,
                            key: d.key,
                            layer: *b.last().unwrap(),
                            pid: d.pid,
                            temporal: d.temporal,
                            repaired: false,
                            min_delay: p
                                .header
                                .ext_vals
                                .play_delay_min
                                .map(|t| Duration::from_secs_f64(t.as_seconds())),
                            sent: stamp_of(b),
                        };
                        let screen = mid.is_some() && mid == self.smid;
                        let dec = if screen {
                            &mut self.screen_decoder
                        } else {
                            &mut self.decoder
                        };
                        rx.repaired = dec.missing.contains_key(&rx.seq);
                        dec.on_packet(now, rx.seq, rx.key);
                        if dec.wants_pli(now) {
                            if let Some(s) = self.peer.rtc.direct_api().stream_rx(&p.header.ssrc) {
                                s.request_keyframe(KeyframeRequestKind::Pli);
                                self.plis += 1;
                            }
                        }
                        if screen {
                            self.screen.push(rx);
                        } else {
                            self.video.push(rx);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}
