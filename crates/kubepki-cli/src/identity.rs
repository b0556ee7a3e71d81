//! `kubepki user ...`, `kubepki sign-request` and `kubepki node ...`: Kubernetes identities
//! from a tree's CAs, offline.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use kubepki_ca::{
    CaExpiry, CertificateAuthority, SignerName, Window, parse_duration_with_days, rfc3339,
    sign_request,
};
use kubepki_csr::{Csr, KubeCsr};
use kubepki_files::{FileBatch, MODE_PUBLIC, MODE_SECRET};
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use kubepki_kubeadm::{
    ClusterAccess, RbacGrant, RbacSubject, UserSpec, kubelet_kubeconfig, kubelet_serving,
    rbac_binding_yaml, user_kubeconfig, user_request,
};
use time::{Duration, OffsetDateTime};

use crate::cmd::{load_ca, read, refuse_unsafe_names};
use crate::errors::{CliError, exists_err, flag_err, in_file, lib_err, other_err, outlives_ca};
use crate::flags::ClusterFlags;
use crate::out::{esc, esc_path};

/// `kubepki user`.
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// A key and client certificate for a user (CN = name, O = groups) in a kubeconfig, or with
    /// `--csr-only` a key, CSR and CertificateSigningRequest manifest.
    Create(Box<UserCreateArgs>),
    /// A kubeconfig from an existing key and signed certificate.
    Kubeconfig(UserKubeconfigArgs),
}

#[derive(Args, Debug)]
struct CaArgs {
    /// The CA certificate.
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// The CA key.
    #[arg(long)]
    ca_key: Option<PathBuf>,
    /// The CA key in a PKCS#11 token (a `pkcs11:` URI), instead of --ca-key.
    #[arg(long, value_name = "PKCS11_URI", conflicts_with = "ca_key")]
    ca_key_uri: Option<String>,
    #[command(flatten)]
    pkcs11: crate::hsm::Pkcs11Flags,
}

/// `user create`.
#[derive(Args, Debug)]
pub struct UserCreateArgs {
    /// The user name (the certificate's CN).
    name: String,
    /// A group (O); repeat for several.
    #[arg(long = "group")]
    groups: Vec<String>,
    #[command(flatten)]
    ca: CaArgs,
    /// The API server URL for the kubeconfig (https://HOST:PORT).
    #[arg(long)]
    cluster_server: Option<String>,
    /// The cluster entry's name.
    #[arg(long, default_value = "kubernetes")]
    cluster_name: String,
    /// Certificate validity (Go duration, e.g. 8760h or 1.5h; also whole days, 365d).
    #[arg(long, default_value = "8760h")]
    validity: String,
    /// Key algorithm.
    #[arg(long, default_value = "RSA-2048")]
    encryption_algorithm: String,
    /// Where to write the kubeconfig (mode 0600).
    #[arg(long, conflicts_with = "csr_only")]
    out_kubeconfig: Option<PathBuf>,
    /// Write NAME.key, NAME.csr and NAME-csr.yaml (a CertificateSigningRequest) instead.
    #[arg(long, requires = "out_dir")]
    csr_only: bool,
    /// Folder for --csr-only output.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// spec.expirationSeconds of the manifest (--csr-only).
    #[arg(long, requires = "csr_only")]
    expiration_seconds: Option<i64>,
    /// Also write a RoleBinding to this Role.
    #[arg(long, conflicts_with = "rbac_clusterrole")]
    rbac_role: Option<String>,
    /// Also write a ClusterRoleBinding to this ClusterRole.
    #[arg(long)]
    rbac_clusterrole: Option<String>,
    /// Bind this group instead of the user.
    #[arg(long)]
    rbac_group: Option<String>,
    /// The RoleBinding's namespace.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Where to write the binding [default: NAME-rbac.yaml next to the other output].
    #[arg(long)]
    rbac_out: Option<PathBuf>,
    /// Replace existing output files (atomically).
    #[arg(long)]
    force: bool,
}

