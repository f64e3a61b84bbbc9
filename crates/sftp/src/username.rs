//! SFTP user names: the seed's rule (Latin letters, digits, hyphen and underscore, not starting
//! with a hyphen) within Transfer Family's own (3 to 100 characters).

use crate::error::{Result, SftpError};

/// Checks a user name, naming the rule it breaks.
pub fn check(name: &str) -> Result<()> {
    let refuse = |rule| {
        Err(SftpError::InvalidUsername {
            name: name.chars().take(120).collect(),
            rule,
        })
    };
    if name.chars().count() < 3 {
        return refuse("it must be at least 3 characters long (AWS Transfer Family)");
    }
    if name.chars().count() > 100 {
        return refuse("it must be at most 100 characters long (AWS Transfer Family)");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return refuse("only Latin letters (a-z, A-Z), digits (0-9), hyphen (-) and underscore (_) may be used");
    }
    if name.starts_with('-') {
        return refuse("it cannot start with a hyphen");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["abc", "acme_edi-01", "A1_", &"x".repeat(100)] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for (bad, rule) in [
            ("ab", "at least 3"),
            (&"x".repeat(101) as &str, "at most 100"),
            ("-acme", "start with a hyphen"),
            ("acme.edi", "Latin letters"),
            ("ac me", "Latin letters"),
            ("jürgen", "Latin letters"),
            ("a@b.c", "Latin letters"),
        ] {
            match check(bad) {
                Err(SftpError::InvalidUsername { rule: r, .. }) => {
                    assert!(r.contains(rule), "{bad}: {r}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
