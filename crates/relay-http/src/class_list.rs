//! The class list of one lesson, as the teacher page shows it (`GET
//! /api/lessons/{lesson}` and the `lesson` events of its event stream): every school
//! seen in the lesson, whether it watches or talks, what it gets, its link in
//! numbers, its hand and the floor. Built from the edge's snapshot by plain
//! functions, tested without sockets.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use relay_core::{Audience, FloorState, LessonStats, Rid};
use serde_json::{json, Value};

/// Loss towards a classroom from which its voice is said to break up: RED carries
/// one lost packet in the next, so voice holds up to a few percent of loss.
pub const VOICE_BREAKING_LOSS: f32 = 0.08;
/// A picture lost (a keyframe request, a pause) this many times within
/// [`FREEZE_WINDOW`] keeps freezing.
pub const FREEZES_WARN: u64 = 3;
pub const FREEZE_WINDOW: Duration = Duration::from_secs(20);

/// The floor as JSON: `{"school": …, "open": …, "hands": […]}`.
pub fn floor_json(f: &FloorState) -> Value {
    json!({ "school": f.holder, "open": f.open, "hands": f.hands })
}

/// What the pages show for a camera layer: the teacher page sends rids q, h and f
/// at a quarter, half and full 720p.
fn camera_label(rid: Option<Rid>) -> &'static str {
    match rid.as_ref().map(Rid::as_str) {
        Some("f") => "720p",
        Some("h") => "360p",
        Some("q") => "180p",
        _ => "video",
    }
}

/// Each school's lost pictures over the last [`FREEZE_WINDOW`], from the running
/// counts the snapshots carry.
#[derive(Debug, Default)]
pub struct Freezes {
    seen: HashMap<(String, String), VecDeque<(Instant, u64)>>,
}

impl Freezes {
    /// `total` pictures lost so far by `school` in `lesson`: how many of them fell
    /// within the window before `now`.
    fn recent(&mut self, lesson: &str, school: &str, now: Instant, total: u64) -> u64 {
        let q = self
            .seen
            .entry((lesson.to_string(), school.to_string()))
            .or_default();
        while q
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > FREEZE_WINDOW)
        {
            q.pop_front();
        }
        if q.back()
            .is_none_or(|(t, _)| now.saturating_duration_since(*t) >= Duration::from_millis(500))
        {
            q.push_back((now, total));
        }
        // A count that went down is a session that left: start over from it.
        let oldest = q.front().map_or(total, |(_, n)| *n);
        total.saturating_sub(oldest.min(total))
    }

    /// The lesson ended: forget its schools.
    pub fn forget(&mut self, lesson: &str) {
        self.seen.retain(|(l, _), _| l != lesson);
    }
}

