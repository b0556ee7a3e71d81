//! A small, strict PEM codec (RFC 7468) shared by every kubepki crate.
//!
//! Decoded contents live in [`Zeroizing`] buffers so that private-key bytes are wiped when the
//! block is dropped. Text outside `-----BEGIN`/`-----END` lines (for example the output of
//! `openssl x509 -text` above a certificate) is ignored, CRLF line endings are accepted, and
//! encapsulated headers (`Proc-Type: 4,ENCRYPTED`) are reported so that callers can reject
//! encrypted keys with a precise message. Headers are read only where Go's `pem.Decode` reads
//! them (directly after BEGIN) and only in the legacy key formats that have them; anything else
//! is refused, never skipped (see `docs/security.md`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::{Error, PemProblem};

/// The largest PEM or DER input any kubepki parser accepts (1 MiB). Real certificates, keys,
/// CSRs and kubeconfigs are a few KiB; anything larger is refused before it is decoded.
pub const MAX_INPUT_LEN: usize = 1 << 20;

/// Refuses input longer than [`MAX_INPUT_LEN`].
pub fn check_len(len: usize) -> Result<(), Error> {
    if len > MAX_INPUT_LEN {
        return Err(Error::TooLarge {
            len,
            max: MAX_INPUT_LEN,
        });
    }
    Ok(())
}

/// One decoded PEM block.
pub struct PemBlock {
    label: String,
    encrypted: bool,
    contents: Zeroizing<Vec<u8>>,
}

impl PemBlock {
    /// Creates a block from a label and DER contents.
    pub fn new(label: &str, contents: Vec<u8>) -> Self {
        Self {
            label: label.to_owned(),
            encrypted: false,
            contents: Zeroizing::new(contents),
        }
    }

    /// The label between `-----BEGIN ` and `-----`, e.g. `CERTIFICATE`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The decoded (DER) contents.
    pub fn contents(&self) -> &[u8] {
        &self.contents
    }

    /// Whether the block carried a legacy OpenSSL encryption header (`Proc-Type: 4,ENCRYPTED`).
    pub fn is_legacy_encrypted(&self) -> bool {
        self.encrypted
    }

    /// Encodes the block as PEM text: 64-column base64 lines, LF endings, trailing newline.
    pub fn encode(&self) -> Zeroizing<String> {
        encode(&self.label, &self.contents)
    }
}

impl std::fmt::Debug for PemBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print contents: the block may hold a private key.
        f.debug_struct("PemBlock")
            .field("label", &self.label)
            .field("len", &self.contents.len())
            .finish()
    }
}

/// Encodes `der` as one PEM block with `label` (64-column lines, LF, trailing newline).
pub fn encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let b64 = Zeroizing::new(STANDARD.encode(der));
    let mut out = Zeroizing::new(String::with_capacity(b64.len() + b64.len() / 64 + 64));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Labels of the legacy OpenSSL key formats, the only blocks that may carry RFC 1421 headers
/// (`Proc-Type: 4,ENCRYPTED`, `DEK-Info: ...`). RFC 7468 formats (certificates, requests,
/// PKCS#8, public keys) have none.
const LABELS_WITH_HEADERS: [&str; 3] = ["RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY"];

