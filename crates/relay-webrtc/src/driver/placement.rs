//! Which media worker runs which lesson. A lesson's teacher and classrooms share one
//! worker (forwarding never crosses threads); a new lesson goes to the worker with
//! the fewest sessions. This is the driver's bookkeeping of threads, not lesson
//! state: who is in a lesson and who teaches it is the core's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use relay_core::PeerId;

/// Lessons and sessions per worker. A session counts from the moment a request
/// reserves its place (before negotiation) until the worker says it ended.
#[derive(Debug)]
pub(crate) struct Placement {
    /// Lesson -> (worker, sessions reserved or running there).
    lessons: HashMap<String, (usize, usize)>,
    /// Running session -> its lesson.
    peers: HashMap<PeerId, String>,
    /// Sessions per worker.
    load: Vec<usize>,
}

impl Placement {
    pub(crate) fn new(workers: usize) -> Placement {
        Placement {
            lessons: HashMap::new(),
            peers: HashMap::new(),
            load: vec![0; workers.max(1)],
        }
    }

    /// Reserve a place for one more session of `lesson`: on the worker that runs
    /// the lesson already, or on the least loaded one (the lowest index of equals).
    fn acquire(&mut self, lesson: &str) -> usize {
        let w = match self.lessons.get_mut(lesson) {
            Some((w, n)) => {
                *n += 1;
                *w
            }
            None => {
                let w = (0..self.load.len())
                    .min_by_key(|&i| (self.load[i], i))
                    .unwrap_or(0);
                self.lessons.insert(lesson.to_string(), (w, 1));
                w
            }
        };
        self.load[w] += 1;
        w
    }

    fn release(&mut self, lesson: &str) {
        let Some((w, n)) = self.lessons.get_mut(lesson) else {
            return;
        };
        let w = *w;
        *n -= 1;
        if *n == 0 {
            self.lessons.remove(lesson);
        }
        self.load[w] = self.load[w].saturating_sub(1);
    }

    /// The worker running `lesson`, if any session of it is there.
    pub(crate) fn worker_of_lesson(&self, lesson: &str) -> Option<usize> {
        self.lessons.get(lesson).map(|(w, _)| *w)
    }

    /// A session the worker ran has ended.
    pub(crate) fn ended(&mut self, peer: PeerId) {
        if let Some(lesson) = self.peers.remove(&peer) {
            self.release(&lesson);
        }
    }

    /// Sessions per worker.
    #[cfg(test)]
    pub(crate) fn load(&self) -> &[usize] {
        &self.load
    }
}

/// A reserved place: becomes a running session with [`Reservation::bind`], or gives
/// the place back when dropped (negotiation failed, the worker refused it, the
/// client went away mid-request).
#[derive(Debug)]
pub(crate) struct Reservation {
    placement: Arc<Mutex<Placement>>,
    lesson: String,
    worker: usize,
    bound: bool,
}

impl Reservation {
    pub(crate) fn new(placement: &Arc<Mutex<Placement>>, lesson: &str) -> Reservation {
        let worker = lock(placement).acquire(lesson);
        Reservation {
            placement: placement.clone(),
            lesson: lesson.to_string(),
            worker,
            bound: false,
        }
    }

    pub(crate) fn worker(&self) -> usize {
        self.worker
    }

    /// The session is running as `peer`; its place is given back when it ends.
    pub(crate) fn bind(mut self, peer: PeerId) {
        lock(&self.placement)
            .peers
            .insert(peer, std::mem::take(&mut self.lesson));
        self.bound = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.bound {
            lock(&self.placement).release(&self.lesson);
        }
    }
}

/// The table stays usable after a panic elsewhere: its updates are single steps.
pub(crate) fn lock(p: &Mutex<Placement>) -> std::sync::MutexGuard<'_, Placement> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lesson_stays_on_one_worker_and_new_lessons_go_to_the_least_loaded() {
        let p = Arc::new(Mutex::new(Placement::new(2)));
        let teacher_a = Reservation::new(&p, "a");
        assert_eq!(teacher_a.worker(), 0);
        teacher_a.bind(PeerId(1));
        let teacher_b = Reservation::new(&p, "b");
        assert_eq!(teacher_b.worker(), 1, "worker 0 has a session, 1 none");
        teacher_b.bind(PeerId(2));
        for peer in [3, 5, 7] {
            let r = Reservation::new(&p, "a");
            assert_eq!(r.worker(), 0, "a classroom joins its lesson's worker");
            r.bind(PeerId(peer));
        }
        assert_eq!(lock(&p).load(), &[4, 1]);
        let c = Reservation::new(&p, "c");
        assert_eq!(c.worker(), 1, "the least loaded worker");
        drop(c);
        assert_eq!(
            lock(&p).load(),
            &[4, 1],
            "a dropped reservation gives its place back"
        );
        for peer in [1, 3, 5, 7] {
            lock(&p).ended(PeerId(peer));
        }
        lock(&p).ended(PeerId(1));
        assert_eq!(lock(&p).load(), &[0, 1], "ended once, counted once");
        assert!(
            !lock(&p).lessons.contains_key("a"),
            "an empty lesson is forgotten"
        );
        assert_eq!(Reservation::new(&p, "a").worker(), 0, "and placed afresh");
    }
}
