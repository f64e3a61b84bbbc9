//! Configuration: stations, partnerships and the deployment's defaults, with the checks that
//! refuse settings that cannot work.

use std::time::Duration;

use as2::algorithm::{ContentEncryption, DigestAlgorithm};
use as2::message::Compression;
use as2::receive::ReceiptMic;
use serde::{Deserialize, Serialize};

/// One of our AS2 identities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Station {
    /// Our AS2 ID.
    pub as2_id: String,
    /// Alias of our key in `AS2/keystore/identity.jks`.
    pub key_alias: String,
    /// Where partners POST asynchronous receipts for messages we send; `None` takes the
    /// deployment's [`Defaults::mdn_url`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mdn_url: Option<String>,
    /// `Disposition-Notification-To` value (an address or our AS2 ID).
    #[serde(default)]
    pub mdn_email: Option<String>,
    /// The part of our Message-IDs after the `@`; `None` takes the deployment's
    /// [`Defaults::message_id_domain`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id_domain: Option<String>,
}

/// What a deployment sets once for every station and partnership that does not set its own:
/// template parameters on AWS, `[defaults]` in `mftg.toml` for the embedded gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// The part of Message-IDs after the `@`.
    #[serde(default = "default_domain")]
    pub message_id_domain: String,
    /// Our public AS2 URL, where partners POST asynchronous receipts.
    #[serde(default)]
    pub mdn_url: Option<String>,
    /// Retries for what we send.
    #[serde(default)]
    pub retry: RetryPolicy,
}

/// The Message-ID domain when nothing else names one (the AS2 engine's).
pub const DEFAULT_MESSAGE_ID_DOMAIN: &str = as2::envelope::DEFAULT_MESSAGE_ID_DOMAIN;

fn default_domain() -> String {
    DEFAULT_MESSAGE_ID_DOMAIN.into()
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            message_id_domain: default_domain(),
            mdn_url: None,
            retry: RetryPolicy::default(),
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// Not a domain a Message-ID can end in.
    #[error("{0:?} is not a domain name (letters, digits, '-', '_' and dots) for Message-IDs")]
    MessageIdDomain(String),
    /// Not an AS2 URL.
    #[error("{0:?} is not an http:// or https:// URL with a host")]
    Url(String),
    /// A retry policy that never tries.
    #[error("a retry policy needs at least 1 attempt")]
    NoAttempts,
    /// A retry policy whose first wait is longer than its longest.
    #[error("the first retry interval ({first} s) is longer than the longest ({longest} s)")]
    FirstIntervalTooLong {
        /// The first wait, in seconds.
        first: u64,
        /// The longest wait, in seconds.
        longest: u64,
    },
}

impl Station {
    /// Checks what can be checked without the keystore: an AS2 ID that can name a folder, a
    /// Message-ID domain and a receipt URL that work.
    pub fn check(&self) -> crate::Result<()> {
        crate::layout::check_as2_id(&self.as2_id)?;
        let invalid =
            |e: SettingError| crate::GatewayError::Config(format!("station {}: {e}", self.as2_id));
        if let Some(domain) = &self.message_id_domain {
            check_domain(domain).map_err(invalid)?;
        }
        if let Some(url) = &self.mdn_url {
            check_url(url).map_err(invalid)?;
        }
        if self.key_alias.trim().is_empty() {
            return Err(crate::GatewayError::Config(format!(
                "station {}: the key alias is empty",
                self.as2_id
            )));
        }
        Ok(())
    }
}

impl Defaults {
    /// Checks the values make sense: a domain that fits in a Message-ID, an http(s) URL, a
    /// retry policy that tries at least once.
    pub fn check(&self) -> Result<(), SettingError> {
        check_domain(&self.message_id_domain)?;
        if let Some(url) = &self.mdn_url {
            check_url(url)?;
        }
        self.retry.check()
    }
}

