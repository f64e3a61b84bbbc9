//! The gateway's rules end to end over in-memory ports: two gateways (ALPHA and BETA) wired to
//! each other, a scripted partner for faults, and an injected clock for every time-dependent
//! rule. (The real adapters are proven against real parts in their own crates.)

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use as2::algorithm::{ContentEncryption, DigestAlgorithm};
use as2::keys::Identity;
use gateway::layout::Direction;
use gateway::memory::{FnTransport, MemoryPorts, MemoryReader};
use gateway::model::{
    Defaults, Job, MdnMode, MessageRecord, Partnership, RetryPolicy, Station, Status,
};
use gateway::ports::{Clock, HttpResponse, MessageLog, ObjectStore, TransportError};
use gateway::{Gateway, Millis, Origin, SendOutcome, UploadOutcome, UploadRef};

const T0: Millis = Millis(1_795_845_423_000);

/// Runs a future that never waits (every in-memory port is immediately ready).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("an in-memory future kept waiting");
}

fn identity(cn: &str) -> &'static Identity {
    static A: OnceLock<Identity> = OnceLock::new();
    static B: OnceLock<Identity> = OnceLock::new();
    let cell = if cn == "ALPHA" { &A } else { &B };
    cell.get_or_init(|| {
        Identity::generate_self_signed(cn, 2048, as2::UnixTime(T0.unix().0 - 86_400), 365).unwrap()
    })
}

/// What the wire does to the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Forward,
    Refused,
    Timeout,
    Http500,
    Http403,
    /// 503 with `Retry-After: 600`.
    Busy,
    /// 429 with `Retry-After: 90`.
    TooMany,
    Garbage,
    TamperMic,
    /// Forwards the body with one byte in its middle altered.
    TamperBody,
    /// Forwards, then lets the partner run its jobs (its asynchronous receipt arrives) before
    /// the HTTP answer reaches the sender.
    ReceiptFirst,
}

type Slot = Arc<OnceLock<Arc<Gateway<MemoryPorts>>>>;

struct Net {
    script: Arc<Mutex<VecDeque<Wire>>>,
}

fn transport(target: Slot, script: Arc<Mutex<VecDeque<Wire>>>) -> FnTransport {
    FnTransport::new(move |req| {
        let wire = script.lock().unwrap().pop_front().unwrap_or(Wire::Forward);
        let ok = |status: u16, body: &str| {
            Ok(HttpResponse {
                status,
                headers: as2::HeaderMap::new(),
                body: body.as_bytes().to_vec(),
            })
        };
        match wire {
            Wire::Refused => return Err(TransportError::Connect("connection refused".into())),
            Wire::Timeout => return Err(TransportError::Timeout),
            Wire::Http500 => return ok(500, "Internal Server Error"),
            Wire::Http403 => return ok(403, "Forbidden: bad credentials"),
            Wire::Busy | Wire::TooMany => {
                let (status, wait) = if wire == Wire::Busy {
                    (503, "600")
                } else {
                    (429, "90")
                };
                let mut headers = as2::HeaderMap::new();
                headers.append("Retry-After", wait);
                return Ok(HttpResponse {
                    status,
                    headers,
                    body: b"slow down".to_vec(),
                });
            }
            Wire::Garbage => return ok(200, "<html>welcome to nginx</html>"),
            Wire::Forward | Wire::TamperMic | Wire::TamperBody | Wire::ReceiptFirst => {}
        }
        let g = target.get().expect("partner wired");
        let mut req = req.clone();
        if wire == Wire::TamperBody {
            let at = req.body.len() / 2;
            req.body[at] ^= 0x20;
        }
        // As the HTTP adapters do: a body past the threshold is read as it comes.
        let reply = if req.body.len() as u64 > g.settings.stream_above {
            let parts = MemoryReader::parts(req.body.clone(), 65_521);
            block_on(g.on_post_streamed(&Default::default(), &req.headers, parts))
        } else {
            block_on(g.on_post(&req.headers, &req.body))
        }
        .map_err(|e| TransportError::Io(e.to_string()))?;
        if wire == Wire::ReceiptFirst {
            for j in g.ports.queue.take_due(g.ports.clock.now()) {
                block_on(g.run_job(&j)).unwrap();
            }
        }
        let mut body = reply.body;
        if wire == Wire::TamperMic {
            let text = String::from_utf8(body).unwrap();
            let at = text.find("Received-Content-MIC: ").unwrap() + 22;
            let mut t = text.into_bytes();
            t[at] = if t[at] == b'A' { b'B' } else { b'A' };
            body = t;
        }
        Ok(HttpResponse {
            status: reply.status,
            headers: reply.headers,
            body,
        })
    })
}

fn gateway(
    me: &str,
    them: &str,
    t: FnTransport,
    tune: &dyn Fn(&mut Partnership),
) -> Gateway<MemoryPorts> {
    let ports = MemoryPorts::new(T0, t);
    ports.directory.add_station(Station {
        as2_id: me.into(),
        key_alias: "me".into(),
        mdn_url: Some(format!("http://{me}.example/as2")),
        mdn_email: None,
        message_id_domain: Some(format!("{}.example", me.to_lowercase())),
    });
    let mut p = Partnership::new(me, them, &format!("http://{them}.example/as2"), "them");
    tune(&mut p);
    ports.directory.add_partnership(p);
    ports
        .keys
        .identities
        .lock()
        .unwrap()
        .insert("me".into(), identity(me).clone());
    ports
        .keys
        .certificates
        .lock()
        .unwrap()
        .insert("them".into(), identity(them).certificate.clone());
    Gateway::new(ports)
}

/// ALPHA and BETA, each the other's partner, sharing one clock, with `tune` applied to both
/// partnerships. Returns (alpha, beta, what ALPHA's requests meet, what BETA's requests meet).
fn pair(
    tune: &dyn Fn(&mut Partnership),
) -> (
    Arc<Gateway<MemoryPorts>>,
    Arc<Gateway<MemoryPorts>>,
    Net,
    Net,
) {
    pair_with(tune, &|_| {})
}

/// [`pair`], with `settings` applied to both gateways'.
fn pair_with(
    tune: &dyn Fn(&mut Partnership),
    settings: &dyn Fn(&mut gateway::Settings),
) -> (
    Arc<Gateway<MemoryPorts>>,
    Arc<Gateway<MemoryPorts>>,
    Net,
    Net,
) {
    let (to_beta, to_alpha): (Slot, Slot) = (Arc::default(), Arc::default());
    let (sa, sb) = (
        Arc::<Mutex<VecDeque<Wire>>>::default(),
        Arc::<Mutex<VecDeque<Wire>>>::default(),
    );
    let mut alpha = gateway(
        "ALPHA",
        "BETA",
        transport(to_beta.clone(), sa.clone()),
        tune,
    );
    settings(&mut alpha.settings);
    let alpha = Arc::new(alpha);
    let mut beta = gateway(
        "BETA",
        "ALPHA",
        transport(to_alpha.clone(), sb.clone()),
        tune,
    );
    beta.ports.clock = alpha.ports.clock.clone();
    settings(&mut beta.settings);
    let beta = Arc::new(beta);
    let _ = to_beta.set(beta.clone());
    let _ = to_alpha.set(alpha.clone());
    (alpha, beta, Net { script: sa }, Net { script: sb })
}

impl Net {
    fn next(&self, w: &[Wire]) {
        self.script.lock().unwrap().extend(w.iter().copied());
    }
}

async fn upload(g: &Gateway<MemoryPorts>, name: &str, data: &[u8]) -> UploadOutcome {
    let key = format!("AS2/send/{}/{}/{name}", station(g), partner(g));
    let meta = g
        .ports
        .store
        .put(&key, data.to_vec(), BTreeMap::new())
        .await
        .unwrap();
    g.on_upload(
        &key,
        Origin::Upload,
        Some(UploadRef {
            version: meta.version,
            etag: Some(meta.etag),
            size: Some(meta.size),
            sequencer: None,
            at: None,
        }),
    )
    .await
    .unwrap()
}

fn station(g: &Gateway<MemoryPorts>) -> String {
    g.ports
        .directory
        .stations
        .lock()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone()
}

fn partner(g: &Gateway<MemoryPorts>) -> String {
    g.ports
        .directory
        .partnerships
        .lock()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .1
        .clone()
}

/// Runs every job due now, until none is left (bounded).
async fn drain(g: &Gateway<MemoryPorts>) -> usize {
    let mut n = 0;
    for _ in 0..50 {
        let jobs = g.ports.queue.take_due(g.ports.clock.now());
        if jobs.is_empty() {
            return n;
        }
        for j in jobs {
            g.run_job(&j).await.unwrap();
            n += 1;
        }
    }
    panic!("jobs kept coming");
}

async fn record(g: &Gateway<MemoryPorts>, id: &str) -> MessageRecord {
    g.ports.log.get(id).await.unwrap().unwrap()
}

/// Every record `g` has (at most 100).
async fn all_records(g: &Gateway<MemoryPorts>) -> Vec<MessageRecord> {
    g.ports
        .log
        .query(&gateway::ports::RecordQuery::of(None, None, 100))
        .await
        .unwrap()
}

/// `g`'s records in `status`.
async fn records_with(g: &Gateway<MemoryPorts>, status: Status) -> Vec<MessageRecord> {
    let all = all_records(g).await;
    all.into_iter().filter(|r| r.status == status).collect()
}

async fn only_record(g: &Gateway<MemoryPorts>, direction: Direction) -> MessageRecord {
    let all: Vec<_> = all_records(g)
        .await
        .into_iter()
        .filter(|r| r.direction == direction)
        .collect();
    assert_eq!(all.len(), 1, "{all:#?}");
    all.into_iter().next().unwrap()
}

