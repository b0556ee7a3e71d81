//! `ca create` and the version modelling of CA key identifiers (issue 19, item 7).

use std::fs;

use kubepki_ca::{Certificate, KeyIdMethod};

mod common;
use common::{TREE, kubepki};

type R = Result<(), Box<dyn std::error::Error>>;

/// `init` gives a CA the SubjectKeyIdentifier of the version modelled
/// (truncated SHA-256 from 1.35, the default v1.37.0), while `ca create` — documented for
/// making a kubeadm tree's CAs (docs/hsm.md) — always used SHA-1, so the same default run made
/// CAs of two kinds. `ca create` now follows the default version as `init` does.
#[test]
fn ca_create_derives_the_key_identifier_as_init_does_by_default() -> R {
    let d = tempfile::tempdir()?;
    let r = kubepki(
        d.path(),
        &["ca", "create", "--cn", "kubernetes", "--out-dir", "o"],
    )?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut init = vec!["init"];
    init.extend(TREE);
    let r = kubepki(d.path(), &init)?;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let made = Certificate::from_pem(&fs::read(d.path().join("o/ca.crt"))?)?;
    let tree = Certificate::from_pem(&fs::read(d.path().join("t/pki/ca.crt"))?)?;
    let sha256 = |c: &Certificate| KeyIdMethod::Sha256Truncated.key_id(c.public_key_der());
    assert_eq!(
        tree.subject_key_id(),
        Some(&sha256(&tree)?[..]),
        "init, v1.37.0"
    );
    assert_eq!(
        made.subject_key_id(),
        Some(&sha256(&made)?[..]),
        "ca create: SHA-1 ({:?})",
        KeyIdMethod::Sha1.key_id(made.public_key_der())?
    );
    Ok(())
}
