//! Detached signatures (SignedData with no content): signing, verifying in each form partner
//! products write, and reading what a signature says.

use std::borrow::Cow;

use openssl::x509::X509;

use crate::algorithm::{DigestAlgorithm, SignatureScheme};
use crate::asn1::{self, tag, Tlv};
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
    let outline = signed_outline(der)?;
    let signer = outline.signer;
    Ok(SignedDataInfo {
        digest: DigestAlgorithm::from_oid(&signer.digest_oid),
        digest_oid: signer.digest_oid,
        scheme: SignatureScheme::from_oid(&signer.signature_oid),
        certificates: included_certificates(&outline.kids),
        detached: outline.detached,
        signer_count: outline.signer_count,
    })
}

/// A SignedData as [`signed_outline`] reads it.
struct Outline<'a> {
    /// Its parts.
    kids: Vec<Tlv<'a>>,
    /// Its first signer.
    signer: SignerDetails<'a>,
    /// How many sign it.
    signer_count: usize,
    /// Whether its content is left out (a detached signature).
    detached: bool,
}

/// A SignedData's outline, read without parsing the certificates it carries (OpenSSL's
/// certificate parser is the dearest part).
fn signed_outline(der: &[u8]) -> Result<Outline<'_>> {
    let (kids, signer, signer_count) = signed_data(der)?;
    let encap = kids
        .iter()
        .find(|t| t.tag == tag::SEQUENCE)
        .ok_or_else(|| Error::MalformedCms {
            what: CmsStructure::SignedData,
            detail: "no encapsulated content info".into(),
        })?;
    let detached = encap
        .children()
        .map_err(malformed(CmsStructure::SignedData))?
        .len()
        < 2;
    if let Some(certs) = kids.iter().find(|t| t.tag == tag::CONTEXT_0) {
        certs
            .children()
            .map_err(malformed(CmsStructure::SignedData))?;
    }
    Ok(Outline {
        kids,
        signer,
        signer_count,
        detached,
    })
}

