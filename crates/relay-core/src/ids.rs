//! Small identifiers used on the hot path: copyable, no allocation per packet.

use std::fmt;

/// A peer connection (one teacher publish session or one classroom watch session).
/// Assigned by the edge; unique for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// A short ASCII tag of at most 16 bytes: SDP `mid` values and simulcast `rid`s.
///
/// RFC 8843 and RFC 8851 allow longer values, but every browser and OBS use a few
/// characters; longer ones are truncated, which only matters if two differ after
/// byte 16.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    len: u8,
    bytes: [u8; 16],
}

impl Tag {
    /// Make a tag from a string, truncated to 16 bytes.
    pub fn new(s: &str) -> Tag {
        let mut bytes = [0u8; 16];
        let n = s.len().min(16);
        bytes[..n].copy_from_slice(&s.as_bytes()[..n]);
        Tag {
            len: n as u8,
            bytes,
        }
    }

    /// The tag as a string slice.
    pub fn as_str(&self) -> &str {
        // Built from a &str and cut at a byte boundary; fall back to "" if the cut split
        // a multibyte character.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl From<&str> for Tag {
    fn from(s: &str) -> Self {
        Tag::new(s)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SDP media identifier (RFC 8843).
pub type Mid = Tag;
/// Simulcast RTP stream identifier (RFC 8851).
pub type Rid = Tag;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_round_trips_and_truncates() {
        assert_eq!(Tag::new("h").as_str(), "h");
        assert_eq!(Tag::new("0123456789abcdefXYZ").as_str(), "0123456789abcdef");
        assert_ne!(Tag::new("a"), Tag::new("b"));
    }
}
