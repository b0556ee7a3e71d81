//! The plan: every certificate, key and kubeconfig of a kubeadm tree, with its subject, SANs,
//! usages and paths, computed from a [`ClusterSpec`] (`docs/compatibility.md` §1.1, §1.3, §2.1–§2.3).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use kubepki_ca::{DEFAULT_CA_VALIDITY, DEFAULT_LEAF_VALIDITY, Window};
use kubepki_csr::{ExtKeyUsage, Subject, SubjectAltNames};
use kubepki_keys::KeyAlgorithm;
use time::{Duration, OffsetDateTime};

use crate::error::{Error, invalid};
use crate::net::{Host, HostPort, https_url, parse_san, parse_service_subnet};
use crate::spec::ClusterSpec;
use crate::version::KubernetesVersion;

/// The CN of `apiserver-kubelet-client` (the user the API server is to kubelets).
pub(crate) const APISERVER_KUBELET_CLIENT_CN: &str = "kube-apiserver-kubelet-client";

/// The certificates of a kubeadm tree, in the order kubeadm makes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CertId {
    /// `ca`: the cluster CA.
    Ca,
    /// `apiserver`: the API server's serving certificate.
    Apiserver,
    /// `apiserver-kubelet-client`: the API server's client certificate towards kubelets.
    ApiserverKubeletClient,
    /// `front-proxy-ca`: the CA of the aggregation layer.
    FrontProxyCa,
    /// `front-proxy-client`: the API server's client certificate towards aggregated APIs.
    FrontProxyClient,
    /// `etcd-ca`: the etcd CA.
    EtcdCa,
    /// `etcd-server`: etcd's serving certificate.
    EtcdServer,
    /// `etcd-peer`: etcd's peer certificate.
    EtcdPeer,
    /// `etcd-healthcheck-client`: the liveness probe's client certificate.
    EtcdHealthcheckClient,
    /// `apiserver-etcd-client`: the API server's client certificate towards etcd.
    ApiserverEtcdClient,
}

impl CertId {
    /// All certificates, in kubeadm's order.
    pub const ALL: [CertId; 10] = [
        CertId::Ca,
        CertId::Apiserver,
        CertId::ApiserverKubeletClient,
        CertId::FrontProxyCa,
        CertId::FrontProxyClient,
        CertId::EtcdCa,
        CertId::EtcdServer,
        CertId::EtcdPeer,
        CertId::EtcdHealthcheckClient,
        CertId::ApiserverEtcdClient,
    ];

    /// kubeadm's name (`init phase certs`, `certs renew`, `check-expiration`).
    pub fn name(self) -> &'static str {
        match self {
            CertId::Ca => "ca",
            CertId::Apiserver => "apiserver",
            CertId::ApiserverKubeletClient => "apiserver-kubelet-client",
            CertId::FrontProxyCa => "front-proxy-ca",
            CertId::FrontProxyClient => "front-proxy-client",
            CertId::EtcdCa => "etcd-ca",
            CertId::EtcdServer => "etcd-server",
            CertId::EtcdPeer => "etcd-peer",
            CertId::EtcdHealthcheckClient => "etcd-healthcheck-client",
            CertId::ApiserverEtcdClient => "apiserver-etcd-client",
        }
    }

    /// The path under the certificates folder without extension (`etcd/server`).
    pub fn base_name(self) -> &'static str {
        match self {
            CertId::EtcdCa => "etcd/ca",
            CertId::EtcdServer => "etcd/server",
            CertId::EtcdPeer => "etcd/peer",
            CertId::EtcdHealthcheckClient => "etcd/healthcheck-client",
            other => other.name(),
        }
    }

    /// The CA that signs this certificate; `None` for the CAs themselves.
    pub fn issuer(self) -> Option<CertId> {
        match self {
            CertId::Ca | CertId::FrontProxyCa | CertId::EtcdCa => None,
            CertId::Apiserver | CertId::ApiserverKubeletClient => Some(CertId::Ca),
            CertId::FrontProxyClient => Some(CertId::FrontProxyCa),
            CertId::EtcdServer
            | CertId::EtcdPeer
            | CertId::EtcdHealthcheckClient
            | CertId::ApiserverEtcdClient => Some(CertId::EtcdCa),
        }
    }

    /// The ExtendedKeyUsage this certificate must have (`docs/compatibility.md` §1.1; empty for CAs).
    pub fn ext_key_usage(self) -> Vec<ExtKeyUsage> {
        match self {
            CertId::Apiserver => vec![ExtKeyUsage::ServerAuth],
            CertId::EtcdServer | CertId::EtcdPeer => {
                vec![ExtKeyUsage::ServerAuth, ExtKeyUsage::ClientAuth]
            }
            id if id.is_ca() => Vec::new(),
            _ => vec![ExtKeyUsage::ClientAuth],
        }
    }

    /// Whether this is a CA.
    pub fn is_ca(self) -> bool {
        self.issuer().is_none()
    }

    /// Whether this certificate belongs to local etcd (absent with external etcd).
    pub fn is_etcd(self) -> bool {
        matches!(
            self,
            CertId::EtcdCa
                | CertId::EtcdServer
                | CertId::EtcdPeer
                | CertId::EtcdHealthcheckClient
                | CertId::ApiserverEtcdClient
        )
    }

    /// Looks a certificate up by kubeadm's name; `etcd/ca`-style base names are accepted too.
    pub fn from_name(name: &str) -> Result<CertId, Error> {
        by_name("certificate", CertId::ALL, name, |c| {
            [c.name(), c.base_name()]
        })
    }

    /// `<dir>/<base>.crt`.
    pub fn cert_path(self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.crt", self.base_name()))
    }

    /// `<dir>/<base>.key`.
    pub fn key_path(self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.key", self.base_name()))
    }
}

