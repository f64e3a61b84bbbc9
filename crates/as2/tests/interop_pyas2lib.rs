//! Interoperability with pyas2lib, a different AS2 implementation, in both directions: messages it
//! builds are opened and answered by us and it verifies our receipts; messages we build are opened
//! and answered by it and we verify its receipts. Every cipher and digest pyas2lib supports, sync
//! and async receipts.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::path::Path;
use std::time::Duration;

use as2::algorithm::{
    ContentEncryption, DigestAlgorithm, KeyTransport, NameStyle, SignatureScheme,
};
use as2::envelope::Envelope;
use as2::envelope::MdnRequest;
use as2::mdn::{self, MdnOptions, MdnSignature, MicCheck};
use as2::message::{self, Compression, Encryption, MessageOptions, Payload, Signing};
use as2::receive::{Policy, ReceiptMic};
use as2::Disposition;
use common::*;
use serde_json::{json, Value};

fn peer(command: &str, spec: &Path) {
    let script = repo_root().join("tests/interop/pyas2_peer.py");
    run_bounded(
        std::process::Command::new(python())
            .arg(script)
            .arg(command)
            .arg(spec),
        Duration::from_secs(600),
    );
}

fn stations(dir: &Path) -> Value {
    let (ac, ak) = write_pem(dir, "alpha", alpha());
    let (bc, bk) = write_pem(dir, "beta", beta());
    json!({
        "alpha": {"as2_id": "ALPHA", "cert": ac, "key": ak},
        "beta": {"as2_id": "BETA", "cert": bc, "key": bk},
    })
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .expect("json")
}

const PY_DIGESTS: [&str; 6] = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];
const PY_CIPHERS: [&str; 4] = [
    "tripledes_192_cbc",
    "aes_128_cbc",
    "aes_192_cbc",
    "aes_256_cbc",
];

