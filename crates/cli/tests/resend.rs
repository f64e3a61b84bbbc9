//! `mftg messages resend` against two real `mftg serve` processes: a message that failed while
//! its partner was down is resent once the partner is back, with its Message-ID, and delivered
//! exactly once; what cannot be resent is refused in one line and left as it was.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::process::Command;

use common::{failed_while_beta_down, records, serve, wait_for, Site, PASSWORD};
use gateway::layout::Direction;
use gateway::model::Status;

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
    let (alpha, beta, _alpha, failed) = failed_while_beta_down(tmp.path(), "po-7001.x12");

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

    // Found again by what an operator knows of it.
    let list = |args: &[&str]| {
        let mut all = vec!["messages", "list"];
        all.extend_from_slice(args);
        common::mftg(&alpha, &all)
    };
    let core = failed.message_id.trim_matches(['<', '>']);
    for filter in [
        vec!["--status", "delivered"],
        vec!["--direction", "outbox", "--partner", "BETA"],
        vec!["--message-id", core],
        vec!["--file", "PO-7001"],
        vec!["--since", "2026-01-01", "--until", "2999-01-01"],
    ] {
        let out = list(&[filter.as_slice(), &["--json"]].concat());
        let found: Vec<gateway::model::MessageRecord> = serde_json::from_str(&out).unwrap();
        assert_eq!(found.len(), 1, "{filter:?}: {out}");
        assert_eq!(found[0].id, failed.id, "{filter:?}");
    }
    for filter in [
        vec!["--status", "failed"],
        vec!["--direction", "inbox"],
        vec!["--since", "2999-01-01"],
    ] {
        let out = list(&[filter.as_slice(), &["--json"]].concat());
        assert_eq!(out.trim(), "[]", "{filter:?}");
    }
    let page = list(&["--limit", "1"]);
    assert!(
        page.contains(&format!("add --before {}", failed.id)),
        "{page}"
    );
    assert!(!list(&["--before", &failed.id]).contains(&failed.id));
    let shown = common::mftg(&alpha, &["messages", "show", &failed.message_id]);
    assert!(shown.contains(&failed.id), "{shown}");
    // Its files, by record id or Message-ID.
    let download = |id: &str, part: &str| {
        let path = tmp.path().join(format!("{part}.out"));
        common::mftg(
            &alpha,
            &[
                "messages",
                "download",
                id,
                "--part",
                part,
                "--out",
                path.to_str().unwrap(),
            ],
        );
        std::fs::read(path).unwrap()
    };
    assert_eq!(download(&failed.id, "payload"), b"ISA*00*po-7001.x12~");
    let headers = String::from_utf8(download(&failed.message_id, "headers")).unwrap();
    assert!(headers.contains("AS2-To: BETA"), "{headers}");
    assert!(!download(&failed.id, "raw").is_empty());
    let receipt = String::from_utf8_lossy(&download(&failed.id, "receipt")).to_lowercase();
    assert!(receipt.contains("disposition-notification"), "{receipt}");
    let (code, out) = testkit::run(
        Command::new(env!("CARGO_BIN_EXE_mftg"))
            .args(["messages", "list", "--status", "lost"])
            .env("MFTG_CONFIG", &alpha.config),
    );
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("delivered-with-warning"),
        "lists the statuses: {out}"
    );

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
