//! Bad input: each case gets a typed error naming the problem and the right MDN disposition,
//! never a panic.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use as2::algorithm::{ContentEncryption, DigestAlgorithm, KeyTransport};
use as2::cms;
use as2::envelope::Envelope;
use as2::keys::Identity;
use as2::mdn;
use as2::message::{
    self, Compression, Encryption, MessageOptions, OutboundMessage, Payload, Signing,
};
use as2::mime::Limits;
use as2::receive::{Policy, StaticKeys};
use as2::{Error, HeaderMap, UnixTime};
use common::*;

fn build(sign: bool, encrypt: bool, compression: Compression) -> OutboundMessage {
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    opts.compression = compression;
    if sign {
        opts.signing = Some(Signing::new(alpha().clone()));
    }
    if encrypt {
        opts.encryption = Some(Encryption::new(beta().certificate.clone()));
    }
    message::build(
        &opts,
        &Payload::new(&crlf_payload(2000), Some("p.edi")),
        "<bad@alpha>",
        NOW,
    )
    .unwrap()
}

fn open_with(h: &HeaderMap, body: &[u8], keys: &StaticKeys, policy: &Policy) -> Error {
    let env = Envelope::from_headers(h).unwrap();
    open_both(&env, h, body, keys, policy, NOW).expect_err("must be rejected")
}

fn open(h: &HeaderMap, body: &[u8]) -> Error {
    open_with(h, body, &keys_for(beta(), alpha()), &Policy::default())
}

#[track_caller]
fn disposition(e: &Error, modifier: &str) {
    assert_eq!(
        e.disposition().to_field(),
        format!("processed/error: {modifier}"),
        "{e}"
    );
    assert!(!e.to_string().is_empty());
}

fn replace_once(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = data
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    let mut out = data[..at].to_vec();
    out.extend_from_slice(to);
    out.extend_from_slice(&data[at + from.len()..]);
    out
}

#[test]
fn truncated_and_garbage_cms() {
    let m = build(true, true, Compression::None);
    for cut in [0usize, 1, 10, 100, m.body.len() / 2, m.body.len() - 1] {
        let e = open(&m.headers, &m.body[..cut]);
        assert!(
            matches!(
                e,
                Error::MalformedCms { .. } | Error::MalformedMime(_) | Error::DecryptionFailed(_)
            ),
            "cut {cut}: {e}"
        );
    }
    let e = open(&m.headers, b"this is not DER at all");
    assert!(matches!(e, Error::MalformedCms { .. }), "{e}");
    disposition(&e, "decryption-failed");
    // Compressed part that is not CompressedData.
    let c = build(false, false, Compression::BeforeSigning);
    let e = open(&c.headers, &c.body[..c.body.len() - 20]);
    disposition(&e, "decompression-failed");
}

#[test]
fn wrong_recipient_key() {
    let m = build(false, true, Compression::None);
    let keys = StaticKeys {
        identities: vec![mallory().clone()],
        partner_certificates: vec![alpha().certificate.clone()],
    };
    let e = open_with(&m.headers, &m.body, &keys, &Policy::default());
    assert!(matches!(e, Error::NoMatchingRecipient), "{e}");
    disposition(&e, "decryption-failed");
    let e = open_with(
        &m.headers,
        &m.body,
        &StaticKeys::default(),
        &Policy::default(),
    );
    assert!(matches!(e, Error::NoMatchingRecipient), "{e}");
}

