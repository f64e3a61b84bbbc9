//! `mftg console`'s REST API against the data directories of two real `mftg serve` processes
//! after a real exchange: every endpoint, with the token and without, and the bad input the
//! console must refuse (a wrong token, a change without the CSRF token, filters that are not
//! statuses or dates, a resend of a received message); and settings written through it.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use common::{console, failed_while_beta_down, send_to_beta, serve, wait_for, Console};
use gateway::layout::Direction;
use gateway::model::Status;
use testkit::http::{request as http, Reply};

fn bearer(c: &Console) -> Vec<(&'static str, String)> {
    vec![("Authorization", format!("Bearer {}", c.token))]
}

fn get(c: &Console, path: &str) -> Reply {
    http(c.port, "GET", path, &bearer(c), "")
}

#[test]
fn the_api_shows_and_acts_on_a_real_exchange() {
    let tmp = tempfile::tempdir().unwrap();
    // BETA down: the first message fails.
    let (alpha, beta, _alpha, failed) = failed_while_beta_down(tmp.path(), "po-lost.x12");
    // BETA up: the second is delivered.
    let _beta = serve(&beta, None);
    let good = tmp.path().join("po-good.x12");
    std::fs::write(&good, b"ISA*00*GOOD~\r\nST*850*0001~\r\n").unwrap();
    send_to_beta(&alpha, &good);
    let delivered = wait_for(&alpha, "the second is delivered", |rs| {
        rs.iter()
            .any(|r| r.filename == "po-good.x12" && r.status == Status::Delivered)
    })
    .into_iter()
    .find(|r| r.filename == "po-good.x12")
    .unwrap();

    let c = console(&alpha);

    // No token, a wrong one, another scheme: 401, and nothing of the gateway in the answer.
    let wrong = [
        vec![],
        vec![("Authorization", "Bearer not-the-token-at-all".to_string())],
        vec![("Authorization", format!("Token {}", c.token))],
        vec![("Authorization", format!("Bearer {}x", c.token))],
    ];
    for path in [
        "/api/v1/messages",
        "/api/v1/session",
        "/api/v1/stations",
        "/api/v1/certificates",
        "/api/v1/nothing",
    ] {
        for headers in &wrong {
            let r = http(c.port, "GET", path, headers, "");
            assert_eq!(r.status, 401, "{path} {headers:?}");
            assert_eq!(r.code(), "unauthorized");
            let text = String::from_utf8_lossy(&r.body);
            assert!(
                !text.contains("ALPHA") && !text.contains(&c.token),
                "{text}"
            );
            assert!(r.header("www-authenticate").is_some());
        }
    }
    let r = http(
        c.port,
        "POST",
        &format!("/api/v1/messages/{}/resend", failed.id),
        &[],
        "{}",
    );
    assert_eq!(r.status, 401);
    // A page without the token: the login form, and nothing of the page.
    for (path, back) in [
        ("/", "/"),
        ("/messages?status=failed", "/messages"),
        ("/partners", "/partners"),
    ] {
        for headers in &wrong {
            let r = http(c.port, "GET", path, headers, "");
            assert_eq!(r.status, 303, "{path}");
            assert_eq!(r.header("location").unwrap(), format!("/login?next={back}"));
            assert!(!String::from_utf8_lossy(&r.body).contains("ALPHA"));
        }
    }
    let r = http(c.port, "GET", "/login", &[], "");
    assert_eq!(r.status, 200);
    assert!(!String::from_utf8_lossy(&r.body).contains("ALPHA"));
    // A wrong token at the login form: 401, no cookie.
    let r = http(
        c.port,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded".into())],
        "token=wrong-token-wrong-token&next=%2F",
    );
    assert_eq!(r.status, 401);
    assert!(r.header("set-cookie").is_none());
    // The right one: a session cookie (not the token), and a login cannot lead off the site.
    let r = http(
        c.port,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded".into())],
        &format!("token={}&next=%2F%2Fevil.example%2F", c.token),
    );
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location").as_deref(), Some("/"));
    let cookie = r.header("set-cookie").unwrap();
    assert!(!cookie.contains(&c.token), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let page = http(
        c.port,
        "GET",
        "/messages",
        &[("Cookie", session.clone())],
        "",
    );
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("po-lost.x12"));
    // A form posted from elsewhere (the cookie, no CSRF field) changes nothing.
    let r = http(
        c.port,
        "POST",
        &format!("/messages/{}/resend", failed.id),
        &[
            ("Cookie", session.clone()),
            ("Content-Type", "application/x-www-form-urlencoded".into()),
        ],
        "as=same&confirm=yes",
    );
    assert_eq!((r.status, r.code().as_str()), (403, "csrf"));

    // The list, newest first, and its filters.
    let r = get(&c, "/api/v1/messages");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        r.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    let all = r.json();
    let ids: Vec<&str> = all["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [delivered.id.as_str(), failed.id.as_str()]);
    assert!(all["next"].is_null());
    let only = |query: &str| -> Vec<String> {
        let r = get(&c, &format!("/api/v1/messages?{query}"));
        assert_eq!(
            r.status,
            200,
            "{query}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(only("status=failed"), [failed.id.as_str()]);
    assert_eq!(
        only("status=delivered&partner=BETA&direction=outbox"),
        [delivered.id.as_str()]
    );
    assert_eq!(only("partner=GAMMA"), Vec::<String>::new());
    assert_eq!(only("direction=inbox"), Vec::<String>::new());
    assert_eq!(only("file=GOOD"), [delivered.id.as_str()]);
    assert_eq!(
        only(&format!(
            "message_id={}",
            delivered.message_id.trim_matches(['<', '>'])
        )),
        [delivered.id.as_str()]
    );
    assert_eq!(only("since=2000-01-01&until=2100-01-01").len(), 2);
    assert_eq!(only("until=2000-01-01"), Vec::<String>::new());
    // Paging: one at a time, `next` names where the next page starts.
    let page = get(&c, "/api/v1/messages?limit=1").json();
    assert_eq!(page["messages"][0]["id"], delivered.id.as_str());
    let next = page["next"].as_str().unwrap().to_string();
    assert_eq!(
        only(&format!("limit=1&before={next}")),
        [failed.id.as_str()]
    );

    // Filters that are not statuses, directions, dates or numbers: 400 with what is taken.
    for (query, accepted) in [
        ("status=lost", "delivered-with-warning"),
        ("direction=sideways", "outbox"),
        ("since=yesterday", "2026-11-28"),
        ("until=2026-13-45", "2026-11-28T05:47:03Z"),
        ("limit=100000", "1..500"),
        ("colour=red", "message_id"),
    ] {
        let r = get(&c, &format!("/api/v1/messages?{query}"));
        assert_eq!(r.status, 400, "{query}");
        let e = r.json();
        assert_eq!(e["error"]["code"], "bad_filter", "{query}");
        assert!(
            e["error"]["accepted"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == accepted),
            "{query}: {e}"
        );
    }

    // One message: its record, receipt and the files to download, by id or Message-ID.
    let shown = get(&c, &format!("/api/v1/messages/{}", delivered.id)).json();
    assert_eq!(shown["status"], "delivered");
    assert_eq!(shown["mdn"]["mic"], "matches");
    assert_eq!(shown["mdn"]["signed"], true);
    assert!(shown["history"].as_array().unwrap().len() >= 3, "{shown}");
    let parts: Vec<&str> = shown["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["part"].as_str().unwrap())
        .collect();
    assert_eq!(parts, ["payload", "raw", "headers", "receipt"]);
    let by_mid = get(
        &c,
        &format!(
            "/api/v1/messages/{}",
            delivered.message_id.trim_matches(['<', '>'])
        ),
    );
    assert_eq!(by_mid.json()["id"], delivered.id.as_str());
    let payload = get(&c, &format!("/api/v1/messages/{}/payload", delivered.id));
    assert_eq!(payload.status, 200);
    assert_eq!(payload.body, std::fs::read(&good).unwrap());
    assert!(payload
        .header("content-disposition")
        .unwrap()
        .contains("filename=\"po-good.x12\""));
    let receipt = get(&c, &format!("/api/v1/messages/{}/receipt", delivered.id));
    assert_eq!(receipt.status, 200);
    assert!(String::from_utf8_lossy(&receipt.body)
        .to_ascii_lowercase()
        .contains("multipart/signed"));
    let raw = get(&c, &format!("/api/v1/messages/{}/raw", delivered.id));
    assert_eq!(raw.status, 200);
    assert!(!raw.body.is_empty());
    let headers = get(&c, &format!("/api/v1/messages/{}/headers", delivered.id));
    assert!(String::from_utf8_lossy(&headers.body).contains(delivered.message_id.as_str()));
    // What is not there: 404 with a code.
    for path in [
        "/api/v1/messages/20200101T000000Z-nothing".to_string(),
        format!("/api/v1/messages/{}/receipt", failed.id),
        format!("/api/v1/messages/{}/secrets", delivered.id),
        "/api/v1/nothing".to_string(),
    ] {
        let r = get(&c, &path);
        assert_eq!((r.status, r.code().as_str()), (404, "not_found"), "{path}");
    }

    // Settings.
    let stations = get(&c, "/api/v1/stations").json();
    assert_eq!(stations["stations"][0]["as2_id"], "ALPHA");
    let partners = get(&c, "/api/v1/partners?station=ALPHA").json();
    assert_eq!(partners["partners"][0]["partner"], "BETA");
    assert_eq!(
        get(&c, "/api/v1/partners?station=NOBODY").json()["partners"],
        serde_json::json!([])
    );
    assert_eq!(get(&c, "/api/v1/partners?who=ALPHA").status, 400);
    let queue = get(&c, "/api/v1/queue");
    assert_eq!(queue.status, 200);
    assert!(queue.json()["parked"].is_array());
    let r = http(
        c.port,
        "POST",
        "/api/v1/queue/redrive",
        &bearer(&c),
        r#"{"id":"12345"}"#,
    );
    assert_eq!((r.status, r.code().as_str()), (404, "not_found"));

    // Resend with the browser's credentials (Basic): refused without the CSRF token, taken
    // with it; the failed message is delivered with its Message-ID.
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("operator:{}", c.token))
    );
    let resend_path = format!("/api/v1/messages/{}/resend", failed.id);
    let r = http(
        c.port,
        "POST",
        &resend_path,
        &[("Authorization", basic.clone())],
        "{}",
    );
    assert_eq!((r.status, r.code().as_str()), (403, "csrf"));
    let r = http(
        c.port,
        "POST",
        &resend_path,
        &[
            ("Authorization", basic.clone()),
            ("X-CSRF-Token", "0".repeat(64)),
        ],
        "{}",
    );
    assert_eq!((r.status, r.code().as_str()), (403, "csrf"));
    let session = http(
        c.port,
        "GET",
        "/api/v1/session",
        &[("Authorization", basic.clone())],
        "",
    )
    .json();
    let csrf = session["csrf_token"].as_str().unwrap().to_string();
    assert!(session["backend"]
        .as_str()
        .unwrap()
        .starts_with("data directory "));
    let r = http(
        c.port,
        "POST",
        &resend_path,
        &[
            ("Authorization", basic.clone()),
            ("X-CSRF-Token", csrf.clone()),
        ],
        r#"{"as_new": "yes"}"#,
    );
    assert_eq!((r.status, r.code().as_str()), (400, "bad_request"));
    let r = http(
        c.port,
        "POST",
        &resend_path,
        &[("Authorization", basic), ("X-CSRF-Token", csrf)],
        "{}",
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["message_id"], failed.message_id.as_str());
    let records = wait_for(&alpha, "the resent message is delivered", |rs| {
        rs.iter()
            .any(|r| r.id == failed.id && r.status == Status::Delivered)
    });
    let resent = records.iter().find(|r| r.id == failed.id).unwrap();
    assert_eq!(resent.message_id, failed.message_id);
    assert_eq!(
        common::records(&beta)
            .iter()
            .filter(|r| r.message_id == failed.message_id)
            .count(),
        1,
        "delivered exactly once"
    );

    // A received message cannot be resent from here: 409, with why.
    let b = console(&beta);
    let inbound = get(&b, "/api/v1/messages?direction=inbox").json();
    let first = inbound["messages"][0]["id"].as_str().unwrap().to_string();
    let r = http(
        b.port,
        "POST",
        &format!("/api/v1/messages/{first}/resend"),
        &bearer(&b),
        "",
    );
    assert_eq!((r.status, r.code().as_str()), (409, "refused"));
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("received"));
    assert_eq!(
        get(&b, "/api/v1/messages").json()["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == "inbox")
            .count(),
        2
    );
    let _ = Direction::Inbox;
}

/// A PUT with the console's token.
fn put(c: &Console, path: &str, body: &str) -> Reply {
    http(c.port, "PUT", path, &bearer(c), body)
}

fn text(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// Stations and partnerships written through the API and the forms: into mftg.toml, where the
/// CLI reads them, only after the checks `mftg serve` makes; refusals name every reason.
#[test]
fn settings_are_written_through_the_gateways_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let (alpha, _beta) = common::sites(tmp.path());
    let c = console(&alpha);
    let gamma = "/api/v1/partners/ALPHA/GAMMA";
    let good = r#"{"url": "http://127.0.0.1:9/as2", "certificate_alias": "beta", "encryption": "aes128-cbc"}"#;

    // No token: 401; the browser's credentials without the CSRF token: 403. Nothing written.
    assert_eq!(http(c.port, "PUT", gamma, &[], good).status, 401);
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("operator:{}", c.token))
    );
    let r = http(c.port, "PUT", gamma, &[("Authorization", basic)], good);
    assert_eq!((r.status, r.code().as_str()), (403, "csrf"));
    let before = std::fs::read_to_string(&alpha.config).unwrap();

    // What the settings' types refuse: 400 naming the field and what it takes.
    for (body, says) in [
        (
            r#"{"url": "http://127.0.0.1:9/as2", "certificate_alias": "beta", "encryption": "rot13"}"#,
            "aes256-cbc",
        ),
        (
            r#"{"url": "http://127.0.0.1:9/as2", "certificate_alias": "beta", "colour": "red"}"#,
            "colour",
        ),
        (
            r#"{"url": "http://127.0.0.1:9/as2", "certificate_alias": "beta", "station": "BETA"}"#,
            "in the path",
        ),
        ("[1, 2]", "JSON object"),
    ] {
        let r = put(&c, gamma, body);
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "bad_request"),
            "{body}"
        );
        assert!(text(&r).contains(says), "{body}: {}", text(&r));
    }
    // What the gateway would not start with: 422, every reason.
    for (path, body, says) in [
        (
            gamma,
            r#"{"url": "http://127.0.0.1:9/as2", "certificate_alias": "nobody"}"#,
            "\"nobody\"",
        ),
        (
            gamma,
            r#"{"url": "ftp://127.0.0.1/as2", "certificate_alias": "beta"}"#,
            "ftp",
        ),
        (
            "/api/v1/partners/NOSUCH/GAMMA",
            r#"{"url": "http://127.0.0.1:9/as2", "certificate_alias": "beta"}"#,
            "no station NOSUCH",
        ),
        (
            "/api/v1/stations/DELTA",
            r#"{"key_alias": "delta"}"#,
            "\"delta\"",
        ),
        (
            "/api/v1/stations/ALPHA",
            r#"{"key_alias": "alpha", "message_id_domain": "a b"}"#,
            "a b",
        ),
    ] {
        let r = put(&c, path, body);
        assert_eq!(
            (r.status, r.code().as_str()),
            (422, "invalid_settings"),
            "{body}: {}",
            text(&r)
        );
        let problems: Vec<String> = r.json()["error"]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect();
        let problems = problems.join("\n");
        assert!(problems.contains(says), "{body}: {problems}");
    }
    assert_eq!(
        std::fs::read_to_string(&alpha.config).unwrap(),
        before,
        "nothing was written"
    );

    // Taken: 201 for a new one, 200 for a change; the CLI reads it from mftg.toml.
    let r = put(&c, gamma, good);
    assert_eq!(r.status, 201, "{}", text(&r));
    assert!(r.json()["saved"]
        .as_str()
        .unwrap()
        .contains("restart `mftg serve`"));
    let r = put(
        &c,
        gamma,
        r#"{"url": "http://127.0.0.1:9/as2", "certificate_alias": "beta", "encryption": "aes128-cbc", "timeout_secs": 7}"#,
    );
    assert_eq!(
        (r.status, r.json()["created"].as_bool()),
        (200, Some(false))
    );
    let listed: serde_json::Value =
        serde_json::from_str(&common::mftg(&alpha, &["partners", "list", "--json"])).unwrap();
    let gamma_row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["partner"] == "GAMMA")
        .unwrap()
        .clone();
    assert_eq!(
        (&gamma_row["encryption"], &gamma_row["timeout_secs"]),
        (&serde_json::json!("aes128-cbc"), &serde_json::json!(7)),
        "{listed}"
    );
    let r = put(
        &c,
        "/api/v1/stations/ALPHA",
        r#"{"key_alias": "alpha", "mdn_url": "http://127.0.0.1:1/as2"}"#,
    );
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(
        get(&c, "/api/v1/stations").json()["stations"][0]["mdn_url"],
        "http://127.0.0.1:1/as2"
    );

    // The form, as a browser posts it: the fields it shows change, the others are kept.
    let csrf = get(&c, "/api/v1/session").json()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let form = |body: &str| {
        http(
            c.port,
            "POST",
            "/partners/edit",
            &[
                ("Authorization", format!("Bearer {}", c.token)),
                ("Content-Type", "application/x-www-form-urlencoded".into()),
            ],
            &format!("csrf={csrf}&{body}"),
        )
    };
    let page = get(&c, "/partners/edit?station=ALPHA&partner=BETA");
    assert_eq!(page.status, 200);
    assert!(
        text(&page).contains("name=\"timeout_secs\""),
        "{}",
        text(&page)
    );
    let r = form("station=ALPHA&partner=BETA&existing=true&timeout_secs=9&signed_mdn=false&signed_mdn=true&mdn=async");
    assert_eq!(r.status, 200, "{}", text(&r));
    assert!(text(&r).contains("id=\"notice\""), "{}", text(&r));
    let beta = get(&c, "/api/v1/partners?station=ALPHA").json()["partners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["partner"] == "BETA")
        .unwrap()
        .clone();
    assert_eq!(
        (
            &beta["timeout_secs"],
            &beta["mdn"],
            &beta["signed_mdn"],
            &beta["retry"]["attempts"]
        ),
        (
            &serde_json::json!(9),
            &serde_json::json!("async"),
            &serde_json::json!(true),
            &serde_json::json!(30)
        ),
        "{beta}"
    );
    // A number that is not one, a new partnership that exists, HTML in an AS2 ID: the form
    // again with why, escaped.
    let r = form("station=ALPHA&partner=BETA&existing=true&timeout_secs=soon");
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("whole number"), "{}", text(&r));
    let r =
        form("station=ALPHA&partner=BETA&url=http%3A%2F%2F127.0.0.1%3A9%2F&certificate_alias=beta");
    assert_eq!(r.status, 409);
    assert!(text(&r).contains("exists already"), "{}", text(&r));
    let r = form("station=ALPHA&partner=%3Cscript%3Ealert(1)%3C%2Fscript%3E&url=http%3A%2F%2F127.0.0.1%3A9%2F&certificate_alias=beta");
    assert!(r.status >= 400, "{}", text(&r));
    assert!(!text(&r).contains("<script>alert"), "{}", text(&r));
    // A form posted with the browser's credentials but without the CSRF field: refused; a
    // station whose key is not in identity.jks: the form again, nothing changed.
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("operator:{}", c.token))
    );
    let r = http(
        c.port,
        "POST",
        "/stations/edit",
        &[
            ("Authorization", basic),
            ("Content-Type", "application/x-www-form-urlencoded".into()),
        ],
        "as2_id=ALPHA&existing=true&key_alias=alpha",
    );
    assert_eq!((r.status, r.code().as_str()), (403, "csrf"));
    let r = http(
        c.port,
        "POST",
        "/stations/edit",
        &[
            ("Authorization", format!("Bearer {}", c.token)),
            ("Content-Type", "application/x-www-form-urlencoded".into()),
        ],
        &format!("csrf={csrf}&as2_id=ALPHA&existing=true&key_alias=beta"),
    );
    assert_eq!(r.status, 422, "{}", text(&r));
    assert!(text(&r).contains("identity.jks"), "{}", text(&r));
    assert_eq!(
        get(&c, "/api/v1/stations").json()["stations"][0]["key_alias"],
        "alpha"
    );
    // The forms of a station, of a new one, of nothing there.
    let page = get(&c, "/stations/edit?as2_id=ALPHA");
    assert!(text(&page).contains("value=\"alpha\""), "{}", text(&page));
    assert!(text(&get(&c, "/stations/edit")).contains("New station"));
    assert!(text(&get(&c, "/partners/edit")).contains("<option>ALPHA</option>"));
    assert_eq!(
        get(&c, "/partners/edit?station=ALPHA&partner=NOPE").status,
        404
    );
    // The partners page links the forms.
    let page = text(&get(&c, "/partners"));
    assert!(
        page.contains("/partners/edit?station=ALPHA&amp;partner=GAMMA")
            && page.contains("/stations/edit?as2_id=ALPHA")
            && page.contains("id=\"add-partnership\""),
        "{page}"
    );
}
