//! The console's pages: server-rendered HTML over the same calls as `/api/v1`, a little plain
//! JavaScript (column sorting, the resend confirmation), no outside assets. Every value from a
//! record, a partner or a receipt is escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use futures_util::{StreamExt as _, TryStreamExt as _};
use gateway::layout::Direction;
use gateway::model::{Certificate, CertificateKind, CertificateState, MessageRecord, Status};
use gateway::ports::{Clock as _, MessageLog as _, ObjectStore as _, Ports as _, RecordQuery};
use gateway::Millis;

use crate::api::{record_query, App};
use crate::certs::certificates;
use crate::error::ApiError;
use crate::Backend;

/// The console's style sheet and script, compiled in.
pub(crate) const CSS: &str = include_str!("../assets/console.css");
pub(crate) const JS: &str = include_str!("../assets/console.js");

const DAY: i64 = 86_400_000;
/// The most records the dashboard reads for its 30 days (it says so when there are more).
const DASHBOARD_RECORDS: usize = 10_000;

/// `s` for HTML text and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` percent-encoded, but for ASCII letters, digits and the bytes in `keep`.
pub(crate) fn percent(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `s` for a URL's query or path segment.
pub(crate) fn url(s: &str) -> String {
    percent(s, b"-_.~")
}

pub(crate) fn page<B: Backend>(
    app: &App<B>,
    status: StatusCode,
    title: &str,
    active: &str,
    body: &str,
) -> Response {
    let mut nav = String::new();
    for (href, name) in [
        ("/", "Dashboard"),
        ("/messages", "Messages"),
        ("/partners", "Partners"),
        ("/queue", "Queue"),
    ] {
        let class = if name == active {
            " class=\"active\""
        } else {
            ""
        };
        let _ = write!(nav, "<a href=\"{href}\"{class}>{name}</a>");
    }
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"csrf-token\" content=\"{csrf}\">\
         <title>{title} · mftg</title><link rel=\"stylesheet\" href=\"/static/console.css\"></head>\
         <body><header><span class=\"brand\">mftg</span><nav>{nav}</nav>\
         <span class=\"backend\">{backend}</span>\
         <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\">Log out</button></form></header>\
         <main><h1>{title}</h1>{body}</main><script src=\"/static/console.js\"></script></body></html>",
        csrf = esc(app.auth.csrf_token()),
        title = esc(title),
        backend = esc(&app.backend.describe()),
    );
    (status, Html(html)).into_response()
}

pub(crate) fn error_page<B: Backend>(app: &App<B>, e: ApiError) -> Response {
    let mut body = format!("<p class=\"error\" id=\"error\">{}</p>", esc(&e.message));
    if !e.accepted.is_empty() {
        let _ = write!(body, "<p>Accepted: {}</p>", esc(&e.accepted.join(", ")));
    }
    page(app, e.status, "Not possible", "", &body)
}

fn badge(status: Status) -> String {
    let class = match status {
        Status::Delivered | Status::Received => "ok",
        Status::DeliveredWithWarning | Status::Duplicate | Status::NotSent => "warn",
        Status::Failed | Status::Rejected => "bad",
        _ => "busy",
    };
    format!(
        "<span class=\"badge {class}\" data-status=\"{s}\">{s}</span>",
        s = status.as_str()
    )
}

fn cert_badge(state: CertificateState) -> String {
    let class = match state {
        CertificateState::Valid => "ok",
        CertificateState::Expiring => "warn",
        CertificateState::Expired | CertificateState::Missing => "bad",
    };
    let state = state.as_str();
    format!("<span class=\"badge {class} cert-{state}\">{state}</span>")
}

/// The records of the last `days` days, newest first, at most `cap`; whether there were more.
async fn recent<B: Backend>(
    app: &App<B>,
    since: Millis,
    cap: usize,
) -> Result<(Vec<MessageRecord>, bool), ApiError> {
    let log = app.backend.gateway().ports.log();
    let mut out: Vec<MessageRecord> = Vec::new();
    loop {
        let q = RecordQuery {
            since: Some(since),
            before: out.last().map(|r| r.id.clone()),
            ..RecordQuery::of(None, None, crate::api::MAX_LIMIT)
        };
        let page = log.query(&q).await?;
        let full = q.next_page(&page).is_some();
        out.extend(page);
        if out.len() >= cap {
            out.truncate(cap);
            return Ok((out, true));
        }
        if !full {
            return Ok((out, false));
        }
    }
}

