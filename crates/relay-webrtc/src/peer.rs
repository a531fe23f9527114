//! One str0m `Rtc` per session, built from a WHIP/WHEP offer.
//!
//! Both roles run str0m in RTP mode: the relay forwards packets, it never
//! depacketizes frames (design.md; issue 5 measures why).

use std::net::SocketAddr;
use std::time::Instant;

use relay_core::{Kind, Mid, PublishedTrack, SlotSpec};
use str0m::change::SdpOffer;
use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, Event, Output, Rtc};

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
) -> Result<Negotiated, EdgeError> {
    let offer = SdpOffer::from_sdp_string(offer).map_err(|e| EdgeError::BadSdp(e.to_string()))?;
    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .enable_h264(codecs.h264)
        .build(now);
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
    // Negotiation results arrive as events; nothing is transmitted before ICE starts.
    while let Ok(out) = rtc.poll_output() {
        let Output::Event(Event::MediaAdded(m)) = out else {
            if matches!(out, Output::Timeout(_)) {
                break;
            }
            continue;
        };
        let usable = rtc
            .media(m.mid)
            .is_some_and(|media| !media.remote_pts().is_empty());
        if !usable {
            continue;
        }
        let kind = match m.kind {
            MediaKind::Audio => Kind::Audio,
            MediaKind::Video => Kind::Video,
        };
        let mid = Mid::new(&m.mid.to_string());
        match role {
            Role::Publisher if matches!(m.direction, Direction::RecvOnly | Direction::SendRecv) => {
                let rids = m
                    .simulcast
                    .map(|s| {
                        s.recv
                            .iter()
                            .map(|l| relay_core::Rid::new(&l.rid.to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                tracks.push(PublishedTrack { mid, kind, rids });
            }
            Role::Subscriber
                if matches!(m.direction, Direction::SendOnly | Direction::SendRecv) =>
            {
                slots.push(SlotSpec { mid, kind });
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
