//! The real `sftp-provisioner` binary under the Lambda Runtime API emulator, against moto's
//! Transfer API, driven by the sample events in `events/sftp-provisioner/`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use aws_sdk_transfer::types::{IdentityProviderType, Protocol};
use serde_json::{json, Value};
use testkit::lambda::LambdaEmulator;
use testkit::Moto;

const LIMIT: Duration = Duration::from_secs(60);
const ROLE: &str = "arn:aws:iam::123456789012:role/mftg-sftp-user";

fn event(name: &str) -> Value {
    let path = testkit::repo_root()
        .join("events/sftp-provisioner")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

async fn new_server(moto: &Moto) -> String {
    let conf = gateway_aws::config::load(&gateway_aws::config::Endpoint {
        url: Some(moto.url().into()),
        region: Some(testkit::REGION.into()),
    })
    .await;
    aws_sdk_transfer::Client::new(&conf)
        .create_server()
        .identity_provider_type(IdentityProviderType::ServiceManaged)
        .protocols(Protocol::Sftp)
        .send()
        .await
        .unwrap()
        .server_id()
        .to_string()
}

fn start(moto: &Moto, server: &str, dir: &std::path::Path) -> LambdaEmulator {
    LambdaEmulator::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_sftp-provisioner")),
        &[
            ("MFTG_SFTP_SERVER_ID", server),
            ("MFTG_SFTP_USER_ROLE_ARN", ROLE),
            ("AWS_ENDPOINT_URL", moto.url()),
            ("RUST_LOG", "info"),
        ],
        dir,
    )
}

