//! The X.509 pieces shared by CSRs and certificates: subject names, subject alternative names,
//! KeyUsage, ExtendedKeyUsage, BasicConstraints and key identifiers. Each type is built into
//! the `x509-cert` type it is read from (one model for parsing and building), with the choices
//! Go's `crypto/x509` (and so kubeadm) makes, and every `to_der` is that type's encoding by
//! `der` (docs/architecture.md, "X.509").

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use const_oid::ObjectIdentifier as Oid;
use der::asn1::{Any, Ia5String, OctetString, PrintableStringRef, Utf8StringRef};
use der::{Decode, Encode, Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::{self, KeyUsages, name::GeneralName};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use kubepki_keys::escape::has_unsafe_chars;

use crate::{Error, InvalidValue};

/// Attribute and extension OIDs.
pub mod oids {
    use const_oid::ObjectIdentifier as Oid;
    /// commonName
    pub const CN: Oid = Oid::new_unwrap("2.5.4.3");
    /// countryName
    pub const C: Oid = Oid::new_unwrap("2.5.4.6");
    /// localityName
    pub const L: Oid = Oid::new_unwrap("2.5.4.7");
    /// stateOrProvinceName
    pub const ST: Oid = Oid::new_unwrap("2.5.4.8");
    /// organizationName
    pub const O: Oid = Oid::new_unwrap("2.5.4.10");
    /// organizationalUnitName
    pub const OU: Oid = Oid::new_unwrap("2.5.4.11");
    /// subjectKeyIdentifier
    pub const SUBJECT_KEY_ID: Oid = Oid::new_unwrap("2.5.29.14");
    /// keyUsage
    pub const KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
    /// subjectAltName
    pub const SUBJECT_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.17");
    /// basicConstraints
    pub const BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
    /// authorityKeyIdentifier
    pub const AUTHORITY_KEY_ID: Oid = Oid::new_unwrap("2.5.29.35");
    /// extKeyUsage
    pub const EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
    /// PKCS#9 extensionRequest
    pub const EXTENSION_REQUEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.14");
    /// serialNumber (an attribute of a name, not the certificate's serial)
    pub const SERIAL_NUMBER: Oid = Oid::new_unwrap("2.5.4.5");
    /// UID (userId, RFC 4519)
    pub const UID: Oid = Oid::new_unwrap("0.9.2342.19200300.100.1.1");
    /// The Kubernetes user-UID attribute: kube-apiserver 1.34 and later makes it the UID of the
    /// user a client certificate authenticates.
    pub const KUBERNETES_UID: Oid = Oid::new_unwrap("1.3.6.1.4.1.57683.2");
}

/// A name attribute other than CN, O, OU, C, ST and L, kept as read so that every comparison
/// sees it (kubepki never issues one: [`Subject::validate`] refuses it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherAttribute {
    /// The attribute type.
    pub oid: Oid,
    /// The value as text, or `#` and the hex of its DER when it is not a string (RFC 4514).
    pub value: String,
}

impl OtherAttribute {
    /// The attribute's name: `serialNumber`, `UID`, or the dotted OID (with what it means when
    /// kubepki knows, e.g. `1.3.6.1.4.1.57683.2 (Kubernetes user UID)`).
    pub fn name(&self) -> String {
        match self.oid {
            oids::SERIAL_NUMBER => "serialNumber".into(),
            oids::UID => "UID".into(),
            oids::KUBERNETES_UID => format!("{} (Kubernetes user UID)", self.oid),
            other => other.to_string(),
        }
    }
}

/// A subject or issuer name, in the attributes Kubernetes uses.
///
/// Encoded in Go's order (C, ST, L, O, OU, CN), one RDN per attribute type; several values of
/// one type (several groups, say) share one multi-valued RDN, sorted, exactly as Go writes them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    /// CN: the Kubernetes user name.
    pub common_name: Option<String>,
    /// O values: the Kubernetes groups.
    pub organizations: Vec<String>,
    /// OU values.
    pub organizational_units: Vec<String>,
    /// C values.
    pub countries: Vec<String>,
    /// ST values.
    pub provinces: Vec<String>,
    /// L values.
    pub localities: Vec<String>,
    /// Every other attribute, in the order read (empty in anything kubepki builds).
    pub others: Vec<OtherAttribute>,
}

impl Subject {
    /// A subject with just a common name.
    pub fn cn(common_name: impl Into<String>) -> Self {
        Subject {
            common_name: Some(common_name.into()),
            ..Subject::default()
        }
    }

    /// Adds organizations (groups).
    pub fn with_organizations<I, S>(mut self, orgs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.organizations.extend(orgs.into_iter().map(Into::into));
        self
    }

