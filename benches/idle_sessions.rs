//! What a session that never connects costs the relay, and that it is given back:
//! the real binary on loopback takes N WHEP offers that never start ICE, and the
//! relay's RSS and file descriptors are read before, with the N open, and after they
//! expired (15 s without connecting); then a second wave, which must reuse the
//! memory the first gave back.
//!
//! ```sh
//! cargo bench -p classroom-relay --bench idle_sessions                 # 500 sessions
//! cargo bench -p classroom-relay --bench idle_sessions -- --sessions 2000
//! ```
//!
//! Under `cargo test` it runs two waves of 40 as a smoke check: they expire, give
//! their descriptors back, and the second wave adds at most half what the first did.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use relay_http::token::{sign, Claims, TokenRole};

struct Relay {
    child: Child,
    base: String,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_relay() -> Relay {
    let cfg = std::env::temp_dir().join("classroom-relay-bench-idle.json");
    std::fs::write(
        &cfg,
        r#"{"limits": {"sessions": 100000, "new_sessions_per_second": 100000, "lessons": 100000,
            "address_sessions": 100000, "address_new_per_second": 100000}}"#,
    )
    .expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_classroom-relay"))
        .args(["serve", "--http", "127.0.0.1:0", "--udp", "127.0.0.1:0"])
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start classroom-relay");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("classroom-relay listening: http=")
                .map(|r| format!("http://{}", r.split_whitespace().next().unwrap_or("")))
        })
        .expect("the relay printed its listening line");
    std::thread::spawn(move || for _ in lines {});
    Relay { child, base }
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn sessions(base: &str) -> f64 {
    relay_sim::load::scrape(base)
        .ok()
        .and_then(|m| m.get("classroom_relay_sessions").copied())
        .unwrap_or(f64::NAN)
}

fn offer() -> String {
    use str0m::media::{Direction, MediaKind};
    let mut rtc = str0m::Rtc::new(Instant::now());
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    api.apply().expect("offer").0.to_sdp_string()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let n: usize = args
        .iter()
        .position(|a| a == "--sessions")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench { 500 } else { 40 });
    str0m::crypto::from_feature_flags().install_process_default();
    let relay = start_relay();
    let pid = relay.child.id();
    std::thread::sleep(Duration::from_millis(500));
    let (rss0, fd0) = (rss_kb(pid), fds(pid));
    let sdp = offer();
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    // Two waves: the second must reuse what the first gave back.
    let mut after = Vec::new();
    let mut fd2 = fd0;
    for wave in 0..2 {
        let t0 = Instant::now();
        for i in 0..n {
            // One school per session, so the per-school limit does not apply.
            let school = format!("w{wave}-s{i}");
            let claims = Claims::new("idle", TokenRole::Classroom, Some(&school), exp);
            let token = sign(relay_config::DEVELOPMENT_SECRET, &claims);
            let r = ureq::post(&format!("{}/whep/idle", relay.base))
                .set("Authorization", &format!("Bearer {token}"))
                .set("Content-Type", "application/sdp")
                .send_string(&sdp);
            assert!(matches!(&r, Ok(r) if r.status() == 201), "offer {i}: {r:?}");
        }
        let opened = t0.elapsed();
        let (rss1, fd1) = (rss_kb(pid), fds(pid));
        assert_eq!(sessions(&relay.base), n as f64);
        // They expire 15 s after their offer; wait for the last one.
        let deadline = Instant::now() + Duration::from_secs(25);
        while sessions(&relay.base) > 0.0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(250));
        }
        let gone = t0.elapsed();
        let rss2 = rss_kb(pid);
        fd2 = fds(pid);
        println!(
            "wave {}: {n} WHEP offers that never connect, opened in {:.1} s, all expired {:.1} s after the first",
            wave + 1,
            opened.as_secs_f64(),
            gone.as_secs_f64()
        );
        println!(
            "  RSS with them open {rss1} kB ({:.1} kB per session over the {rss0} kB at start), after they expired {rss2} kB; fds {fd1} open, {fd2} after",
            (rss1.saturating_sub(rss0)) as f64 / n as f64
        );
        assert_eq!(
            sessions(&relay.base),
            0.0,
            "sessions that never connected did not expire"
        );
        after.push(rss2);
    }
    let first = after[0].saturating_sub(rss0);
    let second = after[1].saturating_sub(after[0]);
    println!("  the second wave grew RSS by {second} kB (the first by {first} kB)");
    assert!(
        second <= first / 2,
        "memory is not reused: the first wave left {first} kB, the second {second} kB more"
    );
    assert!(fd2 <= fd0 + 2, "file descriptors leaked: {fd0} -> {fd2}");
}
