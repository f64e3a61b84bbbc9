//! The console in a real browser (tests/console/browser.py: Selenium driving Debian's headless
//! Chromium) over ALPHA's data directory after a real exchange with BETA: a message that failed
//! while BETA was down, two delivered ones (one with HTML in its file name), and a partner whose
//! certificate has expired. Screenshots of each page go to target/console-screenshots/.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::process::Command;

use common::{
    add_gamma_args, console, failed_while_beta_down, mftg, send_to_beta, serve, wait_for,
};
use gateway::model::Status;

/// A self-signed certificate that ended a month ago.
fn expired_certificate(path: &std::path::Path) {
    use openssl::asn1::Asn1Time;
    use openssl::x509::{X509Builder, X509NameBuilder};
    let key = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "GAMMA").unwrap();
    let name = name.build();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let serial = openssl::bn::BigNum::from_u32(7)
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::from_unix(now - 400 * 86_400).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(now - 30 * 86_400).unwrap())
        .unwrap();
    b.sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    std::fs::write(path, b.build().to_pem().unwrap()).unwrap();
}

#[test]
fn the_console_in_a_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let (alpha, beta, _alpha, failed) = failed_while_beta_down(tmp.path(), "po-lost.x12");
    let _beta = serve(&beta, None);
    let html_name = "po-<img src=x onerror=alert(1)>.x12";
    for (name, body) in [("po-good.x12", "ISA*00*GOOD~"), (html_name, "ISA*00*HTML~")] {
        let f = tmp.path().join(name);
        std::fs::write(&f, body).unwrap();
        send_to_beta(&alpha, &f);
    }
    let records = wait_for(&alpha, "both delivered", |rs| {
        rs.iter().filter(|r| r.status == Status::Delivered).count() == 2
    });
    let delivered = records
        .iter()
        .find(|r| r.filename == "po-good.x12")
        .unwrap();

    let gamma = tmp.path().join("gamma.crt");
    expired_certificate(&gamma);
    mftg(
        &alpha,
        &[
            "keys",
            "trust",
            "--alias",
            "gamma",
            "--force",
            "--cert",
            gamma.to_str().unwrap(),
        ],
    );
    mftg(&alpha, &add_gamma_args("gamma"));

    let c = console(&alpha);
    let facts = tmp.path().join("facts.json");
    std::fs::write(
        &facts,
        serde_json::json!({
            "failed": failed.id,
            "delivered": delivered.id,
            "html_name": html_name,
            "expired_partner": "GAMMA",
        })
        .to_string(),
    )
    .unwrap();
    let shots = testkit::repo_root().join("target/console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let (code, out) = testkit::run(
        Command::new(testkit::python())
            .arg(testkit::repo_root().join("tests/console/browser.py"))
            .arg(format!("http://127.0.0.1:{}", c.port))
            .arg(&c.token)
            .arg(&shots)
            .arg(&facts)
            .env("SE_OFFLINE", "true"),
    );
    assert_eq!(
        code,
        0,
        "{out}\nconsole log: {}",
        std::fs::read_to_string(alpha.config.with_file_name("console.log")).unwrap_or_default()
    );
    assert!(!out.contains(&c.token), "the token was printed");
    for page in [
        "login",
        "dashboard",
        "messages",
        "messages-failed",
        "message",
        "resent",
        "partners",
        "queue",
    ] {
        let f = shots.join(format!("{page}.png"));
        assert!(
            std::fs::metadata(&f).is_ok_and(|m| m.len() > 1000),
            "no screenshot {}",
            f.display()
        );
    }
    // The browser's resend delivered the failed message once, with its Message-ID.
    let resent = common::records(&alpha)
        .into_iter()
        .find(|r| r.id == failed.id)
        .unwrap();
    assert_eq!(resent.status, Status::Delivered);
    assert_eq!(
        common::records(&beta)
            .iter()
            .filter(|r| r.message_id == failed.message_id)
            .count(),
        1
    );
}
