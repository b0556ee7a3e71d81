//! The signing seam (issue 16, item 4): CA keys that are not `PrivateKey`s sign through
//! `kubepki_ca::CaSigningKey`. A test double wraps a software key, counts its calls and can be
//! made to fail, as an HSM token that is pulled would. It backs the three kubeadm CAs; the
//! kubeadm tree is issued through it the way init lays it out (`generate_csrs` + `sign_csrs`),
//! a leaf is renewed, a user, a node and a Kubernetes CSR are signed — every certificate
//! verifies with `openssl verify`, and a failing key surfaces as `Error::Signing` naming the CA.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use kubepki_ca::{
    CaExpiry, CaSigningKey, CaSpec, Certificate, CertificateAuthority, DEFAULT_SIGNING_DURATION,
    IssueSpec, SigningError, Window, sign_request,
};
use kubepki_csr::{ExtKeyUsage, Subject, SubjectAltNames};
use kubepki_keys::{KeyAlgorithm, PrivateKey, SignatureAlgorithm};
use kubepki_kubeadm::{
    CertId, ClusterSpec, Error, Plan, Reason, Selection, Signed, SigningCas, UserSpec,
    client_credentials, generate_csrs, init_tree, kubelet_serving, sign_csrs, user_request,
};
use time::Duration;

mod common;
use common::{assert_no_verify_failure, now, spec_in};

type R = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// A CA key that is not a `PrivateKey` to the CA: it counts signatures and can be made to
/// fail. It does not hand its key back (`private_key()` is `None`), as an HSM key would not.
#[derive(Debug)]
struct CountingKey {
    inner: PrivateKey,
    calls: AtomicUsize,
    fail: AtomicBool,
}

