//! The WebRTC edge of classroom-relay.
//!
//! One str0m [`Rtc`](str0m::Rtc) per session (teacher publish or classroom watch), all
//! multiplexed on shared UDP sockets and demultiplexed with `Rtc::accepts`. str0m
//! events become [`relay_core`] inputs; core outputs become RTP writes.
//!
//! - [`Edge`]: the part without IO (datagrams and time in, datagrams out).
//! - [`spawn`]/[`Handle`]: the tokio driver (N media workers, each with its own
//!   sockets, sessions and lessons) and the handle the HTTP layer uses.

pub mod delay;
mod driver;
mod edge;
mod error;
mod guard;
pub mod offer_check;
mod peer;
pub mod state;

pub use driver::{spawn, Handle, MediaConfig};
pub use edge::{Datagram, Edge, EdgeStats, Session, WorkerLoad};
pub use error::EdgeError;
pub use offer_check::check_offer;
pub use peer::{Codecs, Role};

/// Install the process-wide crypto provider str0m uses (aws-lc-rs). Call once at
/// start-up, before creating sessions; later calls do nothing.
pub fn init_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}
