//! Quirks of commercial partner products, each reproduced with a message that `openssl cms`
//! builds (no vendor captures needed), and the MIC each receipt must carry checked against
//! `openssl dgst`: the MIC algorithm the sender asks for, Mendelson's bare encrypted payload,
//! Mendelson's binary signed part captured with bare-LF headers, unsigned compressed messages,
//! 8-bit file names and the decompression limit.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use as2::algorithm::{DigestAlgorithm, NameStyle};
use as2::cms;
use as2::envelope::Envelope;
use as2::envelope::MdnRequest;
use as2::mdn::MicCheck;
use as2::message::{self, Compression, Encryption, MessageOptions, Payload};
use as2::mic::Mic;
use as2::receive::{Policy, ReceiptMic};
use as2::{Error, HeaderMap};
use common::*;

fn openssl(args: &[&str]) -> Vec<u8> {
    run_bounded(Command::new("openssl").args(args), Duration::from_secs(60)).stdout
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `openssl dgst` of `data`, base64: the MIC an independent tool computes.
fn dgst(dir: &Path, alg: &str, data: &[u8]) -> String {
    let f = dir.join("dgst.in");
    std::fs::write(&f, data).unwrap();
    let raw = dir.join("dgst.bin");
    std::fs::write(
        &raw,
        openssl(&["dgst", &format!("-{alg}"), "-binary", p(&f)]),
    )
    .unwrap();
    String::from_utf8(openssl(&["base64", "-A", "-in", p(&raw)]))
        .unwrap()
        .trim()
        .to_string()
}

fn as2_headers(extra: &[(&str, &str)]) -> HeaderMap {
    let mut h: HeaderMap = [
        ("AS2-Version", "1.2"),
        ("AS2-From", "ALPHA"),
        ("AS2-To", "BETA"),
        ("Message-ID", "<quirk-1@alpha.example>"),
    ]
    .into_iter()
    .collect();
    for (n, v) in extra {
        h.append(*n, *v);
    }
    h
}

fn asking(micalgs: &str) -> String {
    format!("signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, {micalgs}")
}

/// A detached `openssl cms -sign -binary` signature (DER) over `entity`.
fn openssl_sign(dir: &Path, entity: &[u8], md: &str) -> Vec<u8> {
    let (crt, key) = write_pem(dir, "alpha", alpha());
    let input = dir.join("entity.bin");
    std::fs::write(&input, entity).unwrap();
    let out = dir.join("sig.der");
    openssl(&[
        "cms",
        "-sign",
        "-binary",
        "-md",
        md,
        "-outform",
        "DER",
        "-signer",
        p(&crt),
        "-inkey",
        p(&key),
        "-in",
        p(&input),
        "-out",
        p(&out),
    ]);
    std::fs::read(out).unwrap()
}

fn multipart_signed(entity: &[u8], sig: &[u8], micalg: &str) -> (String, Vec<u8>) {
    let boundary = "----=_Part_7_openssl";
    let mut body = format!("--{boundary}\r\n").into_bytes();
    body.extend_from_slice(entity);
    body.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&as2::mime::encode_base64_lines(sig));
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/signed; protocol=\"application/pkcs7-signature\"; micalg={micalg}; boundary=\"{boundary}\""),
        body,
    )
}

fn open(h: &HeaderMap, body: &[u8], policy: &Policy) -> as2::Result<as2::receive::Received> {
    let env = Envelope::from_headers(h).unwrap();
    open_both(&env, h, body, &keys_for(beta(), alpha()), policy, NOW)
}

