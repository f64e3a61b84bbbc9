//! CMS (RFC 5652) operations AS2 needs: detached signatures, enveloped data, and zlib
//! compressed data (RFC 3274), with errors in AS2 terms.

use std::io::Read;

use openssl::cms::CmsContentInfo;
use openssl::x509::{X509Ref, X509};

use crate::algorithm::{
    legacy_cipher_name, ContentEncryption, DigestAlgorithm, KeyTransport, SignatureScheme,
};
use crate::asn1::{self, tag, Tlv};
use crate::error::{Error, Result};
use crate::ffi;
use crate::keys::{subject_name, Identity};

/// id-data
pub const OID_DATA: &str = "1.2.840.113549.1.7.1";
/// id-signedData
pub const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
/// id-envelopedData
pub const OID_ENVELOPED_DATA: &str = "1.2.840.113549.1.7.3";
/// id-ct-authEnvelopedData (RFC 5083)
pub const OID_AUTH_ENVELOPED_DATA: &str = "1.2.840.113549.1.9.16.1.23";
/// id-ct-compressedData (RFC 3274)
pub const OID_COMPRESSED_DATA: &str = "1.2.840.113549.1.9.16.1.9";
/// id-alg-zlibCompress (RFC 3274)
pub const OID_ZLIB: &str = "1.2.840.113549.1.9.16.3.8";

/// What a CMS ContentInfo holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentKind {
    /// Plain data.
    Data,
    /// SignedData.
    SignedData,
    /// EnvelopedData.
    EnvelopedData,
    /// AuthEnvelopedData (AES-GCM).
    AuthEnvelopedData,
    /// CompressedData.
    CompressedData,
    /// Anything else, by OID.
    Other(String),
}

fn malformed(what: &'static str) -> impl Fn(asn1::Asn1Error) -> Error {
    move |e| Error::MalformedCms {
        what,
        detail: e.to_string(),
    }
}

/// Splits a ContentInfo into its content type OID and the `[0]`-wrapped content, if present.
fn content_info<'a>(der: &'a [u8], what: &'static str) -> Result<(String, Option<Tlv<'a>>)> {
    let ci = asn1::read_all(der)
        .and_then(|t| t.expect(tag::SEQUENCE, "ContentInfo"))
        .map_err(malformed(what))?;
    let kids = ci.children().map_err(malformed(what))?;
    let oid = kids
        .first()
        .ok_or_else(|| Error::MalformedCms {
            what,
            detail: "empty ContentInfo".into(),
        })?
        .oid()
        .map_err(malformed(what))?;
    let content = match kids.get(1) {
        Some(explicit) if explicit.tag == tag::CONTEXT_0 => {
            let inner = explicit.children().map_err(malformed(what))?;
            inner.into_iter().next()
        }
        Some(_) => {
            return Err(Error::MalformedCms {
                what,
                detail: "ContentInfo content is not tagged [0]".into(),
            })
        }
        None => None,
    };
    Ok((oid, content))
}

/// The kind of a DER/BER ContentInfo.
pub fn content_kind(der: &[u8]) -> Result<ContentKind> {
    let (oid, _) = content_info(der, "content-info")?;
    Ok(match oid.as_str() {
        OID_DATA => ContentKind::Data,
        OID_SIGNED_DATA => ContentKind::SignedData,
        OID_ENVELOPED_DATA => ContentKind::EnvelopedData,
        OID_AUTH_ENVELOPED_DATA => ContentKind::AuthEnvelopedData,
        OID_COMPRESSED_DATA => ContentKind::CompressedData,
        _ => ContentKind::Other(oid),
    })
}

fn expect_kind<'a>(der: &'a [u8], oid: &str, what: &'static str) -> Result<Tlv<'a>> {
    let (found, content) = content_info(der, what)?;
    if found != oid {
        return Err(Error::MalformedCms {
            what,
            detail: format!("content type is {found}, not {oid}"),
        });
    }
    content.ok_or_else(|| Error::MalformedCms {
        what,
        detail: "ContentInfo has no content".into(),
    })
}

fn first_oid(alg: &Tlv<'_>) -> Option<String> {
    alg.children().ok()?.first()?.oid().ok()
}

// ---------------------------------------------------------------- signatures

