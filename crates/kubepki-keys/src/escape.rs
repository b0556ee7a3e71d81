//! Untrusted text shown to a person: the one rendering every kubepki message uses for a value
//! that came from an input file or a flag (names, SANs, paths, YAML/JSON values quoted in
//! errors).
//!
//! A name in a request is written by whoever sent the request. Printed as it is, an ESC byte
//! starts a terminal control sequence (recolour, hide with `\x1b[8m`, set the title, move the
//! cursor), a carriage return or newline rewrites or adds lines that look like kubepki's own,
//! and a bidirectional override (U+202E) reorders what follows. [`escape`] shows each such
//! character as a visible escape and leaves everything else as it is, so an ordinary name,
//! non-ASCII included, prints exactly as before:
//!
//! | input | shown |
//! |---|---|
//! | tab, newline, carriage return | `\t`, `\n`, `\r` |
//! | any other C0 control (U+0000..U+001F) and DEL (U+007F) | `\x00`..`\x1f`, `\x7f` |
//! | C1 controls (U+0080..U+009F) | `\u{80}`..`\u{9f}` |
//! | bidirectional formatting characters (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069) and the line and paragraph separators (U+2028, U+2029) | `\u{202e}` ... |
//! | a byte that is not part of valid UTF-8 ([`escape_bytes`], [`escape_path`]) | `\x80`..`\xff` |
//!
//! A backslash is left as it is, so escaping is idempotent (`escape(escape(s)) == escape(s)`)
//! and a message may be escaped again as a whole without changing. The escaped form holds only
//! printable characters; `\xNN` with NN below 80 is a control character, from 80 up a byte of
//! invalid UTF-8.
//!
//! ```
//! use kubepki_keys::escape::{escape, is_unsafe_char};
//!
//! assert_eq!(escape("evil\x1b[31mRED\nInjected: line"), "evil\\x1b[31mRED\\nInjected: line");
//! assert_eq!(escape("Zoë 李 system:masters"), "Zoë 李 system:masters"); // unchanged, borrowed
//! assert_eq!(escape("abc\u{202e}fed"), "abc\\u{202e}fed");
//! assert!(is_unsafe_char('\u{9b}') && !is_unsafe_char('é'));
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::Path;

/// Whether `c` must never reach a terminal as it is: a C0 or C1 control character, DEL, a
/// bidirectional formatting character or a line/paragraph separator. Creating commands refuse
/// names holding one; [`escape`] shows them escaped.
pub fn is_unsafe_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{200e}' | '\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}')
}

/// Whether `s` holds a character [`is_unsafe_char`] refuses.
pub fn has_unsafe_chars(s: &str) -> bool {
    s.chars().any(is_unsafe_char)
}

/// `s` for a person to read: every character [`is_unsafe_char`] refuses shown as a visible
/// escape, everything else unchanged (borrowed when nothing needed escaping).
pub fn escape(s: &str) -> Cow<'_, str> {
    if !has_unsafe_chars(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    push_escaped(&mut out, s);
    Cow::Owned(out)
}

/// [`escape`] for bytes that may not be UTF-8 (a string read from DER, a file name): each byte
/// outside valid UTF-8 is shown as `\xNN`.
pub fn escape_bytes(b: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(b) {
        return escape(s);
    }
    let mut out = String::with_capacity(b.len() + 8);
    for chunk in b.utf8_chunks() {
        push_escaped(&mut out, chunk.valid());
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    Cow::Owned(out)
}

/// [`escape_bytes`] of a path's bytes: what a message shows for a file name.
pub fn escape_path(p: &Path) -> Cow<'_, str> {
    use std::os::unix::ffi::OsStrExt;
    escape_bytes(p.as_os_str().as_bytes())
}

fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c <= '\u{7f}' && is_unsafe_char(c) => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if is_unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unsafe_class_is_escaped_and_the_rest_kept() {
        let cases = [
            ("\x1b[8mhidden\x1b[0m", "\\x1b[8mhidden\\x1b[0m"),
            ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
            ("a\rb\nc\td", "a\\rb\\nc\\td"),
            ("back\x08space", "back\\x08space"),
            ("nul\0", "nul\\x00"),
            ("del\x7f", "del\\x7f"),
            ("csi\u{9b}31m", "csi\\u{9b}31m"),
            ("\u{80}\u{9f}", "\\u{80}\\u{9f}"),
            ("rlo\u{202e}gnp.exe", "rlo\\u{202e}gnp.exe"),
            (
                "\u{2066}\u{2067}\u{2068}\u{2069}",
                "\\u{2066}\\u{2067}\\u{2068}\\u{2069}",
            ),
            ("\u{200e}\u{200f}\u{61c}", "\\u{200e}\\u{200f}\\u{61c}"),
            ("\u{2028}\u{2029}", "\\u{2028}\\u{2029}"),
            ("back\\slash", "back\\slash"),
        ];
        for (input, shown) in cases {
            assert_eq!(escape(input), shown, "{input:?}");
            assert_eq!(escape(shown), shown, "idempotent for {input:?}");
        }
        for normal in [
            "system:node:n1",
            "Zoë Ångström",
            "李小龍",
            "日本語 テスト",
            "a b",
            "ﷺ",
            "😀",
        ] {
            assert!(matches!(escape(normal), Cow::Borrowed(_)), "{normal}");
        }
    }

    #[test]
    fn invalid_utf8_is_shown_byte_by_byte() {
        assert_eq!(
            escape_bytes(b"ok\xff\xfe\x1b\xc3\xa9"),
            "ok\\xff\\xfe\\x1bé"
        );
        assert_eq!(escape_bytes(b"\xc2"), "\\xc2");
        assert_eq!(escape_bytes("é".as_bytes()), "é");
        use std::os::unix::ffi::OsStrExt;
        let p = Path::new(std::ffi::OsStr::from_bytes(b"/tmp/a\nb\xff.crt"));
        assert_eq!(escape_path(p), "/tmp/a\\nb\\xff.crt");
    }

    #[test]
    fn escaped_text_has_no_unsafe_character() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let e = escape(&all);
        assert!(!has_unsafe_chars(&e));
        assert!(
            e.chars()
                .all(|c| c != '\u{fffd}' || all.contains('\u{fffd}'))
        );
    }
}
