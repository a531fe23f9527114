//! Browser end to end of the two-way lesson: the teacher page publishes and hears,
//! three classroom pages watch; classroom 2 raises its hand, the teacher's class list
//! shows it, the teacher gives it the floor, and the teacher and classroom 1 hear its
//! voice (classroom 2 does not hear itself) until the teacher takes the floor back.
//! Installs Chromium and playwright-core (scripts/install-deps.sh) when missing.

mod common;

#[test]
fn chromium_classroom_asks_and_is_heard() {
    common::ensure_browser_deps();
    let relay = common::start(&[]);
    let teacher = common::token("demo", "teacher", None, &[]);
    let classes: Vec<String> = ["school-1", "school-2", "school-3"]
        .iter()
        .map(|s| common::token("demo", "classroom", Some(s), &[]))
        .collect();
    let mut args = vec![relay.base.as_str(), "demo", teacher.as_str()];
    args.extend(classes.iter().map(String::as_str));
    common::run_node(&[], "talk.mjs", &args, &[], "talk PASS");
}
