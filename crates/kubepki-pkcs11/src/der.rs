//! The few DER structures a token's raw key and signature values go into, built from `sec1`,
//! `pkcs1`, `spki` and `der` types: `CKA_EC_PARAMS` (a named curve), a `SubjectPublicKeyInfo`
//! from an RSA modulus and exponent or an EC point, and an `ECDSA-Sig-Value` from the raw
//! `r || s` (the one structure no crate in the tree has without `ecdsa`: a derived SEQUENCE).

use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, PrintableStringRef, UintRef};
use der::{Decode, Encode, Sequence, Tag, Tagged};
use pkcs1::RsaPublicKeyRef;
use sec1::EcParameters;
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The curves kubepki uses in a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Curve {
    /// P-256 (`prime256v1`).
    P256,
    /// P-384 (`secp384r1`).
    P384,
    /// Ed25519 (`id-Ed25519`, PKCS#11 3.0).
    Ed25519,
}

impl Curve {
    fn oid(self) -> ObjectIdentifier {
        match self {
            Curve::P256 => PRIME256V1,
            Curve::P384 => SECP384R1,
            Curve::Ed25519 => ID_ED25519,
        }
    }

    /// `CKA_EC_PARAMS` for a new key: the named curve (DER of its OID).
    pub(crate) fn ec_params(self) -> Result<Vec<u8>, String> {
        EcParameters::NamedCurve(self.oid())
            .to_der()
            .map_err(|e| e.to_string())
    }

    /// The curve of `CKA_EC_PARAMS`: a DER OID, or, for Ed25519 as older modules give it, the
    /// PrintableString `edwards25519`.
    fn from_ec_params(params: &[u8]) -> Option<Self> {
        let any = AnyRef::from_der(params).ok()?;
        match any.tag() {
            Tag::ObjectIdentifier => match EcParameters::from_der(params).ok()?.named_curve()? {
                PRIME256V1 => Some(Curve::P256),
                SECP384R1 => Some(Curve::P384),
                ID_ED25519 => Some(Curve::Ed25519),
                _ => None,
            },
            Tag::PrintableString => (PrintableStringRef::try_from(any).ok()?.as_str()
                == "edwards25519")
                .then_some(Curve::Ed25519),
            _ => None,
        }
    }

    /// The length of a raw public point: uncompressed for P-256 and P-384, 32 bytes for Ed25519.
    fn raw_len(self) -> usize {
        match self {
            Curve::P256 => 65,
            Curve::P384 => 97,
            Curve::Ed25519 => 32,
        }
    }
}

/// `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` (RFC 3279).
#[derive(Sequence)]
struct EcdsaSigValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

fn text(e: der::Error) -> String {
    e.to_string()
}

/// A DER INTEGER from big-endian unsigned bytes; no bytes at all is 0. `UintRef::new(&[])`
/// would encode the empty INTEGER `02 00`, which DER forbids (X.690 8.3.1).
fn uint(be: &[u8]) -> Result<UintRef<'_>, String> {
    UintRef::new(if be.is_empty() { &[0] } else { be }).map_err(text)
}

fn spki(algorithm: AlgorithmIdentifierRef<'_>, key: &[u8]) -> Result<Vec<u8>, String> {
    SubjectPublicKeyInfoRef {
        algorithm,
        subject_public_key: BitStringRef::from_bytes(key).map_err(text)?,
    }
    .to_der()
    .map_err(text)
}

/// `ECDSA-Sig-Value` from the raw halves (big-endian, as PKCS#11 returns them).
pub(crate) fn ecdsa_sig_value(r: &[u8], s: &[u8]) -> Result<Vec<u8>, String> {
    EcdsaSigValue {
        r: uint(r)?,
        s: uint(s)?,
    }
    .to_der()
    .map_err(text)
}

/// An RSA `SubjectPublicKeyInfo` (rsaEncryption, NULL parameters) from the modulus and public
/// exponent.
pub(crate) fn rsa_spki(n: &[u8], e: &[u8]) -> Result<Vec<u8>, String> {
    let zero = |v: &[u8]| v.iter().all(|&b| b == 0);
    if zero(n) || zero(e) {
        return Err("an RSA modulus or public exponent of zero".into());
    }
    let key = RsaPublicKeyRef {
        modulus: uint(n)?,
        public_exponent: uint(e)?,
    }
    .to_der()
    .map_err(text)?;
    let algorithm = AlgorithmIdentifierRef {
        oid: RSA_ENCRYPTION,
        parameters: Some(AnyRef::NULL),
    };
    spki(algorithm, &key)
}

