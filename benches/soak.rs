//! Soak benchmark: the real `classroom-relay` binary on loopback carrying N lessons
//! for a long time, driven by real str0m peers over UDP (`relay_sim::load`: each
//! lesson a teacher publishing 3-layer VP8 simulcast, slides and Opus voice, and 3
//! classrooms watching, all on unshaped links). Every `--sample-every` seconds it
//! samples the relay from outside the process: resident memory (`VmRSS` and
//! `RssAnon` of /proc/PID/status), open file descriptors (/proc/PID/fd), open
//! sessions and forwarded packets (its /metrics). At the end it judges:
//!
//! - memory flat: VmRSS grew less than 5 % from the first sample at or after the
//!   warm-up (2 minutes; half the run when the run is shorter than 4 minutes) to
//!   the last;
//! - sessions flat: every sample sees exactly N teachers and 3N classrooms, and 0
//!   once the run has closed its sessions;
//! - file descriptors flat: every sample within [`FD_SLACK`] of the fewest seen;
//! - forwarded packets growing every interval, none below a quarter of the median;
//! - voice not lost: the classrooms got all but at most [`VOICE_LOSS_LIMIT_PCT`] %
//!   of the voice packets sent while they watched.
//!
//! It exits 1 when any of those fails.
//!
//! ```sh
//! cargo bench -p classroom-relay --bench soak                        # 4 lessons, 25 min, a sample a minute
//! cargo bench -p classroom-relay --bench soak -- --minutes 10 --lessons 8 --sample-every 30 --json soak.json
//! ```
//!
//! Under `cargo test` (no `--bench` argument) it runs 2 minutes with a sample every
//! 20 s and checks the same properties, judging memory from the sample at 60 s.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use relay_sim::load::{run, scrape, LoadPlan, LoadReport, Server};
use relay_sim::population::{Link, PlannedLesson, PlannedSchool, Variation};
use serde::Serialize;

/// Memory may grow less than this much (percent) after the warm-up.
const GROWTH_LIMIT_PCT: f64 = 5.0;
/// Voice packets lost, in percent of those sent, above which the run fails. On
/// loopback nothing is shaped and nothing should be lost; the bound leaves room for
/// a datagram overflowing a socket buffer of the load generator's while this shared
/// 2-core machine deschedules it (the load bench measured 0.00 % at 4 lessons and
/// 0.00-0.02 % at 8-16). 0.05 % is 1 packet in 2,000: about 0.75 s of voice per
/// classroom over 25 minutes, in scattered 20 ms frames that Opus FEC and RED mostly
/// rebuild.
const VOICE_LOSS_LIMIT_PCT: f64 = 0.05;
/// Open file descriptors may vary by this many: HTTP connections come and go (the
/// load generator checks /metrics every second, this bench at every sample).
const FD_SLACK: usize = 3;
/// Each interval must forward at least this share of the median interval.
const STALL_SHARE: f64 = 0.25;
/// Classrooms per lesson.
const SCHOOLS: usize = 3;
/// The lessons run this much longer than the sampling, so the last sample still
/// sees them all.
const MARGIN: Duration = Duration::from_secs(10);

struct Relay {
    child: Child,
    base: String,
    /// What the relay wrote on stderr (warnings and errors).
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_relay() -> Relay {
    // BENCH_RELAY_BIN soaks another build (an A/B of a change) with the same generator.
    let bin = std::env::var("BENCH_RELAY_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_classroom-relay").to_string());
    let mut child = Command::new(&bin)
        .args(["serve", "--http", "127.0.0.1:0", "--udp", "127.0.0.1:0"])
        .arg("--config")
        .arg(config())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start classroom-relay");
    let log = Arc::new(Mutex::new(vec![]));
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let keep = log.clone();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            keep.lock().expect("log").push(line);
        }
    });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut base = None;
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        if let Some(rest) = line.strip_prefix("classroom-relay listening: http=") {
            let http = rest.split_whitespace().next().expect("address");
            base = Some(format!("http://{http}"));
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Relay {
        child,
        base: base.expect("the relay printed its listening line"),
        log,
    }
}

/// The relay's configuration: the defaults, but every generated peer comes from one
/// address at once, above the per-address and relay-wide session limits meant for
/// real clients, so those are raised (as the load bench does).
fn config() -> std::path::PathBuf {
    let cfg = std::env::temp_dir().join("classroom-relay-soak-bench.config.json");
    let json = r#"{"limits": {"sessions": 100000, "new_sessions_per_second": 100000,
        "address_sessions": 100000, "address_new_per_second": 100000}}"#;
    std::fs::write(&cfg, json).expect("write config");
    cfg
}