/// Whether `domain` can follow the `@` of a Message-ID (RFC 5322 `dot-atom-text`, which is what
/// partner products parse).
pub fn check_domain(domain: &str) -> Result<(), SettingError> {
    let ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(SettingError::MessageIdDomain(domain.to_string()))
    }
}

/// Whether `url` can be an AS2 URL (a partner's, or ours for receipts): `http://` or `https://`
/// with a host.
pub fn check_url(url: &str) -> Result<(), SettingError> {
    if is_http_url(url) {
        Ok(())
    } else {
        Err(SettingError::Url(url.to_string()))
    }
}

fn is_http_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    !host.is_empty() && !host.starts_with(':') && !url.chars().any(char::is_whitespace)
}

/// When and how often a send is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; each further wait doubles.
    pub first_interval_secs: u64,
    /// Longest wait between two attempts.
    #[serde(default = "default_max_interval")]
    pub max_interval_secs: u64,
}

fn default_max_interval() -> u64 {
    3600
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            first_interval_secs: 30,
            max_interval_secs: default_max_interval(),
        }
    }
}

impl RetryPolicy {
    /// Checks the policy tries at least once and waits at most as long as its longest wait.
    pub fn check(&self) -> Result<(), SettingError> {
        if self.attempts == 0 {
            return Err(SettingError::NoAttempts);
        }
        if self.first_interval_secs > self.max_interval_secs {
            return Err(SettingError::FirstIntervalTooLong {
                first: self.first_interval_secs,
                longest: self.max_interval_secs,
            });
        }
        Ok(())
    }

    /// The wait after failed attempt number `attempt` (1-based), or `None` when none are left.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.attempts {
            return None;
        }
        let factor = 1u64 << (attempt.saturating_sub(1)).min(30);
        let secs = self
            .first_interval_secs
            .saturating_mul(factor)
            .min(self.max_interval_secs);
        Some(Duration::from_secs(secs))
    }
}

/// How the partner returns receipts for what we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MdnMode {
    /// The partner is not asked for a receipt: a message is `sent` once the POST is answered.
    None,
    /// In the HTTP response.
    #[default]
    Sync,
    /// Later, POSTed to our station's `mdn_url`.
    Async,
}

impl MdnMode {
    /// Every mode, in the order help texts list them.
    pub const ALL: [MdnMode; 3] = [MdnMode::Sync, MdnMode::Async, MdnMode::None];

    /// `none`, `sync` or `async`.
    pub fn as_str(self) -> &'static str {
        match self {
            MdnMode::None => "none",
            MdnMode::Sync => "sync",
            MdnMode::Async => "async",
        }
    }
}

impl std::str::FromStr for MdnMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("receipt mode {s:?} (accepted: sync, async, none)"))
    }
}

/// HTTP basic authentication towards a partner. The password is named, not stored: it comes from
/// the environment (embedded) or a secret store (AWS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasicAuth {
    /// The user name sent in the clear (only the password is a secret).
    pub user: String,
    /// Name of the environment variable or secret holding the password.
    pub password_secret: String,
}

