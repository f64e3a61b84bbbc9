//! MIME parsing over byte offsets (never re-serialised), and the few MIME writers AS2 needs.
//!
//! A signature covers the exact bytes of a body part, so the parser hands out ranges into the
//! buffer it was given; nothing here rebuilds a part from parsed headers.

use std::borrow::Cow;
use std::ops::Range;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

use crate::error::{Error, Result};
use crate::headers::HeaderMap;

/// Bounds on what the parser accepts, so a hostile message cannot exhaust memory or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest header block, in bytes, of any entity.
    pub max_header_bytes: usize,
    /// Most header fields in one block.
    pub max_headers: usize,
    /// Most parts in one multipart body.
    pub max_parts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 64 * 1024,
            max_headers: 512,
            max_parts: 64,
        }
    }
}

/// A parsed MIME entity: its headers and where its body starts in `raw`.
#[derive(Debug, Clone)]
pub struct Entity<'a> {
    /// Header fields, unfolded.
    pub headers: HeaderMap,
    /// The whole entity as given: headers, blank line, body.
    pub raw: &'a [u8],
    /// Offset of the body in `raw`.
    pub body_offset: usize,
}

impl<'a> Entity<'a> {
    /// Parses an entity (headers, blank line, body) from `raw`.
    pub fn parse(raw: &'a [u8], limits: &Limits) -> Result<Self> {
        let (headers, body_offset) = parse_header_block(raw, limits)?;
        Ok(Entity {
            headers,
            raw,
            body_offset,
        })
    }

    /// An entity whose headers came from elsewhere (the HTTP request) and whose body is `body`.
    pub fn with_headers(headers: HeaderMap, body: &'a [u8]) -> Self {
        Entity {
            headers,
            raw: body,
            body_offset: 0,
        }
    }

    /// The body bytes, still transfer-encoded.
    pub fn body(&self) -> &'a [u8] {
        &self.raw[self.body_offset..]
    }

    /// The Content-Type, `text/plain` when absent (RFC 2045 section 5.2).
    pub fn content_type(&self) -> ContentType {
        self.headers
            .get("Content-Type")
            .map(ContentType::parse)
            .unwrap_or_else(|| ContentType::parse("text/plain"))
    }

    /// The Content-Transfer-Encoding, if declared.
    pub fn transfer_encoding(&self) -> Option<TransferEncoding> {
        self.headers
            .get("Content-Transfer-Encoding")
            .map(TransferEncoding::parse)
    }

    /// The body with its transfer encoding removed.
    pub fn decoded_body(&self) -> Result<Cow<'a, [u8]>> {
        decode_transfer(self.body(), self.transfer_encoding().as_ref())
    }

    /// The filename from Content-Disposition, else from the Content-Type `name` parameter, decoded
    /// (RFC 2231 and RFC 2047) but not sanitised.
    pub fn raw_filename(&self) -> Option<String> {
        let from_disposition = self
            .headers
            .get("Content-Disposition")
            .and_then(|v| Params::parse_after_value(v).get("filename"));
        let name = from_disposition.or_else(|| self.content_type().params.get("name"))?;
        Some(decode_encoded_words(&name))
    }
}