/// `user kubeconfig`.
#[derive(Args, Debug)]
pub struct UserKubeconfigArgs {
    /// The user's private key.
    #[arg(long)]
    key: PathBuf,
    /// The user's signed certificate.
    #[arg(long)]
    cert: PathBuf,
    /// The cluster CA certificate.
    #[arg(long)]
    ca_cert: PathBuf,
    /// The API server URL (https://HOST:PORT).
    #[arg(long)]
    cluster_server: String,
    /// The cluster entry's name.
    #[arg(long, default_value = "kubernetes")]
    cluster_name: String,
    /// Where to write the kubeconfig (mode 0600).
    #[arg(long)]
    out_kubeconfig: PathBuf,
    /// Replace an existing kubeconfig (atomically).
    #[arg(long)]
    force: bool,
}

/// `kubepki sign-request`.
#[derive(Args, Debug)]
pub struct SignRequestArgs {
    /// CertificateSigningRequest manifests (YAML or JSON), or PEM CSRs with --signer-name.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    ca: crate::hsm::SigningCaFlags,
    /// kube-controller-manager's --cluster-signing-duration (Go duration; also whole days).
    #[arg(long, default_value = "8760h")]
    cluster_signing_duration: String,
    /// The signer for bare PEM CSRs.
    #[arg(long)]
    signer_name: Option<String>,
    /// Write the certificate here (one input).
    #[arg(long, conflicts_with_all = ["out_manifest", "out_dir"])]
    out: Option<PathBuf>,
    /// Write the manifest with status.certificate and an Approved condition here (one input).
    #[arg(long, conflicts_with = "out_dir")]
    out_manifest: Option<PathBuf>,
    /// Write NAME.crt and NAME.yaml (the approved manifest) per input here.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Replace existing output files (atomically).
    #[arg(long)]
    force: bool,
}

/// `kubepki node`.
#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// A worker's kubelet.conf (system:node:NAME), without TLS bootstrap.
    KubeletKubeconfig(NodeKubeconfigArgs),
    /// A kubelet serving certificate under the kubelet-serving policy.
    KubeletServing(NodeServingArgs),
    /// The tree of an extra control-plane node from the shared CAs and sa keys.
    ControlPlane(Box<NodeControlPlaneArgs>),
}

#[derive(Args, Debug)]
struct NodeCommon {
    /// The node name.
    #[arg(long)]
    node_name: String,
    /// The tree whose ca.crt/ca.key sign.
    #[arg(long, default_value = "/etc/kubernetes/pki")]
    cert_dir: PathBuf,
    /// The CA key in a PKCS#11 token (a `pkcs11:` URI) instead of CERT_DIR/ca.key, which must
    /// then not exist.
    #[arg(long, value_name = "PKCS11_URI")]
    ca_key_uri: Option<String>,
    #[command(flatten)]
    pkcs11: crate::hsm::Pkcs11Flags,
    /// Key algorithm.
    #[arg(long, default_value = "RSA-2048")]
    encryption_algorithm: String,
    /// Validity (Go duration, e.g. 8760h or 1.5h; also whole days, 365d).
    #[arg(long, default_value = "8760h")]
    validity: String,
    /// Replace existing output files (atomically).
    #[arg(long)]
    force: bool,
    /// If the certificate would outlive the CA, end it with the CA instead of refusing.
    #[arg(long)]
    clamp_to_ca: bool,
}

impl NodeCommon {
    /// The CA of CERT_DIR: ca.crt with ca.key, or with the key --ca-key-uri names (and no
    /// ca.key).
    fn ca(&self) -> Result<CertificateAuthority, CliError> {
        let cert = self.cert_dir.join("ca.crt");
        let key = self.cert_dir.join("ca.key");
        match &self.ca_key_uri {
            None => load_ca(&cert, &key),
            Some(uri) => {
                crate::hsm::Hsm::check_uri("--ca-key-uri", uri)?;
                if std::fs::symlink_metadata(&key).is_ok() {
                    return Err(CliError::File {
                        path: key,
                        msg: "exists, and --ca-key-uri names the CA key in a token: remove the key file or leave out --ca-key-uri".into(),
                    });
                }
                crate::hsm::Hsm::new(&self.pkcs11).load_ca(&cert, "--ca-key-uri", uri)
            }
        }
    }

