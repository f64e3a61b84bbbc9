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
        /// The name.
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
