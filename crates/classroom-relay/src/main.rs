//! `classroom-relay`: serve lessons, make tokens, check configuration files.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use relay_config::{Config, Loaded};
use relay_http::token::{sign, Claims, TokenRole};

#[derive(Parser)]
#[command(
    name = "classroom-relay",
    version,
    about = "Media relay for live lessons from a hub school to small rural schools"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the relay. Without --config: the built-in default (HTTP on 127.0.0.1:8080,
    /// a demo lesson, a development token secret).
    Serve {
        /// JSON configuration file (see relay-config/examples/).
        #[arg(long)]
        config: Option<PathBuf>,
        /// HTTP listen address, overrides server.http (e.g. 0.0.0.0:8080).
        #[arg(long, value_name = "ADDR:PORT")]
        http: Option<String>,
        /// UDP media listen address, overrides server.udp (port 0 = any free port).
        #[arg(long, value_name = "ADDR:PORT")]
        udp: Option<String>,
        /// IP address offered to browsers as an ICE candidate; repeat for several.
        /// Overrides server.advertise.
        #[arg(long, value_name = "IP")]
        advertise: Vec<String>,
        /// Media worker threads, overrides server.workers (default: one per core).
        #[arg(long, value_name = "N")]
        workers: Option<usize>,
        /// Warm-start state file: each school's sustained link estimate, so its next
        /// lesson starts there. Default: classroom-relay-state.json beside --config;
        /// without --config none (kept in memory only).
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
    /// Print a signed token (on the last line of stdout) for `serve` with the same config.
    Token {
        /// Lesson the token is for.
        #[arg(long)]
        lesson: String,
        /// teacher (publish with WHIP) or classroom (watch with WHEP).
        #[arg(long)]
        role: String,
        /// School id of a classroom; classrooms of one school share its link.
        #[arg(long)]
        school: Option<String>,
        /// Lifetime, e.g. 45m, 4h, 2d (default: auth.default_ttl of the config).
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
        /// JSON configuration file whose secret signs the token.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate a configuration file and print every problem with its JSON path.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Serve {
            config,
            http,
            udp,
            advertise,
            workers,
            state,
        } => serve(
            config,
            Overrides {
                http,
                udp,
                advertise,
                workers,
            },
            state,
        ),
        Cmd::Token {
            lesson,
            role,
            school,
            ttl,
            config,
        } => token(&lesson, &role, school.as_deref(), ttl.as_deref(), config),
        Cmd::CheckConfig { file } => check_config(&file),
    };
    if let Err(e) = r {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn load(path: Option<&PathBuf>, edit: impl FnOnce(&mut Config)) -> Result<Loaded> {
    let (mut cfg, base) = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            (
                Config::from_json(&text).with_context(|| format!("in {}", p.display()))?,
                p.parent().map(|b| b.to_path_buf()),
            )
        }
        None => (Config::default(), None),
    };
    edit(&mut cfg);
    let what = path
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the built-in configuration".into());
    cfg.validate(base.as_deref())
        .with_context(|| format!("in {what}"))
}

