//! Fifty uploads of one name, their events handled at once by ten execution environments of the
//! real `send-trigger` against moto: exactly one send job, forty-nine files in `AS2/duplicate`,
//! none lost; a redelivered event sends nothing more. The non-ASCII key of the sample event is
//! decoded on the way.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

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