/// The kubeconfig files of a kubeadm control-plane node, in kubeadm's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum KubeconfigId {
    /// `admin.conf`.
    Admin,
    /// `super-admin.conf` (1.29+).
    SuperAdmin,
    /// `kubelet.conf`.
    Kubelet,
    /// `controller-manager.conf`.
    ControllerManager,
    /// `scheduler.conf`.
    Scheduler,
}

impl KubeconfigId {
    /// All kubeconfigs, in kubeadm's order.
    pub const ALL: [KubeconfigId; 5] = [
        KubeconfigId::Admin,
        KubeconfigId::SuperAdmin,
        KubeconfigId::Kubelet,
        KubeconfigId::ControllerManager,
        KubeconfigId::Scheduler,
    ];

    /// The phase name (`init phase kubeconfig admin`).
    pub fn name(self) -> &'static str {
        match self {
            KubeconfigId::Admin => "admin",
            KubeconfigId::SuperAdmin => "super-admin",
            KubeconfigId::Kubelet => "kubelet",
            KubeconfigId::ControllerManager => "controller-manager",
            KubeconfigId::Scheduler => "scheduler",
        }
    }

    /// The file name (`admin.conf`).
    pub fn file_name(self) -> &'static str {
        match self {
            KubeconfigId::Admin => "admin.conf",
            KubeconfigId::SuperAdmin => "super-admin.conf",
            KubeconfigId::Kubelet => "kubelet.conf",
            KubeconfigId::ControllerManager => "controller-manager.conf",
            KubeconfigId::Scheduler => "scheduler.conf",
        }
    }

    /// Looks a kubeconfig up by phase name or file name.
    pub fn from_name(name: &str) -> Result<KubeconfigId, Error> {
        by_name("kubeconfig", KubeconfigId::ALL, name, |k| {
            [k.name(), k.file_name()]
        })
    }
}

/// The item of `all` that `names` gives `name` for; otherwise [`Error::UnknownName`] listing
/// the first name of each.
fn by_name<T: Copy, const N: usize>(
    kind: &'static str,
    all: [T; N],
    name: &str,
    names: impl Fn(T) -> [&'static str; 2],
) -> Result<T, Error> {
    all.into_iter()
        .find(|t| names(*t).contains(&name))
        .ok_or_else(|| Error::UnknownName {
            kind,
            given: name.to_owned(),
            valid: all.map(|t| names(t)[0]).join(", "),
        })
}

/// One certificate of the tree as the plan wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertSpec {
    /// Which certificate.
    pub id: CertId,
    /// Subject (CN and O).
    pub subject: Subject,
    /// SANs, de-duplicated and ordered as kubeadm orders them.
    pub subject_alt_names: SubjectAltNames,
    /// ExtendedKeyUsage (empty for CAs).
    pub ext_key_usage: Vec<ExtKeyUsage>,
}

