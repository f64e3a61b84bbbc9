//! The storage layout of the seed (section 1.3), in one place: every object key the gateway
//! writes is made here, from parts that have been checked first.

use std::fmt;

use as2::HeaderMap;

use crate::error::{GatewayError, Result};
use crate::time::Millis;

/// Everything the gateway keeps in the bucket is under this root.
pub const ROOT: &str = "AS2/";
/// Where SFTP users drop files to send: `<station>/<partner>/<name>`.
pub const SEND: &str = "AS2/send/";
/// Same-name uploads within the duplicate window, moved aside: `<st>/<pa>/<folder>/<name>`.
pub const DUPLICATE: &str = "AS2/duplicate/";
/// Payloads sent and received: `<st>/<pa>/<inbox|outbox>/<folder>/<name>`.
pub const FILES: &str = "AS2/files/";
/// The AS2 messages as they went over the wire (refused ones under `_rejected/`).
pub const RAW_MESSAGE: &str = "AS2/raw-message/";
/// Receipts as they went over the wire: `incoming/` (of what we sent), `outgoing/` (we sent).
pub const RAW_MDN: &str = "AS2/raw-mdn/";
/// The HTTP headers of each message.
pub const HEADERS: &str = "AS2/headers/";
/// `identity.jks`, `trust.jks`, `https.jks` (see [`keystore`]).
pub const KEYSTORE: &str = "AS2/keystore/";
/// Scratch space (the seed's `AS2/tmp`): lifecycle rules empty it, SFTP users cannot reach it.
pub const TMP: &str = "AS2/tmp/";

/// Every root, with what it holds (`mftg layout` shows them).
pub const ROOTS: [(&str, &str); 8] = [
    (
        SEND,
        "files to send, dropped by SFTP users: <station>/<partner>/<name>",
    ),
    (
        DUPLICATE,
        "same-name uploads inside the duplicate window, moved aside",
    ),
    (
        FILES,
        "payloads sent and received: <station>/<partner>/<inbox|outbox>/<folder>/",
    ),
    (RAW_MESSAGE, "AS2 messages as they went over the wire"),
    (RAW_MDN, "receipts as they went over the wire"),
    (HEADERS, "the HTTP headers of each message"),
    (KEYSTORE, "identity.jks, trust.jks, https.jks"),
    (TMP, "scratch space"),
];

/// How long the seed's lifecycle rules (section 2.2) keep what is under a root: current
/// versions become noncurrent `current_days` after they were written and are deleted
/// `noncurrent_days` after that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The root the rule covers.
    pub root: &'static str,
    /// Days until a version becomes noncurrent.
    pub current_days: u32,
    /// Days a noncurrent version is kept.
    pub noncurrent_days: u32,
}

/// Every root whose objects expire, and when. The deployment templates and the lifecycle
/// installer write these; their checks compare against this list.
pub const RETENTION: [Retention; 5] = [
    Retention::days(FILES, 35, 35),
    Retention::days(RAW_MESSAGE, 35, 35),
    Retention::days(RAW_MDN, 35, 35),
    Retention::days(HEADERS, 35, 35),
    Retention::days(TMP, 1, 1),
];

/// Roots nothing ever expires under: files waiting to be sent, duplicates, keystores.
pub const KEPT: [&str; 3] = [SEND, DUPLICATE, KEYSTORE];

/// Roots SFTP users can neither list nor read.
pub const PRIVATE: [&str; 2] = [KEYSTORE, TMP];

/// Days after which a multipart upload left incomplete anywhere in the bucket is aborted.
pub const INCOMPLETE_UPLOAD_DAYS: u32 = 7;

impl Retention {
    const fn days(root: &'static str, current_days: u32, noncurrent_days: u32) -> Retention {
        Retention {
            root,
            current_days,
            noncurrent_days,
        }
    }

    /// The root's own name: `files`, `raw-message`, `tmp`.
    pub fn name(&self) -> &'static str {
        let inner = self.root.strip_prefix(ROOT).unwrap_or(self.root);
        inner.strip_suffix('/').unwrap_or(inner)
    }
}

/// Whether what is stored under `key` is for the gateway's eyes only (keystores, the HTTP headers
/// of messages): a directory store writes such files readable by their owner only.
pub fn is_private(key: &str) -> bool {
    key.starts_with(KEYSTORE) || key.starts_with(HEADERS)
}

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received from a partner.
    Inbox,
    /// Sent to a partner.
    Outbox,
}

impl Direction {
    /// `inbox` or `outbox`, as in the layout.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbox => "inbox",
            Direction::Outbox => "outbox",
        }
    }
}

impl std::str::FromStr for Direction {
    type Err = String;

