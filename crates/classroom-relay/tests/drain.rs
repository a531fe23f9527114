//! SIGTERM: the relay refuses new sessions (503 + Retry-After, `/readyz` 503), the
//! lesson in progress goes on with its voice whole, and the relay exits 0 when the
//! lesson ends, or when the drain timeout passes.

mod common;

use std::time::{Duration, Instant};

use relay_sim::load::{run, LoadPlan, Server};
use relay_sim::population::{file_plan, AccessFile, ACCESS_KINDS};

fn plan(base: &str, seconds: u64) -> LoadPlan {
    let kinds = AccessFile::load("access-kinds.json", ACCESS_KINDS).unwrap();
    let f = r#"{"name": "drain", "lesson_minutes": 1, "hubs": [{"id": "hub",
        "uplink": {"access": "fibre"},
        "schools": [{"id": "s1", "access": "fibre", "down_kbps": 20000}]}]}"#;
    LoadPlan {
        relay: base.to_string(),
        lessons: file_plan("drain.json", f, &kinds, 3).unwrap().1.lessons,
        duration: Duration::from_secs(seconds),
        secret: relay_config::DEVELOPMENT_SECRET.to_string(),
        seed: 9,
        server: Server::ClassroomRelay,
    }
}

fn config(drain: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cr-drain-{}-{drain}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("relay.json");
    std::fs::write(
        &cfg,
        format!(r#"{{"server": {{"drain_timeout": "{drain}"}}}}"#),
    )
    .unwrap();
    cfg
}

fn get(url: &str) -> (u16, Option<String>, String) {
    let r = match ureq::get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    (
        r.status(),
        r.header("retry-after").map(String::from),
        r.into_string().unwrap_or_default(),
    )
}

fn wait_for_lesson(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = relay_sim::load::scrape(base).unwrap();
        if m.get("classroom_relay_subscribers") == Some(&1.0) {
            return;
        }
        assert!(Instant::now() < deadline, "the lesson did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn sigterm_drains_the_lesson_then_exits_zero() {
    let cfg = config("60s");
    let mut relay = common::start(&["--config", cfg.to_str().unwrap()]);
    let base = relay.base.clone();
    assert_eq!(get(&format!("{base}/readyz")).0, 200);
    let p = plan(&base, 14);
    let lesson = std::thread::spawn(move || run(&p, &|_, _| {}));
    wait_for_lesson(&base);
    std::thread::sleep(Duration::from_secs(2));

    relay.signal("TERM");
    std::thread::sleep(Duration::from_millis(500));
    let (status, retry, body) = get(&format!("{base}/readyz"));
    assert_eq!(status, 503, "{body}");
    assert!(retry.is_some() && body.contains("draining"), "{body}");
    assert_eq!(
        get(&format!("{base}/healthz")).0,
        200,
        "alive while draining"
    );
    // A new classroom is refused with 503 and Retry-After.
    let token = common::token("other", "classroom", Some("late"), &[]);
    let r = ureq::post(&format!("{base}/whep/other"))
        .set("Authorization", &format!("Bearer {token}"))
        .set("Content-Type", "application/sdp")
        .send_string(&common::offer(str0m::media::Direction::RecvOnly));
    match r {
        Err(ureq::Error::Status(503, r)) => {
            assert!(r.header("retry-after").is_some());
            let body = r.into_string().unwrap();
            assert!(body.contains("shutting down"), "{body}");
        }
        Err(e) => panic!("expected 503, got {e}"),
        Ok(r) => panic!("expected 503, got {}", r.status()),
    }
    let m = relay_sim::load::scrape(&base).unwrap();
    assert_eq!(m.get("classroom_relay_draining"), Some(&1.0));

    // The lesson goes on to its end, with its voice whole.
    let report = lesson.join().unwrap().expect("the lesson ran to its end");
    assert!(
        report.audio_received as f64 >= report.audio_expected as f64 * 0.995,
        "voice {} of {}",
        report.audio_received,
        report.audio_expected
    );
    assert!(report.schools[0].first_frame_ms.is_some());
    // Its teacher left: the relay exits 0 by itself, long before the drain timeout.
    let st = relay
        .wait_exit(Duration::from_secs(10))
        .expect("the relay exits once the lesson ended");
    assert!(st.success(), "exit status {st}");
}

#[test]
fn the_drain_timeout_ends_a_lesson_that_goes_on() {
    let cfg = config("3s");
    let mut relay = common::start(&["--config", cfg.to_str().unwrap()]);
    let base = relay.base.clone();
    let p = plan(&base, 30);
    let lesson = std::thread::spawn(move || run(&p, &|_, _| {}));
    wait_for_lesson(&base);
    let t = Instant::now();
    relay.signal("TERM");
    let st = relay
        .wait_exit(Duration::from_secs(15))
        .expect("the relay exits after its drain timeout");
    let took = t.elapsed();
    assert!(st.success(), "exit status {st}");
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_secs(15),
        "exited {took:?} after SIGTERM with a 3 s drain timeout"
    );
    // The load generator notices its relay is gone.
    assert!(lesson.join().unwrap().is_err());
}