/// One kubeconfig file as the plan wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeconfigSpec {
    /// Which file.
    pub id: KubeconfigId,
    /// The client certificate's subject (CN = user, O = groups).
    pub subject: Subject,
    /// The server URL.
    pub server: String,
    /// The cluster entry's name.
    pub cluster_name: String,
}

impl KubeconfigSpec {
    /// The user entry's name (= the CN).
    pub fn user_name(&self) -> &str {
        self.subject.common_name.as_deref().unwrap_or_default()
    }

    /// The context name, `<user>@<cluster>`.
    pub fn context_name(&self) -> String {
        format!("{}@{}", self.user_name(), self.cluster_name)
    }
}

impl CertSpec {
    /// How the identity a certificate or CSR presents differs from this entry's: subject, SANs
    /// and ExtendedKeyUsage, compared exactly, one entry per difference (`extra O
    /// "system:masters"`, `extra SAN DNS:evil.example.com`, `EKU is ..., must be ...`). Empty
    /// when it is this entry's identity.
    ///
    /// The rules (the one comparison `sign_csrs` applies to every CSR and `init` to every
    /// certificate an external CA signed): the same CN; the same O values in any order; no OU,
    /// C, ST or L; the same set of DNS SANs (ASCII case-insensitive) and IP SANs, and no URI,
    /// email or other SAN; the same EKU set, where `None` means "not stated" (a CSR that requests
    /// no EKU) and is no difference, while a certificate without the extension is `Some(&[])`.
    pub fn identity_differences(
        &self,
        subject: &Subject,
        sans: &SubjectAltNames,
        ext_key_usage: Option<&[ExtKeyUsage]>,
    ) -> Vec<String> {
        identity_differences(
            (&self.subject, &self.subject_alt_names, &self.ext_key_usage),
            subject,
            sans,
            ext_key_usage,
        )
    }
}

impl KubeconfigSpec {
    /// How the identity a client certificate or CSR presents differs from this file's user
    /// (`docs/compatibility.md` §2.1: this subject, no SANs, EKU clientAuth), by the rules of
    /// [`CertSpec::identity_differences`].
    pub fn identity_differences(
        &self,
        subject: &Subject,
        sans: &SubjectAltNames,
        ext_key_usage: Option<&[ExtKeyUsage]>,
    ) -> Vec<String> {
        identity_differences(
            (
                &self.subject,
                &SubjectAltNames::default(),
                &[ExtKeyUsage::ClientAuth],
            ),
            subject,
            sans,
            ext_key_usage,
        )
    }
}

/// The one identity comparison of the tree (used by `sign_csrs` for every CSR and certificate;
/// its subject and SAN parts are the `subject`/`identity` and `sans` rules `init` and `verify`
/// apply to every existing certificate, `rules.rs`): how `subject`, `sans` and `ext_key_usage` differ
/// from `want` (the plan's subject, SANs and EKU), one entry per difference, e.g.
/// `extra O "system:masters"` or `extra SAN DNS:evil.example.com`.
///
/// * Subject: [`subject_differences`] (no attribute the plan does not give).
/// * SANs: [`san_differences`] (exactly the plan's DNS names and IPs; no URI, email or other
///   name).
/// * EKU: the same set. `None` means "not stated" (a CSR that requests no EKU) and is no
///   difference; a certificate without the extension is `Some(&[])`.
pub(crate) fn identity_differences(
    want: (&Subject, &SubjectAltNames, &[ExtKeyUsage]),
    subject: &Subject,
    sans: &SubjectAltNames,
    ext_key_usage: Option<&[ExtKeyUsage]>,
) -> Vec<String> {
    let (want_subject, want_sans, want_eku) = want;
    let mut out = subject_differences(want_subject, subject);
    out.extend(san_differences(want_sans, sans));
    if let Some(have) = ext_key_usage {
        let same = set_minus(have, want_eku, |a, b| a == b).is_empty()
            && set_minus(want_eku, have, |a, b| a == b).is_empty();
        if !same {
            let names = |e: &[ExtKeyUsage]| {
                if e.is_empty() {
                    "none".to_owned()
                } else {
                    e.iter().map(|x| x.name()).collect::<Vec<_>>().join(", ")
                }
            };
            out.push(format!(
                "EKU is {}, must be {}",
                names(have),
                names(want_eku)
            ));
        }
    }
    out
}

