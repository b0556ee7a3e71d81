//! Kubeconfig files as client-go writes them (`docs/compatibility.md` §2.2, §2.4): one cluster, one context, one
//! user, `*-data` fields holding base64 of PEM text, keys in alphabetical order.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use kubepki_csr::yaml::ReadError;

use crate::error::{Error, file_err};

/// A kubeconfig file (`apiVersion: v1`, `kind: Config`). Fields are declared in alphabetical
/// order, which is the order client-go writes them in; unknown fields are ignored on read.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Kubeconfig {
    /// `v1`.
    #[serde(rename = "apiVersion", default)]
    pub api_version: String,
    /// Named clusters.
    #[serde(default)]
    pub clusters: Vec<NamedCluster>,
    /// Named contexts.
    #[serde(default)]
    pub contexts: Vec<NamedContext>,
    /// The context in use.
    #[serde(rename = "current-context", default)]
    pub current_context: String,
    /// `Config`.
    #[serde(default)]
    pub kind: String,
    /// Always written as `{}` (client-go has no omitempty on it).
    #[serde(default)]
    pub preferences: Preferences,
    /// Named users.
    #[serde(default)]
    pub users: Vec<NamedUser>,
}

/// `preferences: {}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Preferences {}

/// A `clusters[]` entry.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NamedCluster {
    /// The cluster.
    pub cluster: Cluster,
    /// Its name.
    pub name: String,
}

/// A cluster: where the API server is and which CA to trust.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cluster {
    /// Path of a CA file (kubeadm writes the data form instead).
    #[serde(
        rename = "certificate-authority",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub certificate_authority: Option<String>,
    /// Base64 of the CA certificate's PEM text.
    #[serde(
        rename = "certificate-authority-data",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub certificate_authority_data: Option<String>,
    /// `https://host:port`.
    #[serde(default)]
    pub server: String,
}

/// A `contexts[]` entry.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NamedContext {
    /// The context.
    pub context: Context,
    /// Its name.
    pub name: String,
}

/// A context: a cluster and a user.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Context {
    /// Cluster entry name.
    pub cluster: String,
    /// Default namespace (kubeadm writes none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// User entry name.
    pub user: String,
}

/// A `users[]` entry.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NamedUser {
    /// Its name.
    pub name: String,
    /// The credentials.
    pub user: User,
}

/// Client credentials. The key data is wiped from memory when dropped and never printed by
/// `Debug`.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    /// Path of a client certificate file (what kubelet.conf uses after TLS bootstrap).
    #[serde(
        rename = "client-certificate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_certificate: Option<String>,
    /// Base64 of the client certificate's PEM text.
    #[serde(
        rename = "client-certificate-data",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_certificate_data: Option<String>,
    /// Path of a client key file.
    #[serde(
        rename = "client-key",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_key: Option<String>,
    /// Base64 of the client key's PEM text.
    #[serde(
        rename = "client-key-data",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_key_data: Option<String>,
    /// A bearer token (kubeadm writes none; kept so it is never lost on rewrite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("client_certificate", &self.client_certificate)
            .field(
                "client_certificate_data",
                &self.client_certificate_data.as_ref().map(|_| "<set>"),
            )
            .field("client_key", &self.client_key)
            .field(
                "client_key_data",
                &self.client_key_data.as_ref().map(|_| "<redacted>"),
            )
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Drop for User {
    fn drop(&mut self) {
        if let Some(k) = &mut self.client_key_data {
            k.zeroize();
        }
        if let Some(t) = &mut self.token {
            t.zeroize();
        }
    }
}

impl Kubeconfig {
    /// kubeadm's kubeconfig: one cluster `cluster_name` at `server` trusting `ca_pem`, one user
    /// `user` with the given client certificate and key (PEM text), and the context
    /// `<user>@<cluster>` selected. `None` leaves a field out (as `certs generate-csr` does).
    pub fn new(
        cluster_name: &str,
        server: &str,
        ca_pem: Option<&str>,
        user: &str,
        client_cert_pem: Option<&str>,
        client_key_pem: Option<&str>,
    ) -> Kubeconfig {
        let context = format!("{user}@{cluster_name}");
        Kubeconfig {
            api_version: "v1".into(),
            clusters: vec![NamedCluster {
                cluster: Cluster {
                    certificate_authority: None,
                    certificate_authority_data: ca_pem.map(|p| B64.encode(p)),
                    server: server.into(),
                },
                name: cluster_name.into(),
            }],
            contexts: vec![NamedContext {
                context: Context {
                    cluster: cluster_name.into(),
                    namespace: None,
                    user: user.into(),
                },
                name: context.clone(),
            }],
            current_context: context,
            kind: "Config".into(),
            preferences: Preferences {},
            users: vec![NamedUser {
                name: user.into(),
                user: User {
                    client_certificate: None,
                    client_certificate_data: client_cert_pem.map(|p| B64.encode(p)),
                    client_key: None,
                    client_key_data: client_key_pem.map(|p| B64.encode(p)),
                    token: None,
                },
            }],
        }
    }

