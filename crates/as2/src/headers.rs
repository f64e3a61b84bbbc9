//! An ordered, case-insensitive header list: HTTP headers of an AS2 request and MIME part headers alike.

use std::fmt;

/// One header field; the value is unfolded and trimmed.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// The name as received or written (compare with [`Header::is`]).
    pub name: String,
    /// The value, unfolded (continuation lines joined) and trimmed.
    pub value: String,
}

impl Header {
    /// True if this header has `name`, ignoring ASCII case.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.value)
    }
}

/// Headers in their original order. Lookups ignore case, as every AS2 product needs: Mendelson
/// sends lower-case names, Sterling sends mixed case.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    fields: Vec<Header>,
}

impl HeaderMap {
    /// An empty header list.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first value of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|h| h.is(name))
            .map(|h| h.value.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |h| h.is(name))
            .map(|h| h.value.as_str())
    }

    /// True when at least one `name` header is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Adds a header at the end, keeping any existing one of the same name.
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.fields.push(Header {
            name: name.into(),
            value: value.into(),
        });
    }

    /// Replaces every `name` header by one with `value` (at the first one's position).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.fields.iter().position(|h| h.is(name)) {
            Some(i) => {
                self.fields[i].value = value;
                let mut seen = false;
                self.fields.retain(|h| {
                    if !h.is(name) {
                        return true;
                    }
                    let keep = !seen;
                    seen = true;
                    keep
                });
            }
            None => self.append(name, value),
        }
    }

    /// Removes every `name` header.
    pub fn remove(&mut self, name: &str) {
        self.fields.retain(|h| !h.is(name));
    }

    /// All fields in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.fields.iter()
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Serialises as `Name: value\r\n` lines (no folding, no trailing blank line).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        for h in &self.fields {
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The serialised form, as [`HeaderMap::write_to`] writes it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }
}

impl fmt::Debug for HeaderMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.fields.iter()).finish()
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for HeaderMap {
    fn from_iter<T: IntoIterator<Item = (N, V)>>(iter: T) -> Self {
        let mut map = HeaderMap::new();
        for (n, v) in iter {
            map.append(n, v);
        }
        map
    }
}

impl<'a> IntoIterator for &'a HeaderMap {
    type Item = &'a Header;
    type IntoIter = std::slice::Iter<'a, Header>;
    fn into_iter(self) -> Self::IntoIter {
        self.fields.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_and_set_replaces_all() {
        let mut h: HeaderMap = [("AS2-From", "a"), ("as2-from", "b"), ("Subject", "s")]
            .into_iter()
            .collect();
        assert_eq!(h.get("AS2-FROM"), Some("a"));
        assert_eq!(h.get_all("as2-From").count(), 2);
        h.set("as2-from", "c");
        assert_eq!(h.get_all("AS2-From").collect::<Vec<_>>(), vec!["c"]);
        assert_eq!(h.len(), 2);
        h.remove("SUBJECT");
        assert!(!h.contains("subject"));
    }
}
