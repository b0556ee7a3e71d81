//! What a file holds, told from its bytes: the one detection `kubepki inspect` and
//! `kubepki sign-request` share.

use serde::Deserialize;

/// The kind of a file kubepki reads, told from its bytes alone (see [`file_kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// A kubeconfig: YAML or JSON with `kind: Config`, or with no `kind` and a `clusters` list
    /// (kubectl accepts both).
    Kubeconfig,
    /// A `CertificateSigningRequest` manifest; `json` when it is written as JSON (its first
    /// character other than white space is `{`), so that what is written back matches.
    CsrManifest {
        /// The manifest is JSON rather than YAML.
        json: bool,
    },
    /// PEM text (a `-----BEGIN ` line): certificates, requests, keys.
    Pem,
    /// Anything else, to be tried as DER.
    Der,
}

/// Tells what `data` holds. A YAML or JSON document is told by its `kind` first, so a comment
/// or a string that quotes a PEM line does not make a kubeconfig or a manifest look like PEM;
/// text that names `CertificateSigningRequest` but does not parse is still a manifest, so that
/// the manifest parser says what is wrong with it.
///
/// ```
/// use kubepki_kubeadm::{FileKind, file_kind};
/// assert_eq!(file_kind(b"apiVersion: v1\nkind: Config\nclusters: []\n"), FileKind::Kubeconfig);
/// assert_eq!(file_kind(b"{\"kind\": \"CertificateSigningRequest\"}"), FileKind::CsrManifest { json: true });
/// assert_eq!(file_kind(b"-----BEGIN CERTIFICATE-----\n"), FileKind::Pem);
/// assert_eq!(file_kind(&[0x30, 0x82, 0x01, 0x0a]), FileKind::Der);
/// ```
pub fn file_kind(data: &[u8]) -> FileKind {
    #[derive(Deserialize)]
    struct Head {
        #[serde(default)]
        kind: String,
        #[serde(default)]
        clusters: Option<serde_json::Value>,
    }
    let text = std::str::from_utf8(data).ok();
    let manifest = |t: &str| FileKind::CsrManifest {
        json: t.trim_start().starts_with('{'),
    };
    if let Some(t) = text
        && let Ok(head) = kubepki_csr::yaml::from_str::<Head>(t)
    {
        match head.kind.as_str() {
            "Config" => return FileKind::Kubeconfig,
            "" if head.clusters.is_some() => return FileKind::Kubeconfig,
            "CertificateSigningRequest" => return manifest(t),
            _ => {}
        }
    }
    if kubepki_keys::pem::looks_like_pem(data) {
        return FileKind::Pem;
    }
    match text {
        Some(t) if t.contains("CertificateSigningRequest") => manifest(t),
        _ => FileKind::Der,
    }
}
