//! Certificates and private keys from PEM, DER, PKCS#12 and JKS, as bytes (the caller reads files).

use std::fmt;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::{hash, MessageDigest};
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, SubjectKeyIdentifier};
use openssl::x509::{X509NameBuilder, X509Ref, X509};

use crate::asn1;
use crate::error::{Error, Result};
use crate::time::UnixTime;

/// A private key with its certificate (and any chain): a station's signing or decryption identity.
#[derive(Clone)]
pub struct Identity {
    /// The certificate partners know us by.
    pub certificate: X509,
    /// The private key matching `certificate`.
    pub private_key: PKey<Private>,
    /// Intermediate certificates sent along with signatures.
    pub chain: Vec<X509>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("certificate", &subject_name(&self.certificate))
            .field("private_key", &"<redacted>")
            .field("chain", &self.chain.len())
            .finish()
    }
}

impl Identity {
    /// Pairs a key with its certificate, checking they belong together.
    pub fn new(certificate: X509, private_key: PKey<Private>, chain: Vec<X509>) -> Result<Self> {
        let public = certificate
            .public_key()
            .map_err(|e| Error::Key(format!("certificate has no usable public key: {e}")))?;
        if !public.public_eq(&private_key) {
            return Err(Error::Key(format!(
                "the private key does not match the certificate {}",
                subject_name(&certificate)
            )));
        }
        Ok(Identity {
            certificate,
            private_key,
            chain,
        })
    }

    /// Loads a PEM or DER certificate file and a PEM or DER private key file (they may be the
    /// same PEM file). The certificate that matches the key is ours; any others are its chain.
    pub fn from_pem_or_der(cert: &[u8], key: &[u8], passphrase: Option<&str>) -> Result<Self> {
        let key = load_private_key(key, passphrase)?;
        let mut certs = load_certificates(cert)?;
        let ours = certs
            .iter()
            .position(|c| c.public_key().is_ok_and(|p| p.public_eq(&key)))
            .unwrap_or(0);
        let first = certs.remove(ours);
        Identity::new(first, key, certs)
    }

    /// A new RSA key and self-signed certificate: what `mftg keys generate` makes for a station.
    pub fn generate_self_signed(
        common_name: &str,
        bits: u32,
        not_before: UnixTime,
        days: u32,
    ) -> Result<Self> {
        Self::generate_self_signed_for(common_name, &[], bits, not_before, days)
    }

    /// [`Identity::generate_self_signed`] with subject alternative names (DNS names, or IP
    /// addresses), which TLS clients check the host they connect to against: for an HTTPS
    /// listener's certificate.
    pub fn generate_self_signed_for(
        common_name: &str,
        alt_names: &[&str],
        bits: u32,
        not_before: UnixTime,
        days: u32,
    ) -> Result<Self> {
        let rsa = Rsa::generate(bits)?;
        let key = PKey::from_rsa(rsa)?;
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COMMONNAME, common_name)
            .map_err(|e| Error::Key(format!("invalid common name: {e}")))?;
        let name = name.build();
        let mut b = X509::builder()?;
        b.set_version(2)?;
        let mut serial = BigNum::new()?;
        serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
        b.set_serial_number(Asn1Integer::from_bn(&serial)?.as_ref())?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(&name)?;
        b.set_pubkey(&key)?;
        b.set_not_before(Asn1Time::from_unix(not_before.0 - 300)?.as_ref())?;
        b.set_not_after(Asn1Time::from_unix(not_before.0 + i64::from(days) * 86_400)?.as_ref())?;
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
        b.append_extension(ski)?;
        if !alt_names.is_empty() {
            let mut san = openssl::x509::extension::SubjectAlternativeName::new();
            for n in alt_names {
                if n.parse::<std::net::IpAddr>().is_ok() {
                    san.ip(n);
                } else {
                    san.dns(n);
                }
            }
            let san = san
                .build(&b.x509v3_context(None, None))
                .map_err(|e| Error::Key(format!("invalid subject alternative names: {e}")))?;
            b.append_extension(san)?;
        }
        b.sign(&key, MessageDigest::sha256())?;
        Identity::new(b.build(), key, Vec::new())
    }
}

