//! Building outbound AS2 messages: payload -> [compress] -> [sign] -> [compress] -> [encrypt] -> HTTP.

use std::borrow::Cow;
use std::fmt;

use openssl::x509::X509;

use crate::algorithm::{
    ContentEncryption, DigestAlgorithm, KeyTransport, NameStyle, SignatureScheme,
};
use crate::cms;
use crate::envelope::{as2_headers, validate_as2_id, MdnRequest};
use crate::error::{Error, Result};
use crate::headers::HeaderMap;
use crate::keys::Identity;
use crate::mic::{Mic, MultiDigest};
use crate::mime;
use crate::smime::{multipart_signed, Layer};
use crate::time::UnixTime;

/// `application/edi-consent`: the default payload type.
pub const DEFAULT_CONTENT_TYPE: &str = "application/edi-consent";

/// Where compression goes relative to signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// Compress the payload, then sign the compressed part (RFC 5402 recommends this).
    BeforeSigning,
    /// Sign, then compress the signed multipart.
    AfterSigning,
}

impl Compression {
    /// Every choice, in the order help texts list them.
    pub const ALL: [Compression; 3] = [
        Compression::None,
        Compression::BeforeSigning,
        Compression::AfterSigning,
    ];

    /// `none`, `before-signing` or `after-signing`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::BeforeSigning => "before-signing",
            Compression::AfterSigning => "after-signing",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Compression {
    type Err = Error;
    /// Our names, and OpenAS2's `compress-before-signing` / `compress-after-signing`.
    fn from_str(s: &str) -> Result<Self> {
        let n = crate::algorithm::normalize_name(s);
        Ok(match n.strip_prefix("compress").unwrap_or(&n) {
            "none" | "off" | "no" => Compression::None,
            "beforesigning" | "before" => Compression::BeforeSigning,
            "aftersigning" | "after" => Compression::AfterSigning,
            _ => {
                return Err(Error::Config(format!(
                    "compression {s:?} (accepted: {})",
                    crate::algorithm::accepted(Self::ALL.iter().map(|c| c.name()))
                )))
            }
        })
    }
}

/// Transfer encoding of the inner MIME parts (the HTTP body itself is always binary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyEncoding {
    /// `binary`: smallest, what most products send.
    #[default]
    Binary,
    /// `base64`: for partners whose parsers mangle binary parts.
    Base64,
}

/// How a message is signed: the key, the digest and the signature scheme.
#[derive(Debug, Clone)]
pub struct Signing {
    /// Our key and certificate.
    pub identity: Identity,
    /// The digest (SHA-256 unless the partner needs otherwise).
    pub digest: DigestAlgorithm,
    /// PKCS#1 v1.5 (default) or PSS.
    pub scheme: SignatureScheme,
    /// How `micalg` is spelled on the multipart/signed Content-Type.
    pub micalg_style: NameStyle,
}

impl Signing {
    /// SHA-256 with RSA PKCS#1 v1.5.
    pub fn new(identity: Identity) -> Self {
        Signing {
            identity,
            digest: DigestAlgorithm::Sha256,
            scheme: SignatureScheme::RsaPkcs1v15,
            micalg_style: NameStyle::Hyphenated,
        }
    }
}

/// How a message is encrypted: to which certificate, with which cipher and key transport.
#[derive(Debug, Clone)]
pub struct Encryption {
    /// The partner's encryption certificate(s).
    pub certificates: Vec<X509>,
    /// The content cipher (AES-256-CBC unless the partner needs otherwise).
    pub cipher: ContentEncryption,
    /// RSA PKCS#1 v1.5 (default) or OAEP.
    pub key_transport: KeyTransport,
}

impl Encryption {
    /// AES-256-CBC with RSA PKCS#1 v1.5 key transport.
    pub fn new(certificate: X509) -> Self {
        Encryption {
            certificates: vec![certificate],
            cipher: ContentEncryption::Aes256Cbc,
            key_transport: KeyTransport::RsaPkcs1v15,
        }
    }
}

