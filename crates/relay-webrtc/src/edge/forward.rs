//! Forwarding: a core [`relay_core::Forward`] becomes an RTP write on the
//! classroom's session, and a teacher's str0m packet becomes a core packet.
//!
//! Work is done once where it can be: a classroom's [`Route`] for a teacher stream
//! (payload types, RED, send stream) when its first packet goes out; the VP8
//! descriptor and the RED payload once per teacher packet, shared by every copy
//! ([`Fanout`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use relay_core::{Codec, Mid, PeerId, RtpIn};
use str0m::format::Codec as StrCodec;
use str0m::media::{MediaTime, Mid as StrMid, Pt};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, Vp8Descriptor};

use super::{Edge, Peer};

/// How one teacher stream (publisher, its payload type) reaches one m-line of a
/// classroom.
pub(super) struct Route {
    from: PeerId,
    src_pt: u8,
    mid: Mid,
    str_mid: StrMid,
    /// Our payload type for the codec; `None`: the classroom cannot take it.
    pt: Option<Pt>,
    /// Our RED payload type, when voice goes out with redundancy.
    red: Option<Pt>,
    /// The last voice frames sent on this route (timestamp, payload), oldest first,
    /// which the next RED packets carry again.
    red_prev: VecDeque<(u32, Arc<[u8]>)>,
}

/// RED carries at most this many previous frames.
const RED_MAX_DEPTH: usize = 2;

/// What the copies of one teacher packet share, kept while they are written.
#[derive(Default)]
pub(super) struct Fanout {
    /// The VP8 descriptor of the payload, parsed once.
    vp8: Option<(Arc<[u8]>, Option<Vp8Descriptor>)>,
    /// The last RED payload built: (primary, previous frame, offset, pt) -> bytes.
    red: Option<RedBuilt>,
}

struct RedBuilt {
    primary: Arc<[u8]>,
    /// The previous frames carried: (offset, payload), oldest first.
    prev: Vec<(u32, Arc<[u8]>)>,
    pt: u8,
    wrapped: Arc<[u8]>,
}

impl Fanout {
    fn vp8(&mut self, payload: &Arc<[u8]>) -> Option<Vp8Descriptor> {
        match &self.vp8 {
            Some((p, d)) if Arc::ptr_eq(p, payload) => *d,
            _ => {
                let d = Vp8Descriptor::parse(payload).ok();
                self.vp8 = Some((payload.clone(), d));
                d
            }
        }
    }

    /// `primary` wrapped as RED with `prev` (oldest first, see
    /// [`relay_core::red::wrap`]): built once for every classroom whose previous
    /// frames are the same ones.
    fn red(
        &mut self,
        pt: u8,
        ts: u32,
        primary: &Arc<[u8]>,
        prev: &[(u32, Arc<[u8]>)],
    ) -> Arc<[u8]> {
        let same = |b: &RedBuilt| {
            Arc::ptr_eq(&b.primary, primary)
                && b.pt == pt
                && b.prev.len() == prev.len()
                && b.prev
                    .iter()
                    .zip(prev)
                    .all(|((off, a), (pts, d))| *off == ts.wrapping_sub(*pts) && Arc::ptr_eq(a, d))
        };
        if let Some(b) = self.red.as_ref().filter(|b| same(b)) {
            return b.wrapped.clone();
        }
        let blocks: Vec<(u32, &[u8])> = prev.iter().map(|(t, d)| (*t, &d[..])).collect();
        let wrapped: Arc<[u8]> = Arc::from(relay_core::red::wrap(pt, ts, primary, &blocks));
        self.red = Some(RedBuilt {
            primary: primary.clone(),
            prev: prev
                .iter()
                .map(|(t, d)| (ts.wrapping_sub(*t), d.clone()))
                .collect(),
            pt,
            wrapped: wrapped.clone(),
        });
        wrapped
    }
}