/// Loads one or more certificates from PEM (any number of blocks) or DER.
pub fn load_certificates(data: &[u8]) -> Result<Vec<X509>> {
    if memchr::memmem::find(data, b"-----BEGIN").is_some() {
        let certs = X509::stack_from_pem(data)
            .map_err(|e| Error::Key(format!("cannot read PEM certificates: {e}")))?;
        if certs.is_empty() {
            return Err(Error::Key("no certificate found in the PEM data".into()));
        }
        Ok(certs)
    } else {
        let c = X509::from_der(data)
            .map_err(|e| Error::Key(format!("cannot read the DER certificate: {e}")))?;
        Ok(vec![c])
    }
}

/// Loads a private key from PEM (PKCS#1, PKCS#8, encrypted PKCS#8) or DER (PKCS#8, encrypted
/// PKCS#8, PKCS#1).
pub fn load_private_key(data: &[u8], passphrase: Option<&str>) -> Result<PKey<Private>> {
    let fail = |e: openssl::error::ErrorStack| {
        Error::Key(format!(
            "cannot read the private key (wrong passphrase or not a key): {}",
            e.errors()
                .first()
                .and_then(|x| x.reason())
                .unwrap_or("unrecognised format")
        ))
    };
    if memchr::memmem::find(data, b"-----BEGIN").is_some() {
        match passphrase {
            Some(p) => PKey::private_key_from_pem_passphrase(data, p.as_bytes()).map_err(fail),
            // A callback that supplies no passphrase: without one OpenSSL would prompt on the
            // terminal for an encrypted key, and a server would hang.
            None => PKey::private_key_from_pem_callback(data, |_| Ok(0)).map_err(|e| {
                if memchr::memmem::find(data, b"ENCRYPTED").is_some() {
                    Error::Key("the private key is encrypted and no passphrase was given".into())
                } else {
                    fail(e)
                }
            }),
        }
    } else {
        match passphrase {
            Some(p) => PKey::private_key_from_pkcs8_passphrase(data, p.as_bytes()).map_err(fail),
            None => PKey::private_key_from_der(data).map_err(fail),
        }
    }
}

/// One alias in a keystore.
#[derive(Clone)]
pub struct KeystoreEntry {
    /// The alias (JKS aliases are lower case; PKCS#12 friendly names keep their case).
    pub alias: String,
    /// The entry's certificate.
    pub certificate: X509,
    /// Further certificates of a key entry's chain.
    pub chain: Vec<X509>,
    private_key: Option<PKey<Private>>,
}

impl KeystoreEntry {
    /// True for a key entry (a station identity), false for a trusted certificate.
    pub fn has_private_key(&self) -> bool {
        self.private_key.is_some()
    }

    /// The identity of a key entry.
    pub fn identity(&self) -> Option<Identity> {
        self.private_key.as_ref().map(|k| Identity {
            certificate: self.certificate.clone(),
            private_key: k.clone(),
            chain: self.chain.clone(),
        })
    }
}

impl fmt::Debug for KeystoreEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeystoreEntry")
            .field("alias", &self.alias)
            .field("certificate", &subject_name(&self.certificate))
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The formats [`Keystore::load`] recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeystoreFormat {
    /// Java KeyStore (`keytool -storetype JKS`).
    Jks,
    /// PKCS#12 (`.p12`, `.pfx`, and keytool's default since Java 9).
    Pkcs12,
}

/// A set of aliased certificates and keys: `identity.jks`, `trust.jks`, `https.jks`.
#[derive(Debug, Clone, Default)]
pub struct Keystore {
    entries: Vec<KeystoreEntry>,
}

impl Keystore {
    /// Detects the format and loads it. `key_password` defaults to `store_password` (JKS keys may
    /// have their own password; PKCS#12 uses one).
    pub fn load(data: &[u8], store_password: &str, key_password: Option<&str>) -> Result<Self> {
        match Self::detect(data)? {
            KeystoreFormat::Jks => {
                jks::load(data, store_password, key_password.unwrap_or(store_password))
            }
            KeystoreFormat::Pkcs12 => Self::load_pkcs12(data, store_password),
        }
    }

