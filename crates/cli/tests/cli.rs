//! The `mftg` binary, run as a user would.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;
use std::process::Command;

use as2::keys::Identity;
use as2::message::{self, MessageOptions, Payload, Signing};
use as2::UnixTime;
use testkit::field;

fn mftg(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    testkit::run(
        Command::new(env!("CARGO_BIN_EXE_mftg"))
            .args(args)
            .envs(env.iter().copied()),
    )
}

fn p(dir: &Path, f: &str) -> String {
    dir.join(f).to_str().unwrap().to_string()
}

#[test]
fn demo_then_messages_keys_and_inspect() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pw = [("MFTG_DEMO_KEYSTORE_PASSWORD", "Demo-Keystore-1")];
    let (code, out) = mftg(&["demo", "--dir", d.to_str().unwrap()], &pw);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("All files delivered with verified receipts"),
        "{out}"
    );
    assert_eq!(
        out.matches("(signed receipt: processed, MIC matches)")
            .count(),
        3,
        "{out}"
    );

    let alpha = [
        ("MFTG_CONFIG", p(d, "alpha/mftg.toml")),
        ("MFTG_DEMO_KEYSTORE_PASSWORD", "Demo-Keystore-1".into()),
    ];
    let alpha: Vec<(&str, &str)> = alpha.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, out) = mftg(&["messages", "list"], &alpha);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches(" delivered ").count(), 2, "{out}");
    assert_eq!(out.matches(" received ").count(), 1, "{out}");
    let (code, out) = mftg(&["keys", "list"], &alpha);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("key  alpha") && out.contains("cert beta"),
        "{out}"
    );
    let (_, alpha_pem) = mftg(&["keys", "export", "--alias", "alpha"], &alpha);
    std::fs::write(d.join("alpha.crt"), &alpha_pem).unwrap();
    let beta_cfg = p(d, "beta/mftg.toml");
    let (_, beta_pem) = mftg(
        &["keys", "export", "--alias", "beta", "--config", &beta_cfg],
        &pw,
    );
    std::fs::write(d.join("beta.crt"), &beta_pem).unwrap();

    // BETA's copy of ALPHA's first order, as received: stored body and headers, opened with
    // BETA's keystore.
    let inbox = d.join("beta/data/AS2/raw-message/BETA/ALPHA/inbox");
    let folders: Vec<_> = std::fs::read_dir(&inbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(folders.len(), 2);
    let dir = folders.iter().find(|f| {
        let payload = d
            .join("beta/data/AS2/files/BETA/ALPHA/inbox")
            .join(f.file_name().unwrap());
        payload.join("po-1001.x12").exists()
    });
    let folder = dir
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let body = p(
        d,
        &format!("beta/data/AS2/raw-message/BETA/ALPHA/inbox/{folder}/message.bin"),
    );
    let headers = p(
        d,
        &format!("beta/data/AS2/headers/BETA/ALPHA/inbox/{folder}/headers.txt"),
    );
    let keystore = p(d, "beta/data/AS2/keystore/identity.jks");
    let args = [
        "inspect",
        &body,
        "--headers",
        &headers,
        "--keystore",
        &keystore,
        "--keystore-password-env",
        "MFTG_DEMO_KEYSTORE_PASSWORD",
    ];
    let (code, out) = mftg(
        &[&args[..], &["--partner-cert", &p(d, "alpha.crt")]].concat(),
        &pw,
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(field(&out, "from"), "ALPHA");
    assert_eq!(field(&out, "filename"), "po-1001.x12");
    assert!(
        field(&out, "layer 1").starts_with("encrypted (aes256-cbc"),
        "{out}"
    );
    assert!(
        field(&out, "layer 2").starts_with("signed (sha-256"),
        "{out}"
    );
    assert_eq!(field(&out, "layer 3"), "compressed (zlib)");
    assert_eq!(field(&out, "verification"), "signature verified");
    let mic = field(&out, "mic").to_string();

    // The wrong partner certificate: the signature fails, the rest is still shown.
    let (code, out) = mftg(
        &[&args[..], &["--partner-cert", &p(d, "beta.crt")]].concat(),
        &pw,
    );
    assert_eq!(code, 1, "{out}");
    assert!(field(&out, "verification").starts_with("FAILED"), "{out}");
    assert_eq!(
        field(&out, "disposition"),
        "processed/error: authentication-failed"
    );
    assert_eq!(field(&out, "filename"), "po-1001.x12");
    // Without keys it still says what it can.
    let (code, out) = mftg(&["inspect", &body, "--headers", &headers], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(field(&out, "layer 1").contains("aes256-cbc"), "{out}");

    // ALPHA's stored copy of BETA's receipt for it: signature and MIC.
    let receipts: Vec<_> = std::fs::read_dir(d.join("alpha/data/AS2/raw-mdn/incoming"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(receipts.len(), 2);
    let matched = receipts.iter().filter(|r| {
        let (code, out) = mftg(
            &[
                "inspect",
                r.to_str().unwrap(),
                "--partner-cert",
                &p(d, "beta.crt"),
                "--expect-mic",
                &mic,
            ],
            &[],
        );
        code == 0
            && field(&out, "mic check") == "matches"
            && field(&out, "signature").starts_with("verified")
            && field(&out, "verdict") == "delivered: processed"
    });
    assert_eq!(
        matched.count(),
        1,
        "exactly the receipt for po-1001 matches its MIC"
    );
    let (code, out) = mftg(
        &[
            "inspect",
            receipts[0].to_str().unwrap(),
            "--expect-mic",
            "AAAA, sha-256",
        ],
        &[],
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(field(&out, "mic check"), "MISMATCH");
    assert!(
        field(&out, "verdict").starts_with("failed: the receipt's MIC"),
        "{out}"
    );
    assert!(field(&out, "signature").contains("not checked"), "{out}");

    // A wrong keystore password: refused, and no password is ever echoed.
    let (code, out) = mftg(
        &[
            "inspect",
            &body,
            "--headers",
            &headers,
            "--keystore",
            &keystore,
            "--keystore-password-env",
            "KS_PW",
        ],
        &[("KS_PW", "Wrong-Hunter3")],
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("wrong") && !out.contains("Hunter3") && !out.contains("Demo-Keystore"),
        "{out}"
    );
}

#[test]
fn inspect_at_a_given_time() {
    // A partner's capture from last year, signed with a certificate that has since expired.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let signed_at = UnixTime::parse("2025-03-01T10:00:00Z").unwrap();
    let old = Identity::generate_self_signed("ALPHA", 2048, signed_at, 60).unwrap();
    std::fs::write(d.join("old.crt"), old.certificate.to_pem().unwrap()).unwrap();
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    opts.signing = Some(Signing::new(old));
    let m = message::build(
        &opts,
        &Payload::new(b"ISA~", Some("old.x12")),
        "<old@alpha>",
        signed_at,
    )
    .unwrap();
    let mut capture = b"POST /as2 HTTP/1.1\r\n".to_vec();
    capture.extend_from_slice(&m.headers.to_bytes());
    capture.extend_from_slice(b"\r\n");
    capture.extend_from_slice(&m.body);
    std::fs::write(d.join("old.as2"), capture).unwrap();

    let (code, out) = mftg(
        &[
            "inspect",
            &p(d, "old.as2"),
            "--partner-cert",
            &p(d, "old.crt"),
        ],
        &[],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        field(&out, "verification").contains("not valid at the check time"),
        "{out}"
    );
    let (code, out) = mftg(
        &[
            "inspect",
            &p(d, "old.as2"),
            "--partner-cert",
            &p(d, "old.crt"),
            "--at",
            "2025-03-02",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(field(&out, "verification"), "signature verified");
    let (code, out) = mftg(&["inspect", &p(d, "old.as2"), "--at", "last tuesday"], &[]);
    assert_eq!(code, 2, "{out}");
}

#[test]
fn inspect_with_one_pem_holding_the_key_and_its_certificate() {
    // As `openssl req -x509 -nodes` and many partner tools write them: key and certificate (and
    // here a second, unrelated certificate first) in one file.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=BETA", "-days", "3",
        ])
        .arg("-keyout")
        .arg(d.join("beta.key"))
        .arg("-out")
        .arg(d.join("beta.crt"))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let other = Identity::generate_self_signed("OTHER", 2048, UnixTime(1_790_000_000), 10).unwrap();
    let mut bundle = other.certificate.to_pem().unwrap();
    bundle.extend(std::fs::read(d.join("beta.key")).unwrap());
    bundle.extend(std::fs::read(d.join("beta.crt")).unwrap());
    std::fs::write(d.join("beta.pem"), &bundle).unwrap();
    let cert = as2::keys::load_certificates(&std::fs::read(d.join("beta.crt")).unwrap()).unwrap();
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    opts.encryption = Some(message::Encryption::new(cert[0].clone()));
    let m = message::build(
        &opts,
        &Payload::new(b"ISA~", Some("x.x12")),
        "<pem@alpha>",
        UnixTime(1_790_000_000),
    )
    .unwrap();
    let mut capture = m.headers.to_bytes();
    capture.extend_from_slice(b"\r\n");
    capture.extend_from_slice(&m.body);
    std::fs::write(d.join("m.as2"), capture).unwrap();
    let (code, out) = mftg(
        &["inspect", &p(d, "m.as2"), "--key", &p(d, "beta.pem")],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(field(&out, "filename"), "x.x12");
}

#[test]
fn bad_captures_and_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("junk"), b"\r\n\x00\x01garbage").unwrap();
    let (code, out) = mftg(&["inspect", &p(d, "junk")], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("not a capture"), "{out}");
    let (code, out) = mftg(&["inspect", &p(d, "missing")], &[]);
    assert_eq!(code, 2, "{out}");
    std::fs::write(d.join("noas2"), b"Content-Type: text/plain\r\n\r\nhello").unwrap();
    let (code, out) = mftg(&["inspect", &p(d, "noas2")], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("missing required header AS2-From"), "{out}");
    let (code, out) = mftg(&["inspect", &p(d, "noas2"), "--key", &p(d, "noas2")], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("holds no certificate: give the key's certificate with --cert"),
        "{out}"
    );
    let (code, out) = mftg(&["inspect", &p(d, "noas2"), "--cert", &p(d, "noas2")], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--cert goes with --key"), "{out}");
    let (code, out) = mftg(
        &[
            "inspect",
            &p(d, "noas2"),
            "--keystore",
            &p(d, "noas2"),
            "--keystore-password-env",
            "UNSET_VAR_X",
        ],
        &[],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("UNSET_VAR_X is not set"), "{out}");
}

#[test]
fn partners_add_writes_every_security_level_and_refuses_unknown_names() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = p(tmp.path(), "mftg.toml");
    let env = [("MFTG_CONFIG", cfg.as_str())];
    let (code, out) = mftg(&["init", "--station", "ALPHA"], &env);
    assert_eq!(code, 0, "{out}");
    let add = |partner: &str, extra: &[&str]| {
        let mut args = vec![
            "partners",
            "add",
            "--station",
            "ALPHA",
            "--partner",
            partner,
            "--url",
            "http://127.0.0.1:9/as2",
            "--cert-alias",
            "x",
        ];
        args.extend_from_slice(extra);
        mftg(&args, &env)
    };
    for (partner, extra) in [
        (
            "PLAIN",
            &[
                "--cipher",
                "none",
                "--digest",
                "none",
                "--compression",
                "none",
            ][..],
        ),
        ("SIGNED", &["--cipher", "none"][..]),
        ("ENCRYPTED", &["--digest", "none", "--cipher", "3des"][..]),
        ("BOTH", &["--mic-alg", "sha-512", "--mdn", "async"][..]),
    ] {
        let (code, out) = add(partner, extra);
        assert_eq!(code, 0, "{partner}: {out}");
    }
    let (code, out) = mftg(&["partners", "list"], &env);
    assert_eq!(code, 0, "{out}");
    for line in [
        "ALPHA -> PLAIN  http://127.0.0.1:9/as2  cert x  sign none  encrypt none  compress none",
        "ALPHA -> SIGNED  http://127.0.0.1:9/as2  cert x  sign sha-256  encrypt none",
        "ALPHA -> ENCRYPTED  http://127.0.0.1:9/as2  cert x  sign none  encrypt 3des-cbc",
        "ALPHA -> BOTH  http://127.0.0.1:9/as2  cert x  sign sha-256  encrypt aes256-cbc  compress before-signing  mdn async",
    ] {
        assert!(out.contains(line), "{line:?} not in\n{out}");
    }
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("encryption = \"none\""), "{text}");

    let (code, out) = add("GCM", &["--cipher", "aes256-gcm"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("pyas2lib"), "the GCM caveat: {out}");
    let (code, out) = add("BAD", &["--cipher", "aes512"]);
    assert_ne!(code, 0);
    assert!(
        out.contains("\"aes512\"") && out.contains("none, 3des-cbc, aes128-cbc"),
        "{out}"
    );
    let (code, out) = add("BAD", &["--digest", "md5"]);
    assert_ne!(code, 0, "MD5 cannot sign: {out}");
    let (_, help) = mftg(&["partners", "add", "--help"], &[]);
    assert!(
        help.contains("possible values: none, 3des-cbc, aes128-cbc")
            && help.contains("before-signing, after-signing"),
        "{help}"
    );

    // A typo in the file is refused at start-up, with the line and the accepted values.
    std::fs::write(
        &cfg,
        text.replace("encryption = \"none\"", "encryption = \"aes-512\""),
    )
    .unwrap();
    let (code, out) = mftg(&["partners", "list"], &env);
    assert_ne!(code, 0);
    assert!(
        out.contains("line ")
            && out.contains("encryption: \"aes-512\"")
            && out.contains("accepted: none"),
        "{out}"
    );
}

#[test]
fn https_listener_keys_and_legacy_pkcs12_import() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let cfg = p(d, "mftg.toml");
    let (plain, tls) = (testkit::free_port(), testkit::free_port());
    let env = [
        ("MFTG_CONFIG", cfg.as_str()),
        ("MFTG_KEYSTORE_PASSWORD", "Cli-Keystore-9"),
        ("OLD_P12_PASSWORD", "Legacy-Store-1"),
    ];
    let (code, out) = mftg(
        &[
            "init",
            "--station",
            "ALPHA",
            "--listen",
            &format!("127.0.0.1:{plain}"),
            "--https-listen",
            &format!("127.0.0.1:{tls}"),
        ],
        &env,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("--store https"), "{out}");
    // Without a key in https.jks, serve stops at once and says why.
    let (code, out) = mftg(&["keys", "generate", "--alias", "alpha"], &env);
    assert_eq!(code, 0, "{out}");
    let (code, out) = mftg(&["serve"], &env);
    assert_ne!(code, 0);
    assert!(
        out.contains("HTTPS listener: AS2/keystore/https.jks does not exist")
            && out.contains("mftg keys generate --store https"),
        "{out}"
    );

    let (code, out) = mftg(
        &[
            "keys",
            "generate",
            "--alias",
            "https",
            "--store",
            "https",
            "--cn",
            "localhost",
            "--san",
            "localhost",
            "--san",
            "127.0.0.1",
        ],
        &env,
    );
    assert_eq!(code, 0, "{out}");
    // A station key from an old keytool (PKCS#12 with RC2-40 certificate bags).
    testkit::legacy_keytool_pkcs12(d, "old.p12", "old", "OLD STATION", "Legacy-Store-1");
    let (code, out) = mftg(
        &[
            "keys",
            "import",
            "--alias",
            "old",
            "--from",
            &p(d, "old.p12"),
            "--from-password-env",
            "OLD_P12_PASSWORD",
        ],
        &env,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("CN=OLD STATION"), "{out}");
    assert!(!out.contains("Legacy-Store-1"), "{out}");
    let (code, out) = mftg(&["keys", "list"], &env);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("key  old") && out.contains("key  https"),
        "{out}"
    );

    // Served: HTTPS answers /health over TLS 1.3 with the generated certificate.
    let mut serve = Command::new(env!("CARGO_BIN_EXE_mftg"))
        .arg("serve")
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut answer = String::new();
    for _ in 0..100 {
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{tls}"),
                "-tls1_3",
                "-quiet",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write as _;
                let mut stdin = c.stdin.take().unwrap();
                let _ = stdin.write_all(
                    b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                );
                drop(stdin);
                c.wait_with_output()
            })
            .unwrap();
        answer = String::from_utf8_lossy(&out.stdout).into_owned();
        if answer.contains("200 OK") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(
        answer.contains("200 OK") && answer.contains("ok"),
        "{answer}"
    );
}

#[test]
fn serve_refuses_what_cannot_work_and_keys_refuse_to_break_things() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let cfg = p(d, "mftg.toml");
    let port = testkit::free_port();
    let env = |pw: &'static str| {
        vec![
            ("MFTG_CONFIG", cfg.clone()),
            ("MFTG_KEYSTORE_PASSWORD", pw.to_string()),
        ]
    };
    let run = |args: &[&str], env: &[(&str, String)]| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        mftg(args, &env)
    };
    let good = env("Good-Keystore-3");
    let listen = format!("127.0.0.1:{port}");
    assert_eq!(
        run(&["init", "--station", "ALPHA", "--listen", &listen], &good).0,
        0
    );
    assert_eq!(run(&["keys", "generate", "--alias", "alpha"], &good).0, 0);
    // A second key of the same alias would break every partner: refused without --force.
    let (code, out) = run(&["keys", "generate", "--alias", "alpha"], &good);
    assert_ne!(code, 0);
    assert!(
        out.contains("already holds \"alpha\"") && out.contains("--force"),
        "{out}"
    );
    // An expired certificate is not trusted silently.
    let old = Identity::generate_self_signed("OLD", 2048, UnixTime(1_600_000_000), 1).unwrap();
    std::fs::write(d.join("old.crt"), old.certificate.to_pem().unwrap()).unwrap();
    let (code, out) = run(
        &[
            "keys",
            "trust",
            "--alias",
            "old",
            "--cert",
            &p(d, "old.crt"),
        ],
        &good,
    );
    assert_ne!(code, 0);
    assert!(out.contains("expired") && out.contains("--force"), "{out}");
    let forced = [
        "keys",
        "trust",
        "--alias",
        "old",
        "--cert",
        &p(d, "old.crt"),
        "--force",
    ];
    assert_eq!(run(&forced, &good).0, 0);
    let (_, list) = run(&["keys", "list"], &good);
    assert!(list.contains("EXPIRED"), "{list}");
    // A partnership naming a certificate that is not in trust.jks is refused.
    let add = |alias: &str| {
        run(
            &[
                "partners",
                "add",
                "--station",
                "ALPHA",
                "--partner",
                "BETA",
                "--url",
                "http://127.0.0.1:9/as2",
                "--cert-alias",
                alias,
            ],
            &good,
        )
    };
    let (code, out) = add("nobody");
    assert_ne!(code, 0);
    assert!(
        out.contains("trust.jks has no certificate \"nobody\""),
        "{out}"
    );
    assert_eq!(add("old").0, 0);

    // serve checks everything before it starts, one line per problem, no password shown.
    let (code, out) = run(&["serve"], &env("Wrong-Keystore-9"));
    assert_ne!(code, 0);
    assert!(
        out.contains("cannot start")
            && out.contains("station ALPHA")
            && !out.contains("Wrong-Keystore-9"),
        "{out}"
    );
    let unset = vec![("MFTG_CONFIG", cfg.clone())];
    let (code, out) = run(&["serve"], &unset);
    assert_ne!(code, 0);
    assert!(out.contains("MFTG_KEYSTORE_PASSWORD is not set"), "{out}");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace(
            "certificate_alias = \"old\"",
            "certificate_alias = \"gone\"",
        ),
    )
    .unwrap();
    let (code, out) = run(&["serve"], &good);
    assert_ne!(code, 0);
    assert!(
        out.contains("partnership ALPHA -> BETA: certificate \"gone\""),
        "{out}"
    );

    // `messages list | head`: a reader that goes away is not a crash.
    let mut child = Command::new(env!("CARGO_BIN_EXE_mftg"))
        .args(["messages", "list"])
        .env("MFTG_CONFIG", &cfg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
