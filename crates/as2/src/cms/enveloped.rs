//! Enveloped data: encrypting to a partner certificate, decrypting with our keys, and reading
//! what an envelope says before that.

use openssl::x509::{X509Ref, X509};

use crate::algorithm::{legacy_cipher_name, ContentEncryption, KeyTransport};
use crate::asn1::{self, tag};
use crate::error::{CmsStructure, Error, Result};
use crate::ffi;
use crate::keys::{subject_name, Identity};

use super::*;

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
    use openssl::symm::{Crypter, Mode};

    let Head {
        mut key,
        iv,
        recipient_set,
        content_alg,
    } = head(recipients, cipher, transport)?;
    let c = cipher.cipher();
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

/// What every envelope of a content key starts with: the key and IV, the RecipientInfos (the
/// key encrypted to each certificate), the content-encryption AlgorithmIdentifier.
struct Head {
    key: Vec<u8>,
    iv: Vec<u8>,
    recipient_set: Vec<u8>,
    content_alg: Vec<u8>,
}

fn head(recipients: &[X509], cipher: ContentEncryption, transport: KeyTransport) -> Result<Head> {
    use openssl::encrypt::Encrypter;
    use openssl::rsa::Padding;

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
    Ok(Head {
        key,
        iv,
        recipient_set,
        content_alg,
    })
}

/// EnvelopedData (AuthEnvelopedData for AES-GCM) written as the content is fed, in constant
/// memory: BER with indefinite lengths, as OpenSSL's streaming mode writes it (every partner
/// product reads it), the ciphertext in OCTET STRING chunks, one per [`EnvelopeStream::update`]
/// that produced any. Sans-IO: each call appends what it has to `out`.
pub struct EnvelopeStream {
    crypter: openssl::symm::Crypter,
    block: usize,
    authenticated: bool,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for EnvelopeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvelopeStream")
            .field("authenticated", &self.authenticated)
            .finish_non_exhaustive()
    }
}

/// End-of-contents, closing an indefinite length.
const EOC: [u8; 2] = [0, 0];

impl EnvelopeStream {
    /// Starts an envelope for `recipients`: appends its head (everything before the
    /// ciphertext) to `out`.
    pub fn start(
        recipients: &[X509],
        cipher: ContentEncryption,
        transport: KeyTransport,
        out: &mut Vec<u8>,
    ) -> Result<Self> {
        use openssl::symm::{Crypter, Mode};
        let Head {
            mut key,
            iv,
            recipient_set,
            content_alg,
        } = head(recipients, cipher, transport)?;
        let c = cipher.cipher();
        let crypter = Crypter::new(c, Mode::Encrypt, &key, Some(&iv));
        key.fill(0);
        let crypter = crypter?;
        let authenticated = cipher.is_authenticated();
        out.extend_from_slice(&[tag::SEQUENCE, 0x80]);
        out.extend_from_slice(&asn1::der_oid(if authenticated {
            OID_AUTH_ENVELOPED_DATA
        } else {
            OID_ENVELOPED_DATA
        }));
        out.extend_from_slice(&[tag::CONTEXT_0, 0x80, tag::SEQUENCE, 0x80]);
        out.extend_from_slice(&[tag::INTEGER, 1, 0]);
        out.extend_from_slice(&recipient_set);
        out.extend_from_slice(&[tag::SEQUENCE, 0x80]);
        out.extend_from_slice(&asn1::der_oid(OID_DATA));
        out.extend_from_slice(&content_alg);
        // encryptedContent [0] IMPLICIT OCTET STRING, constructed: chunks follow.
        out.extend_from_slice(&[tag::CONTEXT_0, 0x80]);
        Ok(EnvelopeStream {
            crypter,
            block: c.block_size(),
            authenticated,
            scratch: Vec::new(),
        })
    }

    /// Encrypts the next part of the content; appends the ciphertext it makes (as one OCTET
    /// STRING, when there is any) to `out`.
    pub fn update(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.scratch.resize(plain.len() + self.block, 0);
        let n = self.crypter.update(plain, &mut self.scratch)?;
        push_chunk(out, &self.scratch[..n]);
        Ok(())
    }

