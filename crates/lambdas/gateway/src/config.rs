//! The functions' settings, from their environment (set by the SAM template or the CDK app).
//!
//! | Variable | Meaning | Default |
//! |---|---|---|
//! | `MFTG_BUCKET` | the account bucket | required |
//! | `MFTG_TABLE_PREFIX` | tables `<prefix>-claims`, `-messages`, `-partners` | `mftg` |
//! | `MFTG_CLAIMS_TABLE`, `MFTG_MESSAGES_TABLE`, `MFTG_PARTNERS_TABLE` | a table's own name | from the prefix |
//! | `MFTG_QUEUE_URL` | the send queue | required |
//! | `MFTG_DLQ_URL` | its dead-letter queue (failed jobs are parked there) | none |
//! | `MFTG_IDENTITY_PASSWORD_SECRET` | secret with the password of `AS2/keystore/identity.jks` (`ssm:/name` for an SSM SecureString) | required |
//! | `MFTG_TRUST_PASSWORD_SECRET` | the same for `trust.jks` | the identity's |
//! | `MFTG_HTTPS_PASSWORD_SECRET` | the same for `https.jks` | the trust store's |
//! | `MFTG_DUPLICATE_WINDOW_SECONDS` | same-name uploads within this are duplicates | 21600 (6 h) |
//! | `MFTG_MAX_BODY_BYTES` | largest AS2 request `as2-receiver` takes (413 above) | 4500000 |
//! | `MFTG_MAX_DECOMPRESSED_BYTES` | largest payload a compressed message may inflate to (`decompression-failed` past it) | 4294967296 (4 GiB) |
//! | `MFTG_AS2_URL` | our public AS2 URL: where partners POST asynchronous receipts, for stations that name none | none |
//! | `MFTG_MESSAGE_ID_DOMAIN` | the part of Message-IDs after the `@`, for stations that name none | `mftg.local` |
//! | `MFTG_RETRY_ATTEMPTS` | attempts per send in all, for partnerships without their own retry policy | 5 |
//! | `MFTG_RETRY_INTERVAL_SECONDS` | wait before the second attempt (each further wait doubles) | 30 |
//! | `MFTG_RETRY_MAX_INTERVAL_SECONDS` | longest wait between two attempts | 3600 |
//! | `MFTG_EVENT_BUS` | the EventBridge bus events are put on (`none` for none) | `default` |
//! | `MFTG_WEBHOOKS` | webhooks as a JSON array of `{"name", "url", "secret", "events", "timeout_secs", "retry"}` (as `[[webhook]]` in mftg.toml); each `secret` names a Secrets Manager secret under `mftg/webhook/` | none |
//!
//! Lambda refuses a synchronous request over 6 MB (6,291,456 bytes) before the function runs, and a
//! binary body arrives base64-encoded (4 bytes for every 3), so about 4.5 MB of AS2 message is the
//! most that can reach the receiver through a Function URL or API Gateway.

use lambda_support::EnvError;
use std::time::Duration;

use gateway::keystore::KeystorePasswords;
use gateway::model::{self, Defaults, RetryPolicy};
use gateway::Settings;
use gateway_aws::dynamo::Tables;
use gateway_aws::ports::AwsSettings;

/// The names webhook secrets have on AWS (the templates let the functions read these only).
pub const WEBHOOK_SECRET_PREFIX: &str = "mftg/webhook/";

/// Default for `MFTG_MAX_BODY_BYTES`: the 6 MB payload limit less base64's growth and headers.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4_500_000;

/// Everything a function needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the data is.
    pub aws: AwsSettings,
    /// The gateway's own settings.
    pub gateway: Settings,
    /// Largest request body the receiver accepts.
    pub max_body_bytes: usize,
}

