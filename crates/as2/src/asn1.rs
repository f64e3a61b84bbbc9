//! A minimal BER reader and DER writer: enough to walk CMS structures (which partners send in
//! BER, with indefinite lengths and chunked octet strings) and to write CompressedData.

use std::borrow::Cow;

/// Universal tag numbers used here (class and constructed bits included).
pub mod tag {
    /// INTEGER
    pub const INTEGER: u8 = 0x02;
    /// OCTET STRING (primitive)
    pub const OCTET_STRING: u8 = 0x04;
    /// NULL
    pub const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER
    pub const OID: u8 = 0x06;
    /// SEQUENCE
    pub const SEQUENCE: u8 = 0x30;
    /// SET
    pub const SET: u8 = 0x31;
    /// `[0]` constructed, context-specific
    pub const CONTEXT_0: u8 = 0xa0;
    /// `[0]` primitive, context-specific
    pub const CONTEXT_0_PRIMITIVE: u8 = 0x80;
}

const MAX_DEPTH: usize = 48;

/// A BER decoding failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Asn1Error(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, Asn1Error> {
    Err(Asn1Error(msg.into()))
}

/// One tag-length-value element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The identifier octet.
    pub tag: u8,
    /// The contents (for indefinite lengths: up to, not including, the end-of-contents octets).
    pub content: &'a [u8],
    /// The whole element as encoded.
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// True if the constructed bit is set.
    pub fn constructed(&self) -> bool {
        self.tag & 0x20 != 0
    }

    /// The child elements of a constructed element.
    pub fn children(&self) -> Result<Vec<Tlv<'a>>, Asn1Error> {
        if !self.constructed() {
            return err(format!(
                "element with tag {:#04x} is not constructed",
                self.tag
            ));
        }
        let mut out = Vec::new();
        let mut rest = self.content;
        while !rest.is_empty() {
            let (child, r) = read(rest)?;
            out.push(child);
            rest = r;
        }
        Ok(out)
    }

    /// The bytes of an OCTET STRING (or an implicitly tagged one), joining BER chunks.
    pub fn octets(&self) -> Result<Cow<'a, [u8]>, Asn1Error> {
        if !self.constructed() {
            return Ok(Cow::Borrowed(self.content));
        }
        let mut out = Vec::new();
        collect_octets(self, &mut out, 0)?;
        Ok(Cow::Owned(out))
    }

    /// The dotted form of an OBJECT IDENTIFIER.
    pub fn oid(&self) -> Result<String, Asn1Error> {
        if self.tag != tag::OID {
            return err(format!(
                "expected an OBJECT IDENTIFIER, found tag {:#04x}",
                self.tag
            ));
        }
        decode_oid(self.content)
    }

    /// Fails unless the tag is `expected`.
    pub fn expect(self, expected: u8, what: &str) -> Result<Self, Asn1Error> {
        if self.tag == expected {
            Ok(self)
        } else {
            err(format!(
                "expected {what} (tag {expected:#04x}), found tag {:#04x}",
                self.tag
            ))
        }
    }
}

fn collect_octets(t: &Tlv<'_>, out: &mut Vec<u8>, depth: usize) -> Result<(), Asn1Error> {
    if depth > MAX_DEPTH {
        return err("octet string chunks nested too deeply");
    }
    if !t.constructed() {
        out.extend_from_slice(t.content);
        return Ok(());
    }
    for c in t.children()? {
        collect_octets(&c, out, depth + 1)?;
    }
    Ok(())
}

/// Reads one element from the front of `input`; returns it and what follows.
pub fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), Asn1Error> {
    read_at_depth(input, 0)
}

