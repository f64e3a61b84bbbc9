//! Keys and certificates from files made by other tools: `keytool` JKS and PKCS#12 keystores with
//! several aliases (key entries and trusted certificates), and `openssl` PEM, DER and PKCS#12.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use as2::algorithm::{DigestAlgorithm, SignatureScheme};
use as2::envelope::Envelope;
use as2::keys::{load_certificates, load_private_key, Identity, Keystore, KeystoreFormat};
use as2::message::{self, Encryption, MessageOptions, Payload, Signing};
use as2::receive::{Policy, StaticKeys};
use as2::{Error, UnixTime};
use common::*;

const STORE_PASS: &str = "St0re-Secret";
const KEY_PASS: &str = "K3y-Secret";

fn keytool(dir: &Path, args: &[&str]) {
    run_bounded(
        Command::new("keytool").current_dir(dir).args(args),
        Duration::from_secs(120),
    );
}

fn openssl_in(dir: &Path, args: &[&str]) -> std::process::Output {
    run_bounded(
        Command::new("openssl").current_dir(dir).args(args),
        Duration::from_secs(60),
    )
}

fn genkey(
    dir: &Path,
    store: &str,
    storetype: &str,
    alias: &str,
    cn: &str,
    keyalg: &str,
    keypass: &str,
) {
    keytool(
        dir,
        &[
            "-genkeypair",
            "-alias",
            alias,
            "-keyalg",
            keyalg,
            "-dname",
            &format!("CN={cn}"),
            "-validity",
            "30",
            "-storetype",
            storetype,
            "-keystore",
            store,
            "-storepass",
            STORE_PASS,
            "-keypass",
            keypass,
        ],
    );
}

fn export(dir: &Path, store: &str, alias: &str, out: &str) {
    keytool(
        dir,
        &[
            "-exportcert",
            "-rfc",
            "-alias",
            alias,
            "-keystore",
            store,
            "-storepass",
            STORE_PASS,
            "-file",
            out,
        ],
    );
}

fn import_trusted(dir: &Path, store: &str, storetype: &str, alias: &str, file: &str) {
    keytool(
        dir,
        &[
            "-importcert",
            "-noprompt",
            "-alias",
            alias,
            "-file",
            file,
            "-storetype",
            storetype,
            "-keystore",
            store,
            "-storepass",
            STORE_PASS,
        ],
    );
}

/// A message signed with `signer` and encrypted for `recipient_cert`, opened with `recipient`.
fn exchange(
    signer: &Identity,
    recipient: &Identity,
    signer_cert_seen_by_receiver: &openssl::x509::X509,
) {
    let now = UnixTime::from_system(std::time::SystemTime::now());
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    let mut s = Signing::new(signer.clone());
    s.digest = DigestAlgorithm::Sha256;
    s.scheme = if signer.private_key.id() == openssl::pkey::Id::EC {
        SignatureScheme::Ecdsa
    } else {
        SignatureScheme::RsaPkcs1v15
    };
    opts.signing = Some(s);
    if recipient.private_key.id() == openssl::pkey::Id::RSA {
        opts.encryption = Some(Encryption::new(recipient.certificate.clone()));
    }
    let msg = message::build(
        &opts,
        &Payload::new(b"UNB+UNOA:1'", Some("x.edi")),
        "<k@x>",
        now,
    )
    .unwrap();
    let env = Envelope::from_headers(&msg.headers).unwrap();
    let keys = StaticKeys {
        identities: vec![recipient.clone()],
        partner_certificates: vec![signer_cert_seen_by_receiver.clone()],
    };
    let got = open_both(
        &env,
        &msg.headers,
        &msg.body,
        &keys,
        &Policy {
            require_signature: true,
            ..Policy::default()
        },
        now,
    )
    .unwrap();
    assert_eq!(got.payload, b"UNB+UNOA:1'");
}

