//! S/MIME framing shared by building, opening and receipts: the security layers, the
//! multipart/signed wrapper, and finding a CMS part's DER bytes (RFC 8551, RFC 1847).

use std::fmt;

use crate::algorithm::{ContentEncryption, DigestAlgorithm, KeyTransport, SignatureScheme};
use crate::error::{Error, Result};
use crate::mime::{self, Entity, Limits};

/// A security layer, outermost first in the lists that hold them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    /// Enveloped data.
    Encrypted {
        /// The content cipher.
        cipher: ContentEncryption,
        /// The key transport of our recipient info.
        key_transport: Option<KeyTransport>,
    },
    /// A detached signature.
    Signed {
        /// The signer's digest.
        digest: DigestAlgorithm,
        /// The signature scheme, if recognised.
        scheme: Option<SignatureScheme>,
        /// The signer certificate's subject.
        signer: String,
    },
    /// zlib compressed data.
    Compressed,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::Encrypted {
                cipher,
                key_transport,
            } => {
                write!(f, "encrypted ({cipher}")?;
                if let Some(k) = key_transport {
                    write!(f, ", {k}")?;
                }
                f.write_str(")")
            }
            Layer::Signed {
                digest,
                scheme,
                signer,
            } => {
                write!(f, "signed ({digest}")?;
                if let Some(s) = scheme {
                    write!(f, ", {s}")?;
                }
                write!(f, ", by {signer})")
            }
            Layer::Compressed => f.write_str("compressed (zlib)"),
        }
    }
}

/// Wraps `entity` (its complete bytes) and its detached signature in a multipart/signed, in place.
/// Returns the Content-Type, the buffer and where the multipart body starts in it (0 unless
/// `with_header`, which puts the Content-Type line and blank line in front).
pub(crate) fn multipart_signed(
    mut entity: Vec<u8>,
    signature_der: &[u8],
    micalg: &str,
    with_header: bool,
) -> (String, Vec<u8>, usize) {
    let boundary = mime::new_boundary(&entity);
    let content_type = multipart_signed_type(micalg, &boundary);
    let header = if with_header {
        format!("Content-Type: {content_type}\r\n\r\n")
    } else {
        String::new()
    };
    let prefix = format!("{header}--{boundary}\r\n");
    let suffix = signature_suffix(&boundary, signature_der);
    entity.reserve_exact(prefix.len() + suffix.len());
    entity.splice(0..0, prefix.bytes());
    entity.extend_from_slice(&suffix);
    (content_type, entity, header.len())
}

/// The Content-Type of a multipart/signed with `boundary`.
pub(crate) fn multipart_signed_type(micalg: &str, boundary: &str) -> String {
    format!(
        "multipart/signed; protocol=\"application/pkcs7-signature\"; micalg={micalg}; boundary=\"{boundary}\""
    )
}

/// What follows the signed part of a multipart/signed: the signature part and the closing
/// delimiter.
pub(crate) fn signature_suffix(boundary: &str, signature_der: &[u8]) -> Vec<u8> {
    let mut suffix = format!(
        "\r\n--{boundary}\r\n\
         Content-Type: application/pkcs7-signature; name=smime.p7s; smime-type=signed-data\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=smime.p7s\r\n\r\n"
    )
    .into_bytes();
    suffix.extend_from_slice(&mime::encode_base64_lines(signature_der));
    suffix.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    suffix
}

/// Finds the signature among the remaining parts of a multipart/signed and returns its DER.
pub(crate) fn signature_part(
    body: &[u8],
    parts: &[std::ops::Range<usize>],
    limits: &Limits,
) -> Result<Vec<u8>> {
    for r in parts {
        let e = Entity::parse(&body[r.clone()], limits)?;
        let ct = e.content_type();
        if ct.is_pkcs7_signature() || ct.is("application/pkcs7-mime") {
            return der_body(&e).map(std::borrow::Cow::into_owned);
        }
    }
    Err(Error::MalformedMime(
        "multipart/signed has no application/pkcs7-signature part".into(),
    ))
}

/// A CMS part's DER bytes: transfer-decoded, and base64-decoded if it was sent as base64 without
/// saying so (some products do).
pub(crate) fn der_body<'a>(e: &Entity<'a>) -> Result<std::borrow::Cow<'a, [u8]>> {
    let decoded = e.decoded_body()?;
    if decoded.first() == Some(&0x30) {
        return Ok(decoded);
    }
    if e.transfer_encoding() != Some(mime::TransferEncoding::Base64) {
        if let Ok(d) = mime::decode_base64(decoded.trim_ascii()) {
            if d.first() == Some(&0x30) {
                return Ok(std::borrow::Cow::Owned(d));
            }
        }
    }
    Ok(decoded)
}
