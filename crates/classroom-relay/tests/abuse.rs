//! What a bad client can send, against the real binary on loopback while a lesson
//! runs (real str0m peers over UDP): each case gets its exact status, the lesson
//! goes on with its voice whole, and nothing leaks (sessions, file descriptors).

mod common;

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use relay_sim::load::{run, LoadPlan, Server};
use relay_sim::population::{file_plan, AccessFile, ACCESS_KINDS};
use str0m::media::Direction;

struct Resp {
    status: u16,
    body: String,
    retry_after: Option<String>,
}

fn post(url: &str, token: &str, body: &str) -> Resp {
    let r = ureq::post(url)
        .set("Authorization", &format!("Bearer {token}"))
        .set("Content-Type", "application/sdp")
        .timeout(Duration::from_secs(10))
        .send_string(body);
    let r = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST {url}: {e}"),
    };
    Resp {
        status: r.status(),
        retry_after: r.header("retry-after").map(String::from),
        body: r.into_string().unwrap_or_default(),
    }
}

const MAX_BODY: usize = 4 << 20;

/// True once the relay has closed the connection (EOF or reset).
fn closed_by_peer(s: &mut TcpStream) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut b = [0u8; 512];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn metric(base: &str, name: &str) -> f64 {
    relay_sim::load::scrape(base)
        .unwrap()
        .get(name)
        .copied()
        .unwrap_or(f64::NAN)
}

