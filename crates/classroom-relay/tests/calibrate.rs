//! The simulator's receiver against Chromium's: for each calibration profile
//! (`sim/data/calibration.json`: 3G, satellite, ADSL), a Chromium classroom watches
//! a Chromium teacher through the very links the replay gives that school (the
//! shaping proxy, `relay_sim::shape`, with the same schedule, rate, queue, delay,
//! jitter and loss), and the replay runs the same lesson and seed on its virtual
//! clock. Their freezes per minute must agree within a factor of 1.5 or one freeze
//! per minute (twice that in runs under 4 minutes, which get a second go when the
//! first disagrees: see [`attempts`]); frames, layers, concealed voice and the
//! proxy's stalls are printed beside them.
//!
//! `CALIBRATE_SECONDS` (default 120) sets the lesson's length and
//! `CALIBRATE_PROFILES` (comma-separated hub ids, or `all`) the profiles; the table
//! in benches/README.md comes from `CALIBRATE_SECONDS=240 CALIBRATE_PROFILES=all`.
//! The suite runs the 3G profile only: on the satellite one the relay's estimate
//! of a Chromium classroom swings between about 0.5 and 1.6 Mbit/s from run to
//! run (it pauses the camera in some), so two minutes of it do not compare.
//!
//! Needs CAP_NET_ADMIN (root) for `ip netns`; where that is not possible the test
//! says SKIPPED on stderr and does nothing else (and fails under CI=true).

mod common;

use std::time::Duration;

use common::netns::make_netns_or_skip;
use relay_sim::population::{file_plan, AccessFile, ACCESS_KINDS};
use relay_sim::replay::{lesson_analyses, lesson_seed, school_links};
use relay_sim::shape::Shaper;

const SEED: u64 = 1;

/// Freezes per minute must agree within this factor, or this many a minute: the
/// goal (1.5, or one a minute) for runs of 4 minutes or more; twice that for the
/// suite's 2-minute run, where one stall of the teacher's browser (it dropped its
/// top layer twice in one run) moved Chromium's count by 1.5 a minute. The
/// simulator's old receiver was 8 a minute off on the 3G link.
fn tolerance(seconds: u64) -> (f64, f64) {
    if seconds >= 240 {
        (1.5, 1.0)
    } else {
        (2.0, 2.0)
    }
}

/// Chromium runs in the suite's short form: a second when the first disagrees.
/// On a 2-core machine shared with two browsers, the relay and the proxy, one run
/// in a few goes wrong by the machine alone (CI once saw Chromium freeze 4.5
/// times a minute where runs on the idle machine saw 1 to 2.5, the relay's
/// estimate of it sinking to 436 kbit/s on the 1.3 Mbit/s link); a receiver
/// model that is wrong disagrees in both. Runs of 4 minutes or more, which
/// measure the goal, get one.
fn attempts(seconds: u64) -> u32 {
    if seconds >= 240 {
        1
    } else {
        2
    }
}

