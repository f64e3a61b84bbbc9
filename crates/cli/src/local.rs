//! The embedded gateway's commands: `init`, `serve`, `keys`, `partners`, `send`, `messages`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use as2::algorithm::{ContentEncryption, DigestAlgorithm};
use as2::keys::{fingerprint, load_certificates, subject_name, Identity};
use as2::message::Compression;
use gateway::layout::{check_as2_id, check_file_name};
use gateway::model::{MdnMode, Partnership, Station};
use gateway::ports::Clock;
use gateway_local::{Config, Node, Shutdown, SystemClock};

use crate::backend::{Backend, PartError};
pub use crate::backend::{ConfigArg, Store};

pub fn now() -> as2::UnixTime {
    SystemClock.now().unix()
}

// ------------------------------------------------------------------ init and serve

#[derive(clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Our station's AS2 ID.
    #[arg(long, required_unless_present = "aws")]
    pub station: Option<String>,
    #[command(flatten)]
    pub aws: AwsInit,
    /// The data directory (the bucket), relative to the configuration file.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// Where the AS2 endpoint listens.
    #[arg(long, default_value = "127.0.0.1:4080")]
    pub listen: std::net::SocketAddr,
    /// Our public AS2 URL, where partners send messages and asynchronous receipts.
    #[arg(long)]
    pub url: Option<String>,
    /// Also serve the AS2 endpoint over HTTPS here (TLS 1.2 and 1.3, the key of https.jks).
    #[arg(long)]
    pub https_listen: Option<std::net::SocketAddr>,
}

/// `mftg init --aws`: a profile naming an AWS deployment.
#[derive(clap::Args)]
pub struct AwsInit {
    /// Write a profile for an AWS deployment (the `[aws]` section; with --profile NAME, a named
    /// profile) instead of an embedded gateway's configuration.
    #[arg(long = "aws")]
    pub aws: bool,
    /// The deployment's CloudFormation stack (`make deploy-sam`'s or the CDK app's): its
    /// outputs and parameters fill the profile.
    #[arg(long, requires = "aws")]
    pub stack: Option<String>,
    /// The region (default: the AWS CLI's, AWS_REGION).
    #[arg(long, requires = "aws")]
    pub region: Option<String>,
    /// The customer account ID (the bucket is mftg-<account-id>).
    #[arg(long, requires = "aws")]
    pub account_id: Option<String>,
    /// The bucket, when it is not mftg-<account-id>.
    #[arg(long, requires = "aws")]
    pub bucket: Option<String>,
    /// The tables' prefix.
    #[arg(long, requires = "aws")]
    pub table_prefix: Option<String>,
    /// The send queue's URL (the stack's SendQueueUrl).
    #[arg(long, requires = "aws")]
    pub queue_url: Option<String>,
    /// The dead-letter queue's URL (DeadLetterQueueUrl).
    #[arg(long, requires = "aws")]
    pub dlq_url: Option<String>,
    /// The secret holding the keystore password (KeystorePasswordSecretName).
    #[arg(long, requires = "aws")]
    pub keystore_password_secret: Option<String>,
    /// The receiver's public AS2 URL (As2EndpointUrl).
    #[arg(long, requires = "aws")]
    pub as2_url: Option<String>,
    /// An endpoint for every AWS API instead of AWS's own (moto, LocalStack).
    #[arg(long, requires = "aws")]
    pub endpoint_url: Option<String>,
}

#[cfg(feature = "aws")]
fn init_aws(config: &ConfigArg, a: AwsInit) -> Result<ExitCode, String> {
    use gateway_aws::profile::Profile;
    let target = match &config.profile {
        Some(name) => crate::backend::profile_file(name)?,
        None => config.config.clone(),
    };
    if target.exists() {
        return Err(format!("{} exists already", target.display()));
    }
    let endpoint = gateway_aws::config::Endpoint {
        url: a.endpoint_url.clone(),
        region: a.region.clone(),
    };
    let mut profile = match &a.stack {
        Some(stack) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let conf = rt.block_on(gateway_aws::config::load(&endpoint));
            rt.block_on(gateway_aws::profile::read_stack(&conf, stack))
                .map_err(|e| e.to_string())?
        }
        None => Profile::new(
            a.queue_url
                .clone()
                .ok_or("give --stack, or --queue-url with the other settings")?,
        ),
    };
    // Flags win over what the stack says.
    profile.region = a.region.or(profile.region);
    profile.endpoint_url = a.endpoint_url.or(profile.endpoint_url);
    profile.account_id = a.account_id.or(profile.account_id);
    profile.bucket = a.bucket.or(profile.bucket);
    profile.queue_url = a.queue_url.unwrap_or(profile.queue_url);
    profile.dead_letter_url = a.dlq_url.or(profile.dead_letter_url);
    profile.as2_url = a.as2_url.or(profile.as2_url);
    if let Some(t) = a.table_prefix {
        profile.table_prefix = t;
    }
    if let Some(k) = a.keystore_password_secret {
        profile.keystore_password_secret = k;
    }
    profile.check().map_err(|e| e.to_string())?;
    let text = toml::to_string_pretty(&crate::backend::ProfileFile {
        aws: profile.clone(),
    })
    .map_err(|e| e.to_string())?;
    gateway_local::store::replace_file(&target, text.as_bytes())
        .map_err(|e| format!("{}: {e}", target.display()))?;
    let bucket = profile.bucket().map_err(|e| e.to_string())?;
    out!(
        "Wrote {} for the deployment in bucket {bucket} (tables {}-*).",
        target.display(),
        profile.table_prefix
    );
    let flag = match &config.profile {
        Some(name) => format!(" --profile {name}"),
        None if target == std::path::Path::new("mftg.toml") => String::new(),
        None => format!(" -c {}", target.display()),
    };
    out!("Check it with: mftg doctor{flag}");
    out!("Next: mftg stations add{flag} --station <AS2 ID>, then mftg keys generate{flag} --alias <its key alias>.");
    Ok(ExitCode::SUCCESS)
}

