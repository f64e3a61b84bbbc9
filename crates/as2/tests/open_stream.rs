//! The streaming opener against the in-memory one: every layer order and option, bodies built
//! whole (DER, binary or base64) and streamed (BER), fed in any chunking; and the bad input it
//! must refuse as the in-memory opener does: a body cut short anywhere, a signature that fails
//! only at the end, a stream that inflates past the limit.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use as2::algorithm::{DigestAlgorithm, NameStyle, SignatureScheme};
use as2::envelope::{Envelope, MdnRequest};
use as2::message::{self, BodyEncoding, MessageOptions, Payload, Signing};
use as2::message_stream::BuildStream;
use as2::receive::{Policy, ReceiptMic};
use as2::receive_stream::OpenStream;
use as2::Error;
use common::*;
use proptest::prelude::*;

const NOW: as2::UnixTime = as2::UnixTime(1_795_858_200);

/// Options from the numbers a property test draws.
fn options(
    compression: u8,
    sign: Option<(usize, bool)>,
    encrypt: Option<usize>,
    base64: bool,
    micalg: usize,
) -> MessageOptions {
    let mut opts = message_options(compression, sign, encrypt);
    let digests = signing_digests();
    if base64 {
        opts.body_encoding = BodyEncoding::Base64;
    }
    opts.mdn = Some(MdnRequest::sync(
        "as2@alpha.example",
        &[digests[micalg % digests.len()]],
        NameStyle::Hyphenated,
    ));
    opts
}

/// A message built whole, or (binary bodies) streamed.
fn build(opts: &MessageOptions, payload: &[u8], streamed: bool) -> (as2::HeaderMap, Vec<u8>) {
    let id = as2::envelope::new_message_id("alpha.example", NOW);
    if !streamed || opts.body_encoding == BodyEncoding::Base64 {
        let m = message::build(
            opts,
            &Payload {
                content_type: "application/edi-x12",
                ..Payload::new(payload, Some("order 1.edi"))
            },
            &id,
            NOW,
        )
        .unwrap();
        return (m.headers, m.body);
    }
    let mut body = Vec::new();
    let (mut b, headers) = BuildStream::start(
        opts,
        "application/edi-x12",
        Some("order 1.edi"),
        &id,
        NOW,
        &mut body,
    )
    .unwrap();
    for piece in payload.chunks(7777) {
        b.update(piece, &mut body).unwrap();
    }
    b.finish(&mut body).unwrap();
    (headers, body)
}

/// The streaming opener fed at `cuts` (offsets into the body).
fn open_cut(
    headers: &as2::HeaderMap,
    body: &[u8],
    cuts: &[usize],
    policy: &Policy,
) -> as2::Result<Vec<u8>> {
    let env = Envelope::from_headers(headers).unwrap();
    let mut s = OpenStream::new(&env, headers, &keys_for(beta(), alpha()), policy, NOW)?;
    let mut out = Vec::new();
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.sort_unstable();
    for c in cuts.into_iter().chain([body.len()]) {
        s.update(&body[at..c.max(at)], &mut out)?;
        at = c.max(at);
    }
    s.finish(&mut out)?;
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_message_in_any_chunking_opens_as_in_memory(
        len in 0usize..40_000,
        awkward in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        compression in 0u8..3,
        sign in proptest::option::of((0usize..5, any::<bool>())),
        encrypt in proptest::option::of(0usize..6),
        base64 in any::<bool>(),
        streamed in any::<bool>(),
        micalg in 0usize..5,
        signature_digest in any::<bool>(),
    ) {
        let payload = if awkward { awkward_payload(len) } else { crlf_payload(len) };
        let opts = options(compression, sign, encrypt, base64, micalg);
        let (headers, body) = build(&opts, &payload, streamed);
        let policy = Policy {
            receipt_mic: if signature_digest { ReceiptMic::SignatureDigest } else { ReceiptMic::Requested },
            ..Policy::default()
        };
        let env = Envelope::from_headers(&headers).unwrap();
        let keys = keys_for(beta(), alpha());
        let got = open_both(&env, &headers, &body, &keys, &policy, NOW).unwrap();
        prop_assert!(got.payload == payload);
        prop_assert!(open_cut(&headers, &body, &cuts, &policy).unwrap() == payload);
    }

    #[test]
    fn a_body_cut_short_anywhere_is_refused_as_in_memory(
        len in 1usize..20_000,
        cut in any::<usize>(),
        compression in 0u8..3,
        sign in proptest::option::of((0usize..5, any::<bool>())),
        encrypt in proptest::option::of(0usize..6),
        streamed in any::<bool>(),
    ) {
        let payload = awkward_payload(len);
        let opts = options(compression, sign, encrypt, false, 1);
        let (headers, body) = build(&opts, &payload, streamed);
        let cut = cut % body.len();
        let env = Envelope::from_headers(&headers).unwrap();
        // `open_both` checks the dispositions agree; a cut that leaves a whole message (a
        // trailing line break) may still open, in both.
        let _ = open_both(&env, &headers, &body[..cut], &keys_for(beta(), alpha()), &Policy::default(), NOW);
    }
}

