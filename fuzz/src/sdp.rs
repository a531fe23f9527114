//! SDP intake: an offer as the relay's WHIP and WHEP endpoints pass it on, parsed
//! by str0m and negotiated by the edge, as a teacher's publish and a classroom's
//! watch.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use relay_core::{LayerPref, PeerId, RelayConfig};
use relay_webrtc::{Codecs, Edge};
use str0m::change::{SdpAnswer, SdpOffer};

/// Real offers the edge keeps a lesson going with (see `fuzz/corpus/sdp_offer`).
pub(crate) const CHROMIUM_PUBLISH: &str =
    include_str!("../corpus/sdp_offer/chromium-simulcast-publish.sdp");
pub(crate) const CHROMIUM_WHEP: &str =
    include_str!("../corpus/sdp_offer/chromium-whep-recvonly.sdp");

/// One edge per thread with a teacher publishing a real offer, so a fuzzed watch
/// offer is bound to real tracks; every fuzzed session is closed again after its
/// input, which leaves the edge as it was.
struct Intake {
    edge: Edge,
    now: Instant,
    teacher: Option<PeerId>,
}

thread_local! {
    static INTAKE: RefCell<Option<Intake>> = const { RefCell::new(None) };
}

fn local() -> SocketAddr {
    "198.18.0.1:5000".parse().expect("address")
}

/// m-lines of an SDP text, of the media types str0m answers (an m-line of any
/// other type is left out of str0m's answer altogether, where RFC 3264 §6 wants
/// it answered with port 0: found by this target and reported, see
/// `fuzz/regressions/sdp_offer/unknown-media-type-dropped-from-answer.sdp`).
fn m_lines(sdp: &str) -> usize {
    sdp.lines()
        .filter(|l| {
            ["m=audio ", "m=video ", "m=application "]
                .iter()
                .any(|m| l.starts_with(m))
        })
        .count()
}

/// What str0m makes of the offer: when it parses, its own serialisation parses
/// back with the same m-lines. (Not always to the same text: str0m drops an
/// `a=fmtp` parameter it does not know on each pass, see
/// `fuzz/regressions/sdp_offer/firefox-fmtp-drift.sdp`; the relay never echoes an
/// offer's fmtp, so that does not reach a client.)
fn str0m_round_trip(text: &str) -> Option<usize> {
    let offer = SdpOffer::from_sdp_string(text).ok()?;
    let s = offer.to_sdp_string();
    let again = SdpOffer::from_sdp_string(&s)
        .unwrap_or_else(|e| panic!("str0m cannot parse its own serialisation ({e}):\n{s}"));
    assert_eq!(
        m_lines(&again.to_sdp_string()),
        m_lines(&s),
        "m-lines lost in a round trip"
    );
    Some(m_lines(&s))
}

/// The answer to an accepted offer parses and has one m-line per offered one
/// (RFC 3264 §6).
fn check_answer(answer: &str, offered: Option<usize>) {
    let a = SdpAnswer::from_sdp_string(answer)
        .unwrap_or_else(|e| panic!("the relay's answer does not parse ({e}):\n{answer}"));
    if let Some(n) = offered {
        assert_eq!(
            m_lines(&a.to_sdp_string()),
            n,
            "answer and offer differ in m-lines"
        );
    }
}

/// SDP offers: the relay's own check (`relay_webrtc::check_offer`), str0m's parser,
/// then the edge's publish and subscribe. An offer the check passes on must not
/// make str0m panic (the edge contains such panics and counts them; one here is
/// a validation rule missing). An accepted offer gets an answer that parses, with
/// an m-line per offered one; str0m's own serialisation of an offer is stable.
pub fn sdp_offer(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let checked = relay_webrtc::check_offer(&text);
    let offered = str0m_round_trip(&text);
    relay_webrtc::init_crypto();
    INTAKE.with(|cell| {
        let mut guard = cell.borrow_mut();
        let st = guard.get_or_insert_with(|| {
            let now = Instant::now();
            Intake {
                edge: Edge::new(
                    now,
                    RelayConfig::default(),
                    Codecs { h264: true },
                    vec![local()],
                ),
                now,
                teacher: None,
            }
        });
        st.now += Duration::from_millis(1);
        let now = st.now;
        if !st.teacher.is_some_and(|p| st.edge.is_alive(p)) {
            let s = st
                .edge
                .publish(now, "lesson", "teacher", CHROMIUM_PUBLISH)
                .expect("the edge accepts Chromium's publish offer");
            st.teacher = Some(s.peer);
        }
        let panics_before = st.edge.stats(now).contained_panics;
        let layer = [None, Some(LayerPref::Low), Some(LayerPref::High)][data.len() % 3];
        if let Ok(s) = st
            .edge
            .subscribe(now, "lesson", "fuzz-school", layer, &text)
        {
            check_answer(&s.answer, offered);
            st.edge.timeout(now);
            assert!(st.edge.close(now, s.peer));
        }
        if let Ok(s) = st.edge.publish(now, "fuzzed", "fuzz-teacher", &text) {
            check_answer(&s.answer, offered);
            // A classroom watching the fuzzed teacher: the core binds its slots to
            // whatever tracks that offer declared.
            let watch = st
                .edge
                .subscribe(now, "fuzzed", "school", None, CHROMIUM_WHEP);
            st.edge.timeout(now);
            if let Ok(w) = watch {
                assert!(st.edge.close(now, w.peer));
            }
            assert!(st.edge.close(now, s.peer));
        }
        st.edge.timeout(now);
        while st.edge.poll_datagram().is_some() {}
        let stats = st.edge.stats(now);
        if checked.is_ok() {
            assert_eq!(
                stats.contained_panics, panics_before,
                "str0m panicked on an offer check_offer passed"
            );
        }
        // The fuzzed sessions are gone (the teacher may have expired: it never
        // connects, and the edge drops such sessions after a while).
        assert!(
            stats.subscribers == 0 && stats.publishers <= 1,
            "a fuzzed session outlived its input"
        );
    });
}
