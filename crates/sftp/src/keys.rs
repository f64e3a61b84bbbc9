//! Key pairs for SFTP users: generated for those who have none (the private key is handed out
//! once, as an OpenSSH key or a PuTTY `.ppk`), and checks of public keys users bring.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use rand_core::OsRng;
use ssh_key::private::{KeypairData, RsaKeypair, RsaPrivateKey};
use ssh_key::public::{KeyData, RsaPublicKey};
use ssh_key::{Algorithm, EcdsaCurve, HashAlg, LineEnding, Mpint, PrivateKey, PublicKey};

use crate::error::{Result, SftpError};
use crate::ppk;

/// The kinds of key we generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyType {
    /// RSA of 2048, 3072 or 4096 bits.
    Rsa(u32),
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// ECDSA on NIST P-521.
    EcdsaP521,
    /// Ed25519 (the default: small, fast, and what current clients prefer).
    #[default]
    Ed25519,
}

impl FromStr for KeyType {
    type Err = SftpError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "ed25519" => KeyType::Ed25519,
            "rsa" | "rsa-3072" | "rsa3072" => KeyType::Rsa(3072),
            "rsa-2048" | "rsa2048" => KeyType::Rsa(2048),
            "rsa-4096" | "rsa4096" => KeyType::Rsa(4096),
            "ecdsa" | "ecdsa-p256" | "p256" | "nistp256" => KeyType::EcdsaP256,
            "ecdsa-p384" | "p384" | "nistp384" => KeyType::EcdsaP384,
            "ecdsa-p521" | "p521" | "nistp521" => KeyType::EcdsaP521,
            other => {
                return Err(SftpError::Unsupported(format!(
                    "key type {other:?}: use ed25519, rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384 or ecdsa-p521"
                )))
            }
        })
    }
}

impl<'de> serde::Deserialize<'de> for KeyType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyType::Rsa(bits) => write!(f, "rsa-{bits}"),
            KeyType::EcdsaP256 => f.write_str("ecdsa-p256"),
            KeyType::EcdsaP384 => f.write_str("ecdsa-p384"),
            KeyType::EcdsaP521 => f.write_str("ecdsa-p521"),
            KeyType::Ed25519 => f.write_str("ed25519"),
        }
    }
}

/// How the private key is handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrivateKeyFormat {
    /// OpenSSH's own format (`ssh`, `sftp`, FileZilla, WinSCP all read it); encrypted with
    /// bcrypt-pbkdf and AES-256 when a passphrase is given.
    OpenSsh,
    /// PuTTY `.ppk` version 3 (PuTTY 0.75 and later): Argon2id, AES-256-CBC, HMAC-SHA-256.
    #[default]
    PuttyV3,
    /// PuTTY `.ppk` version 2, for older PuTTY and WinSCP: SHA-1, AES-256-CBC, HMAC-SHA-1.
    PuttyV2,
}

impl FromStr for PrivateKeyFormat {
    type Err = SftpError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "openssh" | "pem" => PrivateKeyFormat::OpenSsh,
            "ppk" | "ppk3" | "putty" | "putty-v3" => PrivateKeyFormat::PuttyV3,
            "ppk2" | "putty-v2" => PrivateKeyFormat::PuttyV2,
            other => {
                return Err(SftpError::Unsupported(format!(
                    "private key format {other:?}: use openssh, ppk (version 3) or ppk2"
                )))
            }
        })
    }
}

impl<'de> serde::Deserialize<'de> for PrivateKeyFormat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for PrivateKeyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PrivateKeyFormat::OpenSsh => "openssh",
            PrivateKeyFormat::PuttyV3 => "ppk3",
            PrivateKeyFormat::PuttyV2 => "ppk2",
        })
    }
}

impl PrivateKeyFormat {
    /// The file name extension users expect.
    pub fn extension(self) -> &'static str {
        match self {
            PrivateKeyFormat::OpenSsh => "pem",
            PrivateKeyFormat::PuttyV3 | PrivateKeyFormat::PuttyV2 => "ppk",
        }
    }
}

/// A private key that is never printed by `{:?}` and is overwritten when dropped.
pub struct Secret(zeroize::Zeroizing<String>);

impl Secret {
    /// Wraps a secret (a private key file's text, or a passphrase).
    pub fn new(text: String) -> Self {
        Secret(zeroize::Zeroizing::new(text))
    }

    /// The secret text, to hand to the user once (or to the key generator).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

// Deserialize only: a secret can come in with a request, but no serializer writes one out
// unless a field asks for it by name (see `provision::Access`).
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<private key>)")
    }
}

/// A generated key pair.
#[derive(Debug)]
pub struct GeneratedKey {
    /// The public key as one `authorized_keys` line (`ssh-ed25519 AAAA... comment`).
    pub public_key: String,
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// The private key file's contents.
    pub private_key: Secret,
    /// How the private key is written (OpenSSH or PuTTY).
    pub format: PrivateKeyFormat,
}

