//! Command-line values that name an algorithm or a mode: parsed by the engine's own `FromStr`
//! (so the aliases partners' documentation uses work), with the canonical names listed in
//! `--help` and in the error for a name that is not accepted.

use std::ffi::OsStr;

use as2::algorithm::{ContentEncryption, DigestAlgorithm};
use as2::message::Compression;
use as2::receive::ReceiptMic;
use clap::builder::{PossibleValue, TypedValueParser};
use gateway::model::MdnMode;

/// A parser for one kind of name.
#[derive(Clone)]
pub struct Choice<T> {
    names: Vec<&'static str>,
    parse: fn(&str) -> Option<T>,
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Choice<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let text = value.to_string_lossy();
        (self.parse)(&text).ok_or_else(|| {
            let flag = arg.map(|a| format!("--{}", a.get_id())).unwrap_or_default();
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!(
                    "{flag} {text:?} is not accepted; accepted: {}\n",
                    self.names.join(", ")
                ),
            )
            .with_cmd(cmd)
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.names.iter().map(|n| PossibleValue::new(*n))))
    }
}

/// A setting that may be `none` (clap reads a bare `Option` field as "may be left out").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrNone<T>(pub Option<T>);

fn is_none(s: &str) -> bool {
    s.trim().eq_ignore_ascii_case("none")
}

/// `none`, then `names`.
fn with_none(names: Vec<&'static str>) -> Vec<&'static str> {
    std::iter::once("none").chain(names).collect()
}

/// `none` or a cipher.
pub fn cipher() -> Choice<OrNone<ContentEncryption>> {
    Choice {
        names: with_none(ContentEncryption::names()),
        parse: |s| {
            if is_none(s) {
                Some(OrNone(None))
            } else {
                ContentEncryption::from_name(s).map(|c| OrNone(Some(c)))
            }
        },
    }
}

/// `none` or a digest a message can be signed with.
pub fn signing_digest() -> Choice<OrNone<DigestAlgorithm>> {
    Choice {
        names: with_none(DigestAlgorithm::signing_names()),
        parse: |s| {
            if is_none(s) {
                Some(OrNone(None))
            } else {
                DigestAlgorithm::from_name(s)
                    .filter(|d| d.can_sign())
                    .map(|d| OrNone(Some(d)))
            }
        },
    }
}

/// A MIC algorithm.
pub fn mic_algorithm() -> Choice<DigestAlgorithm> {
    Choice {
        names: DigestAlgorithm::signing_names(),
        parse: |s| DigestAlgorithm::from_name(s).filter(|d| d.can_sign()),
    }
}

/// Where compression goes.
pub fn compression() -> Choice<Compression> {
    Choice {
        names: Compression::ALL.iter().map(|c| c.name()).collect(),
        parse: |s| s.parse().ok(),
    }
}

/// How receipts come back.
pub fn mdn_mode() -> Choice<MdnMode> {
    Choice {
        names: MdnMode::ALL.iter().map(|m| m.as_str()).collect(),
        parse: |s| s.parse().ok(),
    }
}

/// Which algorithm our receipts' MIC is in.
pub fn receipt_mic() -> Choice<ReceiptMic> {
    Choice {
        names: ReceiptMic::ALL.iter().map(|m| m.name()).collect(),
        parse: |s| s.parse().ok(),
    }
}