#[test]
fn the_receipt_mic_is_in_the_algorithm_the_sender_asks_for() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut entity = b"Content-Type: application/edi-x12\r\nContent-Transfer-Encoding: binary\r\nContent-Disposition: attachment; filename=po.x12\r\n\r\n".to_vec();
    entity.extend_from_slice(&crlf_payload(3000));
    for (signed_with, asked, want) in [
        ("sha1", "sha-256", DigestAlgorithm::Sha256),
        ("sha256", "sha-512", DigestAlgorithm::Sha512),
        ("sha256", "sha1", DigestAlgorithm::Sha1),
        // A preference list: the first one we support.
        ("sha256", "sha3-256, SHA384, sha1", DigestAlgorithm::Sha384),
        // MD5 is not used for receipts: the next one is.
        ("sha1", "md5, sha-224", DigestAlgorithm::Sha224),
    ] {
        let sig = openssl_sign(dir, &entity, signed_with);
        let (ct, body) = multipart_signed(&entity, &sig, signed_with);
        let options = asking(asked);
        let h = as2_headers(&[
            ("Content-Type", &ct),
            ("Disposition-Notification-To", "as2@alpha.example"),
            ("Disposition-Notification-Options", &options),
        ]);
        let got = open(&h, &body, &Policy::default()).unwrap();
        let case = format!("signed {signed_with}, asked {asked}");
        assert_eq!(got.mic.algorithm, want, "{case}");
        let tool = match want {
            DigestAlgorithm::Sha1 => "sha1",
            DigestAlgorithm::Sha224 => "sha224",
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha384 => "sha384",
            _ => "sha512",
        };
        assert_eq!(got.mic.value, dgst(dir, tool, &entity), "{case}");
        // The pyas2lib setting: the signature's digest, whatever was asked.
        let py = Policy {
            receipt_mic: ReceiptMic::SignatureDigest,
            ..Policy::default()
        };
        let got = open(&h, &body, &py).unwrap();
        assert_eq!(got.mic.value, dgst(dir, signed_with, &entity), "{case}");
    }
    // No receipt request: the signature's digest.
    let sig = openssl_sign(dir, &entity, "sha384");
    let (ct, body) = multipart_signed(&entity, &sig, "sha384");
    let got = open(
        &as2_headers(&[("Content-Type", &ct)]),
        &body,
        &Policy::default(),
    )
    .unwrap();
    assert_eq!(got.mic.algorithm, DigestAlgorithm::Sha384);
}

#[test]
fn as_a_sender_we_expect_the_requested_algorithm_and_accept_the_signing_one() {
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    let mut s = message::Signing::new(alpha().clone());
    s.digest = DigestAlgorithm::Sha1;
    opts.signing = Some(s);
    opts.mdn = Some(MdnRequest::sync(
        "as2@alpha",
        &[DigestAlgorithm::Sha512],
        NameStyle::Hyphenated,
    ));
    let m = message::build(
        &opts,
        &Payload::new(b"ISA*00~", Some("a.x12")),
        "<s-1@a>",
        NOW,
    )
    .unwrap();
    assert_eq!(m.mic.algorithm, DigestAlgorithm::Sha512);
    assert_eq!(
        m.alternative_mics
            .iter()
            .map(|m| m.algorithm)
            .collect::<Vec<_>>(),
        [DigestAlgorithm::Sha1]
    );
}

#[test]
fn mendelson_encrypted_unsigned_bare_payload() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (beta_crt, _) = write_pem(dir, "beta", beta());
    // EDIFACT whose first line holds colons, X12 whose first line holds none, and a payload that
    // is one long line.
    let edifact = b"UNA:+.? '\r\nUNB+UNOC:3+SENDER:14+RECEIVER:14+261201:1200+1'\r\nUNH+1+ORDERS:D:96A:UN'\r\nUNT+2+1'\r\nUNZ+1+1'\r\n".to_vec();
    let x12 = crlf_payload(4000);
    let blob = awkward_payload(3000);
    for (what, payload, disposition) in [
        ("edifact", &edifact, "attachment; filename=smime.p7m"),
        ("x12", &x12, "attachment; filename=\"ORDERS 7.x12\""),
        ("binary", &blob, ""),
    ] {
        let input = dir.join("payload");
        std::fs::write(&input, payload).unwrap();
        let der = dir.join("enc.der");
        openssl(&[
            "cms",
            "-encrypt",
            "-binary",
            "-aes256",
            "-outform",
            "DER",
            "-in",
            p(&input),
            "-out",
            p(&der),
            p(&beta_crt),
        ]);
        let mut extra = vec![
            (
                "Content-Type",
                "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m",
            ),
            ("Disposition-Notification-To", "as2@alpha.example"),
        ];
        if !disposition.is_empty() {
            extra.push(("Content-Disposition", disposition));
        }
        let options = asking("sha-256");
        extra.push(("Disposition-Notification-Options", &options));
        let h = as2_headers(&extra);
        let got = open(&h, &std::fs::read(&der).unwrap(), &Policy::default())
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_same_bytes(&got.payload, payload, what);
        assert!(got.is_encrypted() && !got.is_signed(), "{what}");
        assert_eq!(got.content_type, "application/octet-stream", "{what}");
        let name = (what == "x12").then_some("ORDERS 7.x12");
        assert_eq!(got.filename.as_deref(), name, "{what}");
        // Encrypted, unsigned: the MIC is over the decrypted content, which here is the payload.
        assert_eq!(got.mic.value, dgst(dir, "sha256", payload), "{what}");
    }
}

