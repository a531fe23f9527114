//! Writes `fuzz/corpus/edge_datagram/` from a real session's datagrams:
//! `cargo run -p relay-fuzz --example write_edge_seeds`.

use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/edge_datagram");
    std::fs::create_dir_all(&dir).expect("dir");
    let record = |op: u8, d: &[u8]| {
        let mut v = vec![op];
        v.extend_from_slice(&(d.len() as u16).to_be_bytes());
        v.extend_from_slice(d);
        v
    };
    let all = relay_fuzz::session_datagrams();
    let kind = |d: &[u8]| match d.first() {
        Some(0..=3) => "stun",
        Some(20..=63) => "dtls",
        Some(128..=191) if matches!(d.get(1), Some(192..=223)) => "srtcp",
        Some(128..=191) => "srtp",
        _ => "other",
    };
    let mut written = std::collections::BTreeSet::new();
    for (teacher, d) in &all {
        let name = format!(
            "{}-{}",
            if *teacher { "teacher" } else { "classroom" },
            kind(d)
        );
        if written.insert(name.clone()) {
            let op = if *teacher { 0 } else { 1 };
            std::fs::write(dir.join(format!("{name}.bin")), record(op, d)).expect("write");
            // The same datagram from a stranger's address.
            std::fs::write(dir.join(format!("{name}-stranger.bin")), record(2, d)).expect("write");
        }
    }
    // Teacher media with payloads of each kind, altered replays, time passing.
    let mut mixed = record(3, &[0, 0, 0, 0x03, 1, 0x78, 0x9c, 0xaa, 0xbb]);
    mixed.extend(record(
        4,
        &[
            0, 0, 1, 0, 0x0f, 1, 0x90, 0xe0, 0x81, 0x23, 0x07, 0x40, 0x00, 0x9d,
        ],
    ));
    mixed.extend(record(5, &[3, 0x40, 12, 0x01]));
    mixed.extend(record(7, &[25]));
    mixed.extend(record(6, &[0, 0x80, 1, 0x01]));
    std::fs::write(dir.join("teacher-media-mixed.bin"), mixed).expect("write");
    let mut h264 = record(4, &[2, 0x80, 1, 0, 0x0f, 1, 0x7c, 0x85, 0x88, 0x84]);
    h264.extend(record(4, &[1, 0xff, 1, 0, 0x0f, 0, 0x65, 0x88, 0x84]));
    h264.extend(record(7, &[10]));
    std::fs::write(dir.join("teacher-media-other-pts.bin"), h264).expect("write");
    println!("seeds written to {}", dir.display());
}
