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
    Ok(kind_of(oid))
}

/// The kind of a ContentInfo from its first bytes: `None` until its content type is there
/// (an error once they cannot begin one).
pub(crate) fn content_kind_prefix(prefix: &[u8]) -> Result<Option<ContentKind>> {
    let bad = malformed(CmsStructure::ContentInfo);
    let Some(seq) = asn1::read_header(prefix).map_err(&bad)? else {
        return Ok(None);
    };
    if seq.tag != tag::SEQUENCE {
        return Err(Error::MalformedCms {
            what: CmsStructure::ContentInfo,
            detail: "not a ContentInfo SEQUENCE".into(),
        });
    }
    let rest = &prefix[seq.header_len..];
    let Some(h) = asn1::read_header(rest).map_err(&bad)? else {
        return Ok(None);
    };
    let (Some(len), tag::OID) = (h.len, h.tag) else {
        return Err(Error::MalformedCms {
            what: CmsStructure::ContentInfo,
            detail: "a ContentInfo without a content type".into(),
        });
    };
    let Some(oid) = rest.get(..h.header_len + len) else {
        return Ok(None);
    };
    let oid = asn1::read(oid).and_then(|(t, _)| t.oid()).map_err(&bad)?;
    Ok(Some(kind_of(oid)))
}

fn kind_of(oid: String) -> ContentKind {
    match oid.as_str() {
        OID_DATA => ContentKind::Data,
        OID_SIGNED_DATA => ContentKind::SignedData,
        OID_ENVELOPED_DATA => ContentKind::EnvelopedData,
        OID_AUTH_ENVELOPED_DATA => ContentKind::AuthEnvelopedData,
        OID_COMPRESSED_DATA => ContentKind::CompressedData,
        _ => ContentKind::Other(oid),
    }
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

/// Reading a structure's head from the front of a stream's buffered bytes: each step either
/// reads its element or says more bytes are needed (`Ok(None)`), so a reader can try again when
/// they come.
struct HeadReader<'a> {
    b: &'a [u8],
    at: usize,
    what: CmsStructure,
    /// Elements opened with an indefinite length: each needs its end-of-contents after the
    /// content.
    indefinite: usize,
}

/// The most a structure's head (everything before its content) may take: more, and the stream
/// is refused rather than buffered without end.
const MAX_HEAD: usize = 1 << 20;

impl<'a> HeadReader<'a> {
    /// More bytes are needed to read the head: an error once `b` is past [`MAX_HEAD`].
    fn more(b: &[u8], what: CmsStructure) -> Result<()> {
        if b.len() > MAX_HEAD {
            return Err(Error::MalformedCms {
                what,
                detail: format!("the structure's head runs past {MAX_HEAD} bytes"),
            });
        }
        Ok(())
    }

    fn new(b: &'a [u8], what: CmsStructure) -> Self {
        HeadReader {
            b,
            at: 0,
            what,
            indefinite: 0,
        }
    }

    fn bad(&self, detail: impl Into<String>) -> Error {
        Error::MalformedCms {
            what: self.what,
            detail: detail.into(),
        }
    }

    /// The header of the next element, not consumed.
    fn peek(&self) -> Result<Option<asn1::Header>> {
        asn1::read_header(&self.b[self.at..]).map_err(|e| self.bad(e.to_string()))
    }

    /// The header of the next element, which must have `tag`, not consumed.
    fn expect(&self, tag: u8, what: &str) -> Result<Option<asn1::Header>> {
        match self.peek()? {
            Some(h) if h.tag != tag => Err(self.bad(format!(
                "expected {what} (tag {tag:#04x}), found tag {:#04x}",
                h.tag
            ))),
            h => Ok(h),
        }
    }

    /// Steps into the next element (its header read), which must have `tag`.
    fn open(&mut self, tag: u8, what: &str) -> Result<Option<asn1::Header>> {
        let Some(h) = self.expect(tag, what)? else {
            return Ok(None);
        };
        self.at += h.header_len;
        self.indefinite += usize::from(h.len.is_none());
        Ok(Some(h))
    }

    /// The next element whole (it must have a definite length): its raw bytes.
    fn take(&mut self, tag: u8, what: &str) -> Result<Option<&'a [u8]>> {
        let Some(h) = self.expect(tag, what)? else {
            return Ok(None);
        };
        let len = h
            .len
            .ok_or_else(|| self.bad(format!("{what} has an indefinite length")))?;
        let end = self.at + h.header_len + len;
        if self.b.len() < end {
            return Ok(None);
        }
        let raw = &self.b[self.at..end];
        self.at = end;
        Ok(Some(raw))
    }
}