fn check_keystore(storetype: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ext = if storetype == "JKS" { "jks" } else { "p12" };
    let identity = format!("identity.{ext}");
    let trust = format!("trust.{ext}");
    // PKCS#12 has one password for the whole file; JKS keys may have their own.
    let keypass = if storetype == "JKS" {
        KEY_PASS
    } else {
        STORE_PASS
    };
    genkey(dir, &identity, storetype, "alpha", "ALPHA", "RSA", keypass);
    genkey(
        dir,
        &identity,
        storetype,
        "alpha-2027",
        "ALPHA",
        "RSA",
        keypass,
    );
    genkey(
        dir,
        &identity,
        storetype,
        "ec-station",
        "GAMMA",
        "EC",
        keypass,
    );
    genkey(
        dir,
        "partner.p12",
        "PKCS12",
        "beta",
        "BETA",
        "RSA",
        STORE_PASS,
    );
    export(dir, &identity, "alpha", "alpha.pem");
    export(dir, "partner.p12", "beta", "beta.pem");
    import_trusted(dir, &trust, storetype, "beta", "beta.pem");
    import_trusted(dir, &trust, storetype, "alpha-self", "alpha.pem");

    let data = std::fs::read(dir.join(&identity)).unwrap();
    let expected = if storetype == "JKS" {
        KeystoreFormat::Jks
    } else {
        KeystoreFormat::Pkcs12
    };
    assert_eq!(Keystore::detect(&data).unwrap(), expected);
    let ks = Keystore::load(&data, STORE_PASS, Some(keypass)).unwrap();
    let mut aliases: Vec<_> = ks
        .entries()
        .iter()
        .map(|e| e.alias.to_lowercase())
        .collect();
    aliases.sort();
    assert_eq!(
        aliases,
        vec!["alpha", "alpha-2027", "ec-station"],
        "{storetype}"
    );
    assert!(ks.entries().iter().all(|e| e.has_private_key()));
    let alpha = ks.identity("alpha").unwrap();
    let alpha_pem = load_certificates(&std::fs::read(dir.join("alpha.pem")).unwrap()).unwrap();
    assert_eq!(
        alpha.certificate.to_der().unwrap(),
        alpha_pem[0].to_der().unwrap(),
        "keytool's exported cert is ours"
    );
    assert_ne!(
        ks.identity("alpha-2027")
            .unwrap()
            .certificate
            .to_der()
            .unwrap(),
        alpha.certificate.to_der().unwrap()
    );

    let trust_ks =
        Keystore::load(&std::fs::read(dir.join(&trust)).unwrap(), STORE_PASS, None).unwrap();
    let beta_cert = trust_ks.certificate("beta").unwrap();
    assert!(!trust_ks.entry("beta").unwrap().has_private_key());
    assert!(trust_ks.entry("alpha-self").is_some());
    let beta = Keystore::load(
        &std::fs::read(dir.join("partner.p12")).unwrap(),
        STORE_PASS,
        None,
    )
    .unwrap()
    .identity("beta")
    .unwrap();
    assert_eq!(
        beta.certificate.to_der().unwrap(),
        beta_cert.to_der().unwrap()
    );

    // Keys from keytool sign and decrypt real messages, both ways, and an EC key signs.
    exchange(&alpha, &beta, &alpha_pem[0]);
    exchange(&beta, &alpha, &beta_cert);
    let ec = ks.identity("ec-station").unwrap();
    exchange(&ec, &beta, &ec.certificate);

    // Wrong passwords: a typed error that never repeats the password.
    for (store_pw, key_pw) in [
        ("Wr0ng-Store", Some(keypass)),
        (STORE_PASS, Some("Wr0ng-Key")),
    ] {
        if storetype != "JKS" && key_pw != Some(keypass) {
            continue;
        }
        let err = Keystore::load(&data, store_pw, key_pw).unwrap_err();
        assert!(matches!(err, Error::Key(_)), "{err}");
        let text = format!("{err} {err:?}");
        assert!(
            !text.contains("Wr0ng") && !text.contains("Secret"),
            "{text}"
        );
    }
    // Truncated keystores fail cleanly.
    for cut in [10, data.len() / 2, data.len() - 1] {
        assert!(Keystore::load(&data[..cut], STORE_PASS, Some(keypass)).is_err());
    }
}