/// Parses a header block; returns the headers and the offset of the body.
pub fn parse_header_block(raw: &[u8], limits: &Limits) -> Result<(HeaderMap, usize)> {
    let mut headers = HeaderMap::new();
    let mut pos = 0;
    let mut current: Option<(String, Vec<u8>)> = None;
    let finish = |headers: &mut HeaderMap, cur: Option<(String, Vec<u8>)>| {
        if let Some((name, value)) = cur {
            let value = header_text(&value).trim().to_string();
            headers.append(name, value);
        }
    };
    loop {
        if pos > limits.max_header_bytes {
            return Err(Error::HeadersTooLarge {
                limit: limits.max_header_bytes,
            });
        }
        let rest = &raw[pos..];
        if rest.is_empty() {
            // Headers only, no blank line and no body.
            finish(&mut headers, current.take());
            return Ok((headers, raw.len()));
        }
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], pos + i + 1),
            None => (rest, raw.len()),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            finish(&mut headers, current.take());
            return Ok((headers, next));
        }
        if line[0] == b' ' || line[0] == b'\t' {
            match current.as_mut() {
                Some((_, value)) => value.extend_from_slice(line),
                None => {
                    return Err(Error::MalformedMime(
                        "header block starts with a continuation line".into(),
                    ))
                }
            }
        } else {
            let colon = memchr::memchr(b':', line);
            let name = colon.map(|c| line[..c].trim_ascii());
            match name {
                Some(name) if !name.is_empty() && name.iter().all(|b| b.is_ascii_graphic()) => {
                    finish(&mut headers, current.take());
                    if headers.len() >= limits.max_headers {
                        return Err(Error::MalformedMime(format!(
                            "more than {} header fields",
                            limits.max_headers
                        )));
                    }
                    let c = colon.unwrap_or_default();
                    current = Some((
                        String::from_utf8_lossy(name).into_owned(),
                        line[c + 1..].to_vec(),
                    ));
                }
                _ if pos == 0 => {
                    // A part with no headers and no blank line (seen in MDN text parts): all body.
                    return Ok((headers, 0));
                }
                _ => {
                    return Err(Error::MalformedMime(format!(
                        "header line {:?} has no field name",
                        String::from_utf8_lossy(&line[..line.len().min(40)])
                    )))
                }
            }
        }
        pos = next;
    }
}

/// Where the body of an entity starts: just after the first empty line (CRLF or LF line ends).
/// `None` when there is no empty line.
pub(crate) fn header_block_end(raw: &[u8]) -> Option<usize> {
    let mut pos = 0;
    while pos < raw.len() {
        let line_end = memchr::memchr(b'\n', &raw[pos..]).map(|i| pos + i)?;
        let line = &raw[pos..line_end];
        if line.is_empty() || line == b"\r" {
            return Some(line_end + 1);
        }
        pos = line_end + 1;
    }
    None
}

/// A header value's text: UTF-8 when the bytes are valid UTF-8 (what most products send for a
/// non-ASCII file name), else ISO-8859-1 (what Java's HTTP clients write). Never lossy.
pub fn header_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// A parsed Content-Type: lower-case `type/subtype` and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    /// `type/subtype`, lower case, parameters removed.
    pub mime_type: String,
    /// Parameters (names lower case).
    pub params: Params,
}

impl ContentType {
    /// Parses a Content-Type value; never fails (an empty value gives an empty type).
    pub fn parse(value: &str) -> Self {
        let (ty, params) = match value.find(';') {
            Some(i) => (&value[..i], Params::parse(&value[i + 1..])),
            None => (value, Params::default()),
        };
        ContentType {
            mime_type: ty.trim().to_ascii_lowercase(),
            params,
        }
    }

    /// True if the type is `ty` (lower case expected).
    pub fn is(&self, ty: &str) -> bool {
        self.mime_type == ty
    }

    /// True for `application/pkcs7-mime` and its legacy `x-` form.
    pub fn is_pkcs7_mime(&self) -> bool {
        self.is("application/pkcs7-mime") || self.is("application/x-pkcs7-mime")
    }

    /// True for `application/pkcs7-signature` and its legacy `x-` form.
    pub fn is_pkcs7_signature(&self) -> bool {
        self.is("application/pkcs7-signature") || self.is("application/x-pkcs7-signature")
    }

    /// The `smime-type` parameter, lower case.
    pub fn smime_type(&self) -> Option<String> {
        self.params
            .get("smime-type")
            .map(|s| s.to_ascii_lowercase())
    }
}