/// A field of /proc/PID/status in kB (`VmRSS`, `RssAnon`).
fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors of a process, and how many of them are sockets.
fn fds(pid: u32) -> (usize, usize) {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return (0, 0);
    };
    let links: Vec<_> = dir
        .filter_map(Result::ok)
        .map(|e| std::fs::read_link(e.path()).unwrap_or_default())
        .collect();
    let sockets = links
        .iter()
        .filter(|l| l.to_string_lossy().starts_with("socket:"))
        .count();
    (links.len(), sockets)
}

/// CPU seconds (user + system) a process has used (USER_HZ = 100).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into())
}

/// An unshaped link: the relay, not the link, is under test.
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

fn lessons(n: usize, minutes: u64) -> Vec<PlannedLesson> {
    (0..n)
        .map(|i| PlannedLesson {
            hub: format!("hub-{i}"),
            region: "soak".into(),
            uplink: fat_link(),
            minutes,
            schools: (0..SCHOOLS)
                .map(|k| PlannedSchool {
                    id: format!("s{i}-{k}"),
                    region: "soak".into(),
                    link: fat_link(),
                })
                .collect(),
        })
        .collect()
}

/// The relay seen from outside at one moment.
#[derive(Debug, Clone, Serialize)]
struct Sample {
    t_s: f64,
    rss_kb: u64,
    rss_anon_kb: u64,
    fds: usize,
    sockets: usize,
    publishers: u64,
    subscribers: u64,
    /// Sessions the load generator had seen connect (teachers and classrooms).
    connected: usize,
    packets_forwarded: u64,
    packets_received: u64,
    /// Forwarded since the previous sample, and per second.
    forwarded_interval: u64,
    forwarded_pps: f64,
    /// Forwarded payload rate over the interval.
    forwarded_mbps: f64,
    /// Since the previous sample: layer switches made for classrooms, keyframe
    /// requests sent to teachers (a congested or lossy interval shows in both).
    layer_switches: u64,
    keyframe_requests: u64,
    relay_cpu_cores: f64,
}

/// The relay's counters at a sample, to take differences.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    forwarded: u64,
    bytes: u64,
    switches: u64,
    keyframes: u64,
    cpu: f64,
}

fn metric(m: &BTreeMap<String, f64>, name: &str) -> u64 {
    m.get(&format!("classroom_relay_{name}"))
        .copied()
        .unwrap_or(0.0) as u64
}

struct Sampler {
    pid: u32,
    base: String,
    t0: Instant,
    /// The previous sample's time and counters.
    last: (Instant, Counters),
}

impl Sampler {
    fn take(&mut self, connected: usize) -> Result<Sample, String> {
        let (fds, sockets) = fds(self.pid);
        let m = scrape(&self.base).map_err(|e| e.to_string())?;
        let now = Instant::now();
        let cpu = cpu_seconds(self.pid);
        let c = Counters {
            forwarded: metric(&m, "packets_forwarded_total"),
            bytes: metric(&m, "bytes_forwarded_total"),
            switches: metric(&m, "layer_switches_total"),
            keyframes: metric(&m, "keyframe_requests_total"),
            cpu,
        };
        let (at, p) = std::mem::replace(&mut self.last, (now, c));
        let wall = (now - at).as_secs_f64().max(1e-3);
        let forwarded = c.forwarded;
        Ok(Sample {
            t_s: (now - self.t0).as_secs_f64(),
            rss_kb: status_kb(self.pid, "VmRSS"),
            rss_anon_kb: status_kb(self.pid, "RssAnon"),
            fds,
            sockets,
            publishers: metric(&m, "publishers"),
            subscribers: metric(&m, "subscribers"),
            connected,
            packets_forwarded: forwarded,
            packets_received: metric(&m, "packets_received_total"),
            forwarded_interval: forwarded.saturating_sub(p.forwarded),
            forwarded_pps: forwarded.saturating_sub(p.forwarded) as f64 / wall,
            forwarded_mbps: c.bytes.saturating_sub(p.bytes) as f64 * 8.0 / wall / 1e6,
            layer_switches: c.switches.saturating_sub(p.switches),
            keyframe_requests: c.keyframes.saturating_sub(p.keyframes),
            relay_cpu_cores: (cpu - p.cpu) / wall,
        })
    }
}

