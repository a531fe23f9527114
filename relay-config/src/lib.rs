//! The classroom-relay configuration file: JSON, unknown fields refused, every field
//! optional with a working default, validated with errors that name the field.
//!
//! ```
//! let cfg = relay_config::Config::from_json(r#"{"server": {"http": "127.0.0.1:9000"}}"#).unwrap();
//! assert_eq!(cfg.server.http, "127.0.0.1:9000");
//! ```

mod duration;
mod limits;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use duration::{format_duration, parse_duration};
pub use limits::Limits;

/// Token secret used when the configuration gives none. Anyone can mint tokens with
/// it: fine on a laptop, never in a school network.
pub const DEVELOPMENT_SECRET: &str = "classroom-relay-development-secret-do-not-deploy";

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the relay listens and which addresses it offers to browsers.
    #[serde(default)]
    pub server: Server,
    /// Bearer tokens for teachers and classrooms.
    #[serde(default)]
    pub auth: Auth,
    /// Which lessons exist.
    #[serde(default)]
    pub lessons: Lessons,
    /// Forwarding policy.
    #[serde(default)]
    pub media: Media,
    /// Session, rate and connection limits.
    #[serde(default)]
    pub limits: Limits,
}

/// Listening addresses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// HTTP listener for WHIP/WHEP, the pages, /metrics and /healthz ("IP:PORT").
    #[serde(default = "default_http")]
    pub http: String,
    /// UDP listener for WebRTC media ("IP:PORT"): media worker `i` listens on PORT+i
    /// (open them all in the firewall); port 0 picks free ports.
    #[serde(default = "default_udp")]
    pub udp: String,
    /// Media worker threads, each with its own UDP port and its own lessons (a
    /// lesson's sessions share one worker). Null or absent: one per CPU core.
    #[serde(default)]
    #[schemars(range(min = 1, max = 256))]
    pub workers: Option<usize>,
    /// IP addresses offered to browsers as ICE candidates. Empty: the UDP listener's
    /// own address (which must then not be 0.0.0.0 or ::).
    #[serde(default)]
    pub advertise: Vec<String>,
    /// Largest accepted SDP body in bytes; bigger requests get 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// On SIGTERM the relay refuses new sessions and lets lessons in progress go on
    /// for at most this long (e.g. "30m"), then exits. A second signal stops it at once.
    #[serde(default = "default_drain")]
    pub drain_timeout: String,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            http: default_http(),
            udp: default_udp(),
            workers: None,
            advertise: vec![],
            max_body_bytes: default_max_body(),
            drain_timeout: default_drain(),
        }
    }
}

/// Token settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// HMAC secret for tokens (at least 16 characters). Prefer `token_secret_file`.
    #[serde(default)]
    pub token_secret: Option<String>,
    /// File holding the HMAC secret (first line), relative to the config file.
    #[serde(default)]
    pub token_secret_file: Option<String>,
    /// Lifetime of tokens made by `classroom-relay token` without `--ttl`, e.g. "4h".
    #[serde(default = "default_ttl")]
    pub default_ttl: String,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            token_secret: None,
            token_secret_file: None,
            default_ttl: default_ttl(),
        }
    }
}

/// Lessons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lessons {
    /// If set, only these lesson names are served; otherwise a lesson exists from the
    /// first valid token that names it.
    #[serde(default)]
    pub allowed: Option<Vec<String>>,
    /// Lesson whose URLs `serve` prints at start-up; null prints none.
    #[serde(default = "default_demo")]
    pub demo: Option<String>,
    /// School ids for the printed demo classroom URLs.
    #[serde(default = "default_demo_schools")]
    pub demo_schools: Vec<String>,
    /// Names the teacher page shows for school ids (the tokens' `school`), for
    /// example `{"school-1": "Karaoy village school"}`; a school without one shows
    /// its id.
    #[serde(default)]
    pub school_names: BTreeMap<String, String>,
}

impl Default for Lessons {
    fn default() -> Self {
        Lessons {
            allowed: None,
            demo: default_demo(),
            demo_schools: default_demo_schools(),
            school_names: BTreeMap::new(),
        }
    }
}

/// Which simulcast layer a classroom gets unless it asks otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Low,
    Medium,
    #[default]
    High,
}

