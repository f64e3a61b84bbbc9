//! `lifecycle-installer`: a CloudFormation custom resource (`Custom::MftgLifecycle`, property
//! `BucketName`) that puts the seed's lifecycle rules on a bucket, merged with the rules it
//! already has (see `gateway_aws::lifecycle`). `Create` and `Update` install; `Delete` leaves the
//! rules where they are (the bucket and its data outlive the stack). The outcome is PUT to the
//! pre-signed `ResponseURL`, as CloudFormation expects; the reply's `Data` has `Rules` (the
//! number of rules on the bucket) and `Changed` (`true`/`false`).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON when the function is configured for JSON logs (the templates configure it).
    lambda_runtime::tracing::init_default_subscriber();
    let conf = gateway_aws::config::load(&gateway_aws::config::Endpoint::default()).await;
    // Path-style addressing when AWS_ENDPOINT_URL points at an emulator, as for the gateway.
    let s3 = gateway_aws::s3::S3Store::from_conf(&conf, "")
        .client()
        .clone();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let (s3, http) = (&s3, &http);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(s3, http, event.payload).await
    }))
    .await
}

fn text<'a>(event: &'a Value, key: &str) -> &'a str {
    event.get(key).and_then(Value::as_str).unwrap_or("")
}

async fn outcome(s3: &aws_sdk_s3::Client, kind: &str, bucket: &str) -> Result<Value, String> {
    if bucket.is_empty() {
        return Err("the resource has no BucketName property".into());
    }
    match kind {
        "Create" | "Update" => {
            let plan = gateway_aws::lifecycle::install(s3, bucket, true)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(
                bucket,
                changed = !plan.is_noop(),
                "lifecycle rules:\n{plan}"
            );
            Ok(
                json!({"Rules": plan.rules.len().to_string(), "Changed": (!plan.is_noop()).to_string()}),
            )
        }
        "Delete" => {
            tracing::info!(
                bucket,
                "stack resource deleted; the bucket keeps its lifecycle rules"
            );
            Ok(json!({}))
        }
        other => Err(format!("unknown RequestType {other:?}")),
    }
}

async fn handle(
    s3: &aws_sdk_s3::Client,
    http: &reqwest::Client,
    event: Value,
) -> Result<Value, lambda_runtime::Diagnostic> {
    // Nothing is touched for an event that cannot be answered.
    let url = text(&event, "ResponseURL");
    if url.is_empty() {
        return Err(lambda_runtime::Diagnostic {
            error_type: "malformed_event".into(),
            error_message: "not a CloudFormation custom resource event (no ResponseURL)".into(),
        });
    }
    let bucket = event
        .pointer("/ResourceProperties/BucketName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let result = outcome(s3, text(&event, "RequestType"), &bucket).await;
    let physical = match text(&event, "PhysicalResourceId") {
        "" => format!("mftg-lifecycle-{bucket}"),
        id => id.to_string(),
    };
    let mut reply = json!({
        "PhysicalResourceId": physical,
        "StackId": text(&event, "StackId"),
        "RequestId": text(&event, "RequestId"),
        "LogicalResourceId": text(&event, "LogicalResourceId"),
    });
    match &result {
        Ok(data) => {
            reply["Status"] = json!("SUCCESS");
            reply["Data"] = data.clone();
        }
        Err(reason) => {
            tracing::error!(%bucket, %reason, "lifecycle rules not installed");
            reply["Status"] = json!("FAILED");
            reply["Reason"] = json!(reason.chars().take(1000).collect::<String>());
        }
    }
    let body = reply.to_string();
    // The pre-signed URL is signed for an empty Content-Type.
    let sent = http
        .put(url)
        .header("content-type", "")
        .header("content-length", body.len())
        .body(body)
        .send()
        .await
        .and_then(|r| r.error_for_status());
    if let Err(e) = sent {
        // The pre-signed URL is a credential of sorts: it stays out of the log.
        let e = e.without_url();
        // CloudFormation would wait an hour for an answer: fail loudly so the retry answers.
        tracing::error!(error = %e, "cannot answer CloudFormation");
        return Err(lambda_runtime::Diagnostic {
            error_type: "response_url".into(),
            error_message: format!("cannot PUT the response: {e}"),
        });
    }
    Ok(reply)
}
