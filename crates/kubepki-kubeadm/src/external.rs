//! The external-CA flow: `certs generate-csr` on the node (spec §6.2) and `certs sign-csrs`
//! where the CA keys live, the half kubeadm leaves to the user.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kubepki_ca::{CaExpiry, Certificate, CertificateAuthority, IssueSpec};
use kubepki_csr::{Csr, CsrBuilder, ExtKeyUsage, Subject, SubjectAltNames};
use kubepki_keys::files::{FileBatch, MODE_PUBLIC, MODE_SECRET};
use kubepki_keys::{PrivateKey, generate_many};
use time::OffsetDateTime;

use crate::error::{Error, file_err};
use crate::kubeconfig::Kubeconfig;
use crate::plan::{CertId, KubeconfigId, Plan};
use crate::spec::ClusterSpec;
use crate::tree::{read_file, read_key};

/// `<dir>/<base>.csr`.
pub fn csr_path(dir: &Path, id: CertId) -> PathBuf {
    dir.join(format!("{}.csr", id.base_name()))
}

/// `<kubeconfig dir>/<file>.csr`.
pub fn kubeconfig_csr_path(dir: &Path, id: KubeconfigId) -> PathBuf {
    dir.join(format!("{}.csr", id.file_name()))
}

/// Writes a key and a CSR for every leaf of the plan (`<base>.key`, `<base>.csr`), and for each
/// kubeconfig a file with the cluster, context and user names and the server but only
/// `client-key-data`, plus `<file>.csr`. The CSRs carry the subject and DNS/IP SANs only: the
/// signer applies the usages. Refuses if any of these files (or a `<file>.key` next to a
/// kubeconfig) exists; writes nothing then. Returns the files written.
pub fn generate_csrs(plan: &Plan) -> Result<Vec<PathBuf>, Error> {
    let (_lock, _) = crate::tree::lock_for_writing(&plan.spec)?;
    let dir = &plan.cert_dir;
    let leaves: Vec<_> = plan.certs.iter().filter(|c| !c.id.is_ca()).collect();
    for k in &plan.kubeconfigs {
        let key = plan
            .kubeconfig_dir
            .join(format!("{}.key", k.id.file_name()));
        if key.exists() {
            return Err(file_err(&key, "already exists; refusing to overwrite"));
        }
    }
    let algs: Vec<_> = leaves
        .iter()
        .map(|_| plan.algorithm)
        .chain(plan.kubeconfigs.iter().map(|_| plan.secondary_algorithm))
        .collect();
    // Refuse before spending time on keys.
    for p in leaves
        .iter()
        .flat_map(|c| [c.id.key_path(dir), csr_path(dir, c.id)])
        .chain(plan.kubeconfigs.iter().flat_map(|k| {
            [
                plan.kubeconfig_path(k.id),
                kubeconfig_csr_path(&plan.kubeconfig_dir, k.id),
            ]
        }))
    {
        if std::fs::symlink_metadata(&p).is_ok() {
            return Err(file_err(&p, "already exists; refusing to overwrite"));
        }
    }
    let mut keys = generate_many(&algs)?.into_iter();
    let mut next = || keys.next().ok_or(kubepki_keys::Error::Generation);
    let mut batch = FileBatch::new().with_dir_mode(0o700);
    let mut written = Vec::new();
    for c in leaves {
        let key = next()?;
        let csr = CsrBuilder::new(c.subject.clone())
            .subject_alt_names(c.subject_alt_names.clone())
            .sign(&key)?;
        for (p, bytes) in [
            (c.id.key_path(dir), key.to_pem()?.to_string()),
            (csr_path(dir, c.id), csr.to_pem()),
        ] {
            batch.stage(&p, bytes.as_bytes(), MODE_SECRET)?;
            written.push(p);
        }
    }
    for k in &plan.kubeconfigs {
        let key = next()?;
        let csr = CsrBuilder::new(k.subject.clone()).sign(&key)?;
        let key_pem = key.to_pem()?;
        let kc = Kubeconfig::new(
            &k.cluster_name,
            &k.server,
            None,
            k.user_name(),
            None,
            Some(&key_pem),
        );
        let conf = plan.kubeconfig_path(k.id);
        batch.stage(&conf, kc.to_yaml()?.as_bytes(), MODE_SECRET)?;
        let csr_file = kubeconfig_csr_path(&plan.kubeconfig_dir, k.id);
        batch.stage(&csr_file, csr.to_pem().as_bytes(), MODE_SECRET)?;
        written.extend([conf, csr_file]);
    }
    batch.commit()?;
    Ok(written)
}

/// The CAs `sign-csrs` signs with. `ca` is required; without `front_proxy` or `etcd` the CSRs
/// for those CAs are left unsigned (reported).
pub struct SigningCas {
    /// The cluster CA (with key).
    pub ca: CertificateAuthority,
    /// The front-proxy CA (with key).
    pub front_proxy: Option<CertificateAuthority>,
    /// The etcd CA (with key).
    pub etcd: Option<CertificateAuthority>,
}

