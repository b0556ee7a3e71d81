//! `kubepki init` and `kubepki init phase certs|kubeconfig`: kubeadm's flags over
//! `kubepki_kubeadm`.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use kubepki_kubeadm::net::{HostPort, parse_port, parse_san, parse_service_subnet};
use kubepki_kubeadm::{
    Action, CertId, ClusterSpec, Item, ItemKind, KubeconfigId, Plan, Report, Selection,
    apply_config_file,
};
use time::OffsetDateTime;

use crate::cmd::CliError;

/// `kubepki init`. A flag given twice takes its last value, as kubeadm's flags do.
#[derive(Args, Debug)]
#[command(args_override_self = true)]
pub struct InitArgs {
    #[command(flatten)]
    flags: InitFlags,
    #[command(subcommand)]
    sub: Option<InitSub>,
}

#[derive(Subcommand, Debug)]
enum InitSub {
    /// Run single phases of init.
    #[command(subcommand)]
    Phase(Phase),
}

#[derive(Subcommand, Debug)]
enum Phase {
    /// Certificates and keys: all, ca, apiserver, apiserver-kubelet-client, front-proxy-ca,
    /// front-proxy-client, etcd-ca, etcd-server, etcd-peer, etcd-healthcheck-client,
    /// apiserver-etcd-client, sa.
    Certs {
        /// Which one (`all` for every certificate and the sa keys).
        name: String,
    },
    /// Kubeconfig files: all, admin, super-admin, kubelet, controller-manager, scheduler.
    Kubeconfig {
        /// Which one (`all` for every file).
        name: String,
    },
}

/// Output formats.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Output {
    Text,
    Json,
}

/// kubeadm's `init` flags. Flags override values from `--config`.
#[derive(Args, Debug)]
struct InitFlags {
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
    encryption_algorithm: Option<String>,
    /// The kubeadm behaviour to reproduce [default: v1.34.7].
    #[arg(long, global = true)]
    kubernetes_version: Option<String>,
    /// Show what would be created or reused; write nothing.
    #[arg(long, global = true)]
    dry_run: bool,
    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value = "text")]
    output: Output,
}

fn flag_err(e: impl std::fmt::Display) -> CliError {
    CliError::Other(e.to_string())
}