    /// Which format `data` is in.
    pub fn detect(data: &[u8]) -> Result<KeystoreFormat> {
        match data.get(..4) {
            Some([0xfe, 0xed, 0xfe, 0xed]) => Ok(KeystoreFormat::Jks),
            Some([0xce, 0xce, 0xce, 0xce]) => Err(Error::Key(
                "JCEKS keystores are not supported; convert with keytool -importkeystore -deststoretype pkcs12".into(),
            )),
            Some([0x30, ..]) => Ok(KeystoreFormat::Pkcs12),
            _ => Err(Error::Key("not a JKS or PKCS#12 keystore".into())),
        }
    }

    /// Loads every key and certificate of a PKCS#12 file, keeping friendly names as aliases.
    pub fn load_pkcs12(data: &[u8], password: &str) -> Result<Self> {
        let p12 = Pkcs12::from_der(data)
            .map_err(|e| Error::Key(format!("not a PKCS#12 file: {}", first_reason(&e))))?;
        let legacy = |p7: &[u8]| crate::pkcs12::decrypt_rc2_encrypted_data(p7, password);
        let protection = || {
            crate::pkcs12::describe(data)
                .map(|d| format!(" (protected with {d})"))
                .unwrap_or_default()
        };
        let bags = crate::ffi::pkcs12_bags(&p12, password, &legacy).map_err(|e| match e {
            crate::ffi::P12Failure::Mac => Error::Key(
                "cannot open the PKCS#12 keystore: wrong password (its integrity check does not verify)"
                    .into(),
            ),
            crate::ffi::P12Failure::Bags(e) => Error::Key(format!(
                "cannot open the PKCS#12 keystore: unsupported protection{}: {}",
                protection(),
                first_reason(&e)
            )),
        })?;
        let mut keys = Vec::new();
        let mut certs = Vec::new();
        for bag in bags {
            match bag {
                crate::ffi::P12Bag::Key(name, k) => keys.push((name, k)),
                crate::ffi::P12Bag::Cert(name, c) => certs.push((name, c, false)),
            }
        }
        let mut entries = Vec::new();
        for (i, (name, key)) in keys.into_iter().enumerate() {
            let idx = certs.iter().position(|(_, c, used)| {
                !used && c.public_key().map(|p| p.public_eq(&key)).unwrap_or(false)
            });
            let Some(idx) = idx else {
                return Err(Error::Key(
                    "a PKCS#12 private key has no matching certificate".into(),
                ));
            };
            certs[idx].2 = true;
            let cert = certs[idx].1.clone();
            let alias = name
                .or_else(|| certs[idx].0.clone())
                .unwrap_or_else(|| format!("key-{i}"));
            let chain = build_chain(&cert, &mut certs);
            entries.push(KeystoreEntry {
                alias,
                certificate: cert,
                chain,
                private_key: Some(key),
            });
        }
        for (i, (name, cert, used)) in certs.into_iter().enumerate() {
            if used {
                continue;
            }
            entries.push(KeystoreEntry {
                alias: name.unwrap_or_else(|| format!("cert-{i}")),
                certificate: cert,
                chain: Vec::new(),
                private_key: None,
            });
        }
        Ok(Keystore { entries })
    }

    /// An empty keystore.
    pub fn new() -> Self {
        Keystore::default()
    }

    /// Every key and certificate entry, in keystore order.
    pub fn entries(&self) -> &[KeystoreEntry] {
        &self.entries
    }

    /// Adds a key entry under `alias`, replacing any entry of that alias.
    pub fn set_identity(&mut self, alias: &str, identity: &Identity) {
        self.remove(alias);
        self.entries.push(KeystoreEntry {
            alias: alias.to_lowercase(),
            certificate: identity.certificate.clone(),
            chain: identity.chain.clone(),
            private_key: Some(identity.private_key.clone()),
        });
    }

    /// Adds a trusted certificate under `alias`, replacing any entry of that alias.
    pub fn set_certificate(&mut self, alias: &str, certificate: &X509) {
        self.remove(alias);
        self.entries.push(KeystoreEntry {
            alias: alias.to_lowercase(),
            certificate: certificate.clone(),
            chain: Vec::new(),
            private_key: None,
        });
    }