/// Forwarding policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Media {
    /// Layer a classroom gets by default: "low", "medium" or "high".
    #[serde(default)]
    pub default_layer: Layer,
    /// At most one keyframe request to the teacher per stream per this many ms
    /// (100..=10000).
    #[serde(default = "default_kf_interval")]
    pub keyframe_interval_ms: u64,
    /// Accept H.264 from teachers that offer it (VP8 is always accepted).
    #[serde(default = "default_true")]
    pub h264: bool,
    /// Estimate each classroom's link (TWCC) and forward the layers it carries, with
    /// `default_layer` (or `?layer=`) as the highest. False: every classroom gets its
    /// preferred layer whatever its link.
    #[serde(default = "default_true")]
    pub adaptation: bool,
    /// The longest a classroom on a long, lossy round trip (a satellite hop) may be
    /// asked to hold the teacher's picture so that retransmissions arrive before a
    /// frame is due (the playout-delay header extension): fewer freezes for that
    /// much more delay. 0 turns it off.
    #[serde(default = "default_repair_delay_max")]
    pub repair_delay_max_ms: u64,
}

impl Default for Media {
    fn default() -> Self {
        Media {
            default_layer: Layer::High,
            keyframe_interval_ms: default_kf_interval(),
            h264: true,
            adaptation: true,
            repair_delay_max_ms: default_repair_delay_max(),
        }
    }
}

fn default_repair_delay_max() -> u64 {
    1500
}
fn default_http() -> String {
    "127.0.0.1:8080".into()
}
fn default_udp() -> String {
    "127.0.0.1:8189".into()
}
fn default_max_body() -> usize {
    64 * 1024
}
fn default_drain() -> String {
    "30m".into()
}
fn default_ttl() -> String {
    "4h".into()
}
fn default_demo() -> Option<String> {
    Some("demo".into())
}
fn default_demo_schools() -> Vec<String> {
    vec!["school-1".into(), "school-2".into(), "school-3".into()]
}
fn default_kf_interval() -> u64 {
    500
}
fn default_true() -> bool {
    true
}

/// One thing wrong with a configuration, at a JSON path like `server.advertise[1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} (line {line}, column {column}): {message}")]
    Syntax {
        /// JSON path of the offending value ("." for the document).
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{} problem(s):\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// Every problem, each with its JSON path.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            ConfigError::Read { path, source } => vec![Problem {
                path: ".".into(),
                message: format!("cannot read {}: {source}", path.display()),
            }],
            ConfigError::Syntax {
                path,
                line,
                column,
                message,
            } => vec![Problem {
                path: path.clone(),
                message: format!("{message} (line {line}, column {column})"),
            }],
            ConfigError::Invalid(v) => v.clone(),
        }
    }
}

/// A validated configuration with its secret resolved.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub http: SocketAddr,
    pub udp: SocketAddr,
    pub advertise: Vec<IpAddr>,
    /// Media workers to run (`server.workers`, or the number of cores).
    pub workers: usize,
    pub token_secret: String,
    /// True when no secret was configured and [`DEVELOPMENT_SECRET`] is in use.
    pub development_secret: bool,
    pub default_ttl: std::time::Duration,
    pub drain_timeout: std::time::Duration,
}

