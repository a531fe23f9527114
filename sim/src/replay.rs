//! Replay mode: every planned lesson through the real relay code on a virtual
//! clock, and what each school got out of it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use relay_core::{RelayConfig, WarmTable};
use serde::Serialize;

use crate::metrics::{rendered, FREEZE, PAUSE_FROM};
use crate::peer::Classroom;
use crate::peer::{LAYER_BPS, SCREEN_BPS};
use crate::population::{Draw, Link, PlannedLesson, PlannedSchool};
use crate::world::{LinkShape, Loss, SchoolSpec, TeacherSpec, World};

/// Layer names, lowest first.
pub const LAYER_NAMES: [&str; 3] = ["180p", "360p", "720p"];
/// A gap in the picture longer than this is the relay pausing video (audio only),
/// not a freeze.
pub const PAUSE: Duration = Duration::from_secs(2);
/// The relay's bottleneck queue in the emulated links.
const QUEUE: Duration = Duration::from_millis(300);

/// Fraction of the lesson spent at each layer, and with voice only.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LayerShare {
    #[serde(rename = "720p")]
    pub p720: f64,
    #[serde(rename = "360p")]
    pub p360: f64,
    #[serde(rename = "180p")]
    pub p180: f64,
    pub audio_only: f64,
}

impl LayerShare {
    fn by_layer(&mut self, l: usize) -> &mut f64 {
        match l {
            0 => &mut self.p180,
            1 => &mut self.p360,
            _ => &mut self.p720,
        }
    }
    /// The most watched of 720p, 360p, 180p, audio only.
    pub fn main(&self) -> &'static str {
        let v = [
            (self.p720, "720p"),
            (self.p360, "360p"),
            (self.p180, "180p"),
            (self.audio_only, "audio_only"),
        ];
        v.iter()
            .fold((-1.0, "audio_only"), |a, b| if b.0 > a.0 { *b } else { a })
            .1
    }
}

/// What one school got from its lesson.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SchoolResult {
    pub id: String,
    pub region: String,
    pub hub: String,
    pub access: String,
    pub down_kbps: u64,
    pub up_kbps: u64,
    pub rtt_ms: u64,
    pub loss_pct: f64,
    pub bin: String,
    pub layer_share: LayerShare,
    pub freeze_count: usize,
    pub freeze_ms: u64,
    /// Voice frames the decoder had to conceal (lost or too late), in %.
    pub audio_concealed_pct: f64,
    /// Voice frames rebuilt from Opus in-band FEC, in %.
    pub audio_fec_pct: f64,
    /// Fraction of the lesson the slides (screen track) were showing.
    pub slides_share: f64,
    pub mean_kbps: u64,
    pub first_frame_ms: Option<u64>,
    pub verdict: String,
}

/// One school's lesson over time, for the timeline plot.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Timeline {
    pub school: String,
    /// Per second: (time s, capacity kbps, relay estimate kbps, layer shown or -1).
    pub points: Vec<(u64, u64, u64, i8)>,
    /// (start s, length ms) of each freeze.
    pub freezes: Vec<(f64, u64)>,
}

/// The down rate a camera layer needs, with full-resolution slides, audio,
/// overhead and the relay's headroom.
pub fn needs_kbps(layer: usize) -> u64 {
    let bps = (LAYER_BPS[layer] + SCREEN_BPS[1]) * 110 / 100 + 40_000;
    bps * 100 / 85 / 1000
}

/// The hub uplink a teacher needs to send `layers` camera layers with slides
/// (see [`crate::world::teacher_layers`]).
pub fn hub_needs_kbps(layers: usize) -> u64 {
    let bps: u64 = LAYER_BPS[..layers].iter().sum::<u64>() + SCREEN_BPS.iter().sum::<u64>();
    (bps * 110 / 100 + 40_000) * 100 / 85 / 1000
}

fn mbit(kbps: u64) -> String {
    let m = kbps as f64 / 1000.0;
    if m < 1.0 {
        format!("{:.1} Mbit/s", m)
    } else {
        format!("{:.1} Mbit/s", (m * 2.0).ceil() / 2.0)
    }
}

