//! `serve --http 0.0.0.0:P --udp 0.0.0.0:Q --advertise 127.0.0.1 --advertise <test
//! host>`: a browser in a network namespace of the test's own, reaching the relay on
//! its 198.18.0.0/15 address, publishes and watches through the same relay that
//! also offers loopback candidates.
//!
//! Needs CAP_NET_ADMIN (root) for `ip netns`; where the namespace cannot be made
//! the test says so on stderr and does nothing else.

mod common;

use std::process::Command;

struct Netns {
    name: String,
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace removes its end of the veth pair and so the pair.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A namespace holding the test host `198.18.N.2`, linked by veth to `198.18.N.1`.
fn make_netns(n: u32) -> Result<(Netns, String), String> {
    let name = format!("crtest{}", std::process::id());
    let (host, peer) = (format!("crh{n}"), format!("crn{n}"));
    ip(&["netns", "add", &name])?;
    let ns = Netns { name: name.clone() };
    let (a, b) = (format!("198.18.{n}.1"), format!("198.18.{n}.2"));
    ip(&["link", "add", &host, "type", "veth", "peer", "name", &peer])?;
    ip(&["link", "set", &peer, "netns", &name])?;
    ip(&["addr", "add", &format!("{a}/24"), "dev", &host])?;
    ip(&["link", "set", &host, "up"])?;
    let inns = |args: &[&str]| {
        let mut v = vec!["netns", "exec", &name, "ip"];
        v.extend_from_slice(args);
        ip(&v)
    };
    inns(&["addr", "add", &format!("{b}/24"), "dev", &peer])?;
    inns(&["link", "set", &peer, "up"])?;
    inns(&["link", "set", "lo", "up"])?;
    Ok((ns, a))
}

#[test]
fn browser_in_a_namespace_through_a_wildcard_relay() {
    // Spread concurrent runs over different /24s.
    let n = 100 + std::process::id() % 150;
    let (ns, host_addr) = match make_netns(n) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("SKIPPED: cannot create a network namespace here ({e})");
            return;
        }
    };
    common::ensure_browser_deps();
    let relay = common::start_serve(&[
        "--http",
        "0.0.0.0:0",
        "--udp",
        "0.0.0.0:0",
        "--advertise",
        "127.0.0.1",
        "--advertise",
        &host_addr,
    ]);
    let port = relay.base.rsplit(':').next().unwrap();
    let base = format!("http://{host_addr}:{port}");
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
