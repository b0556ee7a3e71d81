//! The flags that describe a cluster, shared by `init`, `certs ...` and `verify`: kubeadm's
//! names, applied over kubeadm's defaults and the `--config` file.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;
use kubepki_kubeadm::net::{HostPort, parse_port, parse_san, parse_service_subnet};
use kubepki_kubeadm::{ClusterSpec, KubernetesVersion, Plan, apply_config_file};

use crate::errors::{CliError, config_err, flag_err, lib_err, strip_field};

/// `--kubernetes-version`: the library's version parser; its message, without the config
/// field's name, follows the flag (`--kubernetes-version: "v2.0": only Kubernetes 1.x exists`).
fn kubernetes_version_parser(s: &str) -> Result<KubernetesVersion, String> {
    s.parse()
        .map_err(|e: kubepki_kubeadm::Error| strip_field(&e))
}

/// kubeadm's flags that describe the cluster (`init`, `certs ...`, `verify`). Flags override
/// values from `--config`.
#[derive(Args, Debug)]
pub struct ClusterFlags {
    /// A kubeadm config file (InitConfiguration / ClusterConfiguration, v1beta3 or v1beta4).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Where certificates go [default: /etc/kubernetes/pki].
    #[arg(long, global = true)]
    cert_dir: Option<PathBuf>,
    /// Where kubeconfig files go [default: /etc/kubernetes].
    #[arg(long, global = true)]
    kubeconfig_dir: Option<PathBuf>,
    /// Node name [default: the lower-cased hostname].
    #[arg(long, global = true)]
    node_name: Option<String>,
    /// The API server's advertise address [default: the address of the default route].
    #[arg(long, global = true)]
    apiserver_advertise_address: Option<String>,
    /// The API server's port [default: 6443].
    #[arg(long, global = true)]
    apiserver_bind_port: Option<String>,
    /// A stable endpoint for all control-plane nodes, `HOST[:PORT]`.
    #[arg(long, global = true)]
    control_plane_endpoint: Option<String>,
    /// Extra SANs for the apiserver certificate (IPs and DNS names, comma-separated).
    #[arg(long, global = true, value_delimiter = ',')]
    apiserver_cert_extra_sans: Vec<String>,
    /// Service subnet(s) [default: 10.96.0.0/12]; dual-stack as V4,V6.
    #[arg(long, global = true)]
    service_cidr: Option<String>,
    /// Service DNS domain [default: cluster.local].
    #[arg(long, global = true)]
    service_dns_domain: Option<String>,
    /// Key algorithm: RSA-2048 (default), RSA-3072, RSA-4096, ECDSA-P256, ECDSA-P384.
    #[arg(long, global = true)]
    pub encryption_algorithm: Option<String>,
    /// The kubeadm behaviour to reproduce [default: v1.37.0].
    #[arg(long, global = true, value_parser = kubernetes_version_parser)]
    kubernetes_version: Option<KubernetesVersion>,
}

impl ClusterFlags {
    /// Whether `--config` was given.
    pub fn config_given(&self) -> bool {
        self.config.is_some()
    }

    /// The plan for `spec`; an invalid value is reported against the config file when one was
    /// given (flags were checked, with their names, in [`ClusterFlags::spec`]).
    pub fn plan(&self, spec: &ClusterSpec) -> Result<Plan, CliError> {
        Plan::new(spec).map_err(|e| self.config_err(e))
    }

    /// Validates `spec` without resolving this machine's name and address (for commands that
    /// do not need them).
    pub fn validate(&self, spec: &ClusterSpec) -> Result<(), CliError> {
        spec.validate().map_err(|e| self.config_err(e))
    }

    /// A value the configuration gives that cannot be used ([`config_err`]).
    fn config_err(&self, e: kubepki_kubeadm::Error) -> CliError {
        config_err(self.config.as_deref(), e)
    }

    /// kubeadm defaults, then the config file, then the flags.
    pub fn spec(&self) -> Result<(ClusterSpec, Vec<String>), CliError> {
        let mut spec = ClusterSpec::default();
        let mut warnings = Vec::new();
        // The flag's version is set before the file is read, so that the file's checks (which
        // API versions and feature gates that kubeadm accepts) see it; a file that names
        // another version contradicts the flag.
        let flag_version = self.kubernetes_version;
        if let Some(v) = flag_version {
            spec.kubernetes_version = v;
        }
        if let Some(path) = &self.config {
            // A --config that cannot be used is a usage error, as a flag value is.
            warnings = apply_config_file(&mut spec, path)
                .map_err(|e| CliError::Usage(lib_err(e).to_string()))?;
            if let Some(v) = flag_version
                && spec.kubernetes_version != v
            {
                return Err(flag_err(format!(
                    "--kubernetes-version {v}: {} sets kubernetesVersion {}; give the version once",
                    crate::out::esc_path(path),
                    spec.kubernetes_version
                )));
            }
        }
        if let Some(d) = &self.cert_dir {
            spec.cert_dir = d.clone();
        }
        if let Some(d) = &self.kubeconfig_dir {
            spec.kubeconfig_dir = d.clone();
        }
        if let Some(n) = &self.node_name {
            spec.node_name = Some(n.clone());
        }
        if let Some(a) = &self.apiserver_advertise_address {
            let ip: IpAddr = a.trim().parse().map_err(|_| {
                flag_err(format!(
                    "--apiserver-advertise-address: \"{a}\" is not an IP address"
                ))
            })?;
            spec.advertise_address = Some(ip);
        }
        if let Some(p) = &self.apiserver_bind_port {
            spec.bind_port = parse_port("--apiserver-bind-port", p).map_err(flag_err)?;
        }
        if let Some(c) = &self.control_plane_endpoint {
            HostPort::parse("--control-plane-endpoint", c).map_err(flag_err)?;
            spec.control_plane_endpoint = Some(c.clone());
        }
        if !self.apiserver_cert_extra_sans.is_empty() {
            for s in &self.apiserver_cert_extra_sans {
                parse_san("--apiserver-cert-extra-sans", s).map_err(flag_err)?;
            }
            spec.cert_sans = self.apiserver_cert_extra_sans.clone();
        }
        if let Some(c) = &self.service_cidr {
            parse_service_subnet("--service-cidr", c).map_err(flag_err)?;
            spec.service_subnet = c.clone();
        }
        if let Some(d) = &self.service_dns_domain {
            kubepki_csr::check_dns_subdomain(d)
                .map_err(|e| flag_err(format!("--service-dns-domain: {e}")))?;
            spec.dns_domain = d.clone();
        }
        if let Some(a) = &self.encryption_algorithm {
            spec.encryption_algorithm = a
                .parse()
                .map_err(|e| flag_err(format!("--encryption-algorithm: {e}")))?;
        }
        Ok((spec, warnings))
    }
}
