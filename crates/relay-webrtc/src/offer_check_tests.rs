use super::*;

/// The shape of Chromium's WHIP publish offer: voice, a 3-layer simulcast camera.
pub(crate) const CHROMIUM_PUBLISH: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
a=extmap-allow-mixed\r\n\
a=msid-semantic: WMS\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:1 1 udp 2122260223 192.168.1.10 54321 typ host generation 0\r\n\
a=ice-ufrag:abcd\r\n\
a=ice-pwd:aaaaaaaaaaaaaaaaaaaaaaaa\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=sendonly\r\n\
a=msid:- 7b3c\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:63 red/48000/2\r\n\
a=fmtp:63 111/111\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:13 CN/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\n\
a=rtpmap:126 telephone-event/8000\r\n\
a=ssrc:1111 cname:x\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\n\
a=ice-pwd:aaaaaaaaaaaaaaaaaaaaaaaa\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00\r\n\
a=setup:actpass\r\n\
a=mid:1\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n\
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n\
a=sendonly\r\n\
a=msid:- 9d1e\r\n\
a=rtcp-mux\r\n\
a=rtcp-rsize\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtcp-fb:96 goog-remb\r\n\
a=rtcp-fb:96 transport-cc\r\n\
a=rtcp-fb:96 ccm fir\r\n\
a=rtcp-fb:96 nack\r\n\
a=rtcp-fb:96 nack pli\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n\
a=rtpmap:102 H264/90000\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtpmap:103 rtx/90000\r\n\
a=fmtp:103 apt=102\r\n\
a=rid:q send\r\n\
a=rid:h send\r\n\
a=rid:f send\r\n\
a=simulcast:send q;h;f\r\n";

