//! classroom-sim: replay the documented school links through the real relay code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

use relay_sim::population::{
    self, documented_plan, file_plan, upgraded, AccessFile, Documented, Plan, Scenario,
};
use relay_sim::replay::{run_all, SchoolResult};
use relay_sim::report::{self, summaries, Report};

#[derive(Parser)]
#[command(
    name = "classroom-sim",
    version,
    about = "Replay school links through the real classroom-relay code, or load-test a running relay"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run lessons on a virtual clock: the relay's real core and str0m edge, str0m
    /// teacher and classrooms, emulated school links. Writes report.json,
    /// schools.csv, quality.svg, timeline.svg and timeline.csv to --out.
    Replay(ReplayArgs),
    /// Real str0m peers over real UDP against a running relay: per lesson a teacher
    /// (camera simulcast, slides, Opus voice) and one classroom per school, each
    /// school behind its own userspace shaping proxy (its link from the scenario).
    /// Prints per-school quality and the relay's own totals; stops by itself after
    /// --duration. Exit status 3 if the relay stops answering.
    Load(LoadArgs),
    /// A real-time UDP shaping proxy with one replayed school's links (the same
    /// schedule, rate, queue, delay, jitter and loss `replay` gives it with this
    /// seed), for putting a real browser classroom behind them: serve the relay
    /// with its media socket on one address (`--udp 127.0.0.1:P --workers 1`) and
    /// `--advertise` the proxy's (--listen). Stops after the lesson's length (plus
    /// 30 s), or on Ctrl-C.
    Shape(ShapeArgs),
}

#[derive(clap::Args)]
struct ShapeArgs {
    /// As for replay: national | region:NAME | FILE.json.
    #[arg(long)]
    scenario: String,
    /// The lesson (hub id) whose school to take (default: the plan's first).
    #[arg(long)]
    lesson: Option<String>,
    /// The school (default: the lesson's first).
    #[arg(long)]
    school: Option<String>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long)]
    access: Option<PathBuf>,
    /// Lesson length in minutes instead of the plan's (the schedule of dips).
    #[arg(long)]
    minutes: Option<u64>,
    /// The address browsers send to (the relay advertises it).
    #[arg(long)]
    listen: std::net::IpAddr,
    /// The relay's media socket(s), ADDR:PORT; each is served on --listen at the same port.
    #[arg(long, required = true)]
    relay: Vec<std::net::SocketAddr>,
    /// Shape the clients from this address only; others (the teacher) pass
    /// straight through. Default: shape every client.
    #[arg(long)]
    shaped: Option<std::net::IpAddr>,
}

#[derive(clap::Args)]
struct LoadArgs {
    /// The relay's HTTP address, e.g. http://127.0.0.1:8080
    #[arg(long)]
    relay: String,
    /// Concurrent lessons (one teacher each).
    #[arg(long, default_value_t = 1)]
    lessons: usize,
    /// Schools (classrooms) watching each lesson.
    #[arg(long, default_value_t = 3)]
    schools_per_lesson: usize,
    /// Where the school links come from: national | region:NAME | FILE.json (as for
    /// replay). Schools are drawn from it with the seed.
    #[arg(long, default_value = "national")]
    scenario: String,
    /// How long the lessons run, e.g. 60s, 5m.
    #[arg(long, default_value = "60s")]
    duration: String,
    /// The relay's token secret (auth.token_secret).
    #[arg(long, conflicts_with_all = ["config", "development_secret"])]
    token_secret: Option<String>,
    /// The relay's configuration file: its token secret signs the load's tokens.
    #[arg(long, conflicts_with = "development_secret")]
    config: Option<PathBuf>,
    /// The relay runs without a secret (`classroom-relay serve` with no config).
    #[arg(long)]
    development_secret: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Access kinds (assumptions) instead of the embedded ones.
    #[arg(long)]
    access: Option<PathBuf>,
    /// Also write load-report.json and schools.csv here.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// national | region:NAME | upgrade[:REGION[:KBPS]] | FILE.json
    #[arg(long)]
    scenario: String,
    /// Replay only this many lessons (hubs), drawn at random with the seed.
    #[arg(long)]
    sample: Option<usize>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value = "sim-out")]
    out: PathBuf,
    /// Access kinds (assumptions) to use instead of the embedded
    /// sim/data/access-kinds.json, e.g. your own measured figures.
    #[arg(long)]
    access: Option<PathBuf>,
    /// Lesson length in minutes instead of the documented 20–25 (short runs).
    #[arg(long)]
    minutes: Option<u64>,
    /// Threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// School whose lesson timeline.svg and timeline.csv show (default: the first thin-link one).
    #[arg(long)]
    timeline: Option<String>,
}

