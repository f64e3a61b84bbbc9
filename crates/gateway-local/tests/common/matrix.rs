//! The interoperability matrix both partner tests (BouncyCastle and pyas2lib) run: the Drummond
//! matrix {plain, signed, encrypted, signed+encrypted} x {compressed, not} x {no receipt,
//! unsigned, signed}, every cipher x digest with sign+encrypt+compress, asynchronous receipts,
//! OAEP, PSS, AES-GCM, receipts asked in another algorithm than the signature's, a 20 MB payload,
//! binary payloads with bare LFs and non-ASCII file names. Each case is one partnership of ALPHA's.
#![allow(dead_code)]

use as2::algorithm::{ContentEncryption, DigestAlgorithm};
use as2::message::Compression;
use gateway::model::{MdnMode, MessageRecord, Partnership};

/// One partnership of the matrix, used both ways.
#[derive(Debug, Clone)]
pub struct Case {
    pub partner: String,
    pub sign: Option<DigestAlgorithm>,
    pub encrypt: Option<ContentEncryption>,
    pub compress: Compression,
    pub mdn: MdnMode,
    pub signed_mdn: bool,
    /// What the receipt is asked for, as written on the wire (ours take the first).
    pub micalg: &'static str,
    pub oaep: bool,
    pub pss: bool,
    pub payload: Payload,
    pub name: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Payload {
    Edi,
    /// Binary with bare LFs, bare CRs and NULs, as application/octet-stream.
    Binary,
    Large,
}

impl Payload {
    pub fn bytes(self, n: usize) -> Vec<u8> {
        match self {
            Payload::Edi => edi(n),
            Payload::Binary => binary(n, 7000),
            Payload::Large => binary(n, 20 << 20),
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Payload::Edi => "application/edi-x12",
            _ => "application/octet-stream",
        }
    }
}

fn edi(n: usize) -> Vec<u8> {
    let mut out = format!("ISA*00*          *00*          *ZZ*JAVA           *ZZ*ALPHA          *261201*1200*U*00401*{n:09}*0*P*>~\r\n").into_bytes();
    for i in 0..40 {
        out.extend_from_slice(format!("PO1*{i}*{n}*EA*9.25**BP*ITEM-{i:05}~\r\n").as_bytes());
    }
    out
}

fn binary(seed: usize, len: usize) -> Vec<u8> {
    let mut x = seed as u32 | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.push(match x % 23 {
            0 => b'\n',
            1 => b'\r',
            2 => 0,
            _ => (x >> 8) as u8,
        });
    }
    v
}

pub fn digest_name(d: DigestAlgorithm) -> &'static str {
    d.name(as2::algorithm::NameStyle::Hyphenated)
}

