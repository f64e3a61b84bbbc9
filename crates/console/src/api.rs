//! `/api/v1`: JSON over the gateway's records, stored files, settings and set-aside jobs.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use gateway::layout::Direction;
use gateway::model::{Part, Partnership, Station, Status};
use gateway::ports::{byte_stream, MessageLog as _, Ports as _, RecordQuery};
use gateway::Millis;
use serde_json::{json, Value};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::{pages, settings, Backend};

/// The most records one page holds.
pub const MAX_LIMIT: usize = 500;
/// A page's records when the request does not say.
pub const DEFAULT_LIMIT: usize = 50;

type Answer = Result<Response, ApiError>;

/// What every handler has: the backend and the credentials.
pub(crate) struct App<B> {
    pub(crate) backend: Arc<B>,
    pub(crate) auth: Arc<Auth>,
}

impl<B> Clone for App<B> {
    fn clone(&self) -> Self {
        App {
            backend: self.backend.clone(),
            auth: self.auth.clone(),
        }
    }
}

pub(crate) fn routes<B: Backend>(backend: Arc<B>, auth: Arc<Auth>) -> Router {
    let app = App { backend, auth };
    Router::new()
        .route("/", get(pages::dashboard::<B>))
        .route("/messages", get(pages::messages::<B>))
        .route("/messages/{id}", get(pages::message::<B>))
        .route("/messages/{id}/resend", post(pages::resend::<B>))
        .route("/partners", get(pages::partners::<B>))
        .route(
            "/partners/edit",
            get(settings::edit_form::<B, Partnership>).post(settings::edit_post::<B, Partnership>),
        )
        .route(
            "/stations/edit",
            get(settings::edit_form::<B, Station>).post(settings::edit_post::<B, Station>),
        )
        .route("/queue", get(pages::queue::<B>))
        .route("/queue/redrive", post(pages::redrive::<B>))
        .route("/login", get(pages::login_page).post(login::<B>))
        .route("/logout", post(logout))
        .route(
            "/static/{name}",
            get(|Path(name): Path<String>| async move { pages::asset(&name) }),
        )
        .route("/metrics", get(metrics::<B>))
        .route("/api/v1/session", get(session::<B>))
        .route("/api/v1/certificates", get(certificates::<B>))
        .route("/api/v1/messages", get(list::<B>))
        .route("/api/v1/messages/{id}", get(show::<B>))
        .route("/api/v1/messages/{id}/resend", post(resend::<B>))
        .route("/api/v1/messages/{id}/{part}", get(download::<B>))
        .route("/api/v1/stations", get(stations::<B>))
        .route("/api/v1/stations/{id}", put(settings::put_station::<B>))
        .route("/api/v1/partners", get(partners::<B>))
        .route(
            "/api/v1/partners/{station}/{partner}",
            put(settings::put_partnership::<B>),
        )
        .route("/api/v1/queue", get(queue::<B>))
        .route("/api/v1/queue/redrive", post(redrive::<B>))
        .fallback(|| async { ApiError::not_found("no such page") })
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            guard::<B>,
        ))
        .with_state(app)
}

/// The largest form a page posts (a token, a CSRF token, a job id).
const MAX_FORM: usize = 16 * 1024;