/// Generates a key pair, the private half in `format`, protected by `passphrase` if given.
pub fn generate(
    kind: KeyType,
    format: PrivateKeyFormat,
    passphrase: Option<&str>,
    comment: &str,
) -> Result<GeneratedKey> {
    if comment.contains(['\r', '\n']) {
        return Err(SftpError::Unsupported(
            "the key comment cannot contain line breaks".into(),
        ));
    }
    let passphrase = passphrase.filter(|p| !p.is_empty());
    let key = match kind {
        KeyType::Rsa(bits) => {
            if ![2048, 3072, 4096].contains(&bits) {
                return Err(SftpError::Unsupported(format!(
                    "RSA keys of {bits} bits: use 2048, 3072 or 4096"
                )));
            }
            // OpenSSL generates RSA keys far faster than a pure-Rust implementation would.
            let rsa = openssl::rsa::Rsa::generate(bits)?;
            let mp = |b: &openssl::bn::BigNumRef| Mpint::from_positive_bytes(&b.to_vec());
            let missing = || SftpError::Crypto("incomplete RSA key".into());
            let keypair = RsaKeypair {
                public: RsaPublicKey {
                    e: mp(rsa.e())?,
                    n: mp(rsa.n())?,
                },
                private: RsaPrivateKey {
                    d: mp(rsa.d())?,
                    iqmp: mp(rsa.iqmp().ok_or_else(missing)?)?,
                    p: mp(rsa.p().ok_or_else(missing)?)?,
                    q: mp(rsa.q().ok_or_else(missing)?)?,
                },
            };
            PrivateKey::new(KeypairData::Rsa(keypair), comment)?
        }
        KeyType::EcdsaP256 => PrivateKey::random(
            &mut OsRng,
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            },
        )?,
        KeyType::EcdsaP384 => PrivateKey::random(
            &mut OsRng,
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP384,
            },
        )?,
        KeyType::EcdsaP521 => PrivateKey::random(
            &mut OsRng,
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP521,
            },
        )?,
        KeyType::Ed25519 => PrivateKey::random(&mut OsRng, Algorithm::Ed25519)?,
    };
    let mut key = key;
    key.set_comment(comment);
    let public_key = key.public_key().to_openssh()?;
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    let private_key = match format {
        PrivateKeyFormat::OpenSsh => {
            let out = match passphrase {
                Some(p) => key.encrypt(&mut OsRng, p)?.to_openssh(LineEnding::LF)?,
                None => key.to_openssh(LineEnding::LF)?,
            };
            Secret(zeroize::Zeroizing::new(out.to_string()))
        }
        PrivateKeyFormat::PuttyV3 => Secret(ppk::write(&key, passphrase, ppk::Version::V3)?),
        PrivateKeyFormat::PuttyV2 => Secret(ppk::write(&key, passphrase, ppk::Version::V2)?),
    };
    Ok(GeneratedKey {
        public_key,
        fingerprint,
        private_key,
        format,
    })
}

/// A public key we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedKey {
    /// One `authorized_keys` line, as Transfer Family wants it.
    pub line: String,
    /// `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`, ...
    pub algorithm: String,
    /// Key size in bits.
    pub bits: u32,
    /// `SHA256:...`.
    pub fingerprint: String,
}

/// Checks a public key a user brings: one OpenSSH line (`ssh-rsa AAAA... comment`) or PuTTYgen's
/// RFC 4716 block. Ed25519, ECDSA P-256/384/521 and RSA of 2048 bits or more are accepted; DSA,
/// short RSA, certificates and security-key types are refused, each with its reason.
pub fn check_public_key(text: &str) -> Result<AcceptedKey> {
    let trimmed = text.trim();
    // Never parse, or repeat, what looks like a private key.
    if trimmed.contains("PRIVATE KEY")
        || trimmed.starts_with("PuTTY-User-Key-File")
        || trimmed.contains("Private-Lines:")
    {
        return Err(SftpError::PrivateKeyGiven);
    }
    if trimmed.is_empty() {
        return Err(SftpError::InvalidPublicKey("nothing was given".into()));
    }
    let line = if trimmed.starts_with("---- BEGIN SSH2 PUBLIC KEY ----") {
        rfc4716_to_line(trimmed)?
    } else {
        let lines: Vec<&str> = trimmed.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.len() > 1 {
            return Err(SftpError::InvalidPublicKey(format!(
                "expected one key on one line, found {} lines; paste a single line like \"ssh-ed25519 AAAA... name\"",
                lines.len()
            )));
        }
        lines[0].trim().to_string()
    };
    let kind = line.split_whitespace().next().unwrap_or("");
    let known = [
        "ssh-rsa",
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
    ];
    if kind == "ssh-dss" {
        return Err(SftpError::InvalidPublicKey(
            "DSA keys are obsolete and not accepted; use Ed25519, ECDSA or RSA of 2048 bits or more".into(),
        ));
    }
    if !known.contains(&kind) {
        let shown: String = kind.chars().take(40).collect();
        return Err(SftpError::InvalidPublicKey(format!(
            "unsupported key type {shown:?}; accepted: {}",
            known.join(", ")
        )));
    }
    let key = PublicKey::from_openssh(&line).map_err(|e| {
        SftpError::InvalidPublicKey(format!(
            "malformed {kind} key (is the base64 part complete?): {e}"
        ))
    })?;
    let bits = match key.key_data() {
        KeyData::Rsa(rsa) => {
            let n = rsa.n.as_positive_bytes().unwrap_or_default();
            let lead = n.first().map_or(0, |b| 8 - b.leading_zeros());
            let bits = (n.len().saturating_sub(1) * 8) as u32 + lead;
            if bits < 2048 {
                return Err(SftpError::InvalidPublicKey(format!(
                    "this RSA key has {bits} bits; at least 2048 are required"
                )));
            }
            bits
        }
        KeyData::Ed25519(_) => 256,
        KeyData::Ecdsa(e) => match e.curve() {
            EcdsaCurve::NistP256 => 256,
            EcdsaCurve::NistP384 => 384,
            EcdsaCurve::NistP521 => 521,
        },
        _ => {
            return Err(SftpError::InvalidPublicKey(format!(
                "unsupported key type {kind}"
            )))
        }
    };
    Ok(AcceptedKey {
        line: key.to_openssh()?,
        algorithm: kind.to_string(),
        bits,
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
    })
}

