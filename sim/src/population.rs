//! Which schools a replay runs, and over which links: the documented distribution
//! (`sim/data/school-links.json`, facts) dressed in access kinds
//! (`sim/data/access-kinds.json`, assumptions), or an operator's scenario file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The documented facts, embedded (a versioned copy of `shared/data`).
pub const DOCUMENTED: &str = include_str!("../data/school-links.json");
/// The default assumptions, embedded.
pub const ACCESS_KINDS: &str = include_str!("../data/access-kinds.json");

/// A problem with an input file, naming where it is.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{file}: {path}: {msg}")]
    Field {
        file: String,
        path: String,
        msg: String,
    },
    #[error("{file}: {0}", file = .1)]
    Io(std::io::Error, String),
    #[error("{0}")]
    Other(String),
}

fn field(file: &str, path: impl Into<String>, msg: impl Into<String>) -> InputError {
    InputError::Field {
        file: file.into(),
        path: path.into(),
        msg: msg.into(),
    }
}

/// Parse JSON into `T`, reporting the JSON path of a bad field.
pub fn parse<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, InputError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        field(file, path, e.into_inner().to_string())
    })
}

pub fn read(path: &Path) -> Result<String, InputError> {
    std::fs::read_to_string(path).map_err(|e| InputError::Io(e, path.display().to_string()))
}

/// How a rate wanders during a lesson: every `every_s` (a range) the link runs at
/// between (1 − depth) and 1 times its rate.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Variation {
    pub every_s: [u64; 2],
    pub depth: f64,
}

/// One access technology and its (assumed) figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKind {
    #[serde(default)]
    pub about: String,
    pub down_kbps: [u64; 2],
    pub up_kbps: [u64; 2],
    pub rtt_ms: [u64; 2],
    pub jitter_ms: u64,
    pub loss_pct: f64,
    pub variation: Variation,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradedKind {
    #[serde(default)]
    pub about: String,
    pub kind: String,
}

/// `access-kinds.json`: the assumptions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessFile {
    pub version: u32,
    #[serde(default)]
    pub about: String,
    pub kinds: BTreeMap<String, AccessKind>,
    /// "up_to_4" and "over_4": kind → share of the bin's schools.
    pub bins: BTreeMap<String, BTreeMap<String, f64>>,
    /// Kind → share of hub schools.
    pub hub_uplink: BTreeMap<String, f64>,
    pub upgraded_kind: UpgradedKind,
}

pub const BINS: [&str; 2] = ["up_to_4", "over_4"];
/// The range of link figures the replay runs: beyond them its arithmetic (rates in
/// bit/s, delays added up, a lesson's schedule stepped by `every_s`) would overflow
/// or no longer mean a school link.
pub const MIN_KBPS: u64 = 50;
pub const MAX_KBPS: u64 = 10_000_000;
pub const MAX_RTT_MS: u64 = 10_000;
pub const MAX_JITTER_MS: u64 = 5_000;
pub const MAX_EVERY_S: u64 = 86_400;
/// The documented bin boundary.
pub const BIN_EDGE_KBPS: u64 = 4000;

impl AccessFile {
    pub fn load(name: &str, text: &str) -> Result<AccessFile, InputError> {
        let a: AccessFile = parse(name, text)?;
        a.validate(name)?;
        Ok(a)
    }

