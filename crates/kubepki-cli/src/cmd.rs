use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use kubepki_ca::{
    CaExpiry, CaSpec, Certificate, CertificateAuthority, DEFAULT_CA_VALIDITY,
    DEFAULT_LEAF_VALIDITY, Profile, Window, parse_duration_with_days,
};
use kubepki_csr::{Csr, CsrBuilder, KubeCsr, Subject, Usage, has_unsafe_chars};
use kubepki_files::{FileBatch, MODE_PUBLIC, MODE_SECRET, read_limited};
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use time::OffsetDateTime;

use crate::errors::{CliError, Writing, files_err, in_file, other_err, outlives_ca, write_err};
use crate::out::{esc, esc_path};

/// Reads an input file (bounded size), naming it in any error.
pub fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    read_limited(path)
        .map(|b| b.to_vec())
        .map_err(|e| files_err(e, Writing::Output))
}

/// The CA certificates a kubeconfig made with the CA file `cert` trusts
/// (`certificate-authority-data`): its CA, and during a rotation of it both (docs/rotation.md).
pub fn ca_trust(cert: &Path) -> Result<Vec<Certificate>, CliError> {
    kubepki_kubeadm::ca_trust_bundle(cert).map_err(crate::errors::lib_err)
}

/// Loads a CA from its certificate and key files; an error names the file at fault.
pub fn load_ca(cert: &Path, key: &Path) -> Result<CertificateAuthority, CliError> {
    let c = Certificate::from_pem(&read(cert)?).map_err(in_file(cert))?;
    let k = PrivateKey::from_pem(&read(key)?).map_err(in_file(key))?;
    if !k.matches_public_key(c.public_key_der()) {
        return Err(CliError::File {
            path: key.to_owned(),
            msg: format!("is not the private key of {}", cert.display()),
        });
    }
    CertificateAuthority::from_parts(c, Some(k), OffsetDateTime::now_utc()).map_err(in_file(cert))
}

/// Writes a batch, mapping file errors.
fn commit(batch: FileBatch) -> Result<(), CliError> {
    batch.commit().map_err(write_err)
}

pub(crate) fn batch(force: bool) -> FileBatch {
    if force {
        FileBatch::overwriting()
    } else {
        FileBatch::new()
    }
}