/// How `subject` differs from `want`: the same CN, the same O values (in any order), no OU, C,
/// ST or L unless `want` has them, and no other attribute at all (serialNumber, UID, the
/// Kubernetes user-UID attribute 1.3.6.1.4.1.57683.2, ...), one entry per difference.
pub(crate) fn subject_differences(want_subject: &Subject, subject: &Subject) -> Vec<String> {
    let mut out = Vec::new();
    if subject.common_name != want_subject.common_name {
        let show = |cn: &Option<String>| match cn {
            Some(c) => format!("\"{c}\""),
            None => "absent".to_owned(),
        };
        out.push(format!(
            "CN is {}, must be {}",
            show(&subject.common_name),
            show(&want_subject.common_name)
        ));
    }
    for (attr, have, want) in [
        ("O", &subject.organizations, &want_subject.organizations),
        (
            "OU",
            &subject.organizational_units,
            &want_subject.organizational_units,
        ),
        ("C", &subject.countries, &want_subject.countries),
        ("ST", &subject.provinces, &want_subject.provinces),
        ("L", &subject.localities, &want_subject.localities),
    ] {
        for v in set_minus(have, want, |a, b| a == b) {
            out.push(format!("extra {attr} \"{v}\""));
        }
        for v in set_minus(want, have, |a, b| a == b) {
            out.push(format!("missing {attr} \"{v}\""));
        }
    }
    for a in set_minus(&subject.others, &want_subject.others, |a, b| a == b) {
        out.push(format!("extra attribute {} \"{}\"", a.name(), a.value));
    }
    out
}

/// How `sans` differs from `want`: the same set of DNS names (ASCII case-insensitive) and IP
/// addresses; any URI, email or other name is extra. One entry per difference.
pub(crate) fn san_differences(want_sans: &SubjectAltNames, sans: &SubjectAltNames) -> Vec<String> {
    let mut out = Vec::new();
    let dns_eq = |a: &String, b: &String| a.eq_ignore_ascii_case(b);
    for d in set_minus(&sans.dns, &want_sans.dns, dns_eq) {
        out.push(format!("extra SAN DNS:{d}"));
    }
    for d in set_minus(&want_sans.dns, &sans.dns, dns_eq) {
        out.push(format!("missing SAN DNS:{d}"));
    }
    for ip in set_minus(&sans.ips, &want_sans.ips, |a, b| a == b) {
        out.push(format!("extra SAN IP:{ip}"));
    }
    for ip in set_minus(&want_sans.ips, &sans.ips, |a, b| a == b) {
        out.push(format!("missing SAN IP:{ip}"));
    }
    for u in &sans.uris {
        out.push(format!("extra SAN URI:{u}"));
    }
    for e in &sans.emails {
        out.push(format!("extra SAN email:{e}"));
    }
    for o in &sans.others {
        out.push(format!("extra SAN {o}"));
    }
    out
}

/// The values of `a` that are not in `b` (each once, in `a`'s order).
fn set_minus<'a, T>(a: &'a [T], b: &[T], eq: impl Fn(&T, &T) -> bool) -> Vec<&'a T> {
    let mut out: Vec<&T> = Vec::new();
    for x in a {
        if !b.iter().any(|y| eq(x, y)) && !out.iter().any(|y| eq(x, y)) {
            out.push(x);
        }
    }
    out
}

/// Everything a kubeadm tree holds for one [`ClusterSpec`], with the inputs resolved.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Plan {
    /// The resolved node name.
    pub node_name: String,
    /// The resolved advertise address.
    pub advertise_address: IpAddr,
    /// The certificates, in kubeadm's order (etcd ones absent with external etcd).
    pub certs: Vec<CertSpec>,
    /// The kubeconfig files, in kubeadm's order.
    pub kubeconfigs: Vec<KubeconfigSpec>,
    /// Algorithm for new CA, leaf and `sa.key` keys.
    pub algorithm: KeyAlgorithm,
    /// Algorithm for new kubeconfig client keys (RSA-2048 before 1.31).
    pub secondary_algorithm: KeyAlgorithm,
    /// The kubeadm behaviour imitated.
    pub version: KubernetesVersion,
    /// The certificates folder.
    pub cert_dir: PathBuf,
    /// The kubeconfig folder.
    pub kubeconfig_dir: PathBuf,
    /// Things worth saying that are not errors (kubeadm warns about the same).
    pub warnings: Vec<String>,
    /// The inputs this plan was made from.
    pub spec: ClusterSpec,
}

