//! The gateway: its ports, its settings, and what every workflow shares.

use std::time::Duration;

use as2::algorithm::{KeyTransport, NameStyle, SignatureScheme};
use as2::envelope::MdnRequest;
use as2::keys::Identity;
use as2::mdn::MdnOptions;
use as2::message::{Encryption, MessageOptions, Signing};
use as2::receive::Policy;
use openssl::x509::X509;

use crate::error::{GatewayError, Result};
use crate::failpoint::Failpoints;
use crate::model::{Defaults, MdnMode, MessageRecord, Partnership, RetryPolicy, Station, Status};
use crate::ports::{Keystore, MessageLog, PartnerDirectory, Ports};

/// The largest payload a compressed message may inflate to unless the deployment says otherwise:
/// 1 GiB (the whole payload is held in memory while it is checked).
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 4 << 30;

/// How long same-name uploads after an accepted one are duplicates unless the deployment says
/// otherwise: the seed's 6 hours (section 3.1). The templates' `DuplicateWindowSeconds` default is
/// checked against it.
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(6 * 3600);

/// Gateway-wide settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Same-name uploads within this long of the last accepted one are duplicates (seed: 6 hours).
    pub duplicate_window: Duration,
    /// `Reporting-UA` of our receipts.
    pub reporting_ua: String,
    /// Largest payload a compressed message may inflate to (its MIME headers not counted);
    /// inflating stops as soon as it is passed.
    pub max_decompressed_size: u64,
    /// What stations and partnerships that do not set their own take.
    pub defaults: Defaults,
    /// How long an attempt receiving a message has it before a copy of it may take over.
    pub receive_lease: Duration,
    /// How long a copy of a message being received waits for the first one's receipt.
    pub duplicate_wait: Duration,
    /// Steps made to fail or die, for fault-injection tests (none by default).
    pub failpoints: Failpoints,
    /// Payloads larger than this are sent without being held in memory: read, built and
    /// stored in parts, and sent from the store (binary bodies; base64 ones are built whole).
    pub stream_above: u64,
    /// Where events are POSTed.
    pub webhooks: Vec<crate::model::Webhook>,
}

/// Payloads up to this size are built in memory, larger ones as they are read.
pub const DEFAULT_STREAM_ABOVE: u64 = 8 * 1024 * 1024;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            reporting_ua: format!("mftg/{}", env!("CARGO_PKG_VERSION")),
            max_decompressed_size: DEFAULT_MAX_DECOMPRESSED_BYTES,
            defaults: Defaults::default(),
            receive_lease: Duration::from_secs(300),
            duplicate_wait: Duration::from_secs(30),
            failpoints: Failpoints::default(),
            stream_above: DEFAULT_STREAM_ABOVE,
            webhooks: Vec::new(),
        }
    }
}

/// The gateway over its ports.
#[derive(Debug)]
pub struct Gateway<P: Ports> {
    /// Everything the gateway needs from the world.
    pub ports: P,
    /// Deployment-wide settings (windows, limits, defaults).
    pub settings: Settings,
}

/// What one message is sent or received under (the trading partner agreement): the station, the
/// partnership, the deployment's defaults where they set none, and the keys, read once per
/// message.
pub(crate) struct Agreement {
    pub(crate) station: Station,
    pub(crate) partnership: Partnership,
    /// The station's receipt URL, or the deployment's.
    pub(crate) mdn_url: Option<String>,
    /// The station's Message-ID domain, or the deployment's.
    pub(crate) message_id_domain: String,
    /// The partnership's retry policy, or the deployment's.
    pub(crate) retry: RetryPolicy,
    pub(crate) identity: Identity,
    pub(crate) partner_cert: X509,
}

impl<P: Ports> Gateway<P> {
    /// A gateway with default settings.
    pub fn new(ports: P) -> Self {
        Gateway {
            ports,
            settings: Settings::default(),
        }
    }