/// kubepki: offline Kubernetes PKI.
#[derive(Parser, Debug)]
#[command(name = "kubepki", version, long_version = crate::meta::long_version(), about, long_about = None)]
pub struct Cli {
    /// Show no progress on standard error while keys are generated (docs/certs.md, "Progress").
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate a private key (kubeadm's PEM form) and optionally its public key.
    Keygen(KeygenArgs),
    /// Create a PKCS#10 CSR, optionally wrapped in a Kubernetes CertificateSigningRequest.
    Csr(Box<CsrArgs>),
    /// Certificate-authority commands.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Sign a CSR with a CA under a leaf profile.
    Sign(SignArgs),
    /// Show a certificate, CSR, key (public facts only) or CertificateSigningRequest manifest.
    Inspect(InspectArgs),
    /// Write the whole kubeadm PKI tree and kubeconfig files (or single phases), offline.
    Init(Box<crate::init::InitArgs>),
    /// Certificate lifecycle: check-expiration, renew, generate-csr, sign-csrs.
    #[command(subcommand)]
    Certs(Box<crate::certs::CertsCommand>),
    /// Check a whole tree: parsing, keys, chains, usages, SANs, validity, modes, kubeconfigs.
    Verify(Box<crate::certs::VerifyArgs>),
    /// Users: key, client certificate and kubeconfig, or a CSR for online signing; RBAC.
    #[command(subcommand)]
    User(crate::identity::UserCommand),
    /// Sign CertificateSigningRequest manifests offline under the Kubernetes signer policies.
    SignRequest(Box<crate::identity::SignRequestArgs>),
    /// Node credentials: worker kubelet.conf, kubelet serving certs, extra control-plane nodes.
    #[command(subcommand)]
    Node(crate::identity::NodeCommand),
    /// cfssl's JSON request and signing-config files: gencert (docs/cfssl.md).
    #[command(subcommand)]
    Cfssl(crate::cfssl::CfsslCommand),
    /// Print the version, git commit, crypto backend and how this binary was built.
    Version(crate::meta::VersionArgs),
    /// Print a shell completion script: bash, zsh, fish or powershell.
    Completion(crate::meta::CompletionArgs),
    /// Write the man pages (cargo dist-man).
    #[command(hide = true)]
    ManPages(crate::meta::ManArgs),
}

#[derive(Args, Debug)]
struct KeygenArgs {
    /// Key algorithm.
    #[arg(long, default_value = "RSA-2048", value_parser = AlgorithmParser)]
    algorithm: KeyAlgorithm,
    /// Where to write the private key (mode 0600).
    #[arg(long)]
    out: PathBuf,
    /// Also write the PKIX public key here (mode 0600, like kubeadm's sa.pub).
    #[arg(long)]
    pub_out: Option<PathBuf>,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
struct CsrArgs {
    /// The private key to sign the request with.
    #[arg(long)]
    key: PathBuf,
    /// Subject CN (the Kubernetes user name).
    #[arg(long)]
    cn: String,
    /// Subject O (a Kubernetes group); repeat for several.
    #[arg(long = "org")]
    orgs: Vec<String>,
    /// Subject OU; repeatable.
    #[arg(long = "ou")]
    ous: Vec<String>,
    /// DNS SAN; repeatable.
    #[arg(long = "dns")]
    dns: Vec<String>,
    /// IP SAN (v4 or v6); repeatable.
    #[arg(long = "ip")]
    ips: Vec<IpAddr>,
    /// URI SAN; repeatable.
    #[arg(long = "uri")]
    uris: Vec<String>,
    /// Email SAN; repeatable.
    #[arg(long = "email")]
    emails: Vec<String>,
    /// Where to write the PEM CSR.
    #[arg(long)]
    out: PathBuf,
    /// Also write a certificates.k8s.io/v1 CertificateSigningRequest manifest here (YAML, or
    /// JSON when the name ends in .json).
    #[arg(long)]
    k8s_manifest: Option<PathBuf>,
    /// metadata.name of the manifest (default: made from the CN; docs/identities.md, "Object
    /// names").
    #[arg(long, requires = "k8s_manifest")]
    name: Option<String>,
    /// spec.signerName of the manifest.
    #[arg(
        long,
        default_value = "kubernetes.io/kube-apiserver-client",
        requires = "k8s_manifest"
    )]
    signer_name: String,
    /// spec.expirationSeconds of the manifest (minimum 600).
    #[arg(long, requires = "k8s_manifest")]
    expiration_seconds: Option<i64>,
    /// spec.usages entry; repeatable (default: "digital signature", "key encipherment",
    /// "client auth").
    #[arg(long = "usage", requires = "k8s_manifest", value_parser = usage_parser)]
    usages: Vec<Usage>,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
}

#[derive(Subcommand, Debug)]
enum CaCommand {
    /// Create a self-signed CA with kubeadm's CA profile.
    Create(CaCreateArgs),
    /// Rotate the kubeadm tree's CAs and service-account key: start, reissue, finish, status.
    Rotate(Box<crate::rotate::RotateArgs>),
}

