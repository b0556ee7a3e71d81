//! Renewal through an external CA (issue 19, item 10; docs/certs.md, "Renewal through an
//! external CA"): `write_renewal_csrs` on the node, `sign_renewal_csrs` where the CA keys are,
//! `install_renewal` back on the node, and every refusal of the last two leaving the tree as it
//! was.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kubepki_ca::{CaExpiry, Certificate, IssueSpec, Window};
use kubepki_csr::{Csr, CsrBuilder, Subject};
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use kubepki_kubeadm::{
    CertId, CheckStatus, ClusterSpec, CsrStatus, Error, InstallStatus, Kubeconfig, Plan,
    RenewTarget, Selection, Signed, SigningCas, init_tree, install_renewal, renew_targets,
    renewal_files, sign_renewal_csrs, verify, write_renewal_csrs,
};
use time::Duration;

mod common;
use common::{CAS, now, signing_cas, snapshot, spec_in};

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn spec(dir: &Path) -> ClusterSpec {
    spec_in(dir, "n1")
}

/// A node whose tree was made 300 days ago, its CA keys moved to a CA side, and a CSR folder.
struct Setup {
    node: tempfile::TempDir,
    ca: tempfile::TempDir,
    csrs: tempfile::TempDir,
}

impl Setup {
    fn new() -> Res<Setup> {
        let s = Setup {
            node: tempfile::tempdir()?,
            ca: tempfile::tempdir()?,
            csrs: tempfile::tempdir()?,
        };
        let plan = s.plan()?;
        init_tree(&plan, &Selection::all(), now() - Duration::days(300), false)?;
        fs::create_dir_all(s.ca.path().join("pki/etcd"))?;
        for id in CAS {
            let to = s.ca.path().join("pki");
            fs::copy(id.cert_path(&plan.cert_dir), id.cert_path(&to))?;
            fs::rename(id.key_path(&plan.cert_dir), id.key_path(&to))?;
        }
        Ok(s)
    }

    fn spec(&self) -> ClusterSpec {
        spec(self.node.path())
    }

    fn plan(&self) -> Res<Plan> {
        Ok(Plan::new(&self.spec())?)
    }

    /// The CA side's plan: the node's configuration, the CA folder as `--cert-dir`.
    fn ca_plan(&self) -> Res<Plan> {
        Ok(Plan::new(&spec(self.ca.path()))?)
    }

    fn cas(&self) -> Res<SigningCas> {
        signing_cas(&self.ca.path().join("pki"), now())
    }

    fn dir(&self) -> &Path {
        self.csrs.path()
    }

    /// The current certificate of `t` in the node's tree.
    fn live(&self, t: RenewTarget) -> Res<Certificate> {
        let spec = self.spec();
        Ok(match t {
            RenewTarget::Cert(c) => Certificate::from_pem(&fs::read(c.cert_path(&spec.cert_dir))?)?,
            RenewTarget::Kubeconfig(k) => {
                let p = spec.kubeconfig_dir.join(k.file_name());
                let kc = Kubeconfig::from_slice(&p, &fs::read(&p)?)?;
                Certificate::from_pem(&kc.current_client_cert_pem(&p)?.ok_or("no client cert")?)?
            }
        })
    }

    /// `--csr-only all` then `sign-csrs --csr-dir`.
    fn csrs_signed(&self) -> R {
        let spec = self.spec();
        write_renewal_csrs(&spec, &renew_targets(&spec), None, self.dir(), false)?;
        sign_renewal_csrs(&self.ca_plan()?, &self.cas()?, self.dir(), now())?;
        Ok(())
    }
}