#[test]
fn pyas2lib_sends_we_receive_and_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let payload_path = dir.join("payload.bin");
    let payload = crlf_payload(5000);
    std::fs::write(&payload_path, &payload).unwrap();
    // application/octet-stream goes as binary, so bare CR and LF must survive untouched.
    let binary_path = dir.join("binary.bin");
    let binary = awkward_payload(5000);
    std::fs::write(&binary_path, &binary).unwrap();

    let mut cases = Vec::new();
    let mut digests: Vec<Option<(&str, &str)>> = vec![None];
    for d in PY_DIGESTS {
        for s in ["rsassa_pkcs1v15", "rsassa_pss"] {
            digests.push(Some((d, s)));
        }
    }
    let mut ciphers: Vec<Option<&str>> = vec![None];
    ciphers.extend(PY_CIPHERS.map(Some));
    let mdn_modes = [
        (None, None),
        (Some("SYNC"), None),
        (Some("SYNC"), Some("sha256")),
        (Some("ASYNC"), Some("sha512")),
        (Some("ASYNC"), None),
    ];
    let mut n = 0;
    for digest in &digests {
        for cipher in &ciphers {
            for compress in [false, true] {
                let (mode, mdn_digest) = mdn_modes[n % mdn_modes.len()];
                let octets = n % 5 == 2;
                cases.push(json!({
                    "name": format!("c{n}"),
                    "payload": if octets { &binary_path } else { &payload_path },
                    "content_type": if octets { "application/octet-stream" } else { "application/edi-consent" },
                    "filename": "invoice 7.edi",
                    "digest": digest.map(|d| d.0),
                    "sign_alg": digest.map(|d| d.1),
                    "cipher": cipher,
                    "compress": compress,
                    "mdn_mode": mode,
                    "mdn_digest": mdn_digest,
                    "mdn_url": "http://127.0.0.1:1/as2/mdn",
                }));
                n += 1;
            }
        }
    }
    let mut spec = stations(dir);
    spec["dir"] = json!(dir);
    spec["cases"] = json!(cases);
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    peer("build", &spec_path);

    let keys = keys_for(beta(), alpha());
    let mut receipts = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let built = read_json(&dir.join(format!("{name}.json")));
        assert!(
            built["ok"].as_bool().unwrap(),
            "pyas2lib build {case}: {}",
            built["error"]
        );
        let (headers, body) =
            split_capture(&std::fs::read(dir.join(format!("{name}.msg"))).unwrap());
        let env = Envelope::from_headers(&headers).unwrap_or_else(|e| panic!("{case}: {e}"));
        // pyas2lib keeps the MIC of what it signed in its signing digest and compares the value
        // only, whatever micalg it asked for: the partnership setting for it.
        let asked_other = !case["digest"].is_null()
            && !case["mdn_digest"].is_null()
            && case["digest"] != case["mdn_digest"];
        let policy = Policy {
            require_signature: !case["digest"].is_null(),
            require_encryption: !case["cipher"].is_null(),
            receipt_mic: ReceiptMic::SignatureDigest,
            ..Policy::default()
        };
        let got = open_both(&env, &headers, &body, &keys, &policy, NOW)
            .unwrap_or_else(|e| panic!("{case}: we could not open pyas2lib's message: {e}"));
        if asked_other {
            // By default the receipt's MIC is in the algorithm asked for (RFC 4130 7.3.1).
            let by_default =
                open_both(&env, &headers, &body, &keys, &Policy::default(), NOW).unwrap();
            let asked = DigestAlgorithm::from_name(case["mdn_digest"].as_str().unwrap());
            assert_eq!(Some(by_default.mic.algorithm), asked, "{case}");
            assert_ne!(by_default.mic.value, got.mic.value, "{case}");
        }
        let want = if case["content_type"] == "application/octet-stream" {
            &binary
        } else {
            &payload
        };
        assert_same_bytes(&got.payload, want, &case.to_string());
        assert_eq!(got.filename.as_deref(), Some("invoice 7.edi"), "{case}");
        assert_eq!(got.is_signed(), !case["digest"].is_null(), "{case}");
        assert_eq!(got.is_encrypted(), !case["cipher"].is_null(), "{case}");
        if let Some(mic) = built["mic"].as_str() {
            assert_eq!(got.mic.value, mic, "{case}: MIC differs from pyas2lib's");
        }
        assert_eq!(env.mdn.is_some(), !case["mdn_mode"].is_null(), "{case}");
        let Some(request) = &env.mdn else { continue };
        assert_eq!(
            request.async_url.is_some(),
            case["mdn_mode"] == "ASYNC",
            "{case}"
        );
        let opts = MdnOptions {
            signer: Some(beta().clone()),
            ..MdnOptions::default()
        };
        let receipt = mdn::build(
            &env,
            &Disposition::Processed,
            Some(&got.mic),
            &opts,
            &as2::envelope::new_message_id("beta.example", NOW),
            NOW,
        )
        .unwrap();
        assert_eq!(receipt.signed, !case["mdn_digest"].is_null(), "{case}");
        write_capture(
            &dir.join(format!("{name}.mdn")),
            &receipt.headers,
            &receipt.body,
        );
        receipts.push(case.clone());
    }
    assert!(receipts.len() > 40);

    // pyas2lib checks our receipts: signature, original message, MIC.
    spec["cases"] = json!(receipts);
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    peer("verify-mdn", &spec_path);
    for case in &receipts {
        let name = case["name"].as_str().unwrap();
        let r = read_json(&dir.join(format!("{name}.mdn.json")));
        assert!(r["ok"].as_bool().unwrap(), "{case}: {}", r["error"]);
        assert_eq!(
            r["status"], "processed",
            "{case}: pyas2lib says {} ({})",
            r["status"], r["detail"]
        );
        let built = read_json(&dir.join(format!("{name}.json")));
        assert_eq!(r["orig_message_id"], built["message_id"], "{case}");
    }
}

