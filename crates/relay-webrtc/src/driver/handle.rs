//! [`Handle`]: how the HTTP layer talks to the media workers. It places each lesson
//! on one worker, sends each request to the worker that runs the lesson or session,
//! and merges what all workers report.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use relay_core::{Audience, FloorChange, FloorError, FloorState, LayerPref, PeerId};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::placement::{self, Reservation};
use super::worker::{Command, Shared};
use crate::edge::{start_bps, worker_of, EdgeStats, Session};
use crate::error::EdgeError;
use crate::peer::{negotiate, Codecs, Negotiated, Role};

/// One worker as the handle sees it.
#[derive(Clone)]
pub(super) struct WorkerLink {
    pub(super) tx: mpsc::Sender<Command>,
    /// The addresses its sessions offer as ICE candidates.
    pub(super) locals: Vec<SocketAddr>,
}

/// Talks to the running media workers. Cheap to clone.
#[derive(Clone)]
pub struct Handle {
    pub(super) workers: Vec<WorkerLink>,
    /// Every worker's ICE candidate addresses (with the real ports), worker by worker.
    pub local_addrs: Vec<SocketAddr>,
    pub(super) codecs: Codecs,
    /// Link adaptation on, and where a school never seen starts.
    pub(super) adapt: (bool, u64),
    pub(super) shared: Arc<Shared>,
    /// True while every media worker runs.
    pub(super) running: watch::Receiver<bool>,
    pub(super) ended: Arc<std::sync::Mutex<Option<mpsc::UnboundedReceiver<PeerId>>>>,
}

impl Handle {
    /// Whether every media worker is running (false once one stopped or died).
    pub fn media_running(&self) -> bool {
        *self.running.borrow()
    }

    /// Resolves when a media worker has stopped, for whatever reason.
    pub async fn media_stopped(&self) {
        let mut rx = self.running.clone();
        let _ = rx.wait_for(|running| !*running).await;
    }

    /// The stream of ended sessions (closed, failed, timed out, replaced, crashed):
    /// the first caller gets it, later ones `None`.
    pub fn take_ended(&self) -> Option<mpsc::UnboundedReceiver<PeerId>> {
        self.ended.lock().ok()?.take()
    }

    /// How many media workers run.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    async fn ask<T>(
        &self,
        worker: usize,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, EdgeError> {
        let (reply, rx) = oneshot::channel();
        self.workers[worker]
            .tx
            .send(make(reply))
            .await
            .map_err(|_| EdgeError::Stopped)?;
        rx.await.map_err(|_| EdgeError::Stopped)
    }

    /// Negotiate an offer on the runtime's blocking pool for `worker`: building a
    /// session (its DTLS certificate, the SDP answer) takes milliseconds, and on a
    /// media worker every lesson it runs would wait for it.
    async fn negotiate(
        &self,
        worker: usize,
        role: Role,
        offer: String,
        bwe_initial: Option<u64>,
    ) -> Result<Negotiated, EdgeError> {
        let locals = self.workers[worker].locals.clone();
        let codecs = self.codecs;
        tokio::task::spawn_blocking(move || {
            negotiate(Instant::now(), role, &offer, &locals, codecs, bwe_initial)
        })
        .await
        .unwrap_or_else(|e| Err(EdgeError::Contained(e.to_string())))
    }

    /// Publish a teacher's offer; see [`crate::Edge::publish`].
    pub async fn publish(
        &self,
        lesson: &str,
        token_session: &str,
        offer: String,
    ) -> Result<Session, EdgeError> {
        let place = Reservation::new(&self.shared.placement, lesson);
        let w = place.worker();
        self.ask(w, |reply| Command::PublishCheck {
            lesson: lesson.into(),
            token_session: token_session.into(),
            reply,
        })
        .await??;
        let negotiated = Box::new(self.negotiate(w, Role::Publisher, offer, None).await);
        self.ask(w, |reply| Command::Publish {
            lesson: lesson.into(),
            token_session: token_session.into(),
            negotiated,
            place,
            reply,
        })
        .await?
    }

