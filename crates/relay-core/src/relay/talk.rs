//! The two-way lesson: classrooms' talk-back sessions and the floor (which school
//! may speak to everyone). The floor's voice goes to the teacher's hearing session
//! and to every other classroom that has a second audio m-line, as one continuous
//! stream per receiver whichever school holds the floor.

use std::time::Instant;

use super::choose::choose_layers;
use super::{
    Audience, Effects, FloorChange, FloorError, FloorState, Forward, Lesson, Output,
    PublishedTrack, Relay, RtpIn, Source,
};
use crate::ids::{Mid, PeerId};
use crate::layers::RateMeter;
use crate::rewrite::{Rewriter, SourcePacket};
use crate::Kind;

/// A classroom's microphone (talk-back session).
#[derive(Debug)]
pub(super) struct Talker {
    pub(super) peer: PeerId,
    pub(super) school: String,
    /// The m-line whose voice is forwarded (its first audio track).
    audio: Option<Mid>,
    /// What its voice arrives at, held floor or not.
    pub(super) meter: RateMeter,
    /// Packets dropped because its school did not hold the floor.
    pub(super) dropped: u64,
}

impl FloorState {
    /// Apply `change` in `lesson`, where `present` tells whether a school has a
    /// session there. True when the state changed.
    fn apply(
        &mut self,
        lesson: &str,
        change: &FloorChange,
        present: impl Fn(&str) -> bool,
    ) -> Result<bool, FloorError> {
        let absent = |school: &str| FloorError::NotInLesson {
            lesson: lesson.to_string(),
            school: school.to_string(),
        };
        let before = self.clone();
        match change {
            FloorChange::Hand {
                school,
                raised: true,
            } => {
                if !present(school) {
                    return Err(absent(school));
                }
                if self.holder.as_deref() == Some(school) {
                    // Already speaking.
                } else if self.open {
                    self.give(school);
                } else if !self.hands.contains(school) {
                    self.hands.push(school.clone());
                }
            }
            FloorChange::Hand {
                school,
                raised: false,
            } => self.leave(school),
            FloorChange::Give(Some(school)) => {
                if !present(school) {
                    return Err(absent(school));
                }
                self.give(school);
            }
            FloorChange::Give(None) => self.holder = None,
            FloorChange::Open(on) => {
                self.open = *on;
                // The first hand still up gets the floor when it is free.
                if *on && self.holder.is_none() && !self.hands.is_empty() {
                    let first = self.hands.remove(0);
                    self.holder = Some(first);
                }
            }
        }
        Ok(*self != before)
    }

    fn give(&mut self, school: &str) {
        self.hands.retain(|h| h != school);
        self.holder = Some(school.to_string());
    }

    /// `school` lowers its hand and gives the floor up if it held it.
    fn leave(&mut self, school: &str) {
        self.hands.retain(|h| h != school);
        if self.holder.as_deref() == Some(school) {
            self.holder = None;
        }
    }
}

impl Lesson {
    /// Whether `school` has a watch or talk session here.
    fn has_school(&self, school: &str) -> bool {
        self.subscribers
            .iter()
            .any(|s| s.audience == Audience::Classroom && s.school == school)
            || self.talkers.iter().any(|t| t.school == school)
    }
}

/// The floor of `l` changed: tell the edge, and re-budget the links (the floor's
/// voice counts against every classroom that hears it).
fn floor_changed(
    cfg: &super::RelayConfig,
    name: &str,
    l: &mut Lesson,
    now: Instant,
    fx: &mut Effects,
) {
    fx.out.push_back(Output::Floor {
        lesson: name.to_string(),
        floor: l.floor.clone(),
    });
    choose_layers(cfg, l, now, fx);
}

impl Relay {
    /// Change the floor of `lesson`: raise or lower a hand, give or take the floor,
    /// open or close it. Returns the floor as it is after the change.
    pub fn floor(
        &mut self,
        now: Instant,
        lesson: &str,
        change: FloorChange,
    ) -> Result<FloorState, FloorError> {
        let Some(l) = self.lessons.get_mut(lesson) else {
            return Err(FloorError::NoLesson(lesson.to_string()));
        };
        let mut floor = std::mem::take(&mut l.floor);
        let r = floor.apply(lesson, &change, |s| l.has_school(s));
        l.floor = floor;
        if r? {
            floor_changed(&self.cfg, lesson, l, now, &mut self.fx);
        }
        Ok(l.floor.clone())
    }

