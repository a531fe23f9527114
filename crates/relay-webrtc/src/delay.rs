//! How long media spends inside the relay: from the moment the driver read a
//! teacher's packet off the socket to the moment the forwarded copy was handed to
//! the kernel towards a classroom. It includes the str0m work on both sides, the
//! core, SRTP, the send pacer's hold (towards a thin link the pacer spreads a burst
//! out) and the send system call; it excludes what the kernel queues before the read.
//!
//! The edge notes each forwarded packet by the (SSRC, sequence number) it leaves
//! with ([`InFlight`]); when str0m emits an SRTP datagram with that header (which is
//! not encrypted), the datagram carries the receive time, and the driver records the
//! delay once the datagram is sent ([`DelayHistogram`]). Retransmissions and padding
//! carry none and are not counted. Only one packet in [`SAMPLE_EVERY`] (by its
//! outgoing sequence number) is timed, so the bookkeeping costs next to nothing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Upper bounds of the histogram's buckets, in microseconds (the last bucket is
/// everything above). Fine around the 1–5 ms that a forwarding relay should take.
pub const BUCKETS_US: [u64; 16] = [
    50, 100, 200, 300, 500, 750, 1_000, 2_000, 3_000, 5_000, 7_500, 10_000, 20_000, 50_000,
    100_000, 250_000,
];

/// A cumulative-friendly histogram of forwarding delays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DelayHistogram {
    /// Per bucket of [`BUCKETS_US`] (not cumulative), plus one for above the last.
    pub counts: [u64; BUCKETS_US.len() + 1],
    pub sum_us: u64,
    pub count: u64,
}

impl DelayHistogram {
    pub fn record(&mut self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        let i = BUCKETS_US.partition_point(|&b| b < us);
        self.counts[i] += 1;
        self.sum_us += us;
        self.count += 1;
    }

    /// The upper bound of the bucket holding quantile `q` (0–1), in microseconds;
    /// `None` when empty or when it falls above the last bound.
    pub fn quantile_bound_us(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((self.count as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return BUCKETS_US.get(i).copied();
            }
        }
        None
    }

    /// Add another histogram's counts (another media worker's).
    pub fn merge(&mut self, other: &DelayHistogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.sum_us += other.sum_us;
        self.count += other.count;
    }
}

/// One forwarded packet in this many is timed: those whose outgoing sequence number
/// is a multiple of it.
pub const SAMPLE_EVERY: u16 = 8;

/// Forwarded packets not yet sent: (SSRC, sequence number) -> when the relay read
/// the packet they copy.
#[derive(Debug, Default)]
pub struct InFlight {
    at: HashMap<(u32, u16), Instant>,
    swept: Option<Instant>,
}

/// Entries older than this are packets str0m dropped (a full send queue, a session
/// closed): forgotten at the next sweep.
const FORGET_AFTER: Duration = Duration::from_secs(2);

impl InFlight {
    /// A forwarded packet was written: time it if it is one of the sample.
    pub fn note(&mut self, ssrc: u32, seq: u16, received: Instant) {
        if seq % SAMPLE_EVERY == 0 {
            self.at.insert((ssrc, seq), received);
        }
    }

    /// The receive time of the media an outgoing SRTP datagram carries, if it is a
    /// forwarded RTP packet noted before (RTCP and unknown packets give `None`).
    pub fn take(&mut self, datagram: &[u8]) -> Option<Instant> {
        if self.at.is_empty() {
            return None;
        }
        let (ssrc, seq) = rtp_ids(datagram)?;
        if seq % SAMPLE_EVERY != 0 {
            return None;
        }
        self.at.remove(&(ssrc, seq))
    }

    /// Forget what was never sent, at most once a second.
    pub fn sweep(&mut self, now: Instant) {
        if self
            .swept
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        self.swept = Some(now);
        self.at
            .retain(|_, t| now.saturating_duration_since(*t) < FORGET_AFTER);
        // A backlog (a stalled link) grows the map; give the room back after it,
        // so memory follows the traffic rather than its worst moment.
        if self.at.capacity() > 4 * self.at.len() + 1024 {
            self.at.shrink_to(2 * self.at.len());
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.at.len()
    }
}

/// SSRC and sequence number of an RTP packet (RFC 3550 §5.1), or `None` for
/// anything else on the socket: RTCP (payload types 64–95 with the marker bit
/// folded in, RFC 5761 §4), STUN, DTLS.
fn rtp_ids(d: &[u8]) -> Option<(u32, u16)> {
    if d.len() < 12 || d[0] >> 6 != 2 || (64..=95).contains(&(d[1] & 0x7f)) {
        return None;
    }
    let seq = u16::from_be_bytes([d[2], d[3]]);
    let ssrc = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
    Some((ssrc, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(pt: u8, seq: u16, ssrc: u32) -> Vec<u8> {
        let mut d = vec![0x80, pt];
        d.extend(seq.to_be_bytes());
        d.extend(1234u32.to_be_bytes());
        d.extend(ssrc.to_be_bytes());
        d.extend([0u8; 20]);
        d
    }

    #[test]
    fn a_noted_packet_is_found_once_and_rtcp_never() {
        let t0 = Instant::now();
        let mut f = InFlight::default();
        f.note(7, 104, t0);
        f.note(7, 105, t0);
        assert_eq!(f.take(&rtp(96, 112, 7)), None, "another sequence number");
        assert_eq!(f.take(&rtp(96, 105, 7)), None, "not one of the sample");
        assert_eq!(f.take(&rtp(96 | 0x80, 104, 7)), Some(t0), "marker bit set");
        assert_eq!(f.take(&rtp(96, 104, 7)), None, "taken already");
        f.note(7, 8, t0);
        // An RTCP receiver report (PT 201) whose bytes happen to match.
        assert_eq!(f.take(&rtp(201, 8, 7)), None);
        assert_eq!(f.take(&[0x16, 0xfe, 0xfd]), None, "DTLS");
    }

    #[test]
    fn a_sweep_forgets_what_was_never_sent() {
        let t0 = Instant::now();
        let mut f = InFlight::default();
        f.note(1, 8, t0);
        f.sweep(t0 + Duration::from_millis(500));
        f.note(1, 16, t0 + Duration::from_millis(1500));
        f.sweep(t0 + Duration::from_millis(1600));
        assert_eq!(f.len(), 2, "at most one sweep a second");
        f.sweep(t0 + Duration::from_millis(2600));
        assert_eq!(
            f.len(),
            1,
            "the 2.6 s old entry is gone, the 1.1 s one stays"
        );
    }

    #[test]
    fn quantiles_are_bucket_bounds() {
        let mut h = DelayHistogram::default();
        assert_eq!(h.quantile_bound_us(0.5), None);
        for _ in 0..98 {
            h.record(Duration::from_micros(400));
        }
        h.record(Duration::from_micros(4_000));
        h.record(Duration::from_secs(1));
        assert_eq!(h.count, 100);
        assert_eq!(h.quantile_bound_us(0.5), Some(500));
        assert_eq!(h.quantile_bound_us(0.98), Some(500));
        assert_eq!(h.quantile_bound_us(0.99), Some(5_000));
        assert_eq!(h.quantile_bound_us(1.0), None, "above the last bound");
        assert_eq!(h.counts.iter().sum::<u64>(), 100);
    }
}
