//! A receiving gateway whose disk is full: BETA's whole site (configuration, keystores,
//! database, data) on a small tmpfs, filled up to a few sizes of free space so that receiving
//! fails at different steps (taking the body; storing the payload after the raw message). Each time the partner is answered 503 with Retry-After and nothing about our
//! disk, nothing half-written is left, and once space is freed the partner's retry delivers
//! the file exactly once, with the same bytes.
//!
//! Mounting a tmpfs needs root (or CAP_SYS_ADMIN); where that is not allowed the test says so
//! and stops. `gateway`'s own tests cover a store failing with ENOSPC without a real disk.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{data_dir, files_under, send_to_beta, serve, sites, wait_for};
use gateway::layout::Direction;
use gateway::model::Status;

/// A tmpfs mounted for the test; unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs here ({}); run as root to test a full disk",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system of `dir` but for about `free` bytes; the filler is `dir/filler`.
fn fill(dir: &Path, free: u64) -> PathBuf {
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let block = vec![0x5au8; 64 * 1024];
    let mut written = 0u64;
    // Bounded: the file system is 24 MiB.
    for _ in 0..1024 {
        match f.write_all(&block) {
            Ok(()) => written += block.len() as u64,
            Err(_) => break,
        }
    }
    let _ = f.sync_all();
    f.set_len(written.saturating_sub(free)).unwrap();
    filler
}

#[test]
fn a_full_disk_answers_503_and_the_retry_delivers_once() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(_disk) = Tmpfs::mount(&tmp.path().join("beta"), "24m") else {
        return;
    };
    let (alpha, beta) = sites(tmp.path());
    let _a = serve(&alpha, None);
    let _b = serve(&beta, None);
    let site_dir = beta.config.parent().unwrap().to_path_buf();
    let inbox = data_dir(&beta).join("AS2/files/BETA/ALPHA/inbox");

    let mut refusals = 0;
    // Free space for less than the body (it fails taking the body), and for the raw message
    // but not the payload as well (it fails after the raw message is stored).
    for (n, free_kib) in [64u64, 900, 1100].into_iter().enumerate() {
        let name = format!("full-{n}.x12");
        // Random bytes: compression must not shrink them below the free space.
        let mut payload = vec![0u8; 600_000];
        openssl::rand::rand_bytes(&mut payload).unwrap();
        let filler = fill(&site_dir, free_kib * 1024);
        let file = tmp.path().join(&name);
        std::fs::write(&file, &payload).unwrap();
        send_to_beta(&alpha, &file);
        // The partner is told to come back later, and told nothing else.
        let refused = wait_for(&alpha, &format!("{name}: a 503"), |rs| {
            rs.iter().any(|r| {
                r.filename == name
                    && (r.status.is_final()
                        || r.history
                            .iter()
                            .any(|h| h.detail.as_deref().is_some_and(|d| d.contains("HTTP 503"))))
            })
        });
        let r = refused.iter().find(|r| r.filename == name).unwrap();
        for h in &r.history {
            let d = h.detail.as_deref().unwrap_or("");
            assert!(
                !d.contains("No space") && !d.contains(site_dir.to_str().unwrap()),
                "{name}: internal detail sent to the partner: {d}"
            );
        }
        // Nothing half-written where SFTP users look, whatever step failed.
        let partial: Vec<_> = files_under(&inbox)
            .into_iter()
            .filter(|p| p.file_name().is_some_and(|f| f == name.as_str()))
            .collect();
        if r.status != Status::Delivered {
            assert!(partial.is_empty(), "{name}: {partial:?} while refused");
        }
        let answered_503 = r
            .history
            .iter()
            .filter_map(|h| h.detail.as_deref())
            .find(|d| d.contains("HTTP 503"));
        if let Some(d) = answered_503 {
            refusals += 1;
            eprintln!("{name} with {free_kib} KiB free: {d}");
        }
        std::fs::remove_file(&filler).unwrap();

        let records = wait_for(&alpha, &format!("{name}: delivered"), |rs| {
            rs.iter()
                .any(|r| r.filename == name && r.status == Status::Delivered)
        });
        let r = records.iter().find(|r| r.filename == name).unwrap();
        assert_eq!(
            r.mdn.as_ref().unwrap().disposition,
            "processed",
            "{name}: {:#?}",
            r.history
        );
        let got: Vec<_> = files_under(&inbox)
            .into_iter()
            .filter(|p| p.file_name().is_some_and(|f| f == name.as_str()))
            .collect();
        assert_eq!(got.len(), 1, "{name}: {got:?}");
        assert_eq!(std::fs::read(&got[0]).unwrap(), payload, "{name}");
        let inbound = wait_for(&beta, &format!("{name}: one inbound record"), |rs| {
            rs.iter()
                .any(|r| r.direction == Direction::Inbox && r.filename == name)
        });
        let inbound: Vec<_> = inbound
            .iter()
            .filter(|r| r.direction == Direction::Inbox && r.filename == name)
            .collect();
        assert_eq!(inbound.len(), 1, "{name}: {inbound:#?}");
        assert_eq!(inbound[0].status, Status::Received, "{name}");
    }
    assert_eq!(refusals, 3, "not every send met the full disk");
    let leftovers: Vec<_> = files_under(&data_dir(&beta).join("AS2"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".mftg-tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
