//! Opening inbound AS2 messages: decrypt, verify and decompress in whatever order the sender
//! applied them, under the partnership's security policy.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use openssl::x509::X509;

use crate::algorithm::{ContentEncryption, DigestAlgorithm};
use crate::cms::{self, ContentKind, SignedForm};
use crate::envelope::Envelope;
use crate::error::{CmsStructure, Error, Result};
use crate::headers::HeaderMap;
use crate::keys::{check_validity, subject_name, Identity};
use crate::mic::{self, Mic};
use crate::mime::{self, ContentType, Entity, Limits, TransferEncoding};
use crate::smime::{der_body, signature_part, Layer};
use crate::time::UnixTime;

/// Keys and certificates for one inbound message, looked up by AS2 ID.
pub trait KeyLookup {
    /// Our private keys for messages addressed to `station` (more than one during a key rollover).
    fn decryption_identities(&self, station: &str) -> Vec<Identity>;
    /// The certificates that may sign messages from `partner`.
    fn partner_certificates(&self, partner: &str) -> Vec<X509>;
}

/// A fixed set of keys, for callers that already know the partnership.
#[derive(Debug, Clone, Default)]
pub struct StaticKeys {
    /// Our decryption identities.
    pub identities: Vec<Identity>,
    /// The partner's signing certificates.
    pub partner_certificates: Vec<X509>,
}

impl KeyLookup for StaticKeys {
    fn decryption_identities(&self, _station: &str) -> Vec<Identity> {
        self.identities.clone()
    }
    fn partner_certificates(&self, _partner: &str) -> Vec<X509> {
        self.partner_certificates.clone()
    }
}

/// Which algorithm the MIC of a signed message's receipt is computed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReceiptMic {
    /// The first algorithm of the sender's `signed-receipt-micalg` that we support, else the
    /// signature's digest (RFC 4130 section 7.3.1): what OpenAS2, Mendelson and other
    /// BouncyCastle-based products compare against, algorithm and value.
    #[default]
    Requested,
    /// The signature's digest, whatever was asked: pyas2lib (django-pyas2) keeps the MIC of what
    /// it signed in its signing digest and compares only the value.
    SignatureDigest,
}

impl ReceiptMic {
    /// Both, the default first.
    pub const ALL: [ReceiptMic; 2] = [ReceiptMic::Requested, ReceiptMic::SignatureDigest];

    /// `requested` or `signature`.
    pub fn name(self) -> &'static str {
        match self {
            ReceiptMic::Requested => "requested",
            ReceiptMic::SignatureDigest => "signature",
        }
    }
}

impl fmt::Display for ReceiptMic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ReceiptMic {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match crate::algorithm::normalize_name(s).as_str() {
            "requested" | "micalg" => Ok(ReceiptMic::Requested),
            "signature" | "signaturedigest" | "signing" => Ok(ReceiptMic::SignatureDigest),
            _ => Err(Error::Config(format!(
                "receipt MIC algorithm {s:?} (accepted: requested, signature)"
            ))),
        }
    }
}

/// What a partnership accepts.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Reject unsigned messages.
    pub require_signature: bool,
    /// Reject unencrypted messages.
    pub require_encryption: bool,
    /// Accept SHA-1/MD5 signatures and 3DES encryption (legacy partners).
    pub allow_legacy_algorithms: bool,
    /// Reject signatures by certificates outside their validity period.
    pub check_certificate_validity: bool,
    /// Largest payload a compressed part may inflate to.
    pub max_decompressed_size: u64,
    /// MIME parser limits.
    pub limits: Limits,
    /// Most security layers one message may have.
    pub max_layers: usize,
    /// Do not verify signatures (inspection tools only; never for receiving).
    pub skip_signature_verification: bool,
    /// The algorithm of the MIC a signed message's receipt carries.
    pub receipt_mic: ReceiptMic,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            require_signature: false,
            require_encryption: false,
            allow_legacy_algorithms: true,
            check_certificate_validity: false,
            max_decompressed_size: 2 * 1024 * 1024 * 1024,
            limits: Limits::default(),
            max_layers: 8,
            skip_signature_verification: false,
            receipt_mic: ReceiptMic::Requested,
        }
    }
}

/// An opened message.
#[derive(Clone)]
pub struct Received {
    /// The payload, transfer encoding removed.
    pub payload: Vec<u8>,
    /// The file name, sanitised for use as a storage key segment.
    pub filename: Option<String>,
    /// The file name as sent (decoded, not sanitised), for logs.
    pub raw_filename: Option<String>,
    /// The payload's Content-Type value.
    pub content_type: String,
    /// Layers found, outermost first.
    pub layers: Vec<Layer>,
    /// The MIC the receipt must carry.
    pub mic: Mic,
    /// The certificate that signed the message, if signed and verified.
    pub signer: Option<X509>,
}

