//! One str0m `Rtc` per session, built from a WHIP/WHEP offer.
//!
//! Both roles run str0m in RTP mode: the relay forwards packets, it never
//! depacketizes frames (design.md; issue 5 measures why).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use relay_core::{Kind, Mid, PublishedTrack, SlotSpec};
use str0m::bwe::Bitrate;
use str0m::change::SdpOffer;
use str0m::format::Codec as StrCodec;
use str0m::media::{Direction, MediaKind, Mid as StrMid};
use str0m::rtp::Extension;
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

/// Video packets kept per stream towards a classroom, for retransmission (NACK)
/// and the estimator's probes. 400 packets are 2.3 s of the 1.5 Mbit/s top layer,
/// more than a satellite round trip plus the receiver's NACK timing; str0m's default
/// of 1000 costs memory per classroom for packets no one will ask for again.
const SEND_BUFFER_VIDEO: usize = 400;

/// The session-level id of the playout-delay header extension (one str0m's
/// standard map leaves free; an answer takes the offer's id).
const PLAYOUT_DELAY_ID: u8 = 6;

/// Check `offer` (see [`crate::offer_check`]), build an `Rtc` and answer it. A panic
/// inside str0m while negotiating is contained and answered as
/// [`EdgeError::Contained`].
pub fn negotiate(
    now: Instant,
    role: Role,
    offer: &str,
    local: &[SocketAddr],
    codecs: Codecs,
    bwe_initial: Option<u64>,
) -> Result<Negotiated, EdgeError> {
    crate::offer_check::check_offer(offer)?;
    crate::guard::contain(|| negotiate_checked(now, role, offer, local, codecs, bwe_initial))
        .unwrap_or_else(|panic| Err(EdgeError::Contained(panic)))
}

fn negotiate_checked(
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
        // RED towards classrooms that offer it (the relay adds the redundancy); the
        // teacher sends plain Opus.
        .enable_opus(true, role == Role::Subscriber)
        .enable_vp8(true)
        .enable_h264(codecs.h264)
        .set_send_buffer_video(SEND_BUFFER_VIDEO)
        // Towards classrooms on long, lossy round trips the relay asks the
        // receiver to hold video until retransmissions can arrive (see
        // relay_core's link::RepairDelay); an offer without it gets none.
        .set_extension(PLAYOUT_DELAY_ID, Extension::PlayoutDelay);
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
    // The edge wraps voice in RED when the answer kept RED for Opus.
    let red = rtc
        .codec_config()
        .params()
        .iter()
        .any(|p| p.spec().codec == StrCodec::Opus && p.red().is_some());
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
            (Role::Subscriber, Direction::SendOnly | Direction::SendRecv) => slots.push(SlotSpec {
                mid,
                kind,
                redundant: red && kind == Kind::Audio,
            }),
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
    let mut answer = answer.to_sdp_string();
    if role == Role::Publisher {
        answer = hint_start_bitrate(&answer, PUBLISHER_START_KBPS);
    }
    Ok(Negotiated {
        rtc,
        answer,
        tracks,
        slots,
    })
}

/// Where a browser teacher's send-side estimate starts. libwebrtc starts at
/// 300 kbit/s and enables simulcast layers only as its estimate grows, so the top
/// layer would appear 10-15 s into the lesson; the hub school's uplink is the
/// well-connected end, and all three layers need about 2.2 Mbit/s.
pub const PUBLISHER_START_KBPS: u32 = 2200;

/// Add libwebrtc's `x-google-start-bitrate` to every video codec of an answer
/// (other endpoints ignore unknown fmtp parameters).
pub fn hint_start_bitrate(sdp: &str, kbps: u32) -> String {
    let param = format!("x-google-start-bitrate={kbps}");
    let video_pts: Vec<&str> = sdp
        .lines()
        .filter_map(|l| l.strip_prefix("a=rtpmap:"))
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, codec)| {
            let c = codec.to_ascii_uppercase();
            c.starts_with("VP8/") || c.starts_with("H264/")
        })
        .map(|(pt, _)| pt)
        .collect();
    let has_fmtp = |pt: &str| {
        sdp.lines().any(|l| {
            l.strip_prefix("a=fmtp:")
                .is_some_and(|r| r.split(' ').next() == Some(pt))
        })
    };
    let mut out = String::with_capacity(sdp.len() + 64);
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let eol = &line[body.len()..];
        if let Some(rest) = body.strip_prefix("a=fmtp:") {
            if rest
                .split(' ')
                .next()
                .is_some_and(|pt| video_pts.contains(&pt))
            {
                out.push_str(&format!("{body};{param}{eol}"));
                continue;
            }
        }
        out.push_str(line);
        if let Some(rest) = body.strip_prefix("a=rtpmap:") {
            let pt = rest.split(' ').next().unwrap_or("");
            if video_pts.contains(&pt) && !has_fmtp(pt) {
                out.push_str(&format!("a=fmtp:{pt} {param}{eol}"));
            }
        }
    }
    out
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
    fn start_bitrate_hint_goes_on_video_codecs_only() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n\
                   a=fmtp:111 minptime=10;useinbandfec=1\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96 97 98\r\na=rtpmap:96 VP8/90000\r\n\
                   a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\na=rtpmap:98 H264/90000\r\n\
                   a=fmtp:98 packetization-mode=1\r\n";
        let out = hint_start_bitrate(sdp, 2200);
        assert!(out.contains("a=rtpmap:96 VP8/90000\r\na=fmtp:96 x-google-start-bitrate=2200\r\n"));
        assert!(out.contains("a=fmtp:98 packetization-mode=1;x-google-start-bitrate=2200\r\n"));
        assert!(out.contains("a=fmtp:97 apt=96\r\n"));
        assert!(out.contains("a=fmtp:111 minptime=10;useinbandfec=1\r\n"));
        assert_eq!(out.matches("x-google-start-bitrate").count(), 2);
    }

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
