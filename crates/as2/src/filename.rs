//! File names on the wire: the ASCII spelling partners that read only the plain `filename` get,
//! the Content-Disposition we write, and making a received name safe to store.

use crate::mime::quote_param;

/// ASCII spellings of U+00C0 to U+017F (Latin-1 letters and Latin Extended-A): the letter without
/// its accents, `ss` for `ß`, `AE` for `Æ`; `_` for the two signs among them.
const LATIN_ASCII: [&str; 192] = [
    "A", "A", "A", "A", "A", "A", "AE", "C", "E", "E", "E", "E", "I", "I", "I", "I", // U+00C0
    "D", "N", "O", "O", "O", "O", "O", "_", "O", "U", "U", "U", "U", "Y", "Th",
    "ss", // U+00D0
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i", // U+00E0
    "d", "n", "o", "o", "o", "o", "o", "_", "o", "u", "u", "u", "u", "y", "th", "y", // U+00F0
    "A", "a", "A", "a", "A", "a", "C", "c", "C", "c", "C", "c", "C", "c", "D", "d", // U+0100
    "D", "d", "E", "e", "E", "e", "E", "e", "E", "e", "E", "e", "G", "g", "G", "g", // U+0110
    "G", "g", "G", "g", "H", "h", "H", "h", "I", "i", "I", "i", "I", "i", "I", "i", // U+0120
    "I", "i", "IJ", "ij", "J", "j", "K", "k", "k", "L", "l", "L", "l", "L", "l",
    "L", // U+0130
    "l", "L", "l", "N", "n", "N", "n", "N", "n", "n", "N", "n", "O", "o", "O", "o", // U+0140
    "O", "o", "OE", "oe", "R", "r", "R", "r", "R", "r", "S", "s", "S", "s", "S",
    "s", // U+0150
    "S", "s", "T", "t", "T", "t", "T", "t", "U", "u", "U", "u", "U", "u", "U", "u", // U+0160
    "U", "u", "U", "u", "W", "w", "Y", "y", "Y", "Z", "z", "Z", "z", "Z", "z", "s", // U+0170
];

/// `name` in ASCII for partners that read only the plain `filename`: accented Latin letters lose
/// their accents, other non-ASCII characters become `_`.
pub fn ascii_filename(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match u32::from(c) {
            0..=0x7f => out.push(c),
            code @ 0xc0..=0x17f => out.push_str(LATIN_ASCII[(code - 0xc0) as usize]),
            _ => out.push('_'),
        }
    }
    out
}

/// `attachment; filename="..."`, adding an RFC 2231 `filename*` for non-ASCII names (the plain
/// `filename` then carries [`ascii_filename`], which is all some partners read).
pub fn attachment_disposition(filename: &str) -> String {
    if filename.is_ascii() {
        format!("attachment; filename={}", quote_param(filename))
    } else {
        let ascii = ascii_filename(filename);
        let encoded: String = filename
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        format!(
            "attachment; filename={}; filename*=UTF-8''{}",
            quote_param(&ascii),
            encoded
        )
    }
}

/// Makes a filename from the wire safe to use as the last segment of a storage key: no path,
/// no `.`/`..`, no control or reserved characters, at most 200 bytes. `None` if nothing is left.
pub fn sanitize_filename(raw: &str) -> Option<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c => c,
        })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim().to_string();
    if cleaned.is_empty() {
        return None;
    }
    const MAX: usize = 200;
    if cleaned.len() <= MAX {
        return Some(cleaned);
    }
    // Keep the extension when truncating: it tells the customer's system what the file is.
    let ext = cleaned
        .rfind('.')
        .map(|i| &cleaned[i..])
        .filter(|e| e.len() <= 16)
        .unwrap_or("");
    let mut stem_end = MAX - ext.len();
    let stem_src = &cleaned[..cleaned.len() - ext.len()];
    while !stem_src.is_char_boundary(stem_end) {
        stem_end -= 1;
    }
    Some(format!("{}{}", &stem_src[..stem_end], ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_filenames() {
        assert_eq!(
            sanitize_filename("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            sanitize_filename("C:\\x\\..\\evil.edi").as_deref(),
            Some("evil.edi")
        );
        assert_eq!(sanitize_filename(".."), None);
        assert_eq!(
            sanitize_filename("a\u{0}b\r\n.edi").as_deref(),
            Some("ab.edi")
        );
        assert_eq!(sanitize_filename("...hidden").as_deref(), Some("hidden"));
        assert_eq!(sanitize_filename("  "), None);
        let long = format!("{}.x12", "\u{e9}".repeat(300));
        let s = sanitize_filename(&long).unwrap();
        assert!(s.len() <= 200 && s.ends_with(".x12"));
    }

    #[test]
    fn ascii_file_names() {
        assert_eq!(
            ascii_filename("PO 2026 \u{e9}t\u{e9} (1).x12"),
            "PO 2026 ete (1).x12"
        );
        assert_eq!(
            ascii_filename("Stra\u{df}e \u{c6}\u{f8} \u{141}\u{f3}d\u{17a}.edi"),
            "Strasse AEo Lodz.edi"
        );
        assert_eq!(ascii_filename("\u{8acb}\u{6c42}.edi \u{d7}"), "__.edi _");
        assert_eq!(ascii_filename("plain.x12"), "plain.x12");
        let d = attachment_disposition("r\u{e9}sum\u{e9}.edi");
        assert!(
            d.starts_with("attachment; filename=resume.edi; filename*=UTF-8''"),
            "{d}"
        );
    }
}
