//! The bodies of the fuzz targets under `fuzz/fuzz_targets/`, one per parser. They live here so
//! that `cargo test` replays every committed seed and regression input through exactly
//! the code the fuzzer runs (`tests/fuzz_corpus.rs`). Each must never panic; where a parse
//! succeeds, what it produces must parse again to the same thing.

use std::path::Path;

use kubepki_ca::Certificate;
use kubepki_csr::{Csr, KubeCsr};
use kubepki_keys::PrivateKey;

/// Private keys, PEM or DER.
pub fn private_key(data: &[u8]) {
    let parsed = PrivateKey::from_pem(data).or_else(|_| PrivateKey::from_der(data));
    if let Ok(k) = parsed
        && let Ok(pem) = k.to_pem()
    {
        let again = PrivateKey::from_pem(pem.as_bytes()).map(|k2| k2.public_key_der().to_vec());
        assert_eq!(
            again.ok().as_deref(),
            Some(k.public_key_der()),
            "key round trip"
        );
    }
}

/// Certificates, PEM (with chains) or DER.
pub fn certificate(data: &[u8]) {
    let _ = Certificate::chain_from_pem(data);
    if let Ok(c) = Certificate::from_pem_or_der(data) {
        let again = Certificate::from_pem(c.to_pem().as_bytes()).map(|c2| c2.to_der().to_vec());
        assert_eq!(
            again.ok().as_deref(),
            Some(c.to_der()),
            "certificate round trip"
        );
        let _ = c.subject_alt_names();
        let _ = c.subject().to_string();
        let _ = c.verify_signature(c.public_key_der());
    }
}

/// PKCS#10 requests, PEM or DER (signature verified on load).
pub fn csr(data: &[u8]) {
    if let Ok(c) = Csr::from_pem_or_der(data) {
        let again = Csr::from_pem(c.to_pem().as_bytes()).map(|c2| c2.to_der().to_vec());
        assert_eq!(again.ok().as_deref(), Some(c.to_der()), "csr round trip");
        let _ = c.subject_alt_names();
    }
}

/// CertificateSigningRequest manifests (YAML or JSON), with API validation.
pub fn kube_csr(data: &[u8]) {
    if let Ok(m) = KubeCsr::from_slice(data) {
        let _ = m.validate();
        let _ = m.issued_certificate_pem();
        if let Ok(y) = m.to_yaml() {
            assert!(
                KubeCsr::from_slice(y.as_bytes()).is_ok(),
                "manifest round trip"
            );
        }
    }
}

/// Kubeconfig files.
pub fn kubeconfig(data: &[u8]) {
    let p = Path::new("fuzz.conf");
    if let Ok(k) = kubepki_kubeadm::Kubeconfig::from_slice(p, data) {
        let _ = k.current_ca_pem(p);
        let _ = k.current_client_cert_pem(p);
        let _ = k.current_client_key_pem(p);
    }
}

/// kubeadm config files applied onto the defaults, then planned.
pub fn kubeadm_config(data: &[u8]) {
    let mut spec = kubepki_kubeadm::ClusterSpec::default();
    if kubepki_kubeadm::apply_config(&mut spec, Path::new("fuzz.yaml"), data).is_ok() {
        spec.node_name.get_or_insert_with(|| "node".into());
        spec.advertise_address
            .get_or_insert(std::net::IpAddr::from([192, 0, 2, 1]));
        let _ = kubepki_kubeadm::Plan::new(&spec);
    }
}

/// What `kubepki inspect` does with arbitrary bytes: every parser in turn.
pub fn inspect(data: &[u8]) {
    // The detection `inspect` and `sign-request` share: total on any bytes.
    let _ = kubepki_kubeadm::file_kind(data);
    if let Ok(blocks) = kubepki_keys::pem::decode_all(data) {
        for b in &blocks {
            let _ = kubepki_keys::describe_public_key(b.contents());
            let _ = Certificate::from_der(b.contents());
            let _ = Csr::from_der(b.contents());
        }
    }
    private_key(data);
    certificate(data);
    csr(data);
    kube_csr(data);
}

/// RFC 7512 `pkcs11:` URIs (`--key-uri`, `--ca-key-uri`): a URI that parses prints as one that
/// parses to the same print, and where it has a `pin-value` the print and `Debug` carry
/// `pin-value=REDACTED` in its place.
pub fn pkcs11_uri(data: &[u8]) {
    use kubepki_pkcs11::Pkcs11Uri;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(uri) = Pkcs11Uri::parse(text) {
        let shown = uri.to_string();
        let again = Pkcs11Uri::parse(&shown);
        assert_eq!(
            again.as_ref().ok().map(ToString::to_string).as_deref(),
            Some(shown.as_str()),
            "URI round trip"
        );
        if uri.pin_value().is_some() {
            assert!(shown.ends_with("pin-value=REDACTED"), "PIN shown");
            assert!(
                format!("{uri:?}").contains("pin-value=REDACTED"),
                "PIN in Debug"
            );
            let redacted = again
                .ok()
                .and_then(|u| u.pin_value().map(|p| p.expose().to_owned()));
            assert_eq!(redacted.as_deref(), Some("REDACTED"), "PIN shown");
        } else {
            // No `pin-value` attribute appears in the print (an `object` may well be named
            // `k=pin-value=x`: RFC 7512 allows `=` in a path value; it is a label, not a PIN).
            let reparsed = Pkcs11Uri::parse(&shown).ok();
            assert!(
                reparsed.is_some_and(|u| u.pin_value().is_none()),
                "a PIN out of nothing"
            );
        }
    }
}

/// A fuzz target body.
pub type Body = fn(&[u8]);

/// Every target by name, for replaying corpora.
pub const TARGETS: [(&str, Body); 8] = [
    ("private_key", private_key),
    ("certificate", certificate),
    ("csr", csr),
    ("kube_csr", kube_csr),
    ("kubeconfig", kubeconfig),
    ("kubeadm_config", kubeadm_config),
    ("inspect", inspect),
    ("pkcs11_uri", pkcs11_uri),
];
