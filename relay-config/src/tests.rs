use super::*;

fn problems(json: &str) -> Vec<Problem> {
    match Config::from_json(json).and_then(|c| c.validate(None)) {
        Ok(_) => vec![],
        Err(e) => e.problems(),
    }
}

#[test]
fn default_is_valid_and_uses_development_secret() {
    let l = Config::default().validate(None).unwrap();
    assert!(l.development_secret);
    assert_eq!(l.http.to_string(), "127.0.0.1:8080");
    assert_eq!(l.advertise, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
    assert_eq!(l.default_ttl.as_secs(), 4 * 3600);
}

#[test]
fn unknown_field_names_its_path() {
    let p = problems(r#"{"server": {"htp": "1.2.3.4:5"}}"#);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].path, "server.htp");
    assert!(p[0].message.contains("unknown field"), "{}", p[0].message);
}

#[test]
fn wrong_type_names_its_path() {
    let p = problems(r#"{"media": {"keyframe_interval_ms": "fast"}}"#);
    assert_eq!(p[0].path, "media.keyframe_interval_ms");
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let p = problems(
        r#"{
        "server": {"http": "localhost", "udp": "0.0.0.0:9", "advertise": ["0.0.0.0", "nope"]},
        "auth": {"token_secret": "short", "default_ttl": "forever"},
        "lessons": {"allowed": ["ok", "bad name"], "demo": "other"},
        "media": {"keyframe_interval_ms": 5}
    }"#,
    );
    let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "server.http",
            "server.advertise[0]",
            "server.advertise[1]",
            "auth.default_ttl",
            "auth.token_secret",
            "lessons.allowed[1]",
            "lessons.demo",
            "media.keyframe_interval_ms",
        ]
    );
}

#[test]
fn wildcard_udp_needs_advertise() {
    let p = problems(r#"{"server": {"udp": "0.0.0.0:9"}}"#);
    assert_eq!(p[0].path, "server.advertise");
}

#[test]
fn example_files_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let d = Config::load(&dir.join("default.json")).unwrap();
    assert_eq!(
        d.config,
        Config::default(),
        "examples/default.json shows the defaults"
    );
    let h = Config::load(&dir.join("hub-school.json")).unwrap();
    assert!(!h.development_secret);
    assert_eq!(h.token_secret, "replace-this-with-a-long-random-secret");
    assert_eq!(h.config.media.default_layer, Layer::Medium);
}

#[test]
fn missing_file_is_a_clear_error() {
    let e = Config::load(Path::new("/nonexistent/relay.json")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/relay.json"));
}

/// The schema file for editors must match the types. Regenerate with
/// `UPDATE_SCHEMA=1 cargo test -p relay-config`.
#[test]
fn schema_file_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.schema.json");
    let fresh = Config::json_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == fresh,
        "relay-config/config.schema.json is stale: run UPDATE_SCHEMA=1 cargo test -p relay-config"
    );
}

#[test]
fn limits_have_defaults_and_refuse_zero() {
    let l = Config::default().validate(None).unwrap();
    assert_eq!(l.config.limits.school_sessions, 8);
    assert_eq!(l.drain_timeout.as_secs(), 30 * 60);
    let p = problems(
        r#"{"limits": {"sessions": 0, "teacher_sessions": 1}, "server": {"drain_timeout": "soon"}}"#,
    );
    let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "server.drain_timeout",
            "limits.sessions",
            "limits.teacher_sessions"
        ],
        "{p:?}"
    );
    assert!(p[2].message.contains("reconnect"), "{}", p[2].message);
}