/// The certificates a SignedData carries (those OpenSSL can read), from the parts
/// [`signed_outline`] has checked.
fn included_certificates(kids: &[Tlv<'_>]) -> Vec<X509> {
    kids.iter()
        .find(|t| t.tag == tag::CONTEXT_0)
        .and_then(|certs| certs.children().ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.tag == tag::SEQUENCE)
        .filter_map(|c| X509::from_der(c.raw).ok())
        .collect()
}

/// `der` (a SignedData ContentInfo whose fields are `kids`) without the certificates it
/// carries, for OpenSSL to verify: it is given the partner's configured certificates and never
/// looks at carried ones (`CMS_NOINTERN`), yet reading the structure would decode each carried
/// certificate's public key, which in OpenSSL 3 costs more than checking the signature. Nothing
/// a signature covers changes (the signer infos are copied as they are); the containers around
/// them are written again in DER, whatever form (BER indefinite lengths) they came in.
fn without_certificates<'a>(der: &'a [u8], kids: &[Tlv<'_>]) -> Cow<'a, [u8]> {
    if !kids.iter().any(|t| t.tag == tag::CONTEXT_0) {
        return Cow::Borrowed(der);
    }
    let fields: Vec<&[u8]> = kids
        .iter()
        .filter(|t| t.tag != tag::CONTEXT_0)
        .map(|t| t.raw)
        .collect();
    let signed_data = asn1::der_seq(tag::SEQUENCE, &fields);
    Cow::Owned(asn1::der_seq(
        tag::SEQUENCE,
        &[
            &asn1::der_oid(OID_SIGNED_DATA),
            &asn1::der(tag::CONTEXT_0, &signed_data),
        ],
    ))
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

/// A detached signature made as the content is fed, in constant memory: the content goes
/// through the digest as it comes, and [`SignStream::finish`] writes the SignedData (signed
/// attributes with the digest and the signing time, the certificate and chain, one SignerInfo)
/// as OpenSSL's `CMS_sign` does for a detached binary signature. Sans-IO.
pub struct SignStream {
    hasher: openssl::hash::Hasher,
    digest: DigestAlgorithm,
    scheme: SignatureScheme,
    identity: Identity,
    signing_time: crate::UnixTime,
}

impl std::fmt::Debug for SignStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignStream")
            .field("digest", &self.digest)
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

/// id-contentType and id-signingTime (RFC 5652 section 11).
const OID_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const OID_SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
/// rsaEncryption, as OpenSSL names a PKCS#1 v1.5 signature in a SignerInfo.
const OID_RSA: &str = "1.2.840.113549.1.1.1";
/// id-mgf1.
const OID_MGF1: &str = "1.2.840.113549.1.1.8";

fn digest_alg_id(d: DigestAlgorithm) -> Vec<u8> {
    asn1::der(tag::SEQUENCE, &asn1::der_oid(d.oid()))
}

fn ecdsa_oid(d: DigestAlgorithm) -> Option<&'static str> {
    Some(match d {
        DigestAlgorithm::Sha1 => "1.2.840.10045.4.1",
        DigestAlgorithm::Sha224 => "1.2.840.10045.4.3.1",
        DigestAlgorithm::Sha256 => "1.2.840.10045.4.3.2",
        DigestAlgorithm::Sha384 => "1.2.840.10045.4.3.3",
        DigestAlgorithm::Sha512 => "1.2.840.10045.4.3.4",
        DigestAlgorithm::Md5 => return None,
    })
}

/// UTCTime (years 1950 to 2049) or GeneralizedTime, as RFC 5652 asks of signingTime.
fn signing_time(t: crate::UnixTime) -> Vec<u8> {
    let (y, mo, d, h, mi, s, _) = t.civil();
    if (1950..2050).contains(&y) {
        let text = format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100);
        asn1::der(0x17, text.as_bytes())
    } else {
        let text = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z");
        asn1::der(0x18, text.as_bytes())
    }
}

fn attribute(oid: &str, value: &[u8]) -> Vec<u8> {
    asn1::der_seq(
        tag::SEQUENCE,
        &[&asn1::der_oid(oid), &asn1::der(tag::SET, value)],
    )
}

impl SignStream {
    /// Starts a signature by `identity` with `digest` and `scheme`, dated `now`.
    pub fn start(
        identity: &Identity,
        digest: DigestAlgorithm,
        scheme: SignatureScheme,
        now: crate::UnixTime,
    ) -> Result<Self> {
        if !digest.can_sign() {
            return Err(Error::UnsupportedAlgorithm(format!(
                "signing with {digest}"
            )));
        }
        let is_ec = identity.private_key.id() == openssl::pkey::Id::EC;
        if (scheme == SignatureScheme::Ecdsa) != is_ec {
            return Err(Error::Config(if is_ec {
                "an EC key signs with ECDSA only".into()
            } else {
                "ECDSA signing needs an EC key".into()
            }));
        }
        Ok(SignStream {
            hasher: openssl::hash::Hasher::new(digest.message_digest())?,
            digest,
            scheme,
            identity: identity.clone(),
            signing_time: now,
        })
    }

    /// Feeds the next part of the content (taken as binary).
    pub fn update(&mut self, content: &[u8]) -> Result<()> {
        self.hasher.update(content)?;
        Ok(())
    }

    /// The detached SignedData (DER) over everything fed.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        use openssl::rsa::Padding;
        use openssl::sign::{RsaPssSaltlen, Signer};
        let digest = self.hasher.finish()?;
        let md = self.digest.message_digest();
        // Signed attributes, in DER order (a SET OF is sorted by encoding).
        let mut attrs = [
            attribute(OID_CONTENT_TYPE, &asn1::der_oid(OID_DATA)),
            attribute(OID_SIGNING_TIME, &signing_time(self.signing_time)),
            attribute(OID_MESSAGE_DIGEST, &asn1::der(tag::OCTET_STRING, &digest)),
        ];
        attrs.sort();
        let attr_refs: Vec<&[u8]> = attrs.iter().map(Vec::as_slice).collect();
        let signed_attrs = asn1::der_seq(tag::SET, &attr_refs);
        let key = &self.identity.private_key;
        let mut signer = Signer::new(md, key)?;
        let signature_alg = match self.scheme {
            SignatureScheme::RsaPkcs1v15 => {
                signer.set_rsa_padding(Padding::PKCS1)?;
                asn1::der_seq(tag::SEQUENCE, &[&asn1::der_oid(OID_RSA), &[tag::NULL, 0]])
            }
            SignatureScheme::RsaPss => {
                signer.set_rsa_padding(Padding::PKCS1_PSS)?;
                signer.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
                signer.set_rsa_mgf1_md(md)?;
                let hash = digest_alg_id(self.digest);
                let mgf = asn1::der_seq(tag::SEQUENCE, &[&asn1::der_oid(OID_MGF1), &hash]);
                let salt = asn1::der(tag::INTEGER, &[md.size() as u8]);
                let params = asn1::der_seq(
                    tag::SEQUENCE,
                    &[
                        &asn1::der(tag::CONTEXT_0, &hash),
                        &asn1::der(tag::CONTEXT_0 + 1, &mgf),
                        &asn1::der(tag::CONTEXT_0 + 2, &salt),
                    ],
                );
                asn1::der_seq(tag::SEQUENCE, &[&asn1::der_oid(OID_RSASSA_PSS), &params])
            }
            SignatureScheme::Ecdsa => {
                let oid = ecdsa_oid(self.digest).ok_or_else(|| {
                    Error::UnsupportedAlgorithm(format!("ECDSA with {}", self.digest))
                })?;
                asn1::der(tag::SEQUENCE, &asn1::der_oid(oid))
            }
        };
        let signature = signer.sign_oneshot_to_vec(&signed_attrs)?;
        let (issuer, serial) = super::enveloped::issuer_and_serial(&self.identity.certificate)?;
        // signedAttrs [0] IMPLICIT: the SET's contents under the context tag.
        let mut implicit_attrs = signed_attrs;
        implicit_attrs[0] = tag::CONTEXT_0;
        let signer_info = asn1::der_seq(
            tag::SEQUENCE,
            &[
                &[tag::INTEGER, 1, 1],
                &asn1::der_seq(tag::SEQUENCE, &[&issuer, &serial]),
                &digest_alg_id(self.digest),
                &implicit_attrs,
                &signature_alg,
                &asn1::der(tag::OCTET_STRING, &signature),
            ],
        );
        let mut certs = vec![self.identity.certificate.to_der()?];
        for c in &self.identity.chain {
            certs.push(c.to_der()?);
        }
        let cert_refs: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
        let signed_data = asn1::der_seq(
            tag::SEQUENCE,
            &[
                &[tag::INTEGER, 1, 1],
                &asn1::der(tag::SET, &digest_alg_id(self.digest)),
                &asn1::der(tag::SEQUENCE, &asn1::der_oid(OID_DATA)),
                &asn1::der_seq(tag::CONTEXT_0, &cert_refs),
                &asn1::der(tag::SET, &signer_info),
            ],
        );
        Ok(asn1::der_seq(
            tag::SEQUENCE,
            &[
                &asn1::der_oid(OID_SIGNED_DATA),
                &asn1::der(tag::CONTEXT_0, &signed_data),
            ],
        ))
    }
}