#[derive(Args, Debug)]
struct CaCreateArgs {
    /// Subject CN of the CA.
    #[arg(long)]
    cn: String,
    /// Folder for DIR/NAME.crt (0644) and DIR/NAME.key (0600; not with --key-uri).
    #[arg(long)]
    out_dir: PathBuf,
    /// Generate the CA key inside a PKCS#11 token instead of a file: a `pkcs11:` URI naming
    /// the token and the new key's object (label) and id. Only the certificate is written.
    #[arg(long, value_name = "PKCS11_URI")]
    key_uri: Option<String>,
    #[command(flatten)]
    pkcs11: crate::hsm::Pkcs11Flags,
    /// Base file name.
    #[arg(long, default_value = "ca")]
    name: String,
    /// Key algorithm.
    #[arg(long, default_value = "RSA-2048", value_parser = AlgorithmParser)]
    algorithm: KeyAlgorithm,
    /// Validity (Go duration, e.g. 87600h or 1.5h; also whole days, 3650d).
    #[arg(long, default_value = "87600h", value_parser = Validity::parse)]
    validity: Validity,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
struct SignArgs {
    #[command(flatten)]
    ca: crate::hsm::SigningCaFlags,
    /// The CSR (PEM or DER) to sign.
    #[arg(long)]
    csr: PathBuf,
    /// Leaf profile: client (clientAuth), server (serverAuth), peer (both).
    #[arg(long, value_parser = profile_parser())]
    profile: Profile,
    /// Where to write the certificate (0644).
    #[arg(long)]
    out: PathBuf,
    /// Validity (Go duration, e.g. 8760h or 1.5h; also whole days, 365d).
    #[arg(long, default_value = "8760h", value_parser = Validity::parse)]
    validity: Validity,
    /// If the certificate would outlive the CA, end it with the CA instead of refusing.
    #[arg(long)]
    clamp_to_ca: bool,
    /// Replace an existing output file.
    #[arg(long)]
    force: bool,
}

/// `--usage`: a `spec.usages` name, parsed by the library (its message names the allowed ones).
fn usage_parser(s: &str) -> Result<Usage, kubepki_csr::Error> {
    s.parse()
}

/// A `--validity` as given (for messages) and as the library's duration parser reads it.
#[derive(Clone, Debug)]
struct Validity {
    /// The text given.
    given: String,
    /// The duration.
    duration: time::Duration,
}

impl Validity {
    /// The value parser: [`parse_duration_with_days`], whose message clap's error carries.
    fn parse(s: &str) -> Result<Self, kubepki_ca::DurationError> {
        Ok(Validity {
            given: s.to_owned(),
            duration: parse_duration_with_days(s)?,
        })
    }
}

/// `--profile`: the library's profile names, listed in `--help` and completions.
fn profile_parser() -> impl clap::builder::TypedValueParser<Value = Profile> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(Profile::ALL.map(Profile::name))
        .try_map(|s| s.parse::<Profile>())
}

#[derive(Args, Debug)]
struct InspectArgs {
    /// The file to show.
    file: PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", default_value = "text")]
    output: Format,
}

/// Output formats of the commands that take `-o text|json` (`inspect`, `version`).
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// JSON.
    Json,
}

/// Runs one command.
pub fn run(cli: Cli) -> Result<(), CliError> {
    crate::progress::set_quiet(cli.quiet);
    match cli.command {
        Command::Keygen(a) => keygen(a),
        Command::Csr(a) => csr(*a),
        Command::Ca(CaCommand::Create(a)) => ca_create(a),
        Command::Ca(CaCommand::Rotate(a)) => crate::rotate::run(*a),
        Command::Sign(a) => sign(a),
        Command::Inspect(a) => crate::inspect::run(&a.file, a.output),
        Command::Init(a) => crate::init::run(*a),
        Command::Certs(c) => crate::certs::run(*c),
        Command::Verify(a) => crate::certs::verify_cmd(*a),
        Command::User(c) => crate::identity::user(c),
        Command::SignRequest(a) => crate::identity::sign_request_cmd(*a),
        Command::Node(c) => crate::identity::node(c),
        Command::Cfssl(c) => crate::cfssl::run(c),
        Command::Version(a) => crate::meta::version(&a),
        Command::Completion(a) => crate::meta::completion(&a),
        Command::ManPages(a) => crate::meta::man_pages(&a),
    }
}

