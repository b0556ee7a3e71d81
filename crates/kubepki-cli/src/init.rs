//! `kubepki init` and `kubepki init phase certs|kubeconfig`: kubeadm's flags over
//! `kubepki_kubeadm`.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use kubepki_files::{FileBatch, MODE_PUBLIC, MODE_SECRET};
use kubepki_kubeadm::{
    Action, CertId, InitItem, InitItemKind, InitReport, Plan, Selection, Tree, build,
};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::errors::{CliError, flag_err, lib_err, other_err};
use crate::flags::ClusterFlags;
use crate::out::{esc, esc_path};

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
    /// Export the tree instead of writing it (docs/init.md, "Exports"): nothing is written
    /// under --cert-dir or --kubeconfig-dir, existing files there are reused by the same
    /// rules, and the report goes to standard error.
    #[arg(long, global = true, value_enum)]
    export: Option<ExportFormat>,
    /// Where the export goes: `-` for standard output (the default), or a new file, made
    /// 0600 and never overwritten.
    #[arg(long, global = true, value_name = "PATH")]
    export_file: Option<PathBuf>,
    /// The cluster name (kubeadm's clusterName: the cluster in every kubeconfig, and the
    /// `<cluster>` of the capi-secrets names) [default: kubernetes].
    #[arg(long, global = true)]
    cluster_name: Option<String>,
    #[command(flatten)]
    keys: crate::hsm::TreeKeyFlags,
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
    /// Print the ClusterRoleBindings kubeadm init creates online for the tree's identities
    /// (kubeadm:cluster-admins from 1.29; kubeadm:apiserver-kubelet-client where
    /// apiserver-kubelet-client has no O), as YAML for `kubectl apply -f -`. Writes no tree.
    Rbac {
        /// Write the YAML to this new file (0644, never overwritten) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// Output formats.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Output {
    Text,
    Json,
}

/// Export formats (docs/init.md, "Exports").
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ExportFormat {
    /// A POSIX tar with kubeadm's relative paths (`pki/ca.crt`, `admin.conf`) and modes.
    Tar,
    /// Cluster API's Secrets for user-provided certificates (multi-document YAML).
    CapiSecrets,
    /// One JSON document: every file with its path, mode and text.
    Json,
}

impl ExportFormat {
    fn name(self) -> &'static str {
        match self {
            ExportFormat::Tar => "tar",
            ExportFormat::CapiSecrets => "capi-secrets",
            ExportFormat::Json => "json",
        }
    }
}

/// Where a run's files went: the folders, or an export.
enum Sink<'a> {
    Folder,
    Export {
        format: ExportFormat,
        /// "standard output", or the file's path already escaped.
        dest: Cow<'a, str>,
        files: usize,
    },
}

