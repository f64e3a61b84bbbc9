//! `mftg demo`: two stations on this machine exchange a signed, compressed, encrypted message and
//! a signed receipt, using nothing but the AS2 engine. Optionally leaves the captures and keys
//! behind for `mftg inspect`.

use std::path::PathBuf;
use std::process::ExitCode;

use as2::algorithm::{DigestAlgorithm, NameStyle};
use as2::keys::Identity;
use as2::mdn::{self, MdnOptions, MdnRequest, MicCheck};
use as2::message::{self, Compression, Encryption, MessageOptions, Payload, Signing};
use as2::receive::{self, Envelope, Policy, StaticKeys};
use as2::{Disposition, UnixTime};

use crate::capture;

#[derive(clap::Args)]
pub struct Args {
    /// Write the message, the receipt and both stations' keys and certificates here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

const ORDER: &[u8] = b"ISA*00*          *00*          *ZZ*ALPHA          *ZZ*BETA           *261128*0547*U*00401*000000001*0*P*>~\n\
GS*PO*ALPHA*BETA*20261128*0547*1*X*004010~\nST*850*0001~\nBEG*00*SA*PO-1001**20261128~\n\
PO1*1*10*EA*9.95**BP*WIDGET-1~\nCTT*1~\nSE*6*0001~\nGE*1*1~\nIEA*1*000000001~\n";

pub fn run(args: Args) -> Result<ExitCode, String> {
    let now = UnixTime::from_system(std::time::SystemTime::now());
    let e = |e: as2::Error| e.to_string();
    println!("Generating throw-away RSA keys for stations ALPHA and BETA...");
    let alpha = Identity::generate_self_signed("ALPHA", 2048, now, 30).map_err(e)?;
    let beta = Identity::generate_self_signed("BETA", 2048, now, 30).map_err(e)?;

    let mut opts = MessageOptions::new("ALPHA", "BETA");
    opts.subject = "Purchase order PO-1001".into();
    opts.compression = Compression::BeforeSigning;
    opts.signing = Some(Signing::new(alpha.clone()));
    opts.encryption = Some(Encryption::new(beta.certificate.clone()));
    opts.mdn = Some(MdnRequest::sync(
        "as2@alpha.example",
        &[DigestAlgorithm::Sha256],
        NameStyle::Hyphenated,
    ));
    let payload = Payload {
        data: ORDER,
        filename: Some("po-1001.x12"),
        content_type: "application/edi-x12",
    };
    let id = message::new_message_id("alpha.example", now);
    let msg = message::build(&opts, &payload, &id, now).map_err(e)?;
    println!(
        "ALPHA -> BETA  {} ({} bytes on the wire)",
        msg.message_id,
        msg.body.len()
    );
    for l in &msg.layers {
        println!("               {l}");
    }
    println!("               MIC {}", msg.mic);

    let env = Envelope::from_headers(&msg.headers).map_err(e)?;
    let keys = StaticKeys {
        identities: vec![beta.clone()],
        partner_certificates: vec![alpha.certificate.clone()],
    };
    let policy = Policy {
        require_signature: true,
        require_encryption: true,
        check_certificate_validity: true,
        ..Policy::default()
    };
    let (disposition, mic) = match receive::open(&env, &msg.headers, &msg.body, &keys, &policy, now)
    {
        Ok(r) => {
            println!(
                "BETA received  {} ({} bytes, {}), MIC {}",
                r.filename.as_deref().unwrap_or("(no name)"),
                r.payload.len(),
                r.content_type,
                r.mic
            );
            if r.payload != ORDER {
                return Err("the payload changed in transit".into());
            }
            (Disposition::Processed, Some(r.mic))
        }
        Err(err) => {
            println!("BETA rejected the message: {err}");
            (err.disposition(), None)
        }
    };
    let mdn_opts = MdnOptions {
        signer: Some(beta.clone()),
        ..MdnOptions::default()
    };
    let mdn_id = message::new_message_id("beta.example", now);
    let receipt =
        mdn::build(&env, &disposition, mic.as_ref(), &mdn_opts, &mdn_id, now).map_err(e)?;
    let parsed = mdn::parse(
        &receipt.headers,
        &receipt.body,
        Some(std::slice::from_ref(&beta.certificate)),
        Some(now),
        &Default::default(),
    )
    .map_err(e)?;
    let mic_check = parsed.check_mic(&msg.expected_mics());
    println!(
        "BETA -> ALPHA  signed MDN {}: {}, MIC {}",
        receipt.message_id,
        parsed.disposition,
        match mic_check {
            MicCheck::Match => "matches",
            MicCheck::Missing => "missing",
            MicCheck::Mismatch { .. } => "DOES NOT MATCH",
        }
    );

    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let write = |name: &str, data: &[u8]| {
            std::fs::write(dir.join(name), data).map_err(|e| format!("{name}: {e}"))
        };
        write("message.as2", &capture::write(&msg.headers, &msg.body))?;
        write("mdn.as2", &capture::write(&receipt.headers, &receipt.body))?;
        for (name, id) in [("alpha", &alpha), ("beta", &beta)] {
            write(
                &format!("{name}.crt"),
                &id.certificate.to_pem().map_err(|e| e.to_string())?,
            )?;
            write(
                &format!("{name}.key"),
                &id.private_key
                    .private_key_to_pem_pkcs8()
                    .map_err(|e| e.to_string())?,
            )?;
        }
        println!(
            "Wrote message.as2, mdn.as2 and both stations' keys to {}",
            dir.display()
        );
        println!(
            "Try: mftg inspect {0}/message.as2 --key {0}/beta.key --cert {0}/beta.crt --partner-cert {0}/alpha.crt",
            dir.display()
        );
    }
    Ok(
        if disposition == Disposition::Processed && mic_check == MicCheck::Match {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}