fn day_of(m: Millis) -> String {
    m.to_string()[..10].to_string()
}

/// Stacked bars: a column per day, a colour per partner and direction.
fn chart(records: &[MessageRecord], today: Millis) -> String {
    let days: Vec<String> = (0..30)
        .rev()
        .map(|d| day_of(Millis(today.0 - d * DAY)))
        .collect();
    let mut series: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for r in records {
        let way = match r.direction {
            Direction::Outbox => "sent",
            Direction::Inbox => "received",
        };
        *series
            .entry(format!("{} {way}", r.partner))
            .or_default()
            .entry(day_of(r.started_at()))
            .or_default() += 1;
    }
    let totals: Vec<usize> = days
        .iter()
        .map(|d| {
            series
                .values()
                .map(|s| s.get(d).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let top = totals.iter().copied().max().unwrap_or(0).max(1);
    const COLOURS: [&str; 8] = [
        "#2f6fba", "#e07b24", "#3a9a5b", "#b8423c", "#7d5ab5", "#8a6d3b", "#d062a8", "#5f7f8f",
    ];
    let (w, h, bar) = (660, 220, 18);
    let mut svg = format!(
        "<svg id=\"chart\" class=\"chart\" viewBox=\"0 0 {w} {}\" role=\"img\" aria-label=\"messages per day, last 30 days\">",
        h + 40
    );
    let _ = write!(svg, "<text x=\"0\" y=\"12\" class=\"axis\">{top}</text><line x1=\"20\" y1=\"{h}\" x2=\"{w}\" y2=\"{h}\" class=\"axis\"/>");
    for (i, day) in days.iter().enumerate() {
        let x = 24 + i * 21;
        let mut y = h;
        for (n, (name, counts)) in series.iter().enumerate() {
            let c = counts.get(day).copied().unwrap_or(0);
            if c == 0 {
                continue;
            }
            let bh = (c * (h - 20) / top).max(2);
            y -= bh;
            let _ = write!(
                svg,
                "<rect class=\"bar\" x=\"{x}\" y=\"{y}\" width=\"{bar}\" height=\"{bh}\" fill=\"{}\" data-day=\"{day}\" data-series=\"{}\" data-count=\"{c}\"><title>{day}: {} {c}</title></rect>",
                COLOURS[n % COLOURS.len()],
                esc(name),
                esc(name),
            );
        }
        if i % 5 == 4 || i == 29 {
            let _ = write!(
                svg,
                "<text x=\"{x}\" y=\"{}\" class=\"axis\">{}</text>",
                h + 14,
                &day[5..]
            );
        }
    }
    let mut legend = String::new();
    for (n, name) in series.keys().enumerate() {
        let _ = write!(
            legend,
            "<span class=\"key\"><i style=\"background:{}\"></i>{}</span>",
            COLOURS[n % COLOURS.len()],
            esc(name)
        );
    }
    svg.push_str("</svg>");
    format!("<figure>{svg}<figcaption id=\"legend\">{legend}</figcaption></figure>")
}

fn message_rows(records: &[MessageRecord]) -> String {
    let mut rows = String::new();
    for r in records {
        let _ = write!(
            rows,
            "<tr data-id=\"{id}\"><td><a href=\"/messages/{uid}\">{id}</a></td><td data-sort=\"{t}\">{t}</td><td>{dir}</td>\
             <td>{station}</td><td>{partner}</td><td class=\"file\">{file}</td><td>{status}</td><td>{receipt}</td></tr>",
            id = esc(&r.id),
            uid = url(&r.id),
            t = esc(&r.started_at().to_string()[..19]),
            dir = r.direction.as_str(),
            station = esc(&r.station),
            partner = esc(&r.partner),
            file = esc(&r.filename),
            status = badge(r.status),
            receipt = r.mdn.as_ref().map_or("-".into(), |m| esc(&m.disposition)),
        );
    }
    format!(
        "<table id=\"messages\" class=\"sortable\"><thead><tr><th>id</th><th>time (UTC)</th><th>dir</th><th>station</th>\
         <th>partner</th><th>file</th><th>status</th><th>receipt</th></tr></thead><tbody>{rows}</tbody></table>"
    )
}

pub(crate) async fn dashboard<B: Backend>(State(app): State<App<B>>) -> Response {
    match dashboard_body(&app).await {
        Ok(body) => page(&app, StatusCode::OK, "Dashboard", "Dashboard", &body),
        Err(e) => error_page(&app, e),
    }
}

async fn dashboard_body<B: Backend>(app: &App<B>) -> Result<String, ApiError> {
    let now = app.backend.gateway().ports.clock().now();
    let since = Millis((now.0 / DAY - 29) * DAY);
    let (records, more) = recent(app, since, DASHBOARD_RECORDS).await?;
    let mut body = String::new();
    if more {
        let _ = write!(body, "<p class=\"note\">The last 30 days hold more than {DASHBOARD_RECORDS} messages: the figures are of the newest {DASHBOARD_RECORDS}.</p>");
    }
    body.push_str("<section><h2>Messages per day, last 30 days</h2>");
    body.push_str(&chart(&records, now));
    body.push_str(
        "</section><section><h2>By status, last 30 days</h2><ul id=\"counts\" class=\"counts\">",
    );
    for s in Status::ALL {
        let n = records.iter().filter(|r| r.status == s).count();
        if n > 0 {
            let _ = write!(
                body,
                "<li data-status=\"{st}\"><a href=\"/messages?status={st}\">{} <b>{n}</b></a></li>",
                badge(s),
                st = s.as_str()
            );
        }
    }
    if records.is_empty() {
        body.push_str("<li>No messages yet.</li>");
    }
    body.push_str("</ul></section>");

    let day_ago = Millis(now.0 - DAY);
    let failed: Vec<MessageRecord> = records
        .iter()
        .filter(|r| {
            matches!(r.status, Status::Failed | Status::Rejected) && r.changed_at() >= day_ago
        })
        .cloned()
        .collect();
    let _ = write!(body, "<section><h2>Failures, last 24 hours</h2>");
    if failed.is_empty() {
        body.push_str("<p id=\"failures\">None.</p>");
    } else {
        body.push_str("<div id=\"failures\">");
        body.push_str(&message_rows(&failed));
        body.push_str("</div>");
    }
    // Read once: the receipt waits below and the certificates further down.
    let (stations, partnerships) = (
        app.backend.stations().await?,
        app.backend.partnerships().await?,
    );
    let overdue: Vec<MessageRecord> = records
        .iter()
        .filter(|r| {
            r.status == Status::AwaitingMdn && {
                let wait = partnerships
                    .iter()
                    .find(|p| p.station == r.station && p.partner == r.partner)
                    .map_or(gateway::model::DEFAULT_MDN_WAIT_SECS, |p| p.mdn_wait_secs);
                now.0 - r.changed_at().0 > (wait as i64) * 1000
            }
        })
        .cloned()
        .collect();
    body.push_str("</section><section><h2>Overdue receipts</h2>");
    if overdue.is_empty() {
        body.push_str("<p id=\"overdue\">None.</p>");
    } else {
        body.push_str("<div id=\"overdue\">");
        body.push_str(&message_rows(&overdue));
        body.push_str("</div>");
    }
    body.push_str("</section><section><h2>Certificates expiring within 30 days</h2>");
    let certs: Vec<Certificate> = app
        .backend
        .gateway()
        .certificates(&stations, &partnerships)
        .await
        .into_iter()
        .filter(|c| c.state != CertificateState::Valid)
        .collect();
    if certs.is_empty() {
        body.push_str("<p id=\"expiring\">None.</p>");
    } else {
        body.push_str("<ul id=\"expiring\">");
        for c in certs {
            let _ = write!(
                body,
                "<li>{} {} {} ({}): {}</li>",
                cert_badge(c.state),
                c.kind.as_str(),
                esc(&c.owner),
                esc(&c.alias),
                esc(&c.not_after.or(c.problem).unwrap_or_default())
            );
        }
        body.push_str("</ul>");
    }
    body.push_str("</section>");
    Ok(body)
}

pub(crate) async fn messages<B: Backend>(
    State(app): State<App<B>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let value = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
            .to_string()
    };
    let mut form =
        String::from("<form id=\"filters\" method=\"get\" action=\"/messages\" class=\"filters\">");
    for (name, label) in [
        ("station", "Station"),
        ("partner", "Partner"),
        ("message_id", "Message-ID"),
        ("file", "File name"),
    ] {
        let _ = write!(
            form,
            "<label>{label}<input name=\"{name}\" value=\"{}\"></label>",
            esc(&value(name))
        );
    }
    let select = |name: &str, options: &[&str]| {
        let chosen = value(name);
        let mut s = format!("<select name=\"{name}\"><option value=\"\">any</option>");
        for o in options {
            let sel = if *o == chosen { " selected" } else { "" };
            let _ = write!(s, "<option{sel}>{o}</option>");
        }
        s + "</select>"
    };
    let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    let _ = write!(
        form,
        "<label>Direction{}</label><label>Status{}</label><label>Since<input name=\"since\" placeholder=\"2026-11-28\" value=\"{}\"></label>\
         <label>Until<input name=\"until\" placeholder=\"2026-11-29\" value=\"{}\"></label><button type=\"submit\">Filter</button></form>",
        select("direction", &["inbox", "outbox"]),
        select("status", &statuses),
        esc(&value("since")),
        esc(&value("until")),
    );
    let query = match record_query(&params) {
        Ok(q) => q,
        Err(e) => {
            let body = format!(
                "{form}<p class=\"error\" id=\"error\">{}</p><p>Accepted: {}</p>",
                esc(&e.message),
                esc(&e.accepted.join(", "))
            );
            return page(&app, e.status, "Messages", "Messages", &body);
        }
    };
    let records = match app.backend.gateway().ports.log().query(&query).await {
        Ok(r) => r,
        Err(e) => return error_page(&app, e.into()),
    };
    let mut body = form;
    if records.is_empty() {
        body.push_str("<p id=\"empty\">No message matches.</p>");
    } else {
        body.push_str(&message_rows(&records));
    }
    if let Some(last) = query.next_page(&records) {
        let mut next: Vec<String> = params
            .iter()
            .filter(|(n, v)| n != "before" && !v.is_empty())
            .map(|(n, v)| format!("{}={}", url(n), url(v)))
            .collect();
        next.push(format!("before={}", url(last)));
        let _ = write!(
            body,
            "<p><a id=\"older\" href=\"/messages?{}\">Older messages</a></p>",
            esc(&next.join("&"))
        );
    }
    page(&app, StatusCode::OK, "Messages", "Messages", &body)
}

pub(crate) async fn message<B: Backend>(
    State(app): State<App<B>>,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    match message_body(&app, &id, &q).await {
        Ok((title, body)) => page(&app, StatusCode::OK, &title, "Messages", &body),
        Err(e) => error_page(&app, e),
    }
}

async fn message_body<B: Backend>(
    app: &App<B>,
    id: &str,
    q: &BTreeMap<String, String>,
) -> Result<(String, String), ApiError> {
    let gateway = app.backend.gateway();
    let r = gateway.find_record(id).await?;
    let mut body = String::new();
    if let Some(resent) = q.get("resent") {
        let _ = write!(
            body,
            "<p class=\"notice\" id=\"notice\">Queued to be sent again{}.</p>",
            if resent == "new" {
                " as a new message"
            } else {
                " with the same Message-ID"
            }
        );
    }
    let raw_size = match r.raw_key.as_deref() {
        Some(k) => gateway.ports.store().head(k).await?.map(|m| m.size),
        None => None,
    };
    let _ = write!(
        body,
        "<dl id=\"summary\"><dt>Direction</dt><dd>{}</dd><dt>Station</dt><dd>{}</dd><dt>Partner</dt><dd>{}</dd>\
         <dt>Message-ID</dt><dd id=\"message-id\">{}</dd><dt>File</dt><dd id=\"file\">{}</dd><dt>Payload</dt><dd>{} bytes</dd>\
         <dt>As sent / received</dt><dd>{}</dd><dt>Status</dt><dd id=\"status\">{}</dd><dt>MIC</dt><dd>{}</dd><dt>Attempts</dt><dd>{}</dd></dl>",
        r.direction.as_str(),
        esc(&r.station),
        esc(&r.partner),
        esc(&r.message_id),
        esc(&r.filename),
        r.size,
        raw_size.map_or("-".into(), |s| format!("{s} bytes")),
        badge(r.status),
        esc(r.mic.as_deref().unwrap_or("-")),
        r.attempts,
    );
    body.push_str("<h2>Receipt</h2>");
    match &r.mdn {
        Some(m) => {
            let _ = write!(
                body,
                "<dl id=\"receipt\"><dt>Disposition</dt><dd>{}</dd><dt>Signed</dt><dd>{}</dd><dt>MIC</dt><dd>{}</dd></dl>",
                esc(&m.disposition),
                if m.signed { "yes, verified" } else { "no" },
                m.mic.as_str(),
            );
        }
        None => body.push_str("<p id=\"receipt\">None yet.</p>"),
    }
    let partnerships = app.backend.partnerships().await?;
    if let Some(p) = partnerships
        .iter()
        .find(|p| p.station == r.station && p.partner == r.partner)
    {
        let _ = write!(
            body,
            "<h2>Partnership settings</h2><dl id=\"algorithms\"><dt>Encryption</dt><dd>{}</dd><dt>Signing</dt><dd>{}</dd>\
             <dt>Compression</dt><dd>{}</dd><dt>Receipt</dt><dd>{}{}</dd></dl>",
            esc(&p.encryption.map_or("none".into(), |e| e.to_string())),
            esc(&p.signing.map_or("none".into(), |d| d.to_string())),
            esc(&p.compression.to_string()),
            p.mdn.as_str(),
            if p.signed_mdn { ", signed" } else { "" },
        );
    }
    body.push_str("<h2>Timeline</h2><ol id=\"timeline\" class=\"timeline\">");
    for h in &r.history {
        let _ = write!(
            body,
            "<li><time>{}</time> {} {}</li>",
            h.at,
            badge(h.status),
            esc(h.detail.as_deref().unwrap_or(""))
        );
    }
    body.push_str("</ol><h2>Files</h2><ul id=\"downloads\">");
    for p in r.parts() {
        let _ = write!(
            body,
            "<li><a href=\"/api/v1/messages/{}/{}\" download>{}</a></li>",
            url(&r.id),
            p.as_str(),
            p.describe()
        );
    }
    body.push_str("</ul>");
    if r.direction == Direction::Outbox && r.status.is_final() && r.status != Status::NotSent {
        let _ = write!(
            body,
            "<h2>Resend</h2><form id=\"resend\" method=\"post\" action=\"/messages/{}/resend\" data-confirm=\"Send this message to {} again?\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><label><input type=\"radio\" name=\"as\" value=\"same\" checked> with the same Message-ID \
             (a partner that has it answers with its first receipt)</label><label><input type=\"radio\" name=\"as\" value=\"new\"> as a new message</label>\
             <label><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> I want it sent again</label>\
             <button type=\"submit\">Resend</button></form>",
            url(&r.id),
            esc(&r.partner),
            esc(app.auth.csrf_token()),
        );
    }
    Ok((format!("Message {}", r.id), body))
}

/// The resend form's fields.
#[derive(serde::Deserialize)]
pub(crate) struct ResendForm {
    #[serde(rename = "as", default)]
    as_new: String,
    #[serde(default)]
    confirm: String,
}

pub(crate) async fn resend<B: Backend>(
    State(app): State<App<B>>,
    Path(id): Path<String>,
    Form(f): Form<ResendForm>,
) -> Response {
    if f.confirm != "yes" {
        return error_page(
            &app,
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "tick the confirmation to resend",
            ),
        );
    }
    let as_new = f.as_new == "new";
    match app.backend.gateway().resend(&id, as_new).await {
        Ok(resent) => Redirect::to(&format!(
            "/messages/{}?resent={}",
            url(&resent.id),
            if as_new { "new" } else { "same" }
        ))
        .into_response(),
        Err(e) => error_page(&app, e.into()),
    }
}

pub(crate) async fn partners<B: Backend>(State(app): State<App<B>>) -> Response {
    match partners_body(&app).await {
        Ok(body) => page(
            &app,
            StatusCode::OK,
            "Partners and stations",
            "Partners",
            &body,
        ),
        Err(e) => error_page(&app, e),
    }
}

fn cert_cells(c: Option<&Certificate>) -> String {
    match c {
        Some(c) => format!(
            "<td>{}</td><td>{}</td><td>{} – {}</td><td>{}{}</td>",
            esc(c.subject.as_deref().unwrap_or("-")),
            esc(c.issuer.as_deref().unwrap_or("-")),
            esc(c.not_before.as_deref().unwrap_or("-")),
            esc(c.not_after.as_deref().unwrap_or("-")),
            cert_badge(c.state),
            c.days_left.map_or_else(
                || c.problem
                    .as_deref()
                    .map(|p| format!(" {}", esc(p)))
                    .unwrap_or_default(),
                |d| format!(" {d} days")
            ),
        ),
        None => "<td colspan=\"4\">-</td>".into(),
    }
}

/// How many lookups a page makes at once.
const LOOKUPS_AT_ONCE: usize = 16;

async fn partners_body<B: Backend>(app: &App<B>) -> Result<String, ApiError> {
    let certs = certificates(&*app.backend).await?;
    let log = app.backend.gateway().ports.log();
    let mut body = String::from(
        "<h2>Partnerships</h2><table id=\"partners\" class=\"sortable\"><thead><tr><th>station</th><th>partner</th><th>URL</th>\
         <th>encryption</th><th>signing</th><th>receipt</th><th>certificate</th><th>issuer</th><th>validity</th><th>state</th>\
         <th>last exchange</th><th></th></tr></thead><tbody>",
    );
    let partnerships = app.backend.partnerships().await?;
    // Each one's last exchange, a query each (one index lookup), several at a time: on AWS
    // each is a round trip to DynamoDB.
    let newest: Vec<RecordQuery> = partnerships
        .iter()
        .map(|p| RecordQuery::of(Some(&p.station), Some(&p.partner), 1))
        .collect();
    let lasts: Vec<Vec<MessageRecord>> = futures_util::stream::iter(newest)
        .map(|q| async move { log.query(&q).await })
        .buffered(LOOKUPS_AT_ONCE)
        .try_collect()
        .await?;
    for (p, last) in partnerships.iter().zip(lasts) {
        let owner = format!("{}/{}", p.station, p.partner);
        let cert = certs
            .iter()
            .find(|c| c.kind == CertificateKind::Partner && c.owner == owner);
        let last = last.first().map_or("-".to_string(), |r| {
            format!(
                "<a href=\"/messages/{}\">{}</a> {}",
                url(&r.id),
                esc(&r.changed_at().to_string()[..19]),
                badge(r.status)
            )
        });
        let _ = write!(
            body,
            "<tr data-partner=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}<td>{last}</td>\
             <td><a class=\"edit\" href=\"/partners/edit?station={}&amp;partner={}\">Edit</a></td></tr>",
            esc(&p.partner),
            esc(&p.station),
            esc(&p.partner),
            esc(&p.url),
            esc(&p.encryption.map_or("none".into(), |e| e.to_string())),
            esc(&p.signing.map_or("none".into(), |d| d.to_string())),
            p.mdn.as_str(),
            cert_cells(cert),
            url(&p.station),
            url(&p.partner),
        );
    }
    body.push_str("</tbody></table><h2>Stations</h2><table id=\"stations\"><thead><tr><th>AS2 ID</th><th>key alias</th><th>certificate</th><th>issuer</th><th>validity</th><th>state</th><th></th></tr></thead><tbody>");
    for s in app.backend.stations().await? {
        let cert = certs
            .iter()
            .find(|c| c.kind == CertificateKind::Station && c.owner == s.as2_id);
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td>{}<td><a class=\"edit\" href=\"/stations/edit?as2_id={}\">Edit</a></td></tr>",
            esc(&s.as2_id),
            esc(&s.key_alias),
            cert_cells(cert),
            url(&s.as2_id),
        );
    }
    body.push_str("</tbody></table><p><a class=\"button\" id=\"add-partnership\" href=\"/partners/edit\">Add a partnership</a> \
         <a class=\"button\" id=\"add-station\" href=\"/stations/edit\">Add a station</a></p>\
         <p class=\"note\">The same settings as <code>mftg partners</code> and <code>mftg stations</code>, through the same checks; \
         keys and certificates are added with <code>mftg keys</code>.</p>");
    Ok(body)
}

