//! The AS2 endpoint of a real `mftg serve` under the requests anyone who can reach its port can
//! make: headers that never finish, a body shorter than its Content-Length, an announced 2 GB
//! body, an endless chunked body, a large body for no partnership, 500 idle connections. Each is
//! answered or dropped within its time limit, a good message from the partner is delivered
//! meanwhile, and the process's peak memory stays bounded.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{data_dir, files_under, send_to_beta, serve, sites_with, wait_for, Site};
use gateway::layout::Direction;
use gateway::model::Status;
use gateway_local::Config;

/// BETA's limits in this test: small, so that each is reached quickly.
const HEADER_TIMEOUT: u64 = 2;
const IDLE_TIMEOUT: u64 = 2;
const MAX_BODY: usize = 8 << 20;

fn listen(site: &Site) -> SocketAddr {
    Config::load(&site.config).unwrap().listen
}

fn connect(at: SocketAddr) -> TcpStream {
    let start = Instant::now();
    loop {
        match TcpStream::connect(at) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
                return s;
            }
            Err(e) => {
                assert!(start.elapsed() < Duration::from_secs(20), "{at}: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Reads until the server closes the connection (or resets it), bounded by the socket's read
/// timeout; what it sent, and how long that took.
fn read_to_close(s: &mut TcpStream) -> (String, Duration) {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                break
            }
            Err(e) => panic!("the server neither answered nor closed: {e} after {out:?}"),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
}

/// A connection to `at` on which AS2 request headers from `from` to BETA have been sent, with
/// `framing` (Content-Length or Transfer-Encoding) and the blank line that ends them.
fn open_request(at: SocketAddr, from: &str, id: &str, framing: &str) -> TcpStream {
    let mut s = connect(at);
    s.write_all(
        format!(
            "POST /as2 HTTP/1.1\r\nHost: 127.0.0.1\r\nAS2-Version: 1.2\r\nAS2-From: {from}\r\n\
             AS2-To: BETA\r\nMessage-ID: <{id}@attacker>\r\nContent-Type: application/edi-x12\r\n\
             {framing}\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    s
}

/// Sends ALPHA's file to BETA with `mftg send` and waits until ALPHA's record says delivered.
fn good_message(alpha: &Site, dir: &std::path::Path, n: usize) {
    let file = dir.join(format!("good-{n}.x12"));
    std::fs::write(&file, format!("ISA*00*GOOD{n}~\r\n")).unwrap();
    send_to_beta(alpha, &file);
    wait_for(alpha, &format!("good message {n} delivered"), |rs| {
        rs.iter()
            .filter(|r| r.direction == Direction::Outbox && r.status == Status::Delivered)
            .count()
            >= n
    });
}

#[test]
fn the_endpoint_holds_against_slow_short_huge_endless_unknown_and_idle_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let (alpha, beta) = sites_with(tmp.path(), |c| {
        if c.stations[0].as2_id == "BETA" {
            c.header_timeout_secs = HEADER_TIMEOUT;
            c.idle_timeout_secs = IDLE_TIMEOUT;
            c.max_body_bytes = MAX_BODY;
        }
    });
    let _a = serve(&alpha, None);
    let b = serve(&beta, None);
    let pid = b.0.id();
    let at = listen(&beta);
    good_message(&alpha, tmp.path(), 1);
    let baseline = testkit::memory_kib(pid, "VmRSS");

    // Headers that never finish: one byte a second, dropped at the header timeout.
    let slow: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = connect(at);
                s.write_all(b"POST /as2 HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    .unwrap();
                let start = Instant::now();
                for b in b"AS2-From: ALPHA\r\nAS2-To: BETA\r\n".iter() {
                    if s.write_all(&[*b]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(500));
                    if start.elapsed() > Duration::from_secs(HEADER_TIMEOUT + 6) {
                        break;
                    }
                }
                let (answer, _) = read_to_close(&mut s);
                (answer, start.elapsed())
            })
        })
        .collect();

    // 500 connections that send nothing.
    let idle: Vec<TcpStream> = (0..500).map(|_| connect(at)).collect();

    // A body shorter than its Content-Length: answered 408 at the idle timeout.
    let short = std::thread::spawn(move || {
        let mut s = open_request(at, "ALPHA", "short", "Content-Length: 100000");
        s.write_all(b"ISA*00*SHORT~\r\n").unwrap();
        read_to_close(&mut s)
    });

    // An announced 2 GB body: 413 before any of it is sent.
    let huge = std::thread::spawn(move || {
        let mut s = open_request(at, "ALPHA", "huge", "Content-Length: 2147483648");
        read_to_close(&mut s)
    });

    // A large body for no partnership: 404 from the headers alone.
    let unknown = std::thread::spawn(move || {
        let mut s = open_request(at, "NOBODY", "unknown", "Content-Length: 104857600");
        read_to_close(&mut s)
    });

    // An endless chunked body: counted against the limit, 413 once it passes it. The answer is
    // read while the body is still being sent.
    let endless = std::thread::spawn(move || {
        let mut s = open_request(at, "ALPHA", "endless", "Transfer-Encoding: chunked");
        let mut reader = s.try_clone().unwrap();
        let answer = std::thread::spawn(move || read_to_close(&mut reader));
        let chunk = {
            let mut c = format!("{:x}\r\n", 64 * 1024).into_bytes();
            c.extend(std::iter::repeat_n(b'E', 64 * 1024));
            c.extend_from_slice(b"\r\n");
            c
        };
        let mut sent = 0usize;
        // At most 16 times the limit: the server must have stopped it long before.
        while sent < 16 * MAX_BODY {
            if s.write_all(&chunk).is_err() {
                break;
            }
            sent += 64 * 1024;
        }
        let _ = s.shutdown(std::net::Shutdown::Write);
        (answer.join().unwrap(), sent)
    });

    // Meanwhile the partner's message is delivered.
    good_message(&alpha, tmp.path(), 2);

    for t in slow {
        let (answer, took) = t.join().unwrap();
        assert!(
            !answer.contains("200 OK"),
            "headers that never finished were answered: {answer}"
        );
        assert!(
            took < Duration::from_secs(HEADER_TIMEOUT + 8),
            "slow headers held for {took:?}"
        );
    }
    let (answer, took) = short.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "short body: {answer}");
    assert!(
        took < Duration::from_secs(IDLE_TIMEOUT + 8),
        "short body held {took:?}"
    );
    let (answer, took) = huge.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "2 GB: {answer}");
    assert!(
        took < Duration::from_secs(5),
        "2 GB answered after {took:?}"
    );
    let (answer, took) = unknown.join().unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 404"),
        "unknown partner: {answer}"
    );
    assert!(
        answer.contains("no partnership between station BETA and partner NOBODY"),
        "{answer}"
    );
    assert!(
        took < Duration::from_secs(5),
        "unknown partner answered after {took:?}"
    );
    let ((answer, _), sent) = endless.join().unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 413") || answer.is_empty(),
        "endless body: {answer}\nlog: {}",
        std::fs::read_to_string(beta.config.with_file_name("serve.log")).unwrap_or_default()
    );
    assert!(
        sent < 16 * MAX_BODY,
        "the endless body was taken in full ({sent} bytes)"
    );

    // The idle connections are closed at the header timeout too.
    let start = Instant::now();
    for mut s in idle {
        let (answer, _) = read_to_close(&mut s);
        assert!(
            answer.is_empty(),
            "an idle connection was answered: {answer}"
        );
    }
    assert!(
        start.elapsed() < Duration::from_secs(HEADER_TIMEOUT + 10),
        "idle connections held {:?}",
        start.elapsed()
    );

    // Peak memory: the endless body, the 2 GB announcement and 520 connections together cost
    // less than four times the body limit on top of the gateway at rest.
    let peak = testkit::memory_kib(pid, "VmHWM");
    eprintln!("BETA: {baseline} KiB resident at rest, peak {peak} KiB");
    assert!(
        peak < baseline + 4 * (MAX_BODY as u64 / 1024),
        "peak {peak} KiB against {baseline} KiB at rest"
    );

    // Nothing of the refused requests was received or left behind; the one for no partnership
    // is kept, headers only.
    let records = common::records(&beta);
    let inbound: Vec<_> = records
        .iter()
        .filter(|r| r.direction == Direction::Inbox)
        .collect();
    assert_eq!(inbound.len(), 2, "{inbound:#?}");
    assert!(inbound.iter().all(|r| r.status == Status::Received));
    let data = data_dir(&beta);
    let scratch = files_under(&data.join("AS2/tmp"));
    assert!(scratch.is_empty(), "{scratch:?}");
    let rejected = files_under(&data.join("AS2/raw-message/_rejected"));
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let kept = std::fs::read_to_string(&rejected[0]).unwrap();
    assert!(
        kept.to_ascii_lowercase().contains("as2-from: nobody"),
        "{kept}"
    );
    assert!(kept.len() < 4096, "{kept}");

    // And the endpoint still works.
    good_message(&alpha, tmp.path(), 3);

    // Nothing of the keystores' secrets in either log.
    for site in [&alpha, &beta] {
        let log = std::fs::read_to_string(site.config.with_file_name("serve.log")).unwrap();
        assert!(log.contains("AS2 endpoint listening"), "{log}");
        assert!(
            !log.contains(common::PASSWORD),
            "the keystore password is in the log"
        );
        assert!(!log.contains("PRIVATE KEY"), "key material in the log");
    }
}
