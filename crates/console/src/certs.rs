//! The certificates the gateway's settings name: each station's own and each partner's, with
//! where it stands (valid, expiring within 30 days, expired) or why it cannot be read.

use as2::keys::{expiry, issuer_name, subject_name, Expiry};
use gateway::ports::{Clock as _, Keystore as _, Ports as _};
use serde::Serialize;

use crate::Backend;

/// One certificate, for people and programs.
#[derive(Debug, Clone, Serialize)]
pub struct Certificate {
    /// `station` (ours, identity.jks) or `partner` (theirs, trust.jks).
    pub kind: &'static str,
    /// Whose it is: the station's AS2 ID, or `STATION/PARTNER`.
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
    /// `valid`, `expiring` (within 30 days), `expired`, or `missing` (not in the keystore, or
    /// not readable).
    pub state: &'static str,
    /// Why it is `missing`.
    pub problem: Option<String>,
}

impl Certificate {
    fn of(
        kind: &'static str,
        owner: String,
        alias: String,
        cert: gateway::Result<openssl::x509::X509>,
        now: as2::UnixTime,
    ) -> Self {
        match cert {
            Ok(c) => {
                let (state, days) = match expiry(&c, now) {
                    Expiry::Valid(d) => ("valid", Some(d)),
                    Expiry::Soon(d) => ("expiring", Some(d)),
                    Expiry::Expired => ("expired", as2::keys::days_left(&c, now).ok()),
                };
                Certificate {
                    kind,
                    owner,
                    alias,
                    subject: Some(subject_name(&c)),
                    issuer: Some(issuer_name(&c)),
                    not_before: Some(c.not_before().to_string()),
                    not_after: Some(c.not_after().to_string()),
                    days_left: days,
                    state,
                    problem: None,
                }
            }
            Err(e) => Certificate {
                kind,
                owner,
                alias,
                subject: None,
                issuer: None,
                not_before: None,
                not_after: None,
                days_left: None,
                state: "missing",
                problem: Some(e.to_string()),
            },
        }
    }
}

/// Every station's and partner's certificate.
pub async fn certificates<B: Backend>(backend: &B) -> gateway::Result<Vec<Certificate>> {
    let gateway = backend.gateway();
    let keys = gateway.ports.keys();
    let now = as2::UnixTime(gateway.ports.clock().now().0 / 1000);
    let mut out = Vec::new();
    for s in backend.stations().await? {
        let cert = keys.identity(&s.key_alias).await.map(|i| i.certificate);
        out.push(Certificate::of(
            "station",
            s.as2_id.clone(),
            s.key_alias.clone(),
            cert,
            now,
        ));
    }
    for p in backend.partnerships().await? {
        let cert = keys.partner_certificate(&p.certificate_alias).await;
        out.push(Certificate::of(
            "partner",
            format!("{}/{}", p.station, p.partner),
            p.certificate_alias.clone(),
            cert,
            now,
        ));
    }
    Ok(out)
}
