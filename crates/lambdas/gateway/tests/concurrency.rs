//! Fifty uploads of one name, their events handled at once by ten execution environments of the
//! real `send-trigger` against moto: exactly one send job, forty-nine files in `AS2/duplicate`,
//! none lost; a redelivered event sends nothing more. The non-ASCII key of the sample event is
//! decoded on the way.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::time::Duration;

use common::*;
use gateway::model::Status;
use serde_json::Value;

#[test]
fn fifty_concurrent_uploads_of_one_name_send_once() {
    let d = Deployment::new();
    d.keystores(&["ALPHA"], &["BETA"]);
    d.station("ALPHA", None);
    d.partnership("ALPHA", "BETA", "http://127.0.0.1:9/as2", |_| {});
    // The name of events/send-trigger/s3-put-non-ascii-key.json, as S3 encodes it there.
    let sample_key = sample("send-trigger/s3-put-non-ascii-key.json")["Records"][0]["s3"]["object"]
        ["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        sample_key,
        s3_event_key("AS2/send/ALPHA/BETA/PO 2026 été (1).edi")
    );
    let key = "AS2/send/ALPHA/BETA/PO 2026 été (1).edi";
    let events: Vec<Value> = (0..50u32)
        .map(|n| d.upload(key, format!("upload {n}\r\n").as_bytes()))
        .collect();
    assert_eq!(d.versions(key), 50);

    let workers: Vec<_> = (0..10)
        .map(|w| d.function("send-trigger", &format!("trigger-{w}"), &[]))
        .collect();
    let pairs: Vec<(Value, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .into_iter()
            .enumerate()
            .map(|(w, mut f)| {
                let mine: Vec<Value> = events.iter().skip(w).step_by(10).cloned().collect();
                s.spawn(move || {
                    mine.into_iter()
                        .map(|e| {
                            let r = trigger(&mut f, &e);
                            (e, r)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let replies: Vec<&Value> = pairs.iter().map(|(_, r)| r).collect();
    let count = |o: &str| replies.iter().filter(|r| r["outcome"] == o).count();
    assert_eq!(
        (count("queued"), count("duplicate")),
        (1, 49),
        "{replies:#?}"
    );
    for r in &replies {
        assert_eq!(r["key"], key);
    }

    // One job; every upload is somewhere; nothing left under AS2/send.
    let mut jobs = Vec::new();
    for _ in 0..5 {
        let got = d.receive(&d.queue_url);
        if got.is_empty() && !jobs.is_empty() {
            break;
        }
        jobs.extend(got);
    }
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    // Taken off the queue, as as2-sender would (else it shows again after the visibility timeout).
    for job in &jobs {
        d.delete(job);
    }
    assert_eq!(d.versions("AS2/send/"), 0);
    let duplicates = d.keys("AS2/duplicate/ALPHA/BETA/");
    assert_eq!(duplicates.len(), 49);
    assert!(duplicates
        .iter()
        .all(|k| k.ends_with("/PO 2026 été (1).edi")));
    let outbox = d.keys("AS2/files/ALPHA/BETA/outbox/");
    assert_eq!(outbox.len(), 1);
    let mut bodies: Vec<Vec<u8>> = duplicates
        .iter()
        .chain(&outbox)
        .map(|k| d.get(k).unwrap())
        .collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 50, "every upload kept");
    let records = d.records();
    assert_eq!(records.len(), 50);
    assert_eq!(
        records
            .iter()
            .filter(|r| r.status == Status::Queued)
            .count(),
        1
    );

    // A redelivered event (the accepted one's) changes nothing.
    let (accepted, _) = pairs
        .iter()
        .find(|(_, r)| r["outcome"] == "queued")
        .unwrap();
    let mut again = d.function("send-trigger", "again", &[]);
    let out = trigger(&mut again, accepted);
    assert_ne!(out["outcome"], "queued", "{out}");
    assert!(d.receive(&d.queue_url).is_empty(), "no second job");
    assert_eq!(d.records().len(), 50);
}

/// A partner on 127.0.0.1 that answers no POST until `n` are open at once (then 200 to each),
/// or 503 after 20 s: only a sender that sends them together gets them through.
fn partner_wanting_together(n: usize) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead as _, Read as _, Write as _};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let waiting = Arc::new((Mutex::new(0usize), Condvar::new()));
    let most = Arc::new(AtomicUsize::new(0));
    let seen = most.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4 * n) {
            let Ok(mut stream) = stream else { return };
            let (waiting, most) = (waiting.clone(), most.clone());
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let (lock, cv) = &*waiting;
                let mut open = lock.lock().unwrap();
                *open += 1;
                most.fetch_max(*open, Ordering::SeqCst);
                cv.notify_all();
                let (open, timeout) = cv
                    .wait_timeout_while(open, Duration::from_secs(20), |o| *o < n)
                    .unwrap();
                drop(open);
                let reply: &[u8] = if timeout.timed_out() {
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                let _ = stream.write_all(reply);
            });
        }
    });
    (port, seen)
}

#[test]
fn the_jobs_of_a_batch_are_sent_together() {
    let d = Deployment::new();
    d.keystores(&["ALPHA"], &["BETA"]);
    d.station("ALPHA", None);
    let (port, most) = partner_wanting_together(3);
    d.partnership(
        "ALPHA",
        "BETA",
        &format!("http://127.0.0.1:{port}/as2"),
        |p| {
            p.mdn = gateway::model::MdnMode::None;
            p.timeout_secs = 30;
        },
    );
    let mut trigger_fn = d.function("send-trigger", "trigger", &[]);
    let ids: Vec<String> = (0..3)
        .map(|n| {
            let key = format!("AS2/send/ALPHA/BETA/order-{n}.x12");
            let out = trigger(&mut trigger_fn, &d.upload(&key, &edi(n)));
            out["id"].as_str().unwrap().to_string()
        })
        .collect();
    // The three jobs, in one batch (the queue delivers up to ten at once).
    let mut batch = Vec::new();
    for _ in 0..10 {
        batch.extend(d.receive(&d.queue_url));
        if batch.len() == 3 {
            break;
        }
    }
    assert_eq!(batch.len(), 3);
    let mut sender = d.function("as2-sender", "sender", &[]);
    let reply = sender
        .invoke(&d.sqs_event(&batch), Duration::from_secs(90))
        .unwrap();
    assert_eq!(reply["batchItemFailures"], serde_json::json!([]), "{reply}");
    for id in &ids {
        assert_eq!(d.record(id).status, Status::Sent, "{:#?}", d.record(id));
    }
    assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 3);
}
