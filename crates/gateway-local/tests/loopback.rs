//! Embedded gateways end to end over 127.0.0.1: real directories, SQLite, HTTP and the watcher;
//! partners that are down, slow, failing or answering garbage; a gateway killed mid-send.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use common::*;
use gateway::model::{MdnMode, Status};
use gateway::ports::MessageLog;
use gateway::{Origin, UploadOutcome};
use gateway_local::Node;

#[test]
fn every_receipt_mode_over_loopback() {
    for (mode, signed) in [
        (MdnMode::Sync, true),
        (MdnMode::Sync, false),
        (MdnMode::Async, true),
        (MdnMode::None, false),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = sites(tmp.path(), free_port(), free_port(), None, &|p| {
            p.mdn = mode;
            p.signed_mdn = signed;
        });
        let (ra, rb) = (Running::start(&a), Running::start(&b));
        drop_file(&a, "order 7 ü.x12", b"ISA*00~\r\nIEA*1~\r\n");
        let records = wait_for(&ra, "delivery", Duration::from_secs(20), delivered);
        let r = outbound(&records)[0];
        let want = if mode == MdnMode::None {
            Status::Sent
        } else {
            Status::Delivered
        };
        assert_eq!(r.status, want, "{mode:?}: {:#?}", r.history);
        if mode != MdnMode::None {
            assert_eq!(r.mdn.as_ref().unwrap().signed, signed);
            assert_eq!(r.mdn.as_ref().unwrap().mic, "matches");
        }
        let got = wait_for(&rb, "receipt", Duration::from_secs(10), |rs| {
            inbound(rs).len() == 1
        });
        let key = inbound(&got)[0].payload_key.clone().unwrap();
        assert!(key.ends_with("/order 7 ü.x12"), "{key}");
        assert_eq!(
            std::fs::read(b.config.data_dir.join(key)).unwrap(),
            b"ISA*00~\r\nIEA*1~\r\n"
        );
        for dir in [
            "AS2/raw-message/ALPHA/BETA/outbox",
            "AS2/headers/ALPHA/BETA/outbox",
            "AS2/files/ALPHA/BETA/outbox",
        ] {
            assert!(
                a.config.data_dir.join(dir).read_dir().unwrap().count() == 1,
                "{dir}"
            );
        }
        assert!(
            std::fs::read_dir(a.config.data_dir.join("AS2/send/ALPHA/BETA"))
                .unwrap()
                .next()
                .is_none(),
            "send folder emptied"
        );
        ra.stop();
        rb.stop();
    }
}

#[test]
fn partner_down_then_up() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = sites(tmp.path(), free_port(), free_port(), None, &|_| {});
    let ra = Running::start(&a);
    drop_file(&a, "waits.x12", b"ISA~");
    wait_for(&ra, "a failed attempt", Duration::from_secs(20), |rs| {
        outbound(rs)
            .first()
            .is_some_and(|r| r.status == Status::Queued && r.attempts >= 1)
    });
    let rb = Running::start(&b);
    let records = wait_for(
        &ra,
        "delivery once the partner is up",
        Duration::from_secs(30),
        delivered,
    );
    let r = outbound(&records)[0];
    assert!(r.attempts >= 2, "{:#?}", r.history);
    assert!(
        r.history
            .iter()
            .any(|h| h.detail.as_deref().unwrap_or("").contains("cannot connect")),
        "{:#?}",
        r.history
    );
    assert_eq!(inbound(&rb.records()).len(), 1);
    ra.stop();
    rb.stop();
}