    /// Whether no attribute is set.
    pub fn is_empty(&self) -> bool {
        self.common_name.is_none()
            && self.organizations.is_empty()
            && self.organizational_units.is_empty()
            && self.countries.is_empty()
            && self.provinces.is_empty()
            && self.localities.is_empty()
            && self.others.is_empty()
    }

    /// The `Name`, built from `x509-cert` types: one RDN per attribute type in Go's order,
    /// several values of one type in one multi-valued RDN (a DER SET OF, sorted by encoding as
    /// Go's `encoding/asn1` sorts it), each value a PrintableString when Go would write one
    /// (every character in its set, which has no `*`; C always), otherwise a UTF8String.
    /// [`Subject::others`] (never in a name kubepki issues, [`Subject::validate`]) follow, one
    /// RDN each, as UTF8Strings.
    pub fn to_name(&self) -> Result<Name, Error> {
        let cn: Vec<String> = self.common_name.iter().cloned().collect();
        let groups: [(Oid, &Vec<String>); 6] = [
            (oids::C, &self.countries),
            (oids::ST, &self.provinces),
            (oids::L, &self.localities),
            (oids::O, &self.organizations),
            (oids::OU, &self.organizational_units),
            (oids::CN, &cn),
        ];
        let mut rdns = Vec::with_capacity(groups.len() + self.others.len());
        for (oid, values) in groups {
            if values.is_empty() {
                continue;
            }
            let atvs = values
                .iter()
                .map(|v| {
                    let value = if oid == oids::C || is_go_printable(v) {
                        Any::encode_from(&PrintableStringRef::new(v).map_err(der_error)?)
                    } else {
                        Any::encode_from(&Utf8StringRef::new(v).map_err(der_error)?)
                    };
                    Ok(AttributeTypeAndValue {
                        oid,
                        value: value.map_err(der_error)?,
                    })
                })
                .collect::<Result<Vec<_>, Error>>()?;
            rdns.push(RelativeDistinguishedName::try_from(atvs).map_err(der_error)?);
        }
        for a in &self.others {
            let value = Any::encode_from(&Utf8StringRef::new(&a.value).map_err(der_error)?)
                .map_err(der_error)?;
            let atv = AttributeTypeAndValue { oid: a.oid, value };
            rdns.push(RelativeDistinguishedName::try_from(vec![atv]).map_err(der_error)?);
        }
        Ok(Name::hazmat_from_rdn_sequence(RdnSequence::from(rdns)))
    }

    /// DER `Name`: the encoding of [`Subject::to_name`], made by `der`.
    pub fn to_der(&self) -> Result<Vec<u8>, Error> {
        self.to_name()?.to_der().map_err(der_error)
    }

    /// Reads a parsed `Name`. Attributes other than the six above are kept in
    /// [`Subject::others`], so comparisons with a planned subject see them.
    pub fn from_name(name: &Name) -> Result<Self, Error> {
        let mut s = Subject::default();
        for atv in name.iter() {
            let value = || directory_string_value(&atv.value);
            match atv.oid {
                oids::CN => {
                    if s.common_name.is_some() {
                        return Err(Error::Invalid(InvalidValue::SeveralCommonNames));
                    }
                    s.common_name = Some(value()?);
                }
                oids::O => s.organizations.push(value()?),
                oids::OU => s.organizational_units.push(value()?),
                oids::C => s.countries.push(value()?),
                oids::ST => s.provinces.push(value()?),
                oids::L => s.localities.push(value()?),
                oid => s.others.push(OtherAttribute {
                    oid,
                    value: directory_string_value(&atv.value).unwrap_or_else(|_| {
                        let der = atv.value.to_der().unwrap_or_default();
                        format!("#{}", kubepki_keys::hex(&der))
                    }),
                }),
            }
        }
        Ok(s)
    }

    /// Checks that the subject can be encoded: strings non-empty, countries two letters, and no
    /// attribute other than CN, O, OU, C, ST and L.
    pub fn validate(&self) -> Result<(), Error> {
        self.check_characters()?;
        if let Some(a) = self.others.first() {
            return Err(Error::Invalid(InvalidValue::AttributeNotIssued {
                attribute: a.name(),
                value: a.value.clone(),
            }));
        }
        let all = self
            .common_name
            .iter()
            .chain(&self.organizations)
            .chain(&self.organizational_units)
            .chain(&self.provinces)
            .chain(&self.localities);
        for v in all {
            if v.is_empty() || v.len() > 64 * 4 {
                return Err(Error::Invalid(InvalidValue::AttributeLength(v.clone())));
            }
        }
        for c in &self.countries {
            if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(Error::Invalid(InvalidValue::Country(c.clone())));
            }
        }
        Ok(())
    }
}

