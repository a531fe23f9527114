//! One str0m `Rtc` per session, built from a WHIP/WHEP offer.
//!
//! Both roles run str0m in RTP mode: the relay forwards packets, it never
//! depacketizes frames (design.md; issue 5 measures why).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use relay_core::{Kind, Mid, PublishedTrack, SlotSpec};
use str0m::bwe::Bitrate;
use str0m::change::SdpOffer;
use str0m::media::{Direction, MediaKind, Mid as StrMid};
use str0m::{Candidate, Rtc};

use crate::error::EdgeError;

/// Teacher or classroom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Publisher,
    Subscriber,
}

/// Codec choices for new sessions.
#[derive(Debug, Clone, Copy)]
pub struct Codecs {
    pub h264: bool,
}

/// A negotiated session, before it is connected.
pub struct Negotiated {
    pub rtc: Rtc,
    pub answer: String,
    /// For publishers: the tracks they send.
    pub tracks: Vec<PublishedTrack>,
    /// For subscribers: the m-lines we send on.
    pub slots: Vec<SlotSpec>,
}

/// Parse `offer`, build an `Rtc` and answer it.
pub fn negotiate(
    now: Instant,
    role: Role,
    offer: &str,
    local: &[SocketAddr],
    codecs: Codecs,
    bwe_initial: Option<u64>,
) -> Result<Negotiated, EdgeError> {
    let offer_text = offer;
    let offer = SdpOffer::from_sdp_string(offer).map_err(|e| EdgeError::BadSdp(e.to_string()))?;
    let mut builder = Rtc::builder()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .enable_h264(codecs.h264);
    if let Some(bps) = bwe_initial {
        // Send-side estimation (TWCC) towards a classroom, and loss/RTT once a second.
        builder = builder
            .enable_bwe(Some(Bitrate::bps(bps)))
            .set_stats_interval(Some(Duration::from_secs(1)));
    }
    let mut rtc = builder.build(now);
    for addr in local {
        let c = Candidate::host(*addr, "udp")
            .map_err(|e| EdgeError::BadSdp(format!("local candidate {addr}: {e}")))?;
        rtc.add_local_candidate(c);
    }
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| EdgeError::BadSdp(e.to_string()))?;

    let mut tracks = Vec::new();
    let mut slots = Vec::new();
    for m in scan_offer(offer_text) {
        let Some(media) = rtc.media(StrMid::from(m.mid.as_str())) else {
            continue;
        };
        // No common codec: str0m rejects the m-line.
        if media.remote_pts().is_empty() || media.disabled() {
            continue;
        }
        let kind = match media.kind() {
            MediaKind::Audio => Kind::Audio,
            MediaKind::Video => Kind::Video,
        };
        let mid = Mid::new(&m.mid);
        // Directions from the relay's side of the answer.
        match (role, media.direction()) {
            (Role::Publisher, Direction::RecvOnly | Direction::SendRecv) => {
                tracks.push(PublishedTrack {
                    mid,
                    kind,
                    rids: m.rids.iter().map(|r| relay_core::Rid::new(r)).collect(),
                })
            }
            (Role::Subscriber, Direction::SendOnly | Direction::SendRecv) => {
                slots.push(SlotSpec { mid, kind })
            }
            _ => {}
        }
    }
    match role {
        Role::Publisher if tracks.is_empty() => {
            return Err(EdgeError::NothingToForward(
                "the offer sends no audio or video the relay can forward (it needs Opus audio and/or VP8/H.264 video, direction sendonly or sendrecv)".into(),
            ))
        }
        Role::Subscriber if slots.is_empty() => {
            return Err(EdgeError::NothingToForward(
                "the offer receives no audio or video the relay can send (it needs a recvonly or sendrecv m-line with Opus, VP8 or H.264)".into(),
            ))
        }
        _ => {}
    }
    Ok(Negotiated {
        rtc,
        answer: answer.to_sdp_string(),
        tracks,
        slots,
    })
}

/// One m-line of an offer, as far as the relay cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedMedia {
    pub mid: String,
    /// Simulcast rids the offerer sends (`a=rid:<id> send`), in SDP order.
    pub rids: Vec<String>,
}

/// List the m-lines of an SDP offer with their mid and send rids (RFC 8866 §5.14,
/// RFC 8851 §4). Lines without a mid are skipped: BUNDLE requires one (RFC 8843).
pub fn scan_offer(sdp: &str) -> Vec<OfferedMedia> {
    let mut out: Vec<OfferedMedia> = Vec::new();
    let mut in_media = false;
    for line in sdp.lines().map(str::trim_end) {
        if line.starts_with("m=") {
            in_media = true;
            out.push(OfferedMedia {
                mid: String::new(),
                rids: vec![],
            });
        } else if !in_media {
            continue;
        } else if let Some(mid) = line.strip_prefix("a=mid:") {
            if let Some(m) = out.last_mut() {
                m.mid = mid.trim().to_string();
            }
        } else if let Some(rid) = line.strip_prefix("a=rid:") {
            let mut parts = rid.split_whitespace();
            if let (Some(id), Some("send")) = (parts.next(), parts.next()) {
                if let Some(m) = out.last_mut() {
                    m.rids.push(id.to_string());
                }
            }
        }
    }
    out.retain(|m| !m.mid.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_mids_and_send_rids() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
                   m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=rid:q send\r\na=rid:h send\r\na=rid:f send\r\n\
                   a=simulcast:send q;h;f\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rid:x recv\r\na=mid:2\r\n\
                   m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";
        let m = scan_offer(sdp);
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[0],
            OfferedMedia {
                mid: "0".into(),
                rids: vec![]
            }
        );
        assert_eq!(m[1].rids, vec!["q", "h", "f"]);
        assert_eq!(
            m[2],
            OfferedMedia {
                mid: "2".into(),
                rids: vec![]
            }
        );
    }
}
