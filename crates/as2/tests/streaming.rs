//! The streaming layers: `cms::EnvelopeStream` and `cms::CompressStream`, fed in any chunks,
//! write BER with indefinite lengths that opens to the content: the envelope with our own
//! `cms::decrypt` and with the `openssl cms` command line, for every cipher and key transport;
//! the compressed data with `cms::decompress` and with asn1crypto and Python's zlib (Debian's
//! OpenSSL has no zlib); one layer fed into the other, too. `cms::SignStream` signs what it is fed
//! as a detached SignedData that `cms::verify_detached` and `openssl cms -verify` accept, for
//! every digest, PKCS#1 v1.5 and PSS.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::process::Command;
use std::time::Duration;

use as2::algorithm::{ContentEncryption, KeyTransport};
use as2::algorithm::{DigestAlgorithm, SignatureScheme};
use as2::cms::{self, CompressStream, EnvelopeStream, InflateStream, SignStream};
use as2::envelope::Envelope;
use as2::message::{MessageOptions, Payload};
use as2::message_stream::BuildStream;
use as2::receive::Policy;
use common::*;
use proptest::prelude::*;

fn streamed(
    content: &[u8],
    cuts: &[usize],
    cipher: ContentEncryption,
    transport: KeyTransport,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = EnvelopeStream::start(
        std::slice::from_ref(&beta().certificate),
        cipher,
        transport,
        &mut out,
    )
    .unwrap();
    for piece in pieces(content, cuts) {
        s.update(piece, &mut out).unwrap();
    }
    s.finish(&mut out).unwrap();
    out
}

/// `content` cut after each of `cuts` bytes (the last piece is the rest, empty or not).
fn pieces<'a>(content: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    for &cut in cuts {
        let end = (at + cut).min(content.len());
        out.push(&content[at..end]);
        at = end;
    }
    out.push(&content[at..]);
    out
}

fn transports() -> [KeyTransport; 2] {
    [KeyTransport::RsaPkcs1v15, KeyTransport::RsaOaep]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_chunking_opens_to_the_content(
        content in proptest::collection::vec(any::<u8>(), 0..70_000),
        cuts in proptest::collection::vec(0usize..20_000, 0..8),
        cipher in proptest::sample::select(ContentEncryption::ALL.to_vec()),
        oaep in any::<bool>(),
    ) {
        let transport = if oaep { KeyTransport::RsaOaep } else { KeyTransport::RsaPkcs1v15 };
        let ber = streamed(&content, &cuts, cipher, transport);
        let opened = cms::decrypt(&ber, std::slice::from_ref(beta())).unwrap();
        prop_assert_eq!(&opened.content, &content);
        prop_assert_eq!(opened.cipher, cipher);
        prop_assert_eq!(opened.key_transport, Some(transport));
        // What the in-memory envelope says of itself, the streamed one says too.
        let info = cms::inspect_enveloped(&ber).unwrap();
        prop_assert_eq!(info.cipher, Some(cipher));
        prop_assert_eq!(info.authenticated, cipher.is_authenticated());
    }
}

#[test]
fn openssl_decrypts_the_streamed_envelope() {
    let tmp = tempfile::tempdir().unwrap();
    let (beta_crt, beta_key) = write_pem(tmp.path(), "beta", beta());
    let content = awkward_payload(150_001);
    for cipher in ContentEncryption::ALL {
        for transport in transports() {
            let ber = streamed(&content, &[1, 15, 16, 4096, 65_536], cipher, transport);
            let input = tmp.path().join("in.ber");
            let output = tmp.path().join("out.bin");
            std::fs::write(&input, &ber).unwrap();
            let _ = std::fs::remove_file(&output);
            run_bounded(
                Command::new("openssl").args([
                    "cms",
                    "-decrypt",
                    "-binary",
                    "-inform",
                    "DER",
                    "-in",
                    input.to_str().unwrap(),
                    "-inkey",
                    beta_key.to_str().unwrap(),
                    "-recip",
                    beta_crt.to_str().unwrap(),
                    "-out",
                    output.to_str().unwrap(),
                ]),
                Duration::from_secs(60),
            );
            assert_eq!(
                std::fs::read(&output).unwrap(),
                content,
                "{cipher:?} {transport:?}"
            );
        }
    }
}

