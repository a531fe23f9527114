//! Text the relay and the simulator read from people: bearer tokens, the JSON
//! configuration, scenario files and the access-kinds file.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use relay_config::Config;
use relay_http::api::authorize;
use relay_http::token::{sign, verify, TokenError, TokenRole};
use relay_sim::population::{
    self, documented_plan, draw_link, file_plan, AccessFile, Documented, Draw, Link, Plan,
    Scenario, ACCESS_KINDS,
};
use sha2::Sha256;

use crate::Reader;

const SECRET: &str = "fuzz-secret-0123456789";
const NOW: u64 = 1_800_000_000;

/// Tokens: a token that verifies re-signs to the same claims, does not verify
/// under another secret, and `authorize` lets it in only for its own lesson and
/// role. Input: a mode byte, then text. Mode 0: the text is the token. Mode 1:
/// the text is the claims JSON, signed properly, so the JSON and expiry checks
/// behind the signature are reached. Mode 2: the same with a bad signature.
pub fn token(data: &[u8]) {
    let mut r = Reader::new(data);
    let mode = r.u8() % 3;
    let text = String::from_utf8_lossy(r.rest());
    let token = match mode {
        0 => text.into_owned(),
        _ => {
            let body = format!("crt1.{}", B64.encode(text.as_bytes()));
            let mut m = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key");
            m.update(body.as_bytes());
            let mut sig = m.finalize().into_bytes().to_vec();
            if mode == 2 {
                sig[0] ^= 1;
            }
            format!("{body}.{}", B64.encode(sig))
        }
    };
    let verified = verify(SECRET, &token, NOW);
    if mode == 2 {
        assert!(verified.is_err(), "a token with a wrong signature verified");
    }
    if let Ok(claims) = &verified {
        assert!(claims.exp > NOW, "an expired token verified");
        let again = sign(SECRET, claims);
        assert_eq!(
            verify(SECRET, &again, NOW).as_ref(),
            Ok(claims),
            "re-signed claims differ"
        );
        assert_eq!(
            verify("another-secret-987654321", &token, NOW),
            Err(TokenError::BadSignature)
        );
        assert!(
            verify(SECRET, &token, claims.exp).is_err(),
            "verified at its expiry"
        );
    }
    let lesson = verified.as_ref().map_or("math", |c| c.lesson.as_str());
    let allowed = [lesson.to_string()];
    // The header forms, each with a role and lesson list of its own (from the
    // input's length, so every combination comes up).
    let n = data.len();
    let headers = [
        format!("Bearer {token}"),
        format!("bearer  {token} "),
        token.clone(),
    ];
    for (i, header) in headers.iter().enumerate() {
        let role = [TokenRole::Teacher, TokenRole::Classroom][(n + i) % 2];
        let list = [None, Some(&allowed[..])][(n / 2 + i) % 2];
        match authorize(SECRET, Some(header), lesson, &[role], list, NOW) {
            Ok(c) => {
                assert_eq!(Ok(&c), verified.as_ref(), "authorize disagrees with verify");
                assert_eq!((c.lesson.as_str(), c.role), (lesson, role));
            }
            Err(e) => assert!(
                [401, 403, 404].contains(&e.status.as_u16()) && !e.message.is_empty(),
                "{e:?}"
            ),
        }
    }
}

/// A folder with the two secret files a fuzzed `token_secret_file` may name.
fn secret_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("relay-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir");
        std::fs::write(
            d.join("secret.txt"),
            "a-long-enough-secret-value\nsecond line\n",
        )
        .expect("write");
        std::fs::write(d.join("short.txt"), "short\n").expect("write");
        d
    })
}

/// The configuration: a parsed config serialises and parses back equal; one that
/// validates does so again after that round trip, to the same addresses and
/// secret; one that does not names at least one problem with its path.
///
/// `token_secret_file` is mapped to one of three files in a folder of the
/// harness's own (present, too short, missing), so the target never reads
/// arbitrary paths.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut cfg = match Config::from_json(text) {
        Ok(c) => c,
        Err(e) => {
            assert!(!e.problems().is_empty() && !e.to_string().is_empty());
            return;
        }
    };
    let json = serde_json::to_string(&cfg).expect("a config serialises");
    assert_eq!(
        Config::from_json(&json).ok().as_ref(),
        Some(&cfg),
        "round trip changed {json}"
    );
    if let Some(f) = &mut cfg.auth.token_secret_file {
        *f = ["secret.txt", "short.txt", "missing.txt"][f.len() % 3].to_string();
    }
    let base = secret_dir();
    match cfg.clone().validate(Some(base)) {
        Ok(l) => {
            assert!(l.token_secret.chars().count() >= 16);
            assert_eq!(
                l.development_secret,
                cfg.auth.token_secret.is_none() && cfg.auth.token_secret_file.is_none()
            );
            assert!(!l.advertise.is_empty() && l.advertise.iter().all(|a| !a.is_unspecified()));
            assert!(l.default_ttl >= Duration::from_secs(1));
            assert!((100..=10_000).contains(&l.config.media.keyframe_interval_ms));
            let json = serde_json::to_string(&l.config).expect("serialises");
            let again = Config::from_json(&json)
                .expect("parses")
                .validate(Some(base))
                .expect("a valid config stays valid after a round trip");
            assert_eq!((again.http, again.udp), (l.http, l.udp));
            assert_eq!(again.advertise, l.advertise);
            assert_eq!(again.token_secret, l.token_secret);
            assert_eq!(again.default_ttl, l.default_ttl);
            assert_eq!(
                relay_config::parse_duration(&relay_config::format_duration(l.default_ttl)),
                Ok(l.default_ttl)
            );
        }
        Err(e) => {
            let p = e.problems();
            assert!(!p.is_empty(), "refused without a problem");
            assert!(
                p.iter()
                    .all(|p| !p.path.is_empty() && !p.message.is_empty()),
                "{p:?}"
            );
        }
    }
}

