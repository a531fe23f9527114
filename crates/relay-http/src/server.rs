//! The HTTP server: a thin axum layer over [`crate::api`] and the media edge.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::to_bytes;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use relay_core::{Audience, LayerPref};
use relay_webrtc::Handle;
use serde::Deserialize;
use tracing::{info, warn};

use crate::api::{authorize, check_content_type, edge_error, ApiError};
use crate::metrics;
use crate::pages;
use crate::sessions::{Refusal, Sessions, Ticket, Who};
use crate::token::TokenRole;

/// A request body (the SDP offer) must arrive within this time.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the HTTP layer needs from the configuration.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub token_secret: String,
    /// Only these lessons, if set.
    pub allowed_lessons: Option<Vec<String>>,
    pub max_body_bytes: usize,
    pub limits: relay_config::Limits,
    /// Display names of school ids, for the class list.
    pub school_names: BTreeMap<String, String>,
}

pub(crate) struct AppState {
    pub(crate) cfg: HttpConfig,
    pub(crate) edge: Handle,
    sessions: Mutex<Sessions>,
    /// The last stats snapshot: status requests within [`STATS_FRESH`] share it, so
    /// a flood of `/metrics` or `/api/lessons` does not load the media thread.
    stats: tokio::sync::Mutex<Option<(Instant, Arc<relay_webrtc::EdgeStats>)>>,
    /// The class lists' memory: schools seen per lesson, recent lost pictures.
    pub(crate) classes: Mutex<crate::lesson_api::Classes>,
}

/// How long a stats snapshot is served again.
const STATS_FRESH: Duration = Duration::from_millis(250);

impl AppState {
    pub(crate) async fn stats(
        &self,
    ) -> Result<Arc<relay_webrtc::EdgeStats>, relay_webrtc::EdgeError> {
        let mut cached = self.stats.lock().await;
        if let Some((at, st)) = cached.as_ref() {
            if at.elapsed() < STATS_FRESH {
                return Ok(st.clone());
            }
        }
        let st = Arc::new(self.edge.stats().await?);
        *cached = Some((Instant::now(), st.clone()));
        Ok(st)
    }

    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        // The table stays consistent even if a holder panicked: every update is a
        // few map operations with no early return.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) type Shared = Arc<AppState>;

/// What the binary controls from outside requests: draining on SIGTERM.
#[derive(Clone)]
pub struct Control {
    state: Shared,
}

impl Control {
    /// Refuse new sessions from now on (`503`, `/readyz` `503`); open ones go on.
    pub fn start_draining(&self) {
        self.state.sessions().start_draining();
    }

    /// Sessions open now.
    pub fn open_sessions(&self) -> usize {
        self.state.sessions().open()
    }