    /// Removes the entry `alias`, if any.
    pub fn remove(&mut self, alias: &str) {
        self.entries
            .retain(|e| !e.alias.eq_ignore_ascii_case(alias));
    }

    /// Writes a Java KeyStore (`keytool -storetype JKS` reads it), keys protected with
    /// `password` as keytool does by default. `created` stamps the entries.
    pub fn to_jks(&self, password: &str, created: UnixTime) -> Result<Vec<u8>> {
        jks::write(&self.entries, password, created)
    }

    /// The entry with `alias` (aliases compare ignoring case, as keytool does).
    pub fn entry(&self, alias: &str) -> Option<&KeystoreEntry> {
        self.entries
            .iter()
            .find(|e| e.alias.eq_ignore_ascii_case(alias))
    }

    /// The identity stored under `alias`.
    pub fn identity(&self, alias: &str) -> Result<Identity> {
        self.entry(alias)
            .ok_or_else(|| Error::Key(format!("no entry {alias:?} in the keystore")))?
            .identity()
            .ok_or_else(|| Error::Key(format!("entry {alias:?} holds no private key")))
    }

    /// The certificate stored under `alias`.
    pub fn certificate(&self, alias: &str) -> Result<X509> {
        self.entry(alias)
            .map(|e| e.certificate.clone())
            .ok_or_else(|| Error::Key(format!("no entry {alias:?} in the keystore")))
    }
}

/// Removes from `pool` the issuers of `cert` (by name), in order, and returns them.
fn build_chain(cert: &X509, pool: &mut [(Option<String>, X509, bool)]) -> Vec<X509> {
    let mut chain = Vec::new();
    let mut current = cert.clone();
    for _ in 0..8 {
        let issuer = current.issuer_name().to_der().unwrap_or_default();
        let subject = current.subject_name().to_der().unwrap_or_default();
        if issuer == subject {
            break;
        }
        let next = pool
            .iter_mut()
            .find(|(_, c, used)| !*used && c.subject_name().to_der().unwrap_or_default() == issuer);
        match next {
            Some(n) => {
                n.2 = true;
                chain.push(n.1.clone());
                current = n.1.clone();
            }
            None => break,
        }
    }
    chain
}

fn first_reason(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .first()
        .and_then(|x| x.reason().map(str::to_string))
        .unwrap_or_else(|| "unrecognised data".into())
}

mod jks;

/// The certificate's subject as one line (`CN=ALPHA, O=Example`).
pub fn subject_name(cert: &X509Ref) -> String {
    name_line(cert.subject_name())
}

/// The certificate's issuer as one line.
pub fn issuer_name(cert: &X509Ref) -> String {
    name_line(cert.issuer_name())
}

fn name_line(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_else(|_| "?".into());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// SHA-256 fingerprint of the DER certificate, as colon-separated hex.
pub fn fingerprint(cert: &X509Ref) -> String {
    cert.digest(MessageDigest::sha256())
        .map(|d| {
            d.iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":")
        })
        .unwrap_or_default()
}

/// Fails with [`Error::CertificateNotValid`] unless `cert` is valid at `at`.
pub fn check_validity(cert: &X509Ref, at: UnixTime) -> Result<()> {
    let t = Asn1Time::from_unix(at.0)?;
    let after_start = cert.not_before().compare(&t)? != std::cmp::Ordering::Greater;
    let before_end = cert.not_after().compare(&t)? != std::cmp::Ordering::Less;
    if after_start && before_end {
        Ok(())
    } else {
        Err(Error::CertificateNotValid {
            subject: subject_name(cert),
            not_before: cert.not_before().to_string(),
            not_after: cert.not_after().to_string(),
        })
    }
}

/// Whole days from `at` to the end of `cert`'s validity (negative once it has passed).
pub fn days_left(cert: &X509Ref, at: UnixTime) -> Result<i64> {
    let t = Asn1Time::from_unix(at.0)?;
    Ok(i64::from(t.diff(cert.not_after())?.days))
}

