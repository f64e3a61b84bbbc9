//! The embedded gateway trading with a BouncyCastle partner (tests/interop/java/As2Partner.java:
//! BouncyCastle and JavaMail, as OpenAS2 and Mendelson are built) over HTTP, both ways, over the
//! Drummond matrix {plain, signed, encrypted, signed+encrypted} x {compressed, not} x {no receipt,
//! unsigned, signed}, every cipher x digest with sign+encrypt+compress, asynchronous receipts,
//! OAEP, PSS, AES-GCM, receipts asked in another algorithm than the signature's, a 20 MB
//! payload, binary payloads with bare LFs and non-ASCII file names. The partner checks every MIC
//! of ours the way OpenAS2 does (algorithm, then value, as strings).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::time::Duration;

use as2::algorithm::{ContentEncryption, DigestAlgorithm};
use as2::message::Compression;
use common::*;
use gateway::model::{MdnMode, MessageRecord, Partnership, Status};
use testkit::java::{self, JavaPartner};

/// One partnership of the matrix, used both ways.
#[derive(Debug, Clone)]
struct Case {
    partner: String,
    sign: Option<DigestAlgorithm>,
    encrypt: Option<ContentEncryption>,
    compress: Compression,
    mdn: MdnMode,
    signed_mdn: bool,
    /// What the receipt is asked for, as written on the wire (ours take the first).
    micalg: &'static str,
    oaep: bool,
    pss: bool,
    payload: Payload,
    name: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Payload {
    Edi,
    /// Binary with bare LFs, bare CRs and NULs, as application/octet-stream.
    Binary,
    Large,
}

impl Payload {
    fn bytes(self, n: usize) -> Vec<u8> {
        match self {
            Payload::Edi => edi(n),
            Payload::Binary => binary(n, 7000),
            Payload::Large => binary(n, 20 << 20),
        }
    }
    fn content_type(self) -> &'static str {
        match self {
            Payload::Edi => "application/edi-x12",
            _ => "application/octet-stream",
        }
    }
}

fn edi(n: usize) -> Vec<u8> {
    let mut out = format!("ISA*00*          *00*          *ZZ*JAVA           *ZZ*ALPHA          *261201*1200*U*00401*{n:09}*0*P*>~\r\n").into_bytes();
    for i in 0..40 {
        out.extend_from_slice(format!("PO1*{i}*{n}*EA*9.25**BP*ITEM-{i:05}~\r\n").as_bytes());
    }
    out
}

fn binary(seed: usize, len: usize) -> Vec<u8> {
    let mut x = seed as u32 | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.push(match x % 23 {
            0 => b'\n',
            1 => b'\r',
            2 => 0,
            _ => (x >> 8) as u8,
        });
    }
    v
}

fn digest_name(d: DigestAlgorithm) -> &'static str {
    d.name(as2::algorithm::NameStyle::Hyphenated)
}

