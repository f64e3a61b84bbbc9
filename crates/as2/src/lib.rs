//! Sans-IO AS2 (RFC 4130) engine.
//!
//! Bytes in, bytes and typed results out: this crate never opens a file or a socket and never reads
//! the clock. Callers pass the current time where a protocol step needs one (the `Date` header, a
//! certificate validity check), which also lets a captured message be checked "as of" the day it was
//! received.
//!
//! The pieces, outermost first:
//! - [`message`] builds an outbound AS2 message (compress, sign, encrypt) and returns its HTTP
//!   headers, body and the MIC the receipt must echo.
//! - [`receive`] opens an inbound message: decrypt, verify, decompress, in whatever order they
//!   were applied, with the partnership's security policy enforced; [`receive_stream`] does the
//!   same as the body is fed, in constant memory ([`message_stream`] builds that way).
//! - [`mdn`] builds and parses Message Disposition Notifications (receipts).
//! - [`envelope`] is what all three share: AS2 IDs, Message-IDs, the AS2 headers, the receipt
//!   request.
//! - [`keys`] loads certificates and keys from PEM, DER, PKCS#12 and JKS.
//! - [`mime`], [`cms`], [`mic`], [`filename`] and [`algorithm`] are the building blocks, each
//!   exposing only what callers outside the engine use (parsing header blocks and entities,
//!   inspecting, signing, encrypting and compressing CMS, for tools and tests that build odd
//!   messages); DER, S/MIME framing, zlib, the JKS and PKCS#12 readers and OpenSSL's FFI stay
//!   inside.

pub mod algorithm;
mod asn1;
pub mod cms;
mod deflate;
pub mod envelope;
mod error;
mod ffi;
pub mod filename;
mod headers;
mod ids;
pub mod keys;
pub mod mdn;
pub mod message;
pub mod message_stream;
pub mod mic;
pub mod mime;
mod pkcs12;
pub mod receive;
pub mod receive_stream;
mod smime;
mod time;

pub use error::{CmsStructure, Disposition, Error, Result};
pub use headers::HeaderMap;
pub use ids::{hex, hmac_sha256, random_hex};
pub use smime::Layer;
pub use time::{format_rfc2822, UnixTime};

/// The AS2 version this engine speaks: 1.2 adds compression (RFC 5402) to 1.1.
pub const AS2_VERSION: &str = "1.2";

/// The README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
