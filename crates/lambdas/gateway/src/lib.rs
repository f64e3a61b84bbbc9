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

/// What kind of failure an invocation had: the function error's `errorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The event is not what the function takes.
    MalformedEvent,
    /// A name that cannot be part of a storage key.
    InvalidName,
    /// No such partnership.
    UnknownPartnership,
    /// Configuration that cannot work.
    Config,
    /// Something that should exist does not.
    NotFound,
    /// A concurrent writer was first.
    Conflict,
    /// The AS2 engine refused something.
    As2,
    /// A port failed: `s3`, `dynamodb`, `sqs`, ...
    Port(&'static str),
    /// Anything else the domain reports.
    Gateway,
}

impl ErrorKind {
    /// The `errorType` code: `malformed_event`, `invalid_name`, `unknown_partnership`, `config`,
    /// `not_found`, `conflict`, `as2`, the port's name, or `gateway`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::MalformedEvent => "malformed_event",
            ErrorKind::InvalidName => "invalid_name",
            ErrorKind::UnknownPartnership => "unknown_partnership",
            ErrorKind::Config => "config",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::As2 => "as2",
            ErrorKind::Port(port) => port,
            ErrorKind::Gateway => "gateway",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl PartialEq<&str> for ErrorKind {
    fn eq(&self, code: &&str) -> bool {
        self.code() == *code
    }
}

/// Why an invocation failed; becomes the function error's `errorType` and `errorMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What went wrong (never key material).
    pub message: String,
}

impl EventError {
    /// An event that is not what the function takes.
    pub fn malformed(message: impl Into<String>) -> Self {
        EventError {
            kind: ErrorKind::MalformedEvent,
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
            GatewayError::InvalidName(_) => ErrorKind::InvalidName,
            GatewayError::UnknownPartnership { .. } => ErrorKind::UnknownPartnership,
            GatewayError::Config(_) => ErrorKind::Config,
            GatewayError::NotFound(_) => ErrorKind::NotFound,
            GatewayError::Conflict(_) => ErrorKind::Conflict,
            GatewayError::As2(_) => ErrorKind::As2,
            GatewayError::Port { port, .. } => ErrorKind::Port(port),
            _ => ErrorKind::Gateway,
        };
        EventError {
            kind,
            message: e.to_string(),
        }
    }
}

impl From<EventError> for lambda_runtime::Diagnostic {
    fn from(e: EventError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.kind.code().to_string(),
            error_message: e.message,
        }
    }
}

/// The gateway over AWS, with every client built from the environment's SDK configuration
/// (`AWS_ENDPOINT_URL`, when set, points them all at an emulator).
pub async fn aws_gateway(config: &Config) -> Gateway<AwsPorts> {
    let conf = gateway_aws::config::load(&gateway_aws::config::Endpoint::default()).await;
    let mut gateway = Gateway::new(gateway_aws::ports::aws_ports(&conf, &config.aws));
    gateway.settings = config.gateway.clone();
    gateway
}