    /// Parses kubeconfig bytes held in memory (YAML or JSON), as [`Kubeconfig::from_slice`]
    /// does for a file; its errors name the input `kubeconfig`.
    ///
    /// ```
    /// let kc = kubepki_kubeadm::Kubeconfig::parse(b"apiVersion: v1\nkind: Config\nclusters: []\n")?;
    /// assert!(kc.clusters.is_empty());
    /// assert!(kubepki_kubeadm::Kubeconfig::parse(b"kind: Secret").is_err());
    /// # Ok::<(), kubepki_kubeadm::Error>(())
    /// ```
    pub fn parse(input: &[u8]) -> Result<Kubeconfig, Error> {
        Kubeconfig::from_slice(Path::new("kubeconfig"), input)
    }

    /// Parses the kubeconfig file `path` holds `input` of (YAML or JSON); errors name `path`.
    /// A YAML merge key (`<<`) anywhere in it is refused:
    /// go-yaml v2, which kubectl reads kubeconfigs with, applies a mapping's keys and merges in
    /// the order they are written (a `<<` after `client-key-data` replaces it), while kubepki's
    /// parser lets explicit keys win, so the two could read different credentials.
    pub fn from_slice(path: &Path, input: &[u8]) -> Result<Kubeconfig, Error> {
        let text = std::str::from_utf8(input).map_err(|_| file_err(path, "is not UTF-8 text"))?;
        if text.trim().is_empty() {
            return Err(file_err(path, "is empty"));
        }
        let parsed: Kubeconfig =
            kubepki_csr::yaml::from_str_without_merge_keys(text).map_err(|e| match e {
                ReadError::MergeKey { line, column } => file_err(
                    path,
                    format!(
                        "uses a YAML merge key (<<) at line {line} column {column}; kubectl reads a merge written after a key as overriding it and kubepki would not, so the two could use different credentials: write the values out instead of merging them"
                    ),
                ),
                other => file_err(path, format!("is not a kubeconfig: {other}")),
            })?;
        if parsed.kind != "Config" && !parsed.kind.is_empty() {
            return Err(file_err(
                path,
                format!("is a {}, not a kubeconfig (kind: Config)", parsed.kind),
            ));
        }
        Ok(parsed)
    }

    /// The YAML text, in client-go's shape. It holds the client key: kept in zeroizing memory.
    pub fn to_yaml(&self) -> Result<Zeroizing<String>, Error> {
        kubepki_csr::yaml::to_string(self)
            .map(Zeroizing::new)
            .map_err(|e| Error::Invalid {
                field: "kubeconfig".into(),
                reason: e.into(),
            })
    }

    /// The current context's cluster and user entries.
    pub fn current(&self, path: &Path) -> Result<(&NamedCluster, &NamedUser), Error> {
        let ctx = self
            .contexts
            .iter()
            .find(|c| c.name == self.current_context)
            .ok_or_else(|| {
                file_err(
                    path,
                    format!(
                        "current-context \"{}\" is not among its contexts",
                        self.current_context
                    ),
                )
            })?;
        let cluster = self
            .clusters
            .iter()
            .find(|c| c.name == ctx.context.cluster)
            .ok_or_else(|| {
                file_err(
                    path,
                    format!(
                        "cluster \"{}\" of the current context is missing",
                        ctx.context.cluster
                    ),
                )
            })?;
        let user = self
            .users
            .iter()
            .find(|u| u.name == ctx.context.user)
            .ok_or_else(|| {
                file_err(
                    path,
                    format!(
                        "user \"{}\" of the current context is missing",
                        ctx.context.user
                    ),
                )
            })?;
        Ok((cluster, user))
    }

