//! Receipts for what we sent: the verdict a receipt gives (one pure rule, used by the sender,
//! the asynchronous receipt endpoint and `mftg inspect`), taking a receipt in (stored, verified,
//! applied to its record), asynchronous receipts arriving on the endpoint, and the deadline of
//! one that never comes.

use std::collections::BTreeMap;

use as2::mdn::{self, MdnSignature, MicCheck};
use as2::{Disposition, HeaderMap};

use crate::error::{GatewayError, Result};
use crate::gateway::{Agreement, Gateway};
use crate::layout::{self, capture, rejected_capture};
use crate::model::{MdnMic, MdnSummary, MessageRecord, Status};
use crate::ports::HttpResponse;
use crate::ports::{Clock, MessageLog, ObjectStore, Ports};

/// What a receipt says of a message we sent, and what was asked of it.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The disposition the partner reports.
    pub disposition: &'a Disposition,
    /// The MIC it returned against ours (`None`: not checked).
    pub mic: Option<&'a MicCheck>,
    /// Whether the receipt's signature was verified.
    pub signed: bool,
    /// Whether a signed receipt was asked for.
    pub asked_signed: bool,
    /// Whether the message was signed (a signed receipt should then return its MIC).
    pub message_signed: bool,
    /// The receipt is signed by the partner's certificate, which is not valid now: why.
    pub signer_not_valid: Option<&'a str>,
}

/// The status a receipt gives its message, and the detail to record with it.
pub fn verdict(e: &Evidence<'_>) -> (Status, String) {
    let (status, detail) = match (e.disposition, e.mic) {
        (Disposition::Processed, Some(MicCheck::Mismatch { received, .. })) => (
            Status::Failed,
            format!("the receipt's MIC ({received}) is not the one sent: the content was altered in transit"),
        ),
        (Disposition::Processed, _) if e.asked_signed && !e.signed => (
            Status::DeliveredWithWarning,
            "processed, but the receipt is unsigned although a signed one was asked for".into(),
        ),
        (Disposition::Processed, Some(MicCheck::Missing)) if e.signed && e.message_signed => (
            Status::DeliveredWithWarning,
            "processed, but the receipt carries no MIC".into(),
        ),
        // pyas2lib, for one, returns no MIC for a message it could not check a signature of.
        (Disposition::Processed, Some(MicCheck::Missing)) => (
            Status::Delivered,
            "processed (the receipt carries no MIC, as is common for unsigned messages)".into(),
        ),
        (Disposition::Processed, _) => (Status::Delivered, "processed".into()),
        (Disposition::Warning(w), _) => (
            Status::DeliveredWithWarning,
            format!("processed/warning: {w}"),
        ),
        (d, _) => (Status::Failed, format!("the partner reports {d}")),
    };
    match (status, e.signer_not_valid) {
        (Status::Delivered | Status::DeliveredWithWarning, Some(note)) => (
            Status::DeliveredWithWarning,
            format!("{detail}, but the receipt is signed by a certificate that is not valid now: {note}"),
        ),
        _ => (status, detail),
    }
}

