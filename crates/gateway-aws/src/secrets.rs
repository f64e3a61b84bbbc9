//! [`Secrets`] from AWS Secrets Manager, or from SSM Parameter Store SecureStrings when the name
//! starts with `ssm:` (`ssm:/mftg/keystore-password`). A value is fetched once and kept for the
//! life of the execution environment (clones share the cache); errors name the secret, never
//! its value.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use gateway::ports::Secrets;
use gateway::{GatewayError, Result};

/// Secrets Manager and SSM, cached.
#[derive(Debug, Clone)]
pub struct AwsSecrets {
    secrets: aws_sdk_secretsmanager::Client,
    ssm: aws_sdk_ssm::Client,
    cache: Arc<Mutex<HashMap<String, String>>>,
}

fn port<E: ProvideErrorMetadata + std::error::Error + 'static>(
    name: &str,
    e: &SdkError<E>,
) -> GatewayError {
    let detail = crate::error::describe(e);
    if matches!(
        e.code(),
        Some("ResourceNotFoundException" | "ParameterNotFound")
    ) {
        return GatewayError::Config(format!("secret {name} does not exist"));
    }
    GatewayError::port("secrets", format!("secret {name}: {detail}"))
}

impl AwsSecrets {
    /// From an SDK configuration.
    pub fn from_conf(conf: &aws_config::SdkConfig) -> Self {
        AwsSecrets {
            secrets: aws_sdk_secretsmanager::Client::new(conf),
            ssm: aws_sdk_ssm::Client::new(conf),
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    async fn fetch(&self, name: &str) -> Result<String> {
        if let Some(parameter) = name.strip_prefix("ssm:") {
            let out = self
                .ssm
                .get_parameter()
                .name(parameter)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| port(name, &e))?;
            return out
                .parameter()
                .and_then(|p| p.value())
                .map(str::to_string)
                .ok_or_else(|| GatewayError::Config(format!("secret {name} has no value")));
        }
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| port(name, &e))?;
        out.secret_string()
            .map(str::to_string)
            .ok_or_else(|| GatewayError::Config(format!("secret {name} has no text value")))
    }
}

impl Secrets for AwsSecrets {
    async fn secret(&self, name: &str) -> Result<String> {
        if let Some(v) = self
            .cache
            .lock()
            .map_err(|_| GatewayError::port("secrets", "cache poisoned"))?
            .get(name)
        {
            return Ok(v.clone());
        }
        let value = self.fetch(name).await?;
        self.cache
            .lock()
            .map_err(|_| GatewayError::port("secrets", "cache poisoned"))?
            .insert(name.to_string(), value.clone());
        Ok(value)
    }
}
