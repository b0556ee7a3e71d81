//! CA keys in a PKCS#11 token (a hardware security module, a cloud KMS's PKCS#11 module,
//! SoftHSM2), for kubepki.
//!
//! A [`Pkcs11Key`] is a private key that lives in the token and never leaves it: kubepki asks
//! the token to sign. It implements [`kubepki_ca::CaSigningKey`], the seam every CA signature
//! goes through, so a [`kubepki_ca::CertificateAuthority`] built on it issues certificates like
//! one built on a software key.
//!
//! - [`Pkcs11Uri`]: RFC 7512 `pkcs11:` URIs naming the token, the key, the module and the PIN
//!   source; `Display` and `Debug` never show a PIN.
//! - [`Pkcs11Options`]: the module and PIN given outside the URI (`--pkcs11-module`,
//!   `KUBEPKI_PKCS11_PIN`).
//! - [`Pkcs11Provider`]: one logged-in [`Pkcs11Session`] per token, shared by every key a
//!   command uses; [`Pkcs11Provider::key`] finds a key, [`Pkcs11Provider::generate`] makes one
//!   inside the token (sensitive, not extractable, sign only).
//!
//! RSA keys sign with `CKM_SHA256_RSA_PKCS` (sha256WithRSAEncryption, as kubeadm), ECDSA keys
//! with `CKM_ECDSA` over a SHA-256 (P-256) or SHA-384 (P-384) digest computed in software, the
//! raw `r || s` turned into a DER `ECDSA-Sig-Value`; Ed25519 with `CKM_EDDSA`.
//!
//! ```no_run
//! use kubepki_ca::{CaSpec, CertificateAuthority, IssueSpec};
//! use kubepki_keys::KeyAlgorithm;
//! use kubepki_pkcs11::{Pkcs11Options, Pkcs11Provider, Pkcs11Uri};
//! use time::{Duration, OffsetDateTime};
//!
//! let uri = Pkcs11Uri::parse(
//!     "pkcs11:token=cluster;object=kubernetes-ca\
//!      ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/etc/kubernetes/pki/hsm.pin",
//! )?;
//! let provider = Pkcs11Provider::new(Pkcs11Options::from_env());
//! let key = provider.generate(&uri, KeyAlgorithm::Rsa3072)?;
//! let now = OffsetDateTime::now_utc();
//! let ca = CertificateAuthority::create_root_with_signing_key(
//!     &CaSpec::kubeadm("kubernetes", now, Duration::days(3650)),
//!     key,
//! )?;
//! assert!(ca.key().is_none()); // nothing to write out: the key stays in the token
//! let pem = ca.certificate().to_pem();
//! # let _ = pem;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod der;
mod error;
mod key;
mod pin;
mod session;
mod uri;

pub use error::Error;
pub use key::{KeyAttributes, Pkcs11Key};
pub use pin::{PIN_ENV, Pin, Pkcs11Options};
pub use session::{Pkcs11Provider, Pkcs11Session};
pub use uri::{ObjectType, Pkcs11Uri};

/// Whether `text` is a `pkcs11:` URI (rather than a file path), by its scheme.
pub fn is_pkcs11_uri(text: &str) -> bool {
    text.get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("pkcs11:"))
}

/// The README examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
