//! `send-trigger`: S3 object-created events for the account bucket, straight from S3 (one
//! asynchronous invocation per event) or through an SQS queue (a batch of S3 events, failures
//! reported per message). Each record becomes [`Gateway::on_upload`]; the workflow is idempotent,
//! so a retried event or record never sends twice.

use gateway::ports::Ports;
use gateway::{Gateway, Millis, Origin, UploadOutcome, UploadRef};
use serde_json::{json, Value};

use crate::EventError;

/// One S3 event record, as far as the trigger needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Record {
    /// `eventName` without the `s3:` prefix, for example `ObjectCreated:Put`.
    pub event_name: String,
    /// The account bucket: events from other buckets are ignored.
    pub bucket: String,
    /// The object key, decoded.
    pub key: String,
    /// What the event says of the object.
    pub upload: UploadRef,
}

impl S3Record {
    /// What made the object: an upload (`Put`, `Post`, `CompleteMultipartUpload`), a copy, or
    /// something that is not a creation at all (`None`).
    pub fn origin(&self) -> Option<Origin> {
        match self.event_name.as_str() {
            "ObjectCreated:Put"
            | "ObjectCreated:Post"
            | "ObjectCreated:CompleteMultipartUpload" => Some(Origin::Upload),
            "ObjectCreated:Copy" => Some(Origin::Copy),
            _ => None,
        }
    }
}

/// Decodes an S3 event key: `+` is a space, then `%XX` escapes of UTF-8 bytes.
/// (`url_decoded_key` in some event libraries is never filled in by S3.)
pub fn decode_key(raw: &str) -> Result<String, EventError> {
    let bad = |why: &str| EventError::malformed(format!("object key {raw:?}: {why}"));
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| bad("a % not followed by two hex digits"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| bad("not UTF-8 once decoded"))
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, p| v.get(p))?.as_str()
}

/// Reads one record of an S3 event notification.
pub fn parse_record(record: &Value) -> Result<S3Record, EventError> {
    let need = |path: &[&str]| {
        text(record, path)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| EventError::malformed(format!("S3 record without {}", path.join("."))))
    };
    let event_name = need(&["eventName"])?;
    let event_name = event_name.strip_prefix("s3:").unwrap_or(event_name);
    let object = |f: &str| text(record, &["s3", "object", f]).map(str::to_string);
    let size = match record.pointer("/s3/object/size") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| EventError::malformed(format!("S3 record with object size {v}")))?,
        ),
    };
    Ok(S3Record {
        event_name: event_name.to_string(),
        bucket: need(&["s3", "bucket", "name"])?.to_string(),
        key: decode_key(need(&["s3", "object", "key"])?)?,
        upload: UploadRef {
            version: object("versionId").filter(|v| !v.is_empty() && v != "null"),
            etag: object("eTag").filter(|v| !v.is_empty()),
            size,
            sequencer: object("sequencer").filter(|v| !v.is_empty()),
            at: text(record, &["eventTime"]).and_then(Millis::parse),
        },
    })
}

/// Handles one record; the reply says what became of it.
pub async fn handle_record<P: Ports>(
    gateway: &Gateway<P>,
    bucket: &str,
    record: &Value,
) -> Result<Value, EventError> {
    let r = parse_record(record)?;
    let Some(origin) = r.origin() else {
        tracing::info!(event = %r.event_name, key = %r.key, "not an object creation; ignored");
        return Ok(
            json!({"key": r.key, "outcome": "ignored", "detail": format!("{} is not an upload", r.event_name)}),
        );
    };
    if r.bucket != bucket {
        // Retrying cannot help: the notification is wired to the wrong function.
        tracing::error!(event_bucket = %r.bucket, bucket, key = %r.key, "event for another bucket; ignored");
        return Ok(
            json!({"key": r.key, "outcome": "ignored", "detail": format!("bucket {} is not this gateway's ({bucket})", r.bucket)}),
        );
    }
    let outcome = gateway
        .on_upload(&r.key, origin, Some(r.upload.clone()))
        .await
        .map_err(|e| {
            tracing::error!(key = %r.key, error = %e, "upload not handled; the event will be retried");
            EventError::from(e)
        })?;
    let (name, id, detail) = match &outcome {
        UploadOutcome::Ignored(why) => ("ignored", None, Some(why.clone())),
        UploadOutcome::Queued { id } => ("queued", Some(id.clone()), None),
        UploadOutcome::Duplicate { id, moved_to } => {
            ("duplicate", Some(id.clone()), Some(moved_to.clone()))
        }
        UploadOutcome::NotSent { id, reason } => {
            ("not-sent", Some(id.clone()), Some(reason.clone()))
        }
    };
    if !matches!(outcome, UploadOutcome::Ignored(_)) {
        tracing::info!(key = %r.key, id = id.as_deref().unwrap_or(""), %outcome, "upload");
    }
    Ok(json!({"key": r.key, "outcome": name, "id": id, "detail": detail}))
}

fn records(event: &Value) -> Option<&Vec<Value>> {
    event.get("Records").and_then(Value::as_array)
}

