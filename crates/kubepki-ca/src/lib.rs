//! Certificate authorities for kubepki: kubeadm's CA and leaf profiles, issuance from a spec
//! or a CSR, loading CAs (with or without their key), and verification of issued certificates.
//!
//! Certificates are built byte-for-byte as kubeadm (Go's `crypto/x509`) builds them: extension
//! order KeyUsage, ExtendedKeyUsage, BasicConstraints, SubjectKeyIdentifier,
//! AuthorityKeyIdentifier, SubjectAltName; O before CN; PrintableString where possible; UTCTime
//! before 2050; serials in [1, 2^63 - 1].
//!
//! A [`CertificateAuthority`] signs only through its [`CaSigningKey`] (the one signing seam):
//! the software key, [`kubepki_keys::PrivateKey`], implements it, and so can a key that never
//! leaves an HSM. The Kubernetes CSR signers (`kubernetes.io/...`) are [`SignerName`].
//!
//! ```
//! use kubepki_ca::{CaExpiry, CaSpec, CertificateAuthority, IssueSpec, Window};
//! use kubepki_csr::{ExtKeyUsage, Subject};
//! use kubepki_keys::{KeyAlgorithm, PrivateKey};
//! use time::{Duration, OffsetDateTime};
//!
//! let now = OffsetDateTime::now_utc();
//! let ca = CertificateAuthority::create_root(
//!     &CaSpec::kubeadm("etcd-ca", now, Duration::hours(87600)),
//!     PrivateKey::generate(KeyAlgorithm::EcdsaP256)?,
//! )?;
//! let leaf_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
//! let spec = IssueSpec::new(
//!     Subject::cn("kube-etcd-healthcheck-client"),
//!     leaf_key.public_key_der(),
//!     Window::kubeadm(now, Duration::hours(8760)),
//!     CaExpiry::Refuse,
//! )
//! .with_ext_key_usage(vec![ExtKeyUsage::ClientAuth]);
//! let cert = ca.issue(&spec)?;
//! assert_eq!(cert.authority_key_id(), ca.certificate().subject_key_id());
//! ca.verify(&cert, Some(&ExtKeyUsage::ClientAuth), now)?;
//! # Ok::<(), kubepki_ca::Error>(())
//! ```
#![forbid(unsafe_code)]

mod authority;
mod certificate;
pub mod cfssl;
mod duration;
mod error;
mod signer;
mod signing;

pub use authority::{
    BACKDATE, CA_KEY_USAGE, CaExpiry, CaProfile, CaSpec, CertificateAuthority, DEFAULT_CA_VALIDITY,
    DEFAULT_LEAF_VALIDITY, IssueSpec, KeyIdMethod, LEAF_KEY_USAGE, Profile, Window,
};
pub use certificate::{Certificate, LABEL_CERTIFICATE, rfc3339};
pub use duration::{
    DurationError, format_duration, parse_duration, parse_duration_with_days, parse_go_duration,
};
pub use error::Error;
pub use signer::{
    DEFAULT_SIGNING_DURATION, SignerName, check_policy, sign_request, signer_window,
    usages_to_extensions,
};
pub use signing::{CaSigningKey, SigningError};

/// The README examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
