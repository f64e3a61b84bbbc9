//! The Transfer Family adapter against moto server's Transfer API: create, describe, import key,
//! delete key, delete user, driven by the provisioning rules. (moto has no ListUsers and no
//! UpdateUser; the provisioner needs neither.)

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use aws_sdk_transfer::types::{IdentityProviderType, Protocol, Tag};
use gateway_aws::config::{self, Endpoint};
use gateway_aws::transfer::TransferFamily;
use sftp::keys::{generate, KeyType, PrivateKeyFormat, Secret};
use sftp::provision::{KeyChoice, Outcome, Provisioner, Request, Settings, TransferApi};
use testkit::Moto;

const ROLE: &str = "arn:aws:iam::123456789012:role/mftg-sftp-user";

async fn client(moto: &Moto) -> aws_sdk_transfer::Client {
    let conf = config::load(&Endpoint {
        url: Some(moto.url().into()),
        region: Some(testkit::REGION.into()),
    })
    .await;
    aws_sdk_transfer::Client::new(&conf)
}

async fn new_server(client: &aws_sdk_transfer::Client, tags: &[(&str, &str)]) -> String {
    let mut req = client
        .create_server()
        .identity_provider_type(IdentityProviderType::ServiceManaged)
        .protocols(Protocol::Sftp);
    for (k, v) in tags {
        req = req.tags(Tag::builder().key(*k).value(*v).build().unwrap());
    }
    req.send().await.unwrap().server_id().to_string()
}

fn provisioner(client: &aws_sdk_transfer::Client, server: &str) -> Provisioner<TransferFamily> {
    Provisioner::new(
        TransferFamily::new(client.clone(), server),
        Settings {
            role_arn: ROLE.into(),
            host: None,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enable_rotate_describe_disable_on_moto() {
    let moto = Moto::start();
    let client = client(&moto).await;
    let server = new_server(&client, &[]).await;
    let p = provisioner(&client, &server);
    let account = "123456789012";
    let user = Moto::unique("acme").replace('-', "_");

    // Enable with a generated PPK v3 key.
    let access = p
        .enable(
            account,
            &user,
            KeyChoice::Generate {
                key_type: KeyType::Ed25519,
                format: PrivateKeyFormat::PuttyV3,
                passphrase: Some(Secret::new("Pass 1".into())),
            },
        )
        .await
        .unwrap();
    assert_eq!(access.server_id, server);
    assert_eq!(
        access.host,
        format!("{server}.server.transfer.{}.amazonaws.com", testkit::REGION)
    );
    assert_eq!(access.keys.len(), 1);
    assert!(!access.keys[0].id.is_empty(), "the key ID is read back");
    let ppk = access.private_key.as_ref().unwrap();
    assert!(ppk
        .contents
        .expose()
        .starts_with("PuTTY-User-Key-File-3: ssh-ed25519"));

    // What moto holds, read with the SDK directly.
    let described = client
        .describe_user()
        .server_id(&server)
        .user_name(&user)
        .send()
        .await
        .unwrap()
        .user
        .unwrap();
    assert_eq!(described.role(), Some(ROLE));
    assert_eq!(
        described.home_directory_type().map(|t| t.as_str()),
        Some("LOGICAL")
    );
    let mappings = described.home_directory_mappings();
    assert_eq!(mappings.len(), 1);
    assert_eq!(
        (mappings[0].entry(), mappings[0].target()),
        ("/", "/mftg-123456789012")
    );
    let policy: serde_json::Value = serde_json::from_str(described.policy().unwrap()).unwrap();
    assert_eq!(policy, sftp::policy::session_policy(account));
    assert!(described
        .tags()
        .iter()
        .any(|t| t.key() == "mftg:account" && t.value() == account));
    let body = described.ssh_public_keys()[0].ssh_public_key_body();
    assert_eq!(
        sftp::keys::fingerprint_of(body).as_deref(),
        Some(access.keys[0].fingerprint.as_str())
    );

    // Enabling the same name again is refused, for this account and for another.
    let again = p
        .enable(account, &user, existing(KeyType::Ed25519))
        .await
        .unwrap_err();
    assert_eq!(again.code(), "already_enabled");
    let other = p
        .enable("999999999999", &user, existing(KeyType::Ed25519))
        .await
        .unwrap_err();
    assert_eq!(other.code(), "name_taken");

    // Rotate to an existing RSA key: imported, then the old key deleted.
    let rsa = generate(
        KeyType::Rsa(3072),
        PrivateKeyFormat::OpenSsh,
        None,
        "laptop",
    )
    .unwrap();
    let rotated = p
        .rotate(
            account,
            &user,
            KeyChoice::Existing {
                public_key: rsa.public_key.clone(),
            },
        )
        .await
        .unwrap();
    assert!(rotated.private_key.is_none());
    assert_eq!(rotated.keys.len(), 1);
    assert_eq!(rotated.keys[0].fingerprint, rsa.fingerprint);
    assert!(rotated.warnings.is_empty(), "{:?}", rotated.warnings);
    let keys = p.api().user(&user).await.unwrap().unwrap().keys;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].id, rotated.keys[0].id);

    // Describe, through the JSON request the Lambda takes.
    let req: Request = serde_json::from_value(serde_json::json!({
        "action": "describe", "account_id": account, "username": user
    }))
    .unwrap();
    let Outcome::Described(d) = p.handle(req).await.unwrap() else {
        panic!()
    };
    assert_eq!(d.keys[0].fingerprint, rsa.fingerprint);
    assert_eq!(
        d.connect_command,
        format!("sftp -i <private-key> {user}@{}", d.host)
    );

    // Disable: the user and its keys are gone.
    let Outcome::Disabled { removed_keys, .. } = p.disable(account, &user).await.unwrap() else {
        panic!()
    };
    assert_eq!(removed_keys.len(), 1);
    assert!(p.api().user(&user).await.unwrap().is_none());
    assert_eq!(
        p.describe(account, &user).await.unwrap_err().code(),
        "not_enabled"
    );
}

fn existing(kind: KeyType) -> KeyChoice {
    KeyChoice::Existing {
        public_key: generate(kind, PrivateKeyFormat::OpenSsh, None, "x")
            .unwrap()
            .public_key,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_host_names_and_unreachable_servers() {
    let moto = Moto::start();
    let client = client(&moto).await;
    let server = new_server(
        &client,
        &[("aws:transfer:customHostname", "sftp.example.net")],
    )
    .await;
    let p = provisioner(&client, &server);
    let user = Moto::unique("globex").replace('-', "_");
    let a = p
        .enable("globex", &user, existing(KeyType::EcdsaP256))
        .await
        .unwrap();
    assert_eq!(a.host, "sftp.example.net");
    assert_eq!(
        a.connect_command,
        format!("sftp -i <private-key> {user}@sftp.example.net")
    );

    // A server that does not exist: an API error (worth retrying once fixed), not a bad request,
    // and nothing is created.
    let missing = provisioner(&client, "s-00000000000000000");
    let e = missing
        .enable("globex", "someone", existing(KeyType::Ed25519))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "transfer_api", "{e}");
    assert!(!e.is_request_error());
    assert!(e.to_string().contains("DescribeServer"), "{e}");

    // Deleting a key that is not there is reported as not found by the adapter.
    let err = p
        .api()
        .delete_key(&user, "key-that-is-not-there")
        .await
        .unwrap_err();
    assert!(
        matches!(err, sftp::provision::ApiError::NotFound(_)),
        "{err:?}"
    );
}
