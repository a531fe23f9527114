//! Every fuzz target on its seed corpus and its kept crashes, then a short seeded
//! mutation loop, so the targets run (and cannot rot) in `cargo test --workspace`.
//! The long runs are libFuzzer's (see `fuzz/README.md`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Mutated inputs per target, and the most time one target's loop may take in a
/// debug build; targets that build sessions are slower per input.
fn budget(target: &str) -> (usize, Duration) {
    match target {
        "sdp_offer" => (400, Duration::from_secs(8)),
        "edge_datagram" => (300, Duration::from_secs(8)),
        "scenario" | "access_kinds" => (1500, Duration::from_secs(5)),
        _ => (4000, Duration::from_secs(5)),
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// xorshift64*: the same seed gives the same inputs on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: [&[u8]; 10] = [
    b"0",
    b"-1",
    b"18446744073709551615",
    b"4294967296",
    b"1e308",
    b"\"\"",
    b"null",
    b"\r\n",
    b"\x00",
    b"\xff\xff",
];

/// One mutation of `input`: flips, overwrites, inserts, deletes, duplicates,
/// splices with another seed, or a boundary value put in place of some bytes.
fn mutate(rng: &mut Rng, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut d = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let n = d.len();
        match rng.below(7) {
            0 if n > 0 => {
                let i = rng.below(n);
                d[i] ^= 1 << rng.below(8);
            }
            1 if n > 0 => {
                let i = rng.below(n);
                d[i] = [0, 0xff, 0x7f, 0x80, b'9', b'"'][rng.below(6)];
            }
            2 => {
                let i = rng.below(n + 1);
                let k = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..k).map(|_| rng.next() as u8).collect();
                d.splice(i..i, bytes);
            }
            3 if n > 0 => {
                let i = rng.below(n);
                let k = 1 + rng.below((n - i).min(64));
                d.drain(i..i + k);
            }
            4 if n > 0 => {
                let i = rng.below(n);
                let k = 1 + rng.below((n - i).min(64));
                let copy = d[i..i + k].to_vec();
                let at = rng.below(n + 1);
                d.splice(at..at, copy);
            }
            5 if !seeds.is_empty() => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(n + 1);
                let from = rng.below(other.len() + 1);
                d.truncate(cut);
                d.extend_from_slice(&other[from..]);
            }
            _ => {
                // A digit run (or any spot) replaced by a boundary value.
                let i = rng.below(n + 1);
                let mut j = i;
                while j < n && d[j].is_ascii_digit() {
                    j += 1;
                }
                d.splice(
                    i..j,
                    INTERESTING[rng.below(INTERESTING.len())].iter().copied(),
                );
            }
        }
    }
    d.truncate(64 * 1024);
    d
}

fn run(target: &str, f: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds: Vec<Vec<u8>> = files(&root.join("corpus").join(target))
        .iter()
        .map(|p| std::fs::read(p).expect("seed"))
        .collect();
    assert!(!seeds.is_empty(), "{target} has no seed corpus");
    for s in &seeds {
        f(s);
    }
    for p in files(&root.join("regressions").join(target)) {
        f(&std::fs::read(&p).expect("regression"));
    }
    let (count, limit) = budget(target);
    let start = Instant::now();
    let mut rng = Rng(0x5eed_0014 ^ target.len() as u64);
    let mut done = 0;
    while done < count && start.elapsed() < limit {
        let base = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, base, &seeds);
        if std::panic::catch_unwind(|| f(&input)).is_err() {
            // Keep the input for `fuzz/regressions/<target>/`.
            let out = std::env::temp_dir().join(format!("relay-fuzz-smoke-{target}.bin"));
            std::fs::write(&out, &input).expect("write the crashing input");
            panic!(
                "{target}: mutated input {done} crashed; saved as {}",
                out.display()
            );
        }
        done += 1;
    }
    eprintln!(
        "{target}: {} seeds, {done} mutated inputs in {:?}",
        seeds.len(),
        start.elapsed()
    );
}

macro_rules! smoke {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run(stringify!($name), relay_fuzz::$name);
            }
        )*

        #[test]
        fn every_target_has_a_smoke_test() {
            let tested = [$(stringify!($name)),*];
            for (name, _) in relay_fuzz::TARGETS {
                assert!(tested.contains(name), "{name} is not in smoke.rs");
            }
            assert_eq!(tested.len(), relay_fuzz::TARGETS.len());
        }
    };
}

smoke!(
    sdp_offer,
    edge_datagram,
    vp8,
    h264,
    red,
    token,
    config,
    scenario,
    access_kinds
);
