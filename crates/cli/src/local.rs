//! The embedded gateway's commands: `init`, `serve`, `keys`, `partners`, `send`, `messages`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use as2::algorithm::{ContentEncryption, DigestAlgorithm};
use as2::keys::{fingerprint, load_certificates, subject_name, Identity, Keystore};
use as2::message::Compression;
use gateway::layout::{check_as2_id, check_file_name, keystore as ks_paths};
use gateway::model::{MdnMode, Partnership, Station};
use gateway::ports::{Clock, MessageLog};
use gateway_local::{Config, Db, Node, Shutdown, SystemClock};

/// Where the configuration file is.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArg {
    /// The configuration file.
    #[arg(long, short = 'c', env = "MFTG_CONFIG", default_value = "mftg.toml")]
    pub config: PathBuf,
}

impl ConfigArg {
    fn load(&self) -> Result<Config, String> {
        Config::load(&self.config).map_err(|e| e.to_string())
    }
}

fn now() -> as2::UnixTime {
    SystemClock.now().unix()
}

// ------------------------------------------------------------------ init and serve

#[derive(clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Our station's AS2 ID.
    #[arg(long)]
    pub station: String,
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

pub fn init(a: InitArgs) -> Result<ExitCode, String> {
    check_as2_id(&a.station).map_err(|e| e.to_string())?;
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
        as2_id: a.station.clone(),
        key_alias: a.station.to_lowercase(),
        mdn_url: Some(url.clone()),
        mdn_email: None,
        message_id_domain: Some(format!(
            "{}.mftg.local",
            a.station.to_lowercase().replace(' ', "-")
        )),
    });
    c.save(&a.config.config).map_err(|e| e.to_string())?;
    out!(
        "Wrote {} for station {} (AS2 URL {url}).",
        a.config.config.display(),
        a.station
    );
    out!(
        "Next: export {}=<a password>, then `mftg keys generate --alias {}`.",
        c.keystore_password_env,
        a.station.to_lowercase()
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
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let node = Arc::new(Node::open(config).map_err(|e| e.to_string())?);
        let (stop, shutdown) = Shutdown::new();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("stopping");
            let _ = stop.send(true);
        });
        node.serve(shutdown).await.map_err(|e| e.to_string())
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
    /// Lists the keystores' entries.
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// One of the keystores of `AS2/keystore/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Store {
    /// identity.jks: station keys.
    Identity,
    /// trust.jks: partner certificates.
    Trust,
    /// https.jks: the HTTPS listener's key, TLS trust anchors, partners' TLS client certificates.
    Https,
}

impl Store {
    fn path(self) -> &'static str {
        match self {
            Store::Identity => ks_paths::IDENTITY,
            Store::Trust => ks_paths::TRUST,
            Store::Https => ks_paths::HTTPS,
        }
    }
}

fn password(c: &Config) -> Result<String, String> {
    std::env::var(&c.keystore_password_env)
        .map_err(|_| format!("set {} to the keystore password", c.keystore_password_env))
}

fn keystore_file(c: &Config, key: &str) -> PathBuf {
    c.data_dir.join(key)
}