/// TLS settings for a partner's HTTPS URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TlsOptions {
    /// Alias in `AS2/keystore/https.jks` of a CA (or self-signed server) certificate to trust.
    #[serde(default)]
    pub ca_alias: Option<String>,
    /// Accept any server certificate (testing only; logged loudly).
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// Everything about one trading partner of one station. Unknown fields are refused: a misspelt
/// setting would otherwise be ignored and its default used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partnership {
    /// Our station's AS2 ID.
    pub station: String,
    /// The partner's AS2 ID.
    pub partner: String,
    /// The partner's AS2 URL.
    pub url: String,
    /// Alias of the partner's certificate in `AS2/keystore/trust.jks`.
    pub certificate_alias: String,
    /// Cipher for what we send; `None` (written `"none"`) sends unencrypted. Left out, AES-256-CBC.
    #[serde(default = "default_cipher", with = "named::cipher")]
    pub encryption: Option<ContentEncryption>,
    /// RSAES-OAEP instead of PKCS#1 v1.5 key transport.
    #[serde(default)]
    pub oaep: bool,
    /// Signing digest; `None` (written `"none"`) sends unsigned. Left out, SHA-256.
    #[serde(default = "default_digest", with = "named::signing")]
    pub signing: Option<DigestAlgorithm>,
    /// RSASSA-PSS instead of PKCS#1 v1.5 signatures.
    #[serde(default)]
    pub pss: bool,
    /// Compression and where it goes relative to the signature. Left out, before signing.
    #[serde(default = "default_compression", with = "named::compression")]
    pub compression: Compression,
    /// How receipts come back.
    #[serde(default)]
    pub mdn: MdnMode,
    /// Ask for signed receipts.
    #[serde(default = "yes")]
    pub signed_mdn: bool,
    /// MIC algorithm to ask the receipt for (`sha-256` unless the partner needs another).
    #[serde(default = "default_mic", with = "named::mic")]
    pub mic_algorithm: DigestAlgorithm,
    /// The algorithm of the MIC in our receipts for signed messages from the partner: the one its
    /// request asks for (RFC 4130; OpenAS2, Mendelson and other BouncyCastle-based products), or
    /// its signature's digest (`signature`: pyas2lib and django-pyas2, which compare only the
    /// value against a MIC in their signing digest).
    #[serde(default, with = "named::receipt_mic")]
    pub receipt_mic: ReceiptMic,
    /// Write algorithm names as `sha1`/`sha256` instead of `sha-1`/`sha-256` (older products).
    #[serde(default)]
    pub compact_algorithm_names: bool,
    /// Retries for what we send; `None` takes the deployment's [`Defaults::retry`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Content-Type of what we send.
    #[serde(default = "default_content_type")]
    pub content_type: String,
    /// HTTP basic auth towards the partner.
    #[serde(default)]
    pub auth: Option<BasicAuth>,
    /// TLS towards the partner.
    #[serde(default)]
    pub tls: TlsOptions,
    /// Headers of the partner's requests that carry secrets (beside `Authorization`, which always
    /// does): stored with their values replaced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_headers: Vec<String>,
    /// Alias in `AS2/keystore/https.jks` of the partner's TLS client certificate: when set, its
    /// messages are accepted only over HTTPS from a client presenting that certificate
    /// (embedded gateway; a Function URL cannot ask for client certificates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_alias: Option<String>,
    /// Refuse unsigned messages from the partner.
    #[serde(default)]
    pub require_signed: bool,
    /// Refuse unencrypted messages from the partner.
    #[serde(default)]
    pub require_encrypted: bool,
    /// Accept SHA-1 and 3DES from the partner.
    #[serde(default = "yes")]
    pub allow_legacy_algorithms: bool,
    /// How long to wait for an asynchronous receipt before the message is overdue.
    #[serde(default = "default_mdn_wait")]
    pub mdn_wait_secs: u64,
    /// HTTP timeout for one attempt.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_cipher() -> Option<ContentEncryption> {
    Some(ContentEncryption::Aes256Cbc)
}
fn default_digest() -> Option<DigestAlgorithm> {
    Some(DigestAlgorithm::Sha256)
}
fn default_compression() -> Compression {
    Compression::BeforeSigning
}
fn default_mic() -> DigestAlgorithm {
    DigestAlgorithm::Sha256
}
fn default_content_type() -> String {
    as2::message::DEFAULT_CONTENT_TYPE.into()
}
/// How long an asynchronous receipt is waited for when a partnership does not say.
pub const DEFAULT_MDN_WAIT_SECS: u64 = 3600;

fn default_mdn_wait() -> u64 {
    DEFAULT_MDN_WAIT_SECS
}
fn default_timeout() -> u64 {
    120
}
fn yes() -> bool {
    true
}

