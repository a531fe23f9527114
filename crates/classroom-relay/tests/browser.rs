//! Browser end to end: headless Chromium (Debian's) publishes its fake camera and
//! microphone through the teacher page with 3-layer simulcast; three classroom pages
//! watch; each must decode a growing number of frames and receive audio, and show
//! the camera on the whole stage (no slides are shared). A second test shares a
//! screen: the classroom shows the slides with the camera in a corner.
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

#[test]
fn chromium_slides_take_the_stage_while_shared() {
    common::ensure_browser_deps();
    let relay = common::start(&[]);
    let teacher = common::token("demo", "teacher", None, &[]);
    let class = common::token("demo", "classroom", Some("school-1"), &[]);
    let args = [relay.base.as_str(), "demo", &teacher, &class];
    common::run_node(&[], "slides.mjs", &args, &[], "slides PASS");
}
