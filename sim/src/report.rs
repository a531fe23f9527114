//! The replay's outputs: `report.json`, `schools.csv` and two SVG plots.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::population::{Unreachable, BINS};
use crate::replay::{SchoolResult, Timeline};

/// Totals for a group of schools.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    pub schools: usize,
    pub unreachable: usize,
    /// Schools per bin ("up_to_4", "over_4").
    pub by_bin: BTreeMap<String, usize>,
    /// Schools whose most watched picture was each of 720p, 360p, 180p, audio_only.
    pub main_layer: BTreeMap<String, usize>,
    /// The same per bin.
    pub main_layer_by_bin: BTreeMap<String, BTreeMap<String, usize>>,
    /// Mean share of lesson time per layer.
    pub mean_share: BTreeMap<String, f64>,
    pub schools_with_voice_breaking_up: usize,
    pub mean_audio_concealed_pct: f64,
    /// Mean share of lesson time the slides were showing.
    pub mean_slides_share: f64,
    pub freezes_per_lesson: f64,
    pub median_kbps: u64,
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn summarize<'a>(
    schools: impl Iterator<Item = &'a SchoolResult>,
    unreachable: usize,
) -> Summary {
    let v: Vec<&SchoolResult> = schools.collect();
    let n = v.len();
    let mut s = Summary {
        schools: n,
        unreachable,
        ..Default::default()
    };
    for name in ["720p", "360p", "180p", "audio_only"] {
        s.main_layer.insert(name.into(), 0);
    }
    let mut kbps: Vec<u64> = vec![];
    let mut share = [0.0f64; 4];
    for r in &v {
        *s.by_bin.entry(r.bin.clone()).or_default() += 1;
        let main = r.layer_share.main();
        *s.main_layer.entry(main.into()).or_default() += 1;
        *s.main_layer_by_bin
            .entry(r.bin.clone())
            .or_default()
            .entry(main.into())
            .or_default() += 1;
        share[0] += r.layer_share.p720;
        share[1] += r.layer_share.p360;
        share[2] += r.layer_share.p180;
        share[3] += r.layer_share.audio_only;
        s.schools_with_voice_breaking_up += usize::from(r.audio_concealed_pct >= 5.0);
        s.mean_audio_concealed_pct += r.audio_concealed_pct;
        s.mean_slides_share += r.slides_share;
        s.freezes_per_lesson += r.freeze_count as f64;
        kbps.push(r.mean_kbps);
    }
    if n > 0 {
        for (i, name) in ["720p", "360p", "180p", "audio_only"].iter().enumerate() {
            s.mean_share
                .insert((*name).into(), round3(share[i] / n as f64));
        }
        s.mean_audio_concealed_pct = round3(s.mean_audio_concealed_pct / n as f64);
        s.mean_slides_share = round3(s.mean_slides_share / n as f64);
        s.freezes_per_lesson = round3(s.freezes_per_lesson / n as f64);
        kbps.sort_unstable();
        s.median_kbps = kbps[n / 2];
    }
    s
}

/// The whole report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub tool: String,
    pub scenario: String,
    pub seed: u64,
    /// Lessons replayed out of lessons planned.
    pub lessons: usize,
    pub lessons_planned: usize,
    pub documented_data: String,
    pub access_kinds: String,
    /// Everything here that is assumed rather than documented.
    pub assumptions: Vec<String>,
    pub schools: Vec<SchoolResult>,
    pub unreachable: Vec<Unreachable>,
    pub summary: Summaries,
    /// For the `upgrade` scenario: the same schools before the upgrade.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_upgrade: Option<Box<Summaries>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summaries {
    pub national: Summary,
    pub regions: BTreeMap<String, Summary>,
}