impl fmt::Debug for Received {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Received")
            .field("payload_len", &self.payload.len())
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("layers", &self.layers)
            .field("mic", &self.mic)
            .finish()
    }
}

impl Received {
    /// True if a signature layer was verified.
    pub fn is_signed(&self) -> bool {
        self.layers
            .iter()
            .any(|l| matches!(l, Layer::Signed { .. }))
    }

    /// True if the message was encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.layers
            .iter()
            .any(|l| matches!(l, Layer::Encrypted { .. }))
    }
}

/// The current entity while unwrapping: a buffer, its headers, and where its bytes and body lie.
struct Current<'a> {
    data: Cow<'a, [u8]>,
    headers: HeaderMap,
    /// The entity's own bytes (headers + body); `None` at the top, where headers came over HTTP.
    entity: Option<Range<usize>>,
    body: Range<usize>,
}

impl<'a> Current<'a> {
    /// The content of a decrypted or inflated layer: a MIME entity, or (Mendelson, encrypted but
    /// neither signed nor compressed) the bare payload with no MIME headers at all, which then
    /// takes its type and name from `outer`, the headers of the layer that held it.
    fn from_content(data: Vec<u8>, outer: &HeaderMap, limits: &Limits) -> Result<Self> {
        let len = data.len();
        if starts_as_mime(&data, limits) {
            let (headers, body_offset) = mime::parse_header_block(&data, limits)?;
            return Ok(Current {
                data: Cow::Owned(data),
                headers,
                entity: Some(0..len),
                body: body_offset..len,
            });
        }
        Ok(Current {
            data: Cow::Owned(data),
            headers: bare_payload_headers(outer),
            entity: None,
            body: 0..len,
        })
    }

    fn entity(&self) -> Entity<'_> {
        match &self.entity {
            Some(r) => Entity {
                headers: self.headers.clone(),
                raw: &self.data[r.clone()],
                body_offset: self.body.start - r.start,
            },
            None => Entity::with_headers(self.headers.clone(), &self.data[self.body.clone()]),
        }
    }
}

