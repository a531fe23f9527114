//! `serve --http 0.0.0.0:P --udp 0.0.0.0:Q --advertise 127.0.0.1 --advertise <test
//! host>`: a browser in a network namespace of the test's own, reaching the relay on
//! its 198.18.0.0/15 address, publishes and watches through the same relay that
//! also offers loopback candidates.
//!
//! Needs CAP_NET_ADMIN (root) for `ip netns`; where the namespace cannot be made
//! the test says so on stderr and does nothing else.

mod common;

use common::netns::make_netns_or_skip;

#[test]
fn browser_in_a_namespace_through_a_wildcard_relay() {
    // Spread concurrent runs over different /24s.
    let n = 100 + std::process::id() % 150;
    let Some(ns) = make_netns_or_skip(n, |_| Ok(())) else {
        return;
    };
    common::ensure_browser_deps();
    let relay = common::start_wildcard(&ns.host_addr, &[]);
    let port = relay.base.rsplit(':').next().unwrap();
    let base = format!("http://{}:{port}", ns.host_addr);
    let teacher = common::token("demo", "teacher", None, &[]);
    let classes = vec![common::token("demo", "classroom", Some("school-9"), &[])];
    common::run_e2e(
        &["ip", "netns", "exec", &ns.name],
        &base,
        "demo",
        &teacher,
        &classes,
    );
}