    /// `inbox` or `outbox`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim() {
            "inbox" => Ok(Direction::Inbox),
            "outbox" => Ok(Direction::Outbox),
            other => Err(format!("unknown direction {other:?} (inbox or outbox)")),
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks an AS2 ID before it becomes part of a key: the engine's rule for AS2 IDs that name
/// folders ([`as2::envelope::validate_as2_id_as_folder`]), as a naming error.
pub fn check_as2_id(id: &str) -> Result<()> {
    as2::envelope::validate_as2_id_as_folder(id).map_err(|e| match e {
        as2::Error::Config(why) => GatewayError::InvalidName(why),
        other => GatewayError::InvalidName(other.to_string()),
    })
}

/// Checks a file name before it becomes the last part of a key: not empty, at most 255 bytes,
/// no path separators or control characters, not `.` or `..`. Spaces and non-ASCII are fine.
pub fn check_file_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(GatewayError::InvalidName(format!(
            "file name {name:?} cannot be used in a storage path"
        )))
    }
}

/// A message's own folder name: `<UTC timestamp to the millisecond>-<random>`, unique and
/// sortable by time (seed section 3.2).
pub fn new_folder(now: Millis) -> String {
    format!("{}-{}", now.compact(), as2::random_hex(4))
}

/// A file dropped for sending: `AS2/send/<station>/<partner>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendKey {
    /// Our station's AS2 ID.
    pub station: String,
    /// The partner's AS2 ID.
    pub partner: String,
    /// The file name.
    pub name: String,
}

/// Why an object under `AS2/send/` does not trigger a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotASend {
    /// Not under `AS2/send/` at all.
    OutsideSend,
    /// A folder marker (`.../`) or the station or partner folder itself.
    Folder,
    /// Deeper than `AS2/send/<station>/<partner>/<name>`.
    TooDeep,
    /// A station or partner folder name that cannot be an AS2 ID (see [`check_as2_id`]).
    Invalid(String),
    /// A file for a station and partner whose name cannot be used (see [`check_file_name`]).
    UnusableName {
        /// The station folder.
        station: String,
        /// The partner folder.
        partner: String,
        /// What is wrong with the name.
        reason: String,
    },
    /// A file still being written, by the conventions of upload clients: a name starting with
    /// `.`, or ending in `.part` or `.filepart`. It is sent once it is renamed.
    InProgress,
}

/// Whether `name` is, by the common client conventions, a file still being uploaded.
pub fn in_progress(name: &str) -> bool {
    (name.starts_with('.') && name != "." && name != "..")
        || name.ends_with(".part")
        || name.ends_with(".filepart")
}

impl fmt::Display for NotASend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotASend::OutsideSend => f.write_str("not under AS2/send/"),
            NotASend::Folder => f.write_str("a folder, not a file"),
            NotASend::TooDeep => {
                f.write_str("deeper than AS2/send/<station>/<partner>/<file>; only files placed directly there are sent")
            }
            NotASend::Invalid(why) => f.write_str(why),
            NotASend::UnusableName { reason, .. } => f.write_str(reason),
            NotASend::InProgress => f.write_str("still being uploaded (a temporary name)"),
        }
    }
}

impl SendKey {
    /// The file `name` sent by `station` to `partner` (not checked: [`SendKey::parse`] checks).
    pub fn new(station: &str, partner: &str, name: &str) -> SendKey {
        SendKey {
            station: station.to_string(),
            partner: partner.to_string(),
            name: name.to_string(),
        }
    }

    /// Reads a decoded object key. Only files directly at `AS2/send/<st>/<pa>/<name>` qualify.
    pub fn parse(key: &str) -> std::result::Result<SendKey, NotASend> {
        let rest = key.strip_prefix(SEND).ok_or(NotASend::OutsideSend)?;
        if rest.is_empty() || rest.ends_with('/') {
            return Err(NotASend::Folder);
        }
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [station, partner, name] => {
                check_as2_id(station).map_err(|e| NotASend::Invalid(e.to_string()))?;
                check_as2_id(partner).map_err(|e| NotASend::Invalid(e.to_string()))?;
                if in_progress(name) {
                    return Err(NotASend::InProgress);
                }
                check_file_name(name).map_err(|e| NotASend::UnusableName {
                    station: station.to_string(),
                    partner: partner.to_string(),
                    reason: e.to_string(),
                })?;
                Ok(SendKey {
                    station: station.to_string(),
                    partner: partner.to_string(),
                    name: name.to_string(),
                })
            }
            [_] | [_, _] => Err(NotASend::Folder),
            _ => Err(NotASend::TooDeep),
        }
    }

    /// The key again.
    pub fn key(&self) -> String {
        format!("{SEND}{}/{}/{}", self.station, self.partner, self.name)
    }
}

