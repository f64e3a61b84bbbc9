//! Detached signatures (SignedData with no content): signing, verifying in each form partner
//! products write, and reading what a signature says.

use std::borrow::Cow;

use openssl::x509::X509;

use crate::algorithm::{DigestAlgorithm, SignatureScheme};
use crate::asn1::{tag, Tlv};
use crate::error::{CmsStructure, Error, Result};
use crate::ffi;
use crate::keys::{subject_name, Identity};

use super::*;

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
    const W: CmsStructure = CmsStructure::SignedData;
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
pub(crate) fn signed_content_digest(der: &[u8]) -> Option<Vec<u8>> {
    let (_, signer, _) = signed_data(der).ok()?;
    message_digest_attribute(&signer.signed_attrs?)
}

/// Reads the algorithms and certificates of a SignedData.
pub fn inspect_signed(der: &[u8]) -> Result<SignedDataInfo> {
    const W: CmsStructure = CmsStructure::SignedData;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cms::test_identity as id;

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
}
