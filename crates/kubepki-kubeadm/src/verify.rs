//! `verify`: checks a whole tree against the plan (kubeadm has nothing like it). Every problem
//! is reported; one unreadable file does not stop the others from being checked.

use std::collections::BTreeMap;
use std::path::Path;

use kubepki_ca::{BACKDATE, CA_KEY_USAGE, Certificate, CertificateAuthority, rfc3339};
use kubepki_keys::{PrivateKey, spki_equal};
use serde::Serialize;
use time::OffsetDateTime;

use crate::kubeconfig::Kubeconfig;
use crate::plan::{CertId, KubeconfigSpec, Plan};
use crate::rules::{self, Rule, eku_names};
use crate::tree::{read_cert, read_file, read_key};

/// A check's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CheckStatus {
    /// As it must be.
    Pass,
    /// Works, but differs from the configuration.
    Warn,
    /// Broken.
    Fail,
}

/// One check.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// The outcome.
    pub status: CheckStatus,
    /// What was checked: `apiserver`, `sa`, `admin.conf`, `tree`.
    pub item: String,
    /// Which rule: `parses`, `key`, `chain`, `usages`, `subject`, `sans`, `validity`, `mode`, ...
    pub check: &'static str,
    /// Details.
    pub detail: String,
}

/// All checks of a tree.
#[derive(Clone, Debug, Serialize)]
pub struct Verification {
    /// In tree order.
    pub checks: Vec<Check>,
}

impl Verification {
    /// How many checks have `status`.
    pub fn count(&self, status: CheckStatus) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// Whether nothing failed.
    pub fn passed(&self) -> bool {
        self.count(CheckStatus::Fail) == 0
    }
}

struct Checks(Vec<Check>);

impl Checks {
    fn push(
        &mut self,
        status: CheckStatus,
        item: &str,
        check: &'static str,
        detail: impl Into<String>,
    ) {
        self.0.push(Check {
            status,
            item: item.into(),
            check,
            detail: detail.into(),
        });
    }

    /// Whether a check of `item` named `check` failed.
    fn failed(&self, item: &str, check: &str) -> bool {
        self.0
            .iter()
            .any(|c| c.item == item && c.check == check && c.status == CheckStatus::Fail)
    }

    fn result(&mut self, item: &str, check: &'static str, r: Result<String, String>) -> bool {
        match r {
            Ok(d) => {
                self.push(CheckStatus::Pass, item, check, d);
                true
            }
            Err(d) => {
                self.push(CheckStatus::Fail, item, check, d);
                false
            }
        }
    }
}

fn mode_check(c: &mut Checks, item: &str, path: &Path) {
    c.result(item, Rule::Mode.name(), rules::secret_mode(path));
}

