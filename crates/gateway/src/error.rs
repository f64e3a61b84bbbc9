//! The domain's errors. Adapter failures arrive as [`GatewayError::Port`] with the port's own
//! message; nothing here carries key material.

/// Result with [`GatewayError`].
pub type Result<T, E = GatewayError> = std::result::Result<T, E>;

/// What went wrong in the gateway.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// A name from the wire or an upload cannot be part of a storage key.
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// No partnership between this station and partner.
    #[error("no partnership between station {station:?} and partner {partner:?}")]
    UnknownPartnership {
        /// Our AS2 ID.
        station: String,
        /// The partner's AS2 ID.
        partner: String,
    },
    /// Configuration that cannot work (a missing key alias, an unusable URL).
    #[error("configuration: {0}")]
    Config(String),
    /// An object, record or key that should exist does not.
    #[error("not found: {0}")]
    NotFound(String),
    /// An operator's request the record's state does not allow (a resend of a message we
    /// received, or of one still in flight): why.
    #[error("refused: {0}")]
    Refused(String),
    /// A concurrent writer changed a record first.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The AS2 engine refused something.
    #[error(transparent)]
    As2(#[from] as2::Error),
    /// A port (storage, database, queue, network) failed.
    #[error("{port}: {message}")]
    Port {
        /// The port that failed: `s3`, `dynamodb`, `database`, `directory store`, ...
        port: &'static str,
        /// Its error, as it describes it.
        message: String,
    },
}

impl GatewayError {
    /// Whether trying again cannot help: a name that cannot be stored, a partnership, key,
    /// object or record that is not there, configuration that cannot work. Conflicts, port
    /// failures and the engine's refusals are not (the next attempt may read other data).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            GatewayError::InvalidName(_)
                | GatewayError::UnknownPartnership { .. }
                | GatewayError::Config(_)
                | GatewayError::NotFound(_)
                | GatewayError::Refused(_)
        )
    }

    /// A port failure.
    pub fn port(port: &'static str, message: impl std::fmt::Display) -> Self {
        GatewayError::Port {
            port,
            message: message.to_string(),
        }
    }
}
