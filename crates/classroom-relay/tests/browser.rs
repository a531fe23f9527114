//! Browser end to end: headless Chromium (Debian's) publishes its fake camera and
//! microphone through the teacher page with 3-layer simulcast; three classroom pages
//! watch; each must decode a growing number of frames and receive audio.
//! Installs Chromium and playwright-core (scripts/install-deps.sh) when missing.

mod common;

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ensure_deps() {
    let have = std::path::Path::new("/usr/bin/chromium").exists()
        && root()
            .join("tests/browser/node_modules/playwright-core")
            .exists();
    if !have {
        let st = Command::new(root().join("scripts/install-deps.sh"))
            .status()
            .expect("run scripts/install-deps.sh");
        assert!(st.success(), "scripts/install-deps.sh failed");
    }
}

#[test]
fn chromium_teacher_and_three_classrooms() {
    ensure_deps();
    let relay = common::start(&[]);
    let teacher = common::token("demo", "teacher", None, &[]);
    let mut args = vec![
        root().join("tests/browser/e2e.mjs").display().to_string(),
        relay.base.clone(),
        "demo".into(),
        teacher,
    ];
    for school in ["school-1", "school-2", "school-3"] {
        args.push(common::token("demo", "classroom", Some(school), &[]));
    }
    let out = Command::new("node").args(&args).output().expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "browser e2e failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("e2e PASS"));
}
