//! `as2-receiver`: AS2 messages and asynchronous receipts over HTTP (Function URL or API
//! Gateway). See `gateway_lambdas::receiver`.

use gateway_lambdas::{aws_gateway, receiver, Config};
use lambda_http::{service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON when the function is configured for JSON logs (the templates configure it).
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env().inspect_err(|e| tracing::error!("configuration: {e}"))?;
    let gateway = aws_gateway(&config).await;
    let (gateway, limit) = (&gateway, config.max_body_bytes);
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(receiver::handle(gateway, limit, request).await)
    }))
    .await
}
