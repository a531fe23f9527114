//! Simulcast layers of one published video track: what each layer measures, and which
//! layer a preference picks among those that are actually arriving.

use std::time::{Duration, Instant};

use crate::ids::Rid;
use crate::keyframe::KeyframeThrottle;

/// Which layer a classroom wants, relative to what the teacher publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LayerPref {
    Low,
    Medium,
    #[default]
    High,
}

impl LayerPref {
    /// Index into a ladder of `n` layers, lowest first.
    pub fn index(self, n: usize) -> Option<usize> {
        if n == 0 {
            return None;
        }
        Some(match self {
            LayerPref::Low => 0,
            LayerPref::Medium => (n - 1) / 2 + usize::from(n == 2),
            LayerPref::High => n - 1,
        })
    }
}

impl std::str::FromStr for LayerPref {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "low" => Ok(LayerPref::Low),
            "medium" => Ok(LayerPref::Medium),
            "high" => Ok(LayerPref::High),
            other => Err(format!("unknown layer {other:?}: use low, medium or high")),
        }
    }
}

/// Measures a bit rate over fixed windows.
#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    window_start: Option<Instant>,
    window_bytes: u64,
    window_packets: u64,
    bps: Option<u64>,
    /// Packets per second over the last window.
    pps: u64,
    /// Slow-decaying peak of the windowed rate: rises at once, falls by a quarter
    /// of the gap per window, so a keyframe burst is remembered for a few seconds.
    peak_bps: u64,
    last_at: Option<Instant>,
    /// Since when packets have been arriving without a gap of [`RESTART_GAP`].
    since: Option<Instant>,
    /// Bytes seen in total.
    pub total_bytes: u64,
    /// Packets seen in total.
    pub total_packets: u64,
}

const WINDOW: Duration = Duration::from_millis(500);
/// A stream silent this long starts afresh (for [`RateMeter::flowing_for`]).
const RESTART_GAP: Duration = Duration::from_secs(1);

/// Bytes each RTP packet adds on the wire: IPv4 20, UDP 8, RTP 12, SRTP tag 10 and
/// header extensions about 10. At 50 Opus packets/s this alone is 24 kbit/s, which
/// matters on a 1 Mbit/s school link.
pub const PACKET_OVERHEAD_BYTES: u64 = 60;

/// See [`ranked_active`].
pub const SIBLING_GAP: Duration = Duration::from_millis(300);

impl RateMeter {
    /// Count `bytes` arriving at `now`.
    pub fn add(&mut self, now: Instant, bytes: usize) {
        self.total_bytes += bytes as u64;
        self.total_packets += 1;
        if self
            .last_at
            .is_none_or(|t| now.saturating_duration_since(t) >= RESTART_GAP)
        {
            self.since = Some(now);
        }
        self.last_at = Some(now);
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= WINDOW {
            let us = elapsed.as_micros().max(1) as u64;
            let bps = self.window_bytes * 8 * 1_000_000 / us;
            self.bps = Some(bps);
            self.pps = self.window_packets * 1_000_000 / us;
            self.peak_bps = if bps >= self.peak_bps {
                bps
            } else {
                self.peak_bps - (self.peak_bps - bps) / 4
            };
            self.window_start = Some(now);
            self.window_bytes = 0;
            self.window_packets = 0;
        }
        self.window_bytes += bytes as u64;
        self.window_packets += 1;
    }

    /// What this stream costs on the wire: its slow-decaying peak payload rate plus
    /// per-packet IP/UDP/SRTP overhead; 0 once idle.
    pub fn wire_bps(&self, now: Instant, idle: Duration) -> u64 {
        if !self.is_active(now, idle) || self.bps.is_none() {
            return 0;
        }
        self.peak_bps + self.pps * 8 * PACKET_OVERHEAD_BYTES
    }

    /// Last window's rate on the wire (payload plus per-packet overhead); 0 once idle.
    pub fn window_wire_bps(&self, now: Instant, idle: Duration) -> u64 {
        match self.bps(now, idle) {
            0 => 0,
            bps => bps + self.pps * 8 * PACKET_OVERHEAD_BYTES,
        }
    }

    /// Last measured rate in bit/s; 0 once nothing arrived for `idle`.
    pub fn bps(&self, now: Instant, idle: Duration) -> u64 {
        if self.is_active(now, idle) {
            self.bps.unwrap_or(0)
        } else {
            0
        }
    }

    /// How long packets have been arriving without a long gap.
    pub fn flowing_for(&self, now: Instant) -> Duration {
        self.since
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
    }

