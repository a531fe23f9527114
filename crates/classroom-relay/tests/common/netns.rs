//! Test hosts in network namespaces of the test's own: a veth pair per namespace,
//! addresses from 198.18.0.0/15, optionally a `tc tbf` rate limit towards the host.
//! Needs CAP_NET_ADMIN (root).

use std::process::Command;

pub struct Netns {
    pub name: String,
    /// The host's end of the veth pair.
    pub host_dev: String,
    /// The host's address on the pair (`198.18.N.1`); the namespace is `198.18.N.2`.
    pub host_addr: String,
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace removes its end of the veth pair and so the pair.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

pub fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args)
}

/// Run `program ARGS`; its stderr is the error when it fails.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A namespace holding the test host `198.18.N.2`, linked by veth to `198.18.N.1`.
pub fn make_netns(n: u32) -> Result<Netns, String> {
    let name = format!("crtest{}-{n}", std::process::id());
    let (host, peer) = (format!("crh{n}"), format!("crn{n}"));
    ip(&["netns", "add", &name])?;
    let (a, b) = (format!("198.18.{n}.1"), format!("198.18.{n}.2"));
    let ns = Netns {
        name: name.clone(),
        host_dev: host.clone(),
        host_addr: a.clone(),
    };
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
    Ok(ns)
}

/// [`make_netns`] then `setup` on it; where that cannot be done here, None after
/// saying SKIPPED on stderr, or a failure under `CI=true` (where the test must run).
pub fn make_netns_or_skip(
    n: u32,
    setup: impl FnOnce(&Netns) -> Result<(), String>,
) -> Option<Netns> {
    match make_netns(n).and_then(|ns| setup(&ns).map(|_| ns)) {
        Ok(ns) => Some(ns),
        Err(e) => {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "CI=true and no network namespace can be made here ({e}): this test must run in CI"
            );
            eprintln!("SKIPPED: cannot create a network namespace here ({e})");
            None
        }
    }
}

impl Netns {
    /// Limit what the host sends into the namespace to `kbit` kbit/s with a token
    /// bucket whose queue holds about `queue_ms` of traffic (what a thin school
    /// link's modem does).
    pub fn limit_towards(&self, kbit: u32, queue_ms: u32) -> Result<(), String> {
        let (rate, latency) = (format!("{kbit}kbit"), format!("{queue_ms}ms"));
        run(
            "tc",
            &[
                "qdisc",
                "add",
                "dev",
                &self.host_dev,
                "root",
                "tbf",
                "rate",
                &rate,
                "burst",
                "8kb",
                "latency",
                &latency,
            ],
        )
    }

    /// A script that runs `program` inside the namespace with the arguments given.
    pub fn wrapper(&self, program: &str) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("{}-wrap.sh", self.name));
        let body = format!(
            "#!/bin/sh\nexec ip netns exec {} {program} \"$@\"\n",
            self.name
        );
        std::fs::write(&path, body).expect("write wrapper");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}
