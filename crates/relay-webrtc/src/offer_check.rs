//! What the relay checks in an offer before it hands it to str0m.
//!
//! str0m's SDP parser accepts some offers its negotiation then trips over: one payload
//! type named by two `a=rtpmap` lines of one m-line panics inside `accept_offer` ("Pt
//! locked multiple times"), a mid longer than 16 bytes is silently cut (two mids can
//! then collide), a payload type over 127 indexes past a 128-entry table. A client
//! holding a valid classroom token must not reach those, so every offer passes this
//! check first, and a refused offer is answered `400` with the reason.
//!
//! The rules follow the RFCs the offer claims to speak:
//! - a payload type is 0..=127 (RFC 3550 §5.1), listed once on its m-line and mapped
//!   once by `a=rtpmap` (RFC 8866 §6.6); a dynamic one (96..=127) needs its `a=rtpmap`;
//! - bundled m-lines map one payload type to one codec with one set of `a=fmtp`
//!   parameters (RFC 8843 §9.1);
//! - an m-line has at most one direction attribute and one `a=mid` (RFC 8866 §6.7,
//!   RFC 9143 §5), mids are unique in the offer, an `a=rtx` `apt=` names a payload type
//!   of its m-line (RFC 4588 §8.6), an `a=extmap` id is 1..=255 and names one URI
//!   (RFC 8285 §5);
//! - the media type is audio, video or application (RFC 8866 §5.14; WebRTC uses no
//!   other);
//! - and counts a browser, OBS or any WHIP/WHEP client never comes near: m-lines,
//!   candidates, rids, ssrc lines, line length.

use std::collections::{HashMap, HashSet};

use crate::error::EdgeError;

/// A teacher sends voice, camera and slides; a classroom receives them (and later
/// talks back). 16 m-lines leave room for any real client.
pub const MAX_MEDIA: usize = 16;
/// The relay does not trickle; a browser gathers a handful of candidates per network.
pub const MAX_CANDIDATES: usize = 64;
/// Simulcast layers per m-line (browsers send up to 3 or 4).
pub const MAX_RIDS: usize = 8;
/// Payload types per m-line (Chromium offers about 30 video ones).
pub const MAX_FORMATS: usize = 64;
/// `a=ssrc` lines per m-line (a browser sends about 4 per SSRC, 2 SSRCs per layer).
pub const MAX_SSRC_LINES: usize = 64;
/// Longest line: a candidate or fingerprint line is under 200 bytes.
pub const MAX_LINE: usize = 4096;
/// str0m keeps a mid in 16 bytes and a rid in 8, cutting longer ones.
pub const MAX_MID: usize = 16;
pub const MAX_RID: usize = 8;

/// One m-line as the checks see it.
#[derive(Default)]
struct Section {
    /// 1-based m-line number, for messages.
    index: usize,
    rtp: bool,
    formats: Vec<u16>,
    mid: Option<String>,
    rtpmaps: HashMap<u8, String>,
    /// Payload type -> its `a=fmtp` parameters.
    fmtp: HashMap<u8, String>,
    directions: Vec<&'static str>,
    rids: HashSet<String>,
    extmap: HashMap<u16, String>,
    ssrc_lines: usize,
}

impl Section {
    fn name(&self) -> String {
        match &self.mid {
            Some(m) => format!("m-line {} (mid {m:?})", self.index),
            None => format!("m-line {}", self.index),
        }
    }
}

fn bad(msg: String) -> EdgeError {
    EdgeError::BadSdp(msg)
}

