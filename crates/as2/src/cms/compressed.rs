//! Compressed data (RFC 3274, zlib): the CMS wrapper around [`crate::deflate`].

use crate::asn1::{self, tag};
use crate::error::{CmsStructure, Error, Result};

use super::*;
use crate::deflate::{inflate, zlib};

/// The zlib level used unless a partnership asks for another (zlib's own default).
pub(crate) const DEFAULT_COMPRESSION_LEVEL: u32 = 6;

/// CompressedData (zlib, default level) of `content`.
pub fn compress(content: &[u8]) -> Result<Vec<u8>> {
    compress_parts(&[content], DEFAULT_COMPRESSION_LEVEL)
}

/// CompressedData (zlib at `level`, 0 to 9) of the concatenation of `parts`, without joining them.
pub(crate) fn compress_parts(parts: &[&[u8]], level: u32) -> Result<Vec<u8>> {
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

/// CompressedData (zlib) written as the content is fed, in constant memory: BER with indefinite
/// lengths, the compressed bytes in OCTET STRING chunks inside a constructed OCTET STRING (as
/// OpenSSL's streaming mode writes it). Sans-IO: each call appends what it has to `out`.
pub struct CompressStream {
    z: crate::deflate::ParallelZlib,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for CompressStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompressStream").finish_non_exhaustive()
    }
}

/// The most compressed bytes one OCTET STRING chunk holds.
const CHUNK: usize = 1 << 16;

impl CompressStream {
    /// Starts CompressedData at zlib `level` (0 to 9): appends its head to `out`. The content
    /// is deflated on every core, a chunk per core at a time.
    pub fn start(level: u32, out: &mut Vec<u8>) -> Result<Self> {
        if level > 9 {
            return Err(Error::Config(format!(
                "compression level {level} is outside 0 to 9"
            )));
        }
        out.extend_from_slice(&[tag::SEQUENCE, 0x80]);
        out.extend_from_slice(&asn1::der_oid(OID_COMPRESSED_DATA));
        out.extend_from_slice(&[tag::CONTEXT_0, 0x80, tag::SEQUENCE, 0x80]);
        out.extend_from_slice(&asn1::der(tag::INTEGER, &[0]));
        out.extend_from_slice(&asn1::der(tag::SEQUENCE, &asn1::der_oid(OID_ZLIB)));
        out.extend_from_slice(&[tag::SEQUENCE, 0x80]);
        out.extend_from_slice(&asn1::der_oid(OID_DATA));
        // eContent [0] EXPLICIT, holding a constructed OCTET STRING of chunks.
        out.extend_from_slice(&[tag::CONTEXT_0, 0x80, tag::OCTET_STRING | 0x20, 0x80]);
        Ok(CompressStream {
            z: crate::deflate::ParallelZlib::new(level),
            scratch: Vec::new(),
        })
    }

    /// Compresses the next part of the content; appends the compressed bytes it makes.
    pub fn update(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.z.update(plain, &mut self.scratch)?;
        emit(&self.scratch, out);
        self.scratch.clear();
        Ok(())
    }

    /// Ends the content: appends the rest of the zlib stream and the end of every open
    /// structure to `out`.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<()> {
        self.z.finish(&mut self.scratch)?;
        emit(&self.scratch, out);
        // The OCTET STRING, the [0], the EncapsulatedContentInfo, the CompressedData, the [0]
        // around it, the ContentInfo.
        for _ in 0..6 {
            out.extend_from_slice(&[0, 0]);
        }
        Ok(())
    }
}

/// Compressed bytes as the OCTET STRING chunks of a constructed OCTET STRING.
fn emit(zlib: &[u8], out: &mut Vec<u8>) {
    for chunk in zlib.chunks(CHUNK) {
        push_header(out, tag::OCTET_STRING, chunk.len());
        out.extend_from_slice(chunk);
    }
}

/// CompressedData opened as it is fed, in constant memory: the structure's head is read as its
/// bytes come, the compressed content (one OCTET STRING, or a constructed one in chunks, as
/// streaming writers make it) is inflated as it passes, and more than `limit` bytes of output is
/// refused while inflating. Sans-IO: each call appends the content it has to `out`;
/// [`InflateStream::finish`] says whether the structure and the zlib stream were complete.
pub struct InflateStream {
    buf: Vec<u8>,
    /// `None` while the head is being read.
    state: Option<Octets>,
    /// What follows the content, and the end-of-contents it owes.
    tail: Vec<u8>,
    indefinite: usize,
    z: Option<flate2::Decompress>,
    ended: bool,
    produced: u64,
    limit: u64,
}

impl std::fmt::Debug for InflateStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InflateStream")
            .field("produced", &self.produced)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

const W: CmsStructure = CmsStructure::CompressedData;

fn bad(detail: impl Into<String>) -> Error {
    Error::MalformedCms {
        what: W,
        detail: detail.into(),
    }
}

impl InflateStream {
    /// Starts reading CompressedData that may inflate to at most `limit` bytes.
    pub fn new(limit: u64) -> Self {
        InflateStream {
            buf: Vec::new(),
            state: None,
            tail: Vec::new(),
            indefinite: 0,
            z: None,
            ended: false,
            produced: 0,
            limit,
        }
    }