fn read_at_depth(input: &[u8], depth: usize) -> Result<(Tlv<'_>, &[u8]), Asn1Error> {
    if depth > MAX_DEPTH {
        return err("ASN.1 nested too deeply");
    }
    let (&tag, rest) = match input.split_first() {
        Some(x) => x,
        None => return err("truncated: expected an ASN.1 element, found the end of the data"),
    };
    if tag & 0x1f == 0x1f {
        return err("multi-byte ASN.1 tags are not supported");
    }
    let (&first, mut rest) = match rest.split_first() {
        Some(x) => x,
        None => return err("truncated: missing ASN.1 length"),
    };
    let header_len;
    if first == 0x80 {
        // Indefinite length: children until the end-of-contents octets.
        if tag & 0x20 == 0 {
            return err("indefinite length on a primitive element");
        }
        let start = 2;
        let mut pos = start;
        loop {
            let remaining = &input[pos..];
            if remaining.len() >= 2 && remaining[0] == 0 && remaining[1] == 0 {
                let content = &input[start..pos];
                let raw = &input[..pos + 2];
                return Ok((Tlv { tag, content, raw }, &input[pos + 2..]));
            }
            if remaining.is_empty() {
                return err("truncated: indefinite-length element has no end-of-contents");
            }
            let (_, after) = read_at_depth(remaining, depth + 1)?;
            pos = input.len() - after.len();
        }
    }
    let len = if first & 0x80 == 0 {
        header_len = 2;
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 8 {
            return err(format!("unsupported ASN.1 length of {n} octets"));
        }
        if rest.len() < n {
            return err("truncated: ASN.1 length octets missing");
        }
        let mut len: u64 = 0;
        for &b in &rest[..n] {
            len = (len << 8) | u64::from(b);
        }
        rest = &rest[n..];
        header_len = 2 + n;
        usize::try_from(len).map_err(|_| Asn1Error("ASN.1 length too large".into()))?
    };
    if rest.len() < len {
        return err(format!(
            "truncated: element declares {len} bytes but only {} remain",
            rest.len()
        ));
    }
    let content = &rest[..len];
    Ok((
        Tlv {
            tag,
            content,
            raw: &input[..header_len + len],
        },
        &rest[len..],
    ))
}

/// An element's tag and length, read from the front of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The tag octet.
    pub tag: u8,
    /// The content length; `None` for an indefinite length (content up to end-of-contents).
    pub len: Option<usize>,
    /// Octets the tag and length take.
    pub header_len: usize,
}

/// The header at the front of `input`, or `None` when more bytes are needed to read it.
pub fn read_header(input: &[u8]) -> Result<Option<Header>, Asn1Error> {
    let (Some(&tag), Some(&first)) = (input.first(), input.get(1)) else {
        return Ok(None);
    };
    if tag & 0x1f == 0x1f {
        return err("multi-byte ASN.1 tags are not supported");
    }
    if first == 0x80 {
        if tag & 0x20 == 0 {
            return err("indefinite length on a primitive element");
        }
        return Ok(Some(Header {
            tag,
            len: None,
            header_len: 2,
        }));
    }
    if first & 0x80 == 0 {
        return Ok(Some(Header {
            tag,
            len: Some(first as usize),
            header_len: 2,
        }));
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 8 {
        return err(format!("unsupported ASN.1 length of {n} octets"));
    }
    let Some(octets) = input.get(2..2 + n) else {
        return Ok(None);
    };
    let len = octets.iter().fold(0u64, |l, &b| (l << 8) | u64::from(b));
    Ok(Some(Header {
        tag,
        len: Some(usize::try_from(len).map_err(|_| Asn1Error("ASN.1 length too large".into()))?),
        header_len: 2 + n,
    }))
}

/// Reads exactly one element; trailing bytes other than padding (zeros, line breaks) are an error.
pub fn read_all(input: &[u8]) -> Result<Tlv<'_>, Asn1Error> {
    let (t, rest) = read(input)?;
    if rest.iter().any(|&b| !matches!(b, 0 | b'\r' | b'\n')) {
        return err(format!(
            "{} unexpected bytes after the ASN.1 element",
            rest.len()
        ));
    }
    Ok(t)
}

fn decode_oid(b: &[u8]) -> Result<String, Asn1Error> {
    if b.is_empty() {
        return err("empty OBJECT IDENTIFIER");
    }
    let mut arcs: Vec<u64> = Vec::new();
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().enumerate() {
        if v > (u64::MAX >> 8) {
            return err("OBJECT IDENTIFIER arc too large");
        }
        v = (v << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let (a, b) = if v < 40 {
                    (0, v)
                } else if v < 80 {
                    (1, v - 40)
                } else {
                    (2, v - 80)
                };
                arcs.push(a);
                arcs.push(b);
            } else {
                arcs.push(v);
            }
            v = 0;
        } else if i == b.len() - 1 {
            return err("truncated OBJECT IDENTIFIER");
        }
    }
    Ok(arcs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join("."))
}

