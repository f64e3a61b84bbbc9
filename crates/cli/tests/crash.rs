//! Two `mftg serve` processes trading over 127.0.0.1, one of them killed at every step of
//! uploading, sending and receiving (the failpoints of `gateway::failpoint`, which abort the
//! process there as `kill -9` would), then started again: every time the file is delivered
//! exactly once, with the same bytes, and the sender's record says so.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::time::{Duration, Instant};

use common::{data_dir, died, files_under, records, send_to_beta, serve, sites, wait_for};
use gateway::layout::Direction;
use gateway::model::Status;

#[test]
fn killed_at_every_step_the_file_is_delivered_exactly_once() {
    for point in gateway::failpoint::Failpoints::POINTS {
        let tmp = tempfile::tempdir().unwrap();
        let (alpha, beta) = sites(tmp.path());
        let payload = format!("ISA*00*{point}~\r\nST*850*0001~\r\nSE*2*0001~\r\n").into_bytes();
        let receiver_dies = point.starts_with("receive.");
        let (victim, other) = if receiver_dies {
            (&beta, &alpha)
        } else {
            (&alpha, &beta)
        };
        let _other = serve(other, None);
        let mut dying = serve(victim, Some(point));
        let file = tmp.path().join("po.x12");
        std::fs::write(&file, &payload).unwrap();
        send_to_beta(&alpha, &file);
        died(&mut dying, point, victim);
        drop(dying);
        let _again = serve(victim, None);

        let sent = wait_for(&alpha, point, |rs| {
            rs.iter()
                .any(|r| r.direction == Direction::Outbox && r.status.is_final())
        });
        let out: Vec<_> = sent
            .iter()
            .filter(|r| r.direction == Direction::Outbox)
            .collect();
        assert_eq!(out.len(), 1, "{point}: {out:#?}");
        assert_eq!(
            out[0].status,
            Status::Delivered,
            "{point}: {:#?}",
            out[0].history
        );
        assert_eq!(
            out[0].mdn.as_ref().unwrap().disposition,
            "processed",
            "{point}: {:#?}",
            out[0].history
        );
        let got = wait_for(&beta, point, |rs| {
            rs.iter()
                .any(|r| r.direction == Direction::Inbox && r.status == Status::Received)
        });
        let inbound: Vec<_> = got
            .iter()
            .filter(|r| r.direction == Direction::Inbox)
            .collect();
        assert_eq!(inbound.len(), 1, "{point}: {inbound:#?}");
        let files = files_under(&data_dir(&beta).join("AS2/files/BETA/ALPHA/inbox"));
        assert_eq!(files.len(), 1, "{point}: {files:?}");
        assert_eq!(std::fs::read(&files[0]).unwrap(), payload, "{point}");
        // Nothing left in the send folder (the watcher removes an upload it had copied, once
        // it sees it again), nothing half-written where SFTP users look.
        send_folder_emptied(&alpha, point);
        for site in [&alpha, &beta] {
            let leftovers: Vec<_> = files_under(&data_dir(site).join("AS2/files"))
                .into_iter()
                .filter(|p| p.to_string_lossy().contains(".mftg-tmp-"))
                .collect();
            assert!(leftovers.is_empty(), "{point}: {leftovers:?}");
        }
    }
}

/// Waits (bounded) until nothing is left under `site`'s `AS2/send/`.
fn send_folder_emptied(site: &common::Site, what: &str) {
    let start = Instant::now();
    while !files_under(&data_dir(site).join("AS2/send")).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what}: upload left"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn killed_while_moving_a_duplicate_aside_it_is_moved_once_and_recorded_once() {
    for point in gateway::failpoint::Failpoints::DUPLICATE_POINTS {
        let tmp = tempfile::tempdir().unwrap();
        let (alpha, beta) = sites(tmp.path());
        let _beta = serve(&beta, None);
        let mut dying = serve(&alpha, Some(point));
        let file = tmp.path().join("po.x12");
        std::fs::write(&file, b"ISA*00*first~\r\n").unwrap();
        send_to_beta(&alpha, &file);
        wait_for(&alpha, point, |rs| {
            rs.iter().any(|r| r.status == Status::Delivered)
        });
        send_folder_emptied(&alpha, point);
        // The same name again, within the window: ALPHA dies while moving it aside.
        std::fs::write(&file, b"ISA*00*second~\r\n").unwrap();
        send_to_beta(&alpha, &file);
        died(&mut dying, point, &alpha);
        drop(dying);
        let _again = serve(&alpha, None);

        let rs = wait_for(&alpha, point, |rs| {
            rs.iter().any(|r| r.status == Status::Duplicate)
        });
        send_folder_emptied(&alpha, point);
        let dups: Vec<_> = records(&alpha)
            .into_iter()
            .filter(|r| r.status == Status::Duplicate)
            .collect();
        assert_eq!(dups.len(), 1, "{point}: {dups:#?}");
        let sent = rs.iter().filter(|r| r.status == Status::Delivered).count();
        assert_eq!(sent, 1, "{point}: {rs:#?}");
        let moved: Vec<_> = files_under(&data_dir(&alpha).join("AS2/duplicate"))
            .into_iter()
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        assert_eq!(moved.len(), 1, "{point}: {moved:?}");
        assert_eq!(std::fs::read(&moved[0]).unwrap(), b"ISA*00*second~\r\n");
        let kept = dups[0].payload_key.as_deref().unwrap();
        assert!(moved[0].ends_with(kept), "{point}: {moved:?} vs {kept}");
        let got = files_under(&data_dir(&beta).join("AS2/files/BETA/ALPHA/inbox"));
        assert_eq!(got.len(), 1, "{point}: the duplicate was not sent");
    }
}
