//! What a kubeconfig says, for `kubepki inspect`: each user's identity (CN and groups), its
//! client certificate's validity and issuer, whether it chains to the CA data of the clusters
//! its contexts pair it with, and whether its key belongs to it; each cluster's server and CA
//! certificates (by fingerprint); the contexts and the current one. Files the kubeconfig names
//! (`client-certificate`, `certificate-authority`, ...) are read relative to it, as kubectl
//! does. Key material and tokens are never part of the report.

use std::path::Path;

use kubepki_ca::{Certificate, CertificateAuthority, rfc3339};
use serde::Serialize;

use crate::error::{Error, Reason};
use crate::kubeconfig::{Kubeconfig, credential, set};

/// A kubeconfig described ([`describe_kubeconfig`]).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct KubeconfigReport {
    /// `current-context`.
    pub current_context: String,
    /// The clusters, in file order.
    pub clusters: Vec<ClusterReport>,
    /// The users, in file order.
    pub users: Vec<UserReport>,
    /// The contexts, in file order.
    pub contexts: Vec<ContextReport>,
    /// What kubectl could not use: the current context missing, a context naming a missing
    /// cluster or user, a CA, certificate or key that cannot be read (each entry's `error`).
    /// Empty for a usable kubeconfig.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// A cluster entry.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClusterReport {
    /// Its name.
    pub name: String,
    /// `server`.
    pub server: String,
    /// Its CA certificates (a CA rotation leaves two), or none.
    pub certificate_authorities: Vec<CaReport>,
    /// Why its CA could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One CA certificate of a cluster.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CaReport {
    /// Its subject.
    pub subject: String,
    /// Its NotAfter (RFC 3339).
    pub not_after: String,
    /// SHA-256 of its DER, hex.
    pub sha256_fingerprint: String,
}

/// A user entry.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UserReport {
    /// Its name.
    pub name: String,
    /// How it authenticates: `client certificate`, `token` or `none`.
    pub credential: &'static str,
    /// The client certificate's CN: the Kubernetes user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    /// The client certificate's O values: the Kubernetes groups.
    pub groups: Vec<String>,
    /// NotBefore (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// NotAfter (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// The issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// For each cluster a context pairs this user with: whether the certificate was issued by
    /// one of that cluster's CA certificates (name, signature and key identifier).
    pub chains_to: Vec<Chain>,
    /// Whether the client key belongs to the certificate (`None`: no key, or no certificate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_matches_certificate: Option<bool>,
    /// Why its certificate or key could not be read, if they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether a user's certificate chains to one cluster's CA data.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Chain {
    /// The cluster.
    pub cluster: String,
    /// Whether one of its CA certificates issued the user's certificate.
    pub chains: bool,
}

/// A context entry.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ContextReport {
    /// Its name.
    pub name: String,
    /// Its cluster.
    pub cluster: String,
    /// Its user.
    pub user: String,
    /// Its namespace, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Describes the kubeconfig `path` holds `input` of. A file it names that cannot be read, or a
