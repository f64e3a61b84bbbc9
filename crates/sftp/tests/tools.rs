//! Every key we write, read back by the tools users have: `ssh-keygen` for OpenSSH keys and
//! fingerprints, `puttygen` for PuTTY files (right passphrase accepted, wrong one refused); and
//! keys those tools make, accepted as users' own.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use sftp::keys::{check_public_key, generate, KeyType, PrivateKeyFormat};

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| {
        panic!("{cmd:?}: {e} (make test installs openssh-client and putty-tools)")
    })
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// `type base64` of an authorized_keys line, without its comment.
fn key_part(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

const KINDS: [KeyType; 7] = [
    KeyType::Ed25519,
    KeyType::EcdsaP256,
    KeyType::EcdsaP384,
    KeyType::EcdsaP521,
    KeyType::Rsa(2048),
    KeyType::Rsa(3072),
    KeyType::Rsa(4096),
];

#[test]
fn ssh_keygen_reads_our_openssh_keys() {
    let tmp = tempfile::tempdir().unwrap();
    for kind in KINDS {
        for pass in [None, Some("Open-Sesame 9")] {
            let k = generate(kind, PrivateKeyFormat::OpenSsh, pass, "acme@mftg").unwrap();
            let file = tmp.path().join("id");
            write_private(&file, k.private_key.expose());
            let public = ok(Command::new("ssh-keygen")
                .arg("-y")
                .arg("-P")
                .arg(pass.unwrap_or(""))
                .arg("-f")
                .arg(&file));
            assert_eq!(key_part(&public), key_part(&k.public_key), "{kind:?}");
            if pass.is_some() {
                let wrong = run(Command::new("ssh-keygen")
                    .arg("-y")
                    .arg("-P")
                    .arg("not-it")
                    .arg("-f")
                    .arg(&file));
                assert!(
                    !wrong.status.success(),
                    "{kind:?}: a wrong passphrase must fail"
                );
            }
            std::fs::write(tmp.path().join("id.pub"), &k.public_key).unwrap();
            let listed = ok(Command::new("ssh-keygen")
                .args(["-l", "-E", "sha256", "-f"])
                .arg(tmp.path().join("id.pub")));
            assert!(
                listed.contains(&k.fingerprint),
                "{kind:?}: {listed} vs {}",
                k.fingerprint
            );
        }
    }
}

#[test]
fn puttygen_reads_our_ppk_files() {
    let tmp = tempfile::tempdir().unwrap();
    let pass_file = tmp.path().join("pass");
    let wrong_file = tmp.path().join("wrong");
    std::fs::write(&pass_file, "Putty-Pass 7\n").unwrap();
    std::fs::write(&wrong_file, "not-it\n").unwrap();
    for kind in KINDS {
        for format in [PrivateKeyFormat::PuttyV3, PrivateKeyFormat::PuttyV2] {
            for pass in [None, Some("Putty-Pass 7")] {
                let k = generate(kind, format, pass, "acme@mftg").unwrap();
                let file = tmp.path().join("key.ppk");
                write_private(&file, k.private_key.expose());
                let version = if format == PrivateKeyFormat::PuttyV3 {
                    "3"
                } else {
                    "2"
                };
                assert!(k
                    .private_key
                    .expose()
                    .starts_with(&format!("PuTTY-User-Key-File-{version}: ")));
                let what = format!("{kind:?} ppk{version} pass={}", pass.is_some());
                // Converting to OpenSSH needs the private half: the MAC and the decryption must both be right.
                let out = tmp.path().join("converted");
                let _ = std::fs::remove_file(&out);
                let mut convert = Command::new("puttygen");
                convert
                    .arg(&file)
                    .args([
                        "-O",
                        "private-openssh-new",
                        "--new-passphrase",
                        "/dev/null",
                        "-o",
                    ])
                    .arg(&out);
                if pass.is_some() {
                    convert.arg("--old-passphrase").arg(&pass_file);
                }
                ok(&mut convert);
                std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o600)).unwrap();
                let public = ok(Command::new("ssh-keygen")
                    .args(["-y", "-P", "", "-f"])
                    .arg(&out));
                assert_eq!(key_part(&public), key_part(&k.public_key), "{what}");
                let fp = ok(Command::new("puttygen")
                    .arg(&file)
                    .args(["-l", "-E", "sha256"]));
                assert!(fp.contains(&k.fingerprint), "{what}: {fp}");
                if pass.is_some() {
                    let refused = run(Command::new("puttygen")
                        .arg(&file)
                        .args(["-O", "private-openssh-new", "-o"])
                        .arg(tmp.path().join("x"))
                        .arg("--old-passphrase")
                        .arg(&wrong_file));
                    assert!(
                        !refused.status.success(),
                        "{what}: a wrong passphrase must fail"
                    );
                }
            }
        }
    }
}