#[test]
fn a_stream_cut_short_or_tampered_is_refused() {
    let content = awkward_payload(40_000);
    for cipher in [ContentEncryption::Aes256Cbc, ContentEncryption::Aes256Gcm] {
        let ber = streamed(&content, &[1000, 5000], cipher, KeyTransport::RsaPkcs1v15);
        // Ends in the middle of the ciphertext, or without its end-of-contents octets.
        for cut in [ber.len() / 2, ber.len() - 2] {
            assert!(
                cms::decrypt(&ber[..cut], std::slice::from_ref(beta())).is_err(),
                "{cipher:?} cut at {cut}"
            );
        }
    }
    // AES-GCM's tag covers every byte: one flipped in the ciphertext is refused.
    let mut ber = streamed(
        &content,
        &[7000],
        ContentEncryption::Aes256Gcm,
        KeyTransport::RsaPkcs1v15,
    );
    let at = ber.len() / 2;
    ber[at] ^= 1;
    assert!(cms::decrypt(&ber, std::slice::from_ref(beta())).is_err());
}

fn compressed(content: &[u8], cuts: &[usize], level: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = CompressStream::start(level, &mut out).unwrap();
    for piece in pieces(content, cuts) {
        s.update(piece, &mut out).unwrap();
    }
    s.finish(&mut out).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_chunking_decompresses_to_the_content(
        content in proptest::collection::vec(0u8..4, 0..200_000),
        cuts in proptest::collection::vec(0usize..70_000, 0..8),
        level in 0u32..10,
    ) {
        let ber = compressed(&content, &cuts, level);
        prop_assert_eq!(cms::decompress(&ber, 1 << 30).unwrap(), content);
    }
}

#[test]
fn compressed_then_enveloped_as_one_stream() {
    let content = awkward_payload(300_000);
    let mut inner = Vec::new();
    let mut z = CompressStream::start(6, &mut inner).unwrap();
    let mut outer = Vec::new();
    let mut e = EnvelopeStream::start(
        std::slice::from_ref(&beta().certificate),
        ContentEncryption::Aes256Cbc,
        KeyTransport::RsaPkcs1v15,
        &mut outer,
    )
    .unwrap();
    for chunk in content.chunks(8191) {
        z.update(chunk, &mut inner).unwrap();
        e.update(&inner, &mut outer).unwrap();
        inner.clear();
    }
    z.finish(&mut inner).unwrap();
    e.update(&inner, &mut outer).unwrap();
    e.finish(&mut outer).unwrap();
    let opened = cms::decrypt(&outer, std::slice::from_ref(beta())).unwrap();
    assert_eq!(cms::decompress(&opened.content, 1 << 30).unwrap(), content);
    // Past the limit it is refused while inflating.
    assert!(matches!(
        cms::decompress(&opened.content, 1000),
        Err(as2::Error::DecompressionLimit { .. })
    ));
}

#[test]
fn asn1crypto_and_zlib_read_the_streamed_compressed_data() {
    let tmp = tempfile::tempdir().unwrap();
    let content = awkward_payload(250_000);
    let ber = compressed(&content, &[3, 4096, 100_000], 9);
    let input = tmp.path().join("compressed.ber");
    std::fs::write(&input, &ber).unwrap();
    let output = tmp.path().join("content.bin");
    let script = "import sys, zlib\n\
from asn1crypto import cms\n\
ci = cms.ContentInfo.load(open(sys.argv[1], 'rb').read())\n\
assert ci['content_type'].native == 'compressed_data', ci['content_type'].native\n\
cd = ci['content']\n\
assert cd['compression_algorithm']['algorithm'].native == 'zlib'\n\
data = cd['encap_content_info']['content'].native\n\
open(sys.argv[2], 'wb').write(zlib.decompress(data))\n";
    run_bounded(
        Command::new(testkit::python())
            .args(["-c", script])
            .arg(&input)
            .arg(&output),
        Duration::from_secs(60),
    );
    assert_eq!(std::fs::read(&output).unwrap(), content);
}

