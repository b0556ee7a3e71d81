//! Kubernetes identities from a tree's CAs, offline: users (kubeconfig, or key + CSR +
//! `CertificateSigningRequest` for clusters that sign online), RBAC bindings for them, a
//! worker's kubelet.conf, kubelet serving certificates, and the tree of an extra control-plane
//! node (`docs/compatibility.md` §2, §4.5, §7).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use kubepki_ca::{
    CaExpiry, Certificate, CertificateAuthority, IssueSpec, SignerName, Window, check_policy,
};
use kubepki_csr::{Csr, CsrBuilder, ExtKeyUsage, KubeCsr, Subject, SubjectAltNames};
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use serde_json::json;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::{Error, Reason, file_err, invalid};
use crate::kubeconfig::Kubeconfig;
use crate::plan::{CertId, KubeconfigId, Plan};
use crate::tree::read_file;

/// A user's certificate: CN = the user name, one O per group (how Kubernetes reads client
/// certificates).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSpec {
    /// The user name (CN).
    pub name: String,
    /// The groups (O).
    pub groups: Vec<String>,
}

impl UserSpec {
    /// The stem of the files written for this user (`STEM.key`, `STEM.csr`, `STEM-csr.yaml`,
    /// `STEM-rbac.yaml`): the name with every character other than ASCII letters, digits, `-`
    /// and `.` turned into `-`, cut to 100 characters so that the file names and the writer's
    /// temporary names stay under the 255-byte limit of a file name. Case is kept.
    ///
    /// ```
    /// use kubepki_kubeadm::UserSpec;
    /// let u = UserSpec { name: "Jane/Doe".into(), groups: vec![] };
    /// assert_eq!(u.file_stem(), "Jane-Doe");
    /// ```
    pub fn file_stem(&self) -> String {
        self.name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .take(100)
            .collect()
    }

    /// The certificate subject.
    pub fn subject(&self) -> Result<Subject, Error> {
        if self.name.trim().is_empty() {
            return Err(invalid("user", "the user name must not be empty"));
        }
        let s = Subject::cn(self.name.clone()).with_organizations(self.groups.iter().cloned());
        s.validate()?;
        Ok(s)
    }
}

/// A client certificate and key issued by `ca` for `subject`, with kubeadm's leaf profile.
/// `expiry` says what happens to a window that outlives the CA: [`CaExpiry::Refuse`] it (an
/// error naming both dates), or [`CaExpiry::Clamp`] it to the CA's NotAfter (what `kubepki
/// user create` does, saying so).
///
/// ```
/// use kubepki_ca::{CaExpiry, CaSpec, CertificateAuthority, Certificate, Window};
/// use kubepki_csr::ExtKeyUsage;
/// use kubepki_keys::{KeyAlgorithm, PrivateKey};
/// use kubepki_kubeadm::{ClusterAccess, Kubeconfig, UserSpec, client_credentials, user_kubeconfig};
/// use time::{Duration, OffsetDateTime};
///
/// let now = OffsetDateTime::now_utc();
/// let ca = CertificateAuthority::create_root(
///     &CaSpec::kubeadm("kubernetes", now, Duration::days(3650)),
///     PrivateKey::generate(KeyAlgorithm::EcdsaP256)?,
/// )?;
/// let jane = UserSpec { name: "jane".into(), groups: vec!["dev".into()] };
/// let (cert, key) = client_credentials(
///     &ca,
///     &jane.subject()?,
///     KeyAlgorithm::EcdsaP256,
///     Window::kubeadm(now, Duration::hours(24)),
///     CaExpiry::Refuse,
/// )?;
/// ca.verify(&cert, Some(&ExtKeyUsage::ClientAuth), now)?;
/// assert_eq!(cert.organizations(), ["dev"]);
///
/// // Longer than the CA lives: refused, or cut to the CA's end when asked.
/// let long = Window::kubeadm(now, Duration::days(20 * 365));
/// assert!(client_credentials(&ca, &jane.subject()?, KeyAlgorithm::EcdsaP256, long, CaExpiry::Refuse).is_err());
/// let (cut, _) = client_credentials(&ca, &jane.subject()?, KeyAlgorithm::EcdsaP256, long, CaExpiry::Clamp)?;
/// assert_eq!(cut.not_after(), ca.certificate().not_after());
///
/// let cluster = ClusterAccess {
///     cluster_name: "kubernetes".into(),
///     server: "https://cp.example.test:6443".into(),
/// };
/// let yaml = user_kubeconfig(&cluster, std::slice::from_ref(ca.certificate()), &cert, &key)?;
/// let kc = Kubeconfig::parse(yaml.as_bytes())?;
/// assert_eq!(kc.current_context, "jane@kubernetes");
/// let embedded = kc.current_client_cert_pem(std::path::Path::new("jane.conf"))?.expect("embedded");
/// assert_eq!(Certificate::from_pem(&embedded)?.to_der(), cert.to_der());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn client_credentials(
    ca: &CertificateAuthority,
    subject: &Subject,
    algorithm: KeyAlgorithm,
    window: Window,
    expiry: CaExpiry,
) -> Result<(Certificate, PrivateKey), Error> {
    let key = PrivateKey::generate(algorithm)?;
    let spec = IssueSpec::new(subject.clone(), key.public_key_der(), window, expiry)
        .with_ext_key_usage(vec![ExtKeyUsage::ClientAuth]);
    Ok((ca.issue(&spec)?, key))
}

