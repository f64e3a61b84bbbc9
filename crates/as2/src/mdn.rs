//! Message Disposition Notifications: the receipt request on a message, and building and parsing
//! the receipt itself (RFC 4130 section 7, RFC 3798).

use std::fmt;

use openssl::x509::X509;

use crate::algorithm::{NameStyle, SignatureScheme};
use crate::cms::{self, VerifiedSignature};
use crate::envelope::{
    as2_headers, quote_as2_id, unquote_as2_id, validate_as2_id, Envelope, MdnRequest,
};
use crate::error::{Disposition, Error, Result};
use crate::headers::HeaderMap;
use crate::keys::{check_validity, Identity};
use crate::mic::Mic;
use crate::mime::{self, ContentType, Entity, Limits};
use crate::smime::{multipart_signed, signature_part};
use crate::time::UnixTime;

/// How we write receipts.
#[derive(Debug, Clone)]
pub struct MdnOptions {
    /// `Reporting-UA` field.
    pub reporting_ua: String,
    /// Our identity for signing receipts; when `None` receipts go unsigned even if asked.
    pub signer: Option<Identity>,
    /// How `Received-Content-MIC` and `micalg` spell algorithm names.
    pub name_style: NameStyle,
    /// Human-readable text for a successful receipt.
    pub success_text: String,
}

impl Default for MdnOptions {
    fn default() -> Self {
        MdnOptions {
            reporting_ua: format!("mftg/{}", env!("CARGO_PKG_VERSION")),
            signer: None,
            name_style: NameStyle::Hyphenated,
            success_text: "The AS2 message has been received and processed.".into(),
        }
    }
}

/// A built receipt.
#[derive(Debug, Clone)]
pub struct OutboundMdn {
    /// The receipt's own Message-ID.
    pub message_id: String,
    /// HTTP headers (for a sync receipt, the response headers).
    pub headers: HeaderMap,
    /// The HTTP body: the receipt's outermost MIME entity's body, to send as is.
    pub body: Vec<u8>,
    /// Whether it is signed.
    pub signed: bool,
    /// Where it must be POSTed, for an asynchronous receipt.
    pub async_url: Option<String>,
}

/// Builds the receipt for a message described by `envelope`.
///
/// `mic` is the MIC of what arrived (None when processing failed before it could be computed).
pub fn build(
    envelope: &Envelope,
    disposition: &Disposition,
    mic: Option<&Mic>,
    opts: &MdnOptions,
    message_id: &str,
    now: UnixTime,
) -> Result<OutboundMdn> {
    validate_as2_id(&envelope.to)?;
    validate_as2_id(&envelope.from)?;
    let request = envelope.mdn.as_ref();
    let text = if disposition.is_delivered() {
        opts.success_text.clone()
    } else {
        format!(
            "The AS2 message could not be processed: {}. The disposition notification report has details.",
            disposition
        )
    };
    let mut report = String::new();
    report.push_str(&format!("Reporting-UA: {}\r\n", opts.reporting_ua));
    report.push_str(&format!(
        "Original-Recipient: rfc822; {}\r\n",
        quote_as2_id(&envelope.to)
    ));
    report.push_str(&format!(
        "Final-Recipient: rfc822; {}\r\n",
        quote_as2_id(&envelope.to)
    ));
    report.push_str(&format!("Original-Message-ID: {}\r\n", envelope.message_id));
    if let Some(m) = mic {
        report.push_str(&format!(
            "Received-Content-MIC: {}\r\n",
            m.to_field(opts.name_style)
        ));
    }
    report.push_str(&format!(
        "Disposition: automatic-action/MDN-sent-automatically; {}\r\n",
        disposition.to_field()
    ));

    let mut inner = Vec::new();
    inner.extend_from_slice(
        b"Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n",
    );
    inner.extend_from_slice(text.as_bytes());
    inner.extend_from_slice(b"\r\n");
    let report_boundary = mime::new_boundary(report.as_bytes());
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{report_boundary}\r\n").as_bytes());
    body.extend_from_slice(&inner);
    body.extend_from_slice(format!("\r\n--{report_boundary}\r\n").as_bytes());
    body.extend_from_slice(
        b"Content-Type: message/disposition-notification\r\nContent-Transfer-Encoding: 7bit\r\n\r\n",
    );
    body.extend_from_slice(report.as_bytes());
    body.extend_from_slice(format!("\r\n--{report_boundary}--\r\n").as_bytes());
    let report_type = format!(
        "multipart/report; report-type=disposition-notification; boundary=\"{report_boundary}\""
    );

    let signing = match (request.and_then(MdnRequest::signing_digest), &opts.signer) {
        (Some(d), Some(id)) => Some((d, id)),
        _ => None,
    };
    let (content_type, body) = match signing {
        None => (report_type, body),
        Some((digest, identity)) => {
            let mut entity = format!("Content-Type: {report_type}\r\n\r\n").into_bytes();
            entity.extend_from_slice(&body);
            let sig = cms::sign_detached(&entity, identity, digest, SignatureScheme::RsaPkcs1v15)?;
            let (ct, out, _) = multipart_signed(entity, &sig, digest.name(opts.name_style), false);
            (ct, out)
        }
    };
    let mut headers = as2_headers(
        &envelope.to,
        &envelope.from,
        message_id,
        now,
        "Message Disposition Notification",
    );
    headers.append("Content-Type", content_type);
    Ok(OutboundMdn {
        message_id: message_id.to_string(),
        headers,
        body,
        signed: signing.is_some(),
        async_url: request.and_then(|r| r.async_url.clone()),
    })
}