/// Refuse an offer str0m must not see; `Ok` means it may be negotiated.
pub fn check_offer(sdp: &str) -> Result<(), EdgeError> {
    if !sdp.trim_start().starts_with("v=0") {
        return Err(bad("the offer must start with \"v=0\"".into()));
    }
    let mut sections: Vec<Section> = Vec::new();
    let mut session_dirs = 0usize;
    let mut candidates = 0usize;
    for (n, raw) in sdp.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        if line.len() > MAX_LINE {
            return Err(bad(format!(
                "line {} is {} bytes long (at most {MAX_LINE})",
                n + 1,
                line.len()
            )));
        }
        if let Some(m) = line.strip_prefix("m=") {
            if sections.len() == MAX_MEDIA {
                return Err(bad(format!(
                    "the offer has more than {MAX_MEDIA} m-lines; a lesson needs at most a few"
                )));
            }
            sections.push(media_line(sections.len() + 1, m)?);
            continue;
        }
        let Some(attr) = line.strip_prefix("a=") else {
            continue;
        };
        if attr.starts_with("candidate:") {
            candidates += 1;
            if candidates > MAX_CANDIDATES {
                return Err(bad(format!(
                    "the offer has more than {MAX_CANDIDATES} ICE candidates"
                )));
            }
        }
        match sections.last_mut() {
            Some(s) => attribute(s, attr)?,
            None if direction(attr).is_some() => session_dirs += 1,
            None => {}
        }
    }
    if session_dirs > 1 {
        return Err(bad(
            "the session level has more than one direction attribute (sendrecv, sendonly, recvonly, inactive)".into(),
        ));
    }
    let mut mids = HashSet::new();
    // Payload type -> (codec, fmtp, m-line) over all RTP m-lines (they are bundled).
    let mut codecs: HashMap<u8, (String, &str, String)> = HashMap::new();
    for s in &sections {
        finish(s)?;
        if let Some(m) = &s.mid {
            if !mids.insert(m.as_str()) {
                return Err(bad(format!("mid {m:?} is used by two m-lines")));
            }
        }
        for (pt, codec) in &s.rtpmaps {
            let key = codec.to_ascii_lowercase();
            let fmtp = s.fmtp.get(pt).map_or("", String::as_str);
            match codecs.get(pt) {
                Some((c, _, other)) if *c != key => {
                    return Err(bad(format!(
                        "payload type {pt} is {c} on {other} but {codec} on {}; bundled m-lines must agree (RFC 8843 §9.1)",
                        s.name()
                    )))
                }
                // str0m keeps one configuration per payload type and panics on two.
                Some((_, f, other)) if *f != fmtp => {
                    return Err(bad(format!(
                        "payload type {pt} has a=fmtp \"{f}\" on {other} but \"{fmtp}\" on {}; bundled m-lines must agree (RFC 8843 §9.1)",
                        s.name()
                    )))
                }
                Some(_) => {}
                None => {
                    codecs.insert(*pt, (key, fmtp, s.name()));
                }
            }
        }
    }
    check_rtx_apt(sdp)
}

/// `m=<media> <port> <proto> <fmt> ...`
fn media_line(index: usize, m: &str) -> Result<Section, EdgeError> {
    let mut parts = m.split_whitespace();
    let (Some(media), Some(_port), Some(proto)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad(format!("m-line {index} is incomplete: \"m={m}\"")));
    };
    if !["audio", "video", "application"].contains(&media) {
        return Err(bad(format!(
            "m-line {index} has media type {media:?}; WebRTC uses audio, video or application"
        )));
    }
    let mut s = Section {
        index,
        rtp: proto.contains("RTP"),
        ..Default::default()
    };
    if !s.rtp {
        return Ok(s);
    }
    for f in parts {
        let pt: u16 = f.parse().map_err(|_| {
            bad(format!(
                "m-line {index} lists {f:?} as a payload type; it must be a number"
            ))
        })?;
        if pt > 127 {
            return Err(bad(format!(
                "m-line {index} lists payload type {pt}; payload types are 0..=127"
            )));
        }
        if s.formats.contains(&pt) {
            return Err(bad(format!("m-line {index} lists payload type {pt} twice")));
        }
        if s.formats.len() == MAX_FORMATS {
            return Err(bad(format!(
                "m-line {index} lists more than {MAX_FORMATS} payload types"
            )));
        }
        s.formats.push(pt);
    }
    Ok(s)
}

fn direction(attr: &str) -> Option<&'static str> {
    ["sendrecv", "sendonly", "recvonly", "inactive"]
        .into_iter()
        .find(|d| attr == *d)
}

/// The payload type an `a=rtpmap:`/`a=fmtp:` value starts with.
fn pt_of(s: &Section, what: &str, value: &str) -> Result<u8, EdgeError> {
    let first = value.split_whitespace().next().unwrap_or("");
    match first.parse::<u16>() {
        Ok(pt) if pt <= 127 => Ok(pt as u8),
        _ => Err(bad(format!(
            "{}: a={what}:{first} is not a payload type (0..=127)",
            s.name()
        ))),
    }
}