/// Stands in front of BETA: answers the first requests as `script` says, then passes them on.
async fn front(
    listener: tokio::net::TcpListener,
    beta: String,
    script: Vec<&'static str>,
    seen: Arc<AtomicUsize>,
) {
    let script = Arc::new(script);
    let app = axum::Router::new().route(
        "/as2",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (script, seen, beta) = (script.clone(), seen.clone(), beta.clone());
            async move {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                match script.get(n).copied().unwrap_or("forward") {
                    "500" => {
                        (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded").into_response()
                    }
                    "slow" => {
                        tokio::time::sleep(Duration::from_secs(4)).await;
                        (StatusCode::OK, "too late").into_response()
                    }
                    "garbage" => (StatusCode::OK, "<html>It works!</html>").into_response(),
                    stall => {
                        if stall == "stall-then-forward" {
                            tokio::time::sleep(Duration::from_millis(1500)).await;
                        }
                        let client = reqwest::Client::new();
                        let mut rb = client.post(&beta).body(body.to_vec());
                        for (k, v) in &headers {
                            if k != "host" && k != "content-length" {
                                rb = rb.header(k.as_str(), v.as_bytes());
                            }
                        }
                        let resp = rb.send().await.unwrap();
                        let status = resp.status().as_u16();
                        let mut out = axum::http::Response::builder().status(status);
                        for (k, v) in resp.headers() {
                            if k != "content-length" && k != "transfer-encoding" {
                                out = out.header(k.as_str(), v.as_bytes());
                            }
                        }
                        out.body(axum::body::Body::from(resp.bytes().await.unwrap()))
                            .unwrap()
                    }
                }
            }
        }),
    );
    axum::serve(listener, app).await.unwrap();
}

#[test]
fn a_partner_that_fails_in_every_way_first() {
    let tmp = tempfile::tempdir().unwrap();
    let (beta_port, front_port) = (free_port(), free_port());
    let (a, b) = sites(
        tmp.path(),
        free_port(),
        beta_port,
        Some(format!("http://127.0.0.1:{front_port}/as2")),
        &|p| p.retry = Some(quick_retries(6)),
    );
    let seen = Arc::new(AtomicUsize::new(0));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(bind_retrying(
        format!("127.0.0.1:{front_port}").parse().unwrap(),
    ));
    rt.spawn(front(
        listener,
        format!("http://127.0.0.1:{beta_port}/as2"),
        vec!["500", "slow", "garbage"],
        seen.clone(),
    ));
    let (ra, rb) = (Running::start(&a), Running::start(&b));
    drop_file(&a, "flaky.x12", b"ISA~");
    let records = wait_for(
        &ra,
        "delivery after 500, timeout, garbage",
        Duration::from_secs(40),
        delivered,
    );
    let r = outbound(&records)[0];
    assert_eq!(r.attempts, 4, "{:#?}", r.history);
    let details: Vec<&str> = r
        .history
        .iter()
        .filter_map(|h| h.detail.as_deref())
        .collect();
    for expected in ["HTTP 500", "timed out", "not a receipt"] {
        assert!(
            details.iter().any(|d| d.contains(expected)),
            "{expected}: {details:#?}"
        );
    }
    assert_eq!(inbound(&rb.records()).len(), 1, "delivered once");
    ra.stop();
    rb.stop();
    rt.shutdown_background();
}