impl Config {
    /// From the process environment.
    pub fn from_env() -> Result<Config, EnvError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From `lookup` (a variable's value by name); empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, EnvError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name: &str| get(name).ok_or_else(|| EnvError::Missing(name.to_string()));
        let number = |name: &str, default: u64| -> Result<u64, EnvError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v.trim().parse::<u64>().map_err(|_| {
                    EnvError::invalid(name, format!("must be a whole number, not {v:?}"))
                }),
            }
        };
        let prefix = get("MFTG_TABLE_PREFIX")
            .unwrap_or_else(|| gateway_aws::dynamo::DEFAULT_TABLE_PREFIX.into());
        let mut tables = Tables::with_prefix(&prefix);
        if let Some(t) = get("MFTG_CLAIMS_TABLE") {
            tables.claims = t;
        }
        if let Some(t) = get("MFTG_MESSAGES_TABLE") {
            tables.messages = t;
        }
        if let Some(t) = get("MFTG_PARTNERS_TABLE") {
            tables.partners = t;
        }
        let identity = required("MFTG_IDENTITY_PASSWORD_SECRET")?;
        let trust = get("MFTG_TRUST_PASSWORD_SECRET").unwrap_or_else(|| identity.clone());
        let https = get("MFTG_HTTPS_PASSWORD_SECRET").unwrap_or_else(|| trust.clone());
        let window = number(
            "MFTG_DUPLICATE_WINDOW_SECONDS",
            gateway::DEFAULT_DUPLICATE_WINDOW.as_secs(),
        )?;
        if window == 0 {
            return Err(EnvError::invalid(
                "MFTG_DUPLICATE_WINDOW_SECONDS",
                "must be at least 1",
            ));
        }
        let max_body = number("MFTG_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES as u64)?;
        let max_decompressed = number(
            "MFTG_MAX_DECOMPRESSED_BYTES",
            gateway::DEFAULT_MAX_DECOMPRESSED_BYTES,
        )?;
        if max_decompressed == 0 {
            return Err(EnvError::invalid(
                "MFTG_MAX_DECOMPRESSED_BYTES",
                "must be at least 1",
            ));
        }
        let stream_above = number("MFTG_STREAM_ABOVE_BYTES", gateway::DEFAULT_STREAM_ABOVE)?;
        let failpoints =
            gateway::failpoint::Failpoints::from_var(get(gateway::failpoint::Failpoints::VAR))
                .map_err(|e| EnvError::Refused {
                    name: gateway::failpoint::Failpoints::VAR.to_string(),
                    problem: e.to_string(),
                })?;
        let defaults = {
            fn named(name: &'static str) -> impl Fn(model::SettingError) -> EnvError {
                move |e| EnvError::Refused {
                    name: name.to_string(),
                    problem: e.to_string(),
                }
            }
            let mdn_url = get("MFTG_AS2_URL").map(|u| u.trim().to_string());
            if let Some(url) = &mdn_url {
                model::check_url(url).map_err(named("MFTG_AS2_URL"))?;
            }
            let message_id_domain = get("MFTG_MESSAGE_ID_DOMAIN")
                .map_or(model::DEFAULT_MESSAGE_ID_DOMAIN.into(), |d| {
                    d.trim().to_string()
                });
            model::check_domain(&message_id_domain).map_err(named("MFTG_MESSAGE_ID_DOMAIN"))?;
            let fallback = RetryPolicy::default();
            let attempts = number("MFTG_RETRY_ATTEMPTS", fallback.attempts.into())?;
            let retry = RetryPolicy {
                attempts: u32::try_from(attempts).map_err(|_| {
                    EnvError::invalid("MFTG_RETRY_ATTEMPTS", format!("is too large ({attempts})"))
                })?,
                first_interval_secs: number(
                    "MFTG_RETRY_INTERVAL_SECONDS",
                    fallback.first_interval_secs,
                )?,
                max_interval_secs: number(
                    "MFTG_RETRY_MAX_INTERVAL_SECONDS",
                    fallback.max_interval_secs,
                )?,
            };
            retry.check().map_err(named("MFTG_RETRY_*"))?;
            Defaults {
                message_id_domain,
                mdn_url,
                retry,
            }
        };
        let event_bus = match get("MFTG_EVENT_BUS").map(|b| b.trim().to_string()) {
            None => Some(gateway_aws::eventbridge::DEFAULT_BUS.to_string()),
            Some(b) if b.eq_ignore_ascii_case("none") => None,
            Some(b) => Some(b),
        };
        let webhooks = match get("MFTG_WEBHOOKS") {
            None => Vec::new(),
            Some(json) => webhooks(&json)?,
        };
        Ok(Config {
            aws: AwsSettings {
                bucket: required("MFTG_BUCKET")?,
                tables,
                queue_url: required("MFTG_QUEUE_URL")?,
                dead_letter_url: get("MFTG_DLQ_URL"),
                keystore_passwords: KeystorePasswords {
                    identity,
                    trust,
                    https,
                },
                event_bus,
            },
            gateway: Settings {
                duplicate_window: Duration::from_secs(window),
                max_decompressed_size: max_decompressed,
                stream_above,
                failpoints,
                defaults,
                webhooks,
                ..Settings::default()
            },
            max_body_bytes: usize::try_from(max_body).unwrap_or(usize::MAX),
        })
    }
}

