//! The embedded gateway's HTTPS listener: TLS 1.2 and 1.3 only, the key of `https.jks`, AS2 over
//! it with the BouncyCastle partner and pyas2lib both ways, partners' TLS client certificates,
//! and the errors of a keystore without a key and of a partner certificate not trusted.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::time::Duration;

use as2::keys::Identity;
use common::*;
use gateway::layout::keystore as ks;
use gateway::model::{MdnMode, Status};
use testkit::java::{self, JavaPartner};
use testkit::pyas2::{self, Pyas2Partner};

fn pem(id: &Identity) -> (Vec<u8>, Vec<u8>) {
    (
        id.certificate.to_pem().unwrap(),
        id.private_key.private_key_to_pem_pkcs8().unwrap(),
    )
}

fn edi(n: u32) -> Vec<u8> {
    format!("ISA*00*          *00*          *ZZ*ALPHA*ZZ*PARTNER*{n:09}~\r\nST*850*0001~\r\nSE*2*0001~\r\n")
        .into_bytes()
}

/// `openssl s_client` against the listener with `args`; what it printed, and whether a
/// session was set up.
fn s_client(port: u16, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-brief",
        ])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (text.contains("CONNECTION ESTABLISHED"), text)
}

#[test]
fn tls_1_2_and_1_3_only_and_a_keystore_without_a_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (port, tls_port) = (free_port(), free_port());
    let mut a = site(
        tmp.path(),
        "ALPHA",
        port,
        "BETA",
        "http://127.0.0.1:9/as2".into(),
        &identity("BETA").certificate,
        &|_| {},
    );
    with_https(&mut a, tls_port);
    let ra = Running::start(&a);
    let mut tries = 0;
    while std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_err() && tries < 50 {
        std::thread::sleep(Duration::from_millis(100));
        tries += 1;
    }
    for (version, flag) in [("TLSv1.2", "-tls1_2"), ("TLSv1.3", "-tls1_3")] {
        let (ok, out) = s_client(tls_port, &[flag]);
        assert!(
            ok && out.contains(&format!("Protocol version: {version}")),
            "{out}"
        );
    }
    // TLS 1.1 (and what came before), offered by a client that allows it, is refused.
    let (ok, out) = s_client(tls_port, &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]);
    assert!(!ok, "TLS 1.1 accepted: {out}");
    ra.stop();

    // https.jks with a certificate but no key: the listener does not start, and says why.
    let mut b = site(
        &tmp.path().join("b"),
        "ALPHA",
        free_port(),
        "BETA",
        "http://127.0.0.1:9/as2".into(),
        &identity("BETA").certificate,
        &|_| {},
    );
    with_https(&mut b, free_port());
    edit_keystore(&b, ks::HTTPS, |k| {
        k.remove("https");
        k.set_certificate("someone", &identity("BETA").certificate);
    });
    let node = std::sync::Arc::new(gateway_local::Node::open(b.config.clone()).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = rt
        .block_on(node.https_acceptor())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("HTTPS listener") && e.contains("holds no private key"),
        "{e}"
    );
    // A wrong keystore password says so, without the password.
    std::env::set_var("MFTG_HTTPS_TEST_WRONG", "Not-The-Password-7");
    let mut wrong = b.config.clone();
    wrong.keystore_password_env = "MFTG_HTTPS_TEST_WRONG".into();
    edit_keystore(&b, ks::HTTPS, |k| {
        k.set_identity("https", tls_identity("ALPHA"))
    });
    let node = std::sync::Arc::new(gateway_local::Node::open(wrong).unwrap());
    let e = rt
        .block_on(node.https_acceptor())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("https.jks") && !e.contains("Not-The-Password-7"),
        "{e}"
    );
}

