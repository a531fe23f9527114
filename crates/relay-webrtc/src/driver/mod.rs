//! The thin tokio driver: N media workers, each a thread with its own UDP sockets,
//! clock and [`Edge`] (see [`worker`]); a lesson lives on one worker, placed when its
//! first session comes ([`placement`]); the HTTP layer talks to them through a
//! [`Handle`].
//!
//! Worker `i` listens on the configured UDP port plus `i` (or each on a free port
//! when the port is 0) and offers its own port in its sessions' ICE candidates, so
//! the kernel delivers every datagram to the worker that runs its session: nothing
//! crosses threads on the media path.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use relay_core::{RelayConfig, WarmTable};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::edge::Edge;
use crate::error::EdgeError;
use crate::peer::Codecs;

mod handle;
mod placement;
mod sockets;
#[cfg(test)]
mod tests;
mod worker;

pub use handle::Handle;
use handle::WorkerLink;
use placement::Placement;
use worker::{Shared, Sock, Worker};

/// Where the media sockets listen, and how many workers serve them.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// UDP bind address of the first worker; worker `i` takes its port plus `i`.
    /// Port 0 picks free ports.
    pub udp: SocketAddr,
    /// Addresses offered to browsers. When `udp` is a wildcard, each worker binds
    /// one socket per advertised address (same port), so it knows which address a
    /// datagram reached. An address that cannot be bound (a NAT's public address) is
    /// served from a wildcard socket instead.
    pub advertise: Vec<std::net::IpAddr>,
    pub relay: RelayConfig,
    pub codecs: Codecs,
    /// Warm-start state file (see [`crate::state`]); `None` keeps it in memory only.
    pub state_file: Option<std::path::PathBuf>,
    /// Media worker threads (at least 1).
    pub workers: usize,
}

fn load_warm(path: Option<&std::path::Path>) -> WarmTable {
    let Some(path) = path else {
        return WarmTable::default();
    };
    match crate::state::load(path) {
        Ok(Some(t)) => {
            info!(file = %path.display(), schools = t.entries().count(), "warm start: school link estimates loaded");
            t
        }
        Ok(None) => {
            info!(file = %path.display(), "warm start: no state file yet; every school starts at the default");
            WarmTable::default()
        }
        Err(e) => {
            warn!("warm start: {e}; every school starts at the default");
            WarmTable::default()
        }
    }
}

/// Bind every worker's sockets and start the workers.
pub fn spawn(cfg: MediaConfig) -> Result<Handle, EdgeError> {
    let n = cfg.workers.max(1);
    let mut bound = Vec::with_capacity(n);
    for i in 0..n {
        let port = match cfg.udp.port() {
            0 => 0,
            p => p.checked_add(i as u16).ok_or(EdgeError::Bind {
                addr: cfg.udp,
                source: std::io::Error::other(format!(
                    "{n} media workers need ports {p} to {}, past 65535",
                    p as usize + n - 1
                )),
            })?,
        };
        bound.push(sockets::bind_worker(cfg.udp, &cfg.advertise, port)?);
    }
    let warm = load_warm(cfg.state_file.as_deref());
    let (ended_tx, ended_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        placement: Arc::new(Mutex::new(Placement::new(n))),
        warm: Mutex::new(warm.clone()),
        state_file: cfg.state_file.clone(),
        saving: Mutex::new(()),
        ended: ended_tx,
        floors: tokio::sync::broadcast::channel(256).0,
    });
    let (running_tx, running) = watch::channel(true);
    let running_tx = Arc::new(running_tx);
    let mut links = Vec::with_capacity(n);
    for (index, socks) in bound.into_iter().enumerate() {
        let locals: Vec<SocketAddr> = socks.iter().map(|s| s.1).collect();
        let mut edge = Edge::new(
            Instant::now(),
            cfg.relay.clone(),
            cfg.codecs,
            locals.clone(),
        );
        edge.set_id_space(index, n);
        *edge.warm_mut() = warm.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| EdgeError::Bind {
                addr: cfg.udp,
                source,
            })?;
        let socks = {
            // Register the sockets with the worker's own runtime.
            let _in_runtime = runtime.enter();
            socks
                .into_iter()
                .map(|(socket, local)| {
                    UdpSocket::from_std(socket)
                        .map(|socket| Sock { socket, local })
                        .map_err(|source| EdgeError::Bind {
                            addr: local,
                            source,
                        })
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        let (tx, rx) = mpsc::channel(256);
        let worker = Worker {
            index,
            edge,
            socks,
            rx,
            shared: shared.clone(),
            pending: Default::default(),
            send_drops: 0,
        };
        let running_tx = running_tx.clone();
        std::thread::Builder::new()
            .name(format!("media-{index}"))
            .spawn(move || {
                // Sessions' panics are contained in the edge; one that escapes (a bug
                // in the core) stops this worker, and the process must not pretend.
                let r = crate::guard::contain(|| runtime.block_on(worker.run()));
                if let Err(panic) = r {
                    error!(
                        worker = index,
                        "a media worker stopped after a panic: {panic}"
                    );
                }
                let _ = running_tx.send(false);
            })
            .map_err(|source| EdgeError::Bind {
                addr: cfg.udp,
                source,
            })?;
        links.push(WorkerLink { tx, locals });
    }
    info!(workers = n, "media workers running");
    Ok(Handle {
        local_addrs: links.iter().flat_map(|w| w.locals.clone()).collect(),
        workers: links,
        codecs: cfg.codecs,
        adapt: (cfg.relay.adapt.enabled, cfg.relay.adapt.initial_bps),
        shared,
        running,
        ended: Arc::new(std::sync::Mutex::new(Some(ended_rx))),
    })
}
