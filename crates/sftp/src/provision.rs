//! Enabling, rotating, describing and disabling a customer's SFTP user (seed sections 1.2 and
//! 1.4) over a Transfer Family server, through the [`TransferApi`] port. The rules live here;
//! the AWS SDK adapter (crate `gateway-aws`) only translates calls.
//!
//! One account may have several users (one per system that connects); each user carries the
//! account in a tag, and every request names both the account and the user, so nothing needs to
//! list the server's users (which Transfer Family's API can do only page by page, and moto not
//! at all). A user that is not tagged with the account asking is reported as not found.

use std::future::Future;

use serde::{Deserialize, Serialize, Serializer};

use crate::error::{Result, SftpError};
use crate::keys::{self, KeyType, PrivateKeyFormat, Secret};
use crate::policy;
use crate::username;

/// The tag naming the account a user belongs to.
pub const ACCOUNT_TAG: &str = "mftg:account";

/// What the gateway needs to know of the Transfer Family server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// `s-...`.
    pub server_id: String,
    /// The host name users connect to.
    pub host: String,
    /// `SERVICE_MANAGED`, `API_GATEWAY`, `AWS_DIRECTORY_SERVICE` or `AWS_LAMBDA`.
    pub identity_provider: String,
    /// `SFTP`, `FTPS`, `FTP`, `AS2`.
    pub protocols: Vec<String>,
    /// `ONLINE`, `OFFLINE`, `STARTING`, ...
    pub state: String,
}

/// A user to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The user name.
    pub username: String,
    /// The IAM role the server assumes for the user.
    pub role_arn: String,
    /// Logical home directory mappings, `(entry, target)`.
    pub home: Vec<(String, String)>,
    /// The session policy (JSON).
    pub policy: String,
    /// The user's one public key, as an `authorized_keys` line.
    pub public_key: String,
    /// Tags to put on the Transfer Family user (the customer's own labels).
    pub tags: Vec<(String, String)>,
}

/// A public key installed for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledKey {
    /// The server's ID for it.
    pub id: String,
    /// The key as an `authorized_keys` line.
    pub body: String,
}

/// A user as the server describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name.
    pub username: String,
    /// The tags the user carries.
    pub tags: Vec<(String, String)>,
    /// Its public keys.
    pub keys: Vec<InstalledKey>,
    /// Its logical home directory mappings.
    pub home: Vec<(String, String)>,
}

impl UserInfo {
    fn account(&self) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == ACCOUNT_TAG)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a Transfer Family call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The user (or key) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A user of that name exists already.
    #[error("already exists: {0}")]
    Exists(String),
    /// Anything else (network, permissions, throttling, the server itself missing).
    #[error("{0}")]
    Other(String),
}

impl From<ApiError> for SftpError {
    fn from(e: ApiError) -> Self {
        SftpError::Api(e.to_string())
    }
}

/// The Transfer Family calls the provisioner makes, against one server.
pub trait TransferApi: Send + Sync {
    /// The server the users live on.
    fn server(&self) -> impl Future<Output = Result<ServerInfo, ApiError>> + Send;
    /// Creates a user with one public key.
    fn create_user(&self, user: &NewUser) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// Describes a user; `None` if there is none of that name.
    fn user(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<Option<UserInfo>, ApiError>> + Send;
    /// Adds a public key to a user; returns its ID.
    fn import_key(
        &self,
        username: &str,
        public_key: &str,
    ) -> impl Future<Output = Result<String, ApiError>> + Send;
    /// Removes one of a user's public keys.
    fn delete_key(
        &self,
        username: &str,
        key_id: &str,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// Deletes a user and its keys.
    fn delete_user(&self, username: &str) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// Which key a user gets.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum KeyChoice {
    /// Generate a key pair; the private key is returned once.
    Generate {
        /// Key type (default Ed25519).
        #[serde(rename = "type", default)]
        key_type: KeyType,
        /// Private key format (default PuTTY `.ppk` version 3).
        #[serde(default)]
        format: PrivateKeyFormat,
        /// Passphrase protecting the private key file.
        #[serde(default)]
        passphrase: Option<Secret>,
    },
    /// Use the public key of a key pair the user has.
    Existing {
        /// One `authorized_keys` line or an RFC 4716 block.
        public_key: String,
    },
}

/// A provisioning request (the `sftp-provisioner` Lambda's input; see `events/`).
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Create the user with its first key.
    Enable {
        /// The customer's AWS account ID (the bucket is `mftg-<account_id>`).
        account_id: String,
        /// The SFTP user name.
        username: String,
        /// A key pair to generate, or the customer's own public key.
        key: KeyChoice,
    },
    /// Give the user a new key; the old ones are removed once the new one is installed.
    Rotate {
        /// The customer's AWS account ID (the bucket is `mftg-<account_id>`).
        account_id: String,
        /// The SFTP user name.
        username: String,
        /// The new key.
        key: KeyChoice,
    },
    /// Who the user is and how to connect.
    Describe {
        /// The customer's AWS account ID (the bucket is `mftg-<account_id>`).
        account_id: String,
        /// The SFTP user name.
        username: String,
    },
    /// Delete the user and its keys.
    Disable {
        /// The customer's AWS account ID (the bucket is `mftg-<account_id>`).
        account_id: String,
        /// The SFTP user name.
        username: String,
    },
}

/// A public key, as reported back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeySummary {
    /// The server's ID for it (empty if not known).
    pub id: String,
    /// `SHA256:...` (`unreadable` if the stored key cannot be parsed).
    pub fingerprint: String,
    /// The key type, e.g. `ssh-ed25519`.
    pub algorithm: String,
}