impl Subject {
    /// Refuses ([`Error::UnsafeName`]) an attribute holding a control character or a
    /// bidirectional formatting character ([`kubepki_keys::escape::is_unsafe_char`]). Parsing
    /// accepts such names (a CA must be able to look at a request to refuse it); requesting and
    /// issuing them is refused ([`Subject::validate`] runs this first).
    pub fn check_characters(&self) -> Result<(), Error> {
        let cn: Vec<String> = self.common_name.iter().cloned().collect();
        let parts = [
            ("subject CN", &cn),
            ("subject O", &self.organizations),
            ("subject OU", &self.organizational_units),
            ("subject C", &self.countries),
            ("subject ST", &self.provinces),
            ("subject L", &self.localities),
        ];
        for (field, values) in parts {
            check_characters(field, values)?;
        }
        for a in &self.others {
            check_characters(&format!("subject {}", a.name()), [&a.value])?;
        }
        Ok(())
    }
}

/// Refuses the first of `values` that holds a character
/// [`kubepki_keys::escape::is_unsafe_char`] refuses, naming `field`.
fn check_characters<'a>(
    field: &str,
    values: impl IntoIterator<Item = &'a String>,
) -> Result<(), Error> {
    match values.into_iter().find(|v| has_unsafe_chars(v)) {
        Some(v) => Err(Error::UnsafeName {
            field: field.to_owned(),
            value: v.clone(),
        }),
        None => Ok(()),
    }
}

impl fmt::Display for Subject {
    /// OpenSSL's one-line style, in encoding order: `O = system:nodes, CN = system:node:n1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cn: Vec<String> = self.common_name.iter().cloned().collect();
        let parts = [
            ("C", &self.countries),
            ("ST", &self.provinces),
            ("L", &self.localities),
            ("O", &self.organizations),
            ("OU", &self.organizational_units),
            ("CN", &cn),
        ];
        let mut first = true;
        for (k, vs) in parts {
            for v in vs {
                if !first {
                    f.write_str(", ")?;
                }
                first = false;
                write!(f, "{k} = {v}")?;
            }
        }
        for a in &self.others {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            match a.oid {
                oids::SERIAL_NUMBER => write!(f, "serialNumber = {}", a.value)?,
                oids::UID => write!(f, "UID = {}", a.value)?,
                oid => write!(f, "{oid} = {}", a.value)?,
            }
        }
        Ok(())
    }
}

/// Whether Go writes `s` as a PrintableString: every character in PrintableString's set
/// (X.680; no `*`: Go's encoding/asn1 marshals a string with `*` as a UTF8String, as the
/// vectors in `tests/data/go-names/` show).
fn is_go_printable(s: &str) -> bool {
    s.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b' ' | b'\'' | b'(' | b')' | b'+' | b',' | b'-' | b'.' | b'/' | b':' | b'=' | b'?'
            )
    })
}

/// An encoding error from `der` (an over-long value, a character a string type cannot hold).
pub(crate) fn der_error(source: der::Error) -> Error {
    Error::Der {
        context: None,
        source,
    }
}