/// `--algorithm`: read by the library's parser (any case, spaces around the name ignored), so
/// a refused name is the library's message (`--algorithm: unknown key algorithm "RSA-1024"
/// (valid: …)`, as before the flag was typed); its names are listed in `--help` and
/// completions.
#[derive(Clone, Copy, Debug)]
struct AlgorithmParser;

impl clap::builder::TypedValueParser for AlgorithmParser {
    type Value = KeyAlgorithm;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<KeyAlgorithm, clap::Error> {
        clap::builder::StringValueParser::new()
            .try_map(|s| s.parse::<KeyAlgorithm>())
            .parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            KeyAlgorithm::NAMES
                .into_iter()
                .map(clap::builder::PossibleValue::new),
        ))
    }
}

fn load_key(path: &Path) -> Result<PrivateKey, CliError> {
    PrivateKey::from_pem(&read(path)?).map_err(in_file(path))
}

fn keygen(a: KeygenArgs) -> Result<(), CliError> {
    let alg = a.algorithm;
    let key = PrivateKey::generate(alg).map_err(other_err)?;
    let mut b = batch(a.force);
    let pem = key.to_pem().map_err(other_err)?;
    b.stage(&a.out, pem.as_bytes(), MODE_SECRET)
        .map_err(write_err)?;
    if let Some(p) = &a.pub_out {
        b.stage(p, key.public_key_pem().as_bytes(), MODE_SECRET)
            .map_err(write_err)?;
    }
    commit(b)?;
    outln!("wrote {} private key {}", alg, esc_path(&a.out))?;
    if let Some(p) = &a.pub_out {
        outln!("wrote public key {}", esc_path(p))?;
    }
    Ok(())
}

/// Refuses, as a usage error naming the flag, a value for a name (a subject attribute or a
/// SAN) that holds a control or bidirectional formatting character: kubepki never requests or
/// issues one ([`kubepki_csr::Error::UnsafeName`]). Called before any key is read or made.
pub fn refuse_unsafe_names(flag: &str, field: &str, values: &[String]) -> Result<(), CliError> {
    match values.iter().find(|v| has_unsafe_chars(v)) {
        Some(v) => Err(CliError::Usage(format!(
            "{flag}: {}",
            kubepki_csr::Error::UnsafeName {
                field: field.to_owned(),
                value: v.clone(),
            }
        ))),
        None => Ok(()),
    }
}

fn csr(a: CsrArgs) -> Result<(), CliError> {
    refuse_unsafe_names("--cn", "subject CN", std::slice::from_ref(&a.cn))?;
    refuse_unsafe_names("--org", "subject O", &a.orgs)?;
    refuse_unsafe_names("--ou", "subject OU", &a.ous)?;
    refuse_unsafe_names("--dns", "DNS SAN", &a.dns)?;
    refuse_unsafe_names("--uri", "URI SAN", &a.uris)?;
    refuse_unsafe_names("--email", "email SAN", &a.emails)?;
    refuse_unsafe_names(
        "--signer-name",
        "spec.signerName",
        std::slice::from_ref(&a.signer_name),
    )?;
    let key = load_key(&a.key)?;
    let mut subject = Subject::cn(a.cn.clone()).with_organizations(a.orgs.clone());
    subject.organizational_units = a.ous.clone();
    let mut builder = CsrBuilder::new(subject);
    for d in &a.dns {
        builder = builder.dns(d.clone());
    }
    for ip in &a.ips {
        builder = builder.ip(*ip);
    }
    for u in &a.uris {
        builder = builder.uri(u.clone());
    }
    for e in &a.emails {
        builder = builder.email(e.clone());
    }
    let csr = builder.sign(&key).map_err(other_err)?;
    let mut b = batch(a.force);
    b.stage(&a.out, csr.to_pem().as_bytes(), MODE_SECRET)
        .map_err(write_err)?;
    if let Some(path) = &a.k8s_manifest {
        let usages: Vec<Usage> = if a.usages.is_empty() {
            vec![
                Usage::DigitalSignature,
                Usage::KeyEncipherment,
                Usage::ClientAuth,
            ]
        } else {
            a.usages.clone()
        };
        let name = a
            .name
            .clone()
            .unwrap_or_else(|| kubepki_csr::object_name(&a.cn));
        let manifest = KubeCsr::new(&name, &csr, &a.signer_name, &usages, a.expiration_seconds);
        manifest
            .validate()
            .map_err(|e| CliError::Other(format!("the manifest would be rejected: {e}")))?;
        let text = if path.extension().is_some_and(|e| e == "json") {
            manifest.to_json()
        } else {
            manifest.to_yaml()
        }
        .map_err(other_err)?;
        b.stage(path, text.as_bytes(), MODE_PUBLIC)
            .map_err(write_err)?;
    }
    commit(b)?;
    outln!(
        "wrote certificate request {} for {}",
        esc_path(&a.out),
        esc(&csr.subject().to_string())
    )?;
    if let Some(p) = &a.k8s_manifest {
        outln!("wrote CertificateSigningRequest manifest {}", esc_path(p))?;
    }
    Ok(())
}

