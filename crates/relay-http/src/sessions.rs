//! The HTTP layer's sessions: which WHIP/WHEP resource is which edge session, who
//! opened it (lesson, school, teacher token, client address), and the limits on
//! opening more. One owner for this state; the edge tells it when a session ends
//! (see [`Sessions::ended`]), it never asks.
//!
//! Admission is two steps so that concurrent requests cannot overshoot a limit: a
//! request [`Sessions::admit`]s (counted from then on), then either
//! [`Sessions::confirm`]s with the edge's session or [`Sessions::release`]s.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use relay_config::Limits;
use relay_core::PeerId;

/// Who asks for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub lesson: String,
    /// The classroom token's school.
    pub school: Option<String>,
    /// The teacher token's id.
    pub teacher: Option<String>,
    pub address: IpAddr,
}

/// A refused request: the status, a label for `/metrics`, one line for the client,
/// and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: &'static str,
    pub message: String,
    pub retry_after: Duration,
}

/// A counted request that has no edge session yet.
#[derive(Debug)]
#[must_use = "confirm or release it"]
pub struct Ticket(u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Slot {
    Pending(u64),
    Peer(PeerId),
}

/// A token bucket: `rate` per second, holding at most twice that.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn level(&self, now: Instant, rate: u32) -> f64 {
        let cap = f64::from(rate) * 2.0;
        (self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * f64::from(rate))
            .min(cap)
    }
}

/// Buckets kept before full (idle) ones are forgotten.
const BUCKETS_KEPT: usize = 4096;
/// Sessions ended before their request confirmed them (a race), remembered this many.
const EARLY_ENDS_KEPT: usize = 1024;

#[derive(Default)]
struct Counts {
    lessons: HashMap<String, u32>,
    schools: HashMap<String, u32>,
    teachers: HashMap<String, u32>,
    addresses: HashMap<IpAddr, u32>,
}

fn add<K: std::hash::Hash + Eq + Clone>(m: &mut HashMap<K, u32>, k: &K, up: bool) {
    if up {
        *m.entry(k.clone()).or_default() += 1;
    } else if let Some(n) = m.get_mut(k) {
        *n -= 1;
        if *n == 0 {
            m.remove(k);
        }
    }
}

impl Counts {
    fn apply(&mut self, w: &Who, up: bool) {
        add(&mut self.lessons, &w.lesson, up);
        if let Some(s) = &w.school {
            add(&mut self.schools, s, up);
        }
        if let Some(t) = &w.teacher {
            add(&mut self.teachers, t, up);
        }
        add(&mut self.addresses, &w.address, up);
    }
}

/// A WHIP/WHEP resource (the `Location` of a session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub peer: PeerId,
    pub lesson: String,
}

/// The HTTP layer's session table and limits.
pub struct Sessions {
    limits: Limits,
    open: HashMap<Slot, Who>,
    counts: Counts,
    resources: HashMap<String, Resource>,
    by_peer: HashMap<PeerId, String>,
    buckets: HashMap<String, Bucket>,
    early_ends: HashSet<PeerId>,
    next_ticket: u64,
    draining: bool,
    refused: BTreeMap<&'static str, u64>,
}

impl Sessions {
    pub fn new(limits: Limits) -> Sessions {
        Sessions {
            limits,
            open: HashMap::new(),
            counts: Counts::default(),
            resources: HashMap::new(),
            by_peer: HashMap::new(),
            buckets: HashMap::new(),
            early_ends: HashSet::new(),
            next_ticket: 1,
            draining: false,
            refused: BTreeMap::new(),
        }
    }

    /// Refuse every new session from now on (the relay is stopping).
    pub fn start_draining(&mut self) {
        self.draining = true;
    }

    pub fn draining(&self) -> bool {
        self.draining
    }

    /// Sessions open or being opened.
    pub fn open(&self) -> usize {
        self.open.len()
    }

    /// Teacher sessions open or being opened: lessons in progress.
    pub fn open_teachers(&self) -> usize {
        self.open.values().filter(|w| w.teacher.is_some()).count()
    }

    /// Whether a new session could be admitted at all (for `/readyz`).
    pub fn accepting(&self) -> bool {
        !self.draining && self.open.len() < self.limits.sessions as usize
    }