/// The state of a receipt's signature.
#[derive(Debug, Clone)]
pub enum MdnSignature {
    /// The receipt was not signed.
    Unsigned,
    /// Signed and verified with the partner's certificate.
    Verified(VerifiedSignature),
    /// Signed, but not checked (no certificates were given).
    NotChecked,
}

/// A parsed receipt.
#[derive(Debug, Clone)]
pub struct Mdn {
    /// The receipt's own Message-ID, if the headers carried one.
    pub message_id: Option<String>,
    /// `AS2-From` of the receipt (the original receiver), if present.
    pub from: Option<String>,
    /// `AS2-To` of the receipt (the original sender), if present.
    pub to: Option<String>,
    /// `Original-Message-ID`, as written.
    pub original_message_id: String,
    /// What the receiver did with the message.
    pub disposition: Disposition,
    /// The action and sending mode before the `;`.
    pub disposition_mode: String,
    /// `Received-Content-MIC`, if present and readable.
    pub received_mic: Option<Mic>,
    /// `Reporting-UA`.
    pub reporting_ua: Option<String>,
    /// `Original-Recipient`.
    pub original_recipient: Option<String>,
    /// `Final-Recipient`.
    pub final_recipient: Option<String>,
    /// The human-readable part.
    pub text: String,
    /// The signature state.
    pub signature: MdnSignature,
}

/// The result of comparing a receipt's MIC with what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MicCheck {
    /// The receipt's MIC matches one we computed.
    Match,
    /// It differs: the partner received something else.
    Mismatch {
        /// What we computed (under the receipt's algorithm, when we had it).
        expected: Option<Mic>,
        /// What the receipt says.
        received: Mic,
    },
    /// The receipt carries no MIC (common for unsigned messages and error receipts).
    Missing,
}

impl Mdn {
    /// Compares `Received-Content-MIC` with the MICs the sender computed (algorithm names compared
    /// ignoring case and hyphens).
    pub fn check_mic(&self, expected: &[Mic]) -> MicCheck {
        let Some(received) = &self.received_mic else {
            return MicCheck::Missing;
        };
        if expected.iter().any(|e| e.matches(received)) {
            return MicCheck::Match;
        }
        MicCheck::Mismatch {
            expected: expected
                .iter()
                .find(|e| e.algorithm == received.algorithm)
                .or(expected.first())
                .cloned(),
            received: received.clone(),
        }
    }

    /// The original Message-ID without angle brackets, for matching.
    pub fn original_message_id_core(&self) -> &str {
        crate::envelope::message_id_core(&self.original_message_id)
    }
}

impl fmt::Display for Mdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MDN for {}: {}",
            self.original_message_id, self.disposition
        )
    }
}

/// True when headers and body look like a receipt rather than a message (async MDNs arrive on the
/// same endpoint as messages).
pub fn is_mdn(headers: &HeaderMap, body: &[u8]) -> bool {
    let ct = ContentType::parse(headers.get("Content-Type").unwrap_or(""));
    if ct.is("multipart/report") {
        return true;
    }
    if !ct.is("multipart/signed") {
        return false;
    }
    let Some(boundary) = ct.params.get("boundary") else {
        return false;
    };
    let limits = Limits::default();
    let Ok(m) = mime::split_multipart(body, &boundary, &limits) else {
        return false;
    };
    m.parts
        .first()
        .and_then(|r| Entity::parse(&body[r.clone()], &limits).ok())
        .is_some_and(|e| e.content_type().is("multipart/report"))
}

