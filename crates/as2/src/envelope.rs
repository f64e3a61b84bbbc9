//! The AS2 envelope: what every message and receipt carries around its content, shared by
//! building, opening and receipts (RFC 4130 sections 6 and 7): AS2 IDs and their quoting, the
//! Message-ID, the AS2 headers, and the receipt a message asks for.

use crate::algorithm::{DigestAlgorithm, NameStyle};
use crate::error::{Error, Result};
use crate::headers::HeaderMap;
use crate::mic;
use crate::mime;
use crate::time::{format_rfc2822, UnixTime};

/// The Message-ID domain when none is given.
pub const DEFAULT_MESSAGE_ID_DOMAIN: &str = "mftg.local";

/// A new unique Message-ID in angle brackets: `<mftg-20261128054703-9f86d081884c7d65@domain>`.
pub fn new_message_id(domain: &str, now: UnixTime) -> String {
    let domain = if domain.trim().is_empty() {
        DEFAULT_MESSAGE_ID_DOMAIN
    } else {
        domain.trim()
    };
    format!(
        "<mftg-{}-{}@{}>",
        now.compact(),
        crate::random_hex(8),
        domain
    )
}

/// Checks an AS2 ID: 1 to 128 printable ASCII characters (RFC 4130 section 6.2).
pub fn validate_as2_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 128 {
        return Err(Error::Config(format!(
            "AS2 ID {id:?} must be 1 to 128 characters long"
        )));
    }
    if !id.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(Error::Config(format!(
            "AS2 ID {id:?} may only hold printable ASCII characters"
        )));
    }
    Ok(())
}

/// Checks an AS2 ID that also names a folder (the gateway's storage layout keeps each station's
/// and partner's files under their AS2 IDs): an AS2 ID ([`validate_as2_id`]) that is also safe
/// as one path segment: no `/` or `\`, not `.` or `..`, no leading or trailing space.
pub fn validate_as2_id_as_folder(id: &str) -> Result<()> {
    validate_as2_id(id)?;
    if id.contains(['/', '\\']) || id == "." || id == ".." || id.trim() != id {
        return Err(Error::Config(format!(
            "AS2 ID {id:?} cannot name a folder (no slashes, not . or .., no leading or trailing space)"
        )));
    }
    Ok(())
}

/// The header form of an AS2 ID: quoted when it holds spaces or specials (RFC 4130 section 6.2).
pub fn quote_as2_id(id: &str) -> String {
    if id
        .bytes()
        .any(|b| b == b' ' || b == b'"' || b == b'\\' || b"()<>@,;:/[]?={}".contains(&b))
    {
        let mut s = String::from("\"");
        for c in id.chars() {
            if c == '"' || c == '\\' {
                s.push('\\');
            }
            s.push(c);
        }
        s.push('"');
        s
    } else {
        id.to_string()
    }
}

/// The AS2 ID from a header value, quotes and escapes removed.
pub fn unquote_as2_id(value: &str) -> String {
    let v = value.trim();
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        let mut out = String::new();
        let mut escaped = false;
        for c in v[1..v.len() - 1].chars() {
            if escaped || c != '\\' {
                out.push(c);
                escaped = false;
            } else {
                escaped = true;
            }
        }
        out
    } else {
        v.to_string()
    }
}

/// The AS2 and MIME-Version headers every message and receipt starts with.
pub(crate) fn as2_headers(
    from: &str,
    to: &str,
    message_id: &str,
    now: UnixTime,
    subject: &str,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.append("AS2-Version", crate::AS2_VERSION);
    headers.append("AS2-From", quote_as2_id(from));
    headers.append("AS2-To", quote_as2_id(to));
    headers.append("Message-ID", message_id.to_string());
    headers.append("Date", format_rfc2822(now));
    headers.append("Subject", mime::encode_header_text(subject));
    headers.append("MIME-Version", "1.0");
    headers
}

