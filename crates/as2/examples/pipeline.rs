//! One AS2 operation per process, for `make bench` (tests/bench/run.py), which measures wall time
//! and peak RSS of each run side by side with `openssl cms` and pyas2lib.
//!
//! ```text
//! pipeline build <payload> <out> <signer.crt> <signer.key> <recipient.crt> [plain|compress]
//! pipeline open  <message> <out> <recipient.crt> <recipient.key> <signer.crt>
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark driver: failing loudly is right

use as2::envelope::Envelope;
use as2::keys::{load_certificates, Identity};
use as2::message::{self, Compression, Encryption, MessageOptions, Payload, Signing};
use as2::receive::{self, Policy, StaticKeys};
use as2::UnixTime;

fn read(p: &str) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let now = UnixTime::from_system(std::time::SystemTime::now());
    match a.get(1).map(String::as_str) {
        Some("build") => {
            let payload = read(&a[2]);
            let signer = Identity::from_pem_or_der(&read(&a[4]), &read(&a[5]), None).unwrap();
            let recipient = load_certificates(&read(&a[6])).unwrap().remove(0);
            let mut opts = MessageOptions::new("ALPHA", "BETA");
            if a.get(7).map(String::as_str) != Some("plain") {
                opts.compression = Compression::BeforeSigning;
            }
            opts.signing = Some(Signing::new(signer));
            opts.encryption = Some(Encryption::new(recipient));
            let id = as2::envelope::new_message_id("bench.example", now);
            let m = message::build(&opts, &Payload::new(&payload, Some("bench.edi")), &id, now)
                .unwrap();
            drop(payload);
            let mut out = m.headers.to_bytes();
            out.extend_from_slice(b"\r\n");
            let mut f = std::io::BufWriter::new(std::fs::File::create(&a[3]).unwrap());
            std::io::Write::write_all(&mut f, &out).unwrap();
            std::io::Write::write_all(&mut f, &m.body).unwrap();
        }
        Some("open") => {
            let data = read(&a[2]);
            let (headers, at) = as2::mime::parse_header_block(&data, &Default::default()).unwrap();
            let keys = StaticKeys {
                identities: vec![
                    Identity::from_pem_or_der(&read(&a[4]), &read(&a[5]), None).unwrap()
                ],
                partner_certificates: load_certificates(&read(&a[6])).unwrap(),
            };
            let env = Envelope::from_headers(&headers).unwrap();
            let policy = Policy {
                require_signature: true,
                require_encryption: true,
                ..Policy::default()
            };
            let r = receive::open(&env, &headers, &data[at..], &keys, &policy, now).unwrap();
            drop(data);
            std::fs::write(&a[3], &r.payload).unwrap();
        }
        _ => {
            eprintln!("usage: pipeline build|open ...");
            std::process::exit(2);
        }
    }
}
