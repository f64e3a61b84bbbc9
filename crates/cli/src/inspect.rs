//! `mftg inspect`: what a captured message or MDN contains, and whether it verifies.

use std::path::PathBuf;
use std::process::ExitCode;

use as2::algorithm::NameStyle;
use as2::cms;
use as2::envelope::Envelope;
use as2::keys::{fingerprint, subject_name};
use as2::mdn::{self, MdnSignature, MicCheck};
use as2::mic::Mic;
use as2::mime::ContentType;
use as2::receive::{self, Policy, StaticKeys};
use as2::{Error, UnixTime};

use crate::{capture, keyargs};

#[derive(clap::Args)]
pub struct Args {
    /// The capture: raw HTTP headers, a blank line, then the body. With --headers, the body alone.
    pub capture: PathBuf,
    /// The HTTP headers, when they are stored apart from the body (AS2/headers/...).
    #[arg(long)]
    pub headers: Option<PathBuf>,
    /// Our private key (PEM or DER), to decrypt.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Our certificate (PEM or DER), to go with --key (not needed when the --key PEM holds it).
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Environment variable holding the --key passphrase.
    #[arg(long, value_name = "VAR")]
    pub key_passphrase_env: Option<String>,
    /// A keystore (JKS or PKCS#12) holding our private key(s).
    #[arg(long)]
    pub keystore: Option<PathBuf>,
    /// Alias in --keystore (default: every key entry).
    #[arg(long)]
    pub alias: Option<String>,
    /// Environment variable holding the keystore password.
    #[arg(long, value_name = "VAR")]
    pub keystore_password_env: Option<String>,
    /// The partner's certificate (PEM or DER), to verify signatures. Repeatable.
    #[arg(long = "partner-cert")]
    pub partner_certs: Vec<PathBuf>,
    /// Check certificate validity at this time (2026-11-28T05:47:03Z or Unix seconds) instead of now.
    #[arg(long)]
    pub at: Option<String>,
    /// For an MDN: the MIC the sender expected ("<base64>, sha-256").
    #[arg(long)]
    pub expect_mic: Option<String>,
}

pub fn run(args: Args) -> Result<ExitCode, String> {
    let data = match &args.headers {
        Some(h) => {
            let mut d = keyargs::read(h)?;
            d.extend_from_slice(b"\r\n");
            d.extend_from_slice(&keyargs::read(&args.capture)?);
            d
        }
        None => keyargs::read(&args.capture)?,
    };
    let (headers, body) = capture::parse(&data)?;
    let at = match &args.at {
        Some(s) => UnixTime::parse(s).ok_or_else(|| format!("cannot read --at {s:?}"))?,
        None => UnixTime::from_system(std::time::SystemTime::now()),
    };
    let certs = keyargs::certificates(&args.partner_certs)?;
    let identities = keyargs::identity(
        &args.key,
        &args.cert,
        &args.key_passphrase_env,
        &args.keystore,
        &args.alias,
        &args.keystore_password_env,
    )?;
    if mdn::is_mdn(&headers, body) {
        return inspect_mdn(&headers, body, &certs, at, &args.expect_mic);
    }
    inspect_message(&headers, body, identities, certs, at)
}

fn line(label: &str, value: impl std::fmt::Display) {
    println!("{label:<18} {value}");
}

fn inspect_message(
    headers: &as2::HeaderMap,
    body: &[u8],
    identities: Vec<as2::keys::Identity>,
    certs: Vec<openssl::x509::X509>,
    at: UnixTime,
) -> Result<ExitCode, String> {
    println!("AS2 message ({} bytes)", body.len());
    let env = match Envelope::from_headers(headers) {
        Ok(e) => e,
        Err(e) => {
            line("error", &e);
            return Ok(ExitCode::from(1));
        }
    };
    line("from", &env.from);
    line("to", &env.to);
    line("message-id", &env.message_id);
    if let Some(s) = &env.subject {
        line("subject", s);
    }
    line(
        "content-type",
        headers.get("Content-Type").unwrap_or("(none)"),
    );
    match &env.mdn {
        None => line("receipt", "none requested"),
        Some(r) => {
            let mode = match &r.async_url {
                Some(u) => format!("async to {u}"),
                None => "sync".into(),
            };
            let signed = match &r.signed {
                Some(s) => format!("signed ({})", s.micalgs.join(", ")),
                None => "unsigned".into(),
            };
            line("receipt", format!("{mode}, {signed}, to {}", r.return_to));
        }
    }
    let ct = ContentType::parse(headers.get("Content-Type").unwrap_or(""));
    if ct.is_pkcs7_mime() && identities.is_empty() {
        if let Ok(info) = cms::inspect_enveloped(body) {
            line(
                "layer 1",
                format!(
                    "encrypted ({}), {} recipient(s); give --key/--cert or --keystore to open",
                    info.cipher
                        .map(|c| c.to_string())
                        .unwrap_or(info.cipher_oid),
                    info.recipients.len()
                ),
            );
            return Ok(ExitCode::from(1));
        }
    }
    let keys = StaticKeys {
        identities,
        partner_certificates: certs.clone(),
    };
    let strict = Policy {
        check_certificate_validity: true,
        ..Policy::default()
    };
    let (result, verified) = match receive::open(&env, headers, body, &keys, &strict, at) {
        Ok(r) => (r, true),
        Err(e) if is_signature_error(&e) || certs.is_empty() => {
            line("verification", format!("FAILED: {e}"));
            line("disposition", e.disposition());
            let lenient = Policy {
                skip_signature_verification: true,
                ..Policy::default()
            };
            match receive::open(&env, headers, body, &keys, &lenient, at) {
                Ok(r) => (r, false),
                Err(e2) => {
                    line("error", &e2);
                    return Ok(ExitCode::from(1));
                }
            }
        }
        Err(e) => {
            line("error", &e);
            line("disposition", e.disposition());
            return Ok(ExitCode::from(1));
        }
    };
    for (i, l) in result.layers.iter().enumerate() {
        line(&format!("layer {}", i + 1), l);
    }
    if result.layers.is_empty() {
        line("layers", "none (plain)");
    }
    if let Some(s) = &result.signer {
        line("signer", subject_name(s));
        line("signer sha256", fingerprint(s));
        line(
            "signer valid",
            format!("{} to {}", s.not_before(), s.not_after()),
        );
    }
    line("payload type", &result.content_type);
    line(
        "filename",
        match (&result.filename, &result.raw_filename) {
            (Some(f), Some(raw)) if f != raw => format!("{f} (sent as {raw:?})"),
            (Some(f), _) => f.clone(),
            _ => "(none)".into(),
        },
    );
    line("payload size", format!("{} bytes", result.payload.len()));
    line("mic", result.mic.to_field(NameStyle::Hyphenated));
    if verified {
        line(
            "verification",
            if result.is_signed() {
                "signature verified"
            } else {
                "not signed"
            },
        );
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(1))
    }
}

