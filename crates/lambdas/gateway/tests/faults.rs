//! What goes wrong, with the real binaries against moto: a partner down for a while and for
//! good, the AWS services unreachable mid-run, a payload gone, jobs and events that make no sense.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::time::Duration;

use common::*;
use gateway::layout::{Direction, MessagePaths};
use gateway::model::Status;
use serde_json::{json, Value};
use testkit::proxy::CuttableProxy;

const KEY: &str = "AS2/send/ALPHA/PYAS2/invoice-7.x12";

#[test]
fn partner_down_then_up() {
    let d = Deployment::new();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    alpha_with_pyas2(&d, &format!("http://127.0.0.1:{port}/as2"), Some(6));
    let mut trigger_fn = d.function("send-trigger", "trigger", &[]);
    let mut sender = d.function("as2-sender", "sender", &[]);
    let out = trigger(&mut trigger_fn, &d.upload(KEY, &edi(7)));
    let id = out["id"].as_str().unwrap().to_string();

    d.pump_until(
        &mut sender,
        "a failed attempt",
        Duration::from_secs(30),
        |d| d.record(&id).attempts >= 2,
    );
    assert_eq!(d.record(&id).status, Status::Queued);
    let py = pyas2_sync(&tmp.path().join("py"), port);
    d.pump_until(
        &mut sender,
        "delivery once the partner is up",
        Duration::from_secs(60),
        |d| d.record(&id).status == Status::Delivered,
    );
    let r = d.record(&id);
    assert!(r.attempts >= 3, "{r:#?}");
    assert!(
        r.history.iter().any(|h| h
            .detail
            .as_deref()
            .is_some_and(|t| t.contains("attempt 1 failed: cannot connect"))),
        "{:#?}",
        r.history
    );
    assert_eq!(
        py.events()
            .iter()
            .filter(|e| e["kind"] == "message")
            .count(),
        1
    );
    assert!(d.dead_letters().is_empty());
}

#[test]
fn partner_down_for_good() {
    let d = Deployment::new();
    let port = free_port();
    // The deployment's retry policy (template parameter RetryAttempts), not the partnership's.
    alpha_with_pyas2(&d, &format!("http://127.0.0.1:{port}/as2"), None);
    let mut trigger_fn = d.function("send-trigger", "trigger", &[]);
    let mut sender = d.function("as2-sender", "sender", &[("MFTG_RETRY_ATTEMPTS", "2")]);
    let out = trigger(&mut trigger_fn, &d.upload(KEY, &edi(8)));
    let id = out["id"].as_str().unwrap().to_string();
    d.pump_until(&mut sender, "giving up", Duration::from_secs(30), |d| {
        d.record(&id).status == Status::Failed
    });
    let r = d.record(&id);
    assert_eq!(r.attempts, 2);
    // The file stays in the outbox; the job is in the dead-letter queue with the reason.
    let outbox = MessagePaths::new("ALPHA", "PYAS2", Direction::Outbox, &id).unwrap();
    assert_eq!(
        d.get(&outbox.payload("invoice-7.x12").unwrap()),
        Some(edi(8))
    );
    let parked = d.dead_letters();
    assert_eq!(parked.len(), 1, "{parked:?}");
    let body: Value = serde_json::from_str(&parked[0].0).unwrap();
    assert_eq!(body["job"], json!({"kind": "send", "id": id}));
    assert!(
        parked[0].1.contains("gave up after 2 attempts"),
        "{parked:?}"
    );
    assert!(d.receive(&d.queue_url).is_empty(), "nothing left to do");
}

#[test]
fn aws_unreachable_mid_run() {
    let d = Deployment::new();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let _py = pyas2_sync(&tmp.path().join("py"), port);
    alpha_with_pyas2(&d, &format!("http://127.0.0.1:{port}/as2"), Some(3));
    let proxy = CuttableProxy::start(d.moto.url());
    let via = [("AWS_ENDPOINT_URL", proxy.url())];
    let via: Vec<(&str, &str)> = via.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut trigger_fn = d.function("send-trigger", "trigger", &via);
    let mut sender = d.function("as2-sender", "sender", &via);

    // The trigger cannot reach S3 or DynamoDB: the invocation fails, the upload stays put.
    let event = d.upload(KEY, &edi(9));
    proxy.cut();
    let e = trigger_fn
        .invoke(&event, Duration::from_secs(90))
        .unwrap_err();
    assert!(
        ["s3", "dynamodb", "keystore"].contains(&e.error_type.as_str()),
        "{e:?}"
    );
    assert_eq!(d.get(KEY), Some(edi(9)), "nothing deleted");
    assert!(d.keys("AS2/files/").is_empty(), "nothing half-moved");
    assert!(d.records().is_empty());

    // S3 retries the event once the services are back.
    proxy.restore();
    let out = trigger(&mut trigger_fn, &event);
    assert_eq!(out["outcome"], "queued", "{out}");
    let id = out["id"].as_str().unwrap().to_string();

    // The sender fails its batch while cut off: the job is reported, not lost.
    proxy.cut();
    let (n, failed) = d.deliver_once(&mut sender);
    assert_eq!((n, failed.len()), (1, 1), "{}", sender.log_text());
    proxy.restore();
    d.pump_until(
        &mut sender,
        "delivery after the outage",
        Duration::from_secs(60),
        |d| d.record(&id).status == Status::Delivered,
    );
    assert!(d.dead_letters().is_empty());
}