#[test]
fn tampered_signed_content() {
    let m = build(true, false, Compression::None);
    // Change one byte of the payload inside the signed part.
    let tampered = replace_once(&m.body, b"ISA*00", b"ISA*01");
    let e = open(&m.headers, &tampered);
    assert!(matches!(e, Error::IntegrityCheckFailed), "{e}");
    disposition(&e, "integrity-check-failed");
    // A signed MDN whose report was changed.
    let env = Envelope::from_headers(&m.headers).unwrap();
    let opts = mdn::MdnOptions {
        signer: Some(beta().clone()),
        ..Default::default()
    };
    let mut env2 = env.clone();
    env2.mdn = Some(as2::envelope::MdnRequest::sync(
        "x@y",
        &[DigestAlgorithm::Sha256],
        Default::default(),
    ));
    let r = mdn::build(
        &env2,
        &as2::Disposition::Processed,
        Some(&m.mic),
        &opts,
        "<r@b>",
        NOW,
    )
    .unwrap();
    let forged = replace_once(
        &r.body,
        b"; processed",
        b"; processed/warning: duplicate-document",
    );
    let e = mdn::parse(
        &r.headers,
        &forged,
        Some(std::slice::from_ref(&beta().certificate)),
        Some(NOW),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::IntegrityCheckFailed), "{e}");
}

#[test]
fn signature_by_unknown_certificate() {
    let m = build(true, false, Compression::None);
    let keys = StaticKeys {
        identities: vec![beta().clone()],
        partner_certificates: vec![mallory().certificate.clone()],
    };
    let e = open_with(&m.headers, &m.body, &keys, &Policy::default());
    assert!(
        matches!(e, Error::UnknownSigner(ref s) if s.contains("CN=ALPHA")),
        "{e}"
    );
    disposition(&e, "authentication-failed");
    let keys = StaticKeys {
        identities: vec![beta().clone()],
        partner_certificates: vec![],
    };
    let e = open_with(&m.headers, &m.body, &keys, &Policy::default());
    assert!(matches!(e, Error::UnknownSigner(_)), "{e}");
}

#[test]
fn expired_certificate_is_a_policy_choice() {
    let old =
        Identity::generate_self_signed("ALPHA", 2048, UnixTime(NOW.0 - 400 * 86_400), 30).unwrap();
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    opts.signing = Some(Signing::new(old.clone()));
    let m = message::build(&opts, &Payload::new(b"x", None), "<old@a>", NOW).unwrap();
    let keys = StaticKeys {
        identities: vec![],
        partner_certificates: vec![old.certificate.clone()],
    };
    let strict = Policy {
        check_certificate_validity: true,
        ..Policy::default()
    };
    let e = open_with(&m.headers, &m.body, &keys, &strict);
    assert!(matches!(e, Error::CertificateNotValid { .. }), "{e}");
    disposition(&e, "authentication-failed");
    // Accepted when the partnership does not check validity, and when checked as of a day it was valid.
    let env = Envelope::from_headers(&m.headers).unwrap();
    assert!(open_both(&env, &m.headers, &m.body, &keys, &Policy::default(), NOW).is_ok());
    assert!(open_both(
        &env,
        &m.headers,
        &m.body,
        &keys,
        &strict,
        UnixTime(NOW.0 - 390 * 86_400)
    )
    .is_ok());
}