/// Whether `tail`, what follows a structure's content, closes it: the elements that may follow
/// (a tag, attributes) whole, and `indefinite` end-of-contents octets. Returns the OCTET
/// STRINGs found (AuthEnvelopedData's mac is one).
fn close(tail: &[u8], indefinite: usize, what: CmsStructure) -> Result<Vec<Vec<u8>>> {
    let bad = |detail: &str| Error::MalformedCms {
        what,
        detail: detail.into(),
    };
    let (mut rest, mut eocs, mut strings) = (tail, 0, Vec::new());
    while !rest.is_empty() {
        if eocs < indefinite && rest.len() >= 2 && rest[0] == 0 && rest[1] == 0 {
            eocs += 1;
            rest = &rest[2..];
            continue;
        }
        if eocs == indefinite && rest.iter().all(|b| matches!(b, 0 | b'\r' | b'\n')) {
            break; // padding after the structure, as some senders write
        }
        let (t, after) =
            asn1::read(rest).map_err(|_| bad("truncated: the structure did not end"))?;
        if t.tag == tag::OCTET_STRING {
            strings.push(t.content.to_vec());
        }
        rest = after;
    }
    if eocs < indefinite {
        return Err(bad("truncated: the structure did not end"));
    }
    Ok(strings)
}

/// `Ok(None)` from the enclosing function when `$e` needs more bytes.
macro_rules! need {
    ($e:expr) => {
        match $e? {
            Some(v) => v,
            None => return Ok(None),
        }
    };
}

/// Reading an OCTET STRING's content as it streams: one primitive string, or a constructed
/// one of primitive chunks (definite or indefinite length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Octets {
    /// A primitive string with this much left.
    Plain(usize),
    /// A constructed one: its definite length if it has one, what of it has been read, and what
    /// is left of the chunk being read.
    Chunks {
        total: Option<usize>,
        read: usize,
        chunk: usize,
    },
    /// Ended.
    Done,
}

impl Octets {
    /// How the content whose header is `h` is laid out: `primitive` and `constructed` are the
    /// tags it may have (an IMPLICIT tag, or OCTET STRING's own).
    fn of(h: asn1::Header, primitive: u8, constructed: u8) -> Option<Octets> {
        match (h.tag, h.len) {
            (t, Some(len)) if t == primitive => Some(Octets::Plain(len)),
            (t, total) if t == constructed => Some(Octets::Chunks {
                total,
                read: 0,
                chunk: 0,
            }),
            _ => None,
        }
    }

    /// The next run of content bytes in `b`: `Some((skip, take))` to skip `skip` bytes of chunk
    /// headers and then hand on `take` content bytes; `None` when more bytes are needed. Ended
    /// when `self` is `Done`.
    fn next(&mut self, b: &[u8], what: CmsStructure) -> Result<Option<(usize, usize)>> {
        let bad = |detail: String| Error::MalformedCms { what, detail };
        match *self {
            Octets::Done => Ok(Some((0, 0))),
            Octets::Plain(left) => {
                let n = left.min(b.len());
                *self = if n == left {
                    Octets::Done
                } else {
                    Octets::Plain(left - n)
                };
                Ok((n > 0 || *self == Octets::Done).then_some((0, n)))
            }
            Octets::Chunks { total, read, chunk } if chunk > 0 => {
                let n = chunk.min(b.len());
                *self = Octets::Chunks {
                    total,
                    read: read + n,
                    chunk: chunk - n,
                };
                Ok((n > 0).then_some((0, n)))
            }
            Octets::Chunks { total, read, .. } => {
                if total == Some(read) {
                    *self = Octets::Done;
                    return Ok(Some((0, 0)));
                }
                if total.is_none() && b.len() >= 2 && b[0] == 0 && b[1] == 0 {
                    *self = Octets::Done;
                    return Ok(Some((2, 0)));
                }
                match asn1::read_header(b).map_err(|e| bad(e.to_string()))? {
                    None => Ok(None),
                    Some(h) if h.tag == tag::OCTET_STRING => {
                        let len = h
                            .len
                            .ok_or_else(|| bad("a chunk has an indefinite length".into()))?;
                        *self = Octets::Chunks {
                            total,
                            read: read + h.header_len,
                            chunk: len,
                        };
                        Ok(Some((h.header_len, 0)))
                    }
                    Some(h) => Err(bad(format!("a content chunk has tag {:#04x}", h.tag))),
                }
            }
        }
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