/// The cluster a kubeconfig points at: its name (the kubeconfig's cluster entry and the
/// `<user>@<cluster>` context) and the API server URL. Named fields, so the two strings cannot
/// be swapped unnoticed; [`user_kubeconfig`] checks both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterAccess {
    /// The cluster name (kubeadm's `clusterName`, `kubernetes` by default).
    pub cluster_name: String,
    /// The API server: an `https://host[:port]` URL.
    pub server: String,
}

impl ClusterAccess {
    /// Checks the name (not empty) and the server (an `https://` URL with a valid host and
    /// port); errors name the field (`clusterName`, `server`).
    pub fn validate(&self) -> Result<(), Error> {
        if self.cluster_name.trim().is_empty() {
            return Err(invalid("clusterName", "must not be empty"));
        }
        check_characters("clusterName", &self.cluster_name)?;
        check_server(&self.server)
    }
}

/// A kubeconfig trusting the CA certificates `trusted` (the cluster CA's certificate; during a
/// CA rotation every certificate of `ca.crt`, in its order: docs/rotation.md) and embedding
/// `cert` and `key` for user `cert`'s CN, with the context
/// `<user>@<cluster_name>` selected (what `kubectl config set-cluster/set-credentials
/// --embed-certs/set-context/use-context` produce). `cluster` is checked first
/// ([`ClusterAccess::validate`]).
pub fn user_kubeconfig(
    cluster: &ClusterAccess,
    trusted: &[Certificate],
    cert: &Certificate,
    key: &PrivateKey,
) -> Result<Zeroizing<String>, Error> {
    cluster.validate()?;
    if trusted.is_empty() {
        return Err(invalid(
            "certificate-authority-data",
            "no CA certificate to trust was given",
        ));
    }
    let user = cert.common_name().unwrap_or_default();
    check_characters("user", user)?;
    let key_pem = key.to_pem()?;
    Kubeconfig::new(
        &cluster.cluster_name,
        &cluster.server,
        Some(&crate::tree::bundle_pem(trusted)),
        user,
        Some(&cert.to_pem()),
        Some(&key_pem),
    )
    .to_yaml()
}

/// Refuses a name kubepki would write (a kubeconfig's cluster or user, an RBAC role or
/// subject) holding a control or bidirectional formatting character, as
/// [`kubepki_csr::Subject::check_characters`] does for certificate names.
fn check_characters(field: &str, value: &str) -> Result<(), Error> {
    if kubepki_csr::has_unsafe_chars(value) {
        return Err(Error::Csr(kubepki_csr::Error::UnsafeName {
            field: field.to_owned(),
            value: value.to_owned(),
        }));
    }
    Ok(())
}

