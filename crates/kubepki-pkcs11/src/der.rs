//! The few DER structures a token's raw key and signature values go into.

/// `EC_PARAMS` of P-256: the DER OID `prime256v1`.
pub(crate) const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// `EC_PARAMS` of P-384: the DER OID `secp384r1`.
pub(crate) const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// `EC_PARAMS` of Ed25519: the DER OID `id-Ed25519` (PKCS#11 3.0).
pub(crate) const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// `EC_PARAMS` of Ed25519 as older modules give it: PrintableString `edwards25519`.
const ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";
const RSA_ENCRYPTION: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const NULL: &[u8] = &[0x05, 0x00];

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A DER INTEGER from big-endian unsigned bytes.
fn uint(be: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = {
        let skip = be.iter().take_while(|b| **b == 0).count();
        &be[skip..]
    };
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    tlv(0x02, &content)
}

fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(bytes.len() + 1);
    content.push(0);
    content.extend_from_slice(bytes);
    tlv(0x03, &content)
}

fn spki(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let mut body = tlv(0x30, algorithm);
    body.extend(bit_string(key));
    tlv(0x30, &body)
}

/// `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` from the raw halves.
pub(crate) fn ecdsa_sig_value(r: &[u8], s: &[u8]) -> Vec<u8> {
    let mut body = uint(r);
    body.extend(uint(s));
    tlv(0x30, &body)
}

/// An RSA `SubjectPublicKeyInfo` from the modulus and public exponent.
pub(crate) fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut key = uint(n);
    key.extend(uint(e));
    let key = tlv(0x30, &key);
    let mut alg = RSA_ENCRYPTION.to_vec();
    alg.extend_from_slice(NULL);
    spki(&alg, &key)
}

/// An EC or Ed25519 `SubjectPublicKeyInfo` from `CKA_EC_PARAMS` and `CKA_EC_POINT` (the point
/// DER OCTET STRING-wrapped as PKCS#11 says, or raw as some modules give it).
pub(crate) fn ec_spki(params: &[u8], point: &[u8]) -> Result<Vec<u8>, String> {
    let (raw_len, edwards) = match params {
        P256 => (65, false),
        P384 => (97, false),
        ED25519 | ED25519_NAME => (32, true),
        _ => return Err("an EC curve other than P-256, P-384 and Ed25519".into()),
    };
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
    if edwards {
        Ok(spki(ED25519, raw))
    } else {
        let mut alg = EC_PUBLIC_KEY.to_vec();
        alg.extend_from_slice(params);
        Ok(spki(&alg, raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(uint(&[0, 0, 1]), [2, 1, 1]);
        assert_eq!(uint(&[0x80]), [2, 2, 0, 0x80]);
        assert_eq!(uint(&[0, 0]), [2, 1, 0]);
        assert_eq!(tlv(4, &[0; 200])[..3], [4, 0x81, 200]);
        assert_eq!(tlv(4, &[0; 300])[..4], [4, 0x82, 1, 44]);
    }

    #[test]
    fn a_software_key_spki_is_rebuilt_exactly() -> Result<(), Box<dyn std::error::Error>> {
        for alg in [
            kubepki_keys::KeyAlgorithm::EcdsaP256,
            kubepki_keys::KeyAlgorithm::EcdsaP384,
        ] {
            let key = kubepki_keys::PrivateKey::generate(alg)?;
            let spki_der = key.public_key_der();
            // The point is the last raw_len bytes of the BIT STRING.
            let n = if alg == kubepki_keys::KeyAlgorithm::EcdsaP256 {
                65
            } else {
                97
            };
            let point = &spki_der[spki_der.len() - n..];
            let params = if n == 65 { P256 } else { P384 };
            assert_eq!(ec_spki(params, point)?, spki_der);
            assert_eq!(ec_spki(params, &tlv(0x04, point))?, spki_der);
        }
        Ok(())
    }
}