#[test]
fn a_signature_that_fails_only_at_the_end_of_a_large_stream() {
    let payload = awkward_payload(24 << 20);
    let opts = options(0, Some((1, false)), None, false, 1);
    let (headers, mut body) = build(&opts, &payload, true);
    // One payload byte in the middle altered: every byte comes out, the verdict refuses them.
    let at = body.len() / 2;
    body[at] ^= 0x20;
    let env = Envelope::from_headers(&headers).unwrap();
    let keys = keys_for(beta(), alpha());
    let mut s = OpenStream::new(&env, &headers, &keys, &Policy::default(), NOW).unwrap();
    let mut out = Vec::new();
    for piece in body.chunks(1 << 20) {
        s.update(piece, &mut out).unwrap();
        // What comes out is kept aside by the caller; the opener holds none of it.
        out.clear();
    }
    let e = s.finish(&mut out).unwrap_err();
    assert!(matches!(e, Error::IntegrityCheckFailed), "{e}");
    assert!(e
        .disposition()
        .to_field()
        .contains("integrity-check-failed"));
}

#[test]
fn a_stream_that_inflates_past_the_limit_is_refused_while_inflating() {
    let payload = vec![b'A'; 64 << 20];
    let (headers, body) = build(&options(1, None, Some(4), false, 1), &payload, true);
    let policy = Policy {
        max_decompressed_size: 1 << 20,
        ..Policy::default()
    };
    let env = Envelope::from_headers(&headers).unwrap();
    let keys = keys_for(beta(), alpha());
    let mut s = OpenStream::new(&env, &headers, &keys, &policy, NOW).unwrap();
    let mut out = Vec::new();
    let mut fed = 0;
    let mut refused = None;
    for piece in body.chunks(4096) {
        fed += piece.len();
        if let Err(e) = s.update(piece, &mut out) {
            refused = Some(e);
            break;
        }
    }
    let e = refused.expect("refused before the end");
    assert!(fed < body.len(), "refused only after all of it was fed");
    assert!(
        matches!(e, Error::DecompressionLimit { limit } if limit == 1 << 20),
        "{e}"
    );
    assert!(
        out.len() <= (1 << 20) + 65536,
        "{} bytes came out",
        out.len()
    );
}

#[test]
fn what_the_stream_cannot_check_is_refused_with_a_reason() {
    // A signature whose digest is not the micalg the sender declared: the in-memory opener
    // accepts it, the streaming one (which digests only what was declared) says why not.
    let payload = crlf_payload(5000);
    let opts = options(0, Some((3, false)), None, false, 1);
    let (mut headers, body) = build(&opts, &payload, false);
    let ct = headers.get("Content-Type").unwrap().to_string();
    let wrong = ct.replace("micalg=sha-384", "micalg=sha-256");
    assert_ne!(ct, wrong, "{ct}");
    headers.set("Content-Type", wrong);
    let env = Envelope::from_headers(&headers).unwrap();
    let keys = keys_for(beta(), alpha());
    assert!(as2::receive::open(&env, &headers, &body, &keys, &Policy::default(), NOW).is_ok());
    let e = open_streamed(&env, &headers, &body, &keys, &Policy::default(), NOW, 999).unwrap_err();
    assert!(
        matches!(e, Error::NotStreamable(ref t) if t.contains("micalg")),
        "{e}"
    );
}

/// An EC (P-256) identity, self-signed: what keytool's `-keyalg EC` makes.
fn ec_identity(cn: &str) -> as2::keys::Identity {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509NameBuilder, X509};
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::from_unix(NOW.0 - 86_400).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::from_unix(NOW.0 + 86_400).unwrap())
        .unwrap();
    let serial = openssl::bn::BigNum::from_u32(0x5eed).unwrap();
    b.set_serial_number(&openssl::asn1::Asn1Integer::from_bn(&serial).unwrap())
        .unwrap();
    let ski = openssl::x509::extension::SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(ski).unwrap();
    b.sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    as2::keys::Identity::new(b.build(), key, Vec::new()).unwrap()
}

#[test]
fn ecdsa_signatures_streamed_and_in_memory_open_both_ways() {
    let signer = ec_identity("ALPHA EC");
    let keys = as2::receive::StaticKeys {
        identities: vec![beta().clone()],
        partner_certificates: vec![signer.certificate.clone()],
    };
    let payload = awkward_payload(300_000);
    for digest in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha384] {
        for compression in 0..3u8 {
            let mut opts = options(compression, None, Some(4), false, 1);
            let mut s = Signing::new(signer.clone());
            s.digest = digest;
            s.scheme = SignatureScheme::Ecdsa;
            opts.signing = Some(s);
            for streamed in [false, true] {
                let (headers, body) = build(&opts, &payload, streamed);
                let env = Envelope::from_headers(&headers).unwrap();
                let got = open_both(&env, &headers, &body, &keys, &Policy::default(), NOW).unwrap();
                assert!(
                    got.payload == payload,
                    "{digest:?} {compression} {streamed}"
                );
                assert!(got.layers.iter().any(|l| matches!(
                    l,
                    as2::Layer::Signed {
                        scheme: Some(SignatureScheme::Ecdsa),
                        ..
                    }
                )));
            }
        }
    }
}
