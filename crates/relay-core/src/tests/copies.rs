//! Base-layer copies: a classroom on a long, lossy round trip gets every base
//! temporal layer packet twice, pays for them out of its video budget, and others
//! get them once.

use super::*;

impl World {
    fn quality(&mut self, peer: u64, loss: f32, rtt_ms: u64) {
        self.input(Input::LinkQuality {
            now: self.now,
            peer: PeerId(peer),
            loss: Some(loss),
            rtt: Some(Duration::from_millis(rtt_ms)),
        });
    }

    /// Video packets to `peer` since packet `from`: (base layer, sent twice).
    fn copies_since(&self, peer: u64, from: usize) -> Vec<(bool, bool)> {
        let v = &self.video(peer)[from..];
        let mut out: Vec<(bool, bool)> = vec![];
        for (i, f) in v.iter().enumerate() {
            if i > 0 && v[i - 1].seq == f.seq {
                out.last_mut().unwrap().1 = true;
                continue;
            }
            let base = inspect(Codec::Vp8, &f.payload).is_base_layer();
            out.push((base, false));
        }
        out
    }
}

#[test]
fn a_satellite_classroom_gets_its_base_layer_twice_and_pays_for_it() {
    let mut w = World::new();
    w.run(Duration::from_secs(1));
    w.join(10, "satellite", None);
    w.join(11, "fibre", None);
    // Both links carry the top layer (about 1.5 Mbit/s) with room to spare, but
    // not with the satellite's copies of its base layer (a quarter of its frames)
    // on top.
    for _ in 0..12 {
        w.estimate(10, 2_100_000);
        w.estimate(11, 2_100_000);
        w.quality(10, 0.005, 620);
        w.quality(11, 0.005, 40);
        w.run(Duration::from_secs(1));
    }
    let (sat, fibre) = (w.video(10).len(), w.video(11).len());
    w.run(Duration::from_secs(4));
    let sat_now = w.copies_since(10, sat);
    assert!(sat_now.iter().any(|p| p.0), "base-layer packets flow");
    for (base, twice) in &sat_now {
        assert_eq!(
            base, twice,
            "the satellite gets base packets twice, others once"
        );
    }
    assert!(
        w.copies_since(11, fibre).iter().all(|(_, twice)| !twice),
        "a short round trip repairs by retransmission: no copies"
    );
    let stats = w.relay.stats(w.now);
    let sub = |p: u64| {
        stats[0]
            .subscribers
            .iter()
            .find(|s| s.peer == PeerId(p))
            .unwrap()
            .clone()
    };
    assert!(sub(10).base_copies && !sub(11).base_copies);
    assert!(w.relay.totals().base_copies > 0);
    // The copies' cost keeps the satellite one layer lower than the same estimate
    // without them.
    assert_eq!(layer_of(w.video(10).last().unwrap()), 1, "satellite");
    assert_eq!(layer_of(w.video(11).last().unwrap()), 2, "fibre");
}

#[test]
fn the_copies_stop_a_while_after_the_loss_does() {
    let mut w = World::new();
    w.run(Duration::from_secs(1));
    w.join(10, "satellite", None);
    for _ in 0..5 {
        w.estimate(10, 3_000_000);
        w.quality(10, 0.01, 620);
        w.run(Duration::from_secs(1));
    }
    assert!(w.relay.stats(w.now)[0].subscribers[0].base_copies);
    let hold = AdaptConfig::default().copy_hold;
    for _ in 0..hold.as_secs() + 15 {
        w.quality(10, 0.0, 620);
        w.run(Duration::from_secs(1));
    }
    let from = w.video(10).len();
    w.run(Duration::from_secs(2));
    assert!(!w.relay.stats(w.now)[0].subscribers[0].base_copies);
    assert!(w.copies_since(10, from).iter().all(|(_, twice)| !twice));
}