/// Certificates expiring within this many days are marked as expiring soon.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Where a certificate stands at a given time, in whole days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Valid for more than [`EXPIRY_WARNING_DAYS`] days.
    Valid(i64),
    /// Valid for this many days more, within [`EXPIRY_WARNING_DAYS`].
    Soon(i64),
    /// Past its end.
    Expired,
}

/// Where `cert` stands at `at` ([`days_left`] against [`EXPIRY_WARNING_DAYS`]); a certificate
/// whose dates cannot be read counts as expired.
pub fn expiry(cert: &X509Ref, at: UnixTime) -> Expiry {
    match days_left(cert, at) {
        Ok(left) if left >= EXPIRY_WARNING_DAYS => Expiry::Valid(left),
        Ok(left) if left >= 0 => Expiry::Soon(left),
        _ => Expiry::Expired,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_counts_down_and_goes_negative() {
        let start = UnixTime(1_800_000_000);
        let id = Identity::generate_self_signed("ALPHA", 2048, start, 30).unwrap();
        assert_eq!(days_left(&id.certificate, start).unwrap(), 30);
        assert_eq!(expiry(&id.certificate, start), Expiry::Valid(30));
        assert_eq!(
            expiry(&id.certificate, UnixTime(start.0 + 86_400)),
            Expiry::Soon(29)
        );
        assert_eq!(
            expiry(&id.certificate, UnixTime(start.0 + 31 * 86_400)),
            Expiry::Expired
        );
        assert_eq!(
            days_left(&id.certificate, UnixTime(start.0 + 31 * 86_400)).unwrap(),
            -1
        );
    }

    #[test]
    fn generated_identity_round_trips_through_pem_der_and_p12() {
        let id =
            Identity::generate_self_signed("ALPHA", 2048, UnixTime(1_800_000_000), 30).unwrap();
        let cert_pem = id.certificate.to_pem().unwrap();
        let key_pem = id.private_key.private_key_to_pem_pkcs8().unwrap();
        let back = Identity::from_pem_or_der(&cert_pem, &key_pem, None).unwrap();
        assert_eq!(
            back.certificate.to_der().unwrap(),
            id.certificate.to_der().unwrap()
        );
        let der = id.certificate.to_der().unwrap();
        assert_eq!(load_certificates(&der).unwrap().len(), 1);
        let enc = id
            .private_key
            .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"s3cret")
            .unwrap();
        assert!(load_private_key(&enc, Some("s3cret")).is_ok());
        let err = load_private_key(&enc, Some("Xyzzy-99"))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("Xyzzy") && !err.contains("s3cret"), "{err}");

        let p12 = Pkcs12::builder()
            .name("alpha")
            .pkey(&id.private_key)
            .cert(&id.certificate)
            .build2("pw")
            .unwrap()
            .to_der()
            .unwrap();
        let ks = Keystore::load(&p12, "pw", None).unwrap();
        assert_eq!(ks.entries().len(), 1);
        assert!(ks.identity("ALPHA").is_ok());
        assert!(Keystore::load(&p12, "bad", None).is_err());
        assert!(format!("{:?}", ks).contains("redacted"));
    }

    #[test]
    fn validity_window() {
        let id = Identity::generate_self_signed("X", 2048, UnixTime(1_800_000_000), 1).unwrap();
        assert!(check_validity(&id.certificate, UnixTime(1_800_000_100)).is_ok());
        assert!(matches!(
            check_validity(&id.certificate, UnixTime(1_900_000_000)),
            Err(Error::CertificateNotValid { .. })
        ));
        assert!(check_validity(&id.certificate, UnixTime(1_700_000_000)).is_err());
    }

    #[test]
    fn mismatched_key_and_garbage() {
        let a = Identity::generate_self_signed("A", 2048, UnixTime(1_800_000_000), 1).unwrap();
        let b = Identity::generate_self_signed("B", 2048, UnixTime(1_800_000_000), 1).unwrap();
        assert!(Identity::new(a.certificate.clone(), b.private_key.clone(), vec![]).is_err());
        assert!(load_certificates(b"garbage").is_err());
        assert!(Keystore::load(b"garbage", "x", None).is_err());
        assert!(Keystore::load(&[0xfe, 0xed, 0xfe, 0xed, 0, 0], "x", None).is_err());
    }
}