#[test]
fn a_gateway_killed_mid_send_finishes_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let (beta_port, front_port) = (free_port(), free_port());
    let (a, b) = sites(
        tmp.path(),
        free_port(),
        beta_port,
        Some(format!("http://127.0.0.1:{front_port}/as2")),
        &|_| {},
    );
    let seen = Arc::new(AtomicUsize::new(0));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(bind_retrying(
        format!("127.0.0.1:{front_port}").parse().unwrap(),
    ));
    rt.spawn(front(
        listener,
        format!("http://127.0.0.1:{beta_port}/as2"),
        vec!["stall-then-forward"],
        seen.clone(),
    ));
    let rb = Running::start(&b);
    let ra = Running::start(&a);
    drop_file(&a, "crash.x12", b"ISA~crash");
    let start = Instant::now();
    while seen.load(Ordering::SeqCst) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the send never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The POST is on the wire; ALPHA dies before the answer comes back.
    ra.kill();
    let id = {
        let db = gateway_local::Db::open(&a.config.database()).unwrap();
        let rs = futures_lite(db.query(&gateway::ports::RecordQuery::of(None, None, 10))).unwrap();
        assert_eq!(rs[0].status, Status::Sending, "{:#?}", rs[0].history);
        rs[0].id.clone()
    };
    let ra = Running::start(&a);
    let records = wait_for(
        &ra,
        "delivery after the restart",
        Duration::from_secs(30),
        delivered,
    );
    let r = records.iter().find(|r| r.id == id).unwrap();
    assert_eq!(r.status, Status::Delivered, "{:#?}", r.history);
    assert!(
        seen.load(Ordering::SeqCst) >= 2,
        "sent again after the restart"
    );
    let got = wait_for(&rb, "one delivery at BETA", Duration::from_secs(10), |rs| {
        !inbound(rs).is_empty()
    });
    assert_eq!(
        inbound(&got).len(),
        1,
        "the resend, with the same Message-ID, is not delivered twice"
    );
    assert_eq!(
        std::fs::read_dir(b.config.data_dir.join("AS2/files/BETA/ALPHA/inbox"))
            .unwrap()
            .count(),
        1
    );
    ra.stop();
    rb.stop();
    rt.shutdown_background();
}

#[test]
fn the_same_name_twice_through_the_watcher() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = sites(tmp.path(), free_port(), free_port(), None, &|_| {});
    let (ra, rb) = (Running::start(&a), Running::start(&b));
    drop_file(&a, "twice.x12", b"first");
    wait_for(&ra, "first", Duration::from_secs(20), delivered);
    drop_file(&a, "twice.x12", b"second");
    let records = wait_for(&ra, "duplicate", Duration::from_secs(20), |rs| {
        rs.iter().any(|r| r.status == Status::Duplicate)
    });
    let dup = records
        .iter()
        .find(|r| r.status == Status::Duplicate)
        .unwrap();
    let kept = a.config.data_dir.join(dup.payload_key.as_ref().unwrap());
    assert!(
        kept.starts_with(a.config.data_dir.join("AS2/duplicate/ALPHA/BETA")),
        "{}",
        kept.display()
    );
    assert_eq!(std::fs::read(kept).unwrap(), b"second");
    assert_eq!(inbound(&rb.records()).len(), 1);
    ra.stop();
    rb.stop();
}

#[test]
fn twenty_concurrent_events_for_one_upload_send_it_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = sites(tmp.path(), free_port(), free_port(), None, &|_| {});
    let rb = Running::start(&b);
    // ALPHA's ports without its watcher: twenty deliveries of one event, at once.
    let node = Arc::new(Node::open(a.config.clone()).unwrap());
    drop_file(&a, "once.x12", b"only once");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let outcomes: Vec<UploadOutcome> = rt.block_on(async {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let n = node.clone();
                tokio::spawn(async move {
                    n.gateway
                        .on_upload("AS2/send/ALPHA/BETA/once.x12", Origin::Upload, None)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    });
    let ids: std::collections::HashSet<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            UploadOutcome::Queued { id } => Some(id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, UploadOutcome::Queued { .. } | UploadOutcome::Ignored(_))),
        "{outcomes:?}"
    );
    drop(rt);
    let ra = Running::start(&a);
    wait_for(&ra, "delivery", Duration::from_secs(20), delivered);
    assert_eq!(outbound(&ra.records()).len(), 1);
    let got = wait_for(&rb, "BETA", Duration::from_secs(10), |rs| {
        !inbound(rs).is_empty()
    });
    assert_eq!(inbound(&got).len(), 1, "sent once");
    ra.stop();
    rb.stop();
}