    /// The structure's head, from `self.buf`: `None` until it is all there; then where the
    /// content starts and how it is laid out.
    fn head(&self) -> Result<Option<(usize, Octets, usize)>> {
        let mut r = HeadReader::new(&self.buf, W);
        need!(r.open(tag::SEQUENCE, "ContentInfo"));
        let oid = need!(r.take(tag::OID, "content type"));
        if oid[2..] != asn1::encode_oid(OID_COMPRESSED_DATA)[..] {
            return Err(bad("not compressed data"));
        }
        need!(r.open(tag::CONTEXT_0, "content"));
        need!(r.open(tag::SEQUENCE, "CompressedData"));
        need!(r.take(tag::INTEGER, "version"));
        let alg = need!(r.take(tag::SEQUENCE, "compression algorithm"));
        let alg_oid = asn1::read(alg)
            .ok()
            .and_then(|(t, _)| first_oid(&t))
            .unwrap_or_default();
        if alg_oid != OID_ZLIB {
            return Err(Error::UnsupportedAlgorithm(format!(
                "compression {alg_oid}"
            )));
        }
        need!(r.open(tag::SEQUENCE, "EncapsulatedContentInfo"));
        need!(r.take(tag::OID, "content type"));
        need!(r.open(tag::CONTEXT_0, "compressed content"));
        let h = need!(r.peek());
        let layout = Octets::of(h, tag::OCTET_STRING, tag::OCTET_STRING | 0x20)
            .ok_or_else(|| bad(format!("compressed content has tag {:#04x}", h.tag)))?;
        // The constructed OCTET STRING, when indefinite, ends with its own end-of-contents,
        // which the content reader takes.
        Ok(Some((r.at + h.header_len, layout, r.indefinite)))
    }

    fn inflate(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        while !input.is_empty() {
            if self.ended {
                return Err(bad("bytes after the end of the zlib stream"));
            }
            let z = self.z.get_or_insert_with(|| {
                // A few old products wrote raw deflate without the zlib wrapper.
                let zlib = input.len() < 2
                    || (input[0] & 0x0f == 8
                        && (u16::from(input[0]) << 8 | u16::from(input[1])) % 31 == 0);
                flate2::Decompress::new(zlib)
            });
            let room = out.len() + (1 << 16);
            out.reserve(1 << 16);
            let before = z.total_in();
            let status = z
                .decompress_vec(input, out, flate2::FlushDecompress::None)
                .map_err(|e| Error::DecompressionFailed(e.to_string()))?;
            let used = (z.total_in() - before) as usize;
            input = &input[used..];
            self.produced = z.total_out();
            if self.produced > self.limit {
                return Err(Error::DecompressionLimit { limit: self.limit });
            }
            if status == flate2::Status::StreamEnd {
                self.ended = true;
            } else if used == 0 && out.len() < room {
                return Err(Error::DecompressionFailed(
                    "the zlib stream made no progress".into(),
                ));
            }
        }
        Ok(())
    }

    /// The next bytes of the CompressedData; appends the content they inflate to.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.buf.extend_from_slice(input);
        let mut at = 0;
        loop {
            let Some(layout) = &mut self.state else {
                match self.head()? {
                    Some((start, layout, indefinite)) => {
                        at = start;
                        self.state = Some(layout);
                        self.indefinite = indefinite;
                        continue;
                    }
                    None => {
                        HeadReader::more(&self.buf, W)?;
                        break;
                    }
                }
            };
            if *layout == Octets::Done {
                // What follows the content closes the structures around it.
                if self.tail.len() + self.buf.len() - at > 1 << 16 {
                    return Err(bad("too much after the compressed content"));
                }
                self.tail.extend_from_slice(&self.buf[at..]);
                at = self.buf.len();
                break;
            }
            let Some((skip, take)) = layout.next(&self.buf[at..], W)? else {
                break;
            };
            at += skip;
            let chunk = std::mem::take(&mut self.buf);
            let result = self.inflate(&chunk[at..at + take], out);
            self.buf = chunk;
            result?;
            at += take;
        }
        self.buf.drain(..at);
        Ok(())
    }

    /// Whether everything came: the compressed content and its zlib stream both ended.
    pub fn finish(self) -> Result<u64> {
        if self.state != Some(Octets::Done) {
            return Err(bad("truncated: the compressed content did not end"));
        }
        close(&self.tail, self.indefinite, W)?;
        if !self.ended {
            return Err(Error::DecompressionFailed(
                "the zlib stream is truncated".into(),
            ));
        }
        Ok(self.produced)
    }
}

/// Inflates CompressedData, failing with [`Error::DecompressionLimit`] past `limit` bytes.
pub fn decompress(der: &[u8], limit: u64) -> Result<Vec<u8>> {
    const W: CmsStructure = CmsStructure::CompressedData;
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn parallel_deflate_reads_back_as_compressed_data() {
        let text: Vec<u8> = (0..(3 * (1 << 20) + 12_345))
            .map(|i| b"ISA*00*PO~\r\n"[i % 12] ^ ((i / 4099) as u8 & 1))
            .collect();
        let (a, b) = text.split_at(1000);
        let der = compress_parts(&[a, b], 6).unwrap();
        assert_eq!(decompress(&der, 1 << 30).unwrap(), text);
        assert!(compress_parts(&[b"x"], 10).is_err());
    }
}