/// Decodes every PEM block in `input`, in order.
///
/// The rules are those on which Go's `encoding/pem` and OpenSSL agree, so that kubepki never
/// reads a different block than they do: `-----BEGIN` and `-----END` lines start at the start
/// of a line (trailing spaces and CR are ignored); headers (`Key: value` lines, ended by a
/// blank line) are accepted only directly after BEGIN and only in the legacy key formats that
/// have them; every other line of a body is base64. Text outside blocks is ignored.
///
/// Errors: input larger than [`MAX_INPUT_LEN`], not UTF-8 in a label, a BEGIN line without its
/// matching END line, a header where the format has none or anywhere but directly after
/// BEGIN, or base64 that does not decode. Input with no block at all yields an empty vector
/// (callers decide whether that is an error).
pub fn decode_all(input: &[u8]) -> Result<Vec<PemBlock>, Error> {
    check_len(input.len())?;
    let mut blocks = Vec::new();
    let mut lines = input
        .split(|&b| b == b'\n')
        .map(trim_end)
        .enumerate()
        .map(|(i, l)| (i + 1, l));
    while let Some((_, line)) = lines.next() {
        let Some(label) = strip_marker(line, b"-----BEGIN ") else {
            continue;
        };
        let label = std::str::from_utf8(label)
            .map_err(|_| Error::Pem(PemProblem::LabelNotUtf8))?
            .to_owned();
        let headers_allowed = LABELS_WITH_HEADERS.contains(&label.as_str());
        let mut b64 = Zeroizing::new(Vec::new());
        let mut encrypted = false;
        let mut closed = false;
        // Headers may only open the body; `in_headers` ends at the first line without a colon,
        // which must then be blank.
        let mut first = true;
        let mut in_headers = false;
        for (n, body) in lines.by_ref() {
            if let Some(end) = strip_marker(body, b"-----END ") {
                if end != label.as_bytes() {
                    return Err(Error::Pem(PemProblem::MismatchedEnd {
                        label,
                        end: String::from_utf8_lossy(end).into_owned(),
                    }));
                }
                if in_headers {
                    return Err(Error::Pem(PemProblem::HeadersWithoutBody { label }));
                }
                closed = true;
                break;
            }
            if body.starts_with(b"-----BEGIN ") {
                return Err(Error::Pem(PemProblem::NestedBegin { line: n, label }));
            }
            let is_header = body.contains(&b':');
            if is_header && (first || in_headers) {
                if !headers_allowed {
                    return Err(Error::Pem(PemProblem::HeaderNotAllowed { line: n, label }));
                }
                // RFC 1421 encapsulated header, e.g. `Proc-Type: 4,ENCRYPTED` or `DEK-Info: ...`.
                if body.starts_with(b"Proc-Type:") && body.ends_with(b"ENCRYPTED") {
                    encrypted = true;
                }
                first = false;
                in_headers = true;
                continue;
            }
            if is_header {
                return Err(Error::Pem(PemProblem::HeaderInBody { line: n, label }));
            }
            if in_headers {
                if !body.is_empty() {
                    return Err(Error::Pem(PemProblem::NoBlankAfterHeaders {
                        line: n,
                        label,
                    }));
                }
                in_headers = false;
                continue;
            }
            first = false;
            b64.extend(body.iter().filter(|b| !b.is_ascii_whitespace()));
        }
        if !closed {
            return Err(Error::Pem(PemProblem::NoEnd { label }));
        }
        let mut contents = Zeroizing::new(Vec::with_capacity(b64.len() * 3 / 4));
        STANDARD
            .decode_vec(b64.as_slice(), &mut contents)
            .map_err(|source| {
                Error::Pem(PemProblem::Base64 {
                    label: label.clone(),
                    source,
                })
            })?;
        if contents.is_empty() {
            return Err(Error::Pem(PemProblem::Empty { label }));
        }
        blocks.push(PemBlock {
            label,
            encrypted,
            contents,
        });
    }
    Ok(blocks)
}

/// Decodes `input` as exactly one PEM block (text around it is ignored); more than one block
/// is refused, so that no reader can pick a different one.
pub fn decode_one(input: &[u8]) -> Result<PemBlock, Error> {
    let mut blocks = decode_all(input)?;
    if blocks.len() > 1 {
        return Err(Error::Pem(PemProblem::SeveralBlocks {
            count: blocks.len(),
            labels: describe_labels(&blocks),
        }));
    }
    blocks.pop().ok_or(Error::NoPemBlock)
}