fn org_subject(cn: &str, org: Option<&str>) -> Subject {
    Subject::cn(cn).with_organizations(org)
}

/// What a [`ClusterSpec`] gives before the node is known: its inputs checked, the values every
/// node of the cluster shares.
struct Shared {
    version: KubernetesVersion,
    warnings: Vec<String>,
    algorithm: KeyAlgorithm,
    secondary: KeyAlgorithm,
    service_ip: IpAddr,
    control_plane: Option<HostPort>,
}

/// Checks every input of `spec` that does not depend on the node (subnets, domains, SANs,
/// endpoint, validity, the algorithm for the version), without probing this machine.
fn shared(spec: &ClusterSpec) -> Result<Shared, Error> {
    let version = spec.kubernetes_version;
    let mut warnings = Vec::new();
    if version.is_newer_than_known() {
        warnings.push(format!(
            "kubernetesVersion {version} is newer than the versions kubepki knows; using the rules of the newest one it knows"
        ));
    }
    if spec.bind_port == 0 {
        return Err(invalid(
            "localAPIEndpoint.bindPort",
            "0 is not a port (1 to 65535)",
        ));
    }
    kubepki_csr::check_dns_subdomain(&spec.dns_domain)
        .map_err(|e| invalid("networking.dnsDomain", e))?;
    kubepki_csr::check_dns_subdomain(&spec.cluster_name).map_err(|e| invalid("clusterName", e))?;
    let subnets = parse_service_subnet("networking.serviceSubnet", &spec.service_subnet)?;
    let service_ip = subnets[0].indexed("networking.serviceSubnet", 1)?;
    let alg = spec.encryption_algorithm;
    if !version.supported_algorithms().contains(&alg.name()) {
        return Err(invalid(
            "encryptionAlgorithm",
            format!(
                "{alg} is not available in kubeadm {version}; it supports {}",
                version.supported_algorithms().join(", ")
            ),
        ));
    }
    let secondary = if version.kubeconfig_keys_follow_algorithm() {
        alg
    } else {
        KeyAlgorithm::Rsa2048
    };
    check_validity(
        "certificateValidityPeriod",
        spec.certificate_validity,
        DEFAULT_LEAF_VALIDITY,
        &mut warnings,
    )?;
    check_validity(
        "caCertificateValidityPeriod",
        spec.ca_certificate_validity,
        DEFAULT_CA_VALIDITY,
        &mut warnings,
    )?;
    if !version.validity_configurable()
        && (spec
            .certificate_validity
            .is_some_and(|v| v != DEFAULT_LEAF_VALIDITY)
            || spec
                .ca_certificate_validity
                .is_some_and(|v| v != DEFAULT_CA_VALIDITY))
    {
        return Err(invalid(
            "certificateValidityPeriod",
            format!("validity periods can be set from kubeadm 1.31 on, not in {version}"),
        ));
    }
    check_kubelet_local_mode(version, spec.kubelet_local_mode)?;
    let control_plane = spec
        .control_plane_endpoint
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(|s| HostPort::parse("controlPlaneEndpoint", s))
        .transpose()?;
    if let Some(p) = control_plane.as_ref().and_then(|hp| hp.port)
        && p != spec.bind_port
    {
        warnings.push(format!(
            "controlPlaneEndpoint port {p} differs from localAPIEndpoint.bindPort {}",
            spec.bind_port
        ));
    }
    // The extra SANs, checked even where they are not used (external etcd): a typo should not
    // pass silently.
    for (field, extra) in [
        ("apiServer.certSANs", &spec.cert_sans),
        ("etcd.local.serverCertSANs", &spec.etcd_server_cert_sans),
        ("etcd.local.peerCertSANs", &spec.etcd_peer_cert_sans),
    ] {
        SanList::default().extra(field, extra)?;
    }
    Ok(Shared {
        version,
        warnings,
        algorithm: alg,
        secondary,
        service_ip,
        control_plane,
    })
}