/// The `SHA256:...` fingerprint of a stored `authorized_keys` line, whatever its type; `None`
/// if it cannot be read.
pub fn fingerprint_of(line: &str) -> Option<String> {
    PublicKey::from_openssh(line.trim())
        .ok()
        .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
}

/// An RFC 4716 public key block as one OpenSSH line.
fn rfc4716_to_line(block: &str) -> Result<String> {
    let mut body = String::new();
    let mut comment = String::new();
    let mut lines = block.lines().map(str::trim).skip(1);
    let mut continued_header = false;
    for line in lines.by_ref() {
        if line.starts_with("---- END SSH2 PUBLIC KEY ----") {
            break;
        }
        if continued_header {
            continued_header = line.ends_with('\\');
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("Comment") {
                comment = value.trim().trim_matches('"').to_string();
            }
            continued_header = line.ends_with('\\');
            continue;
        }
        body.push_str(line);
    }
    let blob = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|e| {
            SftpError::InvalidPublicKey(format!(
                "malformed base64 in the SSH2 public key block: {e}"
            ))
        })?;
    let key = PublicKey::from_bytes(&blob).map_err(|e| {
        SftpError::InvalidPublicKey(format!("malformed SSH2 public key block: {e}"))
    })?;
    let line = key.to_openssh()?;
    Ok(if comment.is_empty() {
        line
    } else {
        format!("{line} {comment}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_and_format_generates() {
        for kind in [
            KeyType::Ed25519,
            KeyType::EcdsaP256,
            KeyType::EcdsaP384,
            KeyType::EcdsaP521,
            KeyType::Rsa(2048),
        ] {
            for format in [
                PrivateKeyFormat::OpenSsh,
                PrivateKeyFormat::PuttyV3,
                PrivateKeyFormat::PuttyV2,
            ] {
                for pass in [None, Some("Pass-Phrase 1")] {
                    let k = generate(kind, format, pass, "acme").unwrap();
                    assert!(k.fingerprint.starts_with("SHA256:"));
                    let accepted = check_public_key(&k.public_key).unwrap();
                    assert_eq!(accepted.fingerprint, k.fingerprint);
                    assert!(
                        !format!("{k:?}").contains("PRIVATE")
                            && !format!("{k:?}").contains("Private-Lines")
                    );
                }
            }
        }
        assert!(generate(KeyType::Rsa(1024), PrivateKeyFormat::OpenSsh, None, "x").is_err());
        assert!(generate(KeyType::Ed25519, PrivateKeyFormat::OpenSsh, None, "a\nb").is_err());
        assert_eq!("rsa-4096".parse::<KeyType>().unwrap(), KeyType::Rsa(4096));
        assert!("dsa".parse::<KeyType>().is_err());
    }

    #[test]
    fn refusals() {
        let private = generate(KeyType::Ed25519, PrivateKeyFormat::OpenSsh, None, "x").unwrap();
        let err = check_public_key(private.private_key.expose()).unwrap_err();
        assert_eq!(err, SftpError::PrivateKeyGiven);
        assert!(!err.to_string().contains("AAAA"));
        let ppk = generate(KeyType::Ed25519, PrivateKeyFormat::PuttyV3, None, "x").unwrap();
        assert_eq!(
            check_public_key(ppk.private_key.expose()).unwrap_err(),
            SftpError::PrivateKeyGiven
        );
        for (text, why) in [
            ("", "nothing"),
            ("ssh-ed25519 AAAA!!!not-base64 me", "malformed"),
            ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 cut", "malformed"),
            ("ssh-dss AAAAB3NzaC1kc3M= old", "DSA"),
            (
                "ssh-ed25519-cert-v01@openssh.com AAAA x",
                "unsupported key type",
            ),
            ("hello\nworld\nthis is junk", "3 lines"),
        ] {
            match check_public_key(text) {
                Err(SftpError::InvalidPublicKey(m)) => assert!(m.contains(why), "{text:?}: {m}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
