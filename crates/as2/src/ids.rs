//! Hex, and the random hex that makes names unique (Message-IDs, folders, MIME boundaries,
//! scratch files).

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_random_hex() {
        assert_eq!(hex(&[0x00, 0x9f, 0xff]), "009fff");
        let (a, b) = (random_hex(8), random_hex(8));
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
