//! `kubepki init` and `kubepki init phase certs|kubeconfig`: kubeadm's flags over
//! `kubepki_kubeadm`.

use clap::{Args, Subcommand, ValueEnum};
use kubepki_kubeadm::{Action, CertId, Item, ItemKind, KubeconfigId, Plan, Report, Selection};
use time::OffsetDateTime;

use crate::cmd::CliError;
use crate::flags::{ClusterFlags, flag_err, other_err};

/// `kubepki init`. A flag given twice takes its last value, as kubeadm's flags do.
#[derive(Args, Debug)]
#[command(args_override_self = true)]
pub struct InitArgs {
    #[command(flatten)]
    flags: ClusterFlags,
    /// Show what would be created or reused; write nothing.
    #[arg(long, global = true)]
    dry_run: bool,
    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value = "text")]
    output: Output,
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

/// Library errors as CLI errors (file errors keep the file first).
pub fn lib_err(e: kubepki_kubeadm::Error) -> CliError {
    match e {
        e @ kubepki_kubeadm::Error::Key(kubepki_keys::Error::Busy { .. }) => {
            CliError::Busy(e.to_string())
        }
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
    let plan = a.flags.plan(&spec)?;
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
    let mut report = kubepki_kubeadm::run(&plan, &selection, OffsetDateTime::now_utc(), a.dry_run)
        .map_err(lib_err)?;
    report.warnings.splice(0..0, config_warnings);
    match a.output {
        Output::Json => {
            let text = serde_json::to_string_pretty(&report).map_err(other_err)?;
            outln!("{text}")?;
            for w in &report.warnings {
                diag!("warning: {w}");
            }
        }
        Output::Text => print_text(&plan, &report)?,
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

fn print_text(plan: &Plan, report: &Report) -> Result<(), CliError> {
    for w in &report.warnings {
        diag!("warning: {w}");
    }
    let mut said_certs = false;
    let mut said_kubeconfig = false;
    for item in &report.items {
        let tag = if item.kind == ItemKind::Kubeconfig {
            if !said_kubeconfig {
                outln!(
                    "[kubeconfig] Using kubeconfig folder \"{}\"",
                    plan.kubeconfig_dir.display()
                )?;
                said_kubeconfig = true;
            }
            "[kubeconfig]"
        } else {
            if !said_certs {
                outln!(
                    "[certs] Using certificateDir folder \"{}\"",
                    plan.cert_dir.display()
                )?;
                said_certs = true;
            }
            "[certs]"
        };
        if report.dry_run {
            print_dry_run(item)?;
            continue;
        }
        let base = CertId::from_name(&item.name)
            .map(|c| c.base_name())
            .unwrap_or(&item.name);
        match (item.kind, item.action) {
            (ItemKind::CertificateAuthority | ItemKind::Certificate, Action::Create) => {
                outln!("{tag} Generating \"{base}\" certificate and key")?;
                if !item.dns_names.is_empty() && item.kind == ItemKind::Certificate {
                    outln!(
                        "{tag} {base} serving cert is signed for DNS names [{}] and IPs [{}]",
                        item.dns_names.join(" "),
                        item.ip_addresses.join(" ")
                    )?;
                }
            }
            (ItemKind::CertificateAuthority, Action::Reuse) if item.external => {
                outln!("{tag} Using existing {base} keyless certificate authority")?
            }
            (ItemKind::CertificateAuthority, Action::Reuse) => {
                outln!("{tag} Using existing {base} certificate authority")?
            }
            (ItemKind::Certificate, Action::Reuse) => {
                outln!("{tag} Using existing {base} certificate and key on disk")?
            }
            (ItemKind::ServiceAccountKeys, Action::Create) => {
                outln!("{tag} Generating \"sa\" key and public key")?
            }
            (ItemKind::ServiceAccountKeys, Action::Reuse) => {
                outln!("{tag} Using the existing \"sa\" key")?
            }
            (ItemKind::Kubeconfig, Action::Create) => {
                outln!("{tag} Writing \"{}\" kubeconfig file", item.name)?
            }
            (ItemKind::Kubeconfig, Action::Reuse) => outln!(
                "{tag} Using existing kubeconfig file: \"{}\"",
                item.files
                    .first()
                    .map(|f| f.display().to_string())
                    .unwrap_or_default()
            )?,
        }
    }
    let created = report
        .items
        .iter()
        .filter(|i| i.action == Action::Create)
        .count();
    let reused = report.items.len() - created;
    if report.dry_run {
        outln!(
            "\n[dry-run] {created} to create, {reused} to reuse; nothing was written (kubeadm {} rules, {})",
            plan.version,
            plan.algorithm
        )?;
        return Ok(());
    }
    if !report.recovered.is_empty() {
        let files: Vec<String> = report
            .recovered
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        outln!(
            "\nCompleted the batch an interrupted kubepki had left half done: {}",
            files.join(", ")
        )?;
    }
    if report.written.is_empty() {
        if report.recovered.is_empty() {
            outln!(
                "\nNothing to do: all {reused} items exist and are valid; no file was changed."
            )?;
        } else {
            outln!("\nNothing else to do: all {reused} items exist and are valid.")?;
        }
        return Ok(());
    } else {
        outln!(
            "\nWrote {} files ({created} items created, {reused} reused) with kubeadm {} rules and {} keys.",
            report.written.len(),
            plan.version,
            plan.algorithm
        )?;
    }
    for n in &report.notes {
        outln!("\nNote: {n}")?;
    }
    Ok(())
}

fn print_dry_run(item: &Item) -> Result<(), CliError> {
    let verb = match item.action {
        Action::Create => "would create",
        Action::Reuse => "would reuse",
    };
    let files: Vec<String> = item.files.iter().map(|f| f.display().to_string()).collect();
    outln!("[dry-run] {verb} \"{}\": {}", item.name, files.join(", "))?;
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
        outln!("          {}", facts.join("; "))?;
    }
    if !item.dns_names.is_empty() || !item.ip_addresses.is_empty() {
        outln!(
            "          SANs: DNS [{}] IP [{}]",
            item.dns_names.join(" "),
            item.ip_addresses.join(" ")
        )?;
    }
    if let (Some(nb), Some(na)) = (&item.not_before, &item.not_after) {
        outln!("          valid {nb} to {na}")?;
    }
    Ok(())
}
