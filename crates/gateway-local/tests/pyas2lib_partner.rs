//! The embedded gateway trading with a pyas2lib partner over HTTP (tests/interop/pyas2_server.py),
//! both ways, with synchronous and asynchronous receipts.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::time::Duration;

use common::*;
use gateway::model::{MdnMode, Status};
use testkit::pyas2::{self, Pyas2Partner};

/// Text with CRLF line ends: pyas2lib rewrites bare LFs in non-binary parts.
fn edi(n: u32) -> Vec<u8> {
    format!("ISA*00*          *00*          *ZZ*PYAS2*ZZ*ALPHA*{n:09}~\r\nST*850*0001~\r\nBEG*00*SA*PO-{n}~\r\nSE*3*0001~\r\nIEA*1*{n:09}~\r\n").into_bytes()
}

/// pyas2lib as PYAS2 (and the AS2 IDs of `profiles`) on `port`, trading with ALPHA on
/// `alpha_port`, receipts `mode`.
fn start_pyas2(
    dir: &std::path::Path,
    port: u16,
    alpha_port: u16,
    mode: &str,
    profiles: serde_json::Value,
) -> Pyas2Partner {
    let py_id = identity("PYAS2");
    let alpha_cert = identity("ALPHA").certificate.to_pem().unwrap();
    let alpha_url = format!("http://127.0.0.1:{alpha_port}/as2");
    Pyas2Partner::start_with_profiles(
        dir,
        "PYAS2",
        (
            &py_id.certificate.to_pem().unwrap(),
            &py_id.private_key.private_key_to_pem_pkcs8().unwrap(),
        ),
        port,
        &pyas2::Station {
            as2_id: "ALPHA",
            cert_pem: &alpha_cert,
            url: &alpha_url,
            trust_pem: None,
        },
        mode,
        profiles,
    )
}

#[test]
fn trading_with_a_pyas2lib_partner() {
    for (mode, py_mode) in [(MdnMode::Sync, "SYNC"), (MdnMode::Async, "ASYNC")] {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let (alpha_port, py_port) = (free_port(), free_port());
        let py_dir = root.join("pyas2");
        let a = site(
            root,
            "ALPHA",
            alpha_port,
            "PYAS2",
            format!("http://127.0.0.1:{py_port}/as2"),
            &identity("PYAS2").certificate,
            &|p| p.mdn = mode,
        );
        let py = start_pyas2(&py_dir, py_port, alpha_port, py_mode, serde_json::json!({}));
        let ra = Running::start(&a);

        // ALPHA -> pyas2lib: signed, compressed, encrypted; pyas2lib's receipt verified here.
        drop_file(&a, "po-to-pyas2.x12", &edi(1));
        let records = wait_for(
            &ra,
            "delivery to pyas2lib",
            Duration::from_secs(30),
            delivered,
        );
        let sent = outbound(&records)[0];
        assert_eq!(
            sent.status,
            Status::Delivered,
            "{mode:?}: {:#?}",
            sent.history
        );
        let mdn = sent.mdn.clone().unwrap();
        assert_eq!(
            (mdn.disposition.as_str(), mdn.signed, mdn.mic.as_str()),
            ("processed", true, "matches")
        );
        let got = py.wait_event("pyas2lib got it", |e| e["kind"] == "message");
        assert_eq!(got["status"], "processed", "{got}");
        assert_eq!(
            (
                got["signed"].as_bool(),
                got["encrypted"].as_bool(),
                got["compressed"].as_bool()
            ),
            (Some(true), Some(true), Some(true))
        );
        assert_eq!(
            std::fs::read(py_dir.join("received/PYAS2/po-to-pyas2.x12")).unwrap(),
            edi(1)
        );

        // pyas2lib -> ALPHA; pyas2lib verifies our receipt (in the response, or POSTed back).
        let file = py_dir.join("asn-from-pyas2.x12");
        std::fs::write(&file, edi(2)).unwrap();
        let result = py.send(&file);
        assert_eq!(result["http"], 200, "{result}");
        if mode == MdnMode::Sync {
            assert_eq!(
                result["mdn_status"], "processed",
                "pyas2lib on our receipt: {result}"
            );
        } else {
            let e = py.wait_event("our async receipt at pyas2lib", |e| e["kind"] == "mdn");
            assert_eq!(e["status"], "processed", "pyas2lib on our receipt: {e}");
        }
        let records = wait_for(
            &ra,
            "the file from pyas2lib",
            Duration::from_secs(10),
            |rs| !inbound(rs).is_empty(),
        );
        let got = inbound(&records)[0];
        assert_eq!(got.status, Status::Received, "{:#?}", got.history);
        assert_eq!(got.filename, "asn-from-pyas2.x12");
        assert_eq!(
            std::fs::read(a.config.data_dir.join(got.payload_key.as_ref().unwrap())).unwrap(),
            edi(2)
        );
        ra.stop();
    }
}