/// The webhooks `MFTG_WEBHOOKS` lists, each checked and its secret under
/// [`WEBHOOK_SECRET_PREFIX`].
fn webhooks(json: &str) -> Result<Vec<model::Webhook>, EnvError> {
    const NAME: &str = "MFTG_WEBHOOKS";
    let refused = |problem: String| EnvError::Refused {
        name: NAME.to_string(),
        problem,
    };
    let list: Vec<model::Webhook> = serde_json::from_str(json)
        .map_err(|e| refused(format!("is not a JSON array of webhooks: {e}")))?;
    model::check_webhooks(&list).map_err(|e| refused(e.to_string()))?;
    for w in &list {
        if !w.secret.starts_with(WEBHOOK_SECRET_PREFIX) {
            return Err(refused(format!(
                "webhook {:?}: secret must be a Secrets Manager secret named {WEBHOOK_SECRET_PREFIX}<name>, not {:?}",
                w.name, w.secret
            )));
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, EnvError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|n| map.get(n).cloned())
    }

    const BASE: [(&str, &str); 3] = [
        ("MFTG_BUCKET", "mftg-123456789012"),
        (
            "MFTG_QUEUE_URL",
            "https://sqs.eu-west-1.amazonaws.com/123456789012/mftg-send",
        ),
        ("MFTG_IDENTITY_PASSWORD_SECRET", "mftg/keystore"),
    ];

    #[test]
    fn defaults() {
        let c = config(&BASE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.aws.tables, Tables::with_prefix("mftg"));
        assert_eq!(c.aws.keystore_passwords.trust, "mftg/keystore");
        assert_eq!(c.aws.keystore_passwords.https, "mftg/keystore");
        assert_eq!(c.aws.dead_letter_url, None);
        assert_eq!(c.gateway.duplicate_window, Duration::from_secs(21600));
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(c.gateway.max_decompressed_size, 4 << 30);
        assert_eq!(c.gateway.defaults, Defaults::default());
    }

    #[test]
    fn overrides() {
        let mut vars = BASE.to_vec();
        vars.extend([
            ("MFTG_TABLE_PREFIX", "acme"),
            ("MFTG_MESSAGES_TABLE", "acme-log"),
            ("MFTG_TRUST_PASSWORD_SECRET", "ssm:/acme/trust"),
            ("MFTG_DUPLICATE_WINDOW_SECONDS", "60"),
            ("MFTG_MAX_BODY_BYTES", "1000"),
            ("MFTG_MAX_DECOMPRESSED_BYTES", "52428800"),
            ("MFTG_DLQ_URL", "https://sqs/dlq"),
            ("MFTG_AS2_URL", "https://as2.acme.example/"),
            ("MFTG_MESSAGE_ID_DOMAIN", "acme.example"),
            ("MFTG_RETRY_ATTEMPTS", "8"),
            ("MFTG_RETRY_INTERVAL_SECONDS", "60"),
            ("MFTG_RETRY_MAX_INTERVAL_SECONDS", "7200"),
        ]);
        let c = config(&vars).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.aws.tables.claims, "acme-claims");
        assert_eq!(c.aws.tables.messages, "acme-log");
        assert_eq!(c.aws.keystore_passwords.trust, "ssm:/acme/trust");
        assert_eq!(c.aws.keystore_passwords.https, "ssm:/acme/trust");
        assert_eq!(c.gateway.duplicate_window, Duration::from_secs(60));
        assert_eq!(c.max_body_bytes, 1000);
        assert_eq!(c.gateway.max_decompressed_size, 50 << 20);
        assert_eq!(c.aws.dead_letter_url.as_deref(), Some("https://sqs/dlq"));
        assert_eq!(
            c.gateway.defaults,
            Defaults {
                message_id_domain: "acme.example".into(),
                mdn_url: Some("https://as2.acme.example/".into()),
                retry: RetryPolicy {
                    attempts: 8,
                    first_interval_secs: 60,
                    max_interval_secs: 7200,
                },
            }
        );
    }

    #[test]
    fn events_and_webhooks() {
        let c = config(&BASE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.aws.event_bus.as_deref(), Some("default"));
        assert!(c.gateway.webhooks.is_empty());
        let hook = r#"[{"name": "ops", "url": "https://hooks.acme.example/mftg",
            "secret": "mftg/webhook/ops", "events": ["failed", "certificate-expiring"]}]"#;
        let mut vars = BASE.to_vec();
        vars.extend([("MFTG_EVENT_BUS", "none"), ("MFTG_WEBHOOKS", hook)]);
        let c = config(&vars).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.aws.event_bus, None);
        assert_eq!(c.gateway.webhooks.len(), 1);
        assert!(c.gateway.webhooks[0].wants("failed") && !c.gateway.webhooks[0].wants("sent"));
        assert_eq!(c.gateway.webhooks[0].timeout_secs, 10);
        for (bad, why) in [
            ("{}", "is not a JSON array"),
            (r#"[{"name": "ops"}]"#, "missing field"),
            (
                r#"[{"name": "ops", "url": "ftp://x", "secret": "mftg/webhook/ops"}]"#,
                "webhook \"ops\"",
            ),
            (
                r#"[{"name": "ops", "url": "https://x.example/", "secret": "prod/db"}]"#,
                "named mftg/webhook/<name>",
            ),
            (
                r#"[{"name": "ops", "url": "https://x.example/", "secret": "mftg/webhook/a"},
                    {"name": "ops", "url": "https://y.example/", "secret": "mftg/webhook/b"}]"#,
                "two webhooks are called \"ops\"",
            ),
            (
                r#"[{"name": "ops", "url": "https://x.example/", "secret": "mftg/webhook/a", "events": ["lost"]}]"#,
                "unknown event \"lost\"",
            ),
        ] {
            let mut vars = BASE.to_vec();
            vars.push(("MFTG_WEBHOOKS", bad));
            let e = config(&vars).expect_err(bad).to_string();
            assert!(
                e.starts_with("MFTG_WEBHOOKS: ") && e.contains(why),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn refusals_name_the_variable() {
        for missing in [
            "MFTG_BUCKET",
            "MFTG_QUEUE_URL",
            "MFTG_IDENTITY_PASSWORD_SECRET",
        ] {
            let vars: Vec<_> = BASE
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            assert_eq!(
                config(&vars).err().map(|e| e.to_string()),
                Some(format!("{missing} is not set"))
            );
        }
        let mut vars = BASE.to_vec();
        vars.push(("MFTG_DUPLICATE_WINDOW_SECONDS", "6h"));
        assert!(config(&vars)
            .err()
            .is_some_and(|e| e.to_string().contains("MFTG_DUPLICATE_WINDOW_SECONDS")));
        let mut vars = BASE.to_vec();
        vars.push(("MFTG_DUPLICATE_WINDOW_SECONDS", "0"));
        assert!(config(&vars).is_err());
        for (name, bad) in [
            ("MFTG_AS2_URL", "as2.acme.example/as2"),
            ("MFTG_MESSAGE_ID_DOMAIN", "acme example"),
            ("MFTG_MESSAGE_ID_DOMAIN", "<acme.example>"),
            ("MFTG_RETRY_ATTEMPTS", "0"),
            ("MFTG_RETRY_ATTEMPTS", "99999999999"),
            ("MFTG_RETRY_ATTEMPTS", "-1"),
            ("MFTG_RETRY_INTERVAL_SECONDS", "7201"),
            ("MFTG_RETRY_MAX_INTERVAL_SECONDS", "10"),
            ("MFTG_MAX_DECOMPRESSED_BYTES", "0"),
            ("MFTG_MAX_DECOMPRESSED_BYTES", "1 GiB"),
        ] {
            let mut vars = BASE.to_vec();
            vars.push((name, bad));
            let e = config(&vars).expect_err(bad).to_string();
            // A value that is not a number names its variable; a policy that cannot work
            // names the policy.
            let policy = name.starts_with("MFTG_RETRY_") && e.starts_with("MFTG_RETRY_*: ");
            assert!(e.starts_with(name) || policy, "{name}={bad}: {e}");
        }
        let mut vars = BASE.to_vec();
        vars.push(("MFTG_BUCKET", "  "));
        let vars: Vec<_> = vars.into_iter().skip(1).collect();
        assert_eq!(
            config(&vars).err().map(|e| e.to_string()),
            Some("MFTG_BUCKET is not set".into())
        );
    }
}