/// An operator's sentence for a school's lesson.
pub fn verdict(
    share: &LayerShare,
    slides: f64,
    freezes: usize,
    freeze_ms: u64,
    concealed: f64,
    hub_layers: usize,
) -> String {
    let main = share.main();
    let layer = LAYER_NAMES.iter().position(|n| *n == main);
    let mut v = match layer {
        // The best the teacher sends: the hub's uplink, not this link, is the limit.
        Some(k) if k + 1 == hub_layers && hub_layers < LAYER_NAMES.len() => format!(
            "carried the lesson at {main}, the best the hub's uplink sends (720p with slides needs about {} up at the hub)",
            mbit(hub_needs_kbps(LAYER_NAMES.len()))
        ),
        Some(2) => "carried the lesson at 720p".to_string(),
        Some(1) => format!(
            "carried the lesson at 360p; 720p needs about {}",
            mbit(needs_kbps(2))
        ),
        Some(_) => format!(
            "carried the lesson at 180p only; 360p needs about {}",
            mbit(needs_kbps(1))
        ),
        None => format!(
            "voice only for {:.0} % of the lesson; video needs about {}",
            share.audio_only * 100.0,
            mbit(needs_kbps(0))
        ),
    };
    if concealed >= 5.0 {
        v = format!("the teacher's voice broke up ({concealed:.1} % concealed); {v}");
    } else if concealed >= 1.0 {
        v.push_str(&format!(
            "; voice mostly clear ({concealed:.1} % concealed)"
        ));
    }
    if slides < 0.95 {
        v.push_str(&format!(
            "; slides missing {:.0} % of the time",
            (1.0 - slides) * 100.0
        ));
    }
    if freezes > 0 {
        v.push_str(&format!(
            "; {freezes} picture freeze{} ({:.1} s in all)",
            if freezes == 1 { "" } else { "s" },
            freeze_ms as f64 / 1000.0
        ));
    }
    v
}

pub(crate) fn shape(l: &Link, kbps: u64) -> LinkShape {
    LinkShape {
        kbps,
        delay: Duration::from_millis(l.rtt_ms / 2),
        jitter: Duration::from_millis(l.jitter_ms),
        loss: if l.loss_pct > 0.0 {
            Loss::Random(l.loss_pct as f32 / 100.0)
        } else {
            Loss::None
        },
        queue: QUEUE,
    }
}

/// The downlink's schedule over a lesson: every so often the rate dips by up to
/// the kind's variation depth.
pub(crate) fn schedule(l: &Link, minutes: u64, d: &mut Draw) -> Vec<(Duration, LinkShape)> {
    let mut out = vec![];
    let mut t = 0;
    while t < minutes * 60 {
        let dip = 1.0 - l.variation.depth * d.unit();
        out.push((
            Duration::from_secs(t),
            shape(l, ((l.down_kbps as f64 * dip) as u64).max(50)),
        ));
        t += d.range(l.variation.every_s);
    }
    out
}

/// Each school's emulated links in lesson `l` replayed with `seed`: the downlink's
/// schedule and the uplink, in the lesson's school order. The calibration proxy
/// (`classroom-sim shape`) puts a browser behind the same links.
pub fn school_links(l: &PlannedLesson, seed: u64) -> Vec<(Vec<(Duration, LinkShape)>, LinkShape)> {
    let mut d = Draw::new(seed);
    l.schools
        .iter()
        .map(|s| {
            (
                schedule(&s.link, l.minutes, &mut d),
                shape(&s.link, s.link.up_kbps),
            )
        })
        .collect()
}

/// Run one lesson; the timeline of school `timeline` if it is in it.
pub fn run_lesson(
    l: &PlannedLesson,
    seed: u64,
    timeline: Option<&str>,
) -> (Vec<SchoolResult>, Option<Timeline>) {
    let (w, schedules, analyses) = play(l, seed);
    let end = Duration::from_secs(l.minutes * 60);
    let mut out = vec![];
    let mut tl = None;
    for (i, (s, a)) in l.schools.iter().zip(analyses).enumerate() {
        if timeline == Some(s.id.as_str()) {
            tl = Some(timeline_of(
                &w,
                i,
                &schedules[i],
                &a.frames,
                a.freeze_at,
                end,
            ));
        }
        out.push(a.result);
    }
    (out, tl)
}