fn signed(
    content: &[u8],
    cuts: &[usize],
    digest: DigestAlgorithm,
    scheme: SignatureScheme,
) -> Vec<u8> {
    let mut s = SignStream::start(alpha(), digest, scheme, as2::UnixTime(1_795_858_200)).unwrap();
    for piece in pieces(content, cuts) {
        s.update(piece).unwrap();
    }
    s.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_chunking_signs_what_verifies(
        content in proptest::collection::vec(any::<u8>(), 0..50_000),
        cuts in proptest::collection::vec(0usize..20_000, 0..6),
        d in 0usize..5,
        pss in any::<bool>(),
    ) {
        let digest = signing_digests()[d % signing_digests().len()];
        let scheme = if pss { SignatureScheme::RsaPss } else { SignatureScheme::RsaPkcs1v15 };
        let sig = signed(&content, &cuts, digest, scheme);
        let v = cms::verify_detached(&sig, &content, std::slice::from_ref(&alpha().certificate), &[]).unwrap();
        prop_assert_eq!(v.digest, digest);
        prop_assert_eq!(v.scheme, Some(scheme));
        // One byte different: refused.
        let mut other = content.clone();
        other.push(b'x');
        prop_assert!(cms::verify_detached(&sig, &other, std::slice::from_ref(&alpha().certificate), &[]).is_err());
    }
}

#[test]
fn openssl_verifies_the_streamed_signature() {
    let tmp = tempfile::tempdir().unwrap();
    let (alpha_crt, _) = write_pem(tmp.path(), "alpha", alpha());
    let content = awkward_payload(120_003);
    let data = tmp.path().join("content.bin");
    std::fs::write(&data, &content).unwrap();
    for digest in signing_digests() {
        for scheme in [SignatureScheme::RsaPkcs1v15, SignatureScheme::RsaPss] {
            let sig = signed(&content, &[10, 4096, 65_536], digest, scheme);
            let file = tmp.path().join("sig.der");
            std::fs::write(&file, &sig).unwrap();
            run_bounded(
                Command::new("openssl").args([
                    "cms",
                    "-verify",
                    "-binary",
                    "-inform",
                    "DER",
                    "-in",
                    file.to_str().unwrap(),
                    "-content",
                    data.to_str().unwrap(),
                    "-CAfile",
                    alpha_crt.to_str().unwrap(),
                    "-purpose",
                    "any",
                    "-out",
                    "/dev/null",
                ]),
                Duration::from_secs(60),
            );
            // What it says of itself: the digest, the scheme, the signer's certificate, detached.
            let info = cms::inspect_signed(&sig).unwrap();
            assert_eq!(
                (info.digest, info.scheme, info.detached, info.signer_count),
                (Some(digest), Some(scheme), true, 1),
                "{digest:?} {scheme:?}"
            );
        }
    }
    // MD5 cannot sign, and an RSA key does not sign with ECDSA.
    assert!(SignStream::start(
        alpha(),
        DigestAlgorithm::Md5,
        SignatureScheme::RsaPkcs1v15,
        as2::UnixTime(0)
    )
    .is_err());
    assert!(SignStream::start(
        alpha(),
        DigestAlgorithm::Sha256,
        SignatureScheme::Ecdsa,
        as2::UnixTime(0)
    )
    .is_err());
}

/// Message options from the numbers a property test draws, asking for a signed receipt.
fn options(compression: u8, sign: Option<(usize, bool)>, encrypt: Option<usize>) -> MessageOptions {
    let mut opts = message_options(compression, sign, encrypt);
    opts.mdn = Some(as2::envelope::MdnRequest::sync(
        "as2@alpha.example",
        &[DigestAlgorithm::Sha256],
        as2::algorithm::NameStyle::Hyphenated,
    ));
    opts
}

fn build_streamed(
    opts: &MessageOptions,
    payload: &[u8],
    cuts: &[usize],
) -> (as2::HeaderMap, Vec<u8>, as2::message_stream::Built) {
    let now = as2::UnixTime(1_795_858_200);
    let mut body = Vec::new();
    let id = as2::envelope::new_message_id("alpha.example", now);
    let (mut b, headers) = BuildStream::start(
        opts,
        "application/edi-x12",
        Some("order 1.edi"),
        &id,
        now,
        &mut body,
    )
    .unwrap();
    for piece in pieces(payload, cuts) {
        b.update(piece, &mut body).unwrap();
    }
    let built = b.finish(&mut body).unwrap();
    (headers, body, built)
}

