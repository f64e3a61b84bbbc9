//! PuTTY private key files (`.ppk`), versions 2 and 3, written as PuTTY's manual (appendix C)
//! specifies them. No crate writes them, so this module does.
//!
//! The private blob is PuTTY's own per algorithm: RSA `mpint d, p, q, iqmp`; ECDSA
//! `mpint scalar`; Ed25519 `string seed`. Encrypted files pad it to the AES block size and
//! encrypt it with AES-256-CBC (no further padding); both versions MAC the algorithm, the
//! encryption, the comment, the public blob and the plaintext private blob.
//! - Version 3: Argon2id gives 80 bytes: AES key, IV, HMAC-SHA-256 key (empty when unencrypted).
//! - Version 2: AES key = SHA-1(0 || passphrase) || SHA-1(1 || passphrase), IV zero;
//!   HMAC-SHA-1 key = SHA-1("putty-private-key-file-mac-key" || passphrase).

use base64::Engine as _;
use openssl::hash::{hash, Hasher, MessageDigest};
use openssl::symm::{Cipher, Crypter, Mode};
use ssh_key::private::KeypairData;
use ssh_key::PrivateKey;
use zeroize::Zeroizing;

use crate::error::{Result, SftpError};

/// The file format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V2,
    V3,
}

/// Argon2id parameters for version 3: PuTTYgen's own defaults.
const ARGON2_MEMORY_KIB: u32 = 8192;
const ARGON2_PASSES: u32 = 21;
const ARGON2_PARALLELISM: u32 = 1;

fn put_string(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
}

/// An SSH `mpint` from a positive big-endian number.
fn put_mpint(out: &mut Vec<u8>, magnitude: &[u8]) {
    let trimmed = &magnitude[magnitude.iter().take_while(|&&b| b == 0).count()..];
    if trimmed.first().is_some_and(|&b| b & 0x80 != 0) {
        out.extend_from_slice(&(trimmed.len() as u32 + 1).to_be_bytes());
        out.push(0);
    } else {
        out.extend_from_slice(&(trimmed.len() as u32).to_be_bytes());
    }
    out.extend_from_slice(trimmed);
}

fn private_blob(key: &PrivateKey) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::new());
    match key.key_data() {
        KeypairData::Rsa(k) => {
            for part in [&k.private.d, &k.private.p, &k.private.q, &k.private.iqmp] {
                put_mpint(&mut out, part.as_positive_bytes().unwrap_or_default());
            }
        }
        KeypairData::Ecdsa(k) => put_mpint(&mut out, k.private_key_bytes()),
        KeypairData::Ed25519(k) => put_string(&mut out, &k.private.to_bytes()),
        _ => {
            return Err(SftpError::Unsupported(
                "PuTTY files hold RSA, ECDSA and Ed25519 keys".into(),
            ))
        }
    }
    Ok(out)
}

/// HMAC over SHA-1 or SHA-256 (RFC 2104), written out because the key may be empty.
fn hmac(md: MessageDigest, key: &[u8], data: &[u8]) -> Result<Vec<u8>> {
    const BLOCK: usize = 64;
    let mut k = Zeroizing::new(if key.len() > BLOCK {
        hash(md, key)?.to_vec()
    } else {
        key.to_vec()
    });
    k.resize(BLOCK, 0);
    let mut inner = Hasher::new(md)?;
    inner.update(&k.iter().map(|b| b ^ 0x36).collect::<Vec<u8>>())?;
    inner.update(data)?;
    let inner = inner.finish()?;
    let mut outer = Hasher::new(md)?;
    outer.update(&k.iter().map(|b| b ^ 0x5c).collect::<Vec<u8>>())?;
    outer.update(&inner)?;
    Ok(outer.finish()?.to_vec())
}

