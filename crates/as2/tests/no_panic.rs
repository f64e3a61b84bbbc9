//! A bounded property test (the fuzz target of this crate): garbage and mutated messages through
//! every parse entry point. Each must return Ok or a typed error, never panic.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::sync::OnceLock;

use as2::algorithm::DigestAlgorithm;
use as2::envelope::Envelope;
use as2::envelope::MdnRequest;
use as2::mdn::{self, MdnOptions};
use as2::message::{self, Compression, Encryption, MessageOptions, Payload, Signing};
use as2::mime::{self, Limits};
use as2::receive::{self, Policy};
use as2::{cms, Disposition, HeaderMap};
use common::*;
use proptest::prelude::*;

/// Valid messages and receipts to mutate: (headers, body).
fn seeds() -> &'static Vec<(HeaderMap, Vec<u8>)> {
    static SEEDS: OnceLock<Vec<(HeaderMap, Vec<u8>)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut out = Vec::new();
        for (sign, enc, comp) in [
            (true, true, Compression::BeforeSigning),
            (true, false, Compression::None),
            (false, false, Compression::AfterSigning),
            (false, true, Compression::None),
        ] {
            let mut opts = MessageOptions::new("ALPHA", "BETA");
            opts.compression = comp;
            if sign {
                opts.signing = Some(Signing::new(alpha().clone()));
            }
            if enc {
                opts.encryption = Some(Encryption::new(beta().certificate.clone()));
            }
            opts.mdn = Some(MdnRequest::sync(
                "a@b",
                &[DigestAlgorithm::Sha256],
                Default::default(),
            ));
            let m = message::build(
                &opts,
                &Payload::new(&crlf_payload(600), Some("f.edi")),
                "<s@a>",
                NOW,
            )
            .unwrap();
            let env = Envelope::from_headers(&m.headers).unwrap();
            let r = mdn::build(
                &env,
                &Disposition::Processed,
                Some(&m.mic),
                &MdnOptions {
                    signer: Some(beta().clone()),
                    ..Default::default()
                },
                "<r@b>",
                NOW,
            )
            .unwrap();
            out.push((m.headers, m.body));
            out.push((r.headers, r.body));
        }
        out
    })
}

/// Everything that takes bytes from the wire.
fn exercise(headers: &HeaderMap, body: &[u8]) {
    let keys = keys_for(beta(), alpha());
    let policy = Policy {
        max_decompressed_size: 1 << 20,
        ..Policy::default()
    };
    if let Ok(env) = Envelope::from_headers(headers) {
        if let Ok(r) = receive::open(&env, headers, body, &keys, &policy, NOW) {
            assert!(r
                .filename
                .as_deref()
                .is_none_or(|f| !f.contains('/') && !f.contains('\\') && f != ".."));
        }
        let lenient = Policy {
            skip_signature_verification: true,
            ..policy.clone()
        };
        let _ = receive::open(&env, headers, body, &keys, &lenient, NOW);
        for size in [1, 7, 4096] {
            let _ = open_streamed(&env, headers, body, &keys, &policy, NOW, size);
        }
    }
    let _ = mdn::is_mdn(headers, body);
    let _ = mdn::parse(
        headers,
        body,
        Some(std::slice::from_ref(&beta().certificate)),
        Some(NOW),
        &Limits::default(),
    );
    let _ = mdn::parse(headers, body, None, None, &Limits::default());
    let _ = mime::Entity::parse(body, &Limits::default())
        .map(|e| (e.raw_filename(), e.decoded_body().map(|b| b.len())));
    let _ = cms::content_kind(body);
    let _ = cms::inspect_signed(body);
    let _ = cms::inspect_enveloped(body);
    let _ = cms::decompress(body, 1 << 20);
    let _ = cms::decrypt(body, std::slice::from_ref(beta()));
    let _ = cms::verify_detached(
        body,
        b"x",
        std::slice::from_ref(&alpha().certificate),
        &[
            cms::SignedForm::Canonical,
            cms::SignedForm::CanonicalHeaders,
        ],
    );
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Duplicate(usize, usize),
}