/// Checks the tree `plan` describes at time `now`. A batch an interrupted kubepki left
/// half-moved is reported as a failure (a read-only command does not complete it).
pub fn verify(plan: &Plan, now: OffsetDateTime) -> Verification {
    let dir = &plan.cert_dir;
    let mut c = Checks(Vec::new());
    // Read-only: an unfinished batch is reported, not completed; the shared lock keeps writers
    // out while the tree is read.
    let _lock = match crate::tree::lock_for_reading(&plan.spec) {
        Ok(l) => Some(l),
        Err(e) => {
            c.push(CheckStatus::Fail, "tree", "complete", e.to_string());
            None
        }
    };
    let mut cas: BTreeMap<CertId, CertificateAuthority> = BTreeMap::new();
    let mut keys_seen: Vec<(String, Vec<u8>)> = Vec::new();
    // The tree's files as the rotation reads them (a CA file holds two CAs during a rotation:
    // docs/rotation.md).
    let tree = crate::rotate::read_tree(&plan.spec);
    let rotation =
        |target: crate::RotationTarget| crate::rotate::stage_check(&plan.spec, &tree, target);

    // CAs first: leaves are checked against them.
    for spec in plan.certs.iter().filter(|s| s.id.is_ca()) {
        let item = spec.id.name();
        let Some(cert) = load_cert(&mut c, item, &spec.id.cert_path(dir)) else {
            continue;
        };
        let ca = match CertificateAuthority::from_certificate(cert.clone()) {
            Ok(ca) => {
                c.push(
                    CheckStatus::Pass,
                    item,
                    "ca",
                    "CA:TRUE, may sign certificates",
                );
                ca
            }
            Err(e) => {
                c.push(CheckStatus::Fail, item, "ca", e.to_string());
                continue;
            }
        };
        c.result(
            item,
            "chain",
            cert.verify_signature(cert.public_key_der())
                .map(|()| "self-signed".into())
                .map_err(|e| format!("self-signature: {e}")),
        );
        c.result(
            item,
            "usages",
            if cert.key_usage() == Some(CA_KEY_USAGE) && cert.ext_key_usage().is_none() {
                Ok("KeyUsage digitalSignature, keyEncipherment, keyCertSign; no EKU".into())
            } else {
                Err(format!(
                    "KeyUsage {:?}, EKU {}; kubeadm's CAs have digitalSignature, keyEncipherment, keyCertSign and no EKU",
                    cert.key_usage(),
                    eku_names(cert.ext_key_usage().unwrap_or(&[]))
                ))
            },
        );
        c.result(item, "subject", rules::subject(&cert, spec));
        c.result(item, "validity", rules::validity(&cert, now));
        keys_seen.push((item.to_owned(), cert.public_key_der().to_vec()));
        let kp = spec.id.key_path(dir);
        if kp.exists() {
            key_check(&mut c, item, &kp, &cert);
        } else {
            c.push(
                CheckStatus::Pass,
                item,
                "key",
                format!(
                    "{} absent: external CA (this node cannot sign)",
                    kp.display()
                ),
            );
        }
        // The rotation's reading of the same files, unless the key check already failed (one
        // problem, one failure).
        if let Some(t) = crate::RotationTarget::ALL
            .into_iter()
            .find(|t| t.ca_id() == Some(spec.id))
            && !c.failed(item, "key")
        {
            c.result(item, "rotation", rotation(t));
        }
        cas.insert(spec.id, ca);
    }

    for spec in plan.certs.iter().filter(|s| !s.id.is_ca()) {
        let item = spec.id.name();
        let Some(cert) = load_cert(&mut c, item, &spec.id.cert_path(dir)) else {
            continue;
        };
        let issuer = spec.id.issuer().unwrap_or(CertId::Ca);
        chain_checks(&mut c, item, &cert, issuer, &cas);
        for (rule, r) in rules::leaf(spec, &cert, now) {
            c.result(item, rule.name(), r);
        }
        window_check(&mut c, item, &cert, plan, cas.get(&issuer));
        keys_seen.push((item.to_owned(), cert.public_key_der().to_vec()));
        key_check(&mut c, item, &spec.id.key_path(dir), &cert);
    }

    // Service-account keys.
    let (sk, sp) = (plan.sa_key_path(), plan.sa_pub_path());
    match (read_key(&sk), read_file(&sp)) {
        (Ok(key), Ok(pub_pem)) => {
            c.result(
                "sa",
                "key",
                rules::sa_pair(&key, &sk, &pub_pem)
                    .map(|()| "sa.pub holds sa.key's public key".into())
                    .map_err(|e| format!("{}: {e}", sp.display())),
            );
            keys_seen.push(("sa".into(), key.public_key_der().to_vec()));
        }
        (k, p) => {
            for e in [
                k.err().map(|e| e.to_string()),
                p.err().map(|e| e.to_string()),
            ]
            .into_iter()
            .flatten()
            {
                c.push(CheckStatus::Fail, "sa", "parses", e);
            }
        }
    }
    for p in [&sk, &sp] {
        if p.exists() {
            mode_check(&mut c, "sa", p);
        }
    }
    // The waiting keys' folder of a rotation is the owner's alone.
    let rotation_dir = dir.join(crate::rotate::ROTATION_DIR);
    if let Ok(m) = std::fs::symlink_metadata(&rotation_dir) {
        use std::os::unix::fs::PermissionsExt;
        let mode = m.permissions().mode() & 0o777;
        c.result(
            "tree",
            Rule::Mode.name(),
            if m.is_dir() && mode & 0o077 == 0 {
                Ok(format!("{} is {mode:04o}", rotation_dir.display()))
            } else if m.is_dir() {
                Err(format!(
                    "{} is {mode:04o}; it holds a CA rotation's waiting keys: chmod 700 {}",
                    rotation_dir.display(),
                    rotation_dir.display()
                ))
            } else {
                Err(format!("{} is not a folder", rotation_dir.display()))
            },
        );
    }
    if sk.exists() && sp.exists() && !c.failed("sa", "key") && !c.failed("sa", "parses") {
        c.result(
            "sa",
            "rotation",
            rotation(crate::RotationTarget::ServiceAccount),
        );
    }
    // What kubeconfigs must trust: ca.crt's CA, and both during a rotation (its record).
    let ca_bundle = crate::rotate::tree_trust(&tree, &CertId::Ca.cert_path(dir)).ok();

    for k in &plan.kubeconfigs {
        kubeconfig_checks(
            &mut c,
            plan,
            k,
            (cas.get(&CertId::Ca), ca_bundle.as_deref()),
            now,
            &mut keys_seen,
        );
    }

    // No key pair serves two purposes.
    let mut reused = Vec::new();
    for (i, (a, ka)) in keys_seen.iter().enumerate() {
        for (b, kb) in &keys_seen[i + 1..] {
            if spki_equal(ka, kb) {
                reused.push(format!("{a} and {b}"));
            }
        }
    }
    c.result(
        "tree",
        "distinct keys",
        if reused.is_empty() {
            Ok(format!("{} key pairs, none shared", keys_seen.len()))
        } else {
            Err(format!(
                "the same key pair is used by {}",
                reused.join("; ")
            ))
        },
    );
    Verification { checks: c.0 }
}

