//! The real `lifecycle-installer` binary under the Runtime API emulator against moto, answering
//! CloudFormation at a local stand-in for the pre-signed response URL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use testkit::lambda::LambdaEmulator;
use testkit::{repo_root, Moto};

type Got = Arc<Mutex<Vec<(Option<String>, Value)>>>;

async fn answer(State(got): State<Got>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let ct = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("?").to_string());
    got.lock()
        .unwrap()
        .push((ct, serde_json::from_slice(&body).unwrap_or(Value::Null)));
    StatusCode::OK
}

fn sample(name: &str) -> Value {
    let p = repo_root().join("events/lifecycle-installer").join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn create_update_delete() {
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bucket = Moto::unique("mftg-cr");
    let s3 = rt.block_on(async {
        let conf = gateway_aws::config::load(&gateway_aws::config::Endpoint {
            url: Some(moto.url().into()),
            region: Some(testkit::REGION.into()),
        })
        .await;
        let store = gateway_aws::s3::S3Store::from_conf(&conf, &bucket);
        store.create_bucket(testkit::REGION, false).await.unwrap();
        store.client().clone()
    });
    let got: Got = Arc::default();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!(
        "http://{}/cfn-response?X-Amz-Signature=abc",
        listener.local_addr().unwrap()
    );
    let app = axum::Router::new()
        .route("/cfn-response", axum::routing::put(answer))
        .with_state(got.clone());
    rt.spawn(async move { axum::serve(listener, app).await });

    let logs = tempfile::tempdir().unwrap();
    let mut f = LambdaEmulator::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_lifecycle-installer")),
        &[("AWS_ENDPOINT_URL", moto.url())],
        logs.path(),
    );
    let event = |name: &str, b: &str| {
        let mut e = sample(name);
        e["ResponseURL"] = json!(url);
        e["ResourceProperties"]["BucketName"] = json!(b);
        e
    };
    let limit = Duration::from_secs(60);

    let r = f.invoke(&event("create.json", &bucket), limit).unwrap();
    assert_eq!(r["Status"], "SUCCESS", "{r}\n{}", f.log_text());
    assert_eq!(r["Data"], json!({"Rules": "7", "Changed": "true"}));
    let rules = rt
        .block_on(gateway_aws::lifecycle::current(&s3, &bucket))
        .unwrap();
    assert_eq!(rules.len(), 7);
    let (ct, answered) = got.lock().unwrap()[0].clone();
    assert_eq!(ct.as_deref(), Some(""), "signed for an empty content type");
    assert_eq!(answered, r);
    assert_eq!(
        answered["PhysicalResourceId"],
        format!("mftg-lifecycle-{bucket}")
    );
    assert_eq!(answered["LogicalResourceId"], "BucketLifecycle");

    let r = f.invoke(&event("update.json", &bucket), limit).unwrap();
    assert_eq!(r["Data"]["Changed"], "false", "{r}");
    assert_eq!(r["PhysicalResourceId"], "mftg-lifecycle-mftg-123456789012");
    let r = f.invoke(&event("delete.json", &bucket), limit).unwrap();
    assert_eq!(r["Status"], "SUCCESS");
    assert_eq!(
        rt.block_on(gateway_aws::lifecycle::current(&s3, &bucket))
            .unwrap()
            .len(),
        7,
        "the rules stay"
    );

    // A bucket that is not there: FAILED with the reason, so the stack rolls back.
    let r = f
        .invoke(&event("create.json", "mftg-no-such-bucket-9"), limit)
        .unwrap();
    assert_eq!(r["Status"], "FAILED");
    assert!(
        r["Reason"]
            .as_str()
            .unwrap()
            .contains("mftg-no-such-bucket-9"),
        "{r}"
    );
    let mut no_bucket = event("create.json", "");
    no_bucket["ResourceProperties"] = json!({});
    let r = f.invoke(&no_bucket, limit).unwrap();
    assert_eq!(r["Status"], "FAILED");
    assert_eq!(got.lock().unwrap().len(), 5, "every request answered");

    // Not a custom resource event: the invocation fails.
    let e = f.invoke(&json!({"hello": "world"}), limit).unwrap_err();
    assert_eq!(e.error_type, "malformed_event");
}