/// What a SignedData structure says about itself (before any verification).
#[derive(Debug, Clone)]
pub struct SignedDataInfo {
    /// The first signer's digest algorithm OID.
    pub digest_oid: String,
    /// That digest, if we support it.
    pub digest: Option<DigestAlgorithm>,
    /// The first signer's signature scheme, if recognised.
    pub scheme: Option<SignatureScheme>,
    /// Certificates carried in the structure.
    pub certificates: Vec<X509>,
    /// True when the content is not inside (a detached signature).
    pub detached: bool,
    /// Number of SignerInfos.
    pub signer_count: usize,
}

/// Reads the algorithms and certificates of a SignedData.
pub fn inspect_signed(der: &[u8]) -> Result<SignedDataInfo> {
    const W: &str = "signed-data";
    let sd = expect_kind(der, OID_SIGNED_DATA, W)?;
    let kids = sd.children().map_err(malformed(W))?;
    let encap = kids
        .iter()
        .find(|t| t.tag == tag::SEQUENCE)
        .ok_or_else(|| Error::MalformedCms {
            what: W,
            detail: "no encapsulated content info".into(),
        })?;
    let detached = encap.children().map_err(malformed(W))?.len() < 2;
    let mut certificates = Vec::new();
    if let Some(certs) = kids.iter().find(|t| t.tag == tag::CONTEXT_0) {
        for c in certs.children().map_err(malformed(W))? {
            if c.tag == tag::SEQUENCE {
                if let Ok(x) = X509::from_der(c.raw) {
                    certificates.push(x);
                }
            }
        }
    }
    let signer_infos = kids
        .iter()
        .rev()
        .find(|t| t.tag == tag::SET)
        .ok_or_else(|| Error::MalformedCms {
            what: W,
            detail: "no signer infos".into(),
        })?
        .children()
        .map_err(malformed(W))?;
    let first = signer_infos.first().ok_or_else(|| Error::MalformedCms {
        what: W,
        detail: "no signer info".into(),
    })?;
    let si = first.children().map_err(malformed(W))?;
    // version, sid, digestAlgorithm, [0] signedAttrs?, signatureAlgorithm, signature, ...
    let digest_alg = si.get(2).ok_or_else(|| Error::MalformedCms {
        what: W,
        detail: "signer info is truncated".into(),
    })?;
    let digest_oid = first_oid(digest_alg).unwrap_or_default();
    let sig_alg = si[3..].iter().find(|t| t.tag == tag::SEQUENCE);
    Ok(SignedDataInfo {
        digest: DigestAlgorithm::from_oid(&digest_oid),
        digest_oid,
        scheme: sig_alg
            .and_then(first_oid)
            .as_deref()
            .and_then(SignatureScheme::from_oid),
        certificates,
        detached,
        signer_count: signer_infos.len(),
    })
}

/// Detached SignedData over `content`, taken as binary (no line-end conversion).
pub fn sign_detached(
    content: &[u8],
    identity: &Identity,
    digest: DigestAlgorithm,
    scheme: SignatureScheme,
) -> Result<Vec<u8>> {
    if !digest.can_sign() {
        return Err(Error::UnsupportedAlgorithm(format!(
            "signing with {digest}"
        )));
    }
    if scheme == SignatureScheme::Ecdsa && identity.private_key.id() != openssl::pkey::Id::EC {
        return Err(Error::Config("ECDSA signing needs an EC key".into()));
    }
    Ok(ffi::sign_detached(
        content,
        &identity.certificate,
        &identity.private_key,
        &identity.chain,
        digest.message_digest(),
        scheme == SignatureScheme::RsaPss,
    )?)
}

/// A signature that verified.
#[derive(Debug, Clone)]
pub struct VerifiedSignature {
    /// The digest the signer used.
    pub digest: DigestAlgorithm,
    /// The signature scheme, if recognised.
    pub scheme: Option<SignatureScheme>,
    /// The partner certificate that verified it.
    pub signer: X509,
    /// True when only the CRLF-canonicalised content verified.
    pub canonicalized: bool,
}

