//! A session's end: closed, failed, timed out, replaced, or crashed inside str0m
//! (a panic contained to that one session), and the bookkeeping every end shares.

use std::time::Instant;

use relay_core::{Input as CoreInput, PeerId};
use str0m::Output;
use tracing::{error, info};

use super::{Datagram, Edge, Role};
use crate::error::EdgeError;
use crate::guard::contain;
use crate::peer::{negotiate, Negotiated};

impl Edge {
    /// Negotiate an offer here, on the edge's own thread (the simulator and tests).
    pub(super) fn negotiate(
        &mut self,
        now: Instant,
        role: Role,
        offer: &str,
        bwe_initial: Option<u64>,
    ) -> Result<Negotiated, EdgeError> {
        negotiate(now, role, offer, &self.locals, self.codecs, bwe_initial)
    }

    /// The outcome of a negotiation, wherever it ran: a contained str0m panic is
    /// counted and logged.
    pub(super) fn negotiated(
        &mut self,
        role: Role,
        r: Result<Negotiated, EdgeError>,
    ) -> Result<Negotiated, EdgeError> {
        if let Err(EdgeError::Contained(panic)) = &r {
            self.contained_panics += 1;
            error!(
                ?role,
                "str0m panicked while negotiating an offer; refused it: {panic}"
            );
        }
        r
    }

    /// A str0m call on session `id` panicked: drop the session without touching its
    /// `Rtc` again, and let every other session go on.
    pub(super) fn contained(&mut self, now: Instant, id: PeerId, what: &str, panic: String) {
        self.contained_panics += 1;
        error!(peer = %id, "str0m panicked in {what}; closing this session only: {panic}");
        if let Some(p) = self.peers.remove(&id) {
            // Its state is unknown: even dropping it may panic again.
            let _ = contain(move || drop(p.rtc));
            self.forget_peer(now, id, p.next_timeout, true);
        }
    }

    /// Close session `id` and forget it; `tell_core`: the core still counts it in
    /// (false when the core itself asked for the close).
    pub(super) fn remove_peer(&mut self, now: Instant, id: PeerId, tell_core: bool) -> bool {
        let Some(mut p) = self.peers.remove(&id) else {
            return false;
        };
        let out = &mut self.out;
        let flushed = contain(|| {
            p.rtc.disconnect();
            // Flush what disconnecting produced (DTLS close_notify) while we still can.
            while let Ok(o) = p.rtc.poll_output() {
                match o {
                    Output::Transmit(t) => out.push_back(Datagram {
                        source: t.source,
                        destination: t.destination,
                        contents: t.contents.into(),
                        media_received: None,
                    }),
                    Output::Timeout(_) => break,
                    Output::Event(_) => {}
                }
            }
        });
        if let Err(panic) = flushed {
            self.contained_panics += 1;
            error!(peer = %id, "str0m panicked while closing this session: {panic}");
        }
        self.forget_peer(now, id, p.next_timeout, tell_core);
        info!(peer = %id, "session ended");
        true
    }

    /// Everything the edge keeps about a removed session, and the core's view of it.
    fn forget_peer(&mut self, now: Instant, id: PeerId, next_timeout: Instant, tell_core: bool) {
        self.ended.push(id);
        self.timers.remove(&(next_timeout, id));
        self.by_remote.retain(|_, v| *v != id);
        if tell_core {
            self.core_in
                .push_back(CoreInput::PeerLeft { now, peer: id });
        }
    }
}
