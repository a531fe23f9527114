//! The two-way lesson over HTTP: the class list (`GET /api/lessons/{lesson}` and its
//! event stream), a classroom's hand and the teacher's floor. The floor itself is
//! the core's; this layer checks tokens and bodies, asks the edge, and follows the
//! floor changes the edge announces.

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use relay_core::{FloorChange, FloorState};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tracing::info;

use crate::api::{edge_error, ApiError};
use crate::class_list::{floor_json, lesson_json, Freezes};
use crate::server::{check_token, check_token_value, header_str, refuse, AppState, Shared};
use crate::token::{Claims, TokenRole};

/// A hand or floor body is a few bytes of JSON.
const MAX_JSON_BYTES: usize = 1024;
/// How often an event stream looks for class-list changes (the floor's are sent
/// as they happen).
const CLASS_LIST_EVERY: Duration = Duration::from_secs(1);

/// What the class lists remember between snapshots.
#[derive(Debug, Default)]
pub(crate) struct Classes {
    /// Schools seen per lesson while it lasts: one that left stays listed.
    seen: HashMap<String, BTreeSet<String>>,
    freezes: Freezes,
}

#[derive(Deserialize)]
pub(crate) struct TokenQuery {
    token: Option<String>,
}

/// The class list of `lesson` now, with `floor` if it is fresher than the snapshot.
async fn snapshot(
    s: &AppState,
    lesson: &str,
    floor: Option<&FloorState>,
) -> Result<Value, ApiError> {
    let stats = s.stats().await.map_err(edge_error)?;
    let l = stats.lessons.iter().find(|l| l.lesson == lesson);
    let mut c = s.classes.lock().unwrap_or_else(|e| e.into_inner());
    let Classes { seen, freezes } = &mut *c;
    let mut nobody = BTreeSet::new();
    let seen = match l {
        Some(_) => seen.entry(lesson.to_string()).or_default(),
        None => {
            // Nobody is in it: the lesson is over, a new one starts from nothing.
            seen.remove(lesson);
            freezes.forget(lesson);
            &mut nobody
        }
    };
    let names = &s.cfg.school_names;
    let v = lesson_json(lesson, l, floor, seen, names, freezes, Instant::now());
    Ok(v)
}