#[test]
fn a_duplicate_whose_move_stopped_midway_is_finished_by_its_event_again() {
    let d = Deployment::new();
    alpha_with_pyas2(&d, "http://127.0.0.1:9/as2", Some(3));
    let mut trigger_fn = d.function("send-trigger", "trigger", &[]);
    assert_eq!(
        trigger(&mut trigger_fn, &d.upload(KEY, &edi(1)))["outcome"],
        "queued"
    );
    let mut ids = Vec::new();
    for (n, point) in (2..).zip(gateway::failpoint::Failpoints::DUPLICATE_POINTS) {
        // The same name again: a trigger stops at `point` (S3 or DynamoDB failing there) and
        // the invocation fails, so S3 sends the same event again.
        let event = d.upload(KEY, &edi(n));
        let setting = format!("{point}=error");
        let mut stopping = d.function(
            "send-trigger",
            "trigger",
            &[("MFTG_FAILPOINTS", setting.as_str())],
        );
        let e = stopping
            .invoke(&event, Duration::from_secs(60))
            .unwrap_err();
        assert_eq!(e.error_type, "failpoint", "{point}: {e:?}");
        let out = trigger(&mut trigger_fn, &event);
        assert_eq!(out["outcome"], "duplicate", "{point}: {out}");
        let id = out["id"].as_str().unwrap().to_string();
        let record = d.record(&id);
        assert_eq!(record.status, Status::Duplicate, "{point}");
        let kept = record.payload_key.unwrap();
        assert_eq!(d.get(&kept), Some(edi(n)), "{point}");
        ids.push(id);
    }
    // One object and one record per duplicate, whatever the stopped runs did; none left to send.
    assert_eq!(
        d.keys("AS2/duplicate/").len(),
        2,
        "{:?}",
        d.keys("AS2/duplicate/")
    );
    let dups: Vec<_> = d
        .records()
        .into_iter()
        .filter(|r| r.status == Status::Duplicate)
        .map(|r| r.id)
        .collect();
    assert_eq!(dups.len(), 2, "{dups:?} vs {ids:?}");
    assert_eq!(d.versions("AS2/send/"), 0);
}

#[test]
fn payload_gone_and_jobs_that_make_no_sense() {
    let d = Deployment::new();
    alpha_with_pyas2(&d, "http://127.0.0.1:9/as2", Some(3));
    let mut trigger_fn = d.function("send-trigger", "trigger", &[]);
    let mut sender = d.function("as2-sender", "sender", &[]);
    let out = trigger(&mut trigger_fn, &d.upload(KEY, &edi(10)));
    let id = out["id"].as_str().unwrap().to_string();
    let outbox = MessagePaths::new("ALPHA", "PYAS2", Direction::Outbox, &id).unwrap();
    d.rt.block_on(
        d.s3.delete_object()
            .bucket(&d.bucket)
            .key(outbox.payload("invoice-7.x12").unwrap())
            .send(),
    )
    .unwrap();
    for body in [
        "this is not a job".to_string(),
        json!({"job": {"kind": "send", "id": "20260101000000000-nothere"}, "not_before": 0})
            .to_string(),
        json!({"job": {"kind": "launch-rockets"}, "not_before": 0}).to_string(),
    ] {
        d.rt.block_on(
            d.sqs
                .send_message()
                .queue_url(&d.queue_url)
                .message_body(body)
                .send(),
        )
        .unwrap();
    }
    d.pump_until(
        &mut sender,
        "the send failing",
        Duration::from_secs(30),
        |d| d.record(&id).status == Status::Failed,
    );
    for _ in 0..3 {
        d.deliver_once(&mut sender);
    }
    let r = d.record(&id);
    assert!(r.last_detail().unwrap().contains("is gone"), "{r:#?}");
    let mut parked = d.dead_letters();
    parked.sort();
    assert_eq!(parked.len(), 4, "{parked:#?}");
    let reasons: Vec<&str> = parked.iter().map(|(_, r)| r.as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("is gone")), "{reasons:?}");
    assert!(reasons
        .iter()
        .any(|r| r.contains("no message record 20260101000000000-nothere")));
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.contains("not a job message"))
            .count(),
        2,
        "{reasons:?}"
    );
    assert!(
        parked.iter().any(|(b, _)| b == "this is not a job"),
        "parked as it came"
    );
}