/// The keys of one message's objects, all under its own folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePaths {
    station: String,
    partner: String,
    direction: Direction,
    folder: String,
}

impl MessagePaths {
    /// Paths for a message between `station` and `partner` (both already checked).
    pub fn new(station: &str, partner: &str, direction: Direction, folder: &str) -> Result<Self> {
        check_as2_id(station)?;
        check_as2_id(partner)?;
        Ok(MessagePaths {
            station: station.to_string(),
            partner: partner.to_string(),
            direction,
            folder: folder.to_string(),
        })
    }

    /// `AS2/files/<st>/<pa>/<inbox|outbox>/<folder>/<name>`: the payload.
    pub fn payload(&self, name: &str) -> Result<String> {
        check_file_name(name)?;
        Ok(format!("{}/{name}", self.dir(FILES)))
    }

    /// `AS2/raw-message/<st>/<pa>/<inbox|outbox>/<folder>/message.bin`: the body as sent or received.
    pub fn raw_message(&self) -> String {
        format!("{}/message.bin", self.dir(RAW_MESSAGE))
    }

    /// `AS2/headers/<st>/<pa>/<inbox|outbox>/<folder>/headers.txt`: the HTTP headers of that body.
    pub fn headers(&self) -> String {
        format!("{}/headers.txt", self.dir(HEADERS))
    }

    /// `AS2/raw-mdn/<incoming|outgoing>/<folder>.mdn`: the receipt for this message, as a capture
    /// (headers, blank line, body). Outbound messages get incoming receipts and vice versa.
    pub fn mdn(&self) -> String {
        let way = match self.direction {
            Direction::Outbox => "incoming",
            Direction::Inbox => "outgoing",
        };
        format!("{RAW_MDN}{way}/{}.mdn", self.folder)
    }

    fn dir(&self, root: &str) -> String {
        format!(
            "{root}{}/{}/{}/{}",
            self.station, self.partner, self.direction, self.folder
        )
    }
}

/// `AS2/duplicate/<st>/<pa>/<folder>/<name>`: where a duplicate upload is kept.
pub fn duplicate(send: &SendKey, folder: &str) -> String {
    format!(
        "{DUPLICATE}{}/{}/{folder}/{}",
        send.station, send.partner, send.name
    )
}

/// Where refused requests are kept.
pub const REJECTED: &str = "AS2/raw-message/_rejected/";

/// Where receipts that match nothing are kept.
pub const UNMATCHED_MDN: &str = "AS2/raw-mdn/incoming/_unmatched/";

/// `AS2/raw-message/_rejected/<folder>.as2`: a POST that names no partnership we have, kept as
/// a capture (its headers and the start of its body). Nothing else is written for it.
pub fn rejected(folder: &str) -> String {
    format!("{REJECTED}{folder}.as2")
}

/// `AS2/raw-mdn/incoming/_unmatched/<folder>.mdn`: a receipt that matches no message we sent.
pub fn unmatched_mdn(folder: &str) -> String {
    format!("{UNMATCHED_MDN}{folder}.mdn")
}

/// The keystores of the seed's layout.
pub mod keystore {
    /// Station keys and certificates.
    pub const IDENTITY: &str = "AS2/keystore/identity.jks";
    /// Partner certificates (signature checks, encryption to them).
    pub const TRUST: &str = "AS2/keystore/trust.jks";
    /// Our HTTPS key and certificate, and the TLS trust anchors of partners' servers.
    pub const HTTPS: &str = "AS2/keystore/https.jks";
}

/// Headers that carry credentials whatever the partnership: never stored.
const SECRET_HEADERS: [&str; 3] = ["Authorization", "Proxy-Authorization", "Cookie"];

/// `headers` with the values of credentials (and of `also`, a partnership's own secret headers)
/// replaced, as they are stored: stored headers are read by people and tools that must not
/// learn a partner's password.
pub fn redacted(headers: &HeaderMap, also: &[String]) -> HeaderMap {
    headers
        .iter()
        .map(|h| {
            let secret = SECRET_HEADERS.iter().any(|s| h.is(s)) || also.iter().any(|s| h.is(s));
            let value = if secret {
                "[redacted]".to_string()
            } else {
                h.value.clone()
            };
            (h.name.clone(), value)
        })
        .collect()
}