/// A generated private key, handed out once.
#[derive(Debug, Serialize)]
pub struct PrivateKeyFile {
    /// A file name to save it under.
    pub file_name: String,
    /// `openssh`, `ppk3` or `ppk2`.
    #[serde(serialize_with = "display")]
    pub format: PrivateKeyFormat,
    /// Whether a passphrase protects it.
    pub encrypted: bool,
    /// The file's contents. Returned in this reply only: nothing stores it.
    #[serde(serialize_with = "expose")]
    pub contents: Secret,
}

/// A user's SFTP access.
#[derive(Debug, Serialize)]
pub struct Access {
    /// The customer's AWS account ID: the user reaches `mftg-<account-id>` only.
    pub account_id: String,
    /// The SFTP user name.
    pub username: String,
    /// The Transfer Family server.
    pub server_id: String,
    /// The host to connect to (port 22).
    pub host: String,
    /// The bucket the user's `/` maps to.
    pub bucket: String,
    /// The user's public keys.
    pub keys: Vec<KeySummary>,
    /// The exact command to connect with OpenSSH.
    pub connect_command: String,
    /// A generated private key (enable and rotate with `generate` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<PrivateKeyFile>,
    /// Things the user should know (a server that is not online, an old key that could not be
    /// removed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What a request did.
#[derive(Debug, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// The user was created.
    Enabled(Access),
    /// The user has a new key.
    Rotated(Access),
    /// The user as it is.
    Described(Access),
    /// The user and its keys are gone.
    Disabled {
        /// The customer's AWS account ID (the bucket is `mftg-<account_id>`).
        account_id: String,
        /// The SFTP user name.
        username: String,
        /// The keys that were removed with it.
        removed_keys: Vec<KeySummary>,
    },
}

fn display<S: Serializer>(v: &PrivateKeyFormat, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn expose<S: Serializer>(v: &Secret, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(v.expose())
}

/// How users are set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The IAM role users' sessions assume (the session policy narrows it to the account).
    pub role_arn: String,
    /// A host name users connect to instead of the server's own (a custom DNS name).
    pub host: Option<String>,
}

/// Provisions users on one Transfer Family server.
#[derive(Debug)]
pub struct Provisioner<T> {
    api: T,
    settings: Settings,
}

/// A key ready to install.
struct NewKey {
    line: String,
    summary: KeySummary,
    private: Option<PrivateKeyFile>,
}

impl<T: TransferApi> Provisioner<T> {
    /// A provisioner over `api`.
    pub fn new(api: T, settings: Settings) -> Self {
        Provisioner { api, settings }
    }

    /// The Transfer Family port.
    pub fn api(&self) -> &T {
        &self.api
    }

