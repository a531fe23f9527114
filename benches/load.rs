//! Load benchmark: the real `classroom-relay` binary on loopback, driven by real
//! str0m peers over UDP (`relay_sim::load`): L lessons, each a teacher publishing
//! 3-layer VP8 simulcast (150/500/1500 kbit/s), slides and Opus voice, watched by
//! classrooms on unshaped links. L steps up until the relay or the generator runs
//! out of CPU. Prints a table and writes JSON.
//!
//! ```sh
//! cargo bench -p classroom-relay --bench load                      # 1,2,4,8,16,32 lessons, 10 s each
//! cargo bench -p classroom-relay --bench load -- --steps 4,8 --seconds 20 --json out.json
//! cargo bench -p classroom-relay --bench load -- --workers 1 --fixed-layers  # one media worker, no adaptation
//! ```
//!
//! Under `cargo test` (no `--bench` argument) it runs one short step as a smoke check.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use relay_sim::load::{run, LoadPlan, LoadReport, Server};
use relay_sim::population::{Link, PlannedLesson, PlannedSchool, Variation};
use serde::Serialize;

#[path = "load_janus.rs"]
mod versus;

struct Relay {
    child: Child,
    base: String,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the benchmark runs the relay.
#[derive(Debug, Clone, Copy)]
struct RelayOpts {
    /// Link adaptation (off: every classroom gets the top layer, as Janus forwards).
    adaptation: bool,
    /// Media workers; `None`: the relay's default (one per core).
    workers: Option<usize>,
}

impl RelayOpts {
    fn from_args(args: &[String]) -> RelayOpts {
        RelayOpts {
            adaptation: !args.iter().any(|a| a == "--fixed-layers"),
            workers: arg_of(args, "--workers").map(|w| w.parse().expect("--workers: a number")),
        }
    }
}

/// The relay on loopback, or (with `netns`) inside that network namespace on
/// `ip` (for the side-by-side run with Janus).
fn start_relay(netns: Option<(&str, &str)>, opts: RelayOpts) -> Relay {
    // BENCH_RELAY_BIN runs another build (an A/B of a change) with the same generator.
    let bin = std::env::var("BENCH_RELAY_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_classroom-relay").to_string());
    let bin = bin.as_str();
    let mut cmd = match netns {
        Some((ns, ip)) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, bin, "serve"]);
            c.args(["--http", &format!("{ip}:0"), "--udp", &format!("{ip}:0")]);
            c.args(["--advertise", ip]);
            c
        }
        None => {
            let mut c = Command::new(bin);
            c.args(["serve", "--http", "127.0.0.1:0", "--udp", "127.0.0.1:0"]);
            c
        }
    };
    cmd.arg("--config").arg(bench_config(opts.adaptation));
    if let Some(w) = opts.workers {
        cmd.args(["--workers", &w.to_string()]);
    }
    let mut child = cmd
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start classroom-relay");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut base = None;
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        if let Some(rest) = line.strip_prefix("classroom-relay listening: http=") {
            base = Some(format!(
                "http://{}",
                rest.split_whitespace().next().expect("address")
            ));
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Relay {
        child,
        base: base.expect("the relay printed its listening line"),
    }
}

/// The relay's configuration for the benchmark: every generated peer comes from one
/// address at once, far above the per-address and relay-wide session limits meant
/// for real clients, so those are raised.
fn bench_config(adaptation: bool) -> std::path::PathBuf {
    let cfg = std::env::temp_dir().join(format!("classroom-relay-bench-{adaptation}.json"));
    let json = format!(
        r#"{{"media": {{"adaptation": {adaptation}}},
            "limits": {{"sessions": 100000, "new_sessions_per_second": 100000,
                        "address_sessions": 100000, "address_new_per_second": 100000}}}}"#
    );
    std::fs::write(&cfg, json).expect("write config");
    cfg
}

