//! The JSON status of every lesson (`/api/lessons`), for the operator and scripts.

use relay_webrtc::EdgeStats;
use serde_json::{json, Value};

use crate::schools::by_school;

/// Lessons, their teacher layers and each classroom, in plain units.
pub fn lessons_json(s: &EdgeStats) -> Value {
    let lessons: Vec<Value> = s
        .lessons
        .iter()
        .map(|l| {
            json!({
                "lesson": l.lesson,
                "teacher_connected": l.publisher.is_some(),
                "teacher_tracks": l.tracks.iter().map(|(mid, layers)| json!({
                    "mid": mid.as_str(),
                    "layers": layers.iter().map(|(rid, bps)| json!({
                        "rid": rid.map(|r| r.to_string()),
                        "kbps": bps / 1000,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "classrooms": l.subscribers.iter().map(|c| json!({
                    "session": c.peer.to_string(),
                    "school": c.school,
                    "kbps": c.bitrate_bps / 1000,
                    "packets": c.packets,
                    "layer_switches": c.switches,
                    "estimate_kbps": c.estimate_bps.map(|b| b / 1000),
                    "start_kbps": c.start_bps.map(|b| b / 1000),
                    "playout_min_ms": c.playout_min.map(|d| d.as_millis() as u64),
                    "budget_kbps": c.budget_bps / 1000,
                    "loss_pct": c.loss.map(|l| (l as f64 * 1000.0).round() / 10.0),
                    "rtt_ms": c.rtt.map(|r| r.as_millis() as u64),
                    "paused_video_tracks": c.paused_tracks,
                    "video_pauses": c.pauses,
                    "picture_losses": c.picture_losses,
                    "receiving": c.layers.iter().map(|(mid, cur)| json!({
                        "mid": mid.as_str(),
                        "rid": cur.flatten().map(|r| r.to_string()),
                        "flowing": cur.is_some(),
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let schools: Vec<Value> = by_school(s)
        .iter()
        .map(|((lesson, school), v)| {
            json!({
                "lesson": lesson,
                "school": school,
                "health": v.health(),
                "classrooms": v.classrooms,
                "kbps": v.bitrate / 1000,
                "estimate_kbps": (v.estimated > 0).then_some(v.estimate / 1000),
                "budget_kbps": v.budget / 1000,
                "worst_loss_pct": (v.loss as f64 * 1000.0).round() / 10.0,
                "worst_rtt_ms": v.rtt_ms,
                "paused_video_tracks": v.paused,
                "layer_switches": v.switches,
                "video_pauses": v.pauses,
                "picture_losses": v.picture_losses,
            })
        })
        .collect();
    json!({
        "lessons": lessons,
        "schools": schools,
        "publishers": s.publishers,
        "subscribers": s.subscribers,
        "packets_forwarded": s.totals.packets_forwarded,
        "layer_switches": s.totals.layer_switches,
        "video_pauses": s.totals.video_pauses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_schools_and_classroom_link_figures() {
        let v = lessons_json(&crate::schools::fixture());
        let a = &v["schools"][0];
        assert_eq!(a["school"], "a");
        assert_eq!(a["classrooms"], 2);
        assert_eq!(a["worst_rtt_ms"], 80);
        assert_eq!(a["worst_loss_pct"], 1.0);
        assert!(a["health"].as_str().unwrap().starts_with("good"));
        let c = &v["lessons"][0]["classrooms"][0];
        assert_eq!(c["estimate_kbps"], 2);
        assert_eq!(c["start_kbps"], 500);
        assert_eq!(c["rtt_ms"], 80);
        assert_eq!(v["packets_forwarded"], 42);
    }
}
