//! One error type for the engine, whose variants say what went wrong in AS2's own terms.

use std::fmt;

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong. Every variant maps to the MDN disposition a receiver must answer with
/// ([`Error::disposition`]). Messages never contain key material or passwords.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A header the protocol requires is absent.
    #[error("missing required header {0}")]
    MissingHeader(&'static str),
    /// A header is present but unusable.
    #[error("invalid {name} header: {reason}")]
    InvalidHeader {
        /// The header that is wrong.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A header block is larger than the configured limit.
    #[error("header block exceeds the {limit}-byte limit")]
    HeadersTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The MIME structure cannot be parsed (boundaries, header syntax, transfer encoding).
    #[error("malformed MIME: {0}")]
    MalformedMime(String),
    /// A CMS (PKCS#7) structure is truncated or not what its MIME type claims.
    #[error("malformed CMS {what}: {detail}")]
    MalformedCms {
        /// Which structure was being read.
        what: CmsStructure,
        /// What the parser found.
        detail: String,
    },
    /// None of our private keys is a recipient of the encrypted message.
    #[error("no private key of ours matches a recipient of the encrypted message")]
    NoMatchingRecipient,
    /// The enveloped data could not be decrypted with the matching key.
    #[error("decryption failed: {0}")]
    DecryptionFailed(String),
    /// The signature was made by a certificate that is not configured for the partner.
    #[error("the message is signed by a certificate not configured for this partner ({0})")]
    UnknownSigner(String),
    /// The signature value does not verify with the partner's certificate.
    #[error("signature verification failed: {0}")]
    AuthenticationFailed(String),
    /// The signed content was changed after signing (digest mismatch).
    #[error("the signed content does not match its signature (content altered in transit)")]
    IntegrityCheckFailed,
    /// A certificate was outside its validity period at the check time.
    #[error(
        "certificate {subject} is not valid at the check time (valid {not_before} to {not_after})"
    )]
    CertificateNotValid {
        /// Subject of the certificate.
        subject: String,
        /// Start of validity.
        not_before: String,
        /// End of validity.
        not_after: String,
    },
    /// Compressed data could not be inflated.
    #[error("decompression failed: {0}")]
    DecompressionFailed(String),
    /// Compressed data inflates past the configured limit (a decompression bomb, or simply too big).
    #[error("compressed content inflates past the {limit}-byte limit")]
    DecompressionLimit {
        /// The limit in bytes.
        limit: u64,
    },
    /// An algorithm we do not implement (or refuse to use).
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// What the streaming opener cannot check without holding the whole message (the in-memory
    /// opener can).
    #[error("not checkable as the message streams: {0}")]
    NotStreamable(String),
    /// The message is weaker than the partnership's policy allows.
    #[error("insufficient message security: {0}")]
    InsufficientSecurity(String),
    /// Layers nested deeper than the engine allows.
    #[error("message layers nested deeper than {0}")]
    TooDeeplyNested(usize),
    /// The body is not an MDN.
    #[error("not an MDN: {0}")]
    NotAnMdn(String),
    /// A key, certificate or keystore could not be loaded.
    #[error("key material: {0}")]
    Key(String),
    /// A build option is inconsistent (for example encryption without a certificate).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// OpenSSL failed where it should not have.
    #[error("cryptographic library error: {0}")]
    Crypto(String),
}

impl From<openssl::error::ErrorStack> for Error {
    fn from(e: openssl::error::ErrorStack) -> Self {
        Error::Crypto(e.to_string())
    }
}

/// The disposition an MDN reports (RFC 4130 section 7.4.3 and RFC 3798).
/// Which CMS structure was being read when it turned out malformed: it decides the receipt's
/// disposition (a broken envelope is `decryption-failed`, a broken signature
/// `authentication-failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmsStructure {
    /// The outer ContentInfo, before its type is known.
    ContentInfo,
    /// SignedData.
    SignedData,
    /// EnvelopedData or AuthEnvelopedData.
    EnvelopedData,
    /// CompressedData.
    CompressedData,
}

impl std::fmt::Display for CmsStructure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CmsStructure::ContentInfo => "content-info",
            CmsStructure::SignedData => "signed-data",
            CmsStructure::EnvelopedData => "enveloped-data",
            CmsStructure::CompressedData => "compressed-data",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// `processed`: the message was received and delivered.
    Processed,
    /// `processed/warning: <modifier>`, for example `duplicate-document`.
    Warning(String),
    /// `processed/error: <modifier>`, for example `decryption-failed`.
    Error(String),
    /// `failed/failure: <modifier>`, for example `unsupported format`.
    Failed(String),
}

