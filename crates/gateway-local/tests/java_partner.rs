//! The embedded gateway trading with a BouncyCastle partner (tests/interop/java/As2Partner.java:
//! BouncyCastle and JavaMail, as OpenAS2 and Mendelson are built) over HTTP, both ways, over the
//! whole matrix of `common::matrix`. The partner checks every MIC of ours the way OpenAS2 does
//! (algorithm, then value, as strings).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::time::Duration;

use as2::message::Compression;
use common::matrix::*;
use common::*;
use gateway::model::{MdnMode, Status};
use testkit::java::{self, JavaPartner};

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
    assert_every_case_received(&ra, &a, &cases);
    ra.stop();
}