/// value that cannot be decoded, is reported in that entry's `error` and in
/// [`KubeconfigReport::problems`]; only a file that is not a kubeconfig at all is an error.
///
/// ```
/// use kubepki_kubeadm::{Kubeconfig, describe_kubeconfig};
/// let text = b"apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://192.0.2.10:6443\ncontexts:\n- name: u@c\n  context: {cluster: c, user: u}\ncurrent-context: u@c\nusers:\n- name: u\n  user: {token: secret}\n";
/// let r = describe_kubeconfig(std::path::Path::new("k.conf"), text)?;
/// assert_eq!(r.users[0].credential, "token");
/// assert_eq!(r.clusters[0].server, "https://192.0.2.10:6443");
/// # Ok::<(), kubepki_kubeadm::Error>(())
/// ```
pub fn describe_kubeconfig(path: &Path, input: &[u8]) -> Result<KubeconfigReport, Error> {
    let k = Kubeconfig::from_slice(path, input)?;
    let mut cluster_cas: Vec<(String, Vec<Certificate>)> = Vec::new();
    let clusters: Vec<ClusterReport> = k
        .clusters
        .iter()
        .map(|c| {
            let ca = credential(
                path,
                "certificate-authority",
                c.cluster.certificate_authority_data.as_deref(),
                c.cluster.certificate_authority.as_deref(),
            )
            .and_then(|pem| match pem {
                None => Ok(Vec::new()),
                Some(pem) => Certificate::chain_from_pem(&pem).map_err(|e| Error::File {
                    path: path.to_owned(),
                    reason: Reason::within(
                        format!("cluster \"{}\": certificate-authority", c.name),
                        e,
                    ),
                }),
            });
            let (cas, error) = match ca {
                Ok(cas) => (cas, None),
                Err(e) => (Vec::new(), Some(reason(e))),
            };
            let report = ClusterReport {
                name: c.name.clone(),
                server: c.cluster.server.clone(),
                certificate_authorities: cas
                    .iter()
                    .map(|ca| CaReport {
                        subject: ca.subject().to_string(),
                        not_after: rfc3339(ca.not_after()),
                        sha256_fingerprint: ca.fingerprint_sha256(),
                    })
                    .collect(),
                error,
            };
            cluster_cas.push((c.name.clone(), cas));
            report
        })
        .collect();
    let users: Vec<UserReport> = k
        .users
        .iter()
        .map(|u| {
            let cert = credential(
                path,
                "client-certificate",
                u.user.client_certificate_data.as_deref(),
                u.user.client_certificate.as_deref(),
            );
            let key = credential(
                path,
                "client-key",
                u.user.client_key_data.as_deref(),
                u.user.client_key.as_deref(),
            );
            let mut r = UserReport {
                name: u.name.clone(),
                credential: "none",
                common_name: None,
                groups: Vec::new(),
                not_before: None,
                not_after: None,
                issuer: None,
                chains_to: Vec::new(),
                key_matches_certificate: None,
                error: None,
            };
            let cert = match cert {
                Ok(Some(pem)) => {
                    r.credential = "client certificate";
                    match Certificate::from_pem(&pem) {
                        Ok(c) => Some(c),
                        Err(e) => {
                            r.error = Some(format!("client certificate: {e}"));
                            None
                        }
                    }
                }
                Ok(None) => {
                    if set(u.user.token.as_deref()).is_some() {
                        r.credential = "token";
                    }
                    None
                }
                Err(e) => {
                    r.credential = "client certificate";
                    r.error = Some(reason(e));
                    None
                }
            };
            if let Some(c) = &cert {
                r.common_name = c.common_name().map(str::to_owned);
                r.groups = c.organizations().to_vec();
                r.not_before = Some(rfc3339(c.not_before()));
                r.not_after = Some(rfc3339(c.not_after()));
                r.issuer = Some(c.issuer().to_string());
                let mut seen: Vec<&str> = Vec::new();
                for ctx in k.contexts.iter().filter(|x| x.context.user == u.name) {
                    let name = ctx.context.cluster.as_str();
                    if seen.contains(&name) {
                        continue;
                    }
                    seen.push(name);
                    let chains =
                        cluster_cas
                            .iter()
                            .find(|(n, _)| n == name)
                            .is_some_and(|(_, cas)| {
                                cas.iter().any(|ca| {
                                    CertificateAuthority::from_certificate(ca.clone())
                                        .is_ok_and(|a| a.check_issued(c).is_ok())
                                })
                            });
                    r.chains_to.push(Chain {
                        cluster: name.to_owned(),
                        chains,
                    });
                }
                match key {
                    Ok(Some(pem)) => match kubepki_keys::PrivateKey::from_pem(&pem) {
                        Ok(k) => {
                            r.key_matches_certificate = Some(kubepki_keys::spki_equal(
                                k.public_key_der(),
                                c.public_key_der(),
                            ));
                        }
                        // Never the key's bytes: only that it could not be read as a key.
                        Err(_) => {
                            r.error = Some("client key: not a private key kubepki can read".into());
                        }
                    },
                    Ok(None) => {}
                    Err(e) => r.error = Some(reason(e)),
                }
            }
            r
        })
        .collect();
    let contexts = k
        .contexts
        .iter()
        .map(|c| ContextReport {
            name: c.name.clone(),
            cluster: c.context.cluster.clone(),
            user: c.context.user.clone(),
            namespace: c.context.namespace.clone(),
        })
        .collect();
    let mut problems = Vec::new();
    if !k.contexts.iter().any(|c| c.name == k.current_context) {
        problems.push(format!(
            "current-context \"{}\" is not among its contexts",
            k.current_context
        ));
    }
    for c in &k.contexts {
        if !k.clusters.iter().any(|x| x.name == c.context.cluster) {
            problems.push(format!(
                "context \"{}\": cluster \"{}\" is missing",
                c.name, c.context.cluster
            ));
        }
        if !k.users.iter().any(|x| x.name == c.context.user) {
            problems.push(format!(
                "context \"{}\": user \"{}\" is missing",
                c.name, c.context.user
            ));
        }
    }
    for c in &clusters {
        if let Some(e) = &c.error {
            problems.push(format!("cluster \"{}\": {e}", c.name));
        }
    }
    for u in &users {
        if let Some(e) = &u.error {
            problems.push(format!("user \"{}\": {e}", u.name));
        }
        if u.key_matches_certificate == Some(false) {
            problems.push(format!(
                "user \"{}\": the client key does not belong to the client certificate",
                u.name
            ));
        }
    }
    Ok(KubeconfigReport {
        current_context: k.current_context.clone(),
        clusters,
        users,
        contexts,
        problems,
    })
}

/// An error's reason without the kubeconfig's path (the report is about that file already).
fn reason(e: Error) -> String {
    match e {
        Error::File { reason, .. } => reason.to_string(),
        other => other.to_string(),
    }
}