/// Verifies a detached signature over `content` with one of `trusted` (the partner's configured
/// certificates; a certificate inside the signature is never trusted on its own).
///
/// The content is tried as received first, then with bare LFs turned into CRLF if
/// `try_canonical` is set. Errors distinguish an unknown signer, a bad signature
/// (authentication-failed) and altered content (integrity-check-failed).
pub fn verify_detached(
    signature_der: &[u8],
    content: &[u8],
    trusted: &[X509],
    try_canonical: bool,
) -> Result<VerifiedSignature> {
    let info = inspect_signed(signature_der)?;
    let digest = info.digest.ok_or_else(|| {
        Error::UnsupportedAlgorithm(format!("signature digest {}", info.digest_oid))
    })?;
    let signed_by = || {
        info.certificates
            .first()
            .map(|c| format!("signed by {}", subject_name(c)))
            .unwrap_or_else(|| "signer certificate not included".into())
    };
    if trusted.is_empty() {
        return Err(Error::UnknownSigner(format!(
            "no certificate is configured for the partner; {}",
            signed_by()
        )));
    }
    // Signer and signed attributes first, without the content: tells a wrong or forged
    // signature apart from content altered after signing.
    if let Err(e) = ffi::verify_detached(signature_der, &[], trusted, false) {
        let reasons: Vec<String> = e
            .errors()
            .iter()
            .filter_map(|x| x.reason().map(str::to_string))
            .collect();
        let joined = reasons.join("; ");
        return Err(if joined.contains("signer certificate not found") {
            Error::UnknownSigner(signed_by())
        } else if joined.is_empty() {
            Error::AuthenticationFailed("signature does not verify".into())
        } else {
            Error::AuthenticationFailed(joined)
        });
    }
    let found = |data: &[u8]| ffi::verify_detached(signature_der, data, trusted, true).ok();
    if let Some(signer) = found(content) {
        return Ok(VerifiedSignature {
            digest,
            scheme: info.scheme,
            signer,
            canonicalized: false,
        });
    }
    if try_canonical {
        let canonical = crate::mime::canonicalize(content);
        if canonical.as_ref() != content {
            if let Some(signer) = found(&canonical) {
                return Ok(VerifiedSignature {
                    digest,
                    scheme: info.scheme,
                    signer,
                    canonicalized: true,
                });
            }
        }
    }
    Err(Error::IntegrityCheckFailed)
}

// ---------------------------------------------------------------- encryption

/// EnvelopedData (AuthEnvelopedData for AES-GCM) of `content` for `recipients`.
pub fn encrypt(
    content: &[u8],
    recipients: &[X509],
    cipher: ContentEncryption,
    transport: KeyTransport,
) -> Result<Vec<u8>> {
    if recipients.is_empty() {
        return Err(Error::Config(
            "encryption needs at least one recipient certificate".into(),
        ));
    }
    Ok(ffi::encrypt(
        content,
        recipients,
        cipher.cipher(),
        transport == KeyTransport::RsaOaep,
    )?)
}

/// How a recipient is identified in a RecipientInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientId {
    /// Issuer name (DER) and serial number (big-endian magnitude).
    IssuerSerial {
        /// DER of the issuer Name.
        issuer: Vec<u8>,
        /// Serial number bytes, leading zeros removed.
        serial: Vec<u8>,
    },
    /// Subject key identifier.
    SubjectKeyId(Vec<u8>),
    /// Key agreement or other recipient kinds we do not match up front.
    Other,
}

impl RecipientId {
    /// True when `cert` is the certificate this recipient names.
    pub fn matches(&self, cert: &X509Ref) -> bool {
        match self {
            RecipientId::IssuerSerial { issuer, serial } => {
                let ci = cert.issuer_name().to_der().unwrap_or_default();
                let cs = cert
                    .serial_number()
                    .to_bn()
                    .map(|b| b.to_vec())
                    .unwrap_or_default();
                ci == *issuer && cs == *serial
            }
            RecipientId::SubjectKeyId(id) => cert
                .subject_key_id()
                .map(|k| k.as_slice() == id.as_slice())
                .unwrap_or(false),
            RecipientId::Other => false,
        }
    }
}

/// What an EnvelopedData says about itself.
#[derive(Debug, Clone)]
pub struct EnvelopedInfo {
    /// True for AuthEnvelopedData.
    pub authenticated: bool,
    /// The content-encryption algorithm OID.
    pub cipher_oid: String,
    /// That cipher, if we support it.
    pub cipher: Option<ContentEncryption>,
    /// Each recipient and its key-transport algorithm (None for non-RSA recipients).
    pub recipients: Vec<(RecipientId, Option<KeyTransport>)>,
}