fn apply(data: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut d = data.to_vec();
    for m in muts {
        let n = d.len().max(1);
        match m {
            Mutation::Flip(i, x) => {
                if !d.is_empty() {
                    let i = i % n;
                    d[i] ^= x | 1;
                }
            }
            Mutation::Truncate(i) => d.truncate(i % n),
            Mutation::Insert(i, bytes) => {
                let i = i % n.min(d.len() + 1).max(1);
                let i = i.min(d.len());
                d.splice(i..i, bytes.iter().copied());
            }
            Mutation::Duplicate(i, len) => {
                if !d.is_empty() {
                    let i = i % d.len();
                    let end = (i + len % 512).min(d.len());
                    let slice = d[i..end].to_vec();
                    d.splice(end..end, slice);
                }
            }
        }
    }
    d
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, l)| Mutation::Duplicate(i, l)),
    ]
}

const CONTENT_TYPES: [&str; 8] = [
    "multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=\"b\"",
    "application/pkcs7-mime; smime-type=enveloped-data",
    "application/pkcs7-mime; smime-type=compressed-data",
    "application/x-pkcs7-mime",
    "multipart/report; report-type=disposition-notification; boundary=b",
    "text/plain",
    "multipart/signed",
    "",
];

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 192,
        failure_persistence: None,
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_messages_never_panic(seed in 0usize..8, muts in prop::collection::vec(mutation(), 1..6), header_mut in any::<bool>()) {
        let (headers, body) = &seeds()[seed % seeds().len()];
        let body = apply(body, &muts);
        let mut headers = headers.clone();
        if header_mut {
            let ct = headers.get("Content-Type").unwrap_or("").to_string();
            let mutated = apply(ct.as_bytes(), &muts[..1]);
            headers.set("Content-Type", String::from_utf8_lossy(&mutated).replace(['\r', '\n'], ""));
        }
        exercise(&headers, &body);
    }

    #[test]
    fn garbage_bodies_never_panic(ct in 0usize..CONTENT_TYPES.len(), body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let headers: HeaderMap = [("AS2-From", "ALPHA"), ("AS2-To", "BETA"), ("Message-ID", "<g@a>"), ("Content-Type", CONTENT_TYPES[ct])]
            .into_iter().collect();
        exercise(&headers, &body);
        // The same bytes with multipart framing around them.
        let mut framed = b"--b\r\n".to_vec();
        framed.extend_from_slice(&body);
        framed.extend_from_slice(b"\r\n--b\r\nContent-Type: application/pkcs7-signature\r\n\r\n");
        framed.extend_from_slice(&body);
        framed.extend_from_slice(b"\r\n--b--");
        exercise(&headers, &framed);
    }

    #[test]
    fn header_values_never_panic(s in "\\PC{0,200}", raw in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = mime::ContentType::parse(&s);
        let _ = mime::Params::parse(&s);
        let _ = mime::decode_encoded_words(&s);
        let _ = as2::filename::sanitize_filename(&s).map(|f| assert!(!f.contains('/') && f.len() <= 200));
        let _ = as2::mic::Mic::parse_field(&s);
        let _ = Disposition::parse_field(&s);
        let _ = as2::UnixTime::parse(&s);
        let _ = as2::algorithm::DigestAlgorithm::from_name(&s);
        let _ = mime::parse_header_block(&raw, &Limits::default());
        let _ = mime::split_multipart(&raw, "b", &Limits::default());
        let _ = mime::decode_base64(&raw);
        let _ = as2::keys::load_certificates(&raw);
        let _ = as2::keys::Keystore::load(&raw, "x", None);
        let mut h = HeaderMap::new();
        h.append("Disposition-Notification-Options", s.clone());
        h.append("Disposition-Notification-To", "x");
        let _ = MdnRequest::from_headers(&h).map(|r| r.signing_digest());
    }
}