    fn validate(&self, file: &str) -> Result<(), InputError> {
        if self.version != 1 {
            return Err(field(
                file,
                "version",
                format!("is {}, this simulator reads 1", self.version),
            ));
        }
        for (name, k) in &self.kinds {
            let at = |f: &str| format!("kinds.{name}.{f}");
            for (f, r, lo, hi) in [
                ("down_kbps", k.down_kbps, MIN_KBPS, MAX_KBPS),
                ("up_kbps", k.up_kbps, MIN_KBPS, MAX_KBPS),
                ("rtt_ms", k.rtt_ms, 0, MAX_RTT_MS),
            ] {
                if r[0] > r[1] || r[0] < lo || r[1] > hi {
                    return Err(field(
                        file,
                        at(f),
                        format!("{r:?} is not a range [low, high] within {lo}..={hi}"),
                    ));
                }
            }
            if k.jitter_ms > MAX_JITTER_MS {
                return Err(field(
                    file,
                    at("jitter_ms"),
                    format!("must be at most {MAX_JITTER_MS}"),
                ));
            }
            if !(0.0..=50.0).contains(&k.loss_pct) {
                return Err(field(file, at("loss_pct"), "must be between 0 and 50"));
            }
            if !(0.0..0.95).contains(&k.variation.depth) {
                return Err(field(
                    file,
                    at("variation.depth"),
                    "must be at least 0 and below 0.95",
                ));
            }
            let e = k.variation.every_s;
            if e[0] == 0 || e[0] > e[1] || e[1] > MAX_EVERY_S {
                return Err(field(
                    file,
                    at("variation.every_s"),
                    format!("{e:?} is not a range of seconds within 1..={MAX_EVERY_S}"),
                ));
            }
        }
        let shares = |path: String, m: &BTreeMap<String, f64>| -> Result<(), InputError> {
            for (k, v) in m {
                if !self.kinds.contains_key(k) {
                    return Err(field(
                        file,
                        format!("{path}.{k}"),
                        "names no kind in `kinds`",
                    ));
                }
                if *v < 0.0 {
                    return Err(field(file, format!("{path}.{k}"), "share below zero"));
                }
            }
            let sum: f64 = m.values().sum();
            if (sum - 1.0).abs() > 0.01 {
                return Err(field(
                    file,
                    path,
                    format!("shares add up to {sum:.3}, not 1"),
                ));
            }
            Ok(())
        };
        for b in BINS {
            let m = self
                .bins
                .get(b)
                .ok_or_else(|| field(file, "bins", format!("has no \"{b}\"")))?;
            shares(format!("bins.{b}"), m)?;
        }
        if let Some(k) = self.bins.keys().find(|k| !BINS.contains(&k.as_str())) {
            return Err(field(
                file,
                format!("bins.{k}"),
                "unknown bin (use up_to_4 and over_4)",
            ));
        }
        shares("hub_uplink".into(), &self.hub_uplink)?;
        if !self.kinds.contains_key(&self.upgraded_kind.kind) {
            return Err(field(
                file,
                "upgraded_kind.kind",
                "names no kind in `kinds`",
            ));
        }
        Ok(())
    }
}

/// The parts of the documented file the simulator uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Documented {
    pub national: National,
    pub regions_up_to_4_mbit: Counts,
    pub schools_without_internet: NoInternet,
    pub small_schools_by_region: Counts,
    pub upgrades: Upgrades,
    pub hub_and_magnet: Hubs,
    pub lessons: Lessons,
    pub rollout_waves: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct National {
    pub schools_up_to_4_mbit: usize,
    pub schools_over_4_mbit: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Counts {
    pub counts: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NoInternet {
    pub list: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Upgrades {
    pub aktobe_rural_schools_raised_to_8_mbit: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Hubs {
    pub magnet_schools_per_hub: [usize; 2],
}

#[derive(Debug, Clone, Deserialize)]
pub struct Lessons {
    pub minutes: [u64; 2],
}

impl Documented {
    pub fn embedded() -> Documented {
        parse("sim/data/school-links.json", DOCUMENTED).expect("the embedded data parses")
    }

    /// Every region the documents name (regional counts and rollout waves).
    pub fn regions(&self) -> Vec<String> {
        let mut r: Vec<String> = self.regions_up_to_4_mbit.counts.keys().cloned().collect();
        for v in self.rollout_waves.values() {
            for name in v
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str())
            {
                if !r.iter().any(|x| x == name) {
                    r.push(name.to_string());
                }
            }
        }
        r.sort();
        r
    }

    /// Schools without internet, by region ("Karaganda region, ...: 1").
    pub fn unreachable(&self) -> Vec<(String, usize)> {
        self.schools_without_internet
            .list
            .iter()
            .filter_map(|s| {
                let region = s.split(" region").next()?.trim().to_string();
                let n = s.rsplit(':').next()?.trim().parse().ok()?;
                Some((region, n))
            })
            .collect()
    }
}

/// One school's link as the replay will run it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Link {
    pub access: String,
    pub down_kbps: u64,
    pub up_kbps: u64,
    pub rtt_ms: u64,
    pub jitter_ms: u64,
    pub loss_pct: f64,
    pub variation: Variation,
}

impl Link {
    /// The documented bin this link falls in.
    pub fn bin(&self) -> &'static str {
        if self.down_kbps <= BIN_EDGE_KBPS {
            BINS[0]
        } else {
            BINS[1]
        }
    }
}

/// A school in a lesson.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlannedSchool {
    pub id: String,
    pub region: String,
    pub link: Link,
}

