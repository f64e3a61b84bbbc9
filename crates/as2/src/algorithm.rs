//! The algorithms AS2 partners use, with their names on the wire and their object identifiers.

use std::fmt;
use std::str::FromStr;

use openssl::hash::MessageDigest;
use openssl::symm::Cipher;

use crate::error::Error;

/// Lower-cases and drops hyphens and underscores, so `SHA-256`, `sha256` and `sha_256` compare equal.
pub fn normalize_name(name: &str) -> String {
    name.trim()
        .chars()
        .filter(|c| *c != '-' && *c != '_' && !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A message digest, as used for signatures and MICs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// MD5: accepted in MICs from legacy partners, never used to sign.
    Md5,
    /// SHA-1: legacy, still common.
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256: the default.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// How MIC algorithm names are spelled in headers: `sha-256` (RFC 5751) or `sha256` (older products).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NameStyle {
    /// `sha-1`, `sha-256`: RFC 5751 and RFC 4130bis.
    #[default]
    Hyphenated,
    /// `sha1`, `sha256`: what older Seeburger and IBM products expect.
    Compact,
}

impl DigestAlgorithm {
    /// The names of every digest (a MIC may be in any), hyphenated.
    pub fn names() -> Vec<&'static str> {
        Self::ALL
            .iter()
            .map(|d| d.name(NameStyle::Hyphenated))
            .collect()
    }

    /// The names of the digests a message can be signed with (not MD5), hyphenated.
    pub fn signing_names() -> Vec<&'static str> {
        Self::ALL
            .iter()
            .filter(|d| d.can_sign())
            .map(|d| d.name(NameStyle::Hyphenated))
            .collect()
    }

    /// Every digest, strongest last.
    pub const ALL: [DigestAlgorithm; 6] = [
        DigestAlgorithm::Md5,
        DigestAlgorithm::Sha1,
        DigestAlgorithm::Sha224,
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha384,
        DigestAlgorithm::Sha512,
    ];

    /// Parses a name ignoring case and hyphens (`SHA1`, `sha-256`, `SHA_512`).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match normalize_name(name).as_str() {
            "md5" => DigestAlgorithm::Md5,
            "sha1" => DigestAlgorithm::Sha1,
            "sha224" => DigestAlgorithm::Sha224,
            "sha256" | "sha2256" => DigestAlgorithm::Sha256,
            "sha384" | "sha2384" => DigestAlgorithm::Sha384,
            "sha512" | "sha2512" => DigestAlgorithm::Sha512,
            _ => return None,
        })
    }

    /// The name in the given style.
    pub fn name(self, style: NameStyle) -> &'static str {
        match (self, style) {
            (DigestAlgorithm::Md5, _) => "md5",
            (DigestAlgorithm::Sha1, NameStyle::Hyphenated) => "sha-1",
            (DigestAlgorithm::Sha1, NameStyle::Compact) => "sha1",
            (DigestAlgorithm::Sha224, NameStyle::Hyphenated) => "sha-224",
            (DigestAlgorithm::Sha224, NameStyle::Compact) => "sha224",
            (DigestAlgorithm::Sha256, NameStyle::Hyphenated) => "sha-256",
            (DigestAlgorithm::Sha256, NameStyle::Compact) => "sha256",
            (DigestAlgorithm::Sha384, NameStyle::Hyphenated) => "sha-384",
            (DigestAlgorithm::Sha384, NameStyle::Compact) => "sha384",
            (DigestAlgorithm::Sha512, NameStyle::Hyphenated) => "sha-512",
            (DigestAlgorithm::Sha512, NameStyle::Compact) => "sha512",
        }
    }

    /// The digest's object identifier.
    pub fn oid(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "1.2.840.113549.2.5",
            DigestAlgorithm::Sha1 => "1.3.14.3.2.26",
            DigestAlgorithm::Sha224 => "2.16.840.1.101.3.4.2.4",
            DigestAlgorithm::Sha256 => "2.16.840.1.101.3.4.2.1",
            DigestAlgorithm::Sha384 => "2.16.840.1.101.3.4.2.2",
            DigestAlgorithm::Sha512 => "2.16.840.1.101.3.4.2.3",
        }
    }

    /// The digest for an object identifier.
    pub fn from_oid(oid: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.oid() == oid)
    }

    /// OpenSSL's implementation.
    pub fn message_digest(self) -> MessageDigest {
        match self {
            DigestAlgorithm::Md5 => MessageDigest::md5(),
            DigestAlgorithm::Sha1 => MessageDigest::sha1(),
            DigestAlgorithm::Sha224 => MessageDigest::sha224(),
            DigestAlgorithm::Sha256 => MessageDigest::sha256(),
            DigestAlgorithm::Sha384 => MessageDigest::sha384(),
            DigestAlgorithm::Sha512 => MessageDigest::sha512(),
        }
    }

    /// MD5 and SHA-1: accepted from legacy partners, not sent by default (RFC 4130bis).
    pub fn is_legacy(self) -> bool {
        matches!(self, DigestAlgorithm::Md5 | DigestAlgorithm::Sha1)
    }

    /// Whether messages may be signed with it (MD5 never).
    pub fn can_sign(self) -> bool {
        self != DigestAlgorithm::Md5
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name(NameStyle::Hyphenated))
    }
}

