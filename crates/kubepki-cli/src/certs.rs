//! `kubepki certs ...` (check-expiration, renew, generate-csr, sign-csrs) and `kubepki verify`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use kubepki_ca::parse_duration_with_days;
use kubepki_keys::KeyAlgorithm;
use kubepki_kubeadm::{
    CertId, CheckStatus, Kept, Plan, RenewStatus, Signed, SigningCas, Urgency, check_ca_role,
    generate_csrs, parse_renew_name, sign_csrs, verify,
};
use time::{Duration, OffsetDateTime};

use crate::cmd::load_ca;
use crate::errors::{CliError, in_file, lib_err, other_err};

/// `certs sign-csrs`'s exit code when it left items unsigned (no CSR for them, or their CA was
/// not given); documented in docs/certs.md.
pub const EXIT_SIGNED_IN_PART: u8 = 3;
use crate::flags::ClusterFlags;
use crate::out::{EXIT_BUSY, esc, esc_path};

/// `kubepki certs`.
#[derive(Subcommand, Debug)]
pub enum CertsCommand {
    /// Show when each certificate of the tree expires (kubeadm's tables).
    CheckExpiration(CheckArgs),
    /// Renew a leaf or kubeconfig certificate (or `all`): new key, same identity; through an
    /// external CA with --csr-only, then --from-csr-dir.
    Renew(RenewArgs),
    /// Write keys and CSRs for every leaf and kubeconfig that has none yet, for an external CA
    /// to sign.
    GenerateCsr(GenerateArgs),
    /// Sign the CSRs `generate-csr` wrote, where the CA keys live (any subset of the CAs; exit
    /// 3 when something was left unsigned); with --csr-dir, the CSRs of `renew --csr-only`.
    SignCsrs(Box<SignArgs>),
}

/// Output formats of check-expiration.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExpirationOutput {
    /// kubeadm's tables.
    Text,
    /// `CertificateExpirationInfo` as JSON.
    Json,
    /// `CertificateExpirationInfo` as YAML.
    Yaml,
}

/// `certs check-expiration`.
#[derive(Args, Debug)]
#[command(args_override_self = true, after_help = CHECK_EXIT_CODES)]
pub struct CheckArgs {
    #[command(flatten)]
    flags: ClusterFlags,
    #[command(flatten)]
    keys: crate::hsm::TreeKeyFlags,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    output: ExpirationOutput,
    /// Exit 1 when something expires within this duration (`30d`, `720h`; not negative).
    #[arg(long, allow_hyphen_values = true)]
    warn_within: Option<String>,
}

/// `certs renew`.
#[derive(Args, Debug)]
#[command(args_override_self = true)]
pub struct RenewArgs {
    /// What to renew: a leaf (`apiserver`, ...), a kubeconfig (`admin.conf`, ...) or `all`.
    name: String,
    #[command(flatten)]
    flags: ClusterFlags,
    #[command(flatten)]
    keys: crate::hsm::TreeKeyFlags,
    #[command(flatten)]
    external: crate::renew_csr::ExternalRenewFlags,
}

/// `certs generate-csr`.
#[derive(Args, Debug)]
#[command(args_override_self = true)]
pub struct GenerateArgs {
    #[command(flatten)]
    flags: ClusterFlags,
}

/// `certs sign-csrs`.
#[derive(Args, Debug)]
#[command(args_override_self = true)]
#[command(group = clap::ArgGroup::new("cas")
    .args(["ca_cert", "front_proxy_ca_cert", "etcd_ca_cert", "csr_dir"])
    .required(true)
    .multiple(true))]