fn is_signature_error(e: &Error) -> bool {
    matches!(
        e,
        Error::UnknownSigner(_)
            | Error::AuthenticationFailed(_)
            | Error::IntegrityCheckFailed
            | Error::CertificateNotValid { .. }
    )
}

fn inspect_mdn(
    headers: &as2::HeaderMap,
    body: &[u8],
    certs: &[openssl::x509::X509],
    at: UnixTime,
    expect_mic: &Option<String>,
) -> Result<ExitCode, String> {
    println!("MDN ({} bytes)", body.len());
    let limits = Default::default();
    let checked = (!certs.is_empty()).then_some(certs);
    let (m, failure) = match mdn::parse(headers, body, checked, Some(at), &limits) {
        Ok(m) => (m, None),
        Err(e) if checked.is_some() => match mdn::parse(headers, body, None, None, &limits) {
            Ok(m) => (m, Some(e)),
            Err(e2) => {
                line("error", e2);
                return Ok(ExitCode::from(1));
            }
        },
        Err(e) => {
            line("error", e);
            return Ok(ExitCode::from(1));
        }
    };
    if let Some(f) = &m.from {
        line("from", f);
    }
    if let Some(t) = &m.to {
        line("to", t);
    }
    if let Some(id) = &m.message_id {
        line("message-id", id);
    }
    line("original id", &m.original_message_id);
    line("disposition", &m.disposition);
    if let Some(ua) = &m.reporting_ua {
        line("reporting-ua", ua);
    }
    match &m.received_mic {
        Some(mic) => line("received mic", mic.to_field(NameStyle::Hyphenated)),
        None => line("received mic", "(none)"),
    }
    if !m.text.is_empty() {
        line("text", m.text.lines().next().unwrap_or(""));
    }
    let mut ok = failure.is_none();
    match (&m.signature, &failure) {
        (_, Some(e)) => line("signature", format!("FAILED: {e}")),
        (MdnSignature::Unsigned, _) => line("signature", "unsigned"),
        (MdnSignature::NotChecked, _) => {
            line("signature", "signed, not checked (give --partner-cert)")
        }
        (MdnSignature::Verified(v), _) => line(
            "signature",
            format!("verified ({}), by {}", v.digest, subject_name(&v.signer)),
        ),
    }
    let mic_check = match expect_mic {
        Some(expected) => {
            let e = Mic::parse_field(expected).map_err(|e| format!("--expect-mic: {e}"))?;
            Some(m.check_mic(&[e]))
        }
        None => None,
    };
    match &mic_check {
        None => {}
        Some(MicCheck::Match) => line("mic check", "matches"),
        Some(MicCheck::Missing) => {
            ok = false;
            line("mic check", "no MIC in the receipt")
        }
        Some(MicCheck::Mismatch { .. }) => {
            ok = false;
            line("mic check", "MISMATCH")
        }
    }
    // What the sender would record: the gateway's own rule.
    let signed = matches!(m.signature, MdnSignature::Verified(_));
    let (status, detail) = gateway::receipt::verdict(&gateway::receipt::Evidence {
        disposition: &m.disposition,
        mic: mic_check.as_ref(),
        signed,
        // What was asked of the receipt is not in it: judge it as it came.
        asked_signed: signed,
        message_signed: mic_check.is_some(),
        signer_not_valid: None,
    });
    line("verdict", format!("{status}: {detail}"));
    Ok(if ok && status != gateway::model::Status::Failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
