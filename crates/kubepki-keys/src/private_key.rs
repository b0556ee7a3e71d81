use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
};
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use zeroize::Zeroizing;

use crate::error::{DerProblem, der_err};
use crate::pem;
use crate::{Error, KeyAlgorithm, SignatureAlgorithm, oids};

/// A private key held by the aws-lc-rs backend.
///
/// Every private-key operation (generation, signing) runs in AWS-LC, constant-time. Serialized
/// forms are returned in [`Zeroizing`] buffers; the backend wipes its own copy when the key is
/// dropped. `Debug` prints the algorithm and public-key fingerprint only.
pub struct PrivateKey {
    alg: KeyAlgorithm,
    inner: Inner,
    spki: Vec<u8>,
}

enum Inner {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// PEM label of a PKCS#1 RSA private key.
pub const LABEL_RSA: &str = "RSA PRIVATE KEY";
/// PEM label of a SEC1 EC private key.
pub const LABEL_EC: &str = "EC PRIVATE KEY";
/// PEM label of an unencrypted PKCS#8 private key.
pub const LABEL_PKCS8: &str = "PRIVATE KEY";
/// PEM label of an encrypted PKCS#8 private key (always refused).
pub const LABEL_PKCS8_ENCRYPTED: &str = "ENCRYPTED PRIVATE KEY";
/// PEM label of a PKIX public key.
pub const LABEL_PUBLIC_KEY: &str = "PUBLIC KEY";

impl PrivateKey {
    /// Generates a new key.
    pub fn generate(alg: KeyAlgorithm) -> Result<Self, Error> {
        let inner = match alg {
            KeyAlgorithm::Rsa2048 => Inner::Rsa(gen_rsa(KeySize::Rsa2048)?),
            KeyAlgorithm::Rsa3072 => Inner::Rsa(gen_rsa(KeySize::Rsa3072)?),
            KeyAlgorithm::Rsa4096 => Inner::Rsa(gen_rsa(KeySize::Rsa4096)?),
            KeyAlgorithm::EcdsaP256 => Inner::Ecdsa(
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
                    .map_err(|_| Error::Generation)?,
            ),
            KeyAlgorithm::EcdsaP384 => Inner::Ecdsa(
                EcdsaKeyPair::generate(&ECDSA_P384_SHA384_ASN1_SIGNING)
                    .map_err(|_| Error::Generation)?,
            ),
            KeyAlgorithm::Ed25519 => {
                Inner::Ed25519(Ed25519KeyPair::generate().map_err(|_| Error::Generation)?)
            }
        };
        Self::from_inner(alg, inner)
    }

    /// Reads the first private key in PEM text.
    ///
    /// Accepts `RSA PRIVATE KEY` (PKCS#1), `EC PRIVATE KEY` (SEC1, a preceding `EC PARAMETERS`
    /// block is skipped) and `PRIVATE KEY` (unencrypted PKCS#8 holding RSA, ECDSA P-256/P-384 or
    /// Ed25519). Encrypted keys and RSA keys below 2048 bits are refused.
    pub fn from_pem(input: &[u8]) -> Result<Self, Error> {
        let blocks = pem::decode_all(input)?;
        if blocks.is_empty() {
            return Err(Error::NoPemBlock);
        }
        let key = blocks.iter().find(|b| {
            matches!(
                b.label(),
                LABEL_RSA | LABEL_EC | LABEL_PKCS8 | LABEL_PKCS8_ENCRYPTED
            )
        });
        let Some(block) = key else {
            return Err(Error::NoPrivateKey {
                found: pem::describe_labels(&blocks),
            });
        };
        if block.is_legacy_encrypted() || block.label() == LABEL_PKCS8_ENCRYPTED {
            return Err(Error::EncryptedKey);
        }
        match block.label() {
            LABEL_RSA => Self::from_pkcs1_der(block.contents()),
            LABEL_EC => Self::from_sec1_der(block.contents()),
            _ => Self::from_pkcs8_der(block.contents()),
        }
    }

    /// Reads a DER private key: PKCS#8, PKCS#1 or SEC1, recognised by structure.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        pem::check_len(der.len())?;
        if pkcs8::PrivateKeyInfoRef::from_der(der).is_ok() {
            return Self::from_pkcs8_der(der);
        }
        if pkcs1::RsaPrivateKeyRef::from_der(der).is_ok() {
            return Self::from_pkcs1_der(der);
        }
        if sec1::EcPrivateKey::from_der(der).is_ok() {
            return Self::from_sec1_der(der);
        }
        if EncryptedPkcs8::from_der(der).is_ok() {
            return Err(Error::EncryptedKey);
        }
        Err(Error::Der {
            what: "private key DER",
            problem: DerProblem::UnknownKeyFormat,
        })
    }

