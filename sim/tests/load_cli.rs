//! `classroom-sim load` refuses bad input clearly and says when no relay answers.

use std::process::Command;

fn load(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_classroom-sim"))
        .arg("load")
        .args(args)
        .output()
        .expect("classroom-sim runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn load_needs_a_secret_and_sane_numbers() {
    let (code, err) = load(&["--relay", "http://127.0.0.1:9"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--token-secret") && err.contains("--config"),
        "{err}"
    );
    let (code, err) = load(&[
        "--relay",
        "http://127.0.0.1:9",
        "--development-secret",
        "--duration",
        "soon",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--duration soon"), "{err}");
    let (code, err) = load(&[
        "--relay",
        "http://127.0.0.1:9",
        "--development-secret",
        "--lessons",
        "0",
    ]);
    assert_eq!(code, 2, "{err}");
    let (code, err) = load(&[
        "--relay",
        "http://127.0.0.1:9",
        "--development-secret",
        "--scenario",
        "region:Atlantis",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("Atlantis"), "{err}");
}

#[test]
fn no_relay_is_exit_status_3() {
    // Port 9 (discard) has no HTTP server on loopback.
    let (code, err) = load(&[
        "--relay",
        "http://127.0.0.1:9",
        "--development-secret",
        "--duration",
        "10s",
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not answering"), "{err}");
}