    /// Ends the content: appends the last ciphertext (the padding), the authentication tag for
    /// AES-GCM, and the end of every open structure to `out`.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<()> {
        self.scratch.resize(2 * self.block.max(16), 0);
        let n = self.crypter.finalize(&mut self.scratch)?;
        push_chunk(out, &self.scratch[..n]);
        // The encrypted content, then the EncryptedContentInfo, end.
        out.extend_from_slice(&EOC);
        out.extend_from_slice(&EOC);
        if self.authenticated {
            let mut mac = [0u8; 16];
            self.crypter.get_tag(&mut mac)?;
            out.extend_from_slice(&asn1::der(tag::OCTET_STRING, &mac));
        }
        // EnvelopedData, the [0] around it, the ContentInfo.
        out.extend_from_slice(&EOC);
        out.extend_from_slice(&EOC);
        out.extend_from_slice(&EOC);
        self.scratch.fill(0);
        Ok(())
    }
}

fn push_chunk(out: &mut Vec<u8>, bytes: &[u8]) {
    if !bytes.is_empty() {
        push_header(out, tag::OCTET_STRING, bytes.len());
        out.extend_from_slice(bytes);
    }
}

/// The certificate's issuer Name and serial number INTEGER, as encoded in the certificate.
pub(crate) fn issuer_and_serial(cert: &X509Ref) -> Result<(Vec<u8>, Vec<u8>)> {
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
    const W: CmsStructure = CmsStructure::EnvelopedData;
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
    const W: CmsStructure = CmsStructure::EnvelopedData;
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
                    what: CmsStructure::EnvelopedData,
                    detail: reason,
                })
            } else {
                Err(Error::DecryptionFailed(reason))
            }
        }
    }
}

/// EnvelopedData (or AuthEnvelopedData) opened as it is fed, in constant memory: the head read
/// as its bytes come, the content key recovered with whichever of our keys it was encrypted
/// for, the ciphertext (one string, or chunks as streaming writers make it) decrypted as it
/// passes. What comes out before [`DecryptStream::finish`] is not yet known to be good: the CBC
/// padding, and AES-GCM's tag, are checked at the end, so a caller keeps it aside until then.
pub struct DecryptStream {
    identities: Vec<Identity>,
    buf: Vec<u8>,
    state: Decrypting,
    /// Bytes after the ciphertext (the tag of AES-GCM is among them).
    tail: Vec<u8>,
}

impl std::fmt::Debug for DecryptStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptStream").finish_non_exhaustive()
    }
}

enum Decrypting {
    Head,
    Content {
        crypter: openssl::symm::Crypter,
        layout: Octets,
        block: usize,
        opened: Opened,
        scratch: Vec<u8>,
        /// End-of-contents owed after the ciphertext.
        indefinite: usize,
    },
    Failed,
}

/// Which key opened a streamed envelope, and with what.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The cipher used.
    pub cipher: ContentEncryption,
    /// The key transport of our recipient info.
    pub key_transport: Option<KeyTransport>,
    /// Which of our certificates it was encrypted for.
    pub recipient: X509,
    /// True for AuthEnvelopedData (AES-GCM).
    pub authenticated: bool,
}

/// What stays of the ciphertext's tail we read: more than this after the content is refused.
const MAX_TAIL: usize = 1 << 16;

impl DecryptStream {
    /// Starts opening an envelope for one of `identities`.
    pub fn new(identities: &[Identity]) -> Self {
        DecryptStream {
            identities: identities.to_vec(),
            buf: Vec::new(),
            state: Decrypting::Head,
            tail: Vec::new(),
        }
    }