impl ClusterSpec {
    /// The certificates of this cluster's tree, in kubeadm's order (no etcd ones with external
    /// etcd).
    pub fn cert_ids(&self) -> Vec<CertId> {
        CertId::ALL
            .into_iter()
            .filter(|c| !(self.external_etcd && c.is_etcd()))
            .collect()
    }

    /// The kubeconfig files of this cluster, in kubeadm's order (no `super-admin.conf` before
    /// 1.29).
    pub fn kubeconfig_ids(&self) -> Vec<KubeconfigId> {
        KubeconfigId::ALL
            .into_iter()
            .filter(|k| *k != KubeconfigId::SuperAdmin || self.kubernetes_version.has_super_admin())
            .collect()
    }

    /// Checks every input that does not depend on this machine (subnets, domains, SANs,
    /// endpoint, validity, algorithm for the version): what commands that never resolve the node
    /// name or advertise address (`check-expiration`, `renew`, making a [`crate::CaSet`]) still
    /// owe a config file. Never probes the hostname or the network.
    pub fn validate(&self) -> Result<(), Error> {
        shared(self).map(|_| ())
    }
}

impl CertSpec {
    /// The entry of CA `id` (`ca`, `front-proxy-ca`, `etcd-ca`): its subject is kubeadm's, the
    /// same for every cluster.
    pub(crate) fn ca(id: CertId) -> CertSpec {
        CertSpec {
            id,
            subject: Subject::cn(match id {
                CertId::Ca => "kubernetes",
                CertId::FrontProxyCa => "front-proxy-ca",
                _ => "etcd-ca",
            }),
            subject_alt_names: SubjectAltNames::default(),
            ext_key_usage: Vec::new(),
        }
    }
}

impl Plan {
    /// The plan of the files every node of `spec`'s cluster shares (the CAs and `sa.key` /
    /// `sa.pub`): no node inputs are needed, none are resolved.
    pub(crate) fn shared_files(spec: &ClusterSpec) -> Result<Plan, Error> {
        let sh = shared(spec)?;
        Ok(Plan {
            node_name: String::new(),
            advertise_address: IpAddr::from([0, 0, 0, 0]),
            certs: spec
                .cert_ids()
                .into_iter()
                .filter(|id| id.is_ca())
                .map(CertSpec::ca)
                .collect(),
            kubeconfigs: Vec::new(),
            algorithm: sh.algorithm,
            secondary_algorithm: sh.secondary,
            version: sh.version,
            cert_dir: spec.cert_dir.clone(),
            kubeconfig_dir: spec.kubeconfig_dir.clone(),
            warnings: sh.warnings,
            spec: spec.clone(),
        })
    }