fn check_server(server: &str) -> Result<(), Error> {
    // The host is checked below; the path is written as it is, so checked here.
    check_characters("server", server)?;
    let rest = server.strip_prefix("https://").ok_or_else(|| {
        invalid(
            "server",
            format!("\"{server}\" must be an https:// URL (client certificates need TLS)"),
        )
    })?;
    let hostport = rest.split('/').next().unwrap_or_default();
    crate::net::HostPort::parse("server", hostport)?;
    Ok(())
}

/// A key, its PKCS#10 request and the `CertificateSigningRequest` manifest for a user, for
/// clusters that sign online (`kubectl apply`, `kubectl certificate approve`).
///
/// ```
/// use kubepki_keys::KeyAlgorithm;
/// use kubepki_kubeadm::{UserSpec, user_request};
///
/// let bob = UserSpec { name: "Bob Smith".into(), groups: vec!["ops".into()] };
/// let (key, csr, manifest) = user_request(&bob, KeyAlgorithm::EcdsaP256, Some(86400))?;
/// assert_eq!(manifest.metadata.name, "bob-smith"); // a valid object name
/// assert_eq!(manifest.spec.signer_name, "kubernetes.io/kube-apiserver-client");
/// assert_eq!(csr.public_key_der(), key.public_key_der());
/// // The manifest carries the same request, and parses back as valid.
/// let back = kubepki_csr::KubeCsr::from_slice(manifest.to_yaml()?.as_bytes())?;
/// assert_eq!(back.validate()?.public_key_der(), key.public_key_der());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn user_request(
    user: &UserSpec,
    algorithm: KeyAlgorithm,
    expiration_seconds: Option<i64>,
) -> Result<(PrivateKey, Csr, KubeCsr), Error> {
    // The name is checked before a key is made.
    let subject = user.subject()?;
    let key = PrivateKey::generate(algorithm)?;
    let csr = CsrBuilder::new(subject).sign(&key)?;
    let manifest = KubeCsr::new(
        &kubepki_csr::object_name(&user.name),
        &csr,
        SignerName::KubeApiserverClient.name(),
        &SignerName::KubeApiserverClient.default_usages(),
        expiration_seconds,
    );
    manifest.validate()?;
    Ok((key, csr, manifest))
}

/// Who an RBAC binding binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RbacSubject {
    /// A user (the certificate's CN).
    User(String),
    /// A group (one of the certificate's O).
    Group(String),
}

/// What an RBAC binding grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RbacGrant {
    /// A RoleBinding in `namespace` to the Role `role`.
    Role {
        /// The Role.
        role: String,
        /// Its namespace.
        namespace: String,
    },
    /// A ClusterRoleBinding to the ClusterRole `role`.
    ClusterRole {
        /// The ClusterRole.
        role: String,
    },
}

/// The RoleBinding / ClusterRoleBinding manifest (`rbac.authorization.k8s.io/v1`) for
/// `subject`, as `kubectl create rolebinding|clusterrolebinding -o yaml` shapes it.
pub fn rbac_binding_yaml(grant: &RbacGrant, subject: &RbacSubject) -> Result<String, Error> {
    let (kind, name) = match subject {
        RbacSubject::User(n) => ("User", n),
        RbacSubject::Group(n) => ("Group", n),
    };
    check_characters("RBAC subject", name)?;
    match grant {
        RbacGrant::Role { role, .. } | RbacGrant::ClusterRole { role } => {
            check_characters("RBAC role", role)?
        }
    }
    let slug = |s: &str| {
        s.to_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == ':' {
                    c
                } else {
                    '-'
                }
            })
            .collect::<String>()
    };
    let value = match grant {
        RbacGrant::Role { role, namespace } => {
            kubepki_csr::check_dns_subdomain(namespace).map_err(|e| invalid("namespace", e))?;
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": format!("{}-{}", slug(name), slug(role)), "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}],
            })
        }
        RbacGrant::ClusterRole { role } => json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": format!("{}-{}", slug(name), slug(role))},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}],
        }),
    };
    kubepki_csr::yaml::to_string(&value).map_err(|e| invalid("rbac", e))
}

