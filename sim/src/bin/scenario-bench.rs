//! Runs every link-adaptation scenario through the real relay code on a virtual
//! clock and prints one row per scenario (see benches/README.md).
//!
//! usage: scenario-bench [--seed N] [--only NAME]

use std::time::{Duration, Instant};

use relay_sim::scenario;

fn ms(d: Option<Duration>) -> String {
    d.map_or("never".into(), |d| format!("{} ms", d.as_millis()))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut seed = 1u64;
    let mut only: Option<String> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seed" => seed = args.next().and_then(|s| s.parse().ok()).expect("--seed N"),
            "--only" => only = Some(args.next().expect("--only NAME")),
            "-h" | "--help" => {
                println!("usage: scenario-bench [--seed N] [--only NAME]\nRuns the link-adaptation scenarios on a virtual clock and prints their figures.");
                return;
            }
            other => {
                eprintln!("scenario-bench: unknown argument {other:?} (try --help)");
                std::process::exit(2);
            }
        }
    }
    println!("| scenario | drop → send fits | freezes (total ms) | audio lost / received | rise → 85 % | utilization | switches | wall time |");
    println!("|---|---|---|---|---|---|---|---|");
    for sc in scenario::all() {
        if only.as_deref().is_some_and(|o| o != sc.name) {
            continue;
        }
        let name = sc.name;
        let secs = sc.duration.as_secs();
        eprintln!("running {name} ({secs} s of lesson)...");
        let started = Instant::now();
        let o = scenario::run(sc, seed);
        let wall = started.elapsed();
        let freezes: usize = o.seen.iter().map(|e| e.freezes).sum();
        let frozen: Duration = o.seen.iter().map(|e| e.frozen).sum();
        let lost: u64 = o.seen.iter().map(|e| e.audio_lost).sum();
        let recv: usize = o.seen.iter().map(|e| e.audio_received).sum();
        let switches: Vec<String> = o.seen.iter().map(|e| e.switches().to_string()).collect();
        let fits: Vec<String> = o.fit_after_drop.iter().map(|d| ms(*d)).collect();
        let rises: Vec<String> = o.reach_after_rise.iter().map(|d| ms(*d)).collect();
        println!(
            "| {name} | {} | {freezes} ({} ms) | {lost} / {recv} | {} | {:.0} % | {} | {:.1} s |",
            if fits.is_empty() {
                "–".into()
            } else {
                fits.join(", ")
            },
            frozen.as_millis(),
            if rises.is_empty() {
                "–".into()
            } else {
                rises.join(", ")
            },
            o.utilization * 100.0,
            switches.join("/"),
            wall.as_secs_f64(),
        );
        if std::env::var_os("TRACE").is_some() {
            for (t, v) in o.world.trace.iter().step_by(2) {
                let bin = (t.as_millis() / 100) as usize;
                let sent_kbps: Vec<u64> = (0..o.world.schools())
                    .map(|s| {
                        let sent = o.world.school_bins(s).0;
                        let lo = bin.saturating_sub(10).min(sent.len());
                        sent[lo..bin.min(sent.len())].iter().sum::<u64>() * 8 / 1000
                    })
                    .collect();
                eprintln!(
                    "  {:5.1}s sent kbps {sent_kbps:?} est/budget kbps {:?}",
                    t.as_secs_f64(),
                    v.iter()
                        .map(|(e, b)| (e / 1000, b / 1000))
                        .collect::<Vec<_>>()
                );
            }
        }
        for (i, e) in o.seen.iter().enumerate() {
            let layers: Vec<String> = e
                .layers
                .iter()
                .map(|(t, l)| {
                    format!(
                        "{:.1}s:{}",
                        t.as_secs_f64(),
                        ["q", "h", "f"][*l as usize % 3]
                    )
                })
                .collect();
            eprintln!(
                "  classroom {i}: first frame {:?}, {} frames, layers {}",
                e.first_frame,
                e.frames,
                layers.join(" ")
            );
        }
    }
}
