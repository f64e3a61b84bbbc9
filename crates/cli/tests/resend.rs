//! `mftg messages resend` against two real `mftg serve` processes: a message that failed while
//! its partner was down is resent once the partner is back, with its Message-ID, and delivered
//! exactly once; what cannot be resent is refused in one line and left as it was.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::process::Command;

use common::{records, send_to_beta, serve, sites_with, wait_for, Site, PASSWORD};
use gateway::layout::Direction;
use gateway::model::{RetryPolicy, Status};

fn resend(site: &Site, args: &[&str]) -> (i32, String) {
    testkit::run(
        Command::new(env!("CARGO_BIN_EXE_mftg"))
            .args(["messages", "resend"])
            .args(args)
            .env("MFTG_CONFIG", &site.config)
            .env("MFTG_KEYSTORE_PASSWORD", PASSWORD),
    )
}

#[test]
fn a_message_that_failed_is_resent_and_delivered_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (alpha, beta) = sites_with(tmp.path(), |c| {
        c.partnerships[0].retry = Some(RetryPolicy {
            attempts: 2,
            first_interval_secs: 1,
            max_interval_secs: 1,
        });
    });
    let _alpha = serve(&alpha, None);
    let file = tmp.path().join("po-7001.x12");
    std::fs::write(&file, b"ISA*00*RESEND~").unwrap();
    send_to_beta(&alpha, &file);
    // BETA is not running: both attempts are refused and the message fails.
    let failed = wait_for(&alpha, "the message fails", |rs| {
        rs.iter().any(|r| r.status == Status::Failed)
    });
    let failed = failed
        .into_iter()
        .find(|r| r.status == Status::Failed)
        .unwrap();

    let _beta = serve(&beta, None);
    let (code, out) = resend(&alpha, &[&failed.id]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("queued to be sent again as {}", failed.message_id)),
        "{out}"
    );
    let done = wait_for(&alpha, "the resent message is delivered", |rs| {
        rs.iter()
            .any(|r| r.id == failed.id && r.status == Status::Delivered)
    });
    let sent = done.iter().find(|r| r.id == failed.id).unwrap();
    assert_eq!(sent.message_id, failed.message_id);
    let inbound: Vec<_> = wait_for(&beta, "BETA has it", |rs| {
        rs.iter().any(|r| r.status == Status::Received)
    })
    .into_iter()
    .filter(|r| r.direction == Direction::Inbox)
    .collect();
    assert_eq!(inbound.len(), 1, "{inbound:#?}");
    assert_eq!(inbound[0].message_id, failed.message_id);

    // Refused, in one line, changing nothing: a received message, and one that does not exist.
    let before = records(&beta);
    let (code, out) = resend(&beta, &[&inbound[0].id]);
    assert_ne!(code, 0, "{out}");
    assert_eq!(out.trim().lines().count(), 1, "{out}");
    assert!(out.contains("it was received, not sent"), "{out}");
    let (code, out) = resend(&alpha, &["20261128000000000-00000000"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("no message 20261128000000000-00000000"),
        "{out}"
    );
    assert_eq!(records(&beta), before);
}