#[test]
fn unsupported_algorithms() {
    // AES-128-CBC's OID (2.16.840.1.101.3.4.1.2) turned into AES-128-OFB (...1.3), which no AS2
    // product uses and we do not implement.
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    let mut e = Encryption::new(beta().certificate.clone());
    e.cipher = ContentEncryption::Aes128Cbc;
    opts.encryption = Some(e);
    let m = message::build(&opts, &Payload::new(b"x", None), "<u@a>", NOW).unwrap();
    let patched = replace_once(
        &m.body,
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02],
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x03],
    );
    let err = open(&m.headers, &patched);
    assert!(
        matches!(err, Error::UnsupportedAlgorithm(ref s) if s.contains("2.16.840.1.101.3.4.1.3")),
        "{err}"
    );
    disposition(&err, "insufficient-message-security");
    // RC2 (what old products send) is named in the error. Its OID is one byte shorter than
    // AES's, so it is patched in with a redundant (BER) 0x80 in the last arc.
    let rc2 = replace_once(
        &m.body,
        &[
            0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02,
        ],
        &[
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x03, 0x80, 0x02,
        ],
    );
    let err = open(&m.headers, &rc2);
    assert!(
        matches!(err, Error::UnsupportedAlgorithm(ref s) if s.contains("RC2-CBC")),
        "{err}"
    );
    // A signature digest we do not know (SHA-256's OID ...2.1 turned into SHA3-256's ...2.8).
    let s = build(true, false, Compression::None);
    let sha256_oid = [
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
    ];
    let sig_start = s.body.windows(9).position(|w| w == b"smime.p7s").unwrap();
    let (head, tail) = s.body.split_at(sig_start);
    let tail = String::from_utf8(tail.to_vec()).unwrap();
    let b64_start = tail.find("\r\n\r\n").unwrap() + 4;
    let b64_end = tail.rfind("------").unwrap();
    let mut der = as2::mime::decode_base64(&tail.as_bytes()[b64_start..b64_end]).unwrap();
    let mut i = 0;
    while let Some(p) = der[i..]
        .windows(sha256_oid.len())
        .position(|w| w == sha256_oid)
    {
        der[i + p + 10] = 0x08;
        i += p + 1;
    }
    let mut body = head.to_vec();
    body.extend_from_slice(&tail.as_bytes()[..b64_start]);
    body.extend_from_slice(&as2::mime::encode_base64_lines(&der));
    body.extend_from_slice(&tail.as_bytes()[b64_end..]);
    let err = open(&s.headers, &body);
    assert!(
        matches!(err, Error::UnsupportedAlgorithm(ref m) if m.contains("2.16.840.1.101.3.4.2.8")),
        "{err}"
    );
    // Opaque (non-detached) signed-data.
    let mut h = s.headers.clone();
    h.set(
        "Content-Type",
        "application/pkcs7-mime; smime-type=signed-data",
    );
    let err = open(&h, &der);
    assert!(
        matches!(
            err,
            Error::UnsupportedAlgorithm(_) | Error::MalformedCms { .. }
        ),
        "{err}"
    );
}

#[test]
fn policy_rejections() {
    let plain = build(false, false, Compression::None);
    for (policy, what) in [
        (
            Policy {
                require_encryption: true,
                ..Policy::default()
            },
            "encrypted",
        ),
        (
            Policy {
                require_signature: true,
                ..Policy::default()
            },
            "signed",
        ),
    ] {
        let e = open_with(
            &plain.headers,
            &plain.body,
            &keys_for(beta(), alpha()),
            &policy,
        );
        assert!(
            matches!(e, Error::InsufficientSecurity(ref m) if m.contains(what)),
            "{e}"
        );
        disposition(&e, "insufficient-message-security");
    }
    let modern = Policy {
        allow_legacy_algorithms: false,
        ..Policy::default()
    };
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    let mut enc = Encryption::new(beta().certificate.clone());
    enc.cipher = ContentEncryption::TripleDesCbc;
    enc.key_transport = KeyTransport::RsaOaep;
    opts.encryption = Some(enc);
    let m = message::build(&opts, &Payload::new(b"x", None), "<l@a>", NOW).unwrap();
    let e = open_with(&m.headers, &m.body, &keys_for(beta(), alpha()), &modern);
    assert!(
        matches!(e, Error::InsufficientSecurity(ref m) if m.contains("3des")),
        "{e}"
    );
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    let mut s = Signing::new(alpha().clone());
    s.digest = DigestAlgorithm::Sha1;
    opts.signing = Some(s);
    let m = message::build(&opts, &Payload::new(b"x", None), "<l2@a>", NOW).unwrap();
    let e = open_with(&m.headers, &m.body, &keys_for(beta(), alpha()), &modern);
    assert!(
        matches!(e, Error::InsufficientSecurity(ref m) if m.contains("sha-1")),
        "{e}"
    );
}

#[test]
fn missing_as2_headers() {
    let m = build(false, false, Compression::None);
    for name in ["AS2-From", "AS2-To", "Message-ID"] {
        let mut h = m.headers.clone();
        h.remove(name);
        assert!(matches!(Envelope::from_headers(&h), Err(Error::MissingHeader(n)) if n == name));
        h.append(name, "   ");
        assert!(matches!(Envelope::from_headers(&h), Err(Error::MissingHeader(n)) if n == name));
    }
    let mut h = m.headers.clone();
    h.set("AS2-From", "bad\u{1}id");
    assert!(matches!(
        Envelope::from_headers(&h),
        Err(Error::InvalidHeader {
            name: "AS2-From",
            ..
        })
    ));
}