    fn expiry(&self) -> CaExpiry {
        if self.clamp_to_ca {
            CaExpiry::Clamp
        } else {
            CaExpiry::Refuse
        }
    }

    /// A certificate that would outlive the CA: the message `sign` gives.
    fn lib_err(&self, e: kubepki_kubeadm::Error) -> CliError {
        match e {
            kubepki_kubeadm::Error::Ca(kubepki_ca::Error::OutlivesCa {
                leaf_not_after,
                ca_not_after,
            }) => outlives_ca(
                &self.validity,
                &self.cert_dir.join("ca.crt"),
                &leaf_not_after,
                &ca_not_after,
            ),
            other => lib_err(other),
        }
    }
}

/// `node kubelet-kubeconfig`.
#[derive(Args, Debug)]
pub struct NodeKubeconfigArgs {
    #[command(flatten)]
    common: NodeCommon,
    /// The API server URL (https://HOST:PORT).
    #[arg(long)]
    cluster_server: String,
    /// The cluster entry's name.
    #[arg(long, default_value = "kubernetes")]
    cluster_name: String,
    /// Where to write kubelet.conf (mode 0600).
    #[arg(long)]
    out: PathBuf,
}

/// `node kubelet-serving`.
#[derive(Args, Debug)]
pub struct NodeServingArgs {
    #[command(flatten)]
    common: NodeCommon,
    /// An IP SAN; repeatable.
    #[arg(long = "ip")]
    ips: Vec<IpAddr>,
    /// A DNS SAN; repeatable (default: the node name when no SAN is given).
    #[arg(long = "dns")]
    dns: Vec<String>,
    /// Folder for kubelet.crt and kubelet.key.
    #[arg(long)]
    out_dir: PathBuf,
}

/// `node control-plane`.
#[derive(Args, Debug)]
#[command(args_override_self = true)]
pub struct NodeControlPlaneArgs {
    /// The first control-plane node's certificate folder (ca, front-proxy-ca, etcd/ca, sa).
    #[arg(long)]
    from_cert_dir: PathBuf,
    #[command(flatten)]
    flags: ClusterFlags,
    #[command(flatten)]
    keys: crate::hsm::TreeKeyFlags,
}

fn algorithm(flag: &str, s: &str) -> Result<KeyAlgorithm, CliError> {
    let a: KeyAlgorithm = s.parse().map_err(|e| flag_err(format!("{flag}: {e}")))?;
    if !kubepki_kubeadm::kubernetes_takes_key(a) {
        return Err(flag_err(format!(
            "{flag}: {a}: {}",
            kubepki_kubeadm::KUBERNETES_KEYS_ONLY
        )));
    }
    Ok(a)
}

fn duration(flag: &str, s: &str) -> Result<Duration, CliError> {
    parse_duration_with_days(s).map_err(|e| flag_err(format!("{flag}: {e}")))
}

fn commit(batch: FileBatch) -> Result<(), CliError> {
    batch
        .commit()
        .map_err(|e| lib_err(kubepki_kubeadm::Error::Files(e)))
}

/// A batch for the output of a command with `--force` (which replaces files atomically).
fn batch(force: bool) -> FileBatch {
    if force {
        FileBatch::overwriting()
    } else {
        FileBatch::new()
    }
}

/// Refuses, before any key is made or request signed, output files that already exist.
fn check_outputs<'a>(
    paths: impl IntoIterator<Item = &'a PathBuf>,
    force: bool,
) -> Result<(), CliError> {
    if force {
        return Ok(());
    }
    for p in paths {
        if std::fs::symlink_metadata(p).is_ok() {
            return Err(exists_err(p));
        }
    }
    Ok(())
}

