//! Captured HTTP messages: raw headers, a blank line, then the body.

use as2::mime::{parse_header_block, Limits};
use as2::HeaderMap;

/// Splits a capture into headers and body. A leading request or status line
/// (`POST /as2 HTTP/1.1`, `HTTP/1.1 200 OK`) is skipped.
pub fn parse(data: &[u8]) -> Result<(HeaderMap, &[u8]), String> {
    let mut start = 0;
    if let Some(eol) = data.iter().position(|&b| b == b'\n') {
        let first = String::from_utf8_lossy(&data[..eol]);
        let first = first.trim();
        if first.starts_with("HTTP/") || (first.contains(" HTTP/") && !first.contains(':')) {
            start = eol + 1;
        }
    }
    let limits = Limits {
        max_header_bytes: 1024 * 1024,
        ..Limits::default()
    };
    let (headers, body_at) =
        parse_header_block(&data[start..], &limits).map_err(|e| format!("not a capture: {e}"))?;
    if headers.is_empty() {
        return Err("not a capture: no headers before the blank line".into());
    }
    Ok((headers, &data[start + body_at..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_request_line() {
        let h: HeaderMap = [("AS2-From", "A"), ("Content-Type", "text/plain")]
            .into_iter()
            .collect();
        let mut c = h.to_bytes();
        c.extend_from_slice(b"\r\nbody\r\n\r\nmore");
        let (h2, b) = parse(&c).unwrap();
        assert_eq!(h2, h);
        assert_eq!(b, b"body\r\n\r\nmore");
        let mut with_line = b"POST /as2 HTTP/1.1\r\n".to_vec();
        with_line.extend_from_slice(&c);
        assert_eq!(parse(&with_line).unwrap().0, h);
        assert!(parse(b"\r\nno headers").is_err());
    }
}
