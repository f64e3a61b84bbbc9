//! The provisioning rules over an in-memory Transfer Family (a domain unit test: the AWS adapter
//! is tested against moto in `gateway-aws`).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeMap;
use std::sync::Mutex;

use sftp::keys::{generate, KeyType, PrivateKeyFormat};
use sftp::provision::{
    Access, ApiError, InstalledKey, KeyChoice, NewUser, Outcome, Provisioner, Request, ServerInfo,
    Settings, TransferApi, UserInfo,
};
use sftp::SftpError;

#[derive(Default)]
struct FakeTransfer {
    users: Mutex<BTreeMap<String, (NewUser, Vec<InstalledKey>)>>,
    calls: Mutex<Vec<String>>,
    next_id: Mutex<u32>,
    fail_delete_key: Mutex<bool>,
    fail_import: Mutex<bool>,
    identity_provider: Option<&'static str>,
    state: Option<&'static str>,
}

impl FakeTransfer {
    fn log(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
    fn id(&self) -> String {
        let mut n = self.next_id.lock().unwrap();
        *n += 1;
        format!("key-{n}")
    }
}

impl TransferApi for FakeTransfer {
    async fn server(&self) -> Result<ServerInfo, ApiError> {
        Ok(ServerInfo {
            server_id: "s-0123456789abcdef0".into(),
            host: "s-0123456789abcdef0.server.transfer.eu-west-1.amazonaws.com".into(),
            identity_provider: self.identity_provider.unwrap_or("SERVICE_MANAGED").into(),
            protocols: vec!["SFTP".into()],
            state: self.state.unwrap_or("ONLINE").into(),
        })
    }
    async fn create_user(&self, user: &NewUser) -> Result<(), ApiError> {
        self.log(format!("create {}", user.username));
        let mut users = self.users.lock().unwrap();
        if users.contains_key(&user.username) {
            return Err(ApiError::Exists(user.username.clone()));
        }
        let key = InstalledKey {
            id: self.id(),
            body: user.public_key.clone(),
        };
        users.insert(user.username.clone(), (user.clone(), vec![key]));
        Ok(())
    }
    async fn user(&self, username: &str) -> Result<Option<UserInfo>, ApiError> {
        Ok(self
            .users
            .lock()
            .unwrap()
            .get(username)
            .map(|(u, keys)| UserInfo {
                username: u.username.clone(),
                tags: u.tags.clone(),
                keys: keys.clone(),
                home: u.home.clone(),
            }))
    }
    async fn import_key(&self, username: &str, public_key: &str) -> Result<String, ApiError> {
        self.log(format!("import {username}"));
        if *self.fail_import.lock().unwrap() {
            return Err(ApiError::Other("throttled".into()));
        }
        let id = self.id();
        let mut users = self.users.lock().unwrap();
        let (_, keys) = users
            .get_mut(username)
            .ok_or_else(|| ApiError::NotFound(username.into()))?;
        keys.push(InstalledKey {
            id: id.clone(),
            body: public_key.into(),
        });
        Ok(id)
    }
    async fn delete_key(&self, username: &str, key_id: &str) -> Result<(), ApiError> {
        self.log(format!("delete-key {username} {key_id}"));
        if *self.fail_delete_key.lock().unwrap() {
            return Err(ApiError::Other("access denied".into()));
        }
        let mut users = self.users.lock().unwrap();
        let (_, keys) = users
            .get_mut(username)
            .ok_or_else(|| ApiError::NotFound(username.into()))?;
        let before = keys.len();
        keys.retain(|k| k.id != key_id);
        if keys.len() == before {
            return Err(ApiError::NotFound(key_id.into()));
        }
        Ok(())
    }
    async fn delete_user(&self, username: &str) -> Result<(), ApiError> {
        self.log(format!("delete-user {username}"));
        self.users
            .lock()
            .unwrap()
            .remove(username)
            .map(|_| ())
            .ok_or_else(|| ApiError::NotFound(username.into()))
    }
}

fn provisioner(api: FakeTransfer) -> Provisioner<FakeTransfer> {
    Provisioner::new(
        api,
        Settings {
            role_arn: "arn:aws:iam::111122223333:role/mftg-sftp-user".into(),
            host: None,
        },
    )
}

fn generate_choice(format: PrivateKeyFormat, pass: Option<&str>) -> KeyChoice {
    KeyChoice::Generate {
        key_type: KeyType::Ed25519,
        format,
        passphrase: pass.map(|p| sftp::keys::Secret::new(p.into())),
    }
}

fn existing(kind: KeyType) -> (KeyChoice, String) {
    let k = generate(kind, PrivateKeyFormat::OpenSsh, None, "user@laptop").unwrap();
    (
        KeyChoice::Existing {
            public_key: k.public_key.clone(),
        },
        k.fingerprint,
    )
}

#[tokio::test]
async fn enable_with_a_generated_key_hands_it_out_once_and_sets_up_the_user() {
    let p = provisioner(FakeTransfer::default());
    let access = p
        .enable(
            "123456789012",
            "acme_edi",
            generate_choice(PrivateKeyFormat::OpenSsh, Some("pw 1")),
        )
        .await
        .unwrap();
    let key = access.private_key.as_ref().unwrap();
    assert!(key.encrypted);
    assert_eq!(key.file_name, "acme_edi_ed25519");
    assert!(key
        .contents
        .expose()
        .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    assert_eq!(access.bucket, "mftg-123456789012");
    assert_eq!(access.keys.len(), 1);
    assert_eq!(access.keys[0].id, "key-1");
    assert_eq!(access.keys[0].algorithm, "ssh-ed25519");
    assert_eq!(
        access.connect_command,
        "sftp -i acme_edi_ed25519 acme_edi@s-0123456789abcdef0.server.transfer.eu-west-1.amazonaws.com"
    );
    assert!(access.warnings.is_empty(), "{:?}", access.warnings);
    // What the server was asked to create.
    let users = p_users(&p);
    let (user, keys) = &users["acme_edi"];
    assert_eq!(
        user.role_arn,
        "arn:aws:iam::111122223333:role/mftg-sftp-user"
    );
    assert_eq!(
        user.home,
        vec![("/".to_string(), "/mftg-123456789012".to_string())]
    );
    assert!(user
        .tags
        .contains(&("mftg:account".to_string(), "123456789012".to_string())));
    let policy: serde_json::Value = serde_json::from_str(&user.policy).unwrap();
    assert_eq!(policy, sftp::policy::session_policy("123456789012"));
    assert!(keys[0].body.starts_with("ssh-ed25519 "));
    // The private key shows in the JSON reply (that is how it reaches the user), never in Debug.
    let debug = format!("{access:?}");
    assert!(!debug.contains("OPENSSH PRIVATE KEY"), "{debug}");
    let json = serde_json::to_value(Outcome::Enabled(access)).unwrap();
    assert_eq!(json["result"], "enabled");
    assert!(json["private_key"]["contents"]
        .as_str()
        .unwrap()
        .contains("OPENSSH PRIVATE KEY"));
    assert_eq!(json["private_key"]["format"], "openssh");
    // Describe never has it again.
    let described = p.describe("123456789012", "acme_edi").await.unwrap();
    assert!(described.private_key.is_none());
    assert_eq!(
        json["keys"][0]["fingerprint"],
        described.keys[0].fingerprint.as_str()
    );
    assert_eq!(described.connect_command, "sftp -i <private-key> acme_edi@s-0123456789abcdef0.server.transfer.eu-west-1.amazonaws.com");
}

fn p_users(p: &Provisioner<FakeTransfer>) -> BTreeMap<String, (NewUser, Vec<InstalledKey>)> {
    api_of(p).users.lock().unwrap().clone()
}

fn api_of(p: &Provisioner<FakeTransfer>) -> &FakeTransfer {
    p.api()
}

#[tokio::test]
async fn enable_with_an_existing_key_and_ppk_notes() {
    let p = provisioner(FakeTransfer::default());
    let (choice, fp) = existing(KeyType::Rsa(2048));
    let access = p.enable("acme", "acme-1", choice).await.unwrap();
    assert!(access.private_key.is_none());
    assert_eq!(access.keys[0].fingerprint, fp);
    assert_eq!(access.keys[0].algorithm, "ssh-rsa");
    let json = serde_json::to_string(&Outcome::Enabled(access)).unwrap();
    assert!(!json.contains("private_key"), "{json}");

    let ppk = p
        .enable(
            "acme",
            "acme-2",
            generate_choice(PrivateKeyFormat::PuttyV3, None),
        )
        .await
        .unwrap();
    let key = ppk.private_key.as_ref().unwrap();
    assert_eq!(key.file_name, "acme-2_ed25519.ppk");
    assert!(!key.encrypted);
    assert!(key
        .contents
        .expose()
        .starts_with("PuTTY-User-Key-File-3: ssh-ed25519"));
    assert!(
        ppk.warnings
            .iter()
            .any(|w| w.contains("puttygen acme-2_ed25519.ppk -O private-openssh")),
        "{:?}",
        ppk.warnings
    );
}

#[tokio::test]
async fn a_name_is_enabled_once_and_belongs_to_one_account() {
    let p = provisioner(FakeTransfer::default());
    p.enable("acme", "shared", existing(KeyType::Ed25519).0)
        .await
        .unwrap();
    let again = p
        .enable("acme", "shared", existing(KeyType::Ed25519).0)
        .await
        .unwrap_err();
    assert_eq!(again, SftpError::AlreadyEnabled("shared".into()));
    let other = p
        .enable("globex", "shared", existing(KeyType::Ed25519).0)
        .await
        .unwrap_err();
    assert_eq!(other, SftpError::NameTaken("shared".into()));
    // Another account can neither see, rotate nor disable it: it is "not enabled" for them.
    for e in [
        p.describe("globex", "shared").await.unwrap_err(),
        p.rotate("globex", "shared", existing(KeyType::Ed25519).0)
            .await
            .unwrap_err(),
        match p.disable("globex", "shared").await {
            Err(e) => e,
            Ok(o) => panic!("{o:?}"),
        },
    ] {
        assert_eq!(e.code(), "not_enabled", "{e}");
        assert!(e.is_request_error());
    }
    assert!(p_users(&p).contains_key("shared"));
}

#[tokio::test]
async fn rotate_installs_the_new_key_before_removing_the_old() {
    let p = provisioner(FakeTransfer::default());
    let first = p
        .enable("acme", "acme", existing(KeyType::EcdsaP256).0)
        .await
        .unwrap();
    let old_fp = first.keys[0].fingerprint.clone();
    let rotated = p
        .rotate(
            "acme",
            "acme",
            generate_choice(PrivateKeyFormat::PuttyV2, Some("x")),
        )
        .await
        .unwrap();
    assert!(rotated
        .private_key
        .as_ref()
        .unwrap()
        .contents
        .expose()
        .starts_with("PuTTY-User-Key-File-2: "));
    assert_eq!(rotated.keys.len(), 1);
    assert_ne!(rotated.keys[0].fingerprint, old_fp);
    let calls = api_of(&p).calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec!["create acme", "import acme", "delete-key acme key-1"]
    );
    let described = p.describe("acme", "acme").await.unwrap();
    assert_eq!(described.keys, rotated.keys);

    // The same key again is refused, and nothing changes.
    let current = p_users(&p)["acme"].1[0].body.clone();
    let same = p
        .rotate(
            "acme",
            "acme",
            KeyChoice::Existing {
                public_key: current,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(same.code(), "same_key");
    assert_eq!(p_users(&p)["acme"].1.len(), 1);
}

#[tokio::test]
async fn a_failed_rotation_never_leaves_the_user_without_a_key() {
    let p = provisioner(FakeTransfer::default());
    p.enable("acme", "acme", existing(KeyType::Ed25519).0)
        .await
        .unwrap();
    // Import fails: the old key stays, and the error says to retry.
    *api_of(&p).fail_import.lock().unwrap() = true;
    let e = p
        .rotate("acme", "acme", existing(KeyType::Ed25519).0)
        .await
        .unwrap_err();
    assert!(!e.is_request_error(), "{e}");
    assert_eq!(p_users(&p)["acme"].1.len(), 1);
    *api_of(&p).fail_import.lock().unwrap() = false;
    // Import works, removing the old key fails: both keys are reported, with a warning, and the
    // new private key is still handed out (it is the only chance).
    *api_of(&p).fail_delete_key.lock().unwrap() = true;
    let a = p
        .rotate(
            "acme",
            "acme",
            generate_choice(PrivateKeyFormat::OpenSsh, None),
        )
        .await
        .unwrap();
    assert!(a.private_key.is_some());
    assert_eq!(a.keys.len(), 2);
    assert!(
        a.warnings
            .iter()
            .any(|w| w.contains("still installed") && w.contains(&a.keys[1].fingerprint)),
        "{:?}",
        a.warnings
    );
    assert_eq!(p_users(&p)["acme"].1.len(), 2);
}

#[tokio::test]
async fn disable_removes_the_user_and_reports_its_keys() {
    let p = provisioner(FakeTransfer::default());
    let (choice, fp) = existing(KeyType::EcdsaP384);
    p.enable("acme", "acme", choice).await.unwrap();
    match p.disable("acme", "acme").await.unwrap() {
        Outcome::Disabled {
            removed_keys,
            username,
            ..
        } => {
            assert_eq!(username, "acme");
            assert_eq!(removed_keys.len(), 1);
            assert_eq!(removed_keys[0].fingerprint, fp);
        }
        other => panic!("{other:?}"),
    }
    assert!(p_users(&p).is_empty());
    assert_eq!(
        p.disable("acme", "acme").await.unwrap_err().code(),
        "not_enabled"
    );
    // Enabling again afterwards works (seed 1.4: disable, then enable with a new key).
    p.enable("acme", "acme", existing(KeyType::Ed25519).0)
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_is_created() {
    let p = provisioner(FakeTransfer::default());
    let dsa = "ssh-dss AAAAB3NzaC1kc3MAAACBAP1/U4EddRIpUt9KnC7s5Of2EbdSPO9EAMMeP4C2USZpRV1AIlH7WT2NWPq/xfW6MPbLm1Vs14E7gB00b/JmYLdrmVClpJ+f6AR7ECLCT7up1/63xhv4O1fnxqimFQ8E+4P208UewwI1VBNaFpEy9nXzrith1yrv8iIDGZ3RSAHHAAAAFQCXYFCPFSMLzLKSuYKi64QL8Fgc9QAAAIEA9+GghdabPd7LvKtcNrhXuXmUr7v6OuqC+VdMCz0HgmdRWVeOutRZT+ZxBxCBgLRJFnEj6EwoFhO3zwkyjMim4TwWeotUfI0o4KOuHiuzpnWRbqN/C/ohNWLx+2J6ASQ7zKTxvqhRkImog9/hWuWfBpKLZl6Ae1UlZAFMO/7PSSoAAACBAKKSU2PFl/qOLxIwmBZPPIcJshVe7bVUpFvyl3BbJDow8rXfskl8wO63OzP/qLmcJM0+JbcRU/53JjTuyk31drV2qxhIOsLDC/Ug1JLz6HMsdWa9TNBl9hpcMMnhf9lIHIRThjwm2X7ayGWiXmcJtEvbjtQQWu+P58Tm8bFAYAPU user@old";
    let private = generate(KeyType::Ed25519, PrivateKeyFormat::OpenSsh, None, "oops").unwrap();
    let cases: Vec<(&str, &str, KeyChoice, &str)> = vec![
        (
            "acme",
            "-acme",
            existing(KeyType::Ed25519).0,
            "invalid_username",
        ),
        (
            "acme",
            "ac",
            existing(KeyType::Ed25519).0,
            "invalid_username",
        ),
        (
            "acme",
            "acme.user",
            existing(KeyType::Ed25519).0,
            "invalid_username",
        ),
        (
            "ACME",
            "acme",
            existing(KeyType::Ed25519).0,
            "invalid_account",
        ),
        ("*", "acme", existing(KeyType::Ed25519).0, "invalid_account"),
        (
            "acme",
            "acme",
            KeyChoice::Existing {
                public_key: dsa.into(),
            },
            "invalid_public_key",
        ),
        (
            "acme",
            "acme",
            KeyChoice::Existing {
                public_key: "ssh-ed25519 AAAA!!notbase64 x".into(),
            },
            "invalid_public_key",
        ),
        (
            "acme",
            "acme",
            KeyChoice::Existing {
                public_key: "hello\nworld\nssh".into(),
            },
            "invalid_public_key",
        ),
        (
            "acme",
            "acme",
            KeyChoice::Existing {
                public_key: private.private_key.expose().into(),
            },
            "private_key_given",
        ),
        (
            "acme",
            "acme",
            KeyChoice::Generate {
                key_type: KeyType::Rsa(1024),
                format: PrivateKeyFormat::OpenSsh,
                passphrase: None,
            },
            "unsupported",
        ),
    ];
    for (account, name, choice, code) in cases {
        let e = p.enable(account, name, choice).await.unwrap_err();
        assert_eq!(e.code(), code, "{account}/{name}: {e}");
        assert!(e.is_request_error());
        assert!(
            !e.to_string()
                .contains(&private.private_key.expose()[40..80]),
            "{e}"
        );
    }
    assert!(p_users(&p).is_empty());
    assert!(api_of(&p).calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_server_must_be_usable_for_key_based_users() {
    let p = provisioner(FakeTransfer {
        identity_provider: Some("API_GATEWAY"),
        ..FakeTransfer::default()
    });
    let e = p
        .enable("acme", "acme", existing(KeyType::Ed25519).0)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "server");
    assert!(e.to_string().contains("SERVICE_MANAGED"), "{e}");
    assert!(p_users(&p).is_empty());

    let offline = provisioner(FakeTransfer {
        state: Some("OFFLINE"),
        ..FakeTransfer::default()
    });
    let a: Access = offline
        .enable("acme", "acme", existing(KeyType::Ed25519).0)
        .await
        .unwrap();
    assert!(
        a.warnings.iter().any(|w| w.contains("OFFLINE")),
        "{:?}",
        a.warnings
    );
}

#[tokio::test]
async fn requests_as_json() {
    let p = provisioner(FakeTransfer::default());
    let req: Request = serde_json::from_str(
        r#"{"action":"enable","account_id":"acme","username":"acme",
            "key":{"generate":{"type":"rsa-3072","format":"ppk2","passphrase":"Correct Horse 9"}}}"#,
    )
    .unwrap();
    let debug = format!("{req:?}");
    assert!(!debug.contains("Correct Horse"), "{debug}");
    let Outcome::Enabled(a) = p.handle(req).await.unwrap() else {
        panic!()
    };
    assert_eq!(a.keys[0].algorithm, "ssh-rsa");
    assert_eq!(
        a.private_key.as_ref().unwrap().file_name,
        "acme_rsa-3072.ppk"
    );

    let describe: Request =
        serde_json::from_str(r#"{"action":"describe","account_id":"acme","username":"acme"}"#)
            .unwrap();
    assert!(matches!(
        p.handle(describe).await.unwrap(),
        Outcome::Described(_)
    ));
    for bad in [
        r#"{"action":"explode","account_id":"acme","username":"acme"}"#,
        r#"{"action":"enable","account_id":"acme","username":"acme"}"#,
        r#"{"action":"enable","account_id":"acme","username":"acme","key":{"generate":{"type":"dsa"}}}"#,
        r#"{"action":"enable","account_id":"acme","username":"acme","key":{"generate":{"format":"pkcs12"}}}"#,
        r#"{"action":"describe","account_id":"acme","username":"acme","password":"x"}"#,
    ] {
        assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
    }
}
