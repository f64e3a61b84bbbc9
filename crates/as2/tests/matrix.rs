//! Round trips over the Drummond-style matrix: {plain, encrypted, signed, signed+encrypted} x
//! {no receipt, unsigned receipt, signed receipt} x {uncompressed, compressed before signing,
//! compressed after signing}, sync and async, every cipher, key transport, digest and signature scheme.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use as2::algorithm::{
    ContentEncryption, DigestAlgorithm, KeyTransport, NameStyle, SignatureScheme,
};
use as2::envelope::Envelope;
use as2::envelope::MdnRequest;
use as2::keys::Identity;
use as2::mdn::{self, MdnOptions, MdnSignature, MicCheck};
use as2::message::{self, Compression, Encryption, MessageOptions, Payload, Signing};
use as2::receive::Policy;
use as2::Disposition;
use as2::Layer;
use common::*;

#[derive(Debug, Clone, Copy)]
enum Receipt {
    None,
    Unsigned,
    Signed,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    sign: Option<(DigestAlgorithm, SignatureScheme)>,
    encrypt: Option<(ContentEncryption, KeyTransport)>,
    receipt: Receipt,
    asynchronous: bool,
    compression: Compression,
    base64: bool,
}

fn run(case: Case, sender: &Identity, receiver: &Identity, payload: &[u8]) {
    let mut opts = MessageOptions::new(
        as2::keys::subject_name(&sender.certificate).trim_start_matches("CN="),
        as2::keys::subject_name(&receiver.certificate).trim_start_matches("CN="),
    );
    opts.compression = case.compression;
    if case.base64 {
        opts.body_encoding = message::BodyEncoding::Base64;
    }
    if let Some((digest, scheme)) = case.sign {
        let mut s = Signing::new(sender.clone());
        s.digest = digest;
        s.scheme = scheme;
        opts.signing = Some(s);
    }
    if let Some((cipher, transport)) = case.encrypt {
        let mut e = Encryption::new(receiver.certificate.clone());
        e.cipher = cipher;
        e.key_transport = transport;
        opts.encryption = Some(e);
    }
    let micalgs: &[DigestAlgorithm] = match case.receipt {
        Receipt::Signed => &[DigestAlgorithm::Sha512, DigestAlgorithm::Sha256],
        _ => &[],
    };
    opts.mdn = match (case.receipt, case.asynchronous) {
        (Receipt::None, _) => None,
        (_, false) => Some(MdnRequest::sync(
            "as2@alpha.example",
            micalgs,
            NameStyle::Hyphenated,
        )),
        (_, true) => Some(MdnRequest::asynchronous(
            "as2@alpha.example",
            "https://alpha.example/as2/mdn",
            micalgs,
            NameStyle::Hyphenated,
        )),
    };
    let id = as2::envelope::new_message_id("alpha.example", NOW);
    let out = message::build(&opts, &Payload::new(payload, Some("order 1.edi")), &id, NOW)
        .unwrap_or_else(|e| panic!("{case:?}: build: {e}"));

    // The receiver's side.
    let env =
        Envelope::from_headers(&out.headers).unwrap_or_else(|e| panic!("{case:?}: envelope: {e}"));
    assert_eq!(env.message_id, id);
    let policy = Policy {
        require_signature: case.sign.is_some(),
        require_encryption: case.encrypt.is_some(),
        check_certificate_validity: true,
        ..Policy::default()
    };
    let got = open_both(
        &env,
        &out.headers,
        &out.body,
        &keys_for(receiver, sender),
        &policy,
        NOW,
    )
    .unwrap_or_else(|e| panic!("{case:?}: open: {e}"));
    assert_eq!(got.payload, payload, "{case:?}: payload differs");
    assert_eq!(got.filename.as_deref(), Some("order 1.edi"));
    assert_eq!(got.layers.len(), out.layers.len(), "{case:?}");
    assert_eq!(got.is_signed(), case.sign.is_some());
    assert_eq!(got.is_encrypted(), case.encrypt.is_some());
    if let (Some((cipher, _)), Some(Layer::Encrypted { cipher: c, .. })) =
        (case.encrypt, got.layers.first())
    {
        assert_eq!(*c, cipher);
    }
    assert!(
        out.expected_mics().iter().any(|m| m.matches(&got.mic)),
        "{case:?}: receiver MIC {} not among sender's {:?}",
        got.mic,
        out.expected_mics()
    );

    // The receipt.
    let Some(request) = env.mdn.clone() else {
        return;
    };
    assert_eq!(request.async_url.is_some(), case.asynchronous);
    let mdn_opts = MdnOptions {
        signer: Some(receiver.clone()),
        ..MdnOptions::default()
    };
    let mdn_id = as2::envelope::new_message_id("beta.example", NOW);
    let receipt = mdn::build(
        &env,
        &Disposition::Processed,
        Some(&got.mic),
        &mdn_opts,
        &mdn_id,
        NOW,
    )
    .unwrap_or_else(|e| panic!("{case:?}: mdn build: {e}"));
    assert_eq!(receipt.signed, matches!(case.receipt, Receipt::Signed));
    assert!(mdn::is_mdn(&receipt.headers, &receipt.body));
    assert!(!mdn::is_mdn(&out.headers, &out.body));
    let parsed = mdn::parse(
        &receipt.headers,
        &receipt.body,
        Some(std::slice::from_ref(&receiver.certificate)),
        Some(NOW),
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("{case:?}: mdn parse: {e}"));
    assert_eq!(parsed.original_message_id, id);
    assert_eq!(parsed.disposition, Disposition::Processed);
    match (case.receipt, &parsed.signature) {
        (Receipt::Signed, MdnSignature::Verified(v)) => {
            assert_eq!(v.digest, DigestAlgorithm::Sha512)
        }
        (Receipt::Unsigned, MdnSignature::Unsigned) => {}
        (r, s) => panic!("{case:?}: receipt {r:?} came back as {s:?}"),
    }
    assert_eq!(
        parsed.check_mic(&out.expected_mics()),
        MicCheck::Match,
        "{case:?}"
    );
}