impl CountingKey {
    fn new(alg: KeyAlgorithm) -> Res<Arc<CountingKey>> {
        Ok(Arc::new(CountingKey {
            inner: PrivateKey::generate(alg)?,
            calls: AtomicUsize::new(0),
            fail: AtomicBool::new(false),
        }))
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl CaSigningKey for CountingKey {
    fn public_key_der(&self) -> &[u8] {
        self.inner.public_key_der()
    }

    fn signature_algorithm(&self) -> SignatureAlgorithm {
        self.inner.signature_algorithm()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(SigningError::Backend {
                backend: "test-double".into(),
                source: "the token was removed".into(),
            });
        }
        Ok(self.inner.sign(message)?)
    }
}

fn spec(dir: &Path) -> ClusterSpec {
    spec_in(dir, "n1")
}

/// A root CA whose key is `key`, as init makes kubeadm's CAs.
fn root(cn: &str, key: &Arc<CountingKey>) -> Res<CertificateAuthority> {
    let key: Arc<dyn CaSigningKey> = key.clone();
    Ok(CertificateAuthority::create_root_with_signing_key(
        &CaSpec::kubeadm(cn, now(), Duration::hours(87600)),
        key,
    )?)
}

fn openssl_verify(ca: &Certificate, cert: &Certificate, dir: &Path, purpose: &str) -> R {
    let (ca_file, cert_file) = (dir.join("verify-ca.crt"), dir.join("verify-leaf.crt"));
    fs::write(&ca_file, ca.to_pem())?;
    fs::write(&cert_file, cert.to_pem())?;
    common::openssl_verify(&ca_file, &cert_file, purpose)
}

#[test]
fn every_issuance_path_signs_through_the_seam_and_verifies_with_openssl() -> R {
    let dir = tempfile::tempdir()?;
    let plan = Plan::new(&spec(dir.path()))?;
    // An RSA cluster CA (the hot path of the CLI) and ECDSA etcd and front-proxy CAs.
    let keys = [
        CountingKey::new(KeyAlgorithm::Rsa2048)?,
        CountingKey::new(KeyAlgorithm::EcdsaP256)?,
        CountingKey::new(KeyAlgorithm::EcdsaP256)?,
    ];
    let [ca_key, fp_key, etcd_key] = &keys;
    let cas = SigningCas {
        ca: Some(root("kubernetes", ca_key)?),
        front_proxy: Some(root("front-proxy-ca", fp_key)?),
        etcd: Some(root("etcd-ca", etcd_key)?),
    };
    // Each root signed itself through its key, and no key was handed back.
    assert_eq!(
        keys.iter().map(|k| k.calls()).collect::<Vec<_>>(),
        [1, 1, 1]
    );
    let ca = cas.ca.as_ref().ok_or("ca")?;
    assert!(ca.can_sign() && ca.key().is_none());

    // The kubeadm tree, as init lays it out, from the node's CSRs.
    generate_csrs(&plan)?;
    let signed = sign_csrs(&plan, &cas, now())?;
    assert!(signed.iter().all(|s| matches!(s, Signed::Written(_))));
    // Cluster CA: apiserver, apiserver-kubelet-client and the five kubeconfigs; front proxy:
    // one; etcd: four.
    assert_eq!(
        keys.iter().map(|k| k.calls()).collect::<Vec<_>>(),
        [1 + 2 + 5, 1 + 1, 1 + 4]
    );
    for (id, issuer) in [
        (CertId::Ca, cas.ca.as_ref()),
        (CertId::FrontProxyCa, cas.front_proxy.as_ref()),
        (CertId::EtcdCa, cas.etcd.as_ref()),
    ] {
        let issuer = issuer.ok_or("ca")?;
        fs::write(id.cert_path(&plan.cert_dir), issuer.certificate().to_pem())?;
    }
    for c in plan.certs.iter().filter(|c| !c.id.is_ca()) {
        let cert = Certificate::from_pem(&fs::read(c.id.cert_path(&plan.cert_dir))?)?;
        let issuer = match c.id.issuer().ok_or("leaf without issuer")? {
            CertId::FrontProxyCa => cas.front_proxy.as_ref(),
            CertId::EtcdCa => cas.etcd.as_ref(),
            _ => cas.ca.as_ref(),
        }
        .ok_or("ca")?;
        let purpose = if c.ext_key_usage.contains(&ExtKeyUsage::ServerAuth) {
            "sslserver"
        } else {
            "sslclient"
        };
        openssl_verify(issuer.certificate(), &cert, dir.path(), purpose)?;
    }
    // The rest of the tree (sa keys) and a full verify with the CA certificates alone.
    init_tree(&plan, &Selection::all(), now(), false)?;
    assert_no_verify_failure(&plan, now());

    // Renewal: the same identity with a new key, as `certs renew` re-issues a leaf.
    let before = ca_key.calls();
    let old = Certificate::from_pem(&fs::read(CertId::Apiserver.cert_path(&plan.cert_dir))?)?;
    let new_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    let old_sans = old.subject_alt_names();
    let renewed = ca.issue(
        &IssueSpec::new(
            old.subject().clone(),
            new_key.public_key_der(),
            plan.leaf_window(now(), ca.certificate().not_before()),
            CaExpiry::Clamp,
        )
        .with_ext_key_usage(old.ext_key_usage().unwrap_or(&[]).to_vec())
        .with_subject_alt_names(SubjectAltNames {
            dns: old_sans.dns,
            ips: old_sans.ips,
            ..SubjectAltNames::default()
        }),
    )?;
    assert_eq!(ca_key.calls(), before + 1);
    assert_eq!(renewed.subject_alt_names(), old.subject_alt_names());
    assert_ne!(renewed.public_key_der(), old.public_key_der());
    openssl_verify(ca.certificate(), &renewed, dir.path(), "sslserver")?;

    // A user (`kubepki user`), a node's serving certificate (`kubepki node`) and a Kubernetes
    // CSR (`kubepki sign-request`).
    let window = Window::kubeadm(now(), Duration::hours(24));
    let (user, _) = client_credentials(
        ca,
        &Subject::cn("jane").with_organizations(["dev", "ops"]),
        KeyAlgorithm::EcdsaP256,
        window,
        CaExpiry::Refuse,
    )?;
    openssl_verify(ca.certificate(), &user, dir.path(), "sslclient")?;
    let (serving, _) = kubelet_serving(
        ca,
        "w1",
        &[],
        &[],
        KeyAlgorithm::EcdsaP256,
        window,
        CaExpiry::Refuse,
    )?;
    openssl_verify(ca.certificate(), &serving, dir.path(), "sslserver")?;
    let (_, _, req) = user_request(
        &UserSpec {
            name: "sam".into(),
            groups: vec!["dev".into()],
        },
        KeyAlgorithm::EcdsaP256,
        None,
    )?;
    let from_request = sign_request(ca, &req, DEFAULT_SIGNING_DURATION, now())?;
    openssl_verify(ca.certificate(), &from_request, dir.path(), "sslclient")?;
    assert_eq!(ca_key.calls(), before + 1 + 3);
    Ok(())
}

#[test]
fn a_failing_signing_key_is_a_typed_error_naming_the_ca() -> R {
    let key = CountingKey::new(KeyAlgorithm::EcdsaP256)?;
    let ca = root("kubernetes", &key)?;
    key.fail.store(true, Ordering::SeqCst);
    let leaf = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    let spec = IssueSpec::new(
        Subject::cn("jane"),
        leaf.public_key_der(),
        Window::kubeadm(now(), Duration::hours(1)),
        CaExpiry::Refuse,
    );
    let err = ca.issue(&spec).err().ok_or("signed with a failing key")?;
    match &err {
        kubepki_ca::Error::Signing {
            ca,
            source: SigningError::Backend { backend, .. },
        } => {
            assert_eq!(ca, "CN = kubernetes");
            assert_eq!(backend, "test-double");
        }
        other => return Err(format!("unexpected error: {other:?}").into()),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("CA \"CN = kubernetes\"") && msg.contains("the token was removed"),
        "{msg}"
    );
    // Through the kubeadm layer (`kubepki user`) and the CSR signer (`kubepki sign-request`).
    let via_kubeadm = client_credentials(
        &ca,
        &Subject::cn("jane"),
        KeyAlgorithm::EcdsaP256,
        Window::kubeadm(now(), Duration::hours(1)),
        CaExpiry::Refuse,
    )
    .err()
    .ok_or("signed with a failing key")?;
    assert!(
        matches!(
            &via_kubeadm,
            kubepki_kubeadm::Error::Ca(kubepki_ca::Error::Signing { ca, .. }) if ca == "CN = kubernetes"
        ),
        "{via_kubeadm:?}"
    );
    let (_, _, req) = user_request(
        &UserSpec {
            name: "sam".into(),
            groups: vec![],
        },
        KeyAlgorithm::EcdsaP256,
        None,
    )?;
    assert!(matches!(
        sign_request(&ca, &req, DEFAULT_SIGNING_DURATION, now()),
        Err(kubepki_ca::Error::Signing { .. })
    ));
    // A root whose key fails is not created; the error names the CA being made.
    let err = CertificateAuthority::create_root_with_signing_key(
        &CaSpec::kubeadm("etcd-ca", now(), Duration::hours(1)),
        key.clone(),
    )
    .err()
    .ok_or("created with a failing key")?;
    assert!(
        matches!(&err, kubepki_ca::Error::Signing { ca, .. } if ca == "CN = etcd-ca"),
        "{err:?}"
    );
    Ok(())
}

/// A key whose claimed algorithm does not fit its public key would make certificates nobody
/// can verify: refused when it is attached.
#[test]
fn a_signing_key_claiming_another_algorithm_is_refused() -> R {
    #[derive(Debug)]
    struct Liar(PrivateKey);
    impl CaSigningKey for Liar {
        fn public_key_der(&self) -> &[u8] {
            self.0.public_key_der()
        }
        fn signature_algorithm(&self) -> SignatureAlgorithm {
            SignatureAlgorithm::RsaPkcs1Sha256
        }
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
            Ok(self.0.sign(message)?)
        }
    }
    let liar = Arc::new(Liar(PrivateKey::generate(KeyAlgorithm::EcdsaP256)?));
    let spec = CaSpec::kubeadm("kubernetes", now(), Duration::hours(1));
    assert!(matches!(
        CertificateAuthority::create_root_with_signing_key(&spec, liar.clone()),
        Err(kubepki_ca::Error::Key(
            kubepki_keys::Error::SignatureAlgorithmMismatch { .. }
        ))
    ));
    // Attaching it to the certificate of its own key is refused the same way.
    let honest = CertificateAuthority::create_root(
        &spec,
        PrivateKey::from_pem(liar.0.to_pem()?.as_bytes())?,
    )?;
    let keyless = CertificateAuthority::from_certificate(honest.certificate().clone())?;
    assert!(matches!(
        keyless.with_signing_key(liar),
        Err(kubepki_ca::Error::Key(
            kubepki_keys::Error::SignatureAlgorithmMismatch { .. }
        ))
    ));
    Ok(())
}

