//! Prometheus text exposition of the relay's state.

use std::fmt::Write;

use relay_webrtc::EdgeStats;

use crate::schools::{by_school, School};

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Render `/metrics`.
pub fn render(s: &EdgeStats) -> String {
    let mut o = String::new();
    let mut gauge = |name: &str, help: &str, kind: &str, v: u64| {
        let _ = writeln!(o, "# HELP classroom_relay_{name} {help}\n# TYPE classroom_relay_{name} {kind}\nclassroom_relay_{name} {v}");
    };
    gauge(
        "lessons",
        "Lessons with a teacher or a classroom connected.",
        "gauge",
        s.lessons.len() as u64,
    );
    gauge(
        "publishers",
        "Teacher sessions.",
        "gauge",
        s.publishers as u64,
    );
    gauge(
        "subscribers",
        "Watching sessions: classrooms, and teachers hearing the floor.",
        "gauge",
        s.subscribers as u64,
    );
    gauge(
        "talkers",
        "Classrooms' talk-back (microphone) sessions.",
        "gauge",
        s.lessons.iter().map(|l| l.talkers.len() as u64).sum(),
    );
    gauge(
        "floors_held",
        "Lessons in which a school holds the floor.",
        "gauge",
        s.lessons
            .iter()
            .filter(|l| l.floor.holder.is_some())
            .count() as u64,
    );
    gauge(
        "hands_raised",
        "Classrooms' hands up, waiting for the floor.",
        "gauge",
        s.lessons.iter().map(|l| l.floor.hands.len() as u64).sum(),
    );
    gauge(
        "talk_dropped_packets_total",
        "Talk-back voice packets dropped because their school did not hold the floor.",
        "counter",
        s.totals.talk_dropped,
    );
    gauge(
        "contained_panics_total",
        "Panics inside the WebRTC stack contained to the one session (or offer) that caused them.",
        "counter",
        s.contained_panics,
    );
    gauge(
        "connect_timeouts_total",
        "Sessions dropped because they did not connect (ICE and DTLS) within 15 s.",
        "counter",
        s.connect_timeouts,
    );
    gauge(
        "stray_datagrams_total",
        "UDP datagrams at the media port that belonged to no session (dropped).",
        "counter",
        s.stray_datagrams,
    );
    gauge(
        "packets_received_total",
        "RTP packets received from teachers.",
        "counter",
        s.totals.packets_in,
    );
    gauge(
        "bytes_received_total",
        "RTP payload bytes received from teachers.",
        "counter",
        s.totals.bytes_in,
    );
    gauge(
        "packets_forwarded_total",
        "RTP packets forwarded to classrooms.",
        "counter",
        s.totals.packets_forwarded,
    );
    gauge(
        "bytes_forwarded_total",
        "RTP payload bytes forwarded to classrooms.",
        "counter",
        s.totals.bytes_forwarded,
    );
    gauge(
        "keyframe_requests_total",
        "Keyframe requests sent to teachers.",
        "counter",
        s.totals.keyframe_requests_sent,
    );
    gauge(
        "layer_switches_total",
        "Simulcast layer switches made for classrooms.",
        "counter",
        s.totals.layer_switches,
    );
    gauge(
        "video_pauses_total",
        "Times a classroom's video track was paused because its link was too thin (voice went on).",
        "counter",
        s.totals.video_pauses,
    );

    let schools = by_school(s);
    type Pick = fn(&School) -> String;
    let per_school: [(&str, &str, Pick); 7] = [
        (
            "school_bitrate_bps",
            "Current bit rate sent to a school (all its classrooms).",
            |v| v.bitrate.to_string(),
        ),
        ("school_classrooms", "Classroom sessions per school.", |v| {
            v.classrooms.to_string()
        }),
        (
            "school_estimate_bps",
            "Send-side bandwidth estimate towards a school (sum over its classrooms).",
            |v| v.estimate.to_string(),
        ),
        (
            "school_budget_bps",
            "Media budget allocated to a school (sum over its classrooms).",
            |v| v.budget.to_string(),
        ),
        (
            "school_loss_ratio",
            "Worst packet loss reported by a school's classrooms (0-1).",
            |v| format!("{:.3}", v.loss),
        ),
        (
            "school_rtt_ms",
            "Worst round-trip time to a school's classrooms.",
            |v| v.rtt_ms.to_string(),
        ),
        (
            "school_paused_video_tracks",
            "Video tracks held back now because the school's link is too thin.",
            |v| v.paused.to_string(),
        ),
    ];
    // Counters: how the school's picture fared. Every layer switch is made on a
    // keyframe with the old layer flowing until then, so it is a freeze avoided;
    // a keyframe request from a classroom is a picture its decoder lost.
    let school_counters: [(&str, &str, Pick); 3] = [
        (
            "school_layer_switches_total",
            "Layer switches towards a school's classrooms, each made without a gap (freezes avoided).",
            |v| v.switches.to_string(),
        ),
        (
            "school_picture_losses_total",
            "Keyframe requests from a school's classrooms: pictures their decoders lost (freezes that occurred).",
            |v| v.picture_losses.to_string(),
        ),
        (
            "school_video_pauses_total",
            "Times video was paused for a school's classrooms because the link was too thin (voice went on).",
            |v| v.pauses.to_string(),
        ),
    ];
    let typed = per_school
        .iter()
        .map(|x| (x, "gauge"))
        .chain(school_counters.iter().map(|x| (x, "counter")));
    for ((name, help, pick), kind) in typed {
        let _ = writeln!(
            o,
            "# HELP classroom_relay_{name} {help}\n# TYPE classroom_relay_{name} {kind}"
        );
        for ((lesson, school), v) in &schools {
            let _ = writeln!(
                o,
                "classroom_relay_{name}{{lesson=\"{}\",school=\"{}\"}} {}",
                esc(lesson),
                esc(school),
                pick(v)
            );
        }
    }
    histogram(
        &mut o,
        "forward_delay_seconds",
        "Time forwarded media spends in the relay: teacher packet read to classroom copy sent (str0m, core, SRTP, send pacer, send call); one packet in 8 is timed.",
        &s.forward_delay,
    );
    histogram(
        &mut o,
        "processing_seconds",
        "Time a forwarded teacher datagram takes to handle: read to the last copy handed to the kernel, without what the send pacer holds back.",
        &s.processing_delay,
    );
    workers(&mut o, s);
    let _ = writeln!(o, "# HELP classroom_relay_teacher_layer_bitrate_bps Bit rate the teacher publishes per track and layer.\n# TYPE classroom_relay_teacher_layer_bitrate_bps gauge");
    for l in &s.lessons {
        for (mid, layers) in &l.tracks {
            for (rid, bps) in layers {
                let rid = rid.map(|r| r.to_string()).unwrap_or_default();
                let _ = writeln!(
                    o,
                    "classroom_relay_teacher_layer_bitrate_bps{{lesson=\"{}\",mid=\"{}\",rid=\"{}\"}} {bps}",
                    esc(&l.lesson),
                    esc(mid.as_str()),
                    esc(&rid)
                );
            }
        }
    }
    o
}