/// Stages one output file. A file that exists now was there before the command (the race
/// where one appears during the commit is reported by [`commit`]).
fn stage(batch: &mut FileBatch, p: &Path, bytes: &[u8], mode: u32) -> Result<(), CliError> {
    batch.stage(p, bytes, mode).map_err(|e| match e {
        kubepki_files::Error::Exists { path } => exists_err(&path),
        other => lib_err(kubepki_kubeadm::Error::Files(other)),
    })
}

/// Runs `kubepki user ...`.
pub fn user(cmd: UserCommand) -> Result<(), CliError> {
    match cmd {
        UserCommand::Create(a) => user_create(*a),
        UserCommand::Kubeconfig(a) => user_kc(a),
    }
}

fn user_create(a: UserCreateArgs) -> Result<(), CliError> {
    // Before anything is read or made.
    refuse_unsafe_names("NAME", "subject CN", std::slice::from_ref(&a.name))?;
    refuse_unsafe_names("--group", "subject O", &a.groups)?;
    refuse_unsafe_names(
        "--cluster-name",
        "cluster name",
        std::slice::from_ref(&a.cluster_name),
    )?;
    for (flag, value) in [
        ("--rbac-role", &a.rbac_role),
        ("--rbac-clusterrole", &a.rbac_clusterrole),
        ("--rbac-group", &a.rbac_group),
    ] {
        refuse_unsafe_names(flag, "RBAC name", value.as_slice())?;
    }
    let user = UserSpec {
        name: a.name.clone(),
        groups: a.groups.clone(),
    };
    let alg = algorithm("--encryption-algorithm", &a.encryption_algorithm)?;
    let mut batch = batch(a.force);
    let slug = user.file_stem();
    if let Some(p) = &a.rbac_out {
        check_outputs([p], a.force)?;
    }
    let out_base: PathBuf = if a.csr_only {
        let dir = a
            .out_dir
            .clone()
            .ok_or_else(|| flag_err("--csr-only needs --out-dir"))?;
        let names = ["key", "csr"].map(|e| dir.join(format!("{slug}.{e}")));
        check_outputs(&names, a.force)?;
        check_outputs([&dir.join(format!("{slug}-csr.yaml"))], a.force)?;
        let (key, csr, manifest) =
            user_request(&user, alg, a.expiration_seconds).map_err(lib_err)?;
        stage(
            &mut batch,
            &dir.join(format!("{slug}.key")),
            key.to_pem().map_err(other_err)?.as_bytes(),
            MODE_SECRET,
        )?;
        stage(
            &mut batch,
            &dir.join(format!("{slug}.csr")),
            csr.to_pem().as_bytes(),
            MODE_PUBLIC,
        )?;
        let yaml = manifest.to_yaml().map_err(other_err)?;
        stage(
            &mut batch,
            &dir.join(format!("{slug}-csr.yaml")),
            yaml.as_bytes(),
            MODE_PUBLIC,
        )?;
        dir
    } else {
        let (Some(cc), true) = (
            &a.ca.ca_cert,
            a.ca.ca_key.is_some() || a.ca.ca_key_uri.is_some(),
        ) else {
            return Err(flag_err(
                "--ca-cert and --ca-key (or --ca-key-uri) are needed (or --csr-only --out-dir DIR)",
            ));
        };
        let server = a
            .cluster_server
            .as_deref()
            .ok_or_else(|| flag_err("--cluster-server is needed for the kubeconfig"))?;
        let out = a
            .out_kubeconfig
            .clone()
            .ok_or_else(|| flag_err("--out-kubeconfig is needed (or --csr-only)"))?;
        check_outputs([&out], a.force)?;
        let ca = crate::hsm::load_ca(
            &crate::hsm::Hsm::new(&a.ca.pkcs11),
            cc,
            a.ca.ca_key.as_deref(),
            "--ca-key-uri",
            a.ca.ca_key_uri.as_deref(),
        )?;
        let window = Window::kubeadm(
            OffsetDateTime::now_utc(),
            duration("--validity", &a.validity)?,
        );
        let subject = user.subject().map_err(lib_err)?;
        let (cert, key) =
            kubepki_kubeadm::client_credentials(&ca, &subject, alg, window, CaExpiry::Clamp)
                .map_err(lib_err)?;
        if cert.not_after() < window.not_after {
            diag!(
                "[user] WARNING: the certificate is cut to expire with its CA at {} (--validity asked for {})",
                kubepki_ca::rfc3339(cert.not_after()),
                kubepki_ca::rfc3339(window.not_after)
            );
        }
        let cluster = ClusterAccess {
            cluster_name: a.cluster_name.clone(),
            server: server.to_owned(),
        };
        let trusted = crate::cmd::ca_trust(cc)?;
        let yaml = user_kubeconfig(&cluster, &trusted, &cert, &key).map_err(lib_err)?;
        stage(&mut batch, &out, yaml.as_bytes(), MODE_SECRET)?;
        out.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let grant = match (&a.rbac_role, &a.rbac_clusterrole) {
        (Some(r), _) => Some(RbacGrant::Role {
            role: r.clone(),
            namespace: a.namespace.clone(),
        }),
        (None, Some(r)) => Some(RbacGrant::ClusterRole { role: r.clone() }),
        (None, None) => None,
    };
    if let Some(g) = grant {
        let subject = match &a.rbac_group {
            Some(g) => RbacSubject::Group(g.clone()),
            None => RbacSubject::User(a.name.clone()),
        };
        let yaml = rbac_binding_yaml(&g, &subject).map_err(lib_err)?;
        let path = a
            .rbac_out
            .clone()
            .unwrap_or_else(|| out_base.join(format!("{slug}-rbac.yaml")));
        stage(&mut batch, &path, yaml.as_bytes(), MODE_PUBLIC)?;
    } else if a.rbac_group.is_some() {
        return Err(flag_err(
            "--rbac-group needs --rbac-role or --rbac-clusterrole",
        ));
    }
    let targets: Vec<String> = batch.targets().map(|p| esc_path(&p).into_owned()).collect();
    commit(batch)?;
    for t in targets {
        outln!("[user] Wrote {t}")?;
    }
    Ok(())
}

fn user_kc(a: UserKubeconfigArgs) -> Result<(), CliError> {
    check_outputs([&a.out_kubeconfig], a.force)?;
    let ca_cert =
        kubepki_ca::Certificate::from_pem(&read(&a.ca_cert)?).map_err(in_file(&a.ca_cert))?;
    let ca = CertificateAuthority::from_certificate(ca_cert).map_err(in_file(&a.ca_cert))?;
    let cert = kubepki_ca::Certificate::from_pem(&read(&a.cert)?).map_err(in_file(&a.cert))?;
    ca.check_issued(&cert).map_err(in_file(&a.cert))?;
    let key = PrivateKey::from_pem(&read(&a.key)?).map_err(in_file(&a.key))?;
    if !key.matches_public_key(cert.public_key_der()) {
        return Err(CliError::File {
            path: a.key.clone(),
            msg: format!("does not belong to {}", a.cert.display()),
        });
    }
    let cluster = ClusterAccess {
        cluster_name: a.cluster_name.clone(),
        server: a.cluster_server.clone(),
    };
    let trusted = crate::cmd::ca_trust(&a.ca_cert)?;
    let yaml = user_kubeconfig(&cluster, &trusted, &cert, &key).map_err(lib_err)?;
    let mut batch = batch(a.force);
    stage(&mut batch, &a.out_kubeconfig, yaml.as_bytes(), MODE_SECRET)?;
    commit(batch)?;
    outln!("[user] Wrote {}", esc_path(&a.out_kubeconfig))?;
    Ok(())
}

/// Runs `kubepki sign-request`.
pub fn sign_request_cmd(a: SignRequestArgs) -> Result<(), CliError> {
    if a.inputs.len() > 1 && (a.out.is_some() || a.out_manifest.is_some()) {
        return Err(flag_err(
            "--out and --out-manifest take one input; use --out-dir for several",
        ));
    }
    let ttl = duration("--cluster-signing-duration", &a.cluster_signing_duration)?;
    check_outputs(a.out.iter().chain(&a.out_manifest), a.force)?;
    let ca = a.ca.load()?;
    let now = OffsetDateTime::now_utc();
    let mut batch = batch(a.force);
    let mut notes = Vec::new();
    let mut stdout = String::new();
    let mut done = Vec::new();
    for input in &a.inputs {
        let bytes = read(input)?;
        let ferr = |msg: String| CliError::File {
            path: input.clone(),
            msg,
        };
        let kind = kubepki_kubeadm::file_kind(&bytes);
        let (mut manifest, json) = if kind == kubepki_kubeadm::FileKind::Pem {
            let signer: SignerName = a
                .signer_name
                .as_deref()
                .ok_or_else(|| {
                    ferr("is a bare PKCS#10 request: say which signer with --signer-name".into())
                })?
                .parse()
                .map_err(|e: kubepki_ca::Error| ferr(e.to_string()))?;
            let csr = Csr::from_pem(&bytes).map_err(|e| ferr(e.to_string()))?;
            // Refused by name, before a manifest name is made from the CN.
            csr.subject()
                .check_characters()
                .and_then(|()| csr.subject_alt_names().check_characters())
                .map_err(|e| ferr(e.to_string()))?;
            let name = kubepki_csr::object_name(csr.common_name().unwrap_or_default());
            (
                KubeCsr::new(&name, &csr, signer.name(), &signer.default_usages(), None),
                false,
            )
        } else {
            if a.signer_name.is_some() {
                return Err(ferr("is a manifest; --signer-name is only for bare PEM CSRs (the manifest names its signer)".into()));
            }
            let m = KubeCsr::from_slice(&bytes).map_err(|e| ferr(e.to_string()))?;
            let json = matches!(kind, kubepki_kubeadm::FileKind::CsrManifest { json: true });
            (m, json)
        };
        let cert = sign_request(&ca, &manifest, ttl, now).map_err(|e| ferr(e.to_string()))?;
        let pem = cert.to_pem();
        if manifest.has_requester_fields() {
            // The API server sets these from whoever created the object; here nobody was
            // authenticated, so they are the requester's own claims (docs/identities.md).
            notes.push(format!(
                "[sign-request] {}: removed spec.username/groups/uid/extra as written by the requester (offline, the requester is whoever the reviewer accepts)",
                esc_path(input)
            ));
        }
        manifest.set_issued(&pem, "kubepki sign-request", &rfc3339(now));
        let manifest_text = |m: &KubeCsr, json: bool| {
            if json { m.to_json() } else { m.to_yaml() }.map_err(|e| ferr(e.to_string()))
        };
        match (&a.out, &a.out_manifest, &a.out_dir) {
            (Some(out), _, _) => stage(&mut batch, out, pem.as_bytes(), MODE_PUBLIC)?,
            (_, Some(out), _) => {
                let json = json || out.extension().is_some_and(|e| e == "json");
                stage(
                    &mut batch,
                    out,
                    manifest_text(&manifest, json)?.as_bytes(),
                    MODE_PUBLIC,
                )?
            }
            (_, _, Some(dir)) => {
                let name = &manifest.metadata.name;
                let crt = dir.join(format!("{name}.crt"));
                if batch.targets().any(|t| t == crt) {
                    return Err(ferr(format!(
                        "another input is also named \"{name}\" (metadata.name); both would be written to {}",
                        crt.display()
                    )));
                }
                stage(&mut batch, &crt, pem.as_bytes(), MODE_PUBLIC)?;
                stage(
                    &mut batch,
                    &dir.join(format!("{name}.yaml")),
                    manifest_text(&manifest, false)?.as_bytes(),
                    MODE_PUBLIC,
                )?;
            }
            _ => stdout.push_str(&pem),
        }
        done.push(format!(
            "[sign-request] {}: signed \"{}\" for {} until {}",
            esc_path(input),
            esc(&cert.subject().to_string()),
            esc(&manifest.spec.signer_name),
            rfc3339(cert.not_after())
        ));
    }
    commit(batch)?;
    for line in notes.into_iter().chain(done) {
        diag!("{line}");
    }
    out!("{stdout}")?;
    Ok(())
}

/// Runs `kubepki node ...`.
pub fn node(cmd: NodeCommand) -> Result<(), CliError> {
    match cmd {
        NodeCommand::KubeletKubeconfig(a) => {
            let c = &a.common;
            check_outputs([&a.out], c.force)?;
            let ca = c.ca()?;
            let window = Window::kubeadm(
                OffsetDateTime::now_utc(),
                duration("--validity", &c.validity)?,
            );
            let trusted = crate::cmd::ca_trust(&c.cert_dir.join("ca.crt"))?;
            let yaml = kubelet_kubeconfig(
                &ca,
                &trusted,
                &c.node_name,
                &ClusterAccess {
                    cluster_name: a.cluster_name.clone(),
                    server: a.cluster_server.clone(),
                },
                algorithm("--encryption-algorithm", &c.encryption_algorithm)?,
                window,
                c.expiry(),
            )
            .map_err(|e| c.lib_err(e))?;
            let mut batch = batch(c.force);
            stage(&mut batch, &a.out, yaml.as_bytes(), MODE_SECRET)?;
            commit(batch)?;
            outln!(
                "[node] Wrote {} for system:node:{}",
                esc_path(&a.out),
                esc(&c.node_name)
            )?;
            Ok(())
        }
        NodeCommand::KubeletServing(a) => {
            let c = &a.common;
            let (crt, key_path) = (a.out_dir.join("kubelet.crt"), a.out_dir.join("kubelet.key"));
            check_outputs([&crt, &key_path], c.force)?;
            let ca = c.ca()?;
            let window = Window::kubeadm(
                OffsetDateTime::now_utc(),
                duration("--validity", &c.validity)?,
            );
            let (cert, key) = kubelet_serving(
                &ca,
                &c.node_name,
                &a.ips,
                &a.dns,
                algorithm("--encryption-algorithm", &c.encryption_algorithm)?,
                window,
                c.expiry(),
            )
            .map_err(|e| c.lib_err(e))?;
            let mut batch = batch(c.force);
            stage(&mut batch, &crt, cert.to_pem().as_bytes(), MODE_PUBLIC)?;
            stage(
                &mut batch,
                &key_path,
                key.to_pem().map_err(other_err)?.as_bytes(),
                MODE_SECRET,
            )?;
            commit(batch)?;
            outln!(
                "[node] Wrote {}/kubelet.crt and kubelet.key",
                esc_path(&a.out_dir)
            )?;
            Ok(())
        }
        NodeCommand::ControlPlane(a) => {
            let (spec, warnings) = a.flags.spec()?;
            for w in &warnings {
                diag!("warning: {}", crate::out::esc(w));
            }
            let plan = a.flags.plan(&spec)?;
            a.keys.check()?;
            a.keys.check_plan(&plan)?;
            let ca_keys = a.keys.open()?;
            let r = crate::progress::during(true, || {
                kubepki_kubeadm::control_plane_node_with_ca_keys(
                    &plan,
                    &a.from_cert_dir,
                    &ca_keys,
                    OffsetDateTime::now_utc(),
                )
            })
            .map_err(lib_err)?;
            for p in &r.written {
                outln!("[node] Wrote {}", esc_path(p))?;
            }
            outln!(
                "\nControl-plane node {} ready: {} files written.",
                esc(&plan.node_name),
                r.written.len()
            )?;
            Ok(())
        }
    }
}
