//! What OpenSSL 3 cannot open of PKCS#12 by itself, done here: the certificate bags of files
//! made by Java keytool before 8u301 and by Windows certificate exports, encrypted under
//! pbeWithSHA1And40BitRC2-CBC (RC2 lives in OpenSSL's legacy provider, which a statically built
//! OpenSSL may not have); and a description of a file's protection for the error when it still
//! cannot be opened.

use std::fmt::Write as _;

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, InnerIvInit};
use openssl::hash::{Hasher, MessageDigest};

use crate::asn1::{self, tag, Tlv};

const OID_DATA: &str = "1.2.840.113549.1.7.1";
const OID_ENCRYPTED_DATA: &str = "1.2.840.113549.1.7.6";
const OID_PBE_SHA1_RC4_128: &str = "1.2.840.113549.1.12.1.1";
const OID_PBE_SHA1_RC4_40: &str = "1.2.840.113549.1.12.1.2";
const OID_PBE_SHA1_3DES: &str = "1.2.840.113549.1.12.1.3";
const OID_PBE_SHA1_2DES: &str = "1.2.840.113549.1.12.1.4";
const OID_PBE_SHA1_RC2_128: &str = "1.2.840.113549.1.12.1.5";
const OID_PBE_SHA1_RC2_40: &str = "1.2.840.113549.1.12.1.6";
const OID_PBES2: &str = "1.2.840.113549.1.5.13";
const OID_SHROUDED_KEY_BAG: &str = "1.2.840.113549.1.12.10.1.2";
const OID_KEY_BAG: &str = "1.2.840.113549.1.12.10.1.1";
const OID_CERT_BAG: &str = "1.2.840.113549.1.12.10.1.3";

/// The name of a PKCS#12 / PKCS#5 encryption or MAC algorithm.
fn algorithm_name(oid: &str) -> String {
    match oid {
        OID_PBE_SHA1_RC4_128 => "pbeWithSHA1And128BitRC4".into(),
        OID_PBE_SHA1_RC4_40 => "pbeWithSHA1And40BitRC4".into(),
        OID_PBE_SHA1_3DES => "pbeWithSHA1And3-KeyTripleDES-CBC".into(),
        OID_PBE_SHA1_2DES => "pbeWithSHA1And2-KeyTripleDES-CBC".into(),
        OID_PBE_SHA1_RC2_128 => "pbeWithSHA1And128BitRC2-CBC".into(),
        OID_PBE_SHA1_RC2_40 => "pbeWithSHA1And40BitRC2-CBC".into(),
        OID_PBES2 => "PBES2".into(),
        "1.3.14.3.2.26" => "SHA-1".into(),
        "2.16.840.1.101.3.4.2.1" => "SHA-256".into(),
        "2.16.840.1.101.3.4.2.2" => "SHA-384".into(),
        "2.16.840.1.101.3.4.2.3" => "SHA-512".into(),
        "2.16.840.1.101.3.4.1.2" => "AES-128-CBC".into(),
        "2.16.840.1.101.3.4.1.22" => "AES-192-CBC".into(),
        "2.16.840.1.101.3.4.1.42" => "AES-256-CBC".into(),
        "1.2.840.113549.3.7" => "DES-EDE3-CBC".into(),
        "1.2.840.113549.2.9" => "HMAC-SHA-256".into(),
        "1.2.840.113549.2.7" => "HMAC-SHA-1".into(),
        other => format!("algorithm {other}"),
    }
}

/// An AlgorithmIdentifier's name; PBES2 with the cipher it names.
fn describe_algorithm(alg: &Tlv<'_>) -> String {
    let Ok(kids) = alg.children() else {
        return "an unreadable algorithm".into();
    };
    let Some(oid) = kids.first().and_then(|t| t.oid().ok()) else {
        return "an unreadable algorithm".into();
    };
    if oid == OID_PBES2 {
        // PBES2-params ::= SEQUENCE { keyDerivationFunc, encryptionScheme }
        let cipher = kids
            .get(1)
            .and_then(|p| p.children().ok())
            .and_then(|p| p.get(1).copied())
            .and_then(|scheme| scheme.children().ok())
            .and_then(|s| s.first().and_then(|o| o.oid().ok()));
        return match cipher {
            Some(c) => format!("PBES2 ({})", algorithm_name(&c)),
            None => "PBES2".into(),
        };
    }
    algorithm_name(&oid)
}