/// `GET /api/lessons/{lesson}`: the class list and the floor (teacher token).
pub(crate) async fn lesson(
    State(s): State<Shared>,
    Path(lesson): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = check_token(&s, &headers, &lesson, &[TokenRole::Teacher]) {
        return refuse(&s, "token", e);
    }
    match snapshot(&s, &lesson, None).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /api/lessons/{lesson}/events`: Server-Sent Events, one `lesson` event (the
/// class list as `GET /api/lessons/{lesson}` gives it) at once, on every floor
/// change and whenever the list changes. Teacher or classroom token, in
/// `Authorization` or `?token=` (a browser's `EventSource` cannot send headers).
pub(crate) async fn events(
    State(s): State<Shared>,
    Path(lesson): Path<String>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    let from_query = q.token.map(|t| format!("Bearer {t}"));
    let auth = header_str(&headers, header::AUTHORIZATION).or(from_query.as_deref());
    let roles = [TokenRole::Teacher, TokenRole::Classroom];
    if let Err(e) = check_token_value(&s, auth, &lesson, &roles) {
        return refuse(&s, "token", e);
    }
    // Follow the floor before the first snapshot, so no change falls in between.
    let floors = s.edge.floor_changes();
    let first = match snapshot(&s, &lesson, None).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let follow = Follow {
        s,
        lesson,
        floors,
        last: None,
        first: Some(first),
        tick: tokio::time::interval(CLASS_LIST_EVERY),
    };
    let stream = futures_util::stream::unfold(follow, |mut f| async move {
        let v = f.next().await?;
        Some((
            Ok::<Event, Infallible>(Event::default().event("lesson").data(v)),
            f,
        ))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// One client's event stream.
struct Follow {
    s: Shared,
    lesson: String,
    floors: tokio::sync::broadcast::Receiver<(String, FloorState)>,
    /// The last list sent, to send only changes.
    last: Option<String>,
    first: Option<Value>,
    tick: tokio::time::Interval,
}

impl Follow {
    /// The next list to send; `None` ends the stream (the relay is stopping).
    async fn next(&mut self) -> Option<String> {
        loop {
            let (v, always) = if let Some(v) = self.first.take() {
                (v, true)
            } else {
                tokio::select! {
                    r = self.floors.recv() => match r {
                        Ok((l, floor)) if l == self.lesson => {
                            (snapshot(&self.s, &self.lesson, Some(&floor)).await.ok()?, true)
                        }
                        Ok(_) => continue,
                        // Missed some: the snapshot has the floor too.
                        Err(RecvError::Lagged(_)) => (snapshot(&self.s, &self.lesson, None).await.ok()?, false),
                        Err(RecvError::Closed) => return None,
                    },
                    _ = self.tick.tick() => (snapshot(&self.s, &self.lesson, None).await.ok()?, false),
                }
            };
            let text = v.to_string();
            if always || self.last.as_ref() != Some(&text) {
                self.last = Some(text.clone());
                return Some(text);
            }
        }
    }
}

/// Read a small JSON body of type `T` (400 for anything else).
async fn read_json<T: serde::de::DeserializeOwned>(
    body: Body,
    headers: &HeaderMap,
    what: &str,
) -> Result<T, ApiError> {
    if let Some(ct) = header_str(headers, header::CONTENT_TYPE) {
        let base = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if base != "application/json" {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("the body must be sent as Content-Type: application/json (got {ct})"),
            ));
        }
    }
    let too_big = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {MAX_JSON_BYTES} bytes"),
        )
    };
    let bytes = to_bytes(body, MAX_JSON_BYTES)
        .await
        .map_err(|_| too_big())?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body must be {what}: {e}"),
        )
    })
}

/// Ask the edge for a floor change and answer with the floor after it.
async fn change_floor(s: &AppState, lesson: &str, changes: Vec<FloorChange>) -> Response {
    let mut last = None;
    for change in changes {
        match s.edge.floor(lesson, change).await {
            Ok(Ok(f)) => last = Some(f),
            Ok(Err(e)) => {
                return ApiError::new(StatusCode::NOT_FOUND, format!("{e}")).into_response()
            }
            Err(e) => return edge_error(e).into_response(),
        }
    }
    match last {
        Some(f) => Json(floor_json(&f)).into_response(),
        None => ApiError::new(StatusCode::BAD_REQUEST, "nothing to change").into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HandBody {
    raised: bool,
}

/// `POST /api/lessons/{lesson}/hand` (classroom token): `{"raised": true|false}`.
/// Lowering the hand while holding the floor hands the floor back.
pub(crate) async fn hand(
    State(s): State<Shared>,
    Path(lesson): Path<String>,
    req: Request,
) -> Response {
    let claims = match check_token(&s, req.headers(), &lesson, &[TokenRole::Classroom]) {
        Ok(c) => c,
        Err(e) => return refuse(&s, "token", e),
    };
    let (parts, body) = req.into_parts();
    let b: HandBody = match read_json(
        body,
        &parts.headers,
        "{\"raised\": true} or {\"raised\": false}",
    )
    .await
    {
        Ok(b) => b,
        Err(e) => return refuse(&s, "bad_request", e),
    };
    let school = school_of(&claims);
    info!(lesson, school, raised = b.raised, "hand");
    let change = FloorChange::Hand {
        school,
        raised: b.raised,
    };
    change_floor(&s, &lesson, vec![change]).await
}

fn school_of(c: &Claims) -> String {
    c.school.clone().unwrap_or_else(|| "unknown".into())
}

/// Present with `null` is `Some(None)`, absent is `None`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FloorBody {
    #[serde(default, deserialize_with = "present")]
    school: Option<Option<String>>,
    #[serde(default)]
    open: Option<bool>,
}

/// `POST /api/lessons/{lesson}/floor` (teacher token): `{"school": "ID"}` gives
/// the floor, `{"school": null}` takes it back, `{"open": true|false}` turns open
/// floor on or off.
pub(crate) async fn floor(
    State(s): State<Shared>,
    Path(lesson): Path<String>,
    req: Request,
) -> Response {
    if let Err(e) = check_token(&s, req.headers(), &lesson, &[TokenRole::Teacher]) {
        return refuse(&s, "token", e);
    }
    let what = "{\"school\": \"ID\"}, {\"school\": null}, {\"open\": true} or {\"open\": false}";
    let (parts, body) = req.into_parts();
    let b: FloorBody = match read_json(body, &parts.headers, what).await {
        Ok(b) => b,
        Err(e) => return refuse(&s, "bad_request", e),
    };
    let mut changes = vec![];
    if let Some(open) = b.open {
        changes.push(FloorChange::Open(open));
    }
    if let Some(school) = b.school {
        changes.push(FloorChange::Give(school));
    }
    if changes.is_empty() {
        return refuse(
            &s,
            "bad_request",
            ApiError::new(StatusCode::BAD_REQUEST, format!("the body must be {what}")),
        );
    }
    info!(lesson, ?changes, "floor");
    change_floor(&s, &lesson, changes).await
}
