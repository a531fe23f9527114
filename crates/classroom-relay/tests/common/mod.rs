//! Starts the real `classroom-relay` binary on loopback with free ports and makes
//! tokens with its `token` subcommand, as an operator would.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RelayProc {
    child: Child,
    pub base: String,
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_classroom-relay")
}

/// Start `classroom-relay serve` with extra args; waits for its "listening" line.
pub fn start(extra: &[&str]) -> RelayProc {
    let mut child = Command::new(bin())
        .args(["serve", "--http", "127.0.0.1:0", "--udp", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", "info,str0m=warn,dimpl=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start classroom-relay");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut base = None;
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.strip_prefix("classroom-relay listening: http=") {
            let http = rest.split_whitespace().next().unwrap();
            base = Some(format!("http://{http}"));
            break;
        }
    }
    // Keep draining stdout so the relay never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    RelayProc {
        child,
        base: base.expect("relay printed its listening line"),
    }
}

/// `classroom-relay token ...`, last line of stdout.
pub fn token(lesson: &str, role: &str, school: Option<&str>, extra: &[&str]) -> String {
    let mut c = Command::new(bin());
    c.args(["token", "--lesson", lesson, "--role", role]);
    if let Some(s) = school {
        c.args(["--school", s]);
    }
    let out = c.args(extra).output().expect("run token");
    assert!(
        out.status.success(),
        "token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string()
}