#[test]
fn posts_the_endpoint_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, b) = sites(tmp.path(), free_port(), free_port(), None, &|_| {});
    let rb = Running::start(&b);
    let url = format!("http://{}/as2", b.config.listen);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let post = |headers: Vec<(&str, &str)>, body: &'static [u8]| {
        rt.block_on(async {
            let mut req = reqwest::Client::new().post(&url).body(body);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            for _ in 0..50 {
                if let Ok(r) = req.try_clone().unwrap().send().await {
                    return (r.status().as_u16(), r.text().await.unwrap());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("endpoint never came up");
        })
    };
    let (status, text) = post(vec![("Content-Type", "application/edi-x12")], b"ISA");
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("AS2-From"), "{text}");
    let (status, text) = post(
        vec![
            ("AS2-From", "MALLORY"),
            ("AS2-To", "BETA"),
            ("Message-ID", "<m@x>"),
            ("Content-Type", "application/edi-x12"),
        ],
        b"ISA",
    );
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("no partnership"), "{text}");
    let rejected = b.config.data_dir.join("AS2/raw-message/_rejected");
    assert_eq!(
        std::fs::read_dir(rejected).unwrap().count(),
        2,
        "both kept, nothing else written"
    );
    assert!(!b.config.data_dir.join("AS2/files").exists());
    let _ = &b.root;
    rb.stop();
}

#[test]
fn basic_auth_towards_the_partner() {
    // BETA's front door wants "alpha:S3cret-Basic"; the password comes from a named variable.
    std::env::set_var("MFTG_TEST_BETA_PASSWORD", "S3cret-Basic");
    for (secret, want) in [
        ("MFTG_TEST_BETA_PASSWORD", Status::Delivered),
        ("MFTG_TEST_NO_SUCH_PASSWORD", Status::Failed),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let (beta_port, front_port) = (free_port(), free_port());
        let (a, b) = sites(
            tmp.path(),
            free_port(),
            beta_port,
            Some(format!("http://127.0.0.1:{front_port}/as2")),
            &|p| {
                p.auth = Some(gateway::model::BasicAuth {
                    user: "alpha".into(),
                    password_secret: secret.into(),
                });
                p.retry = Some(quick_retries(1));
            },
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(bind_retrying(
            format!("127.0.0.1:{front_port}").parse().unwrap(),
        ));
        let beta_url = format!("http://127.0.0.1:{beta_port}/as2");
        let app = axum::Router::new().route(
            "/as2",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let beta_url = beta_url.clone();
                async move {
                    // "alpha:S3cret-Basic" in base64.
                    if headers.get("authorization").map(|v| v.as_bytes())
                        != Some(b"Basic YWxwaGE6UzNjcmV0LUJhc2lj".as_slice())
                    {
                        return (StatusCode::UNAUTHORIZED, "who are you?").into_response();
                    }
                    let mut rb = reqwest::Client::new().post(&beta_url).body(body.to_vec());
                    for (k, v) in &headers {
                        if k != "host" && k != "content-length" && k != "authorization" {
                            rb = rb.header(k.as_str(), v.as_bytes());
                        }
                    }
                    let resp = rb.send().await.unwrap();
                    let mut out = axum::http::Response::builder().status(resp.status().as_u16());
                    for (k, v) in resp.headers() {
                        if k != "content-length" && k != "transfer-encoding" {
                            out = out.header(k.as_str(), v.as_bytes());
                        }
                    }
                    out.body(axum::body::Body::from(resp.bytes().await.unwrap()))
                        .unwrap()
                }
            }),
        );
        rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
        if want == Status::Failed {
            // A password variable that is not set stops the gateway before it starts.
            let node = std::sync::Arc::new(Node::open(a.config.clone()).unwrap());
            let e = rt.block_on(node.preflight()).unwrap_err().to_string();
            assert!(
                e.contains("cannot start") && e.contains("MFTG_TEST_NO_SUCH_PASSWORD is not set"),
                "{e}"
            );
            rt.shutdown_background();
            continue;
        }
        let (ra, rb) = (Running::start(&a), Running::start(&b));
        drop_file(&a, "auth.x12", b"ISA~");
        let records = wait_for(&ra, "a final status", Duration::from_secs(20), |rs| {
            outbound(rs).first().is_some_and(|r| r.status.is_final())
        });
        let r = outbound(&records)[0];
        assert_eq!(r.status, want, "{secret}: {:#?}", r.history);
        ra.stop();
        rb.stop();
        rt.shutdown_background();
    }
}