/// Reads the algorithms and recipients of an EnvelopedData or AuthEnvelopedData.
pub fn inspect_enveloped(der: &[u8]) -> Result<EnvelopedInfo> {
    const W: &str = "enveloped-data";
    let (oid, content) = content_info(der, W)?;
    let authenticated = match oid.as_str() {
        OID_ENVELOPED_DATA => false,
        OID_AUTH_ENVELOPED_DATA => true,
        other => {
            return Err(Error::MalformedCms {
                what: W,
                detail: format!("content type is {other}, not enveloped data"),
            })
        }
    };
    let ed = content.ok_or_else(|| Error::MalformedCms {
        what: W,
        detail: "ContentInfo has no content".into(),
    })?;
    let kids = ed.children().map_err(malformed(W))?;
    let ri_pos =
        kids.iter()
            .position(|t| t.tag == tag::SET)
            .ok_or_else(|| Error::MalformedCms {
                what: W,
                detail: "no recipient infos".into(),
            })?;
    let mut recipients = Vec::new();
    for ri in kids[ri_pos].children().map_err(malformed(W))? {
        if ri.tag != tag::SEQUENCE {
            recipients.push((RecipientId::Other, None));
            continue;
        }
        let f = ri.children().map_err(malformed(W))?;
        let id = match f.get(1) {
            Some(t) if t.tag == tag::SEQUENCE => {
                let is = t.children().map_err(malformed(W))?;
                match (is.first(), is.get(1)) {
                    (Some(issuer), Some(serial)) => {
                        let s = serial.content;
                        let skip = s.iter().take_while(|&&b| b == 0).count();
                        RecipientId::IssuerSerial {
                            issuer: issuer.raw.to_vec(),
                            serial: s[skip..].to_vec(),
                        }
                    }
                    _ => RecipientId::Other,
                }
            }
            Some(t) if t.tag == tag::CONTEXT_0_PRIMITIVE => {
                RecipientId::SubjectKeyId(t.content.to_vec())
            }
            _ => RecipientId::Other,
        };
        let transport = f
            .get(2)
            .and_then(first_oid)
            .as_deref()
            .and_then(KeyTransport::from_oid);
        recipients.push((id, transport));
    }
    let eci = kids
        .get(ri_pos + 1)
        .ok_or_else(|| Error::MalformedCms {
            what: W,
            detail: "no encrypted content info".into(),
        })?
        .children()
        .map_err(malformed(W))?;
    let cipher_oid = eci
        .get(1)
        .and_then(first_oid)
        .ok_or_else(|| Error::MalformedCms {
            what: W,
            detail: "no content-encryption algorithm".into(),
        })?;
    Ok(EnvelopedInfo {
        authenticated,
        cipher: ContentEncryption::from_oid(&cipher_oid),
        cipher_oid,
        recipients,
    })
}

/// A decryption that succeeded.
#[derive(Debug, Clone)]
pub struct Decrypted {
    /// The plaintext (a MIME entity in AS2).
    pub content: Vec<u8>,
    /// The cipher used.
    pub cipher: ContentEncryption,
    /// The key transport used for our recipient info.
    pub key_transport: Option<KeyTransport>,
    /// Which of our certificates it was encrypted for.
    pub recipient: X509,
}

