//! Fuzz targets for everything in classroom-relay that parses outside input
//! (issue 14): SDP offers, datagrams as the edge sees them, VP8 and H.264 payload
//! inspection, RED, bearer tokens, the JSON configuration, scenario files and the
//! access-kinds file.
//!
//! Each target is a plain `pub fn <target>(data: &[u8])`. It panics only on a real
//! bug: besides "does not crash", every target asserts an invariant of what it
//! parsed (a round trip, an agreement with the parser the rest of the stack uses,
//! or a bound the code downstream relies on). The same functions run under
//! libFuzzer (`fuzz/libfuzzer`, see `fuzz/README.md`) and in the workspace's
//! tests (`fuzz/tests/smoke.rs`: every seed and regression file, then a bounded
//! seeded mutation loop).

mod edge;
mod files;
mod media;
mod sdp;

pub use edge::{edge_datagram, session_datagrams};
pub use files::{access_kinds, config, scenario, token};
pub use media::{h264, red, vp8};
pub use sdp::sdp_offer;

/// A fuzz target.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/corpus/<name>/` and `fuzz/regressions/<name>/`
/// name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("sdp_offer", sdp_offer),
    ("edge_datagram", edge_datagram),
    ("vp8", vp8),
    ("h264", h264),
    ("red", red),
    ("token", token),
    ("config", config),
    ("scenario", scenario),
    ("access_kinds", access_kinds),
];

/// Reads structured values off the front of a fuzz input; past the end it yields
/// zeros and empty slices, so every input means something.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub(crate) fn u8(&mut self) -> u8 {
        let (b, rest) = self
            .data
            .split_first()
            .map_or((0, &[][..]), |(b, r)| (*b, r));
        self.data = rest;
        b
    }

    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    pub(crate) fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub(crate) fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.data.split_at(n.min(self.data.len()));
        self.data = b;
        a
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}
