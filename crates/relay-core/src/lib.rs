//! The sans-IO heart of classroom-relay.
//!
//! A [`Relay`] holds every lesson: its teacher (the publisher of audio, camera and
//! optionally screen, with simulcast layers) and its classrooms (subscribers). It
//! decides, packet by packet, what each classroom receives, and rewrites numbering so
//! each classroom sees continuous streams across layer switches and teacher reconnects.
//!
//! # Contract
//!
//! - Feed events with [`Relay::handle_input`]. Every [`Input`] carries its `Instant`;
//!   the core never reads a clock, sleeps or touches a socket (enforced by
//!   `clippy.toml`), so the same inputs always give the same outputs.
//! - After each input, drain [`Relay::poll_output`] until it returns
//!   [`Output::Timeout`]; call `handle_input(Input::Timeout(t))` no later than that
//!   time. Other outputs are packets to forward ([`Output::Forward`]), keyframe
//!   requests for the teacher ([`Output::RequestKeyframe`]), sessions to close and
//!   floor changes to announce ([`Output::Floor`]).
//! - The floor (who may speak to the whole lesson) is changed with
//!   [`Relay::floor`], which answers at once with the new state or a refusal.
//! - Peer ids are chosen by the edge and never reused.
//!
//! # Policy in brief
//!
//! - Audio is forwarded as it arrives.
//! - A video slot forwards one layer of its bound track; a new layer (or a new
//!   teacher session) is switched to only on a keyframe of that layer, and the old
//!   layer keeps flowing until then, so a switch never freezes the picture.
//! - Keyframe requests are shared: at most one per teacher stream per
//!   [`RelayConfig::keyframe_interval`], later ones deferred, not dropped.

// Tests take one real Instant as the origin of their virtual clock; the library never does.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

mod adapt;
mod codec;
mod ids;
mod keyframe;
mod layers;
pub mod red;
mod relay;
mod rewrite;
mod warm;

pub use adapt::{allocate, AdaptConfig, Ladder, TrackRole};
pub use codec::{inspect, Codec, PayloadInfo, Vp8Info};
pub use ids::{Mid, PeerId, Rid, Tag};
pub use keyframe::KeyframeThrottle;
pub use layers::{LayerPref, RateMeter, PACKET_OVERHEAD_BYTES};
pub use relay::{
    Audience, FloorChange, FloorError, FloorState, Forward, Input, Kind, LessonStats, Output,
    PublishedTrack, Relay, RelayConfig, RtpIn, SlotSpec, SubscriberStats, TalkerStats, Totals,
};
pub use rewrite::{Rewriter, Rewritten, SourcePacket};
pub use warm::WarmTable;

#[cfg(test)]
mod tests;
