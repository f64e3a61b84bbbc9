//! Stations and partnerships written from the console: `PUT /api/v1/stations/{id}` and
//! `PUT /api/v1/partners/{station}/{partner}` (JSON, the fields `mftg.toml` has), and the add and
//! edit forms. Both go through the checks `mftg serve` makes before it starts (a setting's own
//! check, the station's key and the partner's certificates in the keystores, the partnership's
//! station, its HTTP password): what would stop the gateway is refused (422, every reason
//! listed), nothing is written then.

use std::fmt::Write as _;
use std::future::Future;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use gateway::model::{MdnMode, Partnership, Station};
use serde_json::{json, Map, Value};

use crate::api::App;
use crate::error::ApiError;
use crate::pages::{esc, page, url};
use crate::Backend;

type Answer = Result<Response, ApiError>;

/// A body the settings' own types refuse (an unknown field, an algorithm not accepted): 400
/// with serde's words, which name the field and the accepted values.
fn unreadable(what: &str, e: &serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_request",
        format!("not a {what}: {e}"),
    )
}

/// Settings the gateway would not start with.
fn refused(what: String, problems: Vec<String>) -> ApiError {
    ApiError {
        problems,
        ..ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_settings",
            format!("{what} was not saved: the gateway would not start with it"),
        )
    }
}

/// `body` as an object whose `field`, if given, is `value` (the path's); it is set if not.
fn named(
    mut body: Map<String, Value>,
    field: &str,
    value: &str,
) -> Result<Map<String, Value>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => {
            body.insert(field.into(), json!(value));
        }
        Some(Value::String(s)) if s == value => {}
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("{field} is {other} in the body but {value:?} in the path"),
            ))
        }
    }
    Ok(body)
}

/// Checks and saves a station; whether it is new, and where it went.
async fn save_station<B: Backend>(app: &App<B>, s: Station) -> Result<(bool, String), ApiError> {
    let problems = app.backend.gateway().station_refusals(&s).await;
    if !problems.is_empty() {
        return Err(refused(format!("station {}", s.as2_id), problems));
    }
    let new = !app
        .backend
        .stations()
        .await?
        .iter()
        .any(|o| o.as2_id == s.as2_id);
    Ok((new, app.backend.put_station(s).await?))
}

/// Checks and saves a partnership; whether it is new, and where it went.
async fn save_partnership<B: Backend>(
    app: &App<B>,
    p: Partnership,
) -> Result<(bool, String), ApiError> {
    let stations = app.backend.stations().await?;
    let problems = app
        .backend
        .gateway()
        .partnership_refusals(&p, &stations)
        .await;
    if !problems.is_empty() {
        return Err(refused(
            format!("partnership {} -> {}", p.station, p.partner),
            problems,
        ));
    }
    let new = !app
        .backend
        .partnerships()
        .await?
        .iter()
        .any(|o| o.station == p.station && o.partner == p.partner);
    Ok((new, app.backend.put_partnership(p).await?))
}

fn saved(new: bool, key: &str, value: Value, note: String) -> Response {
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (
        status,
        Json(json!({ key: value, "created": new, "saved": note })),
    )
        .into_response()
}

pub(crate) async fn put_station<B: Backend>(
    State(app): State<App<B>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Answer {
    let value = named(crate::api::body_object(&body)?, "as2_id", &id)?;
    let s: Station =
        serde_json::from_value(Value::Object(value)).map_err(|e| unreadable("station", &e))?;
    let (new, note) = save_station(&app, s.clone()).await?;
    Ok(saved(new, "station", json!(s), note))
}

pub(crate) async fn put_partnership<B: Backend>(
    State(app): State<App<B>>,
    Path((station, partner)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Answer {
    let value = named(crate::api::body_object(&body)?, "station", &station)?;
    let value = named(value, "partner", &partner)?;
    let p: Partnership =
        serde_json::from_value(Value::Object(value)).map_err(|e| unreadable("partnership", &e))?;
    let (new, note) = save_partnership(&app, p.clone()).await?;
    Ok(saved(new, "partnership", json!(p), note))
}

/// How a form field becomes a setting.
#[derive(Clone, Copy)]
pub(crate) enum Field {
    /// Text as it is.
    Text,
    /// Text; empty is unset.
    Optional,
    /// A whole number.
    Number,
    /// A checkbox.
    Flag,
    /// One of the names listed.
    Choice(fn() -> Vec<&'static str>),
}

fn ciphers() -> Vec<&'static str> {
    std::iter::once("none")
        .chain(as2::algorithm::ContentEncryption::names())
        .collect()
}

fn signing() -> Vec<&'static str> {
    std::iter::once("none")
        .chain(as2::algorithm::DigestAlgorithm::signing_names())
        .collect()
}

fn digests() -> Vec<&'static str> {
    as2::algorithm::DigestAlgorithm::names()
}

fn compressions() -> Vec<&'static str> {
    as2::message::Compression::ALL
        .iter()
        .map(|c| c.name())
        .collect()
}