fn open(headers: &as2::HeaderMap, body: &[u8]) -> as2::receive::Received {
    let env = Envelope::from_headers(headers).unwrap();
    open_both(
        &env,
        headers,
        body,
        &keys_for(beta(), alpha()),
        &Policy::default(),
        as2::UnixTime(1_795_858_200),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_streamed_message_opens_as_the_in_memory_one_does(
        payload in proptest::collection::vec(any::<u8>(), 0..60_000),
        cuts in proptest::collection::vec(0usize..25_000, 0..6),
        compression in 0u8..3,
        sign in proptest::option::of((0usize..5, any::<bool>())),
        encrypt in proptest::option::of(0usize..6),
    ) {
        let opts = options(compression, sign, encrypt);
        let (headers, body, built) = build_streamed(&opts, &payload, &cuts);
        let got = open(&headers, &body);
        prop_assert_eq!(&got.payload, &payload);
        prop_assert_eq!(got.filename.as_deref(), Some("order 1.edi"));
        prop_assert!(
            std::iter::once(&built.mic).chain(&built.alternative_mics).any(|m| m.matches(&got.mic)),
            "receiver MIC {} not among {:?}", got.mic, built
        );
        // The same layers as the in-memory builder's, in the same order.
        let id = as2::envelope::new_message_id("alpha.example", as2::UnixTime(1_795_858_200));
        let memory = as2::message::build(&opts, &Payload { content_type: "application/edi-x12", ..Payload::new(&payload, Some("order 1.edi")) }, &id, as2::UnixTime(1_795_858_200)).unwrap();
        prop_assert_eq!(&built.layers, &memory.layers);
        prop_assert_eq!(open(&memory.headers, &memory.body).payload, payload);
    }
}

#[test]
fn pyas2lib_opens_a_streamed_message() {
    let tmp = tempfile::tempdir().unwrap();
    let (alpha_crt, _) = write_pem(tmp.path(), "alpha", alpha());
    let (beta_crt, beta_key) = write_pem(tmp.path(), "beta", beta());
    // CRLF text: pyas2lib rewrites bare LFs in non-binary parts.
    let payload = crlf_payload(200_000);
    for compression in [0u8, 1, 2] {
        let opts = options(compression, Some((1, false)), Some(3));
        let (headers, body, _) = build_streamed(&opts, &payload, &[5, 70_000]);
        let mut message = headers.to_bytes();
        message.extend_from_slice(b"\r\n");
        message.extend_from_slice(&body);
        let file = tmp.path().join("message.as2");
        std::fs::write(&file, &message).unwrap();
        let out = tmp.path().join("payload.out");
        let _ = std::fs::remove_file(&out);
        run_bounded(
            Command::new(testkit::python())
                .arg(testkit::repo_root().join("tests/bench/pyas2_bench.py"))
                .args(["open"])
                .arg(&file)
                .arg(&out)
                .arg(&beta_crt)
                .arg(&beta_key)
                .arg(&alpha_crt),
            Duration::from_secs(120),
        );
        assert_eq!(
            std::fs::read(&out).unwrap(),
            payload,
            "compression {compression}"
        );
    }
}

/// Inflates `der` fed in the pieces `cuts` makes.
fn inflated(der: &[u8], cuts: &[usize], limit: u64) -> as2::Result<Vec<u8>> {
    let mut s = InflateStream::new(limit);
    let mut out = Vec::new();
    for piece in pieces(der, cuts) {
        s.update(piece, &mut out)?;
    }
    let n = s.finish()?;
    assert_eq!(n as usize, out.len());
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn streamed_and_in_memory_compressed_data_inflate_in_any_chunks(
        content in proptest::collection::vec(0u8..8, 0..150_000),
        write_cuts in proptest::collection::vec(0usize..40_000, 0..5),
        read_cuts in proptest::collection::vec(0usize..3_000, 0..12),
    ) {
        let ber = compressed(&content, &write_cuts, 6);
        prop_assert_eq!(inflated(&ber, &read_cuts, 1 << 30).unwrap(), content.clone());
        let der = cms::compress(&content).unwrap();
        prop_assert_eq!(inflated(&der, &read_cuts, 1 << 30).unwrap(), content);
    }
}

#[test]
fn inflating_refuses_past_the_limit_and_what_is_cut_short() {
    let content = vec![b'A'; 5_000_000];
    let ber = compressed(&content, &[1 << 20], 9);
    // Refused while inflating: the output never runs far past the limit.
    let mut s = InflateStream::new(100_000);
    let mut out = Vec::new();
    let mut refused = false;
    for piece in ber.chunks(512) {
        match s.update(piece, &mut out) {
            Ok(()) => assert!(out.len() <= 100_000 + (1 << 16), "{}", out.len()),
            Err(as2::Error::DecompressionLimit { limit: 100_000 }) => {
                refused = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused);
    // Cut short anywhere: not complete.
    for cut in [0, 10, ber.len() / 2, ber.len() - 13] {
        assert!(
            inflated(&ber[..cut], &[7], 1 << 30).is_err(),
            "cut at {cut}"
        );
    }
    // Not compressed data; an unknown algorithm; a zlib stream that is not one.
    assert!(inflated(
        &streamed(
            b"x",
            &[],
            ContentEncryption::Aes128Cbc,
            KeyTransport::RsaPkcs1v15
        ),
        &[],
        10
    )
    .is_err());
    let mut broken = ber.clone();
    let z = broken.windows(2).position(|w| w == [0x78, 0xda]).unwrap();
    broken[z + 2] ^= 0xff;
    broken[z + 3] ^= 0xff;
    assert!(inflated(&broken, &[100], 1 << 30).is_err());
}

#[test]
fn compressed_data_asn1crypto_writes_inflates_in_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let content = awkward_payload(180_000);
    let input = tmp.path().join("content.bin");
    std::fs::write(&input, &content).unwrap();
    let output = tmp.path().join("compressed.der");
    let script = "import sys, zlib\n\
from asn1crypto import cms\n\
data = open(sys.argv[1], 'rb').read()\n\
cd = cms.CompressedData({'version': 'v0', 'compression_algorithm': {'algorithm': 'zlib'},\n\
    'encap_content_info': {'content_type': 'data', 'content': zlib.compress(data)}})\n\
ci = cms.ContentInfo({'content_type': 'compressed_data', 'content': cd})\n\
open(sys.argv[2], 'wb').write(ci.dump())\n";
    run_bounded(
        Command::new(testkit::python())
            .args(["-c", script])
            .arg(&input)
            .arg(&output),
        Duration::from_secs(60),
    );
    let der = std::fs::read(&output).unwrap();
    assert_eq!(
        inflated(&der, &[1, 2, 3, 4096, 333], 1 << 30).unwrap(),
        content
    );
}

/// Decrypts `ber` fed in the pieces `cuts` makes.
fn decrypted(ber: &[u8], cuts: &[usize]) -> as2::Result<(Vec<u8>, cms::Opened)> {
    let mut s = cms::DecryptStream::new(std::slice::from_ref(beta()));
    let mut out = Vec::new();
    for piece in pieces(ber, cuts) {
        s.update(piece, &mut out)?;
    }
    let opened = s.finish(&mut out)?;
    Ok((out, opened))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn streamed_and_in_memory_envelopes_decrypt_in_any_chunks(
        content in proptest::collection::vec(any::<u8>(), 0..60_000),
        write_cuts in proptest::collection::vec(0usize..20_000, 0..5),
        read_cuts in proptest::collection::vec(0usize..5_000, 0..10),
        cipher in proptest::sample::select(ContentEncryption::ALL.to_vec()),
        oaep in any::<bool>(),
    ) {
        let transport = if oaep { KeyTransport::RsaOaep } else { KeyTransport::RsaPkcs1v15 };
        let ber = streamed(&content, &write_cuts, cipher, transport);
        let (got, opened) = decrypted(&ber, &read_cuts).unwrap();
        prop_assert_eq!(&got, &content);
        prop_assert_eq!((opened.cipher, opened.key_transport), (cipher, Some(transport)));
        let der = cms::encrypt(content.clone(), std::slice::from_ref(&beta().certificate), cipher, transport).unwrap();
        prop_assert_eq!(decrypted(&der, &read_cuts).unwrap().0, content);
    }
}

#[test]
fn what_openssl_encrypts_decrypts_in_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let (beta_crt, _) = write_pem(tmp.path(), "beta", beta());
    let content = awkward_payload(123_457);
    let input = tmp.path().join("content.bin");
    std::fs::write(&input, &content).unwrap();
    for cipher in ContentEncryption::ALL {
        // -stream writes BER with indefinite lengths, as partner products on OpenSSL do.
        for stream in [false, true] {
            let output = tmp.path().join("enveloped.der");
            let mut args = vec!["cms", "-encrypt", "-binary", "-outform", "DER", "-in"];
            args.push(input.to_str().unwrap());
            args.extend(["-out", output.to_str().unwrap(), cipher_flag(cipher)]);
            if stream {
                args.push("-stream");
            }
            args.push(beta_crt.to_str().unwrap());
            run_bounded(Command::new("openssl").args(&args), Duration::from_secs(60));
            let der = std::fs::read(&output).unwrap();
            let (got, opened) = decrypted(&der, &[7, 1000, 4096])
                .unwrap_or_else(|e| panic!("{cipher:?} stream {stream}: {e}"));
            assert_eq!(got, content, "{cipher:?} stream {stream}");
            assert_eq!(opened.cipher, cipher);
        }
    }
}

#[test]
fn a_streamed_decryption_that_is_not_good_says_so_at_the_end() {
    let content = awkward_payload(50_000);
    // AES-GCM: one ciphertext byte flipped; the tag does not match at the end.
    let mut ber = streamed(
        &content,
        &[9000],
        ContentEncryption::Aes256Gcm,
        KeyTransport::RsaPkcs1v15,
    );
    let at = ber.len() / 2;
    ber[at] ^= 1;
    assert!(matches!(
        decrypted(&ber, &[100]),
        Err(as2::Error::AuthenticationFailed(_))
    ));
    // Cut short anywhere: never complete.
    let ber = streamed(
        &content,
        &[9000],
        ContentEncryption::Aes256Cbc,
        KeyTransport::RsaOaep,
    );
    for cut in [0, 30, ber.len() / 2, ber.len() - 40, ber.len() - 8] {
        assert!(decrypted(&ber[..cut], &[333]).is_err(), "cut at {cut}");
    }
    // For somebody else: no recipient of ours.
    let mut s = cms::DecryptStream::new(std::slice::from_ref(alpha()));
    assert!(matches!(
        s.update(&ber, &mut Vec::new()),
        Err(as2::Error::NoMatchingRecipient)
    ));
    // The wrong content key (an encrypted key altered): no padding oracle, a failure at the end.
    let mut ber = streamed(
        &content,
        &[],
        ContentEncryption::Aes128Cbc,
        KeyTransport::RsaPkcs1v15,
    );
    let ek = ber
        .windows(3)
        .position(|w| w == [0x04, 0x82, 0x01])
        .unwrap();
    ber[ek + 20] ^= 0x55;
    assert!(decrypted(&ber, &[]).is_err());
}

#[test]
fn a_head_that_never_ends_is_refused_not_buffered() {
    // A SEQUENCE of indefinite length whose first element claims 16 MiB: the head is never whole.
    let mut start = vec![0x30, 0x80, 0x06, 0x84, 0x01, 0x00, 0x00, 0x00];
    start.extend(std::iter::repeat_n(0u8, 1 << 16));
    let filler = vec![0u8; 1 << 16];
    let mut inflate = InflateStream::new(1 << 30);
    let mut decrypt = cms::DecryptStream::new(std::slice::from_ref(beta()));
    let (mut a, mut b) = (Ok(()), Ok(()));
    let mut out = Vec::new();
    let _ = inflate.update(&start, &mut out);
    let _ = decrypt.update(&start, &mut out);
    for _ in 0..32 {
        if a.is_ok() {
            a = inflate.update(&filler, &mut out);
        }
        if b.is_ok() {
            b = decrypt.update(&filler, &mut out);
        }
    }
    assert!(matches!(a, Err(as2::Error::MalformedCms { .. })), "{a:?}");
    assert!(matches!(b, Err(as2::Error::MalformedCms { .. })), "{b:?}");
}
