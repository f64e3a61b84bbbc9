//! CMS (RFC 5652) operations AS2 needs: detached signatures, enveloped data, and zlib
//! compressed data (RFC 3274), with errors in AS2 terms.

use std::borrow::Cow;
use std::io::Read;

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

/// OpenSSL's BIOs take int-sized lengths: content of 2 GiB or more cannot be signed, verified or
/// decrypted in one piece.
fn check_size(len: usize) -> Result<()> {
    if len > i32::MAX as usize {
        return Err(Error::Config(format!(
            "{len} bytes is more than the 2 GiB a message part may hold"
        )));
    }
    Ok(())
}

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

/// The value of the messageDigest signed attribute: the digest of the signed content.
fn message_digest_attribute(attrs: &Tlv<'_>) -> Option<Vec<u8>> {
    attrs.children().ok()?.into_iter().find_map(|attr| {
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
}

/// The digest of the signed content, as the first signer's messageDigest attribute states it.
/// Once a signature has verified, this is the content's digest without hashing it again.
pub fn signed_content_digest(der: &[u8]) -> Option<Vec<u8>> {
    let (_, signer, _) = signed_data(der).ok()?;
    message_digest_attribute(&signer.signed_attrs?)
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
    check_size(content.len())?;
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

/// Which form of the signed bytes a signature verified over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedForm {
    /// The bytes exactly as received.
    AsReceived,
    /// Bare LFs turned into CRLF throughout: the MIME canonical form of a text part.
    Canonical,
    /// The part's headers in CRLF form, its body exactly as received: a binary part that passed
    /// through something that turned its header CRLFs into LFs (Mendelson captures; what
    /// pyas2lib's binary canonicalisation signs).
    CanonicalHeaders,
}

impl SignedForm {
    /// `content` in this form (borrowed when nothing changes).
    pub fn apply(self, content: &[u8]) -> Cow<'_, [u8]> {
        match self {
            SignedForm::AsReceived => Cow::Borrowed(content),
            SignedForm::Canonical => crate::mime::canonicalize(content),
            SignedForm::CanonicalHeaders => {
                let Some(end) = crate::mime::header_block_end(content) else {
                    return Cow::Borrowed(content);
                };
                match crate::mime::canonicalize(&content[..end]) {
                    Cow::Borrowed(_) => Cow::Borrowed(content),
                    Cow::Owned(mut head) => {
                        head.extend_from_slice(&content[end..]);
                        Cow::Owned(head)
                    }
                }
            }
        }
    }
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
    /// The form of the content that verified.
    pub form: SignedForm,
}

/// Verifies a detached signature over `content` with one of `trusted` (the partner's configured
/// certificates; a certificate inside the signature is never trusted on its own).
///
/// The content is tried as received first, then in each of `alternatives` in order (those that
/// change nothing are skipped). Errors distinguish an unknown signer, a bad signature
/// (authentication-failed) and altered content (integrity-check-failed).
pub fn verify_detached(
    signature_der: &[u8],
    content: &[u8],
    trusted: &[X509],
    alternatives: &[SignedForm],
) -> Result<VerifiedSignature> {
    check_size(content.len())?;
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
            alternatives,
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
    let found = |data: &[u8]| Ok(ffi::verify_detached(signature_der, data, trusted, true).ok());
    let (form, signer) =
        first_form(content, alternatives, found)?.ok_or(Error::IntegrityCheckFailed)?;
    Ok(VerifiedSignature {
        digest,
        scheme: info.scheme,
        signer,
        form,
    })
}

/// The first form of `content` (as received, then those of `alternatives` that change it) for
/// which `check` finds something, with what it found.
fn first_form<T>(
    content: &[u8],
    alternatives: &[SignedForm],
    check: impl Fn(&[u8]) -> Result<Option<T>>,
) -> Result<Option<(SignedForm, T)>> {
    if let Some(t) = check(content)? {
        return Ok(Some((SignedForm::AsReceived, t)));
    }
    for &form in alternatives {
        if let Cow::Owned(other) = form.apply(content) {
            if let Some(t) = check(&other)? {
                return Ok(Some((form, t)));
            }
        }
    }
    Ok(None)
}

/// RSASSA-PSS whose AlgorithmIdentifier omits the (mandatory) parameters, as pyas2lib writes it.
/// OpenSSL refuses these; we read them as PSS with the signer's digest for both hash and MGF1 and
/// whatever salt length the signature carries, and check the signed attributes ourselves.
fn verify_pss_without_params(
    signer: &SignerDetails<'_>,
    digest: DigestAlgorithm,
    content: &[u8],
    trusted: &[X509],
    alternatives: &[SignedForm],
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
    let expected = message_digest_attribute(&attrs)
        .ok_or_else(|| Error::AuthenticationFailed("no message-digest attribute".into()))?;
    let matches = |data: &[u8]| -> Result<Option<()>> {
        Ok((hash(md, data)?.as_ref() == expected.as_slice()).then_some(()))
    };
    let (form, ()) =
        first_form(content, alternatives, matches)?.ok_or(Error::IntegrityCheckFailed)?;
    Ok(VerifiedSignature {
        digest,
        scheme: Some(SignatureScheme::RsaPss),
        signer: cert.clone(),
        form,
    })
}

// ---------------------------------------------------------------- encryption

/// rsaEncryption (PKCS#1 v1.5 key transport)
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
/// id-RSAES-OAEP
const OID_RSAES_OAEP: &str = "1.2.840.113549.1.1.7";

/// EnvelopedData (AuthEnvelopedData for AES-GCM) of `content` for `recipients` (RSA keys).
///
/// Written here rather than by OpenSSL's CMS code so that the DER is sized up front and the
/// content is encrypted in place, in its own buffer: OpenSSL accumulates the ciphertext in a
/// memory BIO that grows by doubling, which costs three payloads of memory at the peak.
pub fn encrypt(
    content: Vec<u8>,
    recipients: &[X509],
    cipher: ContentEncryption,
    transport: KeyTransport,
) -> Result<Vec<u8>> {
    use openssl::encrypt::Encrypter;
    use openssl::rsa::Padding;
    use openssl::symm::{Crypter, Mode};

    if recipients.is_empty() {
        return Err(Error::Config(
            "encryption needs at least one recipient certificate".into(),
        ));
    }
    let c = cipher.cipher();
    let mut key = vec![0u8; c.key_len()];
    openssl::rand::rand_bytes(&mut key)?;
    let iv_len = if cipher.is_authenticated() {
        12
    } else {
        c.iv_len().unwrap_or(0)
    };
    let mut iv = vec![0u8; iv_len];
    openssl::rand::rand_bytes(&mut iv)?;

    // RecipientInfos: the content key encrypted to each certificate.
    let mut infos = Vec::new();
    for cert in recipients {
        let public = cert.public_key()?;
        if public.id() != openssl::pkey::Id::RSA {
            return Err(Error::Config(format!(
                "the encryption certificate {} does not have an RSA key",
                subject_name(cert)
            )));
        }
        let mut enc = Encrypter::new(&public)?;
        let alg = match transport {
            KeyTransport::RsaPkcs1v15 => {
                enc.set_rsa_padding(Padding::PKCS1)?;
                asn1::der_seq(
                    tag::SEQUENCE,
                    &[&asn1::der_oid(OID_RSA_ENCRYPTION), &[tag::NULL, 0]],
                )
            }
            KeyTransport::RsaOaep => {
                // SHA-1 and MGF1-SHA-1: the RSAES-OAEP defaults, written as empty parameters.
                enc.set_rsa_padding(Padding::PKCS1_OAEP)?;
                asn1::der_seq(
                    tag::SEQUENCE,
                    &[&asn1::der_oid(OID_RSAES_OAEP), &[tag::SEQUENCE, 0]],
                )
            }
        };
        let mut ek = vec![0u8; enc.encrypt_len(&key)?];
        let n = enc.encrypt(&key, &mut ek)?;
        ek.truncate(n);
        let (issuer, serial) = issuer_and_serial(cert)?;
        let rid = asn1::der_seq(tag::SEQUENCE, &[&issuer, &serial]);
        infos.push(asn1::der_seq(
            tag::SEQUENCE,
            &[
                &[tag::INTEGER, 1, 0],
                &rid,
                &alg,
                &asn1::der(tag::OCTET_STRING, &ek),
            ],
        ));
    }
    let info_refs: Vec<&[u8]> = infos.iter().map(Vec::as_slice).collect();
    let recipient_set = asn1::der_seq(tag::SET, &info_refs);

    let params = if cipher.is_authenticated() {
        // GCMParameters: the nonce and a 16-byte ICV (the default is 12, so it is written).
        asn1::der_seq(
            tag::SEQUENCE,
            &[&asn1::der(tag::OCTET_STRING, &iv), &[tag::INTEGER, 1, 16]],
        )
    } else {
        asn1::der(tag::OCTET_STRING, &iv)
    };
    let content_alg = asn1::der_seq(tag::SEQUENCE, &[&asn1::der_oid(cipher.oid()), &params]);
    let block = c.block_size();
    let ct_len = if block > 1 {
        (content.len() / block + 1) * block
    } else {
        content.len()
    };
    let data_oid = asn1::der_oid(OID_DATA);
    let eci_len = data_oid.len() + content_alg.len() + header_len(ct_len) + ct_len;
    let mac = if cipher.is_authenticated() { 2 + 16 } else { 0 };
    let version = [tag::INTEGER, 1, 0];
    let body_len = version.len() + recipient_set.len() + header_len(eci_len) + eci_len + mac;
    let (outer_oid, outer_len) = (
        asn1::der_oid(if cipher.is_authenticated() {
            OID_AUTH_ENVELOPED_DATA
        } else {
            OID_ENVELOPED_DATA
        }),
        header_len(body_len) + body_len,
    );
    let ci_len = outer_oid.len() + header_len(outer_len) + outer_len;
    let total = header_len(ci_len) + ci_len;

    let mut prefix = Vec::with_capacity(1024);
    let out = &mut prefix;
    push_header(out, tag::SEQUENCE, ci_len);
    out.extend_from_slice(&outer_oid);
    push_header(out, tag::CONTEXT_0, outer_len);
    push_header(out, tag::SEQUENCE, body_len);
    out.extend_from_slice(&version);
    out.extend_from_slice(&recipient_set);
    push_header(out, tag::SEQUENCE, eci_len);
    out.extend_from_slice(&data_oid);
    out.extend_from_slice(&content_alg);
    push_header(out, tag::CONTEXT_0_PRIMITIVE, ct_len);

    // Encrypt in place: the DER prefix goes in front of the content in its own buffer, then each
    // chunk is copied out, encrypted, and written back over itself. The cipher never writes more
    // than it has read, so no write reaches bytes not yet read.
    let mut out = content;
    let start = prefix.len();
    let plain_len = out.len();
    out.reserve_exact(start + (ct_len - plain_len) + mac);
    out.splice(0..0, prefix);
    let mut crypter = Crypter::new(c, Mode::Encrypt, &key, Some(&iv))?;
    const CHUNK: usize = 1 << 16;
    let mut input = vec![0u8; CHUNK];
    let mut output = vec![0u8; CHUNK + block];
    let (mut read, mut written) = (start, start);
    while read < start + plain_len {
        let n = (start + plain_len - read).min(CHUNK);
        input[..n].copy_from_slice(&out[read..read + n]);
        read += n;
        let w = crypter.update(&input[..n], &mut output)?;
        out[written..written + w].copy_from_slice(&output[..w]);
        written += w;
    }
    let w = crypter.finalize(&mut output)?;
    out.truncate(written);
    out.extend_from_slice(&output[..w]);
    if out.len() - start != ct_len {
        return Err(Error::Crypto(format!(
            "cipher wrote {} bytes, {ct_len} expected",
            out.len() - start
        )));
    }
    if cipher.is_authenticated() {
        let mut tag_bytes = [0u8; 16];
        crypter.get_tag(&mut tag_bytes)?;
        out.extend_from_slice(&asn1::der(tag::OCTET_STRING, &tag_bytes));
    }
    key.fill(0);
    input.fill(0);
    output.fill(0);
    debug_assert_eq!(out.len(), total);
    Ok(out)
}

/// The certificate's issuer Name and serial number INTEGER, as encoded in the certificate.
fn issuer_and_serial(cert: &X509Ref) -> Result<(Vec<u8>, Vec<u8>)> {
    let der = cert.to_der()?;
    let bad = |e: asn1::Asn1Error| Error::Key(format!("unreadable certificate: {e}"));
    let tbs = asn1::read_all(&der)
        .and_then(|c| c.children())
        .map_err(bad)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Key("empty certificate".into()))?
        .children()
        .map_err(bad)?;
    // TBSCertificate: [0] version?, serialNumber, signature, issuer, ...
    let skip = usize::from(tbs.first().is_some_and(|t| t.tag == tag::CONTEXT_0));
    match (tbs.get(skip), tbs.get(skip + 2)) {
        (Some(serial), Some(issuer))
            if serial.tag == tag::INTEGER && issuer.tag == tag::SEQUENCE =>
        {
            Ok((issuer.raw.to_vec(), serial.raw.to_vec()))
        }
        _ => Err(Error::Key(
            "certificate has no issuer and serial number".into(),
        )),
    }
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

/// Splits an EnvelopedData or AuthEnvelopedData into the structure without its encrypted content
/// (small) and the ciphertext (borrowed unless the sender chunked it).
fn detach_ciphertext(der: &[u8]) -> Result<(Vec<u8>, std::borrow::Cow<'_, [u8]>)> {
    const W: &str = "enveloped-data";
    let bad = |detail: &str| Error::MalformedCms {
        what: W,
        detail: detail.into(),
    };
    let (oid, content) = content_info(der, W)?;
    let body = content.ok_or_else(|| bad("ContentInfo has no content"))?;
    let kids = body.children().map_err(malformed(W))?;
    let eci_at = kids
        .iter()
        .position(|t| t.tag == tag::SET)
        .map(|i| i + 1)
        .filter(|&i| i < kids.len())
        .ok_or_else(|| bad("no encrypted content info"))?;
    let eci = kids[eci_at].children().map_err(malformed(W))?;
    let (ct_type, alg, ct) = match eci.as_slice() {
        [ct_type, alg, ct, ..] if ct.tag & 0x1f == 0 && ct.tag & 0xc0 == 0x80 => (ct_type, alg, ct),
        _ => return Err(bad("the encrypted content is not inside the structure")),
    };
    let ciphertext = ct.octets().map_err(malformed(W))?;
    let new_eci = asn1::der_seq(tag::SEQUENCE, &[ct_type.raw, alg.raw]);
    let parts: Vec<&[u8]> = kids
        .iter()
        .enumerate()
        .map(|(i, k)| {
            if i == eci_at {
                new_eci.as_slice()
            } else {
                k.raw
            }
        })
        .collect();
    let new_body = asn1::der_seq(tag::SEQUENCE, &parts);
    let wrapped = asn1::der(tag::CONTEXT_0, &new_body);
    let detached = asn1::der_seq(tag::SEQUENCE, &[&asn1::der_oid(&oid), &wrapped]);
    Ok((detached, ciphertext))
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
    let keys: Vec<_> = candidates
        .iter()
        .map(|(id, _)| (id.private_key.as_ref(), id.certificate.as_ref()))
        .collect();
    let (detached, ciphertext) = detach_ciphertext(der)?;
    check_size(ciphertext.len())?;
    match ffi::decrypt(&detached, &ciphertext, &keys) {
        Ok((i, content)) => Ok(Decrypted {
            content,
            cipher,
            key_transport: candidates[i].1,
            recipient: candidates[i].0.certificate.clone(),
        }),
        Err(e) => {
            let reason = e
                .errors()
                .first()
                .and_then(|x| x.reason().map(str::to_string))
                .unwrap_or_else(|| "the content could not be decrypted".into());
            // A structure inspect_enveloped accepted but OpenSSL cannot read is still malformed.
            if reason.contains("asn1")
                || reason.contains("wrong tag")
                || reason.contains("header too long")
            {
                Err(Error::MalformedCms {
                    what: "enveloped-data",
                    detail: reason,
                })
            } else {
                Err(Error::DecryptionFailed(reason))
            }
        }
    }
}

// ---------------------------------------------------------------- compression

/// The zlib level used unless a partnership asks for another (zlib's own default).
pub const DEFAULT_COMPRESSION_LEVEL: u32 = 6;

/// CompressedData (zlib, default level) of `content`.
pub fn compress(content: &[u8]) -> Result<Vec<u8>> {
    compress_parts(&[content], DEFAULT_COMPRESSION_LEVEL)
}

/// CompressedData (zlib at `level`, 0 to 9) of the concatenation of `parts`, without joining them.
pub fn compress_parts(parts: &[&[u8]], level: u32) -> Result<Vec<u8>> {
    if level > 9 {
        return Err(Error::Config(format!(
            "compression level {level} is outside 0 to 9"
        )));
    }
    let deflated = zlib(parts, level)?;
    // Write the DER around the deflated bytes in one buffer: lengths first, then one copy.
    let alg = asn1::der(tag::SEQUENCE, &asn1::der_oid(OID_ZLIB));
    let version = asn1::der(tag::INTEGER, &[0]);
    let data_oid = asn1::der_oid(OID_DATA);
    let octets_len = header_len(deflated.len()) + deflated.len();
    let econtent_len = header_len(octets_len) + octets_len;
    let encap_len = data_oid.len() + econtent_len;
    let cd_len = version.len() + alg.len() + header_len(encap_len) + encap_len;
    // The [0] EXPLICIT wrapper's content is the whole CompressedData TLV.
    let wrapped_len = header_len(cd_len) + cd_len;
    let outer_oid = asn1::der_oid(OID_COMPRESSED_DATA);
    let ci_len = outer_oid.len() + header_len(wrapped_len) + wrapped_len;
    let mut out = Vec::with_capacity(header_len(ci_len) + ci_len);
    push_header(&mut out, tag::SEQUENCE, ci_len);
    out.extend_from_slice(&outer_oid);
    push_header(&mut out, tag::CONTEXT_0, wrapped_len);
    push_header(&mut out, tag::SEQUENCE, cd_len);
    out.extend_from_slice(&version);
    out.extend_from_slice(&alg);
    push_header(&mut out, tag::SEQUENCE, encap_len);
    out.extend_from_slice(&data_oid);
    push_header(&mut out, tag::CONTEXT_0, octets_len);
    push_header(&mut out, tag::OCTET_STRING, deflated.len());
    out.extend_from_slice(&deflated);
    Ok(out)
}

/// The smallest run of input worth a thread of its own: a chunk starts without the previous
/// chunk's 32 KiB window, which costs next to nothing at this size.
const PARALLEL_CHUNK: usize = 1 << 20;

/// A zlib stream of the concatenated `parts`. Large inputs are cut into chunks deflated on all
/// available cores, pigz-style: each chunk is raw deflate ending in a sync flush (the last in a
/// final block), so together they form one valid stream; the Adler-32s are combined.
fn zlib(parts: &[&[u8]], level: u32) -> Result<Vec<u8>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    zlib_on(parts, level, cores.min(8))
}

