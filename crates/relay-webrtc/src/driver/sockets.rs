//! Binding a media worker's UDP sockets.

use std::net::{IpAddr, SocketAddr};

use tracing::{info, warn};

use crate::error::EdgeError;

/// Kernel buffer asked for on each media socket, each way. Every datagram of a
/// worker's sessions goes through its socket, and Linux's default (208 kB) holds
/// about 170 full-size packets: when many sessions connect at once (DTLS handshakes
/// keep the worker busy for a while), the queue overflowed in the benchmark at 32
/// lessons.
pub(super) const SOCKET_BUFFER: usize = 4 << 20;

pub(super) fn bind(addr: SocketAddr) -> Result<std::net::UdpSocket, EdgeError> {
    let std = std::net::UdpSocket::bind(addr).map_err(|source| EdgeError::Bind { addr, source })?;
    std.set_nonblocking(true)
        .map_err(|source| EdgeError::Bind { addr, source })?;
    size_buffers(&std, addr);
    Ok(std)
}

/// Ask for [`SOCKET_BUFFER`] both ways; the kernel caps it at `net.core.rmem_max` /
/// `wmem_max`, which on many systems is the default: say so once, with the fix.
fn size_buffers(socket: &std::net::UdpSocket, addr: SocketAddr) {
    let s = socket2::SockRef::from(socket);
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    // Linux reports twice what it grants (bookkeeping overhead included).
    let got = s.recv_buffer_size().unwrap_or(0) / 2;
    if got < SOCKET_BUFFER {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            warn!(
                %addr,
                granted_kb = got / 1024,
                wanted_kb = SOCKET_BUFFER / 1024,
                "the kernel limits the media socket's receive buffer; bursts may be dropped under load (raise it with: sysctl -w net.core.rmem_max={SOCKET_BUFFER} net.core.wmem_max={SOCKET_BUFFER})"
            )
        });
    }
}

/// One worker's sockets on `port` (0: a free one): with a wildcard `udp`, one per
/// advertised address, so that the worker knows which address a datagram reached;
/// an advertised address that cannot be bound (a NAT's public address) is served
/// from a wildcard socket. Each socket comes with the address str0m knows it by.
pub(super) fn bind_worker(
    udp: SocketAddr,
    advertise: &[IpAddr],
    port: u16,
) -> Result<Vec<(std::net::UdpSocket, SocketAddr)>, EdgeError> {
    let mut socks = Vec::new();
    if udp.ip().is_unspecified() {
        let mut port = port;
        let mut unbound = Vec::new();
        for ip in advertise {
            match bind(SocketAddr::new(*ip, port)) {
                Ok(socket) => {
                    let local = socket
                        .local_addr()
                        .map_err(|source| EdgeError::Bind { addr: udp, source })?;
                    port = local.port();
                    socks.push((socket, local));
                }
                Err(EdgeError::Bind { source, .. })
                    if source.kind() == std::io::ErrorKind::AddrNotAvailable =>
                {
                    unbound.push(*ip)
                }
                Err(e) => return Err(e),
            }
        }
        for ip in unbound {
            let socket = bind(SocketAddr::new(udp.ip(), port))?;
            port = socket.local_addr().map(|a| a.port()).unwrap_or(port);
            info!(%ip, port, "advertised address is not local (NAT?); serving it from the wildcard socket");
            socks.push((socket, SocketAddr::new(ip, port)));
        }
    } else {
        let socket = bind(SocketAddr::new(udp.ip(), port))?;
        let bound = socket
            .local_addr()
            .map_err(|source| EdgeError::Bind { addr: udp, source })?;
        let ip = advertise.first().copied().unwrap_or(bound.ip());
        socks.push((socket, SocketAddr::new(ip, bound.port())));
    }
    Ok(socks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_sockets_get_the_buffer_the_kernel_allows() {
        let cap = |f: &str| {
            std::fs::read_to_string(f)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
        };
        let (Some(rmax), Some(wmax)) = (
            cap("/proc/sys/net/core/rmem_max"),
            cap("/proc/sys/net/core/wmem_max"),
        ) else {
            return; // not Linux
        };
        let s = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let r = socket2::SockRef::from(&s);
        // Linux reports twice what it grants.
        assert!(r.recv_buffer_size().unwrap() / 2 >= SOCKET_BUFFER.min(rmax));
        assert!(r.send_buffer_size().unwrap() / 2 >= SOCKET_BUFFER.min(wmax));
    }
}
