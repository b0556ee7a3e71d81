//! A minimal DER writer: enough to build `TBSCertificate` and `CertificationRequestInfo`
//! byte-for-byte the way Go's `crypto/x509` does. Decoding is left to the `der` and
//! `x509-cert` crates.

use const_oid::ObjectIdentifier;

/// Universal and context tags used by kubepki.
pub mod tag {
    /// BOOLEAN
    pub const BOOLEAN: u8 = 0x01;
    /// INTEGER
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING
    pub const OCTET_STRING: u8 = 0x04;
    /// NULL
    pub const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER
    pub const OID: u8 = 0x06;
    /// UTF8String
    pub const UTF8_STRING: u8 = 0x0c;
    /// PrintableString
    pub const PRINTABLE_STRING: u8 = 0x13;
    /// IA5String
    pub const IA5_STRING: u8 = 0x16;
    /// UTCTime
    pub const UTC_TIME: u8 = 0x17;
    /// GeneralizedTime
    pub const GENERALIZED_TIME: u8 = 0x18;
    /// SEQUENCE
    pub const SEQUENCE: u8 = 0x30;
    /// SET
    pub const SET: u8 = 0x31;
}

/// Encodes one TLV.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// SEQUENCE of already-encoded parts.
pub fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag::SEQUENCE, &parts.concat())
}

/// SET OF already-encoded elements, sorted by encoding as DER requires.
pub fn set_of(mut elems: Vec<Vec<u8>>) -> Vec<u8> {
    elems.sort();
    tlv(tag::SET, &elems.concat())
}

/// Context-specific constructed tag `[n]` (EXPLICIT wrapper).
pub fn explicit(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0xa0 | n, content)
}

/// Context-specific primitive tag `[n]` (IMPLICIT, primitive).
pub fn implicit_primitive(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0x80 | n, content)
}

/// OBJECT IDENTIFIER.
pub fn oid(oid: &ObjectIdentifier) -> Vec<u8> {
    tlv(tag::OID, oid.as_bytes())
}

/// BOOLEAN.
pub fn boolean(v: bool) -> Vec<u8> {
    tlv(tag::BOOLEAN, &[if v { 0xff } else { 0x00 }])
}

/// INTEGER from a non-negative big-endian magnitude (minimal encoding).
pub fn uint(be: &[u8]) -> Vec<u8> {
    let start = be.iter().position(|&b| b != 0).unwrap_or(be.len());
    let mag = &be[start..];
    let mut content = Vec::with_capacity(mag.len() + 1);
    if mag.first().is_none_or(|&b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(mag);
    tlv(tag::INTEGER, &content)
}

/// OCTET STRING.
pub fn octet_string(v: &[u8]) -> Vec<u8> {
    tlv(tag::OCTET_STRING, v)
}

/// BIT STRING with no unused bits.
pub fn bit_string(v: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(v.len() + 1);
    content.push(0);
    content.extend_from_slice(v);
    tlv(tag::BIT_STRING, &content)
}

/// Whether Go would encode `s` as a PrintableString: every character in PrintableString's set
/// (X.680; no `*`: Go's encoding/asn1 marshals a string with `*` as a UTF8String, as the
/// vectors in `tests/data/go-names/` show).
pub fn is_printable(s: &str) -> bool {
    s.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b' ' | b'\'' | b'(' | b')' | b'+' | b',' | b'-' | b'.' | b'/' | b':' | b'=' | b'?'
            )
    })
}

/// A directory string: PrintableString when possible, otherwise UTF8String (Go's rule).
pub fn directory_string(s: &str) -> Vec<u8> {
    let t = if is_printable(s) {
        tag::PRINTABLE_STRING
    } else {
        tag::UTF8_STRING
    };
    tlv(t, s.as_bytes())
}

/// UTCTime before 2050, GeneralizedTime from 2050 on (RFC 5280 4.1.2.5), second precision.
pub fn time(t: time::OffsetDateTime) -> Vec<u8> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let (tag, year) = if t.year() < 2050 {
        (tag::UTC_TIME, format!("{:02}", t.year().rem_euclid(100)))
    } else {
        (tag::GENERALIZED_TIME, format!("{:04}", t.year()))
    };
    let s = format!(
        "{year}{:02}{:02}{:02}{:02}{:02}Z",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    tlv(tag, s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_integers() {
        assert_eq!(tlv(4, &[1, 2]), [4, 2, 1, 2]);
        assert_eq!(&tlv(4, &[0; 200])[..3], [4, 0x81, 200]);
        assert_eq!(&tlv(4, &[0; 300])[..4], [4, 0x82, 1, 44]);
        assert_eq!(uint(&[0, 0, 5]), [2, 1, 5]);
        assert_eq!(uint(&[0x80]), [2, 2, 0, 0x80]);
        assert_eq!(uint(&[]), [2, 1, 0]);
    }

    #[test]
    fn times_switch_at_2050() {
        let t = time::macros::datetime!(2049-12-31 23:59:59 UTC);
        assert_eq!(time(t), tlv(tag::UTC_TIME, b"491231235959Z"));
        let t = time::macros::datetime!(2050-01-01 00:00:00 UTC);
        assert_eq!(time(t), tlv(tag::GENERALIZED_TIME, b"20500101000000Z"));
    }

    #[test]
    fn printable_rule() {
        assert!(is_printable("kube-apiserver"));
        assert!(is_printable("system:masters"));
        assert!(!is_printable("a_b"));
        assert!(!is_printable("user@example"));
        assert!(!is_printable("홍길동"));
        assert!(!is_printable("*.example.com"));
    }
}
