//! Operating a deployment with `mftg`, as the README's "Deploy on AWS" walkthrough does, against
//! moto with the real Lambda binaries: a profile from the stack's outputs, a station and its key
//! generated into the bucket's keystore, a pyas2lib partner's certificate and partnership added
//! with the CLI, a file sent with `mftg send` and delivered by `send-trigger` and `as2-sender`,
//! watched with `mftg messages`; the partner goes down, the message fails, it comes back and
//! `mftg messages resend` delivers it once. Bad input each ends in one line and a non-zero exit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use gateway::model::Status;
use serde_json::{json, Value};
use testkit::function_url::FunctionUrl;
use testkit::lambda::LambdaEmulator;
use testkit::pyas2::{self, Pyas2Partner};

struct Cli {
    bin: PathBuf,
    profiles: PathBuf,
    cwd: PathBuf,
}

impl Cli {
    /// Runs `mftg ARGS`: (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(&self.bin)
            .args(args)
            .current_dir(&self.cwd)
            .env("MFTG_PROFILES", &self.profiles)
            .env_remove("MFTG_CONFIG")
            .env_remove("MFTG_PROFILE")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_PROFILE")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs `mftg ARGS --profile acme` and expects success.
    fn ok(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["--profile", "acme"]);
        let (code, out, err) = self.run(&all);
        assert_eq!(code, 0, "mftg {all:?}:\n{out}\n{err}");
        out
    }

    /// Runs `mftg ARGS --profile acme` and expects a refusal: one line on stderr, exit 2, which
    /// it returns.
    fn refused(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["--profile", "acme"]);
        let (code, out, err) = self.run(&all);
        assert_eq!(code, 2, "mftg {all:?} should fail:\n{out}\n{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            !err.contains("Error {") && !err.contains("SdkError"),
            "{err}"
        );
        err
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }
}

