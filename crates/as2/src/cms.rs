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

/// The parts of the first SignerInfo that verification needs.
struct SignerDetails<'a> {
    sid: CertificateId,
    digest_oid: String,
    signed_attrs: Option<Tlv<'a>>,
    signature_oid: String,
    /// False when the signature AlgorithmIdentifier has no parameters at all.
    signature_params: bool,
    signature: &'a [u8],
}

const OID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";

/// Splits a SignedData into its fields and its first signer.
fn signed_data(der: &[u8]) -> Result<(Vec<Tlv<'_>>, SignerDetails<'_>, usize)> {
    const W: &str = "signed-data";
    let bad = |detail: &str| Error::MalformedCms {
        what: W,
        detail: detail.into(),
    };
    let sd = expect_kind(der, OID_SIGNED_DATA, W)?;
    let kids = sd.children().map_err(malformed(W))?;
    let signer_infos = kids
        .iter()
        .rev()
        .find(|t| t.tag == tag::SET)
        .ok_or_else(|| bad("no signer infos"))?
        .children()
        .map_err(malformed(W))?;
    let first = signer_infos.first().ok_or_else(|| bad("no signer info"))?;
    let si = first.children().map_err(malformed(W))?;
    // version, sid, digestAlgorithm, [0] signedAttrs?, signatureAlgorithm, signature, ...
    if si.len() < 5 {
        return Err(bad("signer info is truncated"));
    }
    let signed_attrs = si.get(3).filter(|t| t.tag == tag::CONTEXT_0).copied();
    let rest = if signed_attrs.is_some() {
        &si[4..]
    } else {
        &si[3..]
    };
    let (sig_alg, signature) = match rest {
        [alg, sig, ..] if alg.tag == tag::SEQUENCE && sig.tag == tag::OCTET_STRING => (alg, sig),
        _ => return Err(bad("signer info has no signature")),
    };
    let alg_kids = sig_alg.children().map_err(malformed(W))?;
    let details = SignerDetails {
        sid: certificate_id(&si[1]),
        digest_oid: first_oid(&si[2]).unwrap_or_default(),
        signed_attrs,
        signature_oid: alg_kids
            .first()
            .and_then(|o| o.oid().ok())
            .unwrap_or_default(),
        signature_params: alg_kids.len() > 1,
        signature: signature.content,
    };
    Ok((kids, details, signer_infos.len()))
}