#[test]
fn keytool_jks_keystores() {
    check_keystore("JKS");
}

#[test]
fn keytool_pkcs12_keystores() {
    check_keystore("PKCS12");
}

#[test]
fn openssl_pem_der_and_pkcs12_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let run = |args: &[&str]| {
        openssl_in(dir, args);
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-keyout",
        "enc.key",
        "-passout",
        "pass:PemPass1",
        "-out",
        "c.pem",
        "-subj",
        "/CN=DELTA",
        "-days",
        "3",
    ]);
    run(&[
        "rsa",
        "-in",
        "enc.key",
        "-passin",
        "pass:PemPass1",
        "-traditional",
        "-out",
        "pkcs1.key",
    ]);
    run(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        "enc.key",
        "-passin",
        "pass:PemPass1",
        "-outform",
        "DER",
        "-out",
        "k.der",
    ]);
    run(&["x509", "-in", "c.pem", "-outform", "DER", "-out", "c.der"]);
    run(&[
        "pkcs12",
        "-export",
        "-in",
        "c.pem",
        "-inkey",
        "enc.key",
        "-passin",
        "pass:PemPass1",
        "-name",
        "delta",
        "-passout",
        "pass:P12Pass1",
        "-out",
        "c.p12",
    ]);
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let pem_cert = &load_certificates(&read("c.pem")).unwrap()[0];
    let der_cert = &load_certificates(&read("c.der")).unwrap()[0];
    assert_eq!(pem_cert.to_der().unwrap(), der_cert.to_der().unwrap());
    for (key, pass) in [
        ("enc.key", Some("PemPass1")),
        ("pkcs1.key", None),
        ("k.der", None),
    ] {
        let k = load_private_key(&read(key), pass).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert!(Identity::new(pem_cert.clone(), k, vec![]).is_ok(), "{key}");
    }
    assert!(load_private_key(&read("enc.key"), Some("nope")).is_err());
    let no_pass = load_private_key(&read("enc.key"), None)
        .unwrap_err()
        .to_string();
    assert!(no_pass.contains("encrypted"), "{no_pass}");
    let p12 = Keystore::load(&read("c.p12"), "P12Pass1", None).unwrap();
    let id = p12.identity("delta").unwrap();
    assert_eq!(id.certificate.to_der().unwrap(), der_cert.to_der().unwrap());
    exchange(&id, &id, der_cert);
}

#[test]
fn jks_we_write_is_read_by_keytool_and_by_us() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut ks = Keystore::new();
    ks.set_identity("Alpha", alpha());
    ks.set_identity("alpha-2027", beta());
    ks.set_certificate("partner-beta", &beta().certificate);
    ks.set_identity("alpha", alpha()); // replacing keeps one entry per alias
    let bytes = ks.to_jks(STORE_PASS, NOW).unwrap();
    std::fs::write(dir.join("identity.jks"), &bytes).unwrap();
    let out = run_bounded(
        Command::new("keytool")
            .args(["-list", "-v", "-storetype", "JKS", "-keystore"])
            .arg(dir.join("identity.jks"))
            .args(["-storepass", STORE_PASS]),
        Duration::from_secs(60),
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("Your keystore contains 3 entries"),
        "{listing}"
    );
    assert_eq!(
        listing.matches("Entry type: PrivateKeyEntry").count(),
        2,
        "{listing}"
    );
    assert!(listing.contains("Entry type: trustedCertEntry"));
    // keytool can take the key out again: the key protection is Sun's, not just parseable.
    keytool(
        dir,
        &[
            "-exportcert",
            "-rfc",
            "-alias",
            "alpha",
            "-keystore",
            "identity.jks",
            "-storepass",
            STORE_PASS,
            "-file",
            "a.pem",
        ],
    );
    keytool(
        dir,
        &[
            "-importkeystore",
            "-srckeystore",
            "identity.jks",
            "-srcstoretype",
            "JKS",
            "-srcstorepass",
            STORE_PASS,
            "-destkeystore",
            "copy.p12",
            "-deststoretype",
            "PKCS12",
            "-deststorepass",
            STORE_PASS,
            "-noprompt",
        ],
    );
    let p12 = Keystore::load(
        &std::fs::read(dir.join("copy.p12")).unwrap(),
        STORE_PASS,
        None,
    )
    .unwrap();
    assert_eq!(
        p12.identity("alpha")
            .unwrap()
            .private_key
            .private_key_to_pkcs8()
            .unwrap(),
        alpha().private_key.private_key_to_pkcs8().unwrap()
    );
    let back = Keystore::load(&bytes, STORE_PASS, None).unwrap();
    assert_eq!(back.entries().len(), 3);
    assert!(back.identity("ALPHA").is_ok());
    assert!(Keystore::load(&bytes, "Wrong-Pass", None).is_err());
}