    /// Whether a full window has been measured.
    pub fn is_measured(&self) -> bool {
        self.bps.is_some()
    }

    /// Whether something arrived within `idle` before `now`.
    pub fn is_active(&self, now: Instant, idle: Duration) -> bool {
        self.last_at
            .is_some_and(|t| now.saturating_duration_since(t) < idle)
    }
}

/// One simulcast layer (or the single stream of a track without simulcast).
#[derive(Debug, Clone)]
pub struct Layer {
    pub rid: Option<Rid>,
    /// Position in the publisher's SDP (`a=simulcast`), used until rates are measured.
    pub sdp_order: usize,
    pub meter: RateMeter,
    pub keyframes: KeyframeThrottle,
    pub last_keyframe: Option<Instant>,
}

impl Layer {
    pub fn new(rid: Option<Rid>, sdp_order: usize) -> Layer {
        Layer {
            rid,
            sdp_order,
            meter: RateMeter::default(),
            keyframes: KeyframeThrottle::default(),
            last_keyframe: None,
        }
    }
}

/// Indices of the layers that are arriving now, lowest quality first.
///
/// Layers are ranked by measured bit rate once every arriving layer has one, because
/// publishers disagree on the order of rids in SDP (browsers follow `sendEncodings`,
/// some servers list highest first); until then by SDP order.
///
/// A layer also counts as stopped when its siblings went on sending for
/// [`SIBLING_GAP`] after its last packet: simulcast layers share one capture clock,
/// so this notices a teacher's encoder dropping its top layer within a few frames
/// instead of after the `idle` timeout.
pub fn ranked_active(layers: &[Layer], now: Instant, idle: Duration) -> Vec<usize> {
    let newest = layers.iter().filter_map(|l| l.meter.last_at).max();
    let mut active: Vec<usize> = (0..layers.len())
        .filter(|&i| {
            let m = &layers[i].meter;
            m.is_active(now, idle)
                && match (newest, m.last_at) {
                    (Some(n), Some(t)) => n.saturating_duration_since(t) < SIBLING_GAP,
                    _ => false,
                }
        })
        .collect();
    if active.iter().all(|&i| layers[i].meter.is_measured()) {
        active.sort_by_key(|&i| (layers[i].meter.bps(now, idle), layers[i].sdp_order));
    } else {
        active.sort_by_key(|&i| layers[i].sdp_order);
    }
    active
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preference_index() {
        assert_eq!(LayerPref::High.index(3), Some(2));
        assert_eq!(LayerPref::Medium.index(3), Some(1));
        assert_eq!(LayerPref::Low.index(3), Some(0));
        assert_eq!(LayerPref::Medium.index(2), Some(1));
        assert_eq!(LayerPref::Medium.index(1), Some(0));
        assert_eq!(LayerPref::High.index(0), None);
        assert!("huge".parse::<LayerPref>().is_err());
    }

    #[test]
    fn meter_measures_and_goes_idle() {
        let t0 = Instant::now();
        let idle = Duration::from_millis(1500);
        let mut m = RateMeter::default();
        // 125 bytes every 10 ms = 100 kbit/s.
        for i in 0..=100 {
            m.add(t0 + Duration::from_millis(10 * i), 125);
        }
        let now = t0 + Duration::from_millis(1000);
        let bps = m.bps(now, idle);
        assert!((95_000..=105_000).contains(&bps), "{bps}");
        assert_eq!(m.bps(now + Duration::from_secs(2), idle), 0);
    }

    #[test]
    fn ranking_uses_rates_when_known() {
        let t0 = Instant::now();
        let idle = Duration::from_millis(1500);
        // SDP lists the highest layer first.
        let mut layers: Vec<Layer> = ["f", "h", "q"]
            .iter()
            .enumerate()
            .map(|(i, r)| Layer::new(Some(Rid::new(r)), i))
            .collect();
        layers[0].meter.add(t0, 10);
        layers[1].meter.add(t0, 10);
        assert_eq!(
            ranked_active(&layers, t0, idle),
            vec![0, 1],
            "SDP order before rates"
        );
        for (i, size) in [(0usize, 1500usize), (1, 500), (2, 150)] {
            for k in 0..=60 {
                layers[i]
                    .meter
                    .add(t0 + Duration::from_millis(10 * k), size);
            }
        }
        let now = t0 + Duration::from_millis(600);
        assert_eq!(ranked_active(&layers, now, idle), vec![2, 1, 0]);
    }
}