/// MIME parameters (`; name=value`), with RFC 2231 continuations and charsets decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses `name=value; name2="quoted"; name3*=UTF-8''%E2%82%AC`.
    pub fn parse(s: &str) -> Self {
        let raw = split_params(s);
        let mut out: Vec<(String, String)> = Vec::new();
        // RFC 2231: name*, name*0, name*0*, name*1 ... joined in order; extended values are
        // percent-encoded and the first carries charset'language'.
        let mut extended: Vec<(String, u32, bool, String)> = Vec::new();
        for (name, value) in raw {
            if let Some(star) = name.find('*') {
                let base = name[..star].to_string();
                let rest = &name[star + 1..];
                let (index, encoded) = if rest.is_empty() {
                    (0, true)
                } else {
                    let (num, enc) = match rest.strip_suffix('*') {
                        Some(n) => (n, true),
                        None => (rest, false),
                    };
                    match num.parse::<u32>() {
                        Ok(n) => (n, enc),
                        Err(_) => continue,
                    }
                };
                extended.push((base, index, encoded, value));
            } else if !out.iter().any(|(n, _)| *n == name) {
                out.push((name, value));
            }
        }
        extended.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        let mut i = 0;
        while i < extended.len() {
            let base = extended[i].0.clone();
            let mut bytes = Vec::new();
            let mut charset = String::from("us-ascii");
            while i < extended.len() && extended[i].0 == base {
                let (_, index, encoded, ref value) = extended[i];
                if encoded {
                    let mut v = value.as_str();
                    if index == 0 {
                        let mut it = v.splitn(3, '\'');
                        if let (Some(cs), Some(_lang), Some(rest)) =
                            (it.next(), it.next(), it.next())
                        {
                            charset = cs.to_string();
                            v = rest;
                        }
                    }
                    bytes.extend(percent_decode(v));
                } else {
                    bytes.extend_from_slice(value.as_bytes());
                }
                i += 1;
            }
            let decoded = decode_charset(&charset, &bytes);
            out.retain(|(n, _)| *n != base);
            out.push((base, decoded));
        }
        Params(out)
    }

    /// Parses the parameters after a leading value, as in `attachment; filename=x`.
    pub fn parse_after_value(s: &str) -> Self {
        match s.find(';') {
            Some(i) => Params::parse(&s[i + 1..]),
            None => Params::default(),
        }
    }

    /// The value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    /// All parameters in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// Splits `a=b; c="d;e"` into lower-cased names and unquoted values.
fn split_params(s: &str) -> Vec<(String, String)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b';' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        let name_start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b';' {
            i += 1;
        }
        let name = s[name_start..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] == b';' {
            continue; // a bare token, not a parameter
        }
        i += 1; // '='
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        let value = if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut v = Vec::new();
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                v.push(b[i]);
                i += 1;
            }
            i += 1; // closing quote (or end)
            while i < b.len() && b[i] != b';' {
                i += 1;
            }
            String::from_utf8_lossy(&v).into_owned()
        } else {
            let start = i;
            while i < b.len() && b[i] != b';' {
                i += 1;
            }
            s[start..i].trim().to_string()
        };
        if !name.is_empty() {
            out.push((name, value));
        }
    }
    out
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes bytes in a named charset; UTF-8 and Latin-1 are exact, anything else is read as UTF-8.
fn decode_charset(charset: &str, bytes: &[u8]) -> String {
    let cs = charset.trim().to_ascii_lowercase();
    if cs == "iso-8859-1" || cs == "latin1" || cs == "iso8859-1" || cs == "windows-1252" {
        bytes.iter().map(|&b| b as char).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// Header text (a `Subject`) as it may travel in HTTP and MIME headers: printable ASCII is kept as
/// it is (line breaks become spaces); anything else becomes RFC 2047 `=?UTF-8?B?...?=` words of at
/// most 75 characters, split between characters. HTTP header values must not carry raw UTF-8:
/// HTTP libraries refuse it and partner products (pyas2lib among them) fail on it.
pub(crate) fn encode_header_text(text: &str) -> String {
    let text = text.replace(['\r', '\n'], " ");
    let plain = text
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) || b == b'\t');
    if plain && !text.contains("=?") {
        return text;
    }
    // 45 bytes of UTF-8 are 60 of base64; with `=?UTF-8?B?` and `?=` a word is 72 characters.
    const CHUNK: usize = 45;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut words = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + CHUNK).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        words.push(format!("=?UTF-8?B?{}?=", engine.encode(&text[start..end])));
        start = end;
    }
    words.join(" ")
}