fn load_cert(c: &mut Checks, item: &str, path: &Path) -> Option<Certificate> {
    if !path.exists() {
        c.push(
            CheckStatus::Fail,
            item,
            "parses",
            format!("{} is missing", path.display()),
        );
        return None;
    }
    match read_cert(path) {
        Ok(cert) => {
            c.push(
                CheckStatus::Pass,
                item,
                "parses",
                format!("{}", path.display()),
            );
            Some(cert)
        }
        Err(e) => {
            c.push(CheckStatus::Fail, item, "parses", e.to_string());
            None
        }
    }
}

fn key_check(c: &mut Checks, item: &str, path: &Path, cert: &Certificate) {
    match read_key(path) {
        Ok(k) => {
            c.result(
                item,
                "key",
                if k.matches_public_key(cert.public_key_der()) {
                    Ok(format!("{} matches the certificate", path.display()))
                } else {
                    Err(format!(
                        "{} does not belong to the certificate",
                        path.display()
                    ))
                },
            );
            mode_check(c, item, path);
        }
        Err(e) => c.push(CheckStatus::Fail, item, "key", e.to_string()),
    }
}

fn chain_checks(
    c: &mut Checks,
    item: &str,
    cert: &Certificate,
    issuer: CertId,
    cas: &BTreeMap<CertId, CertificateAuthority>,
) {
    match cas.get(&issuer) {
        Some(ca) => {
            c.result(
                item,
                "chain",
                ca.check_issued(cert)
                    .map(|()| format!("signed by {}", issuer.name()))
                    .map_err(|e| e.to_string()),
            );
        }
        None => c.push(
            CheckStatus::Fail,
            item,
            "chain",
            format!("its CA {} could not be read", issuer.name()),
        ),
    }
    let others: Vec<&str> = cas
        .iter()
        .filter(|(id, ca)| **id != issuer && ca.check_issued(cert).is_ok())
        .map(|(id, _)| id.name())
        .collect();
    c.result(
        item,
        "chain",
        if others.is_empty() {
            Ok("not valid under the tree's other CAs".into())
        } else {
            Err(format!(
                "also verifies under {}: the CAs share a key",
                others.join(", ")
            ))
        },
    );
}

fn window_check(
    c: &mut Checks,
    item: &str,
    cert: &Certificate,
    plan: &Plan,
    ca: Option<&CertificateAuthority>,
) {
    if let Some(ca) = ca
        && cert.not_after() > ca.certificate().not_after()
    {
        c.push(
            CheckStatus::Fail,
            item,
            "validity",
            format!(
                "outlives its CA ({} > {})",
                rfc3339(cert.not_after()),
                rfc3339(ca.certificate().not_after())
            ),
        );
    }
    if plan.version.leaf_window_from_config() {
        let probe = plan.leaf_window(cert.not_before() + BACKDATE, cert.not_before());
        let want = probe.not_after - probe.not_before;
        let have = cert.not_after() - cert.not_before();
        let clamped = ca.is_some_and(|a| cert.not_after() == a.certificate().not_after());
        if have != want && !clamped {
            c.push(
                CheckStatus::Warn,
                item,
                "validity",
                format!(
                    "lasts {}h{}m, the configuration gives {}h{}m",
                    have.whole_hours(),
                    have.whole_minutes() % 60,
                    want.whole_hours(),
                    want.whole_minutes() % 60
                ),
            );
        }
    }
}