fn refused(base: &str, reason: &str) -> f64 {
    let text = ureq::get(&format!("{base}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let key = format!("classroom_relay_refused_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Bad offers: each answered 400 with its reason, none reaches the WebRTC stack.
fn bad_offers(whep: &str, class: &str) {
    let good = common::offer(Direction::RecvOnly);
    let vp8 = good
        .lines()
        .find(|l| l.starts_with("a=rtpmap:") && l.contains("VP8"))
        .unwrap()
        .to_string();
    let pt = vp8["a=rtpmap:".len()..]
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let video = &good[good.find("m=video").unwrap()..];
    let cand = "a=candidate:1 1 udp 2122260223 10.0.0.1 5000 typ host\r\n";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "repeated payload type",
            good.replace(
                &format!("{vp8}\r\n"),
                &format!("{vp8}\r\na=rtpmap:{pt} H264/90000\r\n"),
            ),
            "twice",
        ),
        (
            "missing rtpmap",
            good.replace(&format!("{vp8}\r\n"), ""),
            "no a=rtpmap",
        ),
        (
            "contradictory directions",
            good.replacen("a=recvonly\r\n", "a=recvonly\r\na=sendonly\r\n", 1),
            "contradictory directions",
        ),
        (
            "1,000 m-lines",
            format!("{good}{}", video.repeat(1000)),
            "m-lines",
        ),
        (
            "10,000 candidates",
            good.replacen("a=mid:", &format!("{}a=mid:", cand.repeat(10_000)), 1),
            "candidates",
        ),
    ];
    for (what, sdp, says) in cases {
        assert!(sdp.len() < MAX_BODY, "{what}: {} bytes", sdp.len());
        let r = post(whep, class, &sdp);
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        assert!(r.body.contains(says), "{what}: {}", r.body);
        eprintln!("{what}: {} {}", r.status, r.body.trim());
    }
}

#[test]
fn abuse_is_refused_and_the_lesson_goes_on() {
    // Bodies up to MAX_BODY so the 1,000-m-line and 10,000-candidate offers reach
    // the SDP check (by default 64 kB stops them earlier with 413).
    let dir = std::env::temp_dir().join(format!("cr-abuse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("relay.json");
    std::fs::write(
        &cfg,
        format!(r#"{{"server": {{"max_body_bytes": {MAX_BODY}}}}}"#),
    )
    .unwrap();
    let relay = common::start(&["--config", cfg.to_str().unwrap()]);
    let base = relay.base.clone();
    let whep = format!("{base}/whep/math");

    // The ongoing lesson: a str0m teacher and two str0m classrooms over real UDP.
    let kinds = AccessFile::load("access-kinds.json", ACCESS_KINDS).unwrap();
    let f = r#"{"name": "abuse", "lesson_minutes": 1, "hubs": [{"id": "hub",
        "uplink": {"access": "fibre"},
        "schools": [{"id": "calm-1", "access": "fibre", "down_kbps": 20000},
                    {"id": "calm-2", "access": "fibre", "down_kbps": 20000}]}]}"#;
    let plan = LoadPlan {
        relay: base.clone(),
        lessons: file_plan("abuse.json", f, &kinds, 3).unwrap().1.lessons,
        duration: Duration::from_secs(75),
        secret: relay_config::DEVELOPMENT_SECRET.to_string(),
        seed: 5,
        server: Server::ClassroomRelay,
    };
    // The name the load generator gives its first lesson.
    let lesson_name = format!("load-{}-0", std::process::id());
    let lesson = std::thread::spawn(move || run(&plan, &|_, _| {}));
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&base, "classroom_relay_subscribers") < 2.0 {
        assert!(Instant::now() < deadline, "the lesson did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let pid = relay.pid();
    let fds_before = fds(pid);
    let forwarded_before = metric(&base, "classroom_relay_packets_forwarded_total");

    let class = common::token("math", "classroom", Some("curious"), &[]);
    bad_offers(&whep, &class);

    // Tokens: 64 kB of garbage, an unknown signer, an expired one: 401 each.
    let sub = common::offer(Direction::RecvOnly);
    let huge = format!("crt1.{}.x", "A".repeat(64 * 1024));
    let forged = format!("{}x", &class[..class.len() - 1]);
    let expired = common::token("math", "classroom", Some("curious"), &["--ttl", "1s"]);
    std::thread::sleep(Duration::from_millis(2100));
    for (what, t) in [("64 kB", &huge), ("forged", &forged), ("expired", &expired)] {
        let r = post(&whep, t, &sub);
        assert_eq!(r.status, 401, "{what} token: {}", r.body);
    }

    // A flood of 500 offers on one classroom token: a few are admitted (the school's
    // burst), the rest get 429 with Retry-After; never a 5xx.
    let mut created = 0;
    let mut limited = 0;
    for _ in 0..500 {
        let r = post(&whep, &class, &sub);
        match r.status {
            201 => created += 1,
            429 => {
                limited += 1;
                assert!(r.retry_after.is_some(), "429 without Retry-After");
                assert!(r.body.contains("limits.school_"), "{}", r.body);
            }
            s => panic!("flood answered {s}: {}", r.body),
        }
    }
    eprintln!("flood: {created} admitted, {limited} refused with 429");
    assert!(
        (1..=8).contains(&created),
        "{created} flood sessions admitted"
    );
    assert_eq!(created + limited, 500);

    // 20,000 random datagrams at the media port.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut buf = [0u8; 1200];
    for i in 0..20_000 {
        let n = 1 + (i * 7919) % buf.len();
        for b in buf[..n].iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed as u8;
        }
        // Some look like RTP/RTCP, STUN and DTLS to reach those parsers.
        buf[0] = [0x80, 0x00, 0x16, seed as u8][i % 4];
        let _ = udp.send_to(&buf[..n], &relay.udp[0]);
        if i % 500 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    // The lesson still forwards, a new classroom can still join (it never
    // connects: it expires like the flood's sessions).
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&base, "classroom_relay_packets_forwarded_total") < forwarded_before + 1000.0 {
        assert!(Instant::now() < deadline, "the lesson stopped forwarding");
        std::thread::sleep(Duration::from_millis(200));
    }
    let newcomer = common::token(&lesson_name, "classroom", Some("newcomer"), &[]);
    let r = post(&format!("{base}/whep/{lesson_name}"), &newcomer, &sub);
    assert_eq!(r.status, 201, "{}", r.body);

    // 400 half-open HTTP connections (headers never finished): a real request is
    // still answered, and the relay closes them within its 10 s header timeout.
    let addr = base.trim_start_matches("http://").to_string();
    let mut half_open: Vec<TcpStream> = (0..400)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            let _ = s.write_all(b"POST /whep/math HTTP/1.1\r\nHost: x\r\n");
            s
        })
        .collect();
    let r = ureq::get(&format!("{base}/readyz")).call().unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        fds(pid) >= fds_before + 300,
        "the half-open connections are open"
    );
    std::thread::sleep(Duration::from_secs(13));
    let closed = half_open
        .iter_mut()
        .map(closed_by_peer)
        .filter(|c| *c)
        .count();
    drop(half_open);
    assert!(
        closed >= 390,
        "only {closed} of 400 half-open connections were closed"
    );

    // Nothing leaks: the flood's sessions (and the newcomer, which never connects)
    // expire within 15 s of their offer; the relay is back to the lesson's sessions.
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&base, "classroom_relay_sessions") > 3.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!(
        "after: sessions {} publishers {} subscribers {} connect timeouts {}",
        metric(&base, "classroom_relay_sessions"),
        metric(&base, "classroom_relay_publishers"),
        metric(&base, "classroom_relay_subscribers"),
        metric(&base, "classroom_relay_connect_timeouts_total")
    );
    assert_eq!(
        metric(&base, "classroom_relay_sessions"),
        3.0,
        "teacher + 2 classrooms"
    );
    assert_eq!(metric(&base, "classroom_relay_subscribers"), 2.0);
    assert_eq!(metric(&base, "classroom_relay_contained_panics_total"), 0.0);
    assert!(
        metric(&base, "classroom_relay_stray_datagrams_total") >= 10_000.0,
        "the garbage datagrams were dropped as stray (some may be lost in the kernel)"
    );
    assert!(metric(&base, "classroom_relay_connect_timeouts_total") >= created as f64);
    assert!(refused(&base, "bad_offer") >= 3.0);
    assert_eq!(
        refused(&base, "school_rate") + refused(&base, "school_sessions"),
        limited as f64
    );
    assert!(
        fds(pid) <= fds_before + 5,
        "file descriptors: {} before, {} after",
        fds_before,
        fds(pid)
    );

    let report = lesson.join().unwrap().expect("the lesson ran to its end");
    eprintln!(
        "voice {} of {}; schools {:?}",
        report.audio_received,
        report.audio_expected,
        report
            .schools
            .iter()
            .map(|s| (&s.id, s.first_frame_ms))
            .collect::<Vec<_>>()
    );
    assert!(report.audio_expected > 1000);
    assert!(
        report.audio_received as f64 >= report.audio_expected as f64 * 0.995,
        "voice lost during the abuse: {} of {}",
        report.audio_received,
        report.audio_expected
    );
    for s in &report.schools {
        assert!(s.first_frame_ms.is_some(), "{} saw no picture", s.id);
        assert!(
            s.audio_concealed_pct < 1.0,
            "{}: {} % concealed",
            s.id,
            s.audio_concealed_pct
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
