//! `mftg.toml`: where the data lives, where to listen, the defaults, the stations and
//! partnerships.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use gateway::model::{self, Defaults, Partnership, Station};
use gateway::ports::PartnerDirectory;
use gateway::{GatewayError, Result};
use serde::{Deserialize, Serialize};

/// The embedded gateway's configuration. Unknown settings are refused (a misspelt one would
/// otherwise be ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The directory laid out like the bucket (relative paths are relative to the config file).
    pub data_dir: PathBuf,
    /// Where the AS2 endpoint listens.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Same-name uploads within this many seconds are duplicates (the seed: 6 hours).
    #[serde(default = "default_window")]
    pub duplicate_window_secs: u64,
    /// How often the send folder is looked at, in milliseconds.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
    /// Files in `AS2/send/` are sent when their writer closes them (inotify); `false` where file
    /// events do not come (some network file systems): then only the quiet time counts.
    #[serde(default = "yes")]
    pub upload_events: bool,
    /// A file no event says is complete is sent once it has not changed for this long.
    #[serde(default = "default_quiet")]
    pub upload_quiet_ms: u64,
    /// Jobs (sends, asynchronous receipts) run at once.
    #[serde(default = "default_workers")]
    pub send_workers: usize,
    /// Jobs for one partnership run at once (1 keeps its messages in order).
    #[serde(default = "default_partner_concurrency")]
    pub partner_concurrency: usize,
    /// Largest request body the endpoint accepts, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Seconds a connection has to send a request's headers (and an idle keep-alive
    /// connection to start its next request).
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: u64,
    /// Longest pause, in seconds, in a request's body before the request is dropped.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Connections the endpoint serves at once; more wait to be accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Days refused requests and unmatched receipts are kept (`AS2/raw-message/_rejected/`,
    /// `AS2/raw-mdn/incoming/_unmatched/`); 0 keeps them.
    #[serde(default = "default_rejected_retention")]
    pub rejected_retention_days: u64,
    /// Largest payload a compressed message may inflate to, in bytes (its MIME headers not
    /// counted); a message past it is refused with `decompression-failed` as soon as inflating
    /// passes it.
    #[serde(default = "default_max_decompressed")]
    pub max_decompressed_bytes: u64,
    /// Payloads larger than this, in bytes, are sent without being held in memory: read,
    /// built and stored in parts, and sent from the file.
    #[serde(default = "default_stream_above")]
    pub stream_above_bytes: u64,
    /// Environment variable holding the keystore password (identity, trust and https).
    #[serde(default = "default_password_env")]
    pub keystore_password_env: String,
    /// `[https]`: an HTTPS listener for the AS2 endpoint, beside the plain one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https: Option<HttpsConfig>,
    /// `[console]`: the operator console, its API and `/metrics`, served by `mftg serve` on
    /// their own listener (never the AS2 one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<ConsoleConfig>,
    /// `[defaults]`: the Message-ID domain, receipt URL and retry policy of stations and
    /// partnerships that do not set their own.
    #[serde(default)]
    pub defaults: Defaults,
    /// Our stations (`[[station]]` tables).
    #[serde(default, rename = "station")]
    pub stations: Vec<Station>,
    /// Their partnerships (`[[partnership]]` tables).
    #[serde(default, rename = "partnership")]
    pub partnerships: Vec<Partnership>,
    /// Where events are POSTed (`[[webhook]]` tables).
    #[serde(default, rename = "webhook", skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<gateway::model::Webhook>,
}

/// `[https]`: the AS2 endpoint over TLS 1.2 or 1.3, with a key entry of `AS2/keystore/https.jks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsConfig {
    /// Where the HTTPS endpoint listens.
    pub listen: SocketAddr,
    /// The key entry of `https.jks` to serve; by default its only key entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// `[console]`: where `mftg serve` serves the console, its API and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Where it listens: keep it on 127.0.0.1 (or behind a TLS proxy); anyone who reaches it
    /// with the token can act on the gateway.
    pub listen: SocketAddr,
    /// The file holding its token (made, readable by its owner only, when it is not there);
    /// by default `.mftg/console.token` in the data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

