//! What the relay core asks of the edge: packets to write, keyframe requests,
//! estimator targets, sessions to close and floor changes to announce.

use std::time::Instant;

use relay_core::Output as CoreOutput;
use str0m::bwe::Bitrate;
use str0m::media::{KeyframeRequestKind, Mid as StrMid, Rid as StrRid};
use tracing::info;

use super::Edge;
use crate::guard::contain;

impl Edge {
    pub(super) fn drain_core(&mut self, now: Instant) {
        loop {
            match self.relay.poll_output() {
                CoreOutput::Timeout(_) => break,
                CoreOutput::Forward(f) => {
                    let to = f.to;
                    if let Err(panic) = contain(|| self.forward(now, f)) {
                        self.contained(now, to, "write_rtp", panic);
                    }
                }
                CoreOutput::RequestKeyframe {
                    publisher,
                    mid,
                    rid,
                } => {
                    if let Some(p) = self.peers.get_mut(&publisher) {
                        let rid = rid.map(|r| StrRid::from(r.as_str()));
                        let asked = contain(|| {
                            p.rtc
                                .direct_api()
                                .stream_rx_by_mid(StrMid::from(mid.as_str()), rid)
                                .map(|rx| rx.request_keyframe(KeyframeRequestKind::Pli))
                                .is_some()
                        });
                        match asked {
                            Ok(true) => self.dirty.push(publisher),
                            Ok(false) => {}
                            Err(panic) => self.contained(now, publisher, "keyframe request", panic),
                        }
                    }
                }
                CoreOutput::BweTarget {
                    peer,
                    min_bps,
                    desired_bps,
                } => {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        let set = contain(|| {
                            p.rtc
                                .bwe()
                                .set_bitrate(Bitrate::bps(min_bps), Bitrate::bps(desired_bps))
                        });
                        match set {
                            Ok(()) => self.dirty.push(peer),
                            Err(panic) => self.contained(now, peer, "bwe", panic),
                        }
                    }
                }
                CoreOutput::BweReprobe { peer, from_bps } => {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        match contain(|| p.rtc.bwe().reset(Bitrate::bps(from_bps))) {
                            Ok(()) => self.dirty.push(peer),
                            Err(panic) => self.contained(now, peer, "bwe", panic),
                        }
                    }
                }
                CoreOutput::Floor { lesson, floor } => {
                    info!(lesson, holder = ?floor.holder, open = floor.open, hands = ?floor.hands, "floor changed");
                    self.floors.push((lesson, floor));
                }
                CoreOutput::Close(peer) => {
                    info!(%peer, "teacher session replaced by a reconnect");
                    // The core has let go of it already.
                    self.remove_peer(now, peer, false);
                }
            }
        }
    }
}
