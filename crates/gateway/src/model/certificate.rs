//! Where a station's or partner's certificate stands: what the console shows, what metrics
//! count, what a `certificate-expiring` event says.

use as2::keys::{expiry, issuer_name, subject_name, Expiry};
use openssl::x509::X509;
use serde::{Deserialize, Serialize};

/// Whose certificate it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertificateKind {
    /// Ours (identity.jks).
    Station,
    /// A partner's (trust.jks).
    Partner,
}

impl CertificateKind {
    /// `station` or `partner`.
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateKind::Station => "station",
            CertificateKind::Partner => "partner",
        }
    }
}

/// Where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertificateState {
    /// Valid for more than [`as2::keys::EXPIRY_WARNING_DAYS`] days.
    Valid,
    /// Ends within [`as2::keys::EXPIRY_WARNING_DAYS`] days.
    Expiring,
    /// Past its end.
    Expired,
    /// Not in the keystore, or not readable.
    Missing,
}

impl CertificateState {
    /// `valid`, `expiring`, `expired` or `missing`.
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateState::Valid => "valid",
            CertificateState::Expiring => "expiring",
            CertificateState::Expired => "expired",
            CertificateState::Missing => "missing",
        }
    }
}

/// One certificate the settings name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// Whose.
    pub kind: CertificateKind,
    /// The station's AS2 ID, or `STATION/PARTNER`.
    pub owner: String,
    /// Its alias in the keystore.
    pub alias: String,
    /// Its subject, `CN=...`.
    pub subject: Option<String>,
    /// Its issuer.
    pub issuer: Option<String>,
    /// Valid from.
    pub not_before: Option<String>,
    /// Valid until.
    pub not_after: Option<String>,
    /// Whole days left (negative once past).
    pub days_left: Option<i64>,
    /// Where it stands.
    pub state: CertificateState,
    /// Why it is `missing`.
    pub problem: Option<String>,
}

impl Certificate {
    /// `cert` (or why it could not be read) at `now`.
    pub fn of(
        kind: CertificateKind,
        owner: String,
        alias: String,
        cert: crate::Result<X509>,
        now: as2::UnixTime,
    ) -> Self {
        let missing = |problem: String| Certificate {
            kind,
            owner: owner.clone(),
            alias: alias.clone(),
            subject: None,
            issuer: None,
            not_before: None,
            not_after: None,
            days_left: None,
            state: CertificateState::Missing,
            problem: Some(problem),
        };
        let c = match cert {
            Ok(c) => c,
            Err(e) => return missing(e.to_string()),
        };
        let state = match expiry(&c, now) {
            Expiry::Valid(_) => CertificateState::Valid,
            Expiry::Soon(_) => CertificateState::Expiring,
            Expiry::Expired => CertificateState::Expired,
        };
        Certificate {
            kind,
            subject: Some(subject_name(&c)),
            issuer: Some(issuer_name(&c)),
            not_before: Some(c.not_before().to_string()),
            not_after: Some(c.not_after().to_string()),
            days_left: as2::keys::days_left(&c, now).ok(),
            state,
            problem: None,
            owner,
            alias,
        }
    }

    /// Whether it needs an operator: expired, or ending within 30 days.
    pub fn is_ending(&self) -> bool {
        matches!(
            self.state,
            CertificateState::Expiring | CertificateState::Expired
        )
    }
}