fn directory_string_value(any: &Any) -> Result<String, Error> {
    let bytes = any.value();
    let bad = || {
        Error::Invalid(InvalidValue::NotAString {
            bytes: bytes.to_vec(),
            tag: any.tag(),
        })
    };
    match any.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            String::from_utf8(bytes.to_vec()).map_err(|_| bad())
        }
        Tag::TeletexString => Ok(bytes.iter().map(|&b| b as char).collect()),
        Tag::BmpString => {
            if !bytes.len().is_multiple_of(2) {
                return Err(bad());
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

/// Subject alternative names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubjectAltNames {
    /// dNSName entries.
    pub dns: Vec<String>,
    /// iPAddress entries.
    pub ips: Vec<IpAddr>,
    /// uniformResourceIdentifier entries.
    pub uris: Vec<String>,
    /// rfc822Name (email) entries.
    pub emails: Vec<String>,
    /// Entries of other kinds (otherName, directoryName, ...), described, never encoded.
    pub others: Vec<String>,
}

impl SubjectAltNames {
    /// Whether there is no entry at all.
    pub fn is_empty(&self) -> bool {
        self.dns.is_empty()
            && self.ips.is_empty()
            && self.uris.is_empty()
            && self.emails.is_empty()
            && self.others.is_empty()
    }

    /// Whether no entry is encoded: no DNS name, email, IP address or URI
    /// ([`SubjectAltNames::others`] are descriptions, never encoded). Such names get no
    /// SubjectAltName extension at all: an empty `GeneralNames` is not allowed (RFC 5280
    /// 4.2.1.6, `SIZE (1..MAX)`), and Go writes none.
    pub fn encodes_nothing(&self) -> bool {
        self.dns.is_empty() && self.ips.is_empty() && self.uris.is_empty() && self.emails.is_empty()
    }

    /// Checks every entry is encodable: DNS names and emails ASCII without spaces, URIs with a
    /// scheme.
    pub fn validate(&self) -> Result<(), Error> {
        self.check_characters()?;
        for d in &self.dns {
            if d.is_empty() || d.len() > 253 || !d.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::Invalid(InvalidValue::DnsName(d.clone())));
            }
        }
        for e in &self.emails {
            if !e.contains('@') || !e.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::Invalid(InvalidValue::Email(e.clone())));
            }
        }
        for u in &self.uris {
            if !u.contains(':') || !u.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::Invalid(InvalidValue::Uri(u.clone())));
            }
        }
        Ok(())
    }

    /// Refuses ([`Error::UnsafeName`]) a DNS, email or URI entry holding a control character
    /// or a bidirectional formatting character, as [`Subject::check_characters`] does for
    /// names ([`SubjectAltNames::validate`] runs this first).
    pub fn check_characters(&self) -> Result<(), Error> {
        check_characters("DNS SAN", &self.dns)?;
        check_characters("email SAN", &self.emails)?;
        check_characters("URI SAN", &self.uris)
    }

    /// The `GeneralNames`, in Go's order: DNS, email, IP, URI ([`SubjectAltNames::others`]
    /// are descriptions and are not encoded). Refused when a DNS name, email or URI is not
    /// ASCII (an IA5String).
    pub fn to_general_names(&self) -> Result<Vec<GeneralName>, Error> {
        let ia5 = |s: &String| Ia5String::new(s).map_err(der_error);
        let mut names = Vec::with_capacity(
            self.dns.len() + self.emails.len() + self.ips.len() + self.uris.len(),
        );
        for d in &self.dns {
            names.push(GeneralName::DnsName(ia5(d)?));
        }
        for e in &self.emails {
            names.push(GeneralName::Rfc822Name(ia5(e)?));
        }
        for ip in &self.ips {
            // An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is written as its 4 IPv4 bytes, as
            // Go's x509 writes it (`net.IP.To4`): verifiers compare 4-byte addresses with
            // 4-byte SANs, so 16 bytes would not match the IPv4 address clients connect to.
            let octets = match ip.to_canonical() {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            names.push(GeneralName::IpAddress(
                OctetString::new(octets).map_err(der_error)?,
            ));
        }
        for u in &self.uris {
            names.push(GeneralName::UniformResourceIdentifier(ia5(u)?));
        }
        Ok(names)
    }

    /// The DER `GeneralNames` value ([`SubjectAltNames::to_general_names`]), made by `der`.
    pub fn to_der(&self) -> Result<Vec<u8>, Error> {
        pkix::SubjectAltName(self.to_general_names()?)
            .to_der()
            .map_err(der_error)
    }

    fn from_general_names(names: &[GeneralName]) -> Result<Self, Error> {
        let mut s = SubjectAltNames::default();
        for n in names {
            match n {
                GeneralName::DnsName(d) => s.dns.push(d.to_string()),
                GeneralName::Rfc822Name(e) => s.emails.push(e.to_string()),
                GeneralName::UniformResourceIdentifier(u) => s.uris.push(u.to_string()),
                GeneralName::IpAddress(ip) => {
                    let b = ip.as_bytes();
                    let addr = if let Ok(v4) = <[u8; 4]>::try_from(b) {
                        IpAddr::from(v4)
                    } else if let Ok(v6) = <[u8; 16]>::try_from(b) {
                        IpAddr::from(v6)
                    } else {
                        return Err(Error::Invalid(InvalidValue::IpAddressLength(b.len())));
                    };
                    s.ips.push(addr);
                }
                GeneralName::OtherName(_) => s.others.push("otherName".into()),
                GeneralName::DirectoryName(_) => s.others.push("directoryName".into()),
                GeneralName::RegisteredId(_) => s.others.push("registeredID".into()),
                GeneralName::EdiPartyName(_) => s.others.push("ediPartyName".into()),
            }
        }
        Ok(s)
    }
}

impl fmt::Display for SubjectAltNames {
    /// OpenSSL's style: `DNS:a, DNS:b, IP Address:10.0.0.1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items = self
            .dns
            .iter()
            .map(|d| format!("DNS:{d}"))
            .chain(self.emails.iter().map(|e| format!("email:{e}")))
            .chain(self.ips.iter().map(|i| format!("IP Address:{i}")))
            .chain(self.uris.iter().map(|u| format!("URI:{u}")))
            .chain(self.others.iter().cloned());
        f.write_str(&items.collect::<Vec<_>>().join(", "))
    }
}

/// KeyUsage bits (RFC 5280 4.2.1.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyUsage(u16);

