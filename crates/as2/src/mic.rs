//! Message Integrity Check values (RFC 4130 section 7.3.1): what a receipt echoes so the sender
//! knows the exact content arrived.

use std::fmt;

use base64::Engine as _;
use openssl::hash::Hasher;

use crate::algorithm::{DigestAlgorithm, NameStyle};
use crate::error::{Error, Result};

/// A MIC: a base64 digest and the algorithm that made it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mic {
    /// The digest algorithm.
    pub algorithm: DigestAlgorithm,
    /// The base64-encoded digest.
    pub value: String,
}

impl Mic {
    /// Digests `data`.
    pub fn compute(algorithm: DigestAlgorithm, data: &[u8]) -> Result<Mic> {
        Self::compute_parts(algorithm, &[data])
    }

    /// Digests the concatenation of `parts` without joining them.
    pub fn compute_parts(algorithm: DigestAlgorithm, parts: &[&[u8]]) -> Result<Mic> {
        let mut h = Hasher::new(algorithm.message_digest())?;
        for p in parts {
            h.update(p)?;
        }
        let digest = h.finish()?;
        Ok(Mic {
            algorithm,
            value: base64::engine::general_purpose::STANDARD.encode(digest),
        })
    }

    /// A MIC from a digest computed elsewhere (a signature's messageDigest attribute).
    pub fn from_digest(algorithm: DigestAlgorithm, digest: &[u8]) -> Mic {
        Mic {
            algorithm,
            value: base64::engine::general_purpose::STANDARD.encode(digest),
        }
    }

    /// The `Received-Content-MIC` field value: `<base64>, <algorithm>`.
    pub fn to_field(&self, style: NameStyle) -> String {
        format!("{}, {}", self.value, self.algorithm.name(style))
    }

    /// Parses a `Received-Content-MIC` field value.
    pub fn parse_field(s: &str) -> Result<Mic> {
        let (value, alg) = s.rsplit_once(',').ok_or_else(|| Error::InvalidHeader {
            name: "Received-Content-MIC",
            reason: "expected \"<base64 digest>, <algorithm>\"".into(),
        })?;
        let algorithm = DigestAlgorithm::from_name(alg).ok_or_else(|| {
            Error::UnsupportedAlgorithm(format!("MIC algorithm {:?}", alg.trim()))
        })?;
        let value: String = value.chars().filter(|c| !c.is_whitespace()).collect();
        if value.is_empty() {
            return Err(Error::InvalidHeader {
                name: "Received-Content-MIC",
                reason: "empty digest".into(),
            });
        }
        Ok(Mic { algorithm, value })
    }

    /// True when both name the same algorithm (ignoring how it was spelled) and digest.
    pub fn matches(&self, other: &Mic) -> bool {
        self.algorithm == other.algorithm
            && self.value.trim_end_matches('=') == other.value.trim_end_matches('=')
    }
}

impl fmt::Display for Mic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_field(NameStyle::Hyphenated))
    }
}

/// Picks the first algorithm we support from a `signed-receipt-micalg` preference list.
pub fn choose_algorithm<'a>(
    preferences: impl IntoIterator<Item = &'a str>,
) -> Option<DigestAlgorithm> {
    preferences
        .into_iter()
        .filter_map(DigestAlgorithm::from_name)
        .find(|d| d.can_sign())
}

/// Streaming digests for several algorithms at once, used when the receipt may name any of them.
pub(crate) struct MultiDigest {
    hashers: Vec<(DigestAlgorithm, Hasher)>,
}

impl std::fmt::Debug for MultiDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algs: Vec<_> = self.hashers.iter().map(|(a, _)| *a).collect();
        f.debug_struct("MultiDigest")
            .field("algorithms", &algs)
            .finish()
    }
}

impl MultiDigest {
    pub(crate) fn new(algorithms: &[DigestAlgorithm]) -> Result<Self> {
        let mut hashers = Vec::new();
        for &a in algorithms {
            if !hashers.iter().any(|(b, _)| *b == a) {
                hashers.push((a, Hasher::new(a.message_digest())?));
            }
        }
        Ok(MultiDigest { hashers })
    }

    pub(crate) fn update(&mut self, data: &[u8]) -> Result<()> {
        for (_, h) in &mut self.hashers {
            h.update(data)?;
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<Vec<Mic>> {
        let mut out = Vec::new();
        for (algorithm, mut h) in self.hashers {
            out.push(Mic {
                algorithm,
                value: base64::engine::general_purpose::STANDARD.encode(h.finish()?),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest_and_field_round_trip() {
        let m = Mic::compute(DigestAlgorithm::Sha256, b"abc").unwrap();
        assert_eq!(m.value, "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
        let f = m.to_field(NameStyle::Hyphenated);
        assert_eq!(f, "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=, sha-256");
        let back = Mic::parse_field("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=,SHA256").unwrap();
        assert!(back.matches(&m));
        assert!(Mic::parse_field("abc").is_err());
        assert!(matches!(
            Mic::parse_field("abc, whirlpool"),
            Err(Error::UnsupportedAlgorithm(_))
        ));
        assert!(Mic::parse_field(" , sha1").is_err());
    }

    #[test]
    fn chooses_first_supported() {
        assert_eq!(
            choose_algorithm(["sha3-512", "SHA-384", "sha1"]),
            Some(DigestAlgorithm::Sha384)
        );
        assert_eq!(choose_algorithm(["md5"]), None);
    }

    #[test]
    fn multi_digest_matches_single() {
        let mut md = MultiDigest::new(&[
            DigestAlgorithm::Sha1,
            DigestAlgorithm::Sha512,
            DigestAlgorithm::Sha1,
        ])
        .unwrap();
        md.update(b"ab").unwrap();
        md.update(b"c").unwrap();
        let mics = md.finish().unwrap();
        assert_eq!(mics.len(), 2);
        assert!(mics[1].matches(&Mic::compute(DigestAlgorithm::Sha512, b"abc").unwrap()));
    }
}