fn kubeconfig_checks(
    c: &mut Checks,
    plan: &Plan,
    k: &KubeconfigSpec,
    (ca, bundle): (Option<&CertificateAuthority>, Option<&[Certificate]>),
    now: OffsetDateTime,
    keys_seen: &mut Vec<(String, Vec<u8>)>,
) {
    let item = k.id.file_name();
    let path = plan.kubeconfig_path(k.id);
    if !path.exists() {
        if k.id == crate::plan::KubeconfigId::SuperAdmin {
            c.push(
                CheckStatus::Warn,
                item,
                "parses",
                format!(
                    "{} is absent: normal on every control-plane node but the one that ran init",
                    path.display()
                ),
            );
        } else {
            c.push(
                CheckStatus::Fail,
                item,
                "parses",
                format!("{} is missing", path.display()),
            );
        }
        return;
    }
    mode_check(c, item, &path);
    let kc = match read_file(&path).and_then(|b| Kubeconfig::from_slice(&path, &b)) {
        Ok(kc) => kc,
        Err(e) => {
            c.push(CheckStatus::Fail, item, "parses", e.to_string());
            return;
        }
    };
    let parts = (|| {
        let ca_pem = kc.current_ca_pem(&path)?;
        // Embedded data or the files the user names (kubelet.conf after TLS bootstrap).
        let cert_pem = kc
            .current_client_cert_pem(&path)?
            .ok_or_else(|| kc.no_client_cert(&path))?;
        let key_pem = kc
            .current_client_key_pem(&path)?
            .ok_or_else(|| kc.no_client_key(&path))?;
        let (cluster, _) = kc.current(&path)?;
        Ok::<_, crate::Error>((ca_pem, cert_pem, key_pem, cluster.cluster.server.clone()))
    })();
    let (ca_pem, cert_pem, key_pem, server) = match parts {
        Ok(p) => p,
        Err(e) => {
            c.push(CheckStatus::Fail, item, "parses", e.to_string());
            return;
        }
    };
    let (cert, key) = match (
        Certificate::from_pem(&cert_pem),
        PrivateKey::from_pem(&key_pem),
    ) {
        (Ok(cert), Ok(key)) => (cert, key),
        (a, b) => {
            let why = [
                a.err().map(|e| e.to_string()),
                b.err().map(|e| e.to_string()),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; ");
            c.push(
                CheckStatus::Fail,
                item,
                "parses",
                format!("{}: {why}", path.display()),
            );
            return;
        }
    };
    c.push(
        CheckStatus::Pass,
        item,
        "parses",
        path.display().to_string(),
    );
    if let Some(ca) = ca {
        // Every certificate of ca.crt, in its order (two during a CA rotation).
        let want: Vec<&[u8]> = match bundle {
            Some(b) => b.iter().map(Certificate::to_der).collect(),
            None => vec![ca.certificate().to_der()],
        };
        let theirs = Certificate::chain_from_pem(&ca_pem).unwrap_or_default();
        let same =
            theirs.len() == want.len() && theirs.iter().zip(&want).all(|(t, w)| t.to_der() == *w);
        c.result(
            item,
            "ca data",
            if same {
                Ok(format!(
                    "certificate-authority-data is ca.crt ({} CA certificate{})",
                    want.len(),
                    if want.len() == 1 { "" } else { "s" }
                ))
            } else {
                Err(format!(
                    "certificate-authority-data ({} certificate{}) is not what this tree's ca.crt makes clients trust ({}); during a CA rotation, run the current phase again (docs/rotation.md)",
                    theirs.len(),
                    if theirs.len() == 1 { "" } else { "s" },
                    want.len()
                ))
            },
        );
    }
    for (rule, r) in rules::kubeconfig(k, &cert, &key, ca, now) {
        c.result(item, rule.name(), r);
    }
    if server != k.server {
        c.push(
            CheckStatus::Warn,
            item,
            "server",
            format!("server is {server}, the configuration says {}", k.server),
        );
    } else {
        c.push(CheckStatus::Pass, item, "server", server);
    }
    keys_seen.push((item.to_owned(), cert.public_key_der().to_vec()));
}
