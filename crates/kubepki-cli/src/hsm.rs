//! CA keys in a PKCS#11 token: `--key-uri`, `--ca-key-uri` and friends, `--pkcs11-module` and
//! `KUBEPKI_PKCS11_PIN` (the `pkcs11` cargo feature, on by default; without it the flags are
//! refused).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use kubepki_ca::{CaSigningKey, Certificate, CertificateAuthority};
use kubepki_keys::KeyAlgorithm;

use crate::cmd::read;
use crate::errors::{CliError, in_file};

/// `--pkcs11-module`, for every command that takes a CA key URI.
#[derive(Args, Debug, Default, Clone)]
pub struct Pkcs11Flags {
    /// The PKCS#11 library for key URIs without `module-path=` (the PIN comes from the URI's
    /// `pin-source=FILE` or the environment variable KUBEPKI_PKCS11_PIN).
    #[arg(long, value_name = "PATH")]
    pub pkcs11_module: Option<PathBuf>,
}

/// The CA keys of a kubeadm tree held in a token (`init`, `init phase certs`, `certs renew`,
/// `certs check-expiration`): used instead of `ca.key`, `front-proxy-ca.key`, `etcd/ca.key`,
/// which must then not exist.
#[derive(Args, Debug, Default, Clone)]
pub struct TreeKeyFlags {
    /// The cluster CA's key in a PKCS#11 token (a `pkcs11:` URI), instead of ca.key.
    #[arg(long, global = true, value_name = "PKCS11_URI")]
    pub ca_key_uri: Option<String>,
    /// The front-proxy CA's key in a PKCS#11 token, instead of front-proxy-ca.key.
    #[arg(long, global = true, value_name = "PKCS11_URI")]
    pub front_proxy_ca_key_uri: Option<String>,
    /// The etcd CA's key in a PKCS#11 token, instead of etcd/ca.key.
    #[arg(long, global = true, value_name = "PKCS11_URI")]
    pub etcd_ca_key_uri: Option<String>,
    /// The PKCS#11 library for key URIs without `module-path=`.
    #[arg(long = "pkcs11-module", global = true, value_name = "PATH")]
    pub pkcs11_module: Option<PathBuf>,
}

impl TreeKeyFlags {
    /// The URIs given, by CA.
    fn given(&self) -> Vec<(kubepki_kubeadm::CertId, &'static str, &str)> {
        use kubepki_kubeadm::CertId;
        [
            (CertId::Ca, "--ca-key-uri", self.ca_key_uri.as_deref()),
            (
                CertId::FrontProxyCa,
                "--front-proxy-ca-key-uri",
                self.front_proxy_ca_key_uri.as_deref(),
            ),
            (
                CertId::EtcdCa,
                "--etcd-ca-key-uri",
                self.etcd_ca_key_uri.as_deref(),
            ),
        ]
        .into_iter()
        .filter_map(|(id, flag, uri)| uri.map(|u| (id, flag, u)))
        .collect()
    }

    /// The first flag of these given, for commands where no CA key signs.
    pub fn first_given(&self) -> Option<&'static str> {
        self.given()
            .first()
            .map(|(_, flag, _)| *flag)
            .or(self.pkcs11_module.as_ref().map(|_| "--pkcs11-module"))
    }

    /// Checks every URI given (before anything slow happens).
    pub fn check(&self) -> Result<(), CliError> {
        for (_, flag, uri) in self.given() {
            Hsm::check_uri(flag, uri)?;
        }
        Ok(())
    }

    /// Refuses `--etcd-ca-key-uri` for a tree without an etcd CA (external etcd): the key
    /// would be opened and silently not used.
    pub fn check_plan(&self, plan: &kubepki_kubeadm::Plan) -> Result<(), CliError> {
        if self.etcd_ca_key_uri.is_some() && plan.cert(kubepki_kubeadm::CertId::EtcdCa).is_none() {
            return Err(CliError::Usage(
                "--etcd-ca-key-uri: this tree has no etcd CA (etcd is external)".into(),
            ));
        }
        Ok(())
    }

    /// Opens the keys the URIs name, one token session per token.
    pub fn open(&self) -> Result<Vec<kubepki_kubeadm::HeldCaKey>, CliError> {
        let given = self.given();
        if given.is_empty() {
            return Ok(Vec::new());
        }
        let hsm = Hsm::new(&Pkcs11Flags {
            pkcs11_module: self.pkcs11_module.clone(),
        });
        given
            .into_iter()
            .map(|(id, flag, uri)| Ok((id, hsm.key(flag, uri)?)))
            .collect()
    }
}