/// Run one lesson; each school's analysis, frames included.
pub fn lesson_analyses(l: &PlannedLesson, seed: u64) -> Vec<Analysis> {
    play(l, seed).2
}

type Schedules = Vec<Vec<(Duration, LinkShape)>>;

fn play(l: &PlannedLesson, seed: u64) -> (World, Schedules, Vec<Analysis>) {
    let specs: Vec<SchoolSpec> = l
        .schools
        .iter()
        .zip(school_links(l, seed))
        .map(|(s, (down, up))| SchoolSpec {
            name: s.id.clone(),
            down,
            classrooms: 1,
            up: Some(up),
        })
        .collect();
    let schedules: Schedules = specs.iter().map(|s| s.down.clone()).collect();
    let teacher = TeacherSpec {
        uplink: shape(&l.uplink, l.uplink.up_kbps),
        screen: true,
    };
    let mut w = World::build(
        RelayConfig::default(),
        specs,
        seed,
        WarmTable::default(),
        teacher,
    );
    let end = Duration::from_secs(l.minutes * 60);
    w.run_until(end);
    let end_at = w.t0 + end;
    let analyses = l
        .schools
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let delivered: u64 = w.school_bins(i).1.iter().sum();
            analyse(l, s, &w.classes[i], w.t0, end_at, delivered)
        })
        .collect();
    (w, schedules, analyses)
}

/// One school's lesson, analysed.
pub struct Analysis {
    pub result: SchoolResult,
    /// Camera frames shown: (time, layer).
    pub frames: Vec<(Instant, u8)>,
    /// (start s since `t0`, length ms) of each freeze.
    pub freeze_at: Vec<(f64, u64)>,
}

/// What school `s` of lesson `l` got: its classroom `c` recorded the lesson from
/// `t0` to `end_at`, and its link delivered `delivered` bytes.
pub fn analyse(
    l: &PlannedLesson,
    s: &PlannedSchool,
    c: &Classroom,
    t0: Instant,
    end_at: Instant,
    delivered: u64,
) -> Analysis {
    let frames = rendered(&c.video);
    let first_frame = frames.first().map(|f| f.0);
    let start = c.connected_at.unwrap_or(t0);
    let end = end_at.saturating_duration_since(t0);
    let total = end_at
        .saturating_duration_since(start)
        .as_secs_f64()
        .max(1e-3);
    let mut share = LayerShare::default();
    let (mut freezes, mut frozen) = (0usize, Duration::ZERO);
    let mut freeze_at = vec![];
    let mut prev = (start, None::<u8>);
    for &(at, layer) in frames.iter().chain([(end_at, 255u8)].iter()) {
        let gap = at.saturating_duration_since(prev.0);
        // A freeze as Chromium counts one: a gap over FREEZE, short of a pause.
        if prev.1.is_some() && gap > FREEZE && gap < PAUSE_FROM && layer != 255 {
            freezes += 1;
            frozen += gap;
            freeze_at.push(((prev.0 - t0).as_secs_f64(), gap.as_millis() as u64));
        }
        match prev.1 {
            Some(pl) if gap <= PAUSE => {
                *share.by_layer(pl as usize) += gap.as_secs_f64();
            }
            _ => share.audio_only += gap.as_secs_f64(),
        }
        prev = (at, Some(layer));
    }
    for v in [
        &mut share.p180,
        &mut share.p360,
        &mut share.p720,
        &mut share.audio_only,
    ] {
        *v = (*v / total * 1000.0).round() / 1000.0;
    }
    let voice = crate::voice::play(&c.audio_rx);
    let pct = |n: u64| (10_000.0 * n as f64 / voice.expected.max(1) as f64).round() / 100.0;
    let concealed = if voice.expected == 0 {
        100.0
    } else {
        pct(voice.concealed)
    };
    let slides = showing(&rendered(&c.screen), start, end_at) / total;
    let slides = (slides * 1000.0).round() / 1000.0;
    let result = SchoolResult {
        id: s.id.clone(),
        region: s.region.clone(),
        hub: l.hub.clone(),
        access: s.link.access.clone(),
        down_kbps: s.link.down_kbps,
        up_kbps: s.link.up_kbps,
        rtt_ms: s.link.rtt_ms,
        loss_pct: s.link.loss_pct,
        bin: s.link.bin().into(),
        freeze_count: freezes,
        freeze_ms: frozen.as_millis() as u64,
        audio_concealed_pct: concealed,
        audio_fec_pct: pct(voice.fec),
        slides_share: slides,
        mean_kbps: delivered * 8 / 1000 / end.as_secs().max(1),
        first_frame_ms: first_frame.map(|t| t.saturating_duration_since(start).as_millis() as u64),
        verdict: verdict(
            &share,
            slides,
            freezes,
            frozen.as_millis() as u64,
            concealed,
            crate::world::teacher_layers(l.uplink.up_kbps, true),
        ),
        layer_share: share,
    };
    Analysis {
        result,
        frames,
        freeze_at,
    }
}