/// Reads the algorithms and certificates of a SignedData.
pub fn inspect_signed(der: &[u8]) -> Result<SignedDataInfo> {
    const W: &str = "signed-data";
    let (kids, signer, signer_count) = signed_data(der)?;
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
    Ok(SignedDataInfo {
        digest: DigestAlgorithm::from_oid(&signer.digest_oid),
        digest_oid: signer.digest_oid,
        scheme: SignatureScheme::from_oid(&signer.signature_oid),
        certificates,
        detached,
        signer_count,
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
    let (_, signer, _) = signed_data(signature_der)?;
    if signer.signature_oid == OID_RSASSA_PSS && !signer.signature_params {
        return verify_pss_without_params(
            &signer,
            digest,
            content,
            trusted,
            try_canonical,
            signed_by,
        );
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

/// RSASSA-PSS whose AlgorithmIdentifier omits the (mandatory) parameters, as pyas2lib writes it.
/// OpenSSL refuses these; we read them as PSS with the signer's digest for both hash and MGF1 and
/// whatever salt length the signature carries, and check the signed attributes ourselves.
fn verify_pss_without_params(
    signer: &SignerDetails<'_>,
    digest: DigestAlgorithm,
    content: &[u8],
    trusted: &[X509],
    try_canonical: bool,
    signed_by: impl Fn() -> String,
) -> Result<VerifiedSignature> {
    use openssl::hash::hash;
    use openssl::rsa::Padding;
    use openssl::sign::{RsaPssSaltlen, Verifier};

    let cert = trusted
        .iter()
        .find(|c| signer.sid.matches(c))
        .ok_or_else(|| Error::UnknownSigner(signed_by()))?;
    let attrs = signer.signed_attrs.ok_or_else(|| {
        Error::AuthenticationFailed("RSASSA-PSS signature without signed attributes".into())
    })?;
    if attrs.raw.get(1) == Some(&0x80) {
        return Err(Error::AuthenticationFailed(
            "signed attributes are not DER encoded".into(),
        ));
    }
    // The signature covers the attributes' DER with the SET OF tag (RFC 5652 section 5.4).
    let mut set = attrs.raw.to_vec();
    set[0] = tag::SET;
    let key = cert.public_key()?;
    let md = digest.message_digest();
    let mut v = Verifier::new(md, &key)?;
    v.set_rsa_padding(Padding::PKCS1_PSS)?;
    // -2 when verifying means "recover the salt length": signers differ (digest length, maximum).
    v.set_rsa_pss_saltlen(RsaPssSaltlen::MAXIMUM_LENGTH)?;
    v.set_rsa_mgf1_md(md)?;
    v.update(&set)?;
    if !v.verify(signer.signature).unwrap_or(false) {
        return Err(Error::AuthenticationFailed(
            "RSASSA-PSS signature does not verify".into(),
        ));
    }
    let expected = attrs
        .children()
        .map_err(malformed("signed-data"))?
        .into_iter()
        .find_map(|attr| {
            let kids = attr.children().ok()?;
            (kids.first()?.oid().ok()? == OID_MESSAGE_DIGEST)
                .then(|| {
                    kids.get(1)?
                        .children()
                        .ok()?
                        .first()
                        .map(|o| o.content.to_vec())
                })
                .flatten()
        })
        .ok_or_else(|| Error::AuthenticationFailed("no message-digest attribute".into()))?;
    let matches = |data: &[u8]| hash(md, data).map(|d| d.as_ref() == expected.as_slice());
    let canonicalized = if matches(content)? {
        false
    } else if try_canonical && matches(&crate::mime::canonicalize(content))? {
        true
    } else {
        return Err(Error::IntegrityCheckFailed);
    };
    Ok(VerifiedSignature {
        digest,
        scheme: Some(SignatureScheme::RsaPss),
        signer: cert.clone(),
        canonicalized,
    })
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

/// How a recipient (RecipientInfo) or signer (SignerInfo) names its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateId {
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

impl CertificateId {
    /// True when `cert` is the certificate this recipient names.
    pub fn matches(&self, cert: &X509Ref) -> bool {
        match self {
            CertificateId::IssuerSerial { issuer, serial } => {
                let ci = cert.issuer_name().to_der().unwrap_or_default();
                let cs = cert
                    .serial_number()
                    .to_bn()
                    .map(|b| b.to_vec())
                    .unwrap_or_default();
                ci == *issuer && cs == *serial
            }
            CertificateId::SubjectKeyId(id) => cert
                .subject_key_id()
                .map(|k| k.as_slice() == id.as_slice())
                .unwrap_or(false),
            CertificateId::Other => false,
        }
    }
}

fn certificate_id(t: &Tlv<'_>) -> CertificateId {
    match t.tag {
        tag::SEQUENCE => match t.children().ok().as_deref() {
            Some([issuer, serial, ..]) => {
                let s = serial.content;
                let skip = s.iter().take_while(|&&b| b == 0).count();
                CertificateId::IssuerSerial {
                    issuer: issuer.raw.to_vec(),
                    serial: s[skip..].to_vec(),
                }
            }
            _ => CertificateId::Other,
        },
        tag::CONTEXT_0_PRIMITIVE => CertificateId::SubjectKeyId(t.content.to_vec()),
        _ => CertificateId::Other,
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
    pub recipients: Vec<(CertificateId, Option<KeyTransport>)>,
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
            recipients.push((CertificateId::Other, None));
            continue;
        }
        let f = ri.children().map_err(malformed(W))?;
        let id = f.get(1).map_or(CertificateId::Other, certificate_id);
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
            .any(|(r, _)| *r == CertificateId::Other)
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