#[test]
fn simulator_freezes_agree_with_chromium_behind_the_same_links() {
    let seconds: u64 = std::env::var("CALIBRATE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let path = common::root().join("sim/data/calibration.json");
    let text = std::fs::read_to_string(&path).expect("read sim/data/calibration.json");
    let kinds = AccessFile::load("access-kinds.json", ACCESS_KINDS).unwrap();
    let (_, mut plan) = file_plan("calibration.json", &text, &kinds, SEED).unwrap();
    let wanted = std::env::var("CALIBRATE_PROFILES").unwrap_or_else(|_| "hub-3g".into());
    let wanted = Some(wanted).filter(|w| w != "all");
    let mut rows = vec![];
    let mut bad = vec![];
    for (i, lesson) in plan.lessons.iter_mut().enumerate() {
        if wanted
            .as_deref()
            .is_some_and(|w| !w.split(',').any(|h| h == lesson.hub))
        {
            continue;
        }
        lesson.minutes = seconds.div_ceil(60);
        let seed = lesson_seed(SEED, i);
        let sim = &lesson_analyses(lesson, seed)[0];
        let r = &sim.result;
        let sim_minutes = lesson.minutes as f64;
        let min = seconds as f64 / 60.0;
        let sf = r.freeze_count as f64 / sim_minutes;
        let (factor, slack) = tolerance(seconds);
        let agrees =
            |cf: f64| (cf - sf).abs() <= slack || (cf.max(sf) / cf.min(sf).max(1e-9)) <= factor;
        let mut browser = None;
        for attempt in 1..=attempts(seconds) {
            let Some(b) = chromium_behind(lesson, seed, i as u32, seconds) else {
                return;
            };
            let cf = b["freezes"].as_f64().unwrap() / min;
            let done = agrees(cf);
            browser = Some(b);
            if done {
                break;
            }
            println!("attempt {attempt}: Chromium {cf:.1} freezes/min, simulator {sf:.1}");
        }
        let browser = browser.unwrap();
        let cf = browser["freezes"].as_f64().unwrap() / min;
        let agree = agrees(cf);
        let share = |v: &serde_json::Value| {
            ["180p", "360p", "720p"]
                .map(|k| format!("{:.0}", 100.0 * v[k].as_f64().unwrap_or(0.0)))
                .join("/")
        };
        let sim_share = format!(
            "{:.0}/{:.0}/{:.0}",
            100.0 * r.layer_share.p180,
            100.0 * r.layer_share.p360,
            100.0 * r.layer_share.p720
        );
        let row = format!(
            "| {} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {} / {} | {:.2} / {:.2} | {} |",
            lesson.schools[0].id,
            cf,
            sf,
            browser["frozen_s"].as_f64().unwrap() / min,
            r.freeze_ms as f64 / 1000.0 / sim_minutes,
            browser["frames"].as_f64().unwrap() / seconds as f64,
            sim.frames.len() as f64 / (sim_minutes * 60.0),
            share(&browser["layer_share"]),
            sim_share,
            browser["concealed_pct"].as_f64().unwrap(),
            r.audio_concealed_pct,
            browser["jitter_buffer_ms"],
        );
        println!("{row}");
        if !agree {
            bad.push(format!(
                "{}: Chromium {cf:.1} freezes/min, simulator {sf:.1}",
                lesson.schools[0].id
            ));
        }
        rows.push(row);
    }
    println!(
        "| school | freezes/min, Chromium / sim | frozen s/min | frames/s | camera 180p/360p/720p % | voice concealed % | Chromium's jitter buffer ms |"
    );
    for r in &rows {
        println!("{r}");
    }
    assert!(
        bad.is_empty(),
        "the simulator disagrees with Chromium: {bad:?}"
    );
}

/// A Chromium teacher on loopback and a Chromium classroom in a network namespace
/// whose only way to the relay is the shaping proxy with this school's links. What
/// the classroom measured (calibrate.mjs's JSON), or None when no namespace can be
/// made here (outside CI).
fn chromium_behind(
    lesson: &relay_sim::population::PlannedLesson,
    seed: u64,
    k: u32,
    seconds: u64,
) -> Option<serde_json::Value> {
    let n = 100 + (std::process::id() + 13 + 3 * k) % 150;
    let ns = make_netns_or_skip(n, |_| Ok(()))?;
    common::ensure_browser_deps();
    // The relay's media socket is on loopback only; it advertises the host's side
    // of the namespace, where the proxy listens on the same port: the classroom's
    // packets cross its links, the teacher's (from the host) pass straight.
    let relay = common::start_serve(&[
        "--http",
        "0.0.0.0:0",
        "--udp",
        "127.0.0.1:0",
        "--workers",
        "1",
        "--advertise",
        &ns.host_addr,
    ]);
    // The listening line names the sockets by their advertised address; they are
    // bound on loopback.
    let relay_udp: Vec<std::net::SocketAddr> = relay
        .udp
        .iter()
        .map(|u| {
            let a: std::net::SocketAddr = u.parse().expect("udp address");
            std::net::SocketAddr::from(([127, 0, 0, 1], a.port()))
        })
        .collect();
    let (down, up) = school_links(lesson, seed).swap_remove(0);
    let client: std::net::IpAddr = format!("{}.2", ns.host_addr.strip_suffix(".1").unwrap())
        .parse()
        .unwrap();
    let proxy = Shaper {
        listen: ns.host_addr.parse().unwrap(),
        relay: relay_udp,
        shaped: Some(client),
        down,
        up,
        seed,
    }
    .start(Duration::from_secs(seconds + 150))
    .expect("start the shaping proxy");
    let port = relay.base.rsplit(':').next().unwrap();
    let teacher_base = format!("http://127.0.0.1:{port}");
    let class_base = format!("http://{}:{port}", ns.host_addr);
    let school = &lesson.schools[0].id;
    let teacher = common::token("demo", "teacher", None, &[]);
    let classroom = common::token("demo", "classroom", Some(school), &[]);
    let wrapper = ns.wrapper("/usr/bin/chromium").display().to_string();
    let secs = seconds.to_string();
    let out = std::panic::catch_unwind(|| {
        common::run_node(
            &[],
            "calibrate.mjs",
            &[
                &teacher_base,
                &class_base,
                "demo",
                &teacher,
                &classroom,
                &secs,
            ],
            &[("CHROMIUM_LIMITED", wrapper.as_str())],
            "calibrate PASS",
        )
    });
    let _ = std::fs::remove_file(&wrapper);
    let st = proxy.stop().expect("the shaping proxy ran");
    println!("{school}: proxy {st:?}");
    let out = out.unwrap_or_else(|e| std::panic::resume_unwind(e));
    // The classroom's media took the shaped path, and the path lost packets where
    // the profile loses them.
    assert!(st.down_delivered > 1000, "{school}: proxy {st:?}");
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("calibrate {"))
        .expect("calibrate.mjs printed its figures");
    Some(serde_json::from_str(&format!("{{{line}")).expect("figures are JSON"))
}