impl<P: Ports> Gateway<P> {
    /// Stores, verifies and applies a receipt for outbound `record`. The outer error is a port
    /// failure; the inner one says the answer was not a receipt at all (worth another attempt).
    pub(crate) async fn take_mdn(
        &self,
        record: &mut MessageRecord,
        agreement: &Agreement,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<std::result::Result<Status, String>> {
        let now = self.ports.clock().now();
        let paths = record.paths()?;
        let key = paths.mdn();
        self.ports
            .store()
            .put(&key, capture(headers, body), BTreeMap::new())
            .await?;
        let certs = std::slice::from_ref(&agreement.partner_cert);
        let mut cert_note = None;
        let parsed = match mdn::parse(
            headers,
            body,
            Some(certs),
            Some(now.unix()),
            &Default::default(),
        ) {
            Ok(m) => m,
            Err(
                e @ (as2::Error::NotAnMdn(_)
                | as2::Error::MalformedMime(_)
                | as2::Error::MissingHeader(_)),
            ) => {
                return Ok(Err(format!("the answer is not a receipt: {e}")));
            }
            // Signed by the partner's certificate, but outside its validity: the receipt still
            // proves what the partner did with the message (it stored the file, or not).
            Err(e @ as2::Error::CertificateNotValid { .. }) => {
                match mdn::parse(headers, body, Some(certs), None, &Default::default()) {
                    Ok(m) => {
                        cert_note = Some(e.to_string());
                        m
                    }
                    Err(e) => {
                        let why = format!("the receipt cannot be trusted: {e}");
                        self.fail(record, now, why).await?;
                        return Ok(Ok(record.status));
                    }
                }
            }
            Err(e) => {
                let why = format!("the receipt cannot be trusted: {e}");
                self.fail(record, now, why).await?;
                return Ok(Ok(record.status));
            }
        };
        if as2::envelope::message_id_core(&parsed.original_message_id)
            != as2::envelope::message_id_core(&record.message_id)
        {
            return Ok(Err(format!(
                "the receipt is for {}, not {}",
                parsed.original_message_id, record.message_id
            )));
        }
        let signed = matches!(parsed.signature, MdnSignature::Verified(_));
        let expected: Vec<as2::mic::Mic> = record
            .mic
            .iter()
            .chain(record.alternative_mics.iter())
            .filter_map(|m| as2::mic::Mic::parse_field(m).ok())
            .collect();
        let mic_check = parsed.check_mic(&expected);
        let mic = MdnMic::of(&mic_check);
        let (status, detail) = verdict(&Evidence {
            disposition: &parsed.disposition,
            mic: Some(&mic_check),
            signed,
            asked_signed: agreement.partnership.signed_mdn,
            message_signed: agreement.partnership.signing.is_some(),
            signer_not_valid: cert_note.as_deref(),
        });
        let summary = MdnSummary {
            disposition: parsed.disposition.to_field(),
            signed,
            mic,
            key,
        };
        self.save(record, |r| {
            r.mdn = Some(summary.clone());
            r.set_status(status, now, Some(detail.clone()));
        })
        .await?;
        Ok(Ok(record.status))
    }

    /// An asynchronous receipt for attempt `attempt` did not come in time (the deadline of an
    /// attempt made before a resend is passed over).
    pub(crate) async fn mdn_deadline(&self, id: &str, attempt: u32) -> Result<()> {
        let log = self.ports.log();
        let Some(mut record) = log.get(id).await? else {
            return Ok(());
        };
        if record.status != Status::AwaitingMdn || (attempt != 0 && attempt != record.attempts) {
            self.tell_if_untold(&mut record).await;
            return Ok(());
        }
        let now = self.ports.clock().now();
        self.save(&mut record, |r| {
            r.set_status(
                Status::Failed,
                now,
                Some("overdue: no receipt came in time (a late one is still accepted)".into()),
            )
        })
        .await
        .map(|_| ())
    }

    /// An asynchronous receipt for a message we sent.
    pub(crate) async fn on_async_mdn(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<HttpResponse> {
        let now = self.ports.clock().now();
        let store = self.ports.store();
        let folder = layout::new_folder(now);
        let unmatched = |why: String| async move {
            store
                .put(
                    &layout::unmatched_mdn(&folder),
                    rejected_capture(headers, body),
                    BTreeMap::new(),
                )
                .await?;
            tracing::warn!(%why, "receipt not matched");
            Ok::<_, GatewayError>(HttpResponse::text(400, &why))
        };
        // The receipt's AS2-From is the partner, its AS2-To our station.
        let (Some(partner), Some(station)) = (headers.get("AS2-From"), headers.get("AS2-To"))
        else {
            return unmatched("a receipt without AS2-From and AS2-To".into()).await;
        };
        let (partner, station) = (
            as2::envelope::unquote_as2_id(partner),
            as2::envelope::unquote_as2_id(station),
        );
        let unverified = match mdn::parse(headers, body, None, None, &Default::default()) {
            Ok(m) => m,
            Err(e) => return unmatched(format!("not a readable receipt: {e}")).await,
        };
        let original = as2::envelope::message_id_core(&unverified.original_message_id).to_string();
        let Some(mut record) = self
            .ports
            .log()
            .find_outbound(&station, &partner, &original)
            .await?
        else {
            return unmatched(format!(
                "no message {original} was sent from {station} to {partner}"
            ))
            .await;
        };
        let agreement = match self.agreement(&station, &partner).await {
            Ok(l) => l,
            Err(e) => return unmatched(e.to_string()).await,
        };
        if record.mdn.is_some() && record.status != Status::AwaitingMdn {
            // The partner's retry of a receipt that was taken: the status it gave may not have
            // been told (what is told is the record's, not this copy's).
            self.tell_if_untold(&mut record).await;
            return Ok(HttpResponse::text(
                200,
                "a receipt for this message was already received",
            ));
        }
        match self
            .take_mdn(&mut record, &agreement, headers, body)
            .await?
        {
            Ok(status) => Ok(HttpResponse::text(
                200,
                &format!("receipt accepted; message {original} is {status}"),
            )),
            Err(why) => Ok(HttpResponse::text(400, &why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(d: &Disposition, mic: Option<&MicCheck>, signed: bool, asked: bool) -> Status {
        verdict(&Evidence {
            disposition: d,
            mic,
            signed,
            asked_signed: asked,
            message_signed: true,
            signer_not_valid: None,
        })
        .0
    }

    #[test]
    fn each_receipt_gives_one_status() {
        let ok = Disposition::Processed;
        let mismatch = MicCheck::Mismatch {
            expected: None,
            received: as2::mic::Mic::parse_field("AAAA, sha-256").unwrap(),
        };
        assert_eq!(
            judge(&ok, Some(&MicCheck::Match), true, true),
            Status::Delivered
        );
        assert_eq!(judge(&ok, Some(&mismatch), true, true), Status::Failed);
        assert_eq!(judge(&ok, Some(&mismatch), false, false), Status::Failed);
        assert_eq!(
            judge(&ok, Some(&MicCheck::Match), false, true),
            Status::DeliveredWithWarning
        );
        assert_eq!(
            judge(&ok, Some(&MicCheck::Missing), true, true),
            Status::DeliveredWithWarning
        );
        assert_eq!(
            judge(&ok, Some(&MicCheck::Missing), false, false),
            Status::Delivered
        );
        assert_eq!(judge(&ok, None, true, true), Status::Delivered);
        let warning = Disposition::Warning("duplicate-document".into());
        assert_eq!(
            judge(&warning, None, true, true),
            Status::DeliveredWithWarning
        );
        let error = Disposition::Error("decryption-failed".into());
        assert_eq!(
            judge(&error, Some(&MicCheck::Match), true, true),
            Status::Failed
        );
        let (status, detail) = verdict(&Evidence {
            disposition: &ok,
            mic: Some(&MicCheck::Match),
            signed: true,
            asked_signed: true,
            message_signed: true,
            signer_not_valid: Some("expired"),
        });
        assert_eq!(status, Status::DeliveredWithWarning);
        assert!(detail.ends_with("not valid now: expired"), "{detail}");
    }
}
