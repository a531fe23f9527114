//! Errors of the WebRTC edge.

/// Why a publish or watch request could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdgeError {
    /// The SDP offer could not be parsed or negotiated.
    #[error("unusable SDP offer: {0}")]
    BadSdp(String),
    /// The offer parsed but carries nothing the relay can forward.
    #[error("{0}")]
    NothingToForward(String),
    /// str0m panicked on this offer; the panic was contained and nothing else was
    /// affected.
    #[error("the relay's WebRTC stack could not negotiate this offer (internal error: {0}); the offer was refused, nothing else was affected")]
    Contained(String),
    /// Another teacher session is publishing to this lesson.
    #[error(
        "lesson {0:?} already has a teacher publishing from another session; stop that one first"
    )]
    Conflict(String),
    /// The edge task has stopped.
    #[error("the media relay has stopped")]
    Stopped,
    /// Binding a UDP socket failed.
    #[error("cannot bind UDP {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}
