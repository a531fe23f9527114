//! The side-by-side run (issue 5): classroom-relay and Janus's VideoRoom, the same
//! workload from the same str0m peers, one after the other at each step, in one run.
//!
//! ```sh
//! cargo bench -p classroom-relay --bench load -- --janus                  # 4,8,16,32 lessons, 15 s each
//! cargo bench -p classroom-relay --bench load -- --janus --steps 4,8 --seconds 20
//! cargo test -p classroom-relay --bench load -- --janus                   # smoke: 1 lesson, 5 s
//! ```
//!
//! Janus gathers no loopback ICE candidates, so `benches/janus.sh setup` makes a
//! network namespace with a veth pair (198.18.77.1 here, 198.18.77.2 inside) and a
//! Janus configuration; both servers run inside, the generator outside. Needs root.
//! Egress is counted where both can be counted alike: RTP packets the classrooms'
//! stacks received. Janus's teacher offer lists the rids highest first (f;h;q), as
//! Janus reads them, and every classroom takes the top layer from both servers.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{
    arg_of, cpu_model, rss_kb, start_relay, step_on, write_json, Relay, RelayOpts, Server, Step,
};

const NS: &str = "crbench";
const NS_IP: &str = "198.18.77.2";
const JANUS_API: &str = "http://198.18.77.2:18088/janus";

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../benches/janus.sh")
}

