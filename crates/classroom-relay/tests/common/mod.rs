//! Starts the real `classroom-relay` binary on loopback with free ports and makes
//! tokens with its `token` subcommand, as an operator would.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod netns;

pub struct RelayProc {
    child: Child,
    pub base: String,
    /// The media socket addresses from the "listening" line.
    pub udp: Vec<String>,
}

impl RelayProc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the process to exit (at most `limit`); its status, or None if it runs on.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Send a signal (e.g. "TERM") to the relay.
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -{sig} failed");
    }
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

/// Start `classroom-relay serve` on loopback with extra args; waits for its
/// "listening" line.
pub fn start(extra: &[&str]) -> RelayProc {
    let mut args = vec!["--http", "127.0.0.1:0", "--udp", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    start_serve(&args)
}

/// Start `classroom-relay serve ARGS`; `base` uses the printed HTTP address.
pub fn start_serve(args: &[&str]) -> RelayProc {
    let mut child = Command::new(bin())
        .arg("serve")
        .args(args)
        .env("RUST_LOG", "info,str0m=warn,dimpl=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start classroom-relay");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut base = None;
    let mut udp = vec![];
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.strip_prefix("classroom-relay listening: http=") {
            let mut parts = rest.split_whitespace();
            let http = parts.next().unwrap();
            base = Some(format!("http://{http}"));
            if let Some(u) = parts.next().and_then(|p| p.strip_prefix("udp=")) {
                udp = u.split(',').map(String::from).collect();
            }
            break;
        }
    }
    // Keep draining stdout so the relay never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    RelayProc {
        child,
        base: base.expect("relay printed its listening line"),
        udp,
    }
}

/// Start `serve` on all interfaces, advertising loopback and `test_host` (the
/// host's address towards a test network namespace), plus `extra` arguments.
pub fn start_wildcard(test_host: &str, extra: &[&str]) -> RelayProc {
    let mut args = vec![
        "--http",
        "0.0.0.0:0",
        "--udp",
        "0.0.0.0:0",
        "--advertise",
        "127.0.0.1",
        "--advertise",
        test_host,
    ];
    args.extend_from_slice(extra);
    start_serve(&args)
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

/// A real offer (Opus + VP8) from a str0m peer, sending or receiving.
pub fn offer(dir: str0m::media::Direction) -> String {
    use str0m::media::MediaKind;
    str0m::crypto::from_feature_flags().install_process_default();
    let mut rtc = str0m::Rtc::new(Instant::now());
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Audio, dir, None, None, None);
    api.add_media(MediaKind::Video, dir, None, None, None);
    api.apply().unwrap().0.to_sdp_string()
}

pub fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Chromium and playwright-core for the browser tests: installed by
/// scripts/install-deps.sh when missing.
pub fn ensure_browser_deps() {
    let have = std::path::Path::new("/usr/bin/chromium").exists()
        && root()
            .join("tests/browser/node_modules/playwright-core")
            .exists();
    if !have {
        let st = Command::new(root().join("scripts/install-deps.sh"))
            .status()
            .expect("run scripts/install-deps.sh");
        assert!(st.success(), "scripts/install-deps.sh failed");
    }
}

/// Run tests/browser/e2e.mjs (optionally through a command prefix such as
/// `ip netns exec NS`) and assert it passes.
pub fn run_e2e(prefix: &[&str], base: &str, lesson: &str, teacher: &str, classes: &[String]) {
    let mut args = vec![base, lesson, teacher];
    args.extend(classes.iter().map(String::as_str));
    run_node(prefix, "e2e.mjs", &args, &[], "e2e PASS");
}

/// Run `tests/browser/SCRIPT ARGS` with node (after `prefix`, with extra
/// environment) and assert it exits 0 and prints `pass_line`; returns its stdout.
pub fn run_node(
    prefix: &[&str],
    script: &str,
    args: &[&str],
    env: &[(&str, &str)],
    pass_line: &str,
) -> String {
    let script = root()
        .join("tests/browser")
        .join(script)
        .display()
        .to_string();
    let mut argv: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
    argv.extend(["node".into(), script]);
    argv.extend(args.iter().map(|s| s.to_string()));
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .envs(env.iter().copied())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        out.status.success() && stdout.contains(pass_line),
        "browser script {} failed:\n{stdout}\n{stderr}",
        argv[1]
    );
    stdout
}
