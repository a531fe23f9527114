//! Replay mode: the plan follows the documents, bad inputs are named, lessons
//! through the real relay give sensible and repeatable results.

use relay_sim::population::{
    documented_plan, file_plan, AccessFile, Documented, Scenario, ACCESS_KINDS, BINS,
};
use relay_sim::replay::{run_all, SchoolResult};

fn kinds() -> AccessFile {
    AccessFile::load("access-kinds.json", ACCESS_KINDS).expect("embedded kinds load")
}

#[test]
fn national_plan_follows_the_documented_counts() {
    let doc = Documented::embedded();
    let plan = documented_plan(&doc, &kinds(), None, 3);
    let schools: Vec<_> = plan.lessons.iter().flat_map(|l| &l.schools).collect();
    let thin = schools.iter().filter(|s| s.link.bin() == BINS[0]).count();
    assert_eq!(thin, doc.national.schools_up_to_4_mbit);
    assert_eq!(schools.len() - thin, doc.national.schools_over_4_mbit);
    assert_eq!(
        plan.unreachable.len(),
        5,
        "the five named schools without internet"
    );
    for l in &plan.lessons {
        assert!(
            (1..=3).contains(&l.schools.len()),
            "hub of {}",
            l.schools.len()
        );
        assert!((20..=25).contains(&l.minutes));
        assert!(l.schools.iter().all(|s| s.region == l.region));
    }
    // A regional replay uses the region's own documented thin-link count.
    let aktobe = documented_plan(&doc, &kinds(), Some("Aktobe"), 3);
    let thin = aktobe
        .lessons
        .iter()
        .flat_map(|l| &l.schools)
        .filter(|s| s.link.bin() == BINS[0])
        .count();
    assert_eq!(thin, 53);
    // Same seed, same plan; another seed, another draw.
    assert_eq!(plan, documented_plan(&doc, &kinds(), None, 3));
    assert_ne!(plan, documented_plan(&doc, &kinds(), None, 4));
}

#[test]
fn bad_scenarios_and_files_are_named() {
    let doc = Documented::embedded();
    let e = Scenario::parse("region:Atlantis", &doc)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown region") && e.contains("Aktobe"), "{e}");
    let e = Scenario::parse("everything", &doc).unwrap_err().to_string();
    assert!(e.contains("national, region:NAME"), "{e}");
    assert_eq!(
        Scenario::parse("upgrade", &doc).unwrap(),
        Scenario::Upgrade {
            region: "Aktobe".into(),
            kbps: 8000,
            count: 96
        }
    );
    let k = kinds();
    let bad_kind = r#"{"name":"x","hubs":[{"id":"h","uplink":{"access":"fibre"},
        "schools":[{"id":"a","access":"adsl"},{"id":"b","access":"pigeon"}]}]}"#;
    let e = file_plan("s.json", bad_kind, &k, 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("hubs[0].schools[1].access") && e.contains("pigeon"),
        "{e}"
    );
    let unknown_field =
        r#"{"name":"x","hubs":[{"id":"h","uplink":{"access":"fibre"},"speed":3,"schools":[]}]}"#;
    let e = file_plan("s.json", unknown_field, &k, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("hubs[0]") && e.contains("speed"), "{e}");
    let wrong_type = r#"{"name":"x","hubs":[{"id":"h","uplink":{"access":"fibre"},
        "schools":[{"id":"a","access":"adsl","down_kbps":"fast"}]}]}"#;
    let e = file_plan("s.json", wrong_type, &k, 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("s.json") && e.contains("hubs[0].schools[0]"),
        "{e}"
    );
    let e = file_plan("s.json", r#"{"name":"x","hubs":[]}"#, &k, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("hubs") && e.contains("empty"), "{e}");
    // An access file whose shares do not add up.
    let broken = ACCESS_KINDS.replace("\"satellite\": 0.15", "\"satellite\": 0.5");
    let e = AccessFile::load("mine.json", &broken)
        .unwrap_err()
        .to_string();
    assert!(e.contains("mine.json: bins.up_to_4"), "{e}");
}

const TWO_HUBS: &str = r#"{
  "name": "two hubs", "lesson_minutes": 2,
  "hubs": [
    {"id": "hub-a", "region": "Test", "uplink": {"access": "fibre"},
     "schools": [
        {"id": "thin-900", "access": "adsl", "down_kbps": 900, "loss_pct": 0.2},
        {"id": "fat-20M", "access": "vdsl", "down_kbps": 20000}
     ]},
    {"id": "hub-b", "region": "Test", "uplink": {"access": "vdsl", "up_kbps": 3000},
     "schools": [
        {"id": "mid-1800", "access": "wireless-4g", "down_kbps": 1800},
        {"id": "fibre", "access": "fibre", "down_kbps": 50000}
     ]}
  ]
}"#;

fn by_id<'a>(r: &'a [SchoolResult], id: &str) -> &'a SchoolResult {
    r.iter().find(|s| s.id == id).expect("school in results")
}

fn rank(r: &SchoolResult) -> f64 {
    // Mean layer index over the lesson, audio only counting as -1.
    2.0 * r.layer_share.p720 + r.layer_share.p360 - r.layer_share.audio_only
}