    /// The partnership of `station` and `partner` and their keys.
    pub(crate) async fn agreement(&self, station: &str, partner: &str) -> Result<Agreement> {
        let unknown = || GatewayError::UnknownPartnership {
            station: station.into(),
            partner: partner.into(),
        };
        let dir = self.ports.directory();
        let station_cfg = dir.station(station).await?.ok_or_else(unknown)?;
        let partnership = dir
            .partnership(station, partner)
            .await?
            .ok_or_else(unknown)?;
        // Two keystores, each checked for a newer version (an S3 HEAD on AWS): at once.
        let keys = self.ports.keys();
        let (identity, partner_cert) = futures_util::future::try_join(
            keys.identity(&station_cfg.key_alias),
            keys.partner_certificate(&partnership.certificate_alias),
        )
        .await?;
        let defaults = &self.settings.defaults;
        let mdn_url = station_cfg
            .mdn_url
            .clone()
            .or_else(|| defaults.mdn_url.clone());
        let message_id_domain = station_cfg
            .message_id_domain
            .clone()
            .unwrap_or_else(|| defaults.message_id_domain.clone());
        let retry = partnership.retry.unwrap_or(defaults.retry);
        Ok(Agreement {
            station: station_cfg,
            partnership,
            mdn_url,
            message_id_domain,
            retry,
            identity,
            partner_cert,
        })
    }