#[test]
fn we_send_pyas2lib_receives_and_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let payload = crlf_payload(4000);
    let mut signs: Vec<Option<(DigestAlgorithm, SignatureScheme)>> = vec![None];
    for d in [
        DigestAlgorithm::Sha1,
        DigestAlgorithm::Sha224,
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha384,
        DigestAlgorithm::Sha512,
    ] {
        for s in [SignatureScheme::RsaPkcs1v15, SignatureScheme::RsaPss] {
            signs.push(Some((d, s)));
        }
    }
    let mut encs: Vec<Option<(ContentEncryption, KeyTransport)>> = vec![None];
    for c in [
        ContentEncryption::TripleDesCbc,
        ContentEncryption::Aes128Cbc,
        ContentEncryption::Aes192Cbc,
        ContentEncryption::Aes256Cbc,
    ] {
        for t in [KeyTransport::RsaPkcs1v15, KeyTransport::RsaOaep] {
            encs.push(Some((c, t)));
        }
    }
    let mut cases = Vec::new();
    let mut sent = Vec::new();
    let mut n = 0;
    for sign in &signs {
        for enc in &encs {
            for compression in [
                Compression::None,
                Compression::BeforeSigning,
                Compression::AfterSigning,
            ] {
                let mut opts = MessageOptions::new("ALPHA", "BETA");
                opts.compression = compression;
                if let Some((d, s)) = sign {
                    let mut sg = Signing::new(alpha().clone());
                    sg.digest = *d;
                    sg.scheme = *s;
                    opts.signing = Some(sg);
                }
                if let Some((c, t)) = enc {
                    let mut e = Encryption::new(beta().certificate.clone());
                    e.cipher = *c;
                    e.key_transport = *t;
                    opts.encryption = Some(e);
                }
                if n % 7 == 3 {
                    opts.body_encoding = message::BodyEncoding::Base64;
                }
                let (mdn_request, signed_mdn) = match n % 4 {
                    0 => (None, false),
                    1 => (
                        Some(MdnRequest::sync(
                            "as2@alpha.example",
                            &[],
                            NameStyle::Hyphenated,
                        )),
                        false,
                    ),
                    2 => (
                        Some(MdnRequest::sync(
                            "as2@alpha.example",
                            &[DigestAlgorithm::Sha256],
                            NameStyle::Hyphenated,
                        )),
                        true,
                    ),
                    _ => (
                        Some(MdnRequest::asynchronous(
                            "as2@alpha.example",
                            "http://127.0.0.1:1/mdn",
                            &[DigestAlgorithm::Sha384],
                            NameStyle::Compact,
                        )),
                        true,
                    ),
                };
                opts.mdn = mdn_request;
                let name = format!("c{n}");
                let id = as2::envelope::new_message_id("alpha.example", NOW);
                let msg = message::build(
                    &opts,
                    &Payload::new(&payload, Some("order 1.edi")),
                    &id,
                    NOW,
                )
                .unwrap();
                write_capture(&dir.join(format!("{name}.msg")), &msg.headers, &msg.body);
                cases.push(json!({
                    "name": name,
                    "digest": sign.map(|(d, _)| d.name(NameStyle::Compact)),
                    "sign_alg": sign.map(|(_, s)| if s == SignatureScheme::RsaPss { "rsassa_pss" } else { "rsassa_pkcs1v15" }),
                    "cipher": enc.map(|_| "aes_256_cbc"),
                }));
                sent.push((name, msg, opts.mdn.is_some(), signed_mdn, *sign, *enc));
                n += 1;
            }
        }
    }
    let mut spec = stations(dir);
    spec["dir"] = json!(dir);
    spec["cases"] = json!(cases);
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    peer("parse", &spec_path);

    for (name, msg, wants_mdn, signed_mdn, sign, enc) in &sent {
        let what = format!("{name} sign={sign:?} enc={enc:?} layers={:?}", msg.layers);
        let r = read_json(&dir.join(format!("{name}.json")));
        assert!(r["ok"].as_bool().unwrap(), "{what}: {}", r["error"]);
        assert_eq!(r["status"], "processed", "{what}: pyas2lib: {}", r["error"]);
        assert_same_bytes(
            &std::fs::read(dir.join(format!("{name}.payload"))).unwrap(),
            &payload,
            &what,
        );
        assert_eq!(r["filename"], "order 1.edi", "{what}");
        assert_eq!(r["signed"], sign.is_some(), "{what}");
        assert_eq!(r["encrypted"], enc.is_some(), "{what}");
        if let Some(mic) = r["mic"].as_str() {
            assert!(
                msg.expected_mics().iter().any(|m| m.value == mic),
                "{what}: pyas2lib MIC {mic}"
            );
        }
        let mdn_path = dir.join(format!("{name}.mdn"));
        assert_eq!(mdn_path.exists(), *wants_mdn, "{what}");
        if !wants_mdn {
            continue;
        }
        let (h, b) = split_capture(&std::fs::read(&mdn_path).unwrap());
        let parsed = mdn::parse(
            &h,
            &b,
            Some(std::slice::from_ref(&beta().certificate)),
            Some(NOW),
            &Default::default(),
        )
        .unwrap_or_else(|e| panic!("{what}: we could not parse pyas2lib's MDN: {e}"));
        assert_eq!(parsed.disposition, Disposition::Processed, "{what}");
        assert_eq!(
            as2::envelope::message_id_core(&parsed.original_message_id),
            as2::envelope::message_id_core(&msg.message_id)
        );
        match (&parsed.signature, signed_mdn) {
            (MdnSignature::Verified(_), true) | (MdnSignature::Unsigned, false) => {}
            (s, _) => panic!("{what}: MDN signature {s:?}, expected signed={signed_mdn}"),
        }
        // pyas2lib only reports a MIC for signed messages.
        let expected = if sign.is_some() {
            MicCheck::Match
        } else {
            MicCheck::Missing
        };
        assert_eq!(parsed.check_mic(&msg.expected_mics()), expected, "{what}");
    }
}

