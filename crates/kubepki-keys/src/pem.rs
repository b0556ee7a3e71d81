//! A small, strict PEM codec (RFC 7468) shared by every kubepki crate.
//!
//! Decoded contents live in [`Zeroizing`] buffers so that private-key bytes are wiped when the
//! block is dropped. Text outside `-----BEGIN`/`-----END` lines (for example the output of
//! `openssl x509 -text` above a certificate) is ignored, CRLF line endings are accepted, and
//! encapsulated headers (`Proc-Type: 4,ENCRYPTED`) are reported so that callers can reject
//! encrypted keys with a precise message.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::Error;

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

/// Decodes every PEM block in `input`, in order.
///
/// Errors: input larger than [`MAX_INPUT_LEN`], not UTF-8 inside a block, a BEGIN line without
/// its matching END line, or base64 that does not decode. Input with no block at all yields an
/// empty vector (callers decide whether that is an error).
pub fn decode_all(input: &[u8]) -> Result<Vec<PemBlock>, Error> {
    check_len(input.len())?;
    let mut blocks = Vec::new();
    let mut lines = input.split(|&b| b == b'\n').map(trim_line);
    while let Some(line) = lines.next() {
        let Some(label) = strip_marker(line, b"-----BEGIN ") else {
            continue;
        };
        let label = std::str::from_utf8(label)
            .map_err(|_| Error::Pem("BEGIN line label is not valid UTF-8".into()))?
            .to_owned();
        let mut b64 = Zeroizing::new(Vec::new());
        let mut encrypted = false;
        let mut closed = false;
        for body in lines.by_ref() {
            if let Some(end) = strip_marker(body, b"-----END ") {
                if end != label.as_bytes() {
                    return Err(Error::Pem(format!(
                        "block \"{label}\" is closed by END \"{}\"",
                        String::from_utf8_lossy(end)
                    )));
                }
                closed = true;
                break;
            }
            if body.contains(&b':') {
                // RFC 1421 encapsulated header, e.g. `Proc-Type: 4,ENCRYPTED` or `DEK-Info: ...`.
                if body.starts_with(b"Proc-Type:") && body.ends_with(b"ENCRYPTED") {
                    encrypted = true;
                }
                continue;
            }
            b64.extend(body.iter().filter(|b| !b.is_ascii_whitespace()));
        }
        if !closed {
            return Err(Error::Pem(format!(
                "block \"{label}\" has no END line (truncated?)"
            )));
        }
        let mut contents = Zeroizing::new(Vec::with_capacity(b64.len() * 3 / 4));
        STANDARD
            .decode_vec(b64.as_slice(), &mut contents)
            .map_err(|e| Error::Pem(format!("block \"{label}\": invalid base64: {e}")))?;
        if contents.is_empty() {
            return Err(Error::Pem(format!("block \"{label}\" is empty")));
        }
        blocks.push(PemBlock {
            label,
            encrypted,
            contents,
        });
    }
    Ok(blocks)
}

/// The labels of `blocks`, quoted and comma-separated, for error messages.
pub fn describe_labels(blocks: &[PemBlock]) -> String {
    blocks
        .iter()
        .map(|b| format!("\"{}\"", b.label()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `input` looks like PEM text (has a BEGIN line) rather than DER.
pub fn looks_like_pem(input: &[u8]) -> bool {
    input
        .windows(b"-----BEGIN ".len())
        .any(|w| w == b"-----BEGIN ")
}

fn trim_line(line: &[u8]) -> &[u8] {
    let mut l = line;
    while let [rest @ .., last] = l {
        if last.is_ascii_whitespace() {
            l = rest;
        } else {
            break;
        }
    }
    while let [first, rest @ ..] = l {
        if first.is_ascii_whitespace() {
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
            Err(Error::Pem(m)) if m.contains("no END line")
        ));
        assert!(matches!(
            decode_all(b"-----BEGIN X-----\nAAAA\n-----END Y-----\n"),
            Err(Error::Pem(m)) if m.contains("closed by END")
        ));
        assert!(matches!(
            decode_all(b"-----BEGIN X-----\n!!!!\n-----END X-----\n"),
            Err(Error::Pem(m)) if m.contains("invalid base64")
        ));
    }

    #[test]
    fn legacy_encryption_header_is_seen() -> Result<(), Error> {
        let text = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        let blocks = decode_all(text.as_bytes())?;
        assert!(blocks[0].is_legacy_encrypted());
        Ok(())
    }
}
