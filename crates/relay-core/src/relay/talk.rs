//! The two-way lesson: classrooms' talk-back sessions and the floor (which school
//! may speak to everyone). The floor's voice goes to the teacher's hearing session
//! and to every other classroom that has a second audio m-line, as one continuous
//! stream per receiver whichever school holds the floor. A classroom's small camera
//! picture, when it sends one, goes to the teacher's hearing session only: its
//! video m-lines show the talking classrooms' pictures in the order they joined.

use std::time::Instant;

use super::choose::choose_layers;
use super::{
    Audience, Effects, FloorChange, FloorError, FloorState, Lesson, Output, PublishedTrack, Relay,
    RelayConfig, RtpIn, Source,
};
use crate::codec;
use crate::ids::{Mid, PeerId};
use crate::keyframe::KeyframeThrottle;
use crate::layers::RateMeter;
use crate::rewrite::SourcePacket;
use crate::Kind;

/// A classroom's microphone (talk-back session).
#[derive(Debug)]
pub(super) struct Talker {
    pub(super) peer: PeerId,
    pub(super) school: String,
    /// The m-line whose voice is forwarded (its first audio track).
    audio: Option<Mid>,
    /// Its camera picture for the teacher (its first video track).
    video: Option<Mid>,
    /// Keyframe requests for its picture.
    keyframes: KeyframeThrottle,
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
            video: tracks.iter().find(|t| t.kind == Kind::Video).map(|t| t.mid),
            keyframes: KeyframeThrottle::default(),
            meter: RateMeter::default(),
            dropped: 0,
        });
        bind_pictures(l);
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

/// Show the talking classrooms' pictures on the teacher's hearing sessions: the
/// n-th video m-line shows the n-th talker with a camera. A slot whose picture
/// changes waits for a keyframe of the new one.
pub(super) fn bind_pictures(l: &mut Lesson) {
    let pictures: Vec<(PeerId, Mid)> = l
        .talkers
        .iter()
        .filter_map(|t| t.video.map(|m| (t.peer, m)))
        .collect();
    for s in l
        .subscribers
        .iter_mut()
        .filter(|s| s.audience == Audience::Teacher)
    {
        let video = s.slots.iter_mut().filter(|sl| sl.spec.kind == Kind::Video);
        for (k, slot) in video.enumerate() {
            let want = pictures.get(k).copied();
            if slot.bound != want {
                slot.bound = want;
                slot.waiting = None;
            }
        }
    }
}

/// Where talker `peer`'s picture is shown: (hearing session, its m-line).
pub(super) fn picture_shown_on(l: &Lesson, peer: PeerId) -> Vec<(PeerId, Mid)> {
    l.subscribers
        .iter()
        .filter(|s| s.audience == Audience::Teacher)
        .flat_map(|s| {
            s.slots
                .iter()
                .filter(move |sl| sl.bound.is_some_and(|(p, _)| p == peer))
                .map(move |sl| (s.peer, sl.spec.mid))
        })
        .collect()
}

/// The teacher's hearing session `sub` lost the picture on `mid`: ask its
/// classroom for a keyframe.
pub(super) fn picture_lost(
    l: &mut Lesson,
    (sub, mid): (PeerId, Mid),
    now: Instant,
    cfg: &RelayConfig,
    fx: &mut Effects,
) {
    let bound = l
        .subscribers
        .iter()
        .find(|s| s.peer == sub && s.audience == Audience::Teacher)
        .and_then(|s| s.slots.iter().find(|sl| sl.spec.mid == mid))
        .and_then(|sl| sl.bound);
    if let Some((peer, vmid)) = bound {
        if let Some(t) = l.talkers.iter_mut().find(|t| t.peer == peer) {
            ask_picture_keyframe(t, vmid, now, cfg, fx);
        }
    }
}

/// At most one keyframe request per classroom picture per `keyframe_retry`: the
/// picture's packets keep coming, and one that still waits asks again then.
fn ask_picture_keyframe(
    t: &mut Talker,
    mid: Mid,
    now: Instant,
    cfg: &RelayConfig,
    fx: &mut Effects,
) {
    if t.keyframes.request(now, cfg.keyframe_retry) {
        fx.totals.keyframe_requests_sent += 1;
        fx.out.push_back(Output::RequestKeyframe {
            publisher: t.peer,
            mid,
            rid: None,
        });
    }
}

/// A classroom's picture packet: to the teacher's hearing sessions showing it,
/// starting on a keyframe. It never goes to other classrooms.
fn picture_packet(
    l: &mut Lesson,
    now: Instant,
    peer: PeerId,
    rtp: RtpIn,
    cfg: &RelayConfig,
    fx: &mut Effects,
) {
    let info = codec::inspect(rtp.codec, &rtp.payload);
    let src = Source {
        peer,
        mid: rtp.mid,
        rid: None,
    };
    let sp = SourcePacket {
        seq: rtp.seq,
        ts: rtp.ts,
        vp8: info.vp8,
    };
    let mut wants_keyframe = false;
    for s in l
        .subscribers
        .iter_mut()
        .filter(|s| s.audience == Audience::Teacher)
    {
        for slot in s
            .slots
            .iter_mut()
            .filter(|sl| sl.bound == Some((peer, rtp.mid)))
        {
            // A new picture starts on a keyframe.
            wants_keyframe |= slot.current != Some(src) && !info.keyframe_start;
            let clock = rtp.codec.clock_rate();
            let Some((w, _)) = slot.follow(now, src, &sp, clock, info.keyframe_start) else {
                continue;
            };
            let to = (s.peer, slot.spec.mid, s.link.red_depth(now), None);
            fx.forward(now, &mut s.sent, to, peer, &rtp, w);
        }
    }
    let Some(t) = l.talkers.iter_mut().find(|t| t.peer == peer) else {
        return;
    };
    if info.keyframe_start {
        t.keyframes.keyframe_seen();
    } else if wants_keyframe {
        ask_picture_keyframe(t, rtp.mid, now, cfg, fx);
    }
}

/// A packet from talker `peer` of lesson `l`: its voice to everyone who hears the
/// floor while its school holds it, dropped (and counted) otherwise; its picture to
/// the teacher.
pub(super) fn talk_packet(
    l: &mut Lesson,
    now: Instant,
    peer: PeerId,
    rtp: RtpIn,
    cfg: &RelayConfig,
    fx: &mut Effects,
) {
    let Some(t) = l.talkers.iter_mut().find(|t| t.peer == peer) else {
        return;
    };
    if rtp.codec.is_video() {
        if t.video == Some(rtp.mid) {
            picture_packet(l, now, peer, rtp, cfg, fx);
        }
        return;
    }
    if t.audio != Some(rtp.mid) {
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
        // Another school's voice continues the same outgoing stream.
        let Some((w, _)) = slot.follow(now, src, &sp, rtp.codec.clock_rate(), true) else {
            continue;
        };
        let to = (s.peer, slot.spec.mid, s.link.red_depth(now), None);
        fx.forward(now, &mut s.sent, to, peer, &rtp, w);
    }
}