impl FromStr for DigestAlgorithm {
    type Err = Error;
    /// Any digest, MD5 included (it may name a MIC); see [`DigestAlgorithm::can_sign`].
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::from_name(s).ok_or_else(|| {
            Error::UnsupportedAlgorithm(format!(
                "digest {s:?} (accepted: {})",
                accepted(Self::names())
            ))
        })
    }
}

/// `a, b, c`: the accepted names of something, for error messages and help texts.
pub fn accepted<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().collect::<Vec<_>>().join(", ")
}

/// A content-encryption algorithm for enveloped data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentEncryption {
    /// Triple DES in CBC mode: legacy, still the default of some products.
    TripleDesCbc,
    /// AES-128-CBC.
    Aes128Cbc,
    /// AES-192-CBC.
    Aes192Cbc,
    /// AES-256-CBC.
    Aes256Cbc,
    /// AES-128-GCM (AuthEnvelopedData, RFC 5083/5084).
    Aes128Gcm,
    /// AES-256-GCM (AuthEnvelopedData, RFC 5083/5084).
    Aes256Gcm,
}

impl ContentEncryption {
    /// The names of every supported cipher.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|c| c.name()).collect()
    }

    /// Every supported cipher.
    pub const ALL: [ContentEncryption; 6] = [
        ContentEncryption::TripleDesCbc,
        ContentEncryption::Aes128Cbc,
        ContentEncryption::Aes192Cbc,
        ContentEncryption::Aes256Cbc,
        ContentEncryption::Aes128Gcm,
        ContentEncryption::Aes256Gcm,
    ];

    /// Parses our names and common aliases (`3des`, `tripledes_192_cbc`, `aes128-cbc`, `AES_256_GCM`).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match normalize_name(name).as_str() {
            "3des" | "des3" | "tripledes" | "tripledes192cbc" | "desede3cbc" | "3descbc" => {
                ContentEncryption::TripleDesCbc
            }
            "aes128" | "aes128cbc" => ContentEncryption::Aes128Cbc,
            "aes192" | "aes192cbc" => ContentEncryption::Aes192Cbc,
            "aes256" | "aes256cbc" => ContentEncryption::Aes256Cbc,
            "aes128gcm" => ContentEncryption::Aes128Gcm,
            "aes256gcm" => ContentEncryption::Aes256Gcm,
            _ => return None,
        })
    }

    /// Our canonical name.
    pub fn name(self) -> &'static str {
        match self {
            ContentEncryption::TripleDesCbc => "3des-cbc",
            ContentEncryption::Aes128Cbc => "aes128-cbc",
            ContentEncryption::Aes192Cbc => "aes192-cbc",
            ContentEncryption::Aes256Cbc => "aes256-cbc",
            ContentEncryption::Aes128Gcm => "aes128-gcm",
            ContentEncryption::Aes256Gcm => "aes256-gcm",
        }
    }

    /// The cipher's object identifier.
    pub fn oid(self) -> &'static str {
        match self {
            ContentEncryption::TripleDesCbc => "1.2.840.113549.3.7",
            ContentEncryption::Aes128Cbc => "2.16.840.1.101.3.4.1.2",
            ContentEncryption::Aes192Cbc => "2.16.840.1.101.3.4.1.22",
            ContentEncryption::Aes256Cbc => "2.16.840.1.101.3.4.1.42",
            ContentEncryption::Aes128Gcm => "2.16.840.1.101.3.4.1.6",
            ContentEncryption::Aes256Gcm => "2.16.840.1.101.3.4.1.46",
        }
    }

    /// The cipher for an object identifier.
    pub fn from_oid(oid: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.oid() == oid)
    }

    /// OpenSSL's implementation.
    pub fn cipher(self) -> Cipher {
        match self {
            ContentEncryption::TripleDesCbc => Cipher::des_ede3_cbc(),
            ContentEncryption::Aes128Cbc => Cipher::aes_128_cbc(),
            ContentEncryption::Aes192Cbc => Cipher::aes_192_cbc(),
            ContentEncryption::Aes256Cbc => Cipher::aes_256_cbc(),
            ContentEncryption::Aes128Gcm => Cipher::aes_128_gcm(),
            ContentEncryption::Aes256Gcm => Cipher::aes_256_gcm(),
        }
    }

    /// True for AES-GCM, which CMS carries as AuthEnvelopedData.
    pub fn is_authenticated(self) -> bool {
        matches!(
            self,
            ContentEncryption::Aes128Gcm | ContentEncryption::Aes256Gcm
        )
    }

    /// 3DES: accepted from legacy partners, not sent by default.
    pub fn is_legacy(self) -> bool {
        self == ContentEncryption::TripleDesCbc
    }
}

