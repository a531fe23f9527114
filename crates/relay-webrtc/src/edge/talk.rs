//! The two-way lesson at the edge: a classroom's talk-back session (its microphone,
//! published like a teacher's tracks) and the floor, which the core decides.

use std::time::Instant;

use relay_core::{FloorChange, FloorError, FloorState, Input as CoreInput, Kind};
use tracing::info;

use super::{Edge, Session};
use crate::error::EdgeError;
use crate::peer::{Negotiated, Role};

impl Edge {
    /// A classroom of `school` publishes its microphone to `lesson`; its voice goes
    /// out only while the school holds the floor.
    pub fn talk(
        &mut self,
        now: Instant,
        lesson: &str,
        school: &str,
        offer: &str,
    ) -> Result<Session, EdgeError> {
        let n = self.negotiate(now, Role::Publisher, offer, None);
        self.talk_negotiated(now, lesson, school, n)
    }

    /// [`Edge::talk`] with the offer negotiated elsewhere.
    pub(crate) fn talk_negotiated(
        &mut self,
        now: Instant,
        lesson: &str,
        school: &str,
        n: Result<Negotiated, EdgeError>,
    ) -> Result<Session, EdgeError> {
        let n = self.negotiated(Role::Publisher, n)?;
        if !n.tracks.iter().any(|t| t.kind == Kind::Audio) {
            return Err(EdgeError::NothingToForward(
                "a talk-back offer must send audio (Opus, sendonly): the classroom's microphone"
                    .into(),
            ));
        }
        let peer = self.add_peer(now, Role::Publisher, n.rtc, None);
        info!(lesson, school, %peer, "classroom microphone ready");
        self.core_in.push_back(CoreInput::TalkerJoined {
            now,
            lesson: lesson.to_string(),
            peer,
            school: school.to_string(),
            tracks: n.tracks,
        });
        self.settle(now);
        Ok(Session {
            peer,
            answer: n.answer,
        })
    }

    /// Change the floor of `lesson` (see [`relay_core::Relay::floor`]).
    pub fn floor(
        &mut self,
        now: Instant,
        lesson: &str,
        change: FloorChange,
    ) -> Result<FloorState, FloorError> {
        let r = self.relay.floor(now, lesson, change);
        self.settle(now);
        r
    }

    /// Floor changes since the last call, in order: (lesson, floor).
    pub fn poll_floors(&mut self) -> Vec<(String, FloorState)> {
        std::mem::take(&mut self.floors)
    }
}