    /// The head, from the buffered bytes: `None` until it is all there; then where the
    /// ciphertext starts, its layout, and the key and IV.
    #[allow(clippy::type_complexity)]
    fn head(&self) -> Result<Option<(usize, Octets, Opened, Vec<u8>, Vec<u8>, usize)>> {
        const W: CmsStructure = CmsStructure::EnvelopedData;
        let mut r = HeadReader::new(&self.buf, W);
        need!(r.open(tag::SEQUENCE, "ContentInfo"));
        let oid = need!(r.take(tag::OID, "content type"));
        let oid = asn1::read(oid)
            .and_then(|(t, _)| t.oid())
            .map_err(malformed(W))?;
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
        need!(r.open(tag::CONTEXT_0, "content"));
        need!(r.open(tag::SEQUENCE, "EnvelopedData"));
        need!(r.take(tag::INTEGER, "version"));
        if need!(r.peek()).tag == tag::CONTEXT_0 {
            need!(r.take(tag::CONTEXT_0, "originator info"));
        }
        let set = need!(r.take(tag::SET, "recipient infos"));
        need!(r.open(tag::SEQUENCE, "encrypted content info"));
        need!(r.take(tag::OID, "content type"));
        let alg = need!(r.take(tag::SEQUENCE, "content-encryption algorithm"));
        let h = need!(r.peek());
        let layout = Octets::of(h, tag::CONTEXT_0_PRIMITIVE, tag::CONTEXT_0).ok_or_else(|| {
            Error::MalformedCms {
                what: W,
                detail: format!("encrypted content has tag {:#04x}", h.tag),
            }
        })?;
        let start = r.at + h.header_len;
        // The algorithm and its IV (CBC: an OCTET STRING; GCM: GCMParameters, the nonce first).
        let (alg, _) = asn1::read(alg).map_err(malformed(W))?;
        let parts = alg.children().map_err(malformed(W))?;
        let cipher_oid = parts.first().and_then(|t| t.oid().ok()).unwrap_or_default();
        let cipher = ContentEncryption::from_oid(&cipher_oid).ok_or_else(|| {
            Error::UnsupportedAlgorithm(match legacy_cipher_name(&cipher_oid) {
                Some(name) => format!("content encryption {name} ({cipher_oid})"),
                None => format!("content encryption {cipher_oid}"),
            })
        })?;
        let iv = match parts.get(1) {
            Some(p) if p.tag == tag::OCTET_STRING => p.content.to_vec(),
            Some(p) if p.tag == tag::SEQUENCE => p
                .children()
                .map_err(malformed(W))?
                .first()
                .filter(|t| t.tag == tag::OCTET_STRING)
                .map(|t| t.content.to_vec())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        // Our recipient info, and the content key it holds.
        let (infos, _) = asn1::read(set).map_err(malformed(W))?;
        for ri in infos.children().map_err(malformed(W))? {
            if ri.tag != tag::SEQUENCE {
                continue;
            }
            let f = ri.children().map_err(malformed(W))?;
            let (Some(rid), Some(kt_alg), Some(ek)) = (f.get(1), f.get(2), f.get(3)) else {
                continue;
            };
            let rid = certificate_id(rid);
            let Some(identity) = self.identities.iter().find(|i| rid.matches(&i.certificate))
            else {
                continue;
            };
            let transport = first_oid(kt_alg)
                .as_deref()
                .and_then(KeyTransport::from_oid);
            let key = content_key(identity, transport, ek.content, cipher)?;
            let opened = Opened {
                cipher,
                key_transport: transport,
                recipient: identity.certificate.clone(),
                authenticated,
            };
            return Ok(Some((start, layout, opened, key, iv, r.indefinite)));
        }
        Err(Error::NoMatchingRecipient)
    }

    /// The next bytes of the envelope; appends the plaintext they decrypt to (not yet known to
    /// be good: see [`DecryptStream::finish`]).
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        const W: CmsStructure = CmsStructure::EnvelopedData;
        if matches!(self.state, Decrypting::Failed) {
            return Err(Error::DecryptionFailed(
                "the envelope failed earlier".into(),
            ));
        }
        self.buf.extend_from_slice(input);
        let mut at = 0;
        loop {
            match &mut self.state {
                Decrypting::Failed => unreachable!("checked above"),
                Decrypting::Head => {
                    let head = match self.head() {
                        Ok(h) => h,
                        Err(e) => {
                            self.state = Decrypting::Failed;
                            return Err(e);
                        }
                    };
                    let Some((start, layout, opened, mut key, iv, indefinite)) = head else {
                        HeadReader::more(&self.buf, W)?;
                        break;
                    };
                    let c = opened.cipher.cipher();
                    let crypter = openssl::symm::Crypter::new(
                        c,
                        openssl::symm::Mode::Decrypt,
                        &key,
                        Some(&iv),
                    );
                    key.fill(0);
                    self.state = Decrypting::Content {
                        crypter: crypter?,
                        layout,
                        block: c.block_size(),
                        opened,
                        scratch: Vec::new(),
                        indefinite,
                    };
                    at = start;
                }
                Decrypting::Content {
                    crypter,
                    layout,
                    block,
                    scratch,
                    ..
                } => {
                    if *layout == Octets::Done {
                        let rest = &self.buf[at..];
                        if self.tail.len() + rest.len() > MAX_TAIL {
                            return Err(Error::MalformedCms {
                                what: W,
                                detail: "too much after the encrypted content".into(),
                            });
                        }
                        self.tail.extend_from_slice(rest);
                        at = self.buf.len();
                        break;
                    }
                    let Some((skip, take)) = layout.next(&self.buf[at..], W)? else {
                        break;
                    };
                    at += skip;
                    scratch.resize(take + *block, 0);
                    let n = crypter.update(&self.buf[at..at + take], scratch)?;
                    out.extend_from_slice(&scratch[..n]);
                    at += take;
                }
            }
        }
        self.buf.drain(..at);
        Ok(())
    }

