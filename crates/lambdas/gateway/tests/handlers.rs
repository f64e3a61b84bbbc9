//! The handlers over in-memory ports (fast; the moto and emulator tests are the proof): what
//! each event shape becomes, batch failures, deferral and parking. A scripted partner answers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use as2::keys::Identity;
use gateway::memory::{FnTransport, MemoryPorts};
use gateway::model::{Job, Partnership, RetryPolicy, Station, Status};
use gateway::ports::{HttpResponse, MessageLog, ObjectStore, TransportError};
use gateway::{Gateway, Millis};
use gateway_aws::sqs::QueuedJob;
use gateway_lambdas::sender::{self, Handled, Parking};
use gateway_lambdas::{receiver, trigger};
use serde_json::{json, Value};

const T0: Millis = Millis(1_795_858_200_000);

#[derive(Default)]
struct Parked {
    deferred: Mutex<Vec<QueuedJob>>,
    parked: Mutex<Vec<(String, String)>>,
}

impl Parking for Parked {
    async fn defer(&self, queued: &QueuedJob, _now: Millis) -> gateway::Result<()> {
        self.deferred.lock().unwrap().push(queued.clone());
        Ok(())
    }
    async fn park(&self, body: &str, reason: &str) -> gateway::Result<()> {
        self.parked
            .lock()
            .unwrap()
            .push((body.to_string(), reason.to_string()));
        Ok(())
    }
}

fn gateway(partner_up: bool) -> Gateway<MemoryPorts> {
    let t = FnTransport::new(move |_req| {
        if partner_up {
            Ok(HttpResponse {
                status: 200,
                headers: Default::default(),
                body: Vec::new(),
            })
        } else {
            Err(TransportError::Connect("refused".into()))
        }
    });
    let ports = MemoryPorts::new(T0, t);
    ports.directory.add_station(Station {
        as2_id: "ALPHA".into(),
        key_alias: "alpha".into(),
        mdn_url: None,
        mdn_email: None,
        message_id_domain: Some("alpha.example".into()),
    });
    let mut p = Partnership::new("ALPHA", "BETA", "http://beta.example/as2", "beta");
    p.mdn = gateway::model::MdnMode::None;
    p.retry = Some(RetryPolicy {
        attempts: 1,
        ..RetryPolicy::default()
    });
    ports.directory.add_partnership(p);
    let id =
        Identity::generate_self_signed("ALPHA", 2048, as2::UnixTime(1_700_000_000), 3650).unwrap();
    ports
        .keys
        .identities
        .lock()
        .unwrap()
        .insert("alpha".into(), id.clone());
    ports
        .keys
        .certificates
        .lock()
        .unwrap()
        .insert("beta".into(), id.certificate);
    Gateway::new(ports)
}

fn s3_record(name: &str, key: &str, version: &str) -> Value {
    json!({
        "eventSource": "aws:s3",
        "eventName": name,
        "s3": {"bucket": {"name": "mftg-1"}, "object": {"key": key, "size": 3, "versionId": version}}
    })
}

async fn put(g: &Gateway<MemoryPorts>, key: &str) -> String {
    g.ports
        .store
        .put(key, b"abc".to_vec(), BTreeMap::new())
        .await
        .unwrap()
        .version
        .unwrap_or_default()
}

