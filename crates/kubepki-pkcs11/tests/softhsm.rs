//! The PKCS#11 key against a real token: SoftHSM2, a fresh token per test.
//!
//! SoftHSM2 reads its configuration (`SOFTHSM2_CONF`) once per process and a PKCS#11 module is
//! initialized once per process, so each test runs its body in a child process of this test
//! binary with its own `SOFTHSM2_CONF` and token directory. Without SoftHSM2 the tests are
//! skipped, except under CI (`CI` set), where that is a failure.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use kubepki_ca::{CaExpiry, CaSigningKey, CaSpec, CertificateAuthority, IssueSpec, Window};
use kubepki_csr::{ExtKeyUsage, Subject};
use kubepki_keys::{KeyAlgorithm, PrivateKey};
use kubepki_pkcs11::{Error, Pin, Pkcs11Options, Pkcs11Provider, Pkcs11Uri};
use time::{Duration, OffsetDateTime};

type R = Result<(), Box<dyn std::error::Error>>;

// The token setup the other test crates share through kubepki-interop, which depends on this
// crate: included by path rather than as a dependency.
#[path = "../../../tests/softhsm_token.rs"]
mod softhsm_token;
use softhsm_token::{
    SOFTHSM_MODULE as MODULE, SOFTHSM_PIN as PIN, with_softhsm_token as with_token,
};

fn options() -> Pkcs11Options {
    Pkcs11Options::new()
        .with_module(MODULE)
        .with_pin(Pin::new(PIN.into()))
}

fn uri(text: &str) -> Result<Pkcs11Uri, Error> {
    Pkcs11Uri::parse(text)
}

/// The error's `Display` names `uri` and neither it nor `Debug` holds a PIN.
fn assert_names_uri_without_pin(e: &Error, uri: &str) {
    let shown = e.to_string();
    let debug = format!("{e:?}");
    assert!(shown.contains(uri), "{shown} does not name {uri}");
    assert!(!shown.contains('\n'), "{shown}");
    for text in [&shown, &debug] {
        assert!(!text.contains(PIN), "{text}");
        assert!(!text.contains("wr0ng-PIN"), "{text}");
    }
}