fn base64_lines(data: &[u8]) -> Vec<String> {
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    text.as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `.ppk` text for `key` (which must not itself be encrypted).
pub(crate) fn write(
    key: &PrivateKey,
    passphrase: Option<&str>,
    version: Version,
) -> Result<Zeroizing<String>> {
    let algorithm = key.algorithm().as_str().to_string();
    let comment = key.comment().to_string();
    let public = key.public_key().key_data().clone();
    let public_blob = ssh_key::PublicKey::new(public, "").to_bytes()?;
    let mut private = private_blob(key)?;
    let encryption = if passphrase.is_some() {
        "aes256-cbc"
    } else {
        "none"
    };

    // Key material for the cipher and the MAC.
    let mut kdf_lines = Vec::new();
    let (cipher_key, iv, mac_key) = match (version, passphrase) {
        (Version::V3, Some(p)) => {
            let mut salt = [0u8; 16];
            openssl::rand::rand_bytes(&mut salt)?;
            let params = argon2::Params::new(
                ARGON2_MEMORY_KIB,
                ARGON2_PASSES,
                ARGON2_PARALLELISM,
                Some(80),
            )
            .map_err(|e| SftpError::Crypto(format!("argon2: {e}")))?;
            let argon =
                argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
            let mut out = Zeroizing::new([0u8; 80]);
            argon
                .hash_password_into(p.as_bytes(), &salt, out.as_mut())
                .map_err(|e| SftpError::Crypto(format!("argon2: {e}")))?;
            kdf_lines = vec![
                "Key-Derivation: Argon2id".to_string(),
                format!("Argon2-Memory: {ARGON2_MEMORY_KIB}"),
                format!("Argon2-Passes: {ARGON2_PASSES}"),
                format!("Argon2-Parallelism: {ARGON2_PARALLELISM}"),
                format!("Argon2-Salt: {}", hex(&salt)),
            ];
            (
                Some(Zeroizing::new(out[..32].to_vec())),
                out[32..48].to_vec(),
                Zeroizing::new(out[48..80].to_vec()),
            )
        }
        (Version::V3, None) => (None, Vec::new(), Zeroizing::new(Vec::new())),
        (Version::V2, p) => {
            let pass = p.unwrap_or("").as_bytes();
            let tagged = |tag: u32| -> Result<Vec<u8>> {
                let mut h = Hasher::new(MessageDigest::sha1())?;
                h.update(&tag.to_be_bytes())?;
                h.update(pass)?;
                Ok(h.finish()?.to_vec())
            };
            let cipher_key = match p {
                Some(_) => {
                    let mut k = tagged(0)?;
                    k.extend_from_slice(&tagged(1)?);
                    k.truncate(32);
                    Some(Zeroizing::new(k))
                }
                None => None,
            };
            let mut mac_input = b"putty-private-key-file-mac-key".to_vec();
            mac_input.extend_from_slice(pass);
            (
                cipher_key,
                vec![0u8; 16],
                Zeroizing::new(hash(MessageDigest::sha1(), &mac_input)?.to_vec()),
            )
        }
    };

    // Encrypted files pad the private blob to whole AES blocks.
    if cipher_key.is_some() && private.len() % 16 != 0 {
        let mut pad = vec![0u8; 16 - private.len() % 16];
        openssl::rand::rand_bytes(&mut pad)?;
        private.extend_from_slice(&pad);
    }
    let mut mac_data = Vec::new();
    put_string(&mut mac_data, algorithm.as_bytes());
    put_string(&mut mac_data, encryption.as_bytes());
    put_string(&mut mac_data, comment.as_bytes());
    put_string(&mut mac_data, &public_blob);
    put_string(&mut mac_data, &private);
    let mac = match version {
        Version::V3 => hmac(MessageDigest::sha256(), &mac_key, &mac_data)?,
        Version::V2 => hmac(MessageDigest::sha1(), &mac_key, &mac_data)?,
    };
    let stored = match &cipher_key {
        Some(k) => {
            let mut c = Crypter::new(Cipher::aes_256_cbc(), Mode::Encrypt, k, Some(&iv))?;
            c.pad(false);
            let mut out = vec![0u8; private.len() + 16];
            let mut n = c.update(&private, &mut out)?;
            n += c.finalize(&mut out[n..])?;
            out.truncate(n);
            out
        }
        None => private.to_vec(),
    };

    let mut lines = vec![
        format!(
            "PuTTY-User-Key-File-{}: {algorithm}",
            if version == Version::V3 { 3 } else { 2 }
        ),
        format!("Encryption: {encryption}"),
        format!("Comment: {comment}"),
    ];
    let public_lines = base64_lines(&public_blob);
    lines.push(format!("Public-Lines: {}", public_lines.len()));
    lines.extend(public_lines);
    lines.extend(kdf_lines);
    let private_lines = base64_lines(&stored);
    lines.push(format!("Private-Lines: {}", private_lines.len()));
    lines.extend(private_lines);
    lines.push(format!("Private-MAC: {}", hex(&mac)));
    let mut text = lines.join("\n");
    text.push('\n');
    Ok(Zeroizing::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_known_answers() {
        // RFC 4231 test case 2 and RFC 2202 test case 2.
        let m = hmac(
            MessageDigest::sha256(),
            b"Jefe",
            b"what do ya want for nothing?",
        )
        .unwrap();
        assert_eq!(
            hex(&m),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let m = hmac(
            MessageDigest::sha1(),
            b"Jefe",
            b"what do ya want for nothing?",
        )
        .unwrap();
        assert_eq!(hex(&m), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        assert_eq!(hmac(MessageDigest::sha256(), b"", b"").unwrap().len(), 32);
    }

    #[test]
    fn mpints() {
        let mut v = Vec::new();
        put_mpint(&mut v, &[0, 0, 0x80, 1]);
        assert_eq!(v, [0, 0, 0, 3, 0, 0x80, 1]);
        let mut v = Vec::new();
        put_mpint(&mut v, &[0x7f]);
        assert_eq!(v, [0, 0, 0, 1, 0x7f]);
    }
}
