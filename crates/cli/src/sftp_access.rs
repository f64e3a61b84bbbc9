//! `mftg sftp enable|rotate|describe|disable`: customers' SFTP users on AWS Transfer Family (or
//! on an emulator at `--endpoint-url`), with the same rules as the `sftp-provisioner` Lambda.
//! A generated private key is written once, to a new file only its owner can read; it is never
//! printed.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gateway_aws::config::Endpoint;
use gateway_aws::transfer::TransferFamily;
use sftp::keys::{KeyType, PrivateKeyFormat, Secret};
use sftp::provision::{self, Access, KeyChoice, Outcome, Provisioner, Settings};

#[derive(clap::Subcommand)]
pub enum SftpCommand {
    /// Creates the account's SFTP user with a new or an existing key (seed 1.2).
    Enable(KeyArgs),
    /// Gives the user a new key; the old one is removed once the new one is installed.
    Rotate(KeyArgs),
    /// The user's key fingerprints, host and the command to connect.
    Describe(Common),
    /// Deletes the user and its keys (seed 1.4).
    Disable(Common),
}

#[derive(clap::Args)]
pub struct Common {
    /// The account ID; its bucket is mftg-<account-id>.
    #[arg(long)]
    account: String,
    /// The SFTP user name.
    #[arg(long, allow_hyphen_values = true)]
    user: String,
    /// The Transfer Family server (s-...).
    #[arg(long, env = "MFTG_SFTP_SERVER_ID")]
    server_id: String,
    /// The IAM role users' sessions assume (needed to enable).
    #[arg(long, env = "MFTG_SFTP_USER_ROLE_ARN")]
    role_arn: Option<String>,
    /// The host name users connect to, if not the server's own.
    #[arg(long, env = "MFTG_SFTP_HOST")]
    host: Option<String>,
    /// Talk to this endpoint instead of AWS (moto, LocalStack).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// The AWS region (default: the AWS configuration's).
    #[arg(long, env = "AWS_REGION")]
    region: Option<String>,
    /// Print the reply as JSON (a private key's contents are left out: they go to the file).
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct KeyArgs {
    #[command(flatten)]
    common: Common,
    /// Use this existing public key (a .pub file, or PuTTYgen's exported public key).
    #[arg(long, conflicts_with_all = ["generate", "format", "passphrase_file", "passphrase_env"])]
    public_key: Option<PathBuf>,
    /// Generate a key pair: ed25519, rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384, ecdsa-p521.
    #[arg(long)]
    generate: Option<KeyType>,
    /// The private key's format: ppk3 (PuTTY, default), ppk2 (older PuTTY/WinSCP) or openssh.
    #[arg(long, default_value = "ppk3")]
    format: PrivateKeyFormat,
    /// Protect the private key with the passphrase in this file (first line).
    #[arg(long, conflicts_with = "passphrase_env")]
    passphrase_file: Option<PathBuf>,
    /// Protect the private key with the passphrase in this environment variable.
    #[arg(long)]
    passphrase_env: Option<String>,
    /// Where to write the private key.
    #[arg(long, default_value = ".")]
    out: PathBuf,
}

pub fn run(command: SftpCommand) -> Result<ExitCode, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        match command {
            SftpCommand::Enable(k) => with_key(k, true).await,
            SftpCommand::Rotate(k) => with_key(k, false).await,
            SftpCommand::Describe(c) => {
                let p = provisioner(&c).await?;
                let access = p
                    .describe(&c.account, &c.user)
                    .await
                    .map_err(|e| e.to_string())?;
                report(&c, Outcome::Described(access), None)
            }
            SftpCommand::Disable(c) => {
                let p = provisioner(&c).await?;
                let outcome = p
                    .disable(&c.account, &c.user)
                    .await
                    .map_err(|e| e.to_string())?;
                report(&c, outcome, None)
            }
        }
    })
}

async fn provisioner(c: &Common) -> Result<Provisioner<TransferFamily>, String> {
    let conf = gateway_aws::config::load(&Endpoint {
        url: c.endpoint_url.clone().filter(|u| !u.is_empty()),
        region: c.region.clone().filter(|r| !r.is_empty()),
    })
    .await;
    Ok(Provisioner::new(
        TransferFamily::from_conf(&conf, c.server_id.clone()),
        Settings {
            role_arn: c.role_arn.clone().unwrap_or_default(),
            host: c.host.clone().filter(|h| !h.is_empty()),
        },
    ))
}

fn passphrase(k: &KeyArgs) -> Result<Option<Secret>, String> {
    if let Some(path) = &k.passphrase_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let line = text.lines().next().unwrap_or("").to_string();
        if line.is_empty() {
            return Err(format!("{} holds no passphrase", path.display()));
        }
        return Ok(Some(Secret::new(line)));
    }
    if let Some(var) = &k.passphrase_env {
        let value =
            std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?;
        return Ok(Some(Secret::new(value)));
    }
    Ok(None)
}