/// The class list of `lesson`: `stats` is its snapshot (`None`: nobody is in it),
/// `floor` a fresher floor than the snapshot's when one is known, `seen` the schools
/// seen in it so far (updated here), `names` display names by school id.
pub fn lesson_json(
    lesson: &str,
    stats: Option<&LessonStats>,
    floor: Option<&FloorState>,
    seen: &mut BTreeSet<String>,
    names: &BTreeMap<String, String>,
    freezes: &mut Freezes,
    now: Instant,
) -> Value {
    let none = FloorState::default();
    let floor = floor.or(stats.map(|s| &s.floor)).unwrap_or(&none);
    let classrooms: Vec<_> = stats
        .iter()
        .flat_map(|s| &s.subscribers)
        .filter(|c| c.audience == Audience::Classroom)
        .collect();
    let talkers: Vec<_> = stats.iter().flat_map(|s| &s.talkers).collect();
    seen.extend(classrooms.iter().map(|c| c.school.clone()));
    seen.extend(talkers.iter().map(|t| t.school.clone()));
    seen.extend(floor.hands.iter().cloned());
    seen.extend(floor.holder.iter().cloned());
    let schools: Vec<Value> = seen
        .iter()
        .map(|school| {
            let mine: Vec<_> = classrooms.iter().filter(|c| &c.school == school).collect();
            let watching = !mine.is_empty();
            // The best any of its classrooms gets stands for the school.
            let gets = mine
                .iter()
                .map(|c| {
                    let cam = c.video.first();
                    let screen_flows = c.video.get(1).is_some_and(|(cur, _)| cur.is_some());
                    match cam {
                        Some((Some(rid), _)) => (3, camera_label(*rid)),
                        Some((None, true)) if screen_flows => (2, "slides_voice"),
                        Some((None, true)) => (1, "voice_thin"),
                        _ => (0, "waiting"),
                    }
                })
                .max_by_key(|(rank, label)| (*rank, label_order(label)))
                .map_or("none", |(_, l)| l);
            let loss = mine.iter().filter_map(|c| c.loss).reduce(f32::max);
            let rtt = mine.iter().filter_map(|c| c.rtt).max();
            let estimates: Vec<u64> = mine.iter().filter_map(|c| c.estimate_bps).collect();
            let lost: u64 = mine.iter().map(|c| c.picture_losses + c.pauses).sum();
            let recent = freezes.recent(lesson, school, now, lost);
            let mut warnings = vec![];
            if loss.is_some_and(|l| l >= VOICE_BREAKING_LOSS) {
                warnings.push("voice_breaking");
            }
            if recent >= FREEZES_WARN {
                warnings.push("picture_freezing");
            }
            // Its camera picture on the newest of the teacher's hearing sessions.
            let picture = talkers
                .iter()
                .filter(|t| &t.school == school)
                .flat_map(|t| &t.shown_on)
                .max_by_key(|(peer, _)| *peer)
                .map(|(_, mid)| mid.to_string());
            json!({
                "school": school,
                "picture_mid": picture,
                "name": names.get(school).unwrap_or(school),
                "watching": watching,
                "talking": talkers.iter().any(|t| &t.school == school),
                "hand": floor.hands.contains(school),
                "floor": floor.holder.as_ref() == Some(school),
                "gets": gets,
                "kbps": mine.iter().map(|c| c.bitrate_bps).sum::<u64>() / 1000,
                "estimate_kbps": (!estimates.is_empty()).then(|| estimates.iter().sum::<u64>() / 1000),
                "loss_pct": loss.map(|l| (l as f64 * 1000.0).round() / 10.0),
                "rtt_ms": rtt.map(|r| r.as_millis() as u64),
                "warnings": warnings,
            })
        })
        .collect();
    json!({
        "lesson": lesson,
        "teacher_connected": stats.is_some_and(|s| s.publisher.is_some()),
        "floor": floor_json(floor),
        "schools": schools,
    })
}