fn receipts() -> Vec<&'static str> {
    MdnMode::ALL.iter().map(|m| m.as_str()).collect()
}

/// The partnership form's fields, in its order, with their labels.
const PARTNERSHIP_FIELDS: [(&str, &str, Field); 12] = [
    ("url", "AS2 URL", Field::Text),
    (
        "certificate_alias",
        "certificate (alias in trust.jks)",
        Field::Text,
    ),
    ("encryption", "encryption", Field::Choice(ciphers)),
    ("signing", "signing", Field::Choice(signing)),
    ("compression", "compression", Field::Choice(compressions)),
    ("mdn", "receipt", Field::Choice(receipts)),
    ("signed_mdn", "ask for a signed receipt", Field::Flag),
    ("mic_algorithm", "receipt MIC", Field::Choice(digests)),
    ("content_type", "content type", Field::Text),
    ("timeout_secs", "timeout (seconds)", Field::Number),
    ("require_signed", "refuse unsigned messages", Field::Flag),
    (
        "require_encrypted",
        "refuse unencrypted messages",
        Field::Flag,
    ),
];

/// The station form's fields.
const STATION_FIELDS: [(&str, &str, Field); 4] = [
    ("key_alias", "key (alias in identity.jks)", Field::Text),
    (
        "mdn_url",
        "receipt URL (for asynchronous receipts)",
        Field::Optional,
    ),
    ("mdn_email", "receipt e-mail", Field::Optional),
    ("message_id_domain", "Message-ID domain", Field::Optional),
];

/// `current` (the setting as saved, or a new one's defaults) with the form's `fields` applied:
/// the last value of a name wins (a checkbox follows a hidden `false`).
fn apply(
    mut current: Map<String, Value>,
    spec: &[(&str, &str, Field)],
    form: &[(String, String)],
) -> Result<Map<String, Value>, ApiError> {
    for (name, label, kind) in spec {
        let Some((_, given)) = form.iter().rev().find(|(n, _)| n == name) else {
            continue;
        };
        let given = given.trim();
        let value = match kind {
            Field::Text | Field::Choice(_) => json!(given),
            Field::Optional if given.is_empty() => Value::Null,
            Field::Optional => json!(given),
            Field::Flag => json!(given == "true"),
            Field::Number => json!(given.parse::<u64>().map_err(|_| ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("{label} must be a whole number, not {given:?}"),
            ))?),
        };
        current.insert((*name).into(), value);
    }
    Ok(current)
}

/// The form's inputs for `values`.
fn inputs(spec: &[(&str, &str, Field)], values: &Map<String, Value>) -> String {
    let mut out = String::new();
    for (name, label, kind) in spec {
        let text = match values.get(*name) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        };
        let input = match kind {
            Field::Text | Field::Optional => format!(
                "<input type=\"text\" name=\"{name}\" id=\"f-{name}\" value=\"{}\">",
                esc(&text)
            ),
            Field::Number => format!(
                "<input type=\"number\" min=\"1\" name=\"{name}\" id=\"f-{name}\" value=\"{}\">",
                esc(&text)
            ),
            Field::Flag => format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"false\">\
                 <input type=\"checkbox\" name=\"{name}\" id=\"f-{name}\" value=\"true\"{}>",
                if text == "true" { " checked" } else { "" }
            ),
            Field::Choice(names) => {
                let mut select = format!("<select name=\"{name}\" id=\"f-{name}\">");
                let names = names();
                let known = names.iter().any(|n| n.eq_ignore_ascii_case(&text));
                for n in names
                    .iter()
                    .copied()
                    .chain((!known).then_some(text.as_str()))
                {
                    let chosen = if n.eq_ignore_ascii_case(&text) {
                        " selected"
                    } else {
                        ""
                    };
                    let _ = write!(select, "<option{chosen}>{}</option>", esc(n));
                }
                select + "</select>"
            }
        };
        let _ = write!(out, "<label for=\"f-{name}\">{}</label>{input}", esc(label));
    }
    out
}

/// The form page: `keys` are the hidden or fixed naming fields, `problem` what was wrong.
fn form_page<B: Backend>(
    app: &App<B>,
    status: StatusCode,
    title: &str,
    action: &str,
    keys: &str,
    fields: &str,
    problem: Option<&ApiError>,
) -> Response {
    let mut body = String::new();
    if let Some(e) = problem {
        let _ = write!(
            body,
            "<div class=\"error\" id=\"error\"><p>{}</p>",
            esc(&e.message)
        );
        if !e.problems.is_empty() {
            body.push_str("<ul>");
            for p in &e.problems {
                let _ = write!(body, "<li>{}</li>", esc(p));
            }
            body.push_str("</ul>");
        }
        body.push_str("</div>");
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"{action}\" class=\"settings\" id=\"settings\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">{keys}{fields}\
         <button type=\"submit\" id=\"save\">Save</button> <a href=\"/partners\">Cancel</a></form>\
         <p class=\"note\">Saved after the checks <code>mftg serve</code> makes before it starts \
         (keys and certificates must be in the keystores first: <code>mftg keys</code>).</p>",
        esc(app.auth.csrf_token())
    );
    page(app, status, title, "Partners", &body)
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .rev()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.trim())
}