/// Everything about a message except its payload: the partnership's outbound settings.
#[derive(Debug, Clone)]
pub struct MessageOptions {
    /// Our AS2 ID (`AS2-From`).
    pub from: String,
    /// The partner's AS2 ID (`AS2-To`).
    pub to: String,
    /// `Subject` header.
    pub subject: String,
    /// Compression and where it goes.
    pub compression: Compression,
    /// zlib level, 0 (store) to 9 (smallest); 6 unless the partnership says otherwise.
    pub compression_level: u32,
    /// Signing, if any.
    pub signing: Option<Signing>,
    /// Encryption, if any.
    pub encryption: Option<Encryption>,
    /// Transfer encoding of inner parts.
    pub body_encoding: BodyEncoding,
    /// The receipt to ask for, if any.
    pub mdn: Option<MdnRequest>,
}

impl MessageOptions {
    /// A plain message from `from` to `to` with no security and no receipt.
    pub fn new(from: impl Into<String>, to: impl Into<String>) -> Self {
        MessageOptions {
            from: from.into(),
            to: to.into(),
            subject: "AS2 Message".into(),
            compression: Compression::None,
            compression_level: cms::DEFAULT_COMPRESSION_LEVEL,
            signing: None,
            encryption: None,
            body_encoding: BodyEncoding::Binary,
            mdn: None,
        }
    }
}

/// A payload to send.
#[derive(Clone, Copy)]
pub struct Payload<'a> {
    /// The file's bytes.
    pub data: &'a [u8],
    /// The file name for Content-Disposition, if any.
    pub filename: Option<&'a str>,
    /// The MIME type, for example `application/edi-x12`.
    pub content_type: &'a str,
}

impl fmt::Debug for Payload<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payload")
            .field("len", &self.data.len())
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .finish()
    }
}

impl<'a> Payload<'a> {
    /// A payload of the default type.
    pub fn new(data: &'a [u8], filename: Option<&'a str>) -> Self {
        Payload {
            data,
            filename,
            content_type: DEFAULT_CONTENT_TYPE,
        }
    }
}

/// A built message, ready to POST.
#[derive(Clone)]
pub struct OutboundMessage {
    /// The Message-ID, in angle brackets.
    pub message_id: String,
    /// HTTP headers (AS2 headers and the top-level MIME headers).
    pub headers: HeaderMap,
    /// The HTTP body: the outermost MIME entity's body, to POST as is.
    pub body: Vec<u8>,
    /// The MIC a receipt must echo.
    pub mic: Mic,
    /// The same MIC under every other algorithm the receipt may use (from `signed-receipt-micalg`).
    pub alternative_mics: Vec<Mic>,
    /// The layers applied, outermost first.
    pub layers: Vec<Layer>,
}

impl fmt::Debug for OutboundMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundMessage")
            .field("message_id", &self.message_id)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .field("mic", &self.mic)
            .field("layers", &self.layers)
            .finish()
    }
}

impl OutboundMessage {
    /// Every MIC the receipt may carry (primary first).
    pub fn expected_mics(&self) -> Vec<Mic> {
        let mut v = vec![self.mic.clone()];
        v.extend(self.alternative_mics.iter().cloned());
        v
    }
}

/// A MIME entity under construction: its complete bytes (headers, blank line, body) in one buffer,
/// so each layer can be added in place instead of copying the payload again.
struct Part {
    headers: HeaderMap,
    buf: Vec<u8>,
    body_offset: usize,
}

impl Part {
    fn new(headers: HeaderMap, body: &[u8]) -> Part {
        let head = head_bytes(&headers);
        let mut buf = Vec::with_capacity(head.len() + body.len());
        buf.extend_from_slice(&head);
        buf.extend_from_slice(body);
        Part {
            headers,
            buf,
            body_offset: head.len(),
        }
    }

    fn pkcs7(smime_type: &str, name: &str, der: &[u8], enc: BodyEncoding) -> Part {
        let headers = pkcs7_headers(smime_type, name, enc);
        match enc {
            BodyEncoding::Binary => Part::new(headers, der),
            BodyEncoding::Base64 => Part::new(headers, &mime::encode_base64_lines(der)),
        }
    }

