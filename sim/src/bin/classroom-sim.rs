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
    about = "Replay school links through the real classroom-relay code"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run lessons on a virtual clock: the relay's real core and str0m edge, str0m
    /// teacher and classrooms, emulated school links. Writes report.json,
    /// schools.csv, quality.svg and timeline.svg to --out.
    Replay(ReplayArgs),
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
    /// School whose lesson timeline.svg shows (default: the first thin-link one).
    #[arg(long)]
    timeline: Option<String>,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("classroom-sim: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::Replay(a) => replay(a),
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

fn replay(a: ReplayArgs) -> ExitCode {
    let doc = Documented::embedded();
    let (access_name, access_text) = match &a.access {
        Some(p) => match population::read(p) {
            Ok(t) => (p.display().to_string(), t),
            Err(e) => return fail(e),
        },
        None => (
            "sim/data/access-kinds.json (embedded)".to_string(),
            population::ACCESS_KINDS.to_string(),
        ),
    };
    let kinds = match AccessFile::load(&access_name, &access_text) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let sc = match Scenario::parse(&a.scenario, &doc) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let (mut plan, mut before) = match &sc {
        Scenario::National => (documented_plan(&doc, &kinds, None, a.seed), None),
        Scenario::Region(r) => (documented_plan(&doc, &kinds, Some(r), a.seed), None),
        Scenario::Upgrade {
            region,
            kbps,
            count,
        } => {
            let p = documented_plan(&doc, &kinds, Some(region), a.seed);
            (upgraded(&p, &kinds, *kbps, *count, a.seed), Some(p))
        }
        Scenario::File(path) => {
            let text = match population::read(path) {
                Ok(t) => t,
                Err(e) => return fail(e),
            };
            match file_plan(&path.display().to_string(), &text, &kinds, a.seed) {
                Ok((_, p)) => (p, None),
                Err(e) => return fail(e),
            }
        }
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