/// Among camera layers, the higher one is better.
fn label_order(label: &str) -> u8 {
    match label {
        "720p" => 3,
        "360p" => 2,
        "180p" => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_core::{PeerId, SubscriberStats, TalkerStats};

    fn classroom(
        peer: u64,
        school: &str,
        video: Vec<(Option<Option<Rid>>, bool)>,
    ) -> SubscriberStats {
        SubscriberStats {
            peer: PeerId(peer),
            school: school.into(),
            audience: Audience::Classroom,
            bitrate_bps: 800_000,
            packets: 1,
            bytes: 1,
            layers: vec![],
            switches: 0,
            estimate_bps: Some(1_200_000),
            start_bps: Some(500_000),
            playout_min: None,
            budget_bps: 0,
            loss: Some(0.01),
            rtt: Some(Duration::from_millis(40)),
            paused_tracks: 0,
            pauses: 0,
            picture_losses: 0,
            video,
        }
    }

    #[test]
    fn lists_every_school_with_what_it_gets_and_keeps_those_that_left() {
        let f = Some(Rid::new("f"));
        let h = Some(Rid::new("h"));
        let mut teacher_ear = classroom(9, "", vec![]);
        teacher_ear.audience = Audience::Teacher;
        let mut lossy = classroom(4, "c", vec![(None, true), (None, true)]);
        lossy.loss = Some(0.12);
        lossy.picture_losses = 0;
        let mut stats = LessonStats {
            lesson: "math".into(),
            publisher: Some(PeerId(1)),
            tracks: vec![],
            subscribers: vec![
                classroom(2, "a", vec![(Some(f), false), (None, false)]),
                classroom(3, "b", vec![(None, true), (Some(h), false)]),
                lossy,
                teacher_ear,
            ],
            talkers: vec![TalkerStats {
                peer: PeerId(5),
                school: "b".into(),
                bitrate_bps: 30_000,
                dropped: 0,
                shown_on: vec![
                    (PeerId(8), relay_core::Mid::new("2")),
                    (PeerId(9), relay_core::Mid::new("1")),
                ],
            }],
            floor: FloorState {
                holder: Some("b".into()),
                open: false,
                hands: vec!["a".into()],
            },
        };
        let names = BTreeMap::from([("a".to_string(), "Aul school".to_string())]);
        let mut seen = BTreeSet::new();
        let mut freezes = Freezes::default();
        let t0 = Instant::now();
        let v = lesson_json(
            "math",
            Some(&stats),
            None,
            &mut seen,
            &names,
            &mut freezes,
            t0,
        );
        let rows = v["schools"].as_array().unwrap();
        assert_eq!(
            rows.len(),
            3,
            "the teacher's own session is not a school: {v}"
        );
        let row = |id: &str| rows.iter().find(|r| r["school"] == id).unwrap().clone();
        assert_eq!(row("a")["name"], "Aul school");
        assert_eq!(row("a")["gets"], "720p");
        assert_eq!(row("a")["hand"], true);
        assert_eq!(row("b")["name"], "b");
        assert_eq!(row("b")["gets"], "slides_voice");
        assert_eq!(row("b")["floor"], true);
        assert_eq!(row("b")["talking"], true);
        assert_eq!(
            row("b")["picture_mid"],
            "1",
            "the newest hearing session's m-line"
        );
        assert_eq!(row("a")["picture_mid"], Value::Null);
        assert_eq!(row("c")["gets"], "voice_thin");
        assert_eq!(row("c")["warnings"], json!(["voice_breaking"]));
        assert_eq!(row("a")["kbps"], 800);
        assert_eq!(row("a")["rtt_ms"], 40);
        assert_eq!(
            v["floor"],
            json!({"school": "b", "open": false, "hands": ["a"]})
        );

        // Pictures lost again and again: a warning, which passes once they stop.
        stats.subscribers[0].picture_losses = 5;
        let t1 = t0 + Duration::from_secs(2);
        let v = lesson_json(
            "math",
            Some(&stats),
            None,
            &mut seen,
            &names,
            &mut freezes,
            t1,
        );
        assert_eq!(v["schools"][0]["warnings"], json!(["picture_freezing"]));
        let t2 = t1 + FREEZE_WINDOW + Duration::from_secs(1);
        let v = lesson_json(
            "math",
            Some(&stats),
            None,
            &mut seen,
            &names,
            &mut freezes,
            t2,
        );
        assert_eq!(v["schools"][0]["warnings"], json!([]));

        // School a leaves; a fresher floor than the snapshot's wins.
        stats.subscribers.remove(0);
        let fresh = FloorState::default();
        let v = lesson_json(
            "math",
            Some(&stats),
            Some(&fresh),
            &mut seen,
            &names,
            &mut freezes,
            t2,
        );
        let a = &v["schools"][0];
        assert_eq!(
            (a["school"].as_str(), a["watching"].as_bool()),
            (Some("a"), Some(false))
        );
        assert_eq!(a["gets"], "none");
        assert_eq!(v["floor"]["school"], Value::Null);
    }
}