fn fingerprint(value: &Value) -> String {
    value["keys"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_sample_events_run_against_moto() {
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(new_server(&moto));
    let tmp = tempfile::tempdir().unwrap();
    let mut f = start(&moto, &server, tmp.path());

    // An existing key: enable, describe, rotate to another existing key, disable.
    let enable = event("enable-existing.json");
    let expected =
        sftp::keys::check_public_key(enable["key"]["existing"]["public_key"].as_str().unwrap())
            .unwrap();
    let r = f.invoke(&enable, LIMIT).unwrap();
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["result"], "enabled");
    assert_eq!(r["bucket"], "mftg-123456789012");
    assert_eq!(fingerprint(&r), expected.fingerprint);
    assert!(r.get("private_key").is_none());
    let d = f.invoke(&event("describe.json"), LIMIT).unwrap();
    assert_eq!(d["result"], "described");
    assert_eq!(fingerprint(&d), expected.fingerprint);
    assert_eq!(
        d["connect_command"],
        format!(
            "sftp -i <private-key> acme-erp@{server}.server.transfer.{}.amazonaws.com",
            testkit::REGION
        )
    );
    let rotate = event("rotate-existing.json");
    let new_key =
        sftp::keys::check_public_key(rotate["key"]["existing"]["public_key"].as_str().unwrap())
            .unwrap();
    let r = f.invoke(&rotate, LIMIT).unwrap();
    assert_eq!(r["result"], "rotated", "{r}");
    assert_eq!(r["keys"].as_array().unwrap().len(), 1);
    assert_eq!(fingerprint(&r), new_key.fingerprint);
    // Rotating to the same key again is a bad request, answered, not a failure.
    let again = f.invoke(&rotate, LIMIT).unwrap();
    assert_eq!(
        again,
        json!({"ok": false, "error": "same_key", "message": again["message"]})
    );
    let r = f.invoke(&event("disable.json"), LIMIT).unwrap();
    assert_eq!(r["result"], "disabled");
    assert_eq!(
        r["removed_keys"][0]["fingerprint"],
        new_key.fingerprint.as_str()
    );
    let gone = f.invoke(&event("describe.json"), LIMIT).unwrap();
    assert_eq!(gone["error"], "not_enabled");

    // A generated key: handed out in the reply, once; rotation hands out the next one.
    let generate = event("enable-generate.json");
    let passphrase = generate["key"]["generate"]["passphrase"]
        .as_str()
        .unwrap()
        .to_string();
    let r = f.invoke(&generate, LIMIT).unwrap();
    assert_eq!(r["result"], "enabled", "{r}");
    let ppk = r["private_key"]["contents"].as_str().unwrap().to_string();
    assert!(ppk.starts_with("PuTTY-User-Key-File-3: ssh-ed25519\n"));
    assert!(ppk.contains("Encryption: aes256-cbc"));
    assert_eq!(r["private_key"]["file_name"], "acme_edi_ed25519.ppk");
    let r = f.invoke(&event("rotate-generate.json"), LIMIT).unwrap();
    assert_eq!(r["result"], "rotated", "{r}");
    let pem = r["private_key"]["contents"].as_str().unwrap().to_string();
    assert!(pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    assert_eq!(
        r["connect_command"],
        format!(
            "sftp -i acme_edi_rsa-4096 acme_edi@{server}.server.transfer.{}.amazonaws.com",
            testkit::REGION
        )
    );

    // Neither the private keys nor the passphrase were logged; what was done was.
    let log = f.log_text();
    assert!(
        log.contains("enabled") && log.contains("rotated") && log.contains("disabled"),
        "{log}"
    );
    let longest = |text: &str| text.lines().max_by_key(|l| l.len()).unwrap()[..40].to_string();
    for secret in [passphrase.clone(), longest(&ppk), longest(&pem)] {
        assert!(!log.contains(&secret), "a secret reached the log");
    }
}

#[test]
fn bad_requests_are_answered_and_api_failures_fail_the_invocation() {
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(new_server(&moto));
    let tmp = tempfile::tempdir().unwrap();
    let mut f = start(&moto, &server, tmp.path());
    let private = sftp::keys::generate(
        sftp::keys::KeyType::Ed25519,
        sftp::keys::PrivateKeyFormat::OpenSsh,
        None,
        "x",
    )
    .unwrap();
    let private_text = private.private_key.expose().to_string();
    let cases = [
        (json!("enable please"), "invalid_request"),
        (
            json!({"action": "enable", "account_id": "123456789012", "username": "-acme"}),
            "invalid_request",
        ),
        (
            json!({"action": "enable", "account_id": "123456789012", "username": "-acme", "key": {"generate": {}}}),
            "invalid_username",
        ),
        (
            json!({"action": "enable", "account_id": "arn:*", "username": "acme", "key": {"generate": {}}}),
            "invalid_account",
        ),
        (
            json!({"action": "enable", "account_id": "123456789012", "username": "acme", "key": {"generate": {"type": "rsa-1024"}}}),
            "invalid_request",
        ),
        (
            json!({"action": "enable", "account_id": "123456789012", "username": "acme", "key": {"existing": {"public_key": private_text}}}),
            "private_key_given",
        ),
        (
            json!({"action": "enable", "account_id": "123456789012", "username": "acme", "key": {"existing": {"public_key": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQ== short"}}}),
            "invalid_public_key",
        ),
    ];
    let cases_len = cases.len();
    for (request, code) in cases {
        let r = f.invoke(&request, LIMIT).unwrap();
        assert_eq!(r["ok"], false, "{request}: {r}");
        assert_eq!(r["error"], code, "{request}: {r}");
        assert!(!r.to_string().contains(&private_text[40..100]));
    }
    assert!(
        !f.log_text().contains(&private_text[40..100]),
        "a pasted private key reached the log"
    );
    // Values of the wrong type are not repeated either (they may be secrets in the wrong place).
    let r = f
        .invoke(&json!({"action": "enable", "account_id": "1", "username": "acme", "key": {"generate": {"passphrase": 86420975}}}), LIMIT)
        .unwrap();
    assert_eq!(r["error"], "invalid_request");
    assert!(
        r["message"].as_str().unwrap().contains("expected a string"),
        "{r}"
    );
    assert!(!r.to_string().contains("86420975") && !f.log_text().contains("86420975"));

    // A server that is not there: the invocation fails (Lambda retries asynchronous ones).
    let other_dir = tmp.path().join("broken");
    std::fs::create_dir(&other_dir).unwrap();
    let mut broken = start(&moto, "s-00000000000000000", &other_dir);
    let e = broken.invoke(&event("describe.json"), LIMIT).unwrap_err();
    assert_eq!(e.error_type, "transfer_api");
    assert!(e.error_message.contains("DescribeServer"), "{e:?}");
    assert_eq!(f.log_text().matches(": refused: ").count(), cases_len + 1);
}

#[test]
fn missing_configuration_stops_the_function_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let mut f = LambdaEmulator::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_sftp-provisioner")),
        &[("MFTG_SFTP_USER_ROLE_ARN", ROLE)],
        tmp.path(),
    );
    let status = f.wait_exit(LIMIT).expect("the function exits");
    assert!(!status.success());
    assert!(
        f.log_text().contains("MFTG_SFTP_SERVER_ID is not set"),
        "{}",
        f.log_text()
    );
}

#[test]
fn logs_are_json_lines_when_the_function_is_configured_for_json() {
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(new_server(&moto));
    let tmp = tempfile::tempdir().unwrap();
    let mut f = LambdaEmulator::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_sftp-provisioner")),
        &[
            ("MFTG_SFTP_SERVER_ID", &server),
            ("MFTG_SFTP_USER_ROLE_ARN", ROLE),
            ("AWS_ENDPOINT_URL", moto.url()),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
        ],
        tmp.path(),
    );
    f.invoke(&event("enable-generate.json"), LIMIT).unwrap();
    let log = f.log_text();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty(), "nothing logged");
    assert!(lines.iter().all(|l| l["level"].is_string()), "{log}");
    assert!(log.contains("enabled"), "{log}");
}
