//! Interoperability with the `openssl cms` command line: it decrypts and verifies what we build,
//! and we open what it builds (every cipher and key transport it offers, every digest, PKCS#1 v1.5
//! and PSS signatures, text-mode signatures that only verify after CRLF canonicalisation), with the
//! MIC checked against `openssl dgst`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use as2::algorithm::{ContentEncryption, DigestAlgorithm, KeyTransport, SignatureScheme};
use as2::envelope::Envelope;
use as2::message::{self, Encryption, MessageOptions, Payload, Signing};
use as2::mime::canonicalize;
use as2::receive::Policy;
use as2::HeaderMap;
use as2::Layer;
use common::*;

fn openssl(args: &[&str]) -> Vec<u8> {
    run_bounded(Command::new("openssl").args(args), Duration::from_secs(60)).stdout
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn digest_flag(d: DigestAlgorithm) -> &'static str {
    match d {
        DigestAlgorithm::Sha1 => "sha1",
        DigestAlgorithm::Sha224 => "sha224",
        DigestAlgorithm::Sha256 => "sha256",
        DigestAlgorithm::Sha384 => "sha384",
        DigestAlgorithm::Sha512 => "sha512",
        DigestAlgorithm::Md5 => "md5",
    }
}

#[test]
fn openssl_decrypts_and_verifies_what_we_build() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (alpha_crt, _) = write_pem(dir, "alpha", alpha());
    let (beta_crt, beta_key) = write_pem(dir, "beta", beta());
    // OpenSSL's S/MIME reader is byte-exact in binary mode only with -crlfeol (otherwise the CR of
    // the CRLF before each delimiter stays in the part), and it reads lines as C strings, so a NUL
    // ends a line early: the payload has bare CRs and LFs and high bytes, but no NULs. Content with
    // NULs is checked through the detached signature in the next test.
    let payload: Vec<u8> = awkward_payload(20_000)
        .into_iter()
        .map(|b| if b == 0 { b'0' } else { b })
        .collect();
    let mut n = 0;
    for sign in [
        None,
        Some(DigestAlgorithm::Sha1),
        Some(DigestAlgorithm::Sha256),
        Some(DigestAlgorithm::Sha512),
    ] {
        for scheme in [SignatureScheme::RsaPkcs1v15, SignatureScheme::RsaPss] {
            for enc in [
                None,
                Some(ContentEncryption::TripleDesCbc),
                Some(ContentEncryption::Aes192Cbc),
                Some(ContentEncryption::Aes256Gcm),
            ] {
                for transport in [KeyTransport::RsaPkcs1v15, KeyTransport::RsaOaep] {
                    if sign.is_none() && scheme == SignatureScheme::RsaPss
                        || enc.is_none() && transport == KeyTransport::RsaOaep
                        || sign.is_none() && enc.is_none()
                    {
                        continue;
                    }
                    n += 1;
                    let what = format!("sign={sign:?}/{scheme:?} enc={enc:?}/{transport:?}");
                    let mut opts = MessageOptions::new("ALPHA", "BETA");
                    if let Some(d) = sign {
                        let mut s = Signing::new(alpha().clone());
                        s.digest = d;
                        s.scheme = scheme;
                        opts.signing = Some(s);
                    }
                    if let Some(c) = enc {
                        let mut e = Encryption::new(beta().certificate.clone());
                        e.cipher = c;
                        e.key_transport = transport;
                        opts.encryption = Some(e);
                    }
                    let msg =
                        message::build(&opts, &Payload::new(&payload, Some("f.bin")), "<t@x>", NOW)
                            .unwrap();
                    // The top-level entity as OpenSSL's S/MIME reader wants it: MIME headers, blank line, body.
                    let mut entity = HeaderMap::new();
                    entity.append("Content-Type", msg.headers.get("Content-Type").unwrap());
                    let mut top = entity.to_bytes();
                    top.extend_from_slice(b"\r\n");
                    top.extend_from_slice(&msg.body);
                    let signed_entity = if enc.is_some() {
                        let body = dir.join(format!("{n}.der"));
                        std::fs::write(&body, &msg.body).unwrap();
                        openssl(&[
                            "cms",
                            "-decrypt",
                            "-inform",
                            "DER",
                            "-in",
                            p(&body),
                            "-inkey",
                            p(&beta_key),
                            "-recip",
                            p(&beta_crt),
                            "-binary",
                        ])
                    } else {
                        top
                    };
                    let content = if sign.is_some() {
                        let f = dir.join(format!("{n}.smime"));
                        std::fs::write(&f, &signed_entity).unwrap();
                        openssl(&[
                            "cms",
                            "-verify",
                            "-in",
                            p(&f),
                            "-CAfile",
                            p(&alpha_crt),
                            "-purpose",
                            "any",
                            "-binary",
                            "-crlfeol",
                        ])
                    } else {
                        signed_entity
                    };
                    // What is left is the payload entity: headers, blank line, our exact bytes.
                    assert!(
                        content.ends_with(&payload),
                        "{what}: openssl's output does not end with the payload"
                    );
                    let (h, body_at) =
                        as2::mime::parse_header_block(&content, &Default::default()).unwrap();
                    assert_eq!(
                        h.get("Content-Disposition"),
                        Some("attachment; filename=f.bin"),
                        "{what}"
                    );
                    assert_same_bytes(&content[body_at..], &payload, &what);
                }
            }
        }
    }
    assert!(n >= 20);
}

