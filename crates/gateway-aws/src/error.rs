//! How SDK errors are described, in one line a person can act on: missing or expired
//! credentials and denied access say so and what to do; otherwise `<code>: <message>` when the
//! service said what went wrong, else the causes' own words (timeouts, connection failures),
//! never the SDK's Debug dumps.

use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// Error codes of expired or not-yet-valid credentials, across services.
const EXPIRED: [&str; 5] = [
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "TokenRefreshRequired",
    "InvalidClientTokenId",
];

/// Error codes of requests the credentials may not make.
const DENIED: [&str; 4] = [
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
];

/// What to do when no credentials were found.
pub const NO_CREDENTIALS: &str = "no AWS credentials found: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or run `aws sso login`";

/// One line describing an SDK error.
pub(crate) fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + StdError + 'static,
    R: std::fmt::Debug + 'static,
{
    if let Some(line) = credentials_problem(e) {
        return line;
    }
    let code = e.code().unwrap_or_default();
    let message = e.message().map(|m| format!(": {m}")).unwrap_or_default();
    if EXPIRED.contains(&code) {
        format!("the AWS credentials are expired or not valid ({code}{message}); refresh them (`aws sso login`, or new access keys) and try again")
    } else if DENIED.contains(&code) {
        format!(
            "access denied ({code}{message}): the credentials' user or role lacks this permission"
        )
    } else if !code.is_empty() {
        format!("{code}{message}")
    } else {
        causes(e)
    }
}

/// A credentials failure anywhere in the chain of causes, as what to do about it.
fn credentials_problem(e: &(dyn StdError + 'static)) -> Option<String> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(c) = err.downcast_ref::<CredentialsError>() {
            return Some(match c {
                CredentialsError::InvalidConfiguration(_) => {
                    format!(
                        "the AWS configuration cannot provide credentials: {}",
                        causes(c)
                    )
                }
                _ => NO_CREDENTIALS.to_string(),
            });
        }
        next = err.source();
    }
    None
}

/// The error's and its causes' own messages, each once, joined with `: `.
fn causes(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}
