//! Shared fixtures for the engine's integration tests.
#![allow(dead_code)]

use std::sync::OnceLock;

use as2::keys::Identity;
use as2::receive::StaticKeys;
use as2::UnixTime;

/// A fixed "now" inside every test certificate's validity.
pub const NOW: UnixTime = UnixTime(1_795_845_423);

/// Station ALPHA's and partner BETA's identities (generated once per test binary).
pub fn alpha() -> &'static Identity {
    static ID: OnceLock<Identity> = OnceLock::new();
    ID.get_or_init(|| {
        Identity::generate_self_signed("ALPHA", 2048, UnixTime(NOW.0 - 86_400), 365)
            .expect("keygen")
    })
}

/// Partner BETA.
pub fn beta() -> &'static Identity {
    static ID: OnceLock<Identity> = OnceLock::new();
    ID.get_or_init(|| {
        Identity::generate_self_signed("BETA", 2048, UnixTime(NOW.0 - 86_400), 365).expect("keygen")
    })
}

/// A stranger nobody configured.
pub fn mallory() -> &'static Identity {
    static ID: OnceLock<Identity> = OnceLock::new();
    ID.get_or_init(|| {
        Identity::generate_self_signed("MALLORY", 2048, UnixTime(NOW.0 - 86_400), 365)
            .expect("keygen")
    })
}

/// The keys `receiver` needs to open what `sender` sent.
pub fn keys_for(receiver: &Identity, sender: &Identity) -> StaticKeys {
    StaticKeys {
        identities: vec![receiver.clone()],
        partner_certificates: vec![sender.certificate.clone()],
    }
}

/// A payload with bare LFs, CRLFs, NULs and high bytes: whatever a file can hold.
pub fn awkward_payload(len: usize) -> Vec<u8> {
    let mut v =
        b"ISA*00*          *00*          *ZZ*ALPHA          *ZZ*BETA           *\n".to_vec();
    let mut x: u32 = 12345;
    while v.len() < len {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        v.push((x >> 16) as u8);
        if v.len().is_multiple_of(61) {
            v.extend_from_slice(b"\r\n");
        }
        if v.len().is_multiple_of(97) {
            v.push(b'\n');
        }
    }
    v.truncate(len);
    v
}