/// One hub's lesson: its teacher's uplink and the attached schools.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlannedLesson {
    pub hub: String,
    pub region: String,
    pub uplink: Link,
    pub minutes: u64,
    pub schools: Vec<PlannedSchool>,
}

/// A school that cannot take part in a live lesson.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Unreachable {
    pub id: String,
    pub region: String,
    pub why: String,
}

/// What a replay runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub lessons: Vec<PlannedLesson>,
    pub unreachable: Vec<Unreachable>,
    /// The assumptions this plan rests on, in words, for the report.
    pub assumptions: Vec<String>,
}

/// A small seeded generator (the plan must not depend on anything but the seed).
pub struct Draw(fastrand::Rng);

impl Draw {
    pub fn new(seed: u64) -> Draw {
        Draw(fastrand::Rng::with_seed(seed))
    }
    pub fn range(&mut self, r: [u64; 2]) -> u64 {
        self.0.u64(r[0]..=r[1])
    }
    pub fn unit(&mut self) -> f64 {
        self.0.f64()
    }
    /// A key of `shares` with the given probabilities (BTreeMap order).
    pub fn pick<'a>(&mut self, shares: &'a BTreeMap<String, f64>) -> &'a str {
        let total: f64 = shares.values().sum();
        let mut x = self.unit() * total;
        for (k, v) in shares {
            if x < *v {
                return k;
            }
            x -= v;
        }
        shares.keys().last().expect("non-empty shares")
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        self.0.shuffle(v)
    }
}

/// Draw a link of `kind`, its down rate kept inside `bin` when one is given.
pub fn draw_link(a: &AccessFile, kind: &str, bin: Option<&str>, d: &mut Draw) -> Link {
    let k = &a.kinds[kind];
    let mut down = k.down_kbps;
    match bin {
        Some("up_to_4") => down = [down[0].min(BIN_EDGE_KBPS), down[1].min(BIN_EDGE_KBPS)],
        Some(_) => {
            down = [
                down[0].max(BIN_EDGE_KBPS + 1),
                down[1].max(BIN_EDGE_KBPS + 1),
            ]
        }
        None => {}
    }
    Link {
        access: kind.to_string(),
        down_kbps: d.range(down),
        up_kbps: d.range(k.up_kbps),
        rtt_ms: d.range(k.rtt_ms),
        jitter_ms: k.jitter_ms,
        loss_pct: k.loss_pct,
        variation: k.variation,
    }
}

/// Largest-remainder split of `total` in proportion to `weights`.
fn apportion(total: usize, weights: &[(String, usize)]) -> Vec<(String, usize)> {
    let sum: usize = weights.iter().map(|(_, w)| w).sum::<usize>().max(1);
    let mut out: Vec<(String, usize, usize)> = weights
        .iter()
        .map(|(k, w)| (k.clone(), total * w / sum, (total * w) % sum))
        .collect();
    let mut left = total - out.iter().map(|x| x.1).sum::<usize>();
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(out[i].2));
    for i in order {
        if left == 0 {
            break;
        }
        out[i].1 += 1;
        left -= 1;
    }
    out.into_iter().map(|(k, n, _)| (k, n)).collect()
}

/// Schools per (region, bin) for the whole country.
fn national_counts(doc: &Documented) -> (BTreeMap<String, [usize; 2]>, Vec<String>) {
    let mut notes = vec![];
    let regions = doc.regions();
    let thin_doc: Vec<(String, usize)> = regions
        .iter()
        .map(|r| {
            (
                r.clone(),
                doc.regions_up_to_4_mbit.counts.get(r).copied().unwrap_or(0),
            )
        })
        .collect();
    let thin_total = doc.national.schools_up_to_4_mbit;
    let thin = apportion(thin_total, &thin_doc);
    notes.push(format!(
        "the national {thin_total} schools up to 4 Mbit/s are spread over regions in proportion to the later per-region counts (which add up to {})",
        thin_doc.iter().map(|x| x.1).sum::<usize>()
    ));
    let mut counts: BTreeMap<String, [usize; 2]> = BTreeMap::new();
    for (r, n) in &thin {
        counts.entry(r.clone()).or_default()[0] = *n;
    }
    let known = &doc.small_schools_by_region.counts;
    let mut fat_left = doc.national.schools_over_4_mbit;
    for (r, total) in known {
        let c = counts.entry(r.clone()).or_default();
        c[1] = total.saturating_sub(c[0]).min(fat_left);
        fat_left -= c[1];
    }
    let others: Vec<(String, usize)> = regions
        .iter()
        .filter(|r| !known.contains_key(*r))
        .map(|r| (r.clone(), 1))
        .collect();
    for (r, n) in apportion(fat_left, &others) {
        counts.entry(r).or_default()[1] = n;
    }
    notes.push(format!(
        "schools over 4 Mbit/s: documented region totals minus their thin schools for {}; the other {} spread evenly over the remaining regions",
        known.keys().cloned().collect::<Vec<_>>().join(", "),
        fat_left
    ));
    (counts, notes)
}