fn openssl_verify(dir: &Path, ca_pem: &str, leaf_pem: &str) -> R {
    let ca = dir.join("ca.crt");
    let leaf = dir.join("leaf.crt");
    std::fs::write(&ca, ca_pem)?;
    std::fs::write(&leaf, leaf_pem)?;
    let out = Command::new("openssl")
        .args(["verify", "-x509_strict", "-CAfile"])
        .arg(&ca)
        .arg(&leaf)
        .output()?;
    assert!(
        out.status.success(),
        "openssl verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[test]
fn each_algorithm_is_generated_in_the_token_and_signs_a_verifiable_leaf() -> R {
    with_token(
        "each_algorithm_is_generated_in_the_token_and_signs_a_verifiable_leaf",
        || {
            let provider = Pkcs11Provider::new(options());
            let now = OffsetDateTime::now_utc();
            let scratch = tempfile::tempdir()?;
            for (i, alg) in KeyAlgorithm::ALL.into_iter().enumerate() {
                let u = uri(&format!(
                    "pkcs11:token=T;object=ca-{};id=%0{}",
                    alg.name(),
                    i + 1
                ))?;
                let key = provider.generate(&u, alg)?;
                assert_eq!(key.algorithm(), alg);
                let a = key.attributes()?;
                assert!(a.sensitive && a.always_sensitive, "{alg}: {a:?}");
                assert!(!a.extractable && a.never_extractable, "{alg}: {a:?}");
                assert!(
                    a.sign && !a.decrypt && !a.unwrap && !a.derive,
                    "{alg}: {a:?}"
                );
                assert!(a.token && a.private, "{alg}: {a:?}");
                assert_eq!(a.label, format!("ca-{}", alg.name()).into_bytes());
                assert_eq!(a.id, vec![u8::try_from(i + 1)?]);
                assert!(key.private_key().is_none());

                let ca = CertificateAuthority::create_root_with_signing_key(
                    &CaSpec::kubeadm("kubernetes", now, Duration::days(3650)),
                    key.clone(),
                )?;
                assert!(ca.key().is_none());
                let leaf_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
                let leaf = ca.issue(
                    &IssueSpec::new(
                        Subject::cn("kube-apiserver-kubelet-client")
                            .with_organizations(["kubeadm:cluster-admins"]),
                        leaf_key.public_key_der(),
                        Window::kubeadm(now, Duration::days(365)),
                        CaExpiry::Refuse,
                    )
                    .with_ext_key_usage(vec![ExtKeyUsage::ClientAuth]),
                )?;
                openssl_verify(scratch.path(), &ca.certificate().to_pem(), &leaf.to_pem())?;

                // Found again by the URI (a second provider: a new session on the same token).
                let again = Pkcs11Provider::new(options()).key(&u)?;
                assert_eq!(again.public_key_der(), key.public_key_der());
                let reloaded = CertificateAuthority::from_certificate(ca.certificate().clone())?
                    .with_signing_key(again)?;
                reloaded.check_issued(&leaf)?;
            }
            Ok(())
        },
    )
}

#[test]
fn a_key_with_the_same_object_is_not_replaced() -> R {
    with_token("a_key_with_the_same_object_is_not_replaced", || {
        let provider = Pkcs11Provider::new(options());
        let u = uri("pkcs11:token=T;object=ca")?;
        let first = provider.generate(&u, KeyAlgorithm::EcdsaP256)?;
        let e = provider
            .generate(&u, KeyAlgorithm::EcdsaP256)
            .err()
            .ok_or("generated twice")?;
        assert!(matches!(e, Error::KeyExists { .. }), "{e}");
        assert_names_uri_without_pin(&e, "pkcs11:token=T;object=ca");
        assert_eq!(provider.key(&u)?.public_key_der(), first.public_key_der());
        let e = provider
            .generate(&uri("pkcs11:token=T;id=%07")?, KeyAlgorithm::EcdsaP256)
            .err()
            .ok_or("generated without object")?;
        assert!(matches!(e, Error::NoObject { .. }), "{e}");
        Ok(())
    })
}

#[test]
fn refusals_name_the_uri_never_the_pin() -> R {
    with_token("refusals_name_the_uri_never_the_pin", || {
        let scratch = tempfile::tempdir()?;
        let setup = Pkcs11Provider::new(options());
        setup.generate(
            &uri("pkcs11:token=T;object=a;id=%01")?,
            KeyAlgorithm::EcdsaP256,
        )?;
        setup.generate(
            &uri("pkcs11:token=T;object=b;id=%02")?,
            KeyAlgorithm::Rsa2048,
        )?;

        // Several keys, no key.
        let e = setup
            .key(&uri("pkcs11:token=T")?)
            .err()
            .ok_or("ambiguous URI accepted")?;
        assert!(matches!(e, Error::SeveralKeys { count: 2, .. }), "{e}");
        assert_names_uri_without_pin(&e, "pkcs11:token=T");
        let e = setup
            .key(&uri("pkcs11:token=T;object=zzz")?)
            .err()
            .ok_or("missing key accepted")?;
        assert!(matches!(e, Error::NoKey { .. }), "{e}");
        assert_names_uri_without_pin(&e, "pkcs11:token=T;object=zzz");
        let e = setup
            .key(&uri("pkcs11:token=T;object=a;type=cert")?)
            .err()
            .ok_or("a certificate URI accepted")?;
        assert!(matches!(e, Error::NotAPrivateKey { .. }), "{e}");

        // No token attribute: the one initialized token (not SoftHSM2's free slot).
        let key = setup.key(&uri("pkcs11:object=a")?)?;
        assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP256);
        drop(key);

        // Unknown token.
        let e = Pkcs11Provider::new(options())
            .key(&uri("pkcs11:token=Nope;object=a")?)
            .err()
            .ok_or("unknown token accepted")?;
        assert!(matches!(e, Error::UnknownToken { .. }), "{e}");
        assert!(e.to_string().ends_with("(tokens present: T)"), "{e}");
        assert_names_uri_without_pin(&e, "pkcs11:token=Nope;object=a");

        // Missing module, no module at all.
        let e = Pkcs11Provider::new(options())
            .key(&uri(
                "pkcs11:token=T;object=a?module-path=/nonexistent/libpkcs11.so",
            )?)
            .err()
            .ok_or("missing module accepted")?;
        assert!(matches!(e, Error::Module { .. }), "{e}");
        assert_names_uri_without_pin(&e, "pkcs11:token=T;object=a?module-path=/nonexistent");
        let e = Pkcs11Provider::new(Pkcs11Options::new().with_pin(Pin::new(PIN.into())))
            .key(&uri("pkcs11:token=T;object=a")?)
            .err()
            .ok_or("no module accepted")?;
        assert!(matches!(e, Error::NoModule { .. }), "{e}");

        // Wrong PIN: in the URI, in a file, in the options. The login state of a token is per
        // process while any session is open, so close the logged-in one first.
        drop(setup);
        let wrong_file = scratch.path().join("wrong.pin");
        std::fs::write(&wrong_file, "wr0ng-PIN\n")?;
        for (text, shown) in [
            (
                "pkcs11:token=T;object=a?pin-value=wr0ng-PIN".to_owned(),
                "pkcs11:token=T;object=a?pin-value=REDACTED".to_owned(),
            ),
            (
                format!(
                    "pkcs11:token=T;object=a?pin-source={}",
                    wrong_file.display()
                ),
                "pkcs11:token=T;object=a?pin-source=".to_owned(),
            ),
        ] {
            let u = uri(&text)?;
            assert!(!u.to_string().contains("wr0ng") && !format!("{u:?}").contains("wr0ng"));
            let e = Pkcs11Provider::new(Pkcs11Options::new().with_module(MODULE))
                .key(&u)
                .err()
                .ok_or("wrong PIN accepted")?;
            assert!(matches!(e, Error::Login { .. }), "{e}");
            assert_names_uri_without_pin(&e, &shown);
        }
        let wrong = Pkcs11Options::new()
            .with_module(MODULE)
            .with_pin(Pin::new("wr0ng-PIN".into()));
        assert!(!format!("{wrong:?}").contains("wr0ng"));
        let e = Pkcs11Provider::new(wrong)
            .key(&uri("pkcs11:token=T;object=a")?)
            .err()
            .ok_or("wrong PIN accepted")?;
        assert!(matches!(e, Error::Login { .. }), "{e}");
        assert_names_uri_without_pin(&e, "pkcs11:token=T;object=a");

        // No PIN; an unreadable PIN file.
        let e = Pkcs11Provider::new(Pkcs11Options::new().with_module(MODULE))
            .key(&uri("pkcs11:token=T;object=a")?)
            .err()
            .ok_or("no PIN accepted")?;
        assert!(matches!(e, Error::NoPin { .. }), "{e}");
        let e = Pkcs11Provider::new(Pkcs11Options::new().with_module(MODULE))
            .key(&uri("pkcs11:token=T;object=a?pin-source=/nonexistent/pin")?)
            .err()
            .ok_or("missing PIN file accepted")?;
        assert!(matches!(e, Error::PinSource { .. }), "{e}");

        // The right PIN from a file (with a trailing newline) opens the key.
        let right = scratch.path().join("right.pin");
        std::fs::write(&right, format!("{PIN}\n"))?;
        let key =
            Pkcs11Provider::new(Pkcs11Options::new().with_module(MODULE)).key(&uri(&format!(
                "pkcs11:token=T;object=a?pin-source=file://{}",
                right.display()
            ))?)?;
        assert!(!format!("{key:?}").contains(PIN));
        Ok(())
    })
}

#[test]
fn a_certificate_of_another_key_is_refused() -> R {
    with_token("a_certificate_of_another_key_is_refused", || {
        let provider = Pkcs11Provider::new(options());
        let token_key: Arc<dyn CaSigningKey> =
            provider.generate(&uri("pkcs11:token=T;object=ca")?, KeyAlgorithm::EcdsaP256)?;
        let now = OffsetDateTime::now_utc();
        for other in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
            let software = CertificateAuthority::create_root(
                &CaSpec::kubeadm("kubernetes", now, Duration::days(10)),
                PrivateKey::generate(other)?,
            )?;
            let r = CertificateAuthority::from_certificate(software.certificate().clone())?
                .with_signing_key(token_key.clone());
            assert!(r.is_err(), "{other}: a foreign key was attached");
        }
        Ok(())
    })
}

