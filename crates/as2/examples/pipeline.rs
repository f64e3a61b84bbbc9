//! One AS2 operation per process, for `make bench` (tests/bench/run.py), which measures wall time
//! and peak RSS of each run side by side with `openssl cms` and pyas2lib.
//!
//! ```text
//! pipeline build <payload> <out> <signer.crt> <signer.key> <recipient.crt> [plain|compress]
//! pipeline open  <message> <out> <recipient.crt> <recipient.key> <signer.crt>
//! pipeline build-stream <payload> <out> <signer.crt> <signer.key> <recipient.crt> [plain|compress]
//! pipeline open-stream  <message> <out> <recipient.crt> <recipient.key> <signer.crt>
//! pipeline build-many <n> <payload> <signer.crt> <signer.key> <recipient.crt>
//! pipeline build-set <n> <dir> <payload> <signer.crt> <signer.key> <recipient.crt>
//! ```
//!
//! `build-stream` and `open-stream` do the same work with the streaming engine, reading and
//! writing the files a MiB at a time.
//!
//! `build-set` writes `n` messages ALPHA -> BETA (headers, blank line, body; each its own
//! Message-ID, asking for a signed synchronous receipt) into `dir`, for the inbound throughput
//! benchmark to POST.
//!
//! `build-many` builds the payload `n` times in one process (sign, compress, encrypt, as the
//! gateways' default partnership does) and then opens the last message `n` times, and prints the
//! seconds of CPU each build and each open took: the engine's own cost per message, which the
//! throughput benchmark compares a gateway's CPU per message with; then builds the signed
//! receipt of that message `n` times and reads (checks) it `n` times, the receipt work each
//! side of an exchange does besides.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark driver: failing loudly is right

use as2::envelope::Envelope;
use as2::keys::{load_certificates, Identity};
use as2::message::{self, Compression, Encryption, MessageOptions, Payload, Signing};
use as2::receive::{self, Policy, StaticKeys};
use as2::UnixTime;

fn read(p: &str) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// ALPHA's options from `<signer.crt> <signer.key> <recipient.crt> [plain|compress]` at 4..8.
fn sender(a: &[String]) -> MessageOptions {
    let signer = Identity::from_pem_or_der(&read(&a[4]), &read(&a[5]), None).unwrap();
    let recipient = load_certificates(&read(&a[6])).unwrap().remove(0);
    let mut opts = MessageOptions::new("ALPHA", "BETA");
    if a.get(7).map(String::as_str) != Some("plain") {
        opts.compression = Compression::BeforeSigning;
    }
    opts.signing = Some(Signing::new(signer));
    opts.encryption = Some(Encryption::new(recipient));
    opts
}

