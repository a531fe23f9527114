//! The JSON status of every lesson (`/api/lessons`), for the operator and scripts.

use relay_webrtc::EdgeStats;
use serde_json::{json, Value};

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
                    "receiving": c.layers.iter().map(|(mid, cur)| json!({
                        "mid": mid.as_str(),
                        "rid": cur.flatten().map(|r| r.to_string()),
                        "flowing": cur.is_some(),
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "lessons": lessons,
        "publishers": s.publishers,
        "subscribers": s.subscribers,
        "packets_forwarded": s.totals.packets_forwarded,
    })
}