fn children<'a>(t: &Tlv<'a>) -> Option<Vec<Tlv<'a>>> {
    t.children().ok()
}

/// `[0] EXPLICIT` content of a ContentInfo: (content type, the element inside).
fn content_info<'a>(t: &Tlv<'a>) -> Option<(String, Option<Tlv<'a>>)> {
    let kids = children(t)?;
    let oid = kids.first()?.oid().ok()?;
    let inner = kids
        .get(1)
        .filter(|c| c.tag == tag::CONTEXT_0)
        .and_then(|c| children(c)?.into_iter().next());
    Some((oid, inner))
}

/// How a PKCS#12 file is protected, for error messages: the MAC, and each part's encryption
/// (`certificates under pbeWithSHA1And40BitRC2-CBC; key under PBES2 (AES-256-CBC); MAC SHA-1`).
pub(crate) fn describe(der: &[u8]) -> Option<String> {
    let pfx = asn1::read_all(der).ok()?;
    let kids = children(&pfx)?;
    let (oid, inner) = content_info(kids.get(1)?)?;
    if oid != OID_DATA {
        return Some(format!("an authenticated safe of type {oid}"));
    }
    let safes_der = inner?.octets().ok()?;
    let safes = asn1::read_all(&safes_der).ok()?;
    let mut parts = Vec::new();
    for ci in children(&safes)? {
        let Some((oid, inner)) = content_info(&ci) else {
            continue;
        };
        match (oid.as_str(), inner) {
            (OID_ENCRYPTED_DATA, Some(ed)) => {
                // EncryptedData ::= SEQUENCE { version, EncryptedContentInfo }
                let alg = children(&ed)
                    .and_then(|e| e.get(1).copied())
                    .and_then(|eci| children(&eci)?.get(1).copied());
                if let Some(alg) = alg {
                    parts.push(format!("certificates under {}", describe_algorithm(&alg)));
                }
            }
            (OID_DATA, Some(octets)) => {
                let Ok(data) = octets.octets() else { continue };
                let Ok(bags) = asn1::read_all(&data) else {
                    continue;
                };
                for bag in children(&bags).unwrap_or_default() {
                    let Some(b) = children(&bag) else { continue };
                    match b.first().and_then(|o| o.oid().ok()).as_deref() {
                        Some(OID_SHROUDED_KEY_BAG) => {
                            let alg = b
                                .get(1)
                                .and_then(children)
                                .and_then(|v| v.first().copied())
                                .and_then(|epki| children(&epki)?.first().copied());
                            if let Some(alg) = alg {
                                parts.push(format!("key under {}", describe_algorithm(&alg)));
                            }
                        }
                        Some(OID_KEY_BAG) => parts.push("key unencrypted".into()),
                        Some(OID_CERT_BAG) => parts.push("certificates unencrypted".into()),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    parts.dedup();
    if let Some(mac) = kids.get(2).and_then(children) {
        // MacData ::= SEQUENCE { mac DigestInfo { AlgorithmIdentifier, digest }, salt, iterations }
        let alg = mac
            .first()
            .and_then(children)
            .and_then(|di| di.first().copied());
        if let Some(alg) = alg {
            parts.push(format!("MAC {}", describe_algorithm(&alg)));
        }
    }
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        let _ = write!(out, "{p}");
    }
    Some(out)
}

/// The key derivation of RFC 7292 appendix B.2 with SHA-1 (what every PKCS#12 PBE uses).
fn pkcs12_kdf(password: &str, salt: &[u8], id: u8, iterations: u32, n: usize) -> Option<Vec<u8>> {
    const U: usize = 20;
    const V: usize = 64;
    // The password as a NUL-terminated BMPString (UTF-16BE).
    let mut pass: Vec<u8> = password.encode_utf16().flat_map(u16::to_be_bytes).collect();
    pass.extend_from_slice(&[0, 0]);
    let stretch = |src: &[u8]| -> Vec<u8> {
        if src.is_empty() {
            return Vec::new();
        }
        let len = V * src.len().div_ceil(V);
        src.iter().copied().cycle().take(len).collect()
    };
    let mut i_block = stretch(salt);
    i_block.extend(stretch(&pass));
    let d = [id; V];
    let mut out = Vec::with_capacity(n + U);
    while out.len() < n {
        let mut h = Hasher::new(MessageDigest::sha1()).ok()?;
        h.update(&d).ok()?;
        h.update(&i_block).ok()?;
        let mut a = h.finish().ok()?.to_vec();
        for _ in 1..iterations.max(1) {
            a = openssl::hash::hash(MessageDigest::sha1(), &a)
                .ok()?
                .to_vec();
        }
        out.extend_from_slice(&a);
        if out.len() >= n {
            break;
        }
        let b: Vec<u8> = a.iter().copied().cycle().take(V).collect();
        for chunk in i_block.chunks_mut(V) {
            // chunk = (chunk + b + 1) mod 2^(8V)
            let mut carry = 1u16;
            for (x, y) in chunk.iter_mut().rev().zip(b.iter().rev()) {
                let sum = u16::from(*x) + u16::from(*y) + carry;
                *x = sum as u8;
                carry = sum >> 8;
            }
        }
    }
    out.truncate(n);
    Some(out)
}

/// Decrypts a PKCS#7 EncryptedData (its DER) protected with pbeWithSHA1And40BitRC2-CBC or
/// pbeWithSHA1And128BitRC2-CBC; returns the SafeContents DER. `None` for anything else or a
/// wrong password.
pub(crate) fn decrypt_rc2_encrypted_data(p7_der: &[u8], password: &str) -> Option<Vec<u8>> {
    let ci = asn1::read_all(p7_der).ok()?;
    let (oid, ed) = content_info(&ci)?;
    if oid != OID_ENCRYPTED_DATA {
        return None;
    }
    let eci = children(&ed?)?.get(1).copied()?;
    let eci = children(&eci)?;
    let alg = children(eci.get(1)?)?;
    let bits = match alg.first()?.oid().ok()?.as_str() {
        OID_PBE_SHA1_RC2_40 => 40,
        OID_PBE_SHA1_RC2_128 => 128,
        _ => return None,
    };
    // pkcs-12PbeParams ::= SEQUENCE { salt OCTET STRING, iterations INTEGER }
    let params = children(alg.get(1)?)?;
    let salt = params.first()?.octets().ok()?;
    let iterations = params
        .get(1)
        .filter(|t| t.tag == tag::INTEGER && !t.content.is_empty() && t.content.len() <= 4)?
        .content
        .iter()
        .fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    if iterations == 0 || iterations > 10_000_000 {
        return None;
    }
    // [0] IMPLICIT OCTET STRING, primitive or chunked.
    let encrypted = eci
        .iter()
        .find(|t| t.tag == tag::CONTEXT_0_PRIMITIVE || t.tag == tag::CONTEXT_0)?
        .octets()
        .ok()?;
    let key = pkcs12_kdf(password, &salt, 1, iterations, bits / 8)?;
    let iv = pkcs12_kdf(password, &salt, 2, iterations, 8)?;
    let cipher = rc2::Rc2::new_with_eff_key_len(&key, bits);
    let decryptor = cbc::Decryptor::<rc2::Rc2>::inner_iv_slice_init(cipher, &iv).ok()?;
    let mut buf = encrypted.into_owned();
    let plain = decryptor.decrypt_padded_mut::<Pkcs7>(&mut buf).ok()?;
    Some(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kdf_matches_openssl() {
        // `openssl kdf ... PKCS12KDF` with the password as a NUL-terminated BMPString.
        let salt = [0x0a, 0x58, 0xcf, 0x64, 0x53, 0x0d, 0x82, 0x3f];
        let k = pkcs12_kdf("smeg", &salt, 1, 1, 24).unwrap();
        assert_eq!(
            crate::hex(&k),
            "8aaae6297b6cb04642ab5b077851284eb7128f1a2a7fbca3"
        );
        let iv = pkcs12_kdf("smeg", &salt, 2, 1, 8).unwrap();
        assert_eq!(crate::hex(&iv), "79993dfe048d3b76");
        // More than one block of output, 1000 iterations.
        let salt = [0x05, 0xde, 0xc9, 0x59, 0xac, 0xff, 0x72, 0xf7];
        let k = pkcs12_kdf("queeg", &salt, 1, 1000, 70).unwrap();
        assert_eq!(
            crate::hex(&k),
            "ed2034e36328830ff09df1e1a07dd357185dac0d4f9eb3d47329a83a9f945dc25f2fbbc826dee88317\
             c5e755322927939f37f6b492dbf9228213785c3a62f4a2e63777e1b2c1"
        );
    }
}
