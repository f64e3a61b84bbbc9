//! Hex, the random hex that makes names unique (Message-IDs, folders, MIME boundaries,
//! scratch files), and the HMAC that signs and derives tokens.

use std::sync::atomic::{AtomicU64, Ordering};

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `bytes` random bytes as lower-case hex (twice as many characters). Should the system's random
/// generator ever fail, the bytes come from a process-wide counter instead (the engine reads no
/// clock): every caller puts a timestamp beside them or checks them against the content, so the
/// names made from them still differ.
pub fn random_hex(bytes: usize) -> String {
    let mut r = vec![0u8; bytes];
    if openssl::rand::rand_bytes(&mut r).is_err() {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        for (i, b) in r.iter_mut().rev().enumerate() {
            *b = n[n.len() - 1 - i % n.len()];
        }
    }
    hex(&r)
}

/// HMAC-SHA256 under `key` of `parts`, one after the other.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> crate::Result<Vec<u8>> {
    let key = openssl::pkey::PKey::hmac(key)?;
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)?;
    for p in parts {
        signer.update(p)?;
    }
    Ok(signer.sign_to_vec()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_known_answer() {
        // RFC 4231, test case 2, the data given in two parts.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]).unwrap();
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hex_and_random_hex() {
        assert_eq!(hex(&[0x00, 0x9f, 0xff]), "009fff");
        let (a, b) = (random_hex(8), random_hex(8));
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