#[test]
fn as2_over_https_with_bouncycastle_and_pyas2lib_both_ways() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (port, tls_port, java_port, py_port) = (free_port(), free_port(), free_port(), free_port());
    let java_url = format!("https://127.0.0.1:{java_port}/as2");
    let our_https = format!("https://127.0.0.1:{tls_port}/as2");
    let mut a = site(
        root,
        "ALPHA",
        port,
        "JAVA",
        java_url.clone(),
        &identity("JAVA").certificate,
        &|p| p.tls.ca_alias = Some("java-tls".into()),
    );
    with_https(&mut a, tls_port);
    // Partners POST asynchronous receipts over HTTPS too.
    a.config.stations[0].mdn_url = Some(our_https.clone());
    edit_keystore(&a, ks::HTTPS, |k| {
        k.set_certificate("java-tls", &tls_identity("JAVA").certificate)
    });
    edit_keystore(&a, ks::TRUST, |k| {
        k.set_certificate("pyas2", &identity("PYAS2").certificate)
    });
    let template = a.config.partnerships[0].clone();
    let mut async_java = template.clone();
    async_java.partner = "JAVA-ASYNC".into();
    async_java.mdn = MdnMode::Async;
    let mut untrusted = template.clone();
    untrusted.partner = "JAVA-UNTRUSTED".into();
    untrusted.tls.ca_alias = None;
    untrusted.retry = Some(quick_retries(1));
    let mut py = template.clone();
    py.partner = "PYAS2".into();
    py.certificate_alias = "pyas2".into();
    py.url = format!("http://127.0.0.1:{py_port}/as2");
    a.config.partnerships.extend([async_java, untrusted, py]);

    let alpha_cert = identity("ALPHA").certificate.to_pem().unwrap();
    let alpha_tls = tls_identity("ALPHA").certificate.to_pem().unwrap();
    let (java_cert, java_key) = pem(identity("JAVA"));
    let (java_tls_cert, java_tls_key) = pem(tls_identity("JAVA"));
    let partner = JavaPartner::start(
        &root.join("java"),
        (&java_cert, &java_key),
        java_port,
        &java::Station {
            as2_id: "ALPHA",
            cert_pem: &alpha_cert,
            url: &our_https,
        },
        &java::Tls {
            serve_https: Some((&java_tls_cert, &java_tls_key)),
            trust_pem: Some(&alpha_tls),
            client: None,
        },
    );
    let (py_cert, py_key) = pem(identity("PYAS2"));
    let py_dir = root.join("pyas2");
    let pyas2 = Pyas2Partner::start(
        &py_dir,
        "PYAS2",
        (&py_cert, &py_key),
        py_port,
        &pyas2::Station {
            as2_id: "ALPHA",
            cert_pem: &alpha_cert,
            url: &our_https,
            trust_pem: Some(&alpha_tls),
        },
        "SYNC",
    );
    let ra = Running::start(&a);

    // ALPHA -> the Java partner's HTTPS endpoint, sync and async receipts; and to one whose TLS
    // certificate ALPHA does not trust.
    for (n, partner) in ["JAVA", "JAVA-ASYNC", "JAVA-UNTRUSTED"].iter().enumerate() {
        drop_file_to(&a, partner, "po.x12", &edi(n as u32));
    }
    let records = wait_for(&ra, "sent over HTTPS", Duration::from_secs(60), |rs| {
        outbound(rs).len() == 3 && outbound(rs).iter().all(|r| r.status.is_final())
    });
    for r in outbound(&records) {
        if r.partner == "JAVA-UNTRUSTED" {
            assert_eq!(r.status, Status::Failed, "{:#?}", r.history);
            let why = r.last_detail().unwrap();
            assert!(
                why.contains("TLS certificate was refused") && why.contains("self-signed"),
                "{why}"
            );
        } else {
            assert_eq!(
                r.status,
                Status::Delivered,
                "{}: {:#?}",
                r.partner,
                r.history
            );
            assert_eq!(r.mdn.as_ref().unwrap().mic, "matches", "{}", r.partner);
        }
    }
    // Each of ALPHA's two messages processed (one POSTed again after a timeout on a loaded
    // machine counts once: it keeps its Message-ID, and the partner's repeat is its own).
    let processed: std::collections::BTreeSet<String> = partner
        .events()
        .iter()
        .filter(|e| e["kind"] == "message" && e["status"] == "processed")
        .map(|e| {
            e["message_id"]
                .as_str()
                .unwrap()
                .trim_matches(['<', '>'])
                .to_string()
        })
        .collect();
    let ours: std::collections::BTreeSet<String> = outbound(&records)
        .iter()
        .filter(|r| r.status == Status::Delivered)
        .map(|r| r.message_id.trim_matches(['<', '>']).to_string())
        .collect();
    assert_eq!(processed, ours);
    assert_eq!(ours.len(), 2);

    // The Java partner and pyas2lib -> ALPHA's HTTPS endpoint; both check our receipts.
    let file = root.join("asn.x12");
    std::fs::write(&file, edi(7)).unwrap();
    for (from, mdn) in [("JAVA", "sync"), ("JAVA-ASYNC", "async")] {
        let report = partner.send(&[
            ("file", file.display().to_string()),
            ("as2_from", from.to_string()),
            ("compress", "before-signing".to_string()),
            ("mdn", mdn.to_string()),
        ]);
        assert_eq!(report["http"], 200, "{report}");
        if mdn == "sync" {
            assert_eq!(report["mdn"]["mic_check"], "match", "{report}");
        } else {
            let id = report["message_id"].as_str().unwrap().to_string();
            let e = partner.wait_event("async receipt over HTTPS", Duration::from_secs(30), |e| {
                e["kind"] == "mdn" && e["original"] == id.as_str()
            });
            assert_eq!(e["mic_check"], "match", "{e}");
        }
    }
    let result = pyas2.send(&file);
    assert_eq!(result["mdn_status"], "processed", "{result}");
    let records = wait_for(&ra, "received over HTTPS", Duration::from_secs(20), |rs| {
        inbound(rs).len() == 3
    });
    for r in inbound(&records) {
        assert_eq!(
            r.status,
            Status::Received,
            "{}: {:#?}",
            r.partner,
            r.history
        );
        assert_eq!(
            std::fs::read(a.config.data_dir.join(r.payload_key.as_ref().unwrap())).unwrap(),
            edi(7)
        );
    }
    ra.stop();
}