/// Parses a receipt. With `certificates` given, a signature must verify with one of them (and be
/// valid at `at`, if set); with `None` a signature is reported but not checked.
pub fn parse(
    headers: &HeaderMap,
    body: &[u8],
    certificates: Option<&[X509]>,
    at: Option<UnixTime>,
    limits: &Limits,
) -> Result<Mdn> {
    let top = Entity::with_headers(headers.clone(), body);
    let ct = top.content_type();
    let (report, signature) = if ct.is("multipart/signed") {
        let boundary = ct
            .params
            .get("boundary")
            .ok_or_else(|| Error::MalformedMime("multipart/signed without a boundary".into()))?;
        let m = mime::split_multipart(body, &boundary, limits)?;
        let signed_range = m.parts[0].clone();
        let sig_der = signature_part(body, &m.parts[1..], limits)?;
        let signed_bytes = &body[signed_range];
        let signature = match certificates {
            None => MdnSignature::NotChecked,
            Some(certs) => {
                let v = cms::verify_detached(
                    &sig_der,
                    signed_bytes,
                    certs,
                    &[cms::SignedForm::Canonical],
                )?;
                if let Some(t) = at {
                    check_validity(&v.signer, t)?;
                }
                MdnSignature::Verified(v)
            }
        };
        (Entity::parse(signed_bytes, limits)?, signature)
    } else {
        (top, MdnSignature::Unsigned)
    };
    let rct = report.content_type();
    if !rct.is("multipart/report") {
        return Err(Error::NotAnMdn(format!(
            "expected multipart/report, found {:?}",
            rct.mime_type
        )));
    }
    let boundary = rct
        .params
        .get("boundary")
        .ok_or_else(|| Error::MalformedMime("multipart/report without a boundary".into()))?;
    let body = report.body();
    let parts = mime::split_multipart(body, &boundary, limits)?;
    let mut text = String::new();
    let mut fields: Option<HeaderMap> = None;
    for r in &parts.parts {
        let part = Entity::parse(&body[r.clone()], limits)?;
        let pct = part.content_type();
        let decoded = part.decoded_body()?;
        if pct.is("message/disposition-notification") {
            fields = Some(mime::parse_header_block(&decoded, limits)?.0);
        } else if fields.is_none()
            && !part.headers.contains("Content-Type")
            && looks_like_report(&decoded)
        {
            // Some products omit the Content-Type of the report part.
            fields = Some(mime::parse_header_block(&decoded, limits)?.0);
        } else if text.is_empty()
            && (pct.mime_type.starts_with("text/") || !part.headers.contains("Content-Type"))
        {
            text = String::from_utf8_lossy(&decoded).trim().to_string();
        }
    }
    let fields =
        fields.ok_or_else(|| Error::NotAnMdn("no message/disposition-notification part".into()))?;
    let original_message_id = fields
        .get("Original-Message-ID")
        .ok_or(Error::MissingHeader("Original-Message-ID"))?
        .to_string();
    let disposition_field = fields
        .get("Disposition")
        .ok_or(Error::MissingHeader("Disposition"))?;
    let (mode, dispo) = disposition_field
        .split_once(';')
        .unwrap_or(("", disposition_field));
    let disposition = Disposition::parse_field(dispo).ok_or_else(|| Error::InvalidHeader {
        name: "Disposition",
        reason: format!("unrecognised disposition {:?}", dispo.trim()),
    })?;
    let received_mic = fields
        .get("Received-Content-MIC")
        .map(Mic::parse_field)
        .transpose()?;
    let recipient = |name| {
        fields.get(name).map(|v: &str| {
            let v = v.split_once(';').map_or(v, |(_, a)| a);
            unquote_as2_id(v)
        })
    };
    Ok(Mdn {
        message_id: headers.get("Message-ID").map(str::to_string),
        from: headers.get("AS2-From").map(unquote_as2_id),
        to: headers.get("AS2-To").map(unquote_as2_id),
        original_message_id,
        disposition,
        disposition_mode: mode.trim().to_string(),
        received_mic,
        reporting_ua: fields.get("Reporting-UA").map(str::to_string),
        original_recipient: recipient("Original-Recipient"),
        final_recipient: recipient("Final-Recipient"),
        text,
        signature,
    })
}

fn looks_like_report(body: &[u8]) -> bool {
    let s = String::from_utf8_lossy(&body[..body.len().min(4096)]).to_ascii_lowercase();
    s.contains("original-message-id:") && s.contains("disposition:")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::DigestAlgorithm;

    #[test]
    fn mic_check() {
        let m = Mic::compute(DigestAlgorithm::Sha256, b"x").unwrap();
        let other = Mic::compute(DigestAlgorithm::Sha1, b"x").unwrap();
        let mut mdn = Mdn {
            message_id: None,
            from: None,
            to: None,
            original_message_id: "<a@b>".into(),
            disposition: Disposition::Processed,
            disposition_mode: String::new(),
            received_mic: Some(m.clone()),
            reporting_ua: None,
            original_recipient: None,
            final_recipient: None,
            text: String::new(),
            signature: MdnSignature::Unsigned,
        };
        assert_eq!(mdn.check_mic(&[other.clone(), m.clone()]), MicCheck::Match);
        assert!(matches!(mdn.check_mic(&[other]), MicCheck::Mismatch { .. }));
        mdn.received_mic = None;
        assert_eq!(mdn.check_mic(&[m]), MicCheck::Missing);
        assert_eq!(mdn.original_message_id_core(), "a@b");
    }
}