#[test]
fn the_loop_renews_every_item_with_a_new_key_and_serial_and_the_old_identity() -> R {
    let s = Setup::new()?;
    let spec = s.spec();
    let targets = renew_targets(&spec);
    let before: Vec<Certificate> = targets.iter().map(|t| s.live(*t)).collect::<Res<_>>()?;

    // The node: new keys and CSRs in the CSR folder, nothing of the tree touched.
    let tree = snapshot(s.node.path())?;
    let written = write_renewal_csrs(&spec, &targets, None, s.dir(), false)?;
    assert_eq!(
        snapshot(s.node.path())?,
        tree,
        "--csr-only changed the tree"
    );
    assert_eq!(written.len(), targets.len());
    for (w, old) in written.iter().zip(&before) {
        assert_eq!(
            w.status,
            CsrStatus::Written {
                algorithm: KeyAlgorithm::EcdsaP256
            }
        );
        assert_eq!(w.files, renewal_files(s.dir(), w.target));
        let mode = fs::metadata(&w.files.key)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", w.files.key.display());
        let csr = Csr::from_pem(&fs::read(&w.files.csr)?)?;
        let key = PrivateKey::from_pem(&fs::read(&w.files.key)?)?;
        assert!(key.matches_public_key(csr.public_key_der()));
        assert_eq!(csr.subject(), old.subject(), "{}", w.target.name());
        assert_eq!(csr.subject_alt_names(), old.subject_alt_names());
    }
    // kubeadm's names in the CSR folder.
    for f in [
        "apiserver.key",
        "etcd-server.csr",
        "admin.conf.key",
        "admin.conf.csr",
    ] {
        assert!(s.dir().join(f).exists(), "{f}");
    }

    // The CA side: `<name>.crt` beside each CSR.
    let signed = sign_renewal_csrs(&s.ca_plan()?, &s.cas()?, s.dir(), now())?;
    assert_eq!(signed.len(), targets.len());
    for (t, r) in &signed {
        assert_eq!(r, &Signed::Written(renewal_files(s.dir(), *t).crt));
    }

    // The node again: installed as one batch, verify passes.
    let done = install_renewal(&spec, &targets, true, s.dir(), now())?;
    assert!(
        done.iter()
            .all(|d| matches!(d.status, InstallStatus::Installed { .. }))
    );
    let v = verify(&s.plan()?, now());
    assert!(
        v.passed(),
        "{:?}",
        v.checks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail)
            .collect::<Vec<_>>()
    );
    for (t, old) in targets.iter().zip(&before) {
        let new = s.live(*t)?;
        assert_ne!(new.serial(), old.serial(), "{}", t.name());
        assert_ne!(new.public_key_der(), old.public_key_der(), "{}", t.name());
        assert_eq!(new.subject(), old.subject(), "{}", t.name());
        assert_eq!(new.subject_alt_names(), old.subject_alt_names());
        assert_eq!(new.ext_key_usage(), old.ext_key_usage());
        let key = PrivateKey::from_pem(&fs::read(renewal_files(s.dir(), *t).key)?)?;
        assert!(key.matches_public_key(new.public_key_der()), "{}", t.name());
        assert!(new.not_after() > old.not_after());
    }
    // Again: everything is already installed, nothing changes.
    let tree = snapshot(s.node.path())?;
    let again = install_renewal(&spec, &targets, true, s.dir(), now())?;
    assert!(
        again
            .iter()
            .all(|d| d.status == InstallStatus::AlreadyInstalled)
    );
    assert_eq!(snapshot(s.node.path())?, tree);
    Ok(())
}

/// Runs `install_renewal` for all and checks it is refused naming `file` with `needle`, and
/// that no file of the node changed.
fn refused(s: &Setup, file: &str, needle: &str) -> R {
    let spec = s.spec();
    let tree = snapshot(s.node.path())?;
    let e = install_renewal(&spec, &renew_targets(&spec), true, s.dir(), now())
        .err()
        .ok_or("installed")?;
    let Error::RenewalRefused { refused } = &e else {
        return Err(format!("unexpected error {e}").into());
    };
    assert!(
        refused
            .iter()
            .any(|(p, why)| p.ends_with(file) && why.contains(needle)),
        "{e}"
    );
    assert_eq!(
        snapshot(s.node.path())?,
        tree,
        "a refused batch changed the tree"
    );
    Ok(())
}

#[test]
fn a_certificate_of_another_ca_is_refused_and_nothing_installed() -> R {
    let s = Setup::new()?;
    s.csrs_signed()?;
    // A stranger CA with the cluster CA's name signs the apiserver's key.
    let other = Setup::new()?;
    let dir = s.dir();
    let key = PrivateKey::from_pem(&fs::read(dir.join("apiserver.key"))?)?;
    let plan = s.ca_plan()?;
    let c = plan.cert(CertId::Apiserver).ok_or("no apiserver")?;
    let csr = CsrBuilder::new(c.subject.clone())
        .subject_alt_names(c.subject_alt_names.clone())
        .sign(&key)?;
    let scratch = tempfile::tempdir()?;
    fs::write(scratch.path().join("apiserver.csr"), csr.to_pem())?;
    sign_renewal_csrs(&other.ca_plan()?, &other.cas()?, scratch.path(), now())?;
    fs::copy(
        scratch.path().join("apiserver.crt"),
        dir.join("apiserver.crt"),
    )?;
    refused(&s, "apiserver.crt", "was not issued by the ca of this tree")
}