/// The AS2 headers of an inbound message: enough to find the partnership and answer with a
/// receipt even when the body cannot be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `Message-ID` exactly as received (trimmed), to echo in `Original-Message-ID`.
    pub message_id: String,
    /// `AS2-From` (the partner), unquoted.
    pub from: String,
    /// `AS2-To` (our station), unquoted.
    pub to: String,
    /// `Subject`, if any, RFC 2047 encoded words decoded.
    pub subject: Option<String>,
    /// `AS2-Version`, if any.
    pub as2_version: Option<String>,
    /// The receipt the sender asked for.
    pub mdn: Option<MdnRequest>,
}

impl Envelope {
    /// Reads the AS2 headers, failing with a typed error when a required one is missing.
    pub fn from_headers(h: &HeaderMap) -> Result<Self> {
        let required = |name: &'static str| -> Result<String> {
            let v = h.get(name).map(str::trim).unwrap_or("");
            if v.is_empty() {
                Err(Error::MissingHeader(name))
            } else {
                Ok(v.to_string())
            }
        };
        let from = unquote_as2_id(&required("AS2-From")?);
        let to = unquote_as2_id(&required("AS2-To")?);
        for (name, id) in [("AS2-From", &from), ("AS2-To", &to)] {
            validate_as2_id(id).map_err(|e| Error::InvalidHeader {
                name,
                reason: e.to_string(),
            })?;
        }
        let message_id = required("Message-ID")?;
        if message_id.len() > 998 {
            return Err(Error::InvalidHeader {
                name: "Message-ID",
                reason: "longer than 998 characters".into(),
            });
        }
        Ok(Envelope {
            message_id,
            from,
            to,
            subject: h.get("Subject").map(mime::decode_encoded_words),
            as2_version: h.get("AS2-Version").map(str::to_string),
            mdn: MdnRequest::from_headers(h),
        })
    }

    /// The Message-ID without angle brackets, for lookups (Sterling sends none).
    pub fn message_id_core(&self) -> &str {
        message_id_core(&self.message_id)
    }
}

/// A Message-ID without surrounding space and angle brackets.
pub fn message_id_core(id: &str) -> &str {
    let t = id.trim();
    let t = t.strip_prefix('<').unwrap_or(t);
    t.strip_suffix('>').unwrap_or(t)
}

/// A request for a signed receipt (`Disposition-Notification-Options`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReceiptRequest {
    /// True when the signature protocol is `required` rather than `optional`.
    pub required: bool,
    /// MIC algorithms in the sender's order of preference, as spelled on the wire.
    pub micalgs: Vec<String>,
}

/// The receipt a message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdnRequest {
    /// `Disposition-Notification-To`: an address or, from some products, an AS2 ID.
    pub return_to: String,
    /// Present when a signed receipt is wanted.
    pub signed: Option<SignedReceiptRequest>,
    /// `Receipt-Delivery-Option`: where to POST an asynchronous receipt.
    pub async_url: Option<String>,
}

impl MdnRequest {
    /// A synchronous receipt request; `signed_micalgs` empty means unsigned.
    pub fn sync(
        return_to: impl Into<String>,
        signed_micalgs: &[DigestAlgorithm],
        style: NameStyle,
    ) -> Self {
        MdnRequest {
            return_to: return_to.into(),
            signed: (!signed_micalgs.is_empty()).then(|| SignedReceiptRequest {
                required: false,
                micalgs: signed_micalgs
                    .iter()
                    .map(|d| d.name(style).to_string())
                    .collect(),
            }),
            async_url: None,
        }
    }

    /// An asynchronous receipt request to `url`.
    pub fn asynchronous(
        return_to: impl Into<String>,
        url: impl Into<String>,
        signed_micalgs: &[DigestAlgorithm],
        style: NameStyle,
    ) -> Self {
        MdnRequest {
            async_url: Some(url.into()),
            ..Self::sync(return_to, signed_micalgs, style)
        }
    }