fn cases() -> Vec<Case> {
    let base = Case {
        partner: String::new(),
        sign: Some(DigestAlgorithm::Sha256),
        encrypt: Some(ContentEncryption::Aes256Cbc),
        compress: Compression::None,
        mdn: MdnMode::Sync,
        signed_mdn: true,
        micalg: "sha-256",
        oaep: false,
        pss: false,
        payload: Payload::Edi,
        name: "order.x12",
    };
    let mut out = Vec::new();
    // The Drummond matrix, AES-256-CBC and SHA-256.
    for (sign, encrypt, level) in [
        (false, false, "plain"),
        (true, false, "signed"),
        (false, true, "encrypted"),
        (true, true, "both"),
    ] {
        for compress in [Compression::None, Compression::BeforeSigning] {
            for (mdn, signed_mdn, receipt) in [
                (MdnMode::None, false, "none"),
                (MdnMode::Sync, false, "unsigned"),
                (MdnMode::Sync, true, "signed"),
            ] {
                let z = if compress == Compression::None {
                    ""
                } else {
                    "-z"
                };
                out.push(Case {
                    partner: format!("D-{level}{z}-{receipt}"),
                    sign: sign.then_some(DigestAlgorithm::Sha256),
                    encrypt: encrypt.then_some(ContentEncryption::Aes256Cbc),
                    compress,
                    mdn,
                    signed_mdn,
                    ..base.clone()
                });
            }
        }
    }
    // Every cipher x digest, signed, encrypted and compressed.
    for c in ContentEncryption::ALL {
        for d in DigestAlgorithm::ALL.into_iter().filter(|d| d.can_sign()) {
            out.push(Case {
                partner: format!("C-{}-{}", c.name(), digest_name(d)),
                sign: Some(d),
                encrypt: Some(c),
                compress: Compression::BeforeSigning,
                micalg: digest_name(d),
                ..base.clone()
            });
        }
    }
    let more = [
        Case {
            partner: "A-both-async".into(),
            mdn: MdnMode::Async,
            compress: Compression::AfterSigning,
            ..base.clone()
        },
        Case {
            partner: "A-plain-async-unsigned".into(),
            sign: None,
            encrypt: None,
            mdn: MdnMode::Async,
            signed_mdn: false,
            ..base.clone()
        },
        Case {
            partner: "A-encrypted-async".into(),
            sign: None,
            mdn: MdnMode::Async,
            compress: Compression::BeforeSigning,
            ..base.clone()
        },
        Case {
            partner: "K-oaep".into(),
            oaep: true,
            ..base.clone()
        },
        Case {
            partner: "K-pss".into(),
            pss: true,
            compress: Compression::BeforeSigning,
            ..base.clone()
        },
        Case {
            partner: "K-oaep-pss-gcm".into(),
            oaep: true,
            pss: true,
            encrypt: Some(ContentEncryption::Aes128Gcm),
            ..base.clone()
        },
        // Receipts asked in another algorithm than the signature's.
        Case {
            partner: "M-sha1-asks-sha256".into(),
            sign: Some(DigestAlgorithm::Sha1),
            micalg: "sha-256",
            ..base.clone()
        },
        Case {
            partner: "M-sha256-asks-sha512".into(),
            micalg: "sha-512, sha-256",
            ..base.clone()
        },
        Case {
            partner: "M-asks-sha1".into(),
            micalg: "sha1",
            ..base.clone()
        },
        Case {
            partner: "P-binary".into(),
            payload: Payload::Binary,
            name: "image.bin",
            ..base.clone()
        },
        Case {
            partner: "P-binary-signed-only".into(),
            encrypt: None,
            payload: Payload::Binary,
            name: "blob.dat",
            ..base.clone()
        },
        Case {
            partner: "P-large".into(),
            payload: Payload::Large,
            compress: Compression::BeforeSigning,
            name: "large.bin",
            ..base.clone()
        },
        Case {
            partner: "N-latin".into(),
            name: "Müller Bestellung 7.x12",
            ..base.clone()
        },
        Case {
            partner: "N-cjk".into(),
            name: "订单 2026.edi",
            compress: Compression::BeforeSigning,
            ..base.clone()
        },
    ];
    out.extend(more);
    out
}

/// Our partnership for a case (ALPHA -> it, and what ALPHA expects from it).
fn partnership(template: &Partnership, c: &Case) -> Partnership {
    let mut p = template.clone();
    p.partner = c.partner.clone();
    p.signing = c.sign;
    p.encryption = c.encrypt;
    p.compression = c.compress;
    p.mdn = c.mdn;
    p.signed_mdn = c.signed_mdn;
    p.mic_algorithm = DigestAlgorithm::from_name(c.micalg.split(',').next().unwrap()).unwrap();
    p.oaep = c.oaep;
    p.pss = c.pss;
    p.content_type = c.payload.content_type().into();
    p.timeout_secs = 120;
    p
}

fn order(c: &Case, file: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("file", file.display().to_string()),
        ("name", c.name.to_string()),
        ("as2_from", c.partner.clone()),
        ("content_type", c.payload.content_type().to_string()),
        (
            "sign",
            c.sign.map_or("none".into(), |d| digest_name(d).to_string()),
        ),
        ("pss", c.pss.to_string()),
        (
            "encrypt",
            c.encrypt.map_or("none", |e| e.name()).to_string(),
        ),
        ("oaep", c.oaep.to_string()),
        ("compress", c.compress.name().to_string()),
        ("mdn", c.mdn.as_str().to_string()),
        ("signed_mdn", c.signed_mdn.to_string()),
        ("micalg", c.micalg.to_string()),
    ]
}