/// Opens an inbound message addressed as `envelope` says.
pub fn open(
    envelope: &Envelope,
    headers: &HeaderMap,
    body: &[u8],
    keys: &dyn KeyLookup,
    policy: &Policy,
    at: UnixTime,
) -> Result<Received> {
    if body.is_empty() {
        return Err(Error::MalformedMime("the message body is empty".into()));
    }
    let mut cur = Current {
        data: Cow::Borrowed(body),
        headers: headers.clone(),
        entity: None,
        body: 0..body.len(),
    };
    let mut layers = Vec::new();
    let mut signed_mic: Option<Mic> = None;
    let mut signer = None;
    let mut any_binary = false;
    let requested_mic = requested_mic(envelope);
    for depth in 0.. {
        if depth > policy.max_layers {
            return Err(Error::TooDeeplyNested(policy.max_layers));
        }
        let ct = cur.entity().content_type();
        if ct.is_pkcs7_mime() {
            let der = der_body(&cur.entity())?;
            match pkcs7_kind(&ct, &der)? {
                ContentKind::EnvelopedData | ContentKind::AuthEnvelopedData => {
                    let info = cms::inspect_enveloped(&der)?;
                    if let Some(c) = info.cipher {
                        check_cipher(c, policy)?;
                    }
                    let d = cms::decrypt(&der, &keys.decryption_identities(&envelope.to))?;
                    drop(der);
                    layers.push(Layer::Encrypted {
                        cipher: d.cipher,
                        key_transport: d.key_transport,
                    });
                    cur = Current::from_content(d.content, &cur.headers, &policy.limits)?;
                }
                ContentKind::CompressedData => {
                    let inflated = cms::decompress(&der, inflate_limit(policy))
                        .map_err(|e| payload_limit(e, policy))?;
                    drop(der);
                    layers.push(Layer::Compressed);
                    cur = Current::from_content(inflated, &cur.headers, &policy.limits)?;
                    if cur.body.len() as u64 > policy.max_decompressed_size {
                        return Err(Error::DecompressionLimit {
                            limit: policy.max_decompressed_size,
                        });
                    }
                }
                ContentKind::SignedData => {
                    return Err(Error::UnsupportedAlgorithm(
                        "opaque signed-data (application/pkcs7-mime; smime-type=signed-data); send a detached multipart/signed signature".into(),
                    ))
                }
                other => {
                    return Err(Error::MalformedCms {
                        what: CmsStructure::ContentInfo,
                        detail: format!("unexpected CMS content {other:?}"),
                    })
                }
            }
            continue;
        }
        if ct.is("multipart/signed") {
            let boundary = ct.params.get("boundary").ok_or_else(|| {
                Error::MalformedMime("multipart/signed without a boundary".into())
            })?;
            let body_start = cur.body.start;
            let body_bytes = &cur.data[cur.body.clone()];
            let m = mime::split_multipart(body_bytes, &boundary, &policy.limits)?;
            if m.parts.len() < 2 {
                return Err(Error::MalformedMime(
                    "multipart/signed must have a content part and a signature part".into(),
                ));
            }
            let signed = m.parts[0].start + body_start..m.parts[0].end + body_start;
            let sig = signature_part(body_bytes, &m.parts[1..], &policy.limits)?;
            let signed_bytes = &cur.data[signed.clone()];
            let inner = Entity::parse(signed_bytes, &policy.limits)?;
            let binary = inner.transfer_encoding() == Some(TransferEncoding::Binary);
            let forms = signed_forms(binary);
            let (digest, scheme, who, form) = if policy.skip_signature_verification {
                let (digest, scheme, form) = unverified_signature(&sig, binary)?;
                (digest, scheme, None, form)
            } else {
                let v = cms::verify_detached(
                    &sig,
                    signed_bytes,
                    &keys.partner_certificates(&envelope.from),
                    forms,
                )?;
                if policy.check_certificate_validity {
                    check_validity(&v.signer, at)?;
                }
                (v.digest, v.scheme, Some(v.signer), v.form)
            };
            check_digest(digest, policy)?;
            // MIC over the signed entity in the form that verified (RFC 4130 section 7.3.1), in
            // the algorithm the receipt request asks for, else the signature's. A verified
            // signature's messageDigest is that digest already.
            let alg = mic_algorithm(policy, requested_mic, digest);
            signed_mic = Some(match (&who, cms::signed_content_digest(&sig)) {
                (Some(_), Some(d)) if alg == digest => Mic::from_digest(digest, &d),
                _ => Mic::compute(alg, &form.apply(signed_bytes))?,
            });
            layers.push(Layer::Signed {
                digest,
                scheme,
                signer: who
                    .as_ref()
                    .map(|c| subject_name(c))
                    .unwrap_or_else(|| "(not verified)".into()),
            });
            signer = who;
            let body_offset = signed.start + inner.body_offset;
            let inner_headers = inner.headers;
            cur = Current {
                headers: inner_headers,
                entity: Some(signed.clone()),
                body: body_offset..signed.end,
                data: cur.data,
            };
            continue;
        }
        any_binary = cur.entity().transfer_encoding() == Some(TransferEncoding::Binary);
        break;
    }

    let encrypted_seen = layers.iter().any(|l| matches!(l, Layer::Encrypted { .. }));
    check_security(policy, envelope, &layers)?;

    let entity = cur.entity();
    let mic = match signed_mic {
        Some(m) => m,
        None => {
            let alg = requested_mic.unwrap_or(DigestAlgorithm::Sha256);
            if encrypted_seen {
                // Encrypted, unsigned: the decrypted MIME entity, headers and all (for a bare
                // payload, which has none, the payload).
                if any_binary {
                    Mic::compute(alg, entity.raw)?
                } else {
                    Mic::compute(alg, &mime::canonicalize(entity.raw))?
                }
            } else {
                // Neither signed nor encrypted (compressed or not): the content only, as
                // OpenAS2 computes it (RFC 4130 7.3.1; RFC 5402 leaves compression out of it).
                unsigned_content_mic(alg, &entity)?
            }
        }
    };
    let raw_filename = entity.raw_filename();
    let filename = raw_filename
        .as_deref()
        .and_then(crate::filename::sanitize_filename);
    let content_type = entity
        .headers
        .get("Content-Type")
        .unwrap_or("application/octet-stream")
        .to_string();
    let encoding = entity.transfer_encoding();
    drop(entity);
    let body = cur.body.clone();
    let payload = match (encoding, cur.data) {
        // The payload is the tail of a buffer we own (decrypted or inflated): cut it out in
        // place rather than copy a payload-sized block.
        (
            None
            | Some(
                TransferEncoding::SevenBit | TransferEncoding::EightBit | TransferEncoding::Binary,
            ),
            Cow::Owned(mut v),
        ) => {
            v.truncate(body.end);
            v.drain(..body.start);
            v
        }
        (encoding, data) => mime::decode_transfer(&data[body], encoding.as_ref())?.into_owned(),
    };
    Ok(Received {
        payload,
        filename,
        raw_filename,
        content_type,
        layers,
        mic,
        signer,
    })
}