/// Many signatures per algorithm, from several threads sharing one key (one session): every
/// one verifies (strict DER for ECDSA, so r or s with a high bit or leading zero bytes), and
/// some of the ECDSA ones did hit those cases.
#[test]
fn signatures_verify_every_time_from_many_threads() -> R {
    with_token("signatures_verify_every_time_from_many_threads", || {
        let provider = Pkcs11Provider::new(options());
        for (i, (alg, rounds)) in [
            (KeyAlgorithm::EcdsaP256, 600),
            (KeyAlgorithm::EcdsaP384, 600),
            (KeyAlgorithm::Rsa3072, 8),
            (KeyAlgorithm::Rsa4096, 8),
        ]
        .into_iter()
        .enumerate()
        {
            let u = uri(&format!("pkcs11:token=T;object=many-{i};id=%1{i}"))?;
            let key = provider.generate(&u, alg)?;
            let oid = key.signature_algorithm().oid();
            let short = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|scope| -> R {
                let workers: Vec<_> = (0..4)
                    .map(|t| {
                        let key = &key;
                        let short = &short;
                        scope.spawn(move || -> Result<(), String> {
                            for n in 0..rounds {
                                let msg = format!("{alg} thread {t} message {n}").into_bytes();
                                let sig = key.sign(&msg).map_err(|e| e.to_string())?;
                                kubepki_keys::verify_signature(
                                    key.public_key_der(),
                                    &oid,
                                    &msg,
                                    &sig,
                                )
                                .map_err(|e| format!("{alg} signature {n}: {e}: {sig:02x?}"))?;
                                // SEQUENCE { INTEGER r, INTEGER s }: shorter than the longest
                                // when an integer lost leading zero bytes.
                                let longest = match alg {
                                    KeyAlgorithm::EcdsaP256 => 72,
                                    KeyAlgorithm::EcdsaP384 => 104,
                                    _ => usize::MAX,
                                };
                                if sig.len() < longest - 2 {
                                    short.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                }
                            }
                            Ok(())
                        })
                    })
                    .collect();
                for w in workers {
                    w.join().map_err(|_| "a signing thread panicked")??;
                }
                Ok(())
            })?;
            if matches!(alg, KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384) {
                assert!(
                    short.into_inner() > 0,
                    "{alg}: no signature with a short r or s in {} tries",
                    4 * rounds
                );
            }
        }
        Ok(())
    })
}