pub struct SignArgs {
    /// The cluster CA certificate (subject CN=kubernetes).
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// The cluster CA key.
    #[arg(long, requires = "ca_cert")]
    ca_key: Option<PathBuf>,
    /// The cluster CA key in a PKCS#11 token (a `pkcs11:` URI), instead of --ca-key.
    #[arg(
        long,
        value_name = "PKCS11_URI",
        requires = "ca_cert",
        conflicts_with = "ca_key"
    )]
    ca_key_uri: Option<String>,
    /// The front-proxy CA certificate (subject CN=front-proxy-ca).
    #[arg(long)]
    front_proxy_ca_cert: Option<PathBuf>,
    /// The front-proxy CA key.
    #[arg(long, requires = "front_proxy_ca_cert")]
    front_proxy_ca_key: Option<PathBuf>,
    /// The front-proxy CA key in a PKCS#11 token, instead of --front-proxy-ca-key.
    #[arg(
        long,
        value_name = "PKCS11_URI",
        requires = "front_proxy_ca_cert",
        conflicts_with = "front_proxy_ca_key"
    )]
    front_proxy_ca_key_uri: Option<String>,
    /// The etcd CA certificate (subject CN=etcd-ca).
    #[arg(long)]
    etcd_ca_cert: Option<PathBuf>,
    /// The etcd CA key.
    #[arg(long, requires = "etcd_ca_cert")]
    etcd_ca_key: Option<PathBuf>,
    /// The etcd CA key in a PKCS#11 token, instead of --etcd-ca-key.
    #[arg(
        long,
        value_name = "PKCS11_URI",
        requires = "etcd_ca_cert",
        conflicts_with = "etcd_ca_key"
    )]
    etcd_ca_key_uri: Option<String>,
    #[command(flatten)]
    pkcs11: crate::hsm::Pkcs11Flags,
    #[command(flatten)]
    flags: ClusterFlags,
    #[command(flatten)]
    renewal: crate::renew_csr::SignRenewalFlags,
}

/// Output formats of verify.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum VerifyOutput {
    /// One line per check.
    Text,
    /// JSON.
    Json,
}

/// `kubepki verify`.
#[derive(Args, Debug)]
#[command(args_override_self = true)]
pub struct VerifyArgs {
    #[command(flatten)]
    flags: ClusterFlags,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    output: VerifyOutput,
}

/// Runs `kubepki certs ...`.
pub fn run(cmd: CertsCommand) -> Result<(), CliError> {
    match cmd {
        CertsCommand::CheckExpiration(a) => check(a),
        CertsCommand::Renew(a) => renew_cmd(a),
        CertsCommand::GenerateCsr(a) => generate(a),
        CertsCommand::SignCsrs(a) => sign(*a),
    }
}

fn check(a: CheckArgs) -> Result<(), CliError> {
    // Anything that stops the check before a certificate is read is a usage error: its own
    // exit code, never one of the results below (docs/certs.md, "Exit codes").
    let usage = |e: CliError| match e {
        CliError::Usage(_) => e,
        other => CliError::Usage(other.to_string()),
    };
    let window = a.warn_within.as_deref().map(warn_within).transpose()?;
    let (spec, warnings) = a.flags.spec().map_err(usage)?;
    for w in &warnings {
        diag!("warning: {}", crate::out::esc(w));
    }
    a.flags.validate(&spec).map_err(usage)?;
    a.keys.check()?;
    let ca_keys = a.keys.open()?;
    let report =
        kubepki_kubeadm::check_expiration_with_ca_keys(&spec, &ca_keys, OffsetDateTime::now_utc());
    match a.output {
        ExpirationOutput::Text => out!("{}", report.to_table())?,
        ExpirationOutput::Json => {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(&report.to_output_api(), &mut ser).map_err(other_err)?;
            outln!("{}", crate::out::json(&String::from_utf8_lossy(&buf)))?;
        }
        ExpirationOutput::Yaml => {
            let sorted = sort_keys(report.to_output_api());
            out!(
                "{}",
                kubepki_csr::yaml::to_string(&sorted).map_err(other_err)?
            )?;
        }
    }
    for p in &report.problems {
        diag!("kubepki: error: {}", esc(&p.to_string()));
    }
    let missing: Vec<&str> = report.missing().map(|e| e.name.as_str()).collect();
    if !missing.is_empty() {
        diag!(
            "kubepki: error: missing under {} and {}: {}",
            esc_path(&spec.cert_dir),
            esc_path(&spec.kubeconfig_dir),
            missing.join(", ")
        );
    }
    let early: Vec<String> = report
        .not_yet_valid()
        .map(|e| {
            format!(
                "{} (valid from {})",
                e.name,
                e.not_before.map(kubepki_ca::rfc3339).unwrap_or_default()
            )
        })
        .collect();
    if !early.is_empty() {
        diag!(
            "kubepki: error: not valid yet (is this machine's clock behind?): {}",
            early.join(", ")
        );
    }
    if let Some(busy) = &report.busy {
        diag!(
            "kubepki: error: {}; the rows above were read without it and may be incomplete",
            esc(&busy.to_string())
        );
        return Err(CliError::Exit(EXIT_BUSY));
    }
    // Expiry is always checked; --warn-within widens it to "expires within".
    let urgency = report.urgency(window.unwrap_or(Duration::ZERO));
    let code = if urgency == Urgency::Expired {
        EXIT_EXPIRED
    } else if !early.is_empty() {
        EXIT_NOT_YET_VALID
    } else if !missing.is_empty() || !report.problems.is_empty() {
        EXIT_MISSING
    } else if urgency == Urgency::Soon {
        EXIT_SOON
    } else {
        return Ok(());
    };
    Err(CliError::Exit(code))
}