/// Clock ticks per second for /proc/*/stat (Linux's USER_HZ).
const TICKS: f64 = 100.0;

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: u32) -> f64 {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// utime + stime of a `/proc/…/stat` file, in seconds.
fn stat_cpu_seconds(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after ')'.
    let rest = stat.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    (t(11) + t(12)) / TICKS
}

/// CPU seconds of each media worker thread (named `media-N`) of a process, by N.
fn worker_cpu_seconds(pid: u32) -> Vec<f64> {
    let mut v: Vec<(usize, f64)> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| {
            let tid: u32 = t.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).ok()?;
            let n = comm.trim().strip_prefix("media-")?.parse().ok()?;
            Some((n, thread_cpu_seconds(pid, tid)))
        })
        .collect();
    v.sort_by_key(|x| x.0);
    v.into_iter().map(|x| x.1).collect()
}

/// CPU seconds (user + system) one thread has used.
fn thread_cpu_seconds(pid: u32, tid: u32) -> f64 {
    stat_cpu_seconds(&format!("/proc/{pid}/task/{tid}/stat"))
}

/// Resident memory of a process in kB.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into())
}

/// A school on an unshaped link: the relay, not the link, is under test.
fn fat_school(id: String) -> PlannedSchool {
    PlannedSchool {
        id,
        region: "bench".into(),
        link: fat_link(),
    }
}

fn fat_link() -> Link {
    Link {
        access: "loopback".into(),
        down_kbps: 1_000_000,
        up_kbps: 1_000_000,
        rtt_ms: 0,
        jitter_ms: 0,
        loss_pct: 0.0,
        variation: Variation {
            every_s: [3600, 3600],
            depth: 0.0,
        },
    }
}

fn lessons(n: usize, schools: usize) -> Vec<PlannedLesson> {
    (0..n)
        .map(|i| PlannedLesson {
            hub: format!("hub-{i}"),
            region: "bench".into(),
            uplink: fat_link(),
            minutes: 1,
            schools: (0..schools)
                .map(|k| fat_school(format!("s{i}-{k}")))
                .collect(),
        })
        .collect()
}

#[derive(Debug, Serialize)]
struct Step {
    lessons: usize,
    classrooms: usize,
    seconds: f64,
    ingress_pps: f64,
    egress_pps: f64,
    egress_mbps: f64,
    relay_cpu_cores: f64,
    /// Relay CPU time per forwarded packet, in microseconds.
    relay_cpu_us_per_packet: f64,
    egress_pps_per_relay_core: f64,
    /// CPU of each media worker thread, in cores.
    worker_cpu_cores: Vec<f64>,
    /// Most sessions each media worker ran at once.
    worker_sessions: Vec<u64>,
    generator_cpu_cores: f64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    /// The relay's own receive-to-send time (its histogram; bucket bounds).
    in_relay_mean_ms: f64,
    in_relay_p50_ms_at_most: Option<f64>,
    in_relay_p99_ms_at_most: Option<f64>,
    /// Forwarded packets the relay timed, of those it forwarded.
    in_relay_timed_share: f64,
    /// The relay's handling of a forwarded teacher datagram, read to the last copy
    /// sent, without what the pacer holds (bucket bounds).
    processing_p50_ms_at_most: Option<f64>,
    processing_p99_ms_at_most: Option<f64>,
    relay_rss_mb: f64,
    rss_kb_per_classroom: f64,
    audio_loss_pct: f64,
}

#[derive(Serialize)]
struct Output {
    machine: String,
    cores: usize,
    relay_idle_rss_mb: f64,
    steps: Vec<Step>,
}

fn step(relay: &Relay, idle_rss: u64, n: usize, schools: usize, secs: u64) -> Step {
    step_on(relay, Server::ClassroomRelay, idle_rss, n, schools, secs).0
}