#[test]
fn keys_made_by_ssh_keygen_and_puttygen_are_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    for (t, bits) in [
        ("ed25519", None),
        ("ecdsa", Some("256")),
        ("ecdsa", Some("384")),
        ("ecdsa", Some("521")),
        ("rsa", Some("2048")),
        ("rsa", Some("4096")),
    ] {
        let file = tmp.path().join(format!("k-{t}-{}", bits.unwrap_or("")));
        let mut c = Command::new("ssh-keygen");
        c.args(["-q", "-t", t, "-N", "", "-C", "user@laptop", "-f"])
            .arg(&file);
        if let Some(b) = bits {
            c.args(["-b", b]);
        }
        ok(&mut c);
        let line = std::fs::read_to_string(file.with_extension("pub")).unwrap_or_else(|_| {
            std::fs::read_to_string(format!("{}.pub", file.display())).unwrap()
        });
        let accepted = check_public_key(&line).unwrap_or_else(|e| panic!("{t}: {e}"));
        let fp = ok(Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(format!("{}.pub", file.display())));
        assert!(fp.contains(&accepted.fingerprint), "{t}");
    }
    for (t, bits) in [("ed25519", "255"), ("ecdsa", "384"), ("rsa", "2048")] {
        let ppk = tmp.path().join(format!("p-{t}.ppk"));
        ok(Command::new("puttygen")
            .args([
                "-t",
                t,
                "-b",
                bits,
                "-C",
                "winscp-user",
                "--new-passphrase",
                "/dev/null",
                "-o",
            ])
            .arg(&ppk));
        for out_format in ["public-openssh", "public"] {
            let public = ok(Command::new("puttygen").arg(&ppk).args([
                "-O",
                out_format,
                "-o",
                "/dev/stdout",
            ]));
            let accepted = check_public_key(&public)
                .unwrap_or_else(|e| panic!("puttygen {t} {out_format}: {e}\n{public}"));
            assert!(accepted.line.starts_with(if t == "ecdsa" {
                "ecdsa-sha2-nistp384 "
            } else if t == "rsa" {
                "ssh-rsa "
            } else {
                "ssh-ed25519 "
            }));
        }
        // A PuTTY private key pasted by mistake is refused without being echoed.
        let text = std::fs::read_to_string(&ppk).unwrap();
        let err = check_public_key(&text).unwrap_err().to_string();
        assert!(
            !err.contains("Private-Lines") && !err.contains(text.lines().nth(4).unwrap()),
            "{err}"
        );
    }
    // Too short.
    let short = tmp.path().join("short");
    ok(Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "1024", "-N", "", "-f"])
        .arg(&short));
    let err =
        check_public_key(&std::fs::read_to_string(format!("{}.pub", short.display())).unwrap())
            .unwrap_err();
    assert!(err.to_string().contains("1024 bits"), "{err}");
    // An OpenSSH private key pasted by mistake: refused, not echoed.
    let private = std::fs::read_to_string(&short).unwrap();
    let err = check_public_key(&private).unwrap_err().to_string();
    assert!(!err.contains(private.lines().nth(1).unwrap()), "{err}");
}