fn row(s: &Sample) -> String {
    format!(
        "| {:.0} | {:.1} | {:.1} | {} ({} sockets) | {} + {} | {} | {} | {:.0} | {:.1} | {} / {} | {:.2} |",
        s.t_s,
        s.rss_kb as f64 / 1024.0,
        s.rss_anon_kb as f64 / 1024.0,
        s.fds,
        s.sockets,
        s.publishers,
        s.subscribers,
        s.packets_forwarded,
        s.forwarded_interval,
        s.forwarded_pps,
        s.forwarded_mbps,
        s.layer_switches,
        s.keyframe_requests,
        s.relay_cpu_cores
    )
}

/// One judged property.
#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
}

#[derive(Debug, Serialize)]
struct Verdict {
    /// The sample growth is judged from.
    warmup_s: f64,
    base_t_s: Option<f64>,
    rss_growth_pct: Option<f64>,
    /// Least-squares slope of VmRSS over the samples from the base on.
    rss_slope_kb_per_min: Option<f64>,
    voice_sent: u64,
    voice_received: u64,
    voice_loss_pct: f64,
    checks: Vec<Check>,
    pass: bool,
}

/// What the run saw once it had closed its sessions.
#[derive(Debug, Serialize)]
struct After {
    rss_kb: u64,
    fds: usize,
    publishers: u64,
    subscribers: u64,
}

#[derive(Serialize)]
struct Output<'a> {
    machine: String,
    cores: usize,
    lessons: usize,
    classrooms: usize,
    minutes: f64,
    sample_every_s: u64,
    idle: Option<&'a Sample>,
    samples: &'a [Sample],
    after: Option<&'a After>,
    verdict: &'a Verdict,
    relay_log_lines: usize,
    load: Option<&'a LoadReport>,
}

fn slope_per_min(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    (sxx > 0.0).then(|| sxy / sxx * 60.0)
}