#[test]
fn a_certificate_for_another_identity_is_refused_and_nothing_installed() -> R {
    let s = Setup::new()?;
    s.csrs_signed()?;
    // The controller manager's certificate and key, offered as the scheduler's: the key and the
    // CA are right, the identity is not.
    let dir = s.dir();
    for ext in ["key", "crt"] {
        fs::copy(
            dir.join(format!("controller-manager.conf.{ext}")),
            dir.join(format!("scheduler.conf.{ext}")),
        )?;
    }
    refused(
        &s,
        "scheduler.conf.crt",
        "is not the identity of the certificate it replaces: CN is \"system:kube-controller-manager\", must be \"system:kube-scheduler\"",
    )
}

#[test]
fn a_certificate_for_another_key_is_refused_and_nothing_installed() -> R {
    let s = Setup::new()?;
    s.csrs_signed()?;
    let dir = s.dir();
    fs::copy(dir.join("etcd-peer.key"), dir.join("etcd-server.key"))?;
    refused(
        &s,
        "etcd-server.crt",
        "its public key is not the one of etcd-server.key",
    )
}

#[test]
fn an_unsigned_item_is_refused_and_nothing_installed() -> R {
    let s = Setup::new()?;
    s.csrs_signed()?;
    fs::remove_file(s.dir().join("front-proxy-client.crt"))?;
    refused(&s, "front-proxy-client.crt", "has not been signed")
}

#[test]
fn csr_only_never_replaces_files_of_the_csr_folder_unless_asked() -> R {
    let s = Setup::new()?;
    let spec = s.spec();
    let targets = renew_targets(&spec);
    write_renewal_csrs(&spec, &targets, None, s.dir(), false)?;
    let first = snapshot(s.dir())?;
    let e = write_renewal_csrs(&spec, &targets, None, s.dir(), false)
        .err()
        .ok_or("replaced")?;
    assert!(e.to_string().contains("apiserver.key: exists"), "{e}");
    assert_eq!(snapshot(s.dir())?, first);
    write_renewal_csrs(&spec, &targets, Some(KeyAlgorithm::Rsa2048), s.dir(), true)?;
    let key = PrivateKey::from_pem(&fs::read(s.dir().join("apiserver.key"))?)?;
    assert_eq!(key.algorithm(), KeyAlgorithm::Rsa2048);
    // The certificate folder is not a CSR folder: the new keys would take the live names.
    let tree = snapshot(s.node.path())?;
    let e = write_renewal_csrs(&spec, &targets, None, &spec.cert_dir, true)
        .err()
        .ok_or("wrote into the certificate folder")?;
    assert!(e.to_string().contains("certificate folder"), "{e}");
    assert_eq!(snapshot(s.node.path())?, tree);
    Ok(())
}

#[test]
fn sign_refuses_a_csr_for_another_identity_and_writes_nothing() -> R {
    let s = Setup::new()?;
    let spec = s.spec();
    write_renewal_csrs(&spec, &renew_targets(&spec), None, s.dir(), false)?;
    // An extra O system:masters on the apiserver-kubelet-client CSR.
    let key = PrivateKey::from_pem(&fs::read(s.dir().join("apiserver-kubelet-client.key"))?)?;
    let csr = CsrBuilder::new(
        Subject::cn("kube-apiserver-kubelet-client")
            .with_organizations(["kubeadm:cluster-admins", "system:masters"]),
    )
    .sign(&key)?;
    fs::write(s.dir().join("apiserver-kubelet-client.csr"), csr.to_pem())?;
    let before = snapshot(s.dir())?;
    let e = sign_renewal_csrs(&s.ca_plan()?, &s.cas()?, s.dir(), now())
        .err()
        .ok_or("signed")?;
    let msg = e.to_string();
    assert!(
        msg.contains("apiserver-kubelet-client.csr") && msg.contains("extra O \"system:masters\""),
        "{msg}"
    );
    assert_eq!(snapshot(s.dir())?, before, "a refused signing wrote files");
    Ok(())
}

