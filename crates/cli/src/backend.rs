//! What a command acts on: the embedded gateway's data directory (`mftg.toml`), or an AWS
//! deployment (an `[aws]` section, or `--profile NAME`). Both go through the domain's ports, the
//! AWS one through the same `gateway-aws` adapters the Lambdas use.

use std::path::{Path, PathBuf};

use as2::keys::Keystore;
use gateway::layout::keystore as ks_paths;
use gateway::model::{MessageRecord, Partnership, Station};
#[cfg(feature = "aws")]
use gateway::ports::ObjectStore;
use gateway::ports::{MessageLog, Ports, RecordQuery};
use gateway_local::Config;

/// Where the configuration file or profile is.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArg {
    /// The configuration file: an embedded gateway's, or one with an `[aws]` section naming a
    /// deployment.
    #[arg(long, short = 'c', env = "MFTG_CONFIG", default_value = "mftg.toml")]
    pub config: PathBuf,
    /// An AWS deployment's profile (written by `mftg init --aws --profile NAME`), instead of the
    /// configuration file.
    #[arg(long, env = "MFTG_PROFILE")]
    pub profile: Option<String>,
}

/// The directory named profiles are kept in: `$MFTG_PROFILES`, else
/// `$XDG_CONFIG_HOME/mftg/profiles`, else `~/.config/mftg/profiles`.
pub fn profiles_dir() -> Result<PathBuf, String> {
    if let Some(d) = std::env::var_os("MFTG_PROFILES").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("mftg").join("profiles"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".config/mftg/profiles")),
        None => Err("set HOME (or MFTG_PROFILES) to say where profiles are kept".into()),
    }
}

/// A named profile's file.
pub fn profile_file(name: &str) -> Result<PathBuf, String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.');
    if !ok {
        return Err(format!(
            "profile name {name:?}: use letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(profiles_dir()?.join(format!("{name}.toml")))
}

/// What a configuration file holds.
enum File {
    Embedded(Box<Config>),
    #[cfg(feature = "aws")]
    Aws(Box<gateway_aws::profile::Profile>),
}

/// An `[aws]` file holds that section only.
#[cfg(feature = "aws")]
#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// The deployment.
    pub aws: gateway_aws::profile::Profile,
}

fn read_file(path: &Path) -> Result<File, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let is_aws = text
        .parse::<toml::Table>()
        .map(|t| t.contains_key("aws"))
        .unwrap_or(false);
    if is_aws {
        #[cfg(feature = "aws")]
        {
            let f: ProfileFile =
                toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            f.aws
                .check()
                .map_err(|e| format!("{}: [aws]: {e}", path.display()))?;
            return Ok(File::Aws(Box::new(f.aws)));
        }
        #[cfg(not(feature = "aws"))]
        return Err(format!(
            "{} names an AWS deployment, and this mftg was built without AWS support \
             (build with the `aws` feature)",
            path.display()
        ));
    }
    Config::load(path)
        .map(|c| File::Embedded(Box::new(c)))
        .map_err(|e| e.to_string())
}

impl ConfigArg {
    /// The embedded gateway's configuration; an error for a deployment's profile.
    pub fn load(&self) -> Result<Config, String> {
        match self.open_file()? {
            (File::Embedded(c), _) => Ok(*c),
            #[cfg(feature = "aws")]
            (File::Aws(_), path) => Err(format!(
                "{}: this command acts on an embedded gateway's data directory, and this names \
                 an AWS deployment",
                path.display()
            )),
        }
    }

    /// Whether this names an AWS deployment (a profile, or a file with an `[aws]` section).
    #[cfg(feature = "aws")]
    pub fn names_aws(&self) -> bool {
        self.profile.is_some()
            || std::fs::read_to_string(&self.config)
                .ok()
                .and_then(|t| t.parse::<toml::Table>().ok())
                .is_some_and(|t| t.contains_key("aws"))
    }

    fn open_file(&self) -> Result<(File, PathBuf), String> {
        let path = match &self.profile {
            Some(name) => {
                let path = profile_file(name)?;
                if !path.exists() {
                    return Err(format!(
                        "no profile {name:?} ({}): make it with mftg init --aws --profile {name}",
                        path.display()
                    ));
                }
                path
            }
            None => self.config.clone(),
        };
        Ok((read_file(&path)?, path))
    }