/// POSTs a plain AS2 message from `from` to ALPHA at `url` (over HTTPS trusting ALPHA's TLS
/// certificate, presenting `client` if given); returns the HTTP status and body.
fn post_as(url: &str, from: &str, client: Option<&Identity>) -> (u16, String) {
    let m = as2::message::build(
        &as2::message::MessageOptions::new(from, "ALPHA"),
        &as2::message::Payload::new(b"ISA*00~\r\n", Some("x.x12")),
        &as2::envelope::new_message_id("test", as2::UnixTime(1_800_000_000)),
        as2::UnixTime(1_800_000_000),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ca =
            reqwest::Certificate::from_pem(&tls_identity("ALPHA").certificate.to_pem().unwrap())
                .unwrap();
        let mut b = reqwest::Client::builder().add_root_certificate(ca);
        if let Some(id) = client {
            let (c, k) = pem(id);
            b = b.identity(reqwest::Identity::from_pkcs8_pem(&c, &k).unwrap());
        }
        let mut req = b.build().unwrap().post(url);
        for h in m.headers.iter() {
            req = req.header(h.name.as_str(), h.value.as_str());
        }
        let r = req.body(m.body).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

#[test]
fn partners_tls_client_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (port, tls_port, java_port) = (free_port(), free_port(), free_port());
    let our_https = format!("https://127.0.0.1:{tls_port}/as2");
    let mut a = site(
        root,
        "ALPHA",
        port,
        "JAVA",
        format!("http://127.0.0.1:{java_port}/as2"),
        &identity("JAVA").certificate,
        &|p| p.client_certificate_alias = Some("java-client".into()),
    );
    with_https(&mut a, tls_port);
    let java_client =
        Identity::generate_self_signed("JAVA client", 2048, as2::UnixTime(1_700_000_000), 3650)
            .unwrap();
    let stranger =
        Identity::generate_self_signed("STRANGER", 2048, as2::UnixTime(1_700_000_000), 3650)
            .unwrap();
    // Valid for one day, long ago.
    let expired =
        Identity::generate_self_signed("EXPIRED client", 2048, as2::UnixTime(1_600_000_000), 1)
            .unwrap();
    edit_keystore(&a, ks::HTTPS, |k| {
        k.set_certificate("java-client", &java_client.certificate);
        k.set_certificate("expired-client", &expired.certificate);
    });
    let mut old = a.config.partnerships[0].clone();
    old.partner = "OLD".into();
    old.client_certificate_alias = Some("expired-client".into());
    let mut open = a.config.partnerships[0].clone();
    open.partner = "OPEN".into();
    open.client_certificate_alias = None;
    a.config.partnerships.extend([old, open]);
    let ra = Running::start(&a);

    // The Java partner presents its client certificate: accepted.
    let alpha_cert = identity("ALPHA").certificate.to_pem().unwrap();
    let alpha_tls = tls_identity("ALPHA").certificate.to_pem().unwrap();
    let (java_cert, java_key) = pem(identity("JAVA"));
    let (client_cert, client_key) = pem(&java_client);
    let partner = JavaPartner::start(
        &root.join("java"),
        (&java_cert, &java_key),
        java_port,
        &java::Station {
            as2_id: "ALPHA",
            cert_pem: &alpha_cert,
            url: &our_https,
        },
        &java::Tls {
            serve_https: None,
            trust_pem: Some(&alpha_tls),
            client: Some((&client_cert, &client_key)),
        },
    );
    let file = root.join("po.x12");
    std::fs::write(&file, edi(1)).unwrap();
    let report = partner.send(&[
        ("file", file.display().to_string()),
        ("as2_from", "JAVA".to_string()),
    ]);
    assert_eq!(report["mdn"]["mic_check"], "match", "{report}");

    // Without it, with another, or with the right one out of date: refused, and nothing stored
    // but the refused request.
    for (from, client, want) in [
        ("JAVA", None, "none was presented"),
        (
            "JAVA",
            Some(&stranger),
            "(CN=STRANGER) is not partner JAVA's",
        ),
        ("OLD", Some(&expired), "not valid now"),
    ] {
        let (status, body) = post_as(&our_https, from, client);
        assert_eq!(status, 403, "{from}: {body}");
        assert!(body.contains(want), "{from}: {body}");
    }
    // Over plain HTTP there is no client certificate at all.
    let plain = post_as(&format!("http://127.0.0.1:{port}/as2"), "JAVA", None);
    assert_eq!(plain.0, 403, "{}", plain.1);
    // A partnership that names none takes messages with or without one.
    assert_eq!(post_as(&our_https, "OPEN", None).0, 200);
    assert_eq!(post_as(&our_https, "OPEN", Some(&stranger)).0, 200);
    let records = ra.records();
    assert_eq!(
        inbound(&records)
            .iter()
            .map(|r| r.partner.as_str())
            .collect::<std::collections::BTreeSet<_>>(),
        ["JAVA", "OPEN"].into_iter().collect(),
        "{records:#?}"
    );
    ra.stop();
}