#[test]
fn mendelson_binary_signed_part_captured_with_bare_lf_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A binary part as signed (CRLF headers, a body with bare LFs, CRs and NULs)...
    let payload = awkward_payload(5000);
    let head = b"content-type: application/octet-stream\r\ncontent-transfer-encoding: binary\r\ncontent-disposition: attachment; filename=data.bin\r\n\r\n";
    let mut signed = head.to_vec();
    signed.extend_from_slice(&payload);
    let sig = openssl_sign(dir, &signed, "sha256");
    // ... and as captured: the header CRLFs turned into LFs, the body untouched.
    let mut captured = String::from_utf8(head.to_vec())
        .unwrap()
        .replace("\r\n", "\n")
        .into_bytes();
    captured.extend_from_slice(&payload);
    let (ct, body) = multipart_signed(&captured, &sig, "sha-256");
    let options = asking("sha-256");
    let h = as2_headers(&[
        ("Content-Type", &ct),
        ("Disposition-Notification-To", "as2@alpha.example"),
        ("Disposition-Notification-Options", &options),
    ]);
    let got = open(&h, &body, &Policy::default()).unwrap();
    assert_same_bytes(&got.payload, &payload, "binary payload untouched");
    assert_eq!(got.filename.as_deref(), Some("data.bin"));
    // The MIC is over what verified: the part as it was signed.
    assert_eq!(got.mic.value, dgst(dir, "sha256", &signed));
    // A text part gets no such treatment: its canonical form did not verify either.
    let text = String::from_utf8_lossy(&captured).replace(
        "content-transfer-encoding: binary",
        "content-transfer-encoding: 8bit  ",
    );
    let (ct, body) = multipart_signed(text.as_bytes(), &sig, "sha-256");
    let h = as2_headers(&[("Content-Type", &ct)]);
    assert!(matches!(
        open(&h, &body, &Policy::default()),
        Err(Error::IntegrityCheckFailed)
    ));
}

#[test]
fn unsigned_compressed_messages_mic_as_openas2_computes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let payload = crlf_payload(6000);
    let mut entity =
        b"Content-Type: application/edi-x12\r\nContent-Transfer-Encoding: binary\r\n\r\n".to_vec();
    entity.extend_from_slice(&payload);
    let compressed = cms::compress(&entity).unwrap();
    let options = asking("sha-256");
    // Compressed only: the content alone.
    let h = as2_headers(&[
        (
            "Content-Type",
            "application/pkcs7-mime; smime-type=compressed-data; name=smime.p7z",
        ),
        ("Disposition-Notification-To", "as2@alpha.example"),
        ("Disposition-Notification-Options", &options),
    ]);
    let got = open(&h, &compressed, &Policy::default()).unwrap();
    assert_eq!(got.mic.value, dgst(dir, "sha256", &payload));

    // Compressed, then encrypted by openssl: the decompressed entity, headers and all.
    let (beta_crt, _) = write_pem(dir, "beta", beta());
    let mut inner = b"Content-Type: application/pkcs7-mime; smime-type=compressed-data; name=smime.p7z\r\nContent-Transfer-Encoding: binary\r\n\r\n".to_vec();
    inner.extend_from_slice(&compressed);
    let input = dir.join("inner");
    std::fs::write(&input, &inner).unwrap();
    let der = dir.join("enc.der");
    openssl(&[
        "cms",
        "-encrypt",
        "-binary",
        "-aes128",
        "-outform",
        "DER",
        "-in",
        p(&input),
        "-out",
        p(&der),
        p(&beta_crt),
    ]);
    let h = as2_headers(&[
        (
            "Content-Type",
            "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m",
        ),
        ("Disposition-Notification-To", "as2@alpha.example"),
        ("Disposition-Notification-Options", &options),
    ]);
    let got = open(&h, &std::fs::read(&der).unwrap(), &Policy::default()).unwrap();
    assert_same_bytes(&got.payload, &payload, "payload");
    assert_eq!(got.mic.value, dgst(dir, "sha256", &entity));

    // As a sender of a compressed-only message we expect the content's MIC and accept the
    // entity's (what we computed before, and what some receivers compute).
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    opts.compression = Compression::BeforeSigning;
    opts.mdn = Some(MdnRequest::sync(
        "as2@alpha",
        &[DigestAlgorithm::Sha256],
        NameStyle::Hyphenated,
    ));
    let m = message::build(&opts, &Payload::new(&payload, None), "<c-1@a>", NOW).unwrap();
    let content = Mic::compute(DigestAlgorithm::Sha256, &payload).unwrap();
    assert_eq!(m.mic, content);
    let env = Envelope::from_headers(&m.headers).unwrap();
    let ours = open_both(
        &env,
        &m.headers,
        &m.body,
        &keys_for(beta(), alpha()),
        &Policy::default(),
        NOW,
    )
    .unwrap();
    assert_eq!(
        ours.mic, content,
        "our receiver computes what our sender expects"
    );
    let expected = m.expected_mics();
    let with_headers = expected.iter().find(|x| **x != content).unwrap().clone();
    assert_eq!(
        with_headers,
        Mic::compute(DigestAlgorithm::Sha256, &entity_of(&payload)).unwrap()
    );
    for mic in [content.clone(), with_headers] {
        assert_eq!(receipt_with(mic).check_mic(&expected), MicCheck::Match);
    }
    let wrong = Mic::compute(DigestAlgorithm::Sha256, b"something else").unwrap();
    assert!(matches!(
        receipt_with(wrong).check_mic(&expected),
        MicCheck::Mismatch { .. }
    ));

    // Encrypted too: the entity's MIC is expected, the content's accepted.
    opts.encryption = Some(Encryption::new(beta().certificate.clone()));
    let m = message::build(&opts, &Payload::new(&payload, None), "<c-2@a>", NOW).unwrap();
    assert_ne!(m.mic, content);
    assert!(m.expected_mics().contains(&content));
    let env = Envelope::from_headers(&m.headers).unwrap();
    let ours = open_both(
        &env,
        &m.headers,
        &m.body,
        &keys_for(beta(), alpha()),
        &Policy::default(),
        NOW,
    )
    .unwrap();
    assert_eq!(ours.mic, m.mic);
}

