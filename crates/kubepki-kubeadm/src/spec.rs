//! `ClusterSpec`: everything kubeadm's `init` takes that shapes the PKI, with kubeadm's defaults.

use std::net::{IpAddr, UdpSocket};
use std::path::PathBuf;

use kubepki_ca::{BACKDATE, DEFAULT_CA_VALIDITY, DEFAULT_LEAF_VALIDITY, Window};
use kubepki_keys::KeyAlgorithm;
use time::{Duration, OffsetDateTime};

use crate::error::{Error, invalid};
use crate::version::KubernetesVersion;

/// kubeadm's default `certificatesDir`.
pub const DEFAULT_CERT_DIR: &str = "/etc/kubernetes/pki";
/// kubeadm's default kubeconfig folder.
pub const DEFAULT_KUBECONFIG_DIR: &str = "/etc/kubernetes";
/// kubeadm's default service subnet.
pub const DEFAULT_SERVICE_SUBNET: &str = "10.96.0.0/12";
/// kubeadm's default DNS domain.
pub const DEFAULT_DNS_DOMAIN: &str = "cluster.local";
/// kubeadm's default cluster name.
pub const DEFAULT_CLUSTER_NAME: &str = "kubernetes";
/// kubeadm's default API server port.
pub const DEFAULT_BIND_PORT: u16 = 6443;

/// The inputs of `kubeadm init` that shape the PKI. [`Default`] gives kubeadm's defaults; a
/// field left `None` is derived as kubeadm derives it (see each field).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ClusterSpec {
    /// `nodeRegistration.name`; `None` = the lower-cased hostname.
    pub node_name: Option<String>,
    /// `localAPIEndpoint.advertiseAddress`; `None` = the address of the interface that holds
    /// the default route (an error when there is none).
    pub advertise_address: Option<IpAddr>,
    /// `localAPIEndpoint.bindPort` (6443).
    pub bind_port: u16,
    /// `controlPlaneEndpoint`, `host[:port]`.
    pub control_plane_endpoint: Option<String>,
    /// `networking.serviceSubnet` (`10.96.0.0/12`; a dual-stack pair is `v4,v6`).
    pub service_subnet: String,
    /// `networking.dnsDomain` (`cluster.local`).
    pub dns_domain: String,
    /// `clusterName` (`kubernetes`).
    pub cluster_name: String,
    /// `apiServer.certSANs`.
    pub cert_sans: Vec<String>,
    /// `etcd.local.serverCertSANs`.
    pub etcd_server_cert_sans: Vec<String>,
    /// `etcd.local.peerCertSANs`.
    pub etcd_peer_cert_sans: Vec<String>,
    /// `etcd.external` is set: no etcd CA, etcd certs or apiserver-etcd-client.
    pub external_etcd: bool,
    /// `encryptionAlgorithm` (RSA-2048).
    pub encryption_algorithm: KeyAlgorithm,
    /// `certificateValidityPeriod` (8760h). `None` is the default: kubeadm never leaves the
    /// field empty (v1beta4 defaults it, and the v1beta3 conversion fills it), so NotAfter is
    /// always the creation time + the period (docs/init.md, "Inputs").
    pub certificate_validity: Option<Duration>,
    /// `caCertificateValidityPeriod` (87600h); `None` is the default, as for
    /// `certificate_validity`.
    pub ca_certificate_validity: Option<Duration>,
    /// `featureGates.ControlPlaneKubeletLocalMode`: whether `kubelet.conf` points at the local
    /// API endpoint; `None` = the gate's default for the version (off before 1.33).
    pub kubelet_local_mode: Option<bool>,
    /// `kubernetesVersion`: selects the behaviours that changed between releases.
    pub kubernetes_version: KubernetesVersion,
    /// `certificatesDir` (`/etc/kubernetes/pki`).
    pub cert_dir: PathBuf,
    /// Where the kubeconfig files go (`/etc/kubernetes`).
    pub kubeconfig_dir: PathBuf,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            node_name: None,
            advertise_address: None,
            bind_port: DEFAULT_BIND_PORT,
            control_plane_endpoint: None,
            service_subnet: DEFAULT_SERVICE_SUBNET.into(),
            dns_domain: DEFAULT_DNS_DOMAIN.into(),
            cluster_name: DEFAULT_CLUSTER_NAME.into(),
            cert_sans: Vec::new(),
            etcd_server_cert_sans: Vec::new(),
            etcd_peer_cert_sans: Vec::new(),
            external_etcd: false,
            encryption_algorithm: KeyAlgorithm::Rsa2048,
            certificate_validity: Some(DEFAULT_LEAF_VALIDITY),
            ca_certificate_validity: Some(DEFAULT_CA_VALIDITY),
            kubelet_local_mode: None,
            kubernetes_version: KubernetesVersion::DEFAULT,
            cert_dir: PathBuf::from(DEFAULT_CERT_DIR),
            kubeconfig_dir: PathBuf::from(DEFAULT_KUBECONFIG_DIR),
        }
    }
}