pub(crate) async fn queue<B: Backend>(
    State(app): State<App<B>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let jobs = match app.backend.parked(crate::api::MAX_LIMIT).await {
        Ok(j) => j,
        Err(e) => return error_page(&app, e.into()),
    };
    let mut body = String::new();
    if let Some(n) = q.get("redriven") {
        let _ = write!(
            body,
            "<p class=\"notice\" id=\"notice\">{} job(s) put back in the queue.</p>",
            esc(n)
        );
    }
    let csrf = esc(app.auth.csrf_token());
    if jobs.is_empty() {
        body.push_str("<p id=\"empty\">No job is set aside.</p>");
    } else {
        body.push_str("<table id=\"parked\"><thead><tr><th>job</th><th>message</th><th>why</th><th>set aside</th><th>runs</th><th></th></tr></thead><tbody>");
        for j in &jobs {
            let message = j.record_id().map_or("-".into(), |id| {
                format!("<a href=\"/messages/{}\">{}</a>", url(id), esc(id))
            });
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{message}</td><td>{}</td><td>{}</td><td>{}</td><td><form method=\"post\" action=\"/queue/redrive\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"id\" value=\"{}\"><button type=\"submit\">Redrive</button></form></td></tr>",
                esc(&j.id),
                esc(j.reason.as_deref().unwrap_or("failed too often")),
                j.parked_at.map_or("-".into(), |t| t.to_string()),
                j.runs.map_or("-".into(), |n| n.to_string()),
                esc(&j.id),
            );
        }
        let _ = write!(body, "</tbody></table><form method=\"post\" action=\"/queue/redrive\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\">Redrive all</button></form>");
    }
    page(&app, StatusCode::OK, "Queue", "Queue", &body)
}