    /// Teacher sessions open now (lessons in progress).
    pub fn open_teachers(&self) -> usize {
        self.state.sessions().open_teachers()
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut r = ApiError::new(self.status, self.message).into_response();
        if let Ok(v) = HeaderValue::from_str(&self.retry_after.as_secs().max(1).to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

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

/// Build the router, and start following the edge's ended sessions (call from
/// within the tokio runtime).
pub fn router(cfg: HttpConfig, edge: Handle) -> (Router, Control) {
    let ended = edge.take_ended();
    let state = Arc::new(AppState {
        sessions: Mutex::new(Sessions::new(cfg.limits.clone())),
        stats: tokio::sync::Mutex::new(None),
        classes: Mutex::new(Default::default()),
        cfg,
        edge,
    });
    if let Some(mut ended) = ended {
        let s = state.clone();
        tokio::spawn(async move {
            while let Some(peer) = ended.recv().await {
                s.sessions().ended(peer);
            }
        });
    }
    let control = Control {
        state: state.clone(),
    };
    let router = Router::new()
        .route("/", get(|| async { Html(pages::INDEX) }))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .route("/api/lessons", get(lessons_json))
        // Browsers ask for it on every page; an empty answer keeps consoles clean.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/teach/{lesson}", get(|| async { Html(pages::TEACH) }))
        .route("/class/{lesson}", get(|| async { Html(pages::CLASS) }))
        .route("/assets/{file}", get(asset))
        .route("/whip/{lesson}", post(whip).options(options_endpoint))
        .route("/whep/{lesson}", post(whep).options(options_endpoint))
        .route("/talk/{lesson}", post(talk).options(options_endpoint))
        .route("/api/lessons/{lesson}", get(crate::lesson_api::lesson))
        .route(
            "/api/lessons/{lesson}/events",
            get(crate::lesson_api::events),
        )
        .route("/api/lessons/{lesson}/hand", post(crate::lesson_api::hand))
        .route(
            "/api/lessons/{lesson}/floor",
            post(crate::lesson_api::floor),
        )
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
        .route(
            "/talk/{lesson}/{id}",
            axum::routing::delete(delete_resource)
                .patch(patch_resource)
                .options(options_resource),
        )
        .layer(axum::middleware::map_response(add_cors))
        .with_state(state);
    (router, control)
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

/// Alive: the media thread runs. A supervisor restarts the relay when this fails.
async fn healthz(State(s): State<Shared>) -> Response {
    if s.edge.media_running() {
        "ok\n".into_response()
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the media edge has stopped; the relay must be restarted",
        )
        .into_response()
    }
}

/// Ready: alive, not draining, and room for another session.
async fn readyz(State(s): State<Shared>) -> Response {
    let (accepting, draining) = {
        let t = s.sessions();
        (t.accepting(), t.draining())
    };
    if !s.edge.media_running() {
        return healthz(State(s)).await;
    }
    if accepting {
        return "ready\n".into_response();
    }
    let why = if draining {
        "draining: the relay is shutting down and takes no new sessions"
    } else {
        "full: the relay has as many sessions as limits.sessions allows"
    };
    let mut r = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
    r
}

async fn metrics_handler(State(s): State<Shared>) -> Response {
    match s.stats().await {
        Ok(stats) => {
            let mut text = metrics::render(&stats);
            {
                let t = s.sessions();
                metrics::render_sessions(&mut text, t.open(), t.draining(), t.refused());
            }
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
        }
        Err(e) => edge_error(e).into_response(),
    }
}

async fn lessons_json(State(s): State<Shared>) -> Response {
    match s.stats().await {
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

pub(crate) fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
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
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, to_bytes(req.into_body(), limit)).await {
        Ok(r) => r.map_err(|_| too_big())?,
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the SDP offer did not arrive within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            ))
        }
    };
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

/// Check the request's token (`Authorization: Bearer`) for `lesson` and `roles`.
pub(crate) fn check_token(
    s: &AppState,
    headers: &HeaderMap,
    lesson: &str,
    roles: &[TokenRole],
) -> Result<crate::token::Claims, ApiError> {
    check_token_value(s, header_str(headers, header::AUTHORIZATION), lesson, roles)
}

/// [`check_token`] for an `Authorization` value found elsewhere (`?token=`).
pub(crate) fn check_token_value(
    s: &AppState,
    authorization: Option<&str>,
    lesson: &str,
    roles: &[TokenRole],
) -> Result<crate::token::Claims, ApiError> {
    authorize(
        &s.cfg.token_secret,
        authorization,
        lesson,
        roles,
        s.cfg.allowed_lessons.as_deref(),
        now_unix(),
    )
}

/// The client's address (the TCP peer; behind a reverse proxy, the proxy's).
fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

/// Count a refusal and answer it.
pub(crate) fn refuse(s: &AppState, reason: &'static str, e: ApiError) -> Response {
    s.sessions().count_refusal(reason);
    e.into_response()
}

/// An admitted request: released if the request goes away (the client hung up and
/// its handler was dropped) before the edge's session is confirmed.
struct Admitted {
    state: Shared,
    ticket: Option<Ticket>,
}

impl Admitted {
    fn confirm(mut self, peer: relay_core::PeerId, id: String) {
        if let Some(t) = self.ticket.take() {
            self.state.sessions().confirm(t, peer, id);
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some(t) = self.ticket.take() {
            self.state.sessions().release(t);
        }
    }
}

/// Admit, read the offer, ask the edge; the shared part of WHIP and WHEP.
async fn open_session<F, Fut>(
    s: &Shared,
    kind: &str,
    lesson: &str,
    who: Who,
    req: Request,
    edge_call: F,
) -> Response
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<relay_webrtc::Session, relay_webrtc::EdgeError>>,
{
    // A malformed request is answered for what it is and never counts against a
    // limit; the offer is checked here too, so a bad one never reaches the edge.
    let offer = match read_offer(s, req).await {
        Ok(o) => o,
        Err(e) => return refuse(s, "bad_request", e),
    };
    if let Err(e) = relay_webrtc::check_offer(&offer) {
        warn!(lesson, address = %who.address, "offer refused: {e}");
        return refuse(s, "bad_offer", edge_error(e));
    }
    let admitted = match s.sessions().admit(Instant::now(), &who) {
        Ok(t) => Admitted {
            state: s.clone(),
            ticket: Some(t),
        },
        Err(r) => {
            info!(lesson, school = ?who.school, address = %who.address, reason = r.reason, "session refused: {}", r.message);
            return r.into_response();
        }
    };
    match edge_call(offer).await {
        Ok(session) => {
            let id = new_resource_id();
            admitted.confirm(session.peer, id.clone());
            info!(lesson, peer = %session.peer, kind, "session created");
            created(kind, lesson, &id, session.answer)
        }
        Err(e) => {
            drop(admitted);
            let e = edge_error(e);
            if e.status == StatusCode::BAD_REQUEST {
                warn!(lesson, address = %who.address, "offer refused: {}", e.message);
                refuse(s, "bad_offer", e)
            } else {
                e.into_response()
            }
        }
    }
}

async fn whip(State(s): State<Shared>, Path(lesson): Path<String>, req: Request) -> Response {
    let claims = match check_token(&s, req.headers(), &lesson, &[TokenRole::Teacher]) {
        Ok(c) => c,
        Err(e) => return refuse(&s, "token", e),
    };
    let who = Who {
        lesson: lesson.clone(),
        school: None,
        teacher: Some(claims.sid.clone()),
        address: client_ip(&req),
    };
    let edge = s.edge.clone();
    let l = lesson.clone();
    open_session(&s, "whip", &lesson, who, req, |offer| async move {
        edge.publish(&l, &claims.sid, offer).await
    })
    .await
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
    // A classroom watches the teacher; the teacher hears the floor.
    let roles = [TokenRole::Classroom, TokenRole::Teacher];
    let claims = match check_token(&s, req.headers(), &lesson, &roles) {
        Ok(c) => c,
        Err(e) => return refuse(&s, "token", e),
    };
    let layer = match q.layer.as_deref().map(str::parse::<LayerPref>).transpose() {
        Ok(l) => l,
        Err(m) => return refuse(&s, "bad_request", ApiError::new(StatusCode::BAD_REQUEST, m)),
    };
    let (audience, school, who) = match claims.role {
        TokenRole::Teacher => (
            Audience::Teacher,
            String::new(),
            Who {
                lesson: lesson.clone(),
                school: None,
                teacher: Some(claims.sid.clone()),
                address: client_ip(&req),
            },
        ),
        TokenRole::Classroom => {
            let school = claims.school.clone().unwrap_or_else(|| "unknown".into());
            let who = Who {
                lesson: lesson.clone(),
                school: Some(school.clone()),
                teacher: None,
                address: client_ip(&req),
            };
            (Audience::Classroom, school, who)
        }
    };
    let edge = s.edge.clone();
    let l = lesson.clone();
    open_session(&s, "whep", &lesson, who, req, |offer| async move {
        edge.subscribe(&l, &school, (audience, layer), offer).await
    })
    .await
}

/// A classroom publishes its microphone (RFC 9725 shape); its voice is forwarded
/// only while its school holds the floor.
async fn talk(State(s): State<Shared>, Path(lesson): Path<String>, req: Request) -> Response {
    let claims = match check_token(&s, req.headers(), &lesson, &[TokenRole::Classroom]) {
        Ok(c) => c,
        Err(e) => return refuse(&s, "token", e),
    };
    let school = claims.school.clone().unwrap_or_else(|| "unknown".into());
    let who = Who {
        lesson: lesson.clone(),
        school: Some(school.clone()),
        teacher: None,
        address: client_ip(&req),
    };
    let edge = s.edge.clone();
    let l = lesson.clone();
    open_session(&s, "talk", &lesson, who, req, |offer| async move {
        edge.talk(&l, &school, offer).await
    })
    .await
}

async fn delete_resource(
    State(s): State<Shared>,
    Path((lesson, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let entry = s
        .sessions()
        .resource(&id)
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
    // The edge's ended event removes the resource.
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