/// A worker's `kubelet.conf` (`system:node:<node>` in `system:nodes`), issued directly by the
/// cluster CA instead of through TLS bootstrap. The request is checked against the
/// `kube-apiserver-client-kubelet` signer policy first. A `window` that outlives the CA is
/// refused or cut to the CA's NotAfter, as `expiry` says. The kubeconfig trusts `trusted`
/// (see [`user_kubeconfig`]; during a CA rotation, both certificates of `ca.crt`).
pub fn kubelet_kubeconfig(
    ca: &CertificateAuthority,
    trusted: &[Certificate],
    node_name: &str,
    cluster: &ClusterAccess,
    algorithm: KeyAlgorithm,
    window: Window,
    expiry: CaExpiry,
) -> Result<Zeroizing<String>, Error> {
    kubepki_csr::check_dns_subdomain(node_name).map_err(|e| invalid("nodeName", e))?;
    let subject =
        Subject::cn(format!("system:node:{node_name}")).with_organizations(["system:nodes"]);
    cluster.validate()?;
    let (cert, key) = client_credentials(ca, &subject, algorithm, window, expiry)?;
    let csr = CsrBuilder::new(subject).sign(&key)?;
    check_policy(
        SignerName::KubeApiserverClientKubelet,
        &csr,
        &SignerName::KubeApiserverClientKubelet.default_usages(),
    )?;
    user_kubeconfig(cluster, trusted, &cert, &key)
}

/// A kubelet serving certificate and key under the `kubelet-serving` policy: CN
/// `system:node:<node>`, O `system:nodes`, EKU serverAuth, the given SANs (the node name when
/// none are given). A `window` that outlives the CA is refused or cut to the CA's NotAfter, as
/// `expiry` says.
pub fn kubelet_serving(
    ca: &CertificateAuthority,
    node_name: &str,
    ips: &[IpAddr],
    dns: &[String],
    algorithm: KeyAlgorithm,
    window: Window,
    expiry: CaExpiry,
) -> Result<(Certificate, PrivateKey), Error> {
    kubepki_csr::check_dns_subdomain(node_name).map_err(|e| invalid("nodeName", e))?;
    for d in dns {
        crate::net::parse_san("dnsNames", d)?;
    }
    let mut sans = SubjectAltNames {
        dns: dns.to_vec(),
        ips: ips.to_vec(),
        ..SubjectAltNames::default()
    };
    if sans.is_empty() {
        sans.dns.push(node_name.to_owned());
    }
    let subject =
        Subject::cn(format!("system:node:{node_name}")).with_organizations(["system:nodes"]);
    let key = PrivateKey::generate(algorithm)?;
    let csr = CsrBuilder::new(subject.clone())
        .subject_alt_names(sans.clone())
        .sign(&key)?;
    check_policy(
        SignerName::KubeletServing,
        &csr,
        &SignerName::KubeletServing.default_usages(),
    )?;
    let spec = IssueSpec::new(subject, key.public_key_der(), window, expiry)
        .with_ext_key_usage(vec![ExtKeyUsage::ServerAuth])
        .with_subject_alt_names(sans);
    Ok((ca.issue(&spec)?, key))
}

/// The files kubeadm shares between control-plane nodes (`docs/compatibility.md` §4.5).
pub fn shared_files(external_etcd: bool) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = vec![
        "ca.crt".into(),
        "ca.key".into(),
        "sa.key".into(),
        "sa.pub".into(),
        "front-proxy-ca.crt".into(),
        "front-proxy-ca.key".into(),
    ];
    if !external_etcd {
        v.push("etcd/ca.crt".into());
        v.push("etcd/ca.key".into());
    }
    v
}