    /// Applies `change` to `record` and writes it, on top of the revision it was computed from. On
    /// a conflict (someone else wrote the record meanwhile) the record is read again and
    /// `change` applied to what is there now, unless the status it sets is one the record can no
    /// longer move to ([`Status::can_become`]): then nothing is written and `record` is left as
    /// stored. Returns whether the change was written. A move to a final status is logged and
    /// told ([`Gateway::finished`]); a final status left as it was is told if it never was.
    pub(crate) async fn save(
        &self,
        record: &mut MessageRecord,
        change: impl Fn(&mut MessageRecord),
    ) -> Result<bool> {
        for _ in 0..3 {
            let mut next = record.clone();
            change(&mut next);
            if !record.status.can_become(next.status) {
                tracing::info!(id = %record.id, message_id = %record.message_id, status = %record.status, refused = %next.status, "record left as it is: it cannot go back");
                return Ok(false);
            }
            match self.ports.log().update(&mut next).await {
                Ok(()) => {
                    if next.status != record.status && next.status.is_final() {
                        self.finished(&mut next).await;
                    } else {
                        // A note on a final status (the partner's receipt again, ours posted
                        // again) finds out, too, whether the status was told.
                        self.tell_if_untold(&mut next).await;
                    }
                    *record = next;
                    return Ok(true);
                }
                Err(GatewayError::Conflict(_)) => {
                    *record =
                        self.ports.log().get(&record.id).await?.ok_or_else(|| {
                            GatewayError::NotFound(format!("record {}", record.id))
                        })?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(GatewayError::Conflict(format!(
            "record {} kept changing under us",
            record.id
        )))
    }
}

impl<P: Ports> Gateway<P> {
    /// Says, once, that `record` reached its final status (as just written): one log line and
    /// one event, noted on the record as told.
    pub(crate) async fn finished(&self, record: &mut MessageRecord) {
        log_final(record);
        // A test's way to die (or fail) between writing the final status and telling of it.
        if let Err(e) = self.settings.failpoints.hit("final.recorded") {
            tracing::error!(id = %record.id, error = %e, "its events were not told");
            return;
        }
        if let Some(event) = crate::events::Event::of_record(record) {
            self.tell(record, event).await;
        }
    }

    /// For a job or a request that finds `record` in a final status: tells of it if that was
    /// never noted (the run that wrote the status died, or could not hand its events over,
    /// before it told of them). A queue redelivers the job of a function that died; the
    /// partner sends its message (or receipt) again.
    pub(crate) async fn tell_if_untold(&self, record: &mut MessageRecord) {
        let untold = crate::events::Event::of_record(record)
            .filter(|e| record.told.as_ref() != Some(&e.id) && self.heard(e));
        if let Some(event) = untold {
            tracing::info!(id = %record.id, status = %record.status, "telling of a final status that was not told");
            self.tell(record, event).await;
        }
    }

    /// Tells of `event`, `record`'s final status, and, once all of it was handed over to
    /// someone beyond this process ([`Gateway::heard`]), notes that on the record. A note that
    /// cannot be written is logged: the event may then be told again.
    async fn tell(&self, record: &mut MessageRecord, event: crate::events::Event) {
        let (id, heard) = (event.id.clone(), self.heard(&event));
        if !self.announce(event).await || !heard {
            return;
        }
        let mut next = record.clone();
        next.told = Some(id);
        match self.ports.log().update(&mut next).await {
            Ok(()) => *record = next,
            Err(e) => {
                tracing::warn!(id = %record.id, error = %e, "told, but not noted as told: it may be told again")
            }
        }
    }

    /// Whether anyone beyond this process hears of `event`: the Events port keeps it, or a
    /// webhook wants it. Where nobody does, telling it is not noted (a write per message for
    /// nothing), and a final status found untold is not told again.
    fn heard(&self, event: &crate::events::Event) -> bool {
        crate::ports::Events::keeps(self.ports.events())
            || self.settings.webhooks.iter().any(|w| w.wants(&event.kind))
    }
}

/// One line for every message that reaches a final status.
fn log_final(r: &MessageRecord) {
    let detail = r.last_detail().unwrap_or("");
    match r.status {
        Status::Failed | Status::Rejected | Status::NotSent => {
            tracing::warn!(id = %r.id, message_id = %r.message_id, station = %r.station, partner = %r.partner, direction = ?r.direction, status = %r.status, %detail, "message final")
        }
        _ => {
            tracing::info!(id = %r.id, message_id = %r.message_id, station = %r.station, partner = %r.partner, direction = ?r.direction, status = %r.status, %detail, "message final")
        }
    }
}

impl Agreement {
    pub(crate) fn name_style(&self) -> NameStyle {
        if self.partnership.compact_algorithm_names {
            NameStyle::Compact
        } else {
            NameStyle::Hyphenated
        }
    }

    /// The engine's options for sending to this partner.
    pub(crate) fn message_options(&self, subject: &str) -> Result<MessageOptions> {
        let p = &self.partnership;
        let mut opts = MessageOptions::new(&self.station.as2_id, &p.partner);
        opts.subject = subject.to_string();
        opts.compression = p.compression;
        if let Some(digest) = p.signing {
            let mut s = Signing::new(self.identity.clone());
            s.digest = digest;
            s.scheme = if p.pss {
                SignatureScheme::RsaPss
            } else {
                SignatureScheme::RsaPkcs1v15
            };
            s.micalg_style = self.name_style();
            opts.signing = Some(s);
        }
        if let Some(cipher) = p.encryption {
            let mut e = Encryption::new(self.partner_cert.clone());
            e.cipher = cipher;
            e.key_transport = if p.oaep {
                KeyTransport::RsaOaep
            } else {
                KeyTransport::RsaPkcs1v15
            };
            opts.encryption = Some(e);
        }
        let micalgs = if p.signed_mdn {
            vec![p.mic_algorithm]
        } else {
            Vec::new()
        };
        let return_to = self
            .station
            .mdn_email
            .clone()
            .unwrap_or_else(|| self.station.as2_id.clone());
        opts.mdn = match p.mdn {
            MdnMode::None => None,
            MdnMode::Sync => Some(MdnRequest::sync(return_to, &micalgs, self.name_style())),
            MdnMode::Async => {
                let url = self.mdn_url.clone().ok_or_else(|| {
                    GatewayError::Config(format!(
                        "station {} has no mdn_url and the deployment sets no default one; \
                         asynchronous receipts need it",
                        self.station.as2_id
                    ))
                })?;
                Some(MdnRequest::asynchronous(
                    return_to,
                    url,
                    &micalgs,
                    self.name_style(),
                ))
            }
        };
        Ok(opts)
    }

    /// What we accept from this partner.
    pub(crate) fn policy(&self, max_decompressed_size: u64) -> Policy {
        Policy {
            require_signature: self.partnership.require_signed,
            require_encryption: self.partnership.require_encrypted,
            allow_legacy_algorithms: self.partnership.allow_legacy_algorithms,
            check_certificate_validity: true,
            max_decompressed_size,
            receipt_mic: self.partnership.receipt_mic,
            ..Policy::default()
        }
    }

    /// How we write receipts to this partner.
    pub(crate) fn mdn_options(&self, reporting_ua: &str) -> MdnOptions {
        MdnOptions {
            reporting_ua: reporting_ua.to_string(),
            signer: Some(self.identity.clone()),
            name_style: self.name_style(),
            ..MdnOptions::default()
        }
    }
}