fn check_config(file: &PathBuf) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let result = Config::from_json(&text).and_then(|c| c.validate(file.parent()));
    match result {
        Ok(l) => {
            println!("{}: ok", file.display());
            println!(
                "  http {}  udp {} (media workers: {}, one port each from there)  advertise {:?}",
                l.http, l.udp, l.workers, l.advertise
            );
            if l.development_secret {
                println!("  warning: auth has no token secret; the public development secret would be used");
            }
            Ok(())
        }
        Err(e) => {
            let problems = e.problems();
            for p in &problems {
                println!("{}: {p}", file.display());
            }
            bail!("{} problem(s) in {}", problems.len(), file.display())
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn make_token(
    l: &Loaded,
    lesson: &str,
    role: TokenRole,
    school: Option<&str>,
    ttl: Duration,
) -> String {
    sign(
        &l.token_secret,
        &Claims::new(lesson, role, school, unix_now() + ttl.as_secs()),
    )
}

fn token(
    lesson: &str,
    role: &str,
    school: Option<&str>,
    ttl: Option<&str>,
    config: Option<PathBuf>,
) -> Result<()> {
    let l = load(config.as_ref(), |_| {})?;
    let role: TokenRole = role.parse().map_err(anyhow::Error::msg)?;
    relay_config::check_name(lesson).map_err(|m| anyhow::anyhow!("--lesson: {m}"))?;
    if let Some(s) = school {
        relay_config::check_name(s).map_err(|m| anyhow::anyhow!("--school: {m}"))?;
    }
    if let Some(list) = &l.config.lessons.allowed {
        if !list.iter().any(|x| x == lesson) {
            bail!(
                "lesson {lesson:?} is not in lessons.allowed of this configuration ({})",
                list.join(", ")
            );
        }
    }
    let ttl = match ttl {
        Some(t) => relay_config::parse_duration(t).map_err(|m| anyhow::anyhow!("--ttl: {m}"))?,
        None => l.default_ttl,
    };
    if role == TokenRole::Classroom && school.is_none() {
        eprintln!(
            "note: no --school given; the relay will count this classroom under school \"unknown\""
        );
    }
    if l.development_secret {
        eprintln!("note: signed with the public development secret (no auth secret configured)");
    }
    eprintln!(
        "valid for {} (lesson {lesson}, role {role:?})",
        relay_config::format_duration(ttl)
    );
    println!("{}", make_token(&l, lesson, role, school, ttl));
    Ok(())
}

/// Command-line values that override the configuration file's.
struct Overrides {
    http: Option<String>,
    udp: Option<String>,
    advertise: Vec<String>,
    workers: Option<usize>,
}

fn serve(config: Option<PathBuf>, o: Overrides, state: Option<PathBuf>) -> Result<()> {
    let state = state.or_else(|| {
        config.as_ref().map(|c| {
            c.parent()
                .unwrap_or(std::path::Path::new("."))
                .join("classroom-relay-state.json")
        })
    });
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,str0m=warn,dimpl=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let l = load(config.as_ref(), |c| {
        if let Some(h) = o.http {
            c.server.http = h;
        }
        if let Some(u) = o.udp {
            c.server.udp = u;
        }
        if !o.advertise.is_empty() {
            c.server.advertise = o.advertise;
        }
        if o.workers.is_some() {
            c.server.workers = o.workers;
        }
    })?;
    relay_webrtc::init_crypto();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run(l, state))
}

/// How long the relay goes on answering after the last lesson of a drain ended.
const DRAIN_LINGER: Duration = Duration::from_secs(3);

/// Exit status when the media thread died: EX_SOFTWARE, so a supervisor restarts us.
const EXIT_MEDIA_DIED: i32 = 70;

async fn run(l: Loaded, state_file: Option<PathBuf>) -> Result<()> {
    let media = relay_webrtc::MediaConfig {
        udp: l.udp,
        advertise: l.advertise.clone(),
        relay: relay_core::RelayConfig {
            keyframe_interval: Duration::from_millis(l.config.media.keyframe_interval_ms),
            default_layer: match l.config.media.default_layer {
                relay_config::Layer::Low => relay_core::LayerPref::Low,
                relay_config::Layer::Medium => relay_core::LayerPref::Medium,
                relay_config::Layer::High => relay_core::LayerPref::High,
            },
            adapt: relay_core::AdaptConfig {
                enabled: l.config.media.adaptation,
                repair_max: std::time::Duration::from_millis(l.config.media.repair_delay_max_ms),
                ..Default::default()
            },
            ..Default::default()
        },
        codecs: relay_webrtc::Codecs {
            h264: l.config.media.h264,
        },
        state_file,
        workers: l.workers,
    };
    let edge = relay_webrtc::spawn(media).context("starting the media sockets")?;
    let media = edge.clone();
    let listener = tokio::net::TcpListener::bind(l.http)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", l.http))?;
    let http_addr = listener.local_addr()?;
    let udp_addrs = edge.local_addrs.clone();
    let (app, control) = relay_http::router(
        relay_http::HttpConfig {
            token_secret: l.token_secret.clone(),
            allowed_lessons: l.config.lessons.allowed.clone(),
            max_body_bytes: l.config.server.max_body_bytes,
            limits: l.config.limits.clone(),
            school_names: l.config.lessons.school_names.clone(),
        },
        edge,
    );
    print_banner(&l, http_addr, &udp_addrs);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(relay_http::serve::serve(
        listener,
        app,
        l.config.limits.http_connections as usize,
        async {
            let _ = stop_rx.await;
        },
    ));
    let mut signals = Signals::new()?;
    let media_died = tokio::select! {
        _ = signals.next() => false,
        _ = media.media_stopped() => true,
    };
    let media_died = media_died || drain(&control, &media, &mut signals, l.drain_timeout).await;
    let _ = stop_tx.send(());
    let _ = server.await;
    if media_died {
        eprintln!("classroom-relay: the media edge stopped; exiting with status {EXIT_MEDIA_DIED} so the service manager restarts the relay");
        std::process::exit(EXIT_MEDIA_DIED);
    }
    media.save_state().await;
    eprintln!("classroom-relay stopped");
    Ok(())
}

/// After SIGTERM or Ctrl-C: refuse new sessions and let lessons in progress go on
/// until their teachers leave, `timeout` passes or a second signal comes. True if
/// the media edge died meanwhile.
async fn drain(
    control: &relay_http::Control,
    media: &relay_webrtc::Handle,
    signals: &mut Signals,
    timeout: Duration,
) -> bool {
    control.start_draining();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut announced = false;
    let mut idle_since: Option<tokio::time::Instant> = None;
    loop {
        let lessons = control.open_teachers();
        // The last teacher left: linger a moment so the closing requests of the
        // lesson's clients (DELETEs, a last /metrics) are still answered.
        if lessons == 0 {
            let since = *idle_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() >= DRAIN_LINGER {
                eprintln!("classroom-relay: no lesson in progress; stopping");
                return false;
            }
        } else {
            idle_since = None;
        }
        if !announced && lessons > 0 {
            eprintln!(
                "classroom-relay: draining: new sessions are refused; {lessons} lesson(s) in progress go on for at most {} (signal again to stop now)",
                relay_config::format_duration(timeout)
            );
            announced = true;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = tokio::time::sleep_until(deadline) => {
                eprintln!("classroom-relay: drain timeout reached with {lessons} lesson(s) in progress; stopping");
                return false;
            }
            _ = signals.next() => {
                eprintln!("classroom-relay: second signal; stopping now");
                return false;
            }
            _ = media.media_stopped() => return true,
        }
    }
}

/// SIGTERM and Ctrl-C, each time they come.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals> {
        Ok(Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("installing the SIGTERM handler")?,
        })
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = self.term.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn print_banner(l: &Loaded, http: SocketAddr, udp: &[SocketAddr]) {
    let host: IpAddr = if http.ip().is_unspecified() {
        l.advertise
            .first()
            .copied()
            .unwrap_or(IpAddr::from([127, 0, 0, 1]))
    } else {
        http.ip()
    };
    let base = format!("http://{}", SocketAddr::new(host, http.port()));
    let udp: Vec<String> = udp.iter().map(|a| a.to_string()).collect();
    println!(
        "classroom-relay listening: http={http} udp={}",
        udp.join(",")
    );
    if l.development_secret {
        println!();
        println!("!!! WARNING: no token secret configured: using the PUBLIC DEVELOPMENT SECRET.");
        println!("!!! Anyone can make tokens for this relay. Set auth.token_secret_file before real lessons.");
    }
    if let Some(lesson) = &l.config.lessons.demo {
        let ttl = l.default_ttl;
        let teacher = make_token(l, lesson, TokenRole::Teacher, None, ttl);
        println!();
        println!(
            "Demo lesson {lesson:?} (tokens valid {}):",
            relay_config::format_duration(ttl)
        );
        println!("  Teacher page:   {base}/teach/{lesson}?token={teacher}");
        for school in &l.config.lessons.demo_schools {
            let t = make_token(l, lesson, TokenRole::Classroom, Some(school), ttl);
            println!("  Classroom {school}: {base}/class/{lesson}?token={t}");
        }
        let watch = make_token(
            l,
            lesson,
            TokenRole::Classroom,
            l.config.lessons.demo_schools.first().map(|s| s.as_str()),
            ttl,
        );
        println!("  OBS / WHIP:     server {base}/whip/{lesson}  bearer token {teacher}");
        println!("  WHEP players:   {base}/whep/{lesson}  bearer token {watch}");
        println!("  Status: {base}/api/lessons   Metrics: {base}/metrics");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
}