/// PKCS#12 as older tools write it: certificates under pbeWithSHA1And40BitRC2-CBC, the key under
/// 3DES (Java keytool before 8u301, Windows exports; `openssl pkcs12 -legacy` and keytool's
/// `keystore.pkcs12.legacy` write the same). OpenSSL 3 opens these only with its legacy provider.
#[test]
fn legacy_pkcs12_from_old_keytool_and_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let openssl = |args: &[&str]| openssl_in(dir, args);
    testkit::legacy_keytool_pkcs12(dir, "old.p12", "old-java", "OLDJAVA", STORE_PASS);
    let (crt, key) = write_pem(dir, "alpha", alpha());
    openssl(&[
        "pkcs12",
        "-export",
        "-legacy",
        "-in",
        crt.to_str().unwrap(),
        "-inkey",
        key.to_str().unwrap(),
        "-name",
        "windows-export",
        "-passout",
        &format!("pass:{STORE_PASS}"),
        "-out",
        "win.pfx",
    ]);
    for (file, alias, cn) in [
        ("old.p12", "old-java", "OLDJAVA"),
        ("win.pfx", "windows-export", "ALPHA"),
    ] {
        let data = std::fs::read(dir.join(file)).unwrap();
        // What the file holds, as openssl itself reports it.
        let info = openssl(&[
            "pkcs12",
            "-info",
            "-noout",
            "-legacy",
            "-in",
            file,
            "-passin",
            &format!("pass:{STORE_PASS}"),
        ]);
        let info = String::from_utf8_lossy(&info.stderr).into_owned()
            + &String::from_utf8_lossy(&info.stdout);
        assert!(
            info.contains("pbeWithSHA1And40BitRC2-CBC"),
            "{file}: {info}"
        );
        let ks = Keystore::load(&data, STORE_PASS, None).unwrap_or_else(|e| panic!("{file}: {e}"));
        let id = ks.identity(alias).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            as2::keys::subject_name(&id.certificate).contains(cn),
            "{file}"
        );
        exchange(&id, &id, &id.certificate);

        // A wrong password is told apart from a protection we cannot open.
        let e = Keystore::load(&data, "not-the-password", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("wrong password"), "{file}: {e}");
        assert!(!e.contains(STORE_PASS), "{e}");
    }

    // RC4, which nothing here decrypts: the error names the protection found.
    openssl(&[
        "pkcs12",
        "-export",
        "-legacy",
        "-certpbe",
        "PBE-SHA1-RC4-128",
        "-keypbe",
        "PBE-SHA1-3DES",
        "-in",
        crt.to_str().unwrap(),
        "-inkey",
        key.to_str().unwrap(),
        "-passout",
        &format!("pass:{STORE_PASS}"),
        "-out",
        "rc4.p12",
    ]);
    let e = Keystore::load(
        &std::fs::read(dir.join("rc4.p12")).unwrap(),
        STORE_PASS,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("unsupported protection")
            && e.contains("certificates under pbeWithSHA1And128BitRC4")
            && e.contains("key under pbeWithSHA1And3-KeyTripleDES-CBC"),
        "{e}"
    );
}
