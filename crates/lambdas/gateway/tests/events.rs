//! Events from the real binaries against moto: each final status is put once on the default
//! EventBridge bus (checked through a rule whose target is an SQS queue, as a subscriber would
//! set it up) and posted once, signed, to a webhook configured in `MFTG_WEBHOOKS` whose first
//! answer is a 500 (tests/console/webhook_receiver.py checks the signature with Python's hmac).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use gateway::model::{RetryPolicy, Status};
use serde_json::{json, Value};
use testkit::webhook::WebhookReceiver;

const WEBHOOK_SECRET: &str = "Webhook-Secret-On-AWS-1";

/// A queue that gets every event of `d`'s deployment from the default bus; returns its URL.
fn subscribe(d: &Deployment) -> String {
    let events = aws_sdk_eventbridge::Client::new(&d.conf);
    d.rt.block_on(async {
        let url = d
            .sqs
            .create_queue()
            .queue_name(format!("{}-events", d.prefix))
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string();
        let arn = d
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes()
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        let rule = format!("{}-events", d.prefix);
        events
            .put_rule()
            .name(&rule)
            .event_bus_name("default")
            .event_pattern(
                json!({
                    "source": ["mftg"],
                    "resources": [format!("arn:aws:s3:::{}", d.bucket)],
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        events
            .put_targets()
            .rule(&rule)
            .event_bus_name("default")
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        url
    })
}

/// What an event is about: its message's record id, or the certificate's owner.
fn subject(event: &Value) -> String {
    match event["message"]["id"].as_str() {
        Some(id) => id.to_string(),
        None => event["certificate"]["owner"]
            .as_str()
            .unwrap_or("?")
            .to_string(),
    }
}

#[test]
fn final_statuses_go_to_eventbridge_and_the_webhook_once_each() {
    let d = Deployment::new();
    let tmp = tempfile::tempdir().unwrap();
    let events_queue = subscribe(&d);

    // The webhook: its secret in Secrets Manager under mftg/webhook/, its receiver failing once.
    let secret = format!("mftg/webhook/{}", d.prefix);
    d.rt.block_on(
        aws_sdk_secretsmanager::Client::new(&d.conf)
            .create_secret()
            .name(&secret)
            .secret_string(WEBHOOK_SECRET)
            .send(),
    )
    .unwrap();
    let receiver =
        WebhookReceiver::start(WEBHOOK_SECRET, &tmp.path().join("webhook.jsonl"), 1, 0, 0.0);
    let webhooks = json!([{
        "name": "ops",
        "url": receiver.url,
        "secret": secret,
        "timeout_secs": 5,
        "retry": {"attempts": 4, "first_interval_secs": 1, "max_interval_secs": 2},
    }])
    .to_string();
    let env = [("MFTG_WEBHOOKS", webhooks.as_str())];

    // ALPHA trades with pyas2lib, and with a partner that is never up.
    let port = free_port();
    let _py = pyas2_sync(&tmp.path().join("py"), port);
    d.keystores(&["ALPHA"], &["PYAS2"]);
    // GONE's certificate ends in 10 days: the daily check tells of it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ending = as2::keys::Identity::generate_self_signed(
        "GONE",
        2048,
        as2::UnixTime(now - 355 * 86_400),
        365,
    )
    .unwrap();
    let mut trust = as2::keys::Keystore::new();
    trust.set_certificate("pyas2", &identity("PYAS2").certificate);
    trust.set_certificate("gone", &ending.certificate);
    d.put(
        gateway::layout::keystore::TRUST,
        &trust.to_jks(KEYSTORE_PASSWORD, as2::UnixTime(now)).unwrap(),
    );
    d.station("ALPHA", None);
    d.partnership(
        "ALPHA",
        "PYAS2",
        &format!("http://127.0.0.1:{port}/as2"),
        |_| {},
    );
    d.partnership(
        "ALPHA",
        "GONE",
        &format!("http://127.0.0.1:{}/as2", free_port()),
        |p| {
            p.retry = Some(RetryPolicy {
                attempts: 1,
                first_interval_secs: 1,
                max_interval_secs: 1,
            })
        },
    );
    let mut trigger_fn = d.function("send-trigger", "trigger", &env);
    let mut sender = d.function("as2-sender", "sender", &env);

    let key = "AS2/send/ALPHA/PYAS2/po-1.x12";
    let delivered = trigger(&mut trigger_fn, &d.upload(key, &edi(1)))["id"]
        .as_str()
        .unwrap()
        .to_string();
    d.pump_until(&mut sender, "delivery", Duration::from_secs(60), |d| {
        d.record(&delivered).status == Status::Delivered
    });
    let duplicate = trigger(&mut trigger_fn, &d.upload(key, &edi(1)))["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(d.record(&duplicate).status, Status::Duplicate);
    let failed = trigger(
        &mut trigger_fn,
        &d.upload("AS2/send/ALPHA/GONE/po-2.x12", &edi(2)),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    d.pump_until(&mut sender, "giving up", Duration::from_secs(60), |d| {
        d.record(&failed).status == Status::Failed
    });
    // The daily schedule's event: one certificate ends soon.
    let reply = sender
        .invoke(&sample("as2-sender/schedule.json"), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("schedule: {e:?}\n{}", sender.log_text()));
    assert_eq!(reply, json!({"certificates_ending": 1}));
    let wanted = BTreeMap::from([
        (delivered.clone(), "delivered"),
        (duplicate.clone(), "duplicate"),
        (failed.clone(), "failed"),
        ("ALPHA/GONE".to_string(), "certificate-expiring"),
    ]);

    // The webhook: its jobs ride the send queue, the first POST is answered 500 and retried.
    let accepted = |all: &[Value]| -> Vec<Value> {
        all.iter()
            .filter(|l| l["answered"] == 204)
            .cloned()
            .collect()
    };
    d.pump_until(
        &mut sender,
        "the webhook's events",
        Duration::from_secs(60),
        |_| accepted(&receiver.requests()).len() >= wanted.len(),
    );
    // Nothing more comes once the queue is empty.
    for _ in 0..3 {
        d.deliver_once(&mut sender);
    }
    let all = receiver.requests();
    assert_eq!(all[0]["answered"], 500, "{all:#?}");
    let taken = accepted(&all);
    let mut got = BTreeMap::new();
    for l in &taken {
        assert_eq!(l["ok"], true, "signature: {l}");
        let e = &l["event"];
        got.insert(subject(e), e["type"].as_str().unwrap().to_string());
    }
    assert_eq!(taken.len(), wanted.len(), "{taken:#?}");
    assert_eq!(
        got,
        wanted
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    );

    // EventBridge: the same events, once each, as a rule on the default bus delivers them.
    let bus = bus_events(&d, &events_queue, wanted.len());
    // And no more.
    assert!(d.receive(&events_queue).is_empty());
    assert_eq!(bus.len(), wanted.len(), "{bus:#?}");
    let mut seen = BTreeMap::new();
    for e in &bus {
        assert_eq!(e["source"], "mftg", "{e}");
        assert_eq!(
            e["resources"],
            json!([format!("arn:aws:s3:::{}", d.bucket)]),
            "{e}"
        );
        assert_eq!(e["detail-type"], e["detail"]["type"], "{e}");
        let m = &e["detail"]["message"];
        if !m.is_null() {
            assert_eq!(m["station"], "ALPHA", "{e}");
            assert_eq!(m["size"].as_u64(), Some(edi(1).len() as u64), "{e}");
        }
        seen.insert(
            subject(&e["detail"]),
            e["detail-type"].as_str().unwrap().to_string(),
        );
    }
    assert_eq!(seen, got);
    let delivered_event = bus
        .iter()
        .find(|e| e["detail-type"] == "delivered")
        .unwrap();
    assert_eq!(
        delivered_event["detail"]["message"]["disposition"], "processed",
        "{delivered_event}"
    );
}

/// The events `queue` gets until there are `wanted` (at most 30 s), each taken off it.
fn bus_events(d: &Deployment, queue: &str, wanted: usize) -> Vec<Value> {
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < wanted && start.elapsed() < Duration::from_secs(30) {
        for m in d.receive(queue) {
            got.push(serde_json::from_str::<Value>(m.body().unwrap()).unwrap());
            d.delete_from(queue, &m);
        }
    }
    got
}

#[test]
fn a_final_status_a_function_died_before_telling_is_told_when_its_job_comes_again() {
    let d = Deployment::new();
    let tmp = tempfile::tempdir().unwrap();
    let events_queue = subscribe(&d);
    let port = free_port();
    let _py = pyas2_sync(&tmp.path().join("py"), port);
    alpha_with_pyas2(&d, &format!("http://127.0.0.1:{port}/as2"), None);
    let mut trigger_fn = d.function("send-trigger", "trigger", &[]);
    let id = trigger(
        &mut trigger_fn,
        &d.upload("AS2/send/ALPHA/PYAS2/po-9.x12", &edi(9)),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();

    // This sender writes `delivered` and then tells nothing, as one that dies there would; its
    // batch is never acknowledged (the messages are not deleted), so the queue hands the job
    // out again once its visibility timeout is over.
    let mut dying = d.function(
        "as2-sender",
        "dying",
        &[("MFTG_FAILPOINTS", "final.recorded=error")],
    );
    let start = Instant::now();
    while d.record(&id).status != Status::Delivered {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not delivered: {:#?}\n{}",
            d.record(&id),
            dying.log_text()
        );
        let batch = d.receive(&d.queue_url);
        if !batch.is_empty() {
            dying
                .invoke(&d.sqs_event(&batch), Duration::from_secs(90))
                .unwrap_or_else(|e| panic!("as2-sender: {e:?}\n{}", dying.log_text()));
        }
    }
    drop(dying);
    assert_eq!(d.record(&id).told, None);
    assert!(d.receive(&events_queue).is_empty());

    // The job comes again to a sender that lives: it finds the message delivered, untold, and
    // tells of it. Once: the job's further copies, and the record, say it was told.
    let mut sender = d.function("as2-sender", "sender", &[]);
    d.pump_until(&mut sender, "the job again", Duration::from_secs(30), |d| {
        d.record(&id).told.is_some()
    });
    for _ in 0..3 {
        d.deliver_once(&mut sender);
    }
    let bus = bus_events(&d, &events_queue, 1);
    assert!(d.receive(&events_queue).is_empty(), "told twice");
    assert_eq!(bus.len(), 1, "{bus:#?}");
    assert_eq!(bus[0]["detail-type"], "delivered", "{bus:#?}");
    assert_eq!(bus[0]["detail"]["message"]["id"], id.as_str());
    assert_eq!(
        d.record(&id).told.as_deref(),
        bus[0]["detail"]["id"].as_str()
    );
}