/// BETA's keys and policy from `<recipient.crt> <recipient.key> <signer.crt>` at 4..7.
fn receiver(a: &[String]) -> (StaticKeys, Policy) {
    let keys = StaticKeys {
        identities: vec![Identity::from_pem_or_der(&read(&a[4]), &read(&a[5]), None).unwrap()],
        partner_certificates: load_certificates(&read(&a[6])).unwrap(),
    };
    let policy = Policy {
        require_signature: true,
        require_encryption: true,
        ..Policy::default()
    };
    (keys, policy)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let now = UnixTime::from_system(std::time::SystemTime::now());
    match a.get(1).map(String::as_str) {
        Some("build") => {
            let payload = read(&a[2]);
            let opts = sender(&a);
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
            let (keys, policy) = receiver(&a);
            let env = Envelope::from_headers(&headers).unwrap();
            let r = receive::open(&env, &headers, &data[at..], &keys, &policy, now).unwrap();
            drop(data);
            std::fs::write(&a[3], &r.payload).unwrap();
        }
        Some("build-stream") => {
            use std::io::{Read as _, Write as _};
            let opts = sender(&a);
            let id = as2::envelope::new_message_id("bench.example", now);
            let mut body = Vec::new();
            let (mut b, headers) = as2::message_stream::BuildStream::start(
                &opts,
                "application/octet-stream",
                Some("bench.edi"),
                &id,
                now,
                &mut body,
            )
            .unwrap();
            let mut f = std::io::BufWriter::new(std::fs::File::create(&a[3]).unwrap());
            f.write_all(&headers.to_bytes()).unwrap();
            f.write_all(b"\r\n").unwrap();
            let mut input = std::fs::File::open(&a[2]).unwrap();
            let mut part = vec![0; 1 << 20];
            loop {
                let n = input.read(&mut part).unwrap();
                if n == 0 {
                    break;
                }
                f.write_all(&body).unwrap();
                body.clear();
                b.update(&part[..n], &mut body).unwrap();
            }
            b.finish(&mut body).unwrap();
            f.write_all(&body).unwrap();
        }
        Some("open-stream") => {
            use std::io::{Read as _, Write as _};
            let mut input = std::fs::File::open(&a[2]).unwrap();
            let mut part = vec![0; 1 << 20];
            // The headers first (they are small), then the body as it is read.
            let mut head = Vec::new();
            let (headers, at) = loop {
                let n = input.read(&mut part).unwrap();
                head.extend_from_slice(&part[..n]);
                if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                    let (h, _) = as2::mime::parse_header_block(&head, &Default::default()).unwrap();
                    break (h, i + 4);
                }
                assert!(n > 0, "no end of the headers");
            };
            let (keys, policy) = receiver(&a);
            let env = Envelope::from_headers(&headers).unwrap();
            let mut s =
                as2::receive_stream::OpenStream::new(&env, &headers, &keys, &policy, now).unwrap();
            let mut f = std::io::BufWriter::new(std::fs::File::create(&a[3]).unwrap());
            let mut out = Vec::new();
            // In slices, as the gateway feeds it: what one inflates to is bounded by its size.
            let mut feed = |bytes: &[u8], out: &mut Vec<u8>| {
                for slice in bytes.chunks(16 * 1024) {
                    s.update(slice, out).unwrap();
                    f.write_all(out).unwrap();
                    out.clear();
                }
            };
            feed(&head[at..], &mut out);
            drop(head);
            loop {
                let n = input.read(&mut part).unwrap();
                if n == 0 {
                    break;
                }
                feed(&part[..n], &mut out);
            }
            s.finish(&mut out).unwrap();
            f.write_all(&out).unwrap();
        }
        Some("build-many") => {
            let n: u32 = a[2].parse().unwrap();
            let payload = read(&a[3]);
            let signer = Identity::from_pem_or_der(&read(&a[4]), &read(&a[5]), None).unwrap();
            let recipient = load_certificates(&read(&a[6])).unwrap().remove(0);
            let mut opts = MessageOptions::new("ALPHA", "BETA");
            opts.compression = Compression::BeforeSigning;
            opts.signing = Some(Signing::new(signer.clone()));
            opts.encryption = Some(Encryption::new(recipient.clone()));
            let cpu = cpu_seconds();
            let mut last = None;
            for _ in 0..n {
                let id = as2::envelope::new_message_id("bench.example", now);
                last = Some(
                    message::build(&opts, &Payload::new(&payload, Some("bench.edi")), &id, now)
                        .unwrap(),
                );
            }
            let build = (cpu_seconds() - cpu) / f64::from(n);
            let m = last.unwrap();
            // The recipient opens with its own key: here the signer's pair stands in for both
            // sides, so the message is built to the signer's certificate for the open half.
            let mut to_self = opts.clone();
            to_self.encryption = Some(Encryption::new(signer.certificate.clone()));
            to_self.mdn = Some(as2::envelope::MdnRequest::sync(
                "ALPHA",
                &[as2::algorithm::DigestAlgorithm::Sha256],
                Default::default(),
            ));
            let id = as2::envelope::new_message_id("bench.example", now);
            let m2 = message::build(
                &to_self,
                &Payload::new(&payload, Some("bench.edi")),
                &id,
                now,
            )
            .unwrap();
            let keys = StaticKeys {
                identities: vec![signer.clone()],
                partner_certificates: vec![signer.certificate.clone()],
            };
            let env = Envelope::from_headers(&m2.headers).unwrap();
            let policy = Policy::default();
            let cpu = cpu_seconds();
            for _ in 0..n {
                let r = receive::open(&env, &m2.headers, &m2.body, &keys, &policy, now).unwrap();
                assert_eq!(r.payload.len(), payload.len());
            }
            let open = (cpu_seconds() - cpu) / f64::from(n);
            drop(m);
            // The signed receipt each side handles besides: the receiver builds it, the sender
            // reads and checks it.
            let mdn_opts = as2::mdn::MdnOptions {
                signer: Some(signer.clone()),
                ..Default::default()
            };
            let cpu = cpu_seconds();
            let mut receipt = None;
            for _ in 0..n {
                receipt = Some(
                    as2::mdn::build(
                        &env,
                        &as2::Disposition::Processed,
                        Some(&m2.mic),
                        &mdn_opts,
                        "<receipt@bench.example>",
                        now,
                    )
                    .unwrap(),
                );
            }
            let receipt_build = (cpu_seconds() - cpu) / f64::from(n);
            let receipt = receipt.unwrap();
            assert!(receipt.signed);
            let certs = [signer.certificate.clone()];
            let limits = as2::mime::Limits::default();
            let cpu = cpu_seconds();
            for _ in 0..n {
                as2::mdn::parse(
                    &receipt.headers,
                    &receipt.body,
                    Some(&certs),
                    Some(now),
                    &limits,
                )
                .unwrap();
            }
            let receipt_check = (cpu_seconds() - cpu) / f64::from(n);
            println!(
                "{{\"build_cpu_s\": {build:.6}, \"open_cpu_s\": {open:.6}, \
                 \"receipt_build_cpu_s\": {receipt_build:.6}, \"receipt_check_cpu_s\": {receipt_check:.6}}}"
            );
        }
        Some("build-set") => {
            let n: u32 = a[2].parse().unwrap();
            let dir = std::path::Path::new(&a[3]);
            let payload = read(&a[4]);
            let signer = Identity::from_pem_or_der(&read(&a[5]), &read(&a[6]), None).unwrap();
            let recipient = load_certificates(&read(&a[7])).unwrap().remove(0);
            let mut opts = MessageOptions::new("ALPHA", "BETA");
            opts.compression = Compression::BeforeSigning;
            opts.signing = Some(Signing::new(signer));
            opts.encryption = Some(Encryption::new(recipient));
            opts.mdn = Some(as2::envelope::MdnRequest::sync(
                "ALPHA",
                &[as2::algorithm::DigestAlgorithm::Sha256],
                Default::default(),
            ));
            std::fs::create_dir_all(dir).unwrap();
            for i in 0..n {
                let id = as2::envelope::new_message_id("bench.example", now);
                let name = format!("po-{i:05}.x12");
                let m =
                    message::build(&opts, &Payload::new(&payload, Some(&name)), &id, now).unwrap();
                let mut out = m.headers.to_bytes();
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&m.body);
                std::fs::write(dir.join(format!("{i:05}.as2")), out).unwrap();
            }
        }
        _ => {
            eprintln!("usage: pipeline build|open|build-many|build-set ...");
            std::process::exit(2);
        }
    }
}

/// The process's CPU time so far (user and system), in seconds, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name in parentheses: utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    // Linux reports in clock ticks of 1/100 s (USER_HZ) on every architecture it runs on here.
    ticks / 100.0
}
