//! `mftg sftp ...` against moto's Transfer API: key files checked with ssh-keygen, nothing secret
//! printed, nothing left behind by a refused request.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use testkit::{field as line, Moto};

fn run<C: std::borrow::BorrowMut<Command>>(mut cmd: C) -> (i32, String) {
    testkit::run(cmd.borrow_mut())
}

fn create_server(moto: &Moto) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let conf = gateway_aws::config::load(&gateway_aws::config::Endpoint {
            url: Some(moto.url().into()),
            region: Some(testkit::REGION.into()),
        })
        .await;
        aws_sdk_transfer::Client::new(&conf)
            .create_server()
            .send()
            .await
            .unwrap()
            .server_id()
            .to_string()
    })
}

struct Sftp<'a> {
    moto: &'a Moto,
    server: String,
}

impl Sftp<'_> {
    fn user_cmd(&self, action: &str, account: &str, user: &str, args: &[&str]) -> Command {
        let mut c = self.cmd(&[action, "--account", account, "--user", user]);
        c.args(args);
        c
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mftg"));
        c.arg("sftp")
            .args(args)
            .env("MFTG_SFTP_SERVER_ID", &self.server)
            .env(
                "MFTG_SFTP_USER_ROLE_ARN",
                "arn:aws:iam::123456789012:role/mftg-sftp-user",
            )
            .env("AWS_ENDPOINT_URL", self.moto.url())
            .env("AWS_REGION", testkit::REGION)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_PROFILE");
        c
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn enable_rotate_describe_disable() {
    let moto = Moto::start();
    let s = Sftp {
        server: create_server(&moto),
        moto: &moto,
    };
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, "Sesame Street 12\n").unwrap();
    let user = Moto::unique("acme").replace('-', "_");

    // Enable with a generated OpenSSH key, passphrase from a file.
    let (code, out) = run(s
        .user_cmd(
            "enable",
            "123456789012",
            &user,
            &["--generate", "ed25519", "--format", "openssh", "--out"],
        )
        .arg(&keys)
        .arg("--passphrase-file")
        .arg(&pass));
    assert_eq!(code, 0, "{out}");
    let key_file = keys.join(format!("{user}_ed25519"));
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o400
    );
    let private = std::fs::read_to_string(&key_file).unwrap();
    assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    let longest = private.lines().max_by_key(|l| l.len()).unwrap();
    assert!(
        !out.contains(longest) && !out.contains("Sesame"),
        "secrets printed:\n{out}"
    );
    let host = format!(
        "{}.server.transfer.{}.amazonaws.com",
        s.server,
        testkit::REGION
    );
    assert_eq!(
        line(&out, "connect:"),
        format!("sftp -i {} {user}@{host}", key_file.display())
    );
    assert!(
        line(&out, "private key:").contains("passphrase-protected"),
        "{out}"
    );
    // ssh-keygen opens it with the passphrase and agrees on the fingerprint.
    let (code, public) = run(Command::new("ssh-keygen")
        .args(["-y", "-P", "Sesame Street 12", "-f"])
        .arg(&key_file));
    assert_eq!(code, 0, "{public}");
    std::fs::write(tmp.path().join("gen.pub"), &public).unwrap();
    let (_, listed) = run(Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(tmp.path().join("gen.pub")));
    let fingerprint = line(&out, "key:")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(listed.contains(&fingerprint), "{listed} vs {fingerprint}");

    // Enabling again is refused, and leaves no key file behind.
    let again = tmp.path().join("again");
    std::fs::create_dir(&again).unwrap();
    let (code, out) = run(s
        .user_cmd(
            "enable",
            "123456789012",
            &user,
            &["--generate", "ed25519", "--out"],
        )
        .arg(&again));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("already enabled"), "{out}");
    assert!(files_in(&again).is_empty());
    // So is writing over an existing key file, before anything is provisioned.
    let (code, out) = run(s
        .user_cmd(
            "rotate",
            "123456789012",
            &user,
            &["--generate", "ed25519", "--format", "openssh", "--out"],
        )
        .arg(&keys));
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("cannot create") && out.contains("new file only"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), private);

    // Rotate to a key made by ssh-keygen.
    let own = tmp.path().join("own");
    run(Command::new("ssh-keygen")
        .args([
            "-q", "-t", "rsa", "-b", "3072", "-N", "", "-C", "erp@acme", "-f",
        ])
        .arg(&own));
    let (code, out) = run(s
        .user_cmd("rotate", "123456789012", &user, &["--public-key"])
        .arg(own.with_extension("pub")));
    assert_eq!(code, 0, "{out}");
    let (_, own_fp) = run(Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(own.with_extension("pub")));
    let rotated_fp = line(&out, "key:")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(own_fp.contains(&rotated_fp), "{own_fp} vs {out}");
    assert_eq!(
        out.matches("\nkey:").count(),
        1,
        "the old key is gone:\n{out}"
    );

    // Describe, as JSON.
    let (code, out) = run(s.user_cmd("describe", "123456789012", &user, &["--json"]));
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["keys"][0]["fingerprint"], rotated_fp.as_str());
    assert_eq!(
        v["connect_command"],
        format!("sftp -i <private-key> {user}@{host}")
    );

    // Another account cannot touch it.
    let (code, out) = run(s.cmd(&["disable", "--account", "999999999999", "--user", &user]));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("has no SFTP user"), "{out}");

    // Disable.
    let (code, out) = run(s.cmd(&["disable", "--account", "123456789012", "--user", &user]));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("removed key:  {rotated_fp}")),
        "{out}"
    );
    let (code, out) = run(s.cmd(&["describe", "--account", "123456789012", "--user", &user]));
    assert_eq!(code, 2, "{out}");
}

