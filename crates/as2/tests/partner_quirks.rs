//! What real partner products send (../shared/design/AS2-INTEROP.md), hand-built byte for byte,
//! and what we must do with it.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use as2::algorithm::{DigestAlgorithm, NameStyle, SignatureScheme};
use as2::cms;
use as2::envelope::Envelope;
use as2::envelope::MdnRequest;
use as2::keys::Identity;
use as2::mdn::{self, MdnOptions, MdnSignature, MicCheck};
use as2::message::{self, Compression, Encryption, MessageOptions, Payload, Signing};
use as2::mic::Mic;
use as2::mime::encode_base64_lines;
use as2::receive::Policy;
use as2::{Disposition, HeaderMap};
use common::*;

/// A multipart/signed body around `entity`, with the signature part written as given.
fn signed_multipart(
    entity: &[u8],
    signer: &Identity,
    digest: DigestAlgorithm,
    sig_headers: &str,
    base64: bool,
    micalg: &str,
) -> (String, Vec<u8>) {
    let sig = cms::sign_detached(entity, signer, digest, SignatureScheme::RsaPkcs1v15).unwrap();
    let boundary = "----=_Part_1_1234567.1764309000000";
    let mut body = format!("--{boundary}\r\n").into_bytes();
    body.extend_from_slice(entity);
    body.extend_from_slice(format!("\r\n--{boundary}\r\n{sig_headers}\r\n\r\n").as_bytes());
    if base64 {
        body.extend_from_slice(&encode_base64_lines(&sig));
    } else {
        body.extend_from_slice(&sig);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/signed; protocol=\"application/pkcs7-signature\"; micalg={micalg}; boundary=\"{boundary}\""),
        body,
    )
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn ibm_sterling_message_and_receipt() {
    // Message-ID without brackets, micalg=SHA1, options without spaces, Disposition-Notification-To
    // holding an AS2 ID, a compressed part with no Content-Transfer-Encoding, a binary signature
    // part typed Application/pkcs7-signature;name=EDIINTSIG.p7s, a payload named in Content-Type.
    let payload = crlf_payload(3000);
    let mut entity = b"Content-Type: application/EDI-X12; name=\"po 1.x12\"\r\n\r\n".to_vec();
    entity.extend_from_slice(&payload);
    let mut compressed =
        b"Content-Type: application/pkcs7-mime; smime-type=compressed-data; name=smime.p7z\r\n\r\n"
            .to_vec();
    compressed.extend_from_slice(&cms::compress(&entity).unwrap());
    let (ct, body) = signed_multipart(
        &compressed,
        alpha(),
        DigestAlgorithm::Sha1,
        "Content-Type: Application/pkcs7-signature;name=EDIINTSIG.p7s",
        false,
        "SHA1",
    );
    let h = headers(&[
        ("Content-Type", &ct),
        ("AS2-From", "\"STERLING CO\""),
        ("AS2-To", "BETA"),
        ("AS2-Version", "1.1"),
        ("Message-ID", "sterling-20261128-1@sterling.example"),
        ("Disposition-Notification-To", "STERLING CO"),
        (
            "Disposition-Notification-Options",
            "signed-receipt-protocol=optional,pkcs7-signature;signed-receipt-micalg=optional,sha1",
        ),
    ]);
    let env = Envelope::from_headers(&h).unwrap();
    assert_eq!(env.from, "STERLING CO");
    let got = open_both(
        &env,
        &h,
        &body,
        &keys_for(beta(), alpha()),
        &Policy {
            require_signature: true,
            ..Policy::default()
        },
        NOW,
    )
    .unwrap();
    assert_same_bytes(&got.payload, &payload, "sterling payload");
    assert_eq!(got.filename.as_deref(), Some("po 1.x12"));
    assert_eq!(
        got.mic,
        Mic::compute(DigestAlgorithm::Sha1, &compressed).unwrap(),
        "MIC over the signed entity as sent"
    );

    let opts = MdnOptions {
        signer: Some(beta().clone()),
        name_style: NameStyle::Compact,
        ..MdnOptions::default()
    };
    let receipt = mdn::build(
        &env,
        &Disposition::Processed,
        Some(&got.mic),
        &opts,
        "<r1@beta>",
        NOW,
    )
    .unwrap();
    let text = String::from_utf8_lossy(&receipt.body);
    assert!(
        text.contains("Original-Message-ID: sterling-20261128-1@sterling.example\r\n"),
        "echoed exactly"
    );
    assert!(text.contains(&format!(
        "Received-Content-MIC: {}, sha1\r\n",
        got.mic.value
    )));
    assert_eq!(receipt.headers.get("AS2-To"), Some("\"STERLING CO\""));
    assert!(
        receipt
            .headers
            .get("Content-Type")
            .unwrap()
            .contains("micalg=sha1"),
        "signed with the first requested micalg"
    );
    let parsed = mdn::parse(
        &receipt.headers,
        &receipt.body,
        Some(std::slice::from_ref(&beta().certificate)),
        Some(NOW),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(
        parsed.original_message_id,
        "sterling-20261128-1@sterling.example"
    );
    assert!(
        matches!(parsed.signature, MdnSignature::Verified(ref v) if v.digest == DigestAlgorithm::Sha1)
    );
}

#[test]
fn mendelson_lower_case_headers_and_parts() {
    let payload = b"UNA:+.? 'UNB+UNOC:3+MENDELSON+BETA+261128:0600+1'".to_vec();
    let mut entity = b"content-type: application/EDIFACT\r\ncontent-transfer-encoding: binary\r\ncontent-disposition: attachment; filename=orders.edi\r\n\r\n".to_vec();
    entity.extend_from_slice(&payload);
    let mut compressed = b"content-type: application/pkcs7-mime; smime-type=compressed-data; name=smime.p7z\r\ncontent-transfer-encoding: binary\r\ncontent-disposition: attachment; filename=smime.p7z\r\n\r\n".to_vec();
    compressed.extend_from_slice(&cms::compress(&entity).unwrap());
    let (ct, signed) = signed_multipart(&compressed, alpha(), DigestAlgorithm::Sha256, "content-type: application/pkcs7-signature; name=smime.p7s\r\ncontent-transfer-encoding: base64", true, "sha-256");
    let mut inner = format!("content-type: {ct}\r\n\r\n").into_bytes();
    inner.extend_from_slice(&signed);
    let der = cms::encrypt(
        inner,
        std::slice::from_ref(&beta().certificate),
        as2::algorithm::ContentEncryption::TripleDesCbc,
        Default::default(),
    )
    .unwrap();
    let h = headers(&[
        ("as2-version", "1.2"),
        ("ediint-features", "multiple-attachments, CEM"),
        ("as2-from", "ALPHA"),
        ("as2-to", "BETA"),
        ("message-id", "<MENDELSON_AS2-1764309600000-7@ALPHA_BETA>"),
        ("content-type", "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m"),
        ("content-transfer-encoding", "binary"),
        ("disposition-notification-to", "http://alpha.example:8080/as2/HttpReceiver"),
        ("disposition-notification-options", "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha-256"),
    ]);
    let env = Envelope::from_headers(&h).unwrap();
    let got = open_both(
        &env,
        &h,
        &der,
        &keys_for(beta(), alpha()),
        &Policy::default(),
        NOW,
    )
    .unwrap();
    assert_eq!(got.payload, payload);
    assert_eq!(got.filename.as_deref(), Some("orders.edi"));
    assert_eq!(got.layers.len(), 3);
    assert_eq!(
        got.mic,
        Mic::compute(DigestAlgorithm::Sha256, &compressed).unwrap()
    );
}

/// A hand-written receipt report (multipart/report) with the given parts.
fn report(text_part: &str, fields: &str) -> (String, Vec<u8>) {
    let b = "----=_Part_report_42";
    let body = format!("--{b}\r\n{text_part}\r\n--{b}\r\ncontent-type: message/disposition-notification\r\n\r\n{fields}\r\n--{b}--\r\n");
    (
        format!("multipart/report; report-type=disposition-notification; boundary=\"{b}\""),
        body.into_bytes(),
    )
}

#[test]
fn mendelson_receipt_names_a_different_mic_algorithm() {
    // We sign with SHA-1 but offer sha-256 for the receipt; Mendelson's receipt says micalg=sha1 on
    // the multipart and Received-Content-MIC in sha-256.
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    let mut s = Signing::new(alpha().clone());
    s.digest = DigestAlgorithm::Sha1;
    opts.signing = Some(s);
    opts.mdn = Some(MdnRequest::sync(
        "as2@alpha",
        &[DigestAlgorithm::Sha256],
        NameStyle::Hyphenated,
    ));
    let msg = message::build(&opts, &Payload::new(b"data", None), "<m-1@alpha>", NOW).unwrap();
    // The MIC the receipt should carry is in the algorithm asked for; the signing digest's is
    // kept as an alternative (pyas2lib answers in it).
    assert_eq!(msg.mic.algorithm, DigestAlgorithm::Sha256);
    let sha256 = msg.mic.clone();
    let sha1 = msg
        .alternative_mics
        .iter()
        .find(|m| m.algorithm == DigestAlgorithm::Sha1)
        .unwrap()
        .clone();
    let (rct, rbody) = report(
        "content-type: text/plain\r\ncontent-transfer-encoding: 7bit\r\n\r\nThe message was received.",
        &format!("reporting-ua: mendelson opensource AS2\r\noriginal-recipient: rfc822; BETA\r\nfinal-recipient: rfc822; BETA\r\noriginal-message-id: <m-1@alpha>\r\ndisposition: automatic-action/MDN-sent-automatically; processed\r\nreceived-content-mic: {}, sha-256", sha256.value),
    );
    let mut entity = format!("content-type: {rct}\r\n\r\n").into_bytes();
    entity.extend_from_slice(&rbody);
    let (ct, body) = signed_multipart(&entity, beta(), DigestAlgorithm::Sha1, "content-type: application/pkcs7-signature; name=smime.p7s\r\ncontent-transfer-encoding: base64", true, "sha1");
    let h = headers(&[
        ("content-type", &ct),
        ("as2-from", "BETA"),
        ("as2-to", "ALPHA"),
        ("message-id", "<mdn-1@beta>"),
    ]);
    assert!(mdn::is_mdn(&h, &body));
    let parsed = mdn::parse(
        &h,
        &body,
        Some(std::slice::from_ref(&beta().certificate)),
        Some(NOW),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(parsed.disposition, Disposition::Processed);
    assert_eq!(parsed.check_mic(&msg.expected_mics()), MicCheck::Match);
    assert!(
        matches!(
            parsed.check_mic(std::slice::from_ref(&sha1)),
            MicCheck::Mismatch { .. }
        ),
        "only the sha-256 MIC matches"
    );
}

#[test]
fn sterling_receipt_without_text_content_type_and_binary_signature() {
    let (rct, rbody) = report(
        "\r\nThe message has been received",
        "Original-Message-ID: sterling-1@s\r\nFinal-Recipient: rfc822; STERLING\r\nDisposition: automatic-action/MDN-sent-automatically; processed\r\nReceived-Content-MIC: 2jmj7l5rSw0yVb/vlWAYkK/YBwk=, sha1",
    );
    let mut entity = format!("Content-Type: {rct}\r\n\r\n").into_bytes();
    entity.extend_from_slice(&rbody);
    let (ct, body) = signed_multipart(
        &entity,
        beta(),
        DigestAlgorithm::Sha1,
        "Content-Type: Application/pkcs7-signature;name=EDIINTSIG.p7s",
        false,
        "sha1",
    );
    let h = headers(&[("Content-Type", &ct)]);
    let parsed = mdn::parse(
        &h,
        &body,
        Some(std::slice::from_ref(&beta().certificate)),
        Some(NOW),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(parsed.text, "The message has been received");
    assert_eq!(
        parsed.original_recipient, None,
        "TIBCO and Sterling may omit it"
    );
    assert_eq!(parsed.final_recipient.as_deref(), Some("STERLING"));
    assert_eq!(
        parsed.check_mic(&[Mic::compute(DigestAlgorithm::Sha1, b"").unwrap()]),
        MicCheck::Match
    );
    // The same receipt with the report part missing its Content-Type altogether.
    let (rct, rbody) = {
        let b = "b42";
        (
            format!("multipart/report; report-type=disposition-notification; boundary={b}"),
            format!("--{b}\r\n\r\nthanks\r\n--{b}\r\n\r\nOriginal-Message-ID: <x@y>\r\nDisposition: automatic-action/MDN-sent-automatically; processed/error: decryption-failed\r\n--{b}--\r\n").into_bytes(),
        )
    };
    let parsed = mdn::parse(
        &headers(&[("Content-Type", &rct)]),
        &rbody,
        None,
        None,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(
        parsed.disposition,
        Disposition::Error("decryption-failed".into())
    );
    assert!(matches!(parsed.signature, MdnSignature::Unsigned));
}

#[test]
fn legacy_x_pkcs7_types() {
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    opts.signing = Some(Signing::new(alpha().clone()));
    let msg = message::build(
        &opts,
        &Payload::new(b"payload", Some("a.txt")),
        "<x@a>",
        NOW,
    )
    .unwrap();
    let body = String::from_utf8(msg.body.clone()).unwrap().replace(
        "application/pkcs7-signature; name",
        "application/x-pkcs7-signature; name",
    );
    let mut h = msg.headers.clone();
    h.set(
        "Content-Type",
        h.get("Content-Type").unwrap().replace(
            "\"application/pkcs7-signature\"",
            "\"application/x-pkcs7-signature\"",
        ),
    );
    let env = Envelope::from_headers(&h).unwrap();
    let got = open_both(
        &env,
        &h,
        body.as_bytes(),
        &keys_for(beta(), alpha()),
        &Policy::default(),
        NOW,
    )
    .unwrap();
    assert!(got.is_signed());

    let mut opts = MessageOptions::new("ALPHA", "BETA");
    opts.encryption = Some(Encryption::new(beta().certificate.clone()));
    opts.compression = Compression::BeforeSigning;
    let msg = message::build(
        &opts,
        &Payload::new(b"payload", Some("a.txt")),
        "<y@a>",
        NOW,
    )
    .unwrap();
    let mut h = msg.headers.clone();
    h.set("Content-Type", "application/x-pkcs7-mime; name=smime.p7m");
    let env = Envelope::from_headers(&h).unwrap();
    let got = open_both(
        &env,
        &h,
        &msg.body,
        &keys_for(beta(), alpha()),
        &Policy::default(),
        NOW,
    )
    .unwrap();
    assert_eq!(got.payload, b"payload");
    assert!(got.is_encrypted());
}

#[test]
fn filename_variants_and_traversal() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        (
            "application/edi-x12",
            "attachment; filename=\"quoted name.x12\"",
            Some("quoted name.x12"),
        ),
        (
            "application/edi-x12",
            "attachment; filename=unquoted.x12",
            Some("unquoted.x12"),
        ),
        (
            "application/edi-x12",
            "attachment; filename=\"=?UTF-8?B?w5xiZXJ3ZWlzdW5nLnhtbA==?=\"",
            Some("\u{dc}berweisung.xml"),
        ),
        (
            "application/edi-x12",
            "attachment; filename*=UTF-8''%E2%82%AC%20invoice.xml",
            Some("\u{20ac} invoice.xml"),
        ),
        (
            "application/edi-x12; name=from-type.x12",
            "",
            Some("from-type.x12"),
        ),
        ("application/edi-x12", "", None),
        ("application/edi-x12", "attachment", None),
        (
            "application/edi-x12",
            "attachment; filename=\"../../../etc/cron.d/evil\"",
            Some("evil"),
        ),
        (
            "application/edi-x12",
            "attachment; filename=\"..\\\\..\\\\boot.ini\"",
            Some("boot.ini"),
        ),
        ("application/edi-x12", "attachment; filename=\"..\"", None),
        (
            "application/edi-x12",
            "attachment; filename=\"a\u{7}b\r.edi\"",
            Some("ab.edi"),
        ),
    ];
    for (ct, cd, want) in cases {
        let mut h = headers(&[
            ("AS2-From", "ALPHA"),
            ("AS2-To", "BETA"),
            ("Message-ID", "<f@a>"),
            ("Content-Type", ct),
        ]);
        if !cd.is_empty() {
            h.append("Content-Disposition", *cd);
        }
        let env = Envelope::from_headers(&h).unwrap();
        let got = open_both(
            &env,
            &h,
            b"ISA~",
            &keys_for(beta(), alpha()),
            &Policy::default(),
            NOW,
        )
        .unwrap();
        assert_eq!(got.filename.as_deref(), *want, "{ct} / {cd}");
        assert_eq!(
            got.mic,
            Mic::compute(DigestAlgorithm::Sha256, b"ISA~").unwrap(),
            "plain: MIC over the content only"
        );
    }
}

#[test]
fn base64_top_level_bodies() {
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    opts.encryption = Some(Encryption::new(beta().certificate.clone()));
    let msg = message::build(&opts, &Payload::new(b"payload", None), "<b@a>", NOW).unwrap();
    let b64 = encode_base64_lines(&msg.body);
    // Declared in the HTTP headers, and sent without saying so (both happen).
    for declare in [true, false] {
        let mut h = msg.headers.clone();
        h.remove("Content-Transfer-Encoding");
        if declare {
            h.append("Content-Transfer-Encoding", "base64");
        }
        let env = Envelope::from_headers(&h).unwrap();
        let got = open_both(
            &env,
            &h,
            &b64,
            &keys_for(beta(), alpha()),
            &Policy::default(),
            NOW,
        )
        .unwrap();
        assert_eq!(got.payload, b"payload");
    }
}

#[test]
fn resends_keep_the_message_id_and_mic() {
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    opts.signing = Some(Signing::new(alpha().clone()));
    let id = as2::envelope::new_message_id("alpha.example", NOW);
    let a = message::build(&opts, &Payload::new(b"same", Some("s.edi")), &id, NOW).unwrap();
    let b = message::build(
        &opts,
        &Payload::new(b"same", Some("s.edi")),
        &id,
        as2::UnixTime(NOW.0 + 600),
    )
    .unwrap();
    assert_eq!(a.headers.get("Message-ID"), b.headers.get("Message-ID"));
    assert_eq!(a.mic, b.mic, "same payload entity, same MIC");
}