/// `check-expiration`: something expires within `--warn-within`.
const EXIT_SOON: u8 = 1;
/// `check-expiration`: something has expired.
const EXIT_EXPIRED: u8 = 2;
/// `check-expiration`: a certificate is missing or cannot be read, so its expiry is unknown.
const EXIT_MISSING: u8 = 3;
/// `check-expiration`: a certificate is not valid yet (notBefore in the future).
const EXIT_NOT_YET_VALID: u8 = 4;

/// The exit codes of `check-expiration`, for its `--help` (docs/certs.md says the same).
const CHECK_EXIT_CODES: &str = "\
Exit codes (when several apply, the first in this list wins):
  75  another kubepki process held the tree for over 60 s; the rows were read without the lock
  2   a certificate has expired
  4   a certificate is not valid yet (notBefore in the future: check the clocks)
  3   a certificate is missing (!MISSING!, super-admin.conf excepted) or cannot be read (!INVALID!)
  1   with --warn-within: a certificate expires within that time
  0   every certificate is present, readable and valid (and none expires within --warn-within)
  64  the command line or --config cannot be used; nothing was checked
  141 standard output was closed early (kubepki ... | head)";

fn warn_within(w: &str) -> Result<Duration, CliError> {
    if w.trim_start().starts_with('-') {
        return Err(CliError::Usage(format!(
            "--warn-within: \"{w}\" is negative; give how far ahead to look, e.g. 30d or 720h"
        )));
    }
    parse_duration_with_days(w).map_err(|e| CliError::Usage(format!("--warn-within: {e}")))
}

/// sigs.k8s.io/yaml writes keys sorted.
fn sort_keys(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut entries: Vec<_> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(sort_keys).collect())
        }
        other => other,
    }
}