/// CA keys held outside the tree (`Tree::set_ca_key`: a token, a KMS), in the in-memory
/// engine: `build` makes the CA certificates with them and signs every leaf and kubeconfig
/// through them, no CA key file is in the result; the tree so made is reused whole; `renew_in`
/// signs through them; `Expiration::of_tree` and `CaSet` see the CAs as able to sign. A key
/// file next to a held key, and a held key that is not the certificate's, are refused.
#[test]
fn ca_keys_held_outside_the_tree() -> R {
    use kubepki_kubeadm::{CaSet, Expiration, Tree, build, decide, renew_in, renew_targets};
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    let plan = Plan::new(&s)?;
    let (ca, fp, etcd) = (
        CountingKey::new(KeyAlgorithm::EcdsaP256)?,
        CountingKey::new(KeyAlgorithm::EcdsaP256)?,
        CountingKey::new(KeyAlgorithm::EcdsaP256)?,
    );
    let mut held = Tree::new();
    held.set_ca_key(CertId::Ca, ca.clone())?;
    held.set_ca_key(CertId::FrontProxyCa, fp.clone())?;
    held.set_ca_key(CertId::EtcdCa, etcd.clone())?;
    assert!(held.set_ca_key(CertId::Apiserver, ca.clone()).is_err());

    let applied = build(&plan, &Selection::all(), &held, now())?;
    let paths: Vec<&str> = applied.files.files().map(|f| f.path.as_str()).collect();
    for key in ["pki/ca.key", "pki/front-proxy-ca.key", "pki/etcd/ca.key"] {
        assert!(!paths.contains(&key), "{key} was made: {paths:?}");
    }
    assert!(paths.contains(&"pki/ca.crt") && paths.contains(&"pki/apiserver.key"));
    // ca: itself, 2 leaves, 5 kubeconfigs; front-proxy: itself, 1; etcd: itself, 4.
    assert_eq!((ca.calls(), fp.calls(), etcd.calls()), (8, 2, 5));
    let cert = |t: &Tree, p: &str| -> Res<Certificate> {
        Ok(Certificate::from_pem(&t.get(p).ok_or(p.to_owned())?.bytes)?)
    };
    let ca_crt = cert(&applied.files, "pki/ca.crt")?;
    assert_eq!(ca_crt.public_key_der(), ca.public_key_der());
    for (leaf, issuer, purpose) in [
        ("pki/apiserver.crt", "pki/ca.crt", "sslserver"),
        (
            "pki/front-proxy-client.crt",
            "pki/front-proxy-ca.crt",
            "sslclient",
        ),
        ("pki/etcd/peer.crt", "pki/etcd/ca.crt", "sslserver"),
    ] {
        openssl_verify(
            &cert(&applied.files, issuer)?,
            &cert(&applied.files, leaf)?,
            dir.path(),
            purpose,
        )?;
    }

    // The tree made, with the same held keys: reused whole; able to sign (not external).
    let mut whole = applied.full_tree(&held);
    for (id, k) in [
        (CertId::Ca, &ca),
        (CertId::FrontProxyCa, &fp),
        (CertId::EtcdCa, &etcd),
    ] {
        whole.set_ca_key(id, (*k).clone())?;
    }
    let again = decide(&plan, &Selection::all(), &whole, now())?;
    assert!(again.creates_nothing());
    assert!(again.items().all(|i| !i.external), "{again:?}");
    let exp = Expiration::of_tree(&s, &whole, now());
    assert!(exp.authorities.iter().all(|a| !a.externally_managed));
    let cas = CaSet::from_tree(&s, &whole, now())?;
    assert!(cas.authority(CertId::EtcdCa)?.can_sign());
    // Without the held keys the same tree has external CAs.
    let keyless = Expiration::of_tree(&s, &applied.full_tree(&Tree::new()), now());
    assert!(keyless.authorities.iter().all(|a| a.externally_managed));

    // renew_in signs through the held keys.
    let before = ca.calls();
    let (renewed, report, _) = renew_in(&s, &whole, &renew_targets(&s), None, now())?;
    assert!(
        report
            .iter()
            .all(|r| matches!(r.status, kubepki_kubeadm::RenewStatus::Renewed { .. }))
    );
    assert_eq!(ca.calls() - before, 2 + 4); // apiserver, kubelet client; 4 kubeconfigs
    openssl_verify(
        &ca_crt,
        &cert(&renewed, "pki/apiserver.crt")?,
        dir.path(),
        "sslserver",
    )?;

    // A key file as well as a held key; a held key that is not the certificate's.
    let mut both = whole.clone();
    both.insert_file(
        "pki/ca.key",
        PrivateKey::generate(KeyAlgorithm::EcdsaP256)?
            .to_pem()?
            .as_bytes()
            .to_vec(),
    )?;
    let e = decide(&plan, &Selection::all(), &both, now())
        .err()
        .ok_or("accepted both")?;
    assert!(
        e.to_string()
            .contains("also given as held outside the tree"),
        "{e}"
    );
    let mut wrong = whole.clone();
    wrong.set_ca_key(CertId::Ca, CountingKey::new(KeyAlgorithm::EcdsaP256)?)?;
    let e = decide(&plan, &Selection::all(), &wrong, now())
        .err()
        .ok_or("accepted another key")?;
    assert!(
        e.path().is_some_and(|p| p.ends_with("pki/ca.crt"))
            && matches!(&e, Error::File { reason: Reason::Within { context, .. }, .. }
                if context == "with the key held outside the tree"),
        "{e}"
    );
    Ok(())
}

