//! What a power loss can take: only what the page cache held and no `fsync` had flushed. So
//! the upload in `AS2/send/` may be removed only once the gateway's copy of it and the job that
//! sends it are on disk. Checked on the real `mftg serve` under `strace`, which shows the
//! system calls in the order they completed: by the time the upload is unlinked, the outbox
//! copy has been flushed (and the new folder it is in, in the folder above), and so has every
//! write to the database's write-ahead log.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    add_gamma_args, data_dir, send_to_beta, send_to_beta_args, serve, serve_under, sites, wait_for,
};
use gateway::layout::Direction;
use gateway::model::Status;

/// The system calls traced: writes of every kind, flushes and unlinks.
const CALLS: &str = "trace=write,pwrite64,writev,pwritev,pwritev2,fsync,fdatasync,unlink,unlinkat";

/// Whether `strace` can trace here (a container may forbid `ptrace`).
fn strace_works() -> bool {
    let out = Command::new("strace")
        .args(["-o", "/dev/null", "true"])
        .output()
        .expect("strace is installed by tests/bootstrap.sh");
    if !out.status.success() {
        eprintln!(
            "SKIPPED: strace cannot trace on this machine: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.status.success()
}

/// One completed system call: its name and its text from the name on.
struct Call {
    name: String,
    text: String,
}

/// The calls of an `strace -f -y` log in the order they completed, each put back together
/// when another thread's call came between its start and its end.
fn completed_calls(log: &str) -> Vec<Call> {
    let mut started: HashMap<&str, String> = HashMap::new();
    let mut calls = Vec::new();
    for line in log.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(head) = rest.strip_suffix("<unfinished ...>") {
            started.insert(pid, head.to_string());
            continue;
        }
        let text = if rest.starts_with("<...") {
            let Some((_, tail)) = rest.split_once("resumed>") else {
                continue;
            };
            match started.remove(pid) {
                Some(head) => head + tail,
                None => continue,
            }
        } else {
            rest.to_string()
        };
        let Some((name, _)) = text.split_once('(') else {
            continue; // a signal or an exit
        };
        let name = name.to_string();
        calls.push(Call { name, text });
    }
    calls
}

/// The first argument's file, as `-y` shows it: `7</data/x.sqlite-wal>` gives the path.
fn fd_path(call: &Call) -> &str {
    let args = &call.text[call.name.len() + 1..];
    match (args.find('<'), args.find('>')) {
        (Some(open), Some(close)) if open < close && !args[..open].contains(',') => {
            &args[open + 1..close]
        }
        _ => "",
    }
}

/// `strace` running `mftg serve`: ended by killing `mftg serve` (a tracer killed first would
/// leave its tracee running), then waiting for strace to finish its log.
struct Traced(Child);

impl Traced {
    fn end(&mut self) {
        let pid = self.0.id();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        for child in children.split_whitespace() {
            let _ = Command::new("kill").args(["-9", child]).status();
        }
        let start = Instant::now();
        while matches!(self.0.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        self.end();
    }
}

#[test]
fn an_upload_is_removed_only_once_its_copy_and_its_job_are_on_disk() {
    if !strace_works() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (alpha, beta) = sites(tmp.path());
    let _beta = serve(&beta, None);
    let trace = tmp.path().join("alpha.strace");
    let mut traced = serve_under(
        &alpha,
        &[
            "strace",
            "-f",
            "-qq",
            "-y",
            "-e",
            CALLS,
            "-o",
            trace.to_str().unwrap(),
        ],
    );
    let mut strace = Traced(traced.stdin(Stdio::null()).spawn().unwrap());

    let file = tmp.path().join("po.x12");
    std::fs::write(&file, b"ISA*00*power~\r\nST*850*0001~\r\nSE*2*0001~\r\n").unwrap();
    send_to_beta(&alpha, &file);
    let records = wait_for(&alpha, "the message is delivered", |rs| {
        rs.iter()
            .any(|r| r.direction == Direction::Outbox && r.status == Status::Delivered)
    });
    let id = records
        .iter()
        .find(|r| r.direction == Direction::Outbox)
        .unwrap()
        .id
        .clone();
    strace.end();
    let log = std::fs::read_to_string(&trace).unwrap();
    let calls = completed_calls(&log);

    let data = data_dir(&alpha);
    let upload = data.join("AS2/send/ALPHA/BETA/po.x12");
    let upload = upload.to_str().unwrap();
    let outbox = format!("/AS2/files/ALPHA/BETA/outbox/{id}");
    let removed = calls
        .iter()
        .position(|c| {
            c.name.starts_with("unlink")
                && c.text.contains(&format!("\"{upload}\""))
                && c.text.trim_end().ends_with("= 0")
        })
        .unwrap_or_else(|| panic!("{upload} never unlinked; {} calls traced", calls.len()));
    let before = &calls[..removed];

    let flushed_copy = before
        .iter()
        .any(|c| c.name.contains("sync") && fd_path(c).contains(&outbox));
    assert!(
        flushed_copy,
        "the outbox copy under {outbox} was never flushed before the upload was removed"
    );
    // The message's folder is new: its entry in the folder above must be on disk too.
    let above = outbox.rsplit_once('/').unwrap().0;
    let flushed_entry = before
        .iter()
        .any(|c| c.name.contains("sync") && fd_path(c).ends_with(above));
    assert!(
        flushed_entry,
        "{above} was never flushed after {id} was made in it"
    );

    let wal = |c: &Call| fd_path(c).ends_with("gateway.sqlite-wal");
    let last_write = before
        .iter()
        .rposition(|c| c.name.contains("write") && wal(c))
        .expect("the claim, the record and the job are written to the write-ahead log first");
    let flushed_after = before[last_write..]
        .iter()
        .any(|c| c.name.contains("sync") && wal(c));
    assert!(
        flushed_after,
        "the write-ahead log was not flushed after its last write ({}) and before the upload was removed",
        before[last_write].text
    );
}

/// `mftg args` at `site` under `strace`, which must succeed; the renames and flushes it made.
fn traced_mftg(site: &common::Site, args: &[&str], log: &std::path::Path) -> Vec<Call> {
    let (code, out) = testkit::run(
        Command::new("strace")
            .args(["-f", "-qq", "-y", "-e"])
            .arg("trace=fsync,fdatasync,rename,renameat,renameat2")
            .arg("-o")
            .arg(log)
            .arg(env!("CARGO_BIN_EXE_mftg"))
            .args(args)
            .env("MFTG_CONFIG", &site.config)
            .env("MFTG_KEYSTORE_PASSWORD", common::PASSWORD),
    );
    assert_eq!(code, 0, "mftg {args:?}: {out}");
    completed_calls(&std::fs::read_to_string(log).unwrap())
}

/// Asserts that `path` got its name from a rename of a file flushed before it, and that its
/// folder was flushed after: what survives a power loss, not only a crash.
fn assert_named_durably(calls: &[Call], path: &std::path::Path) {
    let path = path.to_str().unwrap();
    let renamed = calls
        .iter()
        .position(|c| {
            c.name.starts_with("rename")
                && c.text.contains(&format!(", \"{path}\""))
                && c.text.trim_end().ends_with("= 0")
        })
        .unwrap_or_else(|| panic!("{path} never got its name from a rename"));
    let from = calls[renamed].text.split('"').nth(1).unwrap();
    let synced = |c: &Call, file: &str| c.name.contains("sync") && fd_path(c) == file;
    assert!(
        calls[..renamed].iter().any(|c| synced(c, from)),
        "{from} was not flushed before it was renamed to {path}"
    );
    let folder = path.rsplit_once('/').unwrap().0;
    assert!(
        calls[renamed..].iter().any(|c| synced(c, folder)),
        "{folder} was not flushed after {path} was renamed into it"
    );
}

#[test]
fn a_file_mftg_send_places_and_a_setting_it_saves_survive_a_power_loss() {
    if !strace_works() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (alpha, _beta) = sites(tmp.path());
    let log = tmp.path().join("mftg.strace");

    let file = tmp.path().join("invoice.x12");
    std::fs::write(&file, b"ISA*00*flushed~\r\n").unwrap();
    let sent = traced_mftg(&alpha, &send_to_beta_args(&file), &log);
    let placed = data_dir(&alpha).join("AS2/send/ALPHA/BETA/invoice.x12");
    assert_named_durably(&sent, &placed);

    let saved = traced_mftg(&alpha, &add_gamma_args("beta"), &log);
    assert_named_durably(&saved, &alpha.config);
    let text = std::fs::read_to_string(&alpha.config).unwrap();
    assert!(text.contains("GAMMA"), "the partnership was saved: {text}");
}