/// Which form of the signed bytes a signature verified over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    let checked = check_signer(signature_der, trusted)?;
    let digest = checked.digest;
    let found = |data: &[u8]| -> Result<Option<X509>> {
        Ok(match &checked.expected {
            // The attributes verified: the content is the one whose digest they state.
            Some(expected) => (openssl::hash::hash(digest.message_digest(), data)?.as_ref()
                == expected.as_slice())
            .then(|| checked.signer.clone()),
            None => ffi::verify_detached(&checked.bare, data, trusted, true).ok(),
        })
    };
    let (form, signer) =
        first_form(content, alternatives, found)?.ok_or(Error::IntegrityCheckFailed)?;
    Ok(VerifiedSignature {
        digest,
        scheme: checked.scheme,
        signer,
        form,
    })
}

/// Verifies a detached signature over content that was digested as it streamed past, never
/// held: `digest_of(algorithm, form)` is the content's digest in that form, `None` where it was
/// not computed. Forms are tried as received first, then `alternatives` in order. The signed
/// attributes are verified first; the signature must have them (every AS2 product writes them),
/// since without them only the whole content can be checked.
pub fn verify_digests(
    signature_der: &[u8],
    trusted: &[X509],
    alternatives: &[SignedForm],
    digest_of: impl Fn(DigestAlgorithm, SignedForm) -> Option<Vec<u8>>,
) -> Result<VerifiedSignature> {
    let checked = check_signer(signature_der, trusted)?;
    let digest = checked.digest;
    let expected = checked
        .expected
        .clone()
        .ok_or_else(|| Error::NotStreamable("a signature without signed attributes".into()))?;
    let mut computed = false;
    for form in std::iter::once(SignedForm::AsReceived).chain(alternatives.iter().copied()) {
        match digest_of(digest, form) {
            Some(d) if d == expected => {
                return Ok(VerifiedSignature {
                    digest,
                    scheme: checked.scheme,
                    signer: checked.signer,
                    form,
                })
            }
            Some(_) => computed = true,
            None => {}
        }
    }
    if !computed {
        return Err(Error::NotStreamable(format!(
            "the signature's digest {digest} is not the multipart/signed micalg"
        )));
    }
    Err(Error::IntegrityCheckFailed)
}