impl fmt::Display for ContentEncryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ContentEncryption {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::from_name(s).ok_or_else(|| {
            Error::UnsupportedAlgorithm(format!(
                "cipher {s:?} (accepted: {})",
                accepted(Self::names())
            ))
        })
    }
}

/// Names for content-encryption OIDs we recognise but do not implement, for clear errors.
pub fn legacy_cipher_name(oid: &str) -> Option<&'static str> {
    match oid {
        "1.2.840.113549.3.2" => Some("RC2-CBC"),
        "1.2.840.113549.3.4" => Some("RC4"),
        "1.3.14.3.2.7" => Some("DES-CBC"),
        "2.16.840.1.101.3.4.1.26" => Some("AES-192-GCM"),
        _ => None,
    }
}

/// How the content-encryption key is sent to the recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyTransport {
    /// RSAES-PKCS1-v1_5: what nearly every partner uses.
    #[default]
    RsaPkcs1v15,
    /// RSAES-OAEP (SHA-1, MGF1-SHA-1 default parameters): Microsoft BizTalk and newer products.
    RsaOaep,
}

impl KeyTransport {
    /// Parses `rsa`, `pkcs1v15`, `rsaes_pkcs1v15`, `oaep`, `rsaes_oaep`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match normalize_name(name).as_str() {
            "rsa" | "pkcs1" | "pkcs1v15" | "rsapkcs1v15" | "rsaespkcs1v15" => {
                KeyTransport::RsaPkcs1v15
            }
            "oaep" | "rsaoaep" | "rsaesoaep" => KeyTransport::RsaOaep,
            _ => return None,
        })
    }

    /// Our canonical name.
    pub fn name(self) -> &'static str {
        match self {
            KeyTransport::RsaPkcs1v15 => "rsa-pkcs1v15",
            KeyTransport::RsaOaep => "rsa-oaep",
        }
    }

    /// The key-transport algorithm for an object identifier.
    pub fn from_oid(oid: &str) -> Option<Self> {
        match oid {
            "1.2.840.113549.1.1.1" => Some(KeyTransport::RsaPkcs1v15),
            "1.2.840.113549.1.1.7" => Some(KeyTransport::RsaOaep),
            _ => None,
        }
    }
}

