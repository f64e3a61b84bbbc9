//! The `mftg` binary, run as a user would.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;
use std::process::{Command, Output};

use as2::keys::Identity;
use as2::message::{self, MessageOptions, Payload, Signing};
use as2::UnixTime;

fn mftg(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_mftg"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn p(dir: &Path, f: &str) -> String {
    dir.join(f).to_str().unwrap().to_string()
}

fn field<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(label))
        .map(|l| l[label.len()..].trim())
        .unwrap_or_else(|| panic!("no {label:?} in:\n{out}"))
}

#[test]
fn demo_then_inspect_message_and_receipt() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (code, out) = mftg(&["demo", "--out", d.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("MIC matches"), "{out}");

    let (code, out) = mftg(
        &[
            "inspect",
            &p(d, "message.as2"),
            "--key",
            &p(d, "beta.key"),
            "--cert",
            &p(d, "beta.crt"),
            "--partner-cert",
            &p(d, "alpha.crt"),
        ],
        &[],
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

    // Without keys it still says what it can.
    let (code, out) = mftg(&["inspect", &p(d, "message.as2")], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(field(&out, "layer 1").contains("aes256-cbc"), "{out}");

    // The wrong partner certificate: the signature fails, the rest is still shown.
    let (code, out) = mftg(
        &[
            "inspect",
            &p(d, "message.as2"),
            "--key",
            &p(d, "beta.key"),
            "--cert",
            &p(d, "beta.crt"),
            "--partner-cert",
            &p(d, "beta.crt"),
        ],
        &[],
    );
    assert_eq!(code, 1, "{out}");
    assert!(field(&out, "verification").starts_with("FAILED"), "{out}");
    assert_eq!(
        field(&out, "disposition"),
        "processed/error: authentication-failed"
    );
    assert_eq!(field(&out, "filename"), "po-1001.x12");

    // The receipt, its signature and its MIC.
    let (code, out) = mftg(
        &[
            "inspect",
            &p(d, "mdn.as2"),
            "--partner-cert",
            &p(d, "beta.crt"),
            "--expect-mic",
            &mic,
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(field(&out, "disposition"), "processed");
    assert!(field(&out, "signature").starts_with("verified"), "{out}");
    assert_eq!(field(&out, "mic check"), "matches");
    let (code, out) = mftg(
        &["inspect", &p(d, "mdn.as2"), "--expect-mic", "AAAA, sha-256"],
        &[],
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(field(&out, "mic check"), "MISMATCH");
    assert!(field(&out, "signature").contains("not checked"), "{out}");

    // Keys from a PKCS#12 keystore whose password comes from the environment, never echoed.
    let st = Command::new("openssl")
        .args([
            "pkcs12",
            "-export",
            "-in",
            &p(d, "beta.crt"),
            "-inkey",
            &p(d, "beta.key"),
            "-name",
            "beta",
            "-passout",
            "env:P12PW",
            "-out",
            &p(d, "beta.p12"),
        ])
        .env("P12PW", "Hunter2-Keystore")
        .status()
        .unwrap();
    assert!(st.success());
    let (code, out) = mftg(
        &[
            "inspect",
            &p(d, "message.as2"),
            "--keystore",
            &p(d, "beta.p12"),
            "--keystore-password-env",
            "KS_PW",
            "--partner-cert",
            &p(d, "alpha.crt"),
        ],
        &[("KS_PW", "Hunter2-Keystore")],
    );
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("Hunter2"));
    let (code, out) = mftg(
        &[
            "inspect",
            &p(d, "message.as2"),
            "--keystore",
            &p(d, "beta.p12"),
            "--keystore-password-env",
            "KS_PW",
        ],
        &[("KS_PW", "Wrong-Hunter3")],
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("wrong password") && !out.contains("Hunter3"),
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
    assert!(out.contains("--key and --cert go together"), "{out}");
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