    /// The current cluster's CA as PEM text: the `certificate-authority-data`, or the file
    /// `certificate-authority` points at (relative to the kubeconfig's folder).
    pub fn current_ca_pem(&self, path: &Path) -> Result<Vec<u8>, Error> {
        let (cluster, _) = self.current(path)?;
        let c = &cluster.cluster;
        match credential(
            path,
            "certificate-authority",
            c.certificate_authority_data.as_deref(),
            c.certificate_authority.as_deref(),
        )? {
            Some(pem) => Ok(pem.to_vec()),
            None => Err(file_err(
                path,
                "the current cluster has no certificate-authority-data",
            )),
        }
    }

    /// The current user's client certificate PEM text: the `client-certificate-data`, or the
    /// file `client-certificate` points at (relative to the kubeconfig's folder, as kubectl
    /// resolves it: after the kubelet's TLS bootstrap `kubelet.conf` points at
    /// `/var/lib/kubelet/pki/kubelet-client-current.pem`, which holds certificate and key).
    /// `None` when the user has neither (a token, an exec plugin, ...).
    pub fn current_client_cert_pem(&self, path: &Path) -> Result<Option<Vec<u8>>, Error> {
        let (_, user) = self.current(path)?;
        let u = &user.user;
        Ok(credential(
            path,
            "client-certificate",
            u.client_certificate_data.as_deref(),
            u.client_certificate.as_deref(),
        )?
        .map(|z| z.to_vec()))
    }

    /// The current user's client key PEM text: the `client-key-data`, or the file `client-key`
    /// points at (relative to the kubeconfig's folder). `None` when the user has neither.
    pub fn current_client_key_pem(&self, path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        let (_, user) = self.current(path)?;
        let u = &user.user;
        credential(
            path,
            "client-key",
            u.client_key_data.as_deref(),
            u.client_key.as_deref(),
        )
    }
}

impl Kubeconfig {
    /// The error for a current user without a client certificate, saying what it has instead.
    pub(crate) fn no_client_cert(&self, path: &Path) -> Error {
        let user = match self.current(path) {
            Ok((_, u)) => u,
            Err(e) => return e,
        };
        file_err(
            path,
            if set(user.user.token.as_deref()).is_some() {
                format!(
                    "the current user \"{}\" authenticates with a token, not a client certificate",
                    user.name
                )
            } else {
                format!(
                    "the current user \"{}\" has no client certificate (neither client-certificate-data nor client-certificate)",
                    user.name
                )
            },
        )
    }

    /// The error for a current user without a client key.
    pub(crate) fn no_client_key(&self, path: &Path) -> Error {
        match self.current(path) {
            Ok((_, u)) => file_err(
                path,
                format!(
                    "the current user \"{}\" has no client key (neither client-key-data nor client-key)",
                    u.name
                ),
            ),
            Err(e) => e,
        }
    }
}

/// A file a kubeconfig names, resolved as kubectl does: an absolute path as it is, a relative
/// one relative to the kubeconfig's folder.
pub fn resolve_reference(kubeconfig: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        return p.to_owned();
    }
    kubeconfig.parent().unwrap_or(Path::new(".")).join(p)
}

/// A value set as a string that is not empty: client-go treats an empty `*-data` or path as
/// not set (its validation checks `len(...) != 0`).
pub(crate) fn set(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.is_empty())
}

/// `<field>-data` (base64) or the file `<field>` names; both set is refused as client-go
/// refuses it.
pub(crate) fn credential(
    path: &Path,
    field: &str,
    data: Option<&str>,
    file: Option<&str>,
) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
    match (set(data), set(file)) {
        (Some(_), Some(_)) => Err(file_err(
            path,
            format!("sets both {field}-data and {field}; kubectl refuses that, keep one"),
        )),
        (Some(d), None) => decode(path, &format!("{field}-data"), d).map(Some),
        (None, Some(f)) => {
            let p = resolve_reference(path, f);
            kubepki_files::read_limited(&p).map(Some).map_err(|e| {
                let why = match e {
                    kubepki_files::Error::Io { .. }
                    | kubepki_files::Error::Step { .. }
                    | kubepki_files::Error::Refused { .. } => e.detail(),
                    other => other.to_string(),
                };
                file_err(path, format!("{field} {}: {why}", p.display()))
            })
        }
        (None, None) => Ok(None),
    }
}

