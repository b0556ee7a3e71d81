//! Object identifiers for key and signature algorithms.

use const_oid::ObjectIdentifier as Oid;

/// rsaEncryption (PKCS#1).
pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
/// id-RSASSA-PSS.
pub const RSASSA_PSS: Oid = Oid::new_unwrap("1.2.840.113549.1.1.10");
/// sha256WithRSAEncryption.
pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
/// sha384WithRSAEncryption.
pub const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
/// sha512WithRSAEncryption.
pub const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
/// id-ecPublicKey.
pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 (NIST P-256).
pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
/// secp384r1 (NIST P-384).
pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
/// ecdsa-with-SHA256.
pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
/// ecdsa-with-SHA384.
pub const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
/// ecdsa-with-SHA512.
pub const ECDSA_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
/// id-Ed25519.
pub const ED25519: Oid = Oid::new_unwrap("1.3.101.112");

/// A short human name for the OIDs above, or the dotted form.
pub fn name(oid: &Oid) -> String {
    let n = match *oid {
        RSA_ENCRYPTION => "rsaEncryption",
        RSASSA_PSS => "RSASSA-PSS",
        SHA256_WITH_RSA => "sha256WithRSAEncryption",
        SHA384_WITH_RSA => "sha384WithRSAEncryption",
        SHA512_WITH_RSA => "sha512WithRSAEncryption",
        EC_PUBLIC_KEY => "id-ecPublicKey",
        SECP256R1 => "P-256",
        SECP384R1 => "P-384",
        ECDSA_WITH_SHA256 => "ecdsa-with-SHA256",
        ECDSA_WITH_SHA384 => "ecdsa-with-SHA384",
        ECDSA_WITH_SHA512 => "ecdsa-with-SHA512",
        ED25519 => "Ed25519",
        _ => return oid.to_string(),
    };
    n.to_owned()
}
