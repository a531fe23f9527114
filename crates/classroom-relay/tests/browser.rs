//! Browser end to end: headless Chromium (Debian's) publishes its fake camera and
//! microphone through the teacher page with 3-layer simulcast; three classroom pages
//! watch; each must decode a growing number of frames and receive audio.
//! Installs Chromium and playwright-core (scripts/install-deps.sh) when missing.

mod common;

#[test]
fn chromium_teacher_and_three_classrooms() {
    common::ensure_browser_deps();
    let relay = common::start(&[]);
    let teacher = common::token("demo", "teacher", None, &[]);
    let classes: Vec<String> = ["school-1", "school-2", "school-3"]
        .iter()
        .map(|s| common::token("demo", "classroom", Some(s), &[]))
        .collect();
    common::run_e2e(&[], &relay.base, "demo", &teacher, &classes);
}
