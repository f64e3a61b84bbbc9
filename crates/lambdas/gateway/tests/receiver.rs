//! `as2-receiver` (the real binary, against moto) with the sample events of
//! `events/as2-receiver/`: health, methods, the size limit, and what it does with a message or
//! a receipt it cannot use (stored, answered, never lost).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

fn body(reply: &Value) -> Vec<u8> {
    let b = reply["body"].as_str().unwrap_or("");
    if reply["isBase64Encoded"] == true {
        base64::engine::general_purpose::STANDARD.decode(b).unwrap()
    } else {
        b.as_bytes().to_vec()
    }
}

#[test]
fn sample_requests() {
    let d = Deployment::new();
    d.keystores(&["ALPHA"], &["BETA"]);
    d.station("ALPHA", None);
    d.partnership("ALPHA", "BETA", "http://127.0.0.1:9/as2", |_| {});
    let mut f = d.function(
        "as2-receiver",
        "receiver",
        &[("MFTG_MAX_BODY_BYTES", "5000")],
    );
    let limit = Duration::from_secs(60);

    let health = f
        .invoke(&sample("as2-receiver/function-url-health-get.json"), limit)
        .unwrap();
    assert_eq!(
        (health["statusCode"].as_u64(), body(&health)),
        (Some(200), b"ok\n".to_vec())
    );

    let mut put = sample("as2-receiver/function-url-health-get.json");
    put["requestContext"]["http"]["method"] = json!("PUT");
    let r = f.invoke(&put, limit).unwrap();
    assert_eq!(r["statusCode"], 405, "{r}");

    // Over the limit: 413, nothing stored.
    let mut big = sample("as2-receiver/function-url-as2-post.json");
    big["body"] = json!(base64::engine::general_purpose::STANDARD.encode(vec![0x30u8; 6000]));
    let r = f.invoke(&big, limit).unwrap();
    assert_eq!(r["statusCode"], 413, "{r}");
    assert!(String::from_utf8_lossy(&body(&r)).contains("at most 5000 bytes"));
    assert!(d.keys("AS2/raw-message/").is_empty() && d.keys("AS2/files/").is_empty());

    // The sample message (its body a stand-in, not a real CMS): kept, and refused in the receipt.
    let post = sample("as2-receiver/function-url-as2-post.json");
    let r = f.invoke(&post, limit).unwrap();
    let text = String::from_utf8_lossy(&body(&r)).into_owned();
    assert_eq!(r["statusCode"], 200, "{r}");
    assert!(text.contains("Disposition: automatic-action/MDN-sent-automatically; processed/error: decryption-failed"), "{text}");
    let records = d.records();
    assert_eq!(records.len(), 1);
    let rejected = &records[0];
    assert_eq!(rejected.status, gateway::model::Status::Rejected);
    assert_eq!(
        rejected.message_id,
        "<mendelson_opensource_AS2-1795858200000-0@BETA_ALPHA>"
    );
    let raw = format!(
        "AS2/raw-message/ALPHA/BETA/inbox/{}/message.bin",
        rejected.id
    );
    assert_eq!(
        d.get(&raw).unwrap().len(),
        66,
        "the body as it came, decoded from base64"
    );
    assert!(d
        .get(&format!(
            "AS2/headers/ALPHA/BETA/inbox/{}/headers.txt",
            rejected.id
        ))
        .is_some());

    // A receipt for nothing we sent: kept aside, answered 400.
    let mdn = sample("as2-receiver/function-url-async-mdn-post.json");
    let r = f.invoke(&mdn, limit).unwrap();
    assert_eq!(r["statusCode"], 400, "{r}");
    assert!(String::from_utf8_lossy(&body(&r)).contains("was sent from ALPHA to BETA"));
    assert_eq!(d.keys("AS2/raw-mdn/incoming/_unmatched/").len(), 1);
    let log = f.log_text();
    assert!(
        log.contains("mendelson_opensource_AS2-1795858200000-0@BETA_ALPHA"),
        "logged with the Message-ID"
    );
    assert!(!log.contains(KEYSTORE_PASSWORD));
}