/// Decodes RFC 2047 encoded words (`=?UTF-8?B?...?=`, `=?ISO-8859-1?Q?...?=`); other text is kept.
pub fn decode_encoded_words(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        match decode_one_word(candidate) {
            Some((decoded, used)) => {
                // Whitespace between two adjacent encoded words is dropped (RFC 2047 section 6.2).
                if !(last_was_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&decoded);
                rest = &candidate[used..];
                last_was_word = true;
            }
            None => {
                out.push_str(before);
                out.push_str("=?");
                rest = &candidate[2..];
                last_was_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_one_word(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let q1 = inner.find('?')?;
    let charset = &inner[..q1];
    let charset = charset.split('*').next().unwrap_or(charset); // RFC 2231 language suffix
    let after = &inner[q1 + 1..];
    let q2 = after.find('?')?;
    let enc = &after[..q2];
    let text_and_rest = &after[q2 + 1..];
    let end = text_and_rest.find("?=")?;
    let text = &text_and_rest[..end];
    let bytes = match enc {
        "B" | "b" => lenient_base64().decode(text.trim()).ok()?,
        "Q" | "q" => {
            let mut v = Vec::new();
            let b = text.as_bytes();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'_' => v.push(b' '),
                    b'=' => {
                        let h = b.get(i + 1).and_then(|&c| hex_val(c));
                        let l = b.get(i + 2).and_then(|&c| hex_val(c));
                        match (h, l) {
                            (Some(h), Some(l)) => {
                                v.push(h << 4 | l);
                                i += 2;
                            }
                            _ => v.push(b'='),
                        }
                    }
                    c => v.push(c),
                }
                i += 1;
            }
            v
        }
        _ => return None,
    };
    let used = 2 + q1 + 1 + q2 + 1 + end + 2;
    Some((decode_charset(charset, &bytes), used))
}

/// A Content-Transfer-Encoding value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferEncoding {
    /// `7bit`
    SevenBit,
    /// `8bit`
    EightBit,
    /// `binary`
    Binary,
    /// `base64`
    Base64,
    /// `quoted-printable`
    QuotedPrintable,
    /// Anything else, lower case.
    Other(String),
}

impl TransferEncoding {
    /// Parses a header value, ignoring case and surrounding space.
    pub fn parse(v: &str) -> Self {
        match v.trim().to_ascii_lowercase().as_str() {
            "7bit" => TransferEncoding::SevenBit,
            "8bit" => TransferEncoding::EightBit,
            "binary" => TransferEncoding::Binary,
            "base64" => TransferEncoding::Base64,
            "quoted-printable" => TransferEncoding::QuotedPrintable,
            other => TransferEncoding::Other(other.to_string()),
        }
    }

    /// The header value.
    pub fn as_str(&self) -> &str {
        match self {
            TransferEncoding::SevenBit => "7bit",
            TransferEncoding::EightBit => "8bit",
            TransferEncoding::Binary => "binary",
            TransferEncoding::Base64 => "base64",
            TransferEncoding::QuotedPrintable => "quoted-printable",
            TransferEncoding::Other(s) => s,
        }
    }
}

/// Removes a transfer encoding. Identity encodings borrow; unknown ones are an error.
pub(crate) fn decode_transfer<'a>(
    body: &'a [u8],
    encoding: Option<&TransferEncoding>,
) -> Result<Cow<'a, [u8]>> {
    match encoding {
        None
        | Some(TransferEncoding::SevenBit)
        | Some(TransferEncoding::EightBit)
        | Some(TransferEncoding::Binary) => Ok(Cow::Borrowed(body)),
        Some(TransferEncoding::Base64) => decode_base64(body).map(Cow::Owned),
        Some(TransferEncoding::QuotedPrintable) => Ok(Cow::Owned(decode_quoted_printable(body))),
        Some(TransferEncoding::Other(o)) => Err(Error::MalformedMime(format!(
            "unknown Content-Transfer-Encoding {o:?}"
        ))),
    }
}

fn lenient_base64() -> GeneralPurpose {
    GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    )
}