/// The token sessions of one command: one per token, shared by every CA key of the command.
pub struct Hsm {
    #[cfg(feature = "pkcs11")]
    provider: kubepki_pkcs11::Pkcs11Provider,
}

/// A URI given on the command line with `pin-value=`: refused, as the command line of a process
/// can be read by every user of the machine.
#[cfg(feature = "pkcs11")]
fn parse(flag: &str, text: &str) -> Result<kubepki_pkcs11::Pkcs11Uri, CliError> {
    let uri = kubepki_pkcs11::Pkcs11Uri::parse(text)
        .map_err(|e| CliError::Usage(format!("{flag}: {e}")))?;
    if uri.pin_value().is_some() {
        return Err(CliError::Usage(format!(
            "{flag}: {uri}: pin-value is refused on the command line (other users can read it in the process list); use pin-source=FILE or the environment variable {}",
            kubepki_pkcs11::PIN_ENV
        )));
    }
    Ok(uri)
}

#[cfg(not(feature = "pkcs11"))]
fn no_support(flag: &str) -> CliError {
    let why = if cfg!(target_feature = "crt-static") {
        "the static release binary cannot load a PKCS#11 module (docs/hsm.md); use the dynamically linked kubepki"
    } else {
        "this kubepki was built without PKCS#11 support (cargo feature \"pkcs11\")"
    };
    CliError::Usage(format!("{flag}: {why}"))
}

impl Hsm {
    /// No session yet: each opens on first use.
    pub fn new(flags: &Pkcs11Flags) -> Self {
        #[cfg(feature = "pkcs11")]
        {
            let mut options = kubepki_pkcs11::Pkcs11Options::from_env();
            options.module = flags.pkcs11_module.clone();
            Hsm {
                provider: kubepki_pkcs11::Pkcs11Provider::new(options),
            }
        }
        #[cfg(not(feature = "pkcs11"))]
        {
            let _ = flags;
            Hsm {}
        }
    }

    /// Generates a CA key pair of `alg` inside the token `uri` (given as `flag`) names.
    pub fn generate(
        &self,
        flag: &str,
        uri: &str,
        alg: KeyAlgorithm,
    ) -> Result<Arc<dyn CaSigningKey>, CliError> {
        #[cfg(feature = "pkcs11")]
        {
            let uri = parse(flag, uri)?;
            let key = self
                .provider
                .generate(&uri, alg)
                .map_err(crate::errors::other_err)?;
            Ok(key)
        }
        #[cfg(not(feature = "pkcs11"))]
        {
            let _ = (uri, alg);
            Err(no_support(flag))
        }
    }

    /// The key the token `uri` (given as `flag`) names.
    pub fn key(&self, flag: &str, uri: &str) -> Result<Arc<dyn CaSigningKey>, CliError> {
        #[cfg(feature = "pkcs11")]
        {
            let parsed = parse(flag, uri)?;
            let key = self
                .provider
                .key(&parsed)
                .map_err(crate::errors::other_err)?;
            Ok(key)
        }
        #[cfg(not(feature = "pkcs11"))]
        {
            let _ = uri;
            Err(no_support(flag))
        }
    }

