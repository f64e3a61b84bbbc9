//! Errors that say which rule was broken. None of them ever contains private key material.

/// Result with [`SftpError`].
pub type Result<T, E = SftpError> = std::result::Result<T, E>;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SftpError {
    /// The user name breaks a rule (named in the message).
    #[error("user name {name:?} is not allowed: {rule}")]
    InvalidUsername {
        /// The user name refused.
        name: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// The public key is not one we accept; the reason says why.
    #[error("public key refused: {0}")]
    InvalidPublicKey(String),
    /// A private key was given where a public key belongs. It is not echoed back.
    #[error("this is a private key; paste the public key (the .pub file, or puttygen's \"public key for pasting\") instead, and since the private key has now been shared, consider replacing it")]
    PrivateKeyGiven,
    /// An option that cannot be used.
    #[error("{0}")]
    Unsupported(String),
    /// The cryptographic library failed.
    #[error("key generation failed: {0}")]
    Crypto(String),
    /// The account ID cannot name a bucket (`mftg-<account-id>`).
    #[error("account ID {account:?} is not allowed: {rule}")]
    InvalidAccount {
        /// The account ID as given (shortened).
        account: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// SFTP is already enabled under this user name for this account.
    #[error("SFTP is already enabled for user {0:?}; rotate its key, or disable it first")]
    AlreadyEnabled(String),
    /// The user name belongs to another account on the same server.
    #[error("user name {0:?} is taken; choose another")]
    NameTaken(String),
    /// No SFTP user of this name belongs to the account.
    #[error("account {account:?} has no SFTP user {username:?}")]
    NotEnabled {
        /// The account ID given.
        account: String,
        /// The user name.
        username: String,
    },
    /// The key given for a rotation is the one already installed.
    #[error("that key ({0}) is already the user's key; a rotation needs a new one")]
    SameKey(String),
    /// The Transfer Family server cannot host key-based users for the gateway.
    #[error("the SFTP server cannot be used: {0}")]
    Server(String),
    /// The Transfer Family API failed (network, permissions, throttling); worth retrying.
    #[error("Transfer Family: {0}")]
    Api(String),
}

impl SftpError {
    /// A stable, machine-readable name for the error (the `error` field of a JSON reply).
    pub fn code(&self) -> &'static str {
        match self {
            SftpError::InvalidUsername { .. } => "invalid_username",
            SftpError::InvalidPublicKey(_) => "invalid_public_key",
            SftpError::PrivateKeyGiven => "private_key_given",
            SftpError::Unsupported(_) => "unsupported",
            SftpError::Crypto(_) => "crypto",
            SftpError::InvalidAccount { .. } => "invalid_account",
            SftpError::AlreadyEnabled(_) => "already_enabled",
            SftpError::NameTaken(_) => "name_taken",
            SftpError::NotEnabled { .. } => "not_enabled",
            SftpError::SameKey(_) => "same_key",
            SftpError::Server(_) => "server",
            SftpError::Api(_) => "transfer_api",
        }
    }

    /// Whether the request itself is at fault (retrying it unchanged cannot help).
    pub fn is_request_error(&self) -> bool {
        !matches!(
            self,
            SftpError::Crypto(_) | SftpError::Server(_) | SftpError::Api(_)
        )
    }
}

impl From<openssl::error::ErrorStack> for SftpError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        SftpError::Crypto(e.to_string())
    }
}

impl From<ssh_key::Error> for SftpError {
    fn from(e: ssh_key::Error) -> Self {
        SftpError::Crypto(e.to_string())
    }
}
