//! What a gateway needs before it can trade, checked one thing at a time: each station's key and
//! each partner's certificate (and TLS certificates) in the keystores and valid, each
//! partnership's settings usable, its HTTP password readable. The embedded gateway's preflight
//! and `mftg doctor` on either backend print the same lines.

use as2::keys::Expiry;
use openssl::x509::X509;

use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::model::{Partnership, Station};
use crate::ports::{Clock, Keystore, Ports, Secrets};
use crate::time::Millis;

/// One thing looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`station ALPHA: key "alpha"`).
    pub what: String,
    /// What was found.
    pub verdict: Verdict,
    /// Whether the gateway refuses to start while it fails.
    pub blocks_start: bool,
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// As it should be; the detail says what was found.
    Ok(String),
    /// Works, but not for long (a certificate expiring within 30 days).
    Warning(String),
    /// Does not work.
    Failed(String),
}

impl Check {
    /// Found as it should be.
    pub fn ok(what: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            what: what.into(),
            verdict: Verdict::Ok(detail.into()),
            blocks_start: false,
        }
    }

    /// Works, but needs looking at.
    pub fn warning(what: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            what: what.into(),
            verdict: Verdict::Warning(detail.into()),
            blocks_start: false,
        }
    }

    /// Does not work, and the gateway cannot start without it.
    pub fn blocking(what: impl Into<String>, why: impl Into<String>) -> Check {
        Check {
            what: what.into(),
            verdict: Verdict::Failed(why.into()),
            blocks_start: true,
        }
    }

    /// `Ok(detail)` as [`Check::ok`], `Err(why)` as [`Check::blocking`].
    pub fn of(what: impl Into<String>, result: Result<String, String>) -> Check {
        match result {
            Ok(d) => Check::ok(what, d),
            Err(e) => Check::blocking(what, e),
        }
    }

    /// A certificate found: valid, expiring soon ([`as2::keys::expiry`]), or expired (which
    /// fails the check but does not stop the gateway).
    pub fn certificate(what: impl Into<String>, cert: &X509, now: Millis) -> Check {
        let subject = as2::keys::subject_name(cert);
        let verdict = match as2::keys::expiry(cert, now.unix()) {
            Expiry::Expired => Verdict::Failed(format!("{subject}: certificate has EXPIRED")),
            Expiry::Soon(left) => Verdict::Warning(format!(
                "{subject}: certificate expires soon ({left} days left)"
            )),
            Expiry::Valid(left) => Verdict::Ok(format!("{subject}, {left} days left")),
        };
        Check {
            what: what.into(),
            verdict,
            blocks_start: false,
        }
    }

    /// Whether it failed.
    pub fn failed(&self) -> bool {
        matches!(self.verdict, Verdict::Failed(_))
    }
}

/// A keystore error as a line: a missing keystore says which one.
fn describe(e: &GatewayError) -> String {
    match e {
        GatewayError::NotFound(what) => format!("{what} does not exist"),
        e => e.to_string(),
    }
}

impl<P: Ports> Gateway<P> {
    /// One check per station key, partner certificate, TLS certificate, partnership's settings
    /// and HTTP password, through the gateway's keystore and secrets.
    pub async fn setting_checks(
        &self,
        stations: &[Station],
        partnerships: &[Partnership],
    ) -> Vec<Check> {
        let keys = self.ports.keys();
        let now = self.ports.clock().now();
        let mut out = Vec::new();
        for s in stations {
            let what = format!("station {}: key {:?}", s.as2_id, s.key_alias);
            out.push(match keys.identity(&s.key_alias).await {
                Ok(id) => Check::certificate(what, &id.certificate, now),
                Err(e) => Check::blocking(what, describe(&e)),
            });
        }
        for p in partnerships {
            let who = format!("partnership {} -> {}", p.station, p.partner);
            let what = format!("{who}: certificate {:?}", p.certificate_alias);
            out.push(match keys.partner_certificate(&p.certificate_alias).await {
                Ok(c) => Check::certificate(what, &c, now),
                Err(e) => Check::blocking(what, describe(&e)),
            });
            out.push(match p.check() {
                Ok(()) => Check::ok(format!("{who}: URL"), p.url.clone()),
                Err(e) => Check::blocking(format!("{who}: settings"), e.to_string()),
            });
            if !stations.iter().any(|s| s.as2_id == p.station) {
                out.push(Check::blocking(
                    format!("{who}: station"),
                    format!("there is no station {}", p.station),
                ));
            }
            for alias in [&p.tls.ca_alias, &p.client_certificate_alias]
                .into_iter()
                .flatten()
            {
                let what = format!("{who}: TLS certificate {alias:?}");
                out.push(match keys.tls_certificate(alias).await {
                    Ok(c) => Check::certificate(what, &c, now),
                    Err(e) => Check::blocking(what, describe(&e)),
                });
            }
            if let Some(a) = &p.auth {
                let what = format!("{who}: HTTP password ({})", a.password_secret);
                out.push(
                    match self.ports.secrets().secret(&a.password_secret).await {
                        Ok(_) => Check::ok(what, "set"),
                        Err(e) => Check::blocking(what, describe(&e)),
                    },
                );
            }
        }
        out
    }
}

impl<P: Ports> Gateway<P> {
    /// Why `station` cannot be saved: its own check, then what `mftg serve` checks before it
    /// starts (its key in the keystore). Empty when it can.
    pub async fn station_refusals(&self, station: &Station) -> Vec<String> {
        if let Err(e) = station.check() {
            return vec![e.to_string()];
        }
        refusals(
            self.setting_checks(std::slice::from_ref(station), &[])
                .await,
        )
    }

    /// Why `partnership` cannot be saved beside `stations`: what `mftg serve` checks of it
    /// before it starts (its settings, its station, its certificates in the keystores, its HTTP
    /// password). Empty when it can.
    pub async fn partnership_refusals(
        &self,
        partnership: &Partnership,
        stations: &[Station],
    ) -> Vec<String> {
        let own: Vec<Station> = stations
            .iter()
            .filter(|s| s.as2_id == partnership.station)
            .cloned()
            .collect();
        // The station's own checks come first (one per station); they are its, not this
        // partnership's.
        let checks = self
            .setting_checks(&own, std::slice::from_ref(partnership))
            .await;
        refusals(checks.into_iter().skip(own.len()).collect())
    }
}

/// The checks that stop the gateway, as lines.
fn refusals(checks: Vec<Check>) -> Vec<String> {
    checks
        .into_iter()
        .filter_map(|c| match c.verdict {
            Verdict::Failed(why) if c.blocks_start => Some(format!("{}: {why}", c.what)),
            _ => None,
        })
        .collect()
}