/// The scenarios a replay can run.
#[derive(Debug, Clone, PartialEq)]
pub enum Scenario {
    National,
    Region(String),
    /// Raise a region's thin-link schools to `kbps`, before and after.
    Upgrade {
        region: String,
        kbps: u64,
        count: usize,
    },
    File(std::path::PathBuf),
}

impl Scenario {
    pub fn parse(s: &str, doc: &Documented) -> Result<Scenario, InputError> {
        let region = |name: &str| -> Result<String, InputError> {
            doc.regions()
                .into_iter()
                .find(|r| r.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    InputError::Other(format!(
                        "unknown region {name:?}; the documents name: {}",
                        doc.regions().join(", ")
                    ))
                })
        };
        if s == "national" {
            Ok(Scenario::National)
        } else if let Some(r) = s.strip_prefix("region:") {
            Ok(Scenario::Region(region(r)?))
        } else if s == "upgrade" || s.starts_with("upgrade:") {
            // upgrade[:REGION[:KBPS]]; the documented case is Aktobe to 8 Mbit/s.
            let mut parts = s.split(':').skip(1);
            let r = region(parts.next().unwrap_or("Aktobe"))?;
            let kbps = match parts.next() {
                Some(k) => k.parse().map_err(|_| {
                    InputError::Other(format!("upgrade rate {k:?} is not a number of kbit/s"))
                })?,
                None => 8000,
            };
            Ok(Scenario::Upgrade {
                region: r,
                kbps,
                count: doc.upgrades.aktobe_rural_schools_raised_to_8_mbit,
            })
        } else if s.ends_with(".json") {
            Ok(Scenario::File(s.into()))
        } else {
            Err(InputError::Other(format!(
                "unknown scenario {s:?}: use national, region:NAME, upgrade[:REGION[:KBPS]] or a FILE.json"
            )))
        }
    }
}

/// Build the plan of the documented distribution, for one region or all.
pub fn documented_plan(doc: &Documented, a: &AccessFile, region: Option<&str>, seed: u64) -> Plan {
    let (counts, mut notes) = national_counts(doc);
    let mut d = Draw::new(seed);
    let mut plan = Plan::default();
    let [lo, hi] = doc.hub_and_magnet.magnet_schools_per_hub;
    for (r, [thin, fat]) in &counts {
        if region.is_some_and(|x| x != r) {
            continue;
        }
        // A regional replay uses the region's own documented count of thin links.
        let thin = match region {
            Some(_) => doc
                .regions_up_to_4_mbit
                .counts
                .get(r)
                .copied()
                .unwrap_or(*thin),
            None => *thin,
        };
        let mut schools = vec![];
        for (bin, n) in [(BINS[0], thin), (BINS[1], *fat)] {
            for i in 0..n {
                let kind = d.pick(&a.bins[bin]).to_string();
                schools.push(PlannedSchool {
                    id: format!(
                        "{}-{}-{}",
                        slug(r),
                        if bin == BINS[0] { "t" } else { "f" },
                        i + 1
                    ),
                    region: r.clone(),
                    link: draw_link(a, &kind, Some(bin), &mut d),
                });
            }
        }
        d.shuffle(&mut schools);
        let mut hub_no = 0;
        while !schools.is_empty() {
            let n = (d.range([lo as u64, hi as u64]) as usize).min(schools.len());
            let group: Vec<PlannedSchool> = schools.drain(..n).collect();
            hub_no += 1;
            let kind = d.pick(&a.hub_uplink).to_string();
            let mut up = draw_link(a, &kind, None, &mut d);
            // The teacher sends on the hub's uplink.
            up.down_kbps = up.up_kbps;
            plan.lessons.push(PlannedLesson {
                hub: format!("{}-hub-{hub_no}", slug(r)),
                region: r.clone(),
                uplink: up,
                minutes: d.range(doc.lessons.minutes),
                schools: group,
            });
        }
    }
    for (r, n) in doc.unreachable() {
        if region.is_some_and(|x| x != r) {
            continue;
        }
        for i in 0..n {
            plan.unreachable.push(Unreachable {
                id: format!("{}-offline-{}", slug(&r), i + 1),
                region: r.clone(),
                why: "no internet (documented); needs the asynchronous lesson model".into(),
            });
        }
    }
    notes.push(format!(
        "each documented school draws an access kind and its figures from access-kinds.json v{} (assumptions); hubs of {lo}-{hi} schools are formed within a region; each hub's uplink is drawn from hub_uplink",
        a.version
    ));
    plan.assumptions = notes;
    plan
}