impl ClusterSpec {
    /// kubeadm's defaults with the given advertise address.
    pub fn with_advertise_address(address: IpAddr) -> Self {
        ClusterSpec {
            advertise_address: Some(address),
            ..ClusterSpec::default()
        }
    }

    /// The validity window of a new CA made at `now` (`docs/compatibility.md` §1.4).
    pub fn ca_window(&self, now: OffsetDateTime) -> Window {
        let v = self.kubernetes_version;
        if v.validity_configurable() {
            let validity = self.ca_certificate_validity.unwrap_or(DEFAULT_CA_VALIDITY);
            Window::new(now - BACKDATE, now + validity)
        } else if v.backdates_ca() {
            Window::new(now - BACKDATE, now + DEFAULT_CA_VALIDITY)
        } else {
            Window::new(now, now + DEFAULT_CA_VALIDITY)
        }
    }

    /// The validity window of a new or renewed leaf made at `now` under a CA whose NotBefore is
    /// `ca_not_before` (`docs/compatibility.md` §1.4, §6.1: before 1.31 a leaf starts when its CA starts and lasts
    /// 365 days from now).
    pub fn leaf_window(&self, now: OffsetDateTime, ca_not_before: OffsetDateTime) -> Window {
        if self.kubernetes_version.leaf_window_from_config() {
            let validity = self.certificate_validity.unwrap_or(DEFAULT_LEAF_VALIDITY);
            Window::new(now - BACKDATE, now + validity)
        } else {
            Window::new(ca_not_before, now + DEFAULT_LEAF_VALIDITY)
        }
    }

    /// The node name: the given one, or the lower-cased hostname.
    pub fn resolved_node_name(&self) -> Result<String, Error> {
        let name = match &self.node_name {
            Some(n) => n.clone(),
            None => hostname()?.to_lowercase(),
        };
        kubepki_csr::check_dns_subdomain(&name).map_err(|e| invalid("nodeRegistration.name", e))?;
        Ok(name)
    }

    /// The advertise address: the given one, or the source address of the default route. An
    /// IPv4-mapped IPv6 address is its IPv4 address, as Go prints and compares it
    /// (docs/compatibility.md §1.3).
    pub fn resolved_advertise_address(&self) -> Result<IpAddr, Error> {
        let ip = match self.advertise_address {
            Some(ip) => ip.to_canonical(),
            None => default_route_address()?,
        };
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(invalid(
                "localAPIEndpoint.advertiseAddress",
                format!("{ip} cannot be advertised (unspecified or multicast)"),
            ));
        }
        Ok(ip)
    }
}

fn hostname() -> Result<String, Error> {
    let read = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"));
    match read {
        Ok(h) if !h.trim().is_empty() => Ok(h.trim().to_owned()),
        _ => Err(Error::NoNodeName {
            reason: "the hostname could not be read (/proc/sys/kernel/hostname, /etc/hostname)"
                .into(),
        }),
    }
}

/// The address the kernel would use as source for the default route (IPv4 first, then IPv6),
/// found by connecting a UDP socket (no packet is sent).
fn default_route_address() -> Result<IpAddr, Error> {
    let probe = |bind: &str, to: &str| -> Option<IpAddr> {
        let s = UdpSocket::bind(bind).ok()?;
        s.connect(to).ok()?;
        let ip = s.local_addr().ok()?.ip();
        (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
    };
    probe("0.0.0.0:0", "192.0.2.1:9")
        .or_else(|| probe("[::]:0", "[2001:db8::1]:9"))
        .ok_or_else(|| Error::NoAdvertiseAddress {
            reason: "this machine has no default route to take it from".into(),
        })
}