/// What a signature that is not verified says (inspection tools only, never for receiving):
/// its digest and scheme, and the form the MIC is taken over.
pub(crate) fn unverified_signature(
    sig: &[u8],
    binary: bool,
) -> Result<(
    DigestAlgorithm,
    Option<crate::algorithm::SignatureScheme>,
    SignedForm,
)> {
    let info = cms::inspect_signed(sig)?;
    let digest = info.digest.ok_or_else(|| {
        Error::UnsupportedAlgorithm(format!("signature digest {}", info.digest_oid))
    })?;
    let form = if binary {
        SignedForm::AsReceived
    } else {
        SignedForm::Canonical
    };
    Ok((digest, info.scheme, form))
}

/// What compressed content may inflate to: the policy's limit is on the payload, and the
/// part's own headers come on top.
pub(crate) fn inflate_limit(policy: &Policy) -> u64 {
    let allowance = policy.limits.max_header_bytes as u64;
    policy.max_decompressed_size.saturating_add(allowance)
}

/// An inflating error, its limit named as the partnership set it (not [`inflate_limit`]).
pub(crate) fn payload_limit(e: Error, policy: &Policy) -> Error {
    match e {
        Error::DecompressionLimit { .. } => Error::DecompressionLimit {
            limit: policy.max_decompressed_size,
        },
        e => e,
    }
}

/// The first MIC algorithm of the sender's `signed-receipt-micalg` that we support (RFC 4130
/// section 7.3.1).
pub(crate) fn requested_mic(envelope: &Envelope) -> Option<DigestAlgorithm> {
    envelope
        .mdn
        .as_ref()
        .and_then(|r| r.signed.as_ref())
        .and_then(|s| mic::choose_algorithm(s.micalgs.iter().map(String::as_str)))
}

/// The algorithm of a signed message's MIC: the one the receipt request asks for, else the
/// signature's, as the policy says.
pub(crate) fn mic_algorithm(
    policy: &Policy,
    requested: Option<DigestAlgorithm>,
    digest: DigestAlgorithm,
) -> DigestAlgorithm {
    match policy.receipt_mic {
        ReceiptMic::Requested => requested.unwrap_or(digest),
        ReceiptMic::SignatureDigest => digest,
    }
}

/// The forms a signed part is verified in after "as received": a binary part with its headers
/// in CRLF form (its body is never touched), then the whole part in canonical form.
pub(crate) fn signed_forms(binary: bool) -> &'static [SignedForm] {
    if binary {
        &[SignedForm::CanonicalHeaders, SignedForm::Canonical]
    } else {
        &[SignedForm::Canonical]
    }
}

/// Whether the unsigned MIC of content in `encoding` is taken over its canonical form: the
/// text encodings (7bit, 8bit, quoted-printable).
pub(crate) fn is_text_encoding(encoding: Option<&TransferEncoding>) -> bool {
    matches!(
        encoding,
        Some(
            TransferEncoding::SevenBit
                | TransferEncoding::EightBit
                | TransferEncoding::QuotedPrintable
        )
    )
}

/// The partnership's demands for encryption and a signature, against the layers found.
pub(crate) fn check_security(policy: &Policy, envelope: &Envelope, layers: &[Layer]) -> Result<()> {
    let signed = layers.iter().any(|l| matches!(l, Layer::Signed { .. }));
    let encrypted = layers.iter().any(|l| matches!(l, Layer::Encrypted { .. }));
    if policy.require_encryption && !encrypted {
        return Err(Error::InsufficientSecurity(format!(
            "messages from {} must be encrypted",
            envelope.from
        )));
    }
    if policy.require_signature && !signed {
        return Err(Error::InsufficientSecurity(format!(
            "messages from {} must be signed",
            envelope.from
        )));
    }
    Ok(())
}

/// The MIC of an entity's content alone: transfer encoding removed, and text encodings (7bit,
/// 8bit, quoted-printable) in canonical form.
fn unsigned_content_mic(alg: DigestAlgorithm, entity: &Entity<'_>) -> Result<Mic> {
    let content = entity.decoded_body()?;
    if is_text_encoding(entity.transfer_encoding().as_ref()) {
        Mic::compute(alg, &mime::canonicalize(&content))
    } else {
        Mic::compute(alg, &content)
    }
}