#[tokio::test]
async fn s3_events() {
    let g = gateway(true);
    let v = put(&g, "AS2/send/ALPHA/BETA/a b.x12").await;
    let event = json!({"Records": [
        s3_record("ObjectCreated:Put", "AS2/send/ALPHA/BETA/a+b.x12", &v),
        s3_record("ObjectCreated:Copy", "AS2/send/ALPHA/BETA/a+b.x12", &v),
        s3_record("ObjectRemoved:Delete", "AS2/send/ALPHA/BETA/a+b.x12", &v),
    ]});
    let reply = trigger::handle(&g, "mftg-1", event).await.unwrap();
    let outcomes: Vec<&str> = reply["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["queued", "ignored", "ignored"]);
    assert_eq!(g.ports.queue.pending().len(), 1);

    // One malformed record fails the invocation, after the others were handled.
    let v2 = put(&g, "AS2/send/ALPHA/BETA/c.x12").await;
    let event = json!({"Records": [
        {"eventName": "ObjectCreated:Put"},
        s3_record("ObjectCreated:Put", "AS2/send/ALPHA/BETA/c.x12", &v2),
    ]});
    let e = trigger::handle(&g, "mftg-1", event).await.unwrap_err();
    assert_eq!(e.kind, "malformed_event");
    assert_eq!(
        g.ports.queue.pending().len(),
        2,
        "the good record went through"
    );
    let e = trigger::handle(&g, "mftg-1", json!([1, 2]))
        .await
        .unwrap_err();
    assert_eq!(e.kind, "malformed_event");
}

#[tokio::test]
async fn s3_events_through_sqs() {
    let g = gateway(true);
    let v = put(&g, "AS2/send/ALPHA/BETA/d.x12").await;
    let good =
        json!({"Records": [s3_record("ObjectCreated:Put", "AS2/send/ALPHA/BETA/d.x12", &v)]});
    let event = json!({"Records": [
        {"eventSource": "aws:sqs", "messageId": "m1", "body": good.to_string()},
        {"eventSource": "aws:sqs", "messageId": "m2", "body": "not json"},
        {"eventSource": "aws:sqs", "messageId": "m3", "body": "{\"Event\": \"s3:TestEvent\"}"},
        {"eventSource": "aws:sqs", "messageId": "m4", "body": "{\"Records\": [{\"eventName\": 1}]}"},
    ]});
    let reply = trigger::handle(&g, "mftg-1", event).await.unwrap();
    assert_eq!(
        reply["batchItemFailures"],
        json!([{"itemIdentifier": "m2"}, {"itemIdentifier": "m4"}])
    );
    assert_eq!(reply["records"][0]["outcome"], "queued");
}

#[tokio::test]
async fn sqs_jobs() {
    let g = gateway(false);
    let parking = Parked::default();
    let v = put(&g, "AS2/send/ALPHA/BETA/e.x12").await;
    let event =
        json!({"Records": [s3_record("ObjectCreated:Put", "AS2/send/ALPHA/BETA/e.x12", &v)]});
    let reply = trigger::handle(&g, "mftg-1", event).await.unwrap();
    let id = reply["records"][0]["id"].as_str().unwrap().to_string();
    let body = |job: Job, at: Millis| {
        QueuedJob {
            job,
            not_before: at,
        }
        .body()
        .unwrap()
    };
    let early = body(
        Job::Send { id: id.clone() },
        T0.plus(Duration::from_secs(3600)),
    );
    assert_eq!(
        sender::handle_message(&g, &parking, &early).await.unwrap(),
        Handled::Deferred
    );
    assert_eq!(parking.deferred.lock().unwrap().len(), 1);

    // The partner is down and the policy allows one attempt: failed, parked with the reason.
    let due = body(Job::Send { id: id.clone() }, T0);
    let batch = json!({"Records": [
        {"messageId": "a", "body": due},
        {"messageId": "b", "body": "garbage"},
        {"messageId": "c"},
    ]});
    let reply = sender::handle(&g, &parking, batch).await.unwrap();
    assert_eq!(reply["batchItemFailures"], json!([{"itemIdentifier": "c"}]));
    let parked = parking.parked.lock().unwrap().clone();
    assert_eq!(parked.len(), 2, "{parked:?}");
    assert!(
        parked[0].1.contains("gave up after 1 attempt"),
        "{parked:?}"
    );
    assert!(parked[1].1.contains("not a job message"));
    assert_eq!(
        g.ports.log.get(&id).await.unwrap().unwrap().status,
        Status::Failed
    );
    // Run again (a redelivery): nothing more happens.
    assert_eq!(
        sender::handle_message(&g, &parking, &due).await.unwrap(),
        Handled::Ran(Some(Status::Failed))
    );
    assert!(sender::handle(&g, &parking, json!({"Records": 3}))
        .await
        .is_err());
}

#[tokio::test]
async fn http_requests() {
    let g = gateway(true);
    let req = |method: &str, path: &str, body: &[u8]| {
        let mut r = lambda_http::Request::new(lambda_http::Body::Binary(body.to_vec()));
        *r.method_mut() = method.parse().unwrap();
        *r.uri_mut() = path.parse().unwrap();
        r
    };
    let r = receiver::handle(&g, 100, req("GET", "/health", b"")).await;
    assert_eq!(r.status(), 200);
    let r = receiver::handle(&g, 100, req("DELETE", "/as2", b"")).await;
    assert_eq!(r.status(), 405);
    let r = receiver::handle(&g, 100, req("POST", "/as2", &[b'x'; 101])).await;
    assert_eq!(r.status(), 413);
    assert!(g.ports.store.keys().is_empty());
    // No AS2 headers at all: refused, and still kept.
    let r = receiver::handle(&g, 100, req("POST", "/as2", b"hello")).await;
    assert!(r.status().is_client_error(), "{}", r.status());
    assert!(!g.ports.store.keys().is_empty());
}