/// A plain message whose file name travels in the HTTP `Content-Disposition` as raw 8-bit bytes:
/// UTF-8 (most products) and ISO-8859-1 (Java's HTTP client) are both stored as the name meant.
#[test]
fn raw_eight_bit_file_names_in_http_headers() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let (_, b) = sites(tmp.path(), free_port(), free_port(), None, &|p| {
        p.mdn = MdnMode::None
    });
    let rb = Running::start(&b);
    for (n, raw) in [
        "M\u{fc}ller Best\u{e4}tigung.x12".as_bytes().to_vec(),
        b"M\xfcller Best\xe4tigung.x12".to_vec(),
    ]
    .into_iter()
    .enumerate()
    {
        let body = b"ISA*00~\r\n";
        let mut req = format!(
            "POST /as2 HTTP/1.1\r\nHost: 127.0.0.1\r\nAS2-Version: 1.2\r\nAS2-From: ALPHA\r\nAS2-To: BETA\r\n\
             Message-ID: <raw-{n}@alpha>\r\nContent-Type: application/edi-x12\r\nContent-Length: {}\r\n\
             Connection: close\r\nContent-Disposition: attachment; filename=\"",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(&raw);
        req.extend_from_slice(b"\"\r\n\r\n");
        req.extend_from_slice(body);
        let mut answer = String::new();
        for _ in 0..50 {
            if let Ok(mut s) = std::net::TcpStream::connect(b.config.listen) {
                s.write_all(&req).unwrap();
                let mut out = Vec::new();
                s.read_to_end(&mut out).unwrap();
                answer = String::from_utf8_lossy(&out).into_owned();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let records = wait_for(&rb, "both received", Duration::from_secs(10), |rs| {
        inbound(rs).len() == 2
    });
    for r in inbound(&records) {
        assert_eq!(
            r.filename, "M\u{fc}ller Best\u{e4}tigung.x12",
            "{:#?}",
            r.history
        );
    }
    rb.stop();
}

/// Twenty copies of one message at once (a partner's retries racing each other): one delivery,
/// and every copy gets the same receipt, the original one.
#[test]
fn twenty_concurrent_copies_of_one_message_get_one_delivery_and_the_same_receipt() {
    use as2::message::{self, Encryption, MessageOptions, Payload, Signing};
    let tmp = tempfile::tempdir().unwrap();
    let (_, b) = sites(tmp.path(), free_port(), free_port(), None, &|_| {});
    let rb = Running::start(&b);
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    opts.signing = Some(Signing::new(identity("ALPHA").clone()));
    opts.encryption = Some(Encryption::new(identity("BETA").certificate.clone()));
    opts.mdn = Some(as2::envelope::MdnRequest::sync(
        "as2@alpha",
        &[as2::algorithm::DigestAlgorithm::Sha256],
        as2::algorithm::NameStyle::Hyphenated,
    ));
    let payload = vec![b'7'; 300_000];
    let m = message::build(
        &opts,
        &Payload::new(&payload, Some("twenty.x12")),
        "<twenty-copies@alpha.test>",
        as2::UnixTime(1_800_000_000),
    )
    .unwrap();
    let url = format!("http://{}/as2", b.config.listen);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let answers: Vec<(u16, Vec<u8>)> = rt.block_on(async {
        let client = reqwest::Client::new();
        for _ in 0..50 {
            if client
                .get(format!("http://{}/health", b.config.listen))
                .send()
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let mut req = client.post(&url);
                for h in m.headers.iter() {
                    req = req.header(h.name.as_str(), h.value.as_str());
                }
                let req = req.body(m.body.clone());
                tokio::spawn(async move {
                    let r = req.send().await.unwrap();
                    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{}", String::from_utf8_lossy(body));
        assert_eq!(body, &answers[0].1, "every copy gets the original receipt");
    }
    assert!(String::from_utf8_lossy(&answers[0].1).contains("processed"));
    assert!(!String::from_utf8_lossy(&answers[0].1).contains("duplicate"));
    let records = rb.records();
    assert_eq!(inbound(&records).len(), 1, "{records:#?}");
    let inbox = b.config.data_dir.join("AS2/files/BETA/ALPHA/inbox");
    let folders: Vec<_> = std::fs::read_dir(inbox).unwrap().collect();
    assert_eq!(folders.len(), 1);
    rb.stop();
}

/// Credentials never rest in what is stored: an `Authorization` header (and a header the
/// partnership names secret) is stored redacted, and keystores, stored headers and the database
/// are readable by their owner only.
#[test]
fn no_secrets_at_rest() {
    use std::os::unix::fs::PermissionsExt;
    std::env::set_var("MFTG_TEST_REST_PASSWORD", "Rest-Secret-42");
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = sites(tmp.path(), free_port(), free_port(), None, &|p| {
        p.auth = Some(gateway::model::BasicAuth {
            user: "alpha".into(),
            password_secret: "MFTG_TEST_REST_PASSWORD".into(),
        });
        p.secret_headers = vec!["X-Api-Key".into()];
    });
    let (ra, rb) = (Running::start(&a), Running::start(&b));
    drop_file(&a, "po.x12", b"ISA*00~\r\n");
    wait_for(&ra, "delivery", Duration::from_secs(20), delivered);
    let got = wait_for(&rb, "receipt", Duration::from_secs(10), |rs| {
        inbound(rs).len() == 1
    });
    // A request carrying a secret header of the partnership's.
    let m = as2::message::build(
        &as2::message::MessageOptions::new("ALPHA", "BETA"),
        &as2::message::Payload::new(b"ISA*01~\r\n", Some("key.x12")),
        "<api-key@alpha>",
        as2::UnixTime(1_800_000_000),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut req = reqwest::Client::new()
            .post(format!("http://{}/as2", b.config.listen))
            .header("X-Api-Key", "Api-Key-Secret-77");
        for h in m.headers.iter() {
            req = req.header(h.name.as_str(), h.value.as_str());
        }
        assert!(req.body(m.body).send().await.unwrap().status().is_success());
    });
    ra.stop();
    rb.stop();
    let stored = std::fs::read_to_string(
        b.config
            .data_dir
            .join(inbound(&got)[0].headers_key.as_ref().unwrap()),
    )
    .unwrap();
    assert!(stored.contains("authorization: [redacted]"), "{stored}");
    for site in [&a, &b] {
        for f in all_files(&site.root) {
            let bytes = std::fs::read(&f).unwrap();
            for secret in [
                "Rest-Secret-42",
                "YWxwaGE6UmVzdC1TZWNyZXQtNDI=",
                "Api-Key-Secret-77",
            ] {
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(secret),
                    "{secret} in {}",
                    f.display()
                );
            }
            let rel = f.strip_prefix(&site.config.data_dir).unwrap_or(&f);
            let rel = rel.to_string_lossy();
            // (The keystores here are the test's own; `mftg keys` writes them 0600, which the
            // command line's tests check.)
            let private =
                rel.starts_with("AS2/headers/") || rel.starts_with(".mftg/gateway.sqlite");
            let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
            if private {
                assert_eq!(mode & 0o077, 0, "{rel} is {mode:o}");
            }
        }
    }
}

fn all_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A partner that takes the connection and never answers holds up only its own messages: a file
/// for another partner, dropped after, is delivered within seconds.
#[test]
fn a_partner_that_never_answers_does_not_delay_another() {
    let tmp = tempfile::tempdir().unwrap();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/as2", silent.local_addr().unwrap());
    // Takes connections, reads nothing, answers nothing.
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = held.clone();
    std::thread::spawn(move || {
        for c in silent.incoming().take(16).flatten() {
            h.lock().unwrap().push(c);
        }
    });
    let (mut a, b) = sites(tmp.path(), free_port(), free_port(), None, &|_| {});
    let mut stuck = a.config.partnerships[0].clone();
    stuck.partner = "STUCK".into();
    stuck.url = silent_url;
    stuck.timeout_secs = 60;
    a.config.partnerships.push(stuck);
    let (ra, rb) = (Running::start(&a), Running::start(&b));
    drop_file_to(&a, "STUCK", "first.x12", b"ISA*01~\r\n");
    wait_for(&ra, "the stuck send", Duration::from_secs(15), |rs| {
        outbound(rs)
            .iter()
            .any(|r| r.partner == "STUCK" && r.status == Status::Sending)
    });
    let start = Instant::now();
    drop_file(&a, "second.x12", b"ISA*02~\r\n");
    let records = wait_for(&ra, "BETA's file", Duration::from_secs(15), |rs| {
        outbound(rs)
            .iter()
            .any(|r| r.partner == "BETA" && r.status == Status::Delivered)
    });
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let stuck = outbound(&records)
        .into_iter()
        .find(|r| r.partner == "STUCK")
        .unwrap();
    assert_eq!(stuck.status, Status::Sending, "{:#?}", stuck.history);
    assert!(!held.lock().unwrap().is_empty());
    ra.kill();
    rb.stop();
}

/// A writer that stops halfway for a while, the file open, is not sent until it has finished:
/// with file events (it closes the file) and without them (the quiet time).
#[test]
fn a_writer_pausing_mid_file_is_not_sent_half() {
    use std::io::Write;
    for events in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let (mut a, b) = sites(tmp.path(), free_port(), free_port(), None, &|_| {});
        a.config.upload_events = events;
        // With events, the file being open and written to is what holds it back (a quiet
        // time shorter than the pause would not); without them, the quiet time does.
        a.config.upload_quiet_ms = if events { 100 } else { 2000 };
        let (ra, rb) = (Running::start(&a), Running::start(&b));
        let dir = a.config.data_dir.join("AS2/send/ALPHA/BETA");
        std::fs::create_dir_all(&dir).unwrap();
        // Written under its final name, as many SFTP clients do.
        let mut f = std::fs::File::create(dir.join("slow.x12")).unwrap();
        let whole: Vec<u8> = (0..200_000u32).map(|i| b'A' + (i % 26) as u8).collect();
        f.write_all(&whole[..100_000]).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(1200));
        f.write_all(&whole[100_000..]).unwrap();
        drop(f);
        // Received in full (a record exists from the moment the message arrives, before its
        // payload is stored); then a moment more, for a second, half-written one to show.
        wait_for(&rb, "the file", Duration::from_secs(20), |rs| {
            inbound(rs).iter().any(|r| r.status == Status::Received)
        });
        std::thread::sleep(Duration::from_millis(500));
        let records = rb.records();
        let got = inbound(&records);
        assert_eq!(got.len(), 1, "events {events}: {got:#?}");
        assert_eq!(
            std::fs::read(b.config.data_dir.join(got[0].payload_key.as_ref().unwrap())).unwrap(),
            whole,
            "events {events}: sent whole"
        );
        ra.stop();
        rb.stop();
    }
}

/// An upload that cannot be sent (no partnership, a name that is not UTF-8) is recorded once,
/// not once per poll or per restart, and left where it is; a temporary name is not an upload.
#[test]
fn uploads_that_cannot_be_sent_are_recorded_once() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let (mut a, _b) = sites(tmp.path(), free_port(), free_port(), None, &|_| {});
    a.config.upload_quiet_ms = 300;
    let send = a.config.data_dir.join("AS2/send/ALPHA");
    std::fs::create_dir_all(send.join("GAMMA")).unwrap();
    std::fs::create_dir_all(send.join("BETA")).unwrap();
    std::fs::write(send.join("GAMMA/nobody.x12"), b"ISA~").unwrap();
    std::fs::write(
        send.join("BETA")
            .join(std::ffi::OsStr::from_bytes(b"M\xfcller.x12")),
        b"ISA~",
    )
    .unwrap();
    std::fs::write(send.join("BETA/.hidden.x12.part"), b"IS").unwrap();
    for _ in 0..2 {
        let ra = Running::start(&a);
        wait_for(&ra, "two not-sent records", Duration::from_secs(10), |rs| {
            outbound(rs).len() >= 2
        });
        std::thread::sleep(Duration::from_millis(1500));
        let records = ra.records();
        let out = outbound(&records);
        assert_eq!(out.len(), 2, "{out:#?}");
        assert!(out.iter().all(|r| r.status == Status::NotSent));
        let reasons: Vec<_> = out.iter().map(|r| r.last_detail().unwrap()).collect();
        assert!(
            reasons.iter().any(|r| r.contains("no partnership")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("not valid UTF-8")),
            "{reasons:?}"
        );
        let _ = &records;
        ra.stop();
    }
    // Still there, all three.
    assert!(send.join("GAMMA/nobody.x12").exists());
    assert!(send.join("BETA/.hidden.x12.part").exists());
}

#[test]
fn a_second_upload_with_the_first_ones_time_and_size_is_a_duplicate_not_a_redelivery() {
    // SFTP clients keep a file's modification time (WinSCP does by default, `put -p`, `rsync
    // -t`): two uploads of one name can carry the same time and size. The second is a new
    // upload, a duplicate within the window; taking it for the first one again would remove it
    // unrecorded (and write its bytes over the first's sent copy). Its record and folder are
    // dated when it came, not with the years-old time its client kept.
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = sites(tmp.path(), free_port(), free_port(), None, &|_| {});
    let (ra, rb) = (Running::start(&a), Running::start(&b));
    let kept_time = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    let started = {
        use gateway::ports::Clock as _;
        gateway_local::SystemClock.now()
    };
    let send = a.config.data_dir.join("AS2/send/ALPHA/BETA");
    std::fs::create_dir_all(&send).unwrap();
    let upload = |body: &[u8]| {
        let part = send.join(".po.x12.part");
        std::fs::write(&part, body).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&part)
            .unwrap()
            .set_modified(kept_time)
            .unwrap();
        std::fs::rename(&part, send.join("po.x12")).unwrap();
    };
    upload(b"ISA*first~");
    wait_for(&ra, "delivery", Duration::from_secs(20), delivered);
    upload(b"ISA*other~");
    let records = wait_for(&ra, "the second upload", Duration::from_secs(20), |rs| {
        outbound(rs).len() == 2
    });
    let duplicate = outbound(&records)
        .into_iter()
        .find(|r| r.status == Status::Duplicate)
        .unwrap_or_else(|| panic!("no duplicate: {records:#?}"));
    let moved = duplicate.payload_key.clone().unwrap();
    assert!(moved.starts_with("AS2/duplicate/ALPHA/BETA/"), "{moved}");
    // Second-level: the change time's clock and the test's may differ within a second.
    let since = started.compact()[..14].to_string();
    assert!(
        duplicate.id > since,
        "{} dated before {since}",
        duplicate.id
    );
    assert!(moved.contains(&duplicate.id), "{moved}");
    assert_eq!(
        std::fs::read(a.config.data_dir.join(&moved)).unwrap(),
        b"ISA*other~"
    );
    let sent = outbound(&records)
        .into_iter()
        .find(|r| r.status == Status::Delivered)
        .unwrap();
    assert_eq!(
        std::fs::read(a.config.data_dir.join(sent.payload_key.as_ref().unwrap())).unwrap(),
        b"ISA*first~",
        "the sent copy is what was sent"
    );
    assert!(!send.join("po.x12").exists());
    ra.stop();
    rb.stop();
}
