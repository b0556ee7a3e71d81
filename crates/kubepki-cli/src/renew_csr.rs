//! Renewal through an external CA (docs/certs.md, "Renewal through an external CA"):
//! `certs renew NAME|all --csr-only --csr-dir DIR`, `certs sign-csrs --csr-dir DIR` and
//! `certs renew NAME|all --from-csr-dir DIR`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use kubepki_keys::KeyAlgorithm;
use kubepki_kubeadm::{
    CertId, ClusterSpec, CsrStatus, InstallStatus, Plan, Signed, SigningCas, check_ca_role,
    install_renewal, parse_renew_name, sign_renewal_csrs, write_renewal_csrs,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::cmd::load_ca;
use crate::errors::{CliError, lib_err, other_err};
use crate::out::esc_path;

/// Output formats of the external-CA renewal commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// One line per item.
    #[default]
    Text,
    /// JSON.
    Json,
}

/// `certs renew`'s flags for renewal through an external CA.
#[derive(Args, Debug, Default)]
pub struct ExternalRenewFlags {
    /// Write a new key and a CSR per item (same identity and SANs as its certificate) to
    /// --csr-dir for an external CA, instead of renewing; the tree is not touched.
    #[arg(long, requires = "csr_dir", conflicts_with = "from_csr_dir")]
    csr_only: bool,
    /// Where --csr-only writes `<name>.key` and `<name>.csr` (required, as in kubeadm; not the
    /// certificate or kubeconfig folder).
    #[arg(long, value_name = "DIR", requires = "csr_only")]
    csr_dir: Option<PathBuf>,
    /// With --csr-only: replace keys and CSRs already in --csr-dir (a signed certificate of an
    /// earlier round must be removed first).
    #[arg(long, requires = "csr_only")]
    overwrite: bool,
    /// Install the certificates `sign-csrs --csr-dir` signed in DIR, with their keys, as one
    /// batch after checking each against its key, its CA and the certificate it replaces.
    #[arg(long, value_name = "DIR")]
    from_csr_dir: Option<PathBuf>,
    /// Output format of --csr-only and --from-csr-dir.
    #[arg(short, long, value_enum, default_value = "text")]
    output: Output,
}

impl ExternalRenewFlags {
    /// Whether one of the external-CA modes was asked for.
    pub fn wanted(&self) -> bool {
        self.csr_only || self.from_csr_dir.is_some()
    }

    /// Whether an option of these modes was given without them.
    pub fn check(&self) -> Result<(), CliError> {
        if !self.wanted() && self.output != Output::Text {
            return Err(CliError::Usage(
                "--output is for --csr-only and --from-csr-dir".into(),
            ));
        }
        Ok(())
    }
}

/// `certs sign-csrs`'s flag for renewal CSRs.
#[derive(Args, Debug, Default)]
pub struct SignRenewalFlags {
    /// Sign the renewal CSRs `certs renew --csr-only` wrote in DIR (`<name>.csr`), writing
    /// `<name>.crt` beside each; the CAs are read from --cert-dir unless given.
    #[arg(long, value_name = "DIR")]
    pub csr_dir: Option<PathBuf>,
    /// Output format with --csr-dir.
    #[arg(short, long, value_enum, default_value = "text", requires = "csr_dir")]
    output: Output,
}

fn print_json(v: &Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(v).map_err(other_err)?;
    outln!("{}", crate::out::json(&text))?;
    Ok(())
}