    /// The headers and body, for the top level where headers travel as HTTP headers.
    fn into_http(mut self) -> (HeaderMap, Vec<u8>) {
        self.buf.drain(..self.body_offset);
        (self.headers, self.buf)
    }
}

/// Header lines plus the blank line that ends them.
pub(crate) fn head_bytes(h: &HeaderMap) -> Vec<u8> {
    let mut out = h.to_bytes();
    out.extend_from_slice(b"\r\n");
    out
}

pub(crate) fn transfer_encoding(h: &mut HeaderMap, enc: BodyEncoding) {
    h.append(
        "Content-Transfer-Encoding",
        match enc {
            BodyEncoding::Binary => "binary",
            BodyEncoding::Base64 => "base64",
        },
    );
}

/// The payload entity's headers.
pub(crate) fn payload_headers(
    content_type: &str,
    filename: Option<&str>,
    enc: BodyEncoding,
) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.append("Content-Type", content_type.to_string());
    transfer_encoding(&mut h, enc);
    if let Some(f) = filename {
        h.append(
            "Content-Disposition",
            crate::filename::attachment_disposition(f),
        );
    }
    h
}

pub(crate) fn pkcs7_headers(smime_type: &str, name: &str, enc: BodyEncoding) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.append(
        "Content-Type",
        format!("application/pkcs7-mime; smime-type={smime_type}; name={name}"),
    );
    transfer_encoding(&mut h, enc);
    h.append(
        "Content-Disposition",
        format!("attachment; filename={name}"),
    );
    h
}

/// What [`build`] and the streaming builder refuse before writing anything: AS2 IDs, an empty
/// receipt address, a Message-ID or content type that cannot be a header, a digest that cannot
/// sign, an encryption without a recipient.
pub(crate) fn check_options(
    opts: &MessageOptions,
    content_type: &str,
    message_id: &str,
) -> Result<()> {
    validate_as2_id(&opts.from)?;
    validate_as2_id(&opts.to)?;
    if opts
        .mdn
        .as_ref()
        .is_some_and(|m| m.return_to.trim().is_empty())
    {
        return Err(Error::Config(
            "Disposition-Notification-To must not be empty".into(),
        ));
    }
    if message_id.trim().is_empty() || message_id.contains(['\r', '\n']) {
        return Err(Error::Config(format!("invalid Message-ID {message_id:?}")));
    }
    let content_type = content_type.trim();
    if content_type.is_empty() || !content_type.contains('/') || content_type.contains(['\r', '\n'])
    {
        return Err(Error::Config(format!(
            "invalid payload content type {content_type:?}"
        )));
    }
    if let Some(s) = &opts.signing {
        if !s.digest.can_sign() {
            return Err(Error::UnsupportedAlgorithm(format!(
                "signing with {}",
                s.digest
            )));
        }
    }
    if opts
        .encryption
        .as_ref()
        .is_some_and(|e| e.certificates.is_empty())
    {
        return Err(Error::Config(
            "encryption needs at least one recipient certificate".into(),
        ));
    }
    Ok(())
}

