//! Failpoints: named steps of the workflows where a test makes the gateway fail (as a full disk
//! would) or die (as a `kill -9` would), to prove that every step can be interrupted and the
//! message still ends delivered exactly once or honestly failed. Off unless set (the embedded
//! gateway and the Lambdas read `MFTG_FAILPOINTS`, e.g. `receive.stored-payload=abort`).

use crate::error::{GatewayError, Result};

/// What happens at a failpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailAction {
    /// The step fails as if the store or database had (a port error).
    Error,
    /// The process dies on the spot.
    Abort,
}

/// A failpoint setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailpointError {
    /// An item without `=`.
    #[error("failpoint {0:?}: expected point=abort or point=error")]
    Syntax(String),
    /// A point no workflow has.
    #[error(
        "unknown failpoint {0:?} (known: {known}, {aside})",
        known = Failpoints::POINTS.join(", "),
        aside = Failpoints::DUPLICATE_POINTS.join(", ")
    )]
    UnknownPoint(String),
    /// An action other than `abort` and `error`.
    #[error("failpoint {point}: unknown action {action:?}")]
    UnknownAction {
        /// The point.
        point: String,
        /// The action asked for.
        action: String,
    },
}

/// The failpoints that are set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failpoints(Vec<(String, FailAction)>);

impl Failpoints {
    /// Every step that can be interrupted, in the order the workflows reach them.
    pub const POINTS: [&'static str; 11] = [
        "upload.copied",
        "upload.recorded",
        "send.built",
        "send.posted",
        "send.recorded",
        "receive.stored-raw",
        "receive.took-id",
        "receive.stored-payload",
        "receive.stored-receipt",
        "receive.recorded",
        "final.recorded",
    ];

    /// The steps of moving a duplicate upload aside to `AS2/duplicate/`: not on the way of a
    /// delivery, so apart from [`Failpoints::POINTS`].
    pub const DUPLICATE_POINTS: [&'static str; 2] = ["duplicate.copied", "duplicate.recorded"];

    /// The environment variable the gateway's binaries read them from.
    pub const VAR: &'static str = "MFTG_FAILPOINTS";

    /// The failpoints of [`Failpoints::VAR`]'s value, if it is set.
    pub fn from_var(value: Option<String>) -> std::result::Result<Self, FailpointError> {
        match value {
            Some(spec) => Self::parse(&spec),
            None => Ok(Self::default()),
        }
    }

    /// Parses `point=abort, point=error`; an unknown point or action is refused.
    pub fn parse(spec: &str) -> std::result::Result<Self, FailpointError> {
        let mut out = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (point, action) = item
                .split_once('=')
                .ok_or_else(|| FailpointError::Syntax(item.to_string()))?;
            let (point, action) = (point.trim(), action.trim());
            if !Self::POINTS.contains(&point) && !Self::DUPLICATE_POINTS.contains(&point) {
                return Err(FailpointError::UnknownPoint(point.to_string()));
            }
            let action = match action {
                "abort" => FailAction::Abort,
                "error" => FailAction::Error,
                other => {
                    return Err(FailpointError::UnknownAction {
                        point: point.to_string(),
                        action: other.to_string(),
                    })
                }
            };
            out.push((point.to_string(), action));
        }
        Ok(Failpoints(out))
    }

    /// Passes `point`: nothing, unless it is set.
    pub(crate) fn hit(&self, point: &str) -> Result<()> {
        match self.0.iter().find(|(p, _)| p == point).map(|(_, a)| *a) {
            None => Ok(()),
            Some(FailAction::Error) => Err(GatewayError::port("failpoint", point)),
            Some(FailAction::Abort) => {
                tracing::error!(point, "failpoint: the process dies here");
                std::process::abort()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_hit() {
        let f = Failpoints::parse(" send.posted=error ,receive.took-id=abort").unwrap();
        assert!(f.hit("send.built").is_ok());
        assert!(f.hit("send.posted").is_err());
        assert!(Failpoints::parse("send.nowhere=error").is_err());
        let aside = Failpoints::parse("duplicate.recorded=error").unwrap();
        assert!(aside.hit("duplicate.copied").is_ok() && aside.hit("duplicate.recorded").is_err());
        assert!(Failpoints::parse("send.posted=explode").is_err());
        assert!(Failpoints::parse("send.posted").is_err());
        assert_eq!(Failpoints::parse("").unwrap(), Failpoints::default());
    }
}