    /// Subscribe a classroom, or the teacher's hearing session (`audience`); see
    /// [`crate::Edge::subscribe`].
    pub async fn subscribe(
        &self,
        lesson: &str,
        school: &str,
        (audience, layer): (Audience, Option<LayerPref>),
        offer: String,
    ) -> Result<Session, EdgeError> {
        let place = Reservation::new(&self.shared.placement, lesson);
        let w = place.worker();
        // The teacher's hearing session carries voice only: no estimator.
        let initial_bps = match audience {
            Audience::Classroom => {
                start_bps(&self.shared.warm(), school, self.adapt.0, self.adapt.1)
            }
            Audience::Teacher => None,
        };
        let negotiated = Box::new(
            self.negotiate(w, Role::Subscriber, offer, initial_bps)
                .await,
        );
        self.ask(w, |reply| Command::Subscribe {
            lesson: lesson.into(),
            school: school.into(),
            to: (audience, layer),
            negotiated,
            initial_bps,
            place,
            reply,
        })
        .await?
    }

    /// A classroom's microphone; see [`crate::Edge::talk`].
    pub async fn talk(
        &self,
        lesson: &str,
        school: &str,
        offer: String,
    ) -> Result<Session, EdgeError> {
        let place = Reservation::new(&self.shared.placement, lesson);
        let w = place.worker();
        let negotiated = Box::new(self.negotiate(w, Role::Publisher, offer, None).await);
        self.ask(w, |reply| Command::Talk {
            lesson: lesson.into(),
            school: school.into(),
            negotiated,
            place,
            reply,
        })
        .await?
    }

    /// Change the floor of `lesson`; see [`relay_core::Relay::floor`].
    pub async fn floor(
        &self,
        lesson: &str,
        change: FloorChange,
    ) -> Result<Result<FloorState, FloorError>, EdgeError> {
        let placed = placement::lock(&self.shared.placement).worker_of_lesson(lesson);
        let Some(w) = placed else {
            return Ok(Err(FloorError::NoLesson(lesson.to_string())));
        };
        self.ask(w, |reply| Command::Floor {
            lesson: lesson.into(),
            change,
            reply,
        })
        .await
    }

    /// Every lesson's floor changes from now on: (lesson, floor).
    pub fn floor_changes(&self) -> broadcast::Receiver<(String, FloorState)> {
        self.shared.floors.subscribe()
    }

    fn worker_of(&self, peer: PeerId) -> usize {
        worker_of(peer, self.workers.len())
    }

    /// End a session; false if it was already gone.
    pub async fn close(&self, peer: PeerId) -> Result<bool, EdgeError> {
        self.ask(self.worker_of(peer), |reply| Command::Close { peer, reply })
            .await
    }

    /// Change a classroom's layer; false if the session is gone.
    pub async fn set_layer(&self, peer: PeerId, layer: LayerPref) -> Result<bool, EdgeError> {
        self.ask(self.worker_of(peer), |reply| Command::SetLayer {
            peer,
            layer,
            reply,
        })
        .await
    }

    /// How many sessions are open.
    pub async fn session_count(&self) -> Result<usize, EdgeError> {
        let mut n = 0;
        for w in 0..self.workers.len() {
            n += self.ask(w, |reply| Command::Count { reply }).await?;
        }
        Ok(n)
    }

    /// Write the warm-start state file now (at shutdown).
    pub async fn save_state(&self) {
        for w in 0..self.workers.len() {
            let _ = self.ask(w, |reply| Command::SaveState { reply }).await;
        }
    }

    /// A snapshot for metrics, every worker's merged (`workers` lists each).
    pub async fn stats(&self) -> Result<EdgeStats, EdgeError> {
        let mut all: Option<EdgeStats> = None;
        for w in 0..self.workers.len() {
            let s = self.ask(w, |reply| Command::Stats { reply }).await?;
            match &mut all {
                Some(a) => a.merge(s),
                None => all = Some(s),
            }
        }
        all.ok_or(EdgeError::Stopped)
    }

    /// Test hook: crash worker `w` as a bug escaping containment would.
    #[cfg(test)]
    pub(super) async fn crash(&self, w: usize) {
        let _ = self.workers[w].tx.send(Command::Crash).await;
    }
}