fn path_str(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `certs renew NAME --csr-only` or `--from-csr-dir`.
pub fn renew(
    spec: &ClusterSpec,
    name: &str,
    algorithm: Option<KeyAlgorithm>,
    f: &ExternalRenewFlags,
) -> Result<(), CliError> {
    let targets = parse_renew_name(spec, name).map_err(lib_err)?;
    if f.csr_only {
        let dir = f
            .csr_dir
            .as_ref()
            .ok_or_else(|| CliError::Usage("--csr-only needs --csr-dir".into()))?;
        let done = crate::progress::during(f.output == Output::Text, || {
            write_renewal_csrs(spec, &targets, algorithm, dir, f.overwrite)
        })
        .map_err(lib_err)?;
        if f.output == Output::Json {
            let items: Vec<Value> = done
                .iter()
                .map(|r| match r.status {
                    CsrStatus::Written { algorithm } => json!({
                        "name": r.target.name(),
                        "status": "written",
                        "key": path_str(&r.files.key),
                        "csr": path_str(&r.files.csr),
                        "algorithm": algorithm.to_string(),
                    }),
                    CsrStatus::Missing => json!({"name": r.target.name(), "status": "missing"}),
                })
                .collect();
            return print_json(&json!({ "csrDir": path_str(dir), "items": items }));
        }
        let mut n = 0;
        for r in &done {
            match r.status {
                CsrStatus::Written { algorithm } => {
                    n += 1;
                    outln!(
                        "[renew] {}: new {algorithm} key {} and CSR {}",
                        r.target.name(),
                        esc_path(&r.files.key),
                        esc_path(&r.files.csr)
                    )?;
                }
                CsrStatus::Missing => outln!("MISSING! {}", r.target.name())?,
            }
        }
        outln!(
            "\n{n} CSRs written; nothing of the tree was changed. Have them signed where the CA keys are (`kubepki certs sign-csrs --csr-dir DIR` with this node's flags), then run `kubepki certs renew {name} --from-csr-dir DIR` here."
        )?;
        return Ok(());
    }
    let dir = f
        .from_csr_dir
        .as_ref()
        .ok_or_else(|| CliError::Usage("--from-csr-dir needs a folder".into()))?;
    let done = install_renewal(
        spec,
        &targets,
        name == "all",
        dir,
        OffsetDateTime::now_utc(),
    )
    .map_err(lib_err)?;
    if f.output == Output::Json {
        let items: Vec<Value> = done
            .iter()
            .map(|r| match &r.status {
                InstallStatus::Installed {
                    not_after,
                    serial,
                    algorithm,
                } => json!({
                    "name": r.target.name(),
                    "status": "installed",
                    "files": r.files.iter().map(|p| path_str(p)).collect::<Vec<_>>(),
                    "notAfter": not_after,
                    "serial": serial,
                    "algorithm": algorithm.to_string(),
                }),
                InstallStatus::NotInCsrDir => {
                    json!({"name": r.target.name(), "status": "notInCsrDir"})
                }
                InstallStatus::AlreadyInstalled => {
                    json!({"name": r.target.name(), "status": "alreadyInstalled"})
                }
            })
            .collect();
        return print_json(&json!({ "csrDir": path_str(dir), "items": items }));
    }
    let mut n = 0;
    for r in &done {
        match &r.status {
            InstallStatus::Installed {
                not_after,
                serial,
                algorithm,
            } => {
                n += 1;
                outln!(
                    "[renew] {} installed: new {algorithm} key, serial {serial}, valid until {not_after}",
                    r.target.name()
                )?;
            }
            InstallStatus::NotInCsrDir => outln!(
                "[renew] {}: nothing for it in {}; left as it was",
                r.target.name(),
                esc_path(dir)
            )?,
            InstallStatus::AlreadyInstalled => outln!(
                "[renew] {}: already installed from {}; kept",
                r.target.name(),
                esc_path(dir)
            )?,
        }
    }
    if n > 0 {
        outln!(
            "\nDone renewing certificates. You must restart the kube-apiserver, kube-controller-manager, kube-scheduler and etcd, so that they can use the new certificates."
        )?;
    }
    Ok(())
}

/// The CA of `role` from the plan's certificate folder, when its certificate and key are there.
fn folder_ca(
    plan: &Plan,
    role: CertId,
) -> Result<Option<kubepki_ca::CertificateAuthority>, CliError> {
    let (cert, key) = (
        role.cert_path(&plan.cert_dir),
        role.key_path(&plan.cert_dir),
    );
    if plan.cert(role).is_none() || !cert.exists() || !key.exists() {
        return Ok(None);
    }
    let ca = load_ca(&cert, &key)?;
    check_ca_role(plan, role, &ca).map_err(|e| CliError::File {
        path: cert.clone(),
        msg: e.to_string(),
    })?;
    Ok(Some(ca))
}

/// `certs sign-csrs --csr-dir`: `given` are the CAs given by flag; the others are read from the
/// plan's certificate folder (`--cert-dir`).
pub fn sign(
    plan: &Plan,
    given: SigningCas,
    f: &SignRenewalFlags,
    exit_in_part: u8,
) -> Result<(), CliError> {
    let Some(dir) = &f.csr_dir else {
        return Err(CliError::Usage("--csr-dir is needed".into()));
    };
    let cas = SigningCas {
        ca: match given.ca {
            Some(ca) => Some(ca),
            None => folder_ca(plan, CertId::Ca)?,
        },
        front_proxy: match given.front_proxy {
            Some(ca) => Some(ca),
            None => folder_ca(plan, CertId::FrontProxyCa)?,
        },
        etcd: match given.etcd {
            Some(ca) => Some(ca),
            None => folder_ca(plan, CertId::EtcdCa)?,
        },
    };
    let done = sign_renewal_csrs(plan, &cas, dir, OffsetDateTime::now_utc()).map_err(lib_err)?;
    let skipped = done.iter().filter(|(_, s)| s.is_skipped()).count();
    if f.output == Output::Json {
        let items: Vec<Value> = done
            .iter()
            .map(|(t, s)| match s {
                Signed::Written(p) => {
                    json!({"name": t.name(), "status": "signed", "crt": path_str(p)})
                }
                Signed::AlreadySigned(p) => {
                    json!({"name": t.name(), "status": "alreadySigned", "crt": path_str(p)})
                }
                Signed::NoCa { ca, .. } => json!({"name": t.name(), "status": "noCa", "ca": ca}),
                Signed::NoCsr(_) => json!({"name": t.name(), "status": "noCsr"}),
            })
            .collect();
        print_json(&json!({ "csrDir": path_str(dir), "items": items }))?;
    } else {
        let mut n = 0;
        for (t, s) in &done {
            match s {
                Signed::Written(p) => {
                    n += 1;
                    outln!("[certs] Signed {}", esc_path(p))?;
                }
                Signed::AlreadySigned(p) => {
                    outln!("[certs] {} is already signed; kept", esc_path(p))?
                }
                Signed::NoCa { ca, .. } => outln!(
                    "[certs] {} needs {ca}, which was not given; skipped",
                    t.name()
                )?,
                Signed::NoCsr(_) => outln!("[certs] No CSR for {}; skipped", t.name())?,
            }
        }
        outln!(
            "\n{n} certificates signed. Bring the .crt files back to the node and run `kubepki certs renew all --from-csr-dir DIR` there."
        )?;
    }
    if skipped > 0 {
        diag!(
            "kubepki: {skipped} of {} CSRs left unsigned (their CA was not given); run sign-csrs again with it (exit {exit_in_part})",
            done.len()
        );
        return Err(CliError::Exit(exit_in_part));
    }
    Ok(())
}
