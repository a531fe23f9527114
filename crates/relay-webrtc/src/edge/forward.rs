//! Forwarding: a core [`relay_core::Forward`] becomes an RTP write on the
//! classroom's session, and a teacher's str0m packet becomes a core packet.

use std::sync::Arc;
use std::time::Instant;

use relay_core::{Codec, RtpIn};
use str0m::format::Codec as StrCodec;
use str0m::media::Mid as StrMid;
use str0m::rtp::{RtpPacket, RtpWrite, Vp8Descriptor};

use super::{Edge, Peer};

impl Edge {
    pub(super) fn forward(&mut self, now: Instant, f: relay_core::Forward) {
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
