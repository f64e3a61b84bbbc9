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

#[allow(unused_imports)] // not every test binary uses them
pub use testkit::{python, repo_root};

/// Runs a command to completion, killing it after `limit`; panics with its output on failure.
pub fn run_bounded(
    cmd: &mut std::process::Command,
    limit: std::time::Duration,
) -> std::process::Output {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    child.stdout.take().map(|mut s| s.read_to_end(&mut stdout));
    child.stderr.take().map(|mut s| s.read_to_end(&mut stderr));
    let out = std::process::Output {
        status,
        stdout,
        stderr,
    };
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Splits a capture (headers, blank line, body).
pub fn split_capture(data: &[u8]) -> (as2::HeaderMap, Vec<u8>) {
    let (h, at) =
        as2::mime::parse_header_block(data, &Default::default()).expect("capture headers");
    (h, data[at..].to_vec())
}

/// Writes a capture.
pub fn write_capture(path: &std::path::Path, headers: &as2::HeaderMap, body: &[u8]) {
    let mut out = headers.to_bytes();
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    std::fs::write(path, out).expect("write capture");
}

/// Writes an identity's certificate and key as PEM files; returns (cert, key) paths.
pub fn write_pem(
    dir: &std::path::Path,
    name: &str,
    id: &Identity,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, id.certificate.to_pem().expect("pem")).expect("write");
    std::fs::write(
        &key,
        id.private_key.private_key_to_pem_pkcs8().expect("pem"),
    )
    .expect("write");
    (cert, key)
}

/// Arbitrary bytes with CRLF line ends only: what survives a sender that canonicalises line ends
/// of non-binary parts (pyas2lib does, for every type but application/octet-stream).
pub fn crlf_payload(len: usize) -> Vec<u8> {
    awkward_payload(len * 2)
        .into_iter()
        .filter(|b| *b != b'\r' && *b != b'\n')
        .collect::<Vec<u8>>()
        .chunks(70)
        .flat_map(|c| c.iter().copied().chain(*b"\r\n"))
        .take(len)
        .collect()
}

/// Asserts equality of two byte strings without printing megabytes on failure.
#[track_caller]
pub fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at = got
            .iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{what}: {} bytes received, {} expected; first difference at offset {at}: {:?} vs {:?}",
            got.len(),
            want.len(),
            &got[at..(at + 16).min(got.len())],
            &want[at..(at + 16).min(want.len())]
        );
    }
}

/// The `openssl cms` option naming a cipher.
pub fn cipher_flag(c: as2::algorithm::ContentEncryption) -> &'static str {
    use as2::algorithm::ContentEncryption;
    match c {
        ContentEncryption::TripleDesCbc => "-des3",
        ContentEncryption::Aes128Cbc => "-aes128",
        ContentEncryption::Aes192Cbc => "-aes192",
        ContentEncryption::Aes256Cbc => "-aes256",
        ContentEncryption::Aes128Gcm => "-aes-128-gcm",
        ContentEncryption::Aes256Gcm => "-aes-256-gcm",
    }
}