/// Issues, with the cluster CA, a certificate for the key in `DIR/scheduler.conf.key` with the
/// identity of the scheduler's current certificate, valid in `window`, as
/// `DIR/scheduler.conf.crt`.
fn scheduler_cert_valid(s: &Setup, window: Window) -> R {
    let old = s.live(RenewTarget::Kubeconfig(
        kubepki_kubeadm::KubeconfigId::Scheduler,
    ))?;
    let key = PrivateKey::from_pem(&fs::read(s.dir().join("scheduler.conf.key"))?)?;
    let ca = s.cas()?.ca.ok_or("no ca")?;
    let spec = IssueSpec::new(
        old.subject().clone(),
        key.public_key_der(),
        window,
        CaExpiry::Clamp,
    )
    .with_ext_key_usage(old.ext_key_usage().unwrap_or(&[]).to_vec())
    .with_subject_alt_names(old.subject_alt_names());
    fs::write(
        s.dir().join("scheduler.conf.crt"),
        ca.issue(&spec)?.to_pem(),
    )?;
    Ok(())
}

#[test]
fn an_expired_or_not_yet_valid_certificate_is_refused_and_nothing_installed() -> R {
    let s = Setup::new()?;
    s.csrs_signed()?;
    let t = now();
    scheduler_cert_valid(
        &s,
        Window::new(t - Duration::days(10), t - Duration::days(1)),
    )?;
    refused(&s, "scheduler.conf.crt", "expired at")?;
    scheduler_cert_valid(
        &s,
        Window::new(t + Duration::hours(1), t + Duration::days(365)),
    )?;
    refused(&s, "scheduler.conf.crt", "is not valid before")?;
    // Within the clock skew allowed, it is installed.
    scheduler_cert_valid(
        &s,
        Window::new(t + Duration::minutes(2), t + Duration::days(365)),
    )?;
    let spec = s.spec();
    install_renewal(&spec, &renew_targets(&spec), true, s.dir(), now())?;
    Ok(())
}

#[test]
fn the_old_certificate_offered_again_is_refused() -> R {
    let s = Setup::new()?;
    s.csrs_signed()?;
    // The current key and certificate of the apiserver, put in the CSR folder as if signed.
    let spec = s.spec();
    fs::copy(
        CertId::Apiserver.cert_path(&spec.cert_dir),
        s.dir().join("apiserver.crt"),
    )?;
    fs::copy(
        CertId::Apiserver.key_path(&spec.cert_dir),
        s.dir().join("apiserver.key"),
    )?;
    refused(
        &s,
        "apiserver.crt",
        "has the key of the certificate it replaces",
    )?;
    refused(
        &s,
        "apiserver.crt",
        "has the serial number of the certificate it replaces",
    )
}

#[test]
fn a_kubeconfig_naming_its_certificate_and_key_files_gets_them_replaced() -> R {
    use base64::Engine as _;
    let s = Setup::new()?;
    let spec = s.spec();
    // admin.conf's user names admin.crt and admin.key instead of embedding them.
    let conf = spec.kubeconfig_dir.join("admin.conf");
    let mut kc = Kubeconfig::from_slice(&conf, &fs::read(&conf)?)?;
    let cert_pem = kc.current_client_cert_pem(&conf)?.ok_or("no cert")?;
    let user = kc.users.first_mut().ok_or("no user")?;
    let key_b64 = user.user.client_key_data.take().ok_or("no key")?;
    let key_pem = base64::engine::general_purpose::STANDARD.decode(key_b64)?;
    user.user.client_certificate_data = None;
    user.user.client_certificate = Some("admin.crt".into());
    user.user.client_key = Some("admin.key".into());
    fs::write(spec.kubeconfig_dir.join("admin.crt"), &cert_pem)?;
    fs::write(spec.kubeconfig_dir.join("admin.key"), &key_pem)?;
    fs::set_permissions(
        spec.kubeconfig_dir.join("admin.key"),
        fs::Permissions::from_mode(0o600),
    )?;
    fs::write(&conf, kc.to_yaml()?.as_bytes())?;
    let conf_bytes = fs::read(&conf)?;
    let old = Certificate::from_pem(&cert_pem)?;

    let targets = [RenewTarget::Kubeconfig(
        kubepki_kubeadm::KubeconfigId::Admin,
    )];
    write_renewal_csrs(&spec, &targets, None, s.dir(), false)?;
    sign_renewal_csrs(&s.ca_plan()?, &s.cas()?, s.dir(), now())?;
    let done = install_renewal(&spec, &targets, false, s.dir(), now())?;
    let files = &done.first().ok_or("nothing installed")?.files;
    assert!(files.iter().any(|f| f.ends_with("admin.crt")), "{files:?}");
    assert!(files.iter().any(|f| f.ends_with("admin.key")), "{files:?}");

    let new = Certificate::from_pem(&fs::read(spec.kubeconfig_dir.join("admin.crt"))?)?;
    let key = PrivateKey::from_pem(&fs::read(spec.kubeconfig_dir.join("admin.key"))?)?;
    assert!(key.matches_public_key(new.public_key_der()));
    assert_eq!(
        fs::read(spec.kubeconfig_dir.join("admin.key"))?,
        fs::read(s.dir().join("admin.conf.key"))?
    );
    assert_ne!(new.serial(), old.serial());
    assert_eq!(new.subject(), old.subject());
    let mode = fs::metadata(spec.kubeconfig_dir.join("admin.key"))?
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // The kubeconfig itself only names the files: it is left as it was.
    assert_eq!(fs::read(&conf)?, conf_bytes);
    Ok(())
}