    /// Reads a PKCS#1 `RSAPrivateKey`.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, Error> {
        let parsed = pkcs1::RsaPrivateKeyRef::from_der(der).map_err(der_err("PKCS#1 RSA key"))?;
        let alg = KeyAlgorithm::from_rsa_bits(uint_bits(parsed.modulus.as_bytes()))?;
        let kp = RsaKeyPair::from_der(der).map_err(Error::Rejected)?;
        Self::from_inner(alg, Inner::Rsa(kp))
    }

    /// Reads a SEC1 `ECPrivateKey`; the named curve must be present.
    pub fn from_sec1_der(der: &[u8]) -> Result<Self, Error> {
        let parsed = sec1::EcPrivateKey::from_der(der).map_err(der_err("SEC1 EC key"))?;
        let curve = parsed
            .parameters
            .and_then(|p| p.named_curve())
            .ok_or(Error::Der {
                what: "SEC1 EC key",
                problem: DerProblem::NoNamedCurve,
            })?;
        let (alg, signing) = ec_alg(&curve)?;
        let kp = EcdsaKeyPair::from_private_key_der(signing, der).map_err(Error::Rejected)?;
        Self::from_inner(alg, Inner::Ecdsa(kp))
    }

    /// Reads an unencrypted PKCS#8 `PrivateKeyInfo`.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        let info = pkcs8::PrivateKeyInfoRef::from_der(der).map_err(der_err("PKCS#8 key"))?;
        let oid = info.algorithm.oid;
        match oid {
            oids::RSA_ENCRYPTION => {
                let pkcs1 = info.private_key.as_bytes();
                let parsed =
                    pkcs1::RsaPrivateKeyRef::from_der(pkcs1).map_err(der_err("PKCS#1 RSA key"))?;
                let alg = KeyAlgorithm::from_rsa_bits(uint_bits(parsed.modulus.as_bytes()))?;
                let kp = RsaKeyPair::from_pkcs8(der).map_err(Error::Rejected)?;
                Self::from_inner(alg, Inner::Rsa(kp))
            }
            oids::EC_PUBLIC_KEY => {
                let curve = info
                    .algorithm
                    .parameters
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                    .ok_or(Error::Der {
                        what: "PKCS#8 EC key",
                        problem: DerProblem::NoNamedCurve,
                    })?;
                let (alg, signing) = ec_alg(&curve)?;
                let kp = EcdsaKeyPair::from_pkcs8(signing, der).map_err(Error::Rejected)?;
                Self::from_inner(alg, Inner::Ecdsa(kp))
            }
            oids::ED25519 => {
                let kp = Ed25519KeyPair::from_pkcs8(der).map_err(Error::Rejected)?;
                Self::from_inner(KeyAlgorithm::Ed25519, Inner::Ed25519(kp))
            }
            other => Err(Error::UnsupportedKeyType(other)),
        }
    }

    fn from_inner(alg: KeyAlgorithm, inner: Inner) -> Result<Self, Error> {
        let spki = match &inner {
            Inner::Rsa(k) => k.public_key().as_der().map(|d| d.as_ref().to_vec()),
            Inner::Ecdsa(k) => k.public_key().as_der().map(|d| d.as_ref().to_vec()),
            Inner::Ed25519(k) => k.public_key().as_der().map(|d| d.as_ref().to_vec()),
        }
        .map_err(|source| Error::Unencodable {
            what: "the public key",
            source,
        })?;
        Ok(Self { alg, inner, spki })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.alg
    }

    /// The signature algorithm this key signs with: RSA PKCS#1 v1.5 SHA-256, ECDSA P-256 SHA-256,
    /// ECDSA P-384 SHA-384 or Ed25519 (what Go's `crypto/x509` picks, so what kubeadm uses).
    pub fn signature_algorithm(&self) -> SignatureAlgorithm {
        match self.alg {
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                SignatureAlgorithm::RsaPkcs1Sha256
            }
            KeyAlgorithm::EcdsaP256 => SignatureAlgorithm::EcdsaSha256,
            KeyAlgorithm::EcdsaP384 => SignatureAlgorithm::EcdsaSha384,
            KeyAlgorithm::Ed25519 => SignatureAlgorithm::Ed25519,
        }
    }

    /// Signs `msg` with [`PrivateKey::signature_algorithm`].
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        match &self.inner {
            Inner::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut sig)
                    .map_err(|_| Error::Signing)?;
                Ok(sig)
            }
            Inner::Ecdsa(k) => k
                .sign(&SystemRandom::new(), msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::Signing),
            Inner::Ed25519(k) => Ok(k.sign(msg).as_ref().to_vec()),
        }
    }

    /// The public key as DER `SubjectPublicKeyInfo`.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    /// The public key as a PKIX `PUBLIC KEY` PEM block (what kubeadm writes to `sa.pub`).
    pub fn public_key_pem(&self) -> String {
        pem::encode(LABEL_PUBLIC_KEY, &self.spki).to_string()
    }

    /// The key in kubeadm's on-disk DER form: PKCS#1 for RSA, SEC1 with the named curve and
    /// public key for ECDSA, PKCS#8 for Ed25519.
    pub fn to_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        match &self.inner {
            Inner::Rsa(_) => {
                let p8 = self.to_pkcs8_der()?;
                let info =
                    pkcs8::PrivateKeyInfoRef::from_der(&p8).map_err(der_err("PKCS#8 key"))?;
                Ok(Zeroizing::new(info.private_key.as_bytes().to_vec()))
            }
            Inner::Ecdsa(k) => {
                let raw = k
                    .private_key()
                    .as_der()
                    .map_err(|source| Error::Unencodable {
                        what: "the EC key",
                        source,
                    })?;
                let mut ec =
                    sec1::EcPrivateKey::from_der(raw.as_ref()).map_err(der_err("SEC1 EC key"))?;
                let curve = match self.alg {
                    KeyAlgorithm::EcdsaP384 => oids::SECP384R1,
                    _ => oids::SECP256R1,
                };
                ec.parameters = Some(sec1::EcParameters::NamedCurve(curve));
                let spki = spki::SubjectPublicKeyInfoRef::from_der(&self.spki)
                    .map_err(der_err("public key"))?;
                ec.public_key = spki.subject_public_key.as_bytes();
                let mut out = Zeroizing::new(Vec::new());
                ec.encode_to_vec(&mut out).map_err(der_err("SEC1 EC key"))?;
                Ok(out)
            }
            Inner::Ed25519(_) => self.to_pkcs8_der(),
        }
    }

    /// The key as unencrypted PKCS#8 DER (v1, no embedded public key).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let doc = match &self.inner {
            Inner::Rsa(k) => k.as_der().map(|d| d.as_ref().to_vec()),
            Inner::Ecdsa(k) => k.to_pkcs8v1().map(|d| d.as_ref().to_vec()),
            Inner::Ed25519(k) => k.to_pkcs8v1().map(|d| d.as_ref().to_vec()),
        }
        .map_err(|source| Error::Unencodable {
            what: "the key as PKCS#8",
            source,
        })?;
        Ok(Zeroizing::new(doc))
    }

    /// The PEM label [`PrivateKey::to_pem`] writes.
    pub fn pem_label(&self) -> &'static str {
        match self.inner {
            Inner::Rsa(_) => LABEL_RSA,
            Inner::Ecdsa(_) => LABEL_EC,
            Inner::Ed25519(_) => LABEL_PKCS8,
        }
    }

    /// The key as PEM in kubeadm's form (`RSA PRIVATE KEY`, `EC PRIVATE KEY`, or `PRIVATE KEY`
    /// for Ed25519).
    pub fn to_pem(&self) -> Result<Zeroizing<String>, Error> {
        Ok(pem::encode(self.pem_label(), &self.to_der()?))
    }

    /// The key as a PKCS#8 `PRIVATE KEY` PEM block.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, Error> {
        Ok(pem::encode(LABEL_PKCS8, &self.to_pkcs8_der()?))
    }

    /// Whether `spki_der` (a `SubjectPublicKeyInfo`) is this key's public key.
    pub fn matches_public_key(&self, spki_der: &[u8]) -> bool {
        crate::spki_equal(&self.spki, spki_der)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.alg)
            .field("public_key_sha256", &crate::sha256_hex(&self.spki))
            .finish_non_exhaustive()
    }
}