/// Every request: the token first (nothing else is answered without it: an API call gets 401,
/// a page the login form), the CSRF token for a change made with a browser's credentials (the
/// `X-CSRF-Token` header, or a form's `csrf` field), and headers that keep answers out of
/// caches and frames.
async fn guard<B: Backend>(State(app): State<App<B>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let open = path == "/login" || path.starts_with("/static/");
    let mut response = if open {
        next.run(request).await
    } else {
        match checked(&app, request).await {
            Ok(request) => next.run(request).await,
            Err(e) if e.code == "unauthorized" && !for_programs(&path) => {
                let back = pages::percent(&path, b"/-_.");
                Redirect::to(&format!("/login?next={back}")).into_response()
            }
            Err(e) => e.into_response(),
        }
    };
    let h = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Whether `path` is for programs (the API, `/metrics`): they get a 401, never the login page.
fn for_programs(path: &str) -> bool {
    path.starts_with("/api/") || path == "/metrics"
}

/// `request` once its credentials, and for a change its CSRF token, are checked.
async fn checked<B: Backend>(app: &App<B>, request: Request) -> Result<Request, ApiError> {
    let shown = app.auth.check(request.headers())?;
    if !Auth::needs_csrf(shown, request.method()) {
        return Ok(request);
    }
    let in_header = request
        .headers()
        .get("x-csrf-token")
        .is_some_and(|v| app.auth.is_csrf(v.as_bytes()));
    if in_header {
        return Ok(request);
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(crate::auth::csrf_refused());
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "bad_request",
            "the form is too large",
        )
    })?;
    let fields: Vec<(String, String)> = serde_urlencoded_pairs(&bytes);
    let in_form = fields
        .iter()
        .any(|(n, v)| n == "csrf" && app.auth.is_csrf(v.as_bytes()));
    if !in_form {
        return Err(crate::auth::csrf_refused());
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

/// A form body's fields.
fn serde_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

/// The login form's fields.
#[derive(serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

async fn login<B: Backend>(
    State(app): State<App<B>>,
    axum::Form(f): axum::Form<LoginForm>,
) -> Response {
    let next = pages::safe_next(&f.next).to_string();
    if !app.auth.is_token(&f.token) {
        return pages::login_form(
            StatusCode::UNAUTHORIZED,
            &next,
            "That is not the console's token.",
        );
    }
    let mut response = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&app.auth.login_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

async fn logout() -> Response {
    let mut response = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&Auth::logout_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// What `/metrics` is served as.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn metrics<B: Backend>(State(app): State<App<B>>) -> Answer {
    match app.backend.metrics().await? {
        Some(text) => Ok(([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response()),
        None => Err(ApiError::not_found(
            "this console keeps no metrics: the running gateway serves them on its [console] \
             listener (mftg serve with [console] in mftg.toml)",
        )),
    }
}

async fn certificates<B: Backend>(State(app): State<App<B>>) -> Answer {
    let certs = crate::certs::certificates(&*app.backend).await?;
    Ok(Json(json!({ "certificates": certs })).into_response())
}

async fn session<B: Backend>(State(app): State<App<B>>) -> Answer {
    Ok(Json(json!({
        "backend": app.backend.describe(),
        "csrf_token": app.auth.csrf_token(),
    }))
    .into_response())
}

/// The query parameters `GET /api/v1/messages` takes.
const LIST_PARAMS: [&str; 10] = [
    "station",
    "partner",
    "direction",
    "status",
    "since",
    "until",
    "message_id",
    "file",
    "before",
    "limit",
];

/// A `RecordQuery` from `GET /api/v1/messages`'s parameters; a parameter it does not know, one
/// given twice or a value it does not take is a `bad_filter` naming what it takes.
pub(crate) fn record_query(params: &[(String, String)]) -> Result<RecordQuery, ApiError> {
    let mut q = RecordQuery::of(None, None, DEFAULT_LIMIT);
    let mut seen = std::collections::BTreeSet::new();
    for (name, value) in params {
        if !seen.insert(name.as_str()) {
            return Err(ApiError::bad_filter(
                format!("parameter {name:?} is given twice"),
                Vec::new(),
            ));
        }
        let value = value.trim();
        let text = || (!value.is_empty()).then(|| value.to_string());
        match name.as_str() {
            "station" => q.station = text(),
            "partner" => q.partner = text(),
            "message_id" => q.message_id = text(),
            "file" => q.filename = text(),
            "before" => q.before = text(),
            "direction" if !value.is_empty() => {
                q.direction =
                    Some(value.parse::<Direction>().map_err(|e| {
                        ApiError::bad_filter(e, vec!["inbox".into(), "outbox".into()])
                    })?)
            }
            "status" if !value.is_empty() => {
                q.status = Some(value.parse::<Status>().map_err(|e| {
                    ApiError::bad_filter(
                        e,
                        Status::ALL.iter().map(|s| s.as_str().to_string()).collect(),
                    )
                })?)
            }
            "since" if !value.is_empty() => q.since = Some(time(name, value)?),
            "until" if !value.is_empty() => q.until = Some(time(name, value)?),
            "limit" if !value.is_empty() => {
                q.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_filter(
                            format!("limit {value:?} is not a number from 1 to {MAX_LIMIT}"),
                            vec![format!("1..{MAX_LIMIT}")],
                        )
                    })?
            }
            "direction" | "status" | "since" | "until" | "limit" => {}
            other => {
                return Err(ApiError::bad_filter(
                    format!("unknown parameter {other:?}"),
                    LIST_PARAMS.iter().map(|p| p.to_string()).collect(),
                ))
            }
        }
    }
    if let (Some(since), Some(until)) = (q.since, q.until) {
        if since >= until {
            return Err(ApiError::bad_filter(
                "since must be before until",
                Vec::new(),
            ));
        }
    }
    Ok(q)
}

fn time(name: &str, value: &str) -> Result<Millis, ApiError> {
    Millis::parse(value).ok_or_else(|| {
        ApiError::bad_filter(
            format!("{name} {value:?} is not a time"),
            vec![
                "2026-11-28".into(),
                "2026-11-28T05:47:03Z".into(),
                "seconds since 1970".into(),
            ],
        )
    })
}

async fn list<B: Backend>(
    State(app): State<App<B>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let query = record_query(&params)?;
    let records = app.backend.gateway().ports.log().query(&query).await?;
    let next = query.next_page(&records);
    Ok(Json(json!({ "messages": records, "next": next })).into_response())
}

async fn show<B: Backend>(State(app): State<App<B>>, Path(id): Path<String>) -> Answer {
    let record = app.backend.gateway().find_record(&id).await?;
    let parts: Vec<Value> = record
        .parts()
        .map(|p| {
            json!({
                "part": p.as_str(),
                "href": format!("/api/v1/messages/{}/{}", record.id, p.as_str()),
            })
        })
        .collect();
    let mut body = serde_json::to_value(&record)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    body["parts"] = Value::Array(parts);
    Ok(Json(body).into_response())
}

async fn download<B: Backend>(
    State(app): State<App<B>>,
    Path((id, part)): Path<(String, String)>,
) -> Answer {
    let part: Part = part.parse().map_err(|e: String| ApiError::not_found(e))?;
    let gateway = app.backend.gateway();
    let record = gateway.find_record(&id).await?;
    let (meta, reader) = gateway.part(&record, part).await?;
    let name = match part {
        Part::Payload => record.filename.clone(),
        Part::Raw => format!("{}.as2", record.id),
        Part::Headers => format!("{}.headers.txt", record.id),
        Part::Receipt => format!("{}.mdn", record.id),
    };
    let mut response = axum::body::Body::from_stream(byte_stream(reader)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
    if let Ok(v) = HeaderValue::from_str(&attachment(&name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// `Content-Disposition` for a download named `name`: an ASCII fallback with anything unsafe
/// replaced, and the name itself percent-encoded (RFC 6266, RFC 8187).
pub(crate) fn attachment(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = pages::percent(name, b".-_");
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// A JSON body, or `{}` when there is none; anything else is a `bad_request`.
pub(crate) fn body_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the body must be a JSON object",
        )),
    }
}

fn flag(body: &serde_json::Map<String, Value>, name: &str) -> Result<bool, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{name} must be true or false"),
        )),
    }
}