impl Config {
    /// The console token's file: `[console] token_file`, else `.mftg/console.token` in the
    /// data directory.
    pub fn console_token_file(&self) -> PathBuf {
        self.console
            .as_ref()
            .and_then(|c| c.token_file.clone())
            .unwrap_or_else(|| {
                self.data_dir
                    .join(crate::store::PRIVATE_DIR)
                    .join("console.token")
            })
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4080))
}
fn default_window() -> u64 {
    gateway::DEFAULT_DUPLICATE_WINDOW.as_secs()
}
fn default_poll() -> u64 {
    500
}
fn yes() -> bool {
    true
}
fn default_quiet() -> u64 {
    5000
}
fn default_workers() -> usize {
    8
}
fn default_partner_concurrency() -> usize {
    1
}
fn default_max_body() -> usize {
    4 << 30
}
fn default_header_timeout() -> u64 {
    30
}
fn default_idle_timeout() -> u64 {
    60
}
fn default_max_connections() -> usize {
    1024
}
fn default_rejected_retention() -> u64 {
    14
}
fn default_max_decompressed() -> u64 {
    gateway::DEFAULT_MAX_DECOMPRESSED_BYTES
}
fn default_stream_above() -> u64 {
    gateway::DEFAULT_STREAM_ABOVE
}
fn default_password_env() -> String {
    "MFTG_KEYSTORE_PASSWORD".into()
}

impl Config {
    /// A configuration with defaults and no stations.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            data_dir: data_dir.into(),
            listen: default_listen(),
            duplicate_window_secs: default_window(),
            poll_interval_ms: default_poll(),
            upload_events: true,
            upload_quiet_ms: default_quiet(),
            send_workers: default_workers(),
            partner_concurrency: default_partner_concurrency(),
            max_body_bytes: default_max_body(),
            header_timeout_secs: default_header_timeout(),
            idle_timeout_secs: default_idle_timeout(),
            max_connections: default_max_connections(),
            rejected_retention_days: default_rejected_retention(),
            max_decompressed_bytes: default_max_decompressed(),
            stream_above_bytes: default_stream_above(),
            keystore_password_env: default_password_env(),
            https: None,
            console: None,
            webhooks: Vec::new(),
            defaults: Defaults::default(),
            stations: Vec::new(),
            partnerships: Vec::new(),
        }
    }

    /// Reads `path`; a relative `data_dir` is taken relative to the file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| GatewayError::Config(format!("cannot read {}: {e}", path.display())))?;
        let mut c: Config = toml::from_str(&text)
            .map_err(|e| GatewayError::Config(format!("{}: {e}", path.display())))?;
        if c.data_dir.is_relative() {
            let base = path.parent().unwrap_or(Path::new("."));
            c.data_dir = base.join(&c.data_dir);
        }
        c.check()?;
        Ok(c)
    }

    /// Writes the configuration to `path` (comments in an existing file are not kept): to a
    /// temporary file beside it, with the old file's permissions, renamed over it, so a reader
    /// (or a crash) never sees half a file; flushed as the store flushes its objects, so a
    /// change reported saved is still there after a power loss.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self).map_err(|e| GatewayError::Config(e.to_string()))?;
        crate::store::replace_file(path, text.as_bytes())
            .map_err(|e| GatewayError::Config(format!("cannot write {}: {e}", path.display())))
    }

    /// Changes the file at `path`: reads it as written (the data directory as the file names
    /// it), applies `change`, checks the result and saves it; nothing is written when the check
    /// fails. Not for two writers at once: the caller serializes its edits.
    pub fn edit(path: &Path, change: impl FnOnce(&mut Config)) -> Result<()> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| GatewayError::Config(format!("cannot read {}: {e}", path.display())))?;
        let mut c: Config = toml::from_str(&text)
            .map_err(|e| GatewayError::Config(format!("{}: {e}", path.display())))?;
        change(&mut c);
        c.check()?;
        c.save(path)
    }

    /// Checks what can be checked without the keystore.
    pub fn check(&self) -> Result<()> {
        let invalid = |what: String| {
            move |e: model::SettingError| GatewayError::Config(format!("{what}: {e}"))
        };
        self.defaults
            .check()
            .map_err(invalid("[defaults]".into()))?;
        for s in &self.stations {
            s.check()?;
        }
        model::check_webhooks(&self.webhooks)?;
        if let Some(c) = &self.console {
            let taken = std::iter::once(self.listen).chain(self.https.as_ref().map(|h| h.listen));
            if taken.into_iter().any(|a| a == c.listen) {
                return Err(GatewayError::Config(format!(
                    "[console] listen {} is an AS2 endpoint's address: the console needs its own",
                    c.listen
                )));
            }
        }
        for p in &self.partnerships {
            if !self.stations.iter().any(|s| s.as2_id == p.station) {
                return Err(GatewayError::Config(format!(
                    "partnership {} -> {} names a station that is not configured",
                    p.station, p.partner
                )));
            }
            p.check()?;
            if p.client_certificate_alias.is_some() && self.https.is_none() {
                return Err(GatewayError::Config(format!(
                    "partnership {} -> {} names a client_certificate_alias, which only an \
                     [https] listener can check: add one",
                    p.station, p.partner
                )));
            }
        }
        Ok(())
    }

    /// The SQLite database file.
    pub fn database(&self) -> PathBuf {
        self.data_dir
            .join(crate::store::PRIVATE_DIR)
            .join("gateway.sqlite")
    }
}

