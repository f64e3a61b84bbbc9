//! The keystores of the layout (`AS2/keystore/{identity,trust,https}.jks`, JKS or PKCS#12),
//! read through the object store and kept parsed until the object changes.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use as2::keys::{Identity, Keystore as As2Keystore};
use openssl::x509::X509;

use crate::error::{GatewayError, Result};
use crate::layout::keystore as paths;
use crate::ports::{Keystore, ObjectStore, Secrets};

/// Where each keystore's password comes from: the names of secrets, not the passwords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystorePasswords {
    /// Secret holding the password of `identity.jks`.
    pub identity: String,
    /// Secret holding the password of `trust.jks`.
    pub trust: String,
    /// Secret holding the password of `https.jks`.
    pub https: String,
}

/// A keystore as parsed, the version of its object that was read, and when that version was
/// last found to be the object's current one.
#[derive(Debug)]
struct Loaded {
    etag: String,
    checked: Instant,
    keystore: As2Keystore,
}

type Cached = Mutex<Option<Loaded>>;

/// How long a keystore found current is used without asking the store again (a HEAD on S3, a
/// file's metadata here): a burst of messages asks once, not once or twice per message. A
/// keystore replaced by another process (`mftg keys` beside `mftg serve`, an upload to the
/// bucket) is used from at most this long after; one saved through the same [`StoreKeystore`]
/// at once.
pub const RECHECK: Duration = Duration::from_secs(1);

/// [`Keystore`] over the bucket's keystore objects.
#[derive(Debug)]
pub struct StoreKeystore<S, X> {
    store: S,
    secrets: X,
    passwords: KeystorePasswords,
    recheck: Duration,
    identity: Cached,
    trust: Cached,
    https: Cached,
}

impl<S: ObjectStore, X: Secrets> StoreKeystore<S, X> {
    /// Keystores read from `store`, with passwords from `secrets`.
    pub fn new(store: S, secrets: X, passwords: KeystorePasswords) -> Self {
        StoreKeystore {
            store,
            secrets,
            passwords,
            recheck: RECHECK,
            identity: Mutex::new(None),
            trust: Mutex::new(None),
            https: Mutex::new(None),
        }
    }

    /// Checks whether a keystore replaced elsewhere is used at most `recheck` after (at every
    /// use with [`Duration::ZERO`]) instead of [`RECHECK`].
    pub fn recheck_every(mut self, recheck: Duration) -> Self {
        self.recheck = recheck;
        self
    }

    async fn with<T>(
        &self,
        key: &str,
        secret: &str,
        cache: &Cached,
        f: impl FnOnce(&As2Keystore) -> as2::Result<T>,
    ) -> Result<T> {
        let recent = lock(cache)?
            .as_ref()
            .is_some_and(|l| l.checked.elapsed() < self.recheck);
        if !recent {
            self.refresh(key, secret, cache).await?;
        }
        let guard = lock(cache)?;
        let loaded = guard
            .as_ref()
            .ok_or_else(|| GatewayError::port("keystore", "not loaded"))?;
        f(&loaded.keystore).map_err(|e| GatewayError::Config(format!("{key}: {e}")))
    }

    /// Asks the store which version of the keystore at `key` is current, and reads and parses
    /// it again when it is not the one kept.
    async fn refresh(&self, key: &str, secret: &str, cache: &Cached) -> Result<()> {
        let missing = || GatewayError::NotFound(format!("keystore {key}"));
        let asked = Instant::now();
        let meta = self.store.head(key).await?.ok_or_else(missing)?;
        if let Some(kept) = lock(cache)?.as_mut().filter(|l| l.etag == meta.etag) {
            kept.checked = asked;
            return Ok(());
        }
        let object = self.store.get(key).await?.ok_or_else(missing)?;
        let password = self.secrets.secret(secret).await?;
        let keystore = As2Keystore::load(&object.data, &password, None)
            .map_err(|e| GatewayError::Config(format!("{key}: {e}")))?;
        *lock(cache)? = Some(Loaded {
            etag: object.meta.etag,
            checked: asked,
            keystore,
        });
        Ok(())
    }
}