/// What the forms edit: a station or a partnership.
pub(crate) trait Setting:
    serde::Serialize + serde::de::DeserializeOwned + Send + Sync
{
    /// Its form's fields.
    const FIELDS: &'static [(&'static str, &'static str, Field)];
    /// Where its form is (`GET`) and posts (`POST`).
    const ACTION: &'static str;
    /// The fields that name one.
    const KEYS: &'static [&'static str];
    /// What it is called: `partnership`, `station`.
    const NOUN: &'static str;
    /// What it is, for people, by the values of its [`Setting::KEYS`].
    fn title(key: &[&str]) -> String;
    /// Whether it is the one `key` names.
    fn is(&self, key: &[&str]) -> bool;
    /// A new one's settings, before the form's fields.
    fn fresh(key: &[&str]) -> Map<String, Value>;
    /// Every one saved.
    fn all<B: Backend>(app: &App<B>) -> impl Future<Output = Result<Vec<Self>, ApiError>> + Send;
    /// Checks and saves it: whether it is new, and where it went.
    fn save<B: Backend>(
        app: &App<B>,
        s: Self,
    ) -> impl Future<Output = Result<(bool, String), ApiError>> + Send;
    /// The inputs that name a new one, filled from `form`.
    fn new_keys<B: Backend>(
        app: &App<B>,
        form: &[(String, String)],
    ) -> impl Future<Output = String> + Send;
}

impl Setting for Partnership {
    const FIELDS: &'static [(&'static str, &'static str, Field)] = &PARTNERSHIP_FIELDS;
    const ACTION: &'static str = "/partners/edit";
    const KEYS: &'static [&'static str] = &["station", "partner"];
    const NOUN: &'static str = "partnership";

    fn title(key: &[&str]) -> String {
        format!("partnership {} -> {}", key[0], key[1])
    }

    fn is(&self, key: &[&str]) -> bool {
        self.station == key[0] && self.partner == key[1]
    }

    fn fresh(key: &[&str]) -> Map<String, Value> {
        object(json!(Partnership::new(key[0], key[1], "", "")))
    }

    async fn all<B: Backend>(app: &App<B>) -> Result<Vec<Self>, ApiError> {
        Ok(app.backend.partnerships().await?)
    }

    async fn save<B: Backend>(app: &App<B>, p: Self) -> Result<(bool, String), ApiError> {
        save_partnership(app, p).await
    }

    async fn new_keys<B: Backend>(app: &App<B>, form: &[(String, String)]) -> String {
        let stations = app.backend.stations().await.unwrap_or_default();
        let chosen = field(form, "station");
        let mut out = String::from(
            "<label for=\"f-station\">station</label><select name=\"station\" id=\"f-station\">",
        );
        for s in &stations {
            let sel = if s.as2_id == chosen { " selected" } else { "" };
            let _ = write!(out, "<option{sel}>{}</option>", esc(&s.as2_id));
        }
        let _ = write!(
            out,
            "</select><label for=\"f-partner\">partner's AS2 ID</label>\
             <input type=\"text\" name=\"partner\" id=\"f-partner\" value=\"{}\">",
            esc(field(form, "partner"))
        );
        out
    }
}

impl Setting for Station {
    const FIELDS: &'static [(&'static str, &'static str, Field)] = &STATION_FIELDS;
    const ACTION: &'static str = "/stations/edit";
    const KEYS: &'static [&'static str] = &["as2_id"];
    const NOUN: &'static str = "station";

    fn title(key: &[&str]) -> String {
        format!("station {}", key[0])
    }

    fn is(&self, key: &[&str]) -> bool {
        self.as2_id == key[0]
    }

    fn fresh(key: &[&str]) -> Map<String, Value> {
        object(json!({ "as2_id": key[0] }))
    }

    async fn all<B: Backend>(app: &App<B>) -> Result<Vec<Self>, ApiError> {
        Ok(app.backend.stations().await?)
    }

    async fn save<B: Backend>(app: &App<B>, s: Self) -> Result<(bool, String), ApiError> {
        save_station(app, s).await
    }

    async fn new_keys<B: Backend>(_: &App<B>, form: &[(String, String)]) -> String {
        format!(
            "<label for=\"f-as2_id\">AS2 ID</label><input type=\"text\" name=\"as2_id\" id=\"f-as2_id\" value=\"{}\">",
            esc(field(form, "as2_id"))
        )
    }
}

