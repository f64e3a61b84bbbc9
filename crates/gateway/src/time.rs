//! Milliseconds since the Unix epoch: the domain's one notion of time, always from the Clock port.

use std::fmt;
use std::time::Duration;

use as2::UnixTime;

/// A point in time, in milliseconds since the Unix epoch (UTC).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub i64);

impl Millis {
    /// A time as an operator writes it: `2026-11-28`, `2026-11-28T05:47:03Z` (UTC), or
    /// seconds since 1970.
    pub fn parse(s: &str) -> Option<Millis> {
        UnixTime::parse(s).map(|t| Millis(t.0.saturating_mul(1000)))
    }

    /// Whole seconds, for the AS2 engine.
    pub fn unix(self) -> UnixTime {
        UnixTime(self.0.div_euclid(1000))
    }

    /// `YYYYMMDDhhmmssmmm`.
    pub fn compact(self) -> String {
        format!("{}{:03}", self.unix().compact(), self.0.rem_euclid(1000))
    }

    /// This time plus `d`.
    pub fn plus(self, d: Duration) -> Millis {
        Millis(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// The time from `earlier` to this one (zero if `earlier` is later).
    pub fn since(self, earlier: Millis) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s, _) = self.unix().civil();
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
            self.0.rem_euclid(1000)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_arithmetic() {
        let t = Millis(1_795_845_423_007);
        assert_eq!(t.to_string(), "2026-11-28T05:57:03.007Z");
        assert_eq!(t.compact(), "20261128055703007");
        assert_eq!(t.plus(Duration::from_secs(1)).0, 1_795_845_424_007);
        assert_eq!(
            t.plus(Duration::from_secs(6 * 3600)).since(t),
            Duration::from_secs(6 * 3600)
        );
        assert_eq!(t.since(t.plus(Duration::from_secs(1))), Duration::ZERO);
    }
}