fn renew_cmd(a: RenewArgs) -> Result<(), CliError> {
    let (spec, warnings) = a.flags.spec()?;
    for w in &warnings {
        diag!("warning: {}", crate::out::esc(w));
    }
    // kubeadm takes the algorithm from the cluster configuration: --config or the flag give it;
    // without either the old key's algorithm stands in for it (docs/certs.md, "certs renew").
    let alg: Option<KeyAlgorithm> =
        if a.flags.encryption_algorithm.is_some() || a.flags.config_given() {
            Some(spec.encryption_algorithm)
        } else {
            None
        };
    a.flags.validate(&spec)?;
    a.external.check()?;
    if a.external.wanted() {
        // No CA key signs on the node in these modes: a key URI would be silently unused.
        // (--encryption-algorithm and --config are cluster flags given to every command;
        // --from-csr-dir installs the keys --csr-only made, docs/certs.md.)
        if let Some(flag) = a.keys.first_given() {
            return Err(CliError::Usage(format!(
                "{flag}: --csr-only and --from-csr-dir sign nothing on this node; the CA side signs (certs sign-csrs --csr-dir)"
            )));
        }
        return crate::renew_csr::renew(&spec, &a.name, alg, &a.external);
    }
    let targets = parse_renew_name(&spec, &a.name).map_err(lib_err)?;
    a.keys.check()?;
    let ca_keys = a.keys.open()?;
    let (done, warnings) = crate::progress::during(true, || {
        kubepki_kubeadm::renew_with_ca_keys(
            &spec,
            &targets,
            alg,
            &ca_keys,
            OffsetDateTime::now_utc(),
        )
    })
    .map_err(lib_err)?;
    for w in &warnings {
        diag!("warning: {}", crate::out::esc(w));
    }
    let mut renewed = 0;
    let mut failed = Vec::new();
    for r in &done {
        match &r.status {
            RenewStatus::Renewed {
                not_after,
                algorithm,
            } => {
                renewed += 1;
                outln!(
                    "[renew] {} renewed: new {algorithm} key, valid until {not_after}",
                    r.target.name()
                )?;
            }
            RenewStatus::Missing => outln!("MISSING! {}", r.target.name())?,
            RenewStatus::ExternalCa { ca } => outln!(
                "Detected external CA {} (no key here): {} can't be renewed here",
                esc_path(ca),
                r.target.name()
            )?,
            RenewStatus::Failed { reason } => {
                outln!(
                    "FAILED! {} (not renewed, no file of it changed)",
                    r.target.name()
                )?;
                failed.push(reason);
            }
        }
    }
    if renewed > 0 {
        outln!(
            "\nDone renewing certificates. You must restart the kube-apiserver, kube-controller-manager, kube-scheduler and etcd, so that they can use the new certificates."
        )?;
    }
    for reason in &failed {
        diag!("kubepki: error: {}", esc(&reason.to_string()));
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Exit(1))
    }
}

fn generate(a: GenerateArgs) -> Result<(), CliError> {
    let (spec, warnings) = a.flags.spec()?;
    for w in &warnings {
        diag!("warning: {}", crate::out::esc(w));
    }
    let plan = a.flags.plan(&spec)?;
    let done = crate::progress::during(true, || generate_csrs(&plan)).map_err(lib_err)?;
    for k in &done.kept {
        match k {
            Kept::AwaitingSignature { name, csr } => outln!(
                "[certs] {name}: key and CSR {} exist, awaiting signing; kept",
                esc_path(csr)
            )?,
            Kept::Signed { name, file } => {
                outln!("[certs] {name}: {} is already signed; kept", esc_path(file))?
            }
        }
    }
    for p in &done.written {
        outln!("[certs] Wrote {}", esc_path(p))?;
    }
    let awaiting = done
        .kept
        .iter()
        .filter(|k| matches!(k, Kept::AwaitingSignature { .. }))
        .count();
    if done.written.is_empty() && awaiting == 0 {
        outln!("\nNothing to do: every item is signed.")?;
    } else {
        outln!(
            "\n{} files written. Sign the CSRs where the CA keys are (`kubepki certs sign-csrs`), then run `kubepki init` here with the CA certificates but not their keys.",
            done.written.len()
        )?;
    }
    Ok(())
}

/// Loads a CA given for `role` and checks it is that CA of the plan (an error names its file).
fn signing_ca(
    plan: &Plan,
    role: CertId,
    hsm: &crate::hsm::Hsm,
    cert: &Option<PathBuf>,
    (key_flag, key, uri): (&str, &Option<PathBuf>, &Option<String>),
) -> Result<Option<kubepki_ca::CertificateAuthority>, CliError> {
    let Some(cert) = cert else {
        return Ok(None);
    };
    let ca = match (key, uri) {
        (Some(key), _) => load_ca(cert, key)?,
        (None, Some(uri)) => hsm.load_ca(cert, key_flag, uri)?,
        (None, None) => {
            let file_flag = key_flag.trim_end_matches("-uri");
            return Err(CliError::Usage(format!(
                "{}: the CA certificate needs its key: {file_flag} FILE or {key_flag} URI",
                cert.display()
            )));
        }
    };
    check_ca_role(plan, role, &ca).map_err(in_file(cert))?;
    Ok(Some(ca))
}