/// The values of `S`'s naming fields in `form`.
fn key_of<S: Setting>(form: &[(String, String)]) -> Vec<&str> {
    S::KEYS.iter().map(|k| field(form, k)).collect()
}

/// `GET /partners/edit?station=&partner=`, `GET /stations/edit?as2_id=`: the form of the one
/// named; without a name, a new one's.
pub(crate) async fn edit_form<B: Backend, S: Setting>(
    State(app): State<App<B>>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let key = key_of::<S>(&q);
    if key.iter().all(|k| k.is_empty()) {
        return edit_page::<B, S>(&app, StatusCode::OK, None, &[], None).await;
    }
    match S::all(&app).await {
        Ok(all) => match all.into_iter().find(|s| s.is(&key)) {
            Some(s) => edit_page(&app, StatusCode::OK, Some(s), &[], None).await,
            None => crate::pages::error_page(
                &app,
                ApiError::not_found(format!("no {}", S::title(&key))),
            ),
        },
        Err(e) => crate::pages::error_page(&app, e),
    }
}

/// The form over `saved` (or a new one), with `form` (what was posted) applied.
async fn edit_page<B: Backend, S: Setting>(
    app: &App<B>,
    status: StatusCode,
    saved: Option<S>,
    form: &[(String, String)],
    problem: Option<&ApiError>,
) -> Response {
    let (title, keys, base) = match &saved {
        Some(s) => {
            let base = object(json!(s));
            let key: Vec<&str> = S::KEYS
                .iter()
                .map(|k| base.get(*k).and_then(Value::as_str).unwrap_or(""))
                .collect();
            let mut hidden =
                String::from("<input type=\"hidden\" name=\"existing\" value=\"true\">");
            for (name, value) in S::KEYS.iter().zip(&key) {
                let _ = write!(
                    hidden,
                    "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                    esc(value)
                );
            }
            (S::title(&key), hidden, base.clone())
        }
        None => (
            format!("New {}", S::NOUN),
            S::new_keys(app, form).await,
            S::fresh(&vec![""; S::KEYS.len()]),
        ),
    };
    let values = apply(base.clone(), S::FIELDS, form).unwrap_or(base);
    let fields = inputs(S::FIELDS, &values);
    form_page(
        app,
        status,
        &capital(&title),
        S::ACTION,
        &keys,
        &fields,
        problem,
    )
}

/// `POST /partners/edit`, `POST /stations/edit`: saves the form's setting, or shows the form
/// again with why not. A new one may not replace one saved (`existing` says it is an edit).
pub(crate) async fn edit_post<B: Backend, S: Setting>(
    State(app): State<App<B>>,
    body: axum::body::Bytes,
) -> Response {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let key = key_of::<S>(&form);
    let saved = match S::all(&app).await {
        Ok(all) => all.into_iter().find(|s| s.is(&key)),
        Err(e) => return crate::pages::error_page(&app, e),
    };
    let editing = field(&form, "existing") == "true";
    let attempt = async {
        if !editing && saved.is_some() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{} exists already: edit it instead", S::title(&key)),
            ));
        }
        let mut base = saved
            .as_ref()
            .map_or_else(|| S::fresh(&key), |s| object(json!(s)));
        for (name, value) in S::KEYS.iter().zip(&key) {
            base.insert((*name).into(), json!(value));
        }
        let values = apply(base, S::FIELDS, &form)?;
        let s: S =
            serde_json::from_value(Value::Object(values)).map_err(|e| unreadable(S::NOUN, &e))?;
        S::save(&app, s).await
    };
    match attempt.await {
        Ok((_, note)) => {
            let query: Vec<String> = S::KEYS
                .iter()
                .zip(&key)
                .map(|(k, v)| format!("{k}={}", url(v)))
                .collect();
            saved_page(
                &app,
                &capital(&S::title(&key)),
                &note,
                &format!("{}?{}", S::ACTION, query.join("&")),
            )
        }
        Err(e) => {
            let shown = if editing { saved } else { None };
            edit_page(&app, e.status, shown, &form, Some(&e)).await
        }
    }
}

/// `s` with a capital first letter.
fn capital(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// What a save says: what was saved, where, and the way back to it.
fn saved_page<B: Backend>(app: &App<B>, what: &str, note: &str, edit: &str) -> Response {
    let body = format!(
        "<p class=\"notice\" id=\"notice\">{} {}.</p><p><a href=\"/partners\">Partners and stations</a> · \
         <a href=\"{}\">Edit again</a></p>",
        esc(what),
        esc(note),
        esc(edit)
    );
    page(app, StatusCode::OK, "Saved", "Partners", &body)
}
