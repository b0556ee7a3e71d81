//! `kubepki cfssl gencert`: cfssl's request and signing-config files, read and mapped by
//! `kubepki_ca::cfssl`; prints cfssl's JSON result or, with `--bare`, writes the files
//! `cfssljson -bare` would (docs/cfssl.md).

use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use kubepki_ca::cfssl::{CfsslError, CsrRequest, Issued, SigningConfig, SigningPolicy};
use kubepki_files::{MODE_PUBLIC, MODE_SECRET};
use time::OffsetDateTime;

use crate::cmd::{batch, read};
use crate::errors::CliError;
use crate::errors::{in_file, write_err};
use crate::out::{esc, esc_path};

/// cfssl's commands, over cfssl's own files.
#[derive(Subcommand, Debug)]
pub enum CfsslCommand {
    /// cfssl gencert: a key, a CSR and a certificate from a cfssl CSR JSON file (a new root
    /// with --initca, else signed by --ca/--ca-key under a --config profile).
    Gencert(Box<GencertArgs>),
}

#[derive(Args, Debug)]
pub struct GencertArgs {
    /// cfssl's CSR JSON (`CN`, `hosts`, `key`, `names`, `ca`).
    csr_json: PathBuf,
    /// Make a self-signed CA from the request (cfssl's CA profile, `ca.expiry`, `ca.pathlen`).
    #[arg(long, conflicts_with_all = ["ca", "ca_key", "ca_key_uri", "config", "profile"])]
    initca: bool,
    /// The signing CA's certificate (PEM).
    #[arg(long, required_unless_present = "initca")]
    ca: Option<PathBuf>,
    /// The signing CA's private key (PEM).
    #[arg(long, conflicts_with = "ca_key_uri")]
    ca_key: Option<PathBuf>,
    /// The signing CA's key in a PKCS#11 token (a `pkcs11:` URI), instead of --ca-key.
    #[arg(long, value_name = "PKCS11_URI")]
    ca_key_uri: Option<String>,
    #[command(flatten)]
    pkcs11: crate::hsm::Pkcs11Flags,
    /// cfssl's signing config (`signing.default`, `signing.profiles`); without it, cfssl's
    /// built-in default (signing, key encipherment, server auth, client auth; 8760h).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The profile of --config to sign with [default: signing.default].
    #[arg(long, requires = "config")]
    profile: Option<String>,
    /// Comma-separated SANs replacing the request's `hosts` (empty: the request's are kept).
    #[arg(long)]
    hostname: Option<String>,
    /// Write NAME.pem (0644), NAME-key.pem (0600) and NAME.csr (0644) instead of printing
    /// cfssl's JSON (what `cfssljson -bare NAME` writes).
    #[arg(long, value_name = "NAME")]
    bare: Option<PathBuf>,
    /// Replace existing files (with --bare).
    #[arg(long, requires = "bare")]
    force: bool,
}

/// Runs a `cfssl` command.
pub fn run(c: CfsslCommand) -> Result<(), CliError> {
    match c {
        CfsslCommand::Gencert(a) => gencert(*a),
    }
}

/// The three files of `--bare NAME`: certificate, key, request. NAME must end in a file name
/// as typed: `Path::file_name` reads `sub/` and `sub/.` as `sub`, which would write `sub.pem`
/// beside the folder `sub` the user named.
fn bare_paths(name: &Path) -> Result<[PathBuf; 3], CliError> {
    let typed = name.as_os_str().as_bytes();
    let last = typed.rsplit(|b| *b == b'/').next().unwrap_or_default();
    let base = name
        .file_name()
        .filter(|n| n.as_bytes() == last)
        .and_then(|n| n.to_str());
    let Some(base) = base else {
        return Err(CliError::Usage(format!(
            "--bare: \"{}\" must end in a file name",
            esc_path(name)
        )));
    };
    let with = |suffix: &str| name.with_file_name(format!("{base}{suffix}"));
    Ok([with(".pem"), with("-key.pem"), with(".csr")])
}

fn gencert(a: GencertArgs) -> Result<(), CliError> {
    let mut req = CsrRequest::from_json(&read(&a.csr_json)?).map_err(in_file(&a.csr_json))?;
    if let Some(h) = &a.hostname {
        req = req.with_hostname(h);
    }
    let paths = a.bare.as_deref().map(bare_paths).transpose()?;
    // Checked before the (possibly slow) key generation.
    if let Some(paths) = &paths
        && !a.force
    {
        for p in paths {
            if std::fs::symlink_metadata(p).is_ok() {
                return Err(write_err(kubepki_files::Error::Exists { path: p.clone() }));
            }
        }
    }
    let now = OffsetDateTime::now_utc();
    let issued = if a.initca {
        kubepki_ca::cfssl::init_ca(&req, now)
            .map_err(in_file(&a.csr_json))?
            .issued
    } else {
        let policy = match &a.config {
            Some(cfg) => SigningConfig::from_json(&read(cfg)?)
                .and_then(|c| c.policy(a.profile.as_deref()))
                .map_err(in_file(cfg))?,
            None => SigningPolicy::cfssl_default(),
        };
        let Some(ca_cert) = &a.ca else {
            return Err(CliError::Usage(
                "--ca is needed (or --initca for a new root)".into(),
            ));
        };
        let ca = crate::hsm::load_ca(
            &crate::hsm::Hsm::new(&a.pkcs11),
            ca_cert,
            a.ca_key.as_deref(),
            "--ca-key-uri",
            a.ca_key_uri.as_deref(),
        )?;
        kubepki_ca::cfssl::gencert(&req, &ca, &policy, now).map_err(|e| match (&a.config, e) {
            // The profile's fault: name the config.
            (Some(cfg), e @ (CfsslError::CaPowers { .. } | CfsslError::ExpiresAtOnce { .. })) => {
                in_file(cfg)(e)
            }
            (_, e) => in_file(&a.csr_json)(e),
        })?
    };
    match paths {
        Some(paths) => write_bare(&issued, &paths, a.force),
        None => {
            let json = issued.to_json().map_err(in_file(&a.csr_json))?;
            crate::out::bytes(crate::out::json(&json).as_bytes())?;
            crate::out::bytes(b"\n")
        }
    }
}

fn write_bare(
    issued: &Issued,
    [cert, key, csr]: &[PathBuf; 3],
    force: bool,
) -> Result<(), CliError> {
    let mut b = batch(force);
    b.stage(cert, issued.certificate.to_pem().as_bytes(), MODE_PUBLIC)
        .map_err(write_err)?;
    b.stage(key, issued.key_pem.as_bytes(), MODE_SECRET)
        .map_err(write_err)?;
    b.stage(csr, issued.csr.to_pem().as_bytes(), MODE_PUBLIC)
        .map_err(write_err)?;
    b.commit().map_err(write_err)?;
    outln!(
        "wrote {} for {} (serial {}, valid until {}), {} and {}",
        esc_path(cert),
        esc(&issued.certificate.subject().to_string()),
        issued.certificate.serial_hex(),
        kubepki_ca::rfc3339(issued.certificate.not_after()),
        esc_path(key),
        esc_path(csr)
    )
}
