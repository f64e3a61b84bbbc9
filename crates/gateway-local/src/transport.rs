//! Environment-variable secrets for the embedded gateway; the HTTP client is `gateway-http`'s.

use gateway::ports::Secrets;
use gateway::{GatewayError, Result};

pub use gateway_http::HttpTransport;

/// [`Secrets`] from environment variables.
#[derive(Debug, Clone, Default)]
pub struct EnvSecrets;

impl Secrets for EnvSecrets {
    async fn secret(&self, name: &str) -> Result<String> {
        std::env::var(name).map_err(|_| {
            GatewayError::Config(format!(
                "environment variable {name} is not set (it holds a secret)"
            ))
        })
    }
}