/// Every security level pyas2lib offers, both ways, and receipts asked in another algorithm than
/// the signature's: pyas2lib compares only the MIC's value, against one in its signing digest.
#[test]
fn every_security_level_and_the_requested_mic_with_pyas2lib() {
    use as2::algorithm::DigestAlgorithm;
    use as2::message::Compression;
    use as2::receive::ReceiptMic;
    use serde_json::json;

    // (AS2 ID pyas2lib plays, signed, encrypted, compressed, signing digest, receipt MIC
    // algorithm asked for, our receipt_mic setting, what pyas2lib says of our receipt)
    let levels = [
        (
            "PY-PLAIN",
            false,
            false,
            false,
            "sha256",
            "sha256",
            ReceiptMic::Requested,
            "processed",
        ),
        (
            "PY-Z",
            false,
            false,
            true,
            "sha256",
            "sha256",
            ReceiptMic::Requested,
            "processed",
        ),
        (
            "PY-SIGNED",
            true,
            false,
            false,
            "sha256",
            "sha256",
            ReceiptMic::Requested,
            "processed",
        ),
        (
            "PY-ENCRYPTED",
            false,
            true,
            false,
            "sha256",
            "sha256",
            ReceiptMic::Requested,
            "processed",
        ),
        (
            "PY-ENCRYPTED-Z",
            false,
            true,
            true,
            "sha256",
            "sha256",
            ReceiptMic::Requested,
            "processed",
        ),
        (
            "PY-SHA1-ASKS-SHA256",
            true,
            true,
            true,
            "sha1",
            "sha256",
            ReceiptMic::SignatureDigest,
            "processed",
        ),
        // The RFC's choice (the algorithm asked for) is not what pyas2lib compares against.
        (
            "PY-SHA1-RFC",
            true,
            true,
            false,
            "sha1",
            "sha512",
            ReceiptMic::Requested,
            "processed/warning",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (alpha_port, py_port) = (free_port(), free_port());
    let py_url = format!("http://127.0.0.1:{py_port}/as2");
    let mut a = site(
        root,
        "ALPHA",
        alpha_port,
        "PYAS2",
        py_url.clone(),
        &identity("PYAS2").certificate,
        &|_| {},
    );
    let template = a.config.partnerships.remove(0);
    let mut profiles = serde_json::Map::new();
    for (id, sign, encrypt, compress, digest, asks, receipt_mic, _) in levels {
        let mut p = template.clone();
        p.partner = id.into();
        p.signing = sign.then(|| DigestAlgorithm::from_name(digest).unwrap());
        p.encryption = encrypt.then_some(as2::algorithm::ContentEncryption::Aes256Cbc);
        p.compression = if compress {
            Compression::BeforeSigning
        } else {
            Compression::None
        };
        p.mic_algorithm = DigestAlgorithm::from_name(asks).unwrap();
        p.receipt_mic = receipt_mic;
        a.config.partnerships.push(p);
        profiles.insert(
            id.into(),
            json!({"sign": sign, "digest": digest, "encrypt": encrypt, "compress": compress,
                   "mdn": "SYNC", "mdn_digest": asks}),
        );
    }
    let py_dir = root.join("pyas2");
    let py = start_pyas2(&py_dir, py_port, alpha_port, "SYNC", profiles.into());
    let ra = Running::start(&a);

    // ALPHA -> pyas2lib, at every level: pyas2lib's receipt (with its MIC, or none for an
    // unsigned message, which pyas2lib never computes one for) is accepted.
    for (n, (id, ..)) in levels.iter().enumerate() {
        drop_file_to(&a, id, "po.x12", &edi(n as u32));
    }
    let records = wait_for(&ra, "every level sent", Duration::from_secs(60), |rs| {
        let out = outbound(rs);
        out.len() == levels.len() && out.iter().all(|r| r.status.is_final())
    });
    for (n, (id, sign, encrypt, compress, ..)) in levels.iter().enumerate() {
        let r = outbound(&records)
            .into_iter()
            .find(|r| r.partner == *id)
            .unwrap();
        assert_eq!(r.status, Status::Delivered, "{id}: {:#?}", r.history);
        let mdn = r.mdn.clone().unwrap();
        let mic = if *sign { "matches" } else { "missing" };
        assert_eq!((mdn.signed, mdn.mic.as_str()), (true, mic), "{id}");
        pyas2_processed(&py, id, &r.message_id, (*sign, *encrypt, *compress));
        assert_eq!(
            std::fs::read(py_dir.join("received").join(id).join("po.x12")).unwrap(),
            edi(n as u32),
            "{id}"
        );
    }

    // pyas2lib -> ALPHA, at every level; pyas2lib checks our receipt.
    for (n, (id, .., verdict)) in levels.iter().enumerate() {
        let file = py_dir.join(format!("asn-{n}.x12"));
        std::fs::write(&file, edi(100 + n as u32)).unwrap();
        let result = py.send_as(&file, Some(id));
        assert_eq!(result["http"], 200, "{id}: {result}");
        assert_eq!(
            result["mdn_status"], *verdict,
            "{id}: pyas2lib on our receipt: {result}"
        );
    }
    let records = wait_for(&ra, "every level received", Duration::from_secs(20), |rs| {
        inbound(rs).len() == levels.len()
    });
    for (n, (id, ..)) in levels.iter().enumerate() {
        let r = inbound(&records)
            .into_iter()
            .find(|r| r.partner == *id)
            .unwrap();
        assert_eq!(r.status, Status::Received, "{id}: {:#?}", r.history);
        assert_eq!(
            std::fs::read(a.config.data_dir.join(r.payload_key.as_ref().unwrap())).unwrap(),
            edi(100 + n as u32),
            "{id}"
        );
    }
    ra.stop();
}

/// The names pyas2lib gives algorithms.
fn py_digest(d: as2::algorithm::DigestAlgorithm) -> String {
    common::matrix::digest_name(d).replace('-', "")
}

fn py_cipher(c: as2::algorithm::ContentEncryption) -> &'static str {
    use as2::algorithm::ContentEncryption as C;
    match c {
        C::TripleDesCbc => "tripledes_192_cbc",
        C::Aes128Cbc => "aes_128_cbc",
        C::Aes192Cbc => "aes_192_cbc",
        _ => "aes_256_cbc",
    }
}

/// pyas2lib over the matrix the BouncyCastle partner runs (tests/java_partner.rs), both ways,
/// but for AES-GCM, which pyas2lib cannot decrypt or produce. pyas2lib compresses only before
/// signing when it sends, and compares a receipt's MIC by value against one in its signing
/// digest, so ALPHA answers it with `receipt_mic = "signature"`.
#[test]
fn pyas2lib_over_the_interoperability_matrix() {
    use as2::message::Compression;
    use as2::receive::ReceiptMic;
    use common::matrix::*;
    use serde_json::json;

    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| !c.encrypt.is_some_and(|e| e.is_authenticated()))
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (alpha_port, py_port) = (free_port(), free_port());
    let mut a = site(
        root,
        "ALPHA",
        alpha_port,
        "PYAS2",
        format!("http://127.0.0.1:{py_port}/as2"),
        &identity("PYAS2").certificate,
        &|_| {},
    );
    let template = a.config.partnerships.remove(0);
    a.config.max_body_bytes = 64 << 20;
    let mut profiles = serde_json::Map::new();
    for c in &cases {
        let mut p = partnership(&template, c);
        p.receipt_mic = ReceiptMic::SignatureDigest;
        a.config.partnerships.push(p);
        let first_micalg =
            as2::algorithm::DigestAlgorithm::from_name(c.micalg.split(',').next().unwrap())
                .unwrap();
        profiles.insert(
            c.partner.clone(),
            json!({
                "sign": c.sign.is_some(),
                "digest": c.sign.map_or("sha256".into(), py_digest),
                "sign_alg": if c.pss { "rsassa_pss" } else { "rsassa_pkcs1v15" },
                "encrypt": c.encrypt.is_some(),
                "cipher": c.encrypt.map_or("aes_256_cbc", py_cipher),
                "key_enc_alg": if c.oaep { "rsaes_oaep" } else { "rsaes_pkcs1v15" },
                "compress": c.compress != Compression::None,
                "mdn": match c.mdn { MdnMode::None => None, MdnMode::Sync => Some("SYNC"), MdnMode::Async => Some("ASYNC") },
                "mdn_digest": c.signed_mdn.then(|| py_digest(first_micalg)),
            }),
        );
    }
    let py_dir = root.join("pyas2");
    let py = start_pyas2(&py_dir, py_port, alpha_port, "SYNC", profiles.into());
    let ra = Running::start(&a);

    // ALPHA -> pyas2lib.
    for (n, c) in cases.iter().enumerate() {
        drop_file_to(&a, &c.partner, c.name, &c.payload.bytes(n));
    }
    let records = wait_for(&ra, "every case sent", Duration::from_secs(300), |rs| {
        let out = outbound(rs);
        out.len() == cases.len() && out.iter().all(|r| r.status.is_final())
    });
    let out = outbound(&records);
    for (n, c) in cases.iter().enumerate() {
        let case = &c.partner;
        let r = record_for(&out, case);
        let want = if c.mdn == MdnMode::None {
            Status::Sent
        } else {
            Status::Delivered
        };
        assert_eq!(r.status, want, "{case}: {:#?}", r.history);
        if c.mdn != MdnMode::None {
            let mdn = r.mdn.as_ref().unwrap();
            assert_eq!(mdn.disposition, "processed", "{case}");
            assert_eq!(mdn.signed, c.signed_mdn, "{case}");
            // pyas2lib returns a MIC for signed messages only.
            let mic = if c.sign.is_some() {
                "matches"
            } else {
                "missing"
            };
            assert_eq!(mdn.mic, mic, "{case}: {:#?}", r.history);
        }
        pyas2_processed(
            &py,
            case,
            &r.message_id,
            (
                c.sign.is_some(),
                c.encrypt.is_some(),
                c.compress != Compression::None,
            ),
        );
        // Python's email package reads the plain `filename`: our ASCII spelling of the name.
        let name = as2::filename::ascii_filename(c.name);
        let stored = std::fs::read(py_dir.join("received").join(case).join(&name)).unwrap();
        assert_same(&stored, &c.payload.bytes(n), case);
    }

    // pyas2lib -> ALPHA; pyas2lib checks our receipts.
    let files: Vec<(std::path::PathBuf, String, String)> = cases
        .iter()
        .enumerate()
        .map(|(n, c)| {
            let dir = root.join("to-send").join(n.to_string());
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(c.name);
            std::fs::write(&file, c.payload.bytes(1000 + n)).unwrap();
            (
                file,
                c.partner.clone(),
                c.payload.content_type().to_string(),
            )
        })
        .collect();
    let reports = py.send_many(&files, Duration::from_secs(600));
    assert_eq!(reports.len(), cases.len());
    for (c, report) in cases.iter().zip(&reports) {
        let case = &c.partner;
        assert!(report["error"].is_null(), "{case}: {report}");
        assert_eq!(report["http"], 200, "{case}: {report}");
        match c.mdn {
            MdnMode::Sync => {
                assert_eq!(report["mdn_status"], "processed", "{case}: {report}")
            }
            MdnMode::Async => {
                let id = report["message_id"].as_str().unwrap().to_string();
                let e = py.wait_event(case, |e| e["kind"] == "mdn" && e["original"] == id.as_str());
                assert_eq!(e["status"], "processed", "{case}: {e}");
            }
            MdnMode::None => {}
        }
    }
    assert_every_case_received(&ra, &a, &cases);
    ra.stop();
}

/// Waits (bounded) for pyas2lib's account of message `message_id` for `case`, and checks that it
/// processed it and found the layers (signed, encrypted, compressed) we sent.
fn pyas2_processed(py: &Pyas2Partner, case: &str, message_id: &str, layers: (bool, bool, bool)) {
    let e = py.wait_event(case, |e| {
        e["kind"] == "message" && e["message_id"] == message_id.trim_matches(['<', '>'])
    });
    assert_eq!(e["status"], "processed", "{case}: {e}");
    assert_eq!(
        (
            e["signed"].as_bool(),
            e["encrypted"].as_bool(),
            e["compressed"].as_bool()
        ),
        (Some(layers.0), Some(layers.1), Some(layers.2)),
        "{case}: {e}"
    );
}
