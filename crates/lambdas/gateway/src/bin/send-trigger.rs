//! `send-trigger`: S3 object-created events under `AS2/send/` (directly, or through SQS) ->
//! duplicate check, move to the outbox, queue the send. See `gateway_lambdas::trigger`.

use gateway_lambdas::{aws_gateway, trigger, Config};
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON when the function is configured for JSON logs (the templates configure it).
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env().inspect_err(|e| tracing::error!("configuration: {e}"))?;
    let gateway = aws_gateway(&config).await;
    let (gateway, bucket) = (&gateway, config.aws.bucket.as_str());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        trigger::handle(gateway, bucket, event.payload)
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}
