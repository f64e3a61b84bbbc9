//! A payload larger than either gateway ever holds in memory, between two `mftg serve`
//! processes: read, signed, compressed and encrypted as it is read, stored as sent in parts and
//! posted from the file; received into a scratch file, stored, and opened from the store as it
//! is read back, the payload put in the inbox once verified. Each gateway's peak memory is
//! measured.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use as2::algorithm::{ContentEncryption, DigestAlgorithm};
use as2::message::Compression;
use common::*;
use gateway::layout::Direction;
use gateway::model::{MdnMode, Status};

/// What a gateway's peak may grow by, in KiB, streaming a payload of any size: a few parts and
/// what the allocator keeps of them. Holding the 64 MiB payload would be twice that at least.
const SLACK: u64 = 48 * 1024;

fn sha256(path: &std::path::Path) -> Vec<u8> {
    let data = std::fs::read(path).unwrap();
    openssl::sha::sha256(&data).to_vec()
}

#[test]
fn a_large_payload_goes_through_without_either_gateway_holding_it() {
    const SIZE: usize = 64 * 1024 * 1024;
    let tmp = tempfile::tempdir().unwrap();
    let (alpha, beta) = sites_with(tmp.path(), |c| {
        let p = &mut c.partnerships[0];
        p.timeout_secs = 120;
        p.encryption = Some(ContentEncryption::Aes256Cbc);
        p.signing = Some(DigestAlgorithm::Sha256);
        p.compression = Compression::BeforeSigning;
        p.mdn = MdnMode::Sync;
        p.signed_mdn = true;
    });
    let a = serve(&alpha, None);
    let b = serve(&beta, None);
    let (pid, beta_pid) = (a.0.id(), b.0.id());

    // A small message first: the gateway at work, its peak so far the baseline.
    let small = tmp.path().join("small.x12");
    std::fs::write(&small, b"ISA*00*SMALL~\r\n").unwrap();
    send_to_beta(&alpha, &small);
    wait_for(&alpha, "the small message delivered", |rs| {
        rs.iter()
            .any(|r| r.direction == Direction::Outbox && r.status == Status::Delivered)
    });
    wait_for(&beta, "the small message received", |rs| {
        rs.iter().any(|r| r.direction == Direction::Inbox)
    });
    let baseline = testkit::memory_kib(pid, "VmHWM");
    let beta_baseline = testkit::memory_kib(beta_pid, "VmHWM");

    let big = tmp.path().join("big.bin");
    std::fs::write(&big, testkit::incompressible(SIZE)).unwrap();
    send_to_beta(&alpha, &big);
    let records = wait_for(&alpha, "the large message delivered", |rs| {
        rs.iter().any(|r| {
            r.direction == Direction::Outbox && r.filename == "big.bin" && r.status.is_final()
        })
    });
    let sent = records.iter().find(|r| r.filename == "big.bin").unwrap();
    assert_eq!(sent.status, Status::Delivered, "{:#?}", sent.history);
    assert_eq!(sent.mdn.as_ref().unwrap().mic, "matches");
    let peak = testkit::memory_kib(pid, "VmHWM");
    eprintln!(
        "ALPHA: peak {baseline} KiB after a small message, {peak} KiB after {} MiB",
        SIZE >> 20
    );
    // Built in memory the payload and the message alone are twice the payload (+128 MiB and
    // more); in parts the sender holds a few parts at a time (+10 to +25 MiB here: how much
    // glibc's per-thread arenas keep of them varies from run to run).
    assert!(
        peak < baseline + SLACK,
        "the sender's peak went from {baseline} KiB to {peak} KiB for a {} MiB payload",
        SIZE >> 20
    );

    // In memory the receiver held the message, the decrypted and the inflated content: three
    // times the payload. Streamed it holds a few parts (the same at 160 MiB as at 64).
    let beta_peak = testkit::memory_kib(beta_pid, "VmHWM");
    eprintln!(
        "BETA: peak {beta_baseline} KiB after a small message, {beta_peak} KiB after {} MiB",
        SIZE >> 20
    );
    assert!(
        beta_peak < beta_baseline + SLACK,
        "the receiver's peak went from {beta_baseline} KiB to {beta_peak} KiB for a {} MiB payload",
        SIZE >> 20
    );

    // What BETA received is the file, byte for byte; the message stored as sent is whole.
    let got = wait_for(&beta, "the large message received", |rs| {
        rs.iter()
            .any(|r| r.direction == Direction::Inbox && r.filename == "big.bin")
    });
    let received = got.iter().find(|r| r.filename == "big.bin").unwrap();
    let key = received.payload_key.clone().unwrap();
    assert_eq!(sha256(&data_dir(&beta).join(key)), sha256(&big));
    let raw = data_dir(&alpha).join(sent.raw_key.as_deref().unwrap());
    assert!(std::fs::metadata(raw).unwrap().len() > SIZE as u64);
    // A compressible file: its message is small, its payload is not. Inflated as it is read,
    // never whole, by a receiver whose peak does not move.
    let edi = tmp.path().join("orders.x12");
    let mut orders = Vec::with_capacity(128 << 20);
    let mut n = 0u64;
    while orders.len() < 128 << 20 {
        orders.extend_from_slice(
            format!("ST*850*{n:09}~BEG*00*SA*PO{n}~PO1*1*10*EA*9.95~SE*4*{n:09}~\r\n").as_bytes(),
        );
        n += 1;
    }
    std::fs::write(&edi, &orders).unwrap();
    send_to_beta(&alpha, &edi);
    let got = wait_for(&beta, "the compressible message received", |rs| {
        rs.iter()
            .any(|r| r.direction == Direction::Inbox && r.filename == "orders.x12")
    });
    let received = got.iter().find(|r| r.filename == "orders.x12").unwrap();
    assert_eq!(received.status, Status::Received, "{:#?}", received.history);
    let file = data_dir(&beta).join(received.payload_key.clone().unwrap());
    assert!(
        std::fs::read(file).unwrap() == orders,
        "the compressible file, byte for byte"
    );
    let beta_peak = testkit::memory_kib(beta_pid, "VmHWM");
    eprintln!("BETA: peak {beta_peak} KiB after 128 MiB that compress");
    assert!(
        beta_peak < beta_baseline + SLACK,
        "the receiver's peak went from {beta_baseline} KiB to {beta_peak} KiB inflating 128 MiB"
    );

    for site in [&alpha, &beta] {
        let scratch = files_under(&data_dir(site).join("AS2/tmp"));
        assert!(scratch.is_empty(), "{}: {scratch:?}", site.id);
    }
}