#[test]
fn pyas2lib_opens_a_large_message_deflated_in_parallel() {
    // Above 8 MiB the payload is deflated in chunks on every core and stitched into one zlib
    // stream; Python's zlib checks the stitched Adler-32 trailer.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut payload = Vec::with_capacity(20 << 20);
    let mut n = 0u64;
    while payload.len() < 20 << 20 {
        n += 1;
        payload.extend_from_slice(format!("ST*850*{n:09}~BEG*00*SA*PO{n:08}**20261128~PO1*1*{}*EA*9.95**BP*W-{}~SE*4*{n:09}~\r\n", n % 97, n * 7919 % 100_000).as_bytes());
    }
    for (name, compression) in [
        ("before", Compression::BeforeSigning),
        ("after", Compression::AfterSigning),
    ] {
        let mut opts = MessageOptions::new("ALPHA", "BETA");
        opts.compression = compression;
        opts.signing = Some(Signing::new(alpha().clone()));
        opts.encryption = Some(Encryption::new(beta().certificate.clone()));
        let msg = message::build(
            &opts,
            &Payload::new(&payload, Some("big.edi")),
            "<big@alpha>",
            NOW,
        )
        .unwrap();
        assert!(msg.body.len() < payload.len(), "compressed");
        write_capture(&dir.join(format!("{name}.msg")), &msg.headers, &msg.body);
    }
    let mut spec = stations(dir);
    spec["dir"] = json!(dir);
    spec["cases"] = json!([
        {"name": "before", "digest": "sha256", "cipher": "aes_256_cbc"},
        {"name": "after", "digest": "sha256", "cipher": "aes_256_cbc"},
    ]);
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    peer("parse", &spec_path);
    for name in ["before", "after"] {
        let r = read_json(&dir.join(format!("{name}.json")));
        assert_eq!(r["status"], "processed", "{name}: {}", r["error"]);
        assert_eq!(r["compressed"], true);
        assert_same_bytes(
            &std::fs::read(dir.join(format!("{name}.payload"))).unwrap(),
            &payload,
            name,
        );
    }
}