impl KeyUsage {
    /// digitalSignature (bit 0)
    pub const DIGITAL_SIGNATURE: KeyUsage = KeyUsage(1 << 0);
    /// contentCommitment / nonRepudiation (bit 1)
    pub const CONTENT_COMMITMENT: KeyUsage = KeyUsage(1 << 1);
    /// keyEncipherment (bit 2)
    pub const KEY_ENCIPHERMENT: KeyUsage = KeyUsage(1 << 2);
    /// dataEncipherment (bit 3)
    pub const DATA_ENCIPHERMENT: KeyUsage = KeyUsage(1 << 3);
    /// keyAgreement (bit 4)
    pub const KEY_AGREEMENT: KeyUsage = KeyUsage(1 << 4);
    /// keyCertSign (bit 5)
    pub const KEY_CERT_SIGN: KeyUsage = KeyUsage(1 << 5);
    /// cRLSign (bit 6)
    pub const CRL_SIGN: KeyUsage = KeyUsage(1 << 6);
    /// encipherOnly (bit 7)
    pub const ENCIPHER_ONLY: KeyUsage = KeyUsage(1 << 7);
    /// decipherOnly (bit 8)
    pub const DECIPHER_ONLY: KeyUsage = KeyUsage(1 << 8);

    const NAMES: [&'static str; 9] = [
        "Digital Signature",
        "Non Repudiation",
        "Key Encipherment",
        "Data Encipherment",
        "Key Agreement",
        "Certificate Sign",
        "CRL Sign",
        "Encipher Only",
        "Decipher Only",
    ];

    /// No bit set.
    pub const fn empty() -> Self {
        KeyUsage(0)
    }

    /// Both sets' bits.
    pub const fn union(self, other: KeyUsage) -> Self {
        KeyUsage(self.0 | other.0)
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: KeyUsage) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The bits as a number (bit 0 = digitalSignature).
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// OpenSSL's names of the set bits, in bit order.
    pub fn names(self) -> Vec<&'static str> {
        (0..9)
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| Self::NAMES[i])
            .collect()
    }

    /// The `x509-cert` KeyUsage with the same bits.
    fn to_x509(self) -> pkix::KeyUsage {
        const BITS: [KeyUsages; 9] = [
            KeyUsages::DigitalSignature,
            KeyUsages::NonRepudiation,
            KeyUsages::KeyEncipherment,
            KeyUsages::DataEncipherment,
            KeyUsages::KeyAgreement,
            KeyUsages::KeyCertSign,
            KeyUsages::CRLSign,
            KeyUsages::EncipherOnly,
            KeyUsages::DecipherOnly,
        ];
        let mut ku = pkix::KeyUsage(Default::default());
        for (i, bit) in BITS.into_iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                ku.0 |= bit;
            }
        }
        ku
    }

    /// DER BIT STRING, trailing zero bits dropped as DER requires (made by `der`).
    pub fn to_der(self) -> Result<Vec<u8>, Error> {
        self.to_x509().to_der().map_err(der_error)
    }

    fn from_bit_string(bs: &der::asn1::BitString) -> Self {
        let mut v = 0u16;
        for (i, bit) in bs.bits().enumerate().take(9) {
            if bit {
                v |= 1 << i;
            }
        }
        KeyUsage(v)
    }
}

impl std::ops::BitOr for KeyUsage {
    type Output = KeyUsage;
    fn bitor(self, rhs: KeyUsage) -> KeyUsage {
        self.union(rhs)
    }
}

impl fmt::Display for KeyUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(", "))
    }
}

/// Extended key usages, with the names the Kubernetes CSR API uses.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ExtKeyUsage {
    /// anyExtendedKeyUsage
    Any,
    /// id-kp-serverAuth
    ServerAuth,
    /// id-kp-clientAuth
    ClientAuth,
    /// id-kp-codeSigning
    CodeSigning,
    /// id-kp-emailProtection
    EmailProtection,
    /// id-kp-ipsecEndSystem
    IpsecEndSystem,
    /// id-kp-ipsecTunnel
    IpsecTunnel,
    /// id-kp-ipsecUser
    IpsecUser,
    /// id-kp-timeStamping
    TimeStamping,
    /// id-kp-OCSPSigning
    OcspSigning,
    /// Microsoft Server Gated Crypto
    MicrosoftSgc,
    /// Netscape Server Gated Crypto
    NetscapeSgc,
    /// Anything else.
    Other(Oid),
}