impl InitFlags {
    /// kubeadm defaults, then the config file, then the flags.
    fn spec(&self) -> Result<(ClusterSpec, Vec<String>), CliError> {
        let mut spec = ClusterSpec::default();
        let mut warnings = Vec::new();
        if let Some(path) = &self.config {
            warnings = apply_config_file(&mut spec, path).map_err(lib_err)?;
        }
        if let Some(v) = &self.kubernetes_version {
            spec.kubernetes_version = v.parse().map_err(|e: kubepki_kubeadm::Error| {
                flag_err(format!("--kubernetes-version: {}", strip_field(&e)))
            })?;
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

fn strip_field(e: &kubepki_kubeadm::Error) -> String {
    match e {
        kubepki_kubeadm::Error::Invalid { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// Library errors as CLI errors (file errors keep the file first).
pub fn lib_err(e: kubepki_kubeadm::Error) -> CliError {
    match e {
        kubepki_kubeadm::Error::File { path, reason }
        | kubepki_kubeadm::Error::Config { path, reason } => CliError::File { path, msg: reason },
        kubepki_kubeadm::Error::Key(kubepki_keys::Error::Io { path, reason }) => {
            CliError::File { path, msg: reason }
        }
        kubepki_kubeadm::Error::Key(kubepki_keys::Error::Exists { path }) => CliError::File {
            path,
            msg: "appeared while kubepki was writing; nothing was changed".into(),
        },
        kubepki_kubeadm::Error::Key(kubepki_keys::Error::Symlink { path }) => CliError::File {
            path,
            msg: "is a symbolic link; kubepki never writes through links".into(),
        },
        other => CliError::Other(other.to_string()),
    }
}

/// Runs `kubepki init [phase ...]`.
pub fn run(a: InitArgs) -> Result<(), CliError> {
    let (spec, config_warnings) = a.flags.spec()?;
    let selection = match &a.sub {
        None => Selection::all(),
        Some(InitSub::Phase(Phase::Certs { name })) => certs_selection(name)?,
        Some(InitSub::Phase(Phase::Kubeconfig { name })) => kubeconfig_selection(name)?,
    };
    let plan = Plan::new(&spec).map_err(lib_err)?;
    for id in &selection.certs {
        if plan.cert(*id).is_none() {
            return Err(flag_err(format!(
                "{}: not part of this tree (etcd is external)",
                id.name()
            )));
        }
    }
    for id in &selection.kubeconfigs {
        if plan.kubeconfig(*id).is_none() {
            return Err(flag_err(format!(
                "{}: kubeadm {} does not write it",
                id.file_name(),
                plan.version
            )));
        }
    }
    let mut report = kubepki_kubeadm::run(
        &plan,
        &selection,
        OffsetDateTime::now_utc(),
        a.flags.dry_run,
    )
    .map_err(lib_err)?;
    report.warnings.splice(0..0, config_warnings);
    match a.flags.output {
        Output::Json => {
            let text = serde_json::to_string_pretty(&report).map_err(flag_err)?;
            println!("{text}");
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
        }
        Output::Text => print_text(&plan, &report),
    }
    Ok(())
}

fn certs_selection(name: &str) -> Result<Selection, CliError> {
    if name == "all" {
        return Ok(Selection::all_certs());
    }
    let mut s = Selection::none();
    if name == "sa" {
        s.sa = true;
    } else {
        s.certs
            .push(CertId::from_name(name).map_err(|e| flag_err(format!("{e}, all, sa")))?);
    }
    Ok(s)
}

fn kubeconfig_selection(name: &str) -> Result<Selection, CliError> {
    if name == "all" {
        return Ok(Selection::all_kubeconfigs());
    }
    let mut s = Selection::none();
    s.kubeconfigs
        .push(KubeconfigId::from_name(name).map_err(|e| flag_err(format!("{e}, all")))?);
    Ok(s)
}

fn print_text(plan: &Plan, report: &Report) {
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let mut said_certs = false;
    let mut said_kubeconfig = false;
    for item in &report.items {
        let tag = if item.kind == ItemKind::Kubeconfig {
            if !said_kubeconfig {
                println!(
                    "[kubeconfig] Using kubeconfig folder \"{}\"",
                    plan.kubeconfig_dir.display()
                );
                said_kubeconfig = true;
            }
            "[kubeconfig]"
        } else {
            if !said_certs {
                println!(
                    "[certs] Using certificateDir folder \"{}\"",
                    plan.cert_dir.display()
                );
                said_certs = true;
            }
            "[certs]"
        };
        if report.dry_run {
            print_dry_run(item);
            continue;
        }
        let base = CertId::from_name(&item.name)
            .map(|c| c.base_name())
            .unwrap_or(&item.name);
        match (item.kind, item.action) {
            (ItemKind::CertificateAuthority | ItemKind::Certificate, Action::Create) => {
                println!("{tag} Generating \"{base}\" certificate and key");
                if !item.dns_names.is_empty() && item.kind == ItemKind::Certificate {
                    println!(
                        "{tag} {base} serving cert is signed for DNS names [{}] and IPs [{}]",
                        item.dns_names.join(" "),
                        item.ip_addresses.join(" ")
                    );
                }
            }
            (ItemKind::CertificateAuthority, Action::Reuse) if item.external => {
                println!("{tag} Using existing {base} keyless certificate authority")
            }
            (ItemKind::CertificateAuthority, Action::Reuse) => {
                println!("{tag} Using existing {base} certificate authority")
            }
            (ItemKind::Certificate, Action::Reuse) => {
                println!("{tag} Using existing {base} certificate and key on disk")
            }
            (ItemKind::ServiceAccountKeys, Action::Create) => {
                println!("{tag} Generating \"sa\" key and public key")
            }
            (ItemKind::ServiceAccountKeys, Action::Reuse) => {
                println!("{tag} Using the existing \"sa\" key")
            }
            (ItemKind::Kubeconfig, Action::Create) => {
                println!("{tag} Writing \"{}\" kubeconfig file", item.name)
            }
            (ItemKind::Kubeconfig, Action::Reuse) => {
                println!(
                    "{tag} Using existing kubeconfig file: \"{}\"",
                    item.files
                        .first()
                        .map(|f| f.display().to_string())
                        .unwrap_or_default()
                )
            }
        }
    }
    let created = report
        .items
        .iter()
        .filter(|i| i.action == Action::Create)
        .count();
    let reused = report.items.len() - created;
    if report.dry_run {
        println!(
            "\n[dry-run] {created} to create, {reused} to reuse; nothing was written (kubeadm {} rules, {})",
            plan.version, plan.algorithm
        );
        return;
    }
    if report.unchanged() {
        println!("\nNothing to do: all {reused} items exist and are valid; no file was changed.");
        return;
    } else {
        println!(
            "\nWrote {} files ({created} items created, {reused} reused) with kubeadm {} rules and {} keys.",
            report.written.len(),
            plan.version,
            plan.algorithm
        );
    }
    for n in &report.notes {
        println!("\nNote: {n}");
    }
}

fn print_dry_run(item: &Item) {
    let verb = match item.action {
        Action::Create => "would create",
        Action::Reuse => "would reuse",
    };
    let files: Vec<String> = item.files.iter().map(|f| f.display().to_string()).collect();
    println!("[dry-run] {verb} \"{}\": {}", item.name, files.join(", "));
    let mut facts = Vec::new();
    if let Some(s) = &item.subject {
        facts.push(format!("subject: {s}"));
    }
    if let Some(i) = &item.issuer {
        facts.push(format!("issuer: {i}"));
    }
    if let Some(k) = &item.key_algorithm {
        facts.push(format!("key: {k}"));
    }
    if let Some(s) = &item.server {
        facts.push(format!("server: {s}"));
    }
    if !facts.is_empty() {
        println!("          {}", facts.join("; "));
    }
    if !item.dns_names.is_empty() || !item.ip_addresses.is_empty() {
        println!(
            "          SANs: DNS [{}] IP [{}]",
            item.dns_names.join(" "),
            item.ip_addresses.join(" ")
        );
    }
    if let (Some(nb), Some(na)) = (&item.not_before, &item.not_after) {
        println!("          valid {nb} to {na}");
    }
}