    /// Checks that `uri` (given as `flag`) can be used, before anything slow happens.
    pub fn check_uri(flag: &str, uri: &str) -> Result<(), CliError> {
        #[cfg(feature = "pkcs11")]
        {
            parse(flag, uri).map(|_| ())
        }
        #[cfg(not(feature = "pkcs11"))]
        {
            let _ = uri;
            Err(no_support(flag))
        }
    }

    /// The CA of the certificate file `cert` with its key in the token `uri` (given as `flag`)
    /// names: the token's key must be the certificate's, and the CA valid now.
    pub fn load_ca(
        &self,
        cert: &Path,
        flag: &str,
        uri: &str,
    ) -> Result<CertificateAuthority, CliError> {
        let c = Certificate::from_pem(&read(cert)?).map_err(in_file(cert))?;
        #[cfg(feature = "pkcs11")]
        {
            let key = self.key(flag, uri)?;
            // The URI as errors show it (the PIN redacted).
            let parsed = parse(flag, uri)?;
            let describe = |spki: &[u8]| {
                kubepki_keys::describe_public_key(spki).unwrap_or_else(|_| "unknown".into())
            };
            let (token_has, cert_has) =
                (describe(key.public_key_der()), describe(c.public_key_der()));
            let ca = CertificateAuthority::from_certificate(c).map_err(in_file(cert))?;
            let ca = ca.with_signing_key(key).map_err(|e| match e {
                kubepki_ca::Error::KeyMismatch { .. } => CliError::Other(format!(
                    "{parsed}: the token's key ({token_has}) is not the key of the CA certificate {} ({cert_has})",
                    cert.display()
                )),
                other => CliError::Other(format!("{parsed}: {other}")),
            })?;
            ca.certificate()
                .check_time(time::OffsetDateTime::now_utc())
                .map_err(in_file(cert))?;
            Ok(ca)
        }
        #[cfg(not(feature = "pkcs11"))]
        {
            let _ = (c, uri);
            Err(no_support(flag))
        }
    }
}

/// `--ca-cert` with `--ca-key` or `--ca-key-uri`: the CA of `sign` and `sign-request`.
#[derive(Args, Debug)]
pub struct SigningCaFlags {
    /// The CA certificate.
    #[arg(long)]
    pub ca_cert: PathBuf,
    /// The CA key.
    #[arg(long, required_unless_present = "ca_key_uri")]
    pub ca_key: Option<PathBuf>,
    /// The CA key in a PKCS#11 token (a `pkcs11:` URI), instead of --ca-key.
    #[arg(long, value_name = "PKCS11_URI", conflicts_with = "ca_key")]
    pub ca_key_uri: Option<String>,
    #[command(flatten)]
    pub pkcs11: Pkcs11Flags,
}

impl SigningCaFlags {
    /// The CA from the key file or the token (see [`load_ca`]).
    pub fn load(&self) -> Result<CertificateAuthority, CliError> {
        load_ca(
            &Hsm::new(&self.pkcs11),
            &self.ca_cert,
            self.ca_key.as_deref(),
            "--ca-key-uri",
            self.ca_key_uri.as_deref(),
        )
    }
}

/// A CA from its certificate and either its key file or its key URI (exactly one given).
pub fn load_ca(
    hsm: &Hsm,
    cert: &Path,
    key: Option<&Path>,
    key_flag: &str,
    uri: Option<&str>,
) -> Result<CertificateAuthority, CliError> {
    match (key, uri) {
        (Some(key), None) => crate::cmd::load_ca(cert, key),
        (None, Some(uri)) => hsm.load_ca(cert, key_flag, uri),
        (Some(_), Some(_)) => Err(CliError::Usage(format!(
            "{key_flag} and the CA key file are alternatives: give one"
        ))),
        (None, None) => Err(CliError::Usage(format!(
            "the CA key is needed: a key file or {key_flag}"
        ))),
    }
}