fn ca_create(a: CaCreateArgs) -> Result<(), CliError> {
    let alg = a.algorithm;
    let validity = a.validity.duration;
    if a.name.is_empty() || a.name.contains('/') {
        return Err(CliError::Usage(format!(
            "--name: \"{}\" must be a plain file name",
            a.name
        )));
    }
    let crt = a.out_dir.join(format!("{}.crt", a.name));
    let key_path = a.out_dir.join(format!("{}.key", a.name));
    if let Some(uri) = &a.key_uri {
        return ca_create_in_token(&a, uri, alg, validity, &crt, &key_path);
    }
    // Check before the (possibly slow) key generation.
    for p in [&crt, &key_path] {
        if !a.force && std::fs::symlink_metadata(p).is_ok() {
            return Err(write_err(kubepki_files::Error::Exists { path: p.clone() }));
        }
    }
    // The name is checked before the (possibly slow) key generation.
    let spec = ca_spec(&a.cn, validity)?;
    let key = PrivateKey::generate(alg).map_err(other_err)?;
    let key_pem = key.to_pem().map_err(other_err)?;
    let ca = CertificateAuthority::create_root(&spec, key).map_err(other_err)?;
    let mut b = batch(a.force);
    b.stage(&crt, ca.certificate().to_pem().as_bytes(), MODE_PUBLIC)
        .map_err(write_err)?;
    b.stage(&key_path, key_pem.as_bytes(), MODE_SECRET)
        .map_err(write_err)?;
    commit(b)?;
    outln!(
        "wrote CA \"{}\" ({alg}, valid until {}) to {} and {}",
        esc(&a.cn),
        kubepki_ca::rfc3339(ca.certificate().not_after()),
        esc_path(&crt),
        esc_path(&key_path)
    )?;
    Ok(())
}

/// The spec of `ca create`'s CA named `cn` (its name checked, `--cn` named in a refusal).
fn ca_spec(cn: &str, validity: time::Duration) -> Result<CaSpec, CliError> {
    refuse_unsafe_names("--cn", "subject CN", std::slice::from_ref(&cn.to_owned()))?;
    let spec = CaSpec {
        // The key identifier of the version `init` models by default (kubeadm 1.35+: truncated
        // SHA-256), so that `ca create` and `init` make CAs alike.
        key_id: kubepki_kubeadm::KubernetesVersion::DEFAULT.ca_key_id(),
        ..CaSpec::kubeadm(cn, OffsetDateTime::now_utc(), validity)
    };
    spec.validate()
        .map_err(|e| CliError::Usage(format!("--cn: {e}")))?;
    Ok(spec)
}

