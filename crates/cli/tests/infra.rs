//! `mftg infra lifecycle` against moto: dry run, install, nothing to do the second time.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::process::Command;

use testkit::Moto;

fn mftg(moto: &Moto, args: &[&str]) -> (i32, String) {
    testkit::run(
        Command::new(env!("CARGO_BIN_EXE_mftg"))
            .args(args)
            .args(["--endpoint-url", moto.url(), "--region", testkit::REGION])
            .env("AWS_ACCESS_KEY_ID", testkit::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", testkit::SECRET_KEY),
    )
}

#[test]
fn lifecycle_rules_on_an_existing_bucket() {
    let moto = Moto::start();
    let bucket = Moto::unique("mftg-cli");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let conf = gateway_aws::config::load(&gateway_aws::config::Endpoint {
            url: Some(moto.url().into()),
            region: Some(testkit::REGION.into()),
        })
        .await;
        gateway_aws::s3::S3Store::from_conf(&conf, &bucket)
            .create_bucket(testkit::REGION, false)
            .await
            .unwrap();
    });
    let (code, out) = mftg(
        &moto,
        &["infra", "lifecycle", "--bucket", &bucket, "--dry-run"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "+ mftg-files: AS2/files/: noncurrent after 35 day(s), then deleted after 35 more"
        ),
        "{out}"
    );
    assert!(
        out.contains("+ mftg-tmp: AS2/tmp/: noncurrent after 1 day(s), then deleted after 1 more"),
        "{out}"
    );
    assert!(out.contains("dry run: nothing written"), "{out}");
    let (code, out) = mftg(&moto, &["infra", "lifecycle", "--bucket", &bucket]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("lifecycle configuration written"), "{out}");
    let (code, out) = mftg(&moto, &["infra", "lifecycle", "--bucket", &bucket]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("= mftg-raw-mdn") && out.contains("nothing to do"),
        "{out}"
    );
    let (code, out) = mftg(
        &moto,
        &["infra", "lifecycle", "--bucket", "mftg-missing-bucket-0"],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("bucket mftg-missing-bucket-0"), "{out}");
}