#[test]
fn malformed_mime_and_boundaries() {
    let m = build(true, false, Compression::None);
    let ct = m.headers.get("Content-Type").unwrap().to_string();
    let boundary = ct
        .split("boundary=\"")
        .nth(1)
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    let cases: Vec<(String, Vec<u8>)> = vec![
        // No boundary parameter.
        (
            "multipart/signed; protocol=\"application/pkcs7-signature\"".into(),
            m.body.clone(),
        ),
        // A boundary that does not occur.
        (ct.replace(&boundary, "nope"), m.body.clone()),
        // Only the first part.
        (ct.clone(), m.body[..m.body.len() / 3].to_vec()),
        // Signature part that is not base64.
        (
            ct.clone(),
            String::from_utf8_lossy(&m.body)
                .replace(
                    "Content-Transfer-Encoding: base64\r\n",
                    "Content-Transfer-Encoding: x-uuencode\r\n",
                )
                .into_bytes(),
        ),
        (ct.clone(), Vec::new()),
    ];
    for (i, (ct, body)) in cases.iter().enumerate() {
        let mut h = m.headers.clone();
        h.set("Content-Type", ct.clone());
        let e = open(&h, body);
        assert!(
            matches!(e, Error::MalformedMime(_) | Error::MalformedCms { .. }),
            "case {i}: {e}"
        );
        disposition(
            &e,
            if matches!(e, Error::MalformedCms { .. }) {
                "authentication-failed"
            } else {
                "unexpected-processing-error"
            },
        );
    }
    // Too many parts.
    let mut many = Vec::new();
    for _ in 0..100 {
        many.extend_from_slice(b"--b\r\n\r\nx\r\n");
    }
    many.extend_from_slice(b"--b--\r\n");
    let mut h = m.headers.clone();
    h.set("Content-Type", "multipart/signed; boundary=b");
    assert!(matches!(open(&h, &many), Error::MalformedMime(ref s) if s.contains("parts")));
}

#[test]
fn decompression_bomb() {
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    opts.compression = Compression::BeforeSigning;
    let zeros = vec![0u8; 32 * 1024 * 1024];
    let m = message::build(&opts, &Payload::new(&zeros, None), "<z@a>", NOW).unwrap();
    assert!(
        m.body.len() < 200_000,
        "32 MiB of zeros compress to {} bytes",
        m.body.len()
    );
    let policy = Policy {
        max_decompressed_size: 4 * 1024 * 1024,
        ..Policy::default()
    };
    let e = open_with(&m.headers, &m.body, &keys_for(beta(), alpha()), &policy);
    assert!(
        matches!(e, Error::DecompressionLimit { limit } if limit == 4 * 1024 * 1024),
        "{e}"
    );
    disposition(&e, "decompression-failed");
    // Corrupt deflate stream inside valid CompressedData.
    let der = cms::compress(&zeros[..100_000]).unwrap();
    let mut broken = der.clone();
    let n = broken.len();
    for b in &mut broken[n - 40..n - 10] {
        *b ^= 0x5a;
    }
    let e = cms::decompress(&broken, 1 << 30).unwrap_err();
    assert!(matches!(e, Error::DecompressionFailed(_)), "{e}");
}

