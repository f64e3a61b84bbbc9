//! The gateway's Lambda functions over S3, DynamoDB and SQS: `send-trigger` (S3 events),
//! `as2-sender` (the send queue) and `as2-receiver` (AS2 over HTTP). Each binary in `src/bin`
//! only builds its clients once and hands every invocation to a handler here; the handlers are
//! generic over the domain's ports, so they run over in-memory ports in unit tests and over AWS
//! in the functions.

pub mod config;
pub mod receiver;
pub mod sender;
pub mod trigger;

use gateway::{Gateway, GatewayError};
use gateway_aws::ports::AwsPorts;

pub use config::Config;

/// Why an invocation failed; becomes the function error's `errorType` and `errorMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    /// A short code: `malformed_event`, `unknown_partnership`, `config`, `not_found`,
    /// `conflict`, `as2`, `invalid_name`, or the failing port (`s3`, `dynamodb`, `sqs`, ...).
    pub kind: String,
    /// What went wrong (never key material).
    pub message: String,
}

impl EventError {
    /// An event that is not what the function takes.
    pub fn malformed(message: impl Into<String>) -> Self {
        EventError {
            kind: "malformed_event".into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl From<GatewayError> for EventError {
    fn from(e: GatewayError) -> Self {
        let kind = match &e {
            GatewayError::InvalidName(_) => "invalid_name",
            GatewayError::UnknownPartnership { .. } => "unknown_partnership",
            GatewayError::Config(_) => "config",
            GatewayError::NotFound(_) => "not_found",
            GatewayError::Conflict(_) => "conflict",
            GatewayError::As2(_) => "as2",
            GatewayError::Port { port, .. } => port,
            _ => "gateway",
        };
        EventError {
            kind: kind.into(),
            message: e.to_string(),
        }
    }
}

impl From<EventError> for lambda_runtime::Diagnostic {
    fn from(e: EventError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.kind,
            error_message: e.message,
        }
    }
}

/// The gateway over AWS, with every client built from the environment's SDK configuration
/// (`AWS_ENDPOINT_URL`, when set, points them all at an emulator).
pub async fn aws_gateway(config: &Config) -> Gateway<AwsPorts> {
    let conf = gateway_aws::config::load(&gateway_aws::config::Endpoint::default()).await;
    let mut gateway = Gateway::new(AwsPorts::new(&conf, &config.aws));
    gateway.settings = config.gateway.clone();
    gateway
}
