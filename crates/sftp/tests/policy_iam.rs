//! The session policy is a policy document IAM accepts: moto's IAM policy validator (a separate
//! implementation of IAM's grammar) takes it, and refuses a broken one, so the check can fail.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::Write;
use std::process::{Command, Stdio};

use testkit::Moto;

const SCRIPT: &str = r#"
import sys, boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
try:
    iam.create_policy(PolicyName=sys.argv[2], PolicyDocument=sys.stdin.read())
    print("valid")
except iam.exceptions.MalformedPolicyDocumentException as e:
    print("malformed:", e)
"#;

fn iam_says(moto: &Moto, document: &str) -> String {
    let mut child = Command::new(testkit::python())
        .args(["-c", SCRIPT, moto.url(), &Moto::unique("mftg-sftp-session")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(document.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn iam_accepts_the_session_policy() {
    let moto = Moto::start();
    for account in ["123456789012", "acme", &"7".repeat(58)] {
        let policy = sftp::policy::session_policy(account).to_string();
        assert_eq!(iam_says(&moto, &policy), "valid", "{policy}");
    }
    let broken =
        sftp::policy::session_policy("acme")
            .to_string()
            .replacen("\"Deny\"", "\"Perhaps\"", 1);
    assert!(
        iam_says(&moto, &broken).starts_with("malformed"),
        "the validator is live"
    );
}