fn embedded() -> &'static (Documented, AccessFile) {
    static E: OnceLock<(Documented, AccessFile)> = OnceLock::new();
    E.get_or_init(|| {
        let kinds = AccessFile::load("access-kinds.json", ACCESS_KINDS).expect("embedded kinds");
        (Documented::embedded(), kinds)
    })
}

/// A link the replay can run: every figure inside the bounds its arithmetic
/// (rates times 1000, delays added up, schedules stepped) is safe within.
fn check_link(l: &Link, what: &str) {
    use population::{MAX_EVERY_S, MAX_JITTER_MS, MAX_KBPS, MAX_RTT_MS};
    assert!(
        (50..=MAX_KBPS).contains(&l.down_kbps),
        "{what}: down {}",
        l.down_kbps
    );
    assert!(
        (50..=MAX_KBPS).contains(&l.up_kbps),
        "{what}: up {}",
        l.up_kbps
    );
    assert!(l.rtt_ms <= MAX_RTT_MS, "{what}: rtt {}", l.rtt_ms);
    assert!(
        l.jitter_ms <= MAX_JITTER_MS,
        "{what}: jitter {}",
        l.jitter_ms
    );
    assert!(
        (0.0..=50.0).contains(&l.loss_pct),
        "{what}: loss {}",
        l.loss_pct
    );
    let v = l.variation;
    assert!((0.0..0.95).contains(&v.depth), "{what}: depth {}", v.depth);
    assert!(v.every_s[0] >= 1 && v.every_s[0] <= v.every_s[1] && v.every_s[1] <= MAX_EVERY_S);
    // What the replay computes from a link.
    let slides = relay_sim::world::teacher_layers(l.up_kbps, true);
    assert!((1..=3).contains(&slides));
    relay_sim::world::layers_fitting(l.down_kbps * 1000);
    let _ = Duration::from_millis(2 * l.rtt_ms + l.jitter_ms) * 2;
}

fn check_plan(p: &Plan, what: &str) {
    for l in &p.lessons {
        assert!(
            (1..=120).contains(&l.minutes),
            "{what}: {} minutes",
            l.minutes
        );
        assert!(
            !l.schools.is_empty(),
            "{what}: hub {} without schools",
            l.hub
        );
        check_link(&l.uplink, what);
        for s in &l.schools {
            check_link(&s.link, what);
        }
    }
}

/// Scenario files (and the `--scenario` argument): a plan built from a file holds
/// only links the replay can run; refusals name the file.
pub fn scenario(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (doc, kinds) = embedded();
    match Scenario::parse(text, doc) {
        Ok(Scenario::Region(r)) => assert!(doc.regions().contains(&r)),
        Ok(Scenario::Upgrade { region, .. }) => assert!(doc.regions().contains(&region)),
        Ok(Scenario::File(p)) => assert!(p.to_string_lossy().ends_with(".json")),
        Ok(Scenario::National) | Err(_) => {}
    }
    let seed = data.len() as u64;
    match file_plan("fuzz.json", text, kinds, seed) {
        Ok((_, plan)) => {
            assert!(!plan.lessons.is_empty());
            check_plan(&plan, "scenario file");
        }
        Err(e) => assert!(e.to_string().starts_with("fuzz.json: "), "{e}"),
    }
}

/// The access-kinds file: one that loads serialises and loads back alike, and
/// every link drawn from it (for either bin, for a regional plan, for a scenario
/// file) is one the replay can run, inside the bin it was drawn for.
pub fn access_kinds(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let kinds = match AccessFile::load("kinds.json", text) {
        Ok(k) => k,
        Err(e) => {
            assert!(e.to_string().starts_with("kinds.json: "), "{e}");
            return;
        }
    };
    let json = serde_json::to_string(&kinds).expect("serialises");
    let again = AccessFile::load("kinds.json", &json).expect("a loaded file loads again");
    assert_eq!(
        again.kinds.keys().collect::<Vec<_>>(),
        kinds.kinds.keys().collect::<Vec<_>>()
    );
    let seed = data.len() as u64;
    let mut d = Draw::new(seed);
    for name in kinds.kinds.keys() {
        for bin in [Some("up_to_4"), Some("over_4"), None] {
            let l = draw_link(&kinds, name, bin, &mut d);
            check_link(&l, name);
            match bin {
                Some("up_to_4") => assert!(l.down_kbps <= population::BIN_EDGE_KBPS),
                Some(_) => assert!(l.down_kbps > population::BIN_EDGE_KBPS),
                None => {}
            }
        }
    }
    let (doc, _) = embedded();
    let regions = doc.regions();
    let region = &regions[seed as usize % regions.len()];
    check_plan(
        &documented_plan(doc, &kinds, Some(region), seed),
        "regional plan",
    );
    let first = kinds
        .kinds
        .keys()
        .next()
        .expect("validated: bins name kinds");
    let q = serde_json::to_string(first).expect("a string serialises");
    let file = format!(
        r#"{{"name":"f","hubs":[{{"id":"h","uplink":{{"access":{q}}},"schools":[{{"id":"s","access":{q}}}]}}]}}"#
    );
    let (_, plan) = file_plan("f.json", &file, &kinds, seed).expect("a scenario of known kinds");
    check_plan(&plan, "scenario with these kinds");
}