    /// The floor of `lesson`, if anyone is in it.
    pub fn floor_state(&self, lesson: &str) -> Option<FloorState> {
        self.lessons.get(lesson).map(|l| l.floor.clone())
    }

    pub(super) fn talker_joined(
        &mut self,
        now: Instant,
        lesson: String,
        peer: PeerId,
        school: String,
        tracks: Vec<PublishedTrack>,
    ) {
        self.peer_lesson.insert(peer, lesson.clone());
        let l = self.lessons.entry(lesson).or_default();
        l.talkers.push(Talker {
            peer,
            school,
            audio: tracks.iter().find(|t| t.kind == Kind::Audio).map(|t| t.mid),
            meter: RateMeter::default(),
            dropped: 0,
        });
        self.membership_changed(now);
    }

    /// `peer` left lesson `name` (already out of its member lists) as a session of
    /// `school`: a school with no session left loses its hand and the floor.
    pub(super) fn school_may_have_left(&mut self, now: Instant, name: &str, school: &str) {
        let Some(l) = self.lessons.get_mut(name) else {
            return;
        };
        if l.has_school(school) {
            return;
        }
        let before = l.floor.clone();
        l.floor.leave(school);
        if l.floor != before {
            floor_changed(&self.cfg, name, l, now, &mut self.fx);
        }
    }
}

/// A packet from talker `peer` of lesson `l`: forwarded to everyone who hears the
/// floor while its school holds it, dropped (and counted) otherwise.
pub(super) fn talk_packet(
    l: &mut Lesson,
    now: Instant,
    peer: PeerId,
    rtp: RtpIn,
    fx: &mut Effects,
) {
    let Some(t) = l.talkers.iter_mut().find(|t| t.peer == peer) else {
        return;
    };
    // Only the voice is forwarded (a classroom's picture is not yet).
    if t.audio != Some(rtp.mid) || rtp.codec.is_video() {
        return;
    }
    t.meter.add(now, rtp.payload.len());
    if l.floor.holder.as_deref() != Some(t.school.as_str()) {
        t.dropped += 1;
        fx.totals.talk_dropped += 1;
        return;
    }
    let school = t.school.as_str();
    let src = Source {
        peer,
        mid: rtp.mid,
        rid: None,
    };
    let sp = SourcePacket {
        seq: rtp.seq,
        ts: rtp.ts,
        vp8: None,
    };
    for s in &mut l.subscribers {
        // A school never hears itself.
        if s.audience == Audience::Classroom && s.school == school {
            continue;
        }
        let Some(slot) = s
            .slots
            .iter_mut()
            .find(|sl| sl.class_feed && sl.spec.kind == Kind::Audio)
        else {
            continue;
        };
        let rw = slot
            .rewriter
            .get_or_insert_with(|| Rewriter::new(rtp.codec.clock_rate(), 1));
        // Another school's voice continues the same outgoing stream.
        let w = if slot.current == Some(src) {
            rw.rewrite(now, &sp)
        } else {
            slot.current = Some(src);
            Some(rw.switch_to(now, &sp))
        };
        let Some(w) = w else {
            continue;
        };
        s.sent.add(now, rtp.payload.len());
        fx.totals.packets_forwarded += 1;
        fx.totals.bytes_forwarded += rtp.payload.len() as u64;
        fx.out.push_back(Output::Forward(Forward {
            to: s.peer,
            mid: slot.spec.mid,
            from: peer,
            pt: rtp.pt,
            codec: rtp.codec,
            seq: w.seq,
            ts: w.ts,
            marker: rtp.marker,
            vp8_picture_id: None,
            vp8_tl0_pic_idx: None,
            payload: rtp.payload.clone(),
        }));
    }
}
