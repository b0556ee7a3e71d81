use der::Decode;
use der::asn1::{AnyRef, BitStringRef};
use der::{Encode, Sequence};
use spki::AlgorithmIdentifierRef;

use crate::Error;

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
        let raw = Raw::from_der(der).map_err(|e| Error::Der(format!("{what}: {e}")))?;
        let tbs = raw
            .tbs
            .to_der()
            .map_err(|e| Error::Der(format!("{what}: {e}")))?;
        let signature = raw
            .signature
            .as_bytes()
            .ok_or_else(|| Error::Der(format!("{what}: signature has unused bits")))?
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

/// Signs `tbs` with `key` and wraps it as `SEQUENCE { tbs, algorithm, BIT STRING signature }`.
pub fn sign_and_wrap(tbs: &[u8], key: &kubepki_keys::PrivateKey) -> Result<Vec<u8>, Error> {
    let sig = key.sign(tbs)?;
    let alg = key.signature_algorithm().algorithm_identifier_der();
    Ok(crate::der::sequence(&[
        tbs,
        &alg,
        &crate::der::bit_string(&sig),
    ]))
}