/// Runs `kubepki init [phase ...]`.
pub fn run(a: InitArgs) -> Result<(), CliError> {
    let (mut spec, config_warnings) = a.flags.spec()?;
    if let Some(name) = &a.cluster_name {
        spec.cluster_name = name.clone();
    }
    if a.export.is_none() && a.export_file.is_some() {
        return Err(flag_err("--export-file: needs --export FORMAT"));
    }
    if a.export.is_some() && a.dry_run {
        return Err(flag_err(
            "--export and --dry-run: an export makes the files; --dry-run alone shows what it would make",
        ));
    }
    let selection = match &a.sub {
        None => Selection::all(),
        Some(InitSub::Phase(Phase::Certs { name })) => {
            Selection::certs_phase(name).map_err(flag_err)?
        }
        Some(InitSub::Phase(Phase::Kubeconfig { name })) => {
            Selection::kubeconfig_phase(name).map_err(flag_err)?
        }
        Some(InitSub::Phase(Phase::Rbac { out })) => {
            for w in &config_warnings {
                diag!("warning: {}", esc(w));
            }
            return rbac(&a, &spec, out.as_deref());
        }
    };
    let plan = a.flags.plan(&spec)?;
    // A JSON report names the files by path, and a JSON string is text: refused before
    // anything is written, rather than a written tree reported as a failure.
    if matches!(a.output, Output::Json) {
        for (flag, dir) in [
            ("--cert-dir", &plan.cert_dir),
            ("--kubeconfig-dir", &plan.kubeconfig_dir),
        ] {
            if dir.to_str().is_none() {
                return Err(flag_err(format!(
                    "{flag} {}: is not UTF-8, and a JSON report (-o json) names its files as text; use -o text",
                    esc_path(dir)
                )));
            }
        }
    }
    // One item named that this tree does not have is an error; `init` and `all` take what the
    // tree has (no super-admin.conf before 1.29, no etcd certificates with external etcd).
    let named_one = matches!(
        &a.sub,
        Some(InitSub::Phase(Phase::Certs { name } | Phase::Kubeconfig { name })) if name != "all"
    );
    for id in selection.certs.iter().filter(|_| named_one) {
        if plan.cert(*id).is_none() {
            return Err(flag_err(format!(
                "{}: not part of this tree (etcd is external)",
                id.name()
            )));
        }
    }
    for id in selection.kubeconfigs.iter().filter(|_| named_one) {
        if plan.kubeconfig(*id).is_none() {
            return Err(flag_err(format!(
                "{}: kubeadm {} does not write it",
                id.file_name(),
                plan.version
            )));
        }
    }
    let export_dest = a
        .export_file
        .as_deref()
        .filter(|p| *p != Path::new("-"))
        .map(Path::to_owned);
    a.keys.check()?;
    a.keys.check_plan(&plan)?;
    let ca_keys = a.keys.open()?;
    let progress = !a.dry_run && matches!(a.output, Output::Text);
    let (mut report, sink) = match a.export {
        None => (
            crate::progress::during(progress, || {
                kubepki_kubeadm::init_tree_with_ca_keys(
                    &plan,
                    &selection,
                    &ca_keys,
                    OffsetDateTime::now_utc(),
                    a.dry_run,
                )
            })
            .map_err(lib_err)?,
            Sink::Folder,
        ),
        Some(format) => {
            let (report, files) = crate::progress::during(progress, || {
                export(&plan, &selection, &ca_keys, format, export_dest.as_deref())
            })?;
            // The file as given, shown escaped (a name that is not UTF-8 included): never
            // "standard output" for a file.
            let dest = export_dest
                .as_deref()
                .map_or(Cow::Borrowed("standard output"), esc_path);
            (
                report,
                Sink::Export {
                    format,
                    dest,
                    files,
                },
            )
        }
    };
    report.warnings.splice(0..0, config_warnings);
    // With an export, standard output may be the export itself: the report goes to stderr.
    let to_stderr = matches!(sink, Sink::Export { .. });
    match a.output {
        Output::Json => {
            let text = serde_json::to_string_pretty(&report).map_err(other_err)?;
            say(to_stderr, format_args!("{}", crate::out::json(&text)))?;
            for w in &report.warnings {
                diag!("warning: {}", crate::out::esc(w));
            }
        }
        Output::Text => print_text(&plan, &report, &sink)?,
    }
    Ok(())
}

/// `init phase rbac`: the version's ClusterRoleBindings on standard output or in a new file.
fn rbac(
    a: &InitArgs,
    spec: &kubepki_kubeadm::ClusterSpec,
    out: Option<&Path>,
) -> Result<(), CliError> {
    if a.export.is_some()
        || a.export_file.is_some()
        || a.dry_run
        || matches!(a.output, Output::Json)
    {
        return Err(flag_err(
            "init phase rbac: prints YAML and writes no tree; --export, --export-file, --dry-run and -o json do not apply",
        ));
    }
    let v = spec.kubernetes_version;
    let Some(yaml) = kubepki_kubeadm::rbac_yaml(v) else {
        diag!(
            "kubeadm {v} creates no ClusterRoleBinding for the tree's identities: admin.conf and apiserver-kubelet-client are in system:masters; nothing to apply{}",
            if out.is_some() {
                ", no file written"
            } else {
                ""
            }
        );
        return Ok(());
    };
    match out {
        None => crate::out::bytes(yaml.as_bytes()),
        Some(path) => {
            let mut batch = FileBatch::new();
            batch
                .stage(path, yaml.as_bytes(), MODE_PUBLIC)
                .and_then(|()| batch.commit())
                .map_err(|e| match e {
                    kubepki_files::Error::Exists { path } => CliError::File {
                        path,
                        msg: "already exists; kubepki never overwrites it".into(),
                    },
                    other => lib_err(other.into()),
                })?;
            diag!(
                "wrote {} (apply it: kubectl --kubeconfig super-admin.conf apply -f {})",
                esc_path(path),
                esc_path(path)
            );
            Ok(())
        }
    }
}

/// A report line: on standard output, or on standard error when the output is an export.
fn say(to_stderr: bool, args: std::fmt::Arguments<'_>) -> Result<(), CliError> {
    if to_stderr {
        diag!("{args}");
        Ok(())
    } else {
        crate::out::line(args)
    }
}