/// `ca create --key-uri`: the key pair is generated inside the token; only the certificate
/// is written.
fn ca_create_in_token(
    a: &CaCreateArgs,
    uri: &str,
    alg: KeyAlgorithm,
    validity: time::Duration,
    crt: &Path,
    key_path: &Path,
) -> Result<(), CliError> {
    crate::hsm::Hsm::check_uri("--key-uri", uri)?;
    // Check before the key is made in the token.
    if !a.force && std::fs::symlink_metadata(crt).is_ok() {
        return Err(write_err(kubepki_files::Error::Exists {
            path: crt.to_path_buf(),
        }));
    }
    // A key file left beside the new certificate would be taken for its key (kubeadm uses
    // NAME.key when it is there), even with --force: kubepki does not delete a key.
    if std::fs::symlink_metadata(key_path).is_ok() {
        return Err(CliError::File {
            path: key_path.to_path_buf(),
            msg: "exists; the new CA's key is in the token and this key file would not match its certificate: move it away first".into(),
        });
    }
    // The name is checked before the key is made: a key left in the token would block the
    // next try with the same URI.
    let spec = ca_spec(&a.cn, validity)?;
    let hsm = crate::hsm::Hsm::new(&a.pkcs11);
    let key = hsm.generate("--key-uri", uri, alg)?;
    let ca = CertificateAuthority::create_root_with_signing_key(&spec, key).map_err(other_err)?;
    let mut b = batch(a.force);
    b.stage(crt, ca.certificate().to_pem().as_bytes(), MODE_PUBLIC)
        .map_err(write_err)?;
    commit(b)?;
    outln!(
        "wrote CA \"{}\" ({alg}, valid until {}) to {}; its key is in the token",
        esc(&a.cn),
        kubepki_ca::rfc3339(ca.certificate().not_after()),
        esc_path(crt)
    )?;
    Ok(())
}

fn sign(a: SignArgs) -> Result<(), CliError> {
    let validity = a.validity.duration;
    let now = OffsetDateTime::now_utc();
    let ca = match (&a.ca.ca_key, &a.ca.ca_key_uri) {
        (Some(ca_key), None) => {
            let cert =
                Certificate::from_pem(&read(&a.ca.ca_cert)?).map_err(in_file(&a.ca.ca_cert))?;
            let key = load_key(ca_key)?;
            CertificateAuthority::from_parts(cert, Some(key), now).map_err(|e| match e {
                kubepki_ca::Error::KeyMismatch { .. } => CliError::File {
                    path: ca_key.clone(),
                    msg: format!(
                        "does not match the CA certificate {}",
                        a.ca.ca_cert.display()
                    ),
                },
                other => in_file(&a.ca.ca_cert)(other),
            })?
        }
        _ => a.ca.load()?,
    };
    let csr = Csr::from_pem_or_der(&read(&a.csr)?).map_err(in_file(&a.csr))?;
    let profile = a.profile;
    let policy = if a.clamp_to_ca {
        CaExpiry::Clamp
    } else {
        CaExpiry::Refuse
    };
    let issued = ca
        .issue_from_csr(&csr, profile, Window::kubeadm(now, validity), policy)
        .map_err(|e| match e {
            kubepki_ca::Error::OutlivesCa {
                leaf_not_after,
                ca_not_after,
            } => outlives_ca(
                &a.validity.given,
                &a.ca.ca_cert,
                &leaf_not_after,
                &ca_not_after,
            ),
            other => in_file(&a.csr)(other),
        })?;
    let mut b = batch(a.force);
    b.stage(&a.out, issued.to_pem().as_bytes(), MODE_PUBLIC)
        .map_err(write_err)?;
    commit(b)?;
    outln!(
        "wrote {} certificate {} for {} (serial {}, valid until {})",
        profile.name(),
        esc_path(&a.out),
        esc(&issued.subject().to_string()),
        issued.serial_hex(),
        kubepki_ca::rfc3339(issued.not_after())
    )?;
    Ok(())
}

// The defaults are part of the CLI contract; keep them next to the library's constants.
const _: () = {
    assert!(DEFAULT_LEAF_VALIDITY.whole_hours() == 8760);
    assert!(DEFAULT_CA_VALIDITY.whole_hours() == 87600);
};