    /// Reads the request from message headers; `None` when no receipt is wanted.
    pub fn from_headers(h: &HeaderMap) -> Option<Self> {
        let return_to = h.get("Disposition-Notification-To")?.trim().to_string();
        let signed = h
            .get("Disposition-Notification-Options")
            .and_then(parse_options);
        let async_url = h
            .get("Receipt-Delivery-Option")
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty());
        Some(MdnRequest {
            return_to,
            signed,
            async_url,
        })
    }

    /// Writes the request headers.
    pub fn write_headers(&self, h: &mut HeaderMap) {
        h.append("Disposition-Notification-To", self.return_to.clone());
        if let Some(s) = &self.signed {
            let importance = if s.required { "required" } else { "optional" };
            h.append(
                "Disposition-Notification-Options",
                format!(
                    "signed-receipt-protocol={importance}, pkcs7-signature; signed-receipt-micalg={importance}, {}",
                    s.micalgs.join(", ")
                ),
            );
        }
        if let Some(url) = &self.async_url {
            h.append("Receipt-Delivery-Option", url.clone());
        }
    }

    /// The digest to sign the receipt with: the first requested one we support, else SHA-256.
    pub fn signing_digest(&self) -> Option<DigestAlgorithm> {
        let s = self.signed.as_ref()?;
        Some(
            mic::choose_algorithm(s.micalgs.iter().map(String::as_str))
                .unwrap_or(DigestAlgorithm::Sha256),
        )
    }
}

/// Parses `signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha1`
/// (with or without spaces, in any case).
fn parse_options(v: &str) -> Option<SignedReceiptRequest> {
    let mut protocol_ok = false;
    let mut required = false;
    let mut micalgs = Vec::new();
    for param in v.split(';') {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let mut items = value.split(',').map(str::trim).filter(|s| !s.is_empty());
        let importance = items.next().unwrap_or("").to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "signed-receipt-protocol" => {
                required |= importance == "required";
                protocol_ok = items.any(|p| p.eq_ignore_ascii_case("pkcs7-signature"));
            }
            "signed-receipt-micalg" => micalgs.extend(items.map(str::to_string)),
            _ => {}
        }
    }
    protocol_ok.then_some(SignedReceiptRequest { required, micalgs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as2_id_quoting() {
        assert_eq!(quote_as2_id("ALPHA"), "ALPHA");
        assert_eq!(quote_as2_id("My Company"), "\"My Company\"");
        assert_eq!(unquote_as2_id("\"My \\\"Co\\\"\""), "My \"Co\"");
        assert_eq!(unquote_as2_id(&quote_as2_id("a b\\c")), "a b\\c");
        assert!(validate_as2_id("").is_err());
        assert!(validate_as2_id(&"x".repeat(129)).is_err());
        assert!(validate_as2_id("tab\there").is_err());
        assert!(validate_as2_id("OK ID-1").is_ok());
    }

    #[test]
    fn message_ids_are_unique_and_bracketed() {
        let a = new_message_id("example.com", UnixTime(1_800_000_000));
        let b = new_message_id("example.com", UnixTime(1_800_000_000));
        assert_ne!(a, b);
        assert!(
            a.starts_with("<mftg-20270115") && a.ends_with("@example.com>"),
            "{a}"
        );
    }

    #[test]
    fn parses_option_variants() {
        let sterling =
            "signed-receipt-protocol=optional,pkcs7-signature;signed-receipt-micalg=optional,sha1";
        let r = parse_options(sterling).unwrap();
        assert_eq!(r.micalgs, vec!["sha1"]);
        assert!(!r.required);
        let r = parse_options("Signed-Receipt-Protocol=Required, PKCS7-Signature; signed-receipt-micalg=required, sha-512, sha-256").unwrap();
        assert!(r.required);
        assert_eq!(r.micalgs, vec!["sha-512", "sha-256"]);
        assert!(parse_options("signed-receipt-protocol=optional, pgp-signature").is_none());
        let mut h = HeaderMap::new();
        MdnRequest::asynchronous(
            "a@b",
            "http://x/mdn",
            &[DigestAlgorithm::Sha256],
            NameStyle::Hyphenated,
        )
        .write_headers(&mut h);
        let back = MdnRequest::from_headers(&h).unwrap();
        assert_eq!(back.async_url.as_deref(), Some("http://x/mdn"));
        assert_eq!(back.signing_digest(), Some(DigestAlgorithm::Sha256));
    }
}
