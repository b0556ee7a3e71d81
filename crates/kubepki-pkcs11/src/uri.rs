//! RFC 7512 `pkcs11:` URIs.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::pin::Pin;

/// The `type` path attribute of a `pkcs11:` URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectType {
    /// `type=private`: a private key (what a CA key URI names).
    Private,
    /// `type=public`: a public key.
    Public,
    /// `type=cert`: a certificate.
    Cert,
    /// `type=secret-key`: a secret key.
    SecretKey,
    /// `type=data`: a data object.
    Data,
}

impl ObjectType {
    fn name(self) -> &'static str {
        match self {
            ObjectType::Private => "private",
            ObjectType::Public => "public",
            ObjectType::Cert => "cert",
            ObjectType::SecretKey => "secret-key",
            ObjectType::Data => "data",
        }
    }
}

/// A parsed RFC 7512 `pkcs11:` URI naming a key in a token.
///
/// Path attributes: `token`, `manufacturer`, `model`, `serial` (which token), `slot-id`,
/// `object` (the key's label, `CKA_LABEL`), `id` (`CKA_ID`, percent-encoded bytes) and `type`.
/// Query attributes: `module-path` (the PKCS#11 library), `pin-source` (a file holding the user
/// PIN, as a path or a `file:` URI) and `pin-value` (the PIN itself).
///
/// `Display` gives the URI back with `pin-value` replaced by `REDACTED`; `Debug` never shows
/// the PIN either, so a URI may go into any error message or log line.
///
/// ```
/// use kubepki_pkcs11::Pkcs11Uri;
///
/// let uri: Pkcs11Uri = "pkcs11:token=cluster;object=kubernetes-ca;id=%01?pin-value=1234"
///     .parse()?;
/// assert_eq!(uri.token(), Some("cluster"));
/// assert_eq!(uri.object(), Some("kubernetes-ca"));
/// assert_eq!(uri.id(), Some(&[1u8][..]));
/// assert!(!uri.to_string().contains("1234"));
/// assert!(!format!("{uri:?}").contains("1234"));
/// # Ok::<(), kubepki_pkcs11::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    token: Option<String>,
    manufacturer: Option<String>,
    model: Option<String>,
    serial: Option<String>,
    slot_id: Option<u64>,
    object: Option<String>,
    id: Option<Vec<u8>>,
    object_type: Option<ObjectType>,
    module_path: Option<PathBuf>,
    pin_source: Option<PathBuf>,
    pin_value: Option<Pin>,
}