impl ExtKeyUsage {
    const TABLE: [(ExtKeyUsage, Oid, &'static str); 12] = [
        (
            ExtKeyUsage::Any,
            Oid::new_unwrap("2.5.29.37.0"),
            "Any Extended Key Usage",
        ),
        (
            ExtKeyUsage::ServerAuth,
            Oid::new_unwrap("1.3.6.1.5.5.7.3.1"),
            "TLS Web Server Authentication",
        ),
        (
            ExtKeyUsage::ClientAuth,
            Oid::new_unwrap("1.3.6.1.5.5.7.3.2"),
            "TLS Web Client Authentication",
        ),
        (
            ExtKeyUsage::CodeSigning,
            Oid::new_unwrap("1.3.6.1.5.5.7.3.3"),
            "Code Signing",
        ),
        (
            ExtKeyUsage::EmailProtection,
            Oid::new_unwrap("1.3.6.1.5.5.7.3.4"),
            "E-mail Protection",
        ),
        (
            ExtKeyUsage::IpsecEndSystem,
            Oid::new_unwrap("1.3.6.1.5.5.7.3.5"),
            "IPSec End System",
        ),
        (
            ExtKeyUsage::IpsecTunnel,
            Oid::new_unwrap("1.3.6.1.5.5.7.3.6"),
            "IPSec Tunnel",
        ),
        (
            ExtKeyUsage::IpsecUser,
            Oid::new_unwrap("1.3.6.1.5.5.7.3.7"),
            "IPSec User",
        ),
        (
            ExtKeyUsage::TimeStamping,
            Oid::new_unwrap("1.3.6.1.5.5.7.3.8"),
            "Time Stamping",
        ),
        (
            ExtKeyUsage::OcspSigning,
            Oid::new_unwrap("1.3.6.1.5.5.7.3.9"),
            "OCSP Signing",
        ),
        (
            ExtKeyUsage::MicrosoftSgc,
            Oid::new_unwrap("1.3.6.1.4.1.311.10.3.3"),
            "Microsoft Server Gated Crypto",
        ),
        (
            ExtKeyUsage::NetscapeSgc,
            Oid::new_unwrap("2.16.840.1.113730.4.1"),
            "Netscape Server Gated Crypto",
        ),
    ];

    /// The OID.
    pub fn oid(&self) -> Oid {
        if let ExtKeyUsage::Other(o) = self {
            return *o;
        }
        Self::TABLE
            .iter()
            .find(|(e, _, _)| e == self)
            .map(|(_, o, _)| *o)
            .unwrap_or(Oid::new_unwrap("2.5.29.37.0"))
    }

    /// From an OID.
    pub fn from_oid(oid: Oid) -> Self {
        Self::TABLE
            .iter()
            .find(|(_, o, _)| *o == oid)
            .map(|(e, _, _)| e.clone())
            .unwrap_or(ExtKeyUsage::Other(oid))
    }

    /// OpenSSL's name.
    pub fn name(&self) -> String {
        match self {
            ExtKeyUsage::Other(o) => o.to_string(),
            _ => Self::TABLE
                .iter()
                .find(|(e, _, _)| e == self)
                .map(|(_, _, n)| (*n).to_owned())
                .unwrap_or_default(),
        }
    }
}

impl fmt::Display for ExtKeyUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// BasicConstraints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BasicConstraints {
    /// cA
    pub ca: bool,
    /// pathLenConstraint
    pub path_len: Option<u8>,
}

/// One extension ready to encode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    /// extnID
    pub oid: Oid,
    /// critical (encoded only when true, as DER requires for a DEFAULT FALSE)
    pub critical: bool,
    /// the DER value inside the OCTET STRING
    pub value: Vec<u8>,
}

impl Extension {
    /// The `x509-cert` `Extension` (critical encoded only when true, as DER wants for a
    /// DEFAULT FALSE).
    pub fn to_x509(&self) -> Result<x509_cert::ext::Extension, Error> {
        Ok(x509_cert::ext::Extension {
            extn_id: self.oid,
            critical: self.critical,
            extn_value: OctetString::new(self.value.as_slice()).map_err(der_error)?,
        })
    }

    /// DER `Extension` ([`Extension::to_x509`]), made by `der`.
    pub fn to_der(&self) -> Result<Vec<u8>, Error> {
        self.to_x509()?.to_der().map_err(der_error)
    }

    /// An extension whose value is the DER of `value`.
    fn encode(oid: Oid, critical: bool, value: &impl Encode) -> Result<Self, Error> {
        Ok(Extension {
            oid,
            critical,
            value: value.to_der().map_err(der_error)?,
        })
    }

    /// KeyUsage, critical (as kubeadm and RFC 5280 want it).
    pub fn key_usage(ku: KeyUsage) -> Result<Self, Error> {
        Self::encode(oids::KEY_USAGE, true, &ku.to_x509())
    }

    /// ExtendedKeyUsage, non-critical, in the given order.
    pub fn ext_key_usage(ekus: &[ExtKeyUsage]) -> Result<Self, Error> {
        let eku = pkix::ExtendedKeyUsage(ekus.iter().map(ExtKeyUsage::oid).collect());
        Self::encode(oids::EXT_KEY_USAGE, false, &eku)
    }

    /// BasicConstraints, critical. CA:FALSE is an empty SEQUENCE, as Go writes it (cA is
    /// DEFAULT FALSE; a pathLenConstraint is written for a CA only).
    pub fn basic_constraints(bc: BasicConstraints) -> Result<Self, Error> {
        let value = pkix::BasicConstraints {
            ca: bc.ca,
            path_len_constraint: bc.path_len.filter(|_| bc.ca),
        };
        Self::encode(oids::BASIC_CONSTRAINTS, true, &value)
    }