/// The redrive form's fields.
#[derive(serde::Deserialize)]
pub(crate) struct RedriveForm {
    #[serde(default)]
    id: String,
}

pub(crate) async fn redrive<B: Backend>(
    State(app): State<App<B>>,
    Form(f): Form<RedriveForm>,
) -> Response {
    let only = (!f.id.trim().is_empty()).then(|| f.id.trim().to_string());
    match app.backend.redrive(only, crate::api::MAX_LIMIT).await {
        Ok(moved) => Redirect::to(&format!("/queue?redriven={}", moved.len())).into_response(),
        Err(e) => error_page(&app, e.into()),
    }
}

pub(crate) async fn login_page(Query(q): Query<BTreeMap<String, String>>) -> Response {
    login_form(
        StatusCode::OK,
        q.get("next").map(String::as_str).unwrap_or("/"),
        "",
    )
}

pub(crate) fn login_form(status: StatusCode, next: &str, problem: &str) -> Response {
    let problem = if problem.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\" id=\"error\">{}</p>", esc(problem))
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Log in · mftg</title>\
         <link rel=\"stylesheet\" href=\"/static/console.css\"></head><body class=\"login\"><main><h1>mftg console</h1>{problem}\
         <form id=\"login\" method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label>Token<input type=\"password\" name=\"token\" autocomplete=\"current-password\" required autofocus></label>\
         <button type=\"submit\">Log in</button></form><p class=\"note\">The token is in <code>.mftg/console.token</code> in the data directory \
         (or where <code>mftg console</code> said).</p></main></body></html>",
        esc(next)
    );
    (status, Html(html)).into_response()
}

/// Only paths of this console are where a login may lead.
pub(crate) fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

pub(crate) fn asset(name: &str) -> Response {
    let (body, kind) = match name {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return ApiError::not_found("no such file").into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}