/// DER encoding of a dotted OBJECT IDENTIFIER (content only, no tag).
pub fn encode_oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').filter_map(|a| a.parse().ok()).collect();
    let mut out = Vec::new();
    if arcs.len() < 2 {
        return out;
    }
    let mut push = |mut v: u64| {
        let mut tmp = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            tmp.push(((v & 0x7f) as u8) | 0x80);
            v >>= 7;
        }
        tmp.reverse();
        out.extend(tmp);
    };
    push(arcs[0] * 40 + arcs[1]);
    for &a in &arcs[2..] {
        push(a);
    }
    out
}

/// Appends a DER length.
pub fn write_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// One DER element from a tag and its encoded contents.
pub fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 10);
    out.push(tag);
    write_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// A DER element whose contents are the concatenation of `parts`.
pub fn der_seq(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + 10);
    out.push(tag);
    write_len(&mut out, len);
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// A DER OBJECT IDENTIFIER element.
pub fn der_oid(dotted: &str) -> Vec<u8> {
    der(tag::OID, &encode_oid(dotted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_round_trip() {
        for o in [
            "1.2.840.113549.1.9.16.1.9",
            "2.16.840.1.101.3.4.2.1",
            "1.3.14.3.2.26",
        ] {
            let d = der_oid(o);
            assert_eq!(read_all(&d).unwrap().oid().unwrap(), o);
        }
    }

    #[test]
    fn reads_indefinite_and_chunked() {
        // SEQUENCE (indefinite) { OCTET STRING constructed (indefinite) { "ab", "c" } }
        let data = [
            0x30, 0x80, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0, 0, 0, 0,
        ];
        let t = read_all(&data).unwrap();
        let kids = t.children().unwrap();
        assert_eq!(kids.len(), 1);
        assert_eq!(kids[0].octets().unwrap().as_ref(), b"abc");
    }

    #[test]
    fn long_lengths_and_truncation() {
        let content = vec![7u8; 300];
        let d = der(tag::OCTET_STRING, &content);
        assert_eq!(&d[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(read_all(&d).unwrap().content.len(), 300);
        assert!(read(&d[..100]).is_err());
        assert!(read(&[0x30, 0x80, 0x04, 0x01, 1]).is_err());
        assert!(read(&[0x04, 0x89, 1, 1, 1, 1, 1, 1, 1, 1, 1]).is_err());
        assert!(read(&[]).is_err());
        assert!(read_all(&[0x05, 0x00, 0x01]).is_err());
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut data = Vec::new();
        for _ in 0..200 {
            data.extend_from_slice(&[0x30, 0x80]);
        }
        assert!(read(&data).is_err());
    }

    /// What tests/no_panic.rs does to whole messages, here to DER alone (the module is the
    /// crate's own): flipped bytes and truncations of a nested structure never panic.
    #[test]
    fn mangled_der_never_panics() {
        let inner = der_seq(
            tag::SEQUENCE,
            &[
                &der_oid("1.2.840.113549.1.7.1"),
                &der(tag::OCTET_STRING, &[7; 300]),
            ],
        );
        let good = der_seq(
            tag::SEQUENCE,
            &[
                &der(tag::INTEGER, &[1]),
                &der(tag::CONTEXT_0, &inner),
                &der(tag::SET, &[]),
            ],
        );
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..3000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut bytes = good.clone();
            let at = (seed as usize) % bytes.len();
            bytes[at] ^= (seed >> 32) as u8 | 1;
            if round % 3 == 0 {
                bytes.truncate((seed >> 16) as usize % bytes.len());
            }
            let _ = read(&bytes).map(|(t, _)| {
                t.children().map(|c| {
                    c.iter()
                        .filter_map(|x| x.octets().ok())
                        .map(|o| o.len())
                        .sum::<usize>()
                })
            });
            let _ = read_all(&bytes);
        }
    }
}