impl Pkcs11Uri {
    /// Parses a `pkcs11:` URI. Unknown attributes, repeated attributes and malformed percent
    /// escapes are refused (the error never contains the PIN).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidUri { reason };
        let rest = match text.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("pkcs11:") => &text[7..],
            _ => return Err(invalid("does not start with \"pkcs11:\"".into())),
        };
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        if rest.contains('#') {
            return Err(invalid("a fragment (\"#\") is not allowed".into()));
        }
        let mut uri = Pkcs11Uri::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr.split_once('=').ok_or_else(|| {
                invalid(format!(
                    "path attribute \"{}\" has no \"=\"",
                    short_name(attr)
                ))
            })?;
            let bytes = pct_decode(value, name)?;
            let dup = || invalid(format!("path attribute \"{name}\" given twice"));
            match name {
                "token" => set(&mut uri.token, utf8(bytes, name)?).map_err(|()| dup())?,
                "manufacturer" => {
                    set(&mut uri.manufacturer, utf8(bytes, name)?).map_err(|()| dup())?
                }
                "model" => set(&mut uri.model, utf8(bytes, name)?).map_err(|()| dup())?,
                "serial" => set(&mut uri.serial, utf8(bytes, name)?).map_err(|()| dup())?,
                "object" => set(&mut uri.object, utf8(bytes, name)?).map_err(|()| dup())?,
                "id" => set(&mut uri.id, bytes).map_err(|()| dup())?,
                "slot-id" => {
                    let n = utf8(bytes, name)?
                        .parse::<u64>()
                        .map_err(|_| invalid("slot-id is not a decimal number".into()))?;
                    set(&mut uri.slot_id, n).map_err(|()| dup())?
                }
                "type" => {
                    let t = match utf8(bytes, name)?.as_str() {
                        "private" => ObjectType::Private,
                        "public" => ObjectType::Public,
                        "cert" => ObjectType::Cert,
                        "secret-key" => ObjectType::SecretKey,
                        "data" => ObjectType::Data,
                        other => {
                            return Err(invalid(format!("unknown type \"{}\"", short(other))));
                        }
                    };
                    set(&mut uri.object_type, t).map_err(|()| dup())?
                }
                other => {
                    return Err(invalid(format!(
                        "unsupported path attribute \"{}\" (supported: token, manufacturer, model, serial, slot-id, object, id, type)",
                        short(other)
                    )));
                }
            }
        }
        for attr in query.unwrap_or("").split('&').filter(|a| !a.is_empty()) {
            let (name, value) = attr.split_once('=').ok_or_else(|| {
                invalid(format!(
                    "query attribute \"{}\" has no \"=\"",
                    short_name(attr)
                ))
            })?;
            let dup = || invalid(format!("query attribute \"{name}\" given twice"));
            match name {
                "module-path" => {
                    let p = PathBuf::from(utf8(pct_decode(value, name)?, name)?);
                    set(&mut uri.module_path, p).map_err(|()| dup())?
                }
                "pin-source" => {
                    let s = utf8(pct_decode(value, name)?, name)?;
                    let p = match s.strip_prefix("file:") {
                        // file:///path or file:/path (RFC 8089); no remote hosts.
                        Some(rest) => match rest.strip_prefix("//") {
                            Some(abs) if abs.starts_with('/') => PathBuf::from(abs),
                            Some(abs) => match abs.strip_prefix("localhost") {
                                Some(p) if p.starts_with('/') => PathBuf::from(p),
                                _ => {
                                    return Err(invalid(
                                        "pin-source: only local file: URIs are supported".into(),
                                    ));
                                }
                            },
                            None => PathBuf::from(rest),
                        },
                        None => PathBuf::from(s),
                    };
                    set(&mut uri.pin_source, p).map_err(|()| dup())?
                }
                "pin-value" => {
                    // The decoding error must not echo the value.
                    let bytes = pct_decode(value, "pin-value")
                        .map_err(|_| invalid("pin-value has a malformed percent escape".into()))?;
                    let pin = String::from_utf8(bytes)
                        .map_err(|_| invalid("pin-value is not UTF-8".into()))?;
                    set(&mut uri.pin_value, Pin::new(pin)).map_err(|()| dup())?
                }
                other => {
                    return Err(invalid(format!(
                        "unsupported query attribute \"{}\" (supported: module-path, pin-source, pin-value)",
                        short(other)
                    )));
                }
            }
        }
        Ok(uri)
    }

    /// `token`: the token label.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
    /// `manufacturer`: the token manufacturer.
    pub fn manufacturer(&self) -> Option<&str> {
        self.manufacturer.as_deref()
    }
    /// `model`: the token model.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }
    /// `serial`: the token serial number.
    pub fn serial(&self) -> Option<&str> {
        self.serial.as_deref()
    }
    /// `slot-id`: the slot number.
    pub fn slot_id(&self) -> Option<u64> {
        self.slot_id
    }
    /// `object`: the key's label (`CKA_LABEL`).
    pub fn object(&self) -> Option<&str> {
        self.object.as_deref()
    }
    /// `id`: the key's `CKA_ID` bytes.
    pub fn id(&self) -> Option<&[u8]> {
        self.id.as_deref()
    }
    /// `type`.
    pub fn object_type(&self) -> Option<ObjectType> {
        self.object_type
    }
    /// `module-path`: the PKCS#11 library to load.
    pub fn module_path(&self) -> Option<&Path> {
        self.module_path.as_deref()
    }
    /// `pin-source`: the file holding the PIN.
    pub fn pin_source(&self) -> Option<&Path> {
        self.pin_source.as_deref()
    }
    /// `pin-value`: the PIN given in the URI itself.
    pub fn pin_value(&self) -> Option<&Pin> {
        self.pin_value.as_ref()
    }

    /// The token part of the URI only (token, manufacturer, model, serial, slot-id): two URIs
    /// with the same token part and module share a session.
    pub(crate) fn token_part(&self) -> Pkcs11Uri {
        Pkcs11Uri {
            token: self.token.clone(),
            manufacturer: self.manufacturer.clone(),
            model: self.model.clone(),
            serial: self.serial.clone(),
            slot_id: self.slot_id,
            ..Pkcs11Uri::default()
        }
    }
}