/// The HTTP layer's figures: open sessions, draining, and refusals by reason
/// (limits, bad offers, bad tokens).
pub fn render_sessions(
    o: &mut String,
    open: usize,
    draining: bool,
    refused: &std::collections::BTreeMap<&'static str, u64>,
) {
    let _ = writeln!(o, "# HELP classroom_relay_sessions Open WHIP/WHEP sessions (including those being negotiated).
# TYPE classroom_relay_sessions gauge
classroom_relay_sessions {open}");
    let _ = writeln!(o, "# HELP classroom_relay_draining 1 while the relay is shutting down and refuses new sessions.
# TYPE classroom_relay_draining gauge
classroom_relay_draining {}", u8::from(draining));
    let _ = writeln!(
        o,
        "# HELP classroom_relay_refused_total Session requests refused, by reason.
# TYPE classroom_relay_refused_total counter"
    );
    for reason in crate::REFUSAL_REASONS {
        let n = refused.get(reason).copied().unwrap_or(0);
        let _ = writeln!(
            o,
            "classroom_relay_refused_total{{reason=\"{reason}\"}} {n}"
        );
    }
}

/// A per-worker metric: name, help, type, and its value for one worker.
type WorkerRow = (
    &'static str,
    &'static str,
    &'static str,
    fn(&relay_webrtc::WorkerLoad) -> u64,
);

/// Per media worker: sessions, lessons, and datagrams dropped for a full socket.
fn workers(o: &mut String, s: &EdgeStats) {
    let rows: [WorkerRow; 3] = [
        (
            "worker_sessions",
            "Sessions a media worker runs.",
            "gauge",
            |w| w.sessions as u64,
        ),
        (
            "worker_lessons",
            "Lessons a media worker runs.",
            "gauge",
            |w| w.lessons as u64,
        ),
        (
            "worker_send_drops_total",
            "Datagrams a media worker dropped because its socket stayed full.",
            "counter",
            |w| w.send_drops,
        ),
    ];
    for (name, help, kind, pick) in rows {
        let _ = writeln!(
            o,
            "# HELP classroom_relay_{name} {help}\n# TYPE classroom_relay_{name} {kind}"
        );
        for (i, w) in s.workers.iter().enumerate() {
            let _ = writeln!(o, "classroom_relay_{name}{{worker=\"{i}\"}} {}", pick(w));
        }
    }
}

/// A delay histogram (see `relay_webrtc::delay`), cumulative as Prometheus wants it.
fn histogram(o: &mut String, name: &str, help: &str, h: &relay_webrtc::delay::DelayHistogram) {
    let name = format!("classroom_relay_{name}");
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} histogram");
    let mut cumulative = 0;
    for (bound, c) in relay_webrtc::delay::BUCKETS_US.iter().zip(h.counts) {
        cumulative += c;
        let _ = writeln!(
            o,
            "{name}_bucket{{le=\"{}\"}} {cumulative}",
            *bound as f64 / 1e6
        );
    }
    let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(o, "{name}_sum {}", h.sum_us as f64 / 1e6);
    let _ = writeln!(o, "{name}_count {}", h.count);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_totals_and_per_school_sums() {
        let s = crate::schools::fixture();
        let m = render(&s);
        assert!(m.contains("classroom_relay_lessons 1\n"));
        assert!(m.contains("classroom_relay_talk_dropped_packets_total 0\n"));
        assert!(m.contains("classroom_relay_hands_raised 0\n"));
        assert!(m.contains("classroom_relay_packets_forwarded_total 42\n"));
        assert!(
            m.contains("classroom_relay_school_bitrate_bps{lesson=\"math\",school=\"a\"} 1500\n")
        );
        assert!(m.contains("classroom_relay_school_classrooms{lesson=\"math\",school=\"a\"} 2\n"));
        assert!(m.contains("school=\"b\\\"x\"} 7\n"));
        assert!(
            m.contains("classroom_relay_school_estimate_bps{lesson=\"math\",school=\"a\"} 3000\n")
        );
        assert!(m.contains("classroom_relay_school_rtt_ms{lesson=\"math\",school=\"a\"} 80\n"));
        assert!(m.contains("# TYPE classroom_relay_school_picture_losses_total counter\n"));
        assert!(m.contains(
            "classroom_relay_school_picture_losses_total{lesson=\"math\",school=\"a\"} 4\n"
        ));
        assert!(m.contains(
            "classroom_relay_school_layer_switches_total{lesson=\"math\",school=\"a\"} 2\n"
        ));
    }

    #[test]
    fn refusals_are_listed_by_reason_even_at_zero() {
        let mut o = String::new();
        let mut refused = std::collections::BTreeMap::new();
        refused.insert("school_sessions", 3);
        render_sessions(&mut o, 5, true, &refused);
        assert!(o.contains("classroom_relay_sessions 5\n"));
        assert!(o.contains("classroom_relay_draining 1\n"));
        assert!(o.contains("classroom_relay_refused_total{reason=\"school_sessions\"} 3\n"));
        assert!(o.contains("classroom_relay_refused_total{reason=\"bad_offer\"} 0\n"));
    }

    #[test]
    fn forward_delay_buckets_are_cumulative() {
        let mut s = crate::schools::fixture();
        for us in [80, 400, 400, 4_000, 900_000] {
            s.forward_delay.record(std::time::Duration::from_micros(us));
        }
        let m = render(&s);
        let name = "classroom_relay_forward_delay_seconds";
        assert!(m.contains(&format!("# TYPE {name} histogram\n")));
        assert!(m.contains(&format!("{name}_bucket{{le=\"0.00005\"}} 0\n")));
        assert!(m.contains(&format!("{name}_bucket{{le=\"0.0001\"}} 1\n")));
        assert!(m.contains(&format!("{name}_bucket{{le=\"0.0005\"}} 3\n")));
        assert!(m.contains(&format!("{name}_bucket{{le=\"0.005\"}} 4\n")));
        assert!(m.contains(&format!("{name}_bucket{{le=\"0.25\"}} 4\n")));
        assert!(m.contains(&format!("{name}_bucket{{le=\"+Inf\"}} 5\n")));
        assert!(m.contains(&format!("{name}_count 5\n")));
        assert!(m.contains(&format!("{name}_sum 0.90488\n")));
        assert!(m.contains("# TYPE classroom_relay_processing_seconds histogram\n"));
        assert!(m.contains("classroom_relay_worker_sessions{worker=\"1\"} 3\n"));
    }
}