impl Disposition {
    /// `processed/warning: duplicate-document`.
    pub fn duplicate_document() -> Self {
        Disposition::Warning("duplicate-document".into())
    }

    /// True for `processed` and `processed/warning`: the payload was delivered.
    pub fn is_delivered(&self) -> bool {
        matches!(self, Disposition::Processed | Disposition::Warning(_))
    }

    /// The text after `automatic-action/MDN-sent-automatically; `.
    pub fn to_field(&self) -> String {
        match self {
            Disposition::Processed => "processed".into(),
            Disposition::Warning(m) => format!("processed/warning: {m}"),
            Disposition::Error(m) => format!("processed/error: {m}"),
            Disposition::Failed(m) => format!("failed/failure: {m}"),
        }
    }

    /// Parses the disposition type and modifier part of a `Disposition` field (after the `;`).
    pub fn parse_field(s: &str) -> Option<Self> {
        let s = s.trim();
        let (kind, modifier) = match s.split_once(':') {
            Some((k, m)) => (k.trim(), m.trim().to_string()),
            None => (s, String::new()),
        };
        let (ty, sub) = match kind.split_once('/') {
            Some((t, m)) => (t.trim(), m.trim()),
            None => (kind, ""),
        };
        let ty = ty.to_ascii_lowercase();
        let sub = sub.to_ascii_lowercase();
        match (ty.as_str(), sub.as_str()) {
            ("processed", "") => Some(Disposition::Processed),
            ("processed", "warning") => Some(Disposition::Warning(modifier)),
            ("processed", "error") => Some(Disposition::Error(modifier)),
            ("processed", _) => Some(Disposition::Error(modifier)),
            ("failed", _) => Some(Disposition::Failed(modifier)),
            // RFC 3798 types a receiver may still send.
            ("denied" | "deleted" | "dispatched" | "displayed", _) => Some(Disposition::Failed(
                format!("{ty} {modifier}").trim().to_string(),
            )),
            _ => None,
        }
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_field())
    }
}

impl Error {
    /// The MDN disposition a receiver answers this error with.
    pub fn disposition(&self) -> Disposition {
        let modifier = match self {
            Error::NoMatchingRecipient | Error::DecryptionFailed(_) => "decryption-failed",
            Error::UnknownSigner(_)
            | Error::AuthenticationFailed(_)
            | Error::CertificateNotValid { .. } => "authentication-failed",
            Error::IntegrityCheckFailed => "integrity-check-failed",
            Error::DecompressionFailed(_) | Error::DecompressionLimit { .. } => {
                "decompression-failed"
            }
            Error::InsufficientSecurity(_)
            | Error::UnsupportedAlgorithm(_)
            | Error::NotStreamable(_) => "insufficient-message-security",
            Error::MalformedCms { what, .. } => match what {
                CmsStructure::EnvelopedData => "decryption-failed",
                CmsStructure::CompressedData => "decompression-failed",
                CmsStructure::SignedData => "authentication-failed",
                CmsStructure::ContentInfo => "unexpected-processing-error",
            },
            _ => "unexpected-processing-error",
        };
        Disposition::Error(modifier.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disposition_fields_round_trip() {
        for d in [
            Disposition::Processed,
            Disposition::duplicate_document(),
            Disposition::Error("decryption-failed".into()),
            Disposition::Failed("unsupported format".into()),
        ] {
            assert_eq!(Disposition::parse_field(&d.to_field()), Some(d));
        }
        assert_eq!(
            Disposition::parse_field(" Processed/Error : Authentication-Failed"),
            Some(Disposition::Error("Authentication-Failed".into()))
        );
        assert_eq!(Disposition::parse_field("nonsense"), None);
    }

    #[test]
    fn errors_map_to_rfc_modifiers() {
        let d = |e: Error| e.disposition().to_field();
        assert_eq!(
            d(Error::NoMatchingRecipient),
            "processed/error: decryption-failed"
        );
        assert_eq!(
            d(Error::IntegrityCheckFailed),
            "processed/error: integrity-check-failed"
        );
        assert_eq!(
            d(Error::DecompressionLimit { limit: 1 }),
            "processed/error: decompression-failed"
        );
        assert_eq!(
            d(Error::InsufficientSecurity("x".into())),
            "processed/error: insufficient-message-security"
        );
        assert_eq!(
            d(Error::MalformedMime("x".into())),
            "processed/error: unexpected-processing-error"
        );
    }
}