impl Edge {
    pub(super) fn forward(&mut self, now: Instant, f: relay_core::Forward) {
        let Some(ri) = self.route(&f) else {
            return;
        };
        let Some(p) = self.peers.get_mut(&f.to) else {
            return;
        };
        let route = &mut p.routes[ri];
        let Some(pt) = route.pt else {
            return;
        };
        // Voice towards a classroom that negotiated RED carries the previous frame
        // again: one lost packet on the classroom's link costs no voice.
        let (pt, payload) = match route.red {
            Some(red_pt) if !f.codec.is_video() => {
                let depth = usize::from(f.red_depth).clamp(1, RED_MAX_DEPTH);
                let skip = route.red_prev.len().saturating_sub(depth);
                let prev: Vec<(u32, Arc<[u8]>)> =
                    route.red_prev.iter().skip(skip).cloned().collect();
                let wrapped = self.fanout.red(*pt, f.ts, &f.payload, &prev);
                if route.red_prev.len() == RED_MAX_DEPTH {
                    route.red_prev.pop_front();
                }
                route.red_prev.push_back((f.ts, f.payload.clone()));
                (red_pt, wrapped)
            }
            _ => (pt, f.payload.clone()),
        };
        let mut w = RtpWrite::new(pt, f.seq.into(), f.ts, now, payload)
            .marker(f.marker)
            .nackable(f.codec.is_video());
        if let Some(min) = f.playout_min {
            w = w.ext_vals(playout_delay(min));
        }
        if f.vp8_picture_id.is_some() || f.vp8_tl0_pic_idx.is_some() {
            if let Some(d) = self.fanout.vp8(&f.payload) {
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
        let mut api = p.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(route.str_mid, None) else {
            return;
        };
        self.in_flight.note(*tx.ssrc(), f.seq as u16, now);
        tx.write_rtp(w);
        p.written = true;
        if self.dirty.last() != Some(&f.to) {
            self.dirty.push(f.to);
        }
    }

    /// The index of the classroom's route for `f`'s stream, made on first use.
    fn route(&mut self, f: &relay_core::Forward) -> Option<usize> {
        let to = self.peers.get(&f.to)?;
        if let Some(i) = to
            .routes
            .iter()
            .position(|r| r.from == f.from && r.src_pt == f.pt && r.mid == f.mid)
        {
            return Some(i);
        }
        // Payload type on the receiving side, matched by codec parameters.
        let (_, src_params) = self.peers.get(&f.from)?.pt_map.get(&f.pt).copied()??;
        let p = self.peers.get_mut(&f.to)?;
        let matched = p.rtc.codec_config().match_params(src_params);
        // An m-line carries one source at a time (the teacher, or the school holding
        // the floor): the new source's route replaces the old one's there.
        p.routes.retain(|r| r.from == f.from || r.mid != f.mid);
        p.routes.push(Route {
            from: f.from,
            src_pt: f.pt,
            mid: f.mid,
            str_mid: StrMid::from(f.mid.as_str()),
            pt: matched.as_ref().map(|m| m.pt()),
            red: matched
                .as_ref()
                .and_then(|m| m.red().filter(|_| m.spec().codec == StrCodec::Opus)),
            red_prev: VecDeque::new(),
        });
        Some(p.routes.len() - 1)
    }
}

/// Turn a str0m packet from a teacher into a core packet.
pub(super) fn publisher_packet(p: &mut Peer, pkt: RtpPacket) -> Option<RtpIn> {
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

/// The longest playout delay asked for: 10 s, libwebrtc's video timing's default
/// maximum.
const PLAYOUT_MAX: Duration = Duration::from_secs(10);

/// Header extension values asking the receiver to hold video at least `min`
/// (the playout-delay extension; its maximum leaves the receiver free above it).
fn playout_delay(min: Duration) -> ExtensionValues {
    ExtensionValues {
        play_delay_min: Some(MediaTime::from_millis(
            min.min(PLAYOUT_MAX).as_millis() as u64
        )),
        play_delay_max: Some(MediaTime::from_millis(PLAYOUT_MAX.as_millis() as u64)),
        ..Default::default()
    }
}