/// Lesson seconds one thread replays per wall second (for the up-front estimate).
const REAL_TIME_FACTOR: f64 = 50.0;

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("classroom-sim: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::Replay(a) => replay(a),
        Cmd::Load(a) => load(a),
        Cmd::Shape(a) => shape(a),
    }
}

fn shape(a: ShapeArgs) -> ExitCode {
    let mut plan = match plan_of(&a.scenario, a.access.as_ref(), a.seed) {
        Ok(p) => p.plan,
        Err(e) => return fail(e),
    };
    if a.minutes == Some(0) {
        return fail("--minutes must be at least 1");
    }
    let Some(i) = (match &a.lesson {
        Some(h) => plan.lessons.iter().position(|l| &l.hub == h),
        None => (!plan.lessons.is_empty()).then_some(0),
    }) else {
        return fail(format!(
            "no lesson {:?} in the scenario",
            a.lesson.unwrap_or_default()
        ));
    };
    let l = &mut plan.lessons[i];
    if let Some(m) = a.minutes {
        l.minutes = m;
    }
    let Some(j) = (match &a.school {
        Some(s) => l.schools.iter().position(|x| &x.id == s),
        None => (!l.schools.is_empty()).then_some(0),
    }) else {
        return fail(format!(
            "no school {:?} in lesson {}",
            a.school.unwrap_or_default(),
            l.hub
        ));
    };
    let seed = relay_sim::replay::lesson_seed(a.seed, i);
    let (down, up) = relay_sim::replay::school_links(l, seed).swap_remove(j);
    let school = &l.schools[j];
    eprintln!(
        "classroom-sim: shaping {} ({}, {} kbit/s down, {} up, RTT {} ms, jitter {} ms, loss {} %) on {} for {} min",
        school.id,
        school.link.access,
        school.link.down_kbps,
        school.link.up_kbps,
        school.link.rtt_ms,
        school.link.jitter_ms,
        school.link.loss_pct,
        a.listen,
        l.minutes
    );
    let limit = std::time::Duration::from_secs(l.minutes * 60 + 30);
    let shaper = relay_sim::shape::Shaper {
        listen: a.listen,
        relay: a.relay,
        shaped: a.shaped,
        down,
        up,
        seed: seed ^ j as u64,
    };
    let running = match shaper.start(limit) {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot listen on {}: {e}", a.listen)),
    };
    let started = Instant::now();
    while !running.finished() {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let s = started.elapsed().as_secs();
        if s > 0 && s % 10 == 0 && started.elapsed().subsec_millis() < 200 {
            let st = running.stats();
            eprintln!(
                "classroom-sim: shaping, {s} s of {}: {} clients, up {}/{} packets delivered, down {}/{}, {} unshaped",
                limit.as_secs(),
                st.clients,
                st.up_delivered,
                st.up_sent,
                st.down_delivered,
                st.down_sent,
                st.unshaped
            );
        }
    }
    match running.stop() {
        Ok(st) => {
            println!("{}", serde_json::to_string(&st).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// Keep `n` lessons drawn with the seed, in plan order.
fn sample(plan: &mut Plan, n: usize, seed: u64) {
    if n >= plan.lessons.len() {
        return;
    }
    let mut idx: Vec<usize> = (0..plan.lessons.len()).collect();
    population::Draw::new(seed ^ 0xa11ce).shuffle(&mut idx);
    let mut keep: Vec<usize> = idx.into_iter().take(n).collect();
    keep.sort_unstable();
    plan.lessons = keep.into_iter().map(|i| plan.lessons[i].clone()).collect();
}

/// The plan of a scenario (and, for `upgrade`, the plan before it), with the name
/// and contents of the access-kinds file used.
struct Planned {
    plan: Plan,
    before: Option<Plan>,
    access_name: String,
    kinds: AccessFile,
}

fn plan_of(scenario: &str, access: Option<&PathBuf>, seed: u64) -> Result<Planned, String> {
    let doc = Documented::embedded();
    let (access_name, access_text) = match access {
        Some(p) => (
            p.display().to_string(),
            population::read(p).map_err(|e| e.to_string())?,
        ),
        None => (
            "sim/data/access-kinds.json (embedded)".to_string(),
            population::ACCESS_KINDS.to_string(),
        ),
    };
    let kinds = AccessFile::load(&access_name, &access_text).map_err(|e| e.to_string())?;
    let sc = Scenario::parse(scenario, &doc).map_err(|e| e.to_string())?;
    let (plan, before) = match &sc {
        Scenario::National => (documented_plan(&doc, &kinds, None, seed), None),
        Scenario::Region(r) => (documented_plan(&doc, &kinds, Some(r), seed), None),
        Scenario::Upgrade {
            region,
            kbps,
            count,
        } => {
            let p = documented_plan(&doc, &kinds, Some(region), seed);
            (upgraded(&p, &kinds, *kbps, *count, seed), Some(p))
        }
        Scenario::File(path) => {
            let text = population::read(path).map_err(|e| e.to_string())?;
            let (_, p) = file_plan(&path.display().to_string(), &text, &kinds, seed)
                .map_err(|e| e.to_string())?;
            (p, None)
        }
    };
    Ok(Planned {
        plan,
        before,
        access_name,
        kinds,
    })
}

fn replay(a: ReplayArgs) -> ExitCode {
    let Planned {
        mut plan,
        mut before,
        access_name,
        kinds,
    } = match plan_of(&a.scenario, a.access.as_ref(), a.seed) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let planned = plan.lessons.len();
    for p in std::iter::once(&mut plan).chain(before.iter_mut()) {
        if let Some(n) = a.sample {
            sample(p, n, a.seed);
        }
        if let Some(m) = a.minutes {
            if m == 0 {
                return fail("--minutes must be at least 1");
            }
            p.lessons.iter_mut().for_each(|l| l.minutes = m);
        }
    }
    if plan.lessons.is_empty() {
        return fail("the scenario has no lessons to replay");
    }
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let timeline = a.timeline.clone().or_else(|| {
        plan.lessons
            .iter()
            .flat_map(|l| &l.schools)
            .find(|s| s.link.bin() == population::BINS[0])
            .or_else(|| plan.lessons[0].schools.first())
            .map(|s| s.id.clone())
    });
    let lesson_secs: u64 = plan.lessons.iter().map(|l| l.minutes * 60).sum::<u64>()
        * if before.is_some() { 2 } else { 1 };
    eprintln!(
        "classroom-sim: replaying {} of {planned} lessons ({} schools, {:.1} lesson-hours) on {jobs} threads",
        plan.lessons.len(),
        plan.lessons.iter().map(|l| l.schools.len()).sum::<usize>(),
        lesson_secs as f64 / 3600.0
    );
    // Measured on a 2-core AMD EPYC: about 50x real time per thread.
    let guess_min = lesson_secs as f64 / (REAL_TIME_FACTOR * jobs as f64) / 60.0;
    if guess_min > 15.0 {
        eprintln!(
            "classroom-sim: this will take roughly {:.0} minutes; --sample N replays N lessons (drawn with the seed) for a quicker estimate",
            guess_min
        );
    }
    let started = Instant::now();
    let run = |p: &Plan, what: &str| -> (Vec<SchoolResult>, Option<relay_sim::replay::Timeline>) {
        let tty = std::io::stderr().is_terminal();
        let progress = |done: usize, total: usize| {
            let el = started.elapsed().as_secs_f64();
            let eta = el / done as f64 * (total - done) as f64;
            let line = format!(
                "{what}[{:<30}] {done}/{total} lessons, {el:.0} s elapsed, about {eta:.0} s left",
                "#".repeat(done * 30 / total)
            );
            if tty {
                eprint!("\r{line}");
                if done == total {
                    eprintln!();
                }
            } else if done * 10 / total != (done - 1) * 10 / total || done == total {
                eprintln!("{line}");
            }
        };
        let (r, t) = run_all(&p.lessons, a.seed, jobs, timeline.as_deref(), &progress);
        (r.into_iter().flatten().collect(), t)
    };
    let before_results = before.as_ref().map(|p| run(p, "before upgrade ").0);
    let (schools, tl) = run(&plan, "");
    let wall = started.elapsed().as_secs_f64();
    let summary = summaries(&schools, &plan.unreachable);
    let report = Report {
        tool: format!("classroom-sim {}", env!("CARGO_PKG_VERSION")),
        scenario: a.scenario.clone(),
        seed: a.seed,
        lessons: plan.lessons.len(),
        lessons_planned: planned,
        documented_data: "sim/data/school-links.json (copy of shared/data/school-links.json)"
            .into(),
        access_kinds: format!("{access_name}, version {} (ASSUMPTIONS)", kinds.version),
        assumptions: plan.assumptions.clone(),
        unreachable: plan.unreachable.clone(),
        before_upgrade: before_results
            .as_ref()
            .map(|b| Box::new(summaries(b, &plan.unreachable))),
        schools,
        summary,
    };
    match report::write(&a.out, &report, tl.as_ref()) {
        Ok(files) => {
            print!("{}", report::text_summary(&report));
            if let Some(b) = &report.before_upgrade {
                println!(
                    "  before the upgrade: mostly 720p {} of {} schools; after: {}",
                    b.national.main_layer.get("720p").unwrap_or(&0),
                    b.national.schools,
                    report.summary.national.main_layer.get("720p").unwrap_or(&0)
                );
            }
            println!("wrote {}", files.join(", "));
            eprintln!(
                "classroom-sim: {:.1} s wall, {:.0}x real time overall ({} threads)",
                wall,
                lesson_secs as f64 / wall.max(1e-9),
                jobs
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("writing {}: {e}", a.out.display())),
    }
}

/// `n` lessons of `k` schools each, drawn from `plan` with the seed: each keeps
/// its hub's uplink, and schools are dealt out in a shuffled order.
fn regroup(
    plan: &Plan,
    n: usize,
    k: usize,
    seed: u64,
) -> Vec<relay_sim::population::PlannedLesson> {
    let mut schools: Vec<_> = plan
        .lessons
        .iter()
        .flat_map(|l| l.schools.clone())
        .collect();
    population::Draw::new(seed ^ 0x10ad).shuffle(&mut schools);
    let mut hubs: Vec<usize> = (0..plan.lessons.len()).collect();
    population::Draw::new(seed ^ 0x40b5).shuffle(&mut hubs);
    (0..n)
        .map(|i| {
            let mut l = plan.lessons[hubs[i % hubs.len()]].clone();
            l.schools = (0..k)
                .map(|j| {
                    let mut s = schools[(i * k + j) % schools.len()].clone();
                    if i * k + j >= schools.len() {
                        s.id = format!("{}-{}", s.id, (i * k + j) / schools.len());
                    }
                    s
                })
                .collect();
            l
        })
        .collect()
}

fn load(a: LoadArgs) -> ExitCode {
    let duration = match relay_config::parse_duration(&a.duration) {
        Ok(d) if d >= std::time::Duration::from_secs(5) => d,
        Ok(_) => return fail("--duration must be at least 5s"),
        Err(e) => return fail(format!("--duration {}: {e}", a.duration)),
    };
    if a.lessons == 0 || a.schools_per_lesson == 0 {
        return fail("--lessons and --schools-per-lesson must be at least 1");
    }
    let secret = match (&a.token_secret, &a.config, a.development_secret) {
        (Some(s), _, _) => s.clone(),
        (None, Some(c), _) => match relay_config::Config::load(c) {
            Ok(l) => l.token_secret,
            Err(e) => return fail(format!("{}: {e}", c.display())),
        },
        (None, None, true) => relay_config::DEVELOPMENT_SECRET.to_string(),
        (None, None, false) => {
            return fail(
                "give the relay's token secret: --token-secret S, --config FILE (the relay's configuration), or --development-secret for a relay started without one",
            )
        }
    };
    let planned = match plan_of(&a.scenario, a.access.as_ref(), a.seed) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    if planned.plan.lessons.is_empty() {
        return fail("the scenario has no schools to draw from");
    }
    let lessons = regroup(&planned.plan, a.lessons, a.schools_per_lesson, a.seed);
    let plan = relay_sim::load::LoadPlan {
        relay: a.relay.clone(),
        lessons,
        duration,
        secret,
        seed: a.seed,
        server: relay_sim::load::Server::ClassroomRelay,
    };
    let sessions = a.lessons * (1 + a.schools_per_lesson);
    eprintln!(
        "classroom-sim load: {} lessons x {} schools against {} for {} (links from {})",
        a.lessons,
        a.schools_per_lesson,
        a.relay,
        relay_config::format_duration(duration),
        a.scenario
    );
    let tty = std::io::stderr().is_terminal();
    let last = std::sync::Mutex::new(0u64);
    let progress = |el: std::time::Duration, connected: usize| {
        let line = format!(
            "load: {:>4} s of {} s, {connected}/{sessions} sessions connected",
            el.as_secs(),
            duration.as_secs()
        );
        let mut last = last.lock().expect("progress");
        if tty {
            eprint!("\r{line}");
        } else if el.as_secs() >= *last + 10 {
            *last = el.as_secs();
            eprintln!("{line}");
        }
    };
    let report = match relay_sim::load::run(&plan, &progress) {
        Ok(r) => r,
        Err(e) => {
            if tty {
                eprintln!();
            }
            eprintln!("classroom-sim load: {e}");
            return ExitCode::from(match e {
                relay_sim::load::LoadError::NotAnswering(..) => 3,
                _ => 1,
            });
        }
    };
    if tty {
        eprintln!();
    }
    print!("{}", load_text(&report));
    if let Some(dir) = &a.out {
        let json = serde_json::to_string_pretty(&report).expect("report serializes");
        let w = std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::write(dir.join("load-report.json"), json))
            .and_then(|_| std::fs::write(dir.join("schools.csv"), report::csv(&report.schools)));
        if let Err(e) = w {
            return fail(format!("writing {}: {e}", dir.display()));
        }
        println!(
            "wrote {}, {}",
            dir.join("load-report.json").display(),
            dir.join("schools.csv").display()
        );
    }
    ExitCode::SUCCESS
}

fn load_text(r: &relay_sim::load::LoadReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<24} {:<16} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>6}",
        "school",
        "access",
        "down",
        "720p",
        "360p",
        "180p",
        "audio",
        "freezes",
        "voice%",
        "slides",
        "kbps"
    );
    for x in &r.schools {
        let l = &x.layer_share;
        let _ = writeln!(
            s,
            "{:<24} {:<16} {:>6} {:>6.2} {:>6.2} {:>6.2} {:>6.2} {:>7} {:>7.2} {:>7.2} {:>6}",
            x.id,
            x.access,
            x.down_kbps,
            l.p720,
            l.p360,
            l.p180,
            l.audio_only,
            x.freeze_count,
            x.audio_concealed_pct,
            x.slides_share,
            x.mean_kbps
        );
    }
    for x in &r.schools {
        let _ = writeln!(s, "  {}: {}", x.id, x.verdict);
    }
    let l = &r.video_latency;
    let _ = writeln!(
        s,
        "video teacher -> classroom: p50 {:.1} ms, p99 {:.1} ms over {} packets; voice packets received {} of {}",
        l.p50_ms, l.p99_ms, l.packets, r.audio_received, r.audio_expected
    );
    let t = &r.relay_totals;
    let _ = writeln!(
        s,
        "relay totals over {:.0} s: {} packets in, {} forwarded ({:.0} packets/s, {:.1} Mbit/s payload), {} keyframe requests, {} layer switches, peak {} teachers / {} classrooms",
        r.duration_s,
        t.packets_received,
        t.packets_forwarded,
        t.packets_forwarded as f64 / r.duration_s.max(1e-3),
        t.bytes_forwarded as f64 * 8.0 / r.duration_s.max(1e-3) / 1e6,
        t.keyframe_requests,
        t.layer_switches,
        t.peak_publishers,
        t.peak_subscribers
    );
    s
}
