//! Emulated links: one direction of a school's (or the hub's) connection as
//! `str0m-netem` sees it (rate with a finite queue, delay, jitter, loss), used by
//! the virtual-time replay and by the real-socket load test alike.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m_netem::{
    Bitrate, DataSize, GilbertElliot, Input as NInput, LossModel, Netem, NetemConfig,
    Output as NOutput, Probability, RandomLoss,
};

/// Loss on a link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    None,
    /// Independent loss with this probability.
    Random(f32),
    /// Gilbert-Elliott bursts: mean loss and mean burst length in packets.
    Bursty {
        mean: f32,
        burst: f32,
    },
}

/// The shape of one direction of a school link at some moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkShape {
    pub kbps: u64,
    /// One-way delay.
    pub delay: Duration,
    pub jitter: Duration,
    pub loss: Loss,
    /// Bottleneck queue, as time at the link rate.
    pub queue: Duration,
}

impl LinkShape {
    pub fn new(kbps: u64) -> LinkShape {
        LinkShape {
            kbps,
            delay: Duration::from_millis(20),
            jitter: Duration::ZERO,
            loss: Loss::None,
            queue: Duration::from_millis(300),
        }
    }

    fn netem(&self, seed: u64) -> NetemConfig {
        let loss: LossModel = match self.loss {
            Loss::None => LossModel::None,
            Loss::Random(p) => RandomLoss::new(Probability::new(p)).into(),
            Loss::Bursty { mean, burst } => {
                // Bad state loses every packet; its mean length is `burst`; the good
                // state lasts long enough that the mean loss is `mean`.
                let good = burst * (1.0 - mean) / mean.max(1e-6);
                GilbertElliot::new()
                    .good_duration(good)
                    .bad_duration(burst)
                    .loss_in_bad(Probability::new(1.0))
                    .loss_in_good(Probability::new(0.0))
                    .into()
            }
        };
        // str0m-netem counts a packet against the buffer from the moment it enters
        // until it leaves the far end, its propagation delay included, whereas a
        // real bottleneck's buffer holds only what waits for the wire. Sized as the
        // queue alone, a 300 ms buffer on a 330 ms satellite hop dropped packets at
        // 90 % load, queue empty. So the buffer also holds what the delay line
        // carries at the link rate.
        let held = self.queue + self.delay + self.jitter;
        let queue_bytes = (self.kbps * 1000 / 8) as f64 * held.as_secs_f64();
        NetemConfig::new()
            .latency(self.delay)
            .jitter(self.jitter)
            .loss(loss)
            .link(
                Bitrate::kbps(self.kbps),
                DataSize::bytes((queue_bytes as i64).max(3000)),
            )
            .seed(seed)
    }

    /// The link while ICE and DTLS connect: a short fixed delay only. DTLS
    /// retransmission timers carry random jitter that no seed reaches, so a
    /// handshake that lost a packet or outlasted a timer (satellite round trips do)
    /// would make two runs of one seed differ. The lesson, not the handshake, is
    /// what the simulator measures; first-frame times therefore leave the
    /// handshake's extra round trips out.
    fn netem_connecting(&self, seed: u64) -> NetemConfig {
        NetemConfig::new()
            .latency(self.delay.min(CONNECT_DELAY))
            .seed(seed)
    }
}

/// Longest one-way delay while connecting (see [`LinkShape::netem_connecting`]).
const CONNECT_DELAY: Duration = Duration::from_millis(20);

/// A packet in flight.
#[derive(Debug, Clone)]
pub(crate) struct Pkt {
    pub(crate) from: SocketAddr,
    pub(crate) to: SocketAddr,
    pub(crate) data: Vec<u8>,
}

/// DTLS records count as this many bytes on a rate-limited link. Their real sizes
/// vary by a byte or two from run to run (ECDSA signatures are random), which would
/// shift every later event by microseconds and make two runs of one seed differ.
const DTLS_WIRE_BYTES: usize = 1200;

/// RTCP counts in whole blocks of this size, for the same reason: its reports list
/// streams in str0m's hash order, so a feedback packet's size can differ by a few
/// bytes between runs.
const RTCP_WIRE_BLOCK: usize = 128;

impl str0m_netem::WithLen for Pkt {
    fn len(&self) -> usize {
        let n = self.data.len();
        match stream_key(&self.data).0 {
            1 => n.div_ceil(RTCP_WIRE_BLOCK) * RTCP_WIRE_BLOCK,
            // RFC 7983: a first byte of 20..=63 is DTLS.
            _ if matches!(self.data.first(), Some(20..=63)) => DTLS_WIRE_BYTES.max(n),
            _ => n,
        }
    }
}

/// One direction of a link.
pub(crate) struct Pipe {
    pub(crate) netem: Netem<Pkt>,
    seed: u64,
    pub(crate) shape: LinkShape,
    pub(crate) connecting: bool,
}

impl Pipe {
    /// A link that starts connecting: see [`LinkShape::netem_connecting`].
    pub(crate) fn new(shape: LinkShape, seed: u64) -> Pipe {
        Pipe {
            netem: Netem::new(shape.netem_connecting(seed)),
            seed,
            shape,
            connecting: true,
        }
    }

    pub(crate) fn reshape(&mut self, shape: LinkShape) {
        self.shape = shape;
        if !self.connecting {
            self.netem.set_config(shape.netem(self.seed));
        }
    }

    /// Put a packet on the link.
    pub(crate) fn send(&mut self, now: Instant, pkt: Pkt) {
        self.netem.handle_input(NInput::Packet(now, pkt));
    }

    /// The peers behind it connected: the link takes its full shape.
    pub(crate) fn connected(&mut self) {
        if self.connecting {
            self.connecting = false;
            self.netem.set_config(self.shape.netem(self.seed));
        }
    }
}

pub(crate) fn drain_pipe(p: &mut Pipe, now: Instant, out: &mut Vec<Pkt>) {
    p.netem.handle_input(NInput::Timeout(now));
    while let Some(o) = p.netem.poll_output() {
        match o {
            NOutput::Packet(pkt) => out.push(pkt),
            NOutput::Timeout(_) => break,
        }
    }
}

/// (0 for RTP, 1 for RTCP, 2 for anything else; the RTP SSRC) of a datagram.
pub(crate) fn stream_key(d: &[u8]) -> (u8, u32) {
    let ssrc = |at: usize| {
        d.get(at..at + 4)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    match (d.first(), d.get(1)) {
        // RFC 5761: second byte 192..=223 is an RTCP packet type.
        // Its sender SSRC is whichever stream str0m's hash map yields first.
        (Some(128..=191), Some(192..=223)) => (1, 0),
        (Some(128..=191), Some(_)) => (0, ssrc(8)),
        _ => (2, 0),
    }
}
