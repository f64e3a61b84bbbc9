//! `/metrics` of two real `mftg serve` with a `[console]` listener, read with the Prometheus
//! project's own OpenMetrics parser (tests/console/metrics.py): messages counted once per final
//! status (a failure, a delivery, the delivery after a resend), the latency histogram, the
//! queue, the certificates' days; only on the console listener, only with the token.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::{failed_while_beta_down_with, send_to_beta, serve, wait_for, Site};
use gateway::model::Status;
use gateway_local::config::ConsoleConfig;
use serde_json::Value;
use testkit::http::request;

fn console_port(site: &Site) -> (u16, String) {
    let c = gateway_local::Config::load(&site.config).unwrap();
    let token = std::fs::read_to_string(c.console_token_file()).unwrap();
    (c.console.unwrap().listen.port(), token.trim().to_string())
}

/// The samples of `site`'s `/metrics`, as the Prometheus parser reads them.
fn scrape(site: &Site) -> Vec<(String, Value, f64)> {
    let (port, token) = console_port(site);
    let r = request(
        port,
        "GET",
        "/metrics",
        &[("Authorization", format!("Bearer {token}"))],
        "",
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let mut py = Command::new(testkit::python())
        .arg(testkit::repo_root().join("tests/console/metrics.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    py.stdin.take().unwrap().write_all(&r.body).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&r.body)
    );
    let samples: Vec<(String, Value, f64)> = serde_json::from_slice(&out.stdout).unwrap();
    samples
}

fn value(samples: &[(String, Value, f64)], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l[*k] == *v))
        .map(|(_, _, v)| *v)
}

#[test]
fn metrics_count_each_final_status_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (alpha, beta, _alpha, failed) =
        failed_while_beta_down_with(tmp.path(), "po-lost.x12", |c| {
            c.console = Some(ConsoleConfig {
                listen: format!("127.0.0.1:{}", testkit::free_port())
                    .parse()
                    .unwrap(),
                token_file: None,
            });
        });
    let _beta = serve(&beta, None);
    let good = tmp.path().join("po-good.x12");
    std::fs::write(&good, b"ISA*00*GOOD~").unwrap();
    send_to_beta(&alpha, &good);
    wait_for(&alpha, "delivered", |rs| {
        rs.iter().any(|r| r.status == Status::Delivered)
    });
    wait_for(&beta, "received", |rs| {
        rs.iter().any(|r| r.status == Status::Received)
    });

    let out = [
        ("station", "ALPHA"),
        ("partner", "BETA"),
        ("direction", "outbox"),
    ];
    let with = |status: &'static str| {
        let mut l = out.to_vec();
        l.push(("status", status));
        l
    };
    let s = scrape(&alpha);
    assert_eq!(
        value(&s, "mftg_messages_total", &with("failed")),
        Some(1.0),
        "{s:?}"
    );
    assert_eq!(
        value(&s, "mftg_messages_total", &with("delivered")),
        Some(1.0)
    );
    assert_eq!(value(&s, "mftg_message_seconds_count", &out), Some(2.0));
    assert!(value(&s, "mftg_message_seconds_sum", &out).unwrap() > 0.0);
    let days = value(
        &s,
        "mftg_certificate_days_left",
        &[("kind", "partner"), ("owner", "ALPHA/BETA")],
    )
    .unwrap();
    assert!((700.0..=731.0).contains(&days), "{days}");
    assert!(value(
        &s,
        "mftg_certificate_days_left",
        &[("kind", "station"), ("owner", "ALPHA")]
    )
    .is_some());
    assert!(value(&s, "mftg_queue_jobs", &[]).is_some());
    assert_eq!(value(&s, "mftg_parked_jobs", &[]), Some(0.0));
    let b = scrape(&beta);
    assert_eq!(
        value(
            &b,
            "mftg_messages_total",
            &[
                ("station", "BETA"),
                ("partner", "ALPHA"),
                ("direction", "inbox"),
                ("status", "received")
            ]
        ),
        Some(1.0),
        "{b:?}"
    );

    // Resent and delivered: one more delivery, the failure still counted once.
    let (port, token) = console_port(&alpha);
    let bearer = [("Authorization", format!("Bearer {token}"))];
    let r = request(
        port,
        "POST",
        &format!("/api/v1/messages/{}/resend", failed.id),
        &bearer,
        "{}",
    );
    assert_eq!(r.status, 202);
    wait_for(&alpha, "the resent one delivered", |rs| {
        rs.iter()
            .any(|r| r.id == failed.id && r.status == Status::Delivered)
    });
    let s = scrape(&alpha);
    assert_eq!(
        value(&s, "mftg_messages_total", &with("delivered")),
        Some(2.0)
    );
    assert_eq!(value(&s, "mftg_messages_total", &with("failed")), Some(1.0));

    // Only with the token, only on the console's listener; a console beside the gateway keeps
    // no figures of its own.
    assert_eq!(request(port, "GET", "/metrics", &[], "").status, 401);
    let as2 = gateway_local::Config::load(&alpha.config)
        .unwrap()
        .listen
        .port();
    assert_eq!(request(as2, "GET", "/metrics", &bearer, "").status, 404);
    let side = common::console(&alpha);
    let r = request(
        side.port,
        "GET",
        "/metrics",
        &[("Authorization", format!("Bearer {}", side.token))],
        "",
    );
    assert_eq!((r.status, r.code().as_str()), (404, "not_found"));
}
