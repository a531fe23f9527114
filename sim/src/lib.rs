//! Virtual-time simulation of classroom-relay: the relay's real edge and core,
//! str0m peers for the teacher and the classrooms, and emulated school links.
//!
//! - [`world`]: the event loop on a virtual clock.
//! - [`peer`]: the teacher (Opus + 3-layer VP8 simulcast) and classrooms; [`vp8`]:
//!   the payloads they exchange.
//! - [`metrics`]: freezes, layers, audio loss, and how sending followed capacity.
//! - [`scenario`]: the link-adaptation scenarios and their figures.
//! - [`population`]: the documented school links and the assumed access kinds.
//! - [`replay`]: replay mode, lesson by lesson; [`report`]: its outputs.
//! - [`shape`]: a real-time shaping proxy that puts a real browser behind a
//!   replayed school's links (to calibrate the simulator against it).

pub mod janus;
pub mod link;
pub mod load;
pub mod metrics;
pub mod peer;
pub mod population;
pub mod replay;
pub mod report;
pub mod scenario;
pub mod shape;
pub mod voice;
pub mod vp8;
pub mod world;
