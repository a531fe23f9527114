//! What the load run reads from the relay's `/metrics`: its totals, its delay
//! histograms and its per-worker sessions.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{agent, http_error, LoadError};

/// Relay-side totals over the run, from its `/metrics`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RelayTotals {
    pub packets_received: u64,
    pub packets_forwarded: u64,
    pub bytes_forwarded: u64,
    pub keyframe_requests: u64,
    pub layer_switches: u64,
    pub peak_publishers: u64,
    pub peak_subscribers: u64,
    /// Time media spent inside the relay over the run (its
    /// `forward_delay_seconds` histogram, one packet in 8 timed).
    pub forward_delay: ForwardDelay,
    /// Time the relay took to handle forwarded teacher datagrams, without what its
    /// send pacer held back (its `processing_seconds` histogram).
    pub processing: ForwardDelay,
    /// Sessions per media worker when the relay had the most sessions of the run
    /// (from `worker_sessions`).
    pub peak_worker_sessions: Vec<u64>,
}

/// The relay's own receive-to-send time of forwarded packets, from the buckets of
/// its histogram: quantiles are bucket upper bounds ("at most").
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ForwardDelay {
    pub packets: u64,
    pub mean_ms: f64,
    /// `None` when no packet was counted or the quantile is above the last bucket.
    pub p50_ms_at_most: Option<f64>,
    pub p99_ms_at_most: Option<f64>,
}

impl ForwardDelay {
    /// From two scrapes of `/metrics`, histogram `name`'s samples between them.
    pub(super) fn between(
        name: &str,
        before: &BTreeMap<String, f64>,
        after: &BTreeMap<String, f64>,
    ) -> ForwardDelay {
        use relay_webrtc::delay::{DelayHistogram, BUCKETS_US};
        let name = format!("classroom_relay_{name}");
        let get = |m: &BTreeMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0) as u64;
        let diff = |k: &str| get(after, k).saturating_sub(get(before, k));
        let mut h = DelayHistogram::default();
        let mut below = 0;
        for (i, bound) in BUCKETS_US.iter().enumerate() {
            let cumulative = diff(&format!("{name}_bucket{{le=\"{}\"}}", *bound as f64 / 1e6));
            h.counts[i] = cumulative.saturating_sub(below);
            below = cumulative;
        }
        h.count = diff(&format!("{name}_count"));
        h.counts[BUCKETS_US.len()] = h.count.saturating_sub(below);
        let sum_s = after.get(&format!("{name}_sum")).copied().unwrap_or(0.0)
            - before.get(&format!("{name}_sum")).copied().unwrap_or(0.0);
        let ms = |us: Option<u64>| us.map(|u| u as f64 / 1000.0);
        ForwardDelay {
            packets: h.count,
            mean_ms: if h.count == 0 {
                0.0
            } else {
                sum_s * 1000.0 / h.count as f64
            },
            p50_ms_at_most: ms(h.quantile_bound_us(0.5)),
            p99_ms_at_most: ms(h.quantile_bound_us(0.99)),
        }
    }
}

/// The unlabelled samples of the relay's `/metrics`, by name, the buckets of its
/// histograms (named with their `le` label) and the per-worker samples (with their
/// `worker` label).
pub fn scrape(base: &str) -> Result<BTreeMap<String, f64>, LoadError> {
    let text = agent()
        .get(&format!("{base}/metrics"))
        .call()
        .map_err(|e| http_error(base, "GET /metrics", e))?
        .into_string()
        .map_err(|e| LoadError::NotAnswering(base.into(), e.to_string()))?;
    Ok(text
        .lines()
        .filter(|l| {
            !l.starts_with('#')
                && (!l.contains('{') || l.contains("_bucket{le=") || l.contains("{worker="))
        })
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect())
}

/// Sessions per media worker, by worker index.
pub(super) fn worker_sessions(m: &BTreeMap<String, f64>) -> Vec<u64> {
    let prefix = "classroom_relay_worker_sessions{worker=\"";
    let mut v: Vec<(usize, u64)> = m
        .range(prefix.to_string()..)
        .take_while(|(k, _)| k.starts_with(prefix))
        .filter_map(|(k, v)| {
            let i = k[prefix.len()..].trim_end_matches("\"}").parse().ok()?;
            Some((i, *v as u64))
        })
        .collect();
    v.sort_unstable();
    v.into_iter().map(|x| x.1).collect()
}

pub(super) fn metric(m: &BTreeMap<String, f64>, name: &str) -> u64 {
    m.get(&format!("classroom_relay_{name}"))
        .copied()
        .unwrap_or(0.0) as u64
}