fn zlib_on(parts: &[&[u8]], level: u32, threads: usize) -> Result<Vec<u8>> {
    use std::io::Write;
    let fail = |e: std::io::Error| Error::Crypto(format!("compression failed: {e}"));
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let chunks = (total / PARALLEL_CHUNK).clamp(1, threads.max(1));
    if chunks == 1 {
        let mut z = flate2::write::ZlibEncoder::new(
            Vec::with_capacity(total / 4 + 64),
            flate2::Compression::new(level),
        );
        for p in parts {
            z.write_all(p).map_err(fail)?;
        }
        return z.finish().map_err(fail);
    }
    let pieces = split_even(parts, total, chunks);
    let results: Vec<std::io::Result<(Vec<u8>, u32, usize)>> = std::thread::scope(|s| {
        let handles: Vec<_> = pieces
            .iter()
            .enumerate()
            .map(|(i, piece)| {
                let last = i + 1 == pieces.len();
                s.spawn(move || -> std::io::Result<(Vec<u8>, u32, usize)> {
                    let len: usize = piece.iter().map(|p| p.len()).sum();
                    let mut z = flate2::write::DeflateEncoder::new(
                        Vec::with_capacity(len / 4 + 64),
                        flate2::Compression::new(level),
                    );
                    let mut adler = Adler32::default();
                    for p in piece {
                        z.write_all(p)?;
                        adler.update(p);
                    }
                    let out = if last {
                        z.finish()?
                    } else {
                        // A sync flush ends on a byte boundary without a final block; the
                        // encoder's own final block, written on drop, goes to the emptied Vec.
                        z.flush()?;
                        std::mem::take(z.get_mut())
                    };
                    Ok((out, adler.value(), len))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("compression thread panicked")))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(total / 4 + 64);
    out.extend_from_slice(&[0x78, 0x9c]);
    let mut adler = 1u32;
    for r in results {
        let (bytes, a, len) = r.map_err(fail)?;
        out.extend_from_slice(&bytes);
        adler = adler32_combine(adler, a, len);
    }
    out.extend_from_slice(&adler.to_be_bytes());
    Ok(out)
}

/// Cuts the concatenation of `parts` into `n` runs of nearly equal length, as sub-slices.
fn split_even<'a>(parts: &[&'a [u8]], total: usize, n: usize) -> Vec<Vec<&'a [u8]>> {
    let target = total.div_ceil(n);
    let mut out = Vec::with_capacity(n);
    let mut current: Vec<&'a [u8]> = Vec::new();
    let mut room = target;
    for &p in parts {
        let mut rest = p;
        while !rest.is_empty() {
            let take = rest.len().min(room);
            current.push(&rest[..take]);
            rest = &rest[take..];
            room -= take;
            if room == 0 {
                out.push(std::mem::take(&mut current));
                room = target;
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

const ADLER_MOD: u32 = 65_521;

/// Adler-32 (RFC 1950), for the zlib trailer of a stream deflated in chunks.
#[derive(Debug, Clone, Copy)]
struct Adler32 {
    a: u32,
    b: u32,
}

impl Default for Adler32 {
    fn default() -> Self {
        Adler32 { a: 1, b: 0 }
    }
}

impl Adler32 {
    fn update(&mut self, data: &[u8]) {
        // 5552 is the most bytes before the 32-bit sums can overflow.
        for block in data.chunks(5552) {
            for &byte in block {
                self.a += u32::from(byte);
                self.b += self.a;
            }
            self.a %= ADLER_MOD;
            self.b %= ADLER_MOD;
        }
    }

    fn value(&self) -> u32 {
        (self.b << 16) | self.a
    }
}

/// The Adler-32 of A followed by B, from theirs and B's length (zlib's adler32_combine).
fn adler32_combine(adler1: u32, adler2: u32, len2: usize) -> u32 {
    let base = u64::from(ADLER_MOD);
    let rem = (len2 as u64) % base;
    let mut sum1 = u64::from(adler1 & 0xffff);
    let mut sum2 = (rem * sum1) % base;
    sum1 += u64::from(adler2 & 0xffff) + base - 1;
    sum2 += u64::from(adler1 >> 16) + u64::from(adler2 >> 16) + base - rem;
    if sum1 >= base {
        sum1 -= base;
    }
    if sum1 >= base {
        sum1 -= base;
    }
    if sum2 >= base << 1 {
        sum2 -= base << 1;
    }
    if sum2 >= base {
        sum2 -= base;
    }
    (sum1 | (sum2 << 16)) as u32
}

fn header_len(len: usize) -> usize {
    let mut v = Vec::new();
    asn1::write_len(&mut v, len);
    1 + v.len()
}

fn push_header(out: &mut Vec<u8>, t: u8, len: usize) {
    out.push(t);
    asn1::write_len(out, len);
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
        // Incompressible data needs long-form lengths at every level.
        let noise: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let der = compress_parts(&[&noise[..1000], &noise[1000..]], 9).unwrap();
        assert!(asn1::read_all(&der).is_ok());
        assert_eq!(decompress(&der, 1 << 20).unwrap(), noise);
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
    fn parallel_deflate_is_one_valid_zlib_stream() {
        let text: Vec<u8> = (0..(3 * PARALLEL_CHUNK + 12_345))
            .map(|i| b"ISA*00*PO~\r\n"[i % 12] ^ ((i / 4099) as u8 & 1))
            .collect();
        let (a, b) = text.split_at(1000);
        // Whatever this machine has: one thread (a one-core CI runner) and three.
        for threads in [1, 3] {
            let z = zlib_on(&[a, b], 6, threads).unwrap();
            let mut back = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&z[..]), &mut back)
                .unwrap();
            assert_eq!(back, text, "{threads} threads");
        }
        let der = compress_parts(&[a, b], 6).unwrap();
        assert_eq!(decompress(&der, 1 << 30).unwrap(), text);
        // The trailer is the Adler-32 of the whole input: check it against a one-pass sum.
        let mut one = Adler32::default();
        one.update(&text);
        let mut halves = (Adler32::default(), Adler32::default());
        halves.0.update(&text[..777]);
        halves.1.update(&text[777..]);
        assert_eq!(
            adler32_combine(halves.0.value(), halves.1.value(), text.len() - 777),
            one.value()
        );
        let mut known = Adler32::default();
        known.update(b"Wikipedia");
        assert_eq!(known.value(), 0x11E6_0398);
        assert!(compress_parts(&[b"x"], 10).is_err());
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
                    &[SignedForm::Canonical],
                )
                .unwrap();
                assert_eq!(v.digest, d);
                assert_eq!(v.form, SignedForm::AsReceived);
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
            verify_detached(&sig, b"line\r\nX", &trusted, &[SignedForm::Canonical]),
            Err(Error::IntegrityCheckFailed)
        ));
        assert!(matches!(
            verify_detached(
                &sig,
                b"line\r\n",
                std::slice::from_ref(&b.certificate),
                &[SignedForm::Canonical]
            ),
            Err(Error::UnknownSigner(_))
        ));
        assert!(matches!(
            verify_detached(&sig, b"line\r\n", &[], &[SignedForm::Canonical]),
            Err(Error::UnknownSigner(_))
        ));
        assert!(matches!(
            verify_detached(&sig[..50], b"line\r\n", &trusted, &[SignedForm::Canonical]),
            Err(Error::MalformedCms { .. })
        ));
        // Canonical retry: signed over CRLF, received with bare LF.
        let v = verify_detached(&sig, b"line\n", &trusted, &[SignedForm::Canonical]).unwrap();
        assert_eq!(v.form, SignedForm::Canonical);
        assert!(verify_detached(&sig, b"line\n", &trusted, &[]).is_err());

        // A binary part whose header CRLFs became LFs on the way, body untouched (bare LFs
        // and all): only the canonical-headers form verifies.
        let part = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\nbin\nary\x00\n";
        let sig = sign_detached(
            part,
            &a,
            DigestAlgorithm::Sha256,
            SignatureScheme::RsaPkcs1v15,
        )
        .unwrap();
        let captured = b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\nbin\nary\x00\n";
        assert!(matches!(
            verify_detached(&sig, captured, &trusted, &[SignedForm::Canonical]),
            Err(Error::IntegrityCheckFailed)
        ));
        let v = verify_detached(&sig, captured, &trusted, &[SignedForm::CanonicalHeaders]).unwrap();
        assert_eq!(v.form, SignedForm::CanonicalHeaders);
        assert_eq!(SignedForm::CanonicalHeaders.apply(captured).as_ref(), part);
    }

    #[test]
    fn encrypt_decrypt_every_cipher_and_transport() {
        let a = id("A");
        for c in ContentEncryption::ALL {
            for t in [KeyTransport::RsaPkcs1v15, KeyTransport::RsaOaep] {
                let der = encrypt(
                    b"secret".to_vec(),
                    std::slice::from_ref(&a.certificate),
                    c,
                    t,
                )
                .unwrap();
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
    fn tampered_ciphertext_is_refused() {
        let a = id("A");
        let plain = vec![b'p'; 5000];
        for c in [ContentEncryption::Aes128Gcm, ContentEncryption::Aes256Gcm] {
            let mut der = encrypt(
                plain.clone(),
                std::slice::from_ref(&a.certificate),
                c,
                KeyTransport::RsaPkcs1v15,
            )
            .unwrap();
            let n = der.len();
            der[n - 100] ^= 0x01; // inside the ciphertext, before the tag
            let e = decrypt(&der, std::slice::from_ref(&a)).unwrap_err();
            assert!(matches!(e, Error::DecryptionFailed(_)), "{c}: {e}");
        }
        // CBC has no tag; a flipped byte in the last block breaks the padding or changes the text.
        let mut der = encrypt(
            plain.clone(),
            std::slice::from_ref(&a.certificate),
            ContentEncryption::Aes256Cbc,
            KeyTransport::RsaPkcs1v15,
        )
        .unwrap();
        let n = der.len();
        der[n - 20] ^= 0x55;
        assert!(decrypt(&der, std::slice::from_ref(&a)).map_or(true, |d| d.content != plain));
    }

    #[test]
    fn decrypt_errors_are_typed() {
        let a = id("A");
        let b = id("B");
        let der = encrypt(
            b"secret".to_vec(),
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