/// The headers and body of an HTTP exchange as one capture: headers (credentials redacted),
/// blank line, body.
pub fn capture(headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    let mut out = redacted(headers, &[]).to_bytes();
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// How much of a refused request's body is kept: enough to see what it was.
const REJECTED_BODY_KEPT: usize = 64 * 1024;

/// A refused request as it is kept: its headers (credentials redacted) and at most the first
/// 64 KiB of its body, with a note of how long it was.
pub fn rejected_capture(headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    if body.len() <= REJECTED_BODY_KEPT {
        return capture(headers, body);
    }
    let mut h = headers.clone();
    h.append(
        "X-Mftg-Body-Kept",
        format!("the first {REJECTED_BODY_KEPT} of {} bytes", body.len()),
    );
    capture(&h, &body[..REJECTED_BODY_KEPT])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_under_its_root() {
        let roots = [
            SEND,
            DUPLICATE,
            FILES,
            RAW_MESSAGE,
            RAW_MDN,
            HEADERS,
            KEYSTORE,
            TMP,
        ];
        for root in roots {
            assert!(root.starts_with(ROOT) && root.ends_with('/'), "{root}");
        }
        assert!(REJECTED.starts_with(RAW_MESSAGE));
        assert!(UNMATCHED_MDN.starts_with(RAW_MDN));
        for k in [keystore::IDENTITY, keystore::TRUST, keystore::HTTPS] {
            assert!(k.starts_with(KEYSTORE) && is_private(k), "{k}");
        }
        let names: Vec<_> = RETENTION.iter().map(Retention::name).collect();
        assert_eq!(names, ["files", "raw-message", "raw-mdn", "headers", "tmp"]);
        for kept in KEPT {
            assert!(
                !RETENTION.iter().any(|r| kept.starts_with(r.root)),
                "{kept}"
            );
        }
    }

    #[test]
    fn send_keys() {
        let k = SendKey::parse("AS2/send/ALPHA/BETA/order 1.édi").unwrap();
        assert_eq!(
            (k.station.as_str(), k.partner.as_str(), k.name.as_str()),
            ("ALPHA", "BETA", "order 1.édi")
        );
        assert_eq!(k.key(), "AS2/send/ALPHA/BETA/order 1.édi");
        assert_eq!(
            SendKey::parse("AS2/send/ALPHA/BETA/"),
            Err(NotASend::Folder)
        );
        assert_eq!(SendKey::parse("AS2/send/ALPHA/BETA"), Err(NotASend::Folder));
        assert_eq!(SendKey::parse("AS2/send/ALPHA/"), Err(NotASend::Folder));
        assert_eq!(SendKey::parse("AS2/send/"), Err(NotASend::Folder));
        assert_eq!(
            SendKey::parse("AS2/send/A/B/sub/x.edi"),
            Err(NotASend::TooDeep)
        );
        assert_eq!(
            SendKey::parse("AS2/files/A/B/x"),
            Err(NotASend::OutsideSend)
        );
        assert!(matches!(
            SendKey::parse("AS2/send/A/B/.."),
            Err(NotASend::UnusableName { .. })
        ));
        assert!(matches!(
            SendKey::parse("AS2/send/A/B/a\u{1}b"),
            Err(NotASend::UnusableName { .. })
        ));
        assert!(matches!(
            SendKey::parse("AS2/send/A/B/x.edi.filepart"),
            Err(NotASend::InProgress)
        ));
        assert!(matches!(
            SendKey::parse("AS2/send/A/B/.x.edi"),
            Err(NotASend::InProgress)
        ));
        assert!(matches!(
            SendKey::parse("AS2/send/A//x"),
            Err(NotASend::Invalid(_))
        ));
    }

    #[test]
    fn ids_and_names() {
        assert!(check_as2_id("My Company 01").is_ok());
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a\\b",
            " lead",
            "tab\t",
            &"x".repeat(129),
            "é",
        ] {
            assert!(check_as2_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_file_name("ünïcode name.x12").is_ok());
        for bad in ["", ".", "..", "a/b", "nul\0", &"x".repeat(256)] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn message_paths() {
        let p = MessagePaths::new(
            "ALPHA",
            "BETA",
            Direction::Inbox,
            "20261128054703123-0a0b0c0d",
        )
        .unwrap();
        assert_eq!(
            p.payload("po.x12").unwrap(),
            "AS2/files/ALPHA/BETA/inbox/20261128054703123-0a0b0c0d/po.x12"
        );
        assert_eq!(
            p.raw_message(),
            "AS2/raw-message/ALPHA/BETA/inbox/20261128054703123-0a0b0c0d/message.bin"
        );
        assert_eq!(
            p.headers(),
            "AS2/headers/ALPHA/BETA/inbox/20261128054703123-0a0b0c0d/headers.txt"
        );
        assert_eq!(
            p.mdn(),
            "AS2/raw-mdn/outgoing/20261128054703123-0a0b0c0d.mdn"
        );
        assert!(p.payload("../x").is_err());
        let a = new_folder(Millis(1_795_845_423_123));
        let b = new_folder(Millis(1_795_845_423_123));
        assert!(a.starts_with("20261128055703123-") && a != b, "{a}");
        assert!(new_folder(Millis(1_795_845_423_124)) > a, "sortable");
    }
}