/// kubeadm's CAs have distinct keys (`verify`: "distinct keys"): one held key given for two
/// CAs, or a held key that is another CA certificate's key, must be refused before any CA is
/// made with it, not produce a tree that `verify` then fails.
#[test]
fn one_held_key_for_two_cas_is_refused() -> R {
    use kubepki_kubeadm::{Tree, build};
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    let plan = Plan::new(&s)?;
    let shared = CountingKey::new(KeyAlgorithm::EcdsaP256)?;
    // The same key given for the cluster CA and the etcd CA, nothing on disk yet.
    let mut tree = Tree::new();
    tree.set_ca_key(CertId::Ca, shared.clone())?;
    tree.set_ca_key(CertId::EtcdCa, shared.clone())?;
    let made = build(&plan, &Selection::all(), &tree, now());
    assert!(made.is_err(), "two CAs made with one key");
    assert_eq!(shared.calls(), 0, "signed before refusing");

    // The cluster CA exists (made with `shared`); the etcd CA is to be made with the same key.
    let mut ca_only = Tree::new();
    ca_only.set_ca_key(CertId::Ca, shared.clone())?;
    let mut sel = Selection::none();
    sel.certs = vec![CertId::Ca];
    let first = build(&plan, &sel, &ca_only, now())?;
    let mut next = first.full_tree(&ca_only);
    next.set_ca_key(CertId::Ca, shared.clone())?;
    next.set_ca_key(CertId::EtcdCa, shared.clone())?;
    let calls = shared.calls();
    let made = build(&plan, &Selection::all(), &next, now());
    assert!(made.is_err(), "the etcd CA made with the cluster CA's key");
    assert_eq!(shared.calls(), calls, "signed before refusing");
    // Only the etcd CA's key given, and it is the cluster CA certificate's key.
    let mut only_etcd = first.full_tree(&Tree::new());
    only_etcd.set_ca_key(CertId::EtcdCa, shared.clone())?;
    let mut sel = Selection::none();
    sel.certs = vec![CertId::EtcdCa];
    assert!(
        build(&plan, &sel, &only_etcd, now()).is_err(),
        "the etcd CA made with the key of ca.crt"
    );
    Ok(())
}