    /// Refusals so far, by reason.
    pub fn refused(&self) -> &BTreeMap<&'static str, u64> {
        &self.refused
    }

    /// Count a refusal made elsewhere (a bad offer, a bad token) under `reason`.
    pub fn count_refusal(&mut self, reason: &'static str) {
        *self.refused.entry(reason).or_default() += 1;
    }

    /// Admit a request for a new session, or say why not.
    pub fn admit(&mut self, now: Instant, who: &Who) -> Result<Ticket, Refusal> {
        match self.check(now, who) {
            Ok(keys) => {
                for (key, rate) in keys {
                    let b = self.buckets.entry(key).or_insert(Bucket {
                        tokens: f64::from(rate) * 2.0,
                        at: now,
                    });
                    *b = Bucket {
                        tokens: b.level(now, rate) - 1.0,
                        at: now,
                    };
                }
                self.prune_buckets(now);
                let t = self.next_ticket;
                self.next_ticket += 1;
                self.open.insert(Slot::Pending(t), who.clone());
                self.counts.apply(who, true);
                Ok(Ticket(t))
            }
            Err(r) => {
                self.count_refusal(r.reason);
                Err(r)
            }
        }
    }

    /// The checks, in order: the relay's own state first (503), then the client's
    /// shares (429). Returns the rate buckets to charge.
    fn check(&self, now: Instant, who: &Who) -> Result<Vec<(String, u32)>, Refusal> {
        let l = &self.limits;
        let full = |reason, message: String| Refusal {
            status: StatusCode::SERVICE_UNAVAILABLE,
            reason,
            message,
            retry_after: Duration::from_secs(5),
        };
        let over = |reason, message: String, retry: u64| Refusal {
            status: StatusCode::TOO_MANY_REQUESTS,
            reason,
            message,
            retry_after: Duration::from_secs(retry),
        };
        if self.draining {
            return Err(Refusal {
                retry_after: Duration::from_secs(10),
                ..full(
                    "draining",
                    "the relay is shutting down and takes no new sessions; try again shortly (or another relay)".into(),
                )
            });
        }
        if self.open.len() >= l.sessions as usize {
            return Err(full(
                "relay_sessions",
                format!(
                    "the relay is full ({} sessions, limits.sessions)",
                    l.sessions
                ),
            ));
        }
        if !self.counts.lessons.contains_key(&who.lesson)
            && self.counts.lessons.len() >= l.lessons as usize
        {
            return Err(full(
                "relay_lessons",
                format!(
                    "the relay already serves {} lessons (limits.lessons)",
                    l.lessons
                ),
            ));
        }
        let mut keys = vec![("relay".to_string(), l.new_sessions_per_second)];
        keys.push((format!("a:{}", who.address), l.address_new_per_second));
        let n = |m: &HashMap<String, u32>, k: &str| m.get(k).copied().unwrap_or(0);
        if self
            .counts
            .addresses
            .get(&who.address)
            .copied()
            .unwrap_or(0)
            >= l.address_sessions
        {
            return Err(over(
                "address_sessions",
                format!(
                    "{} already has {} sessions open (limits.address_sessions)",
                    who.address, l.address_sessions
                ),
                5,
            ));
        }
        if let Some(s) = &who.school {
            if n(&self.counts.schools, s) >= l.school_sessions {
                return Err(over(
                    "school_sessions",
                    format!(
                        "school {s:?} already has {} classroom sessions open (limits.school_sessions); close one first",
                        l.school_sessions
                    ),
                    5,
                ));
            }
            keys.push((format!("s:{s}"), l.school_new_per_second));
        }
        if let Some(t) = &who.teacher {
            if n(&self.counts.teachers, t) >= l.teacher_sessions {
                return Err(over(
                    "teacher_sessions",
                    format!(
                        "this teacher token already has {} sessions open (limits.teacher_sessions)",
                        l.teacher_sessions
                    ),
                    5,
                ));
            }
            keys.push((format!("t:{t}"), l.teacher_new_per_second));
        }
        for (key, rate) in &keys {
            let level = self
                .buckets
                .get(key)
                .map_or(f64::from(*rate) * 2.0, |b| b.level(now, *rate));
            if level < 1.0 {
                let (reason, message) = match key.split_once(':').map_or("relay", |x| x.0) {
                    "relay" => {
                        return Err(Refusal {
                            retry_after: Duration::from_secs(1),
                            ..full(
                                "relay_rate",
                                format!("the relay is taking {rate} new sessions a second (limits.new_sessions_per_second); try again in a second"),
                            )
                        })
                    }
                    "a" => ("address_rate", format!("too many new sessions from {} (limits.address_new_per_second: {rate})", who.address)),
                    "s" => ("school_rate", format!("too many new sessions for this school (limits.school_new_per_second: {rate})")),
                    _ => ("teacher_rate", format!("too many new sessions for this teacher token (limits.teacher_new_per_second: {rate})")),
                };
                return Err(over(reason, message, 1));
            }
        }
        Ok(keys)
    }

    fn prune_buckets(&mut self, now: Instant) {
        if self.buckets.len() <= BUCKETS_KEPT {
            return;
        }
        let rate_of = |k: &str, l: &Limits| match k.split_once(':').map_or("relay", |x| x.0) {
            "relay" => l.new_sessions_per_second,
            "a" => l.address_new_per_second,
            "s" => l.school_new_per_second,
            _ => l.teacher_new_per_second,
        };
        let limits = self.limits.clone();
        self.buckets.retain(|k, b| {
            let rate = rate_of(k, &limits);
            b.level(now, rate) < f64::from(rate) * 2.0
        });
    }

    /// The edge opened `peer` for `ticket`, served at resource `id`.
    pub fn confirm(&mut self, ticket: Ticket, peer: PeerId, id: String) {
        let Some(who) = self.open.remove(&Slot::Pending(ticket.0)) else {
            return;
        };
        if self.early_ends.remove(&peer) {
            self.counts.apply(&who, false);
            return;
        }
        self.resources.insert(
            id.clone(),
            Resource {
                peer,
                lesson: who.lesson.clone(),
            },
        );
        self.by_peer.insert(peer, id);
        self.open.insert(Slot::Peer(peer), who);
    }

    /// The request behind `ticket` got no session (the edge refused its offer).
    pub fn release(&mut self, ticket: Ticket) {
        if let Some(who) = self.open.remove(&Slot::Pending(ticket.0)) {
            self.counts.apply(&who, false);
        }
    }

    /// The edge says `peer` ended.
    pub fn ended(&mut self, peer: PeerId) {
        match self.open.remove(&Slot::Peer(peer)) {
            Some(who) => {
                self.counts.apply(&who, false);
                if let Some(id) = self.by_peer.remove(&peer) {
                    self.resources.remove(&id);
                }
            }
            None => {
                // Ended before its request confirmed it.
                if self.early_ends.len() >= EARLY_ENDS_KEPT {
                    self.early_ends.clear();
                }
                self.early_ends.insert(peer);
            }
        }
    }

    /// The session behind a resource id, if it is still open.
    pub fn resource(&self, id: &str) -> Option<&Resource> {
        self.resources.get(id)
    }
}

#[cfg(test)]
#[path = "sessions_tests.rs"]
mod tests;