async fn resend<B: Backend>(
    State(app): State<App<B>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Answer {
    let body = body_object(&body)?;
    let as_new = flag(&body, "as_new")?;
    let resent = app.backend.gateway().resend(&id, as_new).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": resent.id, "message_id": resent.message_id, "as_new": as_new })),
    )
        .into_response())
}

async fn stations<B: Backend>(State(app): State<App<B>>) -> Answer {
    let stations = app.backend.stations().await?;
    Ok(Json(json!({ "stations": stations })).into_response())
}

async fn partners<B: Backend>(
    State(app): State<App<B>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Answer {
    let mut station = None;
    for (name, value) in &params {
        match name.as_str() {
            "station" => station = Some(value.clone()),
            other => {
                return Err(ApiError::bad_filter(
                    format!("unknown parameter {other:?}"),
                    vec!["station".into()],
                ))
            }
        }
    }
    let partners: Vec<_> = app
        .backend
        .partnerships()
        .await?
        .into_iter()
        .filter(|p| station.as_ref().is_none_or(|s| &p.station == s))
        .collect();
    Ok(Json(json!({ "partners": partners })).into_response())
}

async fn queue<B: Backend>(State(app): State<App<B>>) -> Answer {
    let jobs = app.backend.parked(MAX_LIMIT).await?;
    Ok(Json(json!({ "parked": jobs })).into_response())
}

async fn redrive<B: Backend>(State(app): State<App<B>>, body: axum::body::Bytes) -> Answer {
    let body = body_object(&body)?;
    let only = match body.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "id must be a job's id or a message's id",
            ))
        }
    };
    let moved = app.backend.redrive(only.clone(), MAX_LIMIT).await?;
    if let (Some(only), true) = (&only, moved.is_empty()) {
        return Err(ApiError::not_found(format!("no parked job {only}")));
    }
    Ok(Json(json!({ "redriven": moved })).into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn filters_are_read_and_bad_ones_name_what_is_taken() {
        let q = record_query(&params(&[
            ("station", "ALPHA"),
            ("status", "failed"),
            ("direction", "outbox"),
            ("since", "2026-11-28"),
            ("until", "2026-11-29T00:00:00Z"),
            ("limit", "10"),
        ]))
        .unwrap();
        assert_eq!(q.station.as_deref(), Some("ALPHA"));
        assert_eq!(q.status, Some(Status::Failed));
        assert_eq!(q.direction, Some(Direction::Outbox));
        assert_eq!(q.limit, 10);
        assert!(q.since.unwrap() < q.until.unwrap());

        let e = record_query(&params(&[("status", "lost")])).unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, "bad_filter"));
        assert!(e.accepted.iter().any(|a| a == "delivered-with-warning"));
        let e = record_query(&params(&[("since", "yesterday")])).unwrap_err();
        assert!(e.accepted.iter().any(|a| a == "2026-11-28"), "{e:?}");
        let e = record_query(&params(&[("direction", "sideways")])).unwrap_err();
        assert_eq!(e.accepted, ["inbox", "outbox"]);
        for bad in [("limit", "0"), ("limit", "501"), ("limit", "ten")] {
            assert_eq!(
                record_query(&params(&[bad])).unwrap_err().code,
                "bad_filter"
            );
        }
        let e = record_query(&params(&[("colour", "red")])).unwrap_err();
        assert!(e.accepted.iter().any(|a| a == "message_id"));
        assert!(record_query(&params(&[("status", "failed"), ("status", "sent")])).is_err());
        assert!(
            record_query(&params(&[("since", "2026-11-29"), ("until", "2026-11-28")])).is_err()
        );
        assert_eq!(
            record_query(&params(&[("status", "")])).unwrap().status,
            None
        );
    }

    #[test]
    fn download_names_cannot_break_out_of_the_header() {
        let h = attachment("po\"; filename=evil.exe\r\n<b>.x12");
        assert!(!h.contains('\r') && !h.contains('\n'));
        assert!(h.starts_with("attachment; filename=\"po__"));
        assert!(h.contains("filename*=UTF-8''po%22%3B%20filename%3Devil.exe%0D%0A%3Cb%3E.x12"));
        assert!(HeaderValue::from_str(&attachment("Ünïcödé.txt")).is_ok());
    }
}
