//! Webhooks: where events are POSTed, signed with a shared secret.

use serde::{Deserialize, Serialize};

use super::{check_url, RetryPolicy};

/// The kinds of event a webhook may ask for.
pub const EVENT_KINDS: [&str; 9] = [
    "delivered",
    "delivered-with-warning",
    "sent",
    "failed",
    "received",
    "rejected",
    "duplicate",
    "not-sent",
    "certificate-expiring",
];

/// One webhook (`[[webhook]]` in mftg.toml).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Its name, for the log and the queue.
    pub name: String,
    /// Where events are POSTed (JSON).
    pub url: String,
    /// The name of the secret (an environment variable; a secret on AWS) the HMAC-SHA256
    /// signature is made with.
    pub secret: String,
    /// The kinds of event it is sent ([`EVENT_KINDS`]); every kind when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// How long one POST may take.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// How often, and how far apart, a POST that failed is tried again.
    #[serde(default = "default_retry")]
    pub retry: RetryPolicy,
}

fn default_timeout() -> u64 {
    10
}

fn default_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 8,
        first_interval_secs: 5,
        max_interval_secs: 600,
    }
}

impl Webhook {
    /// Whether it is sent events of `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == kind)
    }

    /// Checks its name, URL, events and retry policy.
    pub fn check(&self) -> crate::Result<()> {
        let bad =
            |why: String| crate::GatewayError::Config(format!("webhook {:?}: {why}", self.name));
        let name_ok = !self.name.is_empty()
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !name_ok {
            return Err(bad("a name is letters, digits, '-', '_' and '.'".into()));
        }
        check_url(&self.url).map_err(|e| bad(e.to_string()))?;
        if self.secret.trim().is_empty() {
            return Err(bad("secret must name where the signing secret is".into()));
        }
        if let Some(e) = self
            .events
            .iter()
            .find(|e| !EVENT_KINDS.contains(&e.as_str()))
        {
            return Err(bad(format!(
                "unknown event {e:?} (one of {})",
                EVENT_KINDS.join(", ")
            )));
        }
        if self.timeout_secs == 0 {
            return Err(bad("timeout_secs must be at least 1".into()));
        }
        self.retry.check().map_err(|e| bad(e.to_string()))
    }
}

/// Checks each of `webhooks`, and that no two have one name.
pub fn check_webhooks(webhooks: &[Webhook]) -> crate::Result<()> {
    for (n, w) in webhooks.iter().enumerate() {
        w.check()?;
        if webhooks[..n].iter().any(|o| o.name == w.name) {
            return Err(crate::GatewayError::Config(format!(
                "two webhooks are called {:?}",
                w.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> Webhook {
        Webhook {
            name: "ops".into(),
            url: "https://hooks.example/mftg".into(),
            secret: "HOOK_SECRET".into(),
            events: vec!["failed".into()],
            timeout_secs: 10,
            retry: default_retry(),
        }
    }

    #[test]
    fn webhooks_are_checked_and_pick_their_events() {
        assert!(hook().check().is_ok());
        assert!(hook().wants("failed") && !hook().wants("delivered"));
        assert!(Webhook {
            events: vec![],
            ..hook()
        }
        .wants("delivered"));
        for bad in [
            Webhook {
                name: "a b".into(),
                ..hook()
            },
            Webhook {
                url: "ftp://x".into(),
                ..hook()
            },
            Webhook {
                secret: " ".into(),
                ..hook()
            },
            Webhook {
                events: vec!["exploded".into()],
                ..hook()
            },
            Webhook {
                timeout_secs: 0,
                ..hook()
            },
        ] {
            let e = bad.check().unwrap_err().to_string();
            assert!(e.contains("webhook"), "{e}");
        }
        let e = Webhook {
            events: vec!["exploded".into()],
            ..hook()
        }
        .check()
        .unwrap_err();
        assert!(
            e.to_string().contains("certificate-expiring"),
            "names what is taken: {e}"
        );
    }
}