/// The labels of `blocks`, quoted and comma-separated, for error messages.
pub fn describe_labels(blocks: &[PemBlock]) -> String {
    blocks
        .iter()
        .map(|b| format!("\"{}\"", crate::escape::escape(b.label())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `input` looks like PEM text (has a BEGIN line) rather than DER.
pub fn looks_like_pem(input: &[u8]) -> bool {
    input
        .windows(b"-----BEGIN ".len())
        .any(|w| w == b"-----BEGIN ")
}

/// The line without trailing spaces, tabs and CRs, exactly as Go's `pem` trims it (no other
/// whitespace: a form feed after END makes Go skip the block, so it must not end one here).
/// Leading whitespace stays: a marker must start the line.
fn trim_end(line: &[u8]) -> &[u8] {
    let mut l = line;
    while let [rest @ .., last] = l {
        if matches!(last, b' ' | b'\t' | b'\r') {
            l = rest;
        } else {
            break;
        }
    }
    l
}

fn strip_marker<'a>(line: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    line.strip_prefix(prefix)?.strip_suffix(b"-----")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_surrounding_text() -> Result<(), Error> {
        let pem = encode("CERTIFICATE", &[1, 2, 3, 4, 5]);
        let text = format!("Certificate:\n  blah\n{}trailing\n", pem.as_str());
        let blocks = decode_all(text.replace('\n', "\r\n").as_bytes())?;
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].label(), "CERTIFICATE");
        assert_eq!(blocks[0].contents(), &[1, 2, 3, 4, 5]);
        Ok(())
    }

    #[test]
    fn long_contents_wrap_at_64() {
        let pem = encode("X", &[7u8; 200]);
        assert!(pem.lines().all(|l| l.len() <= 64));
    }

    #[test]
    fn truncated_and_mismatched() {
        assert!(matches!(
            decode_all(b"-----BEGIN X-----\nAAAA\n"),
            Err(Error::Pem(PemProblem::NoEnd { label })) if label == "X"
        ));
        assert!(matches!(
            decode_all(b"-----BEGIN X-----\nAAAA\n-----END Y-----\n"),
            Err(Error::Pem(PemProblem::MismatchedEnd { label, end })) if label == "X" && end == "Y"
        ));
        assert!(matches!(
            decode_all(b"-----BEGIN X-----\n!!!!\n-----END X-----\n"),
            Err(Error::Pem(PemProblem::Base64 { .. }))
        ));
    }

    fn pem_err(text: &str) -> String {
        match decode_all(text.as_bytes()) {
            Err(Error::Pem(m)) => m.to_string(),
            other => format!("not a PEM error: {other:?}"),
        }
    }

    #[test]
    fn a_header_line_inside_a_body_is_refused_not_skipped() {
        // Block A with a header-like line in its body, then block B: Go's pem.Decode fails on
        // A and returns B; a reader that skipped the line would return A. Neither: refuse.
        let a = encode("CERTIFICATE REQUEST", &[1u8; 60]);
        let b = encode("CERTIFICATE REQUEST", &[2u8; 60]);
        let mut lines: Vec<&str> = a.lines().collect();
        lines.insert(2, "Comment: x");
        let text = format!("{}\n{}", lines.join("\n"), b.as_str());
        assert_eq!(
            pem_err(&text),
            "line 3: block \"CERTIFICATE REQUEST\" has a header line inside its body (headers are allowed only directly after BEGIN)"
        );
    }

    #[test]
    fn headers_only_in_the_legacy_key_formats() -> Result<(), Error> {
        let text = "-----BEGIN CERTIFICATE-----\nComment: x\n\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(
            pem_err(text),
            "line 2: block \"CERTIFICATE\" has a header line; this format has none (RFC 7468)"
        );
        let text =
            "-----BEGIN RSA PRIVATE KEY-----\nComment: x\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        let blocks = decode_all(text.as_bytes())?;
        assert_eq!(blocks[0].contents(), &[0, 0, 0]);
        assert!(!blocks[0].is_legacy_encrypted());
        // RFC 1421: the headers end with a blank line.
        let text =
            "-----BEGIN RSA PRIVATE KEY-----\nComment: x\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(
            pem_err(text),
            "line 3: the headers of block \"RSA PRIVATE KEY\" must be followed by a blank line"
        );
        Ok(())
    }

    #[test]
    fn markers_start_a_line_and_bundles_still_read() -> Result<(), Error> {
        // Go and OpenSSL only see a BEGIN at the start of a line; so does kubepki.
        let one = encode("CERTIFICATE", &[1, 2, 3]);
        let indented: String = one.lines().map(|l| format!("  {l}\n")).collect();
        assert!(decode_all(indented.as_bytes())?.is_empty());
        // A bundle (ca.crt with intermediates) is several blocks, read in order.
        let two = format!(
            "{}{}",
            one.as_str(),
            encode("CERTIFICATE", &[4, 5, 6]).as_str()
        );
        let blocks = decode_all(two.as_bytes())?;
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[1].contents(), &[4, 5, 6]);
        assert!(matches!(
            decode_one(two.as_bytes()),
            Err(Error::Pem(PemProblem::SeveralBlocks { count: 2, labels })) if labels == "\"CERTIFICATE\", \"CERTIFICATE\""
        ));
        assert_eq!(decode_one(one.as_bytes())?.contents(), &[1, 2, 3]);
        assert!(matches!(decode_one(b"text"), Err(Error::NoPemBlock)));
        // A BEGIN inside a block before its END.
        let text = "-----BEGIN X-----\nAAAA\n-----BEGIN X-----\nAAAA\n-----END X-----\n";
        assert!(matches!(
            decode_all(text.as_bytes()),
            Err(Error::Pem(PemProblem::NestedBegin { line: 3, .. }))
        ));
        Ok(())
    }

    #[test]
    fn legacy_encryption_header_is_seen() -> Result<(), Error> {
        let text = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        let blocks = decode_all(text.as_bytes())?;
        assert!(blocks[0].is_legacy_encrypted());
        Ok(())
    }
}
