use std::time::Duration;

use super::*;

fn config(workers: usize) -> MediaConfig {
    MediaConfig {
        udp: "127.0.0.1:0".parse().unwrap(),
        advertise: vec![],
        relay: RelayConfig::default(),
        codecs: Codecs { h264: true },
        state_file: None,
        workers,
    }
}

#[tokio::test]
async fn a_dead_media_worker_is_reported_not_hidden() {
    crate::init_crypto();
    let h = spawn(config(2)).unwrap();
    assert!(h.media_running());
    assert_eq!(h.session_count().await.unwrap(), 0);
    h.crash(1).await;
    tokio::time::timeout(Duration::from_secs(5), h.media_stopped())
        .await
        .expect("media_stopped resolves");
    assert!(!h.media_running());
    assert!(matches!(h.stats().await, Err(EdgeError::Stopped)));
}

#[tokio::test]
async fn each_worker_has_its_own_socket_and_reports_its_load() {
    crate::init_crypto();
    let h = spawn(config(3)).unwrap();
    assert_eq!(h.workers(), 3);
    let mut ports: Vec<u16> = h.local_addrs.iter().map(|a| a.port()).collect();
    ports.dedup();
    assert_eq!(ports.len(), 3, "one port per worker: {:?}", h.local_addrs);
    let s = h.stats().await.unwrap();
    assert_eq!(s.workers.len(), 3);
    assert!(s.workers.iter().all(|w| w.sessions == 0));
}