/// Decodes base64 that may be wrapped at any width and padded or not.
pub fn decode_base64(body: &[u8]) -> Result<Vec<u8>> {
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    lenient_base64()
        .decode(&compact)
        .map_err(|e| Error::MalformedMime(format!("invalid base64 body: {e}")))
}

/// Encodes base64 in 76-character CRLF-terminated lines (RFC 2045).
pub fn encode_base64_lines(data: &[u8]) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 76 * 2 + 2);
    for chunk in encoded.as_bytes().chunks(76) {
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out
}

pub(crate) fn decode_quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'=' {
            if body.get(i + 1) == Some(&b'\r') && body.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            if body.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if let (Some(h), Some(l)) = (
                body.get(i + 1).and_then(|&c| hex_val(c)),
                body.get(i + 2).and_then(|&c| hex_val(c)),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(body[i]);
        i += 1;
    }
    out
}

/// Converts bare LF line ends to CRLF (MIME canonical form). Borrows when nothing changes.
pub fn canonicalize(data: &[u8]) -> Cow<'_, [u8]> {
    let bare = memchr::memchr_iter(b'\n', data).any(|i| i == 0 || data[i - 1] != b'\r');
    if !bare {
        return Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 32);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    Cow::Owned(out)
}

/// The parts of a multipart body, as ranges into the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    /// Each part's bytes (headers and body), without the delimiter lines and the CRLF before them.
    pub parts: Vec<Range<usize>>,
    /// False when the closing `--boundary--` was missing (tolerated; the last part runs to the end).
    pub closed: bool,
}

/// Splits a multipart body on `boundary` (RFC 2046 section 5.1.1).
pub fn split_multipart(body: &[u8], boundary: &str, limits: &Limits) -> Result<Multipart> {
    if boundary.is_empty() || boundary.len() > 200 {
        return Err(Error::MalformedMime(
            "multipart boundary is empty or longer than 200 characters".into(),
        ));
    }
    let delimiter = format!("--{boundary}");
    let finder = memchr::memmem::Finder::new(delimiter.as_bytes());
    let mut parts = Vec::new();
    let mut part_start: Option<usize> = None;
    let mut search_from = 0;
    while let Some(found) = finder.find(&body[search_from..]) {
        let at = search_from + found;
        search_from = at + delimiter.len();
        if at != 0 && body[at - 1] != b'\n' {
            continue; // not at the start of a line
        }
        let after = &body[at + delimiter.len()..];
        let closing = after.starts_with(b"--");
        // The rest of the delimiter line may only hold transport padding (spaces, tabs).
        let line_rest = if closing { &after[2..] } else { after };
        let eol = memchr::memchr(b'\n', line_rest);
        let padding = &line_rest[..eol.unwrap_or(line_rest.len())];
        if !padding
            .iter()
            .all(|&b| b == b' ' || b == b'\t' || b == b'\r')
        {
            continue; // a longer boundary that merely starts with ours
        }
        if let Some(start) = part_start {
            let mut end = at;
            if end > start && body[end - 1] == b'\n' {
                end -= 1;
                if end > start && body[end - 1] == b'\r' {
                    end -= 1;
                }
            }
            parts.push(start..end.max(start));
            if parts.len() > limits.max_parts {
                return Err(Error::MalformedMime(format!(
                    "more than {} parts in a multipart body",
                    limits.max_parts
                )));
            }
        }
        if closing {
            return finish_parts(parts, true);
        }
        let next = match eol {
            Some(e) => at + delimiter.len() + e + 1,
            None => body.len(),
        };
        part_start = Some(next);
        search_from = next;
    }
    match part_start {
        None => Err(Error::MalformedMime(format!(
            "multipart boundary {boundary:?} not found in the body"
        ))),
        Some(start) => {
            // No closing delimiter: the last part runs to the end, trailing line breaks removed.
            let mut end = body.len();
            while end > start && (body[end - 1] == b'\n' || body[end - 1] == b'\r') {
                end -= 1;
            }
            parts.push(start..end);
            finish_parts(parts, false)
        }
    }
}

