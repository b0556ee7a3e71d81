//! Certificate signing requests for kubepki: the X.509 names and extensions shared with
//! certificates, PKCS#10 requests (build, parse, verify) and the Kubernetes
//! `CertificateSigningRequest` manifest (write YAML/JSON, read either, validate like the API
//! server).
//!
//! ```
//! use kubepki_csr::{Csr, CsrBuilder, Subject};
//! use kubepki_keys::{KeyAlgorithm, PrivateKey};
//!
//! let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
//! let csr = CsrBuilder::new(Subject::cn("system:node:n1").with_organizations(["system:nodes"]))
//!     .ip("10.0.0.5".parse()?)
//!     .sign(&key)?;
//! let parsed = Csr::from_pem(csr.to_pem().as_bytes())?; // signature verified on load
//! assert_eq!(parsed.subject_alt_names().ips.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod csr;
mod error;
mod kube;
mod signed;
pub mod x509;
pub mod yaml;

pub use csr::{Csr, CsrBuilder, LABEL_CSR};
pub use error::{
    Error, InvalidValue, ManifestProblem, NotSignable, SubdomainProblem, ValidationRule,
    der_message,
};
pub use kube::{
    API_VERSION, Condition, KIND, KubeCsr, MIN_EXPIRATION_SECONDS, Metadata, Spec, Status, Usage,
    check_dns_subdomain, object_name, validate_signer_name,
};
/// The one rendering of untrusted text for people (names, SANs, paths, values quoted in
/// errors), from `kubepki-keys`: see [`kubepki_keys::escape`](mod@kubepki_keys::escape).
pub use kubepki_keys::escape::{
    self as escape, escape as escape_text, escape_bytes, escape_path, has_unsafe_chars,
    is_unsafe_char,
};
pub use signed::{SignedData, algorithm_identifier, sign_and_wrap, wrap_signed};
pub use x509::{
    BasicConstraints, ExtKeyUsage, Extension, Extensions, KeyUsage, OtherAttribute, Subject,
    SubjectAltNames,
};

/// The README examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
