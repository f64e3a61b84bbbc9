//! `as2-sender`: batches from the send queue -> AS2 sends, asynchronous receipts, receipt
//! deadlines, webhook posts; failures reported per message. Once a day (a schedule) the
//! certificate check. See `gateway_lambdas::sender`.

use gateway_lambdas::{aws_gateway, sender, Config};
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON when the function is configured for JSON logs (the templates configure it).
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env().inspect_err(|e| tracing::error!("configuration: {e}"))?;
    let gateway = aws_gateway(&config).await;
    let gateway = &gateway;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        if sender::is_schedule(&event.payload) {
            return sender::check_certificates(gateway)
                .await
                .map_err(Diagnostic::from);
        }
        sender::handle(gateway, &gateway.ports.queue, event.payload)
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}