    /// Which key opens the envelope and with what, once its head has been read (before the
    /// content is known to be good).
    pub fn opened(&self) -> Option<&Opened> {
        match &self.state {
            Decrypting::Content { opened, .. } => Some(opened),
            _ => None,
        }
    }

    /// Ends the envelope: checks the padding (CBC) or the tag (AES-GCM), appends the last
    /// plaintext, and says which key opened it. An error means nothing that came out is good.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<Opened> {
        const W: CmsStructure = CmsStructure::EnvelopedData;
        let Decrypting::Content {
            mut crypter,
            layout,
            opened,
            mut scratch,
            block,
            indefinite,
        } = self.state
        else {
            return Err(Error::MalformedCms {
                what: W,
                detail: "truncated: the envelope ended before its encrypted content".into(),
            });
        };
        if layout != Octets::Done {
            return Err(Error::MalformedCms {
                what: W,
                detail: "truncated: the encrypted content did not end".into(),
            });
        }
        let strings = close(&self.tail, indefinite, W)?;
        if opened.authenticated {
            let mac = strings
                .last()
                .ok_or_else(|| Error::AuthenticationFailed("the AES-GCM tag is missing".into()))?;
            crypter.set_tag(mac)?;
        }
        scratch.resize(2 * block.max(16), 0);
        let n = crypter.finalize(&mut scratch).map_err(|_| {
            if opened.authenticated {
                Error::AuthenticationFailed("the AES-GCM tag does not match the content".into())
            } else {
                Error::DecryptionFailed("bad decrypt: the padding is wrong".into())
            }
        })?;
        out.extend_from_slice(&scratch[..n]);
        scratch.fill(0);
        Ok(opened)
    }
}

/// The content key in `encrypted`, with `identity`'s private key. A key that does not decrypt
/// becomes a random one of the cipher's length, so the failure shows only at the end, as the
/// content failing to decrypt (as OpenSSL does against padding oracles).
fn content_key(
    identity: &Identity,
    transport: Option<KeyTransport>,
    encrypted: &[u8],
    cipher: ContentEncryption,
) -> Result<Vec<u8>> {
    use openssl::encrypt::Decrypter;
    use openssl::rsa::Padding;
    let len = cipher.cipher().key_len();
    let mut d = Decrypter::new(&identity.private_key)?;
    d.set_rsa_padding(match transport {
        Some(KeyTransport::RsaOaep) => Padding::PKCS1_OAEP,
        _ => Padding::PKCS1,
    })?;
    let mut key = vec![0u8; d.decrypt_len(encrypted)?];
    match d.decrypt(encrypted, &mut key) {
        Ok(n) if n == len => {
            key.truncate(n);
            Ok(key)
        }
        _ => {
            key.fill(0);
            let mut random = vec![0u8; len];
            openssl::rand::rand_bytes(&mut random)?;
            Ok(random)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cms::test_identity as id;

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