pub fn summaries(schools: &[SchoolResult], unreachable: &[Unreachable]) -> Summaries {
    let mut regions = BTreeMap::new();
    let mut names: Vec<&str> = schools.iter().map(|s| s.region.as_str()).collect();
    names.extend(unreachable.iter().map(|u| u.region.as_str()));
    names.sort_unstable();
    names.dedup();
    for r in names {
        regions.insert(
            r.to_string(),
            summarize(
                schools.iter().filter(|s| s.region == r),
                unreachable.iter().filter(|u| u.region == r).count(),
            ),
        );
    }
    Summaries {
        national: summarize(schools.iter(), unreachable.len()),
        regions,
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn csv(schools: &[SchoolResult]) -> String {
    let mut out = String::from(
        "id,region,hub,access,bin,down_kbps,up_kbps,rtt_ms,loss_pct,share_720p,share_360p,share_180p,share_audio_only,freeze_count,freeze_ms,audio_concealed_pct,audio_fec_pct,slides_share,mean_kbps,first_frame_ms,verdict\n",
    );
    for s in schools {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&s.id),
            csv_field(&s.region),
            csv_field(&s.hub),
            csv_field(&s.access),
            s.bin,
            s.down_kbps,
            s.up_kbps,
            s.rtt_ms,
            s.loss_pct,
            s.layer_share.p720,
            s.layer_share.p360,
            s.layer_share.p180,
            s.layer_share.audio_only,
            s.freeze_count,
            s.freeze_ms,
            s.audio_concealed_pct,
            s.audio_fec_pct,
            s.slides_share,
            s.mean_kbps,
            s.first_frame_ms.map_or(String::new(), |v| v.to_string()),
            csv_field(&s.verdict)
        );
    }
    out
}

const COLORS: [(&str, &str); 4] = [
    ("720p", "#1b7837"),
    ("360p", "#7fbf7b"),
    ("180p", "#fdb863"),
    ("audio_only", "#d7301f"),
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Stacked bars: per region (and nationally), the mean share of lesson time at
/// each layer, for all schools and for the thin-link bin.
pub fn quality_svg(sum: &Summaries, title: &str) -> String {
    let mut rows: Vec<(String, &Summary)> = vec![("National".into(), &sum.national)];
    rows.extend(
        sum.regions
            .iter()
            .filter(|(_, s)| s.schools > 0)
            .map(|(k, v)| (k.clone(), v)),
    );
    let (left, width, bar, gap) = (170.0, 560.0, 18.0, 8.0);
    let h = 70.0 + rows.len() as f64 * (bar + gap) + 40.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#,
        w = left + width + 40.0
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="15">{}</text>"#,
        esc(title)
    );
    let _ = writeln!(
        s,
        r##"<text x="10" y="42" fill="#555">Mean share of lesson time per picture quality (n = schools replayed)</text>"##
    );
    for (i, (name, sm)) in rows.iter().enumerate() {
        let y = 60.0 + i as f64 * (bar + gap);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{} (n={})</text>"#,
            left - 6.0,
            y + 13.0,
            esc(name),
            sm.schools
        );
        let mut x = left;
        for (layer, color) in COLORS {
            let v = sm.mean_share.get(layer).copied().unwrap_or(0.0);
            let wv = v * width;
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{wv:.1}" height="{bar}" fill="{color}"><title>{name}: {layer} {pct:.0} %</title></rect>"#,
                pct = v * 100.0
            );
            x += wv;
        }
    }
    let ly = h - 25.0;
    for (i, (layer, color)) in COLORS.iter().enumerate() {
        let x = left + i as f64 * 120.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            ly - 10.0,
            x + 16.0,
            ly,
            layer.replace('_', " ")
        );
    }
    s.push_str("</svg>\n");
    s
}