    /// Resolves `spec` and computes the plan. Every input is validated here; an invalid value
    /// is an error naming the config field. A node name or advertise address left `None` is
    /// taken from this machine (the hostname; the address of the default route).
    pub fn new(spec: &ClusterSpec) -> Result<Plan, Error> {
        let Shared {
            version,
            warnings,
            algorithm: alg,
            secondary,
            service_ip,
            control_plane: cp,
        } = shared(spec)?;
        let node_name = spec.resolved_node_name()?;
        let advertise = spec.resolved_advertise_address()?;
        let local_url = https_url(&Host::Ip(advertise), spec.bind_port);
        let cp_url = match &cp {
            Some(hp) => https_url(&hp.host, hp.port.unwrap_or(spec.bind_port)),
            None => local_url.clone(),
        };

        // apiserver SANs (`docs/compatibility.md` §1.3), in construction order; de-duplicated and sorted below.
        let mut apiserver = SanList::default();
        apiserver.dns(&node_name);
        apiserver.dns("kubernetes");
        apiserver.dns("kubernetes.default");
        apiserver.dns("kubernetes.default.svc");
        apiserver.dns(&format!("kubernetes.default.svc.{}", spec.dns_domain));
        apiserver.ip(service_ip);
        apiserver.ip(advertise);
        if let Some(hp) = &cp {
            apiserver.host(hp.host.clone());
        }
        apiserver.extra("apiServer.certSANs", &spec.cert_sans)?;

        let etcd_sans = |field: &str, extra: &[String]| -> Result<SubjectAltNames, Error> {
            let mut l = SanList::default();
            l.dns(&node_name);
            l.dns("localhost");
            l.ip(advertise);
            l.ip(IpAddr::from([127, 0, 0, 1]));
            l.ip(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]));
            l.extra(field, extra)?;
            Ok(l.finish())
        };

        let mut certs = Vec::new();
        let ca_spec = CertSpec::ca;
        let leaf = |id: CertId, subject: Subject, sans: SubjectAltNames| CertSpec {
            id,
            subject,
            subject_alt_names: sans,
            ext_key_usage: id.ext_key_usage(),
        };
        certs.push(ca_spec(CertId::Ca));
        certs.push(leaf(
            CertId::Apiserver,
            Subject::cn("kube-apiserver"),
            apiserver.finish(),
        ));
        certs.push(leaf(
            CertId::ApiserverKubeletClient,
            org_subject(
                APISERVER_KUBELET_CLIENT_CN,
                version.apiserver_kubelet_client_org(),
            ),
            SubjectAltNames::default(),
        ));
        certs.push(ca_spec(CertId::FrontProxyCa));
        certs.push(leaf(
            CertId::FrontProxyClient,
            Subject::cn("front-proxy-client"),
            SubjectAltNames::default(),
        ));
        if !spec.external_etcd {
            certs.push(ca_spec(CertId::EtcdCa));
            certs.push(leaf(
                CertId::EtcdServer,
                Subject::cn(node_name.clone()),
                etcd_sans("etcd.local.serverCertSANs", &spec.etcd_server_cert_sans)?,
            ));
            certs.push(leaf(
                CertId::EtcdPeer,
                Subject::cn(node_name.clone()),
                etcd_sans("etcd.local.peerCertSANs", &spec.etcd_peer_cert_sans)?,
            ));
            certs.push(leaf(
                CertId::EtcdHealthcheckClient,
                org_subject("kube-etcd-healthcheck-client", version.etcd_client_org()),
                SubjectAltNames::default(),
            ));
            certs.push(leaf(
                CertId::ApiserverEtcdClient,
                org_subject("kube-apiserver-etcd-client", version.etcd_client_org()),
                SubjectAltNames::default(),
            ));
        }

        let kubelet_local = spec
            .kubelet_local_mode
            .unwrap_or(version.kubelet_uses_local_endpoint());
        let kubelet_url = if kubelet_local {
            local_url.clone()
        } else {
            cp_url.clone()
        };
        let mut kubeconfigs = Vec::new();
        for id in KubeconfigId::ALL {
            let (subject, server) = match id {
                KubeconfigId::Admin => (
                    org_subject("kubernetes-admin", Some(version.admin_org())),
                    cp_url.clone(),
                ),
                KubeconfigId::SuperAdmin if version.has_super_admin() => (
                    org_subject("kubernetes-super-admin", Some("system:masters")),
                    cp_url.clone(),
                ),
                KubeconfigId::SuperAdmin => continue,
                KubeconfigId::Kubelet => (
                    org_subject(&format!("system:node:{node_name}"), Some("system:nodes")),
                    kubelet_url.clone(),
                ),
                KubeconfigId::ControllerManager => (
                    Subject::cn("system:kube-controller-manager"),
                    local_url.clone(),
                ),
                KubeconfigId::Scheduler => {
                    (Subject::cn("system:kube-scheduler"), local_url.clone())
                }
            };
            kubeconfigs.push(KubeconfigSpec {
                id,
                subject,
                server,
                cluster_name: spec.cluster_name.clone(),
            });
        }

        Ok(Plan {
            node_name,
            advertise_address: advertise,
            certs,
            kubeconfigs,
            algorithm: alg,
            secondary_algorithm: secondary,
            version,
            cert_dir: spec.cert_dir.clone(),
            kubeconfig_dir: spec.kubeconfig_dir.clone(),
            warnings,
            spec: spec.clone(),
        })
    }

    /// The plan's entry for `id`, if the tree has that certificate.
    pub fn cert(&self, id: CertId) -> Option<&CertSpec> {
        self.certs.iter().find(|c| c.id == id)
    }

    /// The plan's entry for `id`, if the tree has that kubeconfig.
    pub fn kubeconfig(&self, id: KubeconfigId) -> Option<&KubeconfigSpec> {
        self.kubeconfigs.iter().find(|k| k.id == id)
    }

    /// The validity window of a new CA made at `now` (`docs/compatibility.md` §1.4).
    pub fn ca_window(&self, now: OffsetDateTime) -> Window {
        self.spec.ca_window(now)
    }

    /// The validity window of a new leaf made at `now` under a CA whose NotBefore is
    /// `ca_not_before` (`docs/compatibility.md` §1.4: before 1.31 a leaf starts when its CA starts).
    pub fn leaf_window(&self, now: OffsetDateTime, ca_not_before: OffsetDateTime) -> Window {
        self.spec.leaf_window(now, ca_not_before)
    }

    /// `<cert dir>/sa.key`.
    pub fn sa_key_path(&self) -> PathBuf {
        self.cert_dir.join("sa.key")
    }

    /// `<cert dir>/sa.pub`.
    pub fn sa_pub_path(&self) -> PathBuf {
        self.cert_dir.join("sa.pub")
    }

    /// `<kubeconfig dir>/<file>`.
    pub fn kubeconfig_path(&self, id: KubeconfigId) -> PathBuf {
        self.kubeconfig_dir.join(id.file_name())
    }
}