fn judge(
    samples: &[Sample],
    after: Option<&After>,
    load: &Result<LoadReport, String>,
    lessons: usize,
    warmup_s: f64,
) -> Verdict {
    let mut checks = vec![];
    let mut check = |name, ok, detail: String| checks.push(Check { name, ok, detail });

    // Memory: from the first sample at or after the warm-up to the last.
    let base = samples.iter().position(|s| s.t_s >= warmup_s - 1.0);
    let judged = base.map_or(&[][..], |b| &samples[b..]);
    let (growth, slope) = match (judged.first(), judged.last()) {
        (Some(b), Some(l)) if judged.len() >= 2 && b.rss_kb > 0 => {
            let g = 100.0 * (l.rss_kb as f64 - b.rss_kb as f64) / b.rss_kb as f64;
            let pts: Vec<_> = judged.iter().map(|s| (s.t_s, s.rss_kb as f64)).collect();
            (Some(g), slope_per_min(&pts))
        }
        _ => (None, None),
    };
    match (growth, judged.first(), judged.last()) {
        (Some(g), Some(b), Some(l)) => check(
            "memory flat",
            g < GROWTH_LIMIT_PCT,
            format!(
                "VmRSS {:.1} MB at {:.0} s, {:.1} MB at {:.0} s: {g:+.2} % (limit {GROWTH_LIMIT_PCT} %), peak {:.1} MB; RssAnon {:.1} -> {:.1} MB",
                b.rss_kb as f64 / 1024.0,
                b.t_s,
                l.rss_kb as f64 / 1024.0,
                l.t_s,
                judged.iter().map(|s| s.rss_kb).max().unwrap_or(0) as f64 / 1024.0,
                b.rss_anon_kb as f64 / 1024.0,
                l.rss_anon_kb as f64 / 1024.0,
            ),
        ),
        _ => check(
            "memory flat",
            false,
            format!("fewer than 2 samples at or after {warmup_s:.0} s: too short to judge"),
        ),
    }

    // Sessions: exactly the lessons' teachers and classrooms at every sample.
    let want = (lessons as u64, (lessons * SCHOOLS) as u64);
    let off: Vec<_> = samples
        .iter()
        .filter(|s| (s.publishers, s.subscribers) != want)
        .map(|s| format!("{} + {} at {:.0} s", s.publishers, s.subscribers, s.t_s))
        .collect();
    check(
        "sessions flat",
        !samples.is_empty() && off.is_empty(),
        if off.is_empty() {
            format!(
                "{} teachers + {} classrooms at all {} samples",
                want.0,
                want.1,
                samples.len()
            )
        } else {
            format!("want {} + {}: {}", want.0, want.1, off.join(", "))
        },
    );
    match after {
        Some(a) => check(
            "sessions closed",
            (a.publishers, a.subscribers) == (0, 0),
            format!(
                "{} + {} sessions after the run closed them",
                a.publishers, a.subscribers
            ),
        ),
        None => check("sessions closed", false, "no reading after the run".into()),
    }

    // File descriptors.
    let lo = samples.iter().map(|s| s.fds).min().unwrap_or(0);
    let hi = samples.iter().map(|s| s.fds).max().unwrap_or(0);
    check(
        "fds flat",
        !samples.is_empty() && hi - lo <= FD_SLACK,
        format!(
            "{lo}..{hi} open (slack {FD_SLACK}); first {}, last {}",
            samples.first().map_or(0, |s| s.fds),
            samples.last().map_or(0, |s| s.fds)
        ),
    );

    // Forwarding never stalls.
    let mut intervals: Vec<u64> = samples.iter().map(|s| s.forwarded_interval).collect();
    intervals.sort_unstable();
    let median = intervals.get(intervals.len() / 2).copied().unwrap_or(0);
    let floor = (median as f64 * STALL_SHARE).max(1.0);
    let slow: Vec<_> = samples
        .iter()
        .filter(|s| (s.forwarded_interval as f64) < floor)
        .map(|s| format!("{} at {:.0} s", s.forwarded_interval, s.t_s))
        .collect();
    check(
        "forwarding growing",
        !samples.is_empty() && slow.is_empty(),
        if slow.is_empty() {
            format!(
                "every interval forwarded at least {} packets (median {median})",
                intervals.first().copied().unwrap_or(0)
            )
        } else {
            format!(
                "below {STALL_SHARE} of the median {median}: {}",
                slow.join(", ")
            )
        },
    );

    // Voice, from the classrooms' own counts.
    let (sent, got) = match load {
        Ok(r) => (r.audio_expected, r.audio_received),
        Err(_) => (0, 0),
    };
    let loss = 100.0 * sent.saturating_sub(got) as f64 / sent.max(1) as f64;
    match load {
        Ok(r) => {
            let worst = r
                .schools
                .iter()
                .max_by(|a, b| a.audio_concealed_pct.total_cmp(&b.audio_concealed_pct));
            check(
                "voice not lost",
                sent > 0 && loss <= VOICE_LOSS_LIMIT_PCT,
                format!(
                    "{got} of {sent} voice packets received: {loss:.4} % lost (limit {VOICE_LOSS_LIMIT_PCT} %); most concealed: {}",
                    worst.map_or("-".into(), |s| format!("{} {:.2} %", s.id, s.audio_concealed_pct))
                ),
            )
        }
        Err(e) => check("voice not lost", false, format!("the load failed: {e}")),
    }

    let pass = checks.iter().all(|c| c.ok);
    Verdict {
        warmup_s,
        base_t_s: judged.first().map(|s| s.t_s),
        rss_growth_pct: growth,
        rss_slope_kb_per_min: slope,
        voice_sent: sent,
        voice_received: got,
        voice_loss_pct: loss,
        checks,
        pass,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let arg = |name: &str| arg_of(&args, name);
    let minutes: f64 = arg("--minutes").map_or(if bench { 25.0 } else { 2.0 }, |s| {
        s.parse().expect("--minutes: a number")
    });
    let n: usize = arg("--lessons").map_or(4, |s| s.parse().expect("--lessons: a number"));
    let every: u64 = arg("--sample-every").map_or(if bench { 60 } else { 20 }, |s| {
        s.parse().expect("--sample-every: seconds")
    });
    assert!(every > 0 && minutes > 0.0 && n > 0, "nothing to soak");
    let run_s = minutes * 60.0;
    // Growth is judged from 2 minutes in, or from half the run when it is short.
    let warmup_s = 120f64.min(run_s / 2.0);
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());

    let relay = start_relay();
    let pid = relay.child.id();
    let mut sampler = Sampler {
        pid,
        base: relay.base.clone(),
        t0: Instant::now(),
        last: (Instant::now(), Counters::default()),
    };
    std::thread::sleep(Duration::from_millis(500));
    let idle = sampler.take(0).ok();
    println!(
        "classroom-relay soak: {} ({cores} cores), {n} lessons x {SCHOOLS} classrooms, {minutes} min, a sample every {every} s, memory judged from {warmup_s:.0} s",
        cpu_model()
    );
    if let Some(i) = &idle {
        println!(
            "idle relay: VmRSS {:.1} MB, {} fds",
            i.rss_kb as f64 / 1024.0,
            i.fds
        );
    }

    let plan = LoadPlan {
        relay: relay.base.clone(),
        lessons: lessons(n, (minutes.ceil() as u64).max(1)),
        duration: Duration::from_secs_f64(run_s) + MARGIN,
        secret: relay_config::DEVELOPMENT_SECRET.to_string(),
        seed: 14,
        server: Server::ClassroomRelay,
    };
    let connected = Arc::new(AtomicUsize::new(0));
    let seen = connected.clone();
    let t0 = Instant::now();
    sampler.t0 = t0;
    let load = std::thread::spawn(move || {
        run(&plan, &|_, c| seen.store(c, Ordering::Relaxed)).map_err(|e| e.to_string())
    });

    println!("| t s | VmRSS MB | RssAnon MB | fds | sessions (teachers + classrooms) | forwarded total | forwarded in interval | pkt/s | Mbit/s | layer switches / keyframe requests | relay CPU (cores) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut samples = vec![];
    let count = (run_s / every as f64).floor() as u64;
    // The counters are read at the start too, so the first interval counts from there.
    let _ = sampler.take(0);
    for k in 1..=count {
        let at = t0 + Duration::from_secs(k * every);
        while Instant::now() < at && !load.is_finished() {
            std::thread::sleep((at - Instant::now()).min(Duration::from_millis(250)));
        }
        let el = t0.elapsed().as_secs_f64();
        if load.is_finished() {
            println!("(the load ended early, after {el:.0} s)");
            break;
        }
        match sampler.take(connected.load(Ordering::Relaxed)) {
            Ok(s) => {
                println!("{}", row(&s));
                samples.push(s);
            }
            Err(e) => {
                println!("(sampling failed at {el:.0} s: {e})");
                break;
            }
        }
    }

    let load: Result<LoadReport, String> = load
        .join()
        .unwrap_or_else(|_| Err("the load thread panicked".into()));
    // The load closed its sessions (HTTP DELETE); give the relay a moment.
    std::thread::sleep(Duration::from_secs(2));
    let after = scrape(&relay.base).ok().map(|m| After {
        rss_kb: status_kb(pid, "VmRSS"),
        fds: fds(pid).0,
        publishers: metric(&m, "publishers"),
        subscribers: metric(&m, "subscribers"),
    });
    let verdict = judge(&samples, after.as_ref(), &load, n, warmup_s);

    if let Ok(r) = &load {
        let t = &r.relay_totals;
        println!(
            "load: {:.0} s, relay forwarded {} packets ({:.1} MB), received {}; {} keyframe requests, {} layer switches; video latency p50 {:.1} ms, p99 {:.1} ms",
            r.duration_s,
            t.packets_forwarded,
            t.bytes_forwarded as f64 / 1e6,
            t.packets_received,
            t.keyframe_requests,
            t.layer_switches,
            r.video_latency.p50_ms,
            r.video_latency.p99_ms
        );
    }
    if let Some(a) = &after {
        println!(
            "after the run: VmRSS {:.1} MB, {} fds, {} + {} sessions",
            a.rss_kb as f64 / 1024.0,
            a.fds,
            a.publishers,
            a.subscribers
        );
    }
    let log = relay.log.lock().expect("log").clone();
    if !log.is_empty() {
        println!("the relay logged {} lines on stderr, first:", log.len());
        for l in log.iter().take(5) {
            println!("  {l}");
        }
    }
    println!(
        "slope of VmRSS from {:.0} s: {} kB/min",
        verdict.base_t_s.unwrap_or(0.0),
        verdict
            .rss_slope_kb_per_min
            .map_or("-".into(), |v| format!("{v:+.0}"))
    );
    for c in &verdict.checks {
        let mark = if c.ok { "ok  " } else { "FAIL" };
        println!("{mark} {}: {}", c.name, c.detail);
    }
    println!("verdict: {}", if verdict.pass { "pass" } else { "FAIL" });

    let out = Output {
        machine: cpu_model(),
        cores,
        lessons: n,
        classrooms: n * SCHOOLS,
        minutes,
        sample_every_s: every,
        idle: idle.as_ref(),
        samples: &samples,
        after: after.as_ref(),
        verdict: &verdict,
        relay_log_lines: log.len(),
        load: load.as_ref().ok(),
    };
    let path = arg("--json").unwrap_or_else(|| {
        std::env::temp_dir()
            .join("classroom-relay-soak-bench.json")
            .display()
            .to_string()
    });
    std::fs::write(&path, serde_json::to_string_pretty(&out).expect("json"))
        .expect("write the JSON report");
    println!("JSON: {path}");
    drop(relay);
    if !verdict.pass {
        std::process::exit(1);
    }
}

/// The value after `name` on the command line.
fn arg_of(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}