/// Handles an invocation: an S3 event, S3's test event, or an SQS batch of S3 events.
///
/// For an S3 event every record is tried; if any failed the invocation fails (and is retried
/// whole; the records that went through are recognised as redeliveries). For an SQS batch the
/// reply lists the messages that failed (`batchItemFailures`), so only those come back.
pub async fn handle<P: Ports>(
    gateway: &Gateway<P>,
    bucket: &str,
    event: Value,
) -> Result<Value, EventError> {
    let Some(list) = records(&event) else {
        if event.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
            tracing::info!("S3 test event");
            return Ok(json!({"records": []}));
        }
        return Err(EventError::malformed(
            "not an S3 or SQS event (no Records list)",
        ));
    };
    let from_sqs = list
        .first()
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:sqs");
    if from_sqs {
        return Ok(handle_sqs(gateway, bucket, list).await);
    }
    let mut results = Vec::with_capacity(list.len());
    let mut failures = Vec::new();
    for record in list {
        match handle_record(gateway, bucket, record).await {
            Ok(r) => results.push(r),
            Err(e) => {
                if e.kind == crate::ErrorKind::MalformedEvent {
                    tracing::error!(error = %e.message, "malformed S3 record");
                }
                failures.push(e)
            }
        }
    }
    match failures.into_iter().next() {
        None => Ok(json!({"records": results})),
        Some(first) => Err(first),
    }
}

async fn handle_sqs<P: Ports>(gateway: &Gateway<P>, bucket: &str, list: &[Value]) -> Value {
    let mut failed = Vec::new();
    let mut results = Vec::new();
    for message in list {
        let id = message
            .get("messageId")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let body = message.get("body").and_then(Value::as_str).unwrap_or("");
        let inner: Value = match serde_json::from_str(body) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, "SQS message is not an S3 event");
                failed.push(json!({"itemIdentifier": id}));
                continue;
            }
        };
        if inner.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
            continue;
        }
        let Some(inner_records) = records(&inner) else {
            tracing::error!(message_id = %id, "SQS message is not an S3 event (no Records)");
            failed.push(json!({"itemIdentifier": id}));
            continue;
        };
        let mut ok = true;
        for record in inner_records {
            match handle_record(gateway, bucket, record).await {
                Ok(r) => results.push(r),
                Err(e) => {
                    tracing::error!(message_id = %id, error = %e.message, "record failed");
                    ok = false;
                }
            }
        }
        if !ok {
            failed.push(json!({"itemIdentifier": id}));
        }
    }
    json!({"batchItemFailures": failed, "records": results})
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_decoded_plus_first() {
        assert_eq!(
            decode_key("AS2/send/ALPHA/BETA/PO+2026%2B1+%C3%A9t%C3%A9.edi").unwrap(),
            "AS2/send/ALPHA/BETA/PO 2026+1 été.edi"
        );
        assert_eq!(decode_key("a%20b").unwrap(), "a b");
        assert_eq!(decode_key("100%25").unwrap(), "100%");
        for bad in ["a%2", "a%zz", "%C3", "%FF%FE"] {
            let e = decode_key(bad).unwrap_err();
            assert_eq!(e.kind, "malformed_event", "{bad}");
        }
    }

    fn record(name: &str, key: &str) -> Value {
        json!({
            "eventSource": "aws:s3",
            "eventName": name,
            "eventTime": "2026-12-03T15:34:03.120Z",
            "s3": {
                "bucket": {"name": "b"},
                "object": {"key": key, "size": 12, "eTag": "e", "versionId": "v", "sequencer": "0A"}
            }
        })
    }

    #[test]
    fn records_are_read() {
        let r = parse_record(&record("ObjectCreated:CompleteMultipartUpload", "x+y")).unwrap();
        assert_eq!(r.key, "x y");
        assert_eq!(r.origin(), Some(Origin::Upload));
        assert_eq!(
            r.upload,
            UploadRef {
                version: Some("v".into()),
                etag: Some("e".into()),
                size: Some(12),
                sequencer: Some("0A".into()),
                at: Millis::parse("2026-12-03T15:34:03Z"),
            }
        );
        let copy = parse_record(&record("s3:ObjectCreated:Copy", "k")).unwrap();
        assert_eq!(copy.origin(), Some(Origin::Copy));
        let removed = parse_record(&record("ObjectRemoved:Delete", "k")).unwrap();
        assert_eq!(removed.origin(), None);
        let mut no_version = record("ObjectCreated:Put", "k");
        no_version["s3"]["object"]["versionId"] = json!("null");
        assert_eq!(parse_record(&no_version).unwrap().upload.version, None);
        // A time that cannot be read is left out: the object's own time is used instead.
        let mut no_time = record("ObjectCreated:Put", "k");
        no_time["eventTime"] = json!("yesterday");
        assert_eq!(parse_record(&no_time).unwrap().upload.at, None);
    }

    #[test]
    fn malformed_records_say_what_is_missing() {
        let mut r = record("ObjectCreated:Put", "k");
        r["s3"]["object"].as_object_mut().unwrap().remove("key");
        let e = parse_record(&r).unwrap_err();
        assert!(e.message.contains("s3.object.key"), "{e:?}");
        let mut r = record("ObjectCreated:Put", "k");
        r["s3"]["object"]["size"] = json!("big");
        assert!(parse_record(&r).is_err());
        assert!(parse_record(&json!({"eventName": "ObjectCreated:Put"})).is_err());
        assert!(parse_record(&json!("text")).is_err());
    }
}