fn refused(sdp: &str) -> String {
    match check_offer(sdp) {
        Err(EdgeError::BadSdp(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn real_offers_pass() {
    check_offer(CHROMIUM_PUBLISH).unwrap();
    // WHEP: the same m-lines receive-only.
    check_offer(&CHROMIUM_PUBLISH.replace("a=sendonly", "a=recvonly")).unwrap();
    // str0m's own offer.
    crate::init_crypto();
    let mut rtc = str0m::Rtc::new(std::time::Instant::now());
    let mut api = rtc.sdp_api();
    api.add_media(
        str0m::media::MediaKind::Audio,
        str0m::media::Direction::SendOnly,
        None,
        None,
        None,
    );
    api.add_media(
        str0m::media::MediaKind::Video,
        str0m::media::Direction::SendOnly,
        None,
        None,
        None,
    );
    let (offer, _) = api.apply().unwrap();
    check_offer(&offer.to_sdp_string()).unwrap();
}

#[test]
fn repeated_payload_type_is_refused() {
    let sdp = CHROMIUM_PUBLISH.replace(
        "a=rtpmap:97 rtx/90000\r\n",
        "a=rtpmap:97 rtx/90000\r\na=rtpmap:97 VP8/90000\r\n",
    );
    let m = refused(&sdp);
    assert!(m.contains("maps payload type 97 twice"), "{m}");
    assert!(m.contains("mid \"1\""), "{m}");
    let m = refused(&CHROMIUM_PUBLISH.replace("96 97 102 103", "96 97 96 103"));
    assert!(m.contains("lists payload type 96 twice"), "{m}");
}

#[test]
fn payload_type_rules() {
    let m = refused(&CHROMIUM_PUBLISH.replace("96 97 102 103", "96 97 102 103 104"));
    assert!(
        m.contains("payload type 104 is dynamic and has no a=rtpmap"),
        "{m}"
    );
    let m = refused(&CHROMIUM_PUBLISH.replace("96 97 102 103", "96 97 102 200"));
    assert!(m.contains("payload types are 0..=127"), "{m}");
    let m = refused(&CHROMIUM_PUBLISH.replace("a=rtpmap:103 rtx", "a=rtpmap:130 rtx"));
    assert!(m.contains("not a payload type"), "{m}");
    let m = refused(&CHROMIUM_PUBLISH.replace("96 97 102 103", "96 97 102"));
    assert!(m.contains("a=rtpmap:103 maps a payload type"), "{m}");
    let m = refused(&CHROMIUM_PUBLISH.replace("apt=102", "apt=120"));
    assert!(m.contains("apt="), "{m}");
    let m = refused(&CHROMIUM_PUBLISH.replace("m=video 9", "m=vid\u{ff}eo 9"));
    assert!(m.contains("media type"), "{m}");
    let m = refused(&CHROMIUM_PUBLISH.replace("96 97 102 103", "96 x 102 103"));
    assert!(m.contains("must be a number"), "{m}");
    // Bundled m-lines disagree on a payload type.
    let m = refused(
        &CHROMIUM_PUBLISH
            .replace(
                "m=audio 9 UDP/TLS/RTP/SAVPF 111 63",
                "m=audio 9 UDP/TLS/RTP/SAVPF 111 96 63",
            )
            .replace(
                "a=rtpmap:9 G722/8000",
                "a=rtpmap:9 G722/8000\r\na=rtpmap:96 PCMU/8000",
            ),
    );
    assert!(m.contains("bundled m-lines must agree"), "{m}");
    // The same codec with other parameters on a second bundled m-line.
    let video = &CHROMIUM_PUBLISH[CHROMIUM_PUBLISH.find("m=video").unwrap()..];
    let second = video.replace("a=mid:1", "a=mid:2").replace(
        "a=rid:q send\r\na=rid:h send\r\na=rid:f send\r\na=simulcast:send q;h;f\r\n",
        "",
    );
    check_offer(&format!("{CHROMIUM_PUBLISH}{second}")).expect("identical m-lines agree");
    let m = refused(&format!(
        "{CHROMIUM_PUBLISH}{}",
        second.replace("packetization-mode=1", "packetizatinn-mode=1")
    ));
    assert!(m.contains("payload type 102 has a=fmtp"), "{m}");
}

#[test]
fn directions_mids_rids_and_counts() {
    let m =
        refused(&CHROMIUM_PUBLISH.replacen("a=sendonly\r\n", "a=sendonly\r\na=recvonly\r\n", 1));
    assert!(
        m.contains("contradictory directions: sendonly and recvonly"),
        "{m}"
    );
    let m = refused(&CHROMIUM_PUBLISH.replace("a=mid:1\r\n", "a=mid:0\r\n"));
    assert!(m.contains("mid \"0\" is used by two m-lines"), "{m}");
    let m = refused(&CHROMIUM_PUBLISH.replace("a=mid:1\r\n", "a=mid:1\r\na=mid:2\r\n"));
    assert!(m.contains("two a=mid"), "{m}");
    let m = refused(&CHROMIUM_PUBLISH.replace("a=mid:1\r\n", "a=mid:0123456789abcdefX\r\n"));
    assert!(m.contains("1 to 16 characters"), "{m}");
    let m = refused(&CHROMIUM_PUBLISH.replace("a=rid:h send", "a=rid:q send"));
    assert!(m.contains("rid \"q\" twice"), "{m}");
    let m = refused(
        &CHROMIUM_PUBLISH.replace("a=extmap:10 urn", "a=extmap:3 urn:x\r\na=extmap:10 urn"),
    );
    assert!(m.contains("header extension id 3"), "{m}");

    let video = &CHROMIUM_PUBLISH[CHROMIUM_PUBLISH.find("m=video").unwrap()..];
    let many = format!("{CHROMIUM_PUBLISH}{}", video.repeat(1000));
    let m = refused(&many);
    assert!(m.contains("more than 16 m-lines"), "{m}");
    let cand = "a=candidate:1 1 udp 2122260223 192.168.1.10 54321 typ host generation 0\r\n";
    let many = CHROMIUM_PUBLISH.replace(cand, &cand.repeat(10_000));
    let m = refused(&many);
    assert!(m.contains("more than 64 ICE candidates"), "{m}");
    let long = CHROMIUM_PUBLISH.replace(
        "a=ice-options:trickle",
        &format!("a=x:{}", "y".repeat(5000)),
    );
    assert!(refused(&long).contains("bytes long"));
    assert!(refused("hello").contains("v=0"));
}