impl std::str::FromStr for Pkcs11Uri {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Pkcs11Uri::parse(s)
    }
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pkcs11:")?;
        let mut sep = "";
        let mut path = |f: &mut fmt::Formatter<'_>, name: &str, value: &[u8], all: bool| {
            let r = write!(f, "{sep}{name}={}", pct_encode(value, all));
            sep = ";";
            r
        };
        for (name, value) in [
            ("token", &self.token),
            ("manufacturer", &self.manufacturer),
            ("model", &self.model),
            ("serial", &self.serial),
        ] {
            if let Some(v) = value {
                path(f, name, v.as_bytes(), false)?;
            }
        }
        if let Some(n) = self.slot_id {
            path(f, "slot-id", n.to_string().as_bytes(), false)?;
        }
        if let Some(v) = &self.object {
            path(f, "object", v.as_bytes(), false)?;
        }
        if let Some(v) = &self.id {
            path(f, "id", v, true)?;
        }
        if let Some(t) = self.object_type {
            path(f, "type", t.name().as_bytes(), false)?;
        }
        let mut sep = "?";
        let mut query = |f: &mut fmt::Formatter<'_>, name: &str, value: &str| {
            let r = write!(f, "{sep}{name}={value}");
            sep = "&";
            r
        };
        if let Some(p) = &self.module_path {
            query(
                f,
                "module-path",
                &pct_encode(p.to_string_lossy().as_bytes(), false),
            )?;
        }
        if let Some(p) = &self.pin_source {
            let p = p.to_string_lossy();
            // A path that itself starts with "file:" would be read back as a file: URI.
            let prefix = if p.starts_with("file:") { "file:" } else { "" };
            query(
                f,
                "pin-source",
                &format!("{prefix}{}", pct_encode(p.as_bytes(), false)),
            )?;
        }
        if self.pin_value.is_some() {
            query(f, "pin-value", "REDACTED")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pkcs11Uri({self})")
    }
}

fn set<T>(slot: &mut Option<T>, value: T) -> Result<(), ()> {
    if slot.is_some() {
        return Err(());
    }
    *slot = Some(value);
    Ok(())
}

/// A prefix of an attribute name for an error message (never more than 40 characters).
fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// The name part of an attribute without `=` (a `pin-value1234` typo must not be echoed).
fn short_name(s: &str) -> String {
    if s.starts_with("pin") {
        "pin...".into()
    } else {
        short(s)
    }
}

fn utf8(bytes: Vec<u8>, name: &str) -> Result<String, Error> {
    String::from_utf8(bytes).map_err(|_| Error::InvalidUri {
        reason: format!("{name} is not UTF-8"),
    })
}