/// The parsed keystore kept in `cache`, locked.
fn lock(cache: &Cached) -> Result<std::sync::MutexGuard<'_, Option<Loaded>>> {
    cache
        .lock()
        .map_err(|_| GatewayError::port("keystore", "cache poisoned"))
}

impl<S: ObjectStore, X: Secrets> StoreKeystore<S, X> {
    /// The secret holding the password of the keystore at `key`, and what of it is kept parsed.
    fn parts(&self, key: &str) -> Result<(&str, &Cached)> {
        match key {
            paths::IDENTITY => Ok((&self.passwords.identity, &self.identity)),
            paths::TRUST => Ok((&self.passwords.trust, &self.trust)),
            paths::HTTPS => Ok((&self.passwords.https, &self.https)),
            other => Err(GatewayError::Config(format!("{other} is not a keystore"))),
        }
    }

    /// The keystore at `key` as it stands, to be changed: empty when there is none yet.
    pub async fn load(&self, key: &str) -> Result<As2Keystore> {
        let password = self.secrets.secret(self.parts(key)?.0).await?;
        match self.store.get(key).await? {
            Some(o) => As2Keystore::load(&o.data, &password, None)
                .map_err(|e| GatewayError::Config(format!("{key}: {e}"))),
            None => Ok(As2Keystore::new()),
        }
    }

    /// Writes the keystore at `key` (JKS under its password, made at `now`); the next read
    /// through this one sees it at once, whatever [`RECHECK`] says.
    pub async fn save(&self, key: &str, ks: &As2Keystore, now: as2::UnixTime) -> Result<()> {
        let (secret, cache) = self.parts(key)?;
        let password = self.secrets.secret(secret).await?;
        let bytes = ks
            .to_jks(&password, now)
            .map_err(|e| GatewayError::Config(format!("{key}: {e}")))?;
        let written = self
            .store
            .put(key, bytes, std::collections::BTreeMap::new())
            .await;
        // Forgotten even if the write failed: it may have been made all the same.
        *lock(cache)? = None;
        written.map(drop)
    }
}

impl<S: ObjectStore, X: Secrets> StoreKeystore<S, X> {
    /// The key and certificate an HTTPS listener serves: the key entry `alias` of `https.jks`,
    /// or its only key entry. A keystore without one is a configuration error that says so.
    pub async fn https_identity(&self, alias: Option<&str>) -> Result<Identity> {
        self.with(paths::HTTPS, &self.passwords.https, &self.https, |k| {
            if let Some(a) = alias {
                return k.identity(a);
            }
            let keys: Vec<_> = k.entries().iter().filter_map(|e| e.identity()).collect();
            match keys.as_slice() {
                [one] => Ok(one.clone()),
                [] => Err(as2::Error::Key(
                    "it holds no private key: the HTTPS listener needs a key and its certificate \
                     (mftg keys generate --store https, or mftg keys import --store https)"
                        .into(),
                )),
                _ => Err(as2::Error::Key(
                    "it holds several private keys: name the one to serve ([https] alias)".into(),
                )),
            }
        })
        .await
    }
}

impl<S: ObjectStore, X: Secrets> Keystore for StoreKeystore<S, X> {
    async fn identity(&self, alias: &str) -> Result<Identity> {
        self.with(
            paths::IDENTITY,
            &self.passwords.identity,
            &self.identity,
            |k| k.identity(alias),
        )
        .await
    }

    async fn partner_certificate(&self, alias: &str) -> Result<X509> {
        self.with(paths::TRUST, &self.passwords.trust, &self.trust, |k| {
            k.certificate(alias)
        })
        .await
    }