/// A CA key file next to a held key is refused by init (`decide`); renewal must not silently
/// pick one of the two either.
#[test]
fn renew_refuses_a_key_file_next_to_a_held_key() -> R {
    use kubepki_kubeadm::{Tree, build, renew_in, renew_targets};
    let dir = tempfile::tempdir()?;
    let s = spec(dir.path());
    let plan = Plan::new(&s)?;
    // A software tree (key files), then the cluster CA's key also "held".
    let applied = build(&plan, &Selection::all(), &Tree::new(), now())?;
    let mut both = applied.full_tree(&Tree::new());
    let held = CountingKey::new(KeyAlgorithm::EcdsaP256)?;
    both.set_ca_key(CertId::Ca, held.clone())?;
    // Each target of that CA fails (renewal reports per target), naming the conflict.
    let (_, report, _) = renew_in(&s, &both, &renew_targets(&s), None, now())?;
    let apiserver = report
        .iter()
        .find(|r| r.target == kubepki_kubeadm::RenewTarget::Cert(CertId::Apiserver))
        .ok_or("no apiserver row")?;
    assert!(
        matches!(&apiserver.status, kubepki_kubeadm::RenewStatus::Failed { reason } if reason.contains("held outside the tree")),
        "renewed with a key file and a held key for one CA: {:?}",
        apiserver.status
    );
    assert_eq!(held.calls(), 0);
    Ok(())
}