/// The payload entity our builder writes for a payload without a name.
fn entity_of(payload: &[u8]) -> Vec<u8> {
    let mut e =
        b"Content-Type: application/edi-consent\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            .to_vec();
    e.extend_from_slice(payload);
    e
}

fn receipt_with(mic: Mic) -> as2::mdn::Mdn {
    as2::mdn::Mdn {
        message_id: None,
        from: None,
        to: None,
        original_message_id: "<c-1@a>".into(),
        disposition: as2::Disposition::Processed,
        disposition_mode: String::new(),
        received_mic: Some(mic),
        reporting_ua: None,
        original_recipient: None,
        final_recipient: None,
        text: String::new(),
        signature: as2::mdn::MdnSignature::Unsigned,
    }
}

#[test]
fn eight_bit_file_names_are_utf8_when_valid_else_latin1() {
    let payload = b"ISA*00~\r\n";
    for (raw, want) in [
        ("M\u{fc}ller.x12".as_bytes().to_vec(), "M\u{fc}ller.x12"),
        (b"M\xfcller.x12".to_vec(), "M\u{fc}ller.x12"),
    ] {
        let mut entity =
            b"Content-Type: application/edi-x12\r\nContent-Disposition: attachment; filename=\""
                .to_vec();
        entity.extend_from_slice(&raw);
        entity.extend_from_slice(b"\"\r\n\r\n");
        entity.extend_from_slice(payload);
        let h = as2_headers(&[(
            "Content-Type",
            "application/pkcs7-mime; smime-type=compressed-data",
        )]);
        let got = open(&h, &cms::compress(&entity).unwrap(), &Policy::default()).unwrap();
        assert_eq!(got.filename.as_deref(), Some(want), "{raw:?}");
    }
}

#[test]
fn the_decompression_limit_is_on_the_payload() {
    let limit = 64 * 1024;
    let h = as2_headers(&[(
        "Content-Type",
        "application/pkcs7-mime; smime-type=compressed-data",
    )]);
    let policy = Policy {
        max_decompressed_size: limit,
        ..Policy::default()
    };
    let part = |len: usize| {
        let mut e =
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                .to_vec();
        e.extend(std::iter::repeat_n(b'7', len));
        cms::compress(&e).unwrap()
    };
    // A payload of exactly the limit goes through, its MIME headers notwithstanding.
    let got = open(&h, &part(limit as usize), &policy).unwrap();
    assert_eq!(got.payload.len() as u64, limit);
    assert!(matches!(
        open(&h, &part(limit as usize + 1), &policy),
        Err(Error::DecompressionLimit { limit: l }) if l == limit
    ));
    // A bomb: 64 MiB of zeros is refused as soon as the limit is passed.
    let bomb = part(64 << 20);
    assert!(bomb.len() < 1 << 20);
    let e = open(&h, &bomb, &policy).unwrap_err();
    assert_eq!(
        e.disposition().to_field(),
        "processed/error: decompression-failed"
    );
}