impl SigningCas {
    fn get(&self, id: CertId) -> Option<&CertificateAuthority> {
        match id {
            CertId::Ca => Some(&self.ca),
            CertId::FrontProxyCa => self.front_proxy.as_ref(),
            CertId::EtcdCa => self.etcd.as_ref(),
            _ => None,
        }
    }
}

/// What `sign-csrs` did with one CSR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signed {
    /// Signed; the certificate was written to this file (or into this kubeconfig).
    Written(PathBuf),
    /// No CSR for it in the folder.
    NoCsr(String),
    /// Its CA was not given.
    NoCa {
        /// The item.
        name: String,
        /// The CA it needs.
        ca: &'static str,
    },
}

/// Signs the CSRs `generate_csrs` wrote under `spec.cert_dir` and `spec.kubeconfig_dir` with
/// `cas`, giving each the KeyUsage and ExtendedKeyUsage its leaf must have and the validity of
/// `spec`. Certificates are written next to their keys (never over an existing one); kubeconfigs
/// get their `client-certificate-data` and `certificate-authority-data`. A CSR whose subject is
/// not the identity that file must have (e.g. an `apiserver.csr` asking for `system:masters`)
/// is refused. One batch: on any error nothing is written.
pub fn sign_csrs(
    spec: &ClusterSpec,
    cas: &SigningCas,
    now: OffsetDateTime,
) -> Result<Vec<Signed>, Error> {
    let (_lock, _) = crate::tree::lock_for_writing(spec)?;
    let dir = &spec.cert_dir;
    let mut out = Vec::new();
    let mut batch = FileBatch::overwriting();
    for id in spec.cert_ids().into_iter().filter(|c| !c.is_ca()) {
        let csr_file = csr_path(dir, id);
        if !csr_file.exists() {
            out.push(Signed::NoCsr(id.name().into()));
            continue;
        }
        let issuer = id.issuer().unwrap_or(CertId::Ca);
        let Some(ca) = cas.get(issuer) else {
            out.push(Signed::NoCa {
                name: id.name().into(),
                ca: issuer.name(),
            });
            continue;
        };
        let csr = read_csr(&csr_file)?;
        check_leaf_identity(&csr_file, id, csr.subject())?;
        check_key(&csr_file, &csr, &id.key_path(dir))?;
        let target = id.cert_path(dir);
        if std::fs::symlink_metadata(&target).is_ok() {
            return Err(file_err(&target, "already exists; refusing to overwrite"));
        }
        let sans = csr.subject_alt_names();
        let cert = issue(
            spec,
            ca,
            &csr,
            SubjectAltNames {
                dns: sans.dns,
                ips: sans.ips,
                ..SubjectAltNames::default()
            },
            id.ext_key_usage(),
            now,
        )?;
        batch.stage(&target, cert.to_pem().as_bytes(), MODE_PUBLIC)?;
        out.push(Signed::Written(target));
    }
    for k in spec.kubeconfig_ids() {
        let csr_file = kubeconfig_csr_path(&spec.kubeconfig_dir, k);
        let conf = spec.kubeconfig_dir.join(k.file_name());
        if !csr_file.exists() {
            out.push(Signed::NoCsr(k.file_name().into()));
            continue;
        }
        let csr = read_csr(&csr_file)?;
        check_kubeconfig_identity(&csr_file, k, csr.subject())?;
        let bytes = read_file(&conf)?;
        let mut kc = Kubeconfig::from_slice(&conf, &bytes)?;
        let key_pem = kc
            .current_client_key_pem(&conf)?
            .ok_or_else(|| file_err(&conf, "has no client-key-data to go with the CSR"))?;
        let key = PrivateKey::from_pem(&key_pem).map_err(|e| file_err(&conf, e))?;
        if !key.matches_public_key(csr.public_key_der()) {
            return Err(file_err(
                &csr_file,
                format!("was not made with the client key in {}", conf.display()),
            ));
        }
        let cert = issue(
            spec,
            &cas.ca,
            &csr,
            SubjectAltNames::default(),
            vec![ExtKeyUsage::ClientAuth],
            now,
        )?;
        let current = kc.current_context.clone();
        let ctx = kc
            .contexts
            .iter()
            .find(|c| c.name == current)
            .map(|c| (c.context.cluster.clone(), c.context.user.clone()))
            .ok_or_else(|| file_err(&conf, "has no current context"))?;
        for c in kc.clusters.iter_mut().filter(|c| c.name == ctx.0) {
            c.cluster.certificate_authority_data = Some(B64.encode(cas.ca.certificate().to_pem()));
        }
        for u in kc.users.iter_mut().filter(|u| u.name == ctx.1) {
            u.user.client_certificate_data = Some(B64.encode(cert.to_pem()));
        }
        batch.stage(&conf, kc.to_yaml()?.as_bytes(), MODE_SECRET)?;
        out.push(Signed::Written(conf));
    }
    batch.commit()?;
    Ok(out)
}