/// Builds a message with the given Message-ID (use [`new_message_id`], or the original ID for a resend).
pub fn build(
    opts: &MessageOptions,
    payload: &Payload<'_>,
    message_id: &str,
    now: UnixTime,
) -> Result<OutboundMessage> {
    check_options(opts, payload.content_type, message_id)?;
    let content_type = payload.content_type.trim();
    let wrapped = opts.signing.is_some()
        || opts.encryption.is_some()
        || opts.compression != Compression::None;
    let inner_enc = if wrapped {
        opts.body_encoding
    } else {
        BodyEncoding::Binary
    };
    let mut layers = Vec::new();

    let payload_headers = payload_headers(content_type, payload.filename, inner_enc);
    let body: Cow<'_, [u8]> = match inner_enc {
        BodyEncoding::Binary => Cow::Borrowed(payload.data),
        BodyEncoding::Base64 => Cow::Owned(mime::encode_base64_lines(payload.data)),
    };
    let head = head_bytes(&payload_headers);

    let mic_algorithms = mic_algorithms(opts);
    // Unsigned: the MIC is over the payload entity, headers and all, when it is encrypted, and
    // over the content alone when it is not (RFC 4130 7.3.1; compression does not count, as
    // OpenAS2 has it). Receivers disagree about compressed-only messages, so a receipt with
    // the other form is accepted too. A signed message's MIC is taken below.
    let mut mics = None;
    if opts.signing.is_none() {
        let mut content = MultiDigest::new(&mic_algorithms)?;
        content.update(payload.data)?;
        let content = content.finish()?;
        mics = Some(if wrapped {
            let mut entity = MultiDigest::new(&mic_algorithms)?;
            entity.update(&head)?;
            entity.update(&body)?;
            let entity = entity.finish()?;
            if opts.encryption.is_some() {
                entity.into_iter().chain(content).collect()
            } else {
                content.into_iter().chain(entity).collect()
            }
        } else {
            content
        });
    }

    // `None` while the current entity is still the payload's (head + body, not yet copied).
    let mut part: Option<Part> = None;
    if opts.compression == Compression::BeforeSigning {
        let der = cms::compress_parts(&[&head, &body], opts.compression_level)?;
        part = Some(Part::pkcs7("compressed-data", "smime.p7z", &der, inner_enc));
        layers.push(Layer::Compressed);
    }
    let materialize =
        |part: Option<Part>| part.unwrap_or_else(|| Part::new(payload_headers.clone(), &body));

    if let Some(signing) = &opts.signing {
        let entity = materialize(part.take()).buf;
        let sig = cms::sign_detached(&entity, &signing.identity, signing.digest, signing.scheme)?;
        // The signature already digested the entity: its messageDigest is one MIC. Only the
        // other algorithms the receipt may use need a pass of their own.
        let signed_with =
            cms::signed_content_digest(&sig).map(|d| Mic::from_digest(signing.digest, &d));
        let rest: Vec<_> = mic_algorithms
            .iter()
            .copied()
            .filter(|a| signed_with.as_ref().is_none_or(|m| m.algorithm != *a))
            .collect();
        let mut computed = signed_with.into_iter().collect::<Vec<_>>();
        if !rest.is_empty() {
            let mut md = MultiDigest::new(&rest)?;
            md.update(&entity)?;
            computed.extend(md.finish()?);
        }
        // In the order of `mic_algorithms`: the one the receipt should carry first.
        let all: Vec<Mic> = mic_algorithms
            .iter()
            .filter_map(|a| computed.iter().find(|m| m.algorithm == *a).cloned())
            .collect();
        mics = Some(all);
        let (content_type, buf, body_offset) = multipart_signed(
            entity,
            &sig,
            signing.digest.name(signing.micalg_style),
            true,
        );
        part = Some(Part {
            headers: [("Content-Type", content_type)].into_iter().collect(),
            buf,
            body_offset,
        });
        layers.push(Layer::Signed {
            digest: signing.digest,
            scheme: Some(signing.scheme),
            signer: crate::keys::subject_name(&signing.identity.certificate),
        });
    }

    if opts.compression == Compression::AfterSigning {
        let der = cms::compress_parts(&[&materialize(part.take()).buf], opts.compression_level)?;
        part = Some(Part::pkcs7("compressed-data", "smime.p7z", &der, inner_enc));
        layers.push(Layer::Compressed);
    }

    let (top_headers, top_body) = if let Some(enc) = &opts.encryption {
        let entity = materialize(part.take()).buf;
        let der = cms::encrypt(entity, &enc.certificates, enc.cipher, enc.key_transport)?;
        let smime_type = if enc.cipher.is_authenticated() {
            "authEnveloped-data"
        } else {
            "enveloped-data"
        };
        layers.push(Layer::Encrypted {
            cipher: enc.cipher,
            key_transport: Some(enc.key_transport),
        });
        // The outermost part travels as the HTTP body, which is always binary.
        (
            pkcs7_headers(smime_type, "smime.p7m", BodyEncoding::Binary),
            der,
        )
    } else {
        match part {
            Some(p) => p.into_http(),
            None => (payload_headers, body.into_owned()),
        }
    };
    layers.reverse();

    let mut mics = mics.unwrap_or_default().into_iter();
    let mic = mics
        .next()
        .ok_or_else(|| Error::Crypto("no MIC was computed".into()))?;

    let mut headers = as2_headers(&opts.from, &opts.to, message_id, now, &opts.subject);
    for h in top_headers.iter() {
        headers.append(h.name.clone(), h.value.clone());
    }
    if let Some(mdn) = &opts.mdn {
        mdn.write_headers(&mut headers);
    }
    Ok(OutboundMessage {
        message_id: message_id.to_string(),
        headers,
        body: top_body,
        mic,
        alternative_mics: mics.collect(),
        layers,
    })
}