fn finish_parts(parts: Vec<Range<usize>>, closed: bool) -> Result<Multipart> {
    if parts.is_empty() {
        return Err(Error::MalformedMime("multipart body has no parts".into()));
    }
    Ok(Multipart { parts, closed })
}

/// A fresh random boundary that does not occur in `content`.
pub(crate) fn new_boundary(content: &[u8]) -> String {
    loop {
        let b = random_boundary();
        if memchr::memmem::find(content, b.as_bytes()).is_none() {
            return b;
        }
    }
}

/// A boundary for content not known yet (a stream): random enough that content never holds it.
pub(crate) fn random_boundary() -> String {
    format!("----=_Part_mftg_{}", crate::random_hex(16))
}

/// Quotes a parameter value when it is not a plain token.
pub(crate) fn quote_param(value: &str) -> String {
    let token = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b));
    if token {
        value.to_string()
    } else {
        let mut s = String::with_capacity(value.len() + 2);
        s.push('"');
        for c in value.chars() {
            if c == '"' || c == '\\' {
                s.push('\\');
            }
            s.push(c);
        }
        s.push('"');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filename::attachment_disposition;

    #[test]
    fn parses_headers_with_folding_and_lf_only() {
        let raw = b"Content-Type: multipart/signed;\r\n\tboundary=\"abc\"; micalg=SHA1\r\nX: y\r\n\r\nbody";
        let e = Entity::parse(raw, &Limits::default()).unwrap();
        assert_eq!(e.body(), b"body");
        let ct = e.content_type();
        assert_eq!(ct.mime_type, "multipart/signed");
        assert_eq!(ct.params.get("boundary").as_deref(), Some("abc"));
        assert_eq!(ct.params.get("MICALG").as_deref(), Some("SHA1"));

        let e = Entity::parse(b"a: 1\nb: 2\n\nxyz", &Limits::default()).unwrap();
        assert_eq!(e.headers.get("B"), Some("2"));
        assert_eq!(e.body(), b"xyz");
    }

    #[test]
    fn part_without_headers() {
        let e = Entity::parse(b"\r\nhello", &Limits::default()).unwrap();
        assert!(e.headers.is_empty());
        assert_eq!(e.body(), b"hello");
        let e = Entity::parse(b"The message was received\r\n", &Limits::default()).unwrap();
        assert_eq!(e.body(), b"The message was received\r\n");
    }

    #[test]
    fn header_limits() {
        let big = format!("X: {}\r\n\r\n", "a".repeat(200));
        let limits = Limits {
            max_header_bytes: 100,
            ..Limits::default()
        };
        assert!(matches!(
            Entity::parse(big.as_bytes(), &limits),
            Err(Error::HeadersTooLarge { limit: 100 })
        ));
        assert!(Entity::parse(
            b"X: 1\r\n bad start\r\nno colon here\r\n\r\n",
            &Limits::default()
        )
        .is_err());
        assert!(Entity::parse(b" continuation first\r\n\r\n", &Limits::default()).is_err());
    }

    #[test]
    fn filenames_quoted_unquoted_2231_2047() {
        let f = |cd: &str| {
            let raw = format!("Content-Disposition: {cd}\r\n\r\n");
            Entity::parse(raw.as_bytes(), &Limits::default())
                .unwrap()
                .raw_filename()
        };
        assert_eq!(
            f("attachment; filename=\"a b.edi\"").as_deref(),
            Some("a b.edi")
        );
        assert_eq!(f("attachment; filename=ab.edi").as_deref(), Some("ab.edi"));
        assert_eq!(
            f("attachment; filename*=UTF-8''%E2%82%ACuro.x12").as_deref(),
            Some("\u{20ac}uro.x12")
        );
        assert_eq!(
            f("attachment; filename*0*=UTF-8''a%20; filename*1=b.edi").as_deref(),
            Some("a b.edi")
        );
        assert_eq!(
            f("attachment; filename=\"=?UTF-8?B?w6TDtsO8LmVkaQ==?=\"").as_deref(),
            Some("\u{e4}\u{f6}\u{fc}.edi")
        );
        assert_eq!(
            f("attachment; filename==?iso-8859-1?Q?caf=E9_menu.txt?=").as_deref(),
            Some("caf\u{e9} menu.txt")
        );
        let raw = b"Content-Type: application/edi-x12; name=fromct.x12\r\n\r\n";
        assert_eq!(
            Entity::parse(raw, &Limits::default())
                .unwrap()
                .raw_filename()
                .as_deref(),
            Some("fromct.x12")
        );
    }

    #[test]
    fn multipart_split_exact_ranges() {
        let body =
            b"preamble\r\n--b1\r\nA: 1\r\n\r\nfirst\r\n--b1 \r\n\r\nsecond\r\n--b1--\r\nepilogue";
        let m = split_multipart(body, "b1", &Limits::default()).unwrap();
        assert!(m.closed);
        assert_eq!(&body[m.parts[0].clone()], b"A: 1\r\n\r\nfirst");
        assert_eq!(&body[m.parts[1].clone()], b"\r\nsecond");
        // A longer boundary sharing our prefix is content, not a delimiter.
        let body = b"--b1\r\nx\r\n--b1x\r\n--b1--";
        let m = split_multipart(body, "b1", &Limits::default()).unwrap();
        assert_eq!(&body[m.parts[0].clone()], b"x\r\n--b1x");
        // Missing close delimiter is tolerated.
        let m = split_multipart(b"--b\nx\n--b\ny\n", "b", &Limits::default()).unwrap();
        assert!(!m.closed);
        assert_eq!(m.parts.len(), 2);
        assert!(split_multipart(b"no delimiters", "b", &Limits::default()).is_err());
        assert!(split_multipart(b"--b--", "b", &Limits::default()).is_err());
    }

    #[test]
    fn canonicalize_only_bare_lf() {
        assert!(matches!(canonicalize(b"a\r\nb"), Cow::Borrowed(_)));
        assert_eq!(canonicalize(b"a\nb\r\nc\n").as_ref(), b"a\r\nb\r\nc\r\n");
    }

    #[test]
    fn transfer_decoding() {
        let d = decode_transfer(b"aGVs\r\nbG8", Some(&TransferEncoding::Base64)).unwrap();
        assert_eq!(d.as_ref(), b"hello");
        assert!(decode_transfer(b"!!!", Some(&TransferEncoding::Base64)).is_err());
        let q = decode_transfer(b"a=3Db=\r\nc", Some(&TransferEncoding::QuotedPrintable)).unwrap();
        assert_eq!(q.as_ref(), b"a=bc");
        assert!(decode_transfer(b"x", Some(&TransferEncoding::parse("x-uue"))).is_err());
        let enc = encode_base64_lines(&[7u8; 100]);
        assert_eq!(decode_base64(&enc).unwrap(), vec![7u8; 100]);
    }

    #[test]
    fn header_text_is_ascii_and_decodes_back() {
        assert_eq!(
            encode_header_text("AS2 message po-1.x12"),
            "AS2 message po-1.x12"
        );
        assert_eq!(encode_header_text("a\r\nb"), "a  b");
        for text in [
            "AS2 message PO 2026 \u{e9}t\u{e9} (1).x12",
            "\u{8acb}\u{6c42}\u{66f8}.edi \u{1f4e6}",
            &"\u{fc}ber ".repeat(40),
            "looks like =?UTF-8?B?eA==?= already",
        ] {
            let encoded = encode_header_text(text);
            assert!(
                encoded
                    .bytes()
                    .all(|b| (0x21..0x7f).contains(&b) || b == b' '),
                "{encoded}"
            );
            assert!(encoded.split(' ').all(|w| w.len() <= 75), "{encoded}");
            assert_eq!(decode_encoded_words(&encoded), text);
        }
    }

    #[test]
    fn writers() {
        assert_eq!(quote_param("a.edi"), "a.edi");
        assert_eq!(quote_param("a b\"c"), "\"a b\\\"c\"");
        let d = attachment_disposition("\u{20ac}.edi");
        let p = Params::parse_after_value(&d);
        assert_eq!(p.get("filename").as_deref(), Some("\u{20ac}.edi"));
        let b = new_boundary(b"x");
        assert!(b.len() > 20);
    }
}
