//! Every WHIP/WHEP error status, against the real binary on loopback, and the relay
//! keeps serving after each.

mod common;

use std::time::Duration;

use str0m::media::Direction;

struct Resp {
    status: u16,
    body: String,
    location: Option<String>,
    allow: Option<String>,
}

fn call(method: &str, url: &str, token: Option<&str>, ct: Option<&str>, body: &str) -> Resp {
    try_call(method, url, token, ct, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

fn try_call(
    method: &str,
    url: &str,
    token: Option<&str>,
    ct: Option<&str>,
    body: &str,
) -> Result<Resp, String> {
    let mut r = ureq::request(method, url);
    if let Some(t) = token {
        r = r.set("Authorization", &format!("Bearer {t}"));
    }
    if let Some(c) = ct {
        r = r.set("Content-Type", c);
    }
    let resp = match r.send_string(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.to_string()),
    };
    Ok(Resp {
        status: resp.status(),
        location: resp.header("location").map(String::from),
        allow: resp.header("allow").map(String::from),
        body: resp.into_string().unwrap_or_default(),
    })
}

#[test]
fn error_statuses_and_recovery() {
    let relay = common::start(&[]);
    let whip = format!("{}/whip/math", relay.base);
    let whep = format!("{}/whep/math", relay.base);
    let sdp = Some("application/sdp");
    let teacher = common::token("math", "teacher", None, &[]);
    let teacher2 = common::token("math", "teacher", None, &[]);
    let class = common::token("math", "classroom", Some("s1"), &[]);
    let other_lesson = common::token("bio", "teacher", None, &[]);
    let pub_offer = common::offer(Direction::SendOnly);
    let sub_offer = common::offer(Direction::RecvOnly);

    // 401: missing, garbage, wrong secret.
    let r = call("POST", &whip, None, sdp, &pub_offer);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("Bearer"));
    assert_eq!(
        call("POST", &whip, Some("nope"), sdp, &pub_offer).status,
        401
    );
    let forged = format!("{}x", &teacher[..teacher.len() - 1]);
    assert_eq!(
        call("POST", &whip, Some(&forged), sdp, &pub_offer).status,
        401
    );
    // 401: expired.
    let short = common::token("math", "teacher", None, &["--ttl", "1s"]);
    std::thread::sleep(Duration::from_millis(2100));
    let r = call("POST", &whip, Some(&short), sdp, &pub_offer);
    assert_eq!(r.status, 401);
    assert!(r.body.contains("expired"), "{}", r.body);
    // 403: wrong role, wrong lesson.
    assert_eq!(
        call("POST", &whip, Some(&class), sdp, &pub_offer).status,
        403
    );
    let r = call("POST", &whep, Some(&other_lesson), sdp, &sub_offer);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = call("POST", &whip, Some(&other_lesson), sdp, &pub_offer);
    assert_eq!(r.status, 403);
    assert!(r.body.contains("bio"), "{}", r.body);
    // 415: content type.
    assert_eq!(
        call(
            "POST",
            &whip,
            Some(&teacher),
            Some("text/plain"),
            &pub_offer
        )
        .status,
        415
    );
    assert_eq!(
        call("POST", &whip, Some(&teacher), None, &pub_offer).status,
        415
    );
    // 413: oversized body.
    let big = format!("v=0\r\n{}", "a=x\r\n".repeat(20_000));
    // The relay answers 413 as soon as the limit is passed and closes; a client still
    // writing may see the close first (EPIPE), so a few attempts are allowed.
    let status = (0..5)
        .find_map(|_| try_call("POST", &whip, Some(&teacher), sdp, &big).ok())
        .expect("no answer to an oversized body in 5 attempts")
        .status;
    assert_eq!(status, 413);
    // 400: not SDP, SDP with nothing to forward, a teacher offer that only receives.
    assert_eq!(
        call("POST", &whip, Some(&teacher), sdp, "hello").status,
        400
    );
    assert_eq!(
        call("POST", &whip, Some(&teacher), sdp, "v=0\r\nbroken").status,
        400
    );
    let r = call("POST", &whip, Some(&teacher), sdp, &sub_offer);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("forward"), "{}", r.body);
    let r = call(
        "POST",
        &whep,
        Some(&class),
        sdp,
        &pub_offer.replace("sendonly", "inactive"),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        call(
            "POST",
            &format!("{whep}?layer=huge"),
            Some(&class),
            sdp,
            &sub_offer
        )
        .status,
        400
    );

    // 201 with Location and an SDP answer.
    let r = call("POST", &whip, Some(&teacher), sdp, &pub_offer);
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body.starts_with("v=0"));
    let loc = r.location.expect("Location");
    assert!(loc.starts_with("/whip/math/"), "{loc}");
    // 409: another teacher token while the first session lives.
    let r = call("POST", &whip, Some(&teacher2), sdp, &pub_offer);
    assert_eq!(r.status, 409, "{}", r.body);
    // The same token again is a reconnect: it replaces the old session.
    let r = call("POST", &whip, Some(&teacher), sdp, &pub_offer);
    assert_eq!(r.status, 201, "{}", r.body);
    let loc2 = r.location.unwrap();
    assert_eq!(
        call(
            "DELETE",
            &format!("{}{loc}", relay.base),
            Some(&teacher),
            None,
            ""
        )
        .status,
        404,
        "replaced session is gone"
    );

    // A classroom.
    let r = call("POST", &whep, Some(&class), sdp, &sub_offer);
    assert_eq!(r.status, 201, "{}", r.body);
    let cloc = r.location.unwrap();
    // PATCH: 405 with Allow.
    let r = call(
        "PATCH",
        &format!("{}{cloc}", relay.base),
        Some(&class),
        Some("application/trickle-ice-sdpfrag"),
        "a=x",
    );
    assert_eq!(r.status, 405);
    assert!(r.allow.unwrap_or_default().contains("DELETE"));
    // OPTIONS for CORS preflight.
    let r = call("OPTIONS", &whip, None, None, "");
    assert!(r.status == 204 || r.status == 200, "{}", r.status);
    // DELETE: 200, then 404; unknown resource 404.
    assert_eq!(
        call(
            "DELETE",
            &format!("{}{cloc}", relay.base),
            Some(&class),
            None,
            ""
        )
        .status,
        200
    );
    assert_eq!(
        call(
            "DELETE",
            &format!("{}{cloc}", relay.base),
            Some(&class),
            None,
            ""
        )
        .status,
        404
    );
    assert_eq!(
        call("DELETE", &format!("{whip}/0123"), Some(&teacher), None, "").status,
        404
    );
    assert_eq!(
        call(
            "DELETE",
            &format!("{}{loc2}", relay.base),
            Some(&teacher),
            None,
            ""
        )
        .status,
        200
    );
    // After the teacher left, another teacher may publish.
    assert_eq!(
        call("POST", &whip, Some(&teacher2), sdp, &pub_offer).status,
        201
    );

    // Still serving, and metrics speak Prometheus.
    assert_eq!(
        call("GET", &format!("{}/healthz", relay.base), None, None, "").status,
        200
    );
    let m = call("GET", &format!("{}/metrics", relay.base), None, None, "");
    assert!(
        m.body.contains("classroom_relay_publishers 1"),
        "{}",
        m.body
    );
    assert!(m.body.contains("classroom_relay_packets_forwarded_total"));
}