/// The tree of an extra control-plane node, as `kubeadm join --control-plane` leaves it: the
/// shared CAs and sa keys copied from `from_cert_dir` (identical copies may already be there),
/// then this node's leaves and admin.conf, controller-manager.conf, scheduler.conf and
/// kubelet.conf (which join would get through TLS bootstrap), decided and made as
/// [`crate::init_tree`] does over the node's tree plus those copies, and written as one crash-safe
/// batch: on failure nothing is written. No super-admin.conf (init node only).
///
/// As `kubeadm join --control-plane`, it refuses a cluster without a `controlPlaneEndpoint`
/// (every kubeconfig of the node would point at the node alone), and names every shared file
/// `from_cert_dir` lacks, with what to do (docs/identities.md).
///
/// ```
/// use kubepki_kubeadm::{ClusterSpec, Plan, Selection, control_plane_node, init_tree};
/// use kubepki_ca::{Certificate, CertificateAuthority};
///
/// let (first, second) = (tempfile::tempdir()?, tempfile::tempdir()?);
/// let spec = |dir: &std::path::Path, node: &str, ip: &str| -> Result<ClusterSpec, Box<dyn std::error::Error>> {
///     let mut s = ClusterSpec::with_advertise_address(ip.parse()?);
///     s.node_name = Some(node.into());
///     s.control_plane_endpoint = Some("cp.example.test:6443".into());
///     s.encryption_algorithm = kubepki_keys::KeyAlgorithm::EcdsaP256;
///     s.cert_dir = dir.join("pki");
///     s.kubeconfig_dir = dir.to_owned();
///     Ok(s)
/// };
/// let now = time::OffsetDateTime::now_utc();
/// init_tree(&Plan::new(&spec(first.path(), "cp1", "192.0.2.10")?)?, &Selection::all(), now, false)?;
///
/// let cp2 = Plan::new(&spec(second.path(), "cp2", "192.0.2.11")?)?;
/// control_plane_node(&cp2, &first.path().join("pki"), now)?;
/// // The CA is the first node's (copied), and cp2's serving certificate is signed by it.
/// let read = |p: std::path::PathBuf| std::fs::read(p);
/// assert_eq!(read(first.path().join("pki/ca.key"))?, read(second.path().join("pki/ca.key"))?);
/// let ca = CertificateAuthority::from_certificate(Certificate::from_pem(&read(first.path().join("pki/ca.crt"))?)?)?;
/// let apiserver = Certificate::from_pem(&read(second.path().join("pki/apiserver.crt"))?)?;
/// ca.verify(&apiserver, Some(&kubepki_csr::ExtKeyUsage::ServerAuth), now)?;
/// assert!(apiserver.subject_alt_names().dns.iter().any(|d| d == "cp2"));
/// assert!(!second.path().join("super-admin.conf").exists()); // the init node's only
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn control_plane_node(
    plan: &Plan,
    from_cert_dir: &Path,
    now: OffsetDateTime,
) -> Result<crate::InitReport, Error> {
    control_plane_node_with_ca_keys(plan, from_cert_dir, &[], now)
}