fn start_janus(conf: &str) -> Relay {
    let mut child = Command::new("ip")
        .args(["netns", "exec", NS, "janus", "-F", conf])
        .args([
            "-C",
            &format!("{conf}/janus.jcfg"),
            "-i",
            NS_IP,
            "-o",
            "-d",
            "3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start janus (is it installed? benches/janus.sh setup)");
    // Keep its log flowing (and out of the way).
    let out = child.stdout.take().expect("stdout");
    std::thread::spawn(move || for _ in BufReader::new(out).lines() {});
    let deadline = Instant::now() + Duration::from_secs(15);
    while relay_sim::janus::alive(JANUS_API).is_err() {
        assert!(
            Instant::now() < deadline,
            "Janus did not answer at {JANUS_API} within 15 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Relay {
        child,
        base: JANUS_API.into(),
    }
}

#[derive(Serialize)]
struct Pair {
    lessons: usize,
    classrooms: usize,
    relay: Side,
    janus: Side,
    /// classroom-relay over Janus: egress per CPU-second (higher is better),
    /// latency p99 and memory per subscriber (lower is better).
    ratio_egress_per_cpu_s: f64,
    ratio_latency_p99: f64,
    ratio_rss_per_classroom: f64,
}

#[derive(Serialize)]
struct Side {
    /// RTP packets per second the classrooms received.
    egress_pps: f64,
    cpu_cores: f64,
    egress_per_cpu_s: f64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    /// The relay's own receive-to-send p99 (bucket bound; Janus does not report one).
    in_server_p99_ms_at_most: Option<f64>,
    rss_kb_per_classroom: f64,
    audio_loss_pct: f64,
    generator_cpu_cores: f64,
}

fn side(s: &Step, r: &relay_sim::load::LoadReport, server: Server) -> Side {
    let pps = r.classroom_packets as f64 / s.seconds;
    Side {
        egress_pps: pps,
        cpu_cores: s.relay_cpu_cores,
        egress_per_cpu_s: pps / s.relay_cpu_cores.max(1e-6),
        latency_p50_ms: s.latency_p50_ms,
        latency_p99_ms: s.latency_p99_ms,
        in_server_p99_ms_at_most: match server {
            Server::ClassroomRelay => s.in_relay_p99_ms_at_most,
            Server::Janus => None,
        },
        rss_kb_per_classroom: s.rss_kb_per_classroom,
        audio_loss_pct: s.audio_loss_pct,
        generator_cpu_cores: s.generator_cpu_cores,
    }
}

pub fn main(args: &[String]) {
    let arg = |name: &str| arg_of(args, name);
    // Under `cargo test` (no --bench): one short step, as a smoke check.
    let bench = args.iter().any(|a| a == "--bench");
    let steps: Vec<usize> =
        arg("--steps").map_or(if bench { vec![4, 8, 16, 32] } else { vec![1] }, |s| {
            s.split(',')
                .map(|x| x.trim().parse().expect("--steps: numbers like 2,4,8"))
                .collect()
        });
    let secs: u64 = arg("--seconds").map_or(if bench { 15 } else { 5 }, |s| {
        s.parse().expect("--seconds: a number")
    });
    let schools: usize = arg("--schools").map_or(3, |s| s.parse().expect("--schools: a number"));
    let conf = std::env::temp_dir().join("classroom-relay-janus");
    let conf = conf.display().to_string();
    let ok = Command::new("bash")
        .arg(script())
        .args(["setup", &conf])
        .status()
        .expect("run benches/janus.sh");
    assert!(
        ok.success(),
        "benches/janus.sh setup failed (it needs root)"
    );

    // Janus forwards what a subscriber asks for, without link estimation: the
    // relay does the same here (top layer, no adaptation), so both forward the same
    // packets.
    let opts = RelayOpts {
        adaptation: false,
        ..RelayOpts::from_args(args)
    };
    let relay = start_relay(Some((NS, NS_IP)), opts);
    let janus = start_janus(&conf);
    std::thread::sleep(Duration::from_millis(500));
    let (relay_idle, janus_idle) = (rss_kb(relay.child.id()), rss_kb(janus.child.id()));
    let version = Command::new("janus")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    println!(
        "classroom-relay vs Janus ({version}), VideoRoom: {} ({} cores), {schools} classrooms per lesson, {secs} s per server per step",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| lessons | server | egress pkt/s | server CPU (cores) | egress per CPU-second | latency p50 / p99 ms | in-server p99 ms | RSS per classroom kB | audio loss % | generator CPU |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut pairs = vec![];
    for &n in &steps {
        let (rs, rr) = step_on(&relay, Server::ClassroomRelay, relay_idle, n, schools, secs);
        let (js, jr) = step_on(&janus, Server::Janus, janus_idle, n, schools, secs);
        let (r, j) = (
            side(&rs, &rr, Server::ClassroomRelay),
            side(&js, &jr, Server::Janus),
        );

        for (name, x) in [("classroom-relay", &r), ("Janus", &j)] {
            println!(
                "| {n} | {name} | {:.0} | {:.2} | {:.0} | {:.1} / {:.1} | {} | {:.0} | {:.2} | {:.2} |",
                x.egress_pps,
                x.cpu_cores,
                x.egress_per_cpu_s,
                x.latency_p50_ms,
                x.latency_p99_ms,
                match (name, x.in_server_p99_ms_at_most) {
                    ("Janus", _) => "–".to_string(),
                    (_, v) => super::bound(v),
                },
                x.rss_kb_per_classroom,
                x.audio_loss_pct,
                x.generator_cpu_cores
            );
        }
        let p = Pair {
            lessons: n,
            classrooms: n * schools,
            ratio_egress_per_cpu_s: r.egress_per_cpu_s / j.egress_per_cpu_s.max(1e-9),
            ratio_latency_p99: r.latency_p99_ms / j.latency_p99_ms.max(1e-9),
            ratio_rss_per_classroom: r.rss_kb_per_classroom / j.rss_kb_per_classroom.max(1e-9),
            relay: r,
            janus: j,
        };
        println!(
            "| {n} | ratio relay/Janus | | | {:.2}× | p99 {:.2}× | | {:.2}× | | |",
            p.ratio_egress_per_cpu_s, p.ratio_latency_p99, p.ratio_rss_per_classroom
        );
        let saturated = p.relay.cpu_cores > 0.9 || p.janus.cpu_cores > 0.9;
        pairs.push(p);
        if saturated {
            println!("(stopped stepping: a server is at a full core)");
            break;
        }
    }
    drop(relay);
    drop(janus);
    if !bench {
        let p = &pairs[0];
        for (name, x) in [("classroom-relay", &p.relay), ("Janus", &p.janus)] {
            assert!(x.egress_pps > 100.0, "{name} forwarded almost nothing");
            assert!(x.latency_p50_ms > 0.0, "no latency samples from {name}");
        }
    }
    let _ = Command::new("bash").arg(script()).arg("teardown").status();
    write_json(arg("--json"), "classroom-relay-vs-janus.json", &pairs);
}