#[test]
fn openssl_verifies_detached_signatures_over_binary_content() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (alpha_crt, _) = write_pem(dir, "alpha", alpha());
    let payload = awkward_payload(50_000);
    for (digest, scheme) in [
        (DigestAlgorithm::Sha256, SignatureScheme::RsaPkcs1v15),
        (DigestAlgorithm::Sha384, SignatureScheme::RsaPss),
    ] {
        let sig = as2::cms::sign_detached(&payload, alpha(), digest, scheme).unwrap();
        let (sig_path, content_path) = (dir.join("sig.der"), dir.join("content.bin"));
        std::fs::write(&sig_path, sig).unwrap();
        std::fs::write(&content_path, &payload).unwrap();
        let out = openssl(&[
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            p(&sig_path),
            "-content",
            p(&content_path),
            "-binary",
            "-CAfile",
            p(&alpha_crt),
            "-purpose",
            "any",
        ]);
        assert_same_bytes(&out, &payload, "openssl -verify -content");
        let printed = String::from_utf8(openssl(&[
            "cms",
            "-cmsout",
            "-print",
            "-inform",
            "DER",
            "-in",
            p(&sig_path),
        ]))
        .unwrap();
        assert!(
            printed.contains(digest_flag(digest))
                || printed.contains(&digest.to_string().replace('-', "")),
            "{printed}"
        );
        if scheme == SignatureScheme::RsaPss {
            assert!(printed.contains("rsassaPss"), "{printed}");
        }
    }
}

/// Splits OpenSSL's S/MIME output (MIME-Version and Content-Type lines, blank line, body).
fn smime_to_http(smime: &[u8]) -> (HeaderMap, Vec<u8>) {
    let (h, at) = as2::mime::parse_header_block(smime, &Default::default()).unwrap();
    let mut headers: HeaderMap = [
        ("AS2-Version", "1.2"),
        ("AS2-From", "ALPHA"),
        ("AS2-To", "BETA"),
        ("Message-ID", "<openssl-1@alpha.example>"),
    ]
    .into_iter()
    .collect();
    for f in h.iter() {
        headers.append(f.name.clone(), f.value.clone());
    }
    (headers, smime[at..].to_vec())
}

