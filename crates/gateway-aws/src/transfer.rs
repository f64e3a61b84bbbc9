//! [`TransferApi`] over AWS Transfer Family: one service-managed server, users with logical home
//! directories and SSH keys.

use aws_sdk_transfer::error::ProvideErrorMetadata;
use aws_sdk_transfer::types::{HomeDirectoryMapEntry, HomeDirectoryType, Tag};
use aws_sdk_transfer::Client;
use sftp::provision::{ApiError, InstalledKey, NewUser, ServerInfo, TransferApi, UserInfo};

/// The tag Transfer Family reads for a server's custom host name.
const CUSTOM_HOSTNAME_TAG: &str = "aws:transfer:customHostname";

/// Users on one Transfer Family server.
#[derive(Debug, Clone)]
pub struct TransferFamily {
    client: Client,
    server_id: String,
}

impl TransferFamily {
    /// Users on `server_id`, through `client`.
    pub fn new(client: Client, server_id: impl Into<String>) -> Self {
        TransferFamily {
            client,
            server_id: server_id.into(),
        }
    }

    /// From an SDK configuration.
    pub fn from_conf(conf: &aws_config::SdkConfig, server_id: impl Into<String>) -> Self {
        Self::new(Client::new(conf), server_id)
    }
}

/// The error codes that mean "no such thing". `ResourceNotFoundException` is AWS's; moto says
/// `UserNotFound`, `PublicKeyNotFound` and `ServerNotFound`.
fn is_not_found(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("ResourceNotFoundException" | "UserNotFound" | "PublicKeyNotFound")
    )
}

fn api_error<E>(what: &str, e: aws_sdk_transfer::error::SdkError<E>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = e.code().map(str::to_string);
    let text = format!("{what}: {}", crate::error::describe(&e));
    match code.as_deref() {
        c if is_not_found(c) => ApiError::NotFound(text),
        Some("ResourceExistsException") => ApiError::Exists(text),
        _ => ApiError::Other(text),
    }
}

impl TransferApi for TransferFamily {
    async fn server(&self) -> Result<ServerInfo, ApiError> {
        let out = self
            .client
            .describe_server()
            .server_id(&self.server_id)
            .send()
            .await
            .map_err(|e| api_error("DescribeServer", e))?;
        let server = out
            .server
            .ok_or_else(|| ApiError::Other("DescribeServer: no server in the reply".into()))?;
        let region = self
            .client
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into());
        let host = server
            .tags()
            .iter()
            .find(|t| t.key() == CUSTOM_HOSTNAME_TAG)
            .map(|t| t.value().to_string())
            .unwrap_or_else(|| {
                format!("{}.server.transfer.{region}.amazonaws.com", self.server_id)
            });
        Ok(ServerInfo {
            server_id: self.server_id.clone(),
            host,
            // A server created without one is service-managed.
            identity_provider: server
                .identity_provider_type()
                .map_or("SERVICE_MANAGED", |t| t.as_str())
                .to_string(),
            protocols: if server.protocols().is_empty() {
                vec!["SFTP".into()]
            } else {
                server
                    .protocols()
                    .iter()
                    .map(|p| p.as_str().to_string())
                    .collect()
            },
            state: server.state().map_or("UNKNOWN", |s| s.as_str()).to_string(),
        })
    }

    async fn create_user(&self, user: &NewUser) -> Result<(), ApiError> {
        let invalid = |e: aws_sdk_transfer::error::BuildError| ApiError::Other(e.to_string());
        let mut req = self
            .client
            .create_user()
            .server_id(&self.server_id)
            .user_name(&user.username)
            .role(&user.role_arn)
            .home_directory_type(HomeDirectoryType::Logical)
            .policy(&user.policy)
            .ssh_public_key_body(&user.public_key);
        for (entry, target) in &user.home {
            req = req.home_directory_mappings(
                HomeDirectoryMapEntry::builder()
                    .entry(entry)
                    .target(target)
                    .build()
                    .map_err(invalid)?,
            );
        }
        for (key, value) in &user.tags {
            req = req.tags(
                Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .map_err(invalid)?,
            );
        }
        req.send()
            .await
            .map_err(|e| api_error("CreateUser", e))
            .map(|_| ())
    }

    async fn user(&self, username: &str) -> Result<Option<UserInfo>, ApiError> {
        let out = match self
            .client
            .describe_user()
            .server_id(&self.server_id)
            .user_name(username)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return match api_error("DescribeUser", e) {
                    ApiError::NotFound(_) => Ok(None),
                    other => Err(other),
                }
            }
        };
        let Some(user) = out.user else {
            return Ok(None);
        };
        Ok(Some(UserInfo {
            username: user.user_name().unwrap_or(username).to_string(),
            tags: user
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
            keys: user
                .ssh_public_keys()
                .iter()
                .map(|k| InstalledKey {
                    id: k.ssh_public_key_id().to_string(),
                    body: k.ssh_public_key_body().to_string(),
                })
                .collect(),
            home: user
                .home_directory_mappings()
                .iter()
                .map(|m| (m.entry().to_string(), m.target().to_string()))
                .collect(),
        }))
    }

    async fn import_key(&self, username: &str, public_key: &str) -> Result<String, ApiError> {
        let out = self
            .client
            .import_ssh_public_key()
            .server_id(&self.server_id)
            .user_name(username)
            .ssh_public_key_body(public_key)
            .send()
            .await
            .map_err(|e| api_error("ImportSshPublicKey", e))?;
        Ok(out.ssh_public_key_id().to_string())
    }

    async fn delete_key(&self, username: &str, key_id: &str) -> Result<(), ApiError> {
        self.client
            .delete_ssh_public_key()
            .server_id(&self.server_id)
            .user_name(username)
            .ssh_public_key_id(key_id)
            .send()
            .await
            .map_err(|e| api_error("DeleteSshPublicKey", e))
            .map(|_| ())
    }

    async fn delete_user(&self, username: &str) -> Result<(), ApiError> {
        self.client
            .delete_user()
            .server_id(&self.server_id)
            .user_name(username)
            .send()
            .await
            .map_err(|e| api_error("DeleteUser", e))
            .map(|_| ())
    }
}