impl Config {
    /// Parse JSON text (no validation).
    pub fn from_json(text: &str) -> Result<Config, ConfigError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            ConfigError::Syntax {
                path,
                line: inner.line(),
                column: inner.column(),
                message: strip_position(&inner.to_string()),
            }
        })
    }

    /// Read, parse and validate a file.
    pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_json(&text)?.validate(path.parent())
    }

    /// Validate, resolving `token_secret_file` relative to `base`.
    pub fn validate(self, base: Option<&Path>) -> Result<Loaded, ConfigError> {
        let mut problems = Vec::new();
        let mut bad = |path: &str, message: String| {
            problems.push(Problem {
                path: path.into(),
                message,
            })
        };
        let http = parse_addr(&self.server.http)
            .map_err(|m| bad("server.http", m))
            .ok();
        let udp = parse_addr(&self.server.udp)
            .map_err(|m| bad("server.udp", m))
            .ok();
        let mut advertise = Vec::new();
        for (i, a) in self.server.advertise.iter().enumerate() {
            match a.parse::<IpAddr>() {
                Ok(ip) if ip.is_unspecified() => bad(
                    &format!("server.advertise[{i}]"),
                    format!("{a} is not an address a browser can reach; give the host's real IP"),
                ),
                Ok(ip) => advertise.push(ip),
                Err(_) => bad(
                    &format!("server.advertise[{i}]"),
                    format!("{a:?} is not an IP address (example: \"192.168.1.10\")"),
                ),
            }
        }
        if let Some(udp) = udp {
            if self.server.advertise.is_empty() {
                if udp.ip().is_unspecified() {
                    bad(
                        "server.advertise",
                        format!("server.udp is {udp}: list the IP addresses browsers should use in server.advertise"),
                    );
                } else {
                    advertise.push(udp.ip());
                }
            }
        }
        let workers = match self.server.workers {
            Some(n) if !(1..=256).contains(&n) => {
                bad("server.workers", format!("{n} is outside 1..=256"));
                1
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get().min(256)),
        };
        if let Some(udp) = udp {
            if udp.port() != 0 && udp.port() as usize + workers - 1 > 65535 {
                bad(
                    "server.udp",
                    format!(
                        "{workers} media workers need ports {} to {}, past 65535; lower the port or server.workers",
                        udp.port(),
                        udp.port() as usize + workers - 1
                    ),
                );
            }
        }
        if self.server.max_body_bytes < 1024 {
            bad(
                "server.max_body_bytes",
                format!(
                    "{} is too small for any SDP offer; use at least 1024",
                    self.server.max_body_bytes
                ),
            );
        }
        let drain = parse_duration(&self.server.drain_timeout)
            .map_err(|m| bad("server.drain_timeout", m))
            .ok();
        let ttl = parse_duration(&self.auth.default_ttl)
            .map_err(|m| bad("auth.default_ttl", m))
            .ok();
        let mut secret = None;
        match (&self.auth.token_secret, &self.auth.token_secret_file) {
            (Some(_), Some(_)) => bad(
                "auth",
                "give token_secret or token_secret_file, not both".into(),
            ),
            (Some(s), None) => secret = Some(s.clone()),
            (None, Some(f)) => {
                let p = base.map(|b| b.join(f)).unwrap_or_else(|| PathBuf::from(f));
                match std::fs::read_to_string(&p) {
                    Ok(t) => secret = Some(t.lines().next().unwrap_or("").trim().to_string()),
                    Err(e) => bad(
                        "auth.token_secret_file",
                        format!("cannot read {}: {e}", p.display()),
                    ),
                }
            }
            (None, None) => {}
        }
        if let Some(s) = &secret {
            if s.chars().count() < 16 {
                bad(
                    if self.auth.token_secret.is_some() {
                        "auth.token_secret"
                    } else {
                        "auth.token_secret_file"
                    },
                    "the token secret must be at least 16 characters".into(),
                );
            }
        }
        if let Some(list) = &self.lessons.allowed {
            if list.is_empty() {
                bad(
                    "lessons.allowed",
                    "an empty list would refuse every lesson; remove it to allow all".into(),
                );
            }
            for (i, l) in list.iter().enumerate() {
                if let Err(m) = check_name(l) {
                    bad(&format!("lessons.allowed[{i}]"), m);
                }
            }
        }
        if let Some(d) = &self.lessons.demo {
            if let Err(m) = check_name(d) {
                bad("lessons.demo", m);
            } else if let Some(list) = &self.lessons.allowed {
                if !list.contains(d) {
                    bad("lessons.demo", format!("{d:?} is not in lessons.allowed"));
                }
            }
        }
        for (i, s) in self.lessons.demo_schools.iter().enumerate() {
            if let Err(m) = check_name(s) {
                bad(&format!("lessons.demo_schools[{i}]"), m);
            }
        }
        for (id, name) in &self.lessons.school_names {
            let field = format!("lessons.school_names.{id}");
            if let Err(m) = check_name(id) {
                bad(&field, m);
            } else if name.trim().is_empty() || name.chars().count() > 100 {
                bad(&field, "a school's name must be 1 to 100 characters".into());
            }
        }
        if !(100..=10_000).contains(&self.media.keyframe_interval_ms) {
            bad(
                "media.keyframe_interval_ms",
                format!("{} is outside 100..=10000", self.media.keyframe_interval_ms),
            );
        }
        self.limits.check(&mut problems);
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
        let development_secret = secret.is_none();
        Ok(Loaded {
            http: http.expect("checked"),
            udp: udp.expect("checked"),
            advertise,
            workers,
            token_secret: secret.unwrap_or_else(|| DEVELOPMENT_SECRET.into()),
            development_secret,
            default_ttl: ttl.expect("checked"),
            drain_timeout: drain.expect("checked"),
            config: self,
        })
    }

    /// The JSON Schema of this file format, for editors.
    pub fn json_schema() -> String {
        let schema = schemars::schema_for!(Config);
        serde_json::to_string_pretty(&schema).expect("schema serializes") + "\n"
    }
}

/// Lesson and school names: 1 to 64 of `A-Z a-z 0-9 - _ .`.
pub fn check_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid name: use 1 to 64 letters, digits, '-', '_' or '.'"
        ))
    }
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        format!("{s:?} is not IP:PORT (example: \"127.0.0.1:8080\" or \"[::1]:8080\")")
    })
}

/// serde_json appends " at line L column C"; we report those separately.
fn strip_position(m: &str) -> String {
    match m.rfind(" at line ") {
        Some(i) => m[..i].to_string(),
        None => m.to_string(),
    }
}

#[cfg(test)]
mod tests;