/// `mftg console --profile acme`: its API lists the deployment's records (the first delivered,
/// the second failed then delivered after its resend) and serves their files from the bucket.
fn console_over_the_deployment(cli: &Cli, token_file: &Path, first: &str, second: &str) {
    use testkit::http::request;
    let port = testkit::free_port();
    let mut child = Command::new(&cli.bin)
        .args([
            "console",
            "--profile",
            "acme",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--token-file")
        .arg(token_file)
        .current_dir(&cli.cwd)
        .env("MFTG_PROFILES", &cli.profiles)
        .env_remove("MFTG_CONFIG")
        .env_remove("MFTG_PROFILE")
        .env_remove("MFTG_CONSOLE_TOKEN")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_PROFILE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    testkit::wait_listening(port, "the console");
    let token = std::fs::read_to_string(token_file)
        .unwrap()
        .trim()
        .to_string();
    let auth = [("Authorization", format!("Bearer {token}"))];
    let get = |path: &str| request(port, "GET", path, &auth, "");
    let session = get("/api/v1/session").json();
    assert!(
        session["backend"]
            .as_str()
            .unwrap()
            .starts_with("deployment"),
        "{session}"
    );
    let listed = get("/api/v1/messages?direction=outbox").json();
    let ids: Vec<&str> = listed["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&first) && ids.contains(&second), "{listed}");
    let shown = get(&format!("/api/v1/messages/{second}")).json();
    assert_eq!(shown["status"], "delivered");
    let statuses: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert!(statuses.contains(&"failed"), "{statuses:?}");
    assert_eq!(
        get(&format!("/api/v1/messages/{first}/payload")).body,
        edi(1)
    );
    assert_eq!(
        get("/api/v1/messages?status=failed").json()["messages"],
        serde_json::json!([])
    );
    let stations = get("/api/v1/stations").json();
    assert_eq!(stations["stations"][0]["as2_id"], "ALPHA");
    assert_eq!(get("/api/v1/queue").status, 200);
    assert_eq!(
        request(port, "GET", "/api/v1/messages", &[], "").status,
        401
    );
    // A partnership changed through the API lands in the partners table (the CLI reads it
    // there) after the checks; one naming a certificate trust.jks lacks does not.
    let mut p = get("/api/v1/partners?station=ALPHA").json()["partners"][0].clone();
    assert_eq!(p["partner"], "PYAS2");
    p["timeout_secs"] = serde_json::json!(6);
    let put = |body: &serde_json::Value| {
        request(
            port,
            "PUT",
            "/api/v1/partners/ALPHA/PYAS2",
            &auth,
            &body.to_string(),
        )
    };
    let r = put(&p);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["saved"].as_str().unwrap().contains("-partners"));
    assert_eq!(
        cli.json(&["partners", "list", "--json"])[0]["timeout_secs"],
        6
    );
    p["certificate_alias"] = serde_json::json!("nobody");
    let r = put(&p);
    assert_eq!((r.status, r.code().as_str()), (422, "invalid_settings"));
    assert_eq!(
        cli.json(&["partners", "list", "--json"])[0]["certificate_alias"],
        "pyas2"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// A stack in moto's CloudFormation with the parameters and outputs the SAM template and the
/// CDK app have (the resources themselves are the harness's: moto cannot run the real template).
fn stack(d: &Deployment, name: &str, as2_url: &str) {
    let client = aws_sdk_cloudformation::Client::new(&d.conf);
    let template = json!({
        "Parameters": {
            "AccountId": {"Type": "String"},
            "TablePrefix": {"Type": "String"},
            "KeystorePasswordSecretName": {"Type": "String"},
        },
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": format!("{name}-marker")}}},
        "Outputs": {
            "BucketName": {"Value": d.bucket},
            "SendQueueUrl": {"Value": d.queue_url},
            "DeadLetterQueueUrl": {"Value": d.dlq_url},
            "As2EndpointUrl": {"Value": as2_url},
        },
    });
    let param = |k: &str, v: &str| {
        aws_sdk_cloudformation::types::Parameter::builder()
            .parameter_key(k)
            .parameter_value(v)
            .build()
    };
    d.rt.block_on(
        client
            .create_stack()
            .stack_name(name)
            .template_body(template.to_string())
            .parameters(param("AccountId", "123456789012"))
            .parameters(param("TablePrefix", &d.prefix))
            .parameters(param("KeystorePasswordSecretName", &d.secret))
            .send(),
    )
    .expect("create_stack");
}

/// The event S3 sends for what `mftg send` put at `key`.
fn event_for(d: &Deployment, key: &str) -> Value {
    let head =
        d.rt.block_on(d.s3.head_object().bucket(&d.bucket).key(key).send())
            .expect("mftg send put the object");
    d.s3_event(
        "ObjectCreated:Put",
        key,
        head.version_id().unwrap_or(""),
        head.e_tag().unwrap_or("").trim_matches('"'),
        head.content_length().unwrap_or(0) as usize,
    )
}

/// `mftg send po-N.x12 --from ALPHA --to PYAS2`, then `send-trigger` on the event S3 sends for
/// it; returns the record id it queued.
fn send_po(cli: &Cli, d: &Deployment, trigger_fn: &mut LambdaEmulator, n: u32) -> String {
    let name = format!("po-{n}.x12");
    let file = cli.cwd.join(&name);
    std::fs::write(&file, edi(n)).unwrap();
    let path = file.to_str().unwrap();
    cli.ok(&["send", path, "--from", "ALPHA", "--to", "PYAS2"]);
    let out = trigger(
        trigger_fn,
        &event_for(d, &format!("AS2/send/ALPHA/PYAS2/{name}")),
    );
    assert_eq!(out["outcome"], "queued", "{out}");
    out["id"].as_str().unwrap().to_string()
}

fn partner(dir: &Path, port: u16, station_pem: &[u8]) -> Pyas2Partner {
    let id = identity("PYAS2");
    Pyas2Partner::start(
        dir,
        "PYAS2",
        (
            &id.certificate.to_pem().unwrap(),
            &id.private_key.private_key_to_pem_pkcs8().unwrap(),
        ),
        port,
        &pyas2::Station {
            as2_id: "ALPHA",
            cert_pem: station_pem,
            url: "http://127.0.0.1:9/as2",
            trust_pem: None,
        },
        "SYNC",
    )
}

fn received(py: &Pyas2Partner) -> usize {
    py.events()
        .iter()
        .filter(|e| e["kind"] == "message")
        .count()
}

#[test]
fn operating_a_deployment_with_mftg() {
    let d = Deployment::new();
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli {
        bin: testkit::workspace_binary("mftg"),
        profiles: tmp.path().join("profiles"),
        cwd: tmp.path().to_path_buf(),
    };
    // The receiver behind its Function URL, which the stack names as the AS2 URL.
    let receiver = FunctionUrl::start(d.function("as2-receiver", "receiver", &[]));
    let stack_name = testkit::Moto::unique("mftg-stack");
    stack(&d, &stack_name, &format!("{}/as2", receiver.url()));

    // A profile from the stack's outputs.
    let (code, out, err) = cli.run(&[
        "init",
        "--aws",
        "--profile",
        "acme",
        "--stack",
        &stack_name,
        "--region",
        testkit::REGION,
        "--endpoint-url",
        d.moto.url(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&d.bucket), "{out}");
    let profile = std::fs::read_to_string(cli.profiles.join("acme.toml")).unwrap();
    assert!(
        profile.contains(&d.queue_url)
            && profile.contains(&format!("table_prefix = \"{}\"", d.prefix)),
        "{profile}"
    );
    // A stack that is not there: one line.
    let (code, _, err) = cli.run(&[
        "init",
        "--aws",
        "--profile",
        "other",
        "--stack",
        "no-such-stack",
        "--region",
        testkit::REGION,
        "--endpoint-url",
        d.moto.url(),
    ]);
    assert_eq!((code, err.trim().lines().count()), (2, 1), "{err}");
    assert!(err.contains("no-such-stack"), "{err}");

    // The same deployment named by flags, in an `[aws]` section of a configuration file.
    let (code, out, err) = cli.run(&[
        "init",
        "--aws",
        "-c",
        "deploy.toml",
        "--region",
        testkit::REGION,
        "--endpoint-url",
        d.moto.url(),
        "--bucket",
        &d.bucket,
        "--table-prefix",
        &d.prefix,
        "--queue-url",
        &d.queue_url,
        "--dlq-url",
        &d.dlq_url,
        "--keystore-password-secret",
        &d.secret,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = cli.run(&["stations", "list", "-c", "deploy.toml", "--json"]);
    assert_eq!((code, out.trim()), (0, "[]"), "{err}");
    let (code, _, err) = cli.run(&["serve", "-c", "deploy.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("names an AWS deployment"), "{err}");
    let (code, _, err) = cli.run(&[
        "init",
        "--aws",
        "-c",
        "other.toml",
        "--region",
        testkit::REGION,
    ]);
    assert_eq!((code, err.trim().lines().count()), (2, 1), "{err}");

    // A station, and its key generated into the bucket's identity.jks.
    cli.ok(&["stations", "add", "--station", "ALPHA"]);
    let out = cli.ok(&["keys", "generate", "--alias", "alpha"]);
    assert!(
        out.contains(&format!("s3://{}/AS2/keystore/identity.jks", d.bucket)),
        "{out}"
    );
    // A key made elsewhere (keytool's PKCS#12), imported into the bucket's keystore; the wrong
    // password is refused in one line.
    testkit::legacy_keytool_pkcs12(tmp.path(), "erp.p12", "erp", "ACME ERP", "P12-Pass-1");
    let p12 = tmp.path().join("erp.p12");
    let import = |password: &str| {
        Command::new(&cli.bin)
            .args([
                "keys",
                "import",
                "--profile",
                "acme",
                "--alias",
                "erp",
                "--from",
            ])
            .arg(&p12)
            .args(["--from-password-env", "MFTG_TEST_P12_PASSWORD"])
            .env("MFTG_PROFILES", &cli.profiles)
            .env("MFTG_TEST_P12_PASSWORD", password)
            .env_remove("AWS_ACCESS_KEY_ID")
            .output()
            .unwrap()
    };
    let wrong = import("not-it");
    let err = String::from_utf8_lossy(&wrong.stderr).into_owned();
    assert_eq!(
        (wrong.status.code(), err.trim().lines().count()),
        (Some(2), 1),
        "{err}"
    );
    assert!(!err.contains("not-it"), "{err}");
    let right = import("P12-Pass-1");
    assert_eq!(
        right.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    let listed = cli.json(&["keys", "list", "--json"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["alias"] == "erp" && k["private_key"] == true),
        "{listed}"
    );
    cli.ok(&["keys", "remove", "--alias", "erp", "--store", "identity"]);

    let err = cli.refused(&["keys", "export", "--alias", "nobody"]);
    assert!(
        err.contains("nobody") && err.contains("identity.jks"),
        "{err}"
    );
    let station_pem = cli.ok(&["keys", "export", "--alias", "alpha"]);
    assert!(
        station_pem.starts_with("-----BEGIN CERTIFICATE-----"),
        "{station_pem}"
    );
    // The key generated is one the Lambdas can open: the same keystore, the secret's password.
    let ks = as2::keys::Keystore::load(
        &d.get("AS2/keystore/identity.jks").unwrap(),
        KEYSTORE_PASSWORD,
        None,
    )
    .unwrap();
    assert!(ks.identity("alpha").is_ok());

    // The partner: its certificate trusted, the partnership added with the CLI.
    let port = free_port();
    let py = partner(&tmp.path().join("pyas2"), port, station_pem.as_bytes());
    let cert = tmp.path().join("pyas2.crt");
    std::fs::write(&cert, identity("PYAS2").certificate.to_pem().unwrap()).unwrap();
    let not_cert = tmp.path().join("not-a-cert.crt");
    std::fs::write(&not_cert, b"hello").unwrap();
    let err = cli.refused(&[
        "keys",
        "trust",
        "--alias",
        "pyas2",
        "--cert",
        not_cert.to_str().unwrap(),
    ]);
    assert!(err.contains("not-a-cert.crt"), "{err}");
    cli.ok(&[
        "keys",
        "trust",
        "--alias",
        "pyas2",
        "--cert",
        cert.to_str().unwrap(),
    ]);
    let url = format!("http://127.0.0.1:{port}/as2");
    let err = cli.refused(&[
        "partners",
        "add",
        "--station",
        "ALPHA",
        "--partner",
        "PYAS2",
        "--url",
        &url,
        "--cert-alias",
        "nobody",
    ]);
    assert!(err.contains("nobody"), "{err}");
    let err = cli.refused(&[
        "partners",
        "add",
        "--station",
        "NOSUCH",
        "--partner",
        "PYAS2",
        "--url",
        &url,
        "--cert-alias",
        "pyas2",
    ]);
    assert!(err.contains("no station NOSUCH"), "{err}");
    cli.ok(&[
        "partners",
        "add",
        "--station",
        "ALPHA",
        "--partner",
        "PYAS2",
        "--url",
        &url,
        "--cert-alias",
        "pyas2",
    ]);
    let listed = cli.json(&["partners", "list", "--json"]);
    assert_eq!(listed[0]["partner"], "PYAS2", "{listed}");
    let keys = cli.json(&["keys", "list", "--json"]);
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .any(|k| k["alias"] == "pyas2" && k["expired"] == false),
        "{keys}"
    );

    // A file sent with `mftg send`, delivered by the real functions.
    let mut trigger_fn = d.function("send-trigger", "trigger", &[]);
    let mut sender = d.function("as2-sender", "sender", &[("MFTG_RETRY_ATTEMPTS", "2")]);
    let err = cli.refused(&["send", "/etc/hostname", "--from", "ALPHA", "--to", "NOBODY"]);
    assert!(err.contains("no partnership ALPHA -> NOBODY"), "{err}");
    let first = send_po(&cli, &d, &mut trigger_fn, 1);
    d.pump_until(&mut sender, "delivery", Duration::from_secs(60), |d| {
        d.record(&first).status == Status::Delivered
    });
    let listed = cli.json(&["messages", "list", "--json"]);
    assert_eq!(
        (listed[0]["id"].as_str(), listed[0]["status"].as_str()),
        (Some(first.as_str()), Some("delivered")),
        "{listed}"
    );
    let message_id = listed[0]["message_id"].as_str().unwrap().to_string();
    let shown = cli.ok(&["messages", "show", &message_id]);
    assert!(
        shown.contains("receipt      processed (signed: true, MIC matches)"),
        "{shown}"
    );
    let payload = cli.ok(&["messages", "download", &first]);
    assert_eq!(payload.as_bytes(), edi(1));
    assert_eq!(received(&py), 1);

    // doctor passes on the deployment (the lifecycle rules installed as the template's custom
    // resource installs them), and names each thing broken on purpose.
    let (code, out, err) = cli.run(&[
        "infra",
        "lifecycle",
        "--bucket",
        &d.bucket,
        "--endpoint-url",
        d.moto.url(),
        "--region",
        testkit::REGION,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let doctor = |want: i32| -> Vec<String> {
        let (code, out, err) = cli.run(&["doctor", "--profile", "acme"]);
        assert_eq!(code, want, "doctor:\n{out}{err}");
        assert!(!out.contains(KEYSTORE_PASSWORD), "{out}");
        out.lines()
            .filter(|l| l.starts_with("FAIL"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(doctor(0), Vec::<String>::new());
    let (code, out, _) = cli.run(&["doctor", "--profile", "acme"]);
    for what in [
        "ok    bucket ",
        "ok    bucket versioning: enabled",
        "ok    lifecycle rules",
        "TTL",
        "send queue",
        "dead-letter queue",
        "secret ",
        "keystore AS2/keystore/identity.jks: opens",
        "station ALPHA: key \"alpha\"",
        "partnership ALPHA -> PYAS2: certificate \"pyas2\"",
        "receiver: ",
    ] {
        assert!(code == 0 && out.contains(what), "{what}: {out}");
    }
    let versioning = |status: aws_sdk_s3::types::BucketVersioningStatus| {
        d.rt.block_on(
            d.s3.put_bucket_versioning()
                .bucket(&d.bucket)
                .versioning_configuration(
                    aws_sdk_s3::types::VersioningConfiguration::builder()
                        .status(status)
                        .build(),
                )
                .send(),
        )
        .unwrap();
    };
    versioning(aws_sdk_s3::types::BucketVersioningStatus::Suspended);
    let failed = doctor(1);
    assert!(
        failed.len() == 1 && failed[0].contains("bucket versioning: versioning is Suspended"),
        "{failed:?}"
    );
    versioning(aws_sdk_s3::types::BucketVersioningStatus::Enabled);
    d.rt.block_on(d.s3.delete_bucket_lifecycle().bucket(&d.bucket).send())
        .unwrap();
    let failed = doctor(1);
    assert!(
        failed.len() == 1
            && failed[0].contains("lifecycle rules: ")
            && failed[0].contains("missing"),
        "{failed:?}"
    );
    cli.run(&[
        "infra",
        "lifecycle",
        "--bucket",
        &d.bucket,
        "--endpoint-url",
        d.moto.url(),
        "--region",
        testkit::REGION,
    ]);
    let err = cli.refused(&["keys", "remove", "--alias", "pyas2"]);
    assert!(err.contains("partnership ALPHA -> PYAS2"), "in use: {err}");
    cli.ok(&["keys", "remove", "--alias", "pyas2", "--force"]);
    let failed = doctor(1);
    assert!(
        failed.len() == 1
            && failed[0].contains("partnership ALPHA -> PYAS2: certificate \"pyas2\""),
        "{failed:?}"
    );
    cli.ok(&[
        "keys",
        "trust",
        "--alias",
        "pyas2",
        "--cert",
        cert.to_str().unwrap(),
    ]);
    assert_eq!(doctor(0), Vec::<String>::new());

    // The partner goes down: the next message fails after its attempts.
    drop(py);
    let second = send_po(&cli, &d, &mut trigger_fn, 2);
    d.pump_until(&mut sender, "failure", Duration::from_secs(60), |d| {
        d.record(&second).status == Status::Failed
    });
    let failed = cli.json(&["messages", "list", "--status", "failed", "--json"]);
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed}");
    assert_eq!(failed[0]["id"], second.as_str());

    // The sender parked its job in the dead-letter queue, with why.
    let parked = cli.json(&["queue", "list", "--json"]);
    let job = parked
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["job"]["id"] == second.as_str())
        .unwrap_or_else(|| panic!("{parked}"));
    assert!(
        job["reason"]
            .as_str()
            .unwrap()
            .contains("gave up after 2 attempts"),
        "{job}"
    );

    // Bad resends: nothing changes.
    let err = cli.refused(&["messages", "resend", "<nothing@nowhere>"]);
    assert!(err.contains("no message <nothing@nowhere>"), "{err}");

    // It comes back; the resend delivers it once, with the same Message-ID.
    let py = partner(
        &tmp.path().join("pyas2-again"),
        port,
        station_pem.as_bytes(),
    );
    let out = cli.ok(&["messages", "resend", &second]);
    let second_mid = d.record(&second).message_id;
    assert!(out.contains(&second_mid), "{out}");
    d.pump_until(
        &mut sender,
        "delivery after resend",
        Duration::from_secs(60),
        |d| d.record(&second).status == Status::Delivered,
    );
    assert_eq!(d.record(&second).message_id, second_mid);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(received(&py), 1, "{:?}", py.events());
    let shown = cli.ok(&["messages", "show", &second]);
    assert!(
        shown.contains("failed") && shown.contains("delivered"),
        "{shown}"
    );

    // The console over the same profile lists what the real functions did.
    console_over_the_deployment(&cli, &tmp.path().join("console.token"), &first, &second);

    // A job that keeps failing (the sender dies at the same step each time) is moved to the
    // dead-letter queue by SQS after its receives; `queue redrive` brings it back.
    let third = send_po(&cli, &d, &mut trigger_fn, 3);
    let mut broken = d.function(
        "as2-sender",
        "broken-sender",
        &[(gateway::failpoint::Failpoints::VAR, "send.built=error")],
    );
    let start = std::time::Instant::now();
    loop {
        let listed = cli.json(&["queue", "list", "--json"]);
        if listed
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["job"]["id"] == third.as_str())
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not dead-lettered: {listed}"
        );
        d.deliver_once(&mut broken);
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(broken);
    let listed = cli.ok(&["queue", "list"]);
    assert!(
        listed.contains(&format!("send {third}"))
            && listed.contains("moved there by the queue after failing again and again"),
        "{listed}"
    );
    let err = cli.refused(&["queue", "redrive", "--id", "nothing-like-it"]);
    assert!(err.contains("no job nothing-like-it"), "{err}");
    let out = cli.ok(&["queue", "redrive", "--id", &third]);
    assert!(out.contains("1 job(s) redriven"), "{out}");
    d.pump_until(
        &mut sender,
        "delivery after redrive",
        Duration::from_secs(60),
        |d| d.record(&third).status == Status::Delivered,
    );
    assert_eq!(received(&py), 2, "{:?}", py.events());
    // The other dead letter (the second message's, delivered since by the resend) stays.
    let left = cli.json(&["queue", "list", "--json"]);
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");

    // Removing: refused while the station has partnerships; the partnership, then the station.
    let err = cli.refused(&["stations", "remove", "ALPHA"]);
    assert!(err.contains("PYAS2"), "{err}");
    cli.ok(&[
        "partners",
        "remove",
        "--station",
        "ALPHA",
        "--partner",
        "PYAS2",
    ]);
    cli.ok(&["stations", "remove", "ALPHA"]);
    assert_eq!(cli.json(&["stations", "list", "--json"]), json!([]));

    // The receiver down, the secret gone: doctor says so.
    drop(receiver);
    let failed = doctor(1);
    assert!(
        failed.len() == 1 && failed[0].starts_with("FAIL  receiver: nothing answers at"),
        "{failed:?}"
    );
    d.rt.block_on(
        aws_sdk_secretsmanager::Client::new(&d.conf)
            .delete_secret()
            .secret_id(&d.secret)
            .force_delete_without_recovery(true)
            .send(),
    )
    .unwrap();
    let failed = doctor(1);
    assert!(
        failed
            .iter()
            .any(|f| f.contains(&format!("secret {}", d.secret))),
        "{failed:?}"
    );

    // A profile naming tables that do not exist: one line naming the table.
    let broken = cli.profiles.join("broken.toml");
    std::fs::write(
        &broken,
        profile.replace(
            &format!("table_prefix = \"{}\"", d.prefix),
            "table_prefix = \"nothere\"",
        ),
    )
    .unwrap();
    let (code, _, err) = cli.run(&["messages", "list", "--profile", "broken"]);
    assert_eq!((code, err.trim().lines().count()), (2, 1), "{err}");
    assert!(err.contains("nothere-messages"), "{err}");
    let (code, out, _) = cli.run(&["doctor", "--profile", "broken"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL  table nothere-claims: does not exist"),
        "{out}"
    );

    // Teardown after the stack is deleted: the versioned bucket with every version, and the
    // tables the stack keeps. The wrong confirmation deletes nothing.
    let err = cli.refused(&["infra", "destroy", "--confirm", "mftg-other"]);
    assert!(err.contains("nothing deleted"), "{err}");
    assert!(d.versions("AS2/") > 3);
    let out = cli.ok(&["infra", "destroy", "--confirm", &d.bucket]);
    assert!(out.contains(&format!("then bucket {}", d.bucket)), "{out}");
    assert!(out.contains(&format!("{}-messages", d.prefix)), "{out}");
    let gone = d.rt.block_on(d.s3.head_bucket().bucket(&d.bucket).send());
    assert!(gone.is_err(), "the bucket is gone");
    let (code, out, _) = cli.run(&["doctor", "--profile", "acme"]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!(
            "FAIL  bucket {0}: bucket {0} does not exist",
            d.bucket
        )),
        "{out}"
    );
}
