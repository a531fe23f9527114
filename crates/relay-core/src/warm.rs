//! Warm start: what each school's link sustained in past lessons, so that its next
//! lesson starts near there instead of ramping up from a low default.
//!
//! Only estimates from classrooms past their first [`RAMP`] count (the estimator's
//! start-up ramp says nothing of the link), smoothed so that one probe spike or one
//! bad minute does not decide the next lesson. A school never seen starts at the
//! configured default and probes up.

use std::collections::BTreeMap;
use std::time::Duration;

/// Estimates from the first seconds of a classroom are not remembered.
pub const RAMP: Duration = Duration::from_secs(10);
/// How often every classroom's current estimate is observed.
pub const OBSERVE_EVERY: Duration = Duration::from_secs(1);
/// Weight of a new estimate in the remembered value (observed once a second: the
/// remembered value follows a change over about 20 s).
const ALPHA: f64 = 0.05;
/// A warm start begins this far below what was remembered: links vary from day to
/// day and starting too high costs a freeze, starting a bit low only a few seconds.
pub const START_FRACTION: f64 = 0.8;

/// Observations kept for [`WarmTable::take_observations`] between two calls (a
/// worker hands them on at least every 30 s; a few per second per classroom).
const MAX_PENDING: usize = 100_000;

/// Remembered sustained estimate per school (bit/s per classroom).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WarmTable {
    schools: BTreeMap<String, u64>,
    changed: bool,
    /// Estimates observed since the last [`WarmTable::take_observations`], in order
    /// (at most [`MAX_PENDING`]).
    observed: Vec<(String, u64)>,
}

impl WarmTable {
    pub fn from_entries(entries: impl IntoIterator<Item = (String, u64)>) -> WarmTable {
        WarmTable {
            schools: entries.into_iter().collect(),
            changed: false,
            observed: Vec::new(),
        }
    }

    /// Fold in one estimate towards a classroom of `school` (already past the ramp).
    pub fn observe(&mut self, school: &str, bps: u64) {
        let v = match self.schools.get(school) {
            Some(&old) => (old as f64 * (1.0 - ALPHA) + bps as f64 * ALPHA) as u64,
            None => bps,
        };
        self.schools.insert(school.to_string(), v);
        self.changed = true;
        if self.observed.len() < MAX_PENDING {
            self.observed.push((school.to_string(), bps));
        }
    }

    /// The estimates observed here since the last call, in order, to observe again
    /// on another table: each media worker observes its own lessons, and one shared
    /// table, which every worker's observations reach, is saved.
    pub fn take_observations(&mut self) -> Vec<(String, u64)> {
        std::mem::take(&mut self.observed)
    }

    /// Where a new classroom of `school` should start, if the school is known.
    pub fn start_for(&self, school: &str) -> Option<u64> {
        self.schools
            .get(school)
            .map(|&b| (b as f64 * START_FRACTION) as u64)
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, u64)> {
        self.schools.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Whether something changed since the last call (for saving).
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_smoothly_and_starts_below() {
        let mut w = WarmTable::default();
        assert_eq!(w.start_for("a"), None);
        w.observe("a", 2_000_000);
        assert_eq!(w.start_for("a"), Some(1_600_000));
        // One spike moves it a little only.
        w.observe("a", 10_000_000);
        let v = w.entries().next().unwrap().1;
        assert!(v > 2_000_000 && v < 2_500_000, "{v}");
        // A sustained change wins in the end.
        for _ in 0..200 {
            w.observe("a", 700_000);
        }
        assert!(w.start_for("a").unwrap() < 600_000);
        assert!(w.take_changed());
        assert!(!w.take_changed());
        // Another table observing the same estimates in the same order ends the same.
        let seen = w.take_observations();
        assert_eq!(seen.len(), 202);
        assert!(w.take_observations().is_empty(), "taken already");
        let mut shared = WarmTable::default();
        for (k, v) in seen {
            shared.observe(&k, v);
        }
        assert_eq!(shared.start_for("a"), w.start_for("a"));
        let again = WarmTable::from_entries(w.entries().map(|(k, v)| (k.to_string(), v)));
        assert_eq!(again.start_for("a"), w.start_for("a"));
    }
}