impl fmt::Display for KeyTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a signature value is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SignatureScheme {
    /// RSASSA-PKCS1-v1_5: universal.
    #[default]
    RsaPkcs1v15,
    /// RSASSA-PSS: an option for partners that ask for it.
    RsaPss,
    /// ECDSA (only with EC keys; reported on inbound messages).
    Ecdsa,
}

impl SignatureScheme {
    /// Parses `pkcs1v15`, `rsassa_pkcs1v15`, `pss`, `rsassa_pss`, `ecdsa`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match normalize_name(name).as_str() {
            "rsa" | "pkcs1" | "pkcs1v15" | "rsapkcs1v15" | "rsassapkcs1v15" => {
                SignatureScheme::RsaPkcs1v15
            }
            "pss" | "rsapss" | "rsassapss" => SignatureScheme::RsaPss,
            "ecdsa" => SignatureScheme::Ecdsa,
            _ => return None,
        })
    }

    /// Our canonical name.
    pub fn name(self) -> &'static str {
        match self {
            SignatureScheme::RsaPkcs1v15 => "rsa-pkcs1v15",
            SignatureScheme::RsaPss => "rsa-pss",
            SignatureScheme::Ecdsa => "ecdsa",
        }
    }

    /// The scheme for a SignerInfo signatureAlgorithm OID.
    pub fn from_oid(oid: &str) -> Option<Self> {
        match oid {
            "1.2.840.113549.1.1.10" => Some(SignatureScheme::RsaPss),
            o if o.starts_with("1.2.840.113549.1.1.") => Some(SignatureScheme::RsaPkcs1v15),
            o if o.starts_with("1.2.840.10045.") => Some(SignatureScheme::Ecdsa),
            _ => None,
        }
    }
}

impl fmt::Display for SignatureScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_names_ignore_case_and_hyphens() {
        assert_eq!(
            DigestAlgorithm::from_name("SHA1"),
            Some(DigestAlgorithm::Sha1)
        );
        assert_eq!(
            DigestAlgorithm::from_name("sha-256"),
            Some(DigestAlgorithm::Sha256)
        );
        assert_eq!(
            DigestAlgorithm::from_name(" Sha_512 "),
            Some(DigestAlgorithm::Sha512)
        );
        assert_eq!(DigestAlgorithm::from_name("sha3-256"), None);
        assert_eq!(DigestAlgorithm::Sha1.name(NameStyle::Compact), "sha1");
        for d in DigestAlgorithm::ALL {
            assert_eq!(DigestAlgorithm::from_oid(d.oid()), Some(d));
            assert_eq!(
                DigestAlgorithm::from_name(d.name(NameStyle::Hyphenated)),
                Some(d)
            );
        }
    }

    #[test]
    fn cipher_names() {
        assert_eq!(
            ContentEncryption::from_name("tripledes_192_cbc"),
            Some(ContentEncryption::TripleDesCbc)
        );
        assert_eq!(
            ContentEncryption::from_name("AES_128_CBC"),
            Some(ContentEncryption::Aes128Cbc)
        );
        for c in ContentEncryption::ALL {
            assert_eq!(ContentEncryption::from_name(c.name()), Some(c));
            assert_eq!(ContentEncryption::from_oid(c.oid()), Some(c));
        }
        let e = "rc2".parse::<ContentEncryption>().unwrap_err().to_string();
        assert!(e.contains("\"rc2\"") && e.contains("aes256-gcm"), "{e}");
        let e = "sha3".parse::<DigestAlgorithm>().unwrap_err().to_string();
        assert!(e.contains("sha-1, sha-224, sha-256"), "{e}");
    }
}