impl Partnership {
    /// A partnership with the defaults: signed (SHA-256), AES-256 encrypted, compressed before
    /// signing, signed sync receipt.
    pub fn new(station: &str, partner: &str, url: &str, certificate_alias: &str) -> Self {
        Partnership {
            station: station.into(),
            partner: partner.into(),
            url: url.into(),
            certificate_alias: certificate_alias.into(),
            encryption: default_cipher(),
            oaep: false,
            signing: default_digest(),
            pss: false,
            compression: default_compression(),
            mdn: MdnMode::Sync,
            signed_mdn: true,
            mic_algorithm: default_mic(),
            receipt_mic: ReceiptMic::Requested,
            compact_algorithm_names: false,
            retry: None,
            content_type: default_content_type(),
            auth: None,
            tls: TlsOptions::default(),
            secret_headers: Vec::new(),
            client_certificate_alias: None,
            require_signed: false,
            require_encrypted: false,
            allow_legacy_algorithms: true,
            mdn_wait_secs: default_mdn_wait(),
            timeout_secs: default_timeout(),
        }
    }
}

impl Partnership {
    /// Checks what can be checked without the keystore and the station list: AS2 IDs that can
    /// name folders, an http(s) URL, a certificate alias, a retry policy that tries.
    pub fn check(&self) -> crate::Result<()> {
        crate::layout::check_as2_id(&self.station)?;
        crate::layout::check_as2_id(&self.partner)?;
        let invalid = |e: SettingError| {
            crate::GatewayError::Config(format!(
                "partnership {} -> {}: {e}",
                self.station, self.partner
            ))
        };
        check_url(&self.url).map_err(invalid)?;
        if let Some(retry) = &self.retry {
            retry.check().map_err(invalid)?;
        }
        if self.certificate_alias.trim().is_empty() {
            return Err(crate::GatewayError::Config(format!(
                "partnership {} -> {}: the certificate alias is empty",
                self.station, self.partner
            )));
        }
        Ok(())
    }
}

/// The algorithm settings of a partnership as they are written (`mftg.toml`, DynamoDB items): the
/// engine's names, `"none"` for none, read through the engine's own `FromStr`. A name that is not
/// accepted is refused with the field's name and the accepted values, so a typo stops the
/// gateway at start-up instead of failing every message later.
mod named {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::*;