#[test]
fn we_open_what_openssl_builds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (alpha_crt, alpha_key) = write_pem(dir, "alpha", alpha());
    let (beta_crt, _) = write_pem(dir, "beta", beta());
    let payload = crlf_payload(30_000);
    let mut entity = b"Content-Type: application/edi-x12\r\nContent-Disposition: attachment; filename=\"po.x12\"\r\n\r\n".to_vec();
    entity.extend_from_slice(&payload);
    let entity_path = dir.join("entity.mime");
    std::fs::write(&entity_path, &entity).unwrap();
    let keys = keys_for(beta(), alpha());
    let mut n = 0;
    let digests = [
        DigestAlgorithm::Sha1,
        DigestAlgorithm::Sha224,
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha384,
        DigestAlgorithm::Sha512,
    ];
    let mut signs: Vec<Option<(DigestAlgorithm, bool)>> = vec![None];
    for d in digests {
        signs.push(Some((d, false)));
        signs.push(Some((d, true)));
    }
    let mut encs: Vec<Option<(ContentEncryption, bool)>> = vec![None];
    for c in ContentEncryption::ALL {
        encs.push(Some((c, false)));
        encs.push(Some((c, true)));
    }
    for (i, sign) in signs.iter().enumerate() {
        for (j, enc) in encs.iter().enumerate() {
            // Every signature option with every cipher would be 143 openssl runs; a Latin square
            // of them still pairs each digest/scheme with several ciphers and covers each once.
            if sign.is_some() && enc.is_some() && (i + j) % 4 != 0 {
                continue;
            }
            n += 1;
            let what = format!("sign={sign:?} enc={enc:?}");
            let signed = dir.join(format!("{n}.signed"));
            let expected_mic = match sign {
                Some((d, pss)) => {
                    let mut args = vec![
                        "cms",
                        "-sign",
                        "-in",
                        p(&entity_path),
                        "-signer",
                        p(&alpha_crt),
                        "-inkey",
                        p(&alpha_key),
                        "-md",
                        digest_flag(*d),
                        "-binary",
                        "-out",
                        p(&signed),
                    ];
                    if *pss {
                        args.extend(["-keyopt", "rsa_padding_mode:pss"]);
                    }
                    openssl(&args);
                    Some(as2::mic::Mic::compute(*d, &entity).unwrap())
                }
                None => {
                    std::fs::copy(&entity_path, &signed).unwrap();
                    None
                }
            };
            let (headers, body) = match enc {
                Some((c, oaep)) => {
                    let der = dir.join(format!("{n}.der"));
                    let mut args = vec![
                        "cms",
                        "-encrypt",
                        "-in",
                        p(&signed),
                        cipher_flag(*c),
                        "-binary",
                        "-outform",
                        "DER",
                        "-out",
                        p(&der),
                        "-recip",
                        p(&beta_crt),
                    ];
                    if *oaep {
                        args.extend(["-keyopt", "rsa_padding_mode:oaep"]);
                    }
                    openssl(&args);
                    let smime_type = if c.is_authenticated() {
                        "authEnveloped-data"
                    } else {
                        "enveloped-data"
                    };
                    let ct =
                        format!("application/pkcs7-mime; smime-type={smime_type}; name=smime.p7m");
                    let mut h = smime_to_http(b"\r\n").0;
                    h.append("Content-Type", ct);
                    (h, std::fs::read(&der).unwrap())
                }
                None => smime_to_http(&std::fs::read(&signed).unwrap()),
            };
            let env = Envelope::from_headers(&headers).unwrap();
            let got = open_both(&env, &headers, &body, &keys, &Policy::default(), NOW)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_same_bytes(&got.payload, &payload, &what);
            assert_eq!(got.filename.as_deref(), Some("po.x12"), "{what}");
            if let Some(mic) = expected_mic {
                assert_eq!(got.mic, mic, "{what}: MIC");
            }
            match (enc, got.layers.first()) {
                (
                    Some((c, oaep)),
                    Some(Layer::Encrypted {
                        cipher,
                        key_transport,
                    }),
                ) => {
                    assert_eq!(cipher, c, "{what}");
                    let t = if *oaep {
                        KeyTransport::RsaOaep
                    } else {
                        KeyTransport::RsaPkcs1v15
                    };
                    assert_eq!(*key_transport, Some(t), "{what}");
                }
                (None, _) => assert!(!got.is_encrypted()),
                (Some(_), other) => panic!("{what}: first layer {other:?}"),
            }
            if let Some((d, pss)) = sign {
                let l = got
                    .layers
                    .iter()
                    .find(|l| matches!(l, Layer::Signed { .. }))
                    .unwrap();
                let scheme = if *pss {
                    SignatureScheme::RsaPss
                } else {
                    SignatureScheme::RsaPkcs1v15
                };
                assert_eq!(
                    *l,
                    Layer::Signed {
                        digest: *d,
                        scheme: Some(scheme),
                        signer: "CN=ALPHA".into()
                    },
                    "{what}"
                );
            }
        }
    }
    assert!(n > 30, "{n}");
}

#[test]
fn text_mode_signature_verifies_after_canonicalisation() {
    // OpenSSL without -binary signs the CRLF-canonical form of text. A sender or transport that
    // then writes bare LFs (as many Unix tools do) leaves a signature that only verifies over the
    // canonical form: the first attempt (as received) fails, the second verifies.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (alpha_crt, alpha_key) = write_pem(dir, "alpha", alpha());
    let entity = b"Content-Type: application/edi-x12\nContent-Transfer-Encoding: 7bit\n\nISA*00~\nGS*PO~\nIEA*1~\n";
    let entity_path = dir.join("entity.mime");
    std::fs::write(&entity_path, entity).unwrap();
    let signed = dir.join("signed");
    openssl(&[
        "cms",
        "-sign",
        "-in",
        p(&entity_path),
        "-signer",
        p(&alpha_crt),
        "-inkey",
        p(&alpha_key),
        "-md",
        "sha256",
        "-out",
        p(&signed),
    ]);
    let lf_only: Vec<u8> = std::fs::read(&signed)
        .unwrap()
        .into_iter()
        .filter(|&b| b != b'\r')
        .collect();
    let (headers, body) = smime_to_http(&lf_only);
    assert!(
        body.windows(entity.len()).any(|w| w == entity),
        "the LF form travels"
    );
    let env = Envelope::from_headers(&headers).unwrap();
    let got = open_both(
        &env,
        &headers,
        &body,
        &keys_for(beta(), alpha()),
        &Policy::default(),
        NOW,
    )
    .unwrap();
    assert_eq!(got.payload, b"ISA*00~\nGS*PO~\nIEA*1~\n");
    let want = openssl_dgst_sha256(dir, &canonicalize(entity));
    assert_eq!(
        got.mic.value, want,
        "MIC is over the canonical form that verified"
    );
}

fn openssl_dgst_sha256(dir: &Path, data: &[u8]) -> String {
    let f = dir.join("dgst.in");
    std::fs::write(&f, data).unwrap();
    let out = openssl(&["dgst", "-sha256", "-binary", p(&f)]);
    let f2 = dir.join("dgst.out");
    std::fs::write(&f2, out).unwrap();
    String::from_utf8(openssl(&["base64", "-A", "-in", p(&f2)]))
        .unwrap()
        .trim()
        .to_string()
}