/// One school's lesson: link capacity and the relay's estimate (kbit/s), the
/// layer shown as a band, and freezes as red marks.
pub fn timeline_svg(t: &Timeline) -> String {
    let (left, top, width, height) = (60.0, 40.0, 760.0, 260.0);
    let n = t.points.len().max(2) as f64;
    let maxk = t
        .points
        .iter()
        .map(|p| p.1.max(p.2))
        .max()
        .unwrap_or(1000)
        .max(1000) as f64
        * 1.1;
    let x = |sec: f64| left + sec / (n - 1.0) * width;
    let y = |k: f64| top + height - k / maxk * height;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="12">"#,
        left + width + 30.0,
        top + height + 90.0
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="15">{}: capacity, relay estimate, layer shown, freezes</text>"#,
        esc(&t.school)
    );
    // Layer band under the plot.
    let by = top + height + 12.0;
    for p in &t.points {
        let color = match p.3 {
            2 => COLORS[0].1,
            1 => COLORS[1].1,
            0 => COLORS[2].1,
            _ => COLORS[3].1,
        };
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{by}" width="{:.2}" height="14" fill="{color}"/>"#,
            x(p.0 as f64),
            width / (n - 1.0) + 0.3
        );
    }
    s.push('\n');
    for (k, label) in [(0.0, "0"), (maxk / 2.0, ""), (maxk / 1.1, "")] {
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + width,
            y(k),
            y(k),
            left - 4.0,
            y(k) + 4.0,
            if label.is_empty() {
                format!("{:.0}", k)
            } else {
                label.into()
            }
        );
    }
    for (idx, color, name) in [
        (1usize, "#333", "capacity"),
        (2, "#2166ac", "relay estimate"),
    ] {
        let pts: Vec<String> = t
            .points
            .iter()
            .map(|p| {
                let v = if idx == 1 { p.1 } else { p.2 };
                format!("{:.1},{:.1}", x(p.0 as f64), y(v as f64))
            })
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"><title>{name}</title></polyline>"#,
            pts.join(" ")
        );
    }
    for (at, ms) in &t.freezes {
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" x2="{:.1}" y1="{top}" y2="{}" stroke="red"><title>freeze {ms} ms</title></line>"#,
            x(*at),
            x(*at),
            top + height
        );
    }
    let ly = top + height + 50.0;
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="{ly}">kbit/s over {} s. Black: link capacity; blue: relay estimate; red lines: freezes; band: layer shown</text>"##,
        t.points.len().saturating_sub(1)
    );
    for (i, (layer, color)) in COLORS.iter().enumerate() {
        let lx = left + i as f64 * 120.0;
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="{}" width="12" height="12" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            ly + 10.0,
            lx + 16.0,
            ly + 20.0,
            layer.replace('_', " ")
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The timeline's figures, one row per second; the layer is -1 while no camera
/// picture plays, and `freeze_ms` is the length of a freeze that starts in that
/// second.
pub fn timeline_csv(t: &Timeline) -> String {
    let mut s = String::from("school,second,capacity_kbps,estimate_kbps,layer,freeze_ms\n");
    for &(sec, cap, est, layer) in &t.points {
        let frozen: u64 = t
            .freezes
            .iter()
            .filter(|(at, _)| *at as u64 == sec)
            .map(|f| f.1)
            .sum();
        let _ = writeln!(s, "{},{sec},{cap},{est},{layer},{frozen}", t.school);
    }
    s
}

/// Write report.json, schools.csv, quality.svg and (if any) timeline.svg and
/// timeline.csv.
pub fn write(dir: &Path, r: &Report, timeline: Option<&Timeline>) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut written = vec![];
    let mut put = |name: &str, body: &str| -> std::io::Result<()> {
        let p = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, body)?;
        std::fs::rename(&tmp, &p)?;
        written.push(p.display().to_string());
        Ok(())
    };
    put(
        "report.json",
        &serde_json::to_string_pretty(r).expect("report serializes"),
    )?;
    put("schools.csv", &csv(&r.schools))?;
    put(
        "quality.svg",
        &quality_svg(&r.summary, &format!("classroom-sim replay: {}", r.scenario)),
    )?;
    if let Some(t) = timeline {
        put("timeline.svg", &timeline_svg(t))?;
        put("timeline.csv", &timeline_csv(t))?;
    }
    Ok(written)
}

/// A few lines for the terminal.
pub fn text_summary(r: &Report) -> String {
    let mut s = String::new();
    let n = &r.summary.national;
    let _ = writeln!(
        s,
        "{} schools replayed in {} lessons ({} planned), {} unreachable (no internet)",
        n.schools, r.lessons, r.lessons_planned, n.unreachable
    );
    for bin in BINS {
        if let Some(m) = n.main_layer_by_bin.get(bin) {
            let total: usize = m.values().sum();
            let parts: Vec<String> = ["720p", "360p", "180p", "audio_only"]
                .iter()
                .map(|k| format!("{k} {}", m.get(*k).copied().unwrap_or(0)))
                .collect();
            let _ = writeln!(
                s,
                "  {bin:8} ({total:4} schools): mostly {}",
                parts.join(", ")
            );
        }
    }
    let _ = writeln!(
        s,
        "  voice breaking up (>= 5 % concealed): {} schools; mean concealed {:.2} %; slides showing {:.0} % of the time; freezes per lesson {:.2}; median delivered {} kbit/s",
        n.schools_with_voice_breaking_up, n.mean_audio_concealed_pct, n.mean_slides_share * 100.0, n.freezes_per_lesson, n.median_kbps
    );
    s
}
