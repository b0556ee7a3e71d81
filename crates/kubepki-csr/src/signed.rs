use der::Decode;
use der::asn1::{AnyRef, BitStringRef};
use der::{Encode, Sequence};
use spki::AlgorithmIdentifierRef;

use kubepki_keys::SignatureAlgorithm;

use crate::Error;
use crate::x509::der_error;

/// The outer shape shared by certificates, CSRs and CRLs: `SEQUENCE { tbs, algorithm,
/// signature }`. Gives the exact signed bytes so that a signature is checked over what was
/// signed, not over a re-encoding.
#[derive(Sequence)]
struct Raw<'a> {
    tbs: AnyRef<'a>,
    algorithm: AlgorithmIdentifierRef<'a>,
    signature: BitStringRef<'a>,
}

/// The signed part, algorithm and signature of a signed DER object.
#[derive(Clone, Debug)]
pub struct SignedData {
    /// The DER of the signed part (TBSCertificate, CertificationRequestInfo).
    pub tbs: Vec<u8>,
    /// The signature algorithm OID.
    pub algorithm: const_oid::ObjectIdentifier,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

impl SignedData {
    /// Splits a signed DER object; `what` names it in errors.
    pub fn parse(der: &[u8], what: &str) -> Result<Self, Error> {
        let derr = |source| Error::Der {
            context: Some(what.to_owned()),
            source,
        };
        let raw = Raw::from_der(der).map_err(derr)?;
        let tbs = raw.tbs.to_der().map_err(derr)?;
        let signature = raw
            .signature
            .as_bytes()
            .ok_or_else(|| Error::SignatureUnusedBits {
                context: what.to_owned(),
            })?
            .to_vec();
        Ok(SignedData {
            tbs,
            algorithm: raw.algorithm.oid,
            signature,
        })
    }

    /// Verifies the signature with a DER `SubjectPublicKeyInfo`.
    pub fn verify(&self, spki_der: &[u8]) -> Result<(), kubepki_keys::Error> {
        kubepki_keys::verify_signature(spki_der, &self.algorithm, &self.tbs, &self.signature)
    }
}

/// The `AlgorithmIdentifier` of a signature algorithm: RSA's with an explicit NULL parameter,
/// ECDSA's and Ed25519's with none (RFC 4055, RFC 5758, RFC 8410), as Go writes them.
pub fn algorithm_identifier(alg: SignatureAlgorithm) -> AlgorithmIdentifierRef<'static> {
    AlgorithmIdentifierRef {
        oid: alg.oid(),
        parameters: alg.has_null_parameters().then_some(AnyRef::NULL),
    }
}

/// Wraps a signed part (TBSCertificate, CertificationRequestInfo: its DER) with the algorithm
/// and signature that signed it: `SEQUENCE { tbs, algorithm, BIT STRING signature }`. The
/// signed bytes are copied as they are, not re-encoded.
pub fn wrap_signed(
    tbs: &[u8],
    algorithm: SignatureAlgorithm,
    signature: &[u8],
) -> Result<Vec<u8>, Error> {
    Raw {
        tbs: AnyRef::from_der(tbs).map_err(der_error)?,
        algorithm: algorithm_identifier(algorithm),
        signature: BitStringRef::from_bytes(signature).map_err(der_error)?,
    }
    .to_der()
    .map_err(der_error)
}

/// Signs `tbs` with `key` and wraps it as `SEQUENCE { tbs, algorithm, BIT STRING signature }`.
pub fn sign_and_wrap(tbs: &[u8], key: &kubepki_keys::PrivateKey) -> Result<Vec<u8>, Error> {
    let sig = key.sign(tbs)?;
    wrap_signed(tbs, key.signature_algorithm(), &sig)
}