const RECEIPTS: [Receipt; 3] = [Receipt::None, Receipt::Unsigned, Receipt::Signed];
const COMPRESSIONS: [Compression; 3] = [
    Compression::None,
    Compression::BeforeSigning,
    Compression::AfterSigning,
];

fn sign_options() -> Vec<Option<(DigestAlgorithm, SignatureScheme)>> {
    let mut v = vec![None];
    for d in DigestAlgorithm::ALL.into_iter().filter(|d| d.can_sign()) {
        for s in [SignatureScheme::RsaPkcs1v15, SignatureScheme::RsaPss] {
            v.push(Some((d, s)));
        }
    }
    v
}

fn encrypt_options() -> Vec<Option<(ContentEncryption, KeyTransport)>> {
    let mut v = vec![None];
    for c in ContentEncryption::ALL {
        for t in [KeyTransport::RsaPkcs1v15, KeyTransport::RsaOaep] {
            v.push(Some((c, t)));
        }
    }
    v
}

#[test]
fn full_matrix_every_algorithm() {
    let payload = awkward_payload(3000);
    let mut n = 0;
    for sign in sign_options() {
        for encrypt in encrypt_options() {
            for receipt in RECEIPTS {
                for compression in COMPRESSIONS {
                    let case = Case {
                        sign,
                        encrypt,
                        receipt,
                        asynchronous: n % 2 == 1,
                        compression,
                        base64: n % 3 == 0,
                    };
                    run(case, alpha(), beta(), &payload);
                    n += 1;
                }
            }
        }
    }
    assert_eq!(n, 11 * 13 * 3 * 3);
}

#[test]
fn both_directions_default_algorithms() {
    let payload = b"UNB+UNOA:2+ALPHA+BETA+261128:0547+1'\nUNH+1+ORDERS:D:96A:UN'\n".to_vec();
    for (from, to) in [(alpha(), beta()), (beta(), alpha())] {
        for sign in [
            None,
            Some((DigestAlgorithm::Sha256, SignatureScheme::RsaPkcs1v15)),
        ] {
            for encrypt in [
                None,
                Some((ContentEncryption::Aes256Cbc, KeyTransport::RsaPkcs1v15)),
            ] {
                for receipt in RECEIPTS {
                    for compression in COMPRESSIONS {
                        for asynchronous in [false, true] {
                            run(
                                Case {
                                    sign,
                                    encrypt,
                                    receipt,
                                    asynchronous,
                                    compression,
                                    base64: false,
                                },
                                from,
                                to,
                                &payload,
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn empty_and_large_payloads() {
    let case = Case {
        sign: Some((DigestAlgorithm::Sha256, SignatureScheme::RsaPkcs1v15)),
        encrypt: Some((ContentEncryption::Aes128Gcm, KeyTransport::RsaPkcs1v15)),
        receipt: Receipt::Signed,
        asynchronous: false,
        compression: Compression::BeforeSigning,
        base64: false,
    };
    run(case, alpha(), beta(), b"");
    run(case, alpha(), beta(), &awkward_payload(3 * 1024 * 1024));
}