/// The MIC algorithms a receipt may use, the one it should use first: the first requested one we
/// support (RFC 4130 7.3.1; OpenAS2, Mendelson), else the signing digest (else SHA-256), then the
/// signing digest (pyas2lib answers in it whatever was asked), then the other requested ones.
pub(crate) fn mic_algorithms(opts: &MessageOptions) -> Vec<DigestAlgorithm> {
    let requested: Vec<DigestAlgorithm> = opts
        .mdn
        .as_ref()
        .and_then(|m| m.signed.as_ref())
        .map(|s| {
            s.micalgs
                .iter()
                .filter_map(|a| DigestAlgorithm::from_name(a))
                .collect()
        })
        .unwrap_or_default();
    let chosen =
        crate::mic::choose_algorithm(requested.iter().map(|d| d.name(NameStyle::Hyphenated)));
    let signing = opts.signing.as_ref().map(|s| s.digest);
    let mut all = Vec::new();
    for a in chosen.into_iter().chain(signing).chain(requested) {
        if !all.contains(&a) {
            all.push(a);
        }
    }
    if all.is_empty() {
        all.push(DigestAlgorithm::Sha256);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_stay_ascii_and_the_subject_reads_back() {
        let subject = "AS2 message PO 2026 \u{e9}t\u{e9} (1).x12";
        let h = as2_headers("ALPHA", "BETA", "<m@x>", UnixTime(1_700_000_000), subject);
        for (name, value) in h.iter().map(|f| (f.name.as_str(), f.value.as_str())) {
            assert!(value.is_ascii(), "{name}: {value}");
        }
        let e = crate::envelope::Envelope::from_headers(&h).unwrap();
        assert_eq!(e.subject.as_deref(), Some(subject));
    }

    #[test]
    fn compression_names() {
        for c in Compression::ALL {
            assert_eq!(c.name().parse::<Compression>().unwrap(), c);
        }
        assert_eq!(
            "compress-before-signing".parse::<Compression>().unwrap(),
            Compression::BeforeSigning
        );
        let e = "sometimes".parse::<Compression>().unwrap_err().to_string();
        assert!(e.contains("none, before-signing, after-signing"), "{e}");
    }

    #[test]
    fn plain_message_mic_is_over_content_only() {
        let opts = MessageOptions::new("A", "B");
        let m = build(
            &opts,
            &Payload::new(b"ISA*00~", Some("x.edi")),
            "<id@x>",
            UnixTime(0),
        )
        .unwrap();
        assert_eq!(m.body, b"ISA*00~");
        assert_eq!(
            m.mic,
            Mic::compute(DigestAlgorithm::Sha256, b"ISA*00~").unwrap()
        );
        assert_eq!(m.headers.get("content-type"), Some(DEFAULT_CONTENT_TYPE));
        assert_eq!(
            m.headers.get("Content-Disposition"),
            Some("attachment; filename=x.edi")
        );
        assert!(m.layers.is_empty());
    }

    #[test]
    fn rejects_bad_options() {
        let opts = MessageOptions::new("", "B");
        assert!(build(&opts, &Payload::new(b"x", None), "<i@x>", UnixTime(0)).is_err());
        let opts = MessageOptions::new("A", "B");
        let p = Payload {
            data: b"x",
            filename: None,
            content_type: "text/plain\r\nX-Injected: 1",
        };
        assert!(build(&opts, &p, "<i@x>", UnixTime(0)).is_err());
    }
}