    /// Reads a name; JSON `null` (what an unset `Option` was written as) is `None` too.
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Option::<String>::deserialize(d)
    }

    fn is_none(name: &str) -> bool {
        name.trim().eq_ignore_ascii_case("none")
    }

    fn refuse<E: serde::de::Error>(field: &str, name: &str, accepted: String) -> E {
        E::custom(format!(
            "{field}: {name:?} is not accepted here; accepted: {accepted}"
        ))
    }

    fn optional<'de, D, T>(
        d: D,
        field: &str,
        accepted: String,
        ok: impl Fn(&T) -> bool,
    ) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr,
    {
        match read(d)? {
            None => Ok(None),
            Some(n) if is_none(&n) => Ok(None),
            Some(n) => match n.parse::<T>() {
                Ok(v) if ok(&v) => Ok(Some(v)),
                _ => Err(refuse(field, &n, accepted)),
            },
        }
    }

    fn write_optional<S: Serializer, T: Display>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&v.to_string()),
            None => s.serialize_str("none"),
        }
    }

    /// The names a field accepts, `none` first.
    pub(crate) fn with_none(names: impl IntoIterator<Item = &'static str>) -> String {
        as2::algorithm::accepted(std::iter::once("none").chain(names))
    }

    /// The accepted cipher names, for error messages.
    pub(crate) fn ciphers() -> String {
        with_none(ContentEncryption::names())
    }

    /// Digests a message can be signed with (MD5 cannot).
    pub(crate) fn signing_digests() -> String {
        with_none(DigestAlgorithm::signing_names())
    }

    pub(crate) mod cipher {
        use super::*;
        pub(crate) fn serialize<S: Serializer>(
            v: &Option<ContentEncryption>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            write_optional(v, s)
        }
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<ContentEncryption>, D::Error> {
            optional(d, "encryption", ciphers(), |_| true)
        }
    }

    pub(crate) mod signing {
        use super::*;
        pub(crate) fn serialize<S: Serializer>(
            v: &Option<DigestAlgorithm>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            write_optional(v, s)
        }
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DigestAlgorithm>, D::Error> {
            optional(d, "signing", signing_digests(), |d: &DigestAlgorithm| {
                d.can_sign()
            })
        }
    }

    pub(crate) mod compression {
        use super::*;
        pub(crate) fn serialize<S: Serializer>(v: &Compression, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(v.name())
        }
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Compression, D::Error> {
            let accepted = || as2::algorithm::accepted(Compression::ALL.iter().map(|c| c.name()));
            match read(d)? {
                None => Ok(Compression::None),
                Some(n) => n.parse().map_err(|_| refuse("compression", &n, accepted())),
            }
        }
    }

    pub(crate) mod receipt_mic {
        use super::*;
        pub(crate) fn serialize<S: Serializer>(v: &ReceiptMic, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(v.name())
        }
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ReceiptMic, D::Error> {
            match read(d)? {
                None => Ok(ReceiptMic::Requested),
                Some(n) => n.parse().map_err(|_| {
                    refuse(
                        "receipt_mic",
                        &n,
                        as2::algorithm::accepted(ReceiptMic::ALL.iter().map(|m| m.name())),
                    )
                }),
            }
        }
    }

    pub(crate) mod mic {
        use super::*;
        pub(crate) fn serialize<S: Serializer>(
            v: &DigestAlgorithm,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            s.serialize_str(&v.to_string())
        }
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<DigestAlgorithm, D::Error> {
            let accepted = || as2::algorithm::accepted(DigestAlgorithm::names());
            let n = read(d)?.ok_or_else(|| D::Error::custom("mic_algorithm: a name is needed"))?;
            n.parse()
                .map_err(|_| refuse("mic_algorithm", &n, accepted()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_policy() {
        let p = RetryPolicy {
            attempts: 4,
            first_interval_secs: 30,
            max_interval_secs: 100,
        };
        assert_eq!(p.delay_after(1), Some(Duration::from_secs(30)));
        assert_eq!(p.delay_after(2), Some(Duration::from_secs(60)));
        assert_eq!(p.delay_after(3), Some(Duration::from_secs(100)));
        assert_eq!(p.delay_after(4), None);
        let one = RetryPolicy { attempts: 1, ..p };
        assert_eq!(one.delay_after(1), None);
    }

    #[test]
    fn retry_policies_that_cannot_work_are_refused() {
        assert!(RetryPolicy::default().check().is_ok());
        let none = RetryPolicy {
            attempts: 0,
            ..RetryPolicy::default()
        };
        assert!(none
            .check()
            .unwrap_err()
            .to_string()
            .contains("at least 1 attempt"));
        let upside_down = RetryPolicy {
            attempts: 3,
            first_interval_secs: 600,
            max_interval_secs: 60,
        };
        assert!(upside_down
            .check()
            .unwrap_err()
            .to_string()
            .contains("longer than"));
    }

    #[test]
    fn defaults_that_cannot_work_are_refused() {
        for bad_domain in ["", "a b.example", "x@y", "<id>", "a..b", "ex\u{e4}mple.de"] {
            let d = Defaults {
                message_id_domain: bad_domain.into(),
                ..Defaults::default()
            };
            assert!(d.check().is_err(), "{bad_domain:?} accepted");
        }
        for bad_url in [
            "ftp://x.example/",
            "as2.example.com/as2",
            "https:///as2",
            "",
        ] {
            let d = Defaults {
                mdn_url: Some(bad_url.into()),
                ..Defaults::default()
            };
            let e = d.check().unwrap_err().to_string();
            assert!(e.contains("not an http"), "{bad_url:?}: {e}");
        }
    }

    #[test]
    fn stations_and_partnerships_without_their_own_values_take_the_defaults() {
        let s: Station = serde_json::from_str(r#"{"as2_id":"A","key_alias":"a"}"#).unwrap();
        assert_eq!((s.mdn_url, s.message_id_domain), (None, None));
        // Written back, unset values stay unset (so a later default still applies).
        let p = Partnership::new("A", "B", "http://b", "b");
        let json = serde_json::to_value(&p).unwrap();
        assert!(json.get("retry").is_none(), "{json}");
        let d: Defaults =
            serde_json::from_str(r#"{"retry":{"attempts":2,"first_interval_secs":5}}"#).unwrap();
        assert_eq!(d.message_id_domain, DEFAULT_MESSAGE_ID_DOMAIN);
        assert_eq!(d.retry.max_interval_secs, 3600);
        assert!(serde_json::from_str::<Defaults>(r#"{"retries":{}}"#).is_err());
    }

    #[test]
    fn security_levels_are_typed_and_none_is_explicit() {
        let base = r#""station":"A","partner":"B","url":"http://b","certificate_alias":"b""#;
        let read = |extra: &str| serde_json::from_str::<Partnership>(&format!("{{{base}{extra}}}"));
        let plain =
            read(r#","encryption":"none","signing":"NONE","compression":"none","mdn":"none""#)
                .unwrap();
        assert_eq!(
            (
                plain.encryption,
                plain.signing,
                plain.compression,
                plain.mdn
            ),
            (None, None, Compression::None, MdnMode::None)
        );
        // Written back, "none" stays none (an omitted field would read back as the default).
        let json = serde_json::to_value(&plain).unwrap();
        assert_eq!(
            (&json["encryption"], &json["signing"], &json["compression"]),
            (&"none".into(), &"none".into(), &"none".into())
        );
        assert_eq!(serde_json::from_value::<Partnership>(json).unwrap(), plain);
        // What an unset Option used to be written as in DynamoDB items.
        let old = read(r#","encryption":null,"signing":null"#).unwrap();
        assert_eq!((old.encryption, old.signing), (None, None));
        // Other spellings partners' documentation uses.
        let p = read(r#","encryption":"3DES","signing":"SHA1","mic_algorithm":"sha512","compression":"compress-after-signing""#).unwrap();
        assert_eq!(p.encryption, Some(ContentEncryption::TripleDesCbc));
        assert_eq!(p.signing, Some(DigestAlgorithm::Sha1));
        assert_eq!(p.mic_algorithm, DigestAlgorithm::Sha512);
        assert_eq!(p.compression, Compression::AfterSigning);

        for (bad, field, accepted) in [
            (
                r#","encryption":"aes512""#,
                "encryption",
                "none, 3des-cbc, aes128-cbc",
            ),
            (r#","signing":"md5""#, "signing", "none, sha-1, sha-224"),
            (
                r#","compression":"yes""#,
                "compression",
                "none, before-signing, after-signing",
            ),
            (r#","mic_algorithm":"sha3""#, "mic_algorithm", "md5, sha-1"),
            (r#","mdn":"later""#, "later", "sync"),
            (r#","singing":"sha-256""#, "singing", "signing"),
        ] {
            let e = read(bad).unwrap_err().to_string();
            assert!(e.contains(field) && e.contains(accepted), "{bad}: {e}");
        }
    }

    #[test]
    fn partnership_defaults_from_minimal_json() {
        let p: Partnership = serde_json::from_str(
            r#"{"station":"A","partner":"B","url":"http://b","certificate_alias":"b"}"#,
        )
        .unwrap();
        assert_eq!(p, Partnership::new("A", "B", "http://b", "b"));
        let j: crate::model::Job = serde_json::from_str(r#"{"kind":"send","id":"x"}"#).unwrap();
        assert_eq!(j, crate::model::Job::Send { id: "x".into() });
    }
}