    /// Carries out a request.
    pub async fn handle(&self, request: Request) -> Result<Outcome> {
        match request {
            Request::Enable {
                account_id,
                username,
                key,
            } => self
                .enable(&account_id, &username, key)
                .await
                .map(Outcome::Enabled),
            Request::Rotate {
                account_id,
                username,
                key,
            } => self
                .rotate(&account_id, &username, key)
                .await
                .map(Outcome::Rotated),
            Request::Describe {
                account_id,
                username,
            } => self
                .describe(&account_id, &username)
                .await
                .map(Outcome::Described),
            Request::Disable {
                account_id,
                username,
            } => self.disable(&account_id, &username).await,
        }
    }

    /// Creates the user with its first key.
    pub async fn enable(&self, account: &str, name: &str, key: KeyChoice) -> Result<Access> {
        policy::check_account_id(account)?;
        username::check(name)?;
        let new_key = make_key(name, key)?;
        let server = self.usable_server().await?;
        match self.api.user(name).await? {
            Some(u) if u.account() == Some(account) => {
                return Err(SftpError::AlreadyEnabled(name.into()))
            }
            Some(_) => return Err(SftpError::NameTaken(name.into())),
            None => {}
        }
        let user = NewUser {
            username: name.into(),
            role_arn: self.settings.role_arn.clone(),
            home: vec![policy::home_mapping(account)],
            policy: policy::session_policy(account).to_string(),
            public_key: new_key.line.clone(),
            tags: policy::tags(account),
        };
        self.api.create_user(&user).await.map_err(|e| match e {
            // Someone else took the name between our look and the creation.
            ApiError::Exists(_) => SftpError::NameTaken(name.into()),
            other => other.into(),
        })?;
        // The key's ID is the server's; read it back (a failure here loses nothing).
        let mut summary = new_key.summary;
        if let Ok(Some(created)) = self.api.user(name).await {
            if let Some(k) = created
                .keys
                .iter()
                .find(|k| same_key(&k.body, &new_key.line))
            {
                summary.id = k.id.clone();
            }
        }
        Ok(self.access(account, name, &server, vec![summary], new_key.private))
    }

    /// Installs a new key, then removes the old ones.
    pub async fn rotate(&self, account: &str, name: &str, key: KeyChoice) -> Result<Access> {
        policy::check_account_id(account)?;
        username::check(name)?;
        let new_key = make_key(name, key)?;
        let server = self.usable_server().await?;
        let user = self.owned_user(account, name).await?;
        if user.keys.iter().any(|k| same_key(&k.body, &new_key.line)) {
            return Err(SftpError::SameKey(new_key.summary.fingerprint));
        }
        let mut summary = new_key.summary;
        summary.id = self.api.import_key(name, &new_key.line).await?;
        let mut keys = vec![summary];
        let mut access_warnings = Vec::new();
        for old in &user.keys {
            match self.api.delete_key(name, &old.id).await {
                Ok(()) | Err(ApiError::NotFound(_)) => {}
                Err(e) => {
                    let s = summarize(old);
                    access_warnings.push(format!(
                        "the old key {} is still installed ({e}); rotate again or remove it",
                        s.fingerprint
                    ));
                    keys.push(s);
                }
            }
        }
        let mut access = self.access(account, name, &server, keys, new_key.private);
        access.warnings.extend(access_warnings);
        Ok(access)
    }

    /// The user as it is.
    pub async fn describe(&self, account: &str, name: &str) -> Result<Access> {
        policy::check_account_id(account)?;
        username::check(name)?;
        let server = self.api.server().await?;
        let user = self.owned_user(account, name).await?;
        let keys = user.keys.iter().map(summarize).collect();
        Ok(self.access(account, name, &server, keys, None))
    }