/// What checking a signature without its content establishes.
struct CheckedSigner<'a> {
    /// The signature without the certificates it carries (see [`without_certificates`]).
    bare: Cow<'a, [u8]>,
    digest: DigestAlgorithm,
    scheme: Option<SignatureScheme>,
    /// The trusted certificate the signer info names and its signature verifies with.
    signer: X509,
    /// The content's digest as the verified signed attributes state it (`None` without them).
    expected: Option<Vec<u8>>,
}

/// Checks who signed and the signature over the signed attributes, without the content: tells
/// a wrong or forged signature apart from content altered after signing.
fn check_signer<'a>(signature_der: &'a [u8], trusted: &[X509]) -> Result<CheckedSigner<'a>> {
    let Outline { kids, signer, .. } = signed_outline(signature_der)?;
    let digest = DigestAlgorithm::from_oid(&signer.digest_oid).ok_or_else(|| {
        Error::UnsupportedAlgorithm(format!("signature digest {}", signer.digest_oid))
    })?;
    // Who signed is read from the certificates only when a refusal needs to say it.
    let signed_by = || {
        included_certificates(&kids)
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
    let bare = without_certificates(signature_der, &kids);
    if signer.signature_oid == OID_RSASSA_PSS && !signer.signature_params {
        let (cert, expected) = verify_pss_without_params(&signer, digest, trusted, signed_by)?;
        return Ok(CheckedSigner {
            bare,
            digest,
            scheme: Some(SignatureScheme::RsaPss),
            signer: cert,
            expected: Some(expected),
        });
    }
    match ffi::verify_detached(&bare, &[], trusted, false) {
        Ok(cert) => Ok(CheckedSigner {
            bare,
            digest,
            scheme: SignatureScheme::from_oid(&signer.signature_oid),
            signer: cert,
            expected: signer
                .signed_attrs
                .as_ref()
                .and_then(message_digest_attribute),
        }),
        Err(e) => {
            let reasons: Vec<String> = e
                .errors()
                .iter()
                .filter_map(|x| x.reason().map(str::to_string))
                .collect();
            let joined = reasons.join("; ");
            Err(if joined.contains("signer certificate not found") {
                Error::UnknownSigner(signed_by())
            } else if joined.is_empty() {
                Error::AuthenticationFailed("signature does not verify".into())
            } else {
                Error::AuthenticationFailed(joined)
            })
        }
    }
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
/// Returns the certificate that verified and the content digest the attributes state.
fn verify_pss_without_params(
    signer: &SignerDetails<'_>,
    digest: DigestAlgorithm,
    trusted: &[X509],
    signed_by: impl Fn() -> String,
) -> Result<(X509, Vec<u8>)> {
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
    Ok((cert.clone(), expected))
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

    /// `der` with every definite-length constructed element from the outside in, down to
    /// `depth` levels, turned into BER indefinite-length form (as streaming writers send it).
    fn indefinite(der: &[u8], depth: usize) -> Vec<u8> {
        let (t, _) = asn1::read(der).unwrap();
        if depth == 0 || !t.constructed() {
            return t.raw.to_vec();
        }
        let mut out = vec![t.tag, 0x80];
        for kid in t.children().unwrap() {
            out.extend(indefinite(kid.raw, depth - 1));
        }
        out.extend([0, 0]);
        out
    }

    /// Identities A and B, and A's signature over `line\r\n`.
    fn line_signed_by_a() -> (Identity, Identity, Vec<u8>) {
        let a = id("A");
        let sig = sign_detached(
            b"line\r\n",
            &a,
            DigestAlgorithm::Sha256,
            SignatureScheme::RsaPkcs1v15,
        )
        .unwrap();
        (a, id("B"), sig)
    }

    #[test]
    fn carried_certificates_are_left_out_of_the_check_and_still_name_the_signer() {
        let (a, b, sig) = line_signed_by_a();
        assert_eq!(inspect_signed(&sig).unwrap().certificates.len(), 1);
        // In DER and with the containers (ContentInfo, [0], SignedData, certificates) in BER
        // indefinite-length form: the same check, without the carried certificate.
        for form in [sig.clone(), indefinite(&sig, 4)] {
            let kids = signed_outline(&form).unwrap().kids;
            let bare = without_certificates(&form, &kids);
            let info = inspect_signed(&bare).unwrap();
            assert!(info.certificates.is_empty());
            assert_eq!(info.digest, Some(DigestAlgorithm::Sha256));
            let bare_kids = signed_outline(&bare).unwrap().kids;
            assert!(matches!(
                without_certificates(&bare, &bare_kids),
                Cow::Borrowed(_)
            ));
            let trusted = [a.certificate.clone()];
            let v = verify_detached(&form, b"line\r\n", &trusted, &[]).unwrap();
            assert_eq!(v.signer.to_der().unwrap(), a.certificate.to_der().unwrap());
            assert!(matches!(
                verify_detached(&form, b"line\r\nX", &trusted, &[]),
                Err(Error::IntegrityCheckFailed)
            ));
            // The refusal still names who signed, from the certificate the signature carries.
            match verify_detached(
                &form,
                b"line\r\n",
                std::slice::from_ref(&b.certificate),
                &[],
            ) {
                Err(Error::UnknownSigner(why)) => assert!(why.contains("signed by"), "{why}"),
                other => panic!("{other:?}"),
            }
        }
        // A signature whose value was altered is still refused.
        let mut forged = sig.clone();
        let n = forged.len();
        forged[n - 3] ^= 1;
        assert!(matches!(
            verify_detached(
                &forged,
                b"line\r\n",
                std::slice::from_ref(&a.certificate),
                &[]
            ),
            Err(Error::AuthenticationFailed(_))
        ));
    }

    #[test]
    fn verify_errors_are_typed() {
        let (a, b, sig) = line_signed_by_a();
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