/// Whether `data` starts as a MIME entity does: among the header-shaped lines it begins with
/// (before an empty line or a line that is no header) at least one is a `Content-*` field or
/// `MIME-Version`. EDI that happens to hold a colon on its first line is not.
fn starts_as_mime(data: &[u8], limits: &Limits) -> bool {
    starts_as_mime_in(data, limits, true).unwrap_or(false)
}

/// [`starts_as_mime`] on the first bytes of a stream: `None` while the lines there are do not
/// tell yet. With `complete`, `data` is all there is (or the most that is looked at).
pub(crate) fn starts_as_mime_in(data: &[u8], limits: &Limits, complete: bool) -> Option<bool> {
    let complete = complete || data.len() >= limits.max_header_bytes;
    let window = &data[..data.len().min(limits.max_header_bytes)];
    let mut lines = window.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        if lines.peek().is_none() && !complete {
            // The last line may not have all come yet.
            return None;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Some(false);
        }
        if line[0] == b' ' || line[0] == b'\t' {
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            return Some(false);
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) {
            return Some(false);
        }
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        if name.starts_with("content-") || name == "mime-version" {
            return Some(true);
        }
    }
    complete.then_some(false)
}

/// Headers for a bare payload: the outer part's type unless it is the S/MIME wrapper's, and its
/// file name unless it names the wrapper (`smime.p7m`).
pub(crate) fn bare_payload_headers(outer: &HeaderMap) -> HeaderMap {
    let mut h = HeaderMap::new();
    let ct = outer.get("Content-Type").map(ContentType::parse);
    let keep_type = ct.as_ref().is_some_and(|c| {
        !c.is_pkcs7_mime() && !c.is("multipart/signed") && c.mime_type.contains('/')
    });
    let content_type = match (keep_type, outer.get("Content-Type")) {
        (true, Some(v)) => v.to_string(),
        _ => "application/octet-stream".to_string(),
    };
    h.append("Content-Type", content_type);
    h.append("Content-Transfer-Encoding", "binary");
    if let Some(d) = outer.get("Content-Disposition") {
        let name = mime::Params::parse_after_value(d).get("filename");
        if name.is_some_and(|n| !n.to_ascii_lowercase().starts_with("smime.")) {
            h.append("Content-Disposition", d.to_string());
        }
    }
    h
}

fn pkcs7_kind(ct: &ContentType, der: &[u8]) -> Result<ContentKind> {
    // The DER is the authority; smime-type is only a hint and is sometimes missing or wrong.
    let kind = cms::content_kind(der).map_err(|e| match ct.smime_type().as_deref() {
        Some("compressed-data") => Error::MalformedCms {
            what: CmsStructure::CompressedData,
            detail: e.to_string(),
        },
        Some("enveloped-data") | Some("authenveloped-data") => Error::MalformedCms {
            what: CmsStructure::EnvelopedData,
            detail: e.to_string(),
        },
        _ => e,
    })?;
    Ok(kind)
}

pub(crate) fn check_cipher(c: ContentEncryption, policy: &Policy) -> Result<()> {
    if c.is_legacy() && !policy.allow_legacy_algorithms {
        return Err(Error::InsufficientSecurity(format!(
            "{c} encryption is not accepted from this partner"
        )));
    }
    Ok(())
}

pub(crate) fn check_digest(d: DigestAlgorithm, policy: &Policy) -> Result<()> {
    if d.is_legacy() && !policy.allow_legacy_algorithms {
        return Err(Error::InsufficientSecurity(format!(
            "{d} signatures are not accepted from this partner"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_requires_as2_headers() {
        let h: HeaderMap = [
            ("AS2-From", "\"A B\""),
            ("AS2-To", "Z"),
            ("Message-ID", "abc@x"),
        ]
        .into_iter()
        .collect();
        let e = Envelope::from_headers(&h).unwrap();
        assert_eq!(e.from, "A B");
        assert_eq!(e.message_id, "abc@x");
        assert_eq!(e.message_id_core(), "abc@x");
        assert_eq!(crate::envelope::message_id_core(" <x@y> "), "x@y");
        for missing in ["AS2-From", "AS2-To", "Message-ID"] {
            let mut h2 = h.clone();
            h2.remove(missing);
            assert!(
                matches!(Envelope::from_headers(&h2), Err(Error::MissingHeader(m)) if m == missing)
            );
        }
        let mut bad = h.clone();
        bad.set("AS2-To", "x".repeat(200));
        assert!(matches!(
            Envelope::from_headers(&bad),
            Err(Error::InvalidHeader { .. })
        ));
    }
}