/// Decrypts with whichever of `identities` the message was encrypted for.
pub fn decrypt(der: &[u8], identities: &[Identity]) -> Result<Decrypted> {
    let info = inspect_enveloped(der)?;
    let cipher = info.cipher.ok_or_else(|| {
        Error::UnsupportedAlgorithm(match legacy_cipher_name(&info.cipher_oid) {
            Some(name) => format!("content encryption {name} ({})", info.cipher_oid),
            None => format!("content encryption {}", info.cipher_oid),
        })
    })?;
    let mut candidates: Vec<(&Identity, Option<KeyTransport>)> = Vec::new();
    for (rid, transport) in &info.recipients {
        if let Some(id) = identities.iter().find(|i| rid.matches(&i.certificate)) {
            candidates.push((id, *transport));
        }
    }
    if candidates.is_empty() {
        // Recipients named in ways we cannot match up front (key agreement): let OpenSSL try.
        if info
            .recipients
            .iter()
            .any(|(r, _)| *r == RecipientId::Other)
        {
            candidates = identities.iter().map(|i| (i, None)).collect();
        } else {
            return Err(Error::NoMatchingRecipient);
        }
    }
    let cms = CmsContentInfo::from_der(der).map_err(|e| Error::MalformedCms {
        what: "enveloped-data",
        detail: e.to_string(),
    })?;
    let mut last = None;
    for (identity, key_transport) in candidates {
        match cms.decrypt(&identity.private_key, &identity.certificate) {
            Ok(content) => {
                return Ok(Decrypted {
                    content,
                    cipher,
                    key_transport,
                    recipient: identity.certificate.clone(),
                })
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Error::DecryptionFailed(
        last.and_then(|e| {
            e.errors()
                .first()
                .and_then(|x| x.reason().map(str::to_string))
        })
        .unwrap_or_else(|| "the content could not be decrypted".into()),
    ))
}

// ---------------------------------------------------------------- compression

/// CompressedData (zlib) of `content`.
pub fn compress(content: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(content.len() / 4 + 64),
        flate2::Compression::default(),
    );
    z.write_all(content)
        .and_then(|_| z.flush())
        .map_err(|e| Error::Crypto(format!("compression failed: {e}")))?;
    let deflated = z
        .finish()
        .map_err(|e| Error::Crypto(format!("compression failed: {e}")))?;
    let alg = asn1::der(tag::SEQUENCE, &asn1::der_oid(OID_ZLIB));
    let octets = asn1::der(tag::OCTET_STRING, &deflated);
    drop(deflated);
    let econtent = asn1::der(tag::CONTEXT_0, &octets);
    drop(octets);
    let encap = asn1::der_seq(tag::SEQUENCE, &[&asn1::der_oid(OID_DATA), &econtent]);
    drop(econtent);
    let version = asn1::der(tag::INTEGER, &[0]);
    let cd = asn1::der_seq(tag::SEQUENCE, &[&version, &alg, &encap]);
    drop(encap);
    let wrapped = asn1::der(tag::CONTEXT_0, &cd);
    drop(cd);
    Ok(asn1::der_seq(
        tag::SEQUENCE,
        &[&asn1::der_oid(OID_COMPRESSED_DATA), &wrapped],
    ))
}

/// Inflates CompressedData, failing with [`Error::DecompressionLimit`] past `limit` bytes.
pub fn decompress(der: &[u8], limit: u64) -> Result<Vec<u8>> {
    const W: &str = "compressed-data";
    let cd = expect_kind(der, OID_COMPRESSED_DATA, W)?;
    let kids = cd.children().map_err(malformed(W))?;
    let (alg, encap) = match kids.as_slice() {
        [_version, alg, encap, ..] => (alg, encap),
        _ => {
            return Err(Error::MalformedCms {
                what: W,
                detail: "CompressedData is truncated".into(),
            })
        }
    };
    let alg_oid = first_oid(alg).unwrap_or_default();
    if alg_oid != OID_ZLIB {
        return Err(Error::UnsupportedAlgorithm(format!(
            "compression {alg_oid}"
        )));
    }
    let econtent = encap
        .children()
        .map_err(malformed(W))?
        .into_iter()
        .find(|t| t.tag == tag::CONTEXT_0)
        .ok_or_else(|| Error::MalformedCms {
            what: W,
            detail: "no compressed content".into(),
        })?;
    let octets = econtent
        .children()
        .map_err(malformed(W))?
        .into_iter()
        .next()
        .ok_or_else(|| Error::MalformedCms {
            what: W,
            detail: "empty compressed content".into(),
        })?
        .octets()
        .map_err(malformed(W))?;
    inflate(&octets, limit)
}

fn inflate(data: &[u8], limit: u64) -> Result<Vec<u8>> {
    let run = |reader: &mut dyn Read| -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(
            data.len()
                .saturating_mul(4)
                .min(limit as usize)
                .min(1 << 28),
        );
        reader.take(limit.saturating_add(1)).read_to_end(&mut out)?;
        Ok(out)
    };
    let out = match run(&mut flate2::read::ZlibDecoder::new(data)) {
        Ok(out) => out,
        // A few old products wrote raw deflate without the zlib wrapper.
        Err(zlib_err) => run(&mut flate2::read::DeflateDecoder::new(data))
            .map_err(|_| Error::DecompressionFailed(zlib_err.to_string()))?,
    };
    if out.len() as u64 > limit {
        return Err(Error::DecompressionLimit { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::UnixTime;

    fn id(cn: &str) -> Identity {
        Identity::generate_self_signed(cn, 2048, UnixTime(1_800_000_000), 30).unwrap()
    }

    #[test]
    fn compress_round_trip_and_limit() {
        let data = vec![b'x'; 100_000];
        let der = compress(&data).unwrap();
        assert_eq!(content_kind(&der).unwrap(), ContentKind::CompressedData);
        assert_eq!(decompress(&der, 1 << 20).unwrap(), data);
        assert!(matches!(
            decompress(&der, 1000),
            Err(Error::DecompressionLimit { limit: 1000 })
        ));
        assert!(matches!(
            decompress(&der[..der.len() - 5], 1 << 20),
            Err(Error::MalformedCms { .. })
        ));
        assert!(decompress(b"\x30\x03\x06\x01\x00", 10).is_err());
    }

    #[test]
    fn sign_verify_every_digest_and_scheme() {
        let a = id("A");
        for d in DigestAlgorithm::ALL.into_iter().filter(|d| d.can_sign()) {
            for s in [SignatureScheme::RsaPkcs1v15, SignatureScheme::RsaPss] {
                let sig = sign_detached(b"content\r\n", &a, d, s).unwrap();
                let info = inspect_signed(&sig).unwrap();
                assert_eq!(info.digest, Some(d));
                assert_eq!(info.scheme, Some(s));
                assert!(info.detached);
                let v = verify_detached(
                    &sig,
                    b"content\r\n",
                    std::slice::from_ref(&a.certificate),
                    true,
                )
                .unwrap();
                assert_eq!(v.digest, d);
                assert!(!v.canonicalized);
            }
        }
    }

    #[test]
    fn verify_errors_are_typed() {
        let a = id("A");
        let b = id("B");
        let sig = sign_detached(
            b"line\r\n",
            &a,
            DigestAlgorithm::Sha256,
            SignatureScheme::RsaPkcs1v15,
        )
        .unwrap();
        let trusted = [a.certificate.clone()];
        assert!(matches!(
            verify_detached(&sig, b"line\r\nX", &trusted, true),
            Err(Error::IntegrityCheckFailed)
        ));
        assert!(matches!(
            verify_detached(
                &sig,
                b"line\r\n",
                std::slice::from_ref(&b.certificate),
                true
            ),
            Err(Error::UnknownSigner(_))
        ));
        assert!(matches!(
            verify_detached(&sig, b"line\r\n", &[], true),
            Err(Error::UnknownSigner(_))
        ));
        assert!(matches!(
            verify_detached(&sig[..50], b"line\r\n", &trusted, true),
            Err(Error::MalformedCms { .. })
        ));
        // Canonical retry: signed over CRLF, received with bare LF.
        let v = verify_detached(&sig, b"line\n", &trusted, true).unwrap();
        assert!(v.canonicalized);
        assert!(verify_detached(&sig, b"line\n", &trusted, false).is_err());
    }

    #[test]
    fn encrypt_decrypt_every_cipher_and_transport() {
        let a = id("A");
        for c in ContentEncryption::ALL {
            for t in [KeyTransport::RsaPkcs1v15, KeyTransport::RsaOaep] {
                let der = encrypt(b"secret", std::slice::from_ref(&a.certificate), c, t).unwrap();
                let info = inspect_enveloped(&der).unwrap();
                assert_eq!(info.cipher, Some(c));
                assert_eq!(info.authenticated, c.is_authenticated());
                assert_eq!(info.recipients[0].1, Some(t));
                let d = decrypt(&der, std::slice::from_ref(&a)).unwrap();
                assert_eq!(d.content, b"secret");
                assert_eq!(d.cipher, c);
            }
        }
    }

    #[test]
    fn decrypt_errors_are_typed() {
        let a = id("A");
        let b = id("B");
        let der = encrypt(
            b"secret",
            std::slice::from_ref(&a.certificate),
            ContentEncryption::Aes128Cbc,
            KeyTransport::RsaPkcs1v15,
        )
        .unwrap();
        assert!(matches!(
            decrypt(&der, std::slice::from_ref(&b)),
            Err(Error::NoMatchingRecipient)
        ));
        // Right certificate, wrong key: matched by issuer/serial, then fails to decrypt.
        let forged = Identity {
            certificate: a.certificate.clone(),
            private_key: b.private_key.clone(),
            chain: vec![],
        };
        assert!(matches!(
            decrypt(&der, &[forged]),
            Err(Error::DecryptionFailed(_))
        ));
        assert!(matches!(
            decrypt(&der[..40], std::slice::from_ref(&a)),
            Err(Error::MalformedCms { .. })
        ));
        assert!(matches!(
            decrypt(b"garbage", &[a]),
            Err(Error::MalformedCms { .. })
        ));
    }
}
