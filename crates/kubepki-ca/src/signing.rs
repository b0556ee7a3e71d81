//! The signing seam: a CA key that can sign, wherever it lives.
//!
//! [`CertificateAuthority`](crate::CertificateAuthority) holds its key as an
//! `Arc<dyn CaSigningKey>` and signs every certificate (its own when it is a root, every leaf and
//! intermediate it issues) through [`CaSigningKey::sign`] only. The software key,
//! [`kubepki_keys::PrivateKey`], implements the trait; a key held in an HSM or a remote signer is
//! another implementation, added without touching issuance.

use std::fmt;

use kubepki_keys::{PrivateKey, SignatureAlgorithm};
use thiserror::Error;

/// A CA key that can sign: its public key, its signature algorithm, and "sign these bytes".
///
/// Object-safe: a CA holds it as `Arc<dyn CaSigningKey>` (so one key, for example an HSM
/// session, can back several [`CertificateAuthority`](crate::CertificateAuthority) values and be
/// shared between threads). `Debug` must not print secret material.
///
/// ```
/// use std::sync::Arc;
/// use kubepki_ca::{CaSigningKey, CaSpec, CertificateAuthority};
/// use kubepki_keys::{KeyAlgorithm, PrivateKey};
/// use time::{Duration, OffsetDateTime};
///
/// let key: Arc<dyn CaSigningKey> = Arc::new(PrivateKey::generate(KeyAlgorithm::EcdsaP256)?);
/// let now = OffsetDateTime::now_utc();
/// let ca = CertificateAuthority::create_root_with_signing_key(
///     &CaSpec::kubeadm("kubernetes", now, Duration::hours(87600)),
///     key.clone(),
/// )?;
/// assert_eq!(ca.certificate().public_key_der(), key.public_key_der());
/// # Ok::<(), kubepki_ca::Error>(())
/// ```
pub trait CaSigningKey: fmt::Debug + Send + Sync {
    /// The public key, DER `SubjectPublicKeyInfo`.
    fn public_key_der(&self) -> &[u8];

    /// The algorithm [`Self::sign`] signs with; it goes into the certificate's
    /// `signatureAlgorithm` and `signature` fields and must fit the key type.
    fn signature_algorithm(&self) -> SignatureAlgorithm;

    /// Signs `message` (a DER `TBSCertificate`) and returns the signature value as it goes into
    /// the certificate's BIT STRING: the PKCS#1 v1.5 block for RSA, a DER `ECDSA-Sig-Value` for
    /// ECDSA, 64 bytes for Ed25519. The message is hashed by the implementation.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError>;

    /// The software private key behind this signing key, when there is one that can be
    /// written out (`None`, the default, for keys that never leave their device).
    fn private_key(&self) -> Option<&PrivateKey> {
        None
    }
}

/// Why a [`CaSigningKey`] could not sign.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SigningError {
    /// The software key failed.
    #[error(transparent)]
    Key(#[from] kubepki_keys::Error),
    /// A key held elsewhere (an HSM, a remote signer) failed or refused.
    #[error("{backend}: {source}")]
    Backend {
        /// The kind of key store (`pkcs11`, ...).
        backend: String,
        /// What it reported.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl CaSigningKey for PrivateKey {
    fn public_key_der(&self) -> &[u8] {
        PrivateKey::public_key_der(self)
    }

    fn signature_algorithm(&self) -> SignatureAlgorithm {
        PrivateKey::signature_algorithm(self)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        Ok(PrivateKey::sign(self, message)?)
    }

    fn private_key(&self) -> Option<&PrivateKey> {
        Some(self)
    }
}

/// Whether `alg` can be made by the key in `spki_der` (RSA with RSA, ECDSA with an EC key,
/// Ed25519 with Ed25519): a key that claims another algorithm would make certificates nobody can
/// verify.
pub(crate) fn check_algorithm(key: &dyn CaSigningKey) -> Result<(), kubepki_keys::Error> {
    use kubepki_keys::KeyAlgorithm as K;
    let alg = key.signature_algorithm();
    let key_alg = kubepki_keys::public_key_algorithm(key.public_key_der())?;
    let fits = match alg {
        SignatureAlgorithm::RsaPkcs1Sha256 => {
            matches!(key_alg, K::Rsa2048 | K::Rsa3072 | K::Rsa4096)
        }
        SignatureAlgorithm::EcdsaSha256 | SignatureAlgorithm::EcdsaSha384 => {
            matches!(key_alg, K::EcdsaP256 | K::EcdsaP384)
        }
        SignatureAlgorithm::Ed25519 => key_alg == K::Ed25519,
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(kubepki_keys::Error::SignatureAlgorithmMismatch {
            alg: alg.to_string(),
            key: key_alg.to_string(),
        })
    }
}