fn attribute(s: &mut Section, attr: &str) -> Result<(), EdgeError> {
    if let Some(d) = direction(attr) {
        s.directions.push(d);
        if s.directions.len() > 1 {
            return Err(bad(format!(
                "{} has contradictory directions: {}",
                s.name(),
                s.directions.join(" and ")
            )));
        }
    } else if let Some(mid) = attr.strip_prefix("mid:") {
        let mid = mid.trim();
        if s.mid.is_some() {
            return Err(bad(format!("{} has two a=mid lines", s.name())));
        }
        if mid.is_empty() || mid.len() > MAX_MID {
            return Err(bad(format!(
                "m-line {}: a mid must be 1 to {MAX_MID} characters (got {})",
                s.index,
                mid.len()
            )));
        }
        s.mid = Some(mid.to_string());
    } else if let Some(v) = attr.strip_prefix("rtpmap:") {
        let pt = pt_of(s, "rtpmap", v)?;
        let codec = v.split_whitespace().nth(1).unwrap_or("").to_string();
        if codec.is_empty() {
            return Err(bad(format!("{}: a=rtpmap:{pt} names no codec", s.name())));
        }
        if s.rtpmaps.insert(pt, codec).is_some() {
            return Err(bad(format!(
                "{} maps payload type {pt} twice (two a=rtpmap:{pt} lines); each payload type names one codec",
                s.name()
            )));
        }
    } else if let Some(v) = attr.strip_prefix("fmtp:") {
        let pt = pt_of(s, "fmtp", v)?;
        let params = v.split_once(' ').map_or("", |x| x.1).trim().to_string();
        if s.fmtp.insert(pt, params).is_some() {
            return Err(bad(format!("{} has two a=fmtp:{pt} lines", s.name())));
        }
    } else if let Some(v) = attr.strip_prefix("rid:") {
        let id = v.split_whitespace().next().unwrap_or("");
        if id.is_empty() || id.len() > MAX_RID {
            return Err(bad(format!(
                "{}: a rid must be 1 to {MAX_RID} characters (got {id:?})",
                s.name()
            )));
        }
        if !s.rids.insert(id.to_string()) {
            return Err(bad(format!("{} names rid {id:?} twice", s.name())));
        }
        if s.rids.len() > MAX_RIDS {
            return Err(bad(format!("{} has more than {MAX_RIDS} rids", s.name())));
        }
    } else if let Some(v) = attr.strip_prefix("extmap:") {
        let mut parts = v.split_whitespace();
        let id = parts.next().unwrap_or("");
        // `a=extmap:<id>[/<direction>] <uri>`
        let num = id.split('/').next().unwrap_or("");
        let uri = parts.next().unwrap_or("");
        match num.parse::<u16>() {
            Ok(n) if (1..=255).contains(&n) && !uri.is_empty() => {
                if let Some(old) = s.extmap.insert(n, uri.to_string()) {
                    if old != uri {
                        return Err(bad(format!(
                            "{}: header extension id {n} names both {old} and {uri}",
                            s.name()
                        )));
                    }
                }
            }
            _ => {
                return Err(bad(format!(
                    "{}: \"a=extmap:{v}\" needs an id 1..=255 and a URI",
                    s.name()
                )))
            }
        }
    } else if attr.starts_with("ssrc:") || attr.starts_with("ssrc-group:") {
        s.ssrc_lines += 1;
        if s.ssrc_lines > MAX_SSRC_LINES {
            return Err(bad(format!(
                "{} has more than {MAX_SSRC_LINES} a=ssrc lines",
                s.name()
            )));
        }
    }
    Ok(())
}

/// Checks that need the whole m-line.
fn finish(s: &Section) -> Result<(), EdgeError> {
    if !s.rtp {
        return Ok(());
    }
    for pt in s.rtpmaps.keys() {
        if !s.formats.contains(&u16::from(*pt)) {
            return Err(bad(format!(
                "{}: a=rtpmap:{pt} maps a payload type its m= line does not list",
                s.name()
            )));
        }
    }
    for pt in &s.formats {
        if *pt >= 96 && !s.rtpmaps.contains_key(&(*pt as u8)) {
            return Err(bad(format!(
                "{}: payload type {pt} is dynamic and has no a=rtpmap line",
                s.name()
            )));
        }
    }
    Ok(())
}

/// `apt=` of every RTX fmtp must name a payload type of its m-line: checked on the
/// raw text, since fmtp parameters are free-form.
fn check_rtx_apt(sdp: &str) -> Result<(), EdgeError> {
    let mut index = 0usize;
    let mut formats: Vec<&str> = Vec::new();
    for line in sdp.lines().map(|l| l.trim_end_matches('\r')) {
        if let Some(m) = line.strip_prefix("m=") {
            index += 1;
            formats = m.split_whitespace().skip(3).collect();
        } else if let Some(v) = line.strip_prefix("a=fmtp:") {
            let params = v.split_once(' ').map(|x| x.1).unwrap_or("");
            for p in params.split(';') {
                if let Some(apt) = p.trim().strip_prefix("apt=") {
                    if !formats.contains(&apt.trim()) {
                        return Err(bad(format!(
                            "m-line {index}: a=fmtp:{v} points apt= at a payload type the m-line does not list"
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "offer_check_tests.rs"]
mod tests;