fn queued_id(o: &UploadOutcome) -> String {
    match o {
        UploadOutcome::Queued { id } => id.clone(),
        other => panic!("not queued: {other:?}"),
    }
}

fn keys_under(g: &Gateway<MemoryPorts>, prefix: &str) -> Vec<String> {
    g.ports
        .store
        .keys()
        .into_iter()
        .filter(|k| k.starts_with(prefix))
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn upload_send_receive_and_signed_sync_receipt() {
    let (alpha, beta, ..) = pair(&|_| {});
    let edi = b"ISA*00*          *00*          *ZZ*ALPHA*ZZ*BETA~\r\nIEA*1*1~\r\n";
    let id = queued_id(&upload(&alpha, "order 1.x12", edi).await);
    assert!(
        keys_under(&alpha, "AS2/send/").is_empty(),
        "the upload was moved"
    );
    assert_eq!(drain(&alpha).await, 1);

    let sent = record(&alpha, &id).await;
    assert_eq!(sent.status, Status::Delivered, "{:#?}", sent.history);
    let statuses: Vec<_> = sent.history.iter().map(|h| h.status).collect();
    assert_eq!(
        statuses,
        vec![Status::Queued, Status::Sending, Status::Delivered]
    );
    let mdn = sent.mdn.clone().unwrap();
    assert_eq!(
        (mdn.disposition.as_str(), mdn.signed, mdn.mic.as_str()),
        ("processed", true, "matches")
    );
    let base = format!("ALPHA/BETA/outbox/{id}");
    for key in [
        format!("AS2/files/{base}/order 1.x12"),
        format!("AS2/raw-message/{base}/message.bin"),
        format!("AS2/headers/{base}/headers.txt"),
        format!("AS2/raw-mdn/incoming/{id}.mdn"),
    ] {
        assert!(
            alpha.ports.store.bytes(&key).is_some(),
            "missing {key}: {:?}",
            alpha.ports.store.keys()
        );
    }

    let got = only_record(&beta, Direction::Inbox).await;
    assert_eq!(got.status, Status::Received);
    assert_eq!(got.filename, "order 1.x12");
    assert_eq!(
        as2::envelope::message_id_core(&got.message_id),
        as2::envelope::message_id_core(&sent.message_id)
    );
    let payload_key = got.payload_key.clone().unwrap();
    assert_eq!(
        payload_key,
        format!("AS2/files/BETA/ALPHA/inbox/{}/order 1.x12", got.id)
    );
    assert_eq!(beta.ports.store.bytes(&payload_key).unwrap(), edi);
    assert!(beta
        .ports
        .store
        .bytes(&format!("AS2/raw-mdn/outgoing/{}.mdn", got.id))
        .is_some());
    assert!(beta
        .ports
        .store
        .bytes(&format!(
            "AS2/raw-message/BETA/ALPHA/inbox/{}/message.bin",
            got.id
        ))
        .is_some());
    assert_eq!(got.mic, sent.mic, "both sides agree on the MIC");

    // One event each, when the final status was written, saying what happened.
    let events = alpha.ports.events.all();
    assert_eq!(events.len(), 1, "{events:?}");
    let m = events[0].message.clone().unwrap();
    assert_eq!(
        (
            events[0].kind.as_str(),
            m.id.as_str(),
            m.direction,
            m.disposition.as_deref()
        ),
        (
            "delivered",
            id.as_str(),
            Direction::Outbox,
            Some("processed")
        )
    );
    assert_eq!(
        (m.station.as_str(), m.partner.as_str(), m.size),
        ("ALPHA", "BETA", edi.len() as u64)
    );
    let json = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(json["type"], "delivered");
    let received = beta.ports.events.all();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].kind, "received");
    assert_eq!(received[0].message.as_ref().unwrap().id, got.id);
    // Draining again (nothing due) and reading the records tell of nothing more.
    assert_eq!(drain(&alpha).await, 0);
    assert_eq!(alpha.ports.events.all().len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn large_payloads_are_sent_and_received_in_parts() {
    use as2::message::Compression;
    // Past a part (8 MiB) and many of the builder's slices, not a multiple of either; and one
    // byte, so every layer's head and tail are written around almost nothing.
    let big: Vec<u8> = (0..9 * 1024 * 1024 + 4321)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let layers: [(
        &str,
        Option<ContentEncryption>,
        Option<DigestAlgorithm>,
        Compression,
    ); 5] = [
        (
            "sign, compress, encrypt",
            Some(ContentEncryption::Aes256Cbc),
            Some(DigestAlgorithm::Sha256),
            Compression::BeforeSigning,
        ),
        (
            "sign, then compress",
            None,
            Some(DigestAlgorithm::Sha384),
            Compression::AfterSigning,
        ),
        (
            "sign",
            None,
            Some(DigestAlgorithm::Sha256),
            Compression::None,
        ),
        (
            "encrypt",
            Some(ContentEncryption::Aes128Gcm),
            None,
            Compression::None,
        ),
        ("plain", None, None, Compression::None),
    ];
    for (what, encryption, signing, compression) in layers {
        for payload in [&big[..], b"x"] {
            let (alpha, beta, ..) = pair_with(
                &|p| {
                    p.encryption = encryption;
                    p.signing = signing;
                    p.compression = compression;
                    p.signed_mdn = true;
                },
                &|s| s.stream_above = 0,
            );
            let id = queued_id(&upload(&alpha, "big.bin", payload).await);
            drain(&alpha).await;
            let r = record(&alpha, &id).await;
            assert_eq!(r.status, Status::Delivered, "{what}: {:#?}", r.history);
            // What went over the wire is what was stored as sent, and BETA (reading it as it
            // came, opening it from the store) has the payload.
            let posted = alpha.ports.transport.requests.lock().unwrap()[0].clone();
            let raw = alpha
                .ports
                .store
                .bytes(r.raw_key.as_deref().unwrap())
                .unwrap();
            assert_eq!(posted.body, raw, "{what}");
            if encryption.is_some() {
                // The streaming builder's BER, of unknown length (the in-memory one writes DER).
                assert_eq!(raw[..2], [0x30, 0x80], "{what}");
            }
            let b = only_record(&beta, Direction::Inbox).await;
            let key = b.payload_key.clone().unwrap();
            assert!(beta.ports.store.bytes(&key).unwrap() == payload, "{what}");
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_large_message_failing_only_at_its_end_leaves_nothing_in_the_inbox() {
    let (alpha, beta, to_beta, _) = pair_with(
        &|p| {
            p.encryption = None;
            p.compression = as2::message::Compression::None;
            p.signed_mdn = true;
        },
        &|s| s.stream_above = 1024,
    );
    to_beta.next(&[Wire::TamperBody]);
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let id = queued_id(&upload(&alpha, "big.bin", &payload).await);
    drain(&alpha).await;
    let r = record(&alpha, &id).await;
    assert_eq!(r.status, Status::Failed, "{:#?}", r.history);
    assert!(
        r.mdn
            .as_ref()
            .unwrap()
            .disposition
            .contains("integrity-check-failed"),
        "{:#?}",
        r.mdn
    );
    let b = only_record(&beta, Direction::Inbox).await;
    assert_eq!(b.status, Status::Rejected, "{:#?}", b.history);
    assert!(keys_under(&beta, "AS2/files/BETA/ALPHA/inbox").is_empty());
    assert_eq!(
        keys_under(&beta, "AS2/raw-message/BETA/ALPHA/inbox").len(),
        1
    );
}

#[tokio::test(flavor = "current_thread")]
async fn every_receipt_mode() {
    for (mode, signed) in [
        (MdnMode::None, false),
        (MdnMode::Sync, false),
        (MdnMode::Sync, true),
        (MdnMode::Async, false),
        (MdnMode::Async, true),
    ] {
        let (alpha, beta, ..) = pair(&|p| {
            p.mdn = mode;
            p.signed_mdn = signed;
        });
        let id = queued_id(&upload(&alpha, "a.edi", b"UNB+UNOA:1+ALPHA+BETA'").await);
        drain(&alpha).await;
        let r = record(&alpha, &id).await;
        match mode {
            MdnMode::None => assert_eq!(r.status, Status::Sent),
            MdnMode::Sync => assert_eq!(r.status, Status::Delivered, "{:#?}", r.history),
            MdnMode::Async => {
                assert_eq!(r.status, Status::AwaitingMdn);
                assert_eq!(drain(&beta).await, 1, "BETA posts the receipt");
                let r = record(&alpha, &id).await;
                assert_eq!(r.status, Status::Delivered, "{:#?}", r.history);
                assert_eq!(r.mdn.unwrap().signed, signed);
                let b = only_record(&beta, Direction::Inbox).await;
                assert!(
                    b.last_detail()
                        .unwrap()
                        .contains("asynchronous receipt delivered"),
                    "{:#?}",
                    b.history
                );
            }
        }
        assert_eq!(
            only_record(&beta, Direction::Inbox).await.status,
            Status::Received
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn same_name_within_six_hours_is_a_duplicate() {
    let (alpha, ..) = pair(&|_| {});
    queued_id(&upload(&alpha, "inv.edi", b"first").await);
    let mut moved = Vec::new();
    for body in [b"second".as_slice(), b"third"] {
        alpha.ports.clock.advance(Duration::from_secs(3600));
        match upload(&alpha, "inv.edi", body).await {
            UploadOutcome::Duplicate { moved_to, id } => {
                assert!(
                    moved_to.starts_with("AS2/duplicate/ALPHA/BETA/")
                        && moved_to.ends_with("/inv.edi")
                );
                assert_eq!(
                    alpha.ports.store.bytes(&moved_to).unwrap(),
                    body,
                    "kept, not lost"
                );
                assert_eq!(record(&alpha, &id).await.status, Status::Duplicate);
                moved.push(moved_to);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_ne!(
        moved[0], moved[1],
        "two duplicates of one name do not overwrite each other"
    );
    assert_eq!(
        kinds(&alpha),
        ["duplicate", "duplicate"],
        "one event per duplicate"
    );
    // The window runs from the last accepted upload, not from the duplicates.
    alpha.ports.clock.advance(Duration::from_secs(4 * 3600 + 1));
    queued_id(&upload(&alpha, "inv.edi", b"fourth").await);
    // Another name, or another partner's same name, is not a duplicate.
    queued_id(&upload(&alpha, "inv2.edi", b"x").await);
}

/// Uploads `data` as `key` and has `g`'s ports handle its event in a run that stops at
/// failpoint `point` (leaving behind what a run that died there would); returns the event.
async fn upload_stopped_at(
    g: &Gateway<MemoryPorts>,
    point: &str,
    key: &str,
    data: &[u8],
) -> UploadRef {
    let meta = g
        .ports
        .store
        .put(key, data.to_vec(), BTreeMap::new())
        .await
        .unwrap();
    let event = UploadRef::from(&meta);
    let mut stopping = Gateway::new(g.ports.clone());
    stopping.settings = g.settings.clone();
    stopping.settings.failpoints =
        gateway::failpoint::Failpoints::parse(&format!("{point}=error")).unwrap();
    let stopped = stopping
        .on_upload(key, Origin::Upload, Some(event.clone()))
        .await;
    assert!(stopped.is_err(), "{point}: {stopped:?}");
    event
}

#[tokio::test(flavor = "current_thread")]
async fn a_duplicate_interrupted_at_any_step_is_moved_once_and_recorded_once() {
    use gateway::failpoint::Failpoints;
    let key = "AS2/send/ALPHA/BETA/inv.edi";
    // With the event's time (S3's eventTime), and without it (the embedded gateway's watcher,
    // which asks the store).
    for (point, event_time) in Failpoints::DUPLICATE_POINTS
        .iter()
        .flat_map(|p| [(*p, true), (*p, false)])
    {
        let (alpha, ..) = pair(&|_| {});
        queued_id(&upload(&alpha, "inv.edi", b"first").await);
        alpha.ports.clock.advance(Duration::from_secs(60));
        let mut event = upload_stopped_at(&alpha, point, key, b"second").await;
        if !event_time {
            event.at = None;
        }
        // The event comes again, later: the same move is finished under the same record.
        alpha.ports.clock.advance(Duration::from_secs(30));
        let outcome = alpha
            .on_upload(key, Origin::Upload, Some(event.clone()))
            .await
            .unwrap();
        let UploadOutcome::Duplicate { id, moved_to } = outcome else {
            panic!("{point}: {outcome:?}");
        };
        assert_eq!(
            keys_under(&alpha, "AS2/duplicate/"),
            std::slice::from_ref(&moved_to),
            "{point}"
        );
        assert_eq!(alpha.ports.store.bytes(&moved_to).unwrap(), b"second");
        let dups = records_with(&alpha, Status::Duplicate).await;
        assert_eq!(dups.len(), 1, "{point}: {dups:#?}");
        assert_eq!(dups[0].id, id);
        assert_eq!(dups[0].payload_key.as_deref(), Some(moved_to.as_str()));
        assert_eq!(kinds(&alpha), ["duplicate"], "{point}: told once");
        assert_eq!(alpha.ports.store.version_count(key), 0, "{point}");
        // And once more, after the move: nothing left to do, nothing made again.
        let again = alpha
            .on_upload(key, Origin::Upload, Some(event))
            .await
            .unwrap();
        assert!(matches!(again, UploadOutcome::Ignored(_)), "{again:?}");
        assert_eq!(keys_under(&alpha, "AS2/duplicate/").len(), 1);
        assert_eq!(kinds(&alpha), ["duplicate"]);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_duplicate_cut_short_and_seen_again_after_its_window_is_not_sent() {
    let key = "AS2/send/ALPHA/BETA/late.edi";
    for point in gateway::failpoint::Failpoints::DUPLICATE_POINTS {
        let (alpha, beta, ..) = pair(&|_| {});
        queued_id(&upload(&alpha, "late.edi", b"first").await);
        drain(&alpha).await;
        alpha.ports.clock.advance(Duration::from_secs(3600));
        // Copied aside (and at the second point recorded), then stopped before the upload
        // was removed.
        let event = upload_stopped_at(&alpha, point, key, b"second").await;
        // Its event comes again after the first upload's window has ended (a restart, a
        // queue's last retry): the move is finished, nothing is queued, nothing sent.
        alpha.ports.clock.advance(Duration::from_secs(6 * 3600));
        let again = alpha
            .on_upload(key, Origin::Upload, Some(event))
            .await
            .unwrap();
        let UploadOutcome::Duplicate { id, moved_to } = again else {
            panic!("{point}: {again:?}");
        };
        assert_eq!(drain(&alpha).await, 0, "{point}: nothing queued");
        assert_eq!(all_records(&beta).await.len(), 1, "{point}: sent once");
        assert_eq!(keys_under(&alpha, "AS2/duplicate/"), [moved_to]);
        assert_eq!(alpha.ports.store.version_count(key), 0);
        let dups = records_with(&alpha, Status::Duplicate).await;
        assert_eq!(dups.len(), 1, "{point}: {dups:#?}");
        assert_eq!(dups[0].id, id);
        assert_eq!(kinds(&alpha), ["delivered", "duplicate"], "{point}");
        // The name is not held by the late event: the next upload of it is sent.
        queued_id(&upload(&alpha, "late.edi", b"third").await);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_window_is_judged_on_when_a_file_was_uploaded_not_when_its_event_is_handled() {
    use gateway::failpoint::Failpoints;
    let key = "AS2/send/ALPHA/BETA/edge.edi";
    let window = gateway::DEFAULT_DUPLICATE_WINDOW;
    // With the event's time (S3's eventTime), and without it (the embedded watcher, which
    // asks the store when the file was written).
    for event_time in [true, false] {
        // A duplicate uploaded just before the window ends, its move cut short, its event seen
        // again just after (well inside the minute under which an upload counts as seen at
        // once): still a duplicate, not sent.
        for point in Failpoints::DUPLICATE_POINTS {
            let (alpha, beta, ..) = pair(&|_| {});
            queued_id(&upload(&alpha, "edge.edi", b"first").await);
            drain(&alpha).await;
            alpha.ports.clock.advance(window - Duration::from_secs(20));
            let mut event = upload_stopped_at(&alpha, point, key, b"second").await;
            if !event_time {
                event.at = None;
            }
            alpha.ports.clock.advance(Duration::from_secs(30));
            let again = alpha
                .on_upload(key, Origin::Upload, Some(event))
                .await
                .unwrap();
            assert!(
                matches!(again, UploadOutcome::Duplicate { .. }),
                "{point}, event time {event_time}: {again:?}"
            );
            assert_eq!(drain(&alpha).await, 0, "{point}: nothing queued");
            assert_eq!(all_records(&beta).await.len(), 1, "{point}: sent once");
            assert_eq!(records_with(&alpha, Status::Duplicate).await.len(), 1);
            assert_eq!(kinds(&alpha), ["delivered", "duplicate"], "{point}");
        }
        // An upload inside the window whose event is first handled hours after the window
        // ended (a gateway that was down, a backed-up queue) is a duplicate too: it came less
        // than six hours after the one accepted.
        let (alpha, ..) = pair(&|_| {});
        queued_id(&upload(&alpha, "edge.edi", b"first").await);
        alpha.ports.clock.advance(Duration::from_secs(3600));
        let meta = alpha
            .ports
            .store
            .put(key, b"second".to_vec(), BTreeMap::new())
            .await
            .unwrap();
        let event = UploadRef {
            at: event_time.then_some(meta.written),
            ..UploadRef::from(&meta)
        };
        alpha
            .ports
            .clock
            .advance(window + Duration::from_secs(3600));
        let late = alpha
            .on_upload(key, Origin::Upload, Some(event))
            .await
            .unwrap();
        assert!(
            matches!(late, UploadOutcome::Duplicate { .. }),
            "event time {event_time}: {late:?}"
        );
        // The window still runs from the first: an upload now is sent.
        queued_id(&upload(&alpha, "edge.edi", b"third").await);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn twenty_uploads_of_one_name_send_exactly_one() {
    // Twenty uploads of one name are twenty versions of one key, each with its own event. The
    // in-memory ports never wait, so this checks the per-version rule; racing events are tested
    // against the real adapters.
    let (alpha, beta, ..) = pair(&|_| {});
    let key = "AS2/send/ALPHA/BETA/same.edi";
    let mut refs = Vec::new();
    for i in 0..20 {
        let meta = alpha
            .ports
            .store
            .put(key, format!("upload {i}").into_bytes(), BTreeMap::new())
            .await
            .unwrap();
        refs.push(UploadRef {
            version: meta.version,
            etag: Some(meta.etag),
            size: Some(meta.size),
            sequencer: None,
            at: None,
        });
    }
    let mut outcomes = Vec::new();
    for r in refs {
        outcomes.push(alpha.on_upload(key, Origin::Upload, Some(r)).await.unwrap());
    }
    let queued = outcomes
        .iter()
        .filter(|o| matches!(o, UploadOutcome::Queued { .. }))
        .count();
    let dups: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            UploadOutcome::Duplicate { moved_to, .. } => Some(moved_to.clone()),
            _ => None,
        })
        .collect();
    assert_eq!((queued, dups.len()), (1, 19), "{outcomes:?}");
    assert_eq!(
        alpha.ports.store.version_count(key),
        0,
        "every version moved out of AS2/send"
    );
    let mut kept: Vec<Vec<u8>> = dups
        .iter()
        .map(|k| alpha.ports.store.bytes(k).unwrap())
        .collect();
    kept.extend(
        keys_under(&alpha, "AS2/files/ALPHA/BETA/outbox/")
            .iter()
            .map(|k| alpha.ports.store.bytes(k).unwrap()),
    );
    kept.sort();
    let mut want: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("upload {i}").into_bytes())
        .collect();
    want.sort();
    assert_eq!(kept, want, "none lost");
    drain(&alpha).await;
    assert_eq!(all_records(&beta).await.len(), 1, "exactly one sent");
}

#[tokio::test(flavor = "current_thread")]
async fn redelivered_event_does_not_send_twice() {
    use gateway::layout::SendKey;
    use gateway::ports::{ClaimRequest, DuplicateIndex};
    let (alpha, beta, ..) = pair(&|_| {});
    let key = "AS2/send/ALPHA/BETA/once.edi";
    let meta = alpha
        .ports
        .store
        .put(key, b"once".to_vec(), BTreeMap::new())
        .await
        .unwrap();
    let event = UploadRef {
        version: meta.version.clone(),
        etag: Some(meta.etag.clone()),
        size: Some(4),
        sequencer: None,
        at: None,
    };
    // A first run claimed the upload and died before moving it.
    let window = alpha.settings.duplicate_window;
    let claim = alpha
        .ports
        .duplicates
        .claim(
            &SendKey::new("ALPHA", "BETA", "once.edi"),
            &ClaimRequest {
                upload_id: meta.version.as_deref().unwrap(),
                record_id: "20261128055703000-0000dead",
                at: T0,
                window,
            },
        )
        .await
        .unwrap();
    assert_eq!(claim, gateway::ports::Claim::Accepted);
    // The redelivered event finishes that run's work under its record.
    let outcome = alpha
        .on_upload(key, Origin::Upload, Some(event.clone()))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        UploadOutcome::Queued {
            id: "20261128055703000-0000dead".into()
        }
    );
    // And once more, after the file was moved: nothing left to do.
    assert!(matches!(
        alpha
            .on_upload(key, Origin::Upload, Some(event))
            .await
            .unwrap(),
        UploadOutcome::Ignored(_)
    ));
    drain(&alpha).await;
    assert_eq!(
        beta.ports
            .log
            .query(&gateway::ports::RecordQuery::of(None, None, 10))
            .await
            .unwrap()
            .len(),
        1,
        "sent once"
    );
    assert_eq!(
        record(&alpha, "20261128055703000-0000dead").await.status,
        Status::Delivered
    );
}

#[tokio::test(flavor = "current_thread")]
async fn what_is_not_a_send() {
    let (alpha, ..) = pair(&|_| {});
    let store = &alpha.ports.store;
    for (key, why) in [
        ("AS2/send/ALPHA/BETA/", "folder"),
        ("AS2/send/ALPHA/BETA/sub/deep.edi", "deeper"),
        ("AS2/files/ALPHA/BETA/outbox/x/f.edi", "not under AS2/send/"),
        // Still being written, by the conventions of SFTP clients (S3 uploads too).
        ("AS2/send/ALPHA/BETA/.po.edi", "still being uploaded"),
        ("AS2/send/ALPHA/BETA/po.edi.part", "still being uploaded"),
        (
            "AS2/send/ALPHA/BETA/po.edi.filepart",
            "still being uploaded",
        ),
    ] {
        store
            .put(key, b"x".to_vec(), BTreeMap::new())
            .await
            .unwrap();
        match alpha.on_upload(key, Origin::Upload, None).await.unwrap() {
            UploadOutcome::Ignored(reason) => assert!(reason.contains(why), "{key}: {reason}"),
            other => panic!("{key}: {other:?}"),
        }
        assert!(store.bytes(key).is_some(), "{key} left alone");
    }
    store
        .put(
            "AS2/send/ALPHA/BETA/copied.edi",
            b"x".to_vec(),
            BTreeMap::new(),
        )
        .await
        .unwrap();
    assert!(matches!(
        alpha
            .on_upload("AS2/send/ALPHA/BETA/copied.edi", Origin::Copy, None)
            .await
            .unwrap(),
        UploadOutcome::Ignored(_)
    ));
    // A name that cannot be stored: kept where it is, recorded once with the reason.
    store
        .put("AS2/send/ALPHA/BETA/..", b"x".to_vec(), BTreeMap::new())
        .await
        .unwrap();
    for _ in 0..2 {
        match alpha
            .on_upload("AS2/send/ALPHA/BETA/..", Origin::Upload, None)
            .await
            .unwrap()
        {
            UploadOutcome::NotSent { reason, .. } => {
                assert!(reason.contains("cannot be used"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
    let not_sent = all_records(&alpha).await;
    assert_eq!(not_sent.len(), 1, "recorded once: {not_sent:#?}");
    // An unknown partner: kept where it is, the reason recorded.
    store
        .put("AS2/send/ALPHA/GAMMA/x.edi", b"x".to_vec(), BTreeMap::new())
        .await
        .unwrap();
    match alpha
        .on_upload("AS2/send/ALPHA/GAMMA/x.edi", Origin::Upload, None)
        .await
        .unwrap()
    {
        UploadOutcome::NotSent { id, reason } => {
            assert!(reason.contains("no partnership"), "{reason}");
            assert_eq!(record(&alpha, &id).await.status, Status::NotSent);
        }
        other => panic!("{other:?}"),
    }
    assert!(store.bytes("AS2/send/ALPHA/GAMMA/x.edi").is_some());
    // Zero bytes, spaces and non-ASCII are fine.
    let (alpha, beta, ..) = pair(&|_| {});
    let id = queued_id(&upload(&alpha, "leer datei ü.edi", b"").await);
    drain(&alpha).await;
    assert_eq!(record(&alpha, &id).await.status, Status::Delivered);
    let got = only_record(&beta, Direction::Inbox).await;
    assert_eq!(got.filename, "leer datei ü.edi");
    assert_eq!(
        beta.ports.store.bytes(&got.payload_key.unwrap()).unwrap(),
        b""
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_file_that_cannot_be_sent_is_recorded_once_per_upload_whatever_came_after_it() {
    // An unusable name and an unknown partner: two uploads of each key, the first's event
    // coming before the second upload, after it, and again after that.
    for key in ["AS2/send/ALPHA/BETA/..", "AS2/send/ALPHA/GAMMA/x.edi"] {
        let (alpha, ..) = pair(&|_| {});
        let put = |data: &'static [u8]| {
            let store = alpha.ports.store.clone();
            async move {
                store
                    .put(key, data.to_vec(), BTreeMap::new())
                    .await
                    .unwrap()
            }
        };
        let not_sent = |event: UploadRef| {
            let alpha = &alpha;
            async move {
                match alpha.on_upload(key, Origin::Upload, Some(event)).await {
                    Ok(UploadOutcome::NotSent { id, .. }) => id,
                    other => panic!("{key}: {other:?}"),
                }
            }
        };
        let first = UploadRef::from(&put(b"one").await);
        let first_id = not_sent(first.clone()).await;
        alpha.ports.clock.advance(Duration::from_secs(90));
        let second = UploadRef::from(&put(b"second, longer").await);
        alpha.ports.clock.advance(Duration::from_secs(90));
        // The first event again, after the second upload: still the first upload's record.
        assert_eq!(not_sent(first.clone()).await, first_id, "{key}");
        let second_id = not_sent(second.clone()).await;
        assert_ne!(second_id, first_id, "{key}");
        assert_eq!(not_sent(second).await, second_id, "{key}");
        assert_eq!(not_sent(first).await, first_id, "{key}");
        let records = all_records(&alpha).await;
        assert_eq!(records.len(), 2, "{key}: {records:#?}");
        assert_eq!(record(&alpha, &first_id).await.size, 3, "{key}");
        assert_eq!(record(&alpha, &second_id).await.size, 14, "{key}");
        assert!(records.iter().all(|r| r.status == Status::NotSent));
        assert!(alpha.ports.store.bytes(key).is_some(), "{key} stays");
    }
    // The second upload's event handled before the first's, the first seen only after it was
    // replaced: each is recorded under its own upload.
    let key = "AS2/send/ALPHA/BETA/..";
    let (alpha, ..) = pair(&|_| {});
    let store = &alpha.ports.store;
    let first = UploadRef::from(
        &store
            .put(key, b"1".to_vec(), BTreeMap::new())
            .await
            .unwrap(),
    );
    alpha.ports.clock.advance(Duration::from_secs(5));
    let second = UploadRef::from(
        &store
            .put(key, b"22".to_vec(), BTreeMap::new())
            .await
            .unwrap(),
    );
    for event in [second, first] {
        alpha
            .on_upload(key, Origin::Upload, Some(event))
            .await
            .unwrap();
    }
    let mut sizes: Vec<u64> = all_records(&alpha).await.iter().map(|r| r.size).collect();
    sizes.sort();
    assert_eq!(sizes, [1, 2]);
}

#[tokio::test(flavor = "current_thread")]
async fn retries_back_off_and_keep_the_message_id() {
    let (alpha, beta, to_beta, _) = pair(&|p| {
        p.retry = Some(RetryPolicy {
            first_interval_secs: 30,
            ..RetryPolicy::default()
        })
    });
    to_beta.next(&[Wire::Refused, Wire::Http500, Wire::Timeout, Wire::Garbage]);
    let id = queued_id(&upload(&alpha, "r.edi", b"retry me").await);
    let mut waits = Vec::new();
    for _ in 0..4 {
        assert_eq!(drain(&alpha).await, 1);
        let (at, _) = alpha.ports.queue.pending().into_iter().next().unwrap();
        waits.push(at.since(alpha.ports.clock.now()).as_secs());
        assert_eq!(record(&alpha, &id).await.status, Status::Queued);
        assert_eq!(drain(&alpha).await, 0, "nothing before its time");
        alpha.ports.clock.advance(at.since(alpha.ports.clock.now()));
    }
    assert_eq!(waits, vec![30, 60, 120, 240], "doubling from 30 s");
    assert_eq!(drain(&alpha).await, 1);
    let r = record(&alpha, &id).await;
    assert_eq!(r.status, Status::Delivered, "{:#?}", r.history);
    assert_eq!(r.attempts, 5);
    let ids: Vec<_> = alpha
        .ports
        .transport
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|q| q.headers.get("Message-ID").unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 5);
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "a resend keeps the Message-ID"
    );
    assert_eq!(
        only_record(&beta, Direction::Inbox).await.status,
        Status::Received
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_partner_asking_to_wait_is_given_the_time_it_asks_for() {
    let (alpha, _, to_beta, _) = pair(&|p| {
        p.retry = Some(RetryPolicy {
            first_interval_secs: 30,
            ..RetryPolicy::default()
        })
    });
    // 503 asking for 10 minutes, then 429 (too many requests, retried, not a refusal) asking
    // for 90 s where the policy would wait 60.
    to_beta.next(&[Wire::Busy, Wire::TooMany]);
    let id = queued_id(&upload(&alpha, "busy.edi", b"wait for me").await);
    let mut waits = Vec::new();
    for _ in 0..2 {
        assert_eq!(drain(&alpha).await, 1);
        let (at, _) = alpha.ports.queue.pending().into_iter().next().unwrap();
        waits.push(at.since(alpha.ports.clock.now()).as_secs());
        alpha.ports.clock.advance(at.since(alpha.ports.clock.now()));
    }
    assert_eq!(waits, vec![600, 90]);
    let r = record(&alpha, &id).await;
    assert!(
        r.history.iter().any(|h| h
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("HTTP 429") && d.contains("Retry-After: 90 s"))),
        "{:#?}",
        r.history
    );
    assert_eq!(drain(&alpha).await, 1);
    assert_eq!(record(&alpha, &id).await.status, Status::Delivered);

    // Never longer than the policy's longest wait.
    let (alpha, _, to_beta, _) = pair(&|p| {
        p.retry = Some(RetryPolicy {
            first_interval_secs: 30,
            max_interval_secs: 100,
            ..RetryPolicy::default()
        })
    });
    to_beta.next(&[Wire::Busy]);
    queued_id(&upload(&alpha, "capped.edi", b"not that long").await);
    assert_eq!(drain(&alpha).await, 1);
    let (at, _) = alpha.ports.queue.pending().into_iter().next().unwrap();
    assert_eq!(at.since(alpha.ports.clock.now()).as_secs(), 100);
}

#[tokio::test(flavor = "current_thread")]
async fn gives_up_after_the_policy_and_keeps_the_file() {
    let (alpha, _, to_beta, _) = pair(&|p| {
        p.retry = Some(RetryPolicy {
            attempts: 3,
            first_interval_secs: 10,
            ..RetryPolicy::default()
        });
    });
    to_beta.next(&[Wire::Refused; 3]);
    let id = queued_id(&upload(&alpha, "down.edi", b"partner is down").await);
    for _ in 0..3 {
        drain(&alpha).await;
        alpha.ports.clock.advance(Duration::from_secs(3600));
    }
    let r = record(&alpha, &id).await;
    assert_eq!(r.status, Status::Failed);
    assert!(
        r.last_detail()
            .unwrap()
            .contains("gave up after 3 attempts: cannot connect"),
        "{:#?}",
        r.history
    );
    assert_eq!(
        alpha.ports.store.bytes(&r.payload_key.unwrap()).unwrap(),
        b"partner is down"
    );
    assert!(alpha.ports.queue.pending().is_empty());
}

/// ALPHA on its own: its requests meet `wires` and nothing behind them.
fn alone(wires: &[Wire], tune: &dyn Fn(&mut Partnership)) -> Gateway<MemoryPorts> {
    let script = Arc::new(Mutex::new(wires.iter().copied().collect::<VecDeque<_>>()));
    gateway("ALPHA", "BETA", transport(Arc::default(), script), tune)
}

/// Header `name` of the first request `g` made.
fn first_request_header(g: &Gateway<MemoryPorts>, name: &str) -> String {
    let requests = g.ports.transport.requests.lock().unwrap();
    requests[0].headers.get(name).unwrap().to_string()
}

#[tokio::test(flavor = "current_thread")]
async fn deployment_defaults_fill_what_stations_and_partnerships_leave_out() {
    let defaults = Defaults {
        message_id_domain: "edi.example".into(),
        mdn_url: Some("https://as2.edi.example/".into()),
        retry: RetryPolicy {
            attempts: 2,
            first_interval_secs: 7,
            max_interval_secs: 60,
        },
    };
    let mut alpha = alone(&[Wire::Refused, Wire::Refused], &|p| p.mdn = MdnMode::Async);
    alpha.ports.directory.add_station(Station {
        as2_id: "ALPHA".into(),
        key_alias: "me".into(),
        mdn_url: None,
        mdn_email: None,
        message_id_domain: None,
    });
    alpha.settings.defaults = defaults.clone();
    let id = queued_id(&upload(&alpha, "d.edi", b"defaults").await);
    assert_eq!(drain(&alpha).await, 1);
    let (at, _) = alpha.ports.queue.pending().into_iter().next().unwrap();
    assert_eq!(at.since(alpha.ports.clock.now()).as_secs(), 7);
    alpha.ports.clock.advance(Duration::from_secs(7));
    assert_eq!(drain(&alpha).await, 1);
    let r = record(&alpha, &id).await;
    assert_eq!(r.status, Status::Failed);
    assert!(
        r.last_detail()
            .unwrap()
            .contains("gave up after 2 attempts"),
        "{:#?}",
        r.history
    );
    assert_eq!(alpha.ports.transport.requests.lock().unwrap().len(), 2);
    let message_id = first_request_header(&alpha, "Message-ID");
    assert!(message_id.ends_with("@edi.example>"), "{message_id}");
    assert_eq!(
        first_request_header(&alpha, "Receipt-Delivery-Option"),
        "https://as2.edi.example/"
    );

    // The station's and the partnership's own values win over the defaults.
    let mut alpha = alone(&[Wire::Refused], &|p| {
        p.mdn = MdnMode::Async;
        p.retry = Some(RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        });
    });
    alpha.settings.defaults = defaults;
    let id = queued_id(&upload(&alpha, "own.edi", b"own values").await);
    drain(&alpha).await;
    assert_eq!(record(&alpha, &id).await.status, Status::Failed);
    assert!(first_request_header(&alpha, "Message-ID").ends_with("@alpha.example>"));
    assert_eq!(
        first_request_header(&alpha, "Receipt-Delivery-Option"),
        "http://ALPHA.example/as2"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn no_retry_after_a_refusal_or_a_failure_receipt() {
    let (alpha, _, to_beta, _) = pair(&|_| {});
    to_beta.next(&[Wire::Http403]);
    let id = queued_id(&upload(&alpha, "x.edi", b"x").await);
    drain(&alpha).await;
    let r = record(&alpha, &id).await;
    assert_eq!(r.status, Status::Failed);
    assert!(
        r.last_detail().unwrap().contains("HTTP 403"),
        "{:#?}",
        r.history
    );
    assert!(alpha.ports.queue.pending().is_empty());

    // BETA refuses unencrypted messages; ALPHA sends unencrypted: a signed error receipt.
    let (alpha, beta, ..) = pair(&|p| {
        p.encryption = None;
        p.require_encrypted = true;
    });
    let id = queued_id(&upload(&alpha, "plain.edi", b"x").await);
    drain(&alpha).await;
    let r = record(&alpha, &id).await;
    assert_eq!(r.status, Status::Failed);
    assert_eq!(
        r.mdn.unwrap().disposition,
        "processed/error: insufficient-message-security"
    );
    assert!(
        alpha.ports.queue.pending().is_empty(),
        "no retry after a signed failure receipt"
    );
    let b = only_record(&beta, Direction::Inbox).await;
    assert_eq!(b.status, Status::Rejected);
    assert!(
        b.payload_key.is_none() && b.raw_key.is_some(),
        "raw kept, nothing delivered"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_receipt_with_the_wrong_mic_fails_the_message() {
    let (alpha, _, to_beta, _) = pair(&|p| p.signed_mdn = false);
    to_beta.next(&[Wire::TamperMic]);
    let id = queued_id(&upload(&alpha, "x.edi", b"content").await);
    drain(&alpha).await;
    let r = record(&alpha, &id).await;
    assert_eq!(r.status, Status::Failed);
    assert_eq!(r.mdn.as_ref().unwrap().mic, "mismatch");
    assert!(r.last_detail().unwrap().contains("altered in transit"));
}

#[tokio::test(flavor = "current_thread")]
async fn overdue_async_receipt_then_a_late_one() {
    let (alpha, beta, ..) = pair(&|p| {
        p.mdn = MdnMode::Async;
        p.mdn_wait_secs = 600;
    });
    let id = queued_id(&upload(&alpha, "late.edi", b"x").await);
    drain(&alpha).await;
    assert_eq!(record(&alpha, &id).await.status, Status::AwaitingMdn);
    alpha.ports.clock.advance(Duration::from_secs(599));
    drain(&alpha).await;
    assert_eq!(record(&alpha, &id).await.status, Status::AwaitingMdn);
    alpha.ports.clock.advance(Duration::from_secs(2));
    drain(&alpha).await;
    let r = record(&alpha, &id).await;
    assert_eq!(r.status, Status::Failed);
    assert!(r.last_detail().unwrap().starts_with("overdue"));
    drain(&beta).await;
    assert_eq!(
        record(&alpha, &id).await.status,
        Status::Delivered,
        "a late receipt is still taken"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn receipts_nobody_asked_for() {
    let (alpha, beta, ..) = pair(&|p| p.mdn = MdnMode::Async);
    queued_id(&upload(&alpha, "a.edi", b"x").await);
    drain(&alpha).await;
    // BETA's receipt, POSTed to a gateway that never sent that message.
    let (other, ..) = pair(&|_| {});
    let b = only_record(&beta, Direction::Inbox).await;
    let capture = beta.ports.store.bytes(&b.mdn.unwrap().key).unwrap();
    let (h, at) = as2::mime::parse_header_block(&capture, &Default::default()).unwrap();
    let reply = other.on_post(&h, &capture[at..]).await.unwrap();
    assert_eq!(reply.status, 400);
    assert!(
        String::from_utf8_lossy(&reply.body).contains("no message"),
        "{reply:?}"
    );
    assert_eq!(
        keys_under(&other, "AS2/raw-mdn/incoming/_unmatched/").len(),
        1,
        "kept"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_same_message_twice_is_delivered_once() {
    let (alpha, beta, ..) = pair(&|_| {});
    queued_id(&upload(&alpha, "twice.edi", b"once only").await);
    drain(&alpha).await;
    let sent = alpha.ports.transport.requests.lock().unwrap()[0].clone();
    let first = beta
        .ports
        .store
        .bytes(&only_record(&beta, Direction::Inbox).await.mdn.unwrap().key)
        .unwrap();
    let (_, at) = as2::mime::parse_header_block(&first, &Default::default()).unwrap();
    let again = beta.on_post(&sent.headers, &sent.body).await.unwrap();
    assert_eq!(again.status, 200);
    assert_eq!(
        again.body,
        first[at..],
        "the earlier receipt, byte for byte"
    );
    assert_eq!(
        keys_under(&beta, "AS2/files/BETA/ALPHA/inbox/").len(),
        1,
        "delivered once"
    );
    // Without brackets, as IBM Sterling writes Message-IDs, it is the same message.
    let mut h = sent.headers.clone();
    let bare = as2::envelope::message_id_core(h.get("Message-ID").unwrap()).to_string();
    h.set("Message-ID", bare);
    beta.on_post(&h, &sent.body).await.unwrap();
    assert_eq!(keys_under(&beta, "AS2/files/BETA/ALPHA/inbox/").len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn bad_posts() {
    let (alpha, beta, ..) = pair(&|_| {});
    queued_id(&upload(&alpha, "cut.edi", b"cut short").await);
    // Capture ALPHA's request without delivering it, then deliver it cut short.
    let sent = {
        let (a2, _, to, _) = pair(&|_| {});
        to.next(&[Wire::Http500]);
        queued_id(&upload(&a2, "cut.edi", b"cut short").await);
        drain(&a2).await;
        let first = a2.ports.transport.requests.lock().unwrap()[0].clone();
        first
    };
    let cut = &sent.body[..sent.body.len() / 2];
    let reply = beta.on_post(&sent.headers, cut).await.unwrap();
    assert_eq!(reply.status, 200, "answered with an error receipt");
    let parsed =
        as2::mdn::parse(&reply.headers, &reply.body, None, None, &Default::default()).unwrap();
    assert_eq!(
        parsed.disposition.to_field(),
        "processed/error: decryption-failed"
    );
    let r = only_record(&beta, Direction::Inbox).await;
    assert_eq!(r.status, Status::Rejected);
    assert_eq!(
        beta.ports.store.bytes(&r.raw_key.unwrap()).unwrap(),
        cut,
        "the raw message is kept as received"
    );

    // Unknown partner: 4xx, and nothing written outside AS2/raw-message.
    let mut h = sent.headers.clone();
    h.set("AS2-From", "MALLORY");
    let before = beta.ports.store.keys();
    let reply = beta.on_post(&h, &sent.body).await.unwrap();
    assert_eq!(reply.status, 404);
    assert!(String::from_utf8_lossy(&reply.body).contains("no partnership"));
    let new: Vec<_> = beta
        .ports
        .store
        .keys()
        .into_iter()
        .filter(|k| !before.contains(k))
        .collect();
    assert_eq!(new.len(), 1);
    assert!(new[0].starts_with("AS2/raw-message/_rejected/"), "{new:?}");

    // No AS2 headers at all.
    let h: as2::HeaderMap = [("Content-Type", "application/edi-x12")]
        .into_iter()
        .collect();
    let reply = beta.on_post(&h, b"ISA").await.unwrap();
    assert_eq!(reply.status, 400);
    assert!(String::from_utf8_lossy(&reply.body).contains("AS2-From"));
}

/// What the endpoint can refuse from the headers alone, before it reads a body; what is kept of
/// a refused request (headers, the first 64 KiB), and for how long.
#[tokio::test(flavor = "current_thread")]
async fn refused_before_the_body_kept_in_part_and_purged() {
    let (_, beta, ..) = pair(&|_| {});
    let headers: as2::HeaderMap = [
        ("AS2-Version", "1.2"),
        ("AS2-From", "ALPHA"),
        ("AS2-To", "BETA"),
        ("Message-ID", "<precheck@alpha>"),
        (
            "Content-Type",
            "application/pkcs7-mime; smime-type=enveloped-data",
        ),
    ]
    .into_iter()
    .collect();
    assert!(
        beta.precheck(&headers).await.unwrap().is_none(),
        "a partner's message is read"
    );
    let mut mdn_headers = headers.clone();
    mdn_headers.set(
        "Content-Type",
        "multipart/report; report-type=disposition-notification",
    );
    assert!(
        beta.precheck(&mdn_headers).await.unwrap().is_none(),
        "so is its receipt"
    );

    let mut stranger = headers.clone();
    stranger.set("AS2-From", "MALLORY");
    let reply = beta.precheck(&stranger).await.unwrap().unwrap();
    assert_eq!(reply.status, 404);
    assert!(String::from_utf8_lossy(&reply.body).contains("partner MALLORY"));
    let mut anonymous = headers.clone();
    anonymous.remove("AS2-To");
    let reply = beta.precheck(&anonymous).await.unwrap().unwrap();
    assert_eq!(reply.status, 400);
    assert!(String::from_utf8_lossy(&reply.body).contains("AS2-To"));
    let kept = keys_under(&beta, "AS2/raw-message/_rejected/");
    assert_eq!(kept.len(), 2, "{kept:?}");

    // A large body for no partnership, through on_post: its headers and 64 KiB of it.
    let big = vec![b'M'; 1 << 20];
    let reply = beta.on_post(&stranger, &big).await.unwrap();
    assert_eq!(reply.status, 404);
    let kept = keys_under(&beta, "AS2/raw-message/_rejected/");
    let biggest = kept
        .iter()
        .map(|k| beta.ports.store.bytes(k).unwrap())
        .max_by_key(Vec::len)
        .unwrap();
    assert!(
        biggest.len() > 64 * 1024 && biggest.len() < 66 * 1024,
        "{}",
        biggest.len()
    );
    assert!(String::from_utf8_lossy(&biggest).contains("the first 65536 of 1048576 bytes"));

    // Kept for the retention period, then removed; nothing else is.
    let everything_else: Vec<String> = beta
        .ports
        .store
        .keys()
        .into_iter()
        .filter(|k| !k.starts_with("AS2/raw-message/_rejected/"))
        .collect();
    let fortnight = Duration::from_secs(14 * 86_400);
    assert_eq!(beta.purge_rejected(fortnight).await.unwrap(), 0);
    beta.ports.clock.advance(fortnight + Duration::from_secs(1));
    assert_eq!(beta.purge_rejected(fortnight).await.unwrap(), 3);
    assert!(keys_under(&beta, "AS2/raw-message/_rejected/").is_empty());
    let left: Vec<String> = beta.ports.store.keys();
    assert_eq!(left, everything_else);
}

#[tokio::test(flavor = "current_thread")]
async fn an_attempt_cut_off_midway_is_made_again() {
    // The process died after marking the message Sending: the job comes back and the same
    // message (same Message-ID) is sent again; the receiver answers it once.
    let (alpha, beta, to_beta, _) = pair(&|_| {});
    to_beta.next(&[Wire::Http500]);
    let id = queued_id(&upload(&alpha, "crash.edi", b"x").await);
    drain(&alpha).await;
    let mut r = record(&alpha, &id).await;
    r.set_status(
        Status::Sending,
        alpha.ports.clock.now(),
        Some("attempt 2".into()),
    );
    alpha.ports.log.update(&mut r).await.unwrap();
    let outcome = alpha.send(&id).await.unwrap();
    assert!(
        matches!(
            outcome,
            SendOutcome::Done {
                status: Status::Delivered,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(
        only_record(&beta, Direction::Inbox).await.status,
        Status::Received
    );
    // Finished messages are left alone.
    assert_eq!(
        alpha.send(&id).await.unwrap(),
        SendOutcome::Skipped(Status::Delivered)
    );
    alpha
        .run_job(&Job::MdnDeadline {
            id: id.clone(),
            attempt: 0,
        })
        .await
        .unwrap();
    assert_eq!(record(&alpha, &id).await.status, Status::Delivered);
}

#[tokio::test(flavor = "current_thread")]
async fn identical_uploads_without_versions_are_told_apart_by_the_sequencer() {
    let (alpha, ..) = pair(&|_| {});
    let key = "AS2/send/ALPHA/BETA/same.edi";
    let mut outcomes = Vec::new();
    for sequencer in ["0062E99A88DC407460", "0062E99A88DC4074FF"] {
        let meta = alpha
            .ports
            .store
            .put(key, b"identical".to_vec(), BTreeMap::new())
            .await
            .unwrap();
        // As an unversioned bucket reports it: one etag for both, no version id.
        let event = UploadRef {
            version: None,
            etag: Some(meta.etag),
            size: Some(meta.size),
            sequencer: Some(sequencer.into()),
            at: None,
        };
        outcomes.push(
            alpha
                .on_upload(key, Origin::Upload, Some(event))
                .await
                .unwrap(),
        );
    }
    assert!(
        matches!(outcomes[0], UploadOutcome::Queued { .. }),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[1], UploadOutcome::Duplicate { .. }),
        "{outcomes:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_receipt_faster_than_the_http_answer_keeps_the_message_delivered() {
    let (alpha, beta, to_beta, _) = pair(&|p| p.mdn = MdnMode::Async);
    to_beta.next(&[Wire::ReceiptFirst]);
    let id = queued_id(&upload(&alpha, "fast.edi", b"ISA*00~").await);
    drain(&alpha).await;
    let r = record(&alpha, &id).await;
    assert_eq!(r.status, Status::Delivered, "{:#?}", r.history);
    assert_eq!(r.mdn.as_ref().unwrap().mic, "matches");
    // Nothing is waiting for a receipt any more: past the deadline it is still delivered.
    alpha.ports.clock.advance(Duration::from_secs(2 * 3600));
    drain(&alpha).await;
    let r = record(&alpha, &id).await;
    assert_eq!(r.status, Status::Delivered, "{:#?}", r.history);
    assert!(
        !r.history.iter().any(|h| h.status == Status::AwaitingMdn),
        "{:#?}",
        r.history
    );
    assert_eq!(
        only_record(&beta, Direction::Inbox).await.status,
        Status::Received
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_receipt_signed_with_an_expired_certificate_is_a_delivery_with_a_warning() {
    let (alpha, beta, _, _) = pair(&|_| {});
    // BETA's key comes with a certificate valid for two days only.
    let short =
        Identity::generate_self_signed("BETA", 2048, as2::UnixTime(T0.unix().0 - 86_400), 2)
            .unwrap();
    beta.ports
        .keys
        .identities
        .lock()
        .unwrap()
        .insert("me".into(), short.clone());
    alpha
        .ports
        .keys
        .certificates
        .lock()
        .unwrap()
        .insert("them".into(), short.certificate.clone());
    alpha.ports.clock.advance(Duration::from_secs(3 * 86_400));
    let id = queued_id(&upload(&alpha, "late.edi", b"ISA*00~").await);
    drain(&alpha).await;
    let r = record(&alpha, &id).await;
    // The partner stored the file: resending would make a duplicate there.
    assert_eq!(r.status, Status::DeliveredWithWarning, "{:#?}", r.history);
    let why = r.last_detail().unwrap();
    assert!(why.contains("not valid now"), "{why}");
    assert_eq!(
        only_record(&beta, Direction::Inbox).await.status,
        Status::Received
    );
}

/// Sends ALPHA's next message to BETA by hand and returns what BETA answered.
async fn built(alpha: &Gateway<MemoryPorts>, id: &str) -> (as2::HeaderMap, Vec<u8>) {
    // ALPHA builds and stores the message in its first attempt; what it stored is what went out.
    let r = record(alpha, id).await;
    let headers = alpha
        .ports
        .store
        .bytes(r.headers_key.as_ref().unwrap())
        .unwrap();
    let (headers, _) = as2::mime::parse_header_block(&headers, &Default::default()).unwrap();
    let body = alpha
        .ports
        .store
        .bytes(r.raw_key.as_ref().unwrap())
        .unwrap();
    (headers, body)
}

#[tokio::test(flavor = "current_thread")]
async fn what_only_the_in_memory_opener_checks_is_still_received() {
    // Signed with SHA-384 under a micalg that says SHA-256 (a sender's slip): the streaming
    // opener digests what was declared and cannot check it; the body is in memory, so it is
    // opened there, as before.
    let (alpha, beta, to_beta, _) = pair(&|p| {
        p.encryption = None;
        p.signing = Some(DigestAlgorithm::Sha384);
    });
    to_beta.next(&[Wire::Refused]);
    let id = queued_id(&upload(&alpha, "m.edi", b"ISA*00*SLIP~").await);
    alpha.send(&id).await.unwrap();
    let (mut headers, body) = built(&alpha, &id).await;
    let ct = headers.get("Content-Type").unwrap().to_string();
    let slip = ct.replace("micalg=sha-384", "micalg=sha-256");
    assert_ne!(ct, slip);
    headers.set("Content-Type", slip);
    let reply = beta.on_post(&headers, &body).await.unwrap();
    assert_eq!(reply.status, 200);
    let r = only_record(&beta, Direction::Inbox).await;
    assert_eq!(r.status, Status::Received, "{:#?}", r.history);
    let key = r.payload_key.unwrap();
    assert_eq!(beta.ports.store.bytes(&key).unwrap(), b"ISA*00*SLIP~");
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_disk_mid_receive_is_a_retry_not_a_duplicate() {
    let (alpha, beta, to_beta, _) = pair(&|_| {});
    // BETA's inbox cannot be written: BETA answers with an error, ALPHA tries again later.
    *beta.ports.store.failing_prefix.lock().unwrap() = Some("AS2/files/".into());
    let id = queued_id(&upload(&alpha, "full.edi", b"ISA*00~").await);
    assert!(matches!(
        alpha.send(&id).await.unwrap(),
        SendOutcome::Retrying { .. }
    ));
    let inbound = only_record(&beta, Direction::Inbox).await;
    assert_eq!(inbound.status, Status::Receiving, "{:#?}", inbound.history);
    assert!(beta
        .ports
        .store
        .keys()
        .iter()
        .all(|k| !k.starts_with("AS2/files/")));
    // Space again: the retry (same Message-ID) is processed, not called a duplicate.
    *beta.ports.store.failing_prefix.lock().unwrap() = None;
    alpha.ports.clock.advance(Duration::from_secs(60));
    to_beta.next(&[Wire::Forward]);
    drain(&alpha).await;
    let r = record(&alpha, &id).await;
    assert_eq!(r.status, Status::Delivered, "{:#?}", r.history);
    assert_eq!(r.mdn.as_ref().unwrap().disposition, "processed");
    let inbound = only_record(&beta, Direction::Inbox).await;
    assert_eq!(inbound.status, Status::Received, "{:#?}", inbound.history);
    let files: Vec<_> = beta
        .ports
        .store
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("AS2/files/"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
}

/// ALPHA sends `id`; BETA "dies" after storing the raw message and taking the Message-ID: it
/// writes nothing more, not even the lease given up.
async fn die_mid_receive(alpha: &Gateway<MemoryPorts>, beta: &Gateway<MemoryPorts>, id: &str) {
    use std::sync::atomic::Ordering::SeqCst;
    *beta.ports.store.failing_prefix.lock().unwrap() = Some("AS2/files/".into());
    beta.ports.log.failing_updates.store(true, SeqCst);
    let _ = alpha.send(id).await.unwrap();
    *beta.ports.store.failing_prefix.lock().unwrap() = None;
    beta.ports.log.failing_updates.store(false, SeqCst);
}

#[tokio::test(flavor = "current_thread")]
async fn a_receive_that_died_is_taken_over_or_resumed() {
    let (alpha, beta, _, _) = pair(&|_| {});
    let id = queued_id(&upload(&alpha, "crash.edi", b"ISA*00~").await);
    die_mid_receive(&alpha, &beta, &id).await;
    let (headers, body) = built(&alpha, &id).await;

    // A copy within the lease waits for the first attempt, bounded, then asks to be sent later.
    let reply = beta.on_post(&headers, &body).await.unwrap();
    assert_eq!(
        reply.status,
        503,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.headers.get("Retry-After"), Some("30"));
    // Past the lease, a copy takes over and is delivered, once.
    beta.ports.clock.advance(Duration::from_secs(300));
    let reply = beta.on_post(&headers, &body).await.unwrap();
    assert_eq!(reply.status, 200);
    assert!(String::from_utf8_lossy(&reply.body).contains("processed"));
    let inbound = only_record(&beta, Direction::Inbox).await;
    assert_eq!(inbound.status, Status::Received, "{:#?}", inbound.history);
    // And one more copy gets the same receipt, nothing delivered again.
    let again = beta.on_post(&headers, &body).await.unwrap();
    assert_eq!(again.body, reply.body);
    assert_eq!(
        beta.ports
            .store
            .keys()
            .iter()
            .filter(|k| k.starts_with("AS2/files/"))
            .count(),
        1
    );

    // The same death, then a restart: the stored message is finished without the partner.
    let (alpha, beta, _, _) = pair(&|p| p.mdn = MdnMode::Async);
    let id = queued_id(&upload(&alpha, "restart.edi", b"ISA*00~").await);
    die_mid_receive(&alpha, &beta, &id).await;
    let inbound = only_record(&beta, Direction::Inbox).await;
    assert_eq!(
        beta.resume_receive(&inbound.id).await.unwrap(),
        Status::Received
    );
    // The asynchronous receipt it asked for goes out.
    drain(&beta).await;
    drain(&alpha).await;
    let r = record(&alpha, &id).await;
    assert_eq!(r.status, Status::Delivered, "{:#?}", r.history);
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_message_is_resent_and_delivered_once() {
    let (alpha, beta, to_beta, _) = pair(&|p| {
        p.retry = Some(RetryPolicy {
            attempts: 2,
            first_interval_secs: 10,
            ..RetryPolicy::default()
        });
    });
    to_beta.next(&[Wire::Refused; 2]);
    let id = queued_id(&upload(&alpha, "resend.edi", b"send me again").await);
    for _ in 0..2 {
        drain(&alpha).await;
        alpha.ports.clock.advance(Duration::from_secs(3600));
    }
    let failed = record(&alpha, &id).await;
    assert_eq!(failed.status, Status::Failed);

    // Resent with its Message-ID: queued again, the retry policy starting over.
    let resent = alpha.resend(&id, false).await.unwrap();
    assert_eq!(
        resent.message_id.as_deref(),
        Some(failed.message_id.as_str())
    );
    let refused = alpha.resend(&id, false).await.unwrap_err();
    assert!(
        matches!(&refused, gateway::GatewayError::Refused(why) if why.contains("still queued")),
        "{refused}"
    );
    drain(&alpha).await;
    let r = record(&alpha, &id).await;
    assert_eq!(r.status, Status::Delivered, "{:#?}", r.history);
    assert_eq!(r.message_id, failed.message_id);
    assert!(
        r.history.iter().any(|h| h
            .detail
            .as_deref()
            .is_some_and(|d| d.starts_with("resent with the same Message-ID"))),
        "{:#?}",
        r.history
    );
    let delivered = only_record(&beta, Direction::Inbox).await;

    // Again with the same Message-ID: BETA knows it and answers with its first receipt.
    alpha.resend(&id, false).await.unwrap();
    drain(&alpha).await;
    assert_eq!(record(&alpha, &id).await.status, Status::Delivered);
    assert_eq!(only_record(&beta, Direction::Inbox).await.id, delivered.id);

    // As a new message: a new Message-ID, and BETA receives it as another message.
    assert_eq!(alpha.resend(&id, true).await.unwrap().message_id, None);
    drain(&alpha).await;
    let r = record(&alpha, &id).await;
    assert_eq!(r.status, Status::Delivered);
    assert_ne!(r.message_id, failed.message_id);
    let inbox = beta
        .ports
        .log
        .query(&gateway::ports::RecordQuery::of(None, None, 10))
        .await
        .unwrap();
    assert_eq!(
        inbox
            .iter()
            .filter(|x| x.direction == Direction::Inbox)
            .count(),
        2
    );

    // What cannot be resent: a received message, a message that does not exist.
    let e = beta.resend(&delivered.id, false).await.unwrap_err();
    assert!(matches!(e, gateway::GatewayError::Refused(_)), "{e}");
    let e = alpha
        .resend("20261128000000000-00000000", false)
        .await
        .unwrap_err();
    assert!(matches!(e, gateway::GatewayError::NotFound(_)), "{e}");
    assert_eq!(
        record(&beta, &delivered.id).await.history.len(),
        delivered.history.len(),
        "nothing changed"
    );
}

/// The kinds of the events `g` told, in order.
fn kinds(g: &Gateway<MemoryPorts>) -> Vec<String> {
    g.ports
        .events
        .all()
        .iter()
        .map(|e| e.kind.clone())
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn a_final_status_not_told_is_told_by_what_finds_it_and_only_once() {
    use std::sync::atomic::Ordering::SeqCst;
    let (alpha, beta, ..) = pair(&|_| {});
    // Neither bus takes events: the message is delivered and received, and neither record
    // says it was told.
    alpha.ports.events.refusing.store(true, SeqCst);
    beta.ports.events.refusing.store(true, SeqCst);
    let id = queued_id(&upload(&alpha, "untold.edi", b"ISA*00*untold~").await);
    drain(&alpha).await;
    let sent = record(&alpha, &id).await;
    assert_eq!(sent.status, Status::Delivered, "{:#?}", sent.history);
    assert_eq!(sent.told, None);
    let got = only_record(&beta, Direction::Inbox).await;
    assert_eq!((got.status, got.told.as_deref()), (Status::Received, None));
    assert!(kinds(&alpha).is_empty() && kinds(&beta).is_empty());

    // The buses are back. The send job comes again, as a queue redelivers the job of a function
    // that died: it finds the message delivered and tells of it, once.
    alpha.ports.events.refusing.store(false, SeqCst);
    beta.ports.events.refusing.store(false, SeqCst);
    let job = Job::Send { id: id.clone() };
    alpha.run_job(&job).await.unwrap();
    assert_eq!(kinds(&alpha), ["delivered"]);
    let told = record(&alpha, &id).await;
    let event = &alpha.ports.events.all()[0];
    assert_eq!(told.told.as_deref(), Some(event.id.as_str()));
    assert_eq!(
        event.message.as_ref().unwrap().disposition.as_deref(),
        Some("processed")
    );
    // Again, and a receipt deadline for the same message: nothing more.
    alpha.run_job(&job).await.unwrap();
    alpha
        .run_job(&Job::MdnDeadline {
            id: id.clone(),
            attempt: 1,
        })
        .await
        .unwrap();
    assert_eq!(kinds(&alpha), ["delivered"]);

    // BETA learns of its untold receipt when ALPHA's message comes again: it answers with the
    // receipt it gave, delivers nothing twice, and tells of it once.
    let (headers, body) = built(&alpha, &id).await;
    for _ in 0..2 {
        alpha.ports.clock.advance(Duration::from_secs(5));
        let reply = beta.on_post(&headers, &body).await.unwrap();
        assert_eq!(reply.status, 200);
    }
    assert_eq!(kinds(&beta), ["received"]);
    let got = only_record(&beta, Direction::Inbox).await;
    assert_eq!(
        got.told.as_deref(),
        Some(beta.ports.events.all()[0].id.as_str())
    );
    let inbox: Vec<_> = keys_under(&beta, "AS2/files/BETA/ALPHA/inbox/");
    assert_eq!(inbox.len(), 1, "{inbox:?}");

    // A told message's job, run again, tells nothing more either.
    let again = queued_id(&upload(&alpha, "told.edi", b"ISA*00*told~").await);
    drain(&alpha).await;
    alpha.run_job(&Job::Send { id: again }).await.unwrap();
    assert_eq!(kinds(&alpha), ["delivered", "delivered"]);
}

#[tokio::test(flavor = "current_thread")]
async fn an_untold_receipt_is_told_when_the_partner_posts_it_again() {
    use std::sync::atomic::Ordering::SeqCst;
    let (alpha, beta, ..) = pair(&|p| p.mdn = MdnMode::Async);
    alpha.ports.events.refusing.store(true, SeqCst);
    beta.ports.events.refusing.store(true, SeqCst);
    let id = queued_id(&upload(&alpha, "async.edi", b"ISA*00*async~").await);
    drain(&alpha).await;
    drain(&beta).await;
    let r = record(&alpha, &id).await;
    assert_eq!((r.status, r.told.as_deref()), (Status::Delivered, None));
    assert!(kinds(&alpha).is_empty() && kinds(&beta).is_empty());

    // BETA posts its receipt again (its job redelivered): ALPHA keeps the message delivered,
    // and now tells of it, once; BETA, noting the receipt posted, tells of its own record.
    alpha.ports.events.refusing.store(false, SeqCst);
    beta.ports.events.refusing.store(false, SeqCst);
    let inbound = only_record(&beta, Direction::Inbox).await;
    let post_again = Job::SendMdn {
        id: inbound.id.clone(),
        attempt: 0,
    };
    for _ in 0..2 {
        // Each post is a note in both records' histories, a moment later.
        alpha.ports.clock.advance(Duration::from_secs(5));
        beta.run_job(&post_again).await.unwrap();
    }
    assert_eq!(kinds(&alpha), ["delivered"]);
    assert_eq!(kinds(&beta), ["received"]);
    let r = record(&alpha, &id).await;
    assert_eq!(r.status, Status::Delivered, "{:#?}", r.history);
    assert_eq!(
        r.told.as_deref(),
        Some(alpha.ports.events.all()[0].id.as_str())
    );
}

#[tokio::test(flavor = "current_thread")]
async fn where_nobody_beyond_the_process_hears_events_telling_is_not_noted_nor_repeated() {
    use std::sync::atomic::Ordering::SeqCst;
    // Events only counted in memory (the embedded gateway's without webhooks).
    let (alpha, _beta, ..) = pair(&|_| {});
    alpha.ports.events.forgets.store(true, SeqCst);
    let id = queued_id(&upload(&alpha, "counted.edi", b"ISA*00*counted~").await);
    drain(&alpha).await;
    let r = record(&alpha, &id).await;
    assert_eq!((r.status, r.told.as_deref()), (Status::Delivered, None));
    assert_eq!(kinds(&alpha), ["delivered"]);
    // The job again finds nothing to tell: the count is not made twice.
    alpha.run_job(&Job::Send { id: id.clone() }).await.unwrap();
    assert_eq!(kinds(&alpha), ["delivered"]);
    assert_eq!(record(&alpha, &id).await.revision, r.revision);
}