#[test]
fn refused_requests_say_why_and_leave_nothing() {
    let moto = Moto::start();
    let s = Sftp {
        server: create_server(&moto),
        moto: &moto,
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let own = dir.join("own");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&own));
    let private = std::fs::read_to_string(&own).unwrap();
    let own = own.to_str().unwrap();
    let cases = [
        (format!("enable --user -acme --generate ed25519 --out {}", dir.display()), "cannot start with a hyphen"),
        (format!("enable --user acme --generate rsa-1024 --out {}", dir.display()), "use ed25519, rsa-2048"),
        (format!("enable --user acme --generate ed25519 --passphrase-env MFTG_TEST_NO_SUCH_VAR --out {}", dir.display()), "MFTG_TEST_NO_SUCH_VAR is not set"),
        // A private key given as the public one: refused, not echoed (checked below).
        (format!("enable --user acme --public-key {own}"), "this is a private key"),
        ("enable --user acme".to_string(), "--generate TYPE or --public-key FILE"),
        (format!("enable --user acme --account Acme --public-key {own}.pub"), "lowercase letters"),
    ];
    for (args, expected) in &cases {
        let mut cmd = s.cmd(&[]);
        cmd.args(args.split(' '));
        if !args.contains("--account") {
            cmd.args(["--account", "123456789012"]);
        }
        let (code, out) = run(cmd);
        assert_eq!(code, 2, "{args}: {out}");
        assert!(out.contains(expected), "{args}: {out}");
        assert!(!out.contains(private.lines().nth(1).unwrap()), "{out}");
    }
    // No role to give the user.
    let mut cmd = s.cmd(&[
        "enable",
        "--account",
        "123456789012",
        "--user",
        "acme",
        "--public-key",
    ]);
    let (code, out) = run(cmd
        .arg(format!("{own}.pub"))
        .env_remove("MFTG_SFTP_USER_ROLE_ARN"));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--role-arn"), "{out}");
    // Nothing was written, nothing created.
    let mut left = files_in(dir);
    left.sort();
    assert_eq!(left, ["own", "own.pub"]);
}

/// An AWS API stand-in on 127.0.0.1 that answers every request with one JSON-protocol error.
fn refusing_endpoint(error_type: &'static str, message: &'static str) -> String {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        // Bounded: the SDK makes one request (these errors are not retried) per command.
        for stream in listener.incoming().take(4).flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let reply = format!(r#"{{"__type":"{error_type}","Message":"{message}"}}"#);
            let _ = write!(
                reader.get_mut(),
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: {error_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    url
}

/// A command with no AWS credentials or configuration from this machine (no instance metadata
/// either: a workstation has none).
fn without_credentials(args: &[&str]) -> Command {
    let home = tempfile::tempdir().unwrap().keep();
    let mut c = Command::new(env!("CARGO_BIN_EXE_mftg"));
    c.arg("sftp").args(args);
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "RUST_LOG",
    ] {
        c.env_remove(var);
    }
    c.env("HOME", &home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", testkit::REGION);
    c
}

#[test]
fn credential_problems_are_one_line_saying_what_to_do() {
    let describe = [
        "describe",
        "--account",
        "123456789012",
        "--user",
        "acme",
        "--server-id",
        "s-0123456789abcdef0",
    ];
    let one_line = |out: &str| {
        assert_eq!(out.trim().lines().count(), 1, "{out}");
        for noise in ["WARN", "ProviderError", "DispatchFailure", "{", "Some("] {
            assert!(!out.contains(noise), "{noise}: {out}");
        }
    };
    // Nothing configured at all.
    let (code, out) = run(without_credentials(&describe));
    assert_ne!(code, 0, "{out}");
    one_line(&out);
    assert!(out.contains("no AWS credentials found"), "{out}");
    assert!(out.contains("AWS_PROFILE"), "{out}");

    // Credentials the service refuses: denied, and expired.
    for (error_type, expected) in [
        ("AccessDeniedException", "access denied"),
        ("ExpiredTokenException", "expired or not valid"),
    ] {
        let url = refusing_endpoint(error_type, "as the test says");
        let mut cmd = without_credentials(&describe);
        cmd.env("AWS_ENDPOINT_URL", &url)
            .env("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
            .env("AWS_SECRET_ACCESS_KEY", "not-a-real-secret-key");
        let (code, out) = run(cmd);
        assert_ne!(code, 0, "{out}");
        one_line(&out);
        assert!(out.contains(expected), "{error_type}: {out}");
        assert!(out.contains(error_type), "{out}");
        assert!(!out.contains("not-a-real-secret-key"), "{out}");
    }
}