/// Decodes a `*-data` value as client-go does: encoding/json decodes a `[]byte` field with
/// Go's `base64.StdEncoding`, which skips only carriage returns and line feeds (what a literal
/// block scalar or `\n` escapes leave in the value), requires the `=` padding and ignores
/// non-zero trailing bits. Any other character, a space or tab included (a folded scalar or a
/// multi-line plain scalar folds its line breaks into spaces), is refused as kubectl refuses it.
pub(crate) fn decode(path: &Path, field: &str, data: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    if let Some(c) = data
        .chars()
        .find(|c| c.is_whitespace() && !matches!(c, '\r' | '\n'))
    {
        let what = match c {
            ' ' => "a space".to_owned(),
            '\t' => "a tab".to_owned(),
            other => format!("the blank U+{:04X}", u32::from(other)),
        };
        return Err(file_err(
            path,
            format!(
                "{field} is not valid base64: it holds {what}, and kubectl skips only line breaks inside base64 (write the value on one line or as a literal | block)"
            ),
        ));
    }
    let compact: Zeroizing<String> =
        Zeroizing::new(data.chars().filter(|c| !matches!(c, '\r' | '\n')).collect());
    GO_STD_ENCODING
        .decode(compact.as_bytes())
        .map(Zeroizing::new)
        .map_err(|e| file_err(path, format!("{field} is not valid base64: {e}")))
}

/// Go's `base64.StdEncoding` (not `.Strict()`): padded, non-zero trailing bits accepted.
const GO_STD_ENCODING: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_matches_client_go() -> Result<(), Error> {
        let k = Kubeconfig::new(
            "kubernetes",
            "https://10.0.0.10:6443",
            Some("CA"),
            "kubernetes-admin",
            Some("CERT"),
            Some("KEY"),
        );
        let y = k.to_yaml()?;
        let expected = "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://10.0.0.10:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
";
        assert_eq!(y.as_str(), expected);
        let p = Path::new("admin.conf");
        let back = Kubeconfig::from_slice(p, y.as_bytes())?;
        assert_eq!(back, k);
        assert_eq!(back.current_ca_pem(p)?, b"CA");
        assert_eq!(
            back.current_client_cert_pem(p)?.as_deref(),
            Some(&b"CERT"[..])
        );
        Ok(())
    }

    #[test]
    fn base64_skips_line_breaks_only_as_go_does() -> Result<(), Error> {
        let p = Path::new("admin.conf");
        // "CERT" is Q0VSVA==; line breaks anywhere are skipped, padding included.
        for ok in [
            "Q0VSVA==",
            "Q0VS\nVA==",
            "Q0VS\r\nVA==\n",
            "Q0VSVA=\n=",
            "\nQ0VSVA==",
        ] {
            assert_eq!(
                decode(p, "client-certificate-data", ok)?.as_slice(),
                b"CERT"
            );
        }
        // Go's StdEncoding is not strict: non-zero trailing bits are ignored ("Q0VSVB==").
        assert_eq!(decode(p, "x", "Q0VSVB==")?.as_slice(), b"CERT");
        for (bad, why) in [
            ("Q0VS VA==", "holds a space"),
            ("Q0VS\tVA==", "holds a tab"),
            ("Q0VSVA== ", "holds a space"),
            ("Q0VS\u{a0}VA==", "U+00A0"),
            ("Q0VS\u{c}VA==", "U+000C"),
            ("Q0VSVA", "not valid base64"),
            ("Q0VS-A==", "not valid base64"),
        ] {
            let e = decode(p, "client-key-data", bad)
                .err()
                .map(|e| e.to_string());
            let e = e.unwrap_or_default();
            assert!(
                e.starts_with("admin.conf: client-key-data is not valid base64") && e.contains(why),
                "{bad:?}: {e}"
            );
        }
        Ok(())
    }

    #[test]
    fn merge_keys_are_refused_naming_the_file() {
        let p = Path::new("/etc/kubernetes/admin.conf");
        for text in [
            "users:\n- name: a\n  user:\n    client-key-data: QQ==\n    <<: {client-key-data: Qg==}\n",
            "x: &c {client-key-data: Qg==}\nusers:\n- name: a\n  user:\n    <<: [*c]\n",
            "current-context: a\n<<: {current-context: b}\n",
        ] {
            let e = Kubeconfig::from_slice(p, text.as_bytes())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                e.starts_with("/etc/kubernetes/admin.conf: uses a YAML merge key (<<) at line ")
                    && !e.contains('\n'),
                "{e}"
            );
        }
        // A quoted "<<" is an ordinary (ignored) key for go-yaml and kubepki alike.
        assert!(
            Kubeconfig::from_slice(p, b"users:\n- name: a\n  user: {'<<': {token: x}}\n").is_ok()
        );
    }
}
