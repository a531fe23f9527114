//! `classroom-sim load` against the real relay binary on loopback: real str0m
//! peers over UDP, each school behind its own shaping proxy.

mod common;

use std::time::{Duration, Instant};

use relay_sim::load::{run, LoadError, LoadPlan};
use relay_sim::population::{file_plan, AccessFile, PlannedLesson, ACCESS_KINDS};

/// One hub on fibre with a thin ADSL school and a fat fibre one.
fn lessons() -> Vec<PlannedLesson> {
    let kinds = AccessFile::load("access-kinds.json", ACCESS_KINDS).unwrap();
    let f = r#"{"name": "load test", "lesson_minutes": 1, "hubs": [{"id": "hub",
        "uplink": {"access": "fibre"},
        "schools": [{"id": "thin", "access": "adsl", "down_kbps": 900, "loss_pct": 0},
                    {"id": "fat", "access": "fibre", "down_kbps": 20000}]}]}"#;
    file_plan("load.json", f, &kinds, 3).unwrap().1.lessons
}

fn plan(base: &str, duration: Duration) -> LoadPlan {
    LoadPlan {
        relay: base.to_string(),
        lessons: lessons(),
        duration,
        secret: relay_config::DEVELOPMENT_SECRET.to_string(),
        seed: 3,
        server: relay_sim::load::Server::ClassroomRelay,
    }
}

#[test]
fn a_short_load_run_reports_quality_per_school_and_relay_totals() {
    let relay = common::start(&[]);
    let r = run(&plan(&relay.base, Duration::from_secs(15)), &|_, _| {}).expect("load runs");
    for s in &r.schools {
        eprintln!(
            "{} {:?} voice {} % slides {} kbps {} first {:?}: {}",
            s.id,
            s.layer_share,
            s.audio_concealed_pct,
            s.slides_share,
            s.mean_kbps,
            s.first_frame_ms,
            s.verdict
        );
    }
    eprintln!("{:?}", r.relay_totals);
    assert_eq!(r.schools.len(), 2);
    let thin = r.schools.iter().find(|s| s.id == "thin").unwrap();
    let fat = r.schools.iter().find(|s| s.id == "fat").unwrap();
    for s in [thin, fat] {
        assert!(s.first_frame_ms.is_some(), "{} saw no picture", s.id);
        assert!(
            s.audio_concealed_pct < 10.0,
            "{}: voice {} %",
            s.id,
            s.audio_concealed_pct
        );
    }
    // The shaping proxy holds the thin school to its link; the fat one gets more.
    assert!(thin.mean_kbps < 900, "thin got {} kbit/s", thin.mean_kbps);
    assert!(fat.mean_kbps > thin.mean_kbps);
    let t = &r.relay_totals;
    assert_eq!((t.peak_publishers, t.peak_subscribers), (1, 2));
    assert!(
        t.packets_received > 1000 && t.packets_forwarded > 1000,
        "{t:?}"
    );
    // The sessions were closed at the end.
    let m = relay_sim::load::scrape(&relay.base).unwrap();
    assert_eq!(m.get("classroom_relay_subscribers"), Some(&0.0));
}

#[test]
fn a_relay_that_stops_answering_ends_the_run_with_an_error() {
    let relay = common::start(&[]);
    let p = plan(&relay.base, Duration::from_secs(60));
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(5));
        drop(relay);
    });
    let started = Instant::now();
    let r = run(&p, &|_, _| {});
    killer.join().unwrap();
    match r {
        Err(LoadError::NotAnswering(..)) => {}
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("the run went on without its relay"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}
