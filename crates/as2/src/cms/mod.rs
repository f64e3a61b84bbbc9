//! CMS (RFC 5652) operations AS2 needs, with errors in AS2 terms: the content types and their
//! recognition here, detached signatures (`signed`), enveloped data (`enveloped`) and zlib
//! compressed data (RFC 3274, `compressed`).

use crate::asn1::{self, tag, Tlv};
use crate::error::{CmsStructure, Error, Result};

/// id-data
pub(crate) const OID_DATA: &str = "1.2.840.113549.1.7.1";
/// id-signedData
pub(crate) const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
/// id-envelopedData
pub(crate) const OID_ENVELOPED_DATA: &str = "1.2.840.113549.1.7.3";
/// id-ct-authEnvelopedData (RFC 5083)
pub(crate) const OID_AUTH_ENVELOPED_DATA: &str = "1.2.840.113549.1.9.16.1.23";
/// id-ct-compressedData (RFC 3274)
pub(crate) const OID_COMPRESSED_DATA: &str = "1.2.840.113549.1.9.16.1.9";
/// id-alg-zlibCompress (RFC 3274)
pub(crate) const OID_ZLIB: &str = "1.2.840.113549.1.9.16.3.8";

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

fn malformed(what: CmsStructure) -> impl Fn(asn1::Asn1Error) -> Error {
    move |e| Error::MalformedCms {
        what,
        detail: e.to_string(),
    }
}

/// Splits a ContentInfo into its content type OID and the `[0]`-wrapped content, if present.
fn content_info<'a>(der: &'a [u8], what: CmsStructure) -> Result<(String, Option<Tlv<'a>>)> {
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
    let (oid, _) = content_info(der, CmsStructure::ContentInfo)?;
    Ok(match oid.as_str() {
        OID_DATA => ContentKind::Data,
        OID_SIGNED_DATA => ContentKind::SignedData,
        OID_ENVELOPED_DATA => ContentKind::EnvelopedData,
        OID_AUTH_ENVELOPED_DATA => ContentKind::AuthEnvelopedData,
        OID_COMPRESSED_DATA => ContentKind::CompressedData,
        _ => ContentKind::Other(oid),
    })
}

fn expect_kind<'a>(der: &'a [u8], oid: &str, what: CmsStructure) -> Result<Tlv<'a>> {
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

/// The length of a DER header (tag and length) for content of `len` bytes.
fn header_len(len: usize) -> usize {
    let mut v = Vec::new();
    asn1::write_len(&mut v, len);
    1 + v.len()
}

/// Writes a DER header (tag and length) for content of `len` bytes.
fn push_header(out: &mut Vec<u8>, t: u8, len: usize) {
    out.push(t);
    asn1::write_len(out, len);
}

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

mod compressed;
mod enveloped;
mod signed;

pub use compressed::*;
pub use enveloped::*;
pub use signed::*;

/// A throwaway identity for the submodules' tests.
#[cfg(test)]
fn test_identity(cn: &str) -> crate::keys::Identity {
    crate::keys::Identity::generate_self_signed(cn, 2048, crate::time::UnixTime(1_800_000_000), 30)
        .unwrap()
}