/// An offer that sends only video (no microphone).
fn video_only_offer() -> String {
    use str0m::media::MediaKind;
    str0m::crypto::from_feature_flags().install_process_default();
    let mut rtc = str0m::Rtc::new(std::time::Instant::now());
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    api.apply().unwrap().0.to_sdp_string()
}

#[test]
fn talk_hand_and_floor_errors_and_recovery() {
    let relay = common::start(&[]);
    let b = &relay.base;
    let talk = format!("{b}/talk/math");
    let hand = format!("{b}/api/lessons/math/hand");
    let floor = format!("{b}/api/lessons/math/floor");
    let list = format!("{b}/api/lessons/math");
    let (sdp, json) = (Some("application/sdp"), Some("application/json"));
    let teacher = common::token("math", "teacher", None, &[]);
    let s1 = common::token("math", "classroom", Some("s1"), &[]);
    let s2 = common::token("math", "classroom", Some("s2"), &[]);
    let bio = common::token("bio", "classroom", Some("s1"), &[]);
    let mic = common::offer(Direction::SendOnly);
    let still_serving = || {
        assert_eq!(
            call("GET", &format!("{b}/healthz"), None, None, "").status,
            200
        );
    };

    // Talk: a classroom's microphone, WHIP-shaped.
    let r = call("POST", &talk, None, sdp, &mic);
    assert_eq!(r.status, 401, "{}", r.body);
    let r = call("POST", &talk, Some(&teacher), sdp, &mic);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("classroom token"), "{}", r.body);
    let r = call("POST", &talk, Some(&bio), sdp, &mic);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        call("POST", &talk, Some(&s1), Some("text/plain"), &mic).status,
        415
    );
    assert_eq!(call("POST", &talk, Some(&s1), sdp, "hello").status, 400);
    let r = call("POST", &talk, Some(&s1), sdp, &video_only_offer());
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("audio"), "{}", r.body);
    still_serving();
    let r = call("POST", &talk, Some(&s1), sdp, &mic);
    assert_eq!(r.status, 201, "{}", r.body);
    let location = r.location.expect("Location");
    assert!(location.starts_with("/talk/math/"), "{location}");

    // Hand: classroom token, a JSON body, a school in the lesson.
    let r = call("POST", &hand, Some(&teacher), json, r#"{"raised": true}"#);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = call("POST", &hand, Some(&bio), json, r#"{"raised": true}"#);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        call("POST", &hand, None, json, r#"{"raised": true}"#).status,
        401
    );
    for bad in [r#"{"raised": "yes"}"#, r#"{"up": true}"#, "raised", ""] {
        let r = call("POST", &hand, Some(&s1), json, bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let r = call(
        "POST",
        &hand,
        Some(&s1),
        Some("text/plain"),
        r#"{"raised": true}"#,
    );
    assert_eq!(r.status, 415, "{}", r.body);
    let r = call("POST", &hand, Some(&s1), json, &" ".repeat(5000));
    assert_eq!(r.status, 413, "{}", r.body);
    // s2 has no session in the lesson.
    let r = call("POST", &hand, Some(&s2), json, r#"{"raised": true}"#);
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("s2"), "{}", r.body);
    still_serving();
    let r = call("POST", &hand, Some(&s1), json, r#"{"raised": true}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["hands"], serde_json::json!(["s1"]));

    // Floor: teacher token, an existing school.
    let r = call("POST", &floor, Some(&s1), json, r#"{"school": "s1"}"#);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = call(
        "POST",
        &floor,
        Some(&teacher),
        json,
        r#"{"school": "nope"}"#,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    for bad in [
        "{}",
        r#"{"open": 1}"#,
        r#"{"school": 5}"#,
        r#"{"who": "s1"}"#,
        "[",
    ] {
        let r = call("POST", &floor, Some(&teacher), json, bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let r = call("POST", &floor, Some(&teacher), json, r#"{"school": "s1"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        (v["school"].as_str(), &v["hands"]),
        (Some("s1"), &serde_json::json!([]))
    );

    // The class list: teacher only; events need a token of the lesson.
    assert_eq!(call("GET", &list, Some(&s1), None, "").status, 403);
    let r = call("GET", &list, Some(&teacher), None, "");
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let row = &v["schools"][0];
    assert_eq!(row["school"], "s1");
    assert_eq!(
        (row["talking"].as_bool(), row["floor"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(row["watching"], false);
    let events = format!("{b}/api/lessons/math/events");
    assert_eq!(call("GET", &events, None, None, "").status, 401);
    let r = call("GET", &format!("{events}?token=garbage"), None, None, "");
    assert_eq!(r.status, 401, "{}", r.body);
    let r = call(
        "GET",
        &format!("{b}/api/lessons/bio/events?token={s1}"),
        None,
        None,
        "",
    );
    assert_eq!(r.status, 403, "{}", r.body);

    // The talk session ends with DELETE; the school (no session left) loses the floor.
    let r = call("DELETE", &format!("{b}{location}"), Some(&s1), None, "");
    assert_eq!(r.status, 200, "{}", r.body);
    std::thread::sleep(Duration::from_millis(300));
    let r = call("POST", &floor, Some(&teacher), json, r#"{"school": "s1"}"#);
    assert_eq!(r.status, 404, "{}", r.body);
    still_serving();
    assert_eq!(call("POST", &talk, Some(&s2), sdp, &mic).status, 201);
    let m = call("GET", &format!("{b}/metrics"), None, None, "");
    assert!(m.body.contains("classroom_relay_talkers 1\n"), "{}", m.body);
}

#[test]
fn restricted_lessons_and_cli_errors() {
    let dir = std::env::temp_dir().join(format!("crelay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("relay.json");
    std::fs::write(
        &cfg,
        r#"{"auth": {"token_secret": "a-test-secret-of-enough-length"}, "lessons": {"allowed": ["math"], "demo": "math"}}"#,
    )
    .unwrap();
    let cfg_s = cfg.display().to_string();
    let relay = common::start(&["--config", &cfg_s]);
    let t = common::token("math", "teacher", None, &["--config", &cfg_s]);
    let r = call(
        "POST",
        &format!("{}/whip/math", relay.base),
        Some(&t),
        Some("application/sdp"),
        &common::offer(Direction::SendOnly),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    // A token signed with the default secret is refused by this relay.
    let dev = common::token("math", "teacher", None, &[]);
    let r = call(
        "POST",
        &format!("{}/whip/math", relay.base),
        Some(&dev),
        Some("application/sdp"),
        "v=0",
    );
    assert_eq!(r.status, 401);
    // The CLI refuses to mint a token for a lesson the config does not serve.
    let out = std::process::Command::new(common::bin())
        .args([
            "token", "--lesson", "bio", "--role", "teacher", "--config", &cfg_s,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lessons.allowed"));
    // check-config names each problem's path.
    std::fs::write(
        &cfg,
        r#"{"server": {"udp": "0.0.0.0:1"}, "media": {"keyframe_interval_ms": 1, "x": 1}}"#,
    )
    .unwrap();
    let out = std::process::Command::new(common::bin())
        .args(["check-config", &cfg_s])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("media.x"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::write(
        &cfg,
        r#"{"server": {"udp": "0.0.0.0:1"}, "media": {"keyframe_interval_ms": 1}}"#,
    )
    .unwrap();
    let out = std::process::Command::new(common::bin())
        .args(["check-config", &cfg_s])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("server.advertise") && text.contains("media.keyframe_interval_ms"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