/// [`control_plane_node`] with CA keys held outside the folders (a token: [`crate::HeldCaKey`]):
/// the key files of those CAs are neither needed in `from_cert_dir` nor copied; this node's
/// certificates of those CAs are signed through the held keys.
pub fn control_plane_node_with_ca_keys(
    plan: &Plan,
    from_cert_dir: &Path,
    ca_keys: &[crate::HeldCaKey],
    now: OffsetDateTime,
) -> Result<crate::InitReport, Error> {
    if plan.spec.control_plane_endpoint.is_none() {
        return Err(invalid(
            "controlPlaneEndpoint",
            "not set; kubeadm adds a control-plane node only to a cluster with a stable controlPlaneEndpoint (a load balancer or DNS name shared by all control-plane nodes): pass --control-plane-endpoint HOST[:PORT], the first node's; without it every kubeconfig of this node would point at this node alone",
        ));
    }
    let held_key_files: Vec<PathBuf> = ca_keys
        .iter()
        .map(|(id, _)| id.key_path(Path::new("")))
        .collect();
    let mut shared = shared_files(plan.cert(CertId::EtcdCa).is_none());
    shared.retain(|rel| !held_key_files.contains(rel));
    // A CA rotation in progress there (stage started): its waiting new keys are shared too
    // (docs/rotation.md).
    shared.extend(
        crate::RotationTarget::of(&plan.spec)
            .into_iter()
            .flat_map(|t| [t.pending_key_rel(), t.record_rel()])
            .map(PathBuf::from)
            .chain([PathBuf::from(crate::SIGNER_CERT)])
            .filter(|rel| std::fs::symlink_metadata(from_cert_dir.join(rel)).is_ok()),
    );
    let missing: Vec<&PathBuf> = shared
        .iter()
        .filter(|rel| std::fs::symlink_metadata(from_cert_dir.join(rel)).is_err())
        .collect();
    if let Some(first) = missing.first() {
        // A CA certificate whose key is absent: the first node's tree uses an external CA.
        let keyless: Vec<String> = missing
            .iter()
            .filter(|rel| rel.extension().is_some_and(|e| e == "key"))
            .filter(|rel| from_cert_dir.join(rel.with_extension("crt")).exists())
            .map(|rel| rel.display().to_string())
            .collect();
        let all: Vec<String> = missing.iter().map(|r| r.display().to_string()).collect();
        let reason = if keyless.is_empty() {
            format!(
                "missing; node control-plane copies the files all control-plane nodes share from the first node's certificate folder ({}), and these are not there: {}",
                from_cert_dir.display(),
                all.join(", ")
            )
        } else {
            format!(
                "missing: {} has the CA certificates without their keys ({}): an external CA, and node control-plane needs the CA keys to sign this node's certificates. Copy the keys there, or make this node's files the external-CA way: `kubepki certs generate-csr` with this node's flags, `kubepki certs sign-csrs` where the CA keys are, then `kubepki init` here (docs/certs.md){}",
                from_cert_dir.display(),
                keyless.join(", "),
                if all.len() > keyless.len() {
                    format!("; also missing: {}", all.join(", "))
                } else {
                    String::new()
                }
            )
        };
        return Err(file_err(from_cert_dir.join(first), reason));
    }
    // One batch under the node's lock: the shared files it lacks, copied, and its own files,
    // made from them (decide and apply over the tree on disk plus the copies, then the
    // crash-safe folder writer: docs/architecture.md, "Decide, apply, sinks").
    let (_lock, recovered) = crate::tree::lock_for_writing(&plan.spec)?;
    let current = crate::Tree::read_unlocked(plan);
    let mut with_shared = current.clone();
    for (id, key) in ca_keys {
        with_shared.set_ca_key(*id, key.clone())?;
    }
    let mut new_files = crate::Tree::new();
    for rel in shared {
        let src = from_cert_dir.join(&rel);
        let dst = plan.cert_dir.join(&rel);
        let bytes = read_file(&src)?;
        let tree_path = format!("{}{}", crate::PKI_PREFIX, rel.display());
        if current.exists(&tree_path) {
            if *current.read(&tree_path, &dst)? != *bytes {
                return Err(file_err(
                    &dst,
                    format!(
                        "exists and differs from {}; the shared files must be identical",
                        src.display()
                    ),
                ));
            }
            continue;
        }
        new_files.insert_file(tree_path.clone(), bytes.to_vec())?;
        with_shared.insert_file(tree_path, bytes.to_vec())?;
    }
    let selection = crate::Selection {
        certs: CertId::ALL.to_vec(),
        sa: true,
        kubeconfigs: KubeconfigId::ALL
            .into_iter()
            .filter(|k| *k != KubeconfigId::SuperAdmin)
            .collect(),
    };
    let applied = crate::apply(plan, crate::decide(plan, &selection, &with_shared, now)?)?;
    for f in applied.files.files() {
        new_files.insert(f.path.clone(), f.bytes.to_vec(), f.mode)?;
    }
    let written = crate::init::stage_and_commit(plan, &new_files)?;
    // The rotation folder (waiting keys) is the owner's alone, as `ca rotate start` makes it.
    let rotation = plan.cert_dir.join(crate::rotate::ROTATION_DIR);
    if new_files.files().any(|f| {
        f.path.starts_with(&format!(
            "{}{}/",
            crate::PKI_PREFIX,
            crate::rotate::ROTATION_DIR
        ))
    }) && std::fs::symlink_metadata(&rotation).is_ok_and(|m| m.is_dir())
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&rotation, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| file_err(&rotation, Reason::io("cannot make it 0700", e)))?;
    }
    Ok(applied.into_report(written, recovered))
}