#[test]
fn events_that_make_no_sense() {
    let d = Deployment::new();
    alpha_with_pyas2(&d, "http://127.0.0.1:9/as2", Some(3));
    let mut f = d.function("send-trigger", "trigger", &[]);
    let mut malformed = |event: Value| {
        let e = f.invoke(&event, Duration::from_secs(30)).unwrap_err();
        assert_eq!(e.error_type, "malformed_event", "{event}: {e:?}");
        e.error_message
    };
    assert!(malformed(json!({})).contains("no Records"));
    assert!(
        malformed(json!({"Records": [{"eventName": "ObjectCreated:Put"}]}))
            .contains("s3.bucket.name")
    );
    let mut bad_key = d.upload(KEY, b"x");
    bad_key["Records"][0]["s3"]["object"]["key"] = json!("AS2/send/ALPHA/PYAS2/50%zz.x12");
    assert!(malformed(bad_key).contains("two hex digits"));
    assert!(d.get(KEY).is_some(), "the upload is untouched");

    // Not errors: nothing to do.
    let ok = f
        .invoke(
            &sample("send-trigger/s3-test-event.json"),
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(ok, json!({"records": []}));
    let mut copy = d.upload("AS2/send/ALPHA/PYAS2/copied.x12", b"x");
    copy["Records"][0]["eventName"] = json!("ObjectCreated:Copy");
    assert_eq!(trigger(&mut f, &copy)["outcome"], "ignored");
    let other_bucket = sample("send-trigger/s3-put.json");
    assert_eq!(trigger(&mut f, &other_bucket)["outcome"], "ignored");
    let outside = d.upload("AS2/files/ALPHA/PYAS2/outbox/x.x12", b"x");
    assert_eq!(trigger(&mut f, &outside)["outcome"], "ignored");
    let nested = d.upload("AS2/send/ALPHA/PYAS2/sub/x.x12", b"x");
    assert_eq!(trigger(&mut f, &nested)["outcome"], "ignored");
    let unknown = d.upload("AS2/send/ALPHA/NOBODY/x.x12", b"x");
    let out = trigger(&mut f, &unknown);
    assert_eq!(out["outcome"], "not-sent", "{out}");
    assert!(
        d.get("AS2/send/ALPHA/NOBODY/x.x12").is_some(),
        "left where it is"
    );

    // Through SQS: the good message goes through, the bad one alone is reported.
    let good = d.upload("AS2/send/ALPHA/PYAS2/via-sqs.x12", b"x");
    let mut wrapped = sample("send-trigger/sqs-wrapped-s3-events.json");
    let mut bad = wrapped["Records"][0].clone();
    wrapped["Records"][0]["body"] = json!(good.to_string());
    bad["messageId"] = json!("bad-1");
    bad["body"] = json!("{\"Records\": [{\"eventName\": \"ObjectCreated:Put\"}]}");
    wrapped["Records"].as_array_mut().unwrap().push(bad);
    let reply = f.invoke(&wrapped, Duration::from_secs(30)).unwrap();
    assert_eq!(
        reply["batchItemFailures"],
        json!([{"itemIdentifier": "bad-1"}])
    );
    assert_eq!(reply["records"][0]["outcome"], "queued", "{reply}");

    // The sender refuses what is not an SQS event.
    let mut sender = d.function("as2-sender", "sender", &[]);
    let e = sender
        .invoke(&json!({"hello": 1}), Duration::from_secs(30))
        .unwrap_err();
    assert_eq!(e.error_type, "malformed_event");
}

#[test]
fn a_function_without_its_settings_does_not_start() {
    let d = Deployment::new();
    for name in ["send-trigger", "as2-sender", "as2-receiver"] {
        let mut f = d.function(name, name, &[("MFTG_QUEUE_URL", "")]);
        let status = f.wait_exit(Duration::from_secs(20));
        assert!(status.is_some_and(|s| !s.success()), "{name} kept running");
        assert!(
            f.log_text().contains("MFTG_QUEUE_URL is not set"),
            "{}",
            f.log_text()
        );
    }
}
