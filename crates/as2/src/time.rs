//! Calendar arithmetic for the few dates the protocol writes. No clock is read here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, the one time representation the engine takes as input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(pub i64);

impl UnixTime {
    /// Converts a `SystemTime` (as the caller's clock gives it).
    pub fn from_system(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => UnixTime(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            Err(e) => UnixTime(-i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX)),
        }
    }

    /// Back to `SystemTime`.
    pub fn to_system(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_secs(self.0.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_secs(self.0.unsigned_abs())
        }
    }

    /// Civil date and time in UTC: (year, month 1-12, day 1-31, hour, minute, second, weekday 0=Sunday).
    pub fn civil(self) -> (i64, u32, u32, u32, u32, u32, u32) {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        // Howard Hinnant's days-to-civil algorithm.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = if m <= 2 { y + 1 } else { y };
        let weekday = (days + 4).rem_euclid(7) as u32;
        (
            year,
            m,
            d,
            (secs / 3600) as u32,
            (secs % 3600 / 60) as u32,
            (secs % 60) as u32,
            weekday,
        )
    }

    /// Parses `2026-11-28`, `2026-11-28T05:47:03Z` or `2026-11-28 05:47:03` (UTC), or plain
    /// seconds since the epoch.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Ok(n) = s.parse::<i64>() {
            return Some(UnixTime(n));
        }
        let s = s
            .strip_suffix('Z')
            .or_else(|| s.strip_suffix("+00:00"))
            .unwrap_or(s);
        let (date, time) = match s.split_once(['T', ' ']) {
            Some((d, t)) => (d, Some(t)),
            None => (s, None),
        };
        let mut d = date.split('-');
        let y: i64 = d.next()?.parse().ok()?;
        let m: i64 = d.next()?.parse().ok()?;
        let day: i64 = d.next()?.parse().ok()?;
        if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
            return None;
        }
        let (hh, mm, ss) = match time {
            None => (0, 0, 0),
            Some(t) => {
                let mut p = t.split(':');
                let hh: i64 = p.next()?.parse().ok()?;
                let mm: i64 = p.next()?.parse().ok()?;
                let ss: i64 = p
                    .next()
                    .map_or(Some(0), |x| x.split('.').next()?.parse().ok())?;
                if hh > 23 || mm > 59 || ss > 60 {
                    return None;
                }
                (hh, mm, ss)
            }
        };
        // Howard Hinnant's days-from-civil algorithm.
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(UnixTime(days * 86_400 + hh * 3600 + mm * 60 + ss))
    }

    /// `YYYYMMDDhhmmss`, sortable; used in Message-IDs.
    pub fn compact(self) -> String {
        let (y, mo, d, h, mi, s, _) = self.civil();
        format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
    }
}

/// RFC 2822 date as used in the `Date` header, always in UTC: `Sat, 28 Nov 2026 05:47:03 +0000`.
pub fn format_rfc2822(t: UnixTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, wd) = t.civil();
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
        DAYS[wd as usize],
        d,
        MONTHS[(mo - 1) as usize],
        y,
        h,
        mi,
        s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        assert_eq!(
            format_rfc2822(UnixTime(0)),
            "Thu, 01 Jan 1970 00:00:00 +0000"
        );
        assert_eq!(
            format_rfc2822(UnixTime(1_795_845_423)),
            "Sat, 28 Nov 2026 05:57:03 +0000"
        );
        assert_eq!(UnixTime(951_782_400).compact(), "20000229000000");
        assert_eq!(UnixTime(-86_400).civil().0, 1969);
        assert_eq!(
            UnixTime::parse("2026-11-28T05:57:03Z"),
            Some(UnixTime(1_795_845_423))
        );
        assert_eq!(UnixTime::parse("2000-02-29"), Some(UnixTime(951_782_400)));
        assert_eq!(UnixTime::parse("12345"), Some(UnixTime(12345)));
        assert_eq!(UnixTime::parse("2026-13-01"), None);
        assert_eq!(UnixTime::parse("yesterday"), None);
    }
}