/// Opens a message with the in-memory opener and with the streaming one, fed whole and in
/// pieces of several sizes, and checks they agree: the same payload, name, type, layers, MIC and
/// signer, or (both refusing) the same disposition. The streaming opener may refuse what it
/// documents it cannot check without holding the message; it never accepts what the in-memory
/// one refuses. Returns the in-memory result.
pub fn open_both(
    envelope: &as2::envelope::Envelope,
    headers: &as2::HeaderMap,
    body: &[u8],
    keys: &dyn as2::receive::KeyLookup,
    policy: &as2::receive::Policy,
    at: as2::UnixTime,
) -> as2::Result<as2::receive::Received> {
    let memory = as2::receive::open(envelope, headers, body, keys, policy, at);
    let mut sizes = vec![body.len().max(1), 4096, 13];
    if body.len() < 20_000 {
        sizes.push(1);
    }
    for size in sizes {
        let streamed = open_streamed(envelope, headers, body, keys, policy, at, size);
        match (&memory, streamed) {
            (Ok(m), Ok((payload, s))) => {
                assert!(
                    payload == m.payload,
                    "streamed payload differs ({size}-byte pieces)"
                );
                assert_eq!(s.payload.filename, m.filename, "{size}");
                assert_eq!(s.payload.raw_filename, m.raw_filename, "{size}");
                assert_eq!(s.payload.content_type, m.content_type, "{size}");
                assert_eq!(s.size, m.payload.len() as u64, "{size}");
                assert_eq!(s.layers, m.layers, "{size}");
                assert_eq!(s.mic, m.mic, "{size}");
                assert_eq!(
                    s.signer.map(|c| c.to_der().unwrap()),
                    m.signer.as_ref().map(|c| c.to_der().unwrap()),
                    "{size}"
                );
            }
            (Ok(_), Err(e)) => {
                assert!(
                    matches!(e, as2::Error::NotStreamable(_)),
                    "the in-memory opener accepts what the streaming one refuses ({size}-byte pieces): {e}"
                );
            }
            (Err(m), Ok(_)) => {
                panic!("the streaming opener accepts what the in-memory one refuses ({size}-byte pieces): {m}")
            }
            (Err(m), Err(s)) => assert_eq!(
                s.disposition(),
                m.disposition(),
                "{size}-byte pieces: in memory {m}; streamed {s}"
            ),
        }
    }
    memory
}

/// The streaming opener fed `body` in pieces of `size` bytes: the payload and the verdict.
pub fn open_streamed(
    envelope: &as2::envelope::Envelope,
    headers: &as2::HeaderMap,
    body: &[u8],
    keys: &dyn as2::receive::KeyLookup,
    policy: &as2::receive::Policy,
    at: as2::UnixTime,
    size: usize,
) -> as2::Result<(Vec<u8>, as2::receive_stream::StreamOpened)> {
    let mut s = as2::receive_stream::OpenStream::new(envelope, headers, keys, policy, at)?;
    let mut payload = Vec::new();
    for piece in body.chunks(size.max(1)) {
        let before = payload.len();
        s.update(piece, &mut payload)?;
        assert!(
            payload.len() == before || s.payload().is_some(),
            "payload bytes came out before the payload's headers were known"
        );
    }
    let opened = s.finish(&mut payload)?;
    Ok((payload, opened))
}

/// The digests a signature may use.
pub fn signing_digests() -> Vec<as2::algorithm::DigestAlgorithm> {
    as2::algorithm::DigestAlgorithm::ALL
        .into_iter()
        .filter(|d| d.can_sign())
        .collect()
}

/// ALPHA-to-BETA message options from the numbers a property test draws: compression (none,
/// before or after signing), a signing digest (by index) and PSS or not, a cipher (by index).
pub fn message_options(
    compression: u8,
    sign: Option<(usize, bool)>,
    encrypt: Option<usize>,
) -> as2::message::MessageOptions {
    use as2::message::{Compression, Encryption, MessageOptions, Signing};
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    opts.compression = [
        Compression::None,
        Compression::BeforeSigning,
        Compression::AfterSigning,
    ][usize::from(compression) % 3];
    if let Some((d, pss)) = sign {
        let digests = signing_digests();
        let mut s = Signing::new(alpha().clone());
        s.digest = digests[d % digests.len()];
        s.scheme = if pss {
            as2::algorithm::SignatureScheme::RsaPss
        } else {
            as2::algorithm::SignatureScheme::RsaPkcs1v15
        };
        opts.signing = Some(s);
    }
    if let Some(c) = encrypt {
        let mut e = Encryption::new(beta().certificate.clone());
        e.cipher = as2::algorithm::ContentEncryption::ALL
            [c % as2::algorithm::ContentEncryption::ALL.len()];
        opts.encryption = Some(e);
    }
    opts
}