/// Signs, with openssl and the cluster CA of the CA side, the key in `DIR/scheduler.conf.key`
/// with the identity of the scheduler's current certificate and the extensions `ext` (an
/// openssl extension file section), valid for `days`, as `DIR/scheduler.conf.crt`.
fn scheduler_cert_openssl(s: &Setup, ext: &str, days: u32) -> R {
    scheduler_cert_openssl_with(s, ext, days, &[])
}

/// [`scheduler_cert_openssl`] with more `openssl x509 -req` arguments (`-sha1`).
fn scheduler_cert_openssl_with(s: &Setup, ext: &str, days: u32, more: &[&str]) -> R {
    use std::process::Command;
    let dir = s.dir();
    let scratch = tempfile::tempdir()?;
    let extfile = scratch.path().join("ext.cnf");
    fs::write(&extfile, format!("[v3]\n{ext}\n"))?;
    let ca = s.ca.path().join("pki");
    let st = Command::new("openssl")
        .args(["x509", "-req", "-in"])
        .arg(dir.join("scheduler.conf.csr"))
        .arg("-CA")
        .arg(ca.join("ca.crt"))
        .arg("-CAkey")
        .arg(ca.join("ca.key"))
        .args(["-set_serial", "4242", "-days", &days.to_string()])
        .arg("-extfile")
        .arg(&extfile)
        .args(more)
        .args(["-extensions", "v3", "-out"])
        .arg(dir.join("scheduler.conf.crt"))
        .status()?;
    if !st.success() {
        return Err("openssl x509 -req failed".into());
    }
    Ok(())
}

/// What `verify` fails on the tree, as text.
fn verify_failures(s: &Setup) -> Res<String> {
    let v = verify(&s.plan()?, now());
    Ok(v.checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .map(|c| format!("{c:?}"))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// `install_renewal` checks key, issuer, identity, EKU, serial and validity
/// of a signed certificate, but not BasicConstraints: a certificate the external CA made a CA
/// (CA:TRUE, keyCertSign) with the scheduler's identity is installed as the scheduler's client
/// certificate, a tree `kubepki verify` then fails ("it is a CA"). `sign-csrs` refuses a CSR
/// that merely requests CA:TRUE.
#[test]
fn a_signed_certificate_that_is_a_ca_is_refused_and_nothing_installed() -> R {
    let s = Setup::new()?;
    s.csrs_signed()?;
    scheduler_cert_openssl(
        &s,
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature,keyEncipherment,keyCertSign\nextendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid",
        365,
    )?;
    refused(&s, "scheduler.conf.crt", "is a CA certificate")?;
    // What it guards: installed, `verify` would fail the tree.
    assert_eq!(verify_failures(&s)?, "");
    Ok(())
}

/// nor is KeyUsage checked: keyCertSign and cRLSign on a leaf (CA:FALSE) are
/// installed, where `verify` requires digitalSignature, keyEncipherment.
#[test]
fn a_signed_certificate_with_other_key_usage_is_refused() -> R {
    let s = Setup::new()?;
    s.csrs_signed()?;
    scheduler_cert_openssl(
        &s,
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyCertSign,cRLSign\nextendedKeyUsage=clientAuth\nauthorityKeyIdentifier=keyid",
        365,
    )?;
    refused(
        &s,
        "scheduler.conf.crt",
        "its KeyUsage is Digital Signature, Certificate Sign, CRL Sign, the certificate it replaces has Digital Signature, Key Encipherment",
    )
}

/// the CSR folder is not checked. A folder others can write (a `/tmp/csrs`
/// made 0777 by another user beforehand) gets the node's new private keys, and whoever can
/// write there can swap a key and its CSR for their own between `--csr-only` and the trip to
/// the CA: the CA signs it (the identity is right), and `--from-csr-dir` installs a key the
/// other user holds, e.g. for apiserver-kubelet-client. Both ends must refuse such a folder.
#[test]
fn a_csr_folder_others_can_write_is_refused() -> R {
    let s = Setup::new()?;
    let spec = s.spec();
    let targets = renew_targets(&spec);
    let shared = s.dir().join("shared");
    fs::create_dir(&shared)?;
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777))?;
    let wrote = write_renewal_csrs(&spec, &targets, None, &shared, false);
    assert!(
        wrote.is_err(),
        "--csr-only wrote the new private keys into a folder anyone can write"
    );
    // The other side: the folder was made safe for --csr-only and signing, then opened up.
    let own = s.dir().join("own");
    fs::create_dir(&own)?;
    fs::set_permissions(&own, fs::Permissions::from_mode(0o700))?;
    write_renewal_csrs(&spec, &targets, None, &own, false)?;
    // Someone else swaps apiserver-kubelet-client's key and CSR for their own.
    let theirs = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    let old = s.live(RenewTarget::Cert(CertId::ApiserverKubeletClient))?;
    let csr = CsrBuilder::new(old.subject().clone()).sign(&theirs)?;
    fs::write(
        own.join("apiserver-kubelet-client.key"),
        theirs.to_pem()?.as_bytes(),
    )?;
    fs::write(own.join("apiserver-kubelet-client.csr"), csr.to_pem())?;
    sign_renewal_csrs(&s.ca_plan()?, &s.cas()?, &own, now())?;
    fs::set_permissions(&own, fs::Permissions::from_mode(0o777))?;
    let installed = install_renewal(&spec, &targets, true, &own, now());
    assert!(
        installed.is_err(),
        "--from-csr-dir installed keys from a folder anyone can write"
    );
    Ok(())
}