#[test]
fn a_short_replay_gives_thin_links_lower_layers_and_clear_voice() {
    let (_, plan) = file_plan("two-hubs.json", TWO_HUBS, &kinds(), 5).unwrap();
    let (res, timeline) = run_all(&plan.lessons, 5, 2, Some("thin-900"), &|_, _| {});
    let res: Vec<SchoolResult> = res.into_iter().flatten().collect();
    let thin = by_id(&res, "thin-900");
    let mid = by_id(&res, "mid-1800");
    let fat = by_id(&res, "fat-20M");
    let fibre = by_id(&res, "fibre");
    for r in &res {
        eprintln!("{} {:?} {}", r.id, r.layer_share, r.verdict);
    }
    assert!(rank(thin) < rank(mid), "900 kbit/s not below 1.8 Mbit/s");
    assert!(rank(mid) < rank(fat), "1.8 Mbit/s not below 20 Mbit/s");
    assert_eq!(fat.layer_share.main(), "720p");
    // Hub B's teacher is behind 3 Mbit/s: with the slides, the camera's top layer
    // does not fit there, so even a fibre school gets 360p.
    assert_eq!(fibre.layer_share.main(), "360p");
    assert!(
        fibre.verdict.contains("the best the hub's uplink sends"),
        "{}",
        fibre.verdict
    );
    assert_ne!(thin.layer_share.main(), "720p");
    assert!(thin.verdict.contains("needs about"), "{}", thin.verdict);
    // Every school here has more than 300 kbit/s: the voice stays clear.
    for r in &res {
        assert!(
            r.audio_concealed_pct < 2.0,
            "{}: {} % concealed",
            r.id,
            r.audio_concealed_pct
        );
        assert!(r.first_frame_ms.is_some(), "{} saw no picture", r.id);
        // Slides come before the camera: every one of these links carries them.
        assert!(r.slides_share > 0.85, "{}: slides {}", r.id, r.slides_share);
        let s = &r.layer_share;
        let sum = s.p720 + s.p360 + s.p180 + s.audio_only;
        assert!((sum - 1.0).abs() < 0.01, "{}: shares add to {sum}", r.id);
    }
    // The delivered rate follows the link.
    assert!(thin.mean_kbps < 900 && fat.mean_kbps > thin.mean_kbps);
    let t = timeline.expect("timeline of the chosen school");
    assert_eq!(t.school, "thin-900");
    assert_eq!(t.points.len(), 121);
}

#[test]
fn same_seed_same_results() {
    // A jittery, lossy satellite link and a wireless one: the hard cases for
    // repeatability.
    let f = r#"{"name": "d", "lesson_minutes": 1, "hubs": [{"id": "h",
        "uplink": {"access": "vdsl"},
        "schools": [{"id": "sat", "access": "satellite", "down_kbps": 2000},
                    {"id": "3g", "access": "wireless-3g", "down_kbps": 1500}]},
        {"id": "h2", "uplink": {"access": "wireless-4g-good"},
        "schools": [{"id": "adsl", "access": "adsl", "down_kbps": 1200}]}]}"#;
    let (_, plan) = file_plan("d.json", f, &kinds(), 9).unwrap();
    let one = run_all(&plan.lessons, 9, 1, None, &|_, _| {}).0;
    let two = run_all(&plan.lessons, 9, 2, None, &|_, _| {}).0;
    assert_eq!(one, two, "two runs of seed 9 differ");
}

/// The command line: a short regional replay writes its files and a summary; a
/// bad scenario is refused with a clear message and exit status 2.
#[test]
fn classroom_sim_replay_command() {
    let exe = env!("CARGO_BIN_EXE_classroom-sim");
    let out = std::env::temp_dir().join(format!("classroom-sim-test-{}", std::process::id()));
    let run = std::process::Command::new(exe)
        .args(["replay", "--scenario", "region:Kyzylorda", "--sample", "1"])
        .args(["--minutes", "1", "--seed", "2", "--out"])
        .arg(&out)
        .output()
        .expect("classroom-sim runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("schools replayed in 1 lessons"), "{stdout}");
    assert!(stderr.contains("1/1 lessons"), "no progress line: {stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let schools = report["schools"].as_array().unwrap();
    assert!(!schools.is_empty());
    for key in [
        "id",
        "region",
        "access",
        "down_kbps",
        "up_kbps",
        "bin",
        "layer_share",
        "freeze_count",
        "freeze_ms",
        "audio_concealed_pct",
        "audio_fec_pct",
        "slides_share",
        "mean_kbps",
        "first_frame_ms",
        "verdict",
    ] {
        assert!(schools[0].get(key).is_some(), "report lacks {key}");
    }
    assert_eq!(
        report["summary"]["regions"]["Kyzylorda"]["schools"],
        schools.len()
    );
    assert!(report["assumptions"].as_array().unwrap().len() >= 2);
    let csv = std::fs::read_to_string(out.join("schools.csv")).unwrap();
    assert_eq!(csv.lines().count(), schools.len() + 1);
    for svg in ["quality.svg", "timeline.svg"] {
        let s = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(
            s.starts_with("<svg") && s.trim_end().ends_with("</svg>"),
            "{svg}"
        );
    }
    let tl = std::fs::read_to_string(out.join("timeline.csv")).unwrap();
    let rows: Vec<&str> = tl.lines().collect();
    assert_eq!(
        rows[0],
        "school,second,capacity_kbps,estimate_kbps,layer,freeze_ms"
    );
    // One row per second of the lesson, second 0 included; capacity from the link.
    assert!(rows.len() > 60, "{} timeline rows", rows.len());
    assert!(rows[1..]
        .iter()
        .all(|r| r.split(',').nth(2).is_some_and(|c| c != "0")));
    let _ = std::fs::remove_dir_all(&out);

    let bad = std::process::Command::new(exe)
        .args(["replay", "--scenario", "region:Atlantis"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown region \"Atlantis\""));
}