/// kubeadm refuses `featureGates.ControlPlaneKubeletLocalMode` where it does not know the gate
/// (before 1.31, and from 1.36 when it was removed) and `false` where it is locked to `true`
/// (1.35); docs/init.md, "Inputs".
fn check_kubelet_local_mode(version: KubernetesVersion, gate: Option<bool>) -> Result<(), Error> {
    const FIELD: &str = "featureGates.ControlPlaneKubeletLocalMode";
    match gate {
        None => Ok(()),
        Some(_) if !version.knows_kubelet_local_mode_gate() => Err(invalid(
            FIELD,
            format!(
                "kubeadm {version} has no such feature gate (it exists from 1.31 to 1.35; {})",
                if version.minor < 31 {
                    "kubelet.conf uses the control-plane endpoint"
                } else {
                    "kubelet.conf always uses the local API endpoint"
                }
            ),
        )),
        Some(false) if version.kubelet_local_mode_gate_locked() => Err(invalid(
            FIELD,
            format!("the gate is GA and locked to true in kubeadm {version}"),
        )),
        Some(_) => Ok(()),
    }
}

fn check_validity(
    field: &str,
    value: Option<Duration>,
    default: Duration,
    warnings: &mut Vec<String>,
) -> Result<(), Error> {
    if let Some(d) = value {
        if d < Duration::minutes(10) {
            return Err(invalid(
                field,
                format!(
                    "{} is too short (at least 10m)",
                    kubepki_ca::format_duration(d)
                ),
            ));
        }
        if d > default {
            warnings.push(format!(
                "{field} {} is more than the recommended default {}",
                kubepki_ca::format_duration(d),
                kubepki_ca::format_duration(default)
            ));
        }
    }
    Ok(())
}

/// SANs gathered in kubeadm's construction order: DNS names end up sorted and unique, IPs
/// unique in first-seen order (kubeadm's `RemoveDuplicateAltNames`).
#[derive(Default)]
struct SanList {
    dns: Vec<String>,
    ips: Vec<IpAddr>,
}

impl SanList {
    fn dns(&mut self, d: &str) {
        self.dns.push(d.to_owned());
    }

    fn ip(&mut self, ip: IpAddr) {
        // `::ffff:a.b.c.d` is `a.b.c.d` (docs/compatibility.md §1.3).
        let ip = ip.to_canonical();
        if !self.ips.contains(&ip) {
            self.ips.push(ip);
        }
    }

    fn host(&mut self, h: Host) {
        match h {
            Host::Ip(ip) => self.ip(ip),
            Host::Dns(d) => self.dns.push(d),
        }
    }

    fn extra(&mut self, field: &str, entries: &[String]) -> Result<(), Error> {
        for (i, e) in entries.iter().enumerate() {
            self.host(parse_san(&format!("{field}[{i}]"), e)?);
        }
        Ok(())
    }

    fn finish(mut self) -> SubjectAltNames {
        self.dns.sort();
        self.dns.dedup();
        SubjectAltNames {
            dns: self.dns,
            ips: self.ips,
            ..SubjectAltNames::default()
        }
    }
}
