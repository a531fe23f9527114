//! The HTTP server: a thin axum layer over [`crate::api`] and the media edge.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::to_bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use relay_core::{LayerPref, PeerId};
use relay_webrtc::Handle;
use serde::Deserialize;
use tracing::info;

use crate::api::{authorize, check_content_type, edge_error, ApiError};
use crate::metrics;
use crate::pages;
use crate::token::TokenRole;

/// What the HTTP layer needs from the configuration.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub token_secret: String,
    /// Only these lessons, if set.
    pub allowed_lessons: Option<Vec<String>>,
    pub max_body_bytes: usize,
}

struct Resource {
    peer: PeerId,
    lesson: String,
}

struct AppState {
    cfg: HttpConfig,
    edge: Handle,
    resources: Mutex<HashMap<String, Resource>>,
}

type Shared = Arc<AppState>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, format!("{}\n", self.message)).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }
}

/// Build the router.
pub fn router(cfg: HttpConfig, edge: Handle) -> Router {
    let state = Arc::new(AppState {
        cfg,
        edge,
        resources: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/", get(|| async { Html(pages::INDEX) }))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_handler))
        .route("/api/lessons", get(lessons_json))
        // Browsers ask for it on every page; an empty answer keeps consoles clean.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/teach/{lesson}", get(|| async { Html(pages::TEACH) }))
        .route("/class/{lesson}", get(|| async { Html(pages::CLASS) }))
        .route("/assets/{file}", get(asset))
        .route("/whip/{lesson}", post(whip).options(options_endpoint))
        .route("/whep/{lesson}", post(whep).options(options_endpoint))
        .route(
            "/whip/{lesson}/{id}",
            axum::routing::delete(delete_resource)
                .patch(patch_resource)
                .options(options_resource),
        )
        .route(
            "/whep/{lesson}/{id}",
            axum::routing::delete(delete_resource)
                .patch(patch_resource)
                .options(options_resource),
        )
        .layer(axum::middleware::map_response(add_cors))
        .with_state(state)
}

async fn add_cors(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, POST, DELETE, PATCH, OPTIONS"),
    );
    h.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("Authorization, Content-Type, If-Match"),
    );
    h.insert(
        "access-control-expose-headers",
        HeaderValue::from_static("Location, Link, Accept-Post, Accept-Patch, ETag"),
    );
    r
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics_handler(State(s): State<Shared>) -> Response {
    match s.edge.stats().await {
        Ok(stats) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            metrics::render(&stats),
        )
            .into_response(),
        Err(e) => edge_error(e).into_response(),
    }
}

async fn lessons_json(State(s): State<Shared>) -> Response {
    match s.edge.stats().await {
        Ok(stats) => axum::Json(crate::status::lessons_json(&stats)).into_response(),
        Err(e) => edge_error(e).into_response(),
    }
}

async fn asset(Path(file): Path<String>) -> Response {
    match pages::asset(&file) {
        Some((ct, body)) => ([(header::CONTENT_TYPE, ct)], body).into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND, format!("no asset {file:?}")).into_response(),
    }
}

async fn options_endpoint() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            ("accept-post", "application/sdp"),
            ("allow", "POST, OPTIONS"),
        ],
    )
        .into_response()
}

async fn options_resource() -> Response {
    (
        StatusCode::NO_CONTENT,
        [("allow", "DELETE, PATCH, OPTIONS")],
    )
        .into_response()
}

/// Trickle ICE and ICE restarts are not supported: every candidate is in the answer
/// (the relay has only host candidates), and a client that needs a restart publishes
/// again (RFC 9725 §4.3 lets a server refuse PATCH with 405).
async fn patch_resource() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [("allow", "DELETE, OPTIONS")],
        "trickle ICE and ICE restart are not supported: all candidates are in the answer; to reconnect, POST a new offer\n",
    )
        .into_response()
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Read an SDP body after the checks every POST shares.
async fn read_offer(s: &AppState, req: Request) -> Result<String, ApiError> {
    check_content_type(header_str(req.headers(), header::CONTENT_TYPE))?;
    let limit = s.cfg.max_body_bytes;
    let too_big = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the SDP offer is larger than {limit} bytes"),
        )
    };
    if header_str(req.headers(), header::CONTENT_LENGTH)
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > limit)
    {
        return Err(too_big());
    }
    let bytes = to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| too_big())?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the SDP offer is not UTF-8 text"))?;
    if !text.trim_start().starts_with("v=") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the body is not an SDP offer (it must start with \"v=0\")",
        ));
    }
    Ok(text)
}