fn read_csr(path: &Path) -> Result<Csr, Error> {
    Csr::from_pem(&read_file(path)?).map_err(|e| file_err(path, e))
}

fn check_key(csr_file: &Path, csr: &Csr, key_path: &Path) -> Result<(), Error> {
    if key_path.exists() {
        let key = read_key(key_path)?;
        if !key.matches_public_key(csr.public_key_der()) {
            return Err(file_err(
                csr_file,
                format!("was not made with {}", key_path.display()),
            ));
        }
    }
    Ok(())
}

fn issue(
    spec: &ClusterSpec,
    ca: &CertificateAuthority,
    csr: &Csr,
    sans: SubjectAltNames,
    ekus: Vec<ExtKeyUsage>,
    now: OffsetDateTime,
) -> Result<Certificate, Error> {
    let window = spec.leaf_window(now, ca.certificate().not_before());
    let issue = IssueSpec::new(
        csr.subject().clone(),
        csr.public_key_der(),
        window,
        CaExpiry::Clamp,
    )
    .with_ext_key_usage(ekus)
    .with_subject_alt_names(sans);
    Ok(ca.issue(&issue)?)
}

fn identity_err(path: &Path, subject: &Subject, want: &str) -> Error {
    file_err(
        path,
        format!(
            "asks for \"{subject}\", but this file's certificate must be {want}; refusing to sign"
        ),
    )
}

/// The subjects a leaf may have in any kubeadm version kubepki knows (§1.1, §1.6).
fn check_leaf_identity(path: &Path, id: CertId, subject: &Subject) -> Result<(), Error> {
    let orgs: Vec<&str> = subject.organizations.iter().map(String::as_str).collect();
    let cn = subject.common_name.as_deref().unwrap_or_default();
    let extra = !subject.organizational_units.is_empty()
        || !subject.countries.is_empty()
        || !subject.provinces.is_empty()
        || !subject.localities.is_empty();
    let (want_cn, allowed_orgs): (Option<&str>, &[&[&str]]) = match id {
        CertId::Apiserver => (Some("kube-apiserver"), &[&[]]),
        CertId::ApiserverKubeletClient => (
            Some("kube-apiserver-kubelet-client"),
            &[&[], &["system:masters"], &["kubeadm:cluster-admins"]],
        ),
        CertId::FrontProxyClient => (Some("front-proxy-client"), &[&[]]),
        CertId::EtcdHealthcheckClient => (
            Some("kube-etcd-healthcheck-client"),
            &[&[], &["system:masters"]],
        ),
        CertId::ApiserverEtcdClient => (
            Some("kube-apiserver-etcd-client"),
            &[&[], &["system:masters"]],
        ),
        // etcd server and peer carry the node name.
        _ => (None, &[&[]]),
    };
    let cn_ok = match want_cn {
        Some(w) => cn == w,
        None => kubepki_csr::check_dns_subdomain(cn).is_ok(),
    };
    if !cn_ok || extra || !allowed_orgs.contains(&orgs.as_slice()) {
        let want = match want_cn {
            Some(w) => format!("CN = {w} with O in {allowed_orgs:?}"),
            None => "CN = <node name> without O".into(),
        };
        return Err(identity_err(path, subject, &want));
    }
    Ok(())
}

/// The identity each kubeconfig's user must have (§2.1), in any known version.
fn check_kubeconfig_identity(
    path: &Path,
    id: KubeconfigId,
    subject: &Subject,
) -> Result<(), Error> {
    let orgs: Vec<&str> = subject.organizations.iter().map(String::as_str).collect();
    let cn = subject.common_name.as_deref().unwrap_or_default();
    let ok = match id {
        KubeconfigId::Admin => {
            cn == "kubernetes-admin"
                && (orgs == ["kubeadm:cluster-admins"] || orgs == ["system:masters"])
        }
        KubeconfigId::SuperAdmin => cn == "kubernetes-super-admin" && orgs == ["system:masters"],
        KubeconfigId::Kubelet => {
            cn.strip_prefix("system:node:")
                .is_some_and(|n| kubepki_csr::check_dns_subdomain(n).is_ok())
                && orgs == ["system:nodes"]
        }
        KubeconfigId::ControllerManager => {
            cn == "system:kube-controller-manager" && orgs.is_empty()
        }
        KubeconfigId::Scheduler => cn == "system:kube-scheduler" && orgs.is_empty(),
    };
    if !ok {
        return Err(identity_err(
            path,
            subject,
            &format!("{}'s identity (§2.1)", id.file_name()),
        ));
    }
    Ok(())
}