/// a key of the CSR folder that others can read (copied with a 0644 umask) is
/// installed as the live key; it is refused.
#[test]
fn a_key_others_can_read_is_refused() -> R {
    let s = Setup::new()?;
    s.csrs_signed()?;
    fs::set_permissions(
        s.dir().join("apiserver.key"),
        fs::Permissions::from_mode(0o644),
    )?;
    refused(&s, "apiserver.key", "is readable by others (mode 644)")
}

/// an unknown critical extension was installed, and `verify` passed the tree;
/// Go's `x509.Verify` refuses such a certificate ("unhandled critical extension"), so the
/// scheduler could no longer authenticate. It is refused.
#[test]
fn an_unknown_critical_extension_is_refused() -> R {
    let s = Setup::new()?;
    s.csrs_signed()?;
    scheduler_cert_openssl(
        &s,
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\nauthorityKeyIdentifier=keyid\n1.2.3.4=critical,ASN1:NULL",
        365,
    )?;
    refused(
        &s,
        "scheduler.conf.crt",
        "has a critical extension 1.2.3.4 that Kubernetes components do not handle",
    )
}

/// a certificate signed with SHA-1 (Go refuses SHA-1 signatures since
/// 1.18) is refused.
#[test]
fn a_sha1_signature_is_refused() -> R {
    let s = Setup::new()?;
    s.csrs_signed()?;
    scheduler_cert_openssl_with(
        &s,
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\nauthorityKeyIdentifier=keyid",
        365,
        &["-sha1"],
    )?;
    refused(
        &s,
        "scheduler.conf.crt",
        "was not issued by the ca of this tree",
    )
}

/// `--csr-only --overwrite` replaced the key and CSR but left the signed
/// certificate of the earlier round, which `sign-csrs` then refused ("is not for the key of the
/// CSR") and `--from-csr-dir` too, although the help said certificates are replaced. Now the
/// stale certificate is named up front and nothing is written.
#[test]
fn overwrite_with_a_signed_certificate_of_an_earlier_round_is_refused() -> R {
    let s = Setup::new()?;
    s.csrs_signed()?;
    let spec = s.spec();
    let before = snapshot(s.dir())?;
    let e = write_renewal_csrs(&spec, &renew_targets(&spec), None, s.dir(), true)
        .err()
        .ok_or("overwrote the keys and left their old certificates")?;
    assert!(
        e.to_string()
            .contains("apiserver.crt: is signed for the key --overwrite would replace"),
        "{e}"
    );
    assert_eq!(snapshot(s.dir())?, before);
    Ok(())
}