fn created(kind: &str, lesson: &str, id: &str, answer: String) -> Response {
    let location = format!("/{kind}/{lesson}/{id}");
    let mut r = (StatusCode::CREATED, answer).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    r
}

fn new_resource_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

async fn prune(s: &AppState) {
    // Sessions that ended without DELETE (ICE timeout, replaced teacher).
    let peers: Vec<(String, PeerId)> = s
        .resources
        .lock()
        .expect("resources lock")
        .iter()
        .map(|(k, v)| (k.clone(), v.peer))
        .collect();
    for (k, peer) in peers {
        if !s.edge.is_alive(peer).await.unwrap_or(true) {
            s.resources.lock().expect("resources lock").remove(&k);
        }
    }
}

fn check_token(
    s: &AppState,
    headers: &HeaderMap,
    lesson: &str,
    role: TokenRole,
) -> Result<crate::token::Claims, ApiError> {
    authorize(
        &s.cfg.token_secret,
        header_str(headers, header::AUTHORIZATION),
        lesson,
        role,
        s.cfg.allowed_lessons.as_deref(),
        now_unix(),
    )
}

/// Record a new WHIP/WHEP session under a fresh resource id and answer 201.
fn register(
    s: &AppState,
    kind: &str,
    lesson: &str,
    result: Result<relay_webrtc::Session, relay_webrtc::EdgeError>,
) -> Response {
    match result {
        Ok(session) => {
            let id = new_resource_id();
            s.resources.lock().expect("resources lock").insert(
                id.clone(),
                Resource {
                    peer: session.peer,
                    lesson: lesson.to_string(),
                },
            );
            info!(lesson, peer = %session.peer, kind, "session created");
            created(kind, lesson, &id, session.answer)
        }
        Err(e) => edge_error(e).into_response(),
    }
}

async fn whip(State(s): State<Shared>, Path(lesson): Path<String>, req: Request) -> Response {
    let claims = match check_token(&s, req.headers(), &lesson, TokenRole::Teacher) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let offer = match read_offer(&s, req).await {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    prune(&s).await;
    let result = s.edge.publish(&lesson, &claims.sid, offer).await;
    register(&s, "whip", &lesson, result)
}

#[derive(Deserialize)]
struct WhepQuery {
    layer: Option<String>,
}

async fn whep(
    State(s): State<Shared>,
    Path(lesson): Path<String>,
    Query(q): Query<WhepQuery>,
    req: Request,
) -> Response {
    let claims = match check_token(&s, req.headers(), &lesson, TokenRole::Classroom) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let layer = match q.layer.as_deref().map(str::parse::<LayerPref>).transpose() {
        Ok(l) => l,
        Err(m) => return ApiError::new(StatusCode::BAD_REQUEST, m).into_response(),
    };
    let offer = match read_offer(&s, req).await {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    prune(&s).await;
    let school = claims.school.clone().unwrap_or_else(|| "unknown".into());
    let result = s.edge.subscribe(&lesson, &school, layer, offer).await;
    register(&s, "whep", &lesson, result)
}

async fn delete_resource(
    State(s): State<Shared>,
    Path((lesson, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let entry = s
        .resources
        .lock()
        .expect("resources lock")
        .get(&id)
        .map(|r| (r.peer, r.lesson.clone()));
    let Some((peer, res_lesson)) = entry.filter(|(_, l)| *l == lesson) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "no such session (it may have ended already)",
        )
        .into_response();
    };
    // The resource URL is unguessable; a token, if sent, must still be for this lesson.
    if let Some(h) = header_str(&headers, header::AUTHORIZATION) {
        let token = h.strip_prefix("Bearer ").unwrap_or(h).trim();
        match crate::token::verify(&s.cfg.token_secret, token, now_unix()) {
            Ok(c) if c.lesson == res_lesson => {}
            Ok(_) => {
                return ApiError::new(StatusCode::FORBIDDEN, "this token is for another lesson")
                    .into_response()
            }
            Err(e) => {
                return ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()).into_response()
            }
        }
    }
    s.resources.lock().expect("resources lock").remove(&id);
    match s.edge.close(peer).await {
        Ok(true) => (StatusCode::OK, "session ended\n").into_response(),
        Ok(false) => ApiError::new(
            StatusCode::NOT_FOUND,
            "no such session (it had ended already)",
        )
        .into_response(),
        Err(e) => edge_error(e).into_response(),
    }
}