/// One step against `server`; also the run's report.
fn step_on(
    relay: &Relay,
    server: Server,
    idle_rss: u64,
    n: usize,
    schools: usize,
    secs: u64,
) -> (Step, LoadReport) {
    let pid = relay.child.id();
    let me = std::process::id();
    let peak = Mutex::new(0u64);
    let plan = LoadPlan {
        relay: relay.base.clone(),
        lessons: lessons(n, schools),
        duration: Duration::from_secs(secs),
        secret: relay_config::DEVELOPMENT_SECRET.to_string(),
        seed: n as u64,
        server,
    };
    let (c0, g0, t0) = (cpu_seconds(pid), cpu_seconds(me), Instant::now());
    let w0 = worker_cpu_seconds(pid);
    let r: LoadReport = run(&plan, &|_, _| {
        let mut p = peak.lock().expect("peak");
        *p = (*p).max(rss_kb(pid));
    })
    .expect("load run");
    let wall = t0.elapsed().as_secs_f64();
    let (relay_cpu, gen_cpu) = (cpu_seconds(pid) - c0, cpu_seconds(me) - g0);
    let worker_cpu_cores: Vec<f64> = worker_cpu_seconds(pid)
        .iter()
        .enumerate()
        .map(|(i, c)| (c - w0.get(i).copied().unwrap_or(0.0)) / wall)
        .collect();
    let t = &r.relay_totals;
    let classrooms = n * schools;
    let peak = *peak.lock().expect("peak");
    let step = Step {
        lessons: n,
        classrooms,
        seconds: wall,
        ingress_pps: t.packets_received as f64 / wall,
        egress_pps: t.packets_forwarded as f64 / wall,
        egress_mbps: t.bytes_forwarded as f64 * 8.0 / wall / 1e6,
        relay_cpu_cores: relay_cpu / wall,
        relay_cpu_us_per_packet: relay_cpu * 1e6 / t.packets_forwarded.max(1) as f64,
        worker_cpu_cores,
        worker_sessions: t.peak_worker_sessions.clone(),
        egress_pps_per_relay_core: t.packets_forwarded as f64 / relay_cpu.max(1e-3),
        generator_cpu_cores: gen_cpu / wall,
        latency_p50_ms: r.video_latency.p50_ms,
        latency_p99_ms: r.video_latency.p99_ms,
        in_relay_mean_ms: t.forward_delay.mean_ms,
        in_relay_p50_ms_at_most: t.forward_delay.p50_ms_at_most,
        in_relay_p99_ms_at_most: t.forward_delay.p99_ms_at_most,
        in_relay_timed_share: t.forward_delay.packets as f64
            * f64::from(relay_webrtc::delay::SAMPLE_EVERY)
            / t.packets_forwarded.max(1) as f64,
        processing_p50_ms_at_most: t.processing.p50_ms_at_most,
        processing_p99_ms_at_most: t.processing.p99_ms_at_most,
        relay_rss_mb: peak as f64 / 1024.0,
        rss_kb_per_classroom: peak.saturating_sub(idle_rss) as f64 / classrooms as f64,
        audio_loss_pct: 100.0 * (1.0 - r.audio_received as f64 / r.audio_expected.max(1) as f64),
    };
    (step, r)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let arg = |name: &str| arg_of(&args, name);
    let steps: Vec<usize> = match arg("--steps") {
        Some(s) => s
            .split(',')
            .map(|x| x.trim().parse().expect("--steps: numbers like 1,2,4"))
            .collect(),
        None if bench => vec![1, 2, 4, 8, 16, 32],
        // The smoke step: two lessons, so that two media workers each get one.
        None => vec![2],
    };
    let secs: u64 = arg("--seconds").map_or(if bench { 10 } else { 5 }, |s| {
        s.parse().expect("--seconds: a number")
    });
    let schools: usize = arg("--schools").map_or(3, |s| s.parse().expect("--schools: a number"));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if args.iter().any(|a| a == "--janus") {
        versus::main(&args);
        return;
    }
    let opts = RelayOpts::from_args(&args);
    let relay = start_relay(None, opts);
    std::thread::sleep(Duration::from_millis(500));
    let idle = rss_kb(relay.child.id());
    println!(
        "classroom-relay load benchmark: {} ({cores} cores), {schools} classrooms per lesson, {secs} s per step, adaptation {}, media workers {}, relay idle RSS {:.1} MB",
        cpu_model(),
        if opts.adaptation { "on" } else { "off (fixed top layer)" },
        opts.workers.map_or("one per core".to_string(), |w| w.to_string()),
        idle as f64 / 1024.0
    );
    println!(
        "| lessons | classrooms | egress pkt/s | egress Mbit/s | relay CPU (cores) | relay CPU µs per forwarded pkt | egress pkt/s per relay core | per worker: CPU (cores); peak sessions | generator CPU (cores) | latency p50 / p99 ms | processing p50 / p99 ms (at most) | in-relay incl. pacing mean; p99 ms (at most) | RSS per classroom kB | audio loss % |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut out = Output {
        machine: cpu_model(),
        cores,
        relay_idle_rss_mb: idle as f64 / 1024.0,
        steps: vec![],
    };
    for &n in &steps {
        let s = step(&relay, idle, n, schools, secs);
        let per_worker = s
            .worker_cpu_cores
            .iter()
            .zip(s.worker_sessions.iter().chain(std::iter::repeat(&0)))
            .map(|(c, n)| format!("{c:.2}; {n}"))
            .collect::<Vec<_>>()
            .join(" / ");
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.2} | {:.1} | {:.0} | {} | {:.2} | {:.1} / {:.1} | {} / {} | {:.2}; {} | {:.0} | {:.2} |",
            s.lessons,
            s.classrooms,
            s.egress_pps,
            s.egress_mbps,
            s.relay_cpu_cores,
            s.relay_cpu_us_per_packet,
            s.egress_pps_per_relay_core,
            per_worker,
            s.generator_cpu_cores,
            s.latency_p50_ms,
            s.latency_p99_ms,
            bound(s.processing_p50_ms_at_most),
            bound(s.processing_p99_ms_at_most),
            s.in_relay_mean_ms,
            bound(s.in_relay_p99_ms_at_most),
            s.rss_kb_per_classroom,
            s.audio_loss_pct
        );
        // A build without named media workers (BENCH_RELAY_BIN): the whole relay.
        let busiest = match s.worker_cpu_cores.len() {
            0 => s.relay_cpu_cores,
            _ => s.worker_cpu_cores.iter().copied().fold(0.0, f64::max),
        };
        let saturated = busiest > 0.9 || s.generator_cpu_cores > cores as f64 - 1.1;
        out.steps.push(s);
        if saturated {
            println!("(stopped stepping: a core is saturated)");
            break;
        }
    }
    if !bench {
        let s = &out.steps[0];
        assert!(s.egress_pps > 100.0, "the relay forwarded nothing: {s:?}");
        assert!(s.latency_p50_ms > 0.0, "no latency samples: {s:?}");
        // One forwarded packet in SAMPLE_EVERY leaves with a sequence number the edge
        // noted, so about that share is timed (sequence numbers are not exactly
        // uniform over a short run; some packets are still queued at the end).
        assert!(
            s.in_relay_timed_share > 0.8 && s.in_relay_timed_share < 1.25,
            "the relay timed {:.1} % of the sample of what it forwarded: {s:?}",
            100.0 * s.in_relay_timed_share
        );
        assert!(
            s.processing_p99_ms_at_most.is_some(),
            "no processing time measured: {s:?}"
        );
        assert!(
            !s.worker_cpu_cores.is_empty() && s.worker_sessions.iter().sum::<u64>() > 0,
            "no media worker seen: {s:?}"
        );
        // Two lessons on a relay with two workers or more: one lesson each (the
        // least loaded worker takes a new lesson), every session of a lesson on it.
        if s.worker_cpu_cores.len() >= 2 {
            let busy: Vec<u64> = s
                .worker_sessions
                .iter()
                .copied()
                .filter(|n| *n > 0)
                .collect();
            assert_eq!(
                busy,
                vec![1 + schools as u64; 2],
                "sessions per worker (a teacher and {schools} classrooms each): {s:?}"
            );
        }
    }
    write_json(arg("--json"), "classroom-relay-load-bench.json", &out);
}

/// A histogram quantile bound for the table: "≤ 2" or "> 250" (above the last bucket).
fn bound(ms: Option<f64>) -> String {
    match ms {
        Some(v) => format!("≤ {v}"),
        None => "> 250".into(),
    }
}

/// Write `value` to `path`, or to `default_name` in the temp directory, and say where.
fn write_json(path: Option<String>, default_name: &str, value: &impl Serialize) {
    let path = path.unwrap_or_else(|| {
        std::env::temp_dir()
            .join(default_name)
            .display()
            .to_string()
    });
    std::fs::write(&path, serde_json::to_string_pretty(value).expect("json"))
        .expect("write the JSON report");
    println!("JSON: {path}");
}

/// The value after `name` on the command line.
fn arg_of(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}