    /// SubjectKeyIdentifier.
    pub fn subject_key_id(id: &[u8]) -> Result<Self, Error> {
        let ski = pkix::SubjectKeyIdentifier(OctetString::new(id).map_err(der_error)?);
        Self::encode(oids::SUBJECT_KEY_ID, false, &ski)
    }

    /// AuthorityKeyIdentifier with the keyIdentifier field only.
    pub fn authority_key_id(id: &[u8]) -> Result<Self, Error> {
        let aki = pkix::AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(id).map_err(der_error)?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        Self::encode(oids::AUTHORITY_KEY_ID, false, &aki)
    }

    /// SubjectAltName; critical when the subject is empty (RFC 5280 4.2.1.6).
    pub fn subject_alt_name(san: &SubjectAltNames, subject_empty: bool) -> Result<Self, Error> {
        Ok(Extension {
            oid: oids::SUBJECT_ALT_NAME,
            critical: subject_empty,
            value: san.to_der()?,
        })
    }
}

/// The extensions of a parsed certificate or CSR.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// KeyUsage and whether it is critical.
    pub key_usage: Option<(KeyUsage, bool)>,
    /// ExtendedKeyUsage, in encoded order.
    pub ext_key_usage: Option<Vec<ExtKeyUsage>>,
    /// BasicConstraints and whether it is critical.
    pub basic_constraints: Option<(BasicConstraints, bool)>,
    /// SubjectKeyIdentifier.
    pub subject_key_id: Option<Vec<u8>>,
    /// AuthorityKeyIdentifier keyIdentifier.
    pub authority_key_id: Option<Vec<u8>>,
    /// SubjectAltName.
    pub subject_alt_names: Option<SubjectAltNames>,
    /// Every extension, in encoded order: (OID, critical).
    pub all: Vec<(Oid, bool)>,
}