/// A relative module path is refused before anything is loaded (the dynamic loader would look
/// a bare name up in LD_LIBRARY_PATH, a path with a slash in the working folder).
#[test]
fn a_relative_module_path_is_refused() -> R {
    with_token("a_relative_module_path_is_refused", || {
        for module in ["libsofthsm2.so", "softhsm/libsofthsm2.so"] {
            let u = uri("pkcs11:token=T;object=k")?;
            let provider = Pkcs11Provider::new(options().with_module(module));
            let e = provider.key(&u).err().ok_or("loaded a relative module")?;
            assert!(matches!(e, Error::Module { .. }), "{e}");
            assert!(e.to_string().contains("absolute"), "{e}");
            let u = uri(&format!("pkcs11:token=T;object=k?module-path={module}"))?;
            let e = Pkcs11Provider::new(options())
                .key(&u)
                .err()
                .ok_or("loaded a relative module")?;
            assert!(e.to_string().contains("absolute"), "{e}");
        }
        Ok(())
    })
}

/// `pin-source`: one line with or without LF/CRLF, through a symlink too; a FIFO, a device, a
/// folder, a big file or two lines are refused at once (no hang, no unbounded read), naming the
/// file, never the PIN.
#[test]
fn pin_source_files() -> R {
    with_token("pin_source_files", || {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        for (name, text) in [
            ("lf", format!("{PIN}\n")),
            ("crlf", format!("{PIN}\r\n")),
            ("bare", PIN.to_owned()),
        ] {
            std::fs::write(d.join(name), text)?;
        }
        std::os::unix::fs::symlink(d.join("lf"), d.join("link"))?;
        std::fs::write(d.join("two"), format!("{PIN}\n{PIN}\n"))?;
        std::fs::write(d.join("big"), vec![b'1'; 5000])?;
        let fifo = d.join("fifo");
        assert!(Command::new("mkfifo").arg(&fifo).status()?.success());
        let provider = Pkcs11Provider::new(Pkcs11Options::new().with_module(MODULE));
        provider.generate(
            &uri(&format!(
                "pkcs11:token=T;object=k?pin-source={}",
                d.join("lf").display()
            ))?,
            KeyAlgorithm::EcdsaP256,
        )?;
        for good in ["lf", "crlf", "bare", "link"] {
            // The process is logged in already (PKCS#11 logins are per process), so this
            // checks the reading; tests/hsm.rs in kubepki-cli logs in with each in a process.
            let u = uri(&format!(
                "pkcs11:token=T;object=k?pin-source={}",
                d.join(good).display()
            ))?;
            Pkcs11Provider::new(Pkcs11Options::new().with_module(MODULE)).key(&u)?;
        }
        for bad in [
            d.join("two"),
            d.join("big"),
            fifo,
            d.to_path_buf(),
            "/dev/zero".into(),
        ] {
            let u = uri(&format!(
                "pkcs11:token=T;object=k?pin-source={}",
                bad.display()
            ))?;
            let e = Pkcs11Provider::new(Pkcs11Options::new().with_module(MODULE))
                .key(&u)
                .err()
                .ok_or_else(|| format!("{} accepted", bad.display()))?;
            assert!(matches!(e, Error::PinSource { .. }), "{e}");
            assert_names_uri_without_pin(&e, &u.to_string());
        }
        Ok(())
    })
}