/// `init --export`: decide against the tree read from the folders (under their shared lock),
/// apply in memory, and write the whole selected tree in `format` to `dest` (a new 0600 file)
/// or standard output. Nothing is written under the tree's folders. Returns the report and the
/// number of files exported.
fn export(
    plan: &Plan,
    selection: &Selection,
    ca_keys: &[kubepki_kubeadm::HeldCaKey],
    format: ExportFormat,
    dest: Option<&Path>,
) -> Result<(InitReport, usize), CliError> {
    if let Some(dest) = dest {
        // Fail before making keys; the batch below refuses an existing file again, atomically.
        if dest.symlink_metadata().is_ok() {
            return Err(CliError::File {
                path: dest.to_owned(),
                msg: "already exists; kubepki never overwrites an export".into(),
            });
        }
        let abs = std::path::absolute(dest).map_err(|e| CliError::File {
            path: dest.to_owned(),
            msg: e.to_string(),
        })?;
        for dir in [&plan.cert_dir, &plan.kubeconfig_dir] {
            let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
            if abs.starts_with(&dir) {
                return Err(flag_err(format!(
                    "--export-file {}: is inside {}; an export writes nothing under --cert-dir or --kubeconfig-dir",
                    esc_path(dest),
                    esc_path(&dir)
                )));
            }
        }
    }
    let now = OffsetDateTime::now_utc();
    let mut current = Tree::read_folder(plan).map_err(lib_err)?;
    for (id, key) in ca_keys {
        current.set_ca_key(*id, key.clone()).map_err(lib_err)?;
    }
    let applied = build(plan, selection, &current, now).map_err(lib_err)?;
    let tree = applied.full_tree(&current);
    let bytes: Zeroizing<Vec<u8>> = match format {
        ExportFormat::Tar => tree.to_tar(now).map_err(lib_err)?,
        // The text of every file the tree reuses, whatever characters a kubeconfig holds:
        // escaped as JSON escapes the way every JSON output is, since it goes to standard
        // output by default (the same JSON value).
        ExportFormat::Json => {
            let text = tree.to_json().map_err(lib_err)?;
            match crate::out::json(&text) {
                Cow::Borrowed(_) => Zeroizing::new(text.as_bytes().to_vec()),
                Cow::Owned(escaped) => Zeroizing::new(escaped.into_bytes()),
            }
        }
        ExportFormat::CapiSecrets => {
            let secrets = tree
                .to_capi_secrets(&plan.spec.cluster_name)
                .map_err(lib_err)?;
            for (name, lacks) in &secrets.skipped {
                diag!("warning: capi-secrets: no Secret {name}: the tree has no {lacks}");
            }
            Zeroizing::new(secrets.yaml.as_bytes().to_vec())
        }
    };
    if tree.has_secrets() {
        diag!(
            "warning: the {} export holds private keys: it is secret material; keep it where only the cluster's administrators can read it",
            format.name()
        );
    }
    match dest {
        None => crate::out::bytes(&bytes)?,
        Some(path) => {
            let mut batch = FileBatch::new();
            let written = batch
                .stage(path, &bytes, MODE_SECRET)
                .and_then(|()| batch.commit());
            written.map_err(|e| match e {
                kubepki_files::Error::Exists { path } => CliError::File {
                    path,
                    msg: "already exists; kubepki never overwrites an export".into(),
                },
                other => lib_err(other.into()),
            })?;
        }
    }
    Ok((applied.into_report(Vec::new(), Vec::new()), tree.len()))
}