/// The whole matrix.
pub fn cases() -> Vec<Case> {
    let base = Case {
        partner: String::new(),
        sign: Some(DigestAlgorithm::Sha256),
        encrypt: Some(ContentEncryption::Aes256Cbc),
        compress: Compression::None,
        mdn: MdnMode::Sync,
        signed_mdn: true,
        micalg: "sha-256",
        oaep: false,
        pss: false,
        payload: Payload::Edi,
        name: "order.x12",
    };
    let mut out = Vec::new();
    // The Drummond matrix, AES-256-CBC and SHA-256.
    for (sign, encrypt, level) in [
        (false, false, "plain"),
        (true, false, "signed"),
        (false, true, "encrypted"),
        (true, true, "both"),
    ] {
        for compress in [Compression::None, Compression::BeforeSigning] {
            for (mdn, signed_mdn, receipt) in [
                (MdnMode::None, false, "none"),
                (MdnMode::Sync, false, "unsigned"),
                (MdnMode::Sync, true, "signed"),
            ] {
                let z = if compress == Compression::None {
                    ""
                } else {
                    "-z"
                };
                out.push(Case {
                    partner: format!("D-{level}{z}-{receipt}"),
                    sign: sign.then_some(DigestAlgorithm::Sha256),
                    encrypt: encrypt.then_some(ContentEncryption::Aes256Cbc),
                    compress,
                    mdn,
                    signed_mdn,
                    ..base.clone()
                });
            }
        }
    }
    // Every cipher x digest, signed, encrypted and compressed.
    for c in ContentEncryption::ALL {
        for d in DigestAlgorithm::ALL.into_iter().filter(|d| d.can_sign()) {
            out.push(Case {
                partner: format!("C-{}-{}", c.name(), digest_name(d)),
                sign: Some(d),
                encrypt: Some(c),
                compress: Compression::BeforeSigning,
                micalg: digest_name(d),
                ..base.clone()
            });
        }
    }
    let more = [
        Case {
            partner: "A-both-async".into(),
            mdn: MdnMode::Async,
            compress: Compression::AfterSigning,
            ..base.clone()
        },
        Case {
            partner: "A-plain-async-unsigned".into(),
            sign: None,
            encrypt: None,
            mdn: MdnMode::Async,
            signed_mdn: false,
            ..base.clone()
        },
        Case {
            partner: "A-encrypted-async".into(),
            sign: None,
            mdn: MdnMode::Async,
            compress: Compression::BeforeSigning,
            ..base.clone()
        },
        Case {
            partner: "K-oaep".into(),
            oaep: true,
            ..base.clone()
        },
        Case {
            partner: "K-pss".into(),
            pss: true,
            compress: Compression::BeforeSigning,
            ..base.clone()
        },
        Case {
            partner: "K-oaep-pss-gcm".into(),
            oaep: true,
            pss: true,
            encrypt: Some(ContentEncryption::Aes128Gcm),
            ..base.clone()
        },
        // Receipts asked in another algorithm than the signature's.
        Case {
            partner: "M-sha1-asks-sha256".into(),
            sign: Some(DigestAlgorithm::Sha1),
            micalg: "sha-256",
            ..base.clone()
        },
        Case {
            partner: "M-sha256-asks-sha512".into(),
            micalg: "sha-512, sha-256",
            ..base.clone()
        },
        Case {
            partner: "M-asks-sha1".into(),
            micalg: "sha1",
            ..base.clone()
        },
        Case {
            partner: "P-binary".into(),
            payload: Payload::Binary,
            name: "image.bin",
            ..base.clone()
        },
        Case {
            partner: "P-binary-signed-only".into(),
            encrypt: None,
            payload: Payload::Binary,
            name: "blob.dat",
            ..base.clone()
        },
        Case {
            partner: "P-large".into(),
            payload: Payload::Large,
            compress: Compression::BeforeSigning,
            name: "large.bin",
            ..base.clone()
        },
        Case {
            partner: "N-latin".into(),
            name: "Müller Bestellung 7.x12",
            ..base.clone()
        },
        Case {
            partner: "N-cjk".into(),
            name: "订单 2026.edi",
            compress: Compression::BeforeSigning,
            ..base.clone()
        },
    ];
    out.extend(more);
    out
}

/// Our partnership for a case (ALPHA -> it, and what ALPHA expects from it).
pub fn partnership(template: &Partnership, c: &Case) -> Partnership {
    let mut p = template.clone();
    p.partner = c.partner.clone();
    p.signing = c.sign;
    p.encryption = c.encrypt;
    p.compression = c.compress;
    p.mdn = c.mdn;
    p.signed_mdn = c.signed_mdn;
    p.mic_algorithm = DigestAlgorithm::from_name(c.micalg.split(',').next().unwrap()).unwrap();
    p.oaep = c.oaep;
    p.pss = c.pss;
    p.content_type = c.payload.content_type().into();
    p.timeout_secs = 120;
    p
}

/// The record of `partner` among `records`.
pub fn record_for<'a>(records: &'a [&'a MessageRecord], partner: &str) -> &'a MessageRecord {
    records
        .iter()
        .find(|r| r.partner == partner)
        .unwrap_or_else(|| panic!("no record for {partner}"))
}

/// Equal bytes, without printing megabytes when they are not.
#[track_caller]
pub fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: {} bytes, {} expected, first difference at {at:?}",
            got.len(),
            want.len()
        );
    }
}

/// Waits (bounded) until ALPHA (`a`, running as `ra`) has received one message for every case,
/// then checks each: received, under the case's file name, with the bytes the partner sent for
/// it (payload number 1000 + the case's index).
pub fn assert_every_case_received(ra: &super::Running, a: &super::Site, cases: &[Case]) {
    let records = super::wait_for(
        ra,
        "every case received",
        std::time::Duration::from_secs(30),
        |rs| super::inbound(rs).len() == cases.len(),
    );
    let inb = super::inbound(&records);
    for (n, c) in cases.iter().enumerate() {
        let r = record_for(&inb, &c.partner);
        assert_eq!(
            r.status,
            gateway::model::Status::Received,
            "{}: {:#?}",
            c.partner,
            r.history
        );
        assert_eq!(r.filename, c.name, "{}", c.partner);
        let got = std::fs::read(a.config.data_dir.join(r.payload_key.as_ref().unwrap())).unwrap();
        assert_same(&got, &c.payload.bytes(1000 + n), &c.partner);
    }
}