#[test]
fn huge_header_blocks_and_deep_nesting() {
    let h: HeaderMap = [
        ("AS2-From", "ALPHA"),
        ("AS2-To", "BETA"),
        ("Message-ID", "<h@a>"),
        (
            "Content-Type",
            "application/pkcs7-mime; smime-type=compressed-data",
        ),
    ]
    .into_iter()
    .collect();
    for (count, width) in [(100, 1000), (5000, 20)] {
        let mut entity = b"Content-Type: application/edi-x12\r\n".to_vec();
        for i in 0..count {
            entity.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "a".repeat(width)).as_bytes());
        }
        entity.extend_from_slice(b"\r\npayload");
        let e = open(&h, &cms::compress(&entity).unwrap());
        match count {
            100 => assert!(matches!(e, Error::HeadersTooLarge { limit: 65536 }), "{e}"),
            _ => assert!(
                matches!(e, Error::MalformedMime(ref m) if m.contains("header fields")),
                "{e}"
            ),
        }
    }
    // Compressed inside compressed inside ..., deeper than any real message.
    let mut inner = b"Content-Type: text/plain\r\n\r\nx".to_vec();
    for _ in 0..12 {
        let der = cms::compress(&inner).unwrap();
        inner =
            b"Content-Type: application/pkcs7-mime; smime-type=compressed-data\r\n\r\n".to_vec();
        inner.extend_from_slice(&der);
    }
    let (_, at) = as2::mime::parse_header_block(&inner, &Limits::default()).unwrap();
    let e = open(&h, &inner[at..]);
    assert!(matches!(e, Error::TooDeeplyNested(_)), "{e}");
}

#[test]
fn bad_receipts() {
    let plain_h: HeaderMap = [("Content-Type", "text/plain")].into_iter().collect();
    assert!(matches!(
        mdn::parse(&plain_h, b"hello", None, None, &Limits::default()),
        Err(Error::NotAnMdn(_))
    ));
    let report = |fields: &str| {
        let h: HeaderMap = [(
            "Content-Type",
            "multipart/report; report-type=disposition-notification; boundary=q",
        )]
        .into_iter()
        .collect();
        let body = format!("--q\r\nContent-Type: text/plain\r\n\r\nx\r\n--q\r\nContent-Type: message/disposition-notification\r\n\r\n{fields}\r\n--q--\r\n");
        mdn::parse(&h, body.as_bytes(), None, None, &Limits::default())
    };
    assert!(matches!(
        report("Disposition: automatic-action/MDN-sent-automatically; processed"),
        Err(Error::MissingHeader("Original-Message-ID"))
    ));
    assert!(matches!(
        report("Original-Message-ID: <a@b>"),
        Err(Error::MissingHeader("Disposition"))
    ));
    assert!(matches!(
        report("Original-Message-ID: <a@b>\r\nDisposition: x; exploded"),
        Err(Error::InvalidHeader {
            name: "Disposition",
            ..
        })
    ));
    assert!(matches!(
        report("Original-Message-ID: <a@b>\r\nDisposition: a/b; processed\r\nReceived-Content-MIC: abc, whirlpool"),
        Err(Error::UnsupportedAlgorithm(_))
    ));
    let h: HeaderMap = [("Content-Type", "multipart/report; boundary=q")]
        .into_iter()
        .collect();
    assert!(matches!(
        mdn::parse(
            &h,
            b"--q\r\nContent-Type: text/plain\r\n\r\nonly text\r\n--q--",
            None,
            None,
            &Limits::default()
        ),
        Err(Error::NotAnMdn(_))
    ));
}

#[test]
fn bad_build_options() {
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    opts.encryption = Some(Encryption {
        certificates: vec![],
        cipher: ContentEncryption::Aes128Cbc,
        key_transport: KeyTransport::RsaPkcs1v15,
    });
    assert!(matches!(
        message::build(&opts, &Payload::new(b"x", None), "<a@b>", NOW),
        Err(Error::Config(_))
    ));
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    let mut s = Signing::new(alpha().clone());
    s.digest = DigestAlgorithm::Md5;
    opts.signing = Some(s);
    assert!(matches!(
        message::build(&opts, &Payload::new(b"x", None), "<a@b>", NOW),
        Err(Error::UnsupportedAlgorithm(_))
    ));
    let opts = MessageOptions::new("ALPHA", "BETA");
    assert!(matches!(
        message::build(&opts, &Payload::new(b"x", None), "<a@b>\r\nX-Evil: 1", NOW),
        Err(Error::Config(_))
    ));
}