fn load_keystore(path: &Path, password: &str) -> Result<Keystore, String> {
    match std::fs::read(path) {
        Ok(b) => Keystore::load(&b, password, None).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Keystore::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn save_keystore(path: &Path, ks: &Keystore, password: &str) -> Result<(), String> {
    let bytes = ks.to_jks(password, now()).map_err(|e| e.to_string())?;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let tmp = path.with_extension("jks.tmp");
    // Keys: readable by their owner only.
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()
    };
    write().map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
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
            let c = config.load()?;
            let pw = password(&c)?;
            let cn = cn.unwrap_or_else(|| alias.to_uppercase());
            let path = keystore_file(&c, store.path());
            let mut ks = load_keystore(&path, &pw)?;
            if !force && ks.entry(&alias).is_some() {
                return Err(format!(
                    "{} already holds {alias:?}: replacing it breaks every partner that has its \
                     certificate; give --force to replace it anyway",
                    path.display()
                ));
            }
            let mut names: Vec<&str> = san.iter().map(String::as_str).collect();
            if names.is_empty() && store == Store::Https {
                names.push(&cn);
            }
            let id = Identity::generate_self_signed_for(&cn, &names, bits, now(), days)
                .map_err(|e| e.to_string())?;
            ks.set_identity(&alias, &id);
            save_keystore(&path, &ks, &pw)?;
            out!(
                "Generated {bits}-bit RSA key {alias:?} (CN={cn}, valid {days} days) in {}",
                path.display()
            );
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
            let c = config.load()?;
            let pw = password(&c)?;
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
            let path = keystore_file(&c, store.path());
            let mut ks = load_keystore(&path, &pw)?;
            ks.set_identity(&alias, &id);
            save_keystore(&path, &ks, &pw)?;
            out!(
                "Imported {} as {alias:?} into {} (valid to {}, {})",
                subject_name(&id.certificate),
                path.display(),
                id.certificate.not_after(),
                fingerprint(&id.certificate)
            );
        }
        KeysCommand::Export {
            config,
            alias,
            store,
        } => {
            let c = config.load()?;
            let ks = load_keystore(&keystore_file(&c, store.path()), &password(&c)?)?;
            let cert = ks.certificate(&alias).map_err(|e| e.to_string())?;
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
            let c = config.load()?;
            let pw = password(&c)?;
            let data = std::fs::read(&cert).map_err(|e| format!("{}: {e}", cert.display()))?;
            let certs = load_certificates(&data).map_err(|e| e.to_string())?;
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
            let path = keystore_file(&c, store.path());
            let mut ks = load_keystore(&path, &pw)?;
            ks.set_certificate(&alias, &certs[0]);
            save_keystore(&path, &ks, &pw)?;
            out!(
                "Trusting {} as {alias:?} in {} ({})",
                subject_name(&certs[0]),
                path.display(),
                fingerprint(&certs[0])
            );
        }
        KeysCommand::List { config } => {
            let c = config.load()?;
            let pw = password(&c)?;
            for key in [ks_paths::IDENTITY, ks_paths::TRUST, ks_paths::HTTPS] {
                let ks = load_keystore(&keystore_file(&c, key), &pw)?;
                out!("{key}:");
                for e in ks.entries() {
                    let kind = if e.has_private_key() { "key " } else { "cert" };
                    let mark = match as2::keys::expiry(&e.certificate, SystemClock.now().unix()) {
                        as2::keys::Expiry::Expired => "  EXPIRED".to_string(),
                        as2::keys::Expiry::Soon(left) => format!("  expires in {left} days"),
                        as2::keys::Expiry::Valid(_) => String::new(),
                    };
                    out!(
                        "  {kind} {:<16} {}  valid to {}{mark}",
                        e.alias,
                        subject_name(&e.certificate),
                        e.certificate.not_after()
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------------ partners

#[derive(clap::Subcommand)]
pub enum PartnersCommand {
    /// Adds (or replaces) a partnership in the configuration file.
    Add {
        #[command(flatten)]
        config: ConfigArg,
        /// Our station.
        #[arg(long)]
        station: String,
        /// The partner's AS2 ID.
        #[arg(long)]
        partner: String,
        /// The partner's AS2 URL.
        #[arg(long)]
        url: String,
        /// Alias of the partner's certificate in trust.jks.
        #[arg(long)]
        cert_alias: String,
        /// How receipts come back.
        #[arg(long, default_value = "sync", value_parser = crate::named::mdn_mode())]
        mdn: MdnMode,
        /// Ask for unsigned receipts.
        #[arg(long)]
        unsigned_mdn: bool,
        /// The MIC algorithm the receipt is asked for.
        #[arg(long, default_value = "sha-256", value_parser = crate::named::mic_algorithm())]
        mic_alg: DigestAlgorithm,
        /// Encryption of what we send (aliases such as 3des and aes256 are read too). The
        /// AES-GCM ciphers are not read by pyas2lib-based partners (django-pyas2).
        #[arg(long, default_value = "aes256-cbc", value_parser = crate::named::cipher())]
        cipher: crate::named::OrNone<ContentEncryption>,
        /// RSAES-OAEP key transport instead of PKCS#1 v1.5.
        #[arg(long)]
        oaep: bool,
        /// Signing digest of what we send.
        #[arg(long, default_value = "sha-256", value_parser = crate::named::signing_digest())]
        digest: crate::named::OrNone<DigestAlgorithm>,
        /// RSASSA-PSS signatures instead of PKCS#1 v1.5.
        #[arg(long)]
        pss: bool,
        /// Compression of what we send, and where it goes relative to the signature.
        #[arg(long, default_value = "before-signing", value_parser = crate::named::compression())]
        compression: Compression,
        /// The MIC algorithm of our receipts for the partner's signed messages: the one it asks
        /// for, or its signature's digest (pyas2lib and django-pyas2 partners need `signature`).
        #[arg(long, default_value = "requested", value_parser = crate::named::receipt_mic())]
        receipt_mic: as2::receive::ReceiptMic,
    },
    /// Lists the partnerships.
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
}

pub fn partners(cmd: PartnersCommand) -> Result<ExitCode, String> {
    match cmd {
        PartnersCommand::Add {
            config,
            station,
            partner,
            url,
            cert_alias,
            mdn,
            unsigned_mdn,
            mic_alg,
            cipher,
            oaep,
            digest,
            pss,
            compression,
            receipt_mic,
        } => {
            let mut c = config.load()?;
            let mut p = Partnership::new(&station, &partner, &url, &cert_alias);
            p.mdn = mdn;
            p.signed_mdn = !unsigned_mdn;
            p.mic_algorithm = mic_alg;
            p.encryption = cipher.0;
            p.oaep = oaep;
            p.signing = digest.0;
            p.pss = pss;
            p.compression = compression;
            p.receipt_mic = receipt_mic;
            // The certificate must be there before anything is sent with it.
            match std::env::var(&c.keystore_password_env) {
                Ok(pw) => {
                    let trust = load_keystore(&keystore_file(&c, ks_paths::TRUST), &pw)?;
                    if trust.entry(&cert_alias).is_none() {
                        return Err(format!(
                            "trust.jks has no certificate {cert_alias:?}: add the partner's first \
                             (mftg keys trust --alias {cert_alias} --cert FILE)"
                        ));
                    }
                }
                Err(_) => eprintln!(
                    "mftg: note: {} is not set, so the certificate {cert_alias:?} was not looked for",
                    c.keystore_password_env
                ),
            }
            if let Some(gcm) = cipher.0.filter(|c| c.is_authenticated()) {
                eprintln!(
                    "mftg: note: {} is AES-GCM, which pyas2lib-based partners (django-pyas2) cannot \
                     decrypt; they answer `processed` without a MIC. Use aes256-cbc with them.",
                    gcm.name()
                );
            }
            c.partnerships
                .retain(|q| !(q.station == station && q.partner == partner));
            c.partnerships.push(p);
            c.check().map_err(|e| e.to_string())?;
            c.save(&config.config).map_err(|e| e.to_string())?;
            out!(
                "Partnership {station} -> {partner} saved in {} (restart `mftg serve` to use it).",
                config.config.display()
            );
        }
        PartnersCommand::List { config } => {
            let c = config.load()?;
            for p in &c.partnerships {
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

/// Drops the file into `AS2/send/<from>/<to>/`, as an SFTP user would; the running gateway
/// picks it up.
pub fn send(a: SendArgs) -> Result<ExitCode, String> {
    let c = a.config.load()?;
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
    let dir = c
        .data_dir
        .join(gateway::layout::SEND)
        .join(&a.from)
        .join(&a.to);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = dir.join(format!(".mftg-send-{}", std::process::id()));
    std::fs::copy(&a.file, &tmp).map_err(|e| format!("{}: {e}", a.file.display()))?;
    let target = dir.join(&name);
    std::fs::rename(&tmp, &target).map_err(|e| format!("{}: {e}", target.display()))?;
    out!(
        "Queued {} for {} -> {} ({}).",
        name,
        a.from,
        a.to,
        target.display()
    );
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
        /// The message's id (its folder name, as `list` shows it).
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

/// A record by its id or, failing that, its Message-ID.
fn find_record(
    rt: &tokio::runtime::Runtime,
    db: &Db,
    id: &str,
) -> Result<gateway::model::MessageRecord, String> {
    if let Some(r) = rt.block_on(db.get(id)).map_err(|e| e.to_string())? {
        return Ok(r);
    }
    let by_message_id = gateway::ports::RecordQuery {
        message_id: Some(id.to_string()),
        ..gateway::ports::RecordQuery::of(None, None, 10)
    };
    let mut found = rt
        .block_on(db.query(&by_message_id))
        .map_err(|e| e.to_string())?;
    match found.len() {
        0 => Err(format!("no message {id}")),
        1 => Ok(found.remove(0)),
        n => {
            let ids: Vec<_> = found.iter().map(|r| r.id.as_str()).collect();
            Err(format!(
                "Message-ID {id} is {n} messages ({}); name one by its id",
                ids.join(", ")
            ))
        }
    }
}

/// What `mftg messages download` writes out.
#[derive(Clone, Copy, clap::ValueEnum)]
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

fn time_arg(name: &str, value: &Option<String>) -> Result<Option<gateway::Millis>, String> {
    value
        .as_deref()
        .map(|v| {
            as2::UnixTime::parse(v)
                .map(|t| gateway::Millis(t.0.saturating_mul(1000)))
                .ok_or_else(|| {
                    format!("--{name} {v:?} is not a time (2026-11-28 or 2026-11-28T05:47:03Z)")
                })
        })
        .transpose()
}

pub fn messages(cmd: MessagesCommand) -> Result<ExitCode, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
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
            let c = a.config.load()?;
            let db = Db::open(&c.database()).map_err(|e| e.to_string())?;
            let records = rt.block_on(db.query(&query)).map_err(|e| e.to_string())?;
            if a.json {
                out!(
                    "{}",
                    serde_json::to_string_pretty(&records).map_err(|e| e.to_string())?
                );
                return Ok(ExitCode::SUCCESS);
            }
            let full = records.len() == query.limit;
            let last = records.last().map(|r| r.id.clone());
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
            if let (true, Some(last)) = (full, last) {
                out!("(more may follow: add --before {last})");
            }
        }
        MessagesCommand::Download {
            config,
            id,
            part,
            out,
        } => {
            use gateway::ports::ObjectStore as _;
            let c = config.load()?;
            let db = Db::open(&c.database()).map_err(|e| e.to_string())?;
            let r = find_record(&rt, &db, &id)?;
            let (what, key) = match part {
                Part::Payload => ("payload", r.payload_key.clone()),
                Part::Raw => ("raw message", r.raw_key.clone()),
                Part::Headers => ("headers", r.headers_key.clone()),
                Part::Receipt => ("receipt", r.mdn.as_ref().map(|m| m.key.clone())),
            };
            let key = key.ok_or_else(|| format!("message {} has no {what}", r.id))?;
            let store = gateway_local::DirStore::new(&c.data_dir).map_err(|e| e.to_string())?;
            let object = rt
                .block_on(store.get(&key))
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("the {what} of message {} ({key}) is gone", r.id))?;
            match out {
                Some(path) => {
                    use std::io::Write as _;
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    f.write_all(&object.data)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    eprintln!("{what} of {} written to {}", r.id, path.display());
                }
                None => {
                    use std::io::Write as _;
                    let mut stdout = std::io::stdout().lock();
                    match stdout.write_all(&object.data).and_then(|()| stdout.flush()) {
                        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                            return Err(e.to_string())
                        }
                        _ => {}
                    }
                }
            }
        }
        MessagesCommand::Resend { config, id, as_new } => {
            let c = config.load()?;
            let gateway =
                gateway::Gateway::new(gateway_local::local_ports(&c).map_err(|e| e.to_string())?);
            let resent = rt
                .block_on(gateway.resend(&id, as_new))
                .map_err(|e| match e {
                    gateway::GatewayError::NotFound(_) => format!("no message {id}"),
                    e => e.to_string(),
                })?;
            match resent.message_id {
                Some(mid) => out!("{}: queued to be sent again as {mid}", resent.id),
                None => out!(
                    "{}: queued to be sent again as a new message (a new Message-ID)",
                    resent.id
                ),
            }
        }
        MessagesCommand::Show { config, id } => {
            let c = config.load()?;
            let db = Db::open(&c.database()).map_err(|e| e.to_string())?;
            let r = find_record(&rt, &db, &id)?;
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
                out!("receipt file {}", c.data_dir.join(&m.key).display());
            }
            for (label, key) in [
                ("payload", &r.payload_key),
                ("raw message", &r.raw_key),
                ("headers", &r.headers_key),
            ] {
                if let Some(k) = key {
                    out!("{label:<12} {}", c.data_dir.join(k).display());
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