impl Extensions {
    /// Decodes extensions; a duplicate extension or an undecodable known one is an error.
    pub fn parse(exts: &[x509_cert::ext::Extension]) -> Result<Self, Error> {
        use x509_cert::ext::pkix;
        let mut out = Extensions::default();
        let mut seen = BTreeSet::new();
        for ext in exts {
            if !seen.insert(ext.extn_id) {
                return Err(Error::DuplicateExtension {
                    oid: ext.extn_id.to_string(),
                });
            }
            out.all.push((ext.extn_id, ext.critical));
            let v = ext.extn_value.as_bytes();
            let bad = |extension: &'static str, source: der::Error| {
                Error::Invalid(InvalidValue::Extension { extension, source })
            };
            match ext.extn_id {
                oids::KEY_USAGE => {
                    let bs = der::asn1::BitString::from_der(v).map_err(|e| bad("KeyUsage", e))?;
                    out.key_usage = Some((KeyUsage::from_bit_string(&bs), ext.critical));
                }
                oids::EXT_KEY_USAGE => {
                    let eku = pkix::ExtendedKeyUsage::from_der(v)
                        .map_err(|e| bad("ExtendedKeyUsage", e))?;
                    out.ext_key_usage =
                        Some(eku.0.into_iter().map(ExtKeyUsage::from_oid).collect());
                }
                oids::BASIC_CONSTRAINTS => {
                    let bc = pkix::BasicConstraints::from_der(v)
                        .map_err(|e| bad("BasicConstraints", e))?;
                    out.basic_constraints = Some((
                        BasicConstraints {
                            ca: bc.ca,
                            path_len: bc.path_len_constraint,
                        },
                        ext.critical,
                    ));
                }
                oids::SUBJECT_KEY_ID => {
                    let id =
                        OctetString::from_der(v).map_err(|e| bad("SubjectKeyIdentifier", e))?;
                    out.subject_key_id = Some(id.as_bytes().to_vec());
                }
                oids::AUTHORITY_KEY_ID => {
                    let aki = pkix::AuthorityKeyIdentifier::from_der(v)
                        .map_err(|e| bad("AuthorityKeyIdentifier", e))?;
                    out.authority_key_id = aki.key_identifier.map(|k| k.as_bytes().to_vec());
                }
                oids::SUBJECT_ALT_NAME => {
                    let san =
                        pkix::SubjectAltName::from_der(v).map_err(|e| bad("SubjectAltName", e))?;
                    out.subject_alt_names = Some(SubjectAltNames::from_general_names(&san.0)?);
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_usage_bit_strings_match_go() -> Result<(), Error> {
        let leaf = KeyUsage::DIGITAL_SIGNATURE | KeyUsage::KEY_ENCIPHERMENT;
        assert_eq!(leaf.to_der()?, [0x03, 0x02, 0x05, 0xa0]);
        let ca = leaf | KeyUsage::KEY_CERT_SIGN;
        assert_eq!(ca.to_der()?, [0x03, 0x02, 0x02, 0xa4]);
        let decipher = KeyUsage::DIGITAL_SIGNATURE | KeyUsage::DECIPHER_ONLY;
        assert_eq!(decipher.to_der()?, [0x03, 0x03, 0x07, 0x80, 0x80]);
        assert_eq!(KeyUsage::empty().to_der()?, [0x03, 0x01, 0x00]);
        // Every one of the 512 sets: DER's minimal BIT STRING (no trailing zero bit, the
        // unused-bit count that leaves), and it reads back.
        for bits in 0..512u16 {
            let ku = KeyUsage(bits);
            let der = ku.to_der()?;
            let nbits = 16 - bits.leading_zeros() as usize;
            let want_unused = (nbits.div_ceil(8) * 8 - nbits) as u8;
            assert_eq!(
                (der.len(), der.get(2)),
                (3 + nbits.div_ceil(8), Some(&want_unused))
            );
            let bs = der::asn1::BitString::from_der(&der).ok();
            assert_eq!(bs.map(|b| KeyUsage::from_bit_string(&b)), Some(ku));
        }
        Ok(())
    }

    #[test]
    fn printable_rule() {
        assert!(is_go_printable("kube-apiserver"));
        assert!(is_go_printable("system:masters"));
        assert!(!is_go_printable("a_b"));
        assert!(!is_go_printable("user@example"));
        assert!(!is_go_printable("홍길동"));
        assert!(!is_go_printable("*.example.com"));
    }

    #[test]
    fn basic_constraints_forms() -> Result<(), Error> {
        let leaf = Extension::basic_constraints(BasicConstraints::default())?;
        assert_eq!(leaf.value, [0x30, 0x00]);
        let ca = Extension::basic_constraints(BasicConstraints {
            ca: true,
            path_len: None,
        })?;
        assert_eq!(ca.value, [0x30, 0x03, 0x01, 0x01, 0xff]);
        let ca0 = Extension::basic_constraints(BasicConstraints {
            ca: true,
            path_len: Some(0),
        })?;
        assert_eq!(ca0.value, [0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00]);
        // A path length without CA:TRUE is not written (Go writes it only for a CA).
        let odd = Extension::basic_constraints(BasicConstraints {
            ca: false,
            path_len: Some(3),
        })?;
        assert_eq!(odd.value, [0x30, 0x00]);
        assert_eq!(
            odd.to_der()?,
            [
                0x30, 0x0c, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x02, 0x30, 0x00
            ]
        );
        Ok(())
    }

    #[test]
    fn subject_order_and_multi_valued_o() -> Result<(), Error> {
        let s = Subject::cn("jane").with_organizations(["dev", "admins"]);
        let der = s.to_der()?;
        let name = Name::from_der(&der).map_err(der_error)?;
        assert_eq!(
            name.iter_rdn().count(),
            2,
            "O values share one RDN, then CN"
        );
        let back = Subject::from_name(&name)?;
        assert_eq!(back.common_name.as_deref(), Some("jane"));
        // DER sorts the SET: "admins" (shorter encoding) before "dev" is not implied by length
        // alone; both must simply be present.
        let mut orgs = back.organizations.clone();
        orgs.sort();
        assert_eq!(orgs, ["admins", "dev"]);
        assert_eq!(s.to_string(), "O = dev, O = admins, CN = jane");
        Ok(())
    }

    #[test]
    fn other_attributes_are_kept_shown_and_never_issued() -> Result<(), Error> {
        let planned = Subject::cn("jane").with_organizations(["dev"]);
        let mut with_uid = planned.clone();
        with_uid.others.push(OtherAttribute {
            oid: oids::KUBERNETES_UID,
            value: "0b1d".into(),
        });
        with_uid.others.push(OtherAttribute {
            oid: oids::UID,
            value: "j".into(),
        });
        // A planned subject encodes as before: the attributes only add RDNs after CN.
        let der = with_uid.to_der()?;
        let name = Name::from_der(&der).map_err(der_error)?;
        assert_eq!(name.iter_rdn().count(), 4);
        let back = Subject::from_name(&name)?;
        assert_eq!(back, with_uid);
        assert_ne!(back, planned);
        assert_eq!(
            back.to_string(),
            "O = dev, CN = jane, 1.3.6.1.4.1.57683.2 = 0b1d, UID = j"
        );
        assert_eq!(
            back.validate().map_err(|e| e.to_string()),
            Err("subject attribute 1.3.6.1.4.1.57683.2 (Kubernetes user UID) = \"0b1d\" cannot be issued: kubepki issues CN, O, OU, C, ST and L only".to_owned())
        );
        assert!(planned.validate().is_ok());
        Ok(())
    }
}
