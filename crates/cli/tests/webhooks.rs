//! Webhooks of a real `mftg serve`, received by tests/console/webhook_receiver.py (which checks
//! each signature with Python's own hmac): a receiver that answers 500, then hangs past the
//! webhook's timeout, then takes them, gets exactly one accepted delivery per final status (a
//! failure, a delivery, a duplicate), each signed; the AS2 exchange goes on meanwhile. A
//! gateway killed between writing a final status and queueing its event posts it once after
//! its restart, and not again after the next.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{
    died, failed_while_beta_down_with, send_to_beta, serve, sites_with, wait_for, WEBHOOK_SECRET,
};
use gateway::model::{RetryPolicy, Status, Webhook};
use serde_json::Value;
use testkit::webhook::WebhookReceiver;

/// Answered 204 in time (a late answer the gateway had stopped waiting for does not count).
fn accepted(l: &Value) -> bool {
    l["answered"] == 204 && l["late"] == false
}

/// The webhook `ops` to `receiver`, for every event, with its timeout and `attempts` retried
/// 1 s apart at first, at most `max_interval_secs`.
fn ops(
    receiver: &WebhookReceiver,
    timeout_secs: u64,
    attempts: u32,
    max_interval_secs: u64,
) -> Webhook {
    Webhook {
        name: "ops".into(),
        url: receiver.url.clone(),
        secret: "MFTG_TEST_WEBHOOK_SECRET".into(),
        events: Vec::new(),
        timeout_secs,
        retry: RetryPolicy {
            attempts,
            first_interval_secs: 1,
            max_interval_secs,
        },
    }
}

#[test]
fn each_final_status_is_posted_once_signed_through_failures_and_a_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver =
        WebhookReceiver::start(WEBHOOK_SECRET, &tmp.path().join("webhook.jsonl"), 2, 1, 3.0);
    let (alpha, beta, _alpha, failed) =
        failed_while_beta_down_with(tmp.path(), "po-lost.x12", |c| {
            if c.stations[0].as2_id == "ALPHA" {
                c.webhooks = vec![ops(&receiver, 1, 6, 2)];
            }
        });
    // The exchange goes on while the webhook fails and hangs.
    let _beta = serve(&beta, None);
    let good = tmp.path().join("po-good.x12");
    std::fs::write(&good, b"ISA*00*GOOD~").unwrap();
    send_to_beta(&alpha, &good);
    let records = wait_for(&alpha, "delivered", |rs| {
        rs.iter()
            .any(|r| r.filename == "po-good.x12" && r.status == Status::Delivered)
    });
    let delivered = records
        .iter()
        .find(|r| r.status == Status::Delivered)
        .unwrap()
        .clone();
    send_to_beta(&alpha, &good);
    let records = wait_for(&alpha, "the duplicate", |rs| {
        rs.iter().any(|r| r.status == Status::Duplicate)
    });
    let duplicate = records
        .iter()
        .find(|r| r.status == Status::Duplicate)
        .unwrap()
        .clone();

    // Every event taken once (answered 204), however often it was tried.
    let wanted = BTreeMap::from([
        (failed.id.clone(), "failed"),
        (delivered.id.clone(), "delivered"),
        (duplicate.id.clone(), "duplicate"),
    ]);
    let start = Instant::now();
    let taken = loop {
        let all = receiver.requests();
        let taken: Vec<&Value> = all.iter().filter(|l| accepted(l)).collect();
        let ids: std::collections::BTreeSet<String> = taken
            .iter()
            .map(|l| l["event"]["message"]["id"].as_str().unwrap().to_string())
            .collect();
        if wanted.keys().all(|k| ids.contains(k)) {
            break all;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not every event was taken: {all:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_secs(3)); // anything sent twice would come by now
    let all = receiver.requests();
    assert!(all.len() >= taken.len());
    assert!(
        all.iter().all(|l| l["ok"] == true),
        "a signature did not verify: {all:#?}"
    );
    assert_eq!(
        all.iter().filter(|l| l["answered"] == 500).count(),
        2,
        "{all:#?}"
    );
    assert_eq!(
        all.iter().filter(|l| l["late"] == true).count(),
        1,
        "{all:#?}"
    );
    let mut by_delivery: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for l in &all {
        by_delivery
            .entry(l["delivery"].as_str().unwrap().to_string())
            .or_default()
            .push(l);
    }
    assert_eq!(by_delivery.len(), 3, "one event per final status: {all:#?}");
    for (delivery, tries) in &by_delivery {
        let taken = tries.iter().filter(|l| accepted(l)).count();
        assert_eq!(taken, 1, "{delivery} was taken {taken} times: {tries:#?}");
        let event = &tries[0]["event"];
        let id = event["message"]["id"].as_str().unwrap();
        assert_eq!(event["type"], wanted[id], "{event}");
        assert_eq!(tries[0]["kind"], wanted[id]);
        assert_eq!(event["message"]["station"], "ALPHA");
        assert_eq!(event["message"]["partner"], "BETA");
        assert!(!event.to_string().contains(WEBHOOK_SECRET));
    }
    // Two 500s and the hang were each tried again: six requests for three events.
    assert_eq!(all.len(), 6, "{all:#?}");
}

/// `mftg serve` dies (a failpoint's abort) right after writing `delivered` and before queueing
/// the webhook's event; restarted, it posts that event once; killed and restarted again, it
/// does not post it twice.
#[test]
fn an_event_lost_to_a_crash_is_posted_once_after_the_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver =
        WebhookReceiver::start(WEBHOOK_SECRET, &tmp.path().join("webhook.jsonl"), 0, 0, 0.0);
    let (alpha, beta) = sites_with(tmp.path(), |c| {
        if c.stations[0].as2_id == "ALPHA" {
            c.webhooks = vec![ops(&receiver, 5, 3, 1)];
        }
    });
    let _beta = serve(&beta, None);
    let mut dying = serve(&alpha, Some("final.recorded"));
    let file = tmp.path().join("po-crash.x12");
    std::fs::write(&file, b"ISA*00*CRASH~").unwrap();
    send_to_beta(&alpha, &file);
    died(&mut dying, "final.recorded", &alpha);
    let record = common::records(&alpha)
        .into_iter()
        .find(|r| r.filename == "po-crash.x12")
        .unwrap();
    assert_eq!(record.status, Status::Delivered, "{record:#?}");
    assert!(receiver.requests().is_empty(), "{:#?}", receiver.requests());

    let delivered = |n: usize| {
        let start = Instant::now();
        loop {
            let got: Vec<Value> = receiver
                .requests()
                .into_iter()
                .filter(|l| l["event"]["message"]["id"] == record.id.as_str())
                .collect();
            if got.len() >= n || start.elapsed() > Duration::from_secs(30) {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let again = serve(&alpha, None);
    let got = delivered(1);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(
        (&got[0]["event"]["type"], &got[0]["ok"]),
        (&Value::from("delivered"), &Value::from(true))
    );
    // Killed (not stopped) and started again: the event was queued before, so not again.
    drop(again);
    let _third = serve(&alpha, None);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        delivered(2).len(),
        1,
        "posted twice: {:#?}",
        receiver.requests()
    );
}