fn pct_decode(value: &str, name: &str) -> Result<Vec<u8>, Error> {
    let b = value.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            // Exactly two hex digits (from_str_radix alone would take "+1").
            let hex = b
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error::InvalidUri {
                    reason: format!("{} has a malformed percent escape", short(name)),
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn pct_encode(value: &[u8], all: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for &c in value {
        let keep = !all
            && (c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'/' | b':'));
        if keep {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc_examples() -> Result<(), Error> {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token",
        )?;
        assert_eq!(u.token(), Some("The Software PKCS#11 Softtoken"));
        assert_eq!(u.manufacturer(), Some("Snake Oil, Inc."));
        assert_eq!(u.object_type(), Some(ObjectType::Cert));
        assert_eq!(
            u.id(),
            Some(&[0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91][..])
        );
        assert_eq!(u.serial(), Some(""));
        assert_eq!(u.pin_source(), Some(Path::new("/etc/token")));
        let again = Pkcs11Uri::parse(&u.to_string())?;
        assert_eq!(again, u);
        Ok(())
    }

    #[test]
    fn pin_never_shown() -> Result<(), Error> {
        let u = Pkcs11Uri::parse("pkcs11:object=k?module-path=/m.so&pin-value=s3cr%65t")?;
        assert_eq!(u.pin_value().map(Pin::expose), Some("s3cret"));
        for text in [u.to_string(), format!("{u:?}")] {
            assert!(!text.contains("s3cr"), "{text}");
            assert!(text.contains("pin-value=REDACTED"), "{text}");
        }
        Ok(())
    }

    #[test]
    fn refusals_do_not_echo_the_pin() {
        for bad in [
            "pkcs11:object=k?pin-value=ab%zzsecret",
            "pkcs11:object=k?pin-value=secret&pin-value=secret",
            "pkcs11:object=k?pin-valuesecret",
            "pkcs11:object=k?pin-value=%FFsecret",
        ] {
            let r = Pkcs11Uri::parse(bad);
            assert!(r.is_err(), "accepted {bad}");
            if let Err(e) = r {
                let text = format!("{e} {e:?}");
                assert!(!text.contains("secret"), "{text}");
            }
        }
        for bad in [
            "file:/x",
            "pkcs11:object",
            "pkcs11:object=a;object=b",
            "pkcs11:frobnicate=1",
            "pkcs11:type=weird",
            "pkcs11:id=%1",
            "pkcs11:object=a?module-name=softhsm",
            "pkcs11:object=a#frag",
            "pkcs11:object=a?pin-source=file://host/etc/pin",
        ] {
            assert!(Pkcs11Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_uris_for_pin_source() -> Result<(), Error> {
        for (text, path) in [
            ("pkcs11:?pin-source=file:///etc/pin", "/etc/pin"),
            ("pkcs11:?pin-source=file://localhost/etc/pin", "/etc/pin"),
            ("pkcs11:?pin-source=/etc/pin", "/etc/pin"),
            ("pkcs11:?pin-source=pin.txt", "pin.txt"),
        ] {
            assert_eq!(Pkcs11Uri::parse(text)?.pin_source(), Some(Path::new(path)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod attack_tests {
    use super::*;

    #[test]
    fn percent_escapes_are_two_hex_digits() {
        for bad in [
            "pkcs11:id=%+1",
            "pkcs11:object=%-1",
            "pkcs11:object=k?pin-value=%+1",
        ] {
            assert!(Pkcs11Uri::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Pkcs11Uri::parse("pkcs11:id=%0a%Bc")
                .ok()
                .and_then(|u| u.id().map(<[u8]>::to_vec)),
            Some(vec![0x0a, 0xbc])
        );
    }

    #[test]
    fn a_pin_source_path_that_starts_with_file_prints_back_to_itself() -> Result<(), Error> {
        for text in [
            "pkcs11:?pin-source=file:file://x",
            "pkcs11:?pin-source=file:file:///x",
            "pkcs11:?pin-source=file%3Ax",
        ] {
            let u = Pkcs11Uri::parse(text)?;
            let again = Pkcs11Uri::parse(&u.to_string())?;
            assert_eq!(again.pin_source(), u.pin_source(), "{text}");
        }
        Ok(())
    }

    #[test]
    fn a_path_attribute_without_equals_is_not_echoed_when_it_may_be_a_pin() {
        let r = Pkcs11Uri::parse("pkcs11:object=k;pin-value1234secret");
        let e = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(!e.is_empty() && !e.contains("secret"), "{e}");
    }
}