    /// The backend the file or profile names, with a runtime to drive it.
    pub fn open(&self) -> Result<Backend, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let (file, path) = self.open_file()?;
        let target = match file {
            File::Embedded(config) => Target::Local {
                config,
                path,
                gateway: Box::default(),
            },
            #[cfg(feature = "aws")]
            File::Aws(profile) => {
                let settings = profile.settings().map_err(|e| e.to_string())?;
                let conf = rt.block_on(gateway_aws::config::load(&profile.endpoint()));
                let gateway =
                    gateway::Gateway::new(gateway_aws::ports::aws_ports(&conf, &settings));
                Target::Aws(Box::new(Aws {
                    profile: *profile,
                    settings,
                    conf,
                    gateway,
                }))
            }
        };
        Ok(Backend { rt, target })
    }
}

/// An AWS deployment, opened.
#[cfg(feature = "aws")]
pub struct Aws {
    /// Its profile.
    pub profile: gateway_aws::profile::Profile,
    /// Where its data is.
    pub settings: gateway_aws::ports::AwsSettings,
    /// The SDK configuration.
    pub conf: aws_config::SdkConfig,
    /// The gateway over its ports, as the Lambdas build them.
    pub gateway: gateway::Gateway<gateway_aws::ports::AwsPorts>,
}

/// What a command acts on.
pub enum Target {
    /// The embedded gateway: its configuration and the file it came from.
    Local {
        /// The configuration.
        config: Box<Config>,
        /// Its file.
        path: PathBuf,
        /// The gateway over the data directory, opened when a command first needs it (opening
        /// makes the database, which `keys generate` before the first `serve` does not need).
        gateway: Box<std::cell::OnceCell<gateway::Gateway<gateway_local::LocalPorts>>>,
    },
    /// An AWS deployment.
    #[cfg(feature = "aws")]
    Aws(Box<Aws>),
}

/// A backend and the runtime its calls run on.
pub struct Backend {
    /// Runs the ports' calls.
    pub rt: tokio::runtime::Runtime,
    /// The backend.
    pub target: Target,
}

/// Runs `$body` with `$g` bound to the backend's gateway (each backend's own type).
macro_rules! with_gateway {
    ($backend:expr, $g:ident => $body:expr) => {
        match &$backend.target {
            $crate::backend::Target::Local {
                config, gateway, ..
            } => {
                let $g = $crate::backend::local_gateway(gateway, config)?;
                $body
            }
            #[cfg(feature = "aws")]
            $crate::backend::Target::Aws(aws) => {
                let $g = &aws.gateway;
                $body
            }
        }
    };
}

/// The embedded gateway, opened once.
fn local_gateway<'a>(
    cell: &'a std::cell::OnceCell<gateway::Gateway<gateway_local::LocalPorts>>,
    config: &Config,
) -> Result<&'a gateway::Gateway<gateway_local::LocalPorts>, String> {
    if let Some(g) = cell.get() {
        return Ok(g);
    }
    let g = gateway::Gateway::new(gateway_local::local_ports(config).map_err(err)?);
    Ok(cell.get_or_init(|| g))
}