impl fmt::Display for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} private key", self.alg)
    }
}

fn gen_rsa(size: KeySize) -> Result<RsaKeyPair, Error> {
    RsaKeyPair::generate(size).map_err(|_| Error::Generation)
}

fn ec_alg(
    curve: &ObjectIdentifier,
) -> Result<
    (
        KeyAlgorithm,
        &'static aws_lc_rs::signature::EcdsaSigningAlgorithm,
    ),
    Error,
> {
    match *curve {
        oids::SECP256R1 => Ok((KeyAlgorithm::EcdsaP256, &ECDSA_P256_SHA256_ASN1_SIGNING)),
        oids::SECP384R1 => Ok((KeyAlgorithm::EcdsaP384, &ECDSA_P384_SHA384_ASN1_SIGNING)),
        other => Err(Error::UnsupportedCurve(Some(other))),
    }
}

/// Bit length of a big-endian unsigned integer.
pub(crate) fn uint_bits(be: &[u8]) -> usize {
    let be = match be.iter().position(|&b| b != 0) {
        Some(i) => &be[i..],
        None => return 0,
    };
    match be.first() {
        Some(first) => (be.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
        None => 0,
    }
}

/// RFC 5208 `EncryptedPrivateKeyInfo`, decoded only to recognise (and refuse) encrypted keys.
#[derive(der::Sequence)]
struct EncryptedPkcs8<'a> {
    _algorithm: spki::AlgorithmIdentifierRef<'a>,
    _data: &'a der::asn1::OctetStringRef,
}