fn sign(a: SignArgs) -> Result<(), CliError> {
    let (spec, warnings) = a.flags.spec()?;
    for w in &warnings {
        diag!("warning: {}", crate::out::esc(w));
    }
    let plan = a.flags.plan(&spec)?;
    for (flag, uri) in [
        ("--ca-key-uri", &a.ca_key_uri),
        ("--front-proxy-ca-key-uri", &a.front_proxy_ca_key_uri),
        ("--etcd-ca-key-uri", &a.etcd_ca_key_uri),
    ] {
        if let Some(uri) = uri {
            crate::hsm::Hsm::check_uri(flag, uri)?;
        }
    }
    // One session per token for all three CAs.
    let hsm = crate::hsm::Hsm::new(&a.pkcs11);
    let cas = SigningCas {
        ca: signing_ca(
            &plan,
            CertId::Ca,
            &hsm,
            &a.ca_cert,
            ("--ca-key-uri", &a.ca_key, &a.ca_key_uri),
        )?,
        front_proxy: signing_ca(
            &plan,
            CertId::FrontProxyCa,
            &hsm,
            &a.front_proxy_ca_cert,
            (
                "--front-proxy-ca-key-uri",
                &a.front_proxy_ca_key,
                &a.front_proxy_ca_key_uri,
            ),
        )?,
        etcd: signing_ca(
            &plan,
            CertId::EtcdCa,
            &hsm,
            &a.etcd_ca_cert,
            ("--etcd-ca-key-uri", &a.etcd_ca_key, &a.etcd_ca_key_uri),
        )?,
    };
    if a.renewal.csr_dir.is_some() {
        return crate::renew_csr::sign(&plan, cas, &a.renewal, EXIT_SIGNED_IN_PART);
    }
    let done = sign_csrs(&plan, &cas, OffsetDateTime::now_utc()).map_err(lib_err)?;
    let mut n = 0;
    for s in &done {
        match s {
            Signed::Written(p) => {
                n += 1;
                outln!("[certs] Signed {}", esc_path(p))?;
            }
            Signed::AlreadySigned(p) => outln!("[certs] {} is already signed; kept", esc_path(p))?,
            Signed::NoCsr(name) => outln!("[certs] No CSR for {name}; skipped")?,
            Signed::NoCa { name, ca } => {
                outln!("[certs] {name} needs {ca}, which was not given; skipped")?
            }
        }
    }
    let skipped = done.iter().filter(|s| s.is_skipped()).count();
    outln!("\n{n} certificates signed.")?;
    if skipped > 0 {
        diag!(
            "kubepki: {skipped} of {} items left unsigned (listed above); run sign-csrs again with their CA or CSR (exit {EXIT_SIGNED_IN_PART})",
            done.len()
        );
        return Err(CliError::Exit(EXIT_SIGNED_IN_PART));
    }
    Ok(())
}

/// Runs `kubepki verify`.
pub fn verify_cmd(a: VerifyArgs) -> Result<(), CliError> {
    let (spec, warnings) = a.flags.spec()?;
    for w in &warnings {
        diag!("warning: {}", crate::out::esc(w));
    }
    let plan = a.flags.plan(&spec)?;
    let v = verify(&plan, OffsetDateTime::now_utc());
    match a.output {
        VerifyOutput::Json => {
            let text = serde_json::to_string_pretty(&v).map_err(other_err)?;
            outln!("{}", crate::out::json(&text))?;
        }
        VerifyOutput::Text => {
            for c in &v.checks {
                let tag = match c.status {
                    CheckStatus::Pass => "PASS",
                    CheckStatus::Warn => "WARN",
                    CheckStatus::Fail => "FAIL",
                };
                // Padded after escaping, so the columns stay aligned.
                outln!(
                    "{tag}  {:<26} {:<14} {}",
                    esc(&c.item),
                    esc(c.check),
                    esc(&c.detail)
                )?;
            }
            outln!(
                "\n{} checks: {} passed, {} warnings, {} failed",
                v.checks.len(),
                v.count(CheckStatus::Pass),
                v.count(CheckStatus::Warn),
                v.count(CheckStatus::Fail)
            )?;
        }
    }
    if v.passed() {
        Ok(())
    } else {
        Err(CliError::Exit(1))
    }
}