    async fn tls_certificate(&self, alias: &str) -> Result<X509> {
        self.with(paths::HTTPS, &self.passwords.https, &self.https, |k| {
            k.certificate(alias)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code

    use super::*;
    use crate::memory::{ManualClock, MemorySecrets, MemoryStore};

    #[tokio::test(flavor = "current_thread")]
    async fn a_keystore_is_loaded_changed_saved_and_read_back_changed() {
        let store = MemoryStore::new(ManualClock::at(crate::Millis(1_795_858_200_000)));
        let secrets = MemorySecrets::default();
        for name in ["id-pw", "trust-pw"] {
            secrets
                .values
                .lock()
                .unwrap()
                .insert(name.into(), format!("{name}-value"));
        }
        let ks = StoreKeystore::new(
            store.clone(),
            secrets,
            KeystorePasswords {
                identity: "id-pw".into(),
                trust: "trust-pw".into(),
                https: "no-such-secret".into(),
            },
        );
        // None yet: empty, and a read through the port says it is missing.
        assert!(ks.load(paths::TRUST).await.unwrap().entries().is_empty());
        let id =
            Identity::generate_self_signed("P", 2048, as2::UnixTime(1_795_858_200), 30).unwrap();
        let mut trust = ks.load(paths::TRUST).await.unwrap();
        trust.set_certificate("p", &id.certificate);
        ks.save(paths::TRUST, &trust, as2::UnixTime(1_795_858_200))
            .await
            .unwrap();
        assert_eq!(
            ks.partner_certificate("p").await.unwrap().to_der().unwrap(),
            id.certificate.to_der().unwrap()
        );
        // Saved under its own password: trust's, not identity's.
        let data = store.bytes(paths::TRUST).unwrap();
        assert!(As2Keystore::load(&data, "trust-pw-value", None).is_ok());
        assert!(As2Keystore::load(&data, "id-pw-value", None).is_err());
        // A keystore whose secret is missing, and a key that is no keystore, are refused.
        assert!(ks.load(paths::HTTPS).await.is_err());
        assert!(ks.load("AS2/files/x").await.is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_keystore_replaced_elsewhere_is_used_once_it_is_checked_again() {
        let store = MemoryStore::new(ManualClock::at(crate::Millis(1_795_858_200_000)));
        let secrets = MemorySecrets::default();
        secrets
            .values
            .lock()
            .unwrap()
            .insert("pw".into(), "pw-value".into());
        let over_store = || {
            StoreKeystore::new(
                store.clone(),
                secrets.clone(),
                KeystorePasswords {
                    identity: "pw".into(),
                    trust: "pw".into(),
                    https: "pw".into(),
                },
            )
        };
        // Three processes' views of one bucket: one asks at every use, one once an hour.
        let (other, at_once) = (over_store(), over_store().recheck_every(Duration::ZERO));
        let hourly = over_store().recheck_every(Duration::from_secs(3600));
        let now = as2::UnixTime(1_795_858_200);
        type Ks = StoreKeystore<MemoryStore, MemorySecrets>;
        async fn trusting(ks: &Ks, name: &str, now: as2::UnixTime) -> Vec<u8> {
            let cert = Identity::generate_self_signed(name, 2048, now, 30)
                .unwrap()
                .certificate;
            let mut trust = As2Keystore::new();
            trust.set_certificate("p", &cert);
            ks.save(paths::TRUST, &trust, now).await.unwrap();
            cert.to_der().unwrap()
        }
        async fn trusted(ks: &Ks) -> Vec<u8> {
            let cert = ks.partner_certificate("p").await.unwrap();
            cert.to_der().unwrap()
        }
        let first = trusting(&other, "FIRST", now).await;
        assert_eq!(trusted(&hourly).await, first);
        assert_eq!(trusted(&at_once).await, first);

        let second = trusting(&other, "SECOND", now).await;
        assert_eq!(trusted(&at_once).await, second, "asked again: the new one");
        assert_eq!(
            trusted(&hourly).await,
            first,
            "not asked again within the hour"
        );
        // Saved through the hourly one: its next read sees it at once.
        let third = trusting(&hourly, "THIRD", now).await;
        assert_eq!(trusted(&hourly).await, third);
        assert_eq!(trusted(&at_once).await, third);
        // Removed elsewhere: the one that asks at every use says so.
        store.delete(paths::TRUST, None).await.unwrap();
        assert!(matches!(
            at_once.partner_certificate("p").await,
            Err(GatewayError::NotFound(_))
        ));
        assert_eq!(trusted(&hourly).await, third);
    }
}