/// Seconds between `start` and `end` when `frames` kept coming (no gap over
/// [`PAUSE`]).
fn showing(frames: &[(Instant, u8)], start: Instant, end: Instant) -> f64 {
    let mut t = 0.0;
    let mut prev: Option<Instant> = None;
    for &(at, _) in frames.iter().chain([(end, 0)].iter()) {
        if let Some(p) = prev {
            let gap = at.saturating_duration_since(p);
            if gap <= PAUSE {
                t += gap.as_secs_f64();
            }
        }
        prev = Some(at.max(start));
    }
    t
}

fn timeline_of(
    w: &World,
    i: usize,
    sched: &[(Duration, LinkShape)],
    frames: &[(Instant, u8)],
    freezes: Vec<(f64, u64)>,
    end: Duration,
) -> Timeline {
    let mut t = Timeline {
        school: w.school_name(i).to_string(),
        freezes,
        ..Default::default()
    };
    let mut fi = 0;
    let mut layer: i8 = -1;
    let mut last_frame = None;
    for s in 0..=end.as_secs() {
        let at = Duration::from_secs(s);
        let cap = sched
            .iter()
            .rev()
            .find(|(x, _)| *x <= at)
            .map_or(0, |x| x.1.kbps);
        let est = w
            .trace
            .iter()
            .rev()
            .find(|(x, _)| *x <= at)
            .and_then(|(_, v)| v.get(i))
            .map_or(0, |e| e.0 / 1000);
        while fi < frames.len() && frames[fi].0 - w.t0 <= at {
            layer = frames[fi].1 as i8;
            last_frame = Some(frames[fi].0 - w.t0);
            fi += 1;
        }
        let shown = match last_frame {
            Some(lf) if at - lf <= PAUSE => layer,
            _ => -1,
        };
        t.points.push((s, cap, est, shown));
    }
    t
}

/// The seed lesson `i` of a plan is replayed with.
pub fn lesson_seed(seed: u64, i: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64 + 1)
}

/// Run every lesson on `jobs` threads, in order of the plan; `progress` is called
/// after each lesson with (done, total).
pub fn run_all(
    lessons: &[PlannedLesson],
    seed: u64,
    jobs: usize,
    timeline: Option<&str>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> (Vec<Vec<SchoolResult>>, Option<Timeline>) {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Vec<SchoolResult>>>> = Mutex::new(vec![None; lessons.len()]);
    let tl: Mutex<Option<Timeline>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= lessons.len() {
                    break;
                }
                let (r, t) = run_lesson(&lessons[i], lesson_seed(seed, i), timeline);
                results.lock().unwrap()[i] = Some(r);
                if let Some(t) = t {
                    *tl.lock().unwrap() = Some(t);
                }
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, lessons.len());
            });
        }
    });
    let r = results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|x| x.expect("every lesson ran"))
        .collect();
    (r, tl.into_inner().unwrap())
}