    /// Deletes the user and its keys.
    pub async fn disable(&self, account: &str, name: &str) -> Result<Outcome> {
        policy::check_account_id(account)?;
        username::check(name)?;
        let user = self.owned_user(account, name).await?;
        match self.api.delete_user(name).await {
            Ok(()) | Err(ApiError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Outcome::Disabled {
            account_id: account.into(),
            username: name.into(),
            removed_keys: user.keys.iter().map(summarize).collect(),
        })
    }

    async fn owned_user(&self, account: &str, name: &str) -> Result<UserInfo> {
        match self.api.user(name).await? {
            Some(u) if u.account() == Some(account) => Ok(u),
            // Another account's user is reported exactly like a missing one.
            _ => Err(SftpError::NotEnabled {
                account: account.into(),
                username: name.into(),
            }),
        }
    }

    async fn usable_server(&self) -> Result<ServerInfo> {
        let server = self.api.server().await?;
        if server.identity_provider != "SERVICE_MANAGED" {
            return Err(SftpError::Server(format!(
                "server {} uses identity provider {}; key-based users need SERVICE_MANAGED",
                server.server_id, server.identity_provider
            )));
        }
        if !server.protocols.iter().any(|p| p == "SFTP") {
            return Err(SftpError::Server(format!(
                "server {} does not offer SFTP (protocols: {})",
                server.server_id,
                server.protocols.join(", ")
            )));
        }
        Ok(server)
    }

    fn access(
        &self,
        account: &str,
        name: &str,
        server: &ServerInfo,
        keys: Vec<KeySummary>,
        private_key: Option<PrivateKeyFile>,
    ) -> Access {
        let host = self
            .settings
            .host
            .clone()
            .unwrap_or_else(|| server.host.clone());
        let key_file = private_key
            .as_ref()
            .map_or("<private-key>", |k| k.file_name.as_str());
        let connect_command = policy::connect_command(name, &host, key_file);
        let mut warnings: Vec<String> = server_warnings(server).into_iter().collect();
        if let Some(k) = &private_key {
            if k.format != PrivateKeyFormat::OpenSsh {
                warnings.push(format!(
                    "{} is a PuTTY key: load it in Pageant/WinSCP/FileZilla, or convert it for OpenSSH with `puttygen {} -O private-openssh -o {}`",
                    k.file_name,
                    k.file_name,
                    k.file_name.trim_end_matches(".ppk")
                ));
            }
        }
        Access {
            account_id: account.into(),
            username: name.into(),
            server_id: server.server_id.clone(),
            host,
            bucket: policy::bucket(account),
            keys,
            connect_command,
            private_key,
            warnings,
        }
    }
}

fn server_warnings(server: &ServerInfo) -> Option<String> {
    (server.state != "ONLINE").then(|| {
        format!(
            "server {} is {}; users cannot connect until it is online",
            server.server_id, server.state
        )
    })
}

/// Compares keys by type and key data, ignoring comments.
fn same_key(a: &str, b: &str) -> bool {
    let core = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    core(a) == core(b)
}

fn summarize(k: &InstalledKey) -> KeySummary {
    KeySummary {
        id: k.id.clone(),
        fingerprint: keys::fingerprint_of(&k.body).unwrap_or_else(|| "unreadable".into()),
        algorithm: k.body.split_whitespace().next().unwrap_or("").into(),
    }
}

/// The file name a generated private key is handed out under: `<user>_<type>` for OpenSSH (as
/// `ssh-keygen` names keys), `<user>_<type>.ppk` for PuTTY.
pub fn key_file_name(name: &str, key_type: KeyType, format: PrivateKeyFormat) -> String {
    match format {
        PrivateKeyFormat::OpenSsh => format!("{name}_{key_type}"),
        _ => format!("{name}_{key_type}.{}", format.extension()),
    }
}

fn make_key(name: &str, choice: KeyChoice) -> Result<NewKey> {
    match choice {
        KeyChoice::Existing { public_key } => {
            let accepted = keys::check_public_key(&public_key)?;
            Ok(NewKey {
                summary: KeySummary {
                    id: String::new(),
                    fingerprint: accepted.fingerprint,
                    algorithm: accepted.algorithm,
                },
                line: accepted.line,
                private: None,
            })
        }
        KeyChoice::Generate {
            key_type,
            format,
            passphrase,
        } => {
            let pass = passphrase.as_ref().map(Secret::expose);
            let generated = keys::generate(key_type, format, pass, &format!("{name}@mftg"))?;
            let algorithm = generated
                .public_key
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string();
            let file_name = key_file_name(name, key_type, format);
            Ok(NewKey {
                summary: KeySummary {
                    id: String::new(),
                    fingerprint: generated.fingerprint,
                    algorithm,
                },
                line: generated.public_key,
                private: Some(PrivateKeyFile {
                    file_name,
                    format,
                    encrypted: pass.is_some_and(|p| !p.is_empty()),
                    contents: generated.private_key,
                }),
            })
        }
    }
}