/// The private key file, created before anything is provisioned (so a key that cannot be saved
/// never becomes the user's only key), readable by its owner only.
struct KeyFile {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl KeyFile {
    fn create(path: PathBuf) -> Result<KeyFile, String> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| {
                format!(
                    "cannot create {}: {e} (the private key is written to a new file only)",
                    path.display()
                )
            })?;
        Ok(KeyFile {
            path,
            file: Some(file),
        })
    }

    fn write(mut self, contents: &str) -> Result<PathBuf, String> {
        let mut file = self.file.take().ok_or("key file already written")?;
        file.write_all(contents.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))?;
        // As the seed says: `chmod 400 <private-key>`.
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o400))
            .map_err(|e| format!("cannot protect {}: {e}", self.path.display()))?;
        Ok(std::mem::take(&mut self.path))
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        // Not written (provisioning failed): leave no empty file behind.
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

async fn with_key(k: KeyArgs, enable: bool) -> Result<ExitCode, String> {
    let c = &k.common;
    if enable && c.role_arn.as_deref().unwrap_or("").is_empty() {
        return Err("--role-arn (or MFTG_SFTP_USER_ROLE_ARN) is needed to enable a user".into());
    }
    let (choice, key_file) = match (&k.public_key, k.generate) {
        (Some(path), None) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            (KeyChoice::Existing { public_key: text }, None)
        }
        (None, Some(key_type)) => {
            // Checked before the file is created, so a refused request leaves nothing behind.
            sftp::username::check(&c.user).map_err(|e| e.to_string())?;
            let name = provision::key_file_name(&c.user, key_type, k.format);
            let file = KeyFile::create(k.out.join(name))?;
            let choice = KeyChoice::Generate {
                key_type,
                format: k.format,
                passphrase: passphrase(&k)?,
            };
            (choice, Some(file))
        }
        _ => return Err("give either --generate TYPE or --public-key FILE".into()),
    };
    let p = provisioner(c).await?;
    let result = if enable {
        p.enable(&c.account, &c.user, choice)
            .await
            .map(Outcome::Enabled)
    } else {
        p.rotate(&c.account, &c.user, choice)
            .await
            .map(Outcome::Rotated)
    };
    let mut outcome = result.map_err(|e| e.to_string())?;
    let written = match (&mut outcome, key_file) {
        (Outcome::Enabled(a) | Outcome::Rotated(a), Some(file)) => match a.private_key.as_ref() {
            Some(key) => Some(file.write(key.contents.expose())?),
            None => None,
        },
        _ => None,
    };
    report(c, outcome, written.as_deref())
}

fn report(c: &Common, outcome: Outcome, key_path: Option<&Path>) -> Result<ExitCode, String> {
    if c.json {
        let mut value = serde_json::to_value(&outcome).map_err(|e| e.to_string())?;
        if let Some(key) = value.get_mut("private_key").and_then(|v| v.as_object_mut()) {
            key.remove("contents");
            if let Some(path) = key_path {
                key.insert("path".into(), path.display().to_string().into());
            }
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?
        );
        return Ok(ExitCode::SUCCESS);
    }
    match outcome {
        Outcome::Enabled(a) => print_access("SFTP enabled", &a, key_path),
        Outcome::Rotated(a) => print_access("Key rotated", &a, key_path),
        Outcome::Described(a) => print_access("SFTP user", &a, key_path),
        Outcome::Disabled {
            account_id,
            username,
            removed_keys,
        } => {
            println!("SFTP disabled for {username} (account {account_id}).");
            for k in removed_keys {
                println!("removed key:  {} ({})", k.fingerprint, k.algorithm);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_access(title: &str, a: &Access, key_path: Option<&Path>) {
    println!("{title}: {} (account {})", a.username, a.account_id);
    println!("server:       {}", a.server_id);
    println!("host:         {} (port 22)", a.host);
    println!("home:         / is the bucket {}", a.bucket);
    for k in &a.keys {
        println!("key:          {} ({})", k.fingerprint, k.algorithm);
    }
    let command = match (key_path, &a.private_key) {
        (Some(path), Some(key)) => {
            let how = if key.encrypted {
                "passphrase-protected"
            } else {
                "no passphrase"
            };
            println!(
                "private key:  {} ({}, {how}; written once, mode 0400: keep it safe)",
                path.display(),
                key.format
            );
            sftp::policy::connect_command(&a.username, &a.host, &path.display().to_string())
        }
        _ => a.connect_command.clone(),
    };
    println!("connect:      {command}");
    for w in &a.warnings {
        println!("warning:      {w}");
    }
}