/// [`PartnerDirectory`] over the configuration.
#[derive(Debug, Clone)]
pub struct ConfigDirectory {
    stations: Vec<Station>,
    partnerships: Vec<Partnership>,
}

impl ConfigDirectory {
    /// The configuration's stations and partnerships.
    pub fn new(config: &Config) -> Self {
        ConfigDirectory {
            stations: config.stations.clone(),
            partnerships: config.partnerships.clone(),
        }
    }
}

impl PartnerDirectory for ConfigDirectory {
    async fn station(&self, as2_id: &str) -> Result<Option<Station>> {
        Ok(self.stations.iter().find(|s| s.as2_id == as2_id).cloned())
    }

    async fn partnership(&self, station: &str, partner: &str) -> Result<Option<Partnership>> {
        Ok(self
            .partnerships
            .iter()
            .find(|p| p.station == station && p.partner == partner)
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_file_and_checks() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mftg.toml");
        std::fs::write(
            &path,
            r#"
data_dir = "data"
listen = "127.0.0.1:4999"

[[station]]
as2_id = "ALPHA"
key_alias = "alpha"

[[partnership]]
station = "ALPHA"
partner = "BETA"
url = "http://127.0.0.1:4998/as2"
certificate_alias = "beta"
mdn = "async"
"#,
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.data_dir, tmp.path().join("data"));
        assert_eq!(c.partnerships[0].mdn, gateway::model::MdnMode::Async);
        assert_eq!(
            c.partnerships[0].encryption,
            Some(as2::algorithm::ContentEncryption::Aes256Cbc)
        );
        c.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), c);
        let mut bad = c.clone();
        bad.partnerships[0].station = "NOPE".into();
        assert!(bad.check().is_err());
        let mut bad = c.clone();
        bad.partnerships[0].url = "ftp://x".into();
        assert!(bad.check().is_err());
        // A client certificate can only be checked by an HTTPS listener.
        let mut mtls = c.clone();
        mtls.partnerships[0].client_certificate_alias = Some("beta-client".into());
        let e = mtls.check().unwrap_err().to_string();
        assert!(e.contains("[https]"), "{e}");
        mtls.https = Some(HttpsConfig {
            listen: "127.0.0.1:4443".parse().unwrap(),
            alias: None,
        });
        mtls.check().unwrap();
        mtls.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), mtls);
        assert_eq!(c.defaults, Defaults::default());
    }

    #[test]
    fn defaults_section() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mftg.toml");
        let file = |defaults: &str| {
            format!(
                "data_dir = \"data\"\n\n[defaults]\n{defaults}\n\n[[station]]\n\
                 as2_id = \"ALPHA\"\nkey_alias = \"alpha\"\n"
            )
        };
        std::fs::write(
            &path,
            file(
                "message_id_domain = \"edi.acme.example\"\n\
                 mdn_url = \"https://as2.acme.example/as2\"\n\
                 retry = { attempts = 3, first_interval_secs = 60 }",
            ),
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.defaults.message_id_domain, "edi.acme.example");
        assert_eq!(
            c.defaults.mdn_url.as_deref(),
            Some("https://as2.acme.example/as2")
        );
        assert_eq!(
            c.defaults.retry,
            gateway::model::RetryPolicy {
                attempts: 3,
                first_interval_secs: 60,
                max_interval_secs: 3600,
            }
        );
        assert_eq!(c.stations[0].message_id_domain, None);
        c.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), c);

        for (bad, why) in [
            ("message_id_domain = \"acme example\"", "not a domain"),
            ("mdn_url = \"as2.acme.example\"", "not an http"),
            (
                "retry = { attempts = 0, first_interval_secs = 1 }",
                "at least 1 attempt",
            ),
            ("retries = 3", "unknown field"),
        ] {
            std::fs::write(&path, file(bad)).unwrap();
            let e = Config::load(&path).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let mut bad = c.clone();
        bad.stations[0].message_id_domain = Some("a@b".into());
        assert!(bad
            .check()
            .unwrap_err()
            .to_string()
            .contains("station ALPHA"));
    }
}
