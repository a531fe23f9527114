//! The repair delay on a virtual clock: a classroom on a long, lossy round trip
//! has its video ask for a minimum playout delay, its voice does not, and a
//! classroom on a short one gets none.

use super::*;

#[test]
fn a_satellite_classroom_video_asks_to_be_held_a_round_trip() {
    let mut w = World::new();
    w.run(Duration::from_secs(1));
    w.join(10, "satellite", None);
    w.join(11, "fibre", None);
    for _ in 0..5 {
        w.estimate(10, 3_000_000);
        w.estimate(11, 3_000_000);
        w.quality(10, 0.005, Some(Duration::from_millis(620)));
        w.quality(11, 0.005, Some(Duration::from_millis(30)));
        w.run(Duration::from_secs(1));
    }
    let (v, a) = (w.video(10).len(), w.audio(10).len());
    w.run(Duration::from_secs(1));
    let held = Some(Duration::from_millis(990));
    assert!(w.video(10)[v..].iter().all(|f| f.playout_min == held));
    assert!(w.audio(10)[a..].iter().all(|f| f.playout_min.is_none()));
    assert!(w.video(11).iter().all(|f| f.playout_min.is_none()));
    let stats = w.relay.stats(w.now);
    let of = |p: u64| {
        stats[0]
            .subscribers
            .iter()
            .find(|s| s.peer == PeerId(p))
            .map(|s| s.playout_min)
            .unwrap()
    };
    assert_eq!((of(10), of(11)), (held, None));
}