fn print_text(plan: &Plan, report: &InitReport, sink: &Sink) -> Result<(), CliError> {
    let to_stderr = matches!(sink, Sink::Export { .. });
    macro_rules! sayln {
        ($($t:tt)*) => {
            say(to_stderr, format_args!($($t)*))
        };
    }
    for w in &report.warnings {
        diag!("warning: {}", crate::out::esc(w));
    }
    let mut said_certs = false;
    let mut said_kubeconfig = false;
    for item in &report.items {
        let tag = if item.kind == InitItemKind::Kubeconfig {
            if !said_kubeconfig {
                sayln!(
                    "[kubeconfig] Using kubeconfig folder \"{}\"",
                    esc_path(&plan.kubeconfig_dir)
                )?;
                said_kubeconfig = true;
            }
            "[kubeconfig]"
        } else {
            if !said_certs {
                sayln!(
                    "[certs] Using certificateDir folder \"{}\"",
                    esc_path(&plan.cert_dir)
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
            (InitItemKind::CertificateAuthority | InitItemKind::Certificate, Action::Create) => {
                sayln!("{tag} Generating \"{base}\" certificate and key")?;
                if !item.dns_names.is_empty() && item.kind == InitItemKind::Certificate {
                    sayln!(
                        "{tag} {base} serving cert is signed for DNS names [{}] and IPs [{}]",
                        esc(&item.dns_names.join(" ")),
                        join_ips(&item.ip_addresses)
                    )?;
                }
            }
            (InitItemKind::CertificateAuthority, Action::Reuse) if item.external => {
                sayln!("{tag} Using existing {base} keyless certificate authority")?
            }
            (InitItemKind::CertificateAuthority, Action::Reuse) => {
                sayln!("{tag} Using existing {base} certificate authority")?
            }
            (InitItemKind::Certificate, Action::Reuse) => {
                sayln!("{tag} Using existing {base} certificate and key on disk")?
            }
            (InitItemKind::ServiceAccountKeys, Action::Create) => {
                sayln!("{tag} Generating \"sa\" key and public key")?
            }
            (InitItemKind::ServiceAccountKeys, Action::Reuse) => {
                sayln!("{tag} Using the existing \"sa\" key")?
            }
            (InitItemKind::Kubeconfig, Action::Create) => {
                sayln!("{tag} Writing \"{}\" kubeconfig file", item.name)?
            }
            (InitItemKind::Kubeconfig, Action::Reuse) => sayln!(
                "{tag} Using existing kubeconfig file: \"{}\"",
                item.files
                    .first()
                    .map(|f| esc_path(f).into_owned())
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
        sayln!(
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
            .map(|f| esc_path(f).into_owned())
            .collect();
        sayln!(
            "\nCompleted the batch an interrupted kubepki had left half done: {}",
            files.join(", ")
        )?;
    }
    if let Sink::Export {
        format,
        dest,
        files,
    } = sink
    {
        sayln!(
            "\nExported {files} files as {} to {} ({created} items created, {reused} reused) with kubeadm {} rules and {} keys; nothing was written under the certificate or kubeconfig folders.",
            format.name(),
            dest,
            plan.version,
            plan.algorithm
        )?;
        for n in &report.notes {
            sayln!("\nNote: {}", esc(n))?;
        }
        return Ok(());
    }
    if report.written.is_empty() {
        if report.recovered.is_empty() {
            sayln!(
                "\nNothing to do: all {reused} items exist and are valid; no file was changed."
            )?;
        } else {
            sayln!("\nNothing else to do: all {reused} items exist and are valid.")?;
        }
        return Ok(());
    } else {
        sayln!(
            "\nWrote {} files ({created} items created, {reused} reused) with kubeadm {} rules and {} keys.",
            report.written.len(),
            plan.version,
            plan.algorithm
        )?;
    }
    for n in &report.notes {
        sayln!("\nNote: {}", esc(n))?;
    }
    Ok(())
}

fn print_dry_run(item: &InitItem) -> Result<(), CliError> {
    let verb = match item.action {
        Action::Create => "would create",
        Action::Reuse => "would reuse",
    };
    let files: Vec<String> = item
        .files
        .iter()
        .map(|f| esc_path(f).into_owned())
        .collect();
    outln!(
        "[dry-run] {verb} \"{}\": {}",
        esc(&item.name),
        files.join(", ")
    )?;
    let mut facts = Vec::new();
    if let Some(s) = &item.subject {
        facts.push(format!("subject: {}", esc(&s.to_string())));
    }
    if let Some(i) = &item.issuer {
        facts.push(format!("issuer: {}", esc(i)));
    }
    if let Some(k) = &item.key_algorithm {
        facts.push(format!("key: {k}"));
    }
    if let Some(s) = &item.server {
        facts.push(format!("server: {}", esc(s)));
    }
    if !facts.is_empty() {
        outln!("          {}", facts.join("; "))?;
    }
    if !item.dns_names.is_empty() || !item.ip_addresses.is_empty() {
        outln!(
            "          SANs: DNS [{}] IP [{}]",
            esc(&item.dns_names.join(" ")),
            join_ips(&item.ip_addresses)
        )?;
    }
    if let (Some(nb), Some(na)) = (item.not_before, item.not_after) {
        outln!(
            "          valid {} to {}",
            kubepki_ca::rfc3339(nb),
            kubepki_ca::rfc3339(na)
        )?;
    }
    Ok(())
}

fn join_ips(ips: &[std::net::IpAddr]) -> String {
    ips.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}