/// An EC or Ed25519 `SubjectPublicKeyInfo` from `CKA_EC_PARAMS` and `CKA_EC_POINT` (the point
/// DER OCTET STRING-wrapped as PKCS#11 says, or raw as some modules give it).
pub(crate) fn ec_spki(params: &[u8], point: &[u8]) -> Result<Vec<u8>, String> {
    let Some(curve) = Curve::from_ec_params(params) else {
        return Err("an EC curve other than P-256, P-384 and Ed25519".into());
    };
    let raw_len = curve.raw_len();
    let edwards = curve == Curve::Ed25519;
    // Reading, not writing: the wrapped forms modules are seen to return, among them a BER
    // long-form length (`04 81 41 ...`) that `der` refuses as non-minimal.
    let raw = if point.len() == raw_len && (edwards || point.first() == Some(&0x04)) {
        point
    } else {
        match point {
            [0x04, len, rest @ ..] if usize::from(*len) == raw_len && rest.len() == raw_len => rest,
            [0x04, 0x81, len, rest @ ..]
                if usize::from(*len) == raw_len && rest.len() == raw_len =>
            {
                rest
            }
            _ => return Err("a malformed EC point".into()),
        }
    };
    let oid = curve.oid();
    let algorithm = if edwards {
        AlgorithmIdentifierRef {
            oid: ID_ED25519,
            parameters: None,
        }
    } else {
        AlgorithmIdentifierRef {
            oid: EC_PUBLIC_KEY,
            parameters: Some(AnyRef::from(&oid)),
        }
    };
    spki(algorithm, raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_minimal_and_positive() -> Result<(), String> {
        // r = 1 (leading zeros dropped), s = 0x80 (a zero byte keeps it positive).
        assert_eq!(
            ecdsa_sig_value(&[0, 0, 1], &[0x80])?,
            [0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80]
        );
        assert_eq!(
            ecdsa_sig_value(&[0, 0], &[0])?,
            [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]
        );
        // An empty half is the integer 0 (`02 01 00`), never the empty INTEGER `02 00` that
        // DER forbids (X.690 8.3.1: at least one content octet).
        assert_eq!(
            ecdsa_sig_value(&[], &[1])?,
            [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01]
        );
        Ok(())
    }

    #[test]
    fn curve_parameters_are_the_curve_oids() -> Result<(), String> {
        let p256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        let p384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
        let ed25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
        for (curve, der) in [
            (Curve::P256, p256),
            (Curve::P384, p384),
            (Curve::Ed25519, ed25519),
        ] {
            assert_eq!(curve.ec_params()?, der);
            assert_eq!(Curve::from_ec_params(der), Some(curve));
        }
        assert_eq!(
            Curve::from_ec_params(b"\x13\x0cedwards25519"),
            Some(Curve::Ed25519)
        );
        assert_eq!(Curve::from_ec_params(b"\x13\x05other"), None);
        assert_eq!(Curve::from_ec_params(&[0x06, 0x03, 0x2b, 0x65, 0x71]), None);
        Ok(())
    }

    #[test]
    fn a_software_key_spki_is_rebuilt_exactly() -> Result<(), Box<dyn std::error::Error>> {
        use kubepki_keys::KeyAlgorithm;
        for (alg, curve) in [
            (KeyAlgorithm::EcdsaP256, Curve::P256),
            (KeyAlgorithm::EcdsaP384, Curve::P384),
            (KeyAlgorithm::Ed25519, Curve::Ed25519),
        ] {
            let key = kubepki_keys::PrivateKey::generate(alg)?;
            let spki_der = key.public_key_der();
            // The point is the last raw_len bytes of the BIT STRING.
            let point = &spki_der[spki_der.len() - curve.raw_len()..];
            let params = curve.ec_params()?;
            assert_eq!(ec_spki(&params, point)?, spki_der);
            let wrapped = der::asn1::OctetStringRef::new(point)?.to_der()?;
            assert_eq!(ec_spki(&params, &wrapped)?, spki_der);
        }
        Ok(())
    }

    #[test]
    fn an_rsa_spki_is_rebuilt_exactly() -> Result<(), Box<dyn std::error::Error>> {
        let key = kubepki_keys::PrivateKey::generate(kubepki_keys::KeyAlgorithm::Rsa2048)?;
        let spki_der = key.public_key_der();
        let parsed = SubjectPublicKeyInfoRef::from_der(spki_der)?;
        let rsa = RsaPublicKeyRef::from_der(parsed.subject_public_key.raw_bytes())?;
        // With and without the leading zero byte a token may give the modulus.
        let n = rsa.modulus.as_bytes();
        let mut n0 = vec![0];
        n0.extend_from_slice(n);
        assert_eq!(rsa_spki(n, rsa.public_exponent.as_bytes())?, spki_der);
        assert_eq!(rsa_spki(&n0, &[0x01, 0x00, 0x01])?, spki_der);
        // An empty or zero modulus or exponent (a token attribute read back empty) is no RSA
        // key: refused, never written as the empty INTEGER `02 00` DER forbids.
        for (n, e) in [
            (&[][..], &[1, 0, 1][..]),
            (n, &[]),
            (&[0, 0], &[1, 0, 1]),
            (n, &[0]),
        ] {
            assert_eq!(
                rsa_spki(n, e).map_err(|e| e.to_string()),
                Err("an RSA modulus or public exponent of zero".to_owned())
            );
        }
        Ok(())
    }
}