pub fn init(a: InitArgs) -> Result<ExitCode, String> {
    if a.aws.aws {
        #[cfg(feature = "aws")]
        return init_aws(&a.config, a.aws);
        #[cfg(not(feature = "aws"))]
        return Err("this mftg was built without AWS support (the `aws` feature)".into());
    }
    if a.config.profile.is_some() {
        return Err("--profile names an AWS deployment's profile: give --aws too".into());
    }
    let station = a.station.clone().unwrap_or_default();
    check_as2_id(&station).map_err(|e| e.to_string())?;
    if a.config.config.exists() {
        return Err(format!("{} exists already", a.config.config.display()));
    }
    let mut c = Config::new(a.data_dir);
    c.listen = a.listen;
    c.https = a.https_listen.map(|listen| gateway_local::HttpsConfig {
        listen,
        alias: None,
    });
    let url = a.url.unwrap_or_else(|| match a.https_listen {
        Some(h) => format!("https://{h}/as2"),
        None => format!("http://{}/as2", a.listen),
    });
    c.stations.push(Station {
        as2_id: station.clone(),
        key_alias: station.to_lowercase(),
        mdn_url: Some(url.clone()),
        mdn_email: None,
        message_id_domain: Some(format!(
            "{}.mftg.local",
            station.to_lowercase().replace(' ', "-")
        )),
    });
    c.save(&a.config.config).map_err(|e| e.to_string())?;
    out!(
        "Wrote {} for station {} (AS2 URL {url}).",
        a.config.config.display(),
        station
    );
    out!(
        "Next: export {}=<a password>, then `mftg keys generate --alias {}`.",
        c.keystore_password_env,
        station.to_lowercase()
    );
    if let Some(h) = a.https_listen {
        out!(
            "The HTTPS listener ({h}) needs a key: `mftg keys generate --alias https --store https \
             --cn <your host name>` or `mftg keys import --alias https --store https --key ... --cert ...`."
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArg,
}

pub fn serve(a: ServeArgs) -> Result<ExitCode, String> {
    let config = a.config.load()?;
    let path = a.config.config.clone();
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let node = Arc::new(Node::open(config).map_err(|e| e.to_string())?);
        let (stop, shutdown) = Shutdown::new();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("stopping");
            let _ = stop.send(true);
        });
        let console = crate::console::serve_beside(&node, path, {
            let s = shutdown.clone();
            async move { s.requested().await }
        })
        .await?;
        let served = node.serve(shutdown).await.map_err(|e| e.to_string());
        if let Some(c) = console {
            let _ = c.await;
        }
        served
    })?;
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------------ keys

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Generates a key and self-signed certificate: a station's (identity.jks), or the HTTPS
    /// listener's (--store https).
    Generate {
        #[command(flatten)]
        config: ConfigArg,
        /// The alias (a station's key_alias).
        #[arg(long)]
        alias: String,
        /// The certificate's common name (default: the alias in capitals).
        #[arg(long)]
        cn: Option<String>,
        /// A host name or IP address the certificate is for (repeatable; an HTTPS listener's
        /// certificate needs the names partners connect to; default: the common name).
        #[arg(long)]
        san: Vec<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 730)]
        days: u32,
        /// RSA key size.
        #[arg(long, default_value_t = 2048)]
        bits: u32,
        /// The keystore.
        #[arg(long, value_enum, default_value_t = Store::Identity)]
        store: Store,
        /// Replace an entry of that alias (a station key partners already have: they must be
        /// given the new certificate).
        #[arg(long)]
        force: bool,
    },
    /// Imports a key and its certificate made elsewhere (PEM or DER files, or an entry of a
    /// PKCS#12/JKS file, legacy PKCS#12 from old keytool and Windows exports included).
    Import {
        #[command(flatten)]
        config: ConfigArg,
        /// The alias to store it under.
        #[arg(long)]
        alias: String,
        /// The private key (PEM or DER; a PEM may hold the certificate too).
        #[arg(long, conflicts_with = "from")]
        key: Option<PathBuf>,
        /// Its certificate (and chain), PEM or DER.
        #[arg(long)]
        cert: Option<PathBuf>,
        /// Environment variable holding the --key passphrase.
        #[arg(long)]
        key_passphrase_env: Option<String>,
        /// A PKCS#12 or JKS file to take the key entry from.
        #[arg(long)]
        from: Option<PathBuf>,
        /// The entry of --from (default: its only key entry).
        #[arg(long)]
        from_alias: Option<String>,
        /// Environment variable holding the --from file's password.
        #[arg(long)]
        from_password_env: Option<String>,
        /// The keystore.
        #[arg(long, value_enum, default_value_t = Store::Identity)]
        store: Store,
    },
    /// Prints a certificate (PEM): a station's, to give to partners, or the HTTPS listener's.
    Export {
        #[command(flatten)]
        config: ConfigArg,
        /// The alias.
        #[arg(long)]
        alias: String,
        /// The keystore.
        #[arg(long, value_enum, default_value_t = Store::Identity)]
        store: Store,
    },
    /// Adds a certificate (PEM or DER file): a partner's to trust.jks, or (--store https) a TLS
    /// trust anchor or a partner's TLS client certificate to https.jks.
    Trust {
        #[command(flatten)]
        config: ConfigArg,
        /// The alias (a partnership's certificate_alias, tls.ca_alias or client_certificate_alias).
        #[arg(long)]
        alias: String,
        /// The certificate file.
        #[arg(long)]
        cert: PathBuf,
        /// The keystore.
        #[arg(long, value_enum, default_value_t = Store::Trust)]
        store: Store,
        /// Add it even though it has expired.
        #[arg(long)]
        force: bool,
    },
    /// Removes an entry (refused while a station or partnership names it, unless --force).
    Remove {
        #[command(flatten)]
        config: ConfigArg,
        /// The alias.
        #[arg(long)]
        alias: String,
        /// The keystore.
        #[arg(long, value_enum, default_value_t = Store::Trust)]
        store: Store,
        /// Remove it even though it is in use.
        #[arg(long)]
        force: bool,
    },
    /// Lists the keystores' entries, with their validity (expired and soon-expiring marked).
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn keys(cmd: KeysCommand) -> Result<ExitCode, String> {
    match cmd {
        KeysCommand::Generate {
            config,
            alias,
            cn,
            san,
            days,
            bits,
            store,
            force,
        } => {
            let b = config.open()?;
            let cn = cn.unwrap_or_else(|| alias.to_uppercase());
            let place = b.place(store.key());
            let mut ks = b.keystore(store)?;
            if !force && ks.entry(&alias).is_some() {
                return Err(format!(
                    "{place} already holds {alias:?}: replacing it breaks every partner that has \
                     its certificate; give --force to replace it anyway"
                ));
            }
            let mut names: Vec<&str> = san.iter().map(String::as_str).collect();
            if names.is_empty() && store == Store::Https {
                names.push(&cn);
            }
            let id = Identity::generate_self_signed_for(&cn, &names, bits, now(), days)
                .map_err(|e| e.to_string())?;
            ks.set_identity(&alias, &id);
            b.save_keystore(store, &ks)?;
            out!("Generated {bits}-bit RSA key {alias:?} (CN={cn}, valid {days} days) in {place}");
            out!("SHA-256 fingerprint {}", fingerprint(&id.certificate));
            let flag = if store == Store::Identity {
                String::new()
            } else {
                " --store https".into()
            };
            out!(
                "Give partners its certificate: mftg keys export --alias {alias}{flag} > {alias}.crt"
            );
        }
        KeysCommand::Import {
            config,
            alias,
            key,
            cert,
            key_passphrase_env,
            from,
            from_alias,
            from_password_env,
            store,
        } => {
            let b = config.open()?;
            if key.is_none() && from.is_none() {
                return Err("give --key (and --cert) or --from".into());
            }
            let found = crate::keyargs::identity(
                &key,
                &cert,
                &key_passphrase_env,
                &from,
                &from_alias,
                &from_password_env,
            )?;
            let id = match found.as_slice() {
                [one] => one.clone(),
                [] => return Err("no key entry found".into()),
                _ => return Err("several key entries: name one with --from-alias".into()),
            };
            let mut ks = b.keystore(store)?;
            ks.set_identity(&alias, &id);
            b.save_keystore(store, &ks)?;
            out!(
                "Imported {} as {alias:?} into {} (valid to {}, {})",
                subject_name(&id.certificate),
                b.place(store.key()),
                id.certificate.not_after(),
                fingerprint(&id.certificate)
            );
        }
        KeysCommand::Export {
            config,
            alias,
            store,
        } => {
            let b = config.open()?;
            let ks = b.keystore(store)?;
            let cert = ks
                .certificate(&alias)
                .map_err(|e| format!("{}: {e}", b.place(store.key())))?;
            print!(
                "{}",
                String::from_utf8_lossy(&cert.to_pem().map_err(|e| e.to_string())?)
            );
        }
        KeysCommand::Trust {
            config,
            alias,
            cert,
            store,
            force,
        } => {
            let b = config.open()?;
            let data = std::fs::read(&cert).map_err(|e| format!("{}: {e}", cert.display()))?;
            let certs = load_certificates(&data).map_err(|e| format!("{}: {e}", cert.display()))?;
            let expired = as2::keys::expiry(&certs[0], SystemClock.now().unix())
                == as2::keys::Expiry::Expired;
            if expired && !force {
                return Err(format!(
                    "{} expired on {}: messages it signs will be refused; ask the partner for its \
                     new certificate, or give --force to add it anyway",
                    subject_name(&certs[0]),
                    certs[0].not_after()
                ));
            }
            let mut ks = b.keystore(store)?;
            ks.set_certificate(&alias, &certs[0]);
            b.save_keystore(store, &ks)?;
            out!(
                "Trusting {} as {alias:?} in {} ({})",
                subject_name(&certs[0]),
                b.place(store.key()),
                fingerprint(&certs[0])
            );
        }
        KeysCommand::Remove {
            config,
            alias,
            store,
            force,
        } => {
            let b = config.open()?;
            let mut ks = b.keystore(store)?;
            if ks.entry(&alias).is_none() {
                return Err(format!("{} has no entry {alias:?}", b.place(store.key())));
            }
            let users = key_users(&b, store, &alias)?;
            if !users.is_empty() && !force {
                return Err(format!(
                    "{alias:?} is in use by {}: change those first, or give --force",
                    users.join(", ")
                ));
            }
            ks.remove(&alias);
            b.save_keystore(store, &ks)?;
            out!("Removed {alias:?} from {}", b.place(store.key()));
        }
        KeysCommand::List { config, json } => {
            let b = config.open()?;
            let now = SystemClock.now().unix();
            let mut listed = Vec::new();
            for store in Store::ALL {
                let ks = b.keystore(store)?;
                if !json {
                    out!("{}:", b.place(store.key()));
                }
                for e in ks.entries() {
                    let expiry = as2::keys::expiry(&e.certificate, now);
                    let mark = match expiry {
                        as2::keys::Expiry::Expired => "  EXPIRED".to_string(),
                        as2::keys::Expiry::Soon(left) => format!("  expires in {left} days"),
                        as2::keys::Expiry::Valid(_) => String::new(),
                    };
                    if json {
                        listed.push(serde_json::json!({
                            "keystore": store.key(),
                            "alias": e.alias,
                            "private_key": e.has_private_key(),
                            "subject": subject_name(&e.certificate),
                            "not_after": e.certificate.not_after().to_string(),
                            "fingerprint": fingerprint(&e.certificate),
                            "expired": expiry == as2::keys::Expiry::Expired,
                            "expires_soon": matches!(expiry, as2::keys::Expiry::Soon(_)),
                        }));
                        continue;
                    }
                    let kind = if e.has_private_key() { "key " } else { "cert" };
                    out!(
                        "  {kind} {:<16} {}  valid to {}{mark}",
                        e.alias,
                        subject_name(&e.certificate),
                        e.certificate.not_after()
                    );
                }
            }
            if json {
                out!(
                    "{}",
                    serde_json::to_string_pretty(&listed).map_err(|e| e.to_string())?
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The stations and partnerships that name `alias` in `store`.
fn key_users(b: &Backend, store: Store, alias: &str) -> Result<Vec<String>, String> {
    let mut users = Vec::new();
    if store == Store::Identity {
        for s in b.stations()? {
            if s.key_alias == alias {
                users.push(format!("station {}", s.as2_id));
            }
        }
    }
    for p in b.partnerships()? {
        let named = match store {
            Store::Trust => p.certificate_alias == alias,
            Store::Https => {
                p.tls.ca_alias.as_deref() == Some(alias)
                    || p.client_certificate_alias.as_deref() == Some(alias)
            }
            Store::Identity => false,
        };
        if named {
            users.push(format!("partnership {} -> {}", p.station, p.partner));
        }
    }
    Ok(users)
}

// ------------------------------------------------------------------ stations

#[derive(clap::Subcommand)]
pub enum StationsCommand {
    /// Adds (or replaces) one of our AS2 identities.
    Add {
        #[command(flatten)]
        config: ConfigArg,
        /// Its AS2 ID.
        #[arg(long)]
        station: String,
        /// Alias of its key in identity.jks (default: the AS2 ID in lower case).
        #[arg(long)]
        key_alias: Option<String>,
        /// Where partners send asynchronous receipts (default: the deployment's AS2 URL).
        #[arg(long)]
        mdn_url: Option<String>,
        /// The part of its Message-IDs after the `@`.
        #[arg(long)]
        message_id_domain: Option<String>,
    },
    /// Lists the stations.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Shows one station and its partnerships.
    Show {
        #[command(flatten)]
        config: ConfigArg,
        /// Its AS2 ID.
        station: String,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Removes a station that has no partnerships left.
    Remove {
        #[command(flatten)]
        config: ConfigArg,
        /// Its AS2 ID.
        station: String,
    },
}

fn json_out(v: &impl serde::Serialize) -> Result<(), String> {
    out!(
        "{}",
        serde_json::to_string_pretty(v).map_err(|e| e.to_string())?
    );
    Ok(())
}

pub fn stations(cmd: StationsCommand) -> Result<ExitCode, String> {
    match cmd {
        StationsCommand::Add {
            config,
            station,
            key_alias,
            mdn_url,
            message_id_domain,
        } => {
            let mut b = config.open()?;
            let key_alias = key_alias.unwrap_or_else(|| station.to_lowercase());
            let s = Station {
                as2_id: station.clone(),
                key_alias: key_alias.clone(),
                mdn_url,
                mdn_email: None,
                message_id_domain,
            };
            b.put_station(s)?;
            out!("Station {station} saved in {}.", b.settings_place());
            if b.keystore(Store::Identity)
                .map(|ks| ks.entry(&key_alias).is_none())
                .unwrap_or(false)
            {
                out!("Next: its key, `mftg keys generate --alias {key_alias}`.");
            }
        }
        StationsCommand::List { config, json } => {
            let b = config.open()?;
            let all = b.stations()?;
            if json {
                json_out(&all)?;
            } else {
                for s in all {
                    out!(
                        "{:<20} key {:<16} receipts to {}",
                        s.as2_id,
                        s.key_alias,
                        s.mdn_url.as_deref().unwrap_or("(the deployment's AS2 URL)")
                    );
                }
            }
        }
        StationsCommand::Show {
            config,
            station,
            json,
        } => {
            let b = config.open()?;
            let s = b.station(&station)?;
            let partners: Vec<_> = b
                .partnerships()?
                .into_iter()
                .filter(|p| p.station == station)
                .collect();
            if json {
                json_out(&serde_json::json!({"station": s, "partnerships": partners}))?;
            } else {
                out!("station      {}", s.as2_id);
                out!("key alias    {}", s.key_alias);
                out!(
                    "receipts to  {}",
                    s.mdn_url.as_deref().unwrap_or("(the deployment's AS2 URL)")
                );
                if let Some(d) = &s.message_id_domain {
                    out!("message-ids  <...@{d}>");
                }
                for p in partners {
                    out!("partner      {} ({})", p.partner, p.url);
                }
            }
        }
        StationsCommand::Remove { config, station } => {
            let mut b = config.open()?;
            b.remove_station(&station)?;
            out!("Station {station} removed from {}.", b.settings_place());
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------------ partners

/// A partnership's settings on the command line: all of them for `add` (left out, the defaults),
/// those to change for `update`.
#[derive(clap::Args, Default)]
pub struct PartnerOptions {
    /// The partner's AS2 URL.
    #[arg(long)]
    url: Option<String>,
    /// Alias of the partner's certificate in trust.jks.
    #[arg(long)]
    cert_alias: Option<String>,
    /// How receipts come back (sync, async, none).
    #[arg(long, value_parser = crate::named::mdn_mode())]
    mdn: Option<MdnMode>,
    /// Ask for unsigned receipts.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    unsigned_mdn: Option<bool>,
    /// The MIC algorithm the receipt is asked for (default sha-256).
    #[arg(long, value_parser = crate::named::mic_algorithm())]
    mic_alg: Option<DigestAlgorithm>,
    /// Encryption of what we send (default aes256-cbc; aliases such as 3des and aes256 are read
    /// too). The AES-GCM ciphers are not read by pyas2lib-based partners (django-pyas2).
    #[arg(long, value_parser = crate::named::cipher())]
    cipher: Option<crate::named::OrNone<ContentEncryption>>,
    /// RSAES-OAEP key transport instead of PKCS#1 v1.5.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    oaep: Option<bool>,
    /// Signing digest of what we send (default sha-256).
    #[arg(long, value_parser = crate::named::signing_digest())]
    digest: Option<crate::named::OrNone<DigestAlgorithm>>,
    /// RSASSA-PSS signatures instead of PKCS#1 v1.5.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pss: Option<bool>,
    /// Compression of what we send, and where it goes relative to the signature (default
    /// before-signing).
    #[arg(long, value_parser = crate::named::compression())]
    compression: Option<Compression>,
    /// The MIC algorithm of our receipts for the partner's signed messages: the one it asks
    /// for (`requested`, the default), or its signature's digest (pyas2lib and django-pyas2
    /// partners need `signature`).
    #[arg(long, value_parser = crate::named::receipt_mic())]
    receipt_mic: Option<as2::receive::ReceiptMic>,
}

impl PartnerOptions {
    fn apply(self, p: &mut Partnership) {
        macro_rules! set {
            ($($field:ident => $target:expr),* $(,)?) => {
                $(if let Some(v) = self.$field { $target = v; })*
            };
        }
        set!(
            url => p.url,
            cert_alias => p.certificate_alias,
            mdn => p.mdn,
            mic_alg => p.mic_algorithm,
            oaep => p.oaep,
            pss => p.pss,
            compression => p.compression,
            receipt_mic => p.receipt_mic,
        );
        if let Some(v) = self.unsigned_mdn {
            p.signed_mdn = !v;
        }
        if let Some(v) = self.cipher {
            p.encryption = v.0;
        }
        if let Some(v) = self.digest {
            p.signing = v.0;
        }
    }
}

#[derive(clap::Subcommand)]
pub enum PartnersCommand {
    /// Adds (or replaces) a partnership, with the defaults for what is not given.
    Add {
        #[command(flatten)]
        config: ConfigArg,
        /// Our station.
        #[arg(long)]
        station: String,
        /// The partner's AS2 ID.
        #[arg(long)]
        partner: String,
        #[command(flatten)]
        options: PartnerOptions,
    },
    /// Changes the settings given of a partnership; the others stay.
    Update {
        #[command(flatten)]
        config: ConfigArg,
        /// Our station.
        #[arg(long)]
        station: String,
        /// The partner's AS2 ID.
        #[arg(long)]
        partner: String,
        #[command(flatten)]
        options: PartnerOptions,
    },
    /// Lists the partnerships.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Shows every setting of one partnership.
    Show {
        #[command(flatten)]
        config: ConfigArg,
        /// Our station.
        #[arg(long)]
        station: String,
        /// The partner's AS2 ID.
        #[arg(long)]
        partner: String,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Removes a partnership (refused while its messages are in flight, unless --force).
    Remove {
        #[command(flatten)]
        config: ConfigArg,
        /// Our station.
        #[arg(long)]
        station: String,
        /// The partner's AS2 ID.
        #[arg(long)]
        partner: String,
        /// Remove it even though messages are in flight (they fail).
        #[arg(long)]
        force: bool,
    },
}

/// Checks the certificate a partnership names is in trust.jks, when the keystore can be read.
fn check_partner_certificate(b: &Backend, p: &Partnership) -> Result<(), String> {
    let alias = &p.certificate_alias;
    // Embedded, the keystore password may not be in this shell: the partnership is saved, and
    // `mftg serve` checks the certificate when it starts.
    if let Some(env) = b
        .local()
        .map(|c| &c.keystore_password_env)
        .filter(|env| std::env::var_os(env).is_none())
    {
        eprintln!("mftg: note: {env} is not set, so the certificate {alias:?} was not looked for");
        return Ok(());
    }
    if b.keystore(Store::Trust)?.entry(alias).is_none() {
        return Err(format!(
            "trust.jks has no certificate {alias:?}: add the partner's first \
             (mftg keys trust --alias {alias} --cert FILE)"
        ));
    }
    Ok(())
}

fn save_partnership(b: &mut Backend, p: Partnership, verb: &str) -> Result<(), String> {
    check_partner_certificate(b, &p)?;
    if let Some(gcm) = p.encryption.filter(|c| c.is_authenticated()) {
        eprintln!(
            "mftg: note: {} is AES-GCM, which pyas2lib-based partners (django-pyas2) cannot \
             decrypt; they answer `processed` without a MIC. Use aes256-cbc with them.",
            gcm.name()
        );
    }
    let (station, partner) = (p.station.clone(), p.partner.clone());
    b.put_partnership(p)?;
    let after = if b.local().is_some() {
        " (restart `mftg serve` to use it)"
    } else {
        ""
    };
    out!(
        "Partnership {station} -> {partner} {verb} in {}{after}.",
        b.settings_place()
    );
    Ok(())
}

pub fn partners(cmd: PartnersCommand) -> Result<ExitCode, String> {
    match cmd {
        PartnersCommand::Add {
            config,
            station,
            partner,
            options,
        } => {
            let mut b = config.open()?;
            let url = options
                .url
                .clone()
                .ok_or("give the partner's AS2 URL: --url")?;
            let alias = options
                .cert_alias
                .clone()
                .ok_or("give the alias of the partner's certificate: --cert-alias")?;
            let mut p = Partnership::new(&station, &partner, &url, &alias);
            options.apply(&mut p);
            save_partnership(&mut b, p, "saved")?;
        }
        PartnersCommand::Update {
            config,
            station,
            partner,
            options,
        } => {
            let mut b = config.open()?;
            let mut p = b.partnership(&station, &partner)?;
            options.apply(&mut p);
            save_partnership(&mut b, p, "updated")?;
        }
        PartnersCommand::List { config, json } => {
            let b = config.open()?;
            let all = b.partnerships()?;
            if json {
                return json_out(&all).map(|()| ExitCode::SUCCESS);
            }
            for p in &all {
                out!(
                    "{} -> {}  {}  cert {}  sign {}  encrypt {}  compress {}  mdn {}{}",
                    p.station,
                    p.partner,
                    p.url,
                    p.certificate_alias,
                    p.signing.map_or("none".into(), |d| d.to_string()),
                    p.encryption.map_or("none", |c| c.name()),
                    p.compression,
                    p.mdn.as_str(),
                    if p.signed_mdn { " (signed)" } else { "" }
                );
            }
        }
        PartnersCommand::Show {
            config,
            station,
            partner,
            json,
        } => {
            let b = config.open()?;
            let p = b.partnership(&station, &partner)?;
            if json {
                return json_out(&p).map(|()| ExitCode::SUCCESS);
            }
            // Every setting, as the configuration writes it (secrets are names of variables or
            // secrets, never values).
            let v = serde_json::to_value(&p).map_err(|e| e.to_string())?;
            if let serde_json::Value::Object(fields) = v {
                for (k, v) in fields {
                    let shown = match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    out!("{k:<26} {shown}");
                }
            }
        }
        PartnersCommand::Remove {
            config,
            station,
            partner,
            force,
        } => {
            let mut b = config.open()?;
            b.partnership(&station, &partner)?;
            let busy = b.in_flight(&station, Some(&partner))?;
            if !busy.is_empty() && !force {
                return Err(format!(
                    "{} message(s) of {station} -> {partner} are in flight ({}): wait for them, \
                     or give --force",
                    busy.len(),
                    busy.join(", ")
                ));
            }
            b.remove_partnership(&station, &partner)?;
            out!(
                "Partnership {station} -> {partner} removed from {}.",
                b.settings_place()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------------ send

#[derive(clap::Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The file to send.
    pub file: PathBuf,
    /// Our station.
    #[arg(long)]
    pub from: String,
    /// The partner.
    #[arg(long)]
    pub to: String,
    /// The name to send it under (default: the file's name).
    #[arg(long)]
    pub name: Option<String>,
}

/// Puts the file at `AS2/send/<from>/<to>/<name>`, as an SFTP user would: the running gateway,
/// or the deployment's send trigger, picks it up.
pub fn send(a: SendArgs) -> Result<ExitCode, String> {
    let b = a.config.open()?;
    let name = match a.name {
        Some(n) => n,
        None => a
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| format!("{} has no file name", a.file.display()))?,
    };
    for id in [&a.from, &a.to] {
        check_as2_id(id).map_err(|e| e.to_string())?;
    }
    check_file_name(&name).map_err(|e| e.to_string())?;
    // What the gateway would refuse is refused here, before the file is anywhere.
    b.partnership(&a.from, &a.to)?;
    let target = b.send(&a.from, &a.to, &name, &a.file)?;
    out!("Queued {} for {} -> {} ({target}).", name, a.from, a.to);
    out!("Follow it with: mftg messages list");
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------------ messages

#[derive(clap::Subcommand)]
pub enum MessagesCommand {
    /// Lists messages, newest first, with filters and paging.
    List(Box<ListArgs>),
    /// Shows one message: status history, MIC, receipt, where its files are.
    Show {
        #[command(flatten)]
        config: ConfigArg,
        /// The message's id (its folder name, as `list` shows it), or its Message-ID.
        id: String,
        /// Print the record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Writes out one of a message's stored files: its payload, the raw message, its HTTP
    /// headers or its receipt.
    Download {
        #[command(flatten)]
        config: ConfigArg,
        /// The message's id, or its Message-ID.
        id: String,
        /// Which file.
        #[arg(long, value_enum, default_value = "payload")]
        part: Part,
        /// Write it here (a new file); standard output without.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Sends an outbound message again (failed, or delivered and wanted again): with the same
    /// Message-ID, so a partner that has it answers with its first receipt and does not deliver
    /// it twice, or with --as-new as a new message. The running gateway sends it.
    Resend {
        #[command(flatten)]
        config: ConfigArg,
        /// The message's id (its folder name, as `list` shows it), or its Message-ID.
        id: String,
        /// Send it as a new message, with a new Message-ID.
        #[arg(long)]
        as_new: bool,
    },
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Only this station's.
    #[arg(long)]
    station: Option<String>,
    /// Only this partner's.
    #[arg(long)]
    partner: Option<String>,
    /// Only sent (outbox) or received (inbox) messages.
    #[arg(long)]
    direction: Option<gateway::layout::Direction>,
    /// Only messages in this status (queued, sending, sent, awaiting-mdn, delivered,
    /// delivered-with-warning, failed, receiving, received, rejected, duplicate, not-sent).
    #[arg(long)]
    status: Option<gateway::model::Status>,
    /// Only messages made at or after this time (2026-11-28, 2026-11-28T05:47:03Z; UTC).
    #[arg(long)]
    since: Option<String>,
    /// Only messages made before this time.
    #[arg(long)]
    until: Option<String>,
    /// Only the message with this Message-ID (angle brackets optional).
    #[arg(long)]
    message_id: Option<String>,
    /// Only messages whose file name contains this (any case).
    #[arg(long)]
    file: Option<String>,
    /// The next page: messages older than this id (the last one the previous page showed).
    #[arg(long)]
    before: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Print the records as JSON.
    #[arg(long)]
    json: bool,
}

/// What `mftg messages download` writes out.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Part {
    /// The file sent or received.
    Payload,
    /// The AS2 message as it went over the wire.
    Raw,
    /// Its HTTP headers.
    Headers,
    /// The receipt (headers, blank line, body).
    Receipt,
}

impl From<Part> for gateway::model::Part {
    fn from(p: Part) -> Self {
        match p {
            Part::Payload => gateway::model::Part::Payload,
            Part::Raw => gateway::model::Part::Raw,
            Part::Headers => gateway::model::Part::Headers,
            Part::Receipt => gateway::model::Part::Receipt,
        }
    }
}

fn time_arg(name: &str, value: &Option<String>) -> Result<Option<gateway::Millis>, String> {
    value
        .as_deref()
        .map(|v| {
            gateway::Millis::parse(v).ok_or_else(|| {
                format!("--{name} {v:?} is not a time (2026-11-28 or 2026-11-28T05:47:03Z)")
            })
        })
        .transpose()
}

pub fn messages(cmd: MessagesCommand) -> Result<ExitCode, String> {
    match cmd {
        MessagesCommand::List(a) => {
            let query = gateway::ports::RecordQuery {
                direction: a.direction,
                status: a.status,
                since: time_arg("since", &a.since)?,
                until: time_arg("until", &a.until)?,
                message_id: a.message_id.clone(),
                filename: a.file.clone(),
                before: a.before.clone(),
                ..gateway::ports::RecordQuery::of(
                    a.station.as_deref(),
                    a.partner.as_deref(),
                    a.limit.max(1),
                )
            };
            let b = a.config.open()?;
            let records = b.query(&query)?;
            if a.json {
                return json_out(&records).map(|()| ExitCode::SUCCESS);
            }
            let next = query.next_page(&records).map(str::to_string);
            out!(
                "{:<27} {:<6} {:<24} {:<22} {:<24} file",
                "id",
                "dir",
                "station/partner",
                "status",
                "receipt"
            );
            for r in records {
                out!(
                    "{:<27} {:<6} {:<24} {:<22} {:<24} {}",
                    r.id,
                    r.direction.as_str(),
                    format!("{}/{}", r.station, r.partner),
                    r.status.as_str(),
                    r.mdn
                        .as_ref()
                        .map_or("-".to_string(), |m| m.disposition.clone()),
                    r.filename
                );
            }
            if let Some(last) = next {
                out!("(more may follow: add --before {last})");
            }
        }
        MessagesCommand::Download {
            config,
            id,
            part,
            out,
        } => {
            let b = config.open()?;
            let r = b.find_record(&id)?;
            let part = part.into();
            let what = gateway::model::Part::describe(part);
            match out {
                Some(path) => {
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    if let Err(e) = b.write_part(&r, part, &mut f) {
                        drop(f);
                        let _ = std::fs::remove_file(&path);
                        return Err(match e {
                            PartError::Read(why) => why,
                            PartError::Write(io) => format!("{}: {io}", path.display()),
                        });
                    }
                    eprintln!("{what} of {} written to {}", r.id, path.display());
                }
                None => {
                    let mut stdout = std::io::stdout().lock();
                    match b.write_part(&r, part, &mut stdout) {
                        Ok(()) => {}
                        Err(PartError::Write(io))
                            if io.kind() == std::io::ErrorKind::BrokenPipe => {}
                        Err(PartError::Write(io)) => return Err(io.to_string()),
                        Err(PartError::Read(why)) => return Err(why),
                    }
                }
            }
        }
        MessagesCommand::Resend { config, id, as_new } => {
            let b = config.open()?;
            let resent = b.resend(&id, as_new)?;
            let by = if b.local().is_some() {
                "the running gateway"
            } else {
                "the deployment's sender"
            };
            match resent.message_id {
                Some(mid) => out!("{}: queued to be sent again as {mid} by {by}", resent.id),
                None => out!(
                    "{}: queued to be sent again as a new message (a new Message-ID) by {by}",
                    resent.id
                ),
            }
        }
        MessagesCommand::Show { config, id, json } => {
            let b = config.open()?;
            let r = b.find_record(&id)?;
            if json {
                return json_out(&r).map(|()| ExitCode::SUCCESS);
            }
            out!("id           {}", r.id);
            out!("direction    {}", r.direction);
            out!("station      {}", r.station);
            out!("partner      {}", r.partner);
            out!(
                "message-id   {}",
                if r.message_id.is_empty() {
                    "(not built yet)"
                } else {
                    &r.message_id
                }
            );
            out!("file         {} ({} bytes)", r.filename, r.size);
            out!("status       {}", r.status);
            if let Some(m) = &r.mic {
                out!("mic          {m}");
            }
            if let Some(m) = &r.mdn {
                out!(
                    "receipt      {} (signed: {}, MIC {})",
                    m.disposition,
                    m.signed,
                    m.mic
                );
                out!("receipt file {}", b.place(&m.key));
            }
            for (label, key) in [
                ("payload", &r.payload_key),
                ("raw message", &r.raw_key),
                ("headers", &r.headers_key),
            ] {
                if let Some(k) = key {
                    out!("{label:<12} {}", b.place(k));
                }
            }
            if r.attempts > 0 {
                out!("attempts     {}", r.attempts);
            }
            out!("history:");
            for h in &r.history {
                out!(
                    "  {}  {:<22} {}",
                    h.at,
                    h.status.as_str(),
                    h.detail.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------------ queue

#[derive(clap::Subcommand)]
pub enum QueueCommand {
    /// Lists the jobs set aside (the deployment's dead-letter queue; the embedded gateway's
    /// parked jobs), with why.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Puts jobs set aside back in the queue to run again: all of them, or one (--id).
    Redrive {
        #[command(flatten)]
        config: ConfigArg,
        /// Only this one: its id as `queue list` shows it, or its message's id.
        #[arg(long)]
        id: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

fn describe_job(p: &gateway::ports::ParkedJob) -> String {
    use gateway::model::Job;
    match &p.job {
        Some(Job::Send { id }) => format!("send {id}"),
        Some(Job::SendMdn { id, attempt }) => format!("receipt for {id} (attempt {attempt})"),
        Some(Job::MdnDeadline { id, .. }) => format!("receipt deadline of {id}"),
        Some(Job::Notify {
            webhook,
            attempt,
            event,
        }) => format!(
            "{} event {} to webhook {webhook} (attempt {attempt})",
            event.kind, event.id
        ),
        None => format!(
            "not a job: {:?}",
            p.body
                .as_deref()
                .unwrap_or("")
                .chars()
                .take(60)
                .collect::<String>()
        ),
    }
}

pub fn queue(cmd: QueueCommand) -> Result<ExitCode, String> {
    match cmd {
        QueueCommand::List {
            config,
            limit,
            json,
        } => {
            let b = config.open()?;
            let parked = b.parked(limit.max(1))?;
            if json {
                return json_out(&parked).map(|()| ExitCode::SUCCESS);
            }
            if parked.is_empty() {
                out!("No jobs are set aside.");
            }
            for p in &parked {
                let when = p.parked_at.map_or("-".to_string(), |t| t.to_string());
                let runs = p.runs.map_or(String::new(), |r| format!(", run {r} times"));
                out!(
                    "{}  {}  {}{runs}: {}",
                    p.id,
                    when,
                    describe_job(p),
                    p.reason
                        .as_deref()
                        .unwrap_or("moved there by the queue after failing again and again")
                );
            }
        }
        QueueCommand::Redrive { config, id, limit } => {
            let b = config.open()?;
            let moved = b.redrive(id.as_deref(), limit.max(1))?;
            if moved.is_empty() {
                return Err(match id {
                    Some(id) => format!("no job {id} is set aside (see mftg queue list)"),
                    None => "no jobs are set aside".into(),
                });
            }
            for p in &moved {
                out!("{}  {}: back in the queue", p.id, describe_job(p));
            }
            let by = if b.local().is_some() {
                "the running gateway"
            } else {
                "the deployment's sender"
            };
            out!("{} job(s) redriven; {by} runs them.", moved.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}