/// Why a stored file could not be written out.
#[derive(Debug)]
pub enum PartError {
    /// It could not be read: the message has none, it is gone, the store failed.
    Read(String),
    /// Where it was written to failed.
    Write(std::io::Error),
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
    /// Its key in the layout.
    pub fn key(self) -> &'static str {
        match self {
            Store::Identity => ks_paths::IDENTITY,
            Store::Trust => ks_paths::TRUST,
            Store::Https => ks_paths::HTTPS,
        }
    }

    /// All three.
    pub const ALL: [Store; 3] = [Store::Identity, Store::Trust, Store::Https];
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Backend {
    /// The embedded configuration, if that is the backend.
    pub fn local(&self) -> Option<&Config> {
        match &self.target {
            Target::Local { config, .. } => Some(config),
            #[cfg(feature = "aws")]
            Target::Aws(_) => None,
        }
    }

    /// Says where the settings are: the configuration file, or the deployment's table.
    pub fn settings_place(&self) -> String {
        match &self.target {
            Target::Local { path, .. } => path.display().to_string(),
            #[cfg(feature = "aws")]
            Target::Aws(a) => match &a.profile.stack {
                Some(stack) => format!("table {} (stack {stack})", a.settings.tables.partners),
                None => format!("table {}", a.settings.tables.partners),
            },
        }
    }

    /// Where a stored object is, for people: a path, or `s3://bucket/key`.
    pub fn place(&self, key: &str) -> String {
        match &self.target {
            Target::Local { config, .. } => config.data_dir.join(key).display().to_string(),
            #[cfg(feature = "aws")]
            Target::Aws(a) => format!("s3://{}/{key}", a.settings.bucket),
        }
    }

    // -------------------------------------------------------------- messages

    /// Records matching `query`, newest first.
    pub fn query(&self, query: &RecordQuery) -> Result<Vec<MessageRecord>, String> {
        with_gateway!(self, g => self.rt.block_on(g.ports.log().query(query)).map_err(err))
    }

    /// A record by its id or, failing that, its Message-ID.
    pub fn find_record(&self, id: &str) -> Result<MessageRecord, String> {
        let named = |e: gateway::GatewayError| match e {
            gateway::GatewayError::NotFound(_) => format!("no message {id}"),
            gateway::GatewayError::Refused(why) => why,
            e => e.to_string(),
        };
        with_gateway!(self, g => self.rt.block_on(g.find_record(id)).map_err(named))
    }

    /// Writes one of a message's stored files to `out`, part by part.
    pub fn write_part(
        &self,
        record: &MessageRecord,
        part: gateway::model::Part,
        out: &mut dyn std::io::Write,
    ) -> Result<(), PartError> {
        use gateway::ports::ObjectReader as _;
        let read = |e: gateway::GatewayError| match e {
            gateway::GatewayError::NotFound(why) => PartError::Read(why),
            e => PartError::Read(e.to_string()),
        };
        let copied = (|| {
            Ok(with_gateway!(self, g => self.rt.block_on(async {
                let (_, mut reader) = g.part(record, part).await.map_err(read)?;
                while let Some(data) = reader.next().await.map_err(read)? {
                    out.write_all(&data).map_err(PartError::Write)?;
                }
                out.flush().map_err(PartError::Write)
            })))
        })();
        copied.unwrap_or_else(|e: String| Err(PartError::Read(e)))
    }

    /// Queues an outbound message to be sent again.
    pub fn resend(&self, id: &str, as_new: bool) -> Result<gateway::Resent, String> {
        let mapped = |e: gateway::GatewayError| match e {
            gateway::GatewayError::NotFound(_) => format!("no message {id}"),
            e => e.to_string(),
        };
        with_gateway!(self, g => self.rt.block_on(g.resend(id, as_new)).map_err(mapped))
    }

    /// Whether any message of `station` (and `partner`) is not in a final state.
    pub fn in_flight(&self, station: &str, partner: Option<&str>) -> Result<Vec<String>, String> {
        let records = self.query(&RecordQuery::of(Some(station), partner, 500))?;
        Ok(records
            .into_iter()
            .filter(|r| !r.status.is_final())
            .map(|r| r.id)
            .collect())
    }

    // -------------------------------------------------------------- parked jobs

    /// Jobs set aside: the dead-letter queue, or the database's parked jobs.
    pub fn parked(&self, limit: usize) -> Result<Vec<gateway::ports::ParkedJob>, String> {
        match &self.target {
            Target::Local {
                config, gateway, ..
            } => {
                let g = local_gateway(gateway, config)?;
                self.rt
                    .block_on(crate::console::local_parked(g, limit))
                    .map_err(err)
            }
            #[cfg(feature = "aws")]
            Target::Aws(a) => self
                .rt
                .block_on(a.gateway.ports.queue.dead_letters(limit))
                .map_err(err),
        }
    }

    /// Puts parked jobs back in the queue: all, or those whose id or message record is `only`.
    pub fn redrive(
        &self,
        only: Option<&str>,
        limit: usize,
    ) -> Result<Vec<gateway::ports::ParkedJob>, String> {
        match &self.target {
            Target::Local {
                config, gateway, ..
            } => {
                let g = local_gateway(gateway, config)?;
                self.rt
                    .block_on(crate::console::local_redrive(g, only, limit))
                    .map_err(err)
            }
            #[cfg(feature = "aws")]
            Target::Aws(a) => self
                .rt
                .block_on(a.gateway.ports.queue.redrive(only, limit))
                .map_err(err),
        }
    }

    // -------------------------------------------------------------- sending

    /// Puts `data` at `AS2/send/<from>/<to>/<name>`, as an SFTP upload would; returns where.
    pub fn send(&self, from: &str, to: &str, name: &str, source: &Path) -> Result<String, String> {
        match &self.target {
            Target::Local { config, .. } => {
                let dir = config
                    .data_dir
                    .join(gateway::layout::SEND)
                    .join(from)
                    .join(to);
                let target = dir.join(name);
                // Written as the store writes: the gateway never finds the name with the bytes
                // missing (and sends that), and the file reported placed is there after a
                // power loss too.
                gateway_local::store::replace_file_with(&target, |to| {
                    std::io::copy(&mut std::fs::File::open(source)?, to).map(drop)
                })
                .map_err(|e| format!("{} -> {}: {e}", source.display(), target.display()))?;
                Ok(target.display().to_string())
            }
            #[cfg(feature = "aws")]
            Target::Aws(a) => {
                let key = gateway::layout::SendKey::new(from, to, name).key();
                let data =
                    std::fs::read(source).map_err(|e| format!("{}: {e}", source.display()))?;
                self.rt
                    .block_on(a.gateway.ports.store.put(&key, data, Default::default()))
                    .map_err(err)?;
                Ok(self.place(&key))
            }
        }
    }

    // -------------------------------------------------------------- stations and partnerships

    /// Every station.
    pub fn stations(&self) -> Result<Vec<Station>, String> {
        match &self.target {
            Target::Local { config, .. } => Ok(config.stations.clone()),
            #[cfg(feature = "aws")]
            Target::Aws(a) => self
                .rt
                .block_on(a.gateway.ports.directory.stations())
                .map_err(err),
        }
    }

    /// Every partnership.
    pub fn partnerships(&self) -> Result<Vec<Partnership>, String> {
        match &self.target {
            Target::Local { config, .. } => Ok(config.partnerships.clone()),
            #[cfg(feature = "aws")]
            Target::Aws(a) => self
                .rt
                .block_on(a.gateway.ports.directory.partnerships())
                .map_err(err),
        }
    }

    /// One station, or an error naming what there is.
    pub fn station(&self, as2_id: &str) -> Result<Station, String> {
        let all = self.stations()?;
        let ids: Vec<_> = all.iter().map(|s| s.as2_id.clone()).collect();
        all.into_iter().find(|s| s.as2_id == as2_id).ok_or_else(|| {
            format!(
                "no station {as2_id} in {} (there are: {})",
                self.settings_place(),
                if ids.is_empty() {
                    "none".into()
                } else {
                    ids.join(", ")
                }
            )
        })
    }

    /// One partnership, or an error.
    pub fn partnership(&self, station: &str, partner: &str) -> Result<Partnership, String> {
        self.partnerships()?
            .into_iter()
            .find(|p| p.station == station && p.partner == partner)
            .ok_or_else(|| {
                format!(
                    "no partnership {station} -> {partner} in {}",
                    self.settings_place()
                )
            })
    }

    /// Adds or replaces a station.
    pub fn put_station(&mut self, station: Station) -> Result<(), String> {
        station.check().map_err(err)?;
        match &mut self.target {
            Target::Local {
                config,
                path,
                gateway,
            } => edit(config, path, gateway, |c| {
                c.stations.retain(|s| s.as2_id != station.as2_id);
                c.stations.push(station);
            }),
            #[cfg(feature = "aws")]
            Target::Aws(a) => self
                .rt
                .block_on(a.gateway.ports.directory.put_station(&station))
                .map_err(err),
        }
    }

    /// Adds or replaces a partnership; its station must exist.
    pub fn put_partnership(&mut self, p: Partnership) -> Result<(), String> {
        p.check().map_err(err)?;
        self.station(&p.station)?;
        match &mut self.target {
            Target::Local {
                config,
                path,
                gateway,
            } => edit(config, path, gateway, |c| {
                c.partnerships
                    .retain(|q| !(q.station == p.station && q.partner == p.partner));
                c.partnerships.push(p);
            }),
            #[cfg(feature = "aws")]
            Target::Aws(a) => self
                .rt
                .block_on(a.gateway.ports.directory.put_partnership(&p))
                .map_err(err),
        }
    }

    /// Removes a station (its partnerships must be gone first).
    pub fn remove_station(&mut self, as2_id: &str) -> Result<(), String> {
        self.station(as2_id)?;
        let left: Vec<_> = self
            .partnerships()?
            .into_iter()
            .filter(|p| p.station == as2_id)
            .map(|p| p.partner)
            .collect();
        if !left.is_empty() {
            return Err(format!(
                "station {as2_id} still has partnerships ({}): remove them first",
                left.join(", ")
            ));
        }
        match &mut self.target {
            Target::Local {
                config,
                path,
                gateway,
            } => edit(config, path, gateway, |c| {
                c.stations.retain(|s| s.as2_id != as2_id);
            }),
            #[cfg(feature = "aws")]
            Target::Aws(a) => self
                .rt
                .block_on(a.gateway.ports.directory.delete_station(as2_id))
                .map_err(err),
        }
    }

    /// Removes a partnership.
    pub fn remove_partnership(&mut self, station: &str, partner: &str) -> Result<(), String> {
        self.partnership(station, partner)?;
        match &mut self.target {
            Target::Local {
                config,
                path,
                gateway,
            } => edit(config, path, gateway, |c| {
                c.partnerships
                    .retain(|q| !(q.station == station && q.partner == partner));
            }),
            #[cfg(feature = "aws")]
            Target::Aws(a) => self
                .rt
                .block_on(
                    a.gateway
                        .ports
                        .directory
                        .delete_partnership(station, partner),
                )
                .map_err(err),
        }
    }

    // -------------------------------------------------------------- keystores

    /// A keystore, empty if there is none yet (read through the gateway's keystore port, with
    /// the password the configuration or the deployment names).
    pub fn keystore(&self, store: Store) -> Result<Keystore, String> {
        with_gateway!(self, g => self
            .rt
            .block_on(g.ports.keys.load(store.key()))
            .map_err(|e| self.keystore_error(store, e)))
    }

    /// Writes a keystore (JKS, with its password).
    pub fn save_keystore(&self, store: Store, ks: &Keystore) -> Result<(), String> {
        let now = crate::local::now();
        with_gateway!(self, g => self
            .rt
            .block_on(g.ports.keys.save(store.key(), ks, now))
            .map_err(|e| self.keystore_error(store, e)))
    }

    /// A keystore failure, said with where the keystore is.
    fn keystore_error(&self, store: Store, e: gateway::GatewayError) -> String {
        match e {
            gateway::GatewayError::Config(m) => match m.strip_prefix(store.key()) {
                Some(rest) => format!("{}{rest}", self.place(store.key())),
                None => m,
            },
            e => e.to_string(),
        }
    }
}

/// Changes the embedded configuration and saves it. The gateway read it as it was: it is
/// opened again if a command needs it after.
fn edit(
    config: &mut Config,
    path: &Path,
    gateway: &mut std::cell::OnceCell<gateway::Gateway<gateway_local::LocalPorts>>,
    change: impl FnOnce(&mut Config),
) -> Result<(), String> {
    gateway.take();
    change(config);
    save(config, path)
}

fn save(config: &Config, path: &Path) -> Result<(), String> {
    config.check().map_err(err)?;
    // The file keeps the data directory as it was written (relative to the file).
    let mut written = config.clone();
    if let Ok(text) = std::fs::read_to_string(path) {
        if let Ok(old) = toml::from_str::<Config>(&text) {
            written.data_dir = old.data_dir;
        }
    }
    written.save(path).map_err(err)
}