fn record_for<'a>(records: &'a [&'a MessageRecord], partner: &str) -> &'a MessageRecord {
    records
        .iter()
        .find(|r| r.partner == partner)
        .unwrap_or_else(|| panic!("no record for {partner}"))
}

#[test]
fn trading_with_a_bouncycastle_partner_over_the_drummond_matrix() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (alpha_port, java_port) = (free_port(), free_port());
    let java_url = format!("http://127.0.0.1:{java_port}/as2");
    let java_id = identity("JAVA");
    let cases = cases();
    let mut a = site(
        root,
        "ALPHA",
        alpha_port,
        "JAVA",
        java_url.clone(),
        &java_id.certificate,
        &|_| {},
    );
    let template = a.config.partnerships.remove(0);
    a.config.max_body_bytes = 64 << 20;
    for c in &cases {
        a.config.partnerships.push(partnership(&template, c));
    }
    let alpha_cert = identity("ALPHA").certificate.to_pem().unwrap();
    let alpha_url = format!("http://127.0.0.1:{alpha_port}/as2");
    let partner = JavaPartner::start(
        &root.join("java"),
        (
            &java_id.certificate.to_pem().unwrap(),
            &java_id.private_key.private_key_to_pem_pkcs8().unwrap(),
        ),
        java_port,
        &java::Station {
            as2_id: "ALPHA",
            cert_pem: &alpha_cert,
            url: &alpha_url,
        },
        &java::Tls::default(),
    );
    let ra = Running::start(&a);

    // ALPHA -> the partner: one file per case.
    for (n, c) in cases.iter().enumerate() {
        drop_file_to(&a, &c.partner, c.name, &c.payload.bytes(n));
    }
    let records = wait_for(&ra, "every case sent", Duration::from_secs(240), |rs| {
        let out = outbound(rs);
        out.len() == cases.len() && out.iter().all(|r| r.status.is_final())
    });
    let out = outbound(&records);
    let events = partner.events();
    for (n, c) in cases.iter().enumerate() {
        let r = record_for(&out, &c.partner);
        let case = &c.partner;
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
            // The partner computes a MIC only when a signed receipt names an algorithm.
            let mic = if c.signed_mdn { "matches" } else { "missing" };
            assert_eq!(mdn.mic, mic, "{case}: {:#?}", r.history);
        }
        let e = events
            .iter()
            .find(|e| e["kind"] == "message" && e["message_id"] == r.message_id.as_str())
            .unwrap_or_else(|| panic!("{case}: the partner saw nothing: {events:#?}"));
        assert_eq!(e["status"], "processed", "{case}: {e}");
        assert_eq!(e["to"], c.partner.as_str(), "{case}");
        assert_eq!(
            (
                e["signed"].as_bool(),
                e["encrypted"].as_bool(),
                e["compressed"].as_bool()
            ),
            (
                Some(c.sign.is_some()),
                Some(c.encrypt.is_some()),
                Some(c.compress != Compression::None)
            ),
            "{case}: {e}"
        );
        assert_eq!(e["filename"], c.name, "{case}: {e}");
        let stored = std::fs::read(e["stored"].as_str().unwrap()).unwrap();
        assert_same(&stored, &c.payload.bytes(n), case);
        if let Some(cipher) = c.encrypt {
            assert_eq!(e["cipher"], cipher.oid(), "{case}: {e}");
            let transport = if c.oaep {
                "1.2.840.113549.1.1.7"
            } else {
                "1.2.840.113549.1.1.1"
            };
            assert_eq!(e["key_transport"], transport, "{case}: {e}");
        }
        if let Some(d) = c.sign {
            assert_eq!(e["digest"], d.oid(), "{case}: {e}");
        }
        if c.pss {
            assert_eq!(
                e["signature_algorithm"], "1.2.840.113549.1.1.10",
                "{case}: {e}"
            );
        }
    }

    // The partner -> ALPHA, the same cases; the partner checks every receipt of ours.
    let files = root.join("to-send");
    std::fs::create_dir_all(&files).unwrap();
    let mut sent = Vec::new();
    for (n, c) in cases.iter().enumerate() {
        let file = files.join(format!("case-{n}"));
        std::fs::write(&file, c.payload.bytes(1000 + n)).unwrap();
        let report = partner.send(&order(c, &file));
        let case = &c.partner;
        assert_eq!(report["http"], 200, "{case}: {report}");
        match (c.mdn, c.signed_mdn) {
            (MdnMode::Sync, signed) => {
                let mdn = &report["mdn"];
                assert!(mdn["error"].is_null(), "{case}: {report}");
                assert_eq!(
                    mdn["disposition"], "automatic-action/MDN-sent-automatically; processed",
                    "{case}: {report}"
                );
                assert_eq!(mdn["signed"], signed, "{case}: {report}");
                assert_eq!(mdn["mic_check"], "match", "{case}: {report}");
            }
            (MdnMode::Async, _) => {
                sent.push((c, report["message_id"].as_str().unwrap().to_string()))
            }
            (MdnMode::None, _) => {}
        }
    }
    for (c, message_id) in &sent {
        let e = partner.wait_event(&c.partner, Duration::from_secs(30), |e| {
            e["kind"] == "mdn" && e["original"] == message_id.as_str()
        });
        assert!(e["error"].is_null(), "{}: {e}", c.partner);
        assert_eq!(e["signed"], c.signed_mdn, "{}: {e}", c.partner);
        assert_eq!(e["mic_check"], "match", "{}: {e}", c.partner);
    }
    let records = wait_for(&ra, "every case received", Duration::from_secs(30), |rs| {
        inbound(rs).len() == cases.len()
    });
    let inb = inbound(&records);
    for (n, c) in cases.iter().enumerate() {
        let r = record_for(&inb, &c.partner);
        assert_eq!(
            r.status,
            Status::Received,
            "{}: {:#?}",
            c.partner,
            r.history
        );
        assert_eq!(r.filename, c.name, "{}", c.partner);
        let got = std::fs::read(a.config.data_dir.join(r.payload_key.as_ref().unwrap())).unwrap();
        assert_same(&got, &c.payload.bytes(1000 + n), &c.partner);
    }
    ra.stop();
}

#[track_caller]
fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: {} bytes, {} expected, first difference at {at:?}",
            got.len(),
            want.len()
        );
    }
}