pub fn slug(s: &str) -> String {
    s.to_lowercase().replace(' ', "-")
}

/// Raise up to `count` of the plan's thin-link schools to `kbps` (the upgraded kind).
pub fn upgraded(plan: &Plan, a: &AccessFile, kbps: u64, count: usize, seed: u64) -> Plan {
    let mut p = plan.clone();
    let mut d = Draw::new(seed ^ 0x5eed);
    let mut left = count;
    for l in &mut p.lessons {
        for s in &mut l.schools {
            if left > 0 && s.link.bin() == BINS[0] {
                let mut link = draw_link(a, &a.upgraded_kind.kind, None, &mut d);
                link.down_kbps = kbps;
                s.link = link;
                left -= 1;
            }
        }
    }
    p.assumptions.push(format!(
        "upgrade: {} thin-link schools take the {} kind at {kbps} kbit/s down",
        count - left,
        a.upgraded_kind.kind
    ));
    p
}

/// A scenario file written by an operator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: String,
    #[serde(default)]
    pub lesson_minutes: Option<u64>,
    pub hubs: Vec<HubEntry>,
    #[serde(default)]
    pub unreachable: Vec<Unreachable>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubEntry {
    pub id: String,
    #[serde(default)]
    pub region: String,
    pub uplink: LinkEntry,
    pub schools: Vec<SchoolEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchoolEntry {
    pub id: String,
    #[serde(default)]
    pub region: String,
    #[serde(flatten)]
    pub link: LinkEntry,
}

/// A link: an access kind, and any measured figures that replace its draws.
#[derive(Debug, Clone, Deserialize)]
pub struct LinkEntry {
    pub access: String,
    pub down_kbps: Option<u64>,
    pub up_kbps: Option<u64>,
    pub rtt_ms: Option<u64>,
    pub jitter_ms: Option<u64>,
    pub loss_pct: Option<f64>,
}

impl LinkEntry {
    fn link(
        &self,
        a: &AccessFile,
        d: &mut Draw,
        path: &str,
        file: &str,
    ) -> Result<Link, InputError> {
        if !a.kinds.contains_key(&self.access) {
            return Err(field(
                file,
                format!("{path}.access"),
                format!(
                    "unknown access kind {:?}; known: {}",
                    self.access,
                    a.kinds.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let mut l = draw_link(a, &self.access, None, d);
        if let Some(v) = self.down_kbps {
            l.down_kbps = v;
        }
        if let Some(v) = self.up_kbps {
            l.up_kbps = v;
        }
        if let Some(v) = self.rtt_ms {
            l.rtt_ms = v;
        }
        if let Some(v) = self.jitter_ms {
            l.jitter_ms = v;
        }
        if let Some(v) = self.loss_pct {
            l.loss_pct = v;
        }
        if l.down_kbps < MIN_KBPS || l.up_kbps < MIN_KBPS {
            return Err(field(file, path, "rates must be at least 50 kbit/s"));
        }
        if l.down_kbps > MAX_KBPS || l.up_kbps > MAX_KBPS {
            return Err(field(
                file,
                path,
                format!("rates must be at most {MAX_KBPS} kbit/s"),
            ));
        }
        for (f, v, max) in [
            ("rtt_ms", l.rtt_ms, MAX_RTT_MS),
            ("jitter_ms", l.jitter_ms, MAX_JITTER_MS),
        ] {
            if v > max {
                return Err(field(
                    file,
                    format!("{path}.{f}"),
                    format!("{v} is over {max}"),
                ));
            }
        }
        if !(0.0..=50.0).contains(&l.loss_pct) {
            return Err(field(
                file,
                format!("{path}.loss_pct"),
                "must be between 0 and 50",
            ));
        }
        Ok(l)
    }
}

/// Build the plan of a scenario file.
pub fn file_plan(
    file: &str,
    text: &str,
    a: &AccessFile,
    seed: u64,
) -> Result<(String, Plan), InputError> {
    let f: ScenarioFile = parse(file, text)?;
    if f.hubs.is_empty() {
        return Err(field(file, "hubs", "is empty: name at least one hub"));
    }
    let minutes = f.lesson_minutes.unwrap_or(20);
    if !(1..=120).contains(&minutes) {
        return Err(field(file, "lesson_minutes", "must be 1 to 120"));
    }
    let mut d = Draw::new(seed);
    let mut plan = Plan::default();
    for (i, h) in f.hubs.iter().enumerate() {
        if h.schools.is_empty() {
            return Err(field(file, format!("hubs[{i}].schools"), "is empty"));
        }
        let mut up = h
            .uplink
            .link(a, &mut d, &format!("hubs[{i}].uplink"), file)?;
        up.down_kbps = h.uplink.up_kbps.unwrap_or(up.up_kbps);
        let mut schools = vec![];
        for (j, s) in h.schools.iter().enumerate() {
            schools.push(PlannedSchool {
                id: s.id.clone(),
                region: s.region.clone(),
                link: s
                    .link
                    .link(a, &mut d, &format!("hubs[{i}].schools[{j}]"), file)?,
            });
        }
        plan.lessons.push(PlannedLesson {
            hub: h.id.clone(),
            region: h.region.clone(),
            uplink: up,
            minutes,
            schools,
        });
    }
    plan.unreachable = f.unreachable;
    plan.assumptions.push(format!(
        "scenario file {file}: figures not given there are drawn from access-kinds.json v{} (assumptions)",
        a.version
    ));
    Ok((f.name, plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds() -> AccessFile {
        AccessFile::load("access-kinds.json", ACCESS_KINDS).unwrap()
    }

    /// Found by fuzzing (fuzz/regressions/access_kinds): figures beyond what the
    /// replay's arithmetic handles (a lesson's schedule stepped by `every_s`, rates
    /// in bit/s, delays on the virtual clock) were accepted.
    #[test]
    fn access_kinds_out_of_range_are_refused() {
        let good = ACCESS_KINDS;
        for (from, to, path) in [
            (
                r#""every_s": [60, 180]"#,
                r#""every_s": [1, 18446744073709551615]"#,
                "variation.every_s",
            ),
            (
                r#""down_kbps": [1000, 4000]"#,
                r#""down_kbps": [1, 4000]"#,
                "down_kbps",
            ),
            (
                r#""down_kbps": [1000, 4000]"#,
                r#""down_kbps": [1000, 18446744073709551615]"#,
                "down_kbps",
            ),
            (
                r#""rtt_ms": [30, 70]"#,
                r#""rtt_ms": [30, 18446744073709551615]"#,
                "rtt_ms",
            ),
            (
                r#""jitter_ms": 3,"#,
                r#""jitter_ms": 18446744073709551615,"#,
                "jitter_ms",
            ),
        ] {
            assert!(good.contains(from), "{from}");
            let bad = good.replacen(from, to, 1);
            let e = AccessFile::load("k.json", &bad).unwrap_err().to_string();
            assert!(e.contains(path), "{to}: {e}");
        }
        assert!(AccessFile::load("k.json", good).is_ok());
    }

    #[test]
    fn scenario_figures_out_of_range_are_refused() {
        let k = kinds();
        let file = |school: &str| {
            format!(
                r#"{{"name":"n","hubs":[{{"id":"h","uplink":{{"access":"fibre"}},"schools":[{{"id":"s","access":"adsl"{school}}}]}}]}}"#
            )
        };
        assert!(file_plan("s.json", &file(""), &k, 1).is_ok());
        for (extra, what) in [
            (r#","down_kbps":18446744073709551615"#, "at most"),
            (r#","up_kbps":10000001"#, "at most"),
            (r#","rtt_ms":18446744073709551615"#, "rtt_ms"),
            (r#","jitter_ms":5001"#, "jitter_ms"),
        ] {
            let e = file_plan("s.json", &file(extra), &k, 1)
                .unwrap_err()
                .to_string();
            assert!(e.contains(what), "{extra}: {e}");
        }
    }
}
